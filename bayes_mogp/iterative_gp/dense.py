r"""The dense path of :func:`~.predict.exact_gp_predict` (:class:`~.solvers.Cholesky`).

The kernel matrices :math:`K` (n, n), :math:`K(X_*, X)` (m, n) and, for the variance, the diagonal
:math:`k(x_*, x_*)` are computed in float64 with the closed forms of :mod:`bayes_mogp.kernels`, and
:func:`bayes_mogp.gp.gp_posterior` factorises :math:`K + \sigma^2 I` (Cholesky with adaptive jitter):
mean :math:`K_*(K + \sigma^2 I)^{-1}Y`, variance :math:`k_{**} - K_*(K + \sigma^2 I)^{-1}K_*^\top` (exact).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from ..kernels import kernel_diagonals, nngp_kernel, ntk_kernel
from .operator import KernelSpec

__all__ = ["solve_dense"]


def solve_dense(xtr, y, xte, spec: KernelSpec, noise_var: float, variance: str, vidx, emit):
    """Mean (m, C), variance at the test indices ``vidx`` (None unless ``variance == "exact"``) and the
    solver's report; ``emit(stage, done, total)`` the progress callback."""
    from ..gp import gp_posterior

    t0 = time.perf_counter()
    emit("cholesky", 0, 1)
    kfun = nngp_kernel if spec.kind == "nngp" else ntk_kernel
    kw = spec.kernel_kwargs
    k = kfun(xtr, **kw)
    ks = kfun(xte, xtr, **kw)
    kss = None
    if variance == "exact":
        nngp_d, ntk_d = kernel_diagonals(xte, **kw)
        kss = nngp_d if spec.kind == "nngp" else ntk_d
    jax.block_until_ready((k, ks, kss))  # JAX dispatches asynchronously: without this, the kernels' time is the solve's
    t1 = time.perf_counter()
    post = gp_posterior(k, ks, y, noise_var=noise_var, k_test_test=kss)
    mean = np.asarray(post.mean)
    var = None if post.var is None else np.asarray(post.var)[vidx]
    emit("cholesky", 1, 1)
    t2 = time.perf_counter()
    more = {"storage": "dense-float64", "iterations": 0, "residual": None, "residual_exact": None,
            "converged": True, "jitter": float(post.jitter), "stage_seconds": {"kernel": t1 - t0, "solve": t2 - t1}}
    return mean, var, more
