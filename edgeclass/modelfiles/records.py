"""The records a model folder carries about how its INT8 IR and its head were made, as typed data.

* :class:`CalibrationRecord`: how ``edgeclass quantize`` made the INT8 IR (the IR's metadata,
  ``calibration``; the CPU part is :class:`~edgeclass.modelfiles.provenance.Int8Provenance`);
* :class:`GateRecord`: what the INT8 gate measured and decided (``accuracy``), and
  :class:`LegacyGateRecord`, the top-1 agreement record edgeclass 0.1 wrote there instead
  (:func:`gate_record` reads either);
* :class:`TrainingReport`: the held-out figures of ``edgeclass train`` (``report.json``, written
  by :mod:`edgeclass.model.train.evaluate_report`).

Each is read with ``from_record(dict)``, which takes the layouts earlier releases wrote: a key
they did not write reads as ``None`` (or empty), never as an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeclass.modelfiles.provenance import Int8Provenance

Record = dict[str, Any]  # a record as stored (JSON)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Interval:
    """An estimate (a fraction: 0.01 = 1 point) and its 95 % bootstrap interval."""

    estimate: float
    low: float
    high: float

    @classmethod
    def from_record(cls, d: Record) -> Interval:
        return cls(float(d["estimate"]), float(d["low"]), float(d["high"]))

    def as_points(self) -> str:
        return f"{self.estimate * 100:.2f} pt (95% CI {self.low * 100:.2f} to {self.high * 100:.2f})"


@dataclass(frozen=True)
class GateRecord:
    """The INT8 gate's record (:class:`edgeclass.model.gate.GateResult` as stored)."""

    images: int
    source: str
    criterion: str  # "accuracy drop" (labelled images) or "expected accuracy drop"
    limit: float
    verdict: str  # "passed", "inconclusive" or "refused"
    drop: Interval  # the criterion's estimate
    expected_drop: Interval | None
    top1_agreement: float
    mean_abs_prob_diff: float
    fp32_top1: float | None = None
    int8_top1: float | None = None
    notes: tuple[str, ...] = ()
    views: int = 1

    @classmethod
    def from_record(cls, d: Record) -> GateRecord:
        expected = d.get("expected_drop")
        return cls(
            images=int(d["images"]), source=str(d["source"]), criterion=str(d["criterion"]),
            limit=float(d["limit"]), verdict=str(d["verdict"]), drop=Interval.from_record(d["drop"]),
            expected_drop=Interval.from_record(expected) if expected is not None else None,
            top1_agreement=float(d["top1_agreement"]), mean_abs_prob_diff=float(d["mean_abs_prob_diff"]),
            fp32_top1=_float(d.get("fp32_top1")), int8_top1=_float(d.get("int8_top1")),
            notes=tuple(d.get("notes") or ()), views=int(d.get("views") or 1),
        )

    @property
    def top1_accuracies(self) -> tuple[float, float] | None:
        """(FP32, INT8) top-1 accuracy on labelled images; None without labels."""
        if self.fp32_top1 is None or self.int8_top1 is None:
            return None
        return self.fp32_top1, self.int8_top1


@dataclass(frozen=True)
class LegacyGateRecord:
    """The record edgeclass 0.1 stored instead: top-1 agreement, and a pass/fail on a drop."""

    images: int
    source: str
    top1_agreement: float
    mean_abs_prob_diff: float
    passed: bool | None = None  # None: not recorded
    drop: float | None = None
    drop_kind: str | None = None  # "top-1 accuracy drop" or "top-1 disagreement"
    max_drop: float | None = None
    fp32_top1: float | None = None
    int8_top1: float | None = None

    @classmethod
    def from_record(cls, d: Record) -> LegacyGateRecord:
        passed = d.get("passed")
        return cls(
            images=int(d["images"]), source=str(d["source"]), top1_agreement=float(d["top1_agreement"]),
            mean_abs_prob_diff=float(d["mean_abs_prob_diff"]), passed=None if passed is None else bool(passed),
            drop=_float(d.get("drop")), drop_kind=d.get("drop_kind"), max_drop=_float(d.get("max_drop")),
            fp32_top1=_float(d.get("fp32_top1")), int8_top1=_float(d.get("int8_top1")),
        )


def gate_record(d: Record | None) -> GateRecord | LegacyGateRecord | None:
    """An INT8 IR's ``accuracy`` record as this release or edgeclass 0.1 wrote it (None: none)."""
    if not d:
        return None
    return GateRecord.from_record(d) if "criterion" in d else LegacyGateRecord.from_record(d)


@dataclass(frozen=True)
class CalibrationRecord:
    """How the INT8 IR was made: the calibration images, NNCF's options and method, the CPUs."""

    images_used: int
    images_available: int
    images_failed: int
    files_sha256: str
    nncf: str
    options: Record  # QuantizeOptions.as_record(), shown as stored
    folder: str | None = None
    openvino: str | None = None
    method: str | None = None  # None: edgeclass 0.1 (no method recorded)
    reverted_to_float: tuple[str, ...] = ()
    attempts: tuple[Record, ...] = ()
    cpu: Int8Provenance = field(default_factory=lambda: Int8Provenance.from_calibration(None))

    @classmethod
    def from_record(cls, d: Record) -> CalibrationRecord:
        return cls(
            images_used=int(d["images_used"]), images_available=int(d["images_available"]),
            images_failed=int(d["images_failed"]), files_sha256=str(d["files_sha256"]), nncf=str(d["nncf"]),
            options=dict(d.get("options") or {}), folder=d.get("folder"), openvino=d.get("openvino"),
            method=d.get("method") or None, reverted_to_float=tuple(d.get("reverted_to_float") or ()),
            attempts=tuple(d.get("attempts") or ()), cpu=Int8Provenance.from_calibration(d),
        )


@dataclass(frozen=True)
class ClassFigures:
    """One class's held-out precision and recall (None: no image predicted as, or labelled, it)."""

    label: str
    precision: float | None
    recall: float | None
    support: int  # held-out images of this class

    @classmethod
    def from_record(cls, d: Record) -> ClassFigures:
        return cls(str(d["label"]), _float(d.get("precision")), _float(d.get("recall")), int(d.get("support") or 0))


@dataclass(frozen=True)
class ThresholdFigures:
    """What the default ``--min-score`` (the abstain threshold) does on the held-out images."""

    value: float
    unknown: int  # held-out images below it ("unknown")
    accuracy_kept: float | None  # accuracy of the others
    kept_share: float | None = None

    @classmethod
    def from_record(cls, d: Record) -> ThresholdFigures:
        return cls(float(d["value"]), int(d.get("unknown") or 0), _float(d.get("accuracy_kept")),
                   _float(d.get("kept_share")))


@dataclass(frozen=True)
class HeldOut:
    """The held-out evaluation: accuracy, per class, the confusion matrix (rows: true class)."""

    images: int
    accuracy: float | None
    per_class: tuple[ClassFigures, ...]
    confusion: tuple[tuple[int, ...], ...]
    threshold: ThresholdFigures

    @classmethod
    def from_record(cls, d: Record) -> HeldOut:
        return cls(int(d.get("images") or 0), _float(d.get("accuracy")),
                   tuple(ClassFigures.from_record(r) for r in d.get("per_class") or ()),
                   tuple(tuple(int(n) for n in row) for row in d.get("confusion") or ()),
                   ThresholdFigures.from_record(d["threshold"]))


@dataclass(frozen=True)
class TrainingReport:
    """``edgeclass train``'s report (``report.json``): the parts a model folder is described by."""

    mode: str  # "probe" or "finetune"
    dataset: str
    labels: tuple[str, ...]
    evaluated_precision: str  # the IR the held-out figures are of ("int8" when it passed the gate)
    heldout: HeldOut
    temperature: float
    skipped: int  # training and held-out images skipped (unreadable)

    @classmethod
    def from_record(cls, d: Record) -> TrainingReport:
        return cls(
            mode=str(d["mode"]), dataset=str(d["dataset"]), labels=tuple(d.get("labels") or ()),
            evaluated_precision=str(d["evaluated_precision"]), heldout=HeldOut.from_record(d["heldout"]),
            temperature=float(d["calibration"]["temperature"]), skipped=len(d.get("skipped") or ()),
        )

    def taken_for(self) -> list[tuple[str, int] | None]:
        return taken_for(self.labels, self.heldout.confusion)


def taken_for(labels: Sequence[str], confusion: Sequence[Sequence[int]]) -> list[tuple[str, int] | None]:
    """Per class of a held-out confusion matrix (rows: true class): the label its images were
    most often taken for and how many (the larger label index wins a tie), or None when none was
    wrong."""
    out: list[tuple[str, int] | None] = []
    for i, row in enumerate(confusion):
        wrong = [(n, labels[j]) for j, n in enumerate(row) if j != i and n]
        out.append((max(wrong)[1], max(wrong)[0]) if wrong else None)
    return out
