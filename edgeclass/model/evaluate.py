"""Running an IR over decoded images: probabilities (optionally with mirrored views) and accuracy."""

from __future__ import annotations

import numpy as np

from edgeclass.ovruntime import ov


def predict_all(compiled: ov.CompiledModel, tensors: list[np.ndarray]) -> np.ndarray:
    """Probabilities for each ``HxWx3`` (or ``1xHxWx3``) tensor, several requests in flight."""
    from edgeclass.engine import RequestPool

    shape = tuple(compiled.outputs[0].get_partial_shape()[1:].to_shape())
    out = np.zeros((len(tensors),) + shape, np.float32)
    pool = RequestPool(compiled)
    for i, t in enumerate(tensors):
        for j, probs in pool.submit(t if t.ndim == 4 else t[None], i):
            out[j] = probs
    for j, probs in pool.drain():
        out[j] = probs
    return out


def mirrored(tensor: np.ndarray) -> np.ndarray:
    """The crop flipped left-right (a view of the image the model has not been calibrated on)."""
    return np.ascontiguousarray(tensor[..., ::-1, :])


def predict_views(compiled: ov.CompiledModel, tensors: list[np.ndarray], mirror: bool) -> np.ndarray:
    """``(images, views, classes)``: each image as is, and mirrored when ``mirror``."""
    views = [tensors] + ([[mirrored(t) for t in tensors]] if mirror else [])
    return np.stack([predict_all(compiled, v) for v in views], axis=1)


def top1_accuracy(probs: np.ndarray, targets: list[int | None]) -> float:
    return float(np.mean(probs.argmax(axis=1) == np.asarray(targets)))
