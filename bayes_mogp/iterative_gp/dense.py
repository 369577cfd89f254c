r"""The dense path of :func:`~.predict.exact_gp_predict` (:class:`~.solvers.Cholesky`).

The kernel matrices :math:`K` (n, n), :math:`K(X_*, X)` (m, n) and, for the variance, the diagonal
:math:`k(x_*, x_*)` are computed in float64 with the closed forms of :mod:`bayes_mogp.kernels`.  Then, with
``precision="mixed"``, :math:`(K + \sigma^2 I)^{-1}` applied to the outputs (and to the exact-variance test
points' kernel columns) by a float32 Cholesky factor with float64 iterative refinement
(:func:`bayes_mogp.numerics.mixed_precision_cholesky_solve`): mean :math:`K_* A`, variance
:math:`k_{**} - k_*^\top (K + \sigma^2 I)^{-1} k_*`.  With ``precision="float64"``, or where the mixed
solve falls back, :math:`K + \sigma^2 I = L L^\top` in float64 (adaptive jitter): mean
:math:`K_*(K + \sigma^2 I)^{-1}Y`, variance :math:`k_{**} - \|L^{-1} K_*^\top\|^2` column by column.

The factorisation and the solves call LAPACK through SciPy (:func:`bayes_mogp.numerics.lapack_cholesky_with_jitter`,
``cho_solve``, ``solve_triangular``) rather than :func:`bayes_mogp.gp.gp_posterior`: the results are the same
to rounding (``tests/test_iterative_gp.py``), and this path runs once per problem size, where XLA would
first compile the factorisation and the solves for that n (about 0.5 s at n = 4000 on two cores; see
``benchmarks/bench_iterative_gp.py``).  Why float32 with refinement: at n = 10^4 the float64 factorisation
(n^3 / 3 flops) is about a third of the dense path's time (the kernels most of the rest), ``spotrf`` runs at
about twice ``dpotrf``'s rate, and the refinement's products are O(n^2) per right-hand side: the solve stage
took 3.3 s instead of 4.5 s in the benchmark.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from ..kernels import kernel_diagonals, nngp_kernel, ntk_kernel
from ..numerics import lapack_cholesky_with_jitter, mixed_precision_cholesky_solve
from .operator import KernelSpec
from .solvers import MIXED_MAX_COLUMNS

__all__ = ["solve_dense"]


def solve_dense(xtr, y, xte, spec: KernelSpec, noise_var: float, variance: str, vidx, emit, precision: str = "mixed"):
    """Mean (m, C), variance at the test indices ``vidx`` (None unless ``variance == "exact"``) and the
    solver's report; ``emit(stage, done, total)`` the progress callback; ``precision`` the
    :class:`~.solvers.Cholesky` record's."""
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
    ks = np.asarray(ks)
    y = np.asarray(y, dtype=np.float64)
    c = y.shape[1]
    num_var = len(vidx) if kss is not None else 0
    mean = var = None
    mixed = {"precision": "float64", "refinements": 0, "backward_error": None, "fallback": None}
    if precision == "mixed" and c + num_var > MIXED_MAX_COLUMNS:
        mixed["fallback"] = (f"{c + num_var} right-hand sides (outputs + exact-variance points) > "
                             f"{MIXED_MAX_COLUMNS}: one float64 factorisation serves them all")
    elif precision == "mixed":
        rhs = np.concatenate([y, ks[vidx].T], axis=1) if num_var else y
        sol = mixed_precision_cholesky_solve(np.asarray(k), rhs, shift=noise_var)
        mixed.update(refinements=sol.refinements, backward_error=sol.backward_error, fallback=sol.reason)
        if sol.x is not None:
            mixed["precision"] = "mixed"
            mean = ks @ sol.x[:, :c]
            if num_var:
                var = np.asarray(kss)[vidx] - np.sum(ks[vidx].T * sol.x[:, c:], axis=0)
            jitter = 0.0
    if mean is None:
        chol, jitter = lapack_cholesky_with_jitter(k, shift=noise_var)
        mean = ks @ cho_solve((chol, True), y, check_finite=False)
        if kss is not None:
            v = solve_triangular(chol, ks[vidx].T, lower=True, check_finite=False)  # (n, len(vidx))
            var = np.asarray(kss)[vidx] - np.sum(v * v, axis=0)
    emit("cholesky", 1, 1)
    t2 = time.perf_counter()
    storage = "dense-mixed" if mixed["precision"] == "mixed" else "dense-float64"
    more = {"storage": storage, "iterations": 0, "residual": None, "residual_exact": None, "converged": True,
            "jitter": float(jitter), "precision": mixed["precision"], "precision_fallback": mixed["fallback"],
            "refinements": mixed["refinements"], "backward_error": mixed["backward_error"],
            "stage_seconds": {"kernel": t1 - t0, "solve": t2 - t1}}
    return mean, var, more
