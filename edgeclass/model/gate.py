"""The INT8 gate: how much accuracy INT8 loses against its FP32 origin, with an interval, and
the verdict that follows.

Two measures, each named for what it is:

* **accuracy drop** (labelled images): per image ``c_i = [fp32 right] - [int8 right]``; the
  drop is the mean of ``c_i``. Limit: ``--max-drop``.
* **expected accuracy drop** (no labels): FP32's probabilities stand in for the labels. If
  FP32's confidence is calibrated, the chance that FP32's answer is right is ``p[a]`` and the
  chance INT8's answer is right is ``p[b]`` (``a``, ``b`` the FP32 and INT8 top-1), so
  ``d_i = p[a] - p[b]``. A flip between two classes FP32 itself finds equally likely costs
  nothing; a flip away from a confident answer costs its confidence. Limit:
  ``--max-expected-drop``. Chosen over top-1 disagreement, margin-weighted flips and JS
  divergence by measurement (``benchmarks/int8_gate.py``).

Every estimate carries a 95 % percentile-bootstrap interval over images (deterministic seed).
The verdict is ``refused`` only when the interval's lower bound exceeds the limit (the evidence
says INT8 is worse), ``passed`` when its upper bound is within the limit, and ``inconclusive``
(INT8 kept, with a warning) in between. Thin evidence is said in words and stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from edgeclass.modelfiles.records import Interval as Interval  # the stored form (compare uses it too)

CONFIDENCE = 0.95
RESAMPLES = 4000
FEW_IMAGES = 100  # below this many checked images the check is called weak

PASSED, INCONCLUSIVE, REFUSED = "passed", "inconclusive", "refused"
ACCURACY_DROP = "accuracy drop"
EXPECTED_DROP = "expected accuracy drop"


def bootstrap_mean(values: np.ndarray, seed: int = 0) -> Interval:
    """Mean of per-image ``values`` with a percentile-bootstrap interval over images."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return Interval(0.0, 0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty(RESAMPLES)
    for start in range(0, RESAMPLES, 500):  # bounded memory for large n
        stop = min(start + 500, RESAMPLES)
        means[start:stop] = values[rng.integers(0, n, (stop - start, n))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(values.mean()), float(low), float(high))


def soft_drop_per_image(fp32: np.ndarray, int8: np.ndarray) -> np.ndarray:
    """``p_fp32[argmax fp32] - p_fp32[argmax int8]`` for each image (>= 0)."""
    rows = np.arange(len(fp32))
    return fp32[rows, fp32.argmax(1)] - fp32[rows, int8.argmax(1)]


def accuracy_diff_per_image(fp32: np.ndarray, int8: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``[fp32 right] - [int8 right]`` for each image (-1, 0 or 1)."""
    return (fp32.argmax(1) == targets).astype(np.float64) - (int8.argmax(1) == targets).astype(np.float64)


def verdict_for(interval: Interval, limit: float) -> str:
    if interval.low > limit + 1e-12:
        return REFUSED
    if interval.high <= limit + 1e-12:
        return PASSED
    return INCONCLUSIVE


def _per_image(views: np.ndarray) -> np.ndarray:
    """Average over views (an image and its mirror): the bootstrap resamples images, not views."""
    return views.mean(axis=1) if views.ndim == 2 else views


@dataclass(frozen=True)
class GateResult:
    """What the gate measured and decided; stored in the INT8 IR's rt_info (``accuracy``)."""

    images: int
    views: int  # views per image (2: the image and its mirror)
    source: str
    criterion: str  # ACCURACY_DROP (labelled) or EXPECTED_DROP
    limit: float
    verdict: str
    drop: Interval  # the criterion's estimate
    expected_drop: Interval
    top1_agreement: float
    mean_abs_prob_diff: float
    fp32_top1: float | None = None
    int8_top1: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def refused(self) -> bool:
        return self.verdict == REFUSED

    def to_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["passed"] = not self.refused  # kept as the default INT8
        return d

    def summary(self) -> str:
        return f"{self.criterion} {self.drop.as_points()} on {self.images} {self.source}"


def check(
    fp32: np.ndarray,
    int8: np.ndarray,
    source: str,
    max_drop: float,
    max_expected_drop: float,
    targets: list[int] | None = None,
) -> GateResult:
    """Compare probabilities of shape ``(images, views, classes)`` (or ``(images, classes)``)."""
    if fp32.ndim == 2:
        fp32, int8 = fp32[:, None], int8[:, None]
    n, views, classes = fp32.shape
    flat_f, flat_i = fp32.reshape(-1, classes), int8.reshape(-1, classes)
    expected = bootstrap_mean(_per_image(soft_drop_per_image(flat_f, flat_i).reshape(n, views)))
    agreement = float(np.mean(flat_f.argmax(1) == flat_i.argmax(1)))
    mad = float(np.mean(np.abs(flat_f - flat_i)))
    fp32_acc = int8_acc = None
    if targets is not None:
        y = np.repeat(np.asarray(targets), views)
        drop = bootstrap_mean(_per_image(accuracy_diff_per_image(flat_f, flat_i, y).reshape(n, views)))
        criterion, limit = ACCURACY_DROP, max_drop
        fp32_acc = float(np.mean(flat_f.argmax(1) == y))
        int8_acc = float(np.mean(flat_i.argmax(1) == y))
    else:
        drop, criterion, limit = expected, EXPECTED_DROP, max_expected_drop
    verdict = verdict_for(drop, limit)
    return GateResult(n, views, source, criterion, limit, verdict, drop, expected, agreement, mad,
                      fp32_acc, int8_acc, tuple(_notes(n, verdict, criterion, drop, limit)))


def _notes(n: int, verdict: str, criterion: str, drop: Interval, limit: float) -> list[str]:
    notes = []
    if n < FEW_IMAGES:
        notes.append(f"only {n} images checked: the INT8 check is weak (add images, ideally {FEW_IMAGES}+)")
    if verdict == INCONCLUSIVE:
        notes.append(
            f"the check cannot confirm INT8 is within {limit * 100:.2f} pt: {criterion} {drop.as_points()}; "
            "INT8 is kept because the evidence does not show it is worse"
        )
    return notes
