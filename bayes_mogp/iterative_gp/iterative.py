r"""The CG path of :func:`~.predict.exact_gp_predict` (:class:`~.solvers.CG`).

:func:`plan_cg` fixes what the options leave open (the preconditioner rank, the tile storage within the
memory budget) and estimates the memory; :func:`solve_cg` then runs, in this order:

1. the kernel operator without storage and the randomly pivoted Cholesky preconditioner (its pivots
   sampled with the PRNG key; its work space is freed before the largest array is allocated);
2. the float32 tiles of :math:`K` (``storage="float32"``);
3. one batched PCG solve for the outputs, with the right-hand sides :math:`K(X, x_j)` of up to
   :data:`JOINT_MAX` - C test points whose exact variances ride along;
4. with ``refine``, mixed-precision iterative refinement against the float64 kernel;
5. the predictive mean :math:`K(X_*, X)\alpha` in test blocks (:func:`cross_blocks`);
6. the variances (:mod:`.variance`: Nystrom, or exact by further solves) and the optional check of one
   against the other.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from .memory_model import GIB, memory_estimate, memory_limit_bytes
from .operator import (
    KernelSpec,
    build_operator,
    cross_matmul,
    kernel_columns,
    kernel_diagonal,
    pad_rows,
    query_chain,
    replicated,
    store_tiles,
    to_blocks,
)
from .pcg import pcg
from .pcg import residual as true_residual
from .preconditioner import pivoted_cholesky, woodbury_preconditioner
from .solvers import CG
from .variance import VarianceRequest, exact_variance, nystrom_variance

__all__ = ["JOINT_MAX", "plan_cg", "solve_cg", "cross_blocks"]

JOINT_MAX = 32  # exact-variance right-hand sides solved together with the outputs while the total is at most this


def plan_cg(cg: CG, n: int, m: int, d: int, c: int, num_devices: int, var_points: int) -> tuple[CG, dict]:
    """``cg`` with its preconditioner rank and tile storage fixed for this problem, and the memory estimate.

    ``storage="auto"``: float32 when :func:`~.memory_model.memory_estimate` with float32 tiles fits
    ``cg.memory_limit_gb``, else recompute; ``var_points`` the exact variances solved (0 for none)."""
    rank = cg.rank_for(n)
    kw = dict(precond_rank=rank, block_size=cg.block_size, num_devices=num_devices, var_points=var_points)
    storage = cg.storage
    if storage == "auto":
        est = memory_estimate(n, m, d, c, solver="cg", storage="float32", **kw)["total"]
        storage = "float32" if est <= memory_limit_bytes(cg.memory_limit_gb) else "recompute"
    return dataclasses.replace(cg, precond_rank=rank, storage=storage), memory_estimate(
        n, m, d, c, solver="cg", storage=storage, **kw)


def solve_cg(xtr, y, xte, spec: KernelSpec, noise_var: float, *, cg: CG, mesh, variance: VarianceRequest, key,
             emit):
    """Mean (m, C), variance at ``variance.indices`` (None for ``"none"``) and the solver's report, with the
    planned ``cg`` (:func:`plan_cg`) on ``mesh``; ``emit(stage, done, total[, residual])`` the progress."""
    method, vidx, check_idx = variance
    tol, max_iter = cg.tol, cg.max_iter
    stage = {}
    c = y.shape[1]
    # the preconditioner first (its kernel columns come from the inputs), then the tiles: the
    # pivoted-Cholesky work space is freed before the largest array is allocated
    t = time.perf_counter()
    op = build_operator(xtr, spec, noise_var, mesh=mesh, block_size=cg.block_size, storage="recompute")
    lay = op.layout
    chol = pivoted_cholesky(op, kernel_diagonal(spec, xtr), cg.precond_rank, key=key,
                            progress=lambda done, total: emit("preconditioner", done, total))
    pre, pre_jitter = woodbury_preconditioner(chol, noise_var, mesh)
    chol = chol._replace(factor=None)  # the preconditioner's basis replaces the factor: free it before the tiles
    stage["preconditioner"] = time.perf_counter() - t

    t = time.perf_counter()
    if cg.storage == "float32":
        op = store_tiles(op, xtr, progress=lambda s, done, total: emit(s, done, total))
        jax.block_until_ready(op.tiles)
    stage["kernel"] = time.perf_counter() - t

    # exact variances at few test points ride along with the outputs: one solve, [Y, K(X, x_J)]
    t = time.perf_counter()
    fetch = lambda a: replicated(mesh, a)  # noqa: E731
    yb = to_blocks(op, y)
    joint = check_idx
    if method == "exact" and np.union1d(vidx, check_idx).size + c <= JOINT_MAX:
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
        joint_var = dict(zip(joint.tolist(), (kernel_diagonal(spec, xte[joint]) - quad).tolist()))
    stage["cg"] = time.perf_counter() - t

    residual_exact, refinements = None, 0
    if cg.refine and op.tiles is not None:
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
    mean = cross_blocks(op, xte, alpha, cg.block_size, emit, "predict")
    stage["predict"] = time.perf_counter() - t

    var, var_info = None, {}
    t = time.perf_counter()
    if method == "nystrom":
        var = nystrom_variance(op, chol, pre, xtr, xte[vidx], noise_var, spec)
    elif method == "exact" and set(vidx.tolist()) <= set(joint_var):
        var = np.asarray([joint_var[i] for i in vidx.tolist()])
        var_info = {"var_iterations": iterations, "var_residual": float(np.max(sol.residual[c:]))}
    elif method == "exact":
        var, var_info = exact_variance(op, pre, xte[vidx], kernel_diagonal(spec, xte[vidx]), tol=tol,
                                        max_iter=max_iter, emit=emit, fetch=fetch)
    if check_idx.size:
        exact_c = np.asarray([joint_var[i] for i in check_idx.tolist()])
        nys_c = nystrom_variance(op, chol, pre, xtr, xte[check_idx], noise_var, spec)
        ratio = nys_c / exact_c
        var_info["var_check"] = {"indices": check_idx.tolist(), "exact": exact_c.tolist(), "nystrom": nys_c.tolist(),
                                 "nystrom_over_exact_median": float(np.median(ratio)),
                                 "nystrom_over_exact_min": float(np.min(ratio)),
                                 "nystrom_over_exact_max": float(np.max(ratio))}
    if method != "none" or check_idx.size:
        stage["variance"] = time.perf_counter() - t

    more = {"storage": cg.storage, "iterations": iterations, "residual": float(np.max(residual)),
            "residual_per_output": [float(v) for v in residual],
            "residual_exact": None if residual_exact is None else float(np.max(residual_exact)),
            "refinements": refinements, "converged": converged, "precond_rank": int(chol.pivots.size),
            "precond_residual_trace": chol.residual_trace, "precond_jitter": pre_jitter, "jitter": 0.0,
            "centre": float(op.centre), "amplitude": amplitude,
            "layout": {"block": lay.block, "num_blocks": lay.num_blocks, "num_devices": lay.num_devices,
                       "storage_gb": (lay.storage_bytes() if cg.storage == "float32" else 0) / GIB},
            "stage_seconds": stage, **var_info}
    return mean, var, more



def cross_blocks(op, xq, w, block, emit, stage):
    """:math:`K(x_q, X) W` (s, C) in query blocks of ``block`` rows (one compilation), with progress."""
    s = xq.shape[0]
    bq = min(block, s)
    nq = math.ceil(s / bq)
    out = []
    for i in range(nq):
        xi = pad_rows(xq[i * bq: (i + 1) * bq], bq)
        di = query_chain(op.spec, xi)
        out.append(np.asarray(cross_matmul(op, xi, di, w)))
        emit(stage, i + 1, nq)
    return np.concatenate(out, axis=0)[:s]
