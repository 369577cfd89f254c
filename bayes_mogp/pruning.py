r"""Pruning by per-node variance: the one rule the package uses, for finite networks, Table 1 and BNN posteriors.

Under eq. (1) node :math:`j` of a hidden layer contributes :math:`\sqrt{\lambda_j}\,\phi(h_j)\,V_{j\cdot}` to
the next layer, so the nodes with the smallest :math:`\lambda_j` matter least.  Pruning a fraction
:math:`f` of a layer of width :math:`p` removes the :math:`\mathrm{round}(f p)` nodes with the smallest
:math:`\lambda` (nearest integer; keeping a fraction :math:`\kappa` is :math:`f = 1 - \kappa`); among equal
variances the node with the lower index is kept.  A threshold :math:`\epsilon` instead removes every
node with :math:`\lambda \le \epsilon` (e.g. :math:`\epsilon = 0`: the inactive nodes of a Bernoulli prior).

Masks are boolean, ``True`` for a kept node, with the shape of ``lam``: the last axis is the layer's
nodes, any leading axes (posterior draws, networks) are batched.  Pure ``jax.numpy``: jittable and
``vmap``-able; NumPy arrays in give JAX arrays out.
"""

from __future__ import annotations

import jax.numpy as jnp

from .errors import InputError
from .validation import check_in_interval, check_nonnegative

__all__ = ["num_removed", "prune_mask"]


def num_removed(width: int, fraction: float) -> int:
    """:math:`\\mathrm{round}(f p)`: how many of ``width`` nodes pruning a ``fraction`` removes."""
    return int(round(check_in_interval("fraction", fraction, 0.0, 1.0) * width))


def prune_mask(lam, fraction=None, *, eps=None):
    """Boolean mask (``True``: kept) over the last axis of ``lam``: remove ``fraction`` of the nodes, those
    with the smallest variances, or (``eps``) every node with variance ``<= eps``.  Give exactly one."""
    if (fraction is None) == (eps is None):
        raise InputError("give exactly one of fraction (share of nodes removed, in [0, 1]) or eps (threshold >= 0)")
    lam = jnp.asarray(lam)
    if eps is not None:
        return lam > check_nonnegative("eps", eps)
    keep = lam.shape[-1] - num_removed(lam.shape[-1], fraction)
    # position of each node in decreasing order of lambda (stable: ties by index); the first `keep` stay
    rank = jnp.argsort(jnp.argsort(-lam, axis=-1, stable=True), axis=-1, stable=True)
    return rank < keep
