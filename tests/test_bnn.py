"""BNN models, NUTS checkpoint/resume, prediction, pruning and the fit/predict CLI's errors."""

import jax
import numpy as np
import pytest
from numpyro.infer import NUTS, DiscreteHMCGibbs

from bayes_mogp.bnn import (
    BNNConfig,
    classification_metrics,
    forward,
    make_kernel,
    pca_inputs,
    predict_probs,
    prune_masks,
    resume_nuts,
    run_nuts,
)
from bayes_mogp.cli.main import main


def _toy(n=30, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)


def test_resume_gives_the_same_draws_as_an_uninterrupted_run(tmp_path):
    X, y = _toy()
    cfg = BNNConfig(d_in=3, d_out=2, widths=(4,), prior="horseshoe")
    kw = dict(num_warmup=10, num_samples=6, num_chains=2)
    full = run_nuts(jax.random.PRNGKey(3), cfg, X, y, **kw)
    ck = tmp_path / "ck.pkl"
    part = run_nuts(jax.random.PRNGKey(3), cfg, X, y, **kw, checkpoint=ck, checkpoint_every=3, stop_after=3)
    assert part.samples["V0"].shape[:2] == (2, 3)
    resumed = resume_nuts(ck, cfg, X, y, checkpoint_every=3)
    for name in full.samples:
        np.testing.assert_array_equal(resumed.samples[name], full.samples[name])
    np.testing.assert_array_equal(resumed.stats["diverging"], full.stats["diverging"])
    # Identifiable derived quantities are recorded: sorted lambdas decrease, tau is positive.
    lam = full.samples["lam_sorted0"]
    assert np.all(np.diff(lam, axis=-1) <= 0) and np.all(full.samples["tau0"] > 0)
    # Prediction from the draws: probabilities sum to one.
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in full.samples.items()}
    probs = predict_probs(cfg, flat, X)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)


def test_discrete_prior_gets_discrete_hmc_gibbs_and_continuous_gets_nuts():
    assert isinstance(make_kernel(BNNConfig(d_in=2, d_out=2, widths=(5,), prior="bernoulli")), DiscreteHMCGibbs)
    assert type(make_kernel(BNNConfig(d_in=2, d_out=2, widths=(5,), prior="inverse_gamma"))) is NUTS


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(prior="no_such_prior"), "no_such_prior"), (dict(widths=(-3,)), "width"),
     (dict(activation="sigmoid"), "activation"), (dict(prior="horseshoe", slab_scale=-1.0), "slab_scale")],
)
def test_bad_config_raises_naming_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        BNNConfig(d_in=2, d_out=2, **kwargs)


def test_pruning_masks_remove_the_smallest_lambdas_per_draw():
    cfg = BNNConfig(d_in=2, d_out=2, widths=(10,), prior="iid")
    lam = np.random.default_rng(1).permuted(np.tile(np.arange(1.0, 11.0), (3, 1)), axis=1)
    (mask,) = prune_masks(cfg, {"lam0": lam}, 0.8)
    assert mask.sum(-1).tolist() == [2.0, 2.0, 2.0]
    assert np.all(lam[mask == 1] >= 9.0)  # the two largest (9 and 10) survive in every draw


def test_forward_with_all_nodes_pruned_is_the_output_bias():
    cfg = BNNConfig(d_in=3, d_out=2, widths=(4,), prior="iid")
    rng = np.random.default_rng(0)
    params = {"V0": rng.normal(size=(3, 4)), "b0": rng.normal(size=4), "V1": rng.normal(size=(4, 2)),
              "b1": np.array([0.5, -1.0]), "lam0": np.full(4, 0.5)}
    out = forward(cfg, params, rng.normal(size=(5, 3)), lam_mask=(np.zeros(4),))
    np.testing.assert_allclose(out, np.tile([0.5, -1.0], (5, 1)))


def test_classification_metrics_on_known_probabilities():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    m = classification_metrics(probs, np.array([0, 1, 1, 0]))
    assert m["accuracy"] == 0.75
    np.testing.assert_allclose(m["nll"], -np.mean(np.log([0.9, 0.8, 0.4, 0.5])))


def test_pca_inputs_whitened_and_refuses_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    z, zt, ratio = pca_inputs(x, x[:5], 3)
    np.testing.assert_allclose(z.std(0, ddof=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(zt, z[:5])
    assert 0 < ratio <= 1
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pca_inputs(x, x[:5], 3)


SPEC = """
[model]
prior = "{prior}"
widths = [{width}]
[data]
x_train = [[0.1, {x}], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]]
y_train = [0, 1, 0, 1]
x_test = [[0.1, 0.2]]
y_test = [1]
"""


@pytest.mark.parametrize(
    "prior, width, x, match",
    [("no_such_prior", 5, "0.2", "no_such_prior"), ("horseshoe", -2, "0.2", "width"),
     ("horseshoe", 5, "nan", "NaN")],
)
def test_fit_cli_bad_spec_or_nan_data_is_one_line_exit_2(tmp_path, capsys, prior, width, x, match):
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.format(prior=prior, width=width, x=x))
    code = main(["fit", str(spec), "--out", str(tmp_path / "run")])  # in-process: main() is what the script runs
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.strip().splitlines() if "error" in line]
    assert len(errors) == 1 and match in errors[0] and "Traceback" not in err


@pytest.mark.parametrize("global_scale, slab", [("half_cauchy", None), ("half_normal", 4.0), ("fixed", 2.0)])
def test_horseshoe_prior_law_is_the_same_in_our_and_the_centred_parametrisation(global_scale, slab):
    """Same prior, two geometries: the law of a node variance lam_1 (and of tau) under ``bnn_model`` equals
    that under ``centred_horseshoe_model`` (two-sample KS, 4000 draws each: the 0.1% critical value of the
    statistic is 1.95 sqrt(2/4000) = 0.044); tau / tau0 is half-normal(1) or half-Cauchy(1) (one-sample KS,
    critical value 1.95 / sqrt(4000) = 0.031); with a slab, lam <= c^2 2/p."""
    from numpyro.infer import Predictive
    from scipy import stats

    from bayes_mogp.bnn import bnn_model, centred_horseshoe_model

    p, n = 8, 4000
    cfg = BNNConfig(d_in=2, d_out=2, widths=(p,), prior="horseshoe", global_scale=global_scale, slab_scale=slab)
    X = np.zeros((1, 2))
    draws = {}
    for name, model in (("ours", bnn_model), ("centred", centred_horseshoe_model)):
        out = Predictive(model, num_samples=n)(jax.random.PRNGKey(3), cfg, X)
        draws[name] = {k: np.asarray(out[k]) for k in ("lam0", "tau0")}
    lam_a, lam_b = draws["ours"]["lam0"][:, 0], draws["centred"]["lam0"][:, 0]
    assert stats.ks_2samp(lam_a, lam_b).statistic < 0.044
    tau0 = np.pi / p
    tau = draws["ours"]["tau0"].reshape(-1)
    if global_scale == "fixed":
        np.testing.assert_allclose(tau, tau0)
    else:
        law = stats.halfnorm if global_scale == "half_normal" else stats.halfcauchy
        assert stats.kstest(tau / tau0, law.cdf).statistic < 0.031
        assert stats.ks_2samp(tau, draws["centred"]["tau0"].reshape(-1)).statistic < 0.044
    if slab is not None:
        assert lam_a.max() <= slab**2 * 2.0 / p * (1 + 1e-12)
