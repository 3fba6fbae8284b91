"""Running an IR over decoded images: probabilities (optionally with mirrored views) and accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgeclass.errors import ModelError
from edgeclass.ovruntime import ov

if TYPE_CHECKING:
    from edgeclass.engine import Outcome


def predict_all(compiled: ov.CompiledModel, tensors: list[np.ndarray]) -> np.ndarray:
    """Probabilities for each ``HxWx3`` (or ``1xHxWx3``) tensor, several requests in flight.

    Every tensor needs its probabilities (calibration, the INT8 gate, training features): when
    OpenVINO fails on one, it raises :class:`ModelError` with OpenVINO's message and which input."""
    from edgeclass.engine import RequestPool

    shape = tuple(compiled.outputs[0].get_partial_shape()[1:].to_shape())
    out = np.zeros((len(tensors),) + shape, np.float32)
    pool = RequestPool(compiled)
    for i, t in enumerate(tensors):
        _store(out, pool.submit(t if t.ndim == 4 else t[None], i))
    _store(out, pool.drain())
    return out


def _store(out: np.ndarray, outcomes: list[Outcome]) -> None:
    from edgeclass.engine import InferenceFailure

    for j, probs in outcomes:
        if isinstance(probs, InferenceFailure):
            raise ModelError(f"OpenVINO failed on input {j + 1} of {len(out)}: {probs}") from probs
        out[j] = probs


def mirrored(tensor: np.ndarray) -> np.ndarray:
    """The crop flipped left-right (a view of the image the model has not been calibrated on)."""
    return np.ascontiguousarray(tensor[..., ::-1, :])


def predict_views(compiled: ov.CompiledModel, tensors: list[np.ndarray], mirror: bool) -> np.ndarray:
    """``(images, views, classes)``: each image as is, and mirrored when ``mirror``."""
    views = [tensors] + ([[mirrored(t) for t in tensors]] if mirror else [])
    return np.stack([predict_all(compiled, v) for v in views], axis=1)


def top1_accuracy(probs: np.ndarray, targets: list[int | None]) -> float:
    return float(np.mean(probs.argmax(axis=1) == np.asarray(targets)))
