r"""Exact GP regression with a fully-connected network's kernel: dense Cholesky or sharded PCG.

:func:`exact_gp_predict` is the entry point (the package docstring has the maths).  Below
``dense_max_n`` training points (and when the dense matrices fit ``memory_limit_gb``) it calls
:func:`bayes_mogp.gp.gp_posterior` on float64 kernel matrices; above, it builds the sharded
:class:`~.operator.KernelOperator`, a pivoted-Cholesky preconditioner, and solves with :func:`~.pcg.pcg`.
"""

from __future__ import annotations

import math
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ..kernels import kernel_diagonals, nngp_kernel, ntk_kernel
from ..memory import PeakRSS, physical_memory
from ..kernels.closed_form import ACTIVATIONS
from ..numerics import require_x64
from ..validation import check_choice, check_finite_array, check_in_interval, check_int, check_nonnegative, check_positive
from .operator import (
    KERNELS,
    KernelSpec,
    build_operator,
    cross_matmul,
    kernel_columns,
    make_layout,
    make_mesh,
    query_chain,
    replicated,
    store_tiles,
    to_blocks,
)
from .pcg import pcg
from .pcg import residual as true_residual
from .preconditioner import pivoted_cholesky, woodbury_preconditioner
from ..errors import InputError, InputTypeError

__all__ = ["SOLVERS", "VARIANCES", "Progress", "ExactGPResult", "exact_gp_predict", "memory_estimate"]

SOLVERS = ("auto", "cholesky", "cg")
VARIANCES = ("auto", "exact", "nystrom", "none")
STORAGES = ("auto", "float32", "recompute")
DENSE_MAX_N = 10_000
BLOCK_SIZE = 512  # tile edge: float32 tiles of 1 MB; measured no slower than 256-1024 per product on 2 CPU cores
JOINT_MAX = 32  # exact-variance right-hand sides solved together with the outputs while the total is at most this
GIB = 2.0**30


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


def memory_estimate(n: int, m: int, d: int, num_outputs: int, *, solver: str, storage: str = "float32",
                    precond_rank: int = 3000, block_size: int = BLOCK_SIZE, num_devices: int = 1,
                    var_points: int = 0, var_batch: int = 128) -> dict:
    """Estimated bytes of the largest arrays of :func:`exact_gp_predict` (host and devices together).

    ``solver`` ``"cholesky"``: K, K + sigma^2 I, its symmetrised copy and factor (4 n^2 float64) and the
    test-train kernel with its triangular solve (2 m n).  ``"cg"``: the tile storage (float32, about
    n^2 / 2 entries; none when ``storage="recompute"``), the pivoted-Cholesky factor (n x r float64)
    and its work space while it is built (about n x (1.1 r + 256), freed before the tiles are
    allocated, so only the larger of the two counts), inputs, CG vectors, kernel-block temporaries
    and the variance right-hand sides.  Returns a dict of components (bytes) and ``"total"``.
    """
    f8 = 8
    if solver == "cholesky":
        out = {"kernel_and_factor": 4 * n * n * f8, "test_train": 2 * m * n * f8, "inputs": (n + m) * d * f8}
        out["total"] = sum(out.values())
        return out
    lay = make_layout(n, num_devices, block_size)
    npad, b = lay.padded, lay.block
    r = min(precond_rank, n)
    out = {
        "tiles": lay.storage_bytes() if storage == "float32" else 0,
        "preconditioner": npad * r * f8 + 2 * r * r * f8,
        "preconditioner_workspace": npad * (11 * r // 10 + 2 * min(128, r)) * f8,
        "inputs": (npad + m) * d * f8 * 2,
        "vectors": 10 * npad * num_outputs * f8,
        "block_temporaries": 12 * b * b * f8 * num_devices,
        "variance": 6 * npad * min(var_points, var_batch) * f8,
    }
    out["total"] = sum(v for k, v in out.items() if k not in ("tiles", "preconditioner_workspace")) + max(
        out["tiles"], out["preconditioner_workspace"])
    return out


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
    *,
    depth: int,
    activation: str = "relu",
    w_var: float = 2.0,
    b_var: float = 0.0,
    kernel: str = "nngp",
    noise_var: float,
    solver: str = "auto",
    tol: float = 1e-5,
    max_iter: int = 1000,
    precond_rank: int | None = None,
    variance: str = "auto",
    var_points=None,
    var_check_points: int = 0,
    storage: str = "auto",
    refine: bool = False,
    memory_limit_gb: float | None = None,
    dense_max_n: int = DENSE_MAX_N,
    block_size: int = BLOCK_SIZE,
    devices=None,
    key=None,
    progress: Callable[[Progress], None] | None = None,
) -> ExactGPResult:
    r"""Exact GP posterior at ``x_test`` of the NNGP (or NTK) of a fully-connected network; float64.

    Prior :math:`f \sim GP(0, k)` with ``kernel`` ``"nngp"`` or ``"ntk"`` of a ``depth``-hidden-layer
    network (``activation``, ``w_var``, ``b_var``, as :func:`bayes_mogp.kernels.nngp_kernel`), targets
    :math:`Y = f(X) + \epsilon`, :math:`\epsilon \sim N(0, \sigma^2 I)`, ``noise_var`` :math:`\sigma^2`
    (absolute; the package's baselines use ``1e-3 * mean diag K``).  For ``"ntk"`` the mean is the NTK
    ensemble's at :math:`t = \infty` with ``diag_reg = noise_var`` and the variance that of the GP
    with covariance :math:`\Theta` (for the ensemble's variance see :func:`bayes_mogp.gp.ntk_ensemble_predict`).

    Shapes: ``x_train`` (n, d), ``y_train`` (n,) or (n, C), ``x_test`` (m, d).

    ``solver``: ``"cholesky"`` (:func:`bayes_mogp.gp.gp_posterior` on dense float64 matrices),
    ``"cg"`` (preconditioned CG on the sharded kernel operator), ``"auto"`` (Cholesky when
    ``n <= dense_max_n`` and its memory estimate fits ``memory_limit_gb``, else CG).

    CG options: ``tol`` in [1e-12, 1): stop when every output's relative residual
    :math:`\|y_j - (K + \sigma^2 I)\alpha_j\| / \|y_j\|` is below it (recomputed at the end and
    reported); ``max_iter``; ``precond_rank`` the pivoted-Cholesky rank (default
    ``min(n, max(100, min(3000, n // 8)))``); ``storage`` ``"float32"`` (tiles of K stored once),
    ``"recompute"`` (tiles recomputed in float64 at every product: no storage, much slower) or
    ``"auto"`` (float32 when :func:`memory_estimate` fits ``memory_limit_gb``, default 75% of the
    physical memory); ``refine`` (float32 storage only): recompute the residual with the float64
    kernel (one extra pass over K) and, while it misses ``tol``, solve for a correction with the
    stored operator (mixed-precision iterative refinement, at most 2 rounds); ``block_size`` the tile
    edge (and the test-block size of the predictions); ``key`` the JAX PRNG key of the
    preconditioner's sampled pivots (default ``jax.random.key(0)``; it moves the result only within
    the tolerance); ``devices`` (default ``jax.devices()``) the
    devices the rows of K are sharded over; ``dense_max_n`` the largest n for which ``"auto"`` picks
    Cholesky; ``memory_limit_gb`` the budget of the automatic choices (the process's resident
    memory; on accelerators compare it with the sum of the devices' memory).

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

    Returns :class:`ExactGPResult`; ``info`` holds ``solver`` (and ``solver_reason``), ``storage``,
    ``iterations``, ``residual`` (final relative residual, max over outputs, for the operator solved),
    ``residual_exact`` (same for the float64 kernel when ``refine``; else ``None``), ``converged``,
    ``precond_rank``, ``precond_residual_trace`` (:math:`\operatorname{tr}(K - LL^\top)/\operatorname{tr}K`),
    ``jitter``, ``amplitude`` (CG: :math:`\operatorname{tr}(Y^\top A^{-1} Y)/(nC)`, the maximum-likelihood
    prior scale), ``variance`` (method used), ``memory_estimate_gb``, ``memory_limit_gb``,
    ``peak_rss_gb`` (sampled peak resident memory of the process during the call), ``seconds`` (total)
    and ``stage_seconds``, ``devices``, ``layout``.

    Raises ``ValueError``/``TypeError`` naming the parameter for bad inputs (NaN/Inf, shapes, ranges).
    """
    require_x64("exact_gp_predict")
    xtr, y, xte = _check_inputs(x_train, y_train, x_test)
    n, d = xtr.shape
    m, c = xte.shape[0], y.shape[1]
    depth = check_int("depth", depth, minimum=1)
    check_choice("activation", activation, ACTIVATIONS)
    w_var = check_positive("w_var", w_var)
    b_var = check_nonnegative("b_var", b_var)
    check_choice("kernel", kernel, KERNELS)
    noise_var = check_nonnegative("noise_var", noise_var)
    check_choice("solver", solver, SOLVERS)
    tol = check_in_interval("tol", tol, 1e-12, 1.0, high_open=True)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    rank = min(n, max(100, min(3000, n // 8))) if precond_rank is None else check_int(
        "precond_rank", precond_rank, minimum=1)
    rank = min(rank, n)
    check_choice("variance", variance, VARIANCES)
    vidx = _var_indices(var_points, m)
    n_check = check_int("var_check_points", var_check_points, minimum=0, maximum=max(0, min(m, JOINT_MAX - c)))
    check_idx = _var_indices(n_check, m) if n_check else np.zeros(0, np.int64)
    check_choice("storage", storage, STORAGES)
    if not isinstance(refine, (bool, np.bool_)):
        raise InputTypeError(f"refine must be True or False, got {refine!r}")
    dense_max_n = check_int("dense_max_n", dense_max_n, minimum=0)
    block_size = check_int("block_size", block_size, minimum=8)
    if key is None:
        key = jax.random.key(0)
    elif not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise InputTypeError(f"key must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}")
    if progress is not None and not callable(progress):
        raise InputTypeError(f"progress must be None or a callable taking a Progress event, got {type(progress).__name__}")
    phys = physical_memory()
    if memory_limit_gb is None:
        limit = 0.75 * phys if phys else 16 * GIB
    else:
        limit = check_positive("memory_limit_gb", memory_limit_gb) * GIB
    mesh = make_mesh(devices)
    ndev = mesh.devices.size

    dense_mem = memory_estimate(n, m, d, c, solver="cholesky")["total"]
    if solver == "auto":
        if n <= dense_max_n and dense_mem <= limit:
            solver_used, reason = "cholesky", f"n = {n} <= dense_max_n = {dense_max_n}"
        else:
            solver_used = "cg"
            reason = (f"n = {n} > dense_max_n = {dense_max_n}" if n > dense_max_n else
                      f"dense estimate {dense_mem / GIB:.1f} GiB > limit {limit / GIB:.1f} GiB")
    else:
        solver_used, reason = solver, "requested"
    if solver_used == "cg" and not noise_var > 0:
        raise InputError("noise_var must be > 0 for the CG solver (the preconditioner divides by it), got 0.0; "
                         "use solver='cholesky' for noise-free interpolation")
    if variance == "nystrom" and solver_used == "cholesky":
        variance_used = "exact"  # the dense solver has the exact variances at no extra cost
    elif variance == "auto":
        variance_used = "exact" if solver_used == "cholesky" else "nystrom"
    else:
        variance_used = variance
    spec = KernelSpec(kernel, depth, activation, w_var, b_var)
    emit = (lambda *a: progress(Progress(*a))) if progress is not None else (lambda *a: None)

    info = {"solver": solver_used, "solver_reason": reason, "kernel": kernel, "n": n, "m": m, "outputs": c,
            "noise_var": noise_var, "tol": tol, "variance": variance_used, "devices": ndev,
            "memory_limit_gb": limit / GIB}
    t_start = time.perf_counter()
    with PeakRSS() as rss:
        if solver_used == "cholesky":
            mean, var, more = _dense(xtr, y, xte, spec, noise_var, variance_used, vidx, emit)
            info["memory_estimate_gb"] = dense_mem / GIB
        else:
            if storage == "auto":
                est = memory_estimate(n, m, d, c, solver="cg", storage="float32", precond_rank=rank,
                                      block_size=block_size, num_devices=ndev,
                                      var_points=len(vidx) if variance_used == "exact" else 0)["total"]
                storage_used = "float32" if est <= limit else "recompute"
            else:
                storage_used = storage
            est = memory_estimate(n, m, d, c, solver="cg", storage=storage_used, precond_rank=rank,
                                  block_size=block_size, num_devices=ndev,
                                  var_points=len(vidx) if variance_used == "exact" else 0)
            info["memory_estimate_gb"] = est["total"] / GIB
            mean, var, more = _iterative(xtr, y, xte, spec, noise_var, mesh=mesh, tol=tol, max_iter=max_iter,
                                         rank=rank, storage=storage_used, refine=bool(refine),
                                         block_size=block_size, variance=variance_used, vidx=vidx,
                                         check_idx=check_idx, key=key, emit=emit)
        info.update(more)
    info["peak_rss_gb"] = rss.peak / GIB
    info["seconds"] = time.perf_counter() - t_start
    if var is None:
        vidx = None
    return ExactGPResult(mean, var, vidx, info)


def _dense(xtr, y, xte, spec, noise_var, variance, vidx, emit):
    from ..gp import gp_posterior

    t0 = time.perf_counter()
    emit("cholesky", 0, 1)
    kfun = nngp_kernel if spec.kind == "nngp" else ntk_kernel
    kw = dict(depth=spec.depth, activation=spec.activation, w_var=spec.w_var, b_var=spec.b_var)
    k = kfun(xtr, **kw)
    ks = kfun(xte, xtr, **kw)
    kss = None
    if variance == "exact":
        nngp_d, ntk_d = kernel_diagonals(xte, **kw)
        kss = nngp_d if spec.kind == "nngp" else ntk_d
    t1 = time.perf_counter()
    post = gp_posterior(k, ks, y, noise_var=noise_var, k_test_test=kss)
    mean = np.asarray(post.mean)
    var = None if post.var is None else np.asarray(post.var)[vidx]
    emit("cholesky", 1, 1)
    t2 = time.perf_counter()
    more = {"storage": "dense-float64", "iterations": 0, "residual": None, "residual_exact": None,
            "converged": True, "jitter": float(post.jitter), "stage_seconds": {"kernel": t1 - t0, "solve": t2 - t1}}
    return mean, var, more


def _iterative(xtr, y, xte, spec, noise_var, *, mesh, tol, max_iter, rank, storage, refine, block_size,
               variance, vidx, check_idx, key, emit):
    stage = {}
    c = y.shape[1]
    # the preconditioner first (its kernel columns come from the inputs), then the tiles: the
    # pivoted-Cholesky work space is freed before the largest array is allocated
    t = time.perf_counter()
    op = build_operator(xtr, spec, noise_var, mesh=mesh, block_size=block_size, storage="recompute")
    lay = op.layout
    chol = pivoted_cholesky(op, _diagonal(xtr, spec), rank, key=key,
                            progress=lambda done, total: emit("preconditioner", done, total))
    pre, pre_jitter = woodbury_preconditioner(chol, noise_var, mesh)
    stage["preconditioner"] = time.perf_counter() - t

    t = time.perf_counter()
    if storage == "float32":
        op = store_tiles(op, xtr, progress=lambda s, done, total: emit(s, done, total))
        jax.block_until_ready(op.tiles)
    stage["kernel"] = time.perf_counter() - t

    # exact variances at few test points ride along with the outputs: one solve, [Y, K(X, x_J)]
    t = time.perf_counter()
    fetch = lambda a: replicated(mesh, a)  # noqa: E731
    yb = to_blocks(op, y)
    joint = check_idx
    if variance == "exact" and np.union1d(vidx, check_idx).size + c <= JOINT_MAX:
        joint = np.union1d(vidx, check_idx)
    rhs = yb
    if joint.size:
        xj = xte[joint]
        kj = kernel_columns(op, xj, query_chain(spec, xj))
        rhs = jnp.concatenate([yb, kj], axis=-1)
    sol = pcg(op, rhs, pre=pre, tol=tol, max_iter=max_iter, replicate=fetch,
              progress=lambda it, res: emit("cg", it, max_iter, res))
    alpha, iterations, residual, converged = sol.x[..., :c], sol.iterations, sol.residual[:c], sol.converged
    joint_var = {}
    if joint.size:
        quad = np.asarray(fetch(jnp.sum(rhs[..., c:] * sol.x[..., c:], axis=(0, 1))))
        joint_var = dict(zip(joint.tolist(), (_diagonal(xte[joint], spec) - quad).tolist()))
    stage["cg"] = time.perf_counter() - t

    residual_exact, refinements = None, 0
    if refine and op.tiles is not None:
        # mixed-precision iterative refinement on the outputs' columns; arrays keep the width of `rhs`
        # (variance columns zeroed) so that the compiled CG steps are reused
        t = time.perf_counter()
        exact = op.exact()
        ynorm = np.sqrt(np.sum(y * y, axis=0))
        scale = np.where(ynorm > 0, ynorm, 1.0)
        keep = np.zeros(rhs.shape[-1])
        keep[:c] = 1.0
        width = np.concatenate([ynorm, np.ones(rhs.shape[-1] - c)])
        x_full = sol.x * keep
        for round_ in range(3):
            r, rnorm = true_residual(exact, rhs * keep, x_full)
            residual_exact = np.asarray(fetch(rnorm))[:c] / scale
            emit("refine", round_ + 1, 3, float(residual_exact.max()))
            if np.all(residual_exact <= tol) or round_ == 2:
                break
            corr = pcg(op, r, pre=pre, tol=tol, atol=np.concatenate([0.5 * tol * ynorm, np.zeros(rhs.shape[-1] - c)]),
                       scale=width, max_iter=max_iter, replicate=fetch,
                       progress=lambda it, res: emit("cg", iterations + it, max_iter, res))
            x_full = x_full + corr.x
            iterations += corr.iterations
            refinements += 1
        converged = bool(np.all(residual_exact <= tol))
        alpha = x_full[..., :c]
        if refinements:  # the stored operator's residual of the refined solution
            _, rnorm = true_residual(op, rhs * keep, x_full)
            residual = np.asarray(fetch(rnorm))[:c] / scale
        stage["refine"] = time.perf_counter() - t

    amplitude = float(np.asarray(fetch(jnp.sum(yb * alpha)))) / (lay.n * c)

    t = time.perf_counter()
    mean = _cross_blocks(op, xte, alpha, block_size, emit, "predict")
    stage["predict"] = time.perf_counter() - t

    var, var_info = None, {}
    t = time.perf_counter()
    if variance == "nystrom":
        var = _nystrom_variance(op, chol, pre, xtr, xte[vidx], noise_var, spec)
    elif variance == "exact" and set(vidx.tolist()) <= set(joint_var):
        var = np.asarray([joint_var[i] for i in vidx.tolist()])
        var_info = {"var_iterations": iterations, "var_residual": float(np.max(sol.residual[c:]))}
    elif variance == "exact":
        var, var_info = _exact_variance(op, pre, xte[vidx], _diagonal(xte[vidx], spec), tol=tol,
                                        max_iter=max_iter, emit=emit, fetch=fetch)
    if check_idx.size:
        exact_c = np.asarray([joint_var[i] for i in check_idx.tolist()])
        nys_c = _nystrom_variance(op, chol, pre, xtr, xte[check_idx], noise_var, spec)
        ratio = nys_c / exact_c
        var_info["var_check"] = {"indices": check_idx.tolist(), "exact": exact_c.tolist(), "nystrom": nys_c.tolist(),
                                 "nystrom_over_exact_median": float(np.median(ratio)),
                                 "nystrom_over_exact_min": float(np.min(ratio)),
                                 "nystrom_over_exact_max": float(np.max(ratio))}
    if variance != "none" or check_idx.size:
        stage["variance"] = time.perf_counter() - t

    more = {"storage": storage, "iterations": iterations, "residual": float(np.max(residual)),
            "residual_per_output": [float(v) for v in residual],
            "residual_exact": None if residual_exact is None else float(np.max(residual_exact)),
            "refinements": refinements, "converged": converged, "precond_rank": int(chol.pivots.size),
            "precond_residual_trace": chol.residual_trace, "precond_jitter": pre_jitter, "jitter": 0.0,
            "centre": float(op.centre), "amplitude": amplitude,
            "layout": {"block": lay.block, "num_blocks": lay.num_blocks, "num_devices": lay.num_devices,
                       "storage_gb": (lay.storage_bytes() if storage == "float32" else 0) / GIB},
            "stage_seconds": stage, **var_info}
    return mean, var, more


def _diagonal(x, spec):
    """Kernel diagonal k(x_i, x_i) (s,) of the chosen kernel."""
    if spec.kind == "nngp":  # the last variance of the (jitted) chain: no eager ops to compile
        return query_chain(spec, x)[-1]
    nngp_d, ntk_d = kernel_diagonals(x, depth=spec.depth, activation=spec.activation, w_var=spec.w_var,
                                     b_var=spec.b_var)
    return np.asarray(nngp_d if spec.kind == "nngp" else ntk_d)


def _pad_queries(x, rows):
    if x.shape[0] == rows:
        return x
    return np.concatenate([x, np.repeat(x[:1], rows - x.shape[0], axis=0)], axis=0)


def _cross_blocks(op, xq, w, block, emit, stage):
    """:math:`K(x_q, X) W` (s, C) in query blocks of ``block`` rows (one compilation), with progress."""
    s = xq.shape[0]
    bq = min(block, s)
    nq = math.ceil(s / bq)
    out = []
    for i in range(nq):
        xi = _pad_queries(xq[i * bq: (i + 1) * bq], bq)
        di = query_chain(op.spec, xi)
        out.append(np.asarray(cross_matmul(op, xi, di, w)))
        emit(stage, i + 1, nq)
    return np.concatenate(out, axis=0)[:s]


def _nystrom_variance(op, chol, pre, xtr, xq, noise_var, spec):
    r"""DTC variance :math:`k_{**} - \ell_*^\top\ell_* + \sigma^2 \ell_*^\top(\sigma^2 I + L^\top L)^{-1}\ell_*`,
    :math:`\ell_* = L_{PP}^{-1} k(x_P, x_*)` with the preconditioner's pivots P."""
    piv = chol.pivots
    kw = dict(depth=spec.depth, activation=spec.activation, w_var=spec.w_var, b_var=spec.b_var)
    kfun = nngp_kernel if spec.kind == "nngp" else ntk_kernel
    k_pq = np.asarray(kfun(xtr[piv], xq, **kw))  # (r, s)
    l_pp = _rows(chol.factor, piv)  # (r, r) lower triangular in pivot order
    quad = np.asarray(_dtc_terms(replicated(op.mesh, l_pp), pre.core, k_pq, noise_var))
    return _diagonal(xq, spec) - quad


@jax.jit
def _rows(factor, idx):
    return factor.reshape(-1, factor.shape[-1])[idx]


@jax.jit
def _dtc_terms(l_pp, core, k_pq, noise_var):
    r""":math:`\ell^\top\ell - \sigma^2 \ell^\top (\sigma^2 I + L^\top L)^{-1} \ell` per column, :math:`\ell = L_{PP}^{-1} k_{P*}`."""
    ell = jsl.solve_triangular(l_pp, k_pq, lower=True)
    v = jsl.cho_solve((core, True), ell)
    return jnp.sum(ell * ell, axis=0) - noise_var * jnp.sum(ell * v, axis=0)


def _exact_variance(op, pre, xq, kss, *, tol, max_iter, emit, fetch, batch: int = 128):
    r""":math:`k_{**} - k_*^\top (K + \sigma^2 I)^{-1} k_*` by PCG with right-hand sides :math:`K(X, x_*)`."""
    s = xq.shape[0]
    bq = min(batch, s)
    out, its, worst = [], 0, 0.0
    for i in range(math.ceil(s / bq)):
        xi = _pad_queries(xq[i * bq: (i + 1) * bq], bq)
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
