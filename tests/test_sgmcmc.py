"""Minibatch inference (bayes_mogp.bnn.sgmcmc): the updates against BlackJAX, their stationary law, the
paper's schedule, the minibatch estimate, same key same draws, exact resume, MAP, and the CLI's refusals."""

import dataclasses

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

from bayes_mogp.bnn.models import BNNConfig
from bayes_mogp.bnn.sgmcmc import (MinibatchSettings, log_density_fn, resume_minibatch, run_minibatch, sghmc_update,
                                   sgld_update, step_sizes)
from bayes_mogp.errors import InputError


def test_updates_equal_blackjax_diffusions():
    # with JAX's default generator (the noise BlackJAX draws) the updates are BlackJAX's to float rounding
    key = jax.random.key(3)
    pos = {"a": jnp.arange(5.0), "b": jnp.ones((2, 3))}
    mom = jax.tree.map(lambda x: 0.1 * x, pos)
    grad = jax.tree.map(lambda x: -x, pos)
    ours = sghmc_update(key, pos, mom, grad, 0.01, 3.0, 1.0, "gaussian_threefry")
    theirs = blackjax.sgmcmc.diffusions.sghmc(alpha=3.0, beta=0)(key, pos, mom, grad, 0.01, 1.0)
    for o, t in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(o, t, rtol=1e-6, atol=1e-7)
    ours = sgld_update(key, pos, grad, 0.01, 1.0, "gaussian_threefry")
    theirs = blackjax.sgmcmc.diffusions.overdamped_langevin()(key, pos, grad, 0.01, 1.0)
    for o, t in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_allclose(o, t, rtol=1e-6, atol=1e-7)
    # the default noise (bayes_mogp.rng) enters the same formula: BlackJAX's update with its noise swapped in
    from bayes_mogp.rng import normal_like

    xi = normal_like(key, pos)
    ours = sghmc_update(key, pos, mom, grad, 0.01, 3.0, 1.0)
    theirs = blackjax.sgmcmc.diffusions.sghmc(alpha=3.0, beta=0)(key, pos, mom, grad, 0.01, 0.0)
    scale = np.sqrt(2 * 3.0 * 0.01)
    for o, t, n in zip(jax.tree.leaves(ours[1]), jax.tree.leaves(theirs[1]), jax.tree.leaves(xi)):
        np.testing.assert_allclose(o, t + scale * n, rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # a long statistical check (~20 s)
@pytest.mark.parametrize("noise", ["gaussian", "gaussian_threefry", "rademacher"])
def test_sghmc_and_sgld_leave_a_gaussian_invariant(noise):
    # target N(0, s^2), exact gradients, 4000 chains x 3000 steps.  Var of the draws: SE = s^2 sqrt(2 / 4000)
    # = 2.2%; the Euler schemes' bias at these steps is below 1%; tolerance 4 SE = 9%.  A noise scale off by
    # sqrt(2) moves the variance by 2x.
    s2, chains, steps = 4.0, 4000, 3000

    def grad(x):
        return {"x": -x["x"] / s2}

    def run_sghmc(key):
        def body(c, k):
            x, p = c
            return sghmc_update(k, x, p, grad(x), 0.05, 1.0, 1.0, noise), None

        x0 = {"x": jnp.zeros(())}
        return jax.lax.scan(body, (x0, {"x": jnp.zeros(())}), jax.random.split(key, steps))[0][0]["x"]

    def run_sgld(key):
        def body(x, k):
            return sgld_update(k, x, grad(x), 0.02, 1.0, noise), None

        return jax.lax.scan(body, {"x": jnp.zeros(())}, jax.random.split(key, steps))[0]["x"]

    keys = jax.random.split(jax.random.key(0), chains)
    for run in (run_sghmc, run_sgld):
        x = np.asarray(jax.jit(jax.vmap(run))(keys))
        assert abs(x.var() / s2 - 1) < 4 * np.sqrt(2 / chains), (run.__name__, x.var())
        assert abs(x.mean()) < 4 * np.sqrt(s2 / chains)


def test_paper_schedule():
    s = MinibatchSettings()  # the SGHMC protocol of Lee et al. (2023)
    assert [e for e in range(100) if s.noisy(e)] == list(range(50, 100))
    kept = [e + 1 for e in range(100) if s.keep(e)]
    assert kept == list(range(52, 101, 2)) and s.num_draws() == 25
    eta = np.asarray(step_sizes(s, jnp.arange(0, 60001, 15000), 60000))
    np.testing.assert_allclose(eta, [0.5, 0.5 * (1 + np.cos(np.pi / 4)) / 2, 0.25, 0.1, 0.1], rtol=1e-6)
    c = MinibatchSettings(method="csgld", num_epochs=8, num_cycles=2, step_size=0.2, exploration=0.5)
    eta = np.asarray(step_sizes(c, jnp.asarray([0, 400, 800, 1200]), 1600))
    np.testing.assert_allclose(eta, [0.2, 0.1, 0.2, 0.1], rtol=1e-6)  # restarts each cycle
    assert [e for e in range(8) if c.noisy(e)] == [2, 3, 6, 7] and [e for e in range(8) if c.keep(e)] == [3, 7]
    m = MinibatchSettings(method="map", num_epochs=5)
    assert not any(m.noisy(e) for e in range(5)) and m.num_draws() == 1


@pytest.fixture(scope="module")
def tiny(tiny_bnn):
    return tiny_bnn


# slow pass: NumPyro's eager initialisation compiles a few hundred small programs (30-36 s of a busy worker in the
# default pass); every minibatch test of the default pass starts from the staged initialisation
@pytest.mark.slow
def test_staged_initialisation_equals_numpyros_eager_one(tiny):
    """The minibatch methods initialise in one compiled program (sgmcmc.staged_initializer): the same position and
    the same postprocess as NumPyro's eager initialize_model (a horseshoe with a learned global scale: positive
    and real sites, a deterministic); a model whose log density is NaN everywhere is refused.  Every other family
    initialises this way in the runs of this file, the GBFRY test and the paper notebook (iid, horseshoe, GBFRY)."""
    from functools import partial

    from numpyro.infer import init_to_median
    from numpyro.infer.util import initialize_model

    from bayes_mogp.bnn.models import bnn_model
    from bayes_mogp.bnn.sgmcmc import staged_initializer

    config, X, y = tiny
    config = dataclasses.replace(config, global_scale="half_cauchy")
    model = partial(bnn_model, config)
    args, kwargs = (X[:20], y[:20]), {"likelihood_scale": 3.0}
    key = jax.random.key(4)
    eager = initialize_model(key, model, model_args=args, model_kwargs=kwargs,
                             init_strategy=init_to_median(num_samples=15))
    z, postprocess = staged_initializer(model, args, kwargs, init_to_median(num_samples=15))(key)
    assert set(z) == set(eager.param_info.z)
    for name in z:  # float32 sites; the compiled program may fuse and reorder a few roundings
        np.testing.assert_allclose(z[name], eager.param_info.z[name], rtol=1e-5, atol=1e-6, err_msg=name)
    a, b = postprocess(z), eager.postprocess_fn(eager.param_info.z)
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-6, err_msg=name)

    def broken(X, y, likelihood_scale):
        model(X, y, likelihood_scale)
        numpyro.factor("nan", jnp.nan)

    with pytest.raises(RuntimeError, match="valid initial parameters"):
        staged_initializer(broken, args, kwargs, init_to_median(num_samples=15))(key)


def test_minibatch_estimate_averages_to_the_full_log_density(tiny):
    # the mean over a partition into batches of log p + (N/B) log p(y_b) is log p + log p(y): exact identity
    from functools import partial

    from numpyro.infer import init_to_median
    from numpyro.infer.util import potential_energy

    from bayes_mogp.bnn.models import bnn_model
    from bayes_mogp.bnn.sgmcmc import staged_initializer

    config, X, y = tiny
    model = partial(bnn_model, config)
    pos, _ = staged_initializer(model, (X, y), {}, init_to_median(num_samples=15))(jax.random.key(1))
    full = float(-jax.jit(lambda p: potential_energy(model, (X, y), {}, p))(pos))
    est = jax.jit(log_density_fn(config, 60, 15))
    parts = [float(est(pos, X[i:i + 15], y[i:i + 15])) for i in range(0, 60, 15)]
    np.testing.assert_allclose(np.mean(parts), full, rtol=1e-5)
    assert np.ptp(parts) > 1.0  # the batches do differ: the scale matters


def test_without_the_jacobian_the_prior_is_tilted_by_one_over_lambda(tiny):
    # jacobian=False (the code of Lee et al.): the log density minus prior_weight * sum_j log lam_j, every other
    # term unchanged; below the floor (1e-30) the tilt is constant
    from functools import partial

    from numpyro.infer.util import constrain_fn, initialize_model

    from bayes_mogp.bnn.models import bnn_model
    from bayes_mogp.bnn.sgmcmc import LAMBDA_FLOOR

    config, X, y = tiny
    info = initialize_model(jax.random.key(1), partial(bnn_model, config), model_args=(X, y))
    pos = info.param_info.z
    lam = np.asarray(constrain_fn(partial(bnn_model, config), (X, y), {}, pos, return_deterministic=True)["lam0"])
    for weight in (1.0, 0.2):
        proper = float(jax.jit(log_density_fn(config, 60, 60, prior_weight=weight))(pos, X, y))
        tilted = float(jax.jit(log_density_fn(config, 60, 60, prior_weight=weight, jacobian=False))(pos, X, y))
        np.testing.assert_allclose(tilted, proper - weight * np.sum(np.log(lam)), rtol=1e-10)
    # one node's variance pushed far below the floor: the tilt counts it at the floor
    deep = {**pos, "u0_z": pos["u0_z"].at[0].set(-80.0)}
    lam_deep = np.asarray(constrain_fn(partial(bnn_model, config), (X, y), {}, deep, return_deterministic=True)["lam0"])
    assert lam_deep[0] < LAMBDA_FLOOR
    proper = float(jax.jit(log_density_fn(config, 60, 60))(deep, X, y))
    tilted = float(jax.jit(log_density_fn(config, 60, 60, jacobian=False))(deep, X, y))
    expected = proper - np.sum(np.log(np.maximum(lam_deep, LAMBDA_FLOOR)))
    np.testing.assert_allclose(tilted, expected, rtol=1e-10)


@pytest.fixture(scope="module")
def tiny_run(tiny):
    config, X, y = tiny
    s = MinibatchSettings(method="sghmc", num_epochs=6, batch_size=15, thin=1, num_chains=2, step_size=0.1,
                          step_size_min=0.01)
    return s, run_minibatch(jax.random.key(7), config, X, y, s, progress=False)


def test_same_key_same_draws_and_exact_resume(tiny, tiny_run, tmp_path):
    config, X, y = tiny
    s, full = tiny_run
    assert full.samples["V0"].shape == (2, 3, 5, 8) and full.trace.shape == (2, 6)
    assert np.ptp(full.samples["lam0"]) > 0 and np.all(np.isfinite(full.trace))
    again = run_minibatch(jax.random.key(7), config, X, y, s, progress=False)
    np.testing.assert_array_equal(again.samples["V1"], full.samples["V1"])
    ck = tmp_path / "ck.npz"
    part = run_minibatch(jax.random.key(7), config, X, y, s, checkpoint=ck, progress=False, stop_after=4)
    assert part.samples["V0"].shape[1] == 1  # draws kept at epochs 4..6: one so far
    rest = resume_minibatch(ck, config, X, y, progress=False)
    for k in ("V0", "V1", "lam0", "u0_z"):
        np.testing.assert_array_equal(rest.samples[k], full.samples[k])
    np.testing.assert_array_equal(rest.trace, full.trace)
    other = run_minibatch(jax.random.key(8), config, X, y, s, progress=False)
    assert not np.array_equal(other.samples["V1"], full.samples["V1"])


def test_map_improves_the_fit(tiny):
    config, X, y = tiny
    s = MinibatchSettings(method="map", num_epochs=30, batch_size=20, learning_rate=0.02, lr_decay=((20, 0.01),))
    res = run_minibatch(jax.random.key(0), config, X, y, s, progress=False)
    assert res.samples["V0"].shape[:2] == (1, 1)
    assert res.trace[0, -1] > res.trace[0, 0] + 10  # the penalised log density rises


def test_settings_refuse_bad_values(tiny):
    config, X, y = tiny
    for bad in (dict(num_epochs=0), dict(batch_size=0), dict(method="sgnht"), dict(noise="uniform"),
                dict(friction=1.5), dict(thin=0), dict(jacobian="no")):
        with pytest.raises(InputError):
            MinibatchSettings(**bad)
    with pytest.raises(InputError, match="batch_size must be at most"):
        run_minibatch(jax.random.key(0), config, X, y, MinibatchSettings(batch_size=61), progress=False)
    disc = BNNConfig(d_in=5, d_out=3, widths=(4,), prior="bernoulli")
    with pytest.raises(InputError, match="discrete"):
        run_minibatch(jax.random.key(0), disc, X, y, MinibatchSettings(batch_size=10), progress=False)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "1000000"], "batch_size must be at most"),
    (["--epochs", "0"], "epochs must be"),
    (["--widths", "0", "10"], "width must be"),
    (["--method", "hmc"], "method must be one of"),
    (["--input-transform", "pixels"], "input_transform must be one of"),
])
def test_fit_cli_refuses_bad_input(cli, tmp_path, args, message):
    code, out, err = cli("fit", "paper_fashion_iid", "--quick", "--out", str(tmp_path / "r"), *args)
    errors = [line for line in err.strip().splitlines() if "error" in line]
    assert code == 2 and "Traceback" not in err and len(errors) == 1 and message in errors[0], err


@pytest.mark.slow  # ~30 s of compilation (a GBFRY layer's gradient); the slow pass and the benchmark run it
def test_gbfry_with_learned_alpha(tiny):
    # the paper's GBFRY network: alpha ~ U(0.01, 0.99) per layer on its logit, log lam sampled (float32)
    _, X, y = tiny
    # widths >= 172 with alpha >= 0.01: log(1 + t_p) >= 1, so the programs leave the small-width branch out
    config = BNNConfig(d_in=5, d_out=3, widths=(180,), prior="gbfry", activation="relu",
                       prior_hyper={"alpha_prior": "uniform"})
    # noise from the first epoch: one epoch program to compile (the noiseless one is the same code minus the noise)
    s = MinibatchSettings(method="sghmc", num_epochs=4, batch_size=15, thin=1, step_size=0.1, step_size_min=0.01,
                          noise_start=0.0)
    res = run_minibatch(jax.random.key(3), config, X, y, s, progress=False)
    alpha = res.samples["lam0_alpha"]
    assert alpha.shape == (1, 2) and np.all((alpha > 0.01) & (alpha < 0.99))
    assert np.all(np.isfinite(res.samples["lam0"])) and np.all(np.isfinite(res.trace))
    assert res.samples["lam0"].shape == (1, 2, 180)


def test_fit_cli_refuses_a_gbfry_alpha_outside_the_unit_interval(cli, tmp_path):
    from bayes_mogp.specs import packaged_models_dir

    text = (packaged_models_dir() / "paper_fashion_map_gbfry.toml").read_text().replace("alpha = 0.5", "alpha = 1.5")
    spec = tmp_path / "bad_gbfry.toml"
    spec.write_text(text)
    code, out, err = cli("fit", str(spec), "--quick", "--out", str(tmp_path / "r"))
    errors = [line for line in err.strip().splitlines() if "error" in line]
    assert code == 2 and "Traceback" not in err and len(errors) == 1 and "alpha must be in (0, 1)" in errors[0], err


@pytest.mark.slow  # a fresh process with two fake CPU devices (~30 s): the multi-device (GPU) path, run on CPU
def test_batch_sharded_over_two_devices_gives_the_same_draws(tmp_path):
    """With two devices the minibatch is sharded over them (parameters replicated): the draws equal those
    of the unsharded program in the same process up to float32 rounding (the batch's gradient is summed
    in another order)."""
    import json
    import os
    import subprocess
    import sys

    script = f"""
import json, jax, numpy as np
from bayes_mogp.bnn import sgmcmc
from bayes_mogp.bnn.models import BNNConfig
rng = np.random.default_rng(0)
X = rng.standard_normal((60, 5)).astype(np.float32)
y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
config = BNNConfig(d_in=5, d_out=2, widths=(8,), prior="horseshoe", activation="relu", global_scale="fixed")
s = sgmcmc.MinibatchSettings(method="sghmc", num_epochs=4, batch_size=20, thin=1, step_size=0.1, step_size_min=0.01)
sharded = sgmcmc._batch_mesh(20) is not None
two = sgmcmc.run_minibatch(jax.random.key(7), config, X, y, s, progress=False).samples
sgmcmc._batch_mesh = lambda batch_size: None  # the one-device program
one = sgmcmc.run_minibatch(jax.random.key(7), config, X, y, s, progress=False).samples
np.savez("{tmp_path}/one.npz", **one)
np.savez("{tmp_path}/two.npz", **two)
print(json.dumps({{"devices": jax.local_device_count(), "sharded": sharded}}))
"""
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"devices": 2, "sharded": True}
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    for k in ("V0", "V1", "lam0"):
        # 4 epochs x 3 steps of float32 updates: relative differences of a few ulp per step, amplified by
        # the dynamics; 1e-3 relative is far above that and far below a different draw (O(1) differences)
        np.testing.assert_allclose(two[k], one[k], rtol=1e-3, atol=1e-4)
    assert np.ptp(two["V0"]) > 0
