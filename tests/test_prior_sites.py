"""Priors as NumPyro building blocks: ``prior.sample_site`` in a model of the user's own, hyperpriors on the
hyperparameters (array and traced values), priors as pytrees, and the BNN calling the same code."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS, DiscreteHMCGibbs

from bayes_mogp.priors import BetaPrior, CustomPrior, NumericLevyMeasure, get_prior

P = 6  # nodes (features) of the toy regression


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, P))
    y = 1.0 * x[:, 0] - 0.5 * x[:, 1] + rng.normal(size=40)
    return jnp.asarray(x), jnp.asarray(y)


def _custom(c):
    return CustomPrior(P, law=lambda p: dist.Gamma(c / p, 1.0),
                       levy=NumericLevyMeasure(lambda x: 2.0 * np.exp(-x) / x), name="my_gamma")


# family -> a prior built from the hyperparameter c (a NumPyro sample: the hyperprior)
FAMILIES = {
    "horseshoe": lambda c: get_prior("horseshoe", P, scale=c),
    "horseshoe_random_scale": lambda c: get_prior("horseshoe", P, scale=c, scale_prior="half_cauchy", slab_scale=2.0),
    "beta": lambda c: get_prior("beta", P, c=c),
    "gamma_mogp": lambda c: get_prior("gamma_mogp", P, c=c),
    "iid": lambda c: get_prior("iid", P, c=c),
    "bernoulli": lambda c: get_prior("bernoulli", P, rate=c, size=2.0),
    "custom": _custom,
}


def _model(make_prior, x, y=None):
    # the ten-line model a user writes: a hyperprior on c, one layer of per-node variances, a regression
    c = numpyro.sample("c", dist.Gamma(8.0, 4.0))  # E c = 2, and c < P = 6 with overwhelming probability
    lam = make_prior(c).sample_site("lam")
    v = numpyro.sample("v", dist.Normal(0.0, 1.0).expand([P]).to_event(1))
    f = x @ (jnp.sqrt(lam) * v)
    numpyro.sample("y", dist.Normal(f, 1.0), obs=y)


def _check_sites(family, s):
    """What each family's sites must look like (``s``: site name -> values, leading axis = draws)."""
    assert np.all(np.isfinite(s["lam"])) and np.all(s["lam"] >= 0) and s["lam"].shape[-1] == P
    if family == "iid":  # lambda = c / p exactly, no latent site of its own
        np.testing.assert_allclose(s["lam"], np.repeat(s["c"][..., None] / P, P, axis=-1), rtol=1e-6)
        assert not any(k.startswith("lam_") for k in s)
    if family == "bernoulli":
        assert set(np.unique(np.asarray(s["lam"]))) <= {0.0, 2.0} and "lam_index" in s
    if family.startswith("horseshoe"):
        assert "lam_u_z" in s and "lam_u_g" in s and "lam_tau" in s
        if family == "horseshoe_random_scale":
            assert "lam_tau_z" in s and "lam_tau_g" in s
            # the slab caps every variance at c_s^2 = 2 s^2 / p
            assert np.all(s["lam"] <= 2 * 2.0**2 / P + 1e-9)
    if family in ("beta", "gamma_mogp", "custom"):
        assert "lam_raw" in s


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_emits_its_sites_and_a_finite_gradient_with_a_traced_hyperprior(family):
    x, y = _data()
    make_prior = FAMILIES[family]
    tr = numpyro.handlers.trace(numpyro.handlers.seed(_model, 0)).get_trace(make_prior, x, y)
    _check_sites(family, {k: np.asarray(v["value"]) for k, v in tr.items() if v["type"] in ("sample", "deterministic")})
    if make_prior(2.0).is_discrete:
        return
    # the potential energy (negative log joint on the unconstrained space) and its gradient, c included
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(0), _model, model_args=(make_prior, x, y))
    energy, grad = jax.value_and_grad(info.potential_fn)(info.param_info.z)
    assert np.isfinite(energy) and "c" in grad
    assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grad))


@pytest.mark.slow  # slow pass: one NUTS compilation per family
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_users_own_numpyro_model_with_each_family_and_a_hyperprior_on_c(family):
    x, y = _data()
    make_prior = FAMILIES[family]
    kernel = NUTS(_model, target_accept_prob=0.99)  # the unregularised horseshoe needs small steps
    discrete = make_prior(2.0).is_discrete
    if discrete:
        kernel = DiscreteHMCGibbs(kernel, modified=True)
    mcmc = MCMC(kernel, num_warmup=100, num_samples=100, progress_bar=False)
    field = "hmc_state.diverging" if discrete else "diverging"
    mcmc.run(jax.random.PRNGKey(0), make_prior, x, y, extra_fields=(field,))
    s = {k: np.asarray(v) for k, v in mcmc.get_samples().items()}
    assert int(np.sum(mcmc.get_extra_fields()[field])) == 0
    assert s["lam"].shape == (100, P)
    # the hyperprior samples: c moves, and stays in its support
    assert np.all(s["c"] > 0) and np.std(s["c"]) > 0.05
    _check_sites(family, s)


def test_sample_site_names_can_be_mapped():
    def model():
        return get_prior("horseshoe", 3, scale_prior="half_normal").sample_site("w", site_names={"u_z": "local"})

    tr = numpyro.handlers.trace(numpyro.handlers.seed(model, 0)).get_trace()
    assert {"local", "w_u_g", "w_tau_z", "w_tau", "w"} <= set(tr)
    assert "w_u_z" not in tr and "w_tau_g" not in tr


def test_array_hyperparameters_are_accepted_checked_and_differentiable():
    prior = get_prior("beta", 100, c=jnp.asarray(1.0))
    assert float(prior.sample(jax.random.PRNGKey(0), (500,)).mean()) > 0
    with pytest.raises(ValueError, match="c must be > 0"):
        get_prior("beta", 100, c=jnp.asarray(-1.0))
    with pytest.raises(ValueError, match="c must be > 0"):
        get_prior("iid", 10, c=np.array([1.0, 0.0]))

    # psi(t) of the horseshoe's limit is 2 c sqrt(pi t): d psi / dc = 2 sqrt(pi t)
    grad = jax.grad(lambda c: get_prior("horseshoe", 50, scale=c).limit.laplace_exponent(2.0))(1.5)
    np.testing.assert_allclose(grad, 2 * np.sqrt(np.pi * 2.0), rtol=1e-12)
    # E Lambda of the beta family is 2c (drift 0): through the Levy measure's truncated moment at x = 1
    grad = jax.grad(lambda c: BetaPrior(10, c=c).limit.levy.truncated_first_moment(1.0))(0.7)
    np.testing.assert_allclose(grad, 2.0, rtol=1e-12)


def test_priors_are_pytrees_and_pass_through_jit_and_vmap():
    prior = get_prior("gamma_mogp", 20, c=2.0, rate=3.0)
    leaves, treedef = jax.tree_util.tree_flatten(prior)
    assert sorted(leaves) == [2.0, 3.0]
    again = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(again) is type(prior) and again.width == 20 and again.hyper == prior.hyper

    @jax.jit
    def mean_variance(pr):
        return pr.distribution.mean

    np.testing.assert_allclose(mean_variance(prior), 2.0 / 20 / 3.0, rtol=1e-12)
    # a batch of priors: vmap over c
    batch = jax.vmap(lambda c: get_prior("gamma_mogp", 20, c=c, rate=3.0))(jnp.asarray([1.0, 2.0, 4.0]))
    np.testing.assert_allclose(jax.vmap(lambda pr: pr.distribution.mean)(batch), np.array([1, 2, 4]) / 60, rtol=1e-12)
    # non-numeric options are static
    hs = get_prior("horseshoe", 5, scale_prior="half_normal")
    assert jax.tree_util.tree_leaves(hs) == [1.0]
    assert jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(hs), [2.0]).hyper["scale_prior"] == "half_normal"


def test_the_bnn_uses_the_prior_it_is_given():
    from bayes_mogp.bnn.models import BNNConfig, bnn_model

    # iid honours c (lambda = c / p), a custom prior named "horseshoe" is used as it is, not replaced
    config = BNNConfig(d_in=2, d_out=1, widths=(4,), prior="iid", prior_hyper={"c": 3.0}, likelihood="gaussian")
    tr = numpyro.handlers.trace(numpyro.handlers.seed(bnn_model, 0)).get_trace(config, jnp.ones((3, 2)))
    np.testing.assert_allclose(tr["lam0"]["value"], np.full(4, 3.0 / 4))

    fake = CustomPrior(4, law=lambda p: dist.Gamma(1.0 / p, 1.0), levy=NumericLevyMeasure(lambda x: np.exp(-x) / x),
                       name="horseshoe")
    config = BNNConfig(d_in=2, d_out=1, widths=(4,), prior=fake, likelihood="gaussian")
    tr = numpyro.handlers.trace(numpyro.handlers.seed(bnn_model, 0)).get_trace(config, jnp.ones((3, 2)))
    assert "lam0_raw" in tr and "u0_z" not in tr
