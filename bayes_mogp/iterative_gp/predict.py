r"""The public entry point: :func:`exact_gp_predict`, its result :class:`ExactGPResult` and :class:`Progress`.

One call checks the inputs, lets :func:`~.solvers.choose_solver` pick the solver, and runs the dense path
(:mod:`.dense`, :func:`bayes_mogp.gp.gp_posterior` on float64 kernel matrices) or the CG path
(:mod:`.iterative`: the sharded :class:`~.operator.KernelOperator`, a pivoted-Cholesky preconditioner and
:func:`~.pcg.pcg`), with the variances of :mod:`.variance`.  The package docstring has the maths.

>>> import jax
>>> from bayes_mogp.iterative_gp import CG, KernelSpec, exact_gp_predict
>>> res = exact_gp_predict(x_train, y_train, x_test, KernelSpec("nngp", depth=3), 1e-3,
...                        key=jax.random.key(0), solver=CG(tol=1e-6))          # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

import jax
import numpy as np

from ..errors import InputError, InputTypeError
from ..memory import PeakRSS
from ..numerics import require_x64
from ..validation import check_choice, check_finite_array, check_int, check_nonnegative
from .dense import solve_dense
from .iterative import JOINT_MAX, plan_cg, solve_cg
from .memory_model import GIB, memory_estimate, memory_limit_bytes
from .operator import KernelSpec, make_mesh
from .solvers import CG, Auto, Cholesky, as_solver, check_key, choose_solver
from .variance import VARIANCES, VarianceRequest

__all__ = ["Progress", "ExactGPResult", "exact_gp_predict"]


class Progress(NamedTuple):
    """One progress event, passed to the ``progress`` callback of :func:`exact_gp_predict`.

    ``stage``: ``"kernel"`` (row blocks of stored tiles), ``"preconditioner"`` (pivots),
    ``"cg"`` (iterations; ``total`` is ``max_iter``), ``"refine"`` (exact-residual passes),
    ``"predict"`` (test blocks), ``"variance"`` (test points done), ``"cholesky"`` (dense solver).
    """

    stage: str
    done: int
    total: int | None
    residual: float | None = None  # largest relative residual so far (stages "cg", "refine", "variance")


class ExactGPResult(NamedTuple):
    """Predictive mean and variance of :func:`exact_gp_predict`."""

    mean: np.ndarray  # (m, C) posterior mean of f at the test points
    var: np.ndarray | None  # (s,) posterior variance of f (shared by the C outputs), None if not asked
    var_indices: np.ndarray | None  # (s,) test indices of ``var`` (all m: arange(m))
    info: dict  # solver, iterations, residuals, memory, seconds, ... (see exact_gp_predict)


def _check_inputs(x_train, y_train, x_test):
    xtr = np.asarray(check_finite_array("x_train", x_train, ndim=2), dtype=np.float64)
    xte = np.asarray(check_finite_array("x_test", x_test, ndim=2), dtype=np.float64)
    y = np.asarray(check_finite_array("y_train", y_train), dtype=np.float64)
    n, d = xtr.shape
    if n < 1:
        raise InputError("x_train must have at least one row, got shape (0, d)")
    if xte.shape[0] < 1:
        raise InputError("x_test must have at least one row, got shape (0, d)")
    if xte.shape[1] != d:
        raise InputError(f"x_test must have {d} columns like x_train, got shape {xte.shape}")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise InputError(f"y_train must have shape ({n},) or ({n}, C), got {np.shape(y_train)}")
    return xtr, y, xte


def _var_indices(var_points, m: int) -> np.ndarray:
    if var_points is None:
        return np.arange(m)
    if isinstance(var_points, (int, np.integer)) and not isinstance(var_points, bool):
        k = check_int("var_points", var_points, minimum=1, maximum=m)
        return np.unique(np.linspace(0, m - 1, k).round().astype(np.int64))
    idx = np.asarray(var_points)
    if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
        raise InputTypeError(f"var_points must be None, an int or a 1-d array of test indices, got {var_points!r}")
    if idx.min() < 0 or idx.max() >= m:
        raise InputError(f"var_points indices must lie in [0, {m - 1}], got range [{idx.min()}, {idx.max()}]")
    return idx.astype(np.int64)


def exact_gp_predict(
    x_train,
    y_train,
    x_test,
    kernel: KernelSpec,
    noise_var: float,
    *,
    key,
    solver: Auto | Cholesky | CG | str = Auto(),
    variance: str = "auto",
    var_points=None,
    var_check_points: int = 0,
    progress: Callable[[Progress], None] | None = None,
) -> ExactGPResult:
    r"""Exact GP posterior at ``x_test`` of the NNGP (or NTK) of a fully-connected network; float64.

    Prior :math:`f \sim GP(0, k)` with ``kernel`` a :class:`~.operator.KernelSpec` (``kind`` ``"nngp"`` or
    ``"ntk"``, ``depth``, ``activation``, ``w_var``, ``b_var``, as :func:`bayes_mogp.kernels.nngp_kernel`),
    targets :math:`Y = f(X) + \epsilon`, :math:`\epsilon \sim N(0, \sigma^2 I)`, ``noise_var``
    :math:`\sigma^2` (absolute; the package's baselines use ``1e-3 * mean diag K``; > 0 for CG).  For
    ``"ntk"`` the mean is the NTK ensemble's at :math:`t = \infty` with ``diag_reg = noise_var`` and the
    variance that of the GP with covariance :math:`\Theta` (for the ensemble's variance see
    :func:`bayes_mogp.gp.ntk_ensemble_predict`).

    Shapes: ``x_train`` (n, d), ``y_train`` (n,) or (n, C), ``x_test`` (m, d).

    ``key``: a JAX PRNG key (``jax.random.key(seed)``; a raw ``jax.random.PRNGKey`` is accepted too), always
    given by name.  The CG solver samples the preconditioner's pivots with it (same key, same pivots, same
    numbers; another key moves the result only within the tolerance), so it is required whenever CG runs.
    The dense solver draws nothing: there ``key=None`` is accepted (with :class:`~.solvers.Auto`, pass a
    key if the problem may be large enough for CG).

    ``solver``: :class:`~.solvers.Cholesky` (:func:`bayes_mogp.gp.gp_posterior` on dense float64
    matrices), :class:`~.solvers.CG` (preconditioned CG on the sharded kernel operator, with its options:
    tolerance, iterations, preconditioner rank, storage, refinement, tile size, devices, memory budget) or
    :class:`~.solvers.Auto` (default: Cholesky when ``n <= dense_max_n`` and its memory estimate fits the
    budget, else its ``cg``; :func:`~.solvers.choose_solver`); the names ``"auto"``, ``"cholesky"``,
    ``"cg"`` stand for the defaults of each.

    ``variance``: ``"exact"`` (posterior variance :math:`k_{**} - k_*^\top (K + \sigma^2 I)^{-1} k_*`;
    with CG by extra PCG solves with right-hand sides :math:`K(X, x_*)`, cost per test point about
    that of one output column), ``"nystrom"`` (CG only: the DTC approximation from the
    preconditioner's pivots, O(m r^2), larger than the exact variance in our measurements), ``"none"``,
    or ``"auto"`` (exact with Cholesky, nystrom with CG).  ``var_points``: ``None`` (all test points),
    an int k (k evenly spaced test points) or an index array; the result's ``var_indices`` says which.
    With CG, exact variances of at most ``32 - C`` test points are solved together with the outputs (one
    PCG run; a product costs about the same for up to ~16-32 columns as for C), more in further
    batches of 128.  ``var_check_points`` (CG only, default 0, at most ``32 - C``): at k evenly spaced
    test points compute both the exact variance (with the outputs' solve) and the Nystrom one,
    reported in ``info["var_check"]``: a measured check of the approximation on every run.

    ``progress``: ``None`` or a callable receiving :class:`Progress` events, e.g. a tqdm bar per stage::

        bars = {}
        def progress(ev):
            if ev.stage not in bars:
                bars[ev.stage] = tqdm(desc=ev.stage, total=ev.total, file=sys.stderr)
            bars[ev.stage].update(ev.done - bars[ev.stage].n)
            if ev.residual is not None:
                bars[ev.stage].set_postfix(residual=f"{ev.residual:.1e}")

    Returns :class:`ExactGPResult`; ``info`` holds ``solver`` (the name of the solver that ran) and
    ``solver_reason``, ``solver_options`` (its fields, with CG's rank and storage as used), ``storage``,
    ``iterations``, ``residual`` (final relative residual, max over outputs, for the operator solved),
    ``residual_exact`` (same for the float64 kernel when ``refine``; else ``None``), ``converged``,
    ``precond_rank``, ``precond_residual_trace`` (:math:`\operatorname{tr}(K - LL^\top)/\operatorname{tr}K`),
    ``jitter``, ``amplitude`` (CG: :math:`\operatorname{tr}(Y^\top A^{-1} Y)/(nC)`, the maximum-likelihood
    prior scale), ``variance`` (method used), ``memory_estimate_gb``, ``memory_limit_gb``,
    ``peak_rss_gb`` (sampled peak resident memory of the process during the call), ``seconds`` (total)
    and ``stage_seconds``, ``devices``, ``layout``; the dense solver's ``precision`` (``"mixed"`` or
    ``"float64"``, as run), ``precision_fallback`` (why a mixed solve fell back to float64, else None),
    ``refinements`` and ``backward_error`` (:func:`bayes_mogp.numerics.mixed_precision_cholesky_solve`).

    Raises :class:`~bayes_mogp.errors.InputError` (a ``ValueError``) or
    :class:`~bayes_mogp.errors.InputTypeError` (also a ``TypeError``) naming the parameter for bad inputs
    (NaN/Inf, shapes, ranges, types).
    """
    require_x64("exact_gp_predict")
    xtr, y, xte = _check_inputs(x_train, y_train, x_test)
    n, d = xtr.shape
    m, c = xte.shape[0], y.shape[1]
    if not isinstance(kernel, KernelSpec):
        raise InputTypeError(f"kernel must be a KernelSpec(kind, depth, activation, w_var, b_var), "
                             f"got {type(kernel).__name__}")
    noise_var = check_nonnegative("noise_var", noise_var)
    solver = as_solver(solver)
    solver_used, reason = choose_solver(solver, n, m, d, c)
    check_choice("variance", variance, VARIANCES)
    vidx = _var_indices(var_points, m)
    n_check = check_int("var_check_points", var_check_points, minimum=0, maximum=max(0, min(m, JOINT_MAX - c)))
    check_idx = _var_indices(n_check, m) if n_check else np.zeros(0, np.int64)
    is_cg = isinstance(solver_used, CG)
    key = check_key(key, required=is_cg)
    if progress is not None and not callable(progress):
        raise InputTypeError(f"progress must be None or a callable taking a Progress event, got {type(progress).__name__}")
    if is_cg and not noise_var > 0:
        raise InputError("noise_var must be > 0 for the CG solver (the preconditioner divides by it), got 0.0; "
                         "use solver=Cholesky() for noise-free interpolation")
    if variance == "nystrom" and not is_cg:
        method = "exact"  # the dense solver has the exact variances at no extra cost
    elif variance == "auto":
        method = "nystrom" if is_cg else "exact"
    else:
        method = variance
    emit = (lambda *a: progress(Progress(*a))) if progress is not None else (lambda *a: None)

    if is_cg:
        mesh = make_mesh(solver_used.devices)
        ndev = mesh.devices.size
        solver_used, est = plan_cg(solver_used, n, m, d, c, ndev, len(vidx) if method == "exact" else 0)
        limit = memory_limit_bytes(solver_used.memory_limit_gb)
    else:
        ndev = len(jax.devices())
        est = memory_estimate(n, m, d, c, solver="cholesky")
        limit = memory_limit_bytes(solver.memory_limit_gb if isinstance(solver, Auto) else None)
    info = {"solver": solver_used.name, "solver_reason": reason, "solver_options": solver_used.to_dict(),
            "kernel": kernel.kind, "n": n, "m": m, "outputs": c, "noise_var": noise_var,
            "tol": solver_used.tol if is_cg else None, "variance": method, "devices": ndev,
            "memory_limit_gb": limit / GIB, "memory_estimate_gb": est["total"] / GIB}
    t_start = time.perf_counter()
    with PeakRSS() as rss:
        if is_cg:
            mean, var, more = solve_cg(xtr, y, xte, kernel, noise_var, cg=solver_used, mesh=mesh,
                                       variance=VarianceRequest(method, vidx, check_idx), key=key, emit=emit)
        else:
            mean, var, more = solve_dense(xtr, y, xte, kernel, noise_var, method, vidx, emit, solver_used.precision)
        info.update(more)
    info["peak_rss_gb"] = rss.peak / GIB
    info["seconds"] = time.perf_counter() - t_start
    return ExactGPResult(mean, var, None if var is None else vidx, info)
