"""Running an IR over image files: the same decode/preprocess path as ``run``, in chunks.

Used for backbone features (probe), held-out probabilities (report) and finetune inputs.
Files that do not decode are returned as (path, reason), never dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from edgeclass.media.decode import DecodeOptions, ImageReadError, load_image_tensor
from edgeclass.media.preprocess import PreprocessConfig
from edgeclass.model.evaluate import predict_all
from edgeclass.ovruntime import ov

CHUNK = 128  # images decoded at a time: memory stays flat for any dataset size


@dataclass
class Outputs:
    paths: list[str]
    values: np.ndarray  # N x D (features or probabilities), rows in ``paths`` order
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, "status: message")


def compile_f32(model: ov.Model | str, core: ov.Core | None = None) -> ov.CompiledModel:
    """Compile for the CPU in real f32 with a batch of 1 per request (as ``run`` infers)."""
    from edgeclass.engine import compile_for_cpu

    core = core or ov.Core()
    model = core.read_model(model) if isinstance(model, str) else model.clone()
    return compile_for_cpu(core, model, "fp32")


def _load(path: str, pp: PreprocessConfig) -> np.ndarray | tuple[str, str]:
    try:
        return load_image_tensor(path, pp, DecodeOptions())
    except ImageReadError as exc:
        return (path, f"{exc.status.value}: {exc.message}")


def decode_all(paths: list[str], pp: PreprocessConfig, workers: int | None = None) -> tuple[list[str], list[np.ndarray], list[tuple[str, str]]]:
    """Decode ``paths`` in parallel threads; returns (ok paths, tensors, failed)."""
    workers = workers or len(os.sched_getaffinity(0))
    ok, tensors, failed = [], [], []
    with ThreadPoolExecutor(workers, thread_name_prefix="edgeclass-train-decode") as pool:
        for path, out in zip(paths, pool.map(lambda p: _load(p, pp), paths)):
            if isinstance(out, tuple):
                failed.append(out)
            else:
                ok.append(path)
                tensors.append(out)
    return ok, tensors, failed


def run_over(
    compiled: ov.CompiledModel,
    paths: list[str],
    pp: PreprocessConfig,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Outputs:
    """The model's first output for every decodable file in ``paths``."""
    ok_paths: list[str] = []
    chunks: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    for start in range(0, len(paths), CHUNK):
        ok, tensors, bad = decode_all(paths[start : start + CHUNK], pp)
        failed += bad
        if tensors:
            ok_paths += ok
            chunks.append(predict_all(compiled, tensors))
        progress(min(start + CHUNK, len(paths)), len(paths))
    width = compiled.outputs[0].get_partial_shape()[1].get_length()
    values = np.concatenate(chunks) if chunks else np.zeros((0, width), np.float32)
    return Outputs(ok_paths, values, failed)
