r"""Scores of a :class:`~bayes_mogp.prediction.Prediction` against targets: the one place metrics live.

Regression (targets ``y`` (m,) or (m, k), user units):

* ``rmse``: :math:`\sqrt{\frac{1}{mk}\sum_{i,c} (y_{ic} - \bar y_{ic})^2}` of the predictive mean;
* ``nll``: :math:`-\frac1m \sum_i \log p(y_i)`, the predictive (mixture) density of each test point's
  k outputs jointly, in nats per test point, user units;
* ``coverage_90``: the fraction of test targets (all outputs) inside the central 90% interval of their
  marginal predictive mixture.

Classification (integer ``labels`` (m,)):

* ``accuracy`` of :attr:`Prediction.predicted_class`;
* ``nll``: :math:`-\frac1m\sum_i \log \max(p_{i y_i}, 10^{-12})`, the categorical NLL of the class
  probabilities (:func:`nll_class`; comparable across every model);
* ``nll_gaussian`` (GP-type models only: regression on one-hot targets minus 1/C, a Gaussian mixture):
  the predictive density of the one-hot targets, as in the GP-on-MNIST literature;
* ``ece``: expected calibration error over 15 equal-width bins of the confidence
  :math:`\max_k p_{ik}` (bin :math:`\lfloor \mathrm{conf}\cdot B\rfloor`, the last bin closed):
  :math:`\sum_b \frac{n_b}{m}|\mathrm{acc}_b - \mathrm{conf}_b|`, with the accuracy of the
  probabilities' own argmax (Guo et al. 2017).
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["rmse", "nll", "coverage", "accuracy", "nll_class", "ece", "score", "one_hot_targets",
           "classification_metrics"]

MIN_PROB = 1e-12
ECE_BINS = 15


def _targets(pred, y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    if pred.loc is not None and y.shape != pred.loc.shape[1:]:
        raise InputError(f"targets must have shape {pred.loc.shape[1:]} (m, k), got {y.shape}")
    return y


def rmse(pred, y) -> float:
    """Root mean squared error of the predictive mean over all test points and outputs."""
    y = _targets(pred, y)
    return float(np.sqrt(np.mean((y - pred.mean) ** 2)))


def nll(pred, y) -> float:
    """Mean negative log predictive density per test point (all outputs jointly), nats."""
    return float(-np.mean(pred.log_density(_targets(pred, y))))


def coverage(pred, y, level: float = 0.9) -> float:
    """Fraction of targets inside the central ``level`` interval of their marginal predictive law."""
    y = _targets(pred, y)
    lo, hi = pred.interval(level)
    return float(np.mean((y >= lo) & (y <= hi)))


def _labels(labels, m) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (m,):
        raise InputError(f"labels must have shape ({m},), got {labels.shape}")
    return labels.astype(np.int64)


def accuracy(pred, labels) -> float:
    """Fraction of ``labels`` equal to the predicted class (float64)."""
    labels = _labels(labels, pred.num_points)
    return float(np.mean(pred.predicted_class == labels))


def nll_class(probs, labels, *, min_prob: float = MIN_PROB) -> float:
    """Categorical NLL of class probabilities ``probs`` (m, C), floored at ``min_prob``."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = _labels(labels, probs.shape[0])
    return float(-np.mean(np.log(np.clip(probs[np.arange(labels.size), labels], min_prob, None))))


def ece(probs, labels, *, num_bins: int = ECE_BINS) -> float:
    """Expected calibration error of ``probs`` (m, C) over ``num_bins`` equal-width confidence bins."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = _labels(labels, probs.shape[0])
    conf = probs.max(-1)
    correct = (probs.argmax(-1) == labels).astype(float)
    bins = np.minimum((conf * num_bins).astype(int), num_bins - 1)
    total = 0.0
    for b in range(num_bins):
        sel = bins == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def classification_metrics(probs, labels, *, num_bins: int = ECE_BINS, min_prob: float = MIN_PROB) -> dict:
    """``{"accuracy", "nll", "ece"}`` of class probabilities alone (argmax accuracy, categorical NLL)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = _labels(labels, probs.shape[0])
    return {"accuracy": float(np.mean(probs.argmax(-1) == labels)),
            "nll": nll_class(probs, labels, min_prob=min_prob), "ece": ece(probs, labels, num_bins=num_bins)}


def one_hot_targets(labels, num_classes: int) -> np.ndarray:
    """One-hot rows minus 1/C (zero mean over classes): the regression targets of GP-type classifiers."""
    return np.eye(num_classes)[np.asarray(labels, dtype=np.int64)] - 1.0 / num_classes


def score(pred, targets) -> dict:
    """Every metric of the task: regression ``{"n", "rmse", "nll", "coverage_90"}``, classification
    ``{"n", "accuracy", "nll", "ece"}`` (``nll`` categorical) and, for a GP-type classifier (a prediction
    with ``loc``), ``nll_gaussian``: the density of the one-hot targets minus 1/C.

    ``targets``: real targets (regression) or integer labels (classification).
    """
    if pred.task == "regression":
        return {"n": pred.num_points, "rmse": rmse(pred, targets), "nll": nll(pred, targets),
                "coverage_90": coverage(pred, targets, 0.9)}
    labels = _labels(targets, pred.num_points)
    out = {"n": pred.num_points, "accuracy": accuracy(pred, labels), "nll": nll_class(pred.probs, labels),
           "ece": ece(pred.probs, labels)}
    if pred.loc is not None:
        out["nll_gaussian"] = nll(pred, one_hot_targets(labels, pred.loc.shape[-1]))
    return out
