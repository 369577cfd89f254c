"""Classification metrics of predictive class probabilities: accuracy, NLL, expected calibration error.

One implementation for the BNN (:mod:`bayes_mogp.bnn`) and MoGP (:mod:`bayes_mogp.mogp`) predictives.
(:func:`bayes_mogp.gp.classification_metrics` scores a GP on one-hot targets: Gaussian NLL, Monte Carlo
class probabilities; it keeps its own right-closed ECE bins.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["classification_metrics"]


def classification_metrics(probs, labels, *, num_bins: int = 15, min_prob: float = 1e-300) -> dict:
    r"""``{"accuracy", "nll", "ece"}`` of class probabilities ``probs`` (n, k) against integer ``labels`` (n,).

    Accuracy of :math:`\arg\max_k p_{ik}`; NLL :math:`-\frac1n\sum_i \log \max(p_{i y_i}, \text{min\_prob})`;
    ECE over ``num_bins`` equal-width bins of the confidence :math:`\max_k p_{ik}` (bin
    :math:`\lfloor \text{conf} \cdot B\rfloor`, the last bin closed):
    :math:`\sum_b \frac{n_b}{n}|\text{acc}_b - \text{conf}_b|`.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels).astype(int)
    pred = probs.argmax(-1)
    correct = (pred == labels).astype(float)
    p_true = np.clip(probs[np.arange(labels.size), labels], min_prob, None)
    conf = probs.max(-1)
    bins = np.minimum((conf * num_bins).astype(int), num_bins - 1)
    ece = 0.0
    for b in range(num_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return {"accuracy": float(correct.mean()), "nll": float(-np.log(p_true).mean()), "ece": float(ece)}
