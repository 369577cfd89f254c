"""The GBFRY prior: finite-width density against its draws and quadrature, the limit, float32, the alpha site.

The density checks against the closed form and quadrature run in the default pass; the Monte Carlo checks and
the float32 site gradient (a long compilation) in the slow pass.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest
from scipy import integrate, special, stats

from bayes_mogp.priors import GBFRYPrior, get_prior
from bayes_mogp.priors.gbfry import gbfry_log_density

CASES = [(0.2, 2.0, 500), (0.5, 5.0, 2000), (0.8, 2.0, 100), (0.5, 2.0, 1)]  # (alpha, tau, width); p = 1: L < 1


def _direct_density(x, alpha, tau, width):
    """f_p(x) from the closed form with the bracket evaluated by mpmath-free scipy (float64, no series)."""
    s = tau - alpha
    t = (alpha * width * tau / (tau - alpha)) ** (1 / alpha)
    k = tau * alpha * special.gamma(s) / (special.gamma(1 - alpha) * ((1 + t) ** alpha - 1))
    bracket = special.gammainc(s, x) - special.gammainc(s, (1 + t) * x) / (1 + t) ** s
    return k * x ** (-1 - tau) * bracket


@pytest.mark.parametrize("alpha,tau,width", CASES)
def test_log_density_normalised_and_equal_to_the_closed_form(alpha, tau, width):
    logf = jax.jit(lambda u: gbfry_log_density(u, alpha, tau, width))
    # where the closed form does not cancel (x of order 1 and above), the stable evaluation equals it
    for x in (0.3, 1.0, 4.0, 30.0):
        assert float(logf(math.log(x))) - math.log(x) == pytest.approx(math.log(_direct_density(x, alpha, tau, width)), abs=1e-8)
    # the density of u = log x integrates to 1; below x = 1 / (1 + t_p) it decays as x^(1 - alpha), so the
    # range reaches 40 / (1 - alpha) units further down (mass left out: e^-40)
    t = (alpha * width * tau / (tau - alpha)) ** (1 / alpha)
    lo = -math.log1p(t) - 40.0 / (1.0 - alpha)
    total = sum(integrate.quad(lambda u: math.exp(float(logf(u))), a, b, limit=400)[0]
                for a, b in [(lo, -math.log1p(t)), (-math.log1p(t), 0.0), (0.0, 40.0), (40.0, 400.0)])
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("alpha,tau,width", CASES[:3])
def test_draws_follow_the_density(alpha, tau, width):
    # 4000 draws of log(lam / c) against the CDF by quadrature of the density: KS at level 0.001
    prior = get_prior("gbfry", width, alpha=alpha, tau=tau)
    log_c = math.log(float(prior.scale))
    u = np.sort(np.asarray(prior.log_sample(jax.random.PRNGKey(0), (4000,)))) - log_c
    logf = jax.jit(lambda v: gbfry_log_density(v, alpha, tau, width))
    grid = np.linspace(u[0] - 1.0, u[-1] + 1.0, 4001)
    dens = np.exp(np.asarray(logf(jnp.asarray(grid))))
    cdf_grid = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf_grid /= cdf_grid[-1]  # the mass outside the grid is below the trapezoid's error
    assert stats.kstest(u, lambda v: np.interp(v, grid, cdf_grid)).pvalue > 1e-3


@pytest.mark.slow
def test_width_scaling_gives_the_levy_density():
    # p f_p(lam) -> rho(lam) pointwise.  Away from lam ~ c / t_p the only finite-width term left is the
    # normaliser: p f_p / rho = t_p^alpha / ((1 + t_p)^alpha - 1) = 1 + (tau - alpha) / (alpha tau p) + O(p^-2),
    # so the relative gap is 1.5e-4 at p = 1e4 and 1.5e-5 at p = 1e5 for alpha = .5, tau = 2: checked to 1%
    levy = get_prior("gbfry", 10, alpha=0.5, tau=2.0).limit.levy
    for p in (10_000, 100_000):
        log_prob = jax.jit(get_prior("gbfry", p, alpha=0.5, tau=2.0).distribution.log_prob)
        for lam in (1e-3, 0.1, 2.0):
            gap = p * float(jnp.exp(log_prob(lam))) / float(levy.density(lam)) - 1.0
            assert gap == pytest.approx(1.5 / p, rel=0.01)
    assert float(levy.mean) == 1.0
    # E Lambda = int lam rho(d lam) = mu, by quadrature of the density
    dens = lambda x: x * float(levy.density(x))  # noqa: E731
    mean = integrate.quad(dens, 0, 1, limit=400)[0] + integrate.quad(dens, 1, np.inf, limit=400)[0]
    assert mean == pytest.approx(1.0, rel=1e-6)


@pytest.mark.slow
def test_finite_mean_and_monte_carlo():
    # tau = 5: variance finite; the mean of 20000 draws within 5 standard errors of E lam (-> mu / p)
    prior = get_prior("gbfry", 500, alpha=0.5, tau=5.0)
    lam = np.asarray(prior.sample(jax.random.PRNGKey(1), (20000,)))
    mean = float(prior.distribution.mean)
    assert mean == pytest.approx(1.0 / 500, rel=0.01)
    assert abs(lam.mean() - mean) < 5 * lam.std() / math.sqrt(lam.size)


@pytest.mark.slow
def test_alpha_prior_site_and_its_float32_gradient():
    # the site a BNN samples, in float32 as the minibatch samplers run it, at log-variances far below the
    # smallest float32 (e^-300): log-density and gradients (alpha's included) finite
    prior = GBFRYPrior(200, alpha_prior="uniform")  # as wide as a BNN layer: the L < 1 branch is left out

    def model():
        prior.sample_site("lam1")

    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace()
    assert {"lam1_alpha", "lam1_raw", "lam1"} <= set(tr)
    assert tr["lam1_alpha"]["fn"].low == 0.01 and tr["lam1"]["value"].shape == (200,)
    from numpyro.infer.util import potential_energy

    with jax.enable_x64(False):
        params = {"lam1_alpha": jnp.float32(0.0), "lam1_raw": jnp.linspace(-300.0, 3.0, 200, dtype=jnp.float32)}
        energy, g = jax.jit(jax.value_and_grad(lambda p: potential_energy(model, (), {}, p)))(params)
        assert energy.dtype == jnp.float32 and bool(jnp.isfinite(energy))
        assert all(bool(jnp.all(jnp.isfinite(v))) for v in g.values()) and float(jnp.abs(g["lam1_alpha"])) > 0


@pytest.mark.parametrize("hyper,param", [({"alpha": 0.0}, "alpha"), ({"alpha": 1.5}, "alpha"),
                                         ({"tau": 0.5}, "tau"), ({"mu": float("nan")}, "mu")])
def test_bad_hyperparameters(hyper, param):
    with pytest.raises(ValueError, match=param):
        get_prior("gbfry", 10, **hyper)
