r"""The two posterior-variance estimators of the CG path: Nystrom (DTC) and exact by PCG.

* :func:`nystrom_variance`: the deterministic-training-conditional variance of the preconditioner's
  Nystrom factor, :math:`k_{**} - \ell_*^\top\ell_* + \sigma^2 \ell_*^\top(\sigma^2 I + L^\top L)^{-1}\ell_*`
  with :math:`\ell_* = L_{PP}^{-1}k(x_P, x_*)` (pivots P), O(r^2) per test point.  It treats the part of
  :math:`k` outside the pivots' span as unexplained by the data, so it over-estimates the exact variance
  for most test points, but it is not a bound; exact at full rank.
* :func:`exact_variance`: :math:`k_{**} - k_*^\top (K + \sigma^2 I)^{-1} k_*`, with
  :math:`(K + \sigma^2 I)^{-1}k_*` from PCG solves whose right-hand sides are the columns
  :math:`K(X, x_*)` (batches of 128 test points); each test point costs about as much as one output column.
  (Few test points ride along with the outputs' own solve instead, :mod:`.iterative`.)

:class:`VarianceRequest` says which estimator runs and at which test points.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ..kernels import nngp_kernel, ntk_kernel
from .operator import kernel_columns, kernel_diagonal, pad_rows, query_chain
from .pcg import pcg

__all__ = ["VARIANCES", "VarianceRequest", "nystrom_variance", "exact_variance"]

VARIANCES = ("auto", "exact", "nystrom", "none")


class VarianceRequest(NamedTuple):
    """The variances a solve computes: ``method`` (``"exact"``, ``"nystrom"`` or ``"none"``) at the test
    indices ``indices`` (s,), and both, for comparison, at the test indices ``check`` (CG only)."""

    method: str
    indices: np.ndarray
    check: np.ndarray


def nystrom_variance(op, chol, pre, xtr, xq, noise_var, spec):
    r"""DTC variance (s,) at the query points ``xq`` from the pivoted-Cholesky factor ``chol`` (module docstring)."""
    piv = chol.pivots
    kfun = nngp_kernel if spec.kind == "nngp" else ntk_kernel
    k_pq = np.asarray(kfun(xtr[piv], xq, **spec.kernel_kwargs))  # (r, s)
    quad = np.asarray(_dtc_terms(pre.pivot_rows, pre.core, k_pq, noise_var))  # L_PP: lower triangular, pivot order
    return kernel_diagonal(spec, xq) - quad


@jax.jit
def _dtc_terms(l_pp, core, k_pq, noise_var):
    r""":math:`\ell^\top\ell - \sigma^2 \ell^\top (\sigma^2 I + L^\top L)^{-1} \ell` per column, :math:`\ell = L_{PP}^{-1} k_{P*}`."""
    ell = jsl.solve_triangular(l_pp, k_pq, lower=True)
    v = jsl.cho_solve((core, True), ell)
    return jnp.sum(ell * ell, axis=0) - noise_var * jnp.sum(ell * v, axis=0)


def exact_variance(op, pre, xq, kss, *, tol, max_iter, emit, fetch, batch: int = 128):
    r""":math:`k_{**} - k_*^\top (K + \sigma^2 I)^{-1} k_*` (s,) by PCG with right-hand sides :math:`K(X, x_*)`,
    and ``{"var_iterations", "var_residual"}``; ``kss`` (s,) the prior variances at ``xq``."""
    s = xq.shape[0]
    bq = min(batch, s)
    out, its, worst = [], 0, 0.0
    for i in range(math.ceil(s / bq)):
        xi = pad_rows(xq[i * bq: (i + 1) * bq], bq)
        di = query_chain(op.spec, xi)
        rhs = kernel_columns(op, xi, di)  # (num_blocks, b, bq)
        sol = pcg(op, rhs, pre=pre, tol=tol, max_iter=max_iter, replicate=fetch)
        quad = np.asarray(fetch(jnp.sum(rhs * sol.x, axis=(0, 1))))
        out.append(quad)
        its = max(its, sol.iterations)
        worst = max(worst, float(np.max(sol.residual)))
        emit("variance", min((i + 1) * bq, s), s, worst)
    quad = np.concatenate(out)[:s]
    return kss - quad, {"var_iterations": its, "var_residual": worst}
