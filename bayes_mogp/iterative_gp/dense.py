r"""The dense path of :func:`~.predict.exact_gp_predict` (:class:`~.solvers.Cholesky`).

The kernel matrices :math:`K` (n, n), :math:`K(X_*, X)` (m, n) and, for the variance, the diagonal
:math:`k(x_*, x_*)` are computed in float64 with the closed forms of :mod:`bayes_mogp.kernels`, then
:math:`K + \sigma^2 I = L L^\top` (Cholesky with adaptive jitter): mean :math:`K_*(K + \sigma^2 I)^{-1}Y`,
variance :math:`k_{**} - \|L^{-1} K_*^\top\|^2` column by column (exact).

The factorisation and the solves call LAPACK through SciPy (:func:`bayes_mogp.numerics.lapack_cholesky_with_jitter`,
``cho_solve``, ``solve_triangular``) rather than :func:`bayes_mogp.gp.gp_posterior`: the results are the same
to rounding (``tests/test_iterative_gp.py``), and this path runs once per problem size, where XLA would
first compile the factorisation and the solves for that n (about 0.5 s at n = 4000 on two cores; see
``benchmarks/bench_iterative_gp.py``).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from ..kernels import kernel_diagonals, nngp_kernel, ntk_kernel
from ..numerics import lapack_cholesky_with_jitter
from .operator import KernelSpec

__all__ = ["solve_dense"]


def solve_dense(xtr, y, xte, spec: KernelSpec, noise_var: float, variance: str, vidx, emit):
    """Mean (m, C), variance at the test indices ``vidx`` (None unless ``variance == "exact"``) and the
    solver's report; ``emit(stage, done, total)`` the progress callback."""
    from scipy.linalg import cho_solve, solve_triangular

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
    chol, jitter = lapack_cholesky_with_jitter(k, shift=noise_var)
    ks = np.asarray(ks)
    mean = ks @ cho_solve((chol, True), np.asarray(y, dtype=np.float64), check_finite=False)
    var = None
    if kss is not None:
        v = solve_triangular(chol, ks[vidx].T, lower=True, check_finite=False)  # (n, len(vidx))
        var = np.asarray(kss)[vidx] - np.sum(v * v, axis=0)
    emit("cholesky", 1, 1)
    t2 = time.perf_counter()
    more = {"storage": "dense-float64", "iterations": 0, "residual": None, "residual_exact": None,
            "converged": True, "jitter": float(jitter), "stage_seconds": {"kernel": t1 - t0, "solve": t2 - t1}}
    return mean, var, more
