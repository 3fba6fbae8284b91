"""What the comparison found, and its verdict, from the paired answers.

* **agreement**: the share of images both models give the same label (by name), with a 95 %
  bootstrap interval over images.
* **flips**: old label -> new label counts over every compared image (the diagonal is
  agreement), the flipped images themselves (most confident first: by the new model's score),
  and per label how often each model answers it.
* **accuracy** (labelled images only): both top-1 accuracies and the paired difference
  NEW - OLD with its 95 % interval, the INT8 gate's statistics (:mod:`edgeclass.model.gate`):
  per image ``[old right] - [new right]``, bootstrapped over images.

The verdict: ``refused`` when the whole interval of OLD - NEW lies above ``max_drop`` (the
evidence says NEW is worse by more than the limit); ``kept`` otherwise, with a note when the
evidence is thin (the interval straddles the limit, or few labelled images); ``unchecked``
without labelled images (agreement and flips only: nothing to refuse on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeclass.compare.pairs import Failed, Pair
from edgeclass.model.gate import FEW_IMAGES, INCONCLUSIVE, REFUSED, Interval, bootstrap_mean, verdict_for

KEPT, UNCHECKED = "kept", "unchecked"


@dataclass(frozen=True)
class ModelSide:
    """One of the two models, as compared."""

    model_id: str
    path: str
    model_name: str
    precision: str
    labels: tuple[str, ...]
    preprocess: dict[str, Any]


@dataclass(frozen=True)
class Accuracy:
    images: int  # labelled images compared
    old: float
    new: float
    difference: Interval  # NEW - OLD, 95 % interval
    drop: Interval  # OLD - NEW (the gate's criterion)
    max_drop: float
    gate: str  # passed / inconclusive / refused (gate.verdict_for)


@dataclass(frozen=True)
class Flip:
    path: str
    truth: str | None
    old_label: str
    old_score: float
    new_label: str
    new_score: float


@dataclass
class Comparison:
    old: ModelSide
    new: ModelSide
    images: int
    agreement: Interval
    flip_labels: tuple[tuple[str, ...], tuple[str, ...]]  # rows (old labels), columns (new labels)
    flip_counts: list[list[int]]
    per_label: list[dict[str, Any]]
    flips: list[Flip]
    accuracy: Accuracy | None
    verdict: str
    same_preprocessing: bool
    failed: list[Failed] = field(default_factory=list)
    unknown_truths: list[str] = field(default_factory=list)  # label folders neither model has
    notes: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.verdict == REFUSED

    @property
    def labels_only_old(self) -> list[str]:
        return [label for label in self.old.labels if label not in set(self.new.labels)]

    @property
    def labels_only_new(self) -> list[str]:
        return [label for label in self.new.labels if label not in set(self.old.labels)]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["flips"] = [asdict(f) for f in self.flips]
        d["failed"] = [asdict(f) for f in self.failed]
        d["flip_matrix"] = {"old_labels": list(self.flip_labels[0]), "new_labels": list(self.flip_labels[1]),
                            "counts": self.flip_counts}
        del d["flip_labels"], d["flip_counts"]
        d["flipped"] = len(self.flips)
        d["labels_only_old"] = self.labels_only_old
        d["labels_only_new"] = self.labels_only_new
        d["refused"] = self.refused
        return d

    def summary(self) -> str:
        """What the verdict rests on, in one line (terminal, report, promote's refusal message)."""
        if self.accuracy is None:
            return (f"no labelled images; agreement {_pct(self.agreement.estimate)} "
                    f"on {self.images} images")
        a = self.accuracy
        return (f"accuracy {_pct(a.old)} -> {_pct(a.new)} on {a.images} labelled images, "
                f"NEW - OLD {a.difference.as_points()}, limit -{a.max_drop * 100:.2f} pt")


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def flip_matrix(pairs: list[Pair], old: ModelSide,
                new: ModelSide) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], list[list[int]]]:
    """Old label x new label counts; rows and columns list each model's labels in its own order,
    then any other answer (``unknown``)."""
    rows = list(old.labels) + sorted({p.old.label for p in pairs} - set(old.labels))
    cols = list(new.labels) + sorted({p.new.label for p in pairs} - set(new.labels))
    r, c = {label: i for i, label in enumerate(rows)}, {label: i for i, label in enumerate(cols)}
    counts = [[0] * len(cols) for _ in rows]
    for p in pairs:
        counts[r[p.old.label]][c[p.new.label]] += 1
    return (tuple(rows), tuple(cols)), counts


def per_label(pairs: list[Pair], names: list[str]) -> list[dict[str, Any]]:
    """Per label name: how often each model answers it; with labels, its images and how many
    of them each model gets right."""
    out: dict[str, dict[str, Any]] = {
        n: {"label": n, "old_answers": 0, "new_answers": 0, "images": 0, "old_right": 0, "new_right": 0}
        for n in names}
    for p in pairs:
        out[p.old.label]["old_answers"] += 1
        out[p.new.label]["new_answers"] += 1
        if p.item.truth is not None:
            row = out.setdefault(p.item.truth, {"label": p.item.truth, "old_answers": 0, "new_answers": 0,
                                                "images": 0, "old_right": 0, "new_right": 0})
            row["images"] += 1
            row["old_right"] += int(bool(p.old.right))
            row["new_right"] += int(bool(p.new.right))
    for row in out.values():
        row["change"] = row["new_answers"] - row["old_answers"]
        n = row["images"]
        row["old_recall"] = row["old_right"] / n if n else None
        row["new_recall"] = row["new_right"] / n if n else None
    return list(out.values())


def accuracy(pairs: list[Pair], max_drop: float) -> Accuracy | None:
    labelled = [p for p in pairs if p.item.truth is not None]
    if not labelled:
        return None
    old_right = np.array([bool(p.old.right) for p in labelled], dtype=np.float64)
    new_right = np.array([bool(p.new.right) for p in labelled], dtype=np.float64)
    drop = bootstrap_mean(old_right - new_right)
    difference = Interval(-drop.estimate, -drop.high, -drop.low)
    return Accuracy(len(labelled), float(old_right.mean()), float(new_right.mean()), difference, drop,
                    max_drop, verdict_for(drop, max_drop))


def verdict_and_notes(acc: Accuracy | None, images: int) -> tuple[str, list[str]]:
    if acc is None:
        return UNCHECKED, ["no labelled images (--validation DIR with sub-folders named by label): "
                           "agreement and flips only, no verdict on accuracy"]
    notes = []
    if acc.gate == REFUSED:
        return REFUSED, [f"NEW is worse than OLD by more than {acc.max_drop * 100:.2f} pt: "
                         f"OLD - NEW {acc.drop.as_points()}"]
    if acc.gate == INCONCLUSIVE:
        notes.append(f"thin evidence: the interval of OLD - NEW ({acc.drop.as_points()}) straddles the limit "
                     f"{acc.max_drop * 100:.2f} pt; NEW is kept because the evidence does not show it is worse")
    if acc.images < FEW_IMAGES:
        notes.append(f"thin evidence: only {acc.images} labelled images (add images, ideally {FEW_IMAGES}+)")
    return KEPT, notes


def summarise(pairs: list[Pair], failed: list[Failed], old: ModelSide, new: ModelSide, max_drop: float,
              same_preprocessing: bool, unknown_truths: list[str]) -> Comparison:
    agree = np.array([not p.flipped for p in pairs], dtype=np.float64)
    labels, counts = flip_matrix(pairs, old, new)
    names = list(dict.fromkeys(labels[0] + labels[1]))
    flips = sorted(
        (Flip(p.item.path, p.item.truth, p.old.label, p.old.score, p.new.label, p.new.score) for p in pairs if p.flipped),
        key=lambda f: (-f.new_score, -f.old_score, f.path),
    )
    acc = accuracy(pairs, max_drop)
    verdict, notes = verdict_and_notes(acc, len(pairs))
    if unknown_truths:
        notes.append(f"label folders neither model knows (counted wrong for both): {', '.join(unknown_truths)}")
    if failed:
        notes.append(f"{len(failed)} image{'s' if len(failed) != 1 else ''} could not be compared (listed in the report)")
    c = Comparison(old, new, len(pairs), bootstrap_mean(agree), labels, counts, per_label(pairs, names), flips,
                   acc, verdict, same_preprocessing, failed, unknown_truths, notes)
    for name, only in (("OLD", c.labels_only_old), ("NEW", c.labels_only_new)):
        if only:
            notes.append(f"labels only in {name} (compared by name, never the same answer): {', '.join(only)}")
    return c
