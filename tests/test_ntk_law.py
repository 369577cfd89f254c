"""The initial empirical NTK's law against the random-kernel limit (bayes_mogp.dynamics.ntk_law)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.dynamics import LazySettings, compare_ntk_law, initial_ntk_trace, limit_ntk_trace, toy_problem
from bayes_mogp.dynamics.lazy import _init
from bayes_mogp.errors import InputError

SETTINGS = LazySettings(depth=1)


def test_initial_trace_is_the_per_node_sum():
    """neural-tangents' empirical NTK of one network equals sum_j lam_j g(w_j, v_j) written out by hand (both the
    output-weight term phi(z)^2 and the input-weight term v^2 phi'(z)^2 |x|^2/d), to float32 rounding."""
    key = jax.random.key(3)
    x = toy_problem(jax.random.key(1), SETTINGS.n_train, SETTINGS.n_test, SETTINGS.input_dim)[0]
    trace = initial_ntk_trace(key, "horseshoe", 64, SETTINGS, num_inits=3, x=x)
    k_init = jax.random.split(key)[1]
    for i, k in enumerate(jax.random.split(k_init, 3)):
        (W, v), (lam,) = _init(k, "horseshoe", 64, SETTINGS, {})
        d = x.shape[1]
        z = x @ W / jnp.sqrt(d)  # (n, p)
        s = jnp.sum(x * x, axis=1, keepdims=True) / d
        g = jnp.mean(jax.nn.relu(z) ** 2 + v[:, 0] ** 2 * (z > 0) * s, axis=0)
        assert trace[i] == pytest.approx(float(jnp.sum(lam * g)), rel=1e-4)


@pytest.mark.slow
def test_gp_regime_limit_is_the_drift_times_the_closed_form():
    """iid (He, lam = 2/p): the limit is a constant, 2 E[phi(z)^2 + phi'(z)^2 |x|^2/d] = 2 (1/2 + 1/2) = 2 on the
    sphere |x|^2 = d; the finite law's mean is within 4 standard errors of it and its spread falls with width
    (as p^-1/2: the interquartile range over the median at 1600 is under half that at 100, sqrt(16) = 4 expected;
    200 draws give it a relative error of about 10%)."""
    draws, share = limit_ntk_trace(jax.random.key(0), "iid", SETTINGS, num_draws=50)
    np.testing.assert_allclose(draws, 2.0, rtol=1e-5)
    assert share == 0.0
    narrow = compare_ntk_law(jax.random.key(2), "iid", 100, SETTINGS, num_inits=200, num_draws=10)
    wide = compare_ntk_law(jax.random.key(2), "iid", 1600, SETTINGS, num_inits=200, num_draws=10)
    for r in (narrow, wide):
        se = np.std(r["finite"], ddof=1) / np.sqrt(r["num_inits"])
        assert abs(np.mean(r["finite"]) - 2.0) < 4 * se
        assert r["regime"] == "GP" and r["ks_statistic"] is None
    assert wide["iqr_over_median_finite"] < 0.5 * narrow["iqr_over_median_finite"]


@pytest.mark.slow
@pytest.mark.parametrize("prior", ["horseshoe", "beta"])
def test_mogp_regime_finite_law_matches_the_random_limit(prior):
    """At width 1000, 200 networks' initial NTK traces and 2000 draws of the limit law pass a two-sample KS test at
    level 0.001 (fixed seed), their spread does not vanish (IQR over median above 0.5 for both), and the truncation
    to 256 jumps leaves under 5% of the trace to its mean remainder.  The same test against a limit without the
    input-weight term (the trace halves on the sphere) rejects."""
    r = compare_ntk_law(jax.random.key(0), prior, 1000, SETTINGS, num_inits=200, num_draws=2000)
    assert r["regime"] == "MoGP"
    assert r["ks_pvalue"] > 1e-3
    assert r["iqr_over_median_finite"] > 0.5 and r["iqr_over_median_limit"] > 0.5
    assert r["remainder_share"] < 0.05
    from scipy.stats import ks_2samp

    assert ks_2samp(r["finite"], 0.5 * r["limit"]).pvalue < 1e-3


def test_bad_input():
    with pytest.raises(InputError, match="depth must be 1"):
        limit_ntk_trace(jax.random.key(0), "iid", LazySettings(depth=2), num_draws=10)
    with pytest.raises(InputError, match="input_dim"):
        initial_ntk_trace(jax.random.key(0), "iid", 8, SETTINGS, num_inits=2, x=np.ones((4, 3)))
    with pytest.raises(InputError, match="num_inits"):
        initial_ntk_trace(jax.random.key(0), "iid", 8, SETTINGS, num_inits=1)
