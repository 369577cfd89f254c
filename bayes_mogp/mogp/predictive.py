r"""The MoGP posterior predictive: a mixture over posterior draws of exact GP predictions.

For each posterior draw s (kernel :math:`K_s`, noise :math:`\sigma_s^2`) the exact GP prediction at
new inputs :math:`X_*` is Gaussian with mean :math:`K_s(X_*, X)(K_s + \sigma_s^2 I)^{-1} Y` and latent
variance :math:`K_s(x_*, x_*) - K_s(x_*, X)(K_s + \sigma_s^2 I)^{-1}K_s(X, x_*)`
(:func:`bayes_mogp.mogp.likelihood.predict`, Woodbury, O(n m J) per draw).  A new observation adds
:math:`\sigma_s^2`.  The predictive is the equally weighted mixture over draws
(:class:`bayes_mogp.prediction.Prediction`).  Classification (one-hot targets): class probabilities
:math:`P(\arg\max_c y_{*c} = k)` per draw by Gauss-Hermite quadrature
(:func:`bayes_mogp.prediction.gaussian_class_probabilities`), averaged over draws.

``keep=k`` and ``gp_part=False`` give the prediction of the *pruned* network: only the k largest
jumps, no GP part (a finite network of k hidden nodes with its readout integrated out).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import likelihood as lk
from .features import FEATURE_ACTIVATIONS, FeatureMap
from .model import MoGPProblem

__all__ = ["TestInputs", "test_inputs", "draw_predictor", "predict_draws", "loo_draws", "class_probabilities", "DRAW_KEYS"]

#: posterior variables the predictive needs
DRAW_KEYS = ("sigma_v2", "noise", "noise_total", "drift", "jumps", "features")


class TestInputs(NamedTuple):
    """Everything about the new inputs that does not depend on the posterior draw."""

    pbase: lk.PredictBase  # U^T K_phi(X, X*), diag K_phi(X*, X*)
    basis: jax.Array  # (m, r) B(X*)


def test_inputs(problem: MoGPProblem, feature_map: FeatureMap, x_train, x_new) -> TestInputs:
    """Rotate the train-test base kernel once (O(n^2 m)) and evaluate the feature basis at ``x_new``."""
    k_cross = feature_map.base_kernel(x_train, x_new)
    pbase = lk.predict_base(problem.base, k_cross, feature_map.base_kernel_diag(x_new))
    return TestInputs(pbase, jnp.asarray(feature_map.basis(x_new)))


def draw_predictor(problem: MoGPProblem, limit, *, drift: str = "free"):
    """The compiled per-draw prediction of a training problem: ``f(tests, draws, k, gp_part)`` for a batch of
    flat draws gives their means, latent variances and noises.  One program per shape of the new inputs, reused
    for every batch, every ``keep`` (``k``: the k largest jumps keep their weight, the others get 0, which removes
    them exactly: their rows of the Woodbury factor are the identity's) and every call (keep the returned
    function, as :class:`~bayes_mogp.mogp.MoGPPosterior` does)."""
    phi_fn = FEATURE_ACTIVATIONS[problem.activation]

    def one(tests, s, k, gp_part):
        scale, noise, lam, phi = _kernel_parts(problem, limit, s, drift)
        if "features" in s:
            lam = jnp.where(jnp.arange(lam.shape[0]) < k, lam, 0.0)
            phi_te = phi_fn(tests.basis @ s["features"].T)
        else:
            phi_te = jnp.zeros((tests.basis.shape[0], 0))
        scale = scale if gp_part else 0.0
        mean, var = lk.predict(problem.base, tests.pbase, scale, noise, lam, phi, phi_te)
        return mean, var, noise

    return jax.jit(jax.vmap(one, in_axes=(None, 0, None, None)), static_argnums=3)


def predict_draws(problem: MoGPProblem, tests: TestInputs, limit, samples: dict, *, drift: str = "free",
                  batch: int = 16, gp_part: bool = True, keep: int | None = None, predictor=None):
    """Per-draw predictive mean (S, m, k), latent variance (S, m) and noise variance (S,) for flat ``samples``;
    ``keep=k``: the k largest jumps only; ``predictor``: a :func:`draw_predictor` of the same problem (else one is
    compiled for this call)."""
    f = predictor or draw_predictor(problem, limit, drift=drift)
    flat = {k: jnp.asarray(samples[k]) for k in DRAW_KEYS if k in samples}
    total = next(iter(flat.values())).shape[0]
    num_jumps = flat["features"].shape[1] if "features" in flat else 0
    k = jnp.asarray(num_jumps if keep is None else min(int(keep), num_jumps))
    outs = [f(tests, {name: v[i:i + batch] for name, v in flat.items()}, k, bool(gp_part))
            for i in range(0, total, batch)]
    return tuple(np.asarray(jnp.concatenate([o[i] for o in outs])) for i in range(3))


def _kernel_parts(problem, limit, s, drift):
    """(scale of the GP part, noise, jump weights, features at the training inputs) of one draw ``s``."""
    phi_fn = FEATURE_ACTIVATIONS[problem.activation]
    sigma_v2 = s["sigma_v2"]
    noise = s["noise_total"] if "noise_total" in s else s["noise"]
    a = s["drift"] if drift == "free" else jnp.asarray(float(limit.drift))
    if "features" not in s:
        return sigma_v2 * a, noise, jnp.zeros(0), jnp.zeros((problem.basis.shape[0], 0))
    lam = s["jumps"]
    return (sigma_v2 * (a + limit.remainder_mean(lam[-1])), noise, sigma_v2 * lam,
            phi_fn(problem.basis @ s["features"].T))


def loo_draws(problem: MoGPProblem, limit, samples: dict, *, drift: str = "free", batch: int = 16) -> np.ndarray:
    r"""Exact leave-one-out log densities :math:`\log p(y_i \mid y_{-i}, \theta_s)` (S, n) of the training
    targets (model units, summed over outputs) for each draw: the pointwise terms of PSIS-LOO for a GP whose
    function values are integrated out (Vehtari et al. 2016), :func:`bayes_mogp.mogp.likelihood.loo_log_density`."""

    def one(s):
        scale, noise, lam, phi = _kernel_parts(problem, limit, s, drift)
        return lk.loo_log_density(problem.base, scale, noise, lam, phi)

    flat = {k: jnp.asarray(samples[k]) for k in DRAW_KEYS if k in samples}
    total = next(iter(flat.values())).shape[0]
    f = jax.jit(jax.vmap(one))
    return np.concatenate([np.asarray(f({k: v[i:i + batch] for k, v in flat.items()})) for i in range(0, total, batch)])


def class_probabilities(means, variances, noises, *, batch: int = 8) -> np.ndarray:
    """Mixture class probabilities (m, C) from per-draw means (S, m, C), latent variances (S, m), noises (S,)."""
    from ..prediction import gaussian_class_probabilities

    total_var = jnp.asarray(variances) + jnp.asarray(noises)[:, None]
    means = jnp.asarray(means)
    f = jax.jit(gaussian_class_probabilities)
    probs = jnp.zeros(means.shape[1:])
    for i in range(0, means.shape[0], batch):
        probs = probs + jnp.sum(f(means[i:i + batch], total_var[i:i + batch]), axis=0)
    return np.asarray(probs / means.shape[0])
