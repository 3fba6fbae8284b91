"""Top-k predictions: the k best scores, ties broken by class id (rows identical across runs)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeclass.engine import top_k_predictions

LABELS = tuple(f"c{i}" for i in range(12))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("k", [1, 3, 5, 12, 50])
def test_equals_a_stable_sort_of_every_class(seed, k):
    rng = np.random.default_rng(seed)
    probs = rng.integers(0, 4, 12).astype(np.float32) / 4  # many ties, also at the k-th place
    ref = np.argsort(-probs, kind="stable")[: min(k, 12)]
    got = top_k_predictions(probs, k, LABELS)
    assert [p.class_id for p in got] == ref.tolist()
    assert [p.label for p in got] == [LABELS[i] for i in ref]
    assert [p.score for p in got] == [float(probs[i]) for i in ref]


def test_ties_at_the_cut_go_to_the_lower_class_id():
    probs = np.array([0.1, 0.3, 0.3, 0.0, 0.3], np.float32)
    assert [p.class_id for p in top_k_predictions(probs, 2, LABELS)] == [1, 2]
