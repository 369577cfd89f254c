r"""Posterior prediction, metrics and pruning for the BNNs of :mod:`.models`.

Posterior predictive probabilities are the average over draws :math:`s` of the per-draw class
probabilities, :math:`\bar p(y \mid x) = S^{-1} \sum_s \mathrm{softmax}(f_s(x))_y`; from them

* accuracy :math:`= n^{-1}\sum_i 1\{\arg\max_y \bar p(y \mid x_i) = y_i\}`,
* NLL :math:`= -n^{-1}\sum_i \log \bar p(y_i \mid x_i)` (nats per test point),
* ECE: the confidence-binned expected calibration error (15 equal-width bins).

Pruning (seed 000 section 4, DESIGN section 3 "compressible"): in every posterior draw, the fraction
``fraction`` of hidden nodes with the smallest :math:`\lambda_j` in that draw get :math:`\lambda_j = 0`
(their outgoing weights vanish).  Ranking per draw is invariant under the permutation symmetry of hidden
units, so no label matching across chains is needed.  The forward pass is :func:`.models.forward`,
vmapped over draws, in batches to bound memory: draws x test points x classes can be large.

Also here: :func:`pca_inputs`, the PCA reduction of images for the BNN (fitted on the training images,
whitened: each component divided by its standard deviation).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..metrics import classification_metrics
from ..validation import check_finite_array, check_in_interval, check_int
from .models import BNNConfig, forward

__all__ = ["params_from_samples", "predict_probs", "predict_mean", "classification_metrics", "prune_masks",
           "pruning_curve", "pca_inputs", "flatten_chains"]


def flatten_chains(samples: dict) -> dict:
    """``(chains, draws, ...)`` -> ``(chains * draws, ...)`` for every array."""
    return {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in samples.items()}


def params_from_samples(config: BNNConfig, samples: dict) -> dict:
    """The arrays :func:`.models.forward` needs, from draws of :func:`.models.bnn_model` or of the centred
    model (whose ``W`` sites are divided back into standardised ``V``).  Leading axes are kept."""
    L = len(config.widths)
    params = {"V0": samples["V0"]}
    for layer in range(L + 1):
        params[f"b{layer}"] = config.sigma_b * np.asarray(samples[f"b{layer}_raw"])
    for layer in range(L):
        lam = np.asarray(samples[f"lam{layer}"])
        params[f"lam{layer}"] = lam
        if f"V{layer + 1}" in samples:
            params[f"V{layer + 1}"] = samples[f"V{layer + 1}"]
        else:  # centred model: W = sqrt(lam) sigma_v V
            scale = np.sqrt(np.maximum(lam, 1e-300))[..., :, None] * config.sigma_v
            params[f"V{layer + 1}"] = np.asarray(samples[f"W{layer + 1}"]) / scale
    return params


def _batched_apply(fn, params: dict, batch: int):
    n = next(iter(params.values())).shape[0]
    outs = []
    for start in range(0, n, batch):
        outs.append(np.asarray(fn({k: v[start:start + batch] for k, v in params.items()})))
    return np.concatenate(outs, axis=0)


def predict_probs(config: BNNConfig, samples: dict, X, *, lam_mask=None, batch: int = 200) -> np.ndarray:
    """Per-draw class probabilities (categorical) or means (gaussian), shape ``(draws, n, d_out)``.

    ``samples`` flat over draws (:func:`flatten_chains`); ``lam_mask`` per-draw masks ``(draws, p_l)``
    per layer (see :func:`prune_masks`) or None.
    """
    X = jnp.asarray(check_finite_array("X", X, ndim=2))
    params = {k: jnp.asarray(v) for k, v in params_from_samples(config, samples).items()}
    if lam_mask is not None:
        for layer, m in enumerate(lam_mask):
            params[f"mask{layer}"] = jnp.asarray(m)
    L = len(config.widths)

    def one(p):
        mask = tuple(p[f"mask{l}"] for l in range(L)) if lam_mask is not None else None
        f = forward(config, p, X, lam_mask=mask)
        return jax.nn.softmax(f, axis=-1) if config.likelihood == "categorical" else f

    return _batched_apply(jax.jit(jax.vmap(one)), params, batch)


def predict_mean(config: BNNConfig, samples: dict, X, **kw) -> np.ndarray:
    """Posterior predictive mean ``(n, d_out)``: the average of :func:`predict_probs` over draws."""
    return predict_probs(config, samples, X, **kw).mean(axis=0)


def prune_masks(config: BNNConfig, samples: dict, fraction: float):
    """Per-draw masks: 0 for the ``fraction`` of nodes with smallest :math:`\\lambda` in that draw, per layer."""
    fraction = check_in_interval("fraction", fraction, 0.0, 1.0)
    masks = []
    for layer, p in enumerate(config.widths):
        lam = np.asarray(samples[f"lam{layer}"])  # (draws, p)
        k = int(round(fraction * p))
        order = np.argsort(lam, axis=-1)  # ascending
        mask = np.ones_like(lam)
        np.put_along_axis(mask, order[:, :k], 0.0, axis=-1)
        masks.append(mask)
    return tuple(masks)


def pruning_curve(config: BNNConfig, samples: dict, X, labels, fractions=(0.0, 0.5, 0.8, 0.9, 0.95)) -> dict:
    """Accuracy, NLL and ECE of the posterior predictive after pruning each fraction of hidden nodes."""
    out = {"fraction": [], "accuracy": [], "nll": [], "ece": []}
    for fr in fractions:
        probs = predict_mean(config, samples, X, lam_mask=prune_masks(config, samples, fr))
        m = classification_metrics(probs, labels)
        out["fraction"].append(float(fr))
        for key in ("accuracy", "nll", "ece"):
            out[key].append(m[key])
    return out


def pca_inputs(x_train, x_test, num_components: int):
    """Project images on the top ``num_components`` principal components of ``x_train``, whitened.

    Returns ``(z_train, z_test, explained_variance_ratio)``; the components are fitted on the training
    images only.  Refuses NaN/Inf.
    """
    x_train = check_finite_array("x_train", x_train, ndim=2).astype(np.float64)
    x_test = check_finite_array("x_test", x_test, ndim=2).astype(np.float64)
    k = check_int("num_components", num_components, minimum=1, maximum=min(x_train.shape))
    mean = x_train.mean(0)
    _, s, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    comps = vt[:k].T
    std = s[:k] / np.sqrt(max(x_train.shape[0] - 1, 1))
    std = np.where(std > 1e-12, std, 1.0)
    ratio = float((s[:k] ** 2).sum() / (s**2).sum())
    return (x_train - mean) @ comps / std, (x_test - mean) @ comps / std, ratio
