"""Comparing an INT8 IR with its FP32 origin on held-out images: the numbers behind the gate."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import openvino as ov

from edgeclass.model.calibration import ImageSet


@dataclass(frozen=True)
class Agreement:
    images: int
    source: str  # "validation folder", "held-out calibration images" or "calibration images"
    top1_agreement: float  # fraction of images where INT8 top-1 == FP32 top-1
    mean_abs_prob_diff: float  # mean over images and classes of |p_int8 - p_fp32|
    fp32_top1: float | None = None  # accuracy against folder labels, when labelled
    int8_top1: float | None = None

    @property
    def drop(self) -> float:
        """Points lost (as a fraction): accuracy drop with labels, else disagreement."""
        if self.fp32_top1 is not None and self.int8_top1 is not None:
            return self.fp32_top1 - self.int8_top1
        return 1.0 - self.top1_agreement

    @property
    def drop_kind(self) -> str:
        return "top-1 accuracy drop" if self.fp32_top1 is not None else "top-1 disagreement"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["drop"] = self.drop
        d["drop_kind"] = self.drop_kind
        return d


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


def top1_accuracy(probs: np.ndarray, targets: list[int | None]) -> float:
    return float(np.mean(probs.argmax(axis=1) == np.asarray(targets)))


def compare(fp32_probs: np.ndarray, int8_probs: np.ndarray, images: ImageSet, source: str) -> Agreement:
    agreement = float(np.mean(fp32_probs.argmax(1) == int8_probs.argmax(1)))
    mad = float(np.mean(np.abs(fp32_probs - int8_probs)))
    fp32_acc = int8_acc = None
    if images.labelled:
        fp32_acc = top1_accuracy(fp32_probs, images.targets)
        int8_acc = top1_accuracy(int8_probs, images.targets)
    return Agreement(len(images), source, agreement, mad, fp32_acc, int8_acc)
