r"""Network outputs over posterior draws, and pruning, for the BNNs of :mod:`.models`.

For draws :math:`s = 1..S` of the weights and node variances, :func:`forward_draws` returns the network
outputs :math:`f_s(x)` ``(S, m, k)``: logits (categorical likelihood) or means (regression), in model
units.  :func:`predict_probs` applies the softmax per draw.  The posterior predictive is the equally
weighted mixture over draws (:class:`bayes_mogp.prediction.Prediction`, built by
:class:`~bayes_mogp.bnn.posterior.BNNPosterior`).

Pruning: in every posterior draw, the fraction ``fraction`` of hidden nodes of each layer with the
smallest :math:`\lambda_j` *in that draw* get :math:`\lambda_j = 0` (their outgoing weights vanish).
Ranking per draw is invariant under the permutation symmetry of hidden units, so no label matching
across chains is needed.

The forward pass is :func:`.models.forward` vmapped over draws and jitted, in batches of draws to bound
memory (draws x points x width), in the precision of the draws (float32 draws: float32 arithmetic).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..pruning import prune_mask
from ..validation import check_finite_array, check_int
from .models import BNNConfig, forward

__all__ = ["flatten_chains", "params_from_samples", "forward_draws", "predict_probs", "prune_masks",
           "apply_masks"]


def flatten_chains(samples: dict) -> dict:
    """``(chains, draws, ...)`` -> ``(chains * draws, ...)`` for every array."""
    return {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in samples.items()}


def params_from_samples(config: BNNConfig, samples: dict) -> dict:
    """The arrays :func:`.models.forward` needs, from draws of :func:`.models.bnn_model` or of the centred
    model (whose ``W`` sites are divided back into standardised ``V``).  Leading axes are kept."""
    L = len(config.widths)
    params = {"V0": np.asarray(samples["V0"])}
    for layer in range(L + 1):
        b = np.asarray(samples[f"b{layer}_raw"])
        params[f"b{layer}"] = (config.sigma_b * b).astype(b.dtype)
    for layer in range(L):
        lam = np.asarray(samples[f"lam{layer}"])
        params[f"lam{layer}"] = lam
        if f"V{layer + 1}" in samples:
            params[f"V{layer + 1}"] = np.asarray(samples[f"V{layer + 1}"])
        else:  # centred model: W = sqrt(lam) sigma_v V
            scale = np.sqrt(np.maximum(lam, np.finfo(lam.dtype).tiny))[..., :, None] * config.sigma_v
            params[f"V{layer + 1}"] = (np.asarray(samples[f"W{layer + 1}"]) / scale).astype(lam.dtype)
    return params


@partial(jax.jit, static_argnames=("config", "softmax"))
def _forward_batch(config, params, X, softmax):
    def one(p):
        f = forward(config, p, X)
        return jax.nn.softmax(f, axis=-1) if softmax else f

    return jax.vmap(one)(params)


def forward_draws(config: BNNConfig, samples: dict, X, *, softmax: bool = False, batch: int | None = None
                  ) -> np.ndarray:
    """Network outputs ``(S, m, d_out)`` for draws ``samples`` (flat: :func:`flatten_chains`) at model
    inputs ``X`` ``(m, d_in)``; ``softmax=True`` returns class probabilities.

    ``batch``: draws per compiled call (default: as many as keep one batch's hidden activations under
    about 256 MB).  The result has the dtype of the draws.
    """
    X = check_finite_array("X", X, ndim=2)
    params = params_from_samples(config, samples)
    dtype = params["V0"].dtype
    S = params["V0"].shape[0]
    if batch is None:
        per_draw = X.shape[0] * (max(config.widths) * len(config.widths) + config.d_out) * dtype.itemsize * 3
        batch = int(max(1, min(S, 2**28 // max(per_draw, 1))))
    batch = check_int("batch", batch, minimum=1)
    Xj = jnp.asarray(np.asarray(X, dtype=dtype))
    outs = []
    for start in range(0, S, batch):
        chunk = {k: jnp.asarray(v[start:start + batch]) for k, v in params.items()}
        outs.append(np.asarray(_forward_batch(config, chunk, Xj, softmax)))
    return np.concatenate(outs, axis=0)


def predict_probs(config: BNNConfig, samples: dict, X, **kw) -> np.ndarray:
    """Per-draw class probabilities ``(S, m, C)`` (categorical likelihood)."""
    return forward_draws(config, samples, X, softmax=True, **kw)


def prune_masks(config: BNNConfig, samples: dict, fraction: float) -> tuple:
    """Per-draw masks, one ``(S, p_l)`` array per hidden layer: 0 for the ``round(fraction * p_l)`` nodes
    with the smallest :math:`\\lambda` in that draw, 1 elsewhere (:func:`bayes_mogp.pruning.prune_mask`)."""
    masks = []
    for layer in range(len(config.widths)):
        lam = np.asarray(samples[f"lam{layer}"])  # (S, p)
        masks.append(np.asarray(prune_mask(lam, fraction), dtype=lam.dtype))
    return tuple(masks)


def apply_masks(samples: dict, masks) -> dict:
    """A copy of ``samples`` with each layer's ``lam{l}`` multiplied by its mask (and ``lam_sorted{l}``
    recomputed): pruned nodes have variance 0, so their outgoing weights vanish."""
    out = dict(samples)
    for layer, mask in enumerate(masks):
        lam = np.asarray(samples[f"lam{layer}"]) * mask
        out[f"lam{layer}"] = lam
        out[f"lam_sorted{layer}"] = -np.sort(-lam, axis=-1)
    return out
