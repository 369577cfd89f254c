"""bayes_mogp/nuts.py: the package's one NUTS driver, on a model with a known posterior.

The model: mu ~ N(0, 10^2), y_i ~ N(mu, 1), n = 50.  Its posterior is N(m, s^2) with s^2 = 1/(n + 1/100)
and m = s^2 sum(y); the draws are checked against it (tolerance 4 Monte Carlo standard errors, the SE from
the draws' own effective sample size).  The driver's bookkeeping (chunks, checkpoints, resume) is checked for
exact equality with an uninterrupted run of the same key: these are the same Markov chains.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import NUTS

from bayes_mogp import nuts
from bayes_mogp.checkpoint import CheckpointError, load_checkpoint
from bayes_mogp.errors import InputError, InputTypeError

Y = np.random.default_rng(0).normal(1.5, 1.0, 50).astype(np.float32)


def model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def _run(schedule, **kw):
    return nuts.sample(jax.random.key(3), NUTS(model), (jnp.asarray(Y),), schedule=schedule, **kw)


@pytest.fixture(scope="module")
def full():
    return _run(nuts.Schedule(200, 40, num_chains=2, chain_method="sequential"))


def test_draws_follow_the_conjugate_posterior(full):
    import arviz as az

    s2 = 1.0 / (len(Y) + 1e-2)
    m = s2 * Y.sum()
    mu = full.samples["mu"]
    assert mu.shape == (2, 40)
    ess = float(az.ess(mu))
    se_mean = np.sqrt(s2 / ess)
    assert abs(mu.mean() - m) < 4 * se_mean, (mu.mean(), m, se_mean)
    # the sample variance of ~ESS draws has relative SE about sqrt(2 / ESS)
    assert abs(mu.var() / s2 - 1) < 4 * np.sqrt(2 / ess), (mu.var(), s2, ess)
    assert set(full.stats) >= {"diverging", "num_steps", "accept_prob"}
    assert full.settings["num_samples"] == 40 and full.settings["chain_method"] == "sequential"


def test_chunks_and_checkpoints_give_the_same_draws(full, tmp_path):
    ck = tmp_path / "ck.npz"
    chunked = _run(nuts.Schedule(200, 40, num_chains=2, chain_method="sequential"),
                   checkpoint=nuts.Checkpoint(ck, every=15))
    np.testing.assert_array_equal(chunked.samples["mu"], full.samples["mu"])
    assert [d for d, _ in chunked.chunks] == [15, 15, 10]
    saved = load_checkpoint(ck)
    np.testing.assert_array_equal(saved["samples"]["mu"], full.samples["mu"])
    assert saved["settings"]["num_samples"] == 40


def test_interrupted_run_resumes_to_the_uninterrupted_draws_and_extends(full, tmp_path):
    ck = tmp_path / "ck.npz"
    part = _run(nuts.Schedule(200, 40, num_chains=2, chain_method="sequential"),
                checkpoint=nuts.Checkpoint(ck, every=15, stop_after=15))
    assert part.samples["mu"].shape == (2, 15)
    lines = []
    done = nuts.resume(ck, NUTS(model), (jnp.asarray(Y),), log=lines.append)
    np.testing.assert_array_equal(done.samples["mu"], full.samples["mu"])
    assert lines and lines[-1].startswith("nuts: 40/40 draws per chain")
    more = nuts.resume(ck, NUTS(model), (jnp.asarray(Y),), num_samples=50)
    assert more.samples["mu"].shape == (2, 50)
    np.testing.assert_array_equal(more.samples["mu"][:, :40], full.samples["mu"])


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    ck = tmp_path / "ck.npz"
    _run(nuts.Schedule(20, 4, num_chains=2, chain_method="sequential"), checkpoint=nuts.Checkpoint(ck, every=2,
                                                                                                   stop_after=2))

    def other(y):
        numpyro.sample("a", dist.Normal(0.0, 1.0).expand([3]))
        numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y)

    with pytest.raises(CheckpointError, match="another model"):
        nuts.resume(ck, NUTS(other), (jnp.asarray(Y),))


def test_same_key_same_draws_vectorized():
    a = _run(nuts.Schedule(30, 5, num_chains=2, chain_method="vectorized"))
    b = _run(nuts.Schedule(30, 5, num_chains=2, chain_method="vectorized"))
    np.testing.assert_array_equal(a.samples["mu"], b.samples["mu"])
    assert a.samples["mu"].shape == (2, 5) and not np.array_equal(a.samples["mu"][0], a.samples["mu"][1])


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_warmup=0, num_samples=5), "num_warmup"), (dict(num_warmup=5, num_samples=2.5), "num_samples"),
    (dict(num_warmup=5, num_samples=5, num_chains=0), "num_chains"),
    (dict(num_warmup=5, num_samples=5, chain_method="pmap"), "chain_method"),
])
def test_schedule_is_validated_with_the_parameter_named(kwargs, match):
    with pytest.raises((InputError, InputTypeError), match=match):
        nuts.Schedule(**kwargs)


def test_sample_refuses_bad_schedule_and_checkpoint_arguments():
    with pytest.raises(InputTypeError, match="schedule must be"):
        nuts.sample(jax.random.key(0), NUTS(model), (Y,), schedule={"num_warmup": 5})
    with pytest.raises(InputTypeError, match="checkpoint must be"):
        _run(nuts.Schedule(5, 5), checkpoint="ck.npz")
    with pytest.raises(InputError, match="checkpoint_every"):
        _run(nuts.Schedule(5, 5), checkpoint=nuts.Checkpoint(None, every=0))


def test_auto_chain_method_goes_across_devices_only_when_there_are_enough(monkeypatch):
    assert nuts.resolve_chain_method("auto", 1) == "vectorized"
    monkeypatch.setattr(jax, "local_device_count", lambda: 4)
    assert nuts.resolve_chain_method("auto", 4) == "parallel"
    assert nuts.resolve_chain_method("auto", 8) == "vectorized"
    assert nuts.resolve_chain_method("sequential", 4) == "sequential"


def test_precision_scopes_x64_and_raw_key_unwraps_typed_keys():
    with nuts.precision("float64"):
        assert jnp.zeros(1).dtype == jnp.float64 and nuts.current_dtype() == "float64"
    with nuts.precision("float32"):
        assert jnp.zeros(1).dtype == jnp.float32
    with pytest.raises(InputError, match="dtype"):
        nuts.precision("float16")
    raw = nuts.raw_key(jax.random.key(7))
    np.testing.assert_array_equal(raw, jax.random.PRNGKey(7))


def bimodal():
    """Two normal modes at -3 and +3, the one at +3 holding 99% of the mass (log density 4.6 nats higher at its
    centre): NUTS cannot cross between them (the barrier is ~4 nats below the lower mode and the at most 7 leapfrog
    steps of tree depth 3, at a step size near the modes' width, do not reach across)."""
    numpyro.sample("x", dist.MixtureSameFamily(dist.Categorical(probs=jnp.array([0.01, 0.99])),
                                               dist.Normal(jnp.array([-3.0, 3.0]), 0.3)))


def test_chains_continue_from_the_best_warmup_chain(monkeypatch):
    # four chains, two started in each mode (NumPyro's init_params, one row per chain, passed to the driver's MCMC)
    starts = {"x": jnp.array([-3.0, 3.0, -3.0, 3.0])}
    make = nuts._mcmc

    def with_starts(*args, **kwargs):
        mcmc = make(*args, **kwargs)
        for name in ("run", "warmup"):
            method = getattr(mcmc, name)
            setattr(mcmc, name, lambda *a, _m=method, **k: _m(*a, **{"init_params": starts, **k}))
        return mcmc

    monkeypatch.setattr(nuts, "_mcmc", with_starts)

    def run(select):
        return nuts.sample(jax.random.key(5), NUTS(bimodal, max_tree_depth=3), select_window=select,
                           schedule=nuts.Schedule(50, 30, num_chains=4, chain_method="vectorized"))

    plain, chosen, again = run(None), run(10), run(10)
    # without selection the chains stay where they started; with it every chain samples the heavier mode
    assert (plain.samples["x"][[0, 2]] < 0).all() and (plain.samples["x"][[1, 3]] > 0).all()
    assert (chosen.samples["x"] > 0).all()
    rec = chosen.settings["chain_selection"]
    assert rec["window"] == 10 and rec["selected"] in (1, 3)
    assert rec["selected"] == int(np.argmax(rec["warmup_log_density"]))
    # the chains keep their own random numbers: they agree in law, not draw for draw
    assert not np.array_equal(chosen.samples["x"][0], chosen.samples["x"][1])
    np.testing.assert_array_equal(again.samples["x"], chosen.samples["x"])
    assert "chain_selection" not in plain.settings


def test_chain_selection_is_validated():
    with pytest.raises(InputError, match="2 or more chains"):
        _run(nuts.Schedule(20, 5, num_chains=1), select_window=5)
    with pytest.raises(InputError, match="select_window"):
        _run(nuts.Schedule(20, 5, num_chains=2, chain_method="vectorized"), select_window=30)
