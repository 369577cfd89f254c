r"""Exact GP prediction, marginal likelihood and NTK-ensemble prediction, for multi-output targets.

GP posterior (the post *Infinitely Wide Neural Networks*, 2022; Rasmussen & Williams 2006, alg. 2.1), training kernel :math:`K` (n, n), test-train
kernel :math:`K_*` (m, n), targets :math:`Y` (n, C) (C independent outputs sharing one kernel),
noise variance :math:`\sigma^2`, :math:`A = K + \sigma^2 I = L L^\top`:

.. math::

    \mu_* = K_* A^{-1} Y \quad (m, C), \qquad
    \Sigma_* = K_{**} - K_* A^{-1} K_*^\top \quad (m, m),

    \log p(Y) = -\tfrac12 \operatorname{tr}(Y^\top A^{-1} Y) - C \sum_i \log L_{ii} - \tfrac{nC}{2}\log 2\pi.

The Cholesky factor is computed in float64 with adaptive jitter (:func:`bayes_mogp.numerics.cholesky_with_jitter`);
the jitter actually added is returned so that callers can report it.

NTK ensemble (Lee et al. 2019, "Wide neural networks of any depth evolve as linear models", eq. 16;
the post *Infinitely Wide Neural Networks*, 2022): an infinite ensemble of infinitely wide networks trained by gradient flow on the MSE
:math:`\tfrac12\|f(X) - Y\|^2` with learning rate :math:`\eta`, NTK :math:`\Theta` and NNGP :math:`K`, has a
Gaussian output at time :math:`t` with, :math:`E_t = I - e^{-\eta \Theta t}` and
:math:`B_t = \Theta_{*} \Theta^{-1} E_t` (m, n),

.. math::

    \mu_t = B_t Y, \qquad
    \Sigma_t = K_{**} + B_t K B_t^\top - (B_t K_*^\top + K_* B_t^\top).

At :math:`t = \infty`, :math:`E_t = I`.  Finite :math:`t` uses one eigendecomposition of :math:`\Theta`.  The
results agree with neural-tangents' ``predict.gradient_descent_mse_ensemble`` (``tests/test_gp.py``);
this module works on kernel matrices, so any kernel (closed form, ``stax``, MoGP) can be used.

Memory: the only (n, n) arrays are the kernel, its Cholesky factor and (finite t) the eigenvectors;
n = 10^4 in float64 needs a few GB.  With ``k_test_test`` given as the diagonal (m,), only variances are
computed, in O(m n) memory.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from .numerics import cholesky_with_jitter, require_x64
from .validation import check_finite_array, check_nonnegative
from .errors import InputError

__all__ = [
    "GPPosterior",
    "gp_posterior",
    "log_marginal_likelihood",
    "amplitude_mle",
    "noise_mle",
    "ntk_ensemble_predict",
]


class GPPosterior(NamedTuple):
    """Gaussian predictive on the test points; ``cov``/``var`` are shared by all C outputs."""

    mean: jax.Array  # (m, C)
    cov: jax.Array | None  # (m, m) when k_test_test was a full matrix, else None
    var: jax.Array | None  # (m,) marginal variances when k_test_test was given, else None
    jitter: float  # absolute jitter added to the diagonal of K + noise_var I (0.0 if none)


def _as_matrix(name, a, shape=None):
    if isinstance(a, (np.ndarray, list, tuple)):
        check_finite_array(name, a)
    a = jnp.asarray(a)
    if a.ndim != 2:
        raise InputError(f"{name} must be a matrix, got shape {a.shape}")
    if shape is not None:
        for i, s in enumerate(shape):
            if s is not None and a.shape[i] != s:
                raise InputError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
    return a.astype(jnp.float64)


def _targets(y, n):
    if isinstance(y, (np.ndarray, list, tuple)):
        check_finite_array("y_train", y)
    y = jnp.asarray(y, dtype=jnp.float64)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n:
        raise InputError(f"y_train must have shape ({n},) or ({n}, C), got {y.shape}")
    return y


def _test_test(k_test_test, m):
    if k_test_test is None:
        return None, None
    if isinstance(k_test_test, (np.ndarray, list, tuple)):
        check_finite_array("k_test_test", k_test_test)
    a = jnp.asarray(k_test_test, dtype=jnp.float64)
    if a.shape == (m,):
        return None, a
    if a.shape == (m, m):
        return a, None
    raise InputError(f"k_test_test must have shape ({m},) (diagonal) or ({m}, {m}), got {a.shape}")


def _factor(k_train_train, noise_var, where):
    require_x64(where)
    n = k_train_train.shape[0]
    a = jnp.asarray(k_train_train).at[jnp.diag_indices(n)].add(noise_var)
    chol, jitter = cholesky_with_jitter(a)
    return chol, jitter


@jax.jit
def _posterior_core(chol, ks, y, kss, kss_diag):
    mean = ks @ jsl.cho_solve((chol, True), y)
    if kss is None and kss_diag is None:
        return mean, None, None
    v = jsl.solve_triangular(chol, ks.T, lower=True)  # (n, m)
    if kss is not None:
        cov = kss - v.T @ v
        return mean, cov, jnp.diagonal(cov)
    return mean, None, kss_diag - jnp.sum(v * v, axis=0)


def gp_posterior(k_train_train, k_test_train, y_train, *, noise_var: float, k_test_test=None) -> GPPosterior:
    """Exact GP posterior on the test points (module docstring); float64.

    ``k_train_train`` (n, n), ``k_test_train`` (m, n), ``y_train`` (n,) or (n, C), ``noise_var`` >= 0
    (absolute), ``k_test_test`` ``None``, the diagonal (m,) or the full (m, m) test kernel.
    Returns :class:`GPPosterior` with ``mean`` (m, C), ``cov`` or ``var`` and the jitter used.
    """
    noise_var = check_nonnegative("noise_var", noise_var)
    k = _as_matrix("k_train_train", k_train_train)
    n = k.shape[0]
    if k.shape != (n, n):
        raise InputError(f"k_train_train must be square, got shape {k.shape}")
    ks = _as_matrix("k_test_train", k_test_train, (None, n))
    y = _targets(y_train, n)
    kss, kss_diag = _test_test(k_test_test, ks.shape[0])
    chol, jitter = _factor(k, noise_var, "gp_posterior")
    mean, cov, var = _posterior_core(chol, ks, y, kss, kss_diag)
    return GPPosterior(mean, cov, var, jitter)


def log_marginal_likelihood(k_train_train, y_train, *, noise_var: float) -> float:
    r""":math:`\log p(Y \mid K, \sigma^2)` summed over the C outputs (module docstring); a Python float."""
    noise_var = check_nonnegative("noise_var", noise_var)
    k = _as_matrix("k_train_train", k_train_train)
    n = k.shape[0]
    y = _targets(y_train, n)
    chol, _ = _factor(k, noise_var, "log_marginal_likelihood")
    w = jsl.solve_triangular(chol, y, lower=True)
    c = y.shape[1]
    logdet_half = jnp.sum(jnp.log(jnp.diagonal(chol)))
    return float(-0.5 * jnp.sum(w * w) - c * logdet_half - 0.5 * n * c * jnp.log(2 * jnp.pi))


def ntk_ensemble_predict(
    ntk_train_train,
    ntk_test_train,
    y_train,
    *,
    t: float | None = None,
    learning_rate: float = 1.0,
    diag_reg: float = 0.0,
    nngp_train_train=None,
    nngp_test_train=None,
    nngp_test_test=None,
) -> GPPosterior:
    r"""Output of the infinite NTK ensemble trained for time ``t`` (``None`` = :math:`\infty`).

    ``ntk_*`` as in :func:`gp_posterior`; ``diag_reg`` >= 0 is added to the diagonal of the training NTK
    (absolute); the time is measured in units where the gradient flow is
    :math:`\dot f = -\eta\,\Theta (f - Y)`.  The covariance needs the NNGP matrices (all three): with
    ``nngp_test_test`` the diagonal (m,) only ``var`` is returned, with the full (m, m) ``cov`` too.
    """
    diag_reg = check_nonnegative("diag_reg", diag_reg)
    learning_rate = check_nonnegative("learning_rate", learning_rate)
    theta = _as_matrix("ntk_train_train", ntk_train_train)
    n = theta.shape[0]
    if theta.shape != (n, n):
        raise InputError(f"ntk_train_train must be square, got shape {theta.shape}")
    theta_s = _as_matrix("ntk_test_train", ntk_test_train, (None, n))
    m = theta_s.shape[0]
    y = _targets(y_train, n)
    want_cov = nngp_test_test is not None
    if want_cov and (nngp_train_train is None or nngp_test_train is None):
        raise InputError("the NTK-ensemble covariance needs nngp_train_train, nngp_test_train and nngp_test_test")
    jitter = 0.0
    if t is None or np.isinf(t):
        chol, jitter = _factor(theta, diag_reg, "ntk_ensemble_predict")
        b = jsl.cho_solve((chol, True), theta_s.T).T  # (m, n) = Theta_* Theta^-1
    else:
        t = check_nonnegative("t", t)
        require_x64("ntk_ensemble_predict")
        lam, vec = jnp.linalg.eigh(theta + diag_reg * jnp.eye(n, dtype=theta.dtype))
        lam = jnp.maximum(lam, 0.0)
        # (1 - exp(-eta lam t)) / lam, with its limit eta t at lam = 0
        x = learning_rate * t * lam
        ok = lam > 0
        g = jnp.where(ok, -jnp.expm1(-x) / jnp.where(ok, lam, 1.0), learning_rate * t)
        b = ((theta_s @ vec) * g[None, :]) @ vec.T
    mean = b @ y
    cov = var = None
    if want_cov:
        k = _as_matrix("nngp_train_train", nngp_train_train, (n, n))
        ks = _as_matrix("nngp_test_train", nngp_test_train, (m, n))
        kss, kss_diag = _test_test(nngp_test_test, m)
        bk = b @ k
        if kss is not None:
            cross = b @ ks.T
            cov = kss + bk @ b.T - (cross + cross.T)
            var = jnp.diagonal(cov)
        else:
            var = kss_diag + jnp.sum(bk * b, axis=1) - 2 * jnp.sum(b * ks, axis=1)
    return GPPosterior(mean, cov, var, float(jitter))



def amplitude_mle(k_train_train, y_train, *, noise_var: float) -> float:
    r"""Maximum-marginal-likelihood amplitude :math:`\hat s` of the prior :math:`Y \sim N(0, s\,(K + \sigma^2 I))`.

    Closed form :math:`\hat s = \operatorname{tr}(Y^\top A^{-1} Y) / (nC)`.  The posterior mean does not
    depend on :math:`s`; the posterior variances scale by it.  NNGP/NTK amplitudes are fixed by the
    initialisation variances, which the data cannot see through the mean, so this is how a
    calibrated predictive variance is obtained without changing the predictions.
    """
    noise_var = check_nonnegative("noise_var", noise_var)
    k = _as_matrix("k_train_train", k_train_train)
    n = k.shape[0]
    y = _targets(y_train, n)
    chol, _ = _factor(k, noise_var, "amplitude_mle")
    w = jsl.solve_triangular(chol, y, lower=True)
    return float(jnp.sum(w * w) / y.size)


def noise_mle(k_train_train, y_train, *, bounds=(1e-6, 1.0)) -> tuple[float, float, float]:
    r"""Noise and amplitude by maximum marginal likelihood: :math:`Y \sim N(0, s\,(K + r \bar d I))`.

    :math:`\bar d` is the mean diagonal of :math:`K`; the relative noise :math:`r` is searched in
    ``bounds`` (log scale: a grid of 8 points per decade, then a bounded Brent refinement of
    :math:`\log r`), the amplitude has the closed form of :func:`amplitude_mle` at each :math:`r`.  One
    eigendecomposition :math:`K = U E U^\top`, then each evaluation is O(nC):
    :math:`\hat s(r) = \sum_i \tilde y_i^2/(E_i + r\bar d) / (nC)`,
    :math:`\log p = -\tfrac{nC}{2}(1 + \log 2\pi\hat s) - \tfrac C2\sum_i\log(E_i + r\bar d)`.

    Returns ``(relative_noise r, noise_var = r * mean diag K, amplitude s)``; the predictive covariance of
    the targets is then :math:`s\,(K_{**} + \text{noise\_var})` in the usual notation.  Uses training
    data only.
    """
    from scipy.optimize import minimize_scalar

    require_x64("noise_mle")
    k = np.asarray(_as_matrix("k_train_train", k_train_train))
    n = k.shape[0]
    if k.shape != (n, n):
        raise InputError(f"k_train_train must be square, got shape {k.shape}")
    y = np.asarray(_targets(y_train, n))
    lo, hi = float(bounds[0]), float(bounds[1])
    if not 0 < lo < hi:
        raise InputError(f"bounds must satisfy 0 < low < high, got {bounds}")
    ev, vec = np.linalg.eigh(0.5 * (k + k.T))
    ev = np.clip(ev, 0.0, None)
    yt2 = np.sum((vec.T @ y) ** 2, axis=1)  # (n,) summed over outputs
    c = y.shape[1]
    dbar = float(np.mean(np.diag(k)))

    def neg_log_ml(log_r):
        d = ev + np.exp(log_r) * dbar
        s = np.sum(yt2 / d) / (n * c)
        return 0.5 * n * c * (1 + np.log(2 * np.pi * s)) + 0.5 * c * np.sum(np.log(d))

    grid = np.linspace(np.log(lo), np.log(hi), int(8 * np.log10(hi / lo)) + 1)
    vals = [neg_log_ml(g) for g in grid]
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    best = minimize_scalar(neg_log_ml, bounds=(a, b), method="bounded", options={"xatol": 1e-4}).x if b > a else grid[i]
    r = float(np.exp(best))
    d = ev + r * dbar
    return r, r * dbar, float(np.sum(yt2 / d) / (n * c))
