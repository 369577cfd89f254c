r"""Network outputs over posterior draws, and pruning, for the BNNs of :mod:`.models`.

For draws :math:`s = 1..S` of the weights and node variances, :func:`forward_draws` returns the network
outputs :math:`f_s(x)` ``(S, m, k)``: logits (categorical likelihood) or means (regression), in model
units.  :func:`predict_probs` applies the softmax per draw.  The posterior predictive is the equally
weighted mixture over draws (:class:`bayes_mogp.prediction.Prediction`, built by
:class:`~bayes_mogp.bnn.posterior.BNNPosterior`).

Pruning (as in Lee et al. 2023): in every posterior draw, the fraction ``fraction`` of hidden nodes of
each layer with the smallest :math:`\lambda_j` *in that draw* get :math:`\lambda_j = 0` (their outgoing
weights vanish); the layers are the hidden layers whose outputs feed the next hidden layer or the output
layer.  Where a layer's variances are all equal in a draw (the iid prior), the rank is by
:math:`\lambda_j \sum_k V_{jk}^2`, the squared norm of the node's outgoing weights, instead.  Ranking per
draw is invariant under the permutation symmetry of hidden units, so no label matching across chains is
needed.

Representation (:func:`distinct_top_inputs`): the ``num_nodes`` nodes of the last hidden layer with the
largest (draw-averaged, folded as above) variance, for each its ``num_inputs`` inputs with the largest
draw-averaged pre-activation; the count of distinct inputs among them (``num_nodes * num_inputs`` at
most: nodes that respond to different inputs are less redundant).

The forward pass is :func:`.models.forward` vmapped over draws and jitted, in batches of draws to bound
memory (draws x points x width), in the precision of the draws (float32 draws: float32 arithmetic).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import networks
from ..activations import get_activation
from ..pruning import prune_mask
from ..validation import check_finite_array, check_int
from .models import BNNConfig, forward

__all__ = ["flatten_chains", "params_from_samples", "forward_draws", "predict_probs", "prune_masks",
           "apply_masks", "node_scores", "last_hidden_preactivations", "distinct_top_inputs"]


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
        masks.append(np.asarray(prune_mask(node_scores(samples, layer), fraction), dtype=lam.dtype))
    return tuple(masks)


def node_scores(samples: dict, layer: int) -> np.ndarray:
    r"""What pruning ranks the nodes of hidden layer ``layer`` by, ``(S, p_l)``: :math:`\lambda_j`, or, in a
    draw where the layer's variances are all equal, :math:`\lambda_j \sum_k V_{jk}^2` (module docstring)."""
    lam = np.asarray(samples[f"lam{layer}"], dtype=np.float64)
    constant = np.ptp(lam, axis=-1, keepdims=True) == 0
    if not constant.any():
        return lam
    V = np.asarray(samples[f"V{layer + 1}"], dtype=np.float64)
    return np.where(constant, lam * np.sum(V**2, axis=-1), lam)


@partial(jax.jit, static_argnames=("config",))
def _last_hidden(config, params, X):
    phi = get_activation(config.activation).fn
    depth = len(config.widths)

    def one(p):
        h = networks.input_layer(X, p["V0"], p["b0"], scale=config.sigma_v / np.sqrt(X.shape[-1]))
        for layer in range(depth - 1):
            h = networks.hidden_layer(h, p[f"lam{layer}"], p[f"V{layer + 1}"], p[f"b{layer + 1}"], phi=phi,
                                      scale=config.sigma_v)
        return h

    return jax.vmap(one)(params)


def last_hidden_preactivations(config: BNNConfig, samples: dict, X) -> np.ndarray:
    """Pre-activations ``(S, m, p_L)`` of the last hidden layer's nodes for flat draws ``samples``."""
    X = check_finite_array("X", X, ndim=2)
    params = params_from_samples(config, samples)
    dtype = params["V0"].dtype
    Xj = jnp.asarray(np.asarray(X, dtype=dtype))
    outs = [np.asarray(_last_hidden(config, {k: jnp.asarray(v[i:i + 1]) for k, v in params.items()}, Xj))
            for i in range(params["V0"].shape[0])]
    return np.concatenate(outs, axis=0)


def distinct_top_inputs(config: BNNConfig, samples: dict, X, *, num_nodes: int = 30, num_inputs: int = 30) -> int:
    """Distinct inputs among the top ``num_inputs`` of each of the ``num_nodes`` largest-variance nodes of the
    last hidden layer (module docstring), for the draws ``samples`` of one chain (flat)."""
    layer = len(config.widths) - 1
    num_nodes = check_int("num_nodes", num_nodes, minimum=1, maximum=config.widths[layer])
    num_inputs = check_int("num_inputs", num_inputs, minimum=1, maximum=np.shape(X)[0])
    score = node_scores(samples, layer).mean(0)
    nodes = np.argsort(-score, kind="stable")[:num_nodes]
    h = last_hidden_preactivations(config, samples, X).mean(0)  # (m, p)
    top = np.argsort(-h[:, nodes], axis=0, kind="stable")[:num_inputs]
    return int(np.unique(top).size)


def apply_masks(samples: dict, masks) -> dict:
    """A copy of ``samples`` with each layer's ``lam{l}`` multiplied by its mask (and ``lam_sorted{l}``
    recomputed): pruned nodes have variance 0, so their outgoing weights vanish."""
    out = dict(samples)
    for layer, mask in enumerate(masks):
        lam = np.asarray(samples[f"lam{layer}"]) * mask
        out[f"lam{layer}"] = lam
        out[f"lam_sorted{layer}"] = -np.sort(-lam, axis=-1)
    return out
