r"""Marginal likelihood and prediction of a GP whose kernel is a GP part plus a sparse network.

The MoGP kernel truncated at its J largest jumps (docs/math.md section 2, Lee et al. 2023, section 3) is

.. math::

    K = s\, K_\phi + \Phi\, \mathrm{diag}(\lambda)\, \Phi^T,
    \qquad s = \sigma_v^2\,(a + R(\lambda_{(J)})),

with :math:`K_\phi` (n, n) a fixed base kernel (the NNGP-type expectation
:math:`E[\phi(h)\phi(h)^T]`), :math:`\Phi` (n, J) the post-activation features of the J largest jumps
and :math:`\lambda` (J,) their sizes.  The C outputs share the kernel:
:math:`Y_{:,c} \sim N(0, K + \sigma^2 I)` independently given K.

A direct evaluation factorises the n x n matrix every time (O(n^3)).  Here :math:`K_\phi = U E U^T` is
eigendecomposed ONCE (:func:`eigen_base`), so that :math:`s K_\phi + \sigma^2 I = U D U^T` with
:math:`D = s E + \sigma^2` diagonal for every value of (s, sigma^2).  With the rotated features
:math:`\tilde\Phi = U^T \Phi` (O(n^2 J), the only quadratic cost), the Woodbury identity and the
matrix-determinant lemma give, with :math:`S = \mathrm{diag}(\lambda)^{1/2}` and the J x J matrix
:math:`A = I_J + S \tilde\Phi^T D^{-1} \tilde\Phi S = L L^T`,

.. math::

    \log|K + \sigma^2 I| = \textstyle\sum_i \log D_i + 2 \sum_j \log L_{jj},
    \qquad
    Y^T (K + \sigma^2 I)^{-1} Y = \tilde Y^T D^{-1} \tilde Y - B^T B,\quad
    B = L^{-1} S \tilde\Phi^T D^{-1} \tilde Y,

O(n^2 J + n J^2 + J^3) per evaluation and per gradient; :math:`A` stays well conditioned when jumps go
to 0 (it tends to I).  Shapes: ``y`` (n, C); ``phi`` (n, J); ``lam`` (J,); scalars ``scale``, ``noise``.

Prediction at m test points (:func:`predict`) reuses the same factors: with
:math:`W = U^T K(X, X_*) = s\,U^T K_\phi(X, X_*) + \tilde\Phi \mathrm{diag}(\lambda) \Phi_*^T`
(the first term precomputed once, :func:`predict_base`), mean :math:`W^T (D^{-1}\tilde Y - D^{-1}
\tilde\Phi S L^{-T} B)` and latent variance :math:`k_{**} - \sum_i W_i^2/D_i + \|L^{-1} S \tilde\Phi^T
D^{-1} W\|^2`, O(n m J) per draw.

The rotation :math:`U^\top \Phi` and its adjoint are the whole cost of a gradient (two passes over the n x n
eigenbasis for a skinny block).  The sampler's base keeps its own copies of the eigenbasis for them
(:func:`with_rotation`): :math:`U^\top` as an array of its own for the rotation and :math:`U` for the adjoint
(a custom VJP), so that each product contracts over the contiguous axis of its matrix; XLA's CPU backend
contracts a skinny block over the first axis of a row-major matrix 2-4x slower, which made the rotation cost
three times its adjoint.  Measured at n = 2000, J = 8 on 2 CPU cores, alternating runs: one chain's gradient
2.3x faster with the copies (float32: 1.58 against 3.69 ms; float64: 2.9 against 4.6 ms,
``benchmarks/bench_mogp.py``), which is what the MAP start and sequential chains pay; 4 vectorised chains
unchanged (4.40 against 4.46 ms: their 32-column products run at about 150 Gflop/s either way, the gradient at
0.6 of the float32 flop limit).  The copies may be float32 (``eigen_base(..., rotation_dtype="float32")``),
everything else in float64 (1.1-1.5x faster per gradient than float64 copies), and the error is far below
any Monte Carlo error (rounding of a length-n dot product in float32 leaves a relative error of
order :math:`\sqrt{n}\,2^{-24}` in :math:`\tilde\Phi`; the log-likelihood depends on it through
quadratic forms whose large terms, :math:`\tilde Y^\top D^{-1}\tilde Y` and :math:`\log D`, do not
involve it: measured 3e-7 absolute on a log-likelihood of 3e3 and 3e-9 relative on the gradient at
n = 2000).  Prediction and leave-one-out always rotate in float64.

Leave-one-out (:func:`loo_log_density`): for a GP with :math:`C = K + \sigma^2 I` the predictive of
:math:`y_i` given the other points is Gaussian with mean :math:`y_i - [C^{-1}Y]_i/[C^{-1}]_{ii}` and variance
:math:`1/[C^{-1}]_{ii}` (Rasmussen and Williams 2006, eq. 5.12), exactly, for every output.  With the factors
above, :math:`C^{-1} = U (D^{-1} - D^{-1}\tilde\Phi S A^{-1} S \tilde\Phi^\top D^{-1}) U^\top`, so
:math:`\mathrm{diag}\,C^{-1} = (U\circ U) D^{-1} - \|L^{-1} S \tilde\Phi^\top D^{-1} U^\top e_i\|^2`, O(n^2 J).

We hand-write this rather than use ``numpyro``'s ``LowRankMultivariateNormal`` because that
distribution needs a diagonal (not a fixed dense) base covariance, and because the eigenbasis is
shared across every leapfrog step and every posterior draw.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from ..numerics import require_x64
from ..validation import check_choice, check_finite_array
from ..errors import InputError

__all__ = [
    "EigenBase",
    "eigen_base",
    "with_rotation",
    "without_rotation",
    "woodbury_log_likelihood",
    "direct_log_likelihood",
    "PredictBase",
    "predict_base",
    "predict",
    "loo_log_density",
    "ROTATION_DTYPES",
]

#: precisions the likelihood may rotate the features in (:func:`eigen_base`'s ``rotation_dtype``)
ROTATION_DTYPES = ("float64", "float32")

_LOG_2PI = float(np.log(2.0 * np.pi))


class EigenBase(NamedTuple):
    """Eigendecomposition of the base kernel and the rotated targets (computed once per data set)."""

    evals: jax.Array  # (n,) eigenvalues of K_phi, clipped at 0
    evecs: jax.Array  # (n, n) orthonormal eigenvectors U (columns)
    y_rot: jax.Array  # (n, C) U^T Y
    rotation: jax.Array | None = None  # (n, n) U in the likelihood's rotation precision (None: ``evecs``)
    rotation_t: jax.Array | None = None  # (n, n) U^T stored as its own array, in the same precision (None: no copy)


def eigen_base(k_phi, y, *, rotation_dtype: str | None = None) -> EigenBase:
    """Eigendecompose the (n, n) base kernel and rotate the (n, C) targets; float64, eager.

    ``rotation_dtype`` (:data:`ROTATION_DTYPES`): the precision in which :func:`woodbury_log_likelihood` rotates
    the features, with the copies of the eigenvectors it needs (:func:`with_rotation`; "float32": 2 x 4 n^2 bytes,
    "float64": 8 n^2); None: no copies, the likelihood rotates with ``evecs`` as it is laid out (slower on a CPU;
    enough for prediction, leave-one-out and single evaluations)."""
    require_x64("bayes_mogp.mogp.likelihood.eigen_base")
    if rotation_dtype is not None:
        check_choice("rotation_dtype", rotation_dtype, ROTATION_DTYPES)
    k_phi = check_finite_array("k_phi", k_phi, ndim=2)
    y = check_finite_array("y", y)
    if k_phi.shape[0] != k_phi.shape[1]:
        raise InputError(f"k_phi must be square, got shape {k_phi.shape}")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != k_phi.shape[0]:
        raise InputError(f"y must have shape (n, C) with n = {k_phi.shape[0]}, got {y.shape}")
    k = jnp.asarray(k_phi, dtype=jnp.float64)
    evals, evecs = jnp.linalg.eigh(0.5 * (k + k.T))
    evals = jnp.clip(evals, 0.0, None)
    base = EigenBase(evals, evecs, evecs.T @ jnp.asarray(y, dtype=jnp.float64))
    return base if rotation_dtype is None else with_rotation(base, rotation_dtype)


def with_rotation(base: EigenBase, rotation_dtype: str) -> EigenBase:
    r"""``base`` whose likelihood rotates the features in ``rotation_dtype`` (:data:`ROTATION_DTYPES`) with its own
    copy of :math:`U^\top` (module docstring); a base that already keeps that precision is returned as it is (the
    copies are made once per eigendecomposition).  :func:`without_rotation` drops them."""
    check_choice("rotation_dtype", rotation_dtype, ROTATION_DTYPES)
    dtype = jnp.float32 if rotation_dtype == "float32" else jnp.float64
    if base.rotation_t is not None and base.rotation_t.dtype == dtype:
        return base
    rotation = base.evecs.astype(jnp.float32) if rotation_dtype == "float32" else None
    # an eager transpose: a new array whose rows are U's columns (XLA would not lay out U.T so inside the program)
    return base._replace(rotation=rotation, rotation_t=jnp.transpose(base.evecs).astype(dtype))


def without_rotation(base: EigenBase) -> EigenBase:
    """``base`` without the sampler's copies of the eigenbasis (prediction and leave-one-out use ``evecs``)."""
    return base._replace(rotation=None, rotation_t=None)


@jax.custom_vjp
def _rotate(u_t, u, phi):
    r""":math:`U^\top \Phi` from the stored :math:`U^\top` (``u_t``), whose adjoint :math:`U G` uses the stored
    :math:`U` (``u``): each product contracts over the contiguous axis of its matrix.  XLA's CPU backend
    contracts over the first axis of a row-major matrix 2-4x slower (measured at n = 2000, 8-32 columns, float32:
    2.4-2.9 ms against 0.6-1.4 ms), whether it is written ``U.T @ phi`` or as a ``dot_general``."""
    return u_t @ phi


def _rotate_fwd(u_t, u, phi):
    return u_t @ phi, u


def _rotate_bwd(u, g):
    return None, None, u @ g  # the eigenbasis is a constant of the sampler: no cotangent


_rotate.defvjp(_rotate_fwd, _rotate_bwd)


def _safe_sqrt(lam):
    """sqrt(lam) whose gradient at lam = 0 is 0, not inf: a finite Levy measure (the Bernoulli prior) gives
    jumps that are exactly 0, and inf * 0 in the chain rule would turn every NUTS gradient into NaN."""
    pos = lam > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, lam, 1.0)), 0.0)


def _woodbury_factors(base: EigenBase, scale, noise, lam, phi, *, low_precision: bool = False):
    d = scale * base.evals + noise  # (n,)
    if low_precision and base.rotation_t is not None:  # the O(n^2 J) rotation in the rotation's precision
        u = base.evecs if base.rotation is None else base.rotation
        phit = _rotate(base.rotation_t, u, phi.astype(base.rotation_t.dtype)).astype(phi.dtype)
    else:
        phit = base.evecs.T @ phi  # (n, J)  the O(n^2 J) rotation
    sq = _safe_sqrt(lam)  # (J,)
    pd = phit / d[:, None]  # D^-1 Phi~
    a = jnp.eye(lam.shape[0], dtype=phi.dtype) + sq[:, None] * (phit.T @ pd) * sq[None, :]
    chol = jnp.linalg.cholesky(a)
    return d, phit, pd, sq, chol


@jax.jit
def woodbury_log_likelihood(base: EigenBase, scale, noise, lam, phi) -> jax.Array:
    """log N(Y; 0, s K_phi + Phi diag(lam) Phi^T + noise I), summed over the C outputs; the features rotated
    in ``base.rotation``'s precision (module docstring).

    Jitted: NumPyro runs the model eagerly to initialise SVI and NUTS (and its gradient), and one compiled
    program per shape costs less than compiling each of its operations on its own."""
    y = base.y_rot
    n, c = y.shape
    if phi.shape[-1] == 0:
        d = scale * base.evals + noise
        return -0.5 * (c * jnp.sum(jnp.log(d)) + jnp.sum(y**2 / d[:, None]) + n * c * _LOG_2PI)
    d, phit, pd, sq, chol = _woodbury_factors(base, scale, noise, lam, phi, low_precision=True)
    b = jsl.solve_triangular(chol, sq[:, None] * (pd.T @ y), lower=True)  # (J, C)
    logdet = jnp.sum(jnp.log(d)) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    quad = jnp.sum(y**2 / d[:, None]) - jnp.sum(b**2)
    return -0.5 * (c * logdet + quad + n * c * _LOG_2PI)


def direct_log_likelihood(k_phi, y, scale, noise, lam, phi) -> jax.Array:
    """The same log-likelihood by one n x n Cholesky (O(n^3)); the reference and the benchmark's rival."""
    y = jnp.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    n, c = y.shape
    from .prior import mogp_kernel

    k = mogp_kernel(k_phi, scale, phi, lam) + noise * jnp.eye(n, dtype=k_phi.dtype)
    chol = jnp.linalg.cholesky(k)
    z = jsl.solve_triangular(chol, y, lower=True)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return -0.5 * (c * logdet + jnp.sum(z**2) + n * c * _LOG_2PI)


class PredictBase(NamedTuple):
    """Test-side quantities that do not depend on the posterior draw."""

    cross_rot: jax.Array  # (n, m) U^T K_phi(X, X*)
    diag_test: jax.Array  # (m,) diag K_phi(X*, X*)


def predict_base(base: EigenBase, k_cross, k_test_diag) -> PredictBase:
    """Rotate the (n, m) train-test base kernel once (O(n^2 m))."""
    return PredictBase(base.evecs.T @ jnp.asarray(k_cross), jnp.asarray(k_test_diag))


@jax.jit
def predict(base: EigenBase, pbase: PredictBase, scale, noise, lam, phi, phi_test):
    """Posterior predictive mean (m, C) and latent variance (m,) given one kernel draw.  Jitted.

    ``phi_test`` (m, J) are the jump features at the test inputs.  The latent variance is shared by the
    C outputs (one kernel); add ``noise`` for the variance of a new observation.
    """
    y = base.y_rot
    d = scale * base.evals + noise
    w = scale * pbase.cross_rot  # (n, m)
    kss = scale * pbase.diag_test + jnp.sum(phi_test**2 * lam[None, :], axis=1)
    if phi.shape[-1] == 0:
        mean = w.T @ (y / d[:, None])
        var = kss - jnp.sum(w**2 / d[:, None], axis=0)
        return mean, jnp.clip(var, 0.0, None)
    d, phit, pd, sq, chol = _woodbury_factors(base, scale, noise, lam, phi)
    w = w + (phit * lam[None, :]) @ phi_test.T
    b = jsl.solve_triangular(chol, sq[:, None] * (pd.T @ y), lower=True)  # (J, C)
    corr = jsl.solve_triangular(chol.T, b, lower=False)  # A^-1 S Phi~^T D^-1 Y~
    alpha = y / d[:, None] - pd @ (sq[:, None] * corr)  # U^T (K + noise I)^-1 Y
    mean = w.T @ alpha
    g = jsl.solve_triangular(chol, sq[:, None] * (pd.T @ w), lower=True)  # (J, m)
    var = kss - jnp.sum(w**2 / d[:, None], axis=0) + jnp.sum(g**2, axis=0)
    return mean, jnp.clip(var, 0.0, None)


def loo_log_density(base: EigenBase, scale, noise, lam, phi):
    """Exact leave-one-out log predictive density of each training point, summed over the C outputs: (n,).

    ``log N(y_i; mu_-i, v_-i)`` with the closed form of the module docstring; ``y`` is ``base``'s targets
    (rotated back).  Jittable, O(n^2 J) per call.
    """
    y_rot = base.y_rot
    u = base.evecs
    d = scale * base.evals + noise
    alpha_rot = y_rot / d[:, None]  # D^-1 U^T Y
    diag = (u * u) @ (1.0 / d)  # diag of U D^-1 U^T
    if phi.shape[-1] > 0:
        d_, phit, pd, sq, chol = _woodbury_factors(base, scale, noise, lam, phi)
        b = jsl.solve_triangular(chol, sq[:, None] * (pd.T @ y_rot), lower=True)  # (J, C)
        corr = jsl.solve_triangular(chol.T, b, lower=False)
        alpha_rot = alpha_rot - pd @ (sq[:, None] * corr)
        m = jsl.solve_triangular(chol, (sq[:, None] * pd.T) @ u.T, lower=True)  # (J, n): L^-1 S Phi~^T D^-1 U^T
        diag = diag - jnp.sum(m * m, axis=0)
    alpha = u @ alpha_rot  # C^-1 Y (n, C)
    y = u @ y_rot
    var = 1.0 / diag
    mean = y - alpha * var[:, None]
    c = y.shape[1]
    return -0.5 * (jnp.sum((y - mean) ** 2, axis=1) / var + c * jnp.log(2 * jnp.pi * var))
