"""Microcanonical Langevin ensembles (bayes_mogp.bnn.mile): the tuned sampler's law on a known target, the
collapse check, same key same draws, exact resume, the within-member diagnostic, and the refusals (the pipeline
through a run folder runs in notebook 08's quick mode)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.bnn.mile import MileSettings, _Member, resume_mile, run_mile
from bayes_mogp.bnn.models import BNNConfig
from bayes_mogp.errors import InputError


def test_tuned_mclmc_samples_an_anisotropic_gaussian():
    # target N(0, diag(s^2)) in 40 dimensions, scales from 0.05 to 20 (a 400x spread the diagonal preconditioner
    # must find), started at the mode as a member starts at its optimum.  2000 draws (thin 2) of one chain:
    # the variance ratio var_hat / s^2 per coordinate has SE about sqrt(2 / ESS); with ESS >= 200 per
    # coordinate (MCLMC decorrelates a Gaussian within a few L) that is 0.10, and the mean over 40 coordinates
    # has SE 0.016.  Tolerance 0.08 (5 SE) on the mean ratio, 0.5 on each coordinate (5 SE); the unadjusted
    # sampler's bias at the energy-error target (5e-4 per dimension) is about 1%.  An unpreconditioned or
    # collapsed tuner leaves the wide coordinates far below 1 (ratio < 0.3 in trials).
    scales = jnp.geomspace(0.05, 20.0, 40)

    def logdensity(p):
        return -0.5 * jnp.sum((p["x"] / scales) ** 2)

    s = MileSettings(num_members=1, tuning_steps=2000, sampling_steps=4000, thin=2)
    m = _Member(logdensity, s)
    tuned, params, steps, preconditioned = m.tune(jax.random.key(0), {"x": jnp.zeros(40)}, 40)
    assert preconditioned and steps == s.tune_steps()
    pos, logd, evar, div = m._sample(tuned, jax.random.key(1), params.L, params.step_size, params.inverse_mass_matrix)
    ratio = np.var(np.asarray(pos["x"]), axis=0) / np.asarray(scales) ** 2
    assert abs(ratio.mean() - 1.0) < 0.08, ratio
    assert np.all(np.abs(ratio - 1.0) < 0.5), ratio
    assert not np.any(np.asarray(div))
    # the calibration holds the measured energy error at or below about its target (never raises the step size)
    assert float(np.mean(evar)) < 3 * s.desired_energy_var


def test_a_collapsed_tuner_is_refused():
    # a first step size of 1e6 on a unit Gaussian sends the first tuning run far into the tails (log density
    # about -1e12, far below the collapse floor of 5 nats per dimension under the optimum); the error says what
    # to lower
    s = MileSettings(num_members=1, tuning_steps=100, sampling_steps=10, thin=1, step_size_init=1e6)
    m = _Member(lambda p: -0.5 * jnp.sum(p["x"] ** 2), s)
    with pytest.raises(InputError, match="step_size_init"):
        m.tune(jax.random.key(0), {"x": jnp.zeros(20)}, 20)


@pytest.fixture(scope="module")
def tiny_data(tiny_bnn):
    config, X, y = tiny_bnn
    return config, X, y, MileSettings(num_members=2, map_steps=100, tuning_steps=40, sampling_steps=16, thin=4)


@pytest.fixture(scope="module")
def tiny(tiny_data):
    config, X, y, settings = tiny_data
    return config, X, y, settings, run_mile(jax.random.key(5), config, X, y, settings)


@pytest.mark.slow  # ~30 s of compilation (BlackJAX's tuner compiles each call); notebook 08's quick run fits too
def test_same_key_same_draws_and_exact_resume(tiny, tmp_path):
    config, X, y, s, full = tiny
    assert full.samples["V0"].shape == (2, 4, 5, 8) and full.map_losses.shape == (2, 100)
    assert full.map_losses[0, -1] < full.map_losses[0, 0]  # the optimiser lowered the negative log posterior
    assert np.all(full.stats["step_size"] > 0) and full.stats["energy_var"].shape == (2, 4)
    assert full.gradient_evaluations["total"] == sum(v for k, v in full.gradient_evaluations.items() if k != "total")
    assert full.gradient_evaluations["sample"] == 2 * 2 * 16
    ck = tmp_path / "ck.npz"
    part = run_mile(jax.random.key(5), config, X, y, s, checkpoint=ck, stop_after=1)
    assert part.samples["V0"].shape[0] == 1
    rest = resume_mile(ck, config, X, y)
    for k in ("V0", "V1", "lam0", "u0_z"):
        np.testing.assert_array_equal(rest.samples[k], full.samples[k])
    np.testing.assert_array_equal(rest.stats["log_density"], full.stats["log_density"])
    assert not np.array_equal(full.samples["V1"][0], full.samples["V1"][1])  # each member its own start and key


def test_diagnostics_judge_each_member_on_its_own():
    # two members in different places: R-hat across them is large, within each it is the split R-hat of its
    # halves (computed here by hand with ArviZ on the two halves as two chains)
    import arviz as az

    from bayes_mogp.report import diagnostics, diagnostic_rule

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 40)) + np.array([[0.0], [5.0]])
    idata = az.from_dict(posterior={"a": x}, sample_stats={"diverging": np.zeros((2, 40), bool)})
    across = diagnostics(idata, ["a"])
    within = diagnostics(idata, ["a"], method="mile")
    assert across["r_hat_max"] > 1.5  # rank-normalised R-hat of two separated chains (1.8 here)
    assert within["rule"] == "within_chains" and within["r_hat_across_chains_max"] == across["r_hat_max"]
    by_hand = max(float(az.rhat(np.stack([x[c, :20], x[c, 20:]]))) for c in range(2))
    assert within["r_hat_max"] == pytest.approx(by_hand, rel=1e-12)
    assert "within each of the 2 ensemble members" in diagnostic_rule("mcmc", "mile", 2)


def test_settings_and_models_refused(tiny_data):
    config, X, y, s = tiny_data
    for bad in (dict(num_members=0), dict(thin=0), dict(thin=6000), dict(tuning_steps=2), dict(learning_rate=-1.0),
                dict(desired_energy_var=2.0), dict(diagonal_preconditioning="yes")):
        with pytest.raises(InputError):
            MileSettings(**bad)
    disc = BNNConfig(d_in=5, d_out=3, widths=(4,), prior="bernoulli")
    with pytest.raises(InputError, match="discrete"):
        run_mile(jax.random.key(0), disc, X, y, s)


@pytest.mark.parametrize("args, message", [
    (["--members", "0"], "members must be"),
    (["--sampling-steps", "-3"], "sampling_steps must be"),
])
def test_fit_cli_refuses_bad_input(cli, tmp_path, args, message):
    code, out, err = cli("fit", "bnn_mnist_784_100_100", "--method", "mile", "--quick", "--out", str(tmp_path / "r"),
                         *args)
    assert code == 2 and message in cli.one_line_error(err), err
