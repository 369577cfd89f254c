"""bayes_mogp.dynamics: gradient descent against an exact closed form, the measurements' behaviour with width,
networks that cannot train, and the ``lazy`` command (one JSON object, one value per width, bad input)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.dynamics import LazySettings, gradient_descent, measure_width, toy_problem
from bayes_mogp.dynamics.lazy import _slope
from bayes_mogp.errors import InputError


def test_gradient_descent_of_a_linear_model_is_the_closed_form():
    """For f(theta, x) = x theta the loss (1/2n)|X theta - y|^2 gives f_t - y = (I - eta X X^T / n)^t (f_0 - y)
    exactly (the normalisation that neural-tangents' gradient_descent_mse assumes)."""
    rng = np.random.default_rng(0)
    x, y, theta0 = rng.normal(size=(6, 4)), rng.normal(size=(6, 1)), rng.normal(size=(4, 1))
    eta, steps = 0.3, 25
    trained = gradient_descent(lambda th, xx: xx @ th, jnp.asarray(theta0), jnp.asarray(x), jnp.asarray(y), eta, steps)
    ntk = x @ x.T
    expected = np.linalg.matrix_power(np.eye(6) - eta * ntk / 6, steps) @ (x @ theta0 - y) + y
    np.testing.assert_allclose(np.asarray(x @ trained), expected, rtol=1e-5, atol=1e-5)


def test_toy_problem_inputs_lie_on_the_sphere():
    x_train, y_train, x_test = toy_problem(jax.random.key(0), 5, 7, 3)
    assert x_train.shape == (5, 3) and y_train.shape == (5, 1) and x_test.shape == (7, 3)
    np.testing.assert_allclose(np.sum(np.asarray(x_train) ** 2, axis=1), 3.0, rtol=1e-5)


def test_dead_networks_are_marked_and_left_out():
    """Bernoulli variances with rate 0.5 at width 8: a network has no live node with probability (15/16)^8 = 0.60;
    such a network computes 0, its NTK is 0, and its measurements are NaN, not numbers."""
    s = LazySettings(num_inits=6, steps=5, n_train=4, n_test=4, input_dim=2)
    m = measure_width(jax.random.key(1), "bernoulli", 8, s, hyper={"rate": 0.5})
    assert m["dead"].any() and (~m["dead"]).any()  # with this key: some of each
    assert np.all(m["ntk_init_trace"][m["dead"]] == 0) and np.all(m["ntk_init_trace"][~m["dead"]] > 0)
    assert np.all(np.isnan(m["linearisation_distance"][m["dead"]]))
    assert np.all(np.isfinite(m["linearisation_distance"][~m["dead"]]))


def test_slope_and_its_error():
    w = [10, 100, 1000]
    assert _slope(w, [1.0, 0.1, 0.01], [0.0, 0.0, 0.0]) == pytest.approx((-1.0, 0.0))
    slope, se = _slope(w, [1.0, 10**-0.5, 0.1], [0.1, 10**-0.5 * 0.1, 0.01])
    assert slope == pytest.approx(-0.5) and se == pytest.approx(0.1 * np.sqrt(2) / (2 * np.log(10)))


def test_lazy_command_iid_networks_approach_their_linearisation_and_the_ntk(cli):
    """He-initialised networks at widths 32 and 1024: each distance falls by more than 4 standard errors (the
    Monte Carlo error over 6 initialisations), and the JSON holds one value per width in each list."""
    code, out, err = cli("lazy", "--widths", "32,1024", "--num-inits", "6", "--steps", "40", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["prior"] == "iid" and res["regime"] == "GP" and res["widths"] == [32, 1024]
    for key in ("linearisation_distance", "ntk_change", "ntk_prediction_error"):
        v, se = res[key], res["stderr"][key]
        assert len(v) == 2 and len(se) == 2
        assert v[0] - v[1] > 4 * np.hypot(*se), (key, v, se)
    assert res["slope"] < 0 and res["stderr"]["slope"] > 0 and len(res["ntk_init_spread"]) == 2
    assert res["dead_networks"] == [0, 0] and res["diverged_networks"] == [0, 0] and "drift a = 2" in res["ntk_reference"]
    # the ensemble of 6 finite networks against the NTK ensemble's mean: the initial functions' average does not
    # cancel (its share is of order 6^-1/2 at any width), so at 1024 it is further off than each network from its
    # own flow
    assert len(res["ntk_ensemble_mean_distance"]) == 2
    assert res["ntk_ensemble_mean_distance"][1] > 2 * res["ntk_prediction_error"][1]


def test_ensemble_mean_is_the_flow_from_zero_initial_outputs():
    """bayes_mogp.gp.ntk_ensemble_predict at learning rate eta / n (its units) equals neural-tangents'
    gradient_descent_mse at eta from zero initial outputs: the mean over initialisations, at the same time."""
    from bayes_mogp.dynamics import reference_ntk
    from bayes_mogp.dynamics.lazy import _ensemble_mean
    from bayes_mogp.kernels import import_neural_tangents

    nt = import_neural_tangents()
    s = LazySettings()
    x_train, y_train, x_test = toy_problem(jax.random.key(0), s.n_train, s.n_test, s.input_dim)
    kernel_fn, _ = reference_ntk("iid", 100, s)
    tt, st = kernel_fn(x_train, None, "ntk"), kernel_fn(x_test, x_train, "ntk")
    flow = nt.predict.gradient_descent_mse(tt, y_train, learning_rate=0.7)
    expected = np.asarray(flow(200.0, jnp.zeros_like(y_train), jnp.zeros((s.n_test, 1)), st)[1])
    got = _ensemble_mean(tt, st, y_train, 200, 0.7 / s.n_train)
    np.testing.assert_allclose(got, expected, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("argv, message", [
    (("--widths", "0,64"), "width"),
    (("--steps", "0"), "steps"),
    (("--prior", "cauchy"), "prior"),
    (("--widths", "64,x"), "--widths"),
    (("--num-inits", "1"), "num_inits"),
    (("--widths", "100000", "--max-minutes", "0.01"), "max-minutes"),
])
def test_lazy_bad_input_is_one_line(cli, argv, message):
    code, out, err = cli("lazy", *argv)
    assert code == 2 and out == ""
    assert message in cli.one_line_error(err)


def test_settings_are_checked():
    with pytest.raises(InputError, match="learning_rate"):
        LazySettings(learning_rate=-1.0)
    with pytest.raises(InputError, match="activation"):
        LazySettings(activation="tanh")
