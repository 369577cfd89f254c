"""Per-node variance priors: API, Lévy-measure identities, limits (KS at p = 1e3; p = 1e4 in the slow pass), errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from bayes_mogp.priors import (
    PRIOR_NAMES,
    CustomPrior,
    InfiniteWidthLimit,
    LevyMeasure,
    NodeVariancePrior,
    NumericLevyMeasure,
    get_prior,
)

MOGP = ["bernoulli", "beta", "horseshoe", "gamma_mogp", "generalized_gamma", "gbfry"]
GP = ["iid", "inverse_gamma", "gamma_gp"]
CONTINUOUS = ["beta", "horseshoe", "gamma_mogp", "generalized_gamma", "gbfry"]


def test_names_and_aliases():
    assert set(PRIOR_NAMES) == set(MOGP + GP)
    for alias, name in {"a": "inverse_gamma", "b": "bernoulli", "c": "beta", "d": "horseshoe"}.items():
        assert get_prior(alias, 10).name == name


@pytest.mark.parametrize("name", PRIOR_NAMES)
def test_api_shapes_and_numpyro(name):
    prior = get_prior(name, 50)
    assert isinstance(prior, NodeVariancePrior) and prior.width == 50 and isinstance(prior.hyper, dict)
    assert prior.distribution.batch_shape == ()
    key = jax.random.PRNGKey(1)
    # a 2-d sample shape, and the same shape through NumPyro's expand: one compilation of the sampler
    lam = prior.sample(key, (3, 50))
    assert lam.shape == (3, 50) and jnp.all(jnp.isfinite(lam)) and jnp.all(lam >= 0)
    assert jnp.array_equal(lam, prior.sample(key, (3, 50)))  # same key, same result
    layer = prior.distribution.expand([50]).sample(key, (3,))
    assert layer.shape == (3, 50)
    lim = prior.limit
    assert isinstance(lim, InfiniteWidthLimit) and isinstance(lim.levy, LevyMeasure)
    assert lim.regime == ("GP" if name in GP else "MoGP")
    assert lim.sample_total(key, (4,)).shape == (4,)
    jumps = lim.sample_jumps(key, 6, (2,))
    assert jumps.shape == (2, 6) and jnp.all(jnp.diff(jumps, axis=-1) <= 0)


@pytest.mark.parametrize("name", ["beta", "gamma_mogp"])
def test_tiny_concentration_no_nan(name):
    prior = get_prior(name, 10**7)  # concentration 1e-7: most draws underflow in linear space
    lam = prior.sample(jax.random.PRNGKey(0), (1000,))
    assert not jnp.any(jnp.isnan(lam))
    assert jnp.all(jnp.isfinite(prior.log_sample(jax.random.PRNGKey(0), (1000,))))


@pytest.mark.parametrize("name", CONTINUOUS)
def test_levy_identities_against_quadrature(name):
    levy = get_prior(name, 100).limit.levy
    density = jax.jit(levy.density)  # one compilation, then hundreds of quadrature points
    dens = lambda u: float(density(u))  # noqa: E731
    upper = 1.0 if name == "beta" else np.inf
    for x in (0.01, 0.3):
        tail = integrate.quad(dens, x, upper, limit=200)[0]
        assert float(levy.tail(x)) == pytest.approx(tail, rel=1e-6)
        assert float(levy.inverse_tail(levy.tail(x))) == pytest.approx(x, rel=1e-6)
        mom = integrate.quad(lambda u: u * dens(u), 0, x, limit=200)[0]
        assert float(levy.truncated_first_moment(x)) == pytest.approx(mom, rel=1e-5)
    for t in (0.5, 3.0):
        psi = integrate.quad(lambda u: -math.expm1(-t * u) * dens(u), 0, upper, limit=400)[0]
        assert float(levy.laplace_exponent(t)) == pytest.approx(psi, rel=1e-5)


@pytest.mark.parametrize("name", CONTINUOUS)
def test_inverse_tail_jit_and_grad(name):
    levy = get_prior(name, 100).limit.levy
    g = jnp.array([0.3, 1.0, 4.0])
    x = jax.jit(levy.inverse_tail)(g)
    grad = jax.grad(lambda a: levy.inverse_tail(a).sum())(g)
    # implicit function theorem: d rhobar^-1(g)/dg = -1 / rho(x)
    np.testing.assert_allclose(grad, -1.0 / levy.density(x), rtol=1e-5)


@pytest.mark.parametrize("name", MOGP)
def test_limit_sampler_laplace_transform(name):
    # E exp(-t Lambda) = exp(-psi(t)); MC error of a mean of n values in [0, 1] is <= 0.5/sqrt(n) = 0.0035;
    # tolerance 5 standard errors.
    lim = get_prior(name, 100).limit
    lam = np.asarray(jax.jit(lambda k: lim.sample_total(k, (20000,)))(jax.random.PRNGKey(3)))
    for t in (0.2, 1.0):
        assert np.mean(np.exp(-t * lam)) == pytest.approx(float(np.exp(-lim.laplace_exponent(t))), abs=0.018)


def _check_sum_matches_limit(name, p, n):
    """``n`` sums of ``p`` draws against 4000 draws of the limit sampler: two-sample KS at level 0.001."""
    prior = get_prior(name, p)
    k1, k2 = jax.random.split(jax.random.PRNGKey(11))
    # jitted: one compilation of each sampler (the eager path is exercised by test_api_shapes_and_numpyro)
    sums = np.asarray(jax.jit(lambda k: prior.sample(k, (n, p)).sum(-1))(k1))
    limit = np.asarray(jax.jit(lambda k: prior.limit.sample_total(k, (4000,)))(k2))
    if name == "bernoulli":  # discrete: chi-square against Poisson(2) on {0,...,4, >=5}
        counts = np.bincount(np.minimum(sums.round().astype(int), 5), minlength=6)
        probs = np.append(stats.poisson.pmf(np.arange(5), 2.0), stats.poisson.sf(4, 2.0))
        assert stats.chisquare(counts, n * probs).pvalue > 1e-3
        return
    assert stats.ks_2samp(sums, limit).pvalue > 1e-3
    if name == "horseshoe":  # Lambda = 2 pi / Z^2 (Levy law with scale 2 pi)
        assert stats.kstest(sums, stats.levy(scale=2 * math.pi).cdf).pvalue > 1e-3
    if name == "gamma_mogp":
        assert stats.kstest(sums, stats.gamma(2.0).cdf).pvalue > 1e-3


@pytest.mark.parametrize("name", MOGP)
def test_sum_at_width_1e3_matches_limit(name):
    # 300 sums at p = 1e3 (jax.random.gamma is slow on CPU, ~1 us a draw, so the draws are the cost).  KS at
    # level 0.001 against 4000 limit draws rejects at D > 0.116; a sum off by a factor 1.5 in scale (a wrong
    # width scaling) is at D = 0.22 from the limit for Gamma(2), so it fails with probability ~1.  The
    # finite-width error at p = 1e3 is O(1/p) (none for gamma_mogp, whose sum is exactly Gamma(2)), far below
    # what 300 draws resolve.
    _check_sum_matches_limit(name, 1000, 300)


@pytest.mark.slow
@pytest.mark.parametrize("name", MOGP)
def test_sum_at_width_1e4_matches_limit(name):
    # The same check at p = 1e4 (150 sums: critical D = 0.16): 5x the draws of the 1e3 check.
    _check_sum_matches_limit(name, 10_000, 150)


KS_N = 150  # sums at p = 1e4 in the GP check below


@pytest.mark.parametrize("name", GP)
def test_gp_sum_concentrates(name):
    # Lambda = a = 2 is constant: the sum concentrates (IG(2): infinite variance, so use quantiles)
    prior = get_prior(name, 10_000)
    sums = np.asarray(jax.jit(lambda k: prior.sample(k, (KS_N, 10_000)).sum(-1))(jax.random.PRNGKey(5)))
    q = np.quantile(sums, [0.05, 0.5, 0.95])
    assert abs(q[1] - 2.0) < 0.02 and q[2] - q[0] < 0.25


def test_bernoulli_jumps_and_active_nodes():
    prior = get_prior("b", 1000)
    active = np.asarray(jax.jit(lambda k: (prior.sample(k, (4000, 1000)) > 0).sum(-1))(jax.random.PRNGKey(2)))
    assert abs(active.mean() - 2.0) < 0.1  # SE sqrt(2/4000) = 0.022
    jumps = prior.limit.sample_jumps(jax.random.PRNGKey(2), 10)
    assert set(np.unique(np.asarray(jumps))) <= {0.0, 1.0}


def test_bernoulli_variance_is_discrete_and_drops_into_discrete_hmc_gibbs():
    """BernoulliVariance in a plain NumPyro model, sampled by DiscreteHMCGibbs (Gibbs on its indicator, NUTS on x).

    lam ~ s Bernoulli(q), x ~ N(0, 1), y | x, lam ~ N(x, 1 + lam): integrating x, y | lam ~ N(0, 2 + lam), so
    P(lam = s | y) = q N(y; 0, 2 + s) / (q N(y; 0, 2 + s) + (1 - q) N(y; 0, 2)) exactly.
    """
    import arviz as az
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS, DiscreteHMCGibbs

    from bayes_mogp.priors import BernoulliVariance

    q, s, y = 0.3, 4.0, 2.5
    d = BernoulliVariance(q, s)
    assert d.support.is_discrete
    assert bool(d.support(jnp.array(s))) and bool(d.support(jnp.array(0.0))) and not bool(d.support(jnp.array(1.0)))
    support = d.enumerate_support()
    np.testing.assert_allclose(np.exp(np.asarray(d.log_prob(support))), [1 - q, q], rtol=1e-12)

    def model():
        lam = numpyro.deterministic("lam", d.scale * numpyro.sample("b", d.indicator()))
        x = numpyro.sample("x", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(x, jnp.sqrt(1.0 + lam)), obs=y)

    # 2000 draws: ESS of the indicator ~1000 (measured), Monte Carlo SE ~0.016, tolerance 4 SE ~0.063.  A
    # sampler that ignores the data (draws the prior, q = 0.3; exact 0.412) is 0.112 = 4 SE + 3 SE away:
    # caught with probability ~0.999.  (4000 draws cost twice as much and catch the same.)
    mcmc = MCMC(DiscreteHMCGibbs(NUTS(model)), num_warmup=300, num_samples=2000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0))
    on = np.asarray(mcmc.get_samples()["lam"] == s, dtype=float)
    exact = q * stats.norm.pdf(y, 0, math.sqrt(2 + s))
    exact /= exact + (1 - q) * stats.norm.pdf(y, 0, math.sqrt(2.0))
    ess = float(az.ess(on[None, :]))
    se = math.sqrt(exact * (1 - exact) / ess)
    assert abs(on.mean() - exact) < 4 * se, (on.mean(), exact, se)  # 4 Monte Carlo standard errors


def test_custom_prior_numeric_levy_matches_gamma():
    import numpyro.distributions as dist

    levy = NumericLevyMeasure(lambda x: 2 * np.exp(-x) / x)
    prior = CustomPrior(1000, law=lambda p: dist.Gamma(2.0 / p, 1.0), levy=levy, name="my_gamma")
    ref = get_prior("gamma_mogp", 1000).limit.levy
    for x in (0.05, 0.7):
        assert float(levy.tail(x)) == pytest.approx(float(ref.tail(x)), rel=1e-6)
    g = np.array([0.5, 2.0])
    np.testing.assert_allclose(levy.inverse_tail(g), ref.inverse_tail(g), rtol=1e-6)
    assert prior.limit.regime == "MoGP" and prior.sample(jax.random.PRNGKey(0), (3,)).shape == (3,)


@pytest.mark.parametrize(
    "name,kwargs,param",
    [
        ("horseshoe", {"scale": -1.0}, "scale"),
        ("inverse_gamma", {"shape": 0.5}, "shape"),
        ("generalized_gamma", {"sigma": 1.5}, "sigma"),
        ("iid", {"c": 0.0}, "c"),
        ("bernoulli", {"rate": 200.0}, "width"),
        ("gbfry", {"alpha": 1.0}, "alpha"),
        ("gbfry", {"tau": 1.0}, "tau"),
        ("gbfry", {"alpha_prior": "beta"}, "alpha_prior"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(name, kwargs, param):
    with pytest.raises(ValueError, match=param):
        get_prior(name, 100, **kwargs)


def test_invalid_width_name_and_unknown_hyper():
    with pytest.raises(ValueError, match="width"):
        get_prior("beta", 0)
    with pytest.raises(ValueError, match="prior name"):
        get_prior("nope", 10)
    with pytest.raises(TypeError, match="unknown hyperparameter"):
        get_prior("beta", 10, sigma=0.3)


def test_horseshoe_slab_by_value():
    # c_s^2 = 2 s^2 / p = 1 at s = 2, p = 8: slab(lam) = lam / (1 + lam), so slab(c_s^2) = c_s^2 / 2 (a clip at
    # c_s^2 would give c_s^2) and slab(lam) -> c_s^2 from below as lam grows
    prior = get_prior("horseshoe", 8, slab_scale=2.0)
    lam = np.array([0.0, 0.5, 1.0, 3.0, 1e6])
    np.testing.assert_allclose(np.asarray(prior.slab(jnp.asarray(lam))), lam / (1.0 + lam), rtol=1e-12)
    plain = get_prior("horseshoe", 8)
    np.testing.assert_array_equal(np.asarray(plain.slab(jnp.asarray(lam))), lam)


def test_horseshoe_log_site_has_the_two_factor_law():
    # site="log" samples lam on its own log scale; its prior draws must have the law of the two-factor form's.
    # 4000 draws of each (p = 1000 nodes, 4 networks): a two-sample KS test at the 1e-3 level on log lam, and the
    # median of lam / tau^2 = U^2 against 1 (U half-Cauchy) within 4 SE: the density of U^2 at 1 is 1 / (2 pi), so
    # the sample median's SE is 1 / (2 f sqrt(n)) = pi / sqrt(n) (5% at n = 4000)
    import numpyro
    from scipy import stats

    def draws(site):
        prior = get_prior("horseshoe", 1000, scale=0.5, site=site)
        return np.concatenate([np.asarray(numpyro.handlers.seed(lambda: prior.sample_site("lam"), k)())
                               for k in range(4)])

    log_site, two_factor = draws("log"), draws("two_factor")
    assert stats.ks_2samp(np.log(log_site), np.log(two_factor)).pvalue > 1e-3
    tau2 = get_prior("horseshoe", 1000, scale=0.5).global_scale ** 2
    assert abs(np.median(log_site) / tau2 - 1) < 4 * np.pi / np.sqrt(log_site.size)
    tr = numpyro.handlers.trace(numpyro.handlers.seed(
        lambda: get_prior("horseshoe", 5, site="log").sample_site("lam"), 0)).get_trace()
    assert set(tr) == {"lam_raw", "lam"}  # one site per node, on log lam
    # its log-density is NumPyro's half-Cauchy under a square, plus the log Jacobian, written without forming lam:
    # equal where both are finite, and a finite float32 gradient (1/2: the density falls as lam^(1/2) in log lam)
    # far below lam = 1e-26, where the composed form's gradient is infinite
    from bayes_mogp.priors.horseshoe import LogHorseshoeVariance

    prior = get_prior("horseshoe", 500, scale=0.5)
    u = jnp.linspace(-40.0, 5.0, 10)
    np.testing.assert_allclose(np.asarray(LogHorseshoeVariance(prior.global_scale).log_prob(u)),
                               np.asarray(prior.distribution.log_prob(jnp.exp(u)) + u), rtol=1e-12, atol=1e-12)
    with jax.enable_x64(False):
        grad = jax.grad(lambda v: LogHorseshoeVariance(jnp.float32(prior.global_scale)).log_prob(v))
        assert [float(grad(jnp.float32(v))) for v in (-61.0, -80.0, -150.0)] == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="site 'log' needs scale_prior 'fixed'"):
        get_prior("horseshoe", 5, site="log", scale_prior="half_cauchy")
    with pytest.raises(ValueError, match="site must be one of"):
        get_prior("horseshoe", 5, site="logit")
