"""Parallel tempering (bayes_mogp.mogp.tempering): the ladder, the round-trip count, and the sampler on a bimodal
target where one chain of plain HMC cannot cross between the modes and the tempered replicas can."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from scipy import integrate

from bayes_mogp.errors import InputError
from bayes_mogp.mogp import tempering as pt

WIDTH = 0.5  # the likelihood's width in theta^2: modes at +-2, a barrier of 32 nats between them at beta = 1


def _bimodal():
    theta = numpyro.sample("theta", dist.Normal(0.0, 2.0))
    numpyro.factor("y", -((theta ** 2 - 4.0) ** 2) / (2 * WIDTH ** 2))


def _posterior_moment(f):
    dens = lambda t: np.exp(-t ** 2 / 8.0 - (t ** 2 - 4.0) ** 2 / (2 * WIDTH ** 2))  # noqa: E731
    return integrate.quad(lambda t: f(t) * dens(t), -6, 6)[0] / integrate.quad(dens, -6, 6)[0]


def test_geometric_ladder_and_respacing():
    b = pt.geometric_ladder(5, 0.01)
    np.testing.assert_allclose(b, [1.0, 0.1 ** 0.5, 0.1, 0.1 ** 1.5, 0.01])
    assert pt.geometric_ladder(1, 0.5).tolist() == [1.0]
    # rejection concentrated in the first pair: the new ladder puts more temperatures near beta = 1
    new = pt.respace_ladder(b, [0.9, 0.1, 0.1, 0.1])
    assert new[0] == 1.0 and new[-1] == 0.01 and np.all(np.diff(new) < 0)
    assert new[1] > b[1] and new[2] > b[2]
    # equal rejection everywhere: the ladder stays
    np.testing.assert_allclose(pt.respace_ladder(b, [0.3] * 4), b)


def test_round_trips_counts_cold_hot_cold():
    # three temperatures, one chain: replica 0 goes cold -> middle -> hot -> middle -> cold (one trip)
    labels = np.array([[0, 1, 2], [1, 0, 2], [1, 2, 0], [2, 1, 0], [2, 0, 1], [0, 2, 1]])[:, None, :]
    assert pt.round_trips(labels).tolist() == [1]
    assert pt.round_trips(np.zeros((4, 2, 1), dtype=int)).tolist() == [0, 0]


def test_config_is_checked():
    with pytest.raises(InputError, match="beta_min"):
        pt.PTConfig(beta_min=1.0).checked()
    with pytest.raises(InputError, match="num_temperatures"):
        pt.PTConfig(num_temperatures=0).checked()


@pytest.fixture(scope="module")
def runs():
    x0 = pt.flat_point({}, {"theta": jnp.asarray(2.0)}, model=_bimodal)
    common = dict(beta_min=0.02, num_leapfrog=8, num_warmup=150, num_samples=600, step_size=0.05, block=50)
    tempered = pt.sample(jax.random.key(0), {}, x0, num_chains=4, config=pt.PTConfig(num_temperatures=8, **common),
                         model=_bimodal)
    plain = pt.sample(jax.random.key(0), {}, x0, num_chains=4, config=pt.PTConfig(num_temperatures=1, **common),
                      model=_bimodal)
    return tempered, plain


def test_tempering_visits_both_modes_in_their_proportions(runs):
    import arviz as az

    tempered, plain = runs
    theta = tempered.samples["theta"]
    assert theta.shape == (4, 600)
    # the posterior is symmetric: half its mass on each side.  Monte Carlo error of the fraction from the
    # ArviZ effective sample size of the sign indicator; 4 standard errors
    pos = (theta > 0).astype(float)
    ess = float(az.ess(pos))
    assert ess > 20
    assert abs(pos.mean() - 0.5) < 4 * 0.5 / np.sqrt(ess)
    # E[theta^2] against quadrature, within 4 Monte Carlo standard errors (ArviZ)
    sq = theta ** 2
    assert abs(sq.mean() - _posterior_moment(lambda t: t ** 2)) < 4 * float(az.mcse(sq, method="mean"))
    # replicas went from the cold end to the hot end and back, and every swap pair accepted some proposals
    assert tempered.round_trips.sum() > 0 and np.all(tempered.swap_acceptance > 0.05)
    assert tempered.betas[0] == 1.0 and tempered.betas[-1] == pytest.approx(0.02)
    assert tempered.gradient_evaluations == (150 + 600) * 4 * 8 * 9


def test_plain_hmc_stays_in_the_starting_mode(runs):
    # the same sampler with one temperature: the 32-nat barrier is not crossed, so the check above can fail
    _, plain = runs
    assert np.mean(plain.samples["theta"] > 0) > 0.99
    assert plain.swap_acceptance.size == 0 and plain.round_trips.tolist() == [0, 0, 0, 0]


def test_same_key_same_draws(runs):
    tempered, _ = runs
    x0 = pt.flat_point({}, {"theta": jnp.asarray(2.0)}, model=_bimodal)
    cfg = tempered.config
    again = pt.sample(jax.random.key(0), {}, x0, num_chains=4, config=cfg, model=_bimodal)
    np.testing.assert_array_equal(again.samples["theta"], tempered.samples["theta"])


@pytest.mark.slow
def test_the_pt_posterior_is_a_mogp_posterior_with_its_own_diagnostic_rule(tmp_path):
    """``mogp.fit(sampler="pt")`` on a tiny problem (slow pass: the MoGP's compilation, about 20 s): the beta = 1
    replicas as chains, the record in the diagnostics, the report's rule, the size check's step count, a save/load
    round trip that keeps the record and the predictions."""
    import bayes_mogp
    from bayes_mogp import mogp
    from bayes_mogp.mogp.comparison import estimate_cost
    from bayes_mogp.report import diagnostic_rule

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 1))
    y = np.sin(2.0 * x) + 0.1 * rng.normal(size=(20, 1))
    post = mogp.fit(jax.random.key(3), x, y, sampler="pt", num_jumps=2, num_chains=2, pt_temperatures=4,
                    pt_leapfrog=5, map_steps=100, num_warmup=30, num_samples=20)
    assert post.method == "pt" and (post.num_chains, post.num_draws) == (2, 20)
    rec = post.sampler_record
    assert len(rec["betas"]) == 4 and rec["betas"][0] == 1.0 and rec["betas"][-1] == pytest.approx(0.1)
    assert len(rec["swap_acceptance"]) == 3 and len(rec["round_trips"]) == 2
    assert rec["gradient_evaluations"] == (30 + 20) * 2 * 4 * 6
    d = post.diagnostics(x[:5], y[:5])
    assert d["pt"] == rec and d["divergences"] == 0 and d["r_hat_max"] is not None
    assert "parallel tempering" in diagnostic_rule("mcmc", post.method, post.num_chains)
    est = estimate_cost(20, 0, 1, post.settings)
    assert est["leapfrog_steps_max"] == (3 + 2) * 10 * 6 * 2 * 4  # blocks of 10 iterations, 5 + 1 gradients each
    post.save(tmp_path / "run")
    back = bayes_mogp.load(tmp_path / "run")
    assert back.method == "pt" and back.sampler_record == rec
    np.testing.assert_allclose(back.predict(x).mean, post.predict(x).mean, rtol=1e-12)


def test_the_cli_text_names_the_ladder_swaps_and_round_trips():
    from bayes_mogp.cli.mogp import format_text

    scores = {"rmse": 0.1, "nll": -0.5, "coverage_90": 0.9, "seconds": 1.0}
    pt_record = {"betas": [1.0, 0.5, 0.1], "swap_acceptance": [0.42, 0.81], "round_trips": [3, 0]}
    result = {"dataset": "teacher", "task": "regression", "prior": "horseshoe", "n_train": 20, "n_test": 5,
              "results": {"mogp": scores, "nngp": scores}, "active_features": None, "run": "runs/x",
              "diagnostics": {"r_hat_max": 1.01, "ess_bulk_min": 50.0, "divergences": 0, "pt": pt_record,
                              "per_chain": {"log_likelihood_mean": [1.0, 2.0], "rmse": [0.1, 0.1]}}}
    text = format_text(result)
    line = "parallel tempering: 3 temperatures down to 0.1; swap acceptance 0.42-0.81; round trips per chain 3, 0"
    assert line in text


def test_short_warmups_are_rounded_up_to_three_blocks():
    cfg = pt.PTConfig(num_warmup=1, num_samples=11, block=10).checked()
    assert cfg.blocks() == (3, 2)
