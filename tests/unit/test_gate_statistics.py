"""The INT8 gate's statistics on known numbers (in process)."""

from __future__ import annotations

import numpy as np
import pytest
from edgeclass.model import gate


def _probs(top: float, n: int, classes: int = 4, winner: int = 0) -> np.ndarray:
    p = np.full((n, classes), (1 - top) / (classes - 1), np.float32)
    p[:, winner] = top
    return p


def test_near_tie_flips_cost_nothing_confident_flips_cost_their_confidence():
    fp32 = np.tile(np.float32([[0.3001, 0.2999, 0.2, 0.2]]), (60, 1))
    flipped = np.tile(np.float32([[0.2999, 0.3001, 0.2, 0.2]]), (60, 1))
    r = gate.check(fp32, flipped, "images", 0.01, 0.01)
    assert r.top1_agreement == 0.0  # the old gate called this "100 pt disagreement"
    assert r.criterion == gate.EXPECTED_DROP
    assert r.drop.estimate == pytest.approx(0.0002, abs=1e-6)
    assert r.verdict == gate.PASSED

    fp32 = _probs(0.9, 200)
    int8 = fp32.copy()
    int8[:60] = _probs(0.9, 60, winner=2)  # 30 % of confident answers moved elsewhere
    r = gate.check(fp32, int8, "images", 0.01, 0.01)
    assert r.drop.estimate == pytest.approx(0.3 * (0.9 - 0.1 / 3), abs=1e-5)
    assert r.drop.low > 0.2 and r.verdict == gate.REFUSED


def test_labelled_drop_interval_and_verdicts():
    y = np.zeros(200, int)
    fp32 = _probs(0.8, 200)
    int8 = fp32.copy()
    int8[:4] = _probs(0.8, 4, winner=1)  # 4 right answers lost
    fp32[196:] = _probs(0.8, 4, winner=3)  # 4 wrong FP32 answers ...
    int8[196:198] = _probs(0.8, 2, winner=0)  # ... of which INT8 gets 2 right
    int8[198:] = _probs(0.8, 2, winner=3)
    r = gate.check(fp32, int8, "labelled images", 0.01, 0.01, list(y))
    assert r.criterion == gate.ACCURACY_DROP
    assert r.drop.estimate == pytest.approx(0.01)  # (4 - 2) / 200
    assert r.fp32_top1 == pytest.approx(0.98) and r.int8_top1 == pytest.approx(0.97)
    assert r.drop.low < 0.01 < r.drop.high
    assert r.verdict == gate.INCONCLUSIVE and not r.refused  # 200 images cannot resolve 1 pt
    assert any("cannot confirm" in n for n in r.notes)

    int8[:40] = _probs(0.8, 40, winner=1)
    r = gate.check(fp32, int8, "labelled images", 0.01, 0.01, list(y))
    assert r.drop.estimate == pytest.approx(0.19) and r.verdict == gate.REFUSED


def test_thin_evidence_is_said_and_mirrored_views_count_once():
    fp32 = _probs(0.7, 4)
    r = gate.check(np.stack([fp32, fp32], 1), np.stack([fp32, fp32], 1), "images", 0.01, 0.01)
    assert r.images == 4 and r.views == 2
    assert r.verdict == gate.PASSED
    assert "only 4 images checked: the INT8 check is weak" in r.notes[0]
    wide = gate.bootstrap_mean(np.r_[np.ones(3), np.zeros(27)])
    narrow = gate.bootstrap_mean(np.r_[np.ones(30), np.zeros(270)])
    assert wide.estimate == pytest.approx(narrow.estimate)
    assert (wide.high - wide.low) > 2.5 * (narrow.high - narrow.low)  # ~ sqrt(10) narrower
    assert gate.bootstrap_mean(np.r_[np.ones(3), np.zeros(27)]) == wide  # deterministic


def test_info_line_reads_records_of_the_previous_release_and_this_one():
    """INT8 folders written by edgeclass 0.1 carry the old agreement record; `info` shows both kinds."""
    from edgeclass.cli.render import accuracy_line

    old = {"images": 60, "source": "held-out calibration images", "top1_agreement": 0.9833,
           "mean_abs_prob_diff": 0.004, "fp32_top1": None, "int8_top1": None, "drop": 0.0167,
           "drop_kind": "top-1 disagreement", "max_drop": 0.01, "passed": False}
    assert accuracy_line(old) == ("top-1 agreement 98.33%, mean |Δp| 0.00400 on 60 images (held-out calibration "
                                  "images); gate FAILED (top-1 disagreement 1.67 pt)")
    new = gate.check(_probs(0.9, 4), _probs(0.9, 4), "images", 0.01, 0.01).to_dict()
    line = accuracy_line(new)
    assert line.startswith("gate PASSED: expected accuracy drop 0.00 pt (95% CI 0.00 to 0.00), limit 1.00 pt")
    assert "note: only 4 images checked" in line
