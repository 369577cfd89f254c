r"""Finite-width fully-connected networks under eq. (1) of Lee et al. (2023) (docs/math.md sections 1-2), and pruning.

Layer :math:`l = 0` (input): :math:`h^{(1)}_j = d_{in}^{-1/2}\sum_i V^{(1)}_{ij} x_i + b^{(1)}_j`.
Layer :math:`l \ge 1`: :math:`h^{(l+1)}_k = \sum_j \sqrt{\lambda^{(l)}_j}\,V^{(l+1)}_{jk}\,\phi(h^{(l)}_j)
+ b^{(l+1)}_k`, with :math:`V \sim N(0, \sigma_v^2)` iid, :math:`\lambda^{(l)}_j \sim F_{p_l}` iid (the
prior of hidden layer :math:`l`), :math:`b \sim N(0, \sigma_b^2)` (no bias when ``bias_std = 0``).

Shapes: ``x`` is ``(n, d_in)``; a network's parameters are ``V[l]`` of shape ``(p_l, p_{l+1})``
(``p_0 = d_in``, last ``d_out``), ``lam[l]`` of shape ``(p_l,)`` for the hidden layers ``l = 1..L``,
``b[l]`` of shape ``(p_{l+1},)``; outputs ``(n, d_out)``.  :func:`sample_outputs` draws many networks
with ``vmap``, in chunks of ``chunk_size`` networks to bound memory (``chunk_size * sum_l p_l p_{l+1}``
floats at a time).

:func:`forward` is the package's one forward pass of eq. (1), built from :func:`input_layer` and
:func:`hidden_layer` (the BNN, Table 1 and the finite-width kernels call them); each takes its weight scale
explicitly, so standardised weights (:math:`V \sim N(0, 1)`, scale :math:`\sigma_v`, as in the BNN) and
scaled ones (``scale = 1``, as :func:`init` draws them) run the same code.

Pruning keeps, at each hidden layer, the nodes with the largest :math:`\lambda`: a fraction ``kappa``
(:func:`bayes_mogp.pruning.prune_mask` with ``fraction = 1 - kappa``: the :math:`\mathrm{round}((1 -
\kappa) p)` smallest are removed) or those with :math:`\lambda > \epsilon`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from .activations import REGISTRY
from .priors import NodeVariancePrior
from .pruning import prune_mask
from .validation import check_choice, check_in_interval, check_int, check_nonnegative, check_positive
from .errors import InputError, InputTypeError

__all__ = ["ACTIVATIONS", "MLP", "init", "apply", "forward", "input_layer", "hidden_layer", "prune_masks",
           "sample_outputs"]

#: name -> elementwise activation, every entry of the registry (:mod:`bayes_mogp.activations`)
ACTIVATIONS = {name: entry.fn for name, entry in REGISTRY.items()}


@dataclass(frozen=True)
class MLP:
    """A fully-connected architecture: ``d_in``, one prior per hidden layer (its width), ``d_out``."""

    d_in: int
    priors: tuple
    d_out: int = 1
    activation: str = "relu"
    sigma_v: float = 1.0
    bias_std: float = 0.0

    def __post_init__(self):
        check_int("d_in", self.d_in, minimum=1)
        check_int("d_out", self.d_out, minimum=1)
        if not callable(self.activation):
            check_choice("activation", self.activation, ACTIVATIONS)
        check_positive("sigma_v", self.sigma_v)
        check_nonnegative("bias_std", self.bias_std)
        priors = tuple(self.priors)
        if not priors or not all(isinstance(p, NodeVariancePrior) for p in priors):
            raise InputTypeError("priors must be a non-empty sequence of NodeVariancePrior (one per hidden layer)")
        object.__setattr__(self, "priors", priors)

    @property
    def widths(self) -> tuple:
        return (self.d_in,) + tuple(p.width for p in self.priors) + (self.d_out,)

    @property
    def phi(self):
        return self.activation if callable(self.activation) else ACTIVATIONS[self.activation]


def init(key, net: MLP) -> dict:
    """One network's parameters ``{"V": [...], "lam": [...], "b": [...]}`` (shapes in the module docstring)."""
    widths = net.widths
    keys = jax.random.split(key, 3 * len(widths))
    dtype = jnp.result_type(float)
    V = [net.sigma_v * jax.random.normal(keys[i], (widths[i], widths[i + 1]), dtype) for i in range(len(widths) - 1)]
    lam = [p.sample(keys[len(widths) + i], (p.width,)) for i, p in enumerate(net.priors)]
    b = [net.bias_std * jax.random.normal(keys[2 * len(widths) + i], (widths[i + 1],), dtype) for i in range(len(widths) - 1)]
    return {"V": V, "lam": lam, "b": b}


def input_layer(x, V, b, *, scale):
    r"""First layer of eq. (1): :math:`h^{(1)} = \text{scale}\,(x V) + b`; ``x`` ``(n, d_in)``, ``V`` ``(d_in, p)``,
    ``b`` ``(p,)`` -> ``(n, p)``.  ``scale`` is :math:`\sigma_v / \sqrt{d_{in}}` for standardised ``V``."""
    return scale * (x @ V) + b


def hidden_layer(h, lam, V, b, *, phi, scale=1.0, mask=None):
    r"""A hidden layer of eq. (1): :math:`\phi(h)\,\mathrm{diag}(\sqrt{\lambda})\,\text{scale}\,V + b`.

    ``h`` ``(..., p)`` pre-activations, ``lam`` ``(p,)`` per-node variances, ``V`` ``(p, k)``, ``b`` ``(k,)``
    (or a scalar) -> ``(..., k)``.  ``mask`` ``(p,)`` (0/1 or boolean) multiplies the variances: pruned
    nodes have variance 0.  The scale :math:`\sqrt{\lambda}` goes on whichever side has fewer entries: the
    activations (``n p`` products, and as many in the gradient) when the ``n`` rows of ``h`` are fewer than the
    ``k`` outputs, as for a minibatch of 100 into a layer of 500 nodes, else the weights (``p k``).
    """
    if mask is not None:
        lam = lam * mask
    a = phi(h)
    s = jnp.sqrt(lam) * scale
    if math.prod(jnp.shape(a)[:-1]) < jnp.shape(V)[-1]:
        return (a * s) @ V + b
    return a @ (s[:, None] * V) + b


def forward(x, V, lam, b, *, phi, sigma_v=1.0, masks=None):
    r"""The forward pass of eq. (1): outputs ``(n, d_out)`` of one network.

    ``V`` (``L + 1`` arrays ``(p_l, p_{l+1})``), ``lam`` (``L`` arrays ``(p_l,)``), ``b`` (``L + 1`` arrays
    ``(p_{l+1},)``); the weights are ``sigma_v V`` (``sigma_v = 1`` when ``V`` is already scaled) and the
    first layer divides by :math:`\sqrt{d_{in}}`.  ``masks`` (optional, one per hidden layer) zero the
    pruned nodes.  Pure and jittable; ``vmap`` it over networks or posterior draws.
    """
    h = input_layer(x, V[0], b[0], scale=sigma_v / math.sqrt(x.shape[-1]))
    for layer in range(len(lam)):
        h = hidden_layer(h, lam[layer], V[layer + 1], b[layer + 1], phi=phi, scale=sigma_v,
                         mask=None if masks is None else masks[layer])
    return h


def apply(params: dict, x, net: MLP, masks=None):
    """Outputs ``(n, d_out)`` of the network ``params`` (from :func:`init`; :func:`forward`); ``masks`` (one
    boolean ``(p_l,)`` per hidden layer) zero the pruned nodes."""
    return forward(x, params["V"], params["lam"], params["b"], phi=net.phi, masks=masks)


def prune_masks(lams, *, kappa=None, eps=None):
    r"""One boolean mask per layer keeping a fraction ``kappa`` of the nodes (the largest :math:`\lambda`)
    or those with :math:`\lambda > \epsilon` (:func:`bayes_mogp.pruning.prune_mask`, the one rule)."""
    if (kappa is None) == (eps is None):
        raise InputError("give exactly one of kappa (fraction kept, in (0, 1]) or eps (threshold >= 0)")
    if kappa is not None:
        kappa = check_in_interval("kappa", kappa, 0.0, 1.0, low_open=True)
        return [prune_mask(lam, 1.0 - kappa) for lam in lams]
    return [prune_mask(lam, eps=eps) for lam in lams]


def sample_outputs(key, net: MLP, x, num_networks: int, *, chunk_size: int = 256, kappa=None, eps=None,
                   return_params: bool = False):
    """Outputs of ``num_networks`` independent networks at inputs ``x``: ``(num_networks, n, d_out)``.

    With ``kappa`` or ``eps`` also the pruned networks' outputs (same weights): returns ``(full, pruned)``.
    ``return_params`` adds the stacked parameters (mind the memory at large widths).
    """
    from .validation import check_finite_array

    x = jnp.asarray(check_finite_array("x", x, ndim=2), dtype=jnp.result_type(float))
    if x.shape[1] != net.d_in:
        raise InputError(f"x must have d_in = {net.d_in} columns, got {x.shape[1]}")
    num_networks = check_int("num_networks", num_networks, minimum=1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    prune = kappa is not None or eps is not None

    def one(k):
        params = init(k, net)
        out = apply(params, x, net)
        if prune:
            out = (out, apply(params, x, net, prune_masks(params["lam"], kappa=kappa, eps=eps)))
        return (out, params) if return_params else out

    batched = jax.jit(jax.vmap(one))
    keys = jax.random.split(key, num_networks)
    # equal chunks (the last padded with repeated keys, its extra rows dropped): one compilation per call
    chunk_size = min(chunk_size, num_networks)
    pad = -num_networks % chunk_size
    if pad:
        keys = jnp.concatenate([keys, keys[:pad]])
    pieces = [batched(keys[i : i + chunk_size]) for i in range(0, num_networks + pad, chunk_size)]
    return jax.tree_util.tree_map(lambda *a: jnp.concatenate(a, axis=0)[:num_networks], *pieces)
