"""Training pieces in process: frozen stages, the grafted head, the probe against scikit-learn, temperature fitting."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest


def test_train_stages_freezes_the_stem_and_earlier_stages_batchnorm_included():
    """--train-stages 1: the stem, stages 0-3 and their BatchNorm statistics stay byte-identical
    through training; the last stage and the head learn. Without it every stage learns."""
    import torch
    from edgeclass.model.train.backbone import load_backbone
    from edgeclass.model.train.finetune import finetune
    from edgeclass.model.train.options import FinetuneOptions

    rng = np.random.default_rng(0)
    # 40 images, batch 8, 2 epochs: 10 steps, a length whose one-cycle warm-up once divided by zero
    x, y = rng.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8), np.arange(40) % 3
    changed = {}
    for stages in (1, None):
        bb = load_backbone("mobilevitv2_050", random_init=True, num_classes=3, input_size=64)
        before = {k: v.clone() for k, v in bb.model.state_dict().items()}
        result = finetune(bb.model, x, y, x[:6], y[:6], bb.preprocess,
                          FinetuneOptions(epochs=2, patience=5, batch_size=8, lr=1e-2, train_stages=stages))
        after = bb.model.state_dict()
        changed[stages] = {k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("stages") else "")
                           for k, v in after.items() if v.dtype.is_floating_point and not torch.equal(v, before[k])}
        assert all(p.requires_grad for p in bb.model.parameters()) and not bb.model.training
        total = sum(p.numel() for p in bb.model.parameters())
        if stages == 1:
            assert 0 < result.trainable_params < total
        else:
            assert result.trainable_params == total
    assert changed[1] == {"stages.4", "head"}, changed[1]
    assert {"stem", "stages.0", "stages.1", "stages.2", "stages.3", "stages.4", "head"} <= changed[None]


def test_grafted_head_computes_softmax_of_the_linear_head_on_the_features():
    from edgeclass.model.train.graft import features_model, graft_head

    rng = np.random.default_rng(0)
    param = ov.opset13.parameter([-1, 6], ov.Type.f32, name="image")
    mixed = ov.opset13.matmul(param, ov.opset13.constant(rng.normal(size=(6, 5)).astype(np.float32)), False, False)
    backbone = ov.Model([ov.opset13.result(ov.opset13.softmax(mixed, 1))], [param], "toy")  # as export.py ends
    weight, bias = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    core = ov.Core()
    feats = core.compile_model(features_model(backbone), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    probs = core.compile_model(graft_head(backbone, weight, bias), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(x)[0]
    logits = feats @ weight.T + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(1, keepdims=True), atol=1e-5)


def test_two_class_head_reproduces_scikit_learn_probabilities():
    from sklearn.linear_model import LogisticRegression

    from edgeclass.model.train.head import fit_logistic, softmax

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (30, 4)), rng.normal(1, 1, (30, 4))]) * [1, 10, 100, 0.1]
    y = np.repeat([0, 1], 30)
    head = fit_logistic(x, y, 2)
    mean, std = x.mean(0), x.std(0) + 1e-6
    reference = LogisticRegression(C=1.0, max_iter=2000).fit((x - mean) / std, y).predict_proba((x - mean) / std)
    np.testing.assert_allclose(softmax(head.logits(x).astype(np.float64)), reference, atol=1e-4)


def test_temperature_is_recovered_and_a_perfect_split_does_not_push_it_to_zero():
    from edgeclass.model.train.head import default_threshold, fit_temperature, softmax

    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (4000, 3))
    true_t = 2.0  # labels drawn from softmax(logits / 2): the fitted T must be about 2
    p = softmax(logits / true_t)
    y = np.array([rng.choice(3, p=row) for row in p])
    assert fit_temperature(logits, y) == pytest.approx(true_t, rel=0.1)
    perfect = np.eye(3)[np.arange(24) % 3] * 8.0  # 24 held-out images, all right with margin 8
    t = fit_temperature(perfect, np.arange(24) % 3)
    assert 0.1 < t < 1.0
    assert default_threshold(softmax(perfect / t), np.arange(24) % 3) == 0.9  # capped, not 1.0


def test_taken_for_names_the_most_frequent_wrong_label():
    from edgeclass.model.train.evaluate_report import taken_for

    report = {"labels": ["cat", "dog", "fox"],
              "heldout": {"confusion": [[8, 1, 3],   # cats taken for foxes 3 times
                                        [0, 9, 0],   # dogs never wrong
                                        [2, 2, 5]]}}  # foxes: a tie, the later label
    assert taken_for(report) == [("fox", 3), None, ("dog", 2)]
