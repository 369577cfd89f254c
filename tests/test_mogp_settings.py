"""bayes_mogp/mogp/settings.py: the frozen, validated settings record of a MoGP fit."""

import dataclasses
import types

import numpy as np

import pytest

from bayes_mogp.errors import InputError, InputTypeError
from bayes_mogp.mogp import MoGPSettings


def test_defaults_round_trip_through_a_dict():
    s = MoGPSettings()
    assert (s.prior, s.depth, s.num_jumps, s.num_warmup, s.num_samples, s.num_chains) == ("horseshoe", 1, 8, 200, 100, 4)
    assert (s.chain_method, s.dense_mass, s.sampler, s.chain_selection) == ("vectorized", False, "nuts", "none")
    back = MoGPSettings.from_dict(s.replace(prior="beta", prior_hyper={"c": 0.5}, rank=4).to_dict())
    assert back == s.replace(prior="beta", prior_hyper={"c": 0.5}, rank=4)
    assert back.to_dict()["prior_hyper"] == {"c": 0.5}


def test_frozen_and_replace_makes_a_new_record():
    s = MoGPSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.depth = 2
    t = s.replace(num_chains=2)
    assert (s.num_chains, t.num_chains) == (4, 2)


@pytest.mark.parametrize("change, message", [
    ({"depth": 0}, "depth"), ({"num_jumps": 1.5}, "num_jumps"), ({"max_tree_depth": 13}, "max_tree_depth"),
    ({"warmup_tree_depth": 0}, "warmup_tree_depth"), ({"warmup_tree_depth": 2.5}, "warmup_tree_depth"),
    ({"w_var": -1.0}, "w_var"), ({"b_var": float("nan")}, "b_var"), ({"target_accept_prob": 1.0}, "target_accept_prob"),
    ({"drift": "fixed"}, "drift"), ({"activation": "tanh"}, "activation"), ({"prior": "nope"}, "prior"),
    ({"prior_hyper": [1, 2]}, "prior_hyper"), ({"rank": 0}, "rank"), ({"noise_floor": -1e-3}, "noise_floor"),
    ({"dense_mass": "yes"}, "dense_mass"), ({"chain_method": "parallel"}, "chain_method"),
    ({"sampler": "tempering"}, "sampler"), ({"smc_particles": 1}, "smc_particles"),
    ({"smc_target_ess": 1.0}, "smc_target_ess"),
    ({"smc_moves": 0}, "smc_moves"), ({"smc_leapfrog": 0}, "smc_leapfrog"), ({"rotation_dtype": "float16"}, "rotation_dtype"),
    ({"pt_temperatures": 0}, "pt_temperatures"), ({"pt_beta_min": 1.0}, "pt_beta_min"),
    ({"pt_leapfrog": 0}, "pt_leapfrog"),
    ({"chain_selection": "all"}, "chain_selection"), ({"chain_selection": "best", "num_chains": 1}, "chain_selection"),
])
def test_each_field_is_checked_with_its_name(change, message):
    with pytest.raises((InputError, InputTypeError), match=message):
        MoGPSettings(**change)
    with pytest.raises((InputError, InputTypeError), match=message):
        MoGPSettings().replace(**change)


def test_unknown_names_are_refused_with_the_allowed_ones():
    with pytest.raises(InputTypeError, match=r"unknown MoGP setting\(s\) \['num_jump'\]; allowed: prior, "):
        MoGPSettings().replace(num_jump=3)


def test_integers_given_as_integral_floats_are_stored_as_int():
    s = MoGPSettings(num_jumps=4.0, depth=2)
    assert type(s.num_jumps) is int and s.num_jumps == 4


def test_a_settings_record_given_where_y_goes_is_refused_by_name():
    import jax

    from bayes_mogp import mogp
    from bayes_mogp.errors import InputTypeError

    x = np.zeros((4, 2))
    with pytest.raises(InputTypeError, match="settings="):
        mogp.fit(jax.random.key(0), x, MoGPSettings())


def test_compare_hands_its_settings_record_to_fit(monkeypatch):
    """``compare(key, data, settings)`` must reach ``fit`` as ``settings=`` (not as ``y``): stop at the call."""
    import jax

    from bayes_mogp.mogp import comparison

    seen = {}

    class Stop(Exception):
        pass

    def fake_fit(key, data, y=None, *, settings=None, **kw):
        seen.update(y=y, settings=settings, overrides=kw)
        raise Stop

    monkeypatch.setattr(comparison, "fit", fake_fit)
    record = MoGPSettings().replace(num_jumps=5)
    with pytest.raises(Stop):
        comparison.compare(jax.random.key(0), types.SimpleNamespace(x_test=np.zeros((1, 2)), y_test=np.zeros(1)), record)
    assert seen["y"] is None and seen["settings"] is record


def test_the_size_check_counts_smc_moves_not_nuts_iterations():
    """SMC: (assumed tempering steps + 1) x particles x moves x (leapfrog + 1) gradients per run, no MAP start."""
    from bayes_mogp.mogp.comparison import SMC_TEMPERING_STEPS, estimate_cost

    s = MoGPSettings(sampler="smc", num_chains=4, smc_particles=32, smc_moves=5, smc_leapfrog=7)
    est = estimate_cost(500, 100, 1, s)
    assert est["leapfrog_steps_max"] == 4 * (SMC_TEMPERING_STEPS + 1) * 32 * 5 * 8
    more = estimate_cost(500, 100, 1, s.replace(smc_particles=64))
    assert more["seconds"] > est["seconds"]
    assert estimate_cost(500, 100, 1, s.replace(num_warmup=2000))["seconds"] == est["seconds"]  # NUTS-only setting


def test_the_size_check_counts_the_warmup_at_its_own_cap():
    """The leapfrog steps the size check allows: warmup iterations at 2^warmup_tree_depth - 1, sampling ones at
    2^max_tree_depth - 1, per chain."""
    from bayes_mogp.mogp.comparison import estimate_cost

    s = MoGPSettings(num_warmup=200, num_samples=100, num_chains=4, max_tree_depth=7)
    assert estimate_cost(100, 10, 1, s)["leapfrog_steps_max"] == 4 * 300 * 127
    short = s.replace(warmup_tree_depth=5)
    assert estimate_cost(100, 10, 1, short)["leapfrog_steps_max"] == 4 * (200 * 31 + 100 * 127)
    assert estimate_cost(100, 10, 1, short)["seconds"] < estimate_cost(100, 10, 1, s)["seconds"]


def test_the_size_check_adds_measured_parts():
    """The estimate is the sum of its parts: a step is STEP_SECONDS plus 4 n^2 J flops per chain at the rotation's
    rate; vectorised chains pay one step per iteration, sequential ones one per chain; float64 rotates at a lower
    rate; the SMC's particles share each step."""
    from bayes_mogp.mogp import comparison as c

    assert c.step_seconds(1000, 8, 4, "float32") == pytest.approx(
        c.STEP_SECONDS + 4 * 1000**2 * 8 * 4 / c.ROTATION_RATE["float32"], rel=1e-12)
    s = MoGPSettings(num_warmup=200, num_samples=100, num_chains=4, max_tree_depth=7, map_steps=1500)
    n, m = 2000, 1000
    # the predictions: every draw's and the pruned networks' (1, 4 and 8 jumps), 4 passes
    fixed = (c.COMPILE_SECONDS + c.EIGH_SECONDS_PER_N3 * n**3 + c.NNGP_SECONDS + c.NNGP_SECONDS_PER_N3 * n**3
             + 4 * 400 * 4 * n * m * 9 * 3 / c.FLOP_RATE)
    vec = c.estimate_cost(n, m, 1, s)["seconds"]
    assert vec == pytest.approx(fixed + 1500 * c.step_seconds(n, 8, 1, "float32")
                                + 300 * 127 * c.step_seconds(n, 8, 4, "float32"), rel=1e-12)
    seq = c.estimate_cost(n, m, 1, s.replace(chain_method="sequential"))["seconds"]
    assert seq == pytest.approx(vec + 300 * 127 * (4 * c.step_seconds(n, 8, 1, "float32")
                                                   - c.step_seconds(n, 8, 4, "float32")), rel=1e-12)
    assert c.estimate_cost(n, m, 1, s.replace(rotation_dtype="float64"))["seconds"] > vec
    # classification adds the quadrature of each pass's class probabilities (C (C - 1) CDFs per node, 48 nodes)
    ten = c.estimate_cost(n, m, 10, s)["seconds"]
    per_draw = 4 * n * m * 9 * 3 / c.FLOP_RATE + m * 90 * 48 * c.CDF_SECONDS
    assert ten == pytest.approx(vec + 4 * 400 * per_draw, rel=1e-12)
    assert c.estimate_cost(n, m, 10, s, classification=False)["seconds"] == pytest.approx(
        vec + 4 * 400 * 4 * n * m * 9 * 3 / c.FLOP_RATE, rel=1e-12)
    smc = s.replace(sampler="smc", smc_particles=32, smc_moves=5, smc_leapfrog=7)
    rounds = (c.SMC_TEMPERING_STEPS + 1) * 5 * 8
    assert c.estimate_cost(n, m, 1, smc)["seconds"] == pytest.approx(
        fixed - 4 * 400 * 4 * n * m * 9 * 3 / c.FLOP_RATE + 4 * 128 * 4 * n * m * 9 * 3 / c.FLOP_RATE
        + rounds * c.step_seconds(n, 8, 4 * 32, "float32"), rel=1e-12)


def test_the_size_check_lets_a_fit_that_finishes_in_minutes_through():
    """``bayes-mogp mogp`` at n = 3000 with the defaults took 8.0 minutes on 2 CPU cores (the teacher
    30,3000,2,relu, docs/benchmarks.md): the estimate must be at least that (it is an upper bound) and within the
    default budget (--max-minutes 60).  The estimate before it counted 12 n^2 (J + k) flops per gradient at
    1e10 flop/s and refused the run (115 min)."""
    from bayes_mogp.mogp.comparison import estimate_cost

    minutes = estimate_cost(3000, 1000, 1, MoGPSettings(), classification=False)["seconds"] / 60
    assert 8.0 <= minutes <= 60, minutes
