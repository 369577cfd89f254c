"""Float64 guard and adaptive jitter, shared by every Cholesky in the package.

JAX computes in float32 unless ``jax_enable_x64`` is set, a process-wide switch.  The package never
flips it on import or for the caller: the public entry points whose accuracy depends on float64 (the
GP and MoGP fits, their posteriors' predictions and log densities) are wrapped in :func:`float64`, which
turns x64 on for their own computation only (``jax.enable_x64``) and restores the caller's setting, so
they work from a fresh interpreter.  Lower-level functions call :func:`require_x64`, which raises with
the one-line fix.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError

__all__ = ["float64", "require_x64", "CholeskyResult", "cholesky_with_jitter", "lapack_cholesky_with_jitter",
           "MixedSolve", "mixed_precision_cholesky_solve"]


def float64(fn):
    """Decorator: run ``fn`` with JAX's float64 mode on (``jax.enable_x64(True)``), the caller's mode restored
    afterwards.  Arrays ``fn`` returns keep their float64 dtype."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with jax.enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper


def require_x64(where: str) -> None:
    """Raise ``RuntimeError`` unless JAX is running with float64 enabled."""
    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            f"{where} needs float64: call jax.config.update('jax_enable_x64', True) "
            "(or numpyro.enable_x64()) before creating any arrays"
        )


class CholeskyResult(NamedTuple):
    """Lower Cholesky factor of ``A + jitter * I`` and the jitter that was needed."""

    factor: jax.Array  # (n, n) lower triangular
    jitter: float  # absolute jitter added to the diagonal (0.0 when none was needed)


@jax.jit
def _finite_and_scale(a):
    return jnp.all(jnp.isfinite(a)), jnp.mean(jnp.diagonal(a))


@jax.jit
def _attempt(a, jitter):
    """The factor of ``(a + a^T)/2 + jitter I`` and whether it is finite, in one compiled program (run eagerly, the
    symmetrisation, the shift and the check each copy the matrix: measured 0.67 s against 0.34 s at n = 4000)."""
    a = 0.5 * (a + a.T)
    a = a.at[jnp.diag_indices(a.shape[0])].add(jitter)
    chol = jax.lax.linalg.cholesky(a, symmetrize_input=False)  # symmetrised above
    return chol, jnp.all(jnp.isfinite(chol))


def cholesky_with_jitter(
    a, *, initial_relative: float = 1e-10, max_relative: float = 1e-2, factor: float = 10.0
) -> CholeskyResult:
    r"""Cholesky factor of a symmetric PSD matrix, adding jitter only when needed.

    Tries :math:`A`, then :math:`A + \epsilon\, \bar d\, I` with :math:`\bar d` the mean diagonal and
    :math:`\epsilon` = ``initial_relative``, ``initial_relative * factor``, ... up to
    ``max_relative``.  Returns the factor and the absolute jitter used so that callers can report it.
    Runs eagerly (it branches on the result), not under ``jit``.

    Raises ``ValueError`` if ``a`` holds NaN/Inf or stays indefinite at ``max_relative``.
    """
    a = jnp.asarray(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"a must be a square matrix, got shape {a.shape}")
    finite, scale = _finite_and_scale(a)
    if not bool(finite):
        raise InputError("a contains NaN/Inf; cannot factorise")
    scale = float(scale)
    scale = scale if scale > 0 else 1.0
    chol, ok = _attempt(a, 0.0)
    if bool(ok):
        return CholeskyResult(chol, 0.0)
    for jitter in _jitter_schedule(scale, initial_relative, max_relative, factor):
        chol, ok = _attempt(a, jitter)
        if bool(ok):
            return CholeskyResult(chol, float(jitter))
    raise InputError(
        f"matrix is not positive definite even with jitter {max_relative:g} x mean diagonal "
        f"({max_relative * scale:g}); check the kernel or raise the noise variance"
    )


def _jitter_schedule(scale: float, initial_relative: float, max_relative: float, factor: float):
    """The absolute jitters tried after a failed plain factorisation: ``initial_relative * scale``, times
    ``factor`` each time, up to ``max_relative * scale``."""
    rel = initial_relative
    while rel <= max_relative * (1 + 1e-12):
        yield rel * scale
        rel *= factor


def lapack_cholesky_with_jitter(
    a, *, shift: float = 0.0, initial_relative: float = 1e-10, max_relative: float = 1e-2, factor: float = 10.0
) -> tuple[np.ndarray, float]:
    r""":func:`cholesky_with_jitter` by LAPACK's ``dpotrf`` (SciPy), for the eager dense path.

    Same schedule, as NumPy arrays: the lower factor of :math:`A + (s + j) I` with :math:`s` = ``shift`` (a
    noise variance, added without another copy of ``a``) and the jitter :math:`j`, relative to the mean
    diagonal of :math:`A + s I`, and :math:`j`.  ``a`` must be symmetric: as in LAPACK, one triangle is read
    (the upper triangle of a C-ordered array, which LAPACK sees as the lower triangle of its transpose).
    ``a`` is never written; one copy of it is made, factorised in place.

    Why not JAX's: run eagerly, XLA compiles the factorisation (and the solves after it) for every new n,
    about 0.5 s at n = 4000 on two cores, while ``dpotrf`` is the same LAPACK routine with nothing to
    compile; and :func:`cholesky_with_jitter` symmetrises its input, two more passes over n x n numbers.
    """
    from scipy.linalg import lapack

    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"a must be a square matrix, got shape {a.shape}")
    diag = np.diagonal(a) + shift
    scale = float(diag.mean())
    if not np.isfinite(scale):
        raise InputError("a contains NaN/Inf; cannot factorise")
    scale = scale if scale > 0 else 1.0
    idx = np.diag_indices(a.shape[0])
    for jitter in (0.0, *_jitter_schedule(scale, initial_relative, max_relative, factor)):
        work = np.array(a.T, order="F")  # a copy in LAPACK's order (a C-ordered a.T needs no transposition)
        work[idx] = diag + jitter
        chol, info = lapack.dpotrf(work, lower=1, clean=1, overwrite_a=1)
        finite = bool(np.isfinite(np.diagonal(chol)).all())  # a NaN anywhere reaches the diagonal after it
        if info == 0 and finite:
            return chol, float(jitter)
        if jitter == 0.0 and not np.isfinite(a).all():  # NaN/Inf, not indefiniteness: say so, once
            raise InputError("a contains NaN/Inf; cannot factorise")
    raise InputError(
        f"matrix is not positive definite even with jitter {max_relative:g} x mean diagonal "
        f"({max_relative * scale:g}); check the kernel or raise the noise variance"
    )


class MixedSolve(NamedTuple):
    r"""What :func:`mixed_precision_cholesky_solve` returns: the solution ``x`` (float64, None when the method
    failed: see ``reason``), the number of ``refinements``, the normwise backward error
    :math:`\max_j \|r_j\|_\infty / (\|A\|_\infty \|x_j\|_\infty)` reached and the ``bound`` it had to meet."""

    x: np.ndarray | None
    refinements: int
    backward_error: float
    bound: float
    reason: str | None


def mixed_precision_cholesky_solve(a, b, *, shift: float = 0.0, max_refinements: int = 30) -> MixedSolve:
    r"""Solve :math:`(A + s I) X = B` to float64 accuracy with a float32 Cholesky factor: LAPACK's
    ``dsposv`` algorithm (Langou et al. 2006), which SciPy does not expose, on its ``spotrf`` / ``spotrs``.

    1. :math:`A + sI` rounded to float32 (one n x n copy: half the bytes of a float64 one) is factorised by
       ``spotrf``, about twice the float64 factorisation's rate;
    2. :math:`X_0` from the float32 factor, then iterative refinement: the residual
       :math:`R_k = B - (A + sI) X_k` in float64 (``dsymm`` on the triangle LAPACK reads: the upper
       triangle of a C-ordered ``a``, as :func:`lapack_cholesky_with_jitter`), the correction solved with the
       float32 factor, until every column's residual meets LAPACK's bound
       :math:`\|r_j\|_\infty \le \|x_j\|_\infty \|A + sI\|_\infty\, \varepsilon_{64} \sqrt n` (a backward
       stable float64 solve's, the float64 Cholesky's own accuracy), or until ``max_refinements`` (LAPACK's 30)
       pass or three steps in a row fail to halve the backward error (refinement that stalls never converges).

    Refinement converges when :math:`\kappa(A + sI)\, \varepsilon_{32}` is well below one.  Where it is not, or
    the float32 factorisation fails (the matrix is not positive definite in float32), ``x`` is None and
    ``reason`` says why: the caller factorises in float64 instead (:func:`lapack_cholesky_with_jitter`), as
    ``dsposv`` does.  No jitter: the solution is that of :math:`A + sI` itself.  ``a`` is never written.
    """
    from scipy.linalg import blas, lapack

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"a must be a square matrix, got shape {a.shape}")
    if b.ndim != 2 or b.shape[0] != a.shape[0]:
        raise InputError(f"b must be a matrix with {a.shape[0]} rows (one column per right-hand side), "
                         f"got shape {b.shape}")
    n = a.shape[0]
    a_t = a.T  # Fortran-ordered view, no copy: its lower triangle is a's upper one
    diag = np.diagonal(a) + shift
    a32 = np.array(a_t, dtype=np.float32, order="F")
    a32[np.diag_indices(n)] = diag
    anrm = float(np.abs(a32).sum(axis=0, dtype=np.float64).max())
    if not np.isfinite(anrm) or not np.isfinite(b).all():
        raise InputError("a or b contains NaN/Inf; cannot solve")
    rel_bound = float(np.finfo(np.float64).eps / 2 * np.sqrt(n))
    if anrm >= float(np.finfo(np.float32).max) / n:
        return MixedSolve(None, 0, float("inf"), rel_bound, "the matrix overflows float32")
    bound = anrm * rel_bound
    chol, info = lapack.spotrf(a32, lower=1, clean=1, overwrite_a=1)
    del a32
    if info != 0 or not np.isfinite(np.diagonal(chol)).all():
        return MixedSolve(None, 0, float("inf"), rel_bound, "the float32 Cholesky factorisation failed")

    def correction(r):
        scale = np.abs(r).max(axis=0)
        scale[scale == 0] = 1.0  # a zero column stays zero
        z, _ = lapack.spotrs(chol, (r / scale).astype(np.float32), lower=1)  # info: nonzero only for bad arguments
        return z.astype(np.float64) * scale

    x = correction(b)
    err, errs = float("inf"), []
    for k in range(max_refinements + 1):
        r = b - blas.dsymm(1.0, a_t, x, side=0, lower=1) - shift * x
        xn = np.abs(x).max(axis=0)
        rn = np.abs(r).max(axis=0)
        err = float(np.max(rn / (anrm * np.where(xn > 0, xn, 1.0))))
        if np.all(rn <= xn * bound):
            return MixedSolve(x, k, err, rel_bound, None)
        errs.append(err)
        # converging refinement shrinks the error by about kappa eps32 < 1 per step: three steps without halving
        # it mean it will not converge (LAPACK would go on to its 30 steps; stopping early saves their products)
        if k == max_refinements or (k >= 3 and err > 0.5 * errs[-4]):
            break
        x = x + correction(r)
    return MixedSolve(None, k, err, rel_bound,
                      f"iterative refinement did not reach float64 accuracy in {k} steps (backward error "
                      f"{err:.1e}): the matrix is too ill-conditioned for a float32 factor")


def _np_float(x) -> float:
    return float(np.asarray(x))
