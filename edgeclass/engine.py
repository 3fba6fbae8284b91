"""Compiling an IR for the CPU with an explicit precision, and turning outputs into predictions."""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeclass import cpuclass
from edgeclass.errors import ModelError, UsageError
from edgeclass.modelfiles.ir import read_ir
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.modelfiles.metadata import ModelMetadata, read_metadata
from edgeclass.modelfiles.provenance import Int8Provenance
from edgeclass.ovruntime import ov
from edgeclass.results import Prediction

# What each --precision means for the CPU plugin. "fp32" must be said explicitly: on CPUs with
# AVX512_BF16 or AMX the plugin otherwise runs "FP32" IRs in bf16.
_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": None}


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgeclass" / "ov_cache"


@dataclass(frozen=True)
class EngineOptions:
    precision: str | None = None  # None: int8 if present, else fp32
    threads: int | None = None  # cap on inference threads (INFERENCE_NUM_THREADS)
    performance_hint: str = "THROUGHPUT"
    cache_dir: Path | None = None  # None: no compiled-model cache
    device: str = "CPU"
    num_requests: int = 0  # 0: the plugin's optimal number


def cpu_capabilities(core: ov.Core) -> list[str]:
    return list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def compile_config(core: ov.Core, options: EngineOptions, precision: str) -> dict[str, str]:
    config: dict[str, str] = {"PERFORMANCE_HINT": options.performance_hint}
    hint = _PRECISION_HINTS[precision]
    if precision == "bf16" and "BF16" not in cpu_capabilities(core):
        raise UsageError("--precision bf16: this CPU has no native bf16 support (no AVX512_BF16/AMX)")
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    if options.threads:
        # --threads shares the box: at most N inference threads, and no pinning, or several
        # processes each pin their threads to the same first cores (OpenVINO #32444)
        config["INFERENCE_NUM_THREADS"] = str(options.threads)
        config["ENABLE_CPU_PINNING"] = "NO"
    if options.cache_dir is not None:
        config["CACHE_DIR"] = str(options.cache_dir)
    return config


def accuracy_caveat(metadata: ModelMetadata, precision: str) -> str | None:
    """Why an INT8 model's recorded accuracy does not hold on this CPU class, or None."""
    if precision != "int8":
        return None
    return Int8Provenance.from_calibration(metadata.calibration).caveat(cpuclass.detect())


@dataclass
class EngineUsage:
    """Where the thread feeding the infer requests spent a run's wall time: waiting for decoded
    input (requests may run dry: the inference queue is starving) or waiting for a request to
    finish (inference is the limit, as it should be)."""

    wall_s: float = 0.0
    input_wait_s: float = 0.0
    inference_wait_s: float = 0.0
    images: int = 0

    @property
    def input_wait_share(self) -> float:
        return self.input_wait_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def inference_wait_share(self) -> float:
        return self.inference_wait_s / self.wall_s if self.wall_s > 0 else 0.0


def compile_for_cpu(core: ov.Core, model: ov.Model, precision: str, options: EngineOptions = EngineOptions(),
                    batch1: bool = True, what: str = "the model") -> ov.CompiledModel:
    """The one way edgeclass compiles for the CPU: ``precision`` said explicitly (fp32 is really
    f32), ``options``' hint, threads and cache, and (``batch1``) a static batch of 1, since
    edgeclass infers one image per request and the CPU plugin's static-shape kernels are faster
    (the IR keeps a dynamic batch for other users). ``model`` is reshaped in place."""
    if batch1:
        shape = model.inputs[0].get_partial_shape()
        model.reshape([1, shape[1].get_length(), shape[2].get_length(), shape[3].get_length()])
    config = compile_config(core, options, precision)
    if options.cache_dir is not None:
        options.cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        return core.compile_model(model, options.device, config)
    except RuntimeError as exc:
        raise ModelError(f"cannot compile {what}: {str(exc).splitlines()[0]}") from exc


class Classifier:
    """A compiled edgeclass IR plus its metadata."""

    def __init__(self, model_dir: ModelDir, options: EngineOptions = EngineOptions(), core: ov.Core | None = None):
        self.core = core or ov.Core()
        self.model_dir = model_dir
        self.precision = options.precision or model_dir.default_precision()
        self.xml = model_dir.xml_for(self.precision)
        self.model_id = model_dir.model_id(self.precision)  # the `model` column of every row
        model = read_ir(self.core, self.xml)
        self.metadata: ModelMetadata = read_metadata(model)
        self.config = compile_config(self.core, options, self.precision)
        self.compiled = compile_for_cpu(self.core, model, self.precision, options, what=str(self.xml))
        self.num_requests = options.num_requests
        self.usage = EngineUsage()  # filled by the pipeline (edgeclass.run.pipeline)

    def close(self) -> None:
        """Release the compiled model now, not during interpreter shutdown (where OpenVINO's
        threads can abort the process)."""
        self.__dict__.pop("compiled", None)

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    @property
    def inference_precision(self) -> str:
        """What the plugin really computes float layers in ("f32", "bf16", "f16")."""
        value = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        return value.get_type_name() if hasattr(value, "get_type_name") else str(value)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Synchronous inference on a ``N x H x W x 3`` uint8 batch; returns probabilities."""
        return np.asarray(self.compiled(batch)[0])

    def predictions(self, probs: np.ndarray | InferenceFailure, top_k: int) -> tuple[Prediction, ...]:
        if isinstance(probs, InferenceFailure):
            raise probs
        return top_k_predictions(probs, top_k, self.labels)


class InferenceFailure(Exception):
    """What a request returns instead of probabilities when OpenVINO failed on that input; the
    pipeline turns it into an ``error`` row (:meth:`Classifier.predictions` raises it)."""


# What a request gives back: the tag it was submitted with, and its probabilities, or the
# InferenceFailure that stands in their place (a caller checks which before using them).
Outcome = tuple[Any, "np.ndarray | InferenceFailure"]


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class RequestPool:
    """A fixed set of infer requests driven round-robin from the calling thread.

    No Python callbacks: OpenVINO's threads never need the GIL, so there is nothing for them
    to deadlock on when the compiled model is destroyed (AsyncInferQueue callbacks can leave
    an executor thread waiting for the GIL while the main thread joins it). Results come back
    in submission order.
    """

    def __init__(self, compiled: ov.CompiledModel, size: int = 0):
        if size <= 0:
            # twice the plugin's optimum keeps every stream busy while Python hands out work
            size = 2 * int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._free = [compiled.create_infer_request() for _ in range(size)]
        # each request's own input buffer (static shapes): inputs are copied in with one C call,
        # not through OpenVINO's Python input dispatcher (type checks and a Tensor per call)
        static = compiled.input(0).get_partial_shape().is_static
        self._inputs = {id(r): r.get_input_tensor(0).data for r in self._free} if static else None
        # and each request's output buffer (static shapes: the plugin writes into the same memory)
        out_static = static and compiled.output(0).get_partial_shape().is_static
        self._outputs = {id(r): r.get_output_tensor(0).data for r in self._free} if out_static else None
        self._inflight: deque[tuple[Any, Any]] = deque()  # (an ov.InferRequest, its tag)
        self.size = size
        self.wait_s = 0.0  # time spent waiting for requests to finish

    def _wait(self, request: Any) -> None:  # request: an ov.InferRequest
        t0 = time.perf_counter()
        request.wait()
        self.wait_s += time.perf_counter() - t0

    def _collect(self) -> Outcome:
        request, tag = self._inflight.popleft()
        out: np.ndarray | InferenceFailure
        try:
            self._wait(request)
            out = (self._outputs[id(request)] if self._outputs else request.get_output_tensor(0).data)[0].copy()
        except RuntimeError as exc:  # this input's row says so; the run goes on
            out = InferenceFailure(_first_line(exc))
        self._free.append(request)
        return tag, out

    def submit(self, batch: np.ndarray, tag: Any) -> list[Outcome]:
        """Start ``batch`` (1xHxWx3); returns results that had to be collected to make room."""
        done: list[Outcome] = []
        if not self._free:
            done.append(self._collect())
        request = self._free.pop()
        try:
            self._start(request, batch)
        except RuntimeError as exc:
            self._free.append(request)
            done.append((tag, InferenceFailure(_first_line(exc))))
            return done
        self._inflight.append((request, tag))
        return done

    def _start(self, request: Any, batch: np.ndarray) -> None:
        if self._inputs is None:
            request.start_async({0: batch})
            return
        buffer = self._inputs[id(request)]
        if batch.shape != buffer.shape or batch.dtype != buffer.dtype:
            raise RuntimeError(f"input {batch.dtype} [{','.join(map(str, batch.shape))}] does not fit the "
                               f"model's {buffer.dtype} [{','.join(map(str, buffer.shape))}]")
        np.copyto(buffer, batch)
        request.start_async()

    def drain(self) -> list[Outcome]:
        return [self._collect() for _ in range(len(self._inflight))]


def top_k_predictions(probs: np.ndarray, k: int, labels: tuple[str, ...]) -> tuple[Prediction, ...]:
    probs = np.asarray(probs, dtype=np.float32).reshape(-1)
    n = probs.shape[0]
    k = min(k, n)
    # the k best, ties broken by class id (a stable sort of every class scoring at least the
    # k-th score), so the CSV is identical across runs; no sort of all classes
    kth = np.partition(probs, n - k)[n - k]
    candidates = np.flatnonzero(probs >= kth)
    idx = candidates[np.argsort(-probs[candidates], kind="stable")][:k]
    return tuple(Prediction(i, labels[i], score) for i, score in zip(idx.tolist(), probs[idx].tolist()))
