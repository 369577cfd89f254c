"""Prediction (mixture of location-scale laws), the metrics computed from it, and run folders."""

import json

import numpy as np
import pytest
from scipy import stats

from bayes_mogp import metrics
from bayes_mogp.prediction import Prediction, gaussian_class_probabilities


def _mixture(seed=0, s=3, m=200, k=2, df=None):
    rng = np.random.default_rng(seed)
    return Prediction("regression", rng.normal(size=(s, m, k)), rng.uniform(0.5, 2.0, size=(s, m, k)), df=df)


@pytest.mark.parametrize("df", [None, 5.0])
def test_mixture_moments_density_and_quantiles_match_scipy(df):
    pred = _mixture(df=df)
    law = stats.norm if df is None else stats.t(df)
    y = np.random.default_rng(1).normal(size=(200, 2))
    z = (y[None] - pred.loc) / pred.scale
    dens = np.mean(np.prod(law.pdf(z) / pred.scale, axis=-1), axis=0)
    np.testing.assert_allclose(pred.log_density(y), np.log(dens), rtol=1e-10)
    comp_var = pred.scale**2 * (1.0 if df is None else df / (df - 2))
    np.testing.assert_allclose(pred.variance, comp_var.mean(0) + pred.loc.var(0), rtol=1e-12)
    lo, hi = pred.interval(0.9)
    cdf = lambda q: np.mean(law.cdf((q[None] - pred.loc) / pred.scale), axis=0)  # noqa: E731
    np.testing.assert_allclose(cdf(lo), 0.05, atol=1e-9)
    np.testing.assert_allclose(cdf(hi), 0.95, atol=1e-9)


def test_regression_metrics_on_known_values():
    loc = np.zeros((1, 4, 1))
    scale = np.ones((1, 4, 1))
    pred = Prediction("regression", loc, scale)
    y = np.array([0.0, 1.0, -2.0, 0.5])
    s = metrics.score(pred, y)
    assert s["n"] == 4
    np.testing.assert_allclose(s["rmse"], np.sqrt(np.mean(y**2)))
    np.testing.assert_allclose(s["nll"], np.mean(0.5 * y**2 + 0.5 * np.log(2 * np.pi)))
    assert s["coverage_90"] == 0.75  # |y| <= 1.645 for three of the four


def test_coverage_of_a_calibrated_predictive_is_nominal():
    """Targets drawn from the predictive itself: coverage ~ Binomial(4000, 0.9)/4000, sd 0.0047; 5 sd."""
    rng = np.random.default_rng(0)
    pred = _mixture(seed=2, s=4, m=4000, k=1)
    comp = rng.integers(0, 4, size=4000)
    y = pred.loc[comp, np.arange(4000), 0] + pred.scale[comp, np.arange(4000), 0] * rng.normal(size=4000)
    assert abs(metrics.coverage(pred, y) - 0.9) < 5 * 0.0047


def test_classification_scores_and_one_ece_rule():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 0])
    pred = Prediction("classification", probs=probs)
    s = metrics.score(pred, labels)
    assert s["accuracy"] == 0.75 and set(s) == {"n", "accuracy", "nll", "ece"}
    np.testing.assert_allclose(s["nll"], -np.mean(np.log([0.9, 0.4, 0.8, 0.55])))
    # bins of width 1/15: conf 0.9 (bin 13), 0.6 (9), 0.8 (12), 0.55 (8); accuracy 1, 0, 1, 1
    np.testing.assert_allclose(s["ece"], np.mean([0.1, 0.6, 0.2, 0.45]))
    assert metrics.classification_metrics(probs, labels)["ece"] == s["ece"]


def test_gaussian_class_probabilities_match_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 5))
    var = rng.uniform(0.1, 1.0, size=4)
    p = np.asarray(gaussian_class_probabilities(mean, var))
    z = mean[None] + np.sqrt(var)[None, :, None] * rng.normal(size=(100000, 4, 5))
    mc = np.stack([(z.argmax(-1) == k).mean(0) for k in range(5)], -1)
    # Monte Carlo standard error <= sqrt(0.25 / 1e5) = 1.6e-3: 5 sigma
    np.testing.assert_allclose(p, mc, atol=8e-3)


def test_prediction_validates_shapes():
    with pytest.raises(ValueError, match="shape \\(S, m, k\\)"):
        Prediction("regression", np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="needs probs"):
        Prediction("classification")
    with pytest.raises(ValueError, match="targets must have shape"):
        metrics.rmse(_mixture(), np.zeros((5, 2)))


def test_run_folder_errors(tmp_path):
    from bayes_mogp.runs import RunFolderError, read_manifest, write_run

    with pytest.raises(RunFolderError, match="run folder not found"):
        read_manifest(tmp_path / "nope")
    (tmp_path / "old").mkdir()
    with pytest.raises(RunFolderError, match="no manifest.json"):
        read_manifest(tmp_path / "old")
    run = write_run(tmp_path / "r", kind="nngp", spec={}, data={}, arrays={"a": np.zeros(2)})
    assert read_manifest(run, kind="nngp")["kind"] == "nngp"
    with pytest.raises(RunFolderError, match="a nngp run, not a mogp run"):
        read_manifest(run, kind="mogp")
    m = json.loads((run / "manifest.json").read_text())
    m["format_version"] = 99
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(RunFolderError, match="run format version 99"):
        read_manifest(run)
    (run / "manifest.json").write_text("{")
    with pytest.raises(RunFolderError, match="corrupt manifest"):
        read_manifest(run)
