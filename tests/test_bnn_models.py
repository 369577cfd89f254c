"""bayes_mogp.bnn.models: the model's joint log density, term by term, against an independent scipy sum.

``numpyro.infer.util.log_density`` of :func:`bnn_model` at random parameters (not drawn by the model: values
chosen on each site's support) must equal the sum, written here with scipy and numpy only, of every prior
term (standardised weights and biases, each family's per-node sites, the noise scale) and of the
log-likelihood of the data under a forward pass written here in numpy.  Exact arithmetic in float64: the
tolerance is rounding (rtol 1e-9 on sums of order 1e2-1e3), except where the package evaluates a density by
quadrature (generalized_gamma: Gauss-Legendre with 256 nodes, documented relative accuracy about 1e-6).
A tempered likelihood, a mis-scaled noise, a wrong prior term or a wrong slab changes the sum by O(1).
"""

import math

import numpy as np
import pytest
from scipy import special, stats

from bayes_mogp.bnn import BNNConfig
from bayes_mogp.bnn.models import bnn_model

D_IN, D_OUT, WIDTHS, N = 3, 2, (4, 3), 7


def _site_values(cfg, rng):
    """Random values on each latent site's support (names and shapes from one trace of the model)."""
    import jax
    import numpyro
    from numpyro.distributions import constraints

    X = np.zeros((N, D_IN))
    tr = numpyro.handlers.trace(numpyro.handlers.seed(bnn_model, jax.random.key(0))).get_trace(cfg, X, None)
    out = {}
    for name, site in tr.items():
        if site["type"] != "sample" or site["is_observed"] or name == "y":  # y: traced with y=None above
            continue
        shape = np.shape(site["value"])
        support = site["fn"].support
        base = getattr(support, "base_constraint", support)  # .to_event(k) wraps it in independent(...)
        if name.endswith("_index"):
            out[name] = rng.integers(0, 2, size=shape)
        elif base is constraints.real:
            out[name] = rng.normal(size=shape) - (4.0 if name.endswith("_raw") and "lam" in name else 0.0)
        elif name.endswith("_alpha"):
            out[name] = rng.uniform(0.2, 0.8, size=shape)
        elif "lam" in name and cfg.prior == "beta":
            out[name] = rng.uniform(0.01, 0.99, size=shape)
        else:
            out[name] = np.exp(rng.normal(size=shape) - (3.0 if "lam" in name else 0.0))
    return out


def _gbfry_log_density_of_log_lam(u, alpha, tau, mu, p):
    """log density of log(lambda) for GBFRY at width p, from its closed form with scipy's gammainc:
    lambda = c x, f_p(x) = K x^(-1-tau) [P(s, x) - P(s, (1+t) x) / (1+t)^s] (docs: priors/gbfry.py)."""
    s = tau - alpha
    c = mu * (tau - 1) / (tau - alpha)
    t = (alpha * p * tau / (tau - alpha)) ** (1 / alpha)
    k = tau * alpha * special.gamma(s) / (special.gamma(1 - alpha) * ((1 + t) ** alpha - 1))
    x = np.exp(u) / c
    f = k * x ** (-1 - tau) * (special.gammainc(s, x) - special.gammainc(s, (1 + t) * x) / (1 + t) ** s)
    return np.log(f) + np.log(x)  # density of log x = density of log lambda


def _layer_terms(cfg, layer, v):
    """(log prior of layer ``layer``'s node-variance sites, lambda) from scipy."""
    p, h = cfg.widths[layer], {**cfg.priors[layer].hyper}
    name = cfg.prior
    if name == "iid":
        return 0.0, np.full(p, h["c"] / p)
    if name == "horseshoe":
        lp, tau0 = 0.0, math.pi * h["scale"] / p
        if h["scale_prior"] == "fixed":
            tau = tau0
        elif h["scale_prior"] == "half_normal":
            z = v[f"tau{layer}_z"]
            lp += stats.halfnorm.logpdf(z)
            tau = tau0 * z
        else:
            z, g = v[f"tau{layer}_z"], v[f"tau{layer}_g"]
            lp += stats.halfnorm.logpdf(z) + stats.chi2.logpdf(g, 1)  # Gamma(1/2, rate 1/2) = chi^2_1
            tau = tau0 * z / np.sqrt(g)
        z, g = v[f"u{layer}_z"], v[f"u{layer}_g"]
        lp += stats.halfnorm.logpdf(z).sum() + stats.chi2.logpdf(g, 1).sum()
        lam = (tau * z / np.sqrt(g)) ** 2
        if h["slab_scale"] is not None:  # regularised horseshoe, c^2 = 2 s^2 / p (Piironen and Vehtari 2017)
            c2 = 2 * h["slab_scale"] ** 2 / p
            lam = c2 * lam / (c2 + lam)
        return lp, lam
    if name == "bernoulli":
        idx = v[f"lam{layer}_index"]
        return stats.bernoulli.logpmf(idx, h["rate"] / p).sum(), h["size"] * idx
    if name == "gbfry":
        u = v[f"lam{layer}_raw"]
        alpha, lp = h["alpha"], 0.0
        if h["alpha_prior"] == "uniform":
            alpha = v[f"lam{layer}_alpha"]
            lp += stats.uniform.logpdf(alpha, 0.01, 0.98)
        return lp + _gbfry_log_density_of_log_lam(u, alpha, h["tau"], h["mu"], p).sum(), np.exp(u)
    lam = v[f"lam{layer}_raw"]
    if name == "inverse_gamma":
        lp = stats.invgamma.logpdf(lam, h["shape"], scale=h["scale"] / p)
    elif name == "gamma_gp":
        lp = stats.gamma.logpdf(lam, h["shape"], scale=h["c"] / (h["shape"] * p))
    elif name == "gamma_mogp":
        lp = stats.gamma.logpdf(lam, h["c"] / p, scale=1 / h["rate"])
    elif name == "beta":
        lp = stats.beta.logpdf(lam, h["c"] / p, 0.5)
    elif name == "generalized_gamma":
        # sigma = 1/2: the positive 1/2-stable law with E e^{-tX} = e^{-a sqrt t} is Levy(scale a^2 / 2); the
        # tempered law multiplies its density by e^{-tau x + a tau^sigma}, a = c / (sigma p)
        assert h["sigma"] == 0.5
        a = h["c"] / (h["sigma"] * p)
        lp = stats.levy.logpdf(lam, scale=a**2 / 2) - h["tau"] * lam + a * h["tau"] ** 0.5
    else:
        raise AssertionError(name)
    return lp.sum(), lam


def _reference_log_density(cfg, v, X, Y):
    """(log prior, log-likelihood) of the site values ``v``, from scipy and a numpy forward pass."""
    act = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "erf": special.erf}[cfg.activation]
    depth = len(cfg.widths)
    lp = sum(stats.norm.logpdf(v[f"V{l}"]).sum() + stats.norm.logpdf(v[f"b{l}_raw"]).sum() for l in range(depth + 1))
    h = cfg.sigma_v / math.sqrt(D_IN) * X @ v["V0"] + cfg.sigma_b * v["b0_raw"]
    for layer in range(depth):
        lp_l, lam = _layer_terms(cfg, layer, v)
        lp += lp_l
        h = act(h) @ (np.sqrt(lam)[:, None] * cfg.sigma_v * v[f"V{layer + 1}"]) + cfg.sigma_b * v[f"b{layer + 1}_raw"]
    if cfg.likelihood == "categorical":
        return lp, special.log_softmax(h, axis=1)[np.arange(N), Y].sum()
    sigma = v["sigma"]
    lp += stats.halfnorm.logpdf(sigma, scale=cfg.noise_scale)
    if cfg.likelihood == "gaussian":
        return lp, stats.norm.logpdf(Y, h, sigma).sum()
    return lp, stats.t.logpdf(Y, cfg.df, h, sigma).sum()


# every family (with its options) under the Gaussian likelihood, and every likelihood under two families
FAMILIES = [
    ("iid", {}, {}),
    ("inverse_gamma", {"shape": 2.5, "scale": 1.5}, {}),
    ("gamma_gp", {"shape": 1.5, "c": 2.0}, {}),
    ("bernoulli", {"rate": 1.5, "size": 2.0}, {}),
    ("beta", {"c": 1.5}, {}),
    ("horseshoe", {}, {"global_scale": "fixed"}),
    ("horseshoe", {}, {"global_scale": "half_normal"}),
    ("horseshoe", {}, {"global_scale": "half_cauchy", "slab_scale": 0.8}),
    ("gamma_mogp", {"c": 2.0, "rate": 1.5}, {}),
    ("generalized_gamma", {"c": 2.0, "sigma": 0.5, "tau": 1.5}, {}),
    ("gbfry", {"alpha": 0.4, "tau": 3.0, "mu": 1.5}, {}),
    ("gbfry", {"alpha_prior": "uniform"}, {}),
]
CASES = [(f, h, o, "gaussian") for f, h, o in FAMILIES] + [
    ("horseshoe", {}, {"global_scale": "half_cauchy", "slab_scale": 0.8}, lik) for lik in ("categorical", "student_t")
] + [("inverse_gamma", {"shape": 2.5, "scale": 1.5}, {}, lik) for lik in ("categorical", "student_t")]


def _case_id(case):
    family, hyper, options, likelihood = case
    parts = [f"{k}={v}" for k, v in {**hyper, **options}.items()]
    return "-".join([family, *parts, likelihood])


@pytest.mark.parametrize("family,hyper,options,likelihood", CASES, ids=[_case_id(c) for c in CASES])
def test_log_density_is_the_scipy_sum_of_every_prior_and_likelihood_term(family, hyper, options, likelihood):
    from numpyro.infer.util import log_density

    rng = np.random.default_rng(7)
    cfg = BNNConfig(d_in=D_IN, d_out=D_OUT, widths=WIDTHS, prior=family, prior_hyper=hyper, activation="tanh",
                    likelihood=likelihood, sigma_v=1.3, sigma_b=0.7, noise_scale=0.9, df=5.0, **options)
    X = rng.normal(size=(N, D_IN))
    Y = rng.integers(0, D_OUT, size=N) if likelihood == "categorical" else rng.normal(size=(N, D_OUT))
    v = _site_values(cfg, rng)
    lp, _ = log_density(bnn_model, (cfg, X, Y), {}, v)
    ref = sum(_reference_log_density(cfg, v, X, Y))
    assert np.isfinite(ref)
    rtol = 1e-6 if family == "generalized_gamma" else 1e-9
    np.testing.assert_allclose(float(lp), ref, rtol=rtol)


def test_likelihood_scale_multiplies_the_log_likelihood_only():
    # the minibatch samplers' N / B: log density = prior + scale * log-likelihood (the noise prior unscaled)
    from numpyro.infer.util import log_density

    rng = np.random.default_rng(3)
    cfg = BNNConfig(d_in=D_IN, d_out=D_OUT, widths=WIDTHS, prior="gamma_gp", likelihood="gaussian")
    X, Y = rng.normal(size=(N, D_IN)), rng.normal(size=(N, D_OUT))
    v = _site_values(cfg, rng)
    prior, loglik = _reference_log_density(cfg, v, X, Y)
    lp, _ = log_density(bnn_model, (cfg, X, Y, 3.0), {}, v)
    np.testing.assert_allclose(float(lp), prior + 3.0 * loglik, rtol=1e-9)
