r"""MoGP regression: NumPyro model, NUTS over random kernels, and the mixture-of-GPs predictive.

Model (seed 000 eq. (1)-(2) and section 3; DESIGN.md section 2).  The layers below the last hidden layer
are in the GP regime, so the pre-activations of the last hidden layer have a fixed covariance
:math:`\Sigma` on the finite set of inputs (``X X^T / d_in`` for one hidden layer, the NNGP recursion for
deeper ones).  The last hidden layer has per-node variances with drift ``a`` and Levy measure ``rho``;
in the limit, the C outputs are independent GPs given the shared random kernel

.. math::

    K = \sigma_v^2 \Big[(a + R(\lambda_{(J)}))\, K_\phi + \sum_{j \le J} \lambda_{(j)}\,
        \phi(h_j)\phi(h_j)^T\Big],\qquad K_\phi = E_{z\sim N(0,\Sigma)}[\phi(z)\phi(z)^T],

with the J largest jumps by Ferguson-Klass, :math:`\lambda_{(j)} = \bar\rho^{-1}(G_j)`,
:math:`G_j = E_1 + \dots + E_j`, :math:`E_i \sim \mathrm{Exp}(1)` (the NUTS latents
``arrivals``), the features :math:`h_j \sim N(0, \Sigma)` written :math:`h_j = F u_j`,
:math:`u_j \sim N(0, I_r)`, :math:`F` the rank-r factor of :math:`\Sigma` from its top-r eigenpairs over
train and test inputs together (so the test features come with the training ones; the rank-r
truncation is reported as the fraction of the trace it keeps), and the remainder
:math:`R(x) = \int_0^x u\,\rho(du)`: the mean of the jumps below the J-th folded into the drift.
:math:`Y_{:,c} = Z_c(X) + N(0, \sigma^2 I)`.  Free: ``sigma_v2``, ``noise`` (log-normal priors) and,
with ``drift="free"``, ``a`` (half-normal).  The likelihood is :mod:`.likelihood` (one eigendecomposition
of :math:`K_\phi`, Woodbury per step: no n x n Cholesky per leapfrog step).

Predictive: for each posterior draw the exact GP prediction (mean, latent variance) given that kernel,
then the mixture over draws.  Class probabilities are :math:`P(\arg\max_c y_{*c} = k)` under the
predictive of :math:`y_*` (latent variance plus noise), computed by Gauss-Hermite quadrature of
:math:`\int N(f; m_k, v)\prod_{c\ne k}\Phi((f - m_c)/\sqrt v)\,df` and averaged over draws.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import metrics
from ..numerics import require_x64
from ..validation import check_choice, check_finite_array, check_int, check_positive
from . import likelihood as lk

__all__ = [
    "MoGPProblem",
    "build_problem",
    "mogp_model",
    "fit_map",
    "run_nuts",
    "predict_draws",
    "mixture_predictive",
    "class_probabilities",
    "classification_metrics",
    "target_nll",
    "mean_accuracy",
    "per_chain_summary",
]


class MoGPProblem(NamedTuple):
    """Everything the model needs that does not change during inference (float64 arrays)."""

    base: lk.EigenBase  # eigendecomposition of K_phi(X, X) and rotated targets
    pbase: lk.PredictBase  # U^T K_phi(X, X*), diag K_phi(X*, X*)
    feat_factor: jax.Array  # (n + m, r) F with Sigma ~= F F^T over train then test inputs
    n_train: int
    trace_kept: float  # fraction of trace(Sigma) kept by the rank-r factor


def build_problem(k_phi, sigma, y, n_train: int, *, rank: int = 32) -> MoGPProblem:
    """Assemble a :class:`MoGPProblem` from kernels over train-then-test inputs.

    ``k_phi`` (N, N) the base kernel E[phi(z)phi(z)^T]; ``sigma`` (N, N) the pre-activation covariance
    of the last hidden layer; ``y`` (n_train, C); the first ``n_train`` rows/columns are the training
    inputs, the rest the test inputs.  ``rank`` r: the feature prior keeps the top-r eigenpairs of sigma.
    """
    require_x64("bayes_mogp.mogp.build_problem")
    k_phi = check_finite_array("k_phi", k_phi, ndim=2)
    sigma = check_finite_array("sigma", sigma, ndim=2)
    y = check_finite_array("y", y)
    n_all = k_phi.shape[0]
    n_train = check_int("n_train", n_train, 1, n_all)
    rank = check_int("rank", rank, 1, n_all)
    if sigma.shape != k_phi.shape:
        raise ValueError(f"sigma must have the shape of k_phi {k_phi.shape}, got {sigma.shape}")
    base = lk.eigen_base(k_phi[:n_train, :n_train], y)
    pbase = lk.predict_base(base, k_phi[:n_train, n_train:], np.diag(k_phi)[n_train:])
    ev, vec = np.linalg.eigh(0.5 * (sigma + sigma.T))
    ev, vec = np.clip(ev[::-1], 0, None), vec[:, ::-1]
    factor = vec[:, :rank] * np.sqrt(ev[:rank])
    kept = float(ev[:rank].sum() / max(ev.sum(), 1e-300))
    return MoGPProblem(base, pbase, jnp.asarray(factor), n_train, kept)


def _relu(x):
    return jnp.maximum(x, 0.0)


def mogp_model(problem: MoGPProblem, limit, num_jumps: int, *, drift: str = "prior",
               noise_prior=(np.log(0.01), 1.5), scale_prior=(0.0, 1.0), activation=_relu):
    """The NumPyro model of the module docstring (log-likelihood added with ``numpyro.factor``)."""
    import numpyro
    import numpyro.distributions as dist

    sigma_v2 = numpyro.sample("sigma_v2", dist.LogNormal(*scale_prior))
    noise = numpyro.sample("noise", dist.LogNormal(*noise_prior))
    if drift == "free":
        a = numpyro.sample("drift", dist.HalfNormal(2.0))
    else:
        a = jnp.asarray(float(limit.drift))
    n = problem.n_train
    if num_jumps > 0:
        e = numpyro.sample("arrivals", dist.Exponential(1.0).expand([num_jumps]).to_event(1))
        lam = limit.levy.inverse_tail(jnp.cumsum(e))
        remainder = limit.remainder_mean(lam[-1])
        u = numpyro.sample("features", dist.Normal(0.0, 1.0).expand([num_jumps, problem.feat_factor.shape[1]])
                           .to_event(2))
        phi = activation(problem.feat_factor[:n] @ u.T)
        numpyro.deterministic("jumps", lam)
    else:
        lam, remainder, phi = jnp.zeros(0), jnp.asarray(0.0), jnp.zeros((n, 0))
    scale = sigma_v2 * (a + remainder)
    numpyro.deterministic("gp_scale", scale)
    ll = lk.woodbury_log_likelihood(problem.base, scale, noise, sigma_v2 * lam, phi)
    numpyro.deterministic("log_likelihood", ll)
    numpyro.factor("y", ll)


def fit_map(key, model_kwargs: dict, *, steps: int = 1500, lr: float = 0.02):
    """MAP (SVI with ``AutoDelta``, Adam) used to start NUTS in the main mode (DESIGN.md section 7)."""
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoDelta

    guide = AutoDelta(mogp_model, init_loc_fn=numpyro.infer.init_to_median(num_samples=15))
    svi = SVI(mogp_model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
    res = svi.run(key, steps, progress_bar=False, **model_kwargs)
    params = guide.median(res.params)
    return params, np.asarray(res.losses)


def run_nuts(key, model_kwargs: dict, *, num_warmup: int, num_samples: int, num_chains: int = 2,
             init_params: dict | None = None, target_accept_prob: float = 0.85, max_tree_depth: int = 8,
             progress_bar: bool = False):
    """NUTS over the random kernel; chains run one after the other (2 cores: no gain from parallel)."""
    from numpyro.infer import MCMC, NUTS, init_to_value

    num_samples = check_int("num_samples", num_samples, 1)
    init = init_to_value(values=init_params) if init_params is not None else None
    kernel_kw: dict[str, Any] = dict(target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth)
    if init is not None:
        kernel_kw["init_strategy"] = init
    mcmc = MCMC(NUTS(mogp_model, **kernel_kw), num_warmup=num_warmup, num_samples=num_samples,
                num_chains=num_chains, chain_method="sequential", progress_bar=progress_bar)
    mcmc.run(key, extra_fields=("diverging",), **model_kwargs)
    return mcmc


def predict_draws(problem: MoGPProblem, limit, samples: dict, *, drift: str = "prior",
                  activation=_relu, batch: int = 16, gp_part: bool = True, keep: int | None = None):
    """Per-draw predictive mean (S, m, C), latent variance (S, m) and noise (S,) for flat samples.

    ``gp_part=False`` drops the GP part and ``keep=k`` keeps the k largest jumps only: the prediction of
    the pruned network (a finite network of k hidden nodes with its readout integrated out).
    """
    n = problem.n_train
    fac_tr, fac_te = problem.feat_factor[:n], problem.feat_factor[n:]

    def one(s):
        sigma_v2, noise = s["sigma_v2"], s["noise"]
        a = s["drift"] if drift == "free" else jnp.asarray(float(limit.drift))
        if "features" in s:
            lam = s["jumps"]
            remainder = limit.remainder_mean(lam[-1])
            u = s["features"] if keep is None else s["features"][:keep]
            lam = lam if keep is None else lam[:keep]
            phi, phi_te = activation(fac_tr @ u.T), activation(fac_te @ u.T)
        else:
            lam, remainder = jnp.zeros(0), 0.0
            phi, phi_te = jnp.zeros((n, 0)), jnp.zeros((fac_te.shape[0], 0))
        scale = sigma_v2 * (a + remainder) if gp_part else 0.0
        mean, var = lk.predict(problem.base, problem.pbase, scale, noise, sigma_v2 * lam, phi, phi_te)
        return mean, var, noise

    keys = [k for k in ("sigma_v2", "noise", "drift", "jumps", "features") if k in samples]
    flat = {k: jnp.asarray(samples[k]) for k in keys}
    total = next(iter(flat.values())).shape[0]
    f = jax.jit(jax.vmap(one))
    outs = [f({k: v[i:i + batch] for k, v in flat.items()}) for i in range(0, total, batch)]
    return tuple(jnp.concatenate([o[i] for o in outs]) for i in range(3))


def class_probabilities(mean, var, *, num_nodes: int = 48):
    r"""P(argmax_c y_c = k) for independent y_c ~ N(mean_c, var) (shared var): Gauss-Hermite in f.

    ``mean`` (..., m, C), ``var`` (..., m) -> (..., m, C), rows summing to 1 (renormalised: the
    quadrature error is below 1e-6 for 48 nodes).
    """
    from jax.scipy.special import ndtr

    t, w = np.polynomial.hermite.hermgauss(num_nodes)
    t, w = jnp.asarray(t), jnp.asarray(w / np.sqrt(np.pi))
    sd = jnp.sqrt(jnp.maximum(var, 1e-300))[..., None, None]  # (..., m, 1, 1)
    f = mean[..., :, None] + np.sqrt(2.0) * sd * t  # (..., m, C, T) candidate value of class k
    z = (f[..., :, None, :] - mean[..., None, :, None]) / sd[..., None]  # (..., m, k, c, T)
    logcdf = jnp.log(jnp.clip(ndtr(z), 1e-300, 1.0))
    c = mean.shape[-1]
    eye = jnp.eye(c, dtype=bool)[:, :, None]
    logprod = jnp.sum(jnp.where(eye, 0.0, logcdf), axis=-2)  # (..., m, k, T)
    p = jnp.sum(w * jnp.exp(logprod), axis=-1)
    return p / jnp.sum(p, axis=-1, keepdims=True)


def mixture_predictive(means, variances, noises, *, batch: int = 8):
    """Mixture over draws: mean (m, C), variance (m,) of y*, class probabilities (m, C)."""
    total_var = variances + noises[:, None]
    probs = jnp.zeros(means.shape[1:])
    f = jax.jit(class_probabilities)
    for i in range(0, means.shape[0], batch):
        probs = probs + jnp.sum(f(means[i:i + batch], total_var[i:i + batch]), axis=0)
    probs = probs / means.shape[0]
    mean = jnp.mean(means, axis=0)
    var = jnp.mean(total_var, axis=0) + jnp.mean(jnp.var(means, axis=0), axis=-1)
    return mean, var, probs


def target_nll(means, variances, noises, targets) -> float:
    r"""Mean over test points of -log of the mixture predictive density of the one-hot targets (m, C).

    The MoGP counterpart of :func:`bayes_mogp.gp.classification_metrics`'s Gaussian NLL:
    :math:`-\log \frac1S\sum_s \prod_c N(y_c; \mu_{sc}, v_s + \sigma_s^2)`.
    """
    from jax.scipy.special import logsumexp

    tot = variances + noises[:, None]  # (S, m)
    r2 = jnp.sum((jnp.asarray(targets)[None] - means) ** 2, axis=-1)  # (S, m)
    c = means.shape[-1]
    logp = -0.5 * (r2 / tot + c * jnp.log(2 * jnp.pi * tot))
    return float(-jnp.mean(logsumexp(logp, axis=0) - jnp.log(means.shape[0])))


def classification_metrics(probs, labels, *, num_bins: int = 15) -> dict:
    """Accuracy, categorical NLL (probabilities floored at 1e-12) and 15-bin ECE:
    :func:`bayes_mogp.metrics.classification_metrics`."""
    return metrics.classification_metrics(probs, labels, num_bins=num_bins, min_prob=1e-12)


def per_chain_summary(log_likelihood, means, labels) -> dict:
    """What each chain says on its own: its mean log-likelihood and the accuracy of its own mixture mean.

    ``log_likelihood`` (chains, draws); ``means`` (chains, draws, m, C) per-draw predictive means; ``labels``
    (m,).  When the chains sit in different modes of the feature posterior (R-hat far above 1), these show
    how far apart the modes are and whether a higher likelihood predicts better (it need not: see the
    closing notes of issue 4 and ``benchmarks/study_mogp_capacity.py``).
    """
    ll = np.asarray(log_likelihood)
    means = np.asarray(means)
    if ll.ndim != 2 or means.ndim != 4 or means.shape[:2] != ll.shape:
        raise ValueError(f"log_likelihood must be (chains, draws) and means (chains, draws, m, C); "
                         f"got {ll.shape} and {means.shape}")
    acc = [mean_accuracy(m.mean(0), labels) for m in means]
    return {"log_likelihood_mean": [float(v) for v in ll.mean(1)], "accuracy": acc}


def mean_accuracy(mean, labels) -> float:
    """Accuracy of the predictive mean (m, C): the fraction of ``labels`` (m,) equal to its argmax, in float64
    (a JAX float32 reduction would print 0.92 as 0.9200000166893005)."""
    return float(np.mean(np.argmax(np.asarray(mean), -1) == np.asarray(labels)))
