"""Held-out evaluation of a trained model, and ``report.json`` (written and read here only).

Per-class precision/recall/F1, the confusion matrix (rows: true class, columns: predicted),
the most confused pairs with example images, calibration and abstain-threshold figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeclass import atomic
from edgeclass.modelfiles import records

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
SCHEMA = 1
MAX_PAIRS = 5
EXAMPLES_PER_PAIR = 4


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def confusion_matrix(targets: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (targets, predicted), 1)
    return cm


def per_class(cm: np.ndarray, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for i, label in enumerate(labels):
        tp, support, predicted = int(cm[i, i]), int(cm[i].sum()), int(cm[:, i].sum())
        p, r = _ratio(tp, predicted), _ratio(tp, support)
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None
        rows.append({"label": label, "precision": p, "recall": r, "f1": f1, "support": support, "predicted": predicted})
    return rows


def most_confused(
    cm: np.ndarray, labels: tuple[str, ...], probs: np.ndarray, targets: np.ndarray, paths: list[str]
) -> list[dict[str, Any]]:
    """Off-diagonal cells by count (ties by class order), each with the images most confidently wrong."""
    pairs = [(int(cm[t, p]), t, p) for t in range(len(labels)) for p in range(len(labels)) if t != p and cm[t, p]]
    pairs.sort(key=lambda x: (-x[0], x[1], x[2]))
    out = []
    predicted = probs.argmax(axis=1)
    for count, t, p in pairs[:MAX_PAIRS]:
        idx = np.flatnonzero((targets == t) & (predicted == p))
        idx = idx[np.argsort(-probs[idx, p], kind="stable")][:EXAMPLES_PER_PAIR]
        examples = [{"path": paths[i], "score": round(float(probs[i, p]), 4)} for i in idx]
        out.append({"true": labels[t], "predicted": labels[p], "count": count, "examples": examples})
    return out


def taken_for(report: dict[str, Any]) -> list[tuple[str, int] | None]:
    """Per class of a report's held-out confusion matrix: the label its images were most often
    taken for and how many, or None when none was wrong (:func:`edgeclass.modelfiles.records.taken_for`)."""
    return records.taken_for(report["labels"], report["heldout"]["confusion"])


def threshold_figures(probs: np.ndarray, targets: np.ndarray, threshold: float) -> dict[str, Any]:
    """What abstaining below ``threshold`` does on the held-out images."""
    kept = probs.max(axis=1) >= threshold
    correct = probs.argmax(axis=1) == targets
    return {
        "value": threshold,
        "kept_share": float(kept.mean()) if len(kept) else None,
        "accuracy_kept": float(correct[kept].mean()) if kept.any() else None,
        "unknown": int((~kept).sum()),
        "correct_kept_share": float(kept[correct].mean()) if correct.any() else None,
    }


def evaluate(
    probs: np.ndarray, targets: np.ndarray, paths: list[str], labels: tuple[str, ...], threshold: float
) -> dict[str, Any]:
    """The held-out section of the report for probabilities ``probs`` (N x K) of ``paths``."""
    predicted = probs.argmax(axis=1)
    cm = confusion_matrix(targets, predicted, len(labels))
    return {
        "images": int(len(targets)),
        "accuracy": float((predicted == targets).mean()) if len(targets) else None,
        "per_class": per_class(cm, labels),
        "confusion": cm.tolist(),
        "most_confused": most_confused(cm, labels, probs, targets, paths),
        "threshold": threshold_figures(probs, targets, threshold),
    }


def write_report(model_dir: Path, report: dict[str, Any]) -> Path:
    path = Path(model_dir) / REPORT_JSON
    atomic.write_text(path, json.dumps({"schema": SCHEMA} | report, indent=2, sort_keys=True) + "\n")
    return path


def read_report(model_dir: Path) -> dict[str, Any] | None:
    """The training report of a model folder, or None when it has none (or an unreadable one)."""
    path = Path(model_dir) / REPORT_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None
