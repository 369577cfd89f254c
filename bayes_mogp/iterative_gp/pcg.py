r"""Preconditioned conjugate gradients for :math:`A X = B` with several right-hand sides.

Each of the C columns runs its own CG recursion (its own step sizes), all columns sharing one
product :math:`A P` per iteration (the batched CG of Gardner et al. 2018, without the Lanczos
bookkeeping), with preconditioner :math:`M \approx A`:

.. math::

    \alpha_j = \frac{r_j^\top z_j}{p_j^\top A p_j},\quad x_j \mathrel{+}= \alpha_j p_j,\quad
    r_j \mathrel{-}= \alpha_j A p_j,\quad z_j = M^{-1} r_j,\quad
    \beta_j = \frac{r_j^\top z_j}{r_{j,\text{old}}^\top z_{j,\text{old}}},\quad p_j = z_j + \beta_j p_j.

A column stops (its :math:`\alpha_j = 0` from then on) once :math:`\|r_j\| \le \tau_j`, with
:math:`\tau_j = \text{tol}\,\|b_j\|` by default.  Vectors and scalars are float64 whatever the
storage of :math:`A`.  When every column has stopped, the residual is recomputed as
:math:`B - A X` (the recursive residual drifts from the true one by rounding) and CG restarts from
:math:`X` if the recomputed residual misses the tolerance; the recomputed residual is the one returned.

Why not ``jax.scipy.sparse.linalg.cg``: it runs one recursion on the whole (n, C) block (one step
size for all columns, which converges like the worst column and couples them), inside a
``while_loop`` that offers no per-iteration hook for a progress bar or a Python-side stopping
decision, and it does not return the residual it reached.
"""

from __future__ import annotations

import warnings
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["PCGResult", "pcg", "residual"]


class PCGResult(NamedTuple):
    """Solution and convergence record of :func:`pcg`."""

    x: jax.Array  # solution, the shape and sharding of b
    iterations: int  # products A P in the CG recursion (the final residual check not counted)
    residual: np.ndarray  # (C,) ||b_j - A x_j|| / ||b_j||, recomputed explicitly at the end
    converged: bool  # every column reached its threshold (recomputed residual)
    history: np.ndarray  # (iterations,) the largest relative (recursive) residual after each iteration


def _coldot(a, b):
    """Column inner products of (..., C) arrays: sum over all but the last axis."""
    return jnp.sum(a * b, axis=tuple(range(a.ndim - 1)))


@jax.jit
def _precondition(pre, r):
    z = pre.apply(r)
    return z, _coldot(r, z), jnp.sqrt(_coldot(r, r))


@jax.jit
def residual(op, b, x):
    """:math:`B - A X` and its column norms (C,)."""
    r = b - op.matvec(x)
    return r, jnp.sqrt(_coldot(r, r))


@jax.jit
def _step(op, pre, x, r, p, rz, thr, rnorm):
    active = rnorm > thr
    q = op.matvec(p)
    pq = _coldot(p, q)
    ok = active & (pq > 0)
    alpha = jnp.where(ok, rz / jnp.where(ok, pq, 1.0), 0.0)
    x = x + alpha * p
    r = r - alpha * q
    rnorm = jnp.where(active, jnp.sqrt(_coldot(r, r)), rnorm)
    z = pre.apply(r)
    rz_new = _coldot(r, z)
    ok = active & (rz > 0)
    beta = jnp.where(ok, rz_new / jnp.where(ok, rz, 1.0), 0.0)
    p = z + beta * p
    return x, r, p, rz_new, rnorm


def pcg(op, b, *, pre, tol: float, max_iter: int, x0=None, atol=None, scale=None, restarts: int = 2,
        progress: Callable[[int, float], None] | None = None, replicate=None) -> PCGResult:
    r"""Solve :math:`A X = B` column by column with preconditioned CG (module docstring).

    ``op`` a pytree with ``op.matvec(v)`` (:math:`A v`) and ``pre`` one with ``pre.apply(v)``
    (:math:`M^{-1} v`), both jittable, for arrays shaped like ``b`` (..., C); ``tol`` the relative
    residual tolerance; ``atol`` (C,) optional absolute thresholds on :math:`\|r_j\|` replacing
    ``tol * ||b_j||``; ``scale`` (C,) the norms that residuals are reported relative to (default
    :math:`\|b_j\|`; a correction solve reports relative to the original right-hand side);
    ``max_iter`` the iteration budget (restarts included); ``x0`` the start (default 0).  ``progress(iteration, max relative residual)`` is called after every iteration.
    ``replicate`` maps a small array to one readable on the host (default ``np.asarray``).
    Returns :class:`PCGResult`; warns (``RuntimeWarning``) if the budget ends before the tolerance.
    """
    fetch = (lambda a: np.asarray(a)) if replicate is None else (lambda a: np.asarray(replicate(a)))
    bnorm = fetch(jnp.sqrt(_coldot(b, b)))
    thr = tol * bnorm if atol is None else np.asarray(atol, np.float64)
    scale = bnorm if scale is None else np.asarray(scale, np.float64)
    scale = np.where(scale > 0, scale, 1.0)
    if x0 is None:
        x, r = b - b, b  # zeros with the sharding of b
    else:
        x = x0
        r, _ = residual(op, b, x)
    thr_dev = np.asarray(thr)
    history = []
    it = 0
    for _ in range(restarts + 1):
        p, rz, rnorm = _precondition(pre, r)
        rn = fetch(rnorm)
        while it < max_iter and np.any(rn > thr):
            x, r, p, rz, rnorm = _step(op, pre, x, r, p, rz, thr_dev, rnorm)
            rn = fetch(rnorm)
            it += 1
            history.append(float(np.max(rn / scale)))
            if progress is not None:
                progress(it, history[-1])
        r, rnorm = residual(op, b, x)  # the true residual, not the recursive one
        true = fetch(rnorm)
        rel = true / scale
        if np.all(true <= thr) or it >= max_iter:
            break
    converged = bool(np.all(true <= thr))
    if not converged:
        warnings.warn(f"CG stopped after {it} iterations (max_iter) with relative residual {rel.max():.2e} "
                      f"> tol {np.max(thr / scale):.1e}; raise max_iter or the preconditioner rank",
                      RuntimeWarning, stacklevel=2)
    return PCGResult(x, it, rel, converged, np.asarray(history))
