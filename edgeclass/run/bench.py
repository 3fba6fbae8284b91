"""``edgeclass bench``: inference throughput and latency per precision, and end to end on a folder."""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgeclass.engine import Classifier, EngineOptions, cpu_capabilities
from edgeclass.errors import UsageError
from edgeclass.modelfiles.folder import ModelDir
from edgeclass.ovruntime import ov

_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


@dataclass
class PrecisionResult:
    precision: str
    inference_precision: str
    throughput: float  # images/s with the THROUGHPUT hint
    latency_ms: dict[str, float]  # p50/p90/p99 with the LATENCY hint, one request
    streams: int
    requests: int
    threads: int


@dataclass
class BenchReport:
    model: str
    model_dir: str
    cpu: dict
    results: list[PrecisionResult] = field(default_factory=list)
    end_to_end: dict | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["results"] = [asdict(r) for r in self.results]
        return d


def cpu_info(core: ov.Core) -> dict:
    flags: set[str] = set()
    name = core.get_property("CPU", "FULL_DEVICE_NAME")
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
        flags = set(m.group(1).split()) if m else set()
    except OSError:
        pass
    import os

    return {
        "name": str(name),
        "cores": len(os.sched_getaffinity(0)),
        "openvino_capabilities": cpu_capabilities(core),
        "flags": {f: f in flags for f in _CPU_FLAGS},
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"}),
        "bf16": bool(flags & {"avx512_bf16", "amx_bf16"}),
        "amx": "amx_tile" in flags,
        "openvino": ov.get_version(),
    }


def available_precisions(model_dir: ModelDir, core: ov.Core) -> list[str]:
    out = ["fp32"]
    if "BF16" in cpu_capabilities(core):
        out.append("bf16")
    if model_dir.has_int8:
        out.append("int8")
    return out


def _throughput(compiled: ov.CompiledModel, sample: np.ndarray, seconds: float) -> float:
    from edgeclass.engine import RequestPool

    pool = RequestPool(compiled)
    for _ in range(pool.size):  # warm-up
        pool.submit(sample, None)
    pool.drain()
    done = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        done += len(pool.submit(sample, None))
    done += len(pool.drain())
    return done / (time.perf_counter() - t0)


def _latency(compiled: ov.CompiledModel, sample: np.ndarray, seconds: float) -> dict[str, float]:
    request = compiled.create_infer_request()
    request.infer({0: sample})
    times: list[float] = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds or len(times) < 10:
        t = time.perf_counter()
        request.infer({0: sample})
        times.append((time.perf_counter() - t) * 1000)
    p = np.percentile(times, [50, 90, 99])
    return {"p50": round(float(p[0]), 3), "p90": round(float(p[1]), 3), "p99": round(float(p[2]), 3)}


def bench_precision(model_dir: ModelDir, precision: str, seconds: float, threads: int | None, core: ov.Core) -> PrecisionResult:
    tput = Classifier(model_dir, EngineOptions(precision=precision, threads=threads), core)
    h, w = tput.metadata.preprocess.input_size
    sample = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    fps = _throughput(tput.compiled, sample, seconds)
    streams = int(tput.compiled.get_property("NUM_STREAMS"))
    requests = int(tput.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    nthreads = int(tput.compiled.get_property("INFERENCE_NUM_THREADS"))
    inf_prec = tput.inference_precision
    tput.close()
    lat = Classifier(model_dir, EngineOptions(precision=precision, threads=threads, performance_hint="LATENCY"), core)
    latency = _latency(lat.compiled, sample, max(1.0, seconds / 2))
    lat.close()
    return PrecisionResult(precision, inf_prec, round(fps, 2), latency, streams, requests, nthreads)


def bench(model_dir: ModelDir, precisions: list[str] | None = None, seconds: float = 5.0, threads: int | None = None,
          folder: Path | None = None, progress=lambda message: None) -> BenchReport:
    core = ov.Core()
    avail = available_precisions(model_dir, core)
    wanted = precisions or avail
    for p in wanted:
        if p not in avail:
            raise UsageError(f"precision {p} is not available here (available: {', '.join(avail)})")
    meta_model = Classifier(model_dir, EngineOptions(precision="fp32"), core)
    report = BenchReport(meta_model.metadata.model_name, str(model_dir.path), cpu_info(core))
    meta_model.close()
    for p in wanted:
        progress(f"measuring {p}")
        report.results.append(bench_precision(model_dir, p, seconds, threads, core))
    if folder is not None:
        progress(f"end to end on {folder}")
        report.end_to_end = end_to_end(model_dir, folder, wanted[-1], threads, core)
    return report


def end_to_end(model_dir: ModelDir, folder: Path, precision: str, threads: int | None, core: ov.Core) -> dict:
    """The real ``run`` pipeline over a folder (decode + preprocess + inference), rows discarded."""
    import os

    from edgeclass.media import resample_native
    from edgeclass.media.decode import DecodeOptions
    from edgeclass.run.context import RunOptions
    from edgeclass.run.runner import run
    from edgeclass.run.stopping import StopState

    with Classifier(model_dir, EngineOptions(precision=precision, threads=threads), core) as clf:
        workers = threads or len(os.sched_getaffinity(0))
        with open(os.devnull, "w") as devnull:
            summary = run(clf, RunOptions(inputs=(str(folder),), workers=workers, decode=DecodeOptions()),
                          StopState(), stdout=devnull)
        usage = clf.usage
    return {"precision": precision, "images": summary.counts.total, "ok": summary.counts.ok,
            "seconds": round(summary.duration_s, 3), "images_per_s": round(summary.images_per_s, 2),
            "decode_workers": workers,
            # "compiled": edgeclass/media/_resample.c was built at install; "numpy": the fallback, 4-5x the CPU
            "resampler": "compiled" if resample_native.available() else "numpy",
            # share of the wall time the inference queue waited for decoded input (0: never starved)
            "input_wait_share": round(usage.input_wait_share, 3),
            "inference_wait_share": round(usage.inference_wait_share, 3)}
