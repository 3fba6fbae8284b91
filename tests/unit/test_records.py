"""The records a model folder carries, read as typed data (``modelfiles/records.py``): this
release's layouts, edgeclass 0.1's, and records with keys an earlier release did not write."""

from __future__ import annotations

import io

import numpy as np

from edgeclass.model import gate
from edgeclass.modelfiles.records import (CalibrationRecord, GateRecord, Interval, LegacyGateRecord,
                                          TrainingReport, gate_record)

V01_GATE = {"images": 60, "source": "held-out calibration images", "top1_agreement": 0.9833,
            "mean_abs_prob_diff": 0.004, "fp32_top1": None, "int8_top1": None, "drop": 0.0167,
            "drop_kind": "top-1 disagreement", "max_drop": 0.01, "passed": False}
V01_CALIBRATION = {"images_used": 40, "images_available": 160, "images_failed": 1, "files_sha256": "ab" * 32,
                   "folder": "calibration", "nncf": "2.9.0", "openvino": "2024.1", "options": {"preset": "mixed"},
                   "accuracy_control": False, "reverted_to_float": []}


def _table_text(table) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(table)
    return console.file.getvalue()


def test_the_gate_record_is_the_gate_result_as_stored():
    probs = np.eye(4)[np.arange(40) % 4] * 0.9 + 0.025
    result = gate.check(probs, probs, "labelled validation images", 0.01, 0.01, targets=list(np.arange(40) % 4))
    record = gate_record(result.to_dict())
    assert isinstance(record, GateRecord)
    assert (record.images, record.views, record.criterion, record.verdict, record.notes) == (
        40, 1, gate.ACCURACY_DROP, gate.PASSED, result.notes)
    assert record.drop == result.drop and record.expected_drop == result.expected_drop
    assert record.top1_accuracies == (1.0, 1.0)
    assert gate.Interval is Interval  # one stored form of an estimate and its interval


def test_edgeclass_01s_gate_record():
    record = gate_record(V01_GATE)
    assert record == LegacyGateRecord(60, "held-out calibration images", 0.9833, 0.004, False, 0.0167,
                                      "top-1 disagreement", 0.01)
    unjudged = gate_record({k: v for k, v in V01_GATE.items() if k != "passed"})
    assert isinstance(unjudged, LegacyGateRecord) and unjudged.passed is None
    assert gate_record(None) is None and gate_record({}) is None


def test_keys_an_earlier_record_did_not_write_read_as_none():
    from edgeclass.cli.render import accuracy_line, agreement_table

    sparse = {"images": 24, "source": "images", "criterion": gate.ACCURACY_DROP, "limit": 0.01,
              "verdict": gate.REFUSED, "drop": {"estimate": 0.5, "low": 0.3, "high": 0.7},
              "top1_agreement": 0.5, "mean_abs_prob_diff": 0.4}
    record = GateRecord.from_record(sparse)
    assert (record.expected_drop, record.top1_accuracies, record.notes, record.views) == (None, None, (), 1)
    assert accuracy_line(record) == ("gate REFUSED: accuracy drop 50.00 pt (95% CI 30.00 to 70.00), limit 1.00 pt; "
                                     "on 24 images; top-1 agreement 50.00%")
    text = _table_text(agreement_table(record))
    assert "REFUSED" in text and "soft labels" not in text


def test_calibration_records_of_this_release_and_of_01():
    old = CalibrationRecord.from_record(V01_CALIBRATION)
    assert (old.method, old.reverted_to_float, old.images_used, old.options) == (None, (), 40, {"preset": "mixed"})
    assert old.cpu.made_for().startswith("not recorded") and old.cpu.measured() == "not recorded"
    new = CalibrationRecord.from_record(V01_CALIBRATION | {
        "method": "plain", "reverted_to_float": ["conv"], "target_cpu": "any", "overflow_fix": "enable",
        "measured_on": None})
    assert (new.method, new.reverted_to_float, new.cpu.saturation_free) == ("plain", ("conv",), True)


def test_the_training_report():
    report = {"mode": "probe", "dataset": "/data", "labels": ["cat", "dog", "fox"], "evaluated_precision": "int8",
              "calibration": {"temperature": 1.5},
              "heldout": {"images": 30, "accuracy": 0.73,
                          "per_class": [{"label": label, "precision": None, "recall": 0.5, "support": 10}
                                        for label in ("cat", "dog", "fox")],
                          "confusion": [[8, 1, 3], [0, 9, 0], [2, 2, 5]],
                          "threshold": {"value": 0.4, "unknown": 3, "accuracy_kept": 0.8}}}
    typed = TrainingReport.from_record(report)  # no "skipped": written by every release, but optional here
    assert (typed.skipped, typed.temperature, typed.heldout.threshold.kept_share) == (0, 1.5, None)
    assert typed.heldout.per_class[0].precision is None and typed.heldout.confusion[1] == (0, 9, 0)
    assert typed.taken_for() == [("fox", 3), None, ("dog", 2)]
