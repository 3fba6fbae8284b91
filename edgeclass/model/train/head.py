"""The linear head of the probe, temperature scaling and the default abstain threshold.

Torch-free: scikit-learn's multinomial logistic regression (L2, lbfgs) on standardised
features; the standardisation is folded back into the weights, so the head is one
``features @ W.T + b`` that OpenVINO runs as MatMul + Add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEEP_CORRECT = 0.95  # default threshold keeps this share of correctly classified held-out images
MAX_THRESHOLD = 0.9  # ... but never above this (a split the head gets all right puts every score near 1)
LOG_T_PRIOR = 1.0  # temperature fit: sigma of the normal prior on log T


@dataclass(frozen=True)
class LinearHead:
    weight: np.ndarray  # K x D
    bias: np.ndarray  # K

    def logits(self, features: np.ndarray) -> np.ndarray:
        return features @ self.weight.T + self.bias

    def scaled(self, factor: float) -> LinearHead:
        """The head with logits multiplied by ``factor`` (temperature T: factor 1/T)."""
        return LinearHead(self.weight * factor, self.bias * factor)


def fit_logistic(features: np.ndarray, targets: np.ndarray, num_classes: int, c: float = 1.0) -> LinearHead:
    """Multinomial logistic regression; every class must have at least one row."""
    from sklearn.linear_model import LogisticRegression

    x = features.astype(np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit((x - mean) / std, targets)
    if list(clf.classes_) != list(range(num_classes)):
        raise ValueError(f"training targets cover classes {list(clf.classes_)}, expected 0..{num_classes - 1}")
    coef, intercept = clf.coef_, clf.intercept_
    if num_classes == 2:  # sklearn keeps one row for two classes: softmax([-z/2, z/2]) = sigmoid(z)
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = coef / std
    bias = intercept - weight @ mean
    return LinearHead(weight.astype(np.float32), bias.astype(np.float32))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, targets: np.ndarray) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """Temperature T maximising the held-out likelihood of softmax(logits / T), with a weak
    normal prior on log T (sigma ``LOG_T_PRIOR``). Without it a held-out split the head gets
    all right drives T towards 0 (every score 1.0); with a few hundred images the data rule."""
    from scipy.optimize import minimize_scalar

    logits, n = logits.astype(np.float64), len(targets)

    def objective(log_t: float) -> float:
        return n * nll(logits / np.exp(log_t), targets) + 0.5 * (log_t / LOG_T_PRIOR) ** 2

    res = minimize_scalar(objective, bounds=(-4.0, 4.0), method="bounded")
    return float(np.exp(res.x))


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 10) -> float:
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi)
        if mask.any():
            ece += mask.mean() * abs((pred[mask] == targets[mask]).mean() - conf[mask].mean())
    return float(ece)


def default_threshold(probs: np.ndarray, targets: np.ndarray) -> float:
    """The calibrated top-1 score that keeps ``KEEP_CORRECT`` of the correct held-out answers
    (rounded down to 0.001, at most ``MAX_THRESHOLD``); 0 when nothing was classified correctly."""
    top1 = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    if not correct.any():
        return 0.0
    return min(MAX_THRESHOLD, float(np.floor(np.quantile(top1[correct], 1 - KEEP_CORRECT) * 1000) / 1000))
