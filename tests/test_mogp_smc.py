"""Adaptive tempered SMC for the MoGP posterior (:mod:`bayes_mogp.mogp.smc`) on tiny problems."""

import jax
import numpy as np
import pytest

from bayes_mogp.mogp import smc
from bayes_mogp.mogp.features import build_feature_map
from bayes_mogp.mogp.model import build_problem, model_kwargs
from bayes_mogp.mogp.posterior import _limit

# CI's slow pass (about 30 s, mostly compilation): the default run stays under its time limit, and the slow pass
# also runs the same sampler through the SMC benchmark's quick run (tests/test_benchmarks.py)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_kwargs():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(20, 1))
        y = np.sin(2.0 * x) + 0.1 * rng.normal(size=(20, 1))
        fmap = build_feature_map(x, depth=1, rank=None, activation="relu", w_var=2.0, b_var=1.0)
        yield model_kwargs(build_problem(fmap, x, y), _limit("horseshoe", {}), 2)


def test_logprior_plus_loglik_is_minus_potential(tiny_kwargs):
    with jax.enable_x64(True):
        target = smc.split_target(jax.random.key(0), tiny_kwargs)
        x = smc.prior_particles(jax.random.key(1), tiny_kwargs, target, 6)
        assert x.shape == (6, target.dim)
        lp, ll = jax.vmap(target.logprior)(x), jax.vmap(target.loglik)(x)
        pot = jax.vmap(target.potential)(x)
        np.testing.assert_allclose(np.asarray(lp + ll), -np.asarray(pot), rtol=1e-10, atol=1e-8)
        # the log-likelihood is the model's recorded log marginal likelihood
        lml = jax.vmap(target.postprocess)(x)["log_marginal_likelihood"]
        np.testing.assert_allclose(np.asarray(ll), np.asarray(lml), rtol=1e-10)


@pytest.fixture(scope="module")
def smc_posterior():
    """One tiny SMC fit through :func:`bayes_mogp.mogp.fit` (8 runs of 32 particles): compiled once for the tests
    below."""
    from bayes_mogp import mogp

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 1))
    y = np.sin(2.0 * x) + 0.1 * rng.normal(size=(20, 1))
    post = mogp.fit(jax.random.key(3), x, y, sampler="smc", num_jumps=2, num_chains=8, smc_particles=32,
                    smc_moves=2, smc_leapfrog=5)
    return post, x, y


def test_evidence_agrees_between_independent_run_groups(smc_posterior):
    """Eight independent runs (independent keys) in one program, compared as two groups of four (two "seeds").

    Tolerance: each group's mean log evidence has Monte Carlo standard error se = sd(runs) / sqrt(4), estimated
    from its own runs; independent groups differ by a N(0, se_a^2 + se_b^2) amount (the bias of log Z-hat is the
    same in both).  With the standard errors estimated from 4 + 4 runs the standardised difference is about
    t-distributed with 6 degrees of freedom, for which |t| > 5 has probability about 0.002: the test allows
    5 combined standard errors, and a floor of 0.05 nats for the case where all runs agree to rounding."""
    post = smc_posterior[0]
    rec = post.sampler_record
    z = np.asarray(rec["per_run"])
    assert z.shape == (8,) and np.all(np.isfinite(z)) and min(rec["tempering_steps"]) >= 1
    assert rec["log_evidence"] == pytest.approx(z.mean(), rel=1e-12)
    assert rec["log_evidence_se"] == pytest.approx(z.std(ddof=1) / np.sqrt(8), rel=1e-12)
    assert post.samples["noise"].shape == (8, 32) and post.samples["features"].shape[:2] == (8, 32)
    a, b = z[:4], z[4:]
    se = np.sqrt(np.var(a, ddof=1) / 4 + np.var(b, ddof=1) / 4)
    assert abs(a.mean() - b.mean()) <= max(5.0 * se, 0.05), (a, b)


def test_the_smc_posterior_is_a_mogp_posterior_with_its_own_diagnostic_rule(smc_posterior, tmp_path):
    """Runs are the chains: predictions, diagnostics with the SMC record, the report's between-run rule, and a
    save/load round trip that keeps the record and the predictions."""
    import bayes_mogp
    from bayes_mogp.report import diagnostic_rule

    post, x, y = smc_posterior
    assert post.method == "smc" and (post.num_chains, post.num_draws) == (8, 32)
    d = post.diagnostics(x[:5], y[:5])
    assert d["smc"]["per_run"] == post.sampler_record["per_run"] and d["divergences"] == 0
    assert d["r_hat_max"] is not None and len(d["per_chain"]["rmse"]) == 8
    assert "independent SMC runs" in diagnostic_rule("mcmc", post.method, post.num_chains)
    post.save(tmp_path / "run")
    back = bayes_mogp.load(tmp_path / "run")
    assert back.method == "smc" and back.sampler_record == post.sampler_record
    np.testing.assert_allclose(back.predict(x).mean, post.predict(x).mean, rtol=1e-12)
