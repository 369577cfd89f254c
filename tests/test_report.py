"""InferenceData, diagnostics and the HTML report, on synthetic draws (no sampler: fast and exact)."""

import base64
import json

import numpy as np
import pytest

from bayes_mogp.report import diagnostics, to_inference_data, write_report
from bayes_mogp.runs import save_inference_data


def _draws(shift=0.0, chains=4, draws=200, seed=0):
    rng = np.random.default_rng(seed)
    offset = shift * np.arange(chains)[:, None]
    lam = np.sort(rng.gamma(1.0, size=(chains, draws, 5)), axis=-1)[..., ::-1]
    samples = {"tau0": np.exp(rng.normal(size=(chains, draws)) + offset), "lam_sorted0": lam,
               "V0": rng.normal(size=(chains, draws, 2, 3))}
    energy = rng.normal(size=(chains, draws))
    stats = {"diverging": np.zeros((chains, draws), bool), "energy": energy, "potential_energy": energy,
             "num_steps": np.full((chains, draws), 7)}
    ll = -rng.gamma(2.0, 0.3, size=(chains, draws, 20))
    return to_inference_data(samples, stats, log_likelihood={"y": ll}, observed_data={"y": np.zeros(20, int)},
                             posterior_predictive={"y": np.zeros((chains, draws, 20), int),
                                                   "test_prob": rng.uniform(size=(chains, draws, 3))})


def test_inference_data_groups_and_netcdf_roundtrip(tmp_path):
    import arviz as az

    idata = _draws()
    assert {"posterior", "sample_stats", "log_likelihood", "posterior_predictive", "observed_data"} <= set(idata.groups())
    # ArviZ's sign convention: lp = -potential_energy.
    np.testing.assert_allclose(idata.sample_stats["lp"].values, -idata.sample_stats["energy"].values)
    back = az.from_netcdf(save_inference_data(idata, tmp_path / "p.nc"), engine="h5netcdf")
    np.testing.assert_array_equal(back.posterior["tau0"].values, idata.posterior["tau0"].values)


def test_diagnostics_pass_iid_chains_and_flag_separated_chains():
    good = diagnostics(_draws())
    # 800 iid draws: split R-hat deviates from 1 by O(1/sqrt(800)) per quantity; 1.03 is a wide bound
    # over the ~10 quantities; ESS bulk of iid draws is ~800 (> 400 leaves a factor 2 for MC error).
    assert good["r_hat_max"] < 1.03 and good["ess_bulk_min"] > 400
    assert good["divergences"] == 0 and np.isfinite(good["loo"]["elpd"]) and good["bfmi_min"] > 0.5
    assert {"tau0", "lam_sorted0", "log_lik_total", "test_prob"} <= set(good["per_quantity"])
    bad = diagnostics(_draws(shift=3.0))  # chain means 3 sd apart: not mixed
    assert bad["per_quantity"]["tau0"]["r_hat_max"] > 1.5


def test_write_report_html_pngs_and_summary_keys(tmp_path):
    summary = write_report(_draws(draws=60), tmp_path, extra={"accuracy": 0.9, "nll": 0.3, "seconds": 2.0})
    saved = json.loads((tmp_path / "summary.json").read_text())
    for key in ("r_hat_max", "ess_bulk_min", "divergences", "accuracy", "nll", "seconds", "ess_per_second"):
        assert key in saved
    assert saved["ess_per_second"] == pytest.approx(summary["ess_bulk_min"] / 2.0)
    page = (tmp_path / "report.html").read_text()
    for plot in ("trace", "rank", "energy", "pair"):
        png = (tmp_path / f"report_{plot}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert base64.b64encode(png).decode()[:200] in page  # embedded, self-contained
    assert "src='http" not in page


def test_report_without_mcmc_draws_says_so_and_has_no_sampling_diagnostics(tmp_path):
    """Independent draws (a variational guide: no sample_stats) and no draws (an exact posterior)."""
    import arviz as az

    rng = np.random.default_rng(0)
    svi = az.from_dict(posterior={"tau0": rng.normal(size=(1, 50)), "lam_sorted0": rng.gamma(1.0, size=(1, 50, 4))})
    s = write_report(svi, tmp_path / "svi", extra={"rmse": 1.0, "seconds": 3.0}, losses=np.linspace(10, 1, 30))
    assert s["draws"] == "independent" and s["r_hat_max"] is None and s["divergences"] is None
    assert s["rmse"] == 1.0 and (tmp_path / "svi" / "report_svi_loss.png").exists()
    exact = az.from_dict(posterior={"noise": np.ones((1, 1))})
    s = write_report(exact, tmp_path / "gp", extra={"accuracy": 0.9})
    assert s["draws"] == "none" and s["r_hat_max"] is None and "no posterior draws" in s["note"]
    saved = json.loads((tmp_path / "gp" / "summary.json").read_text())
    assert saved["accuracy"] == 0.9 and "ess_bulk_min" in saved


def test_report_run_on_an_exact_gp_run_says_it_has_no_sampling_diagnostics(tmp_path):
    from bayes_mogp import nngp
    from bayes_mogp.data import from_arrays
    from bayes_mogp.report import report_run

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=30)
    nngp.fit(None, from_arrays(x[:20], y[:20], x[20:], y[20:])).save(tmp_path / "gp")
    summary = report_run(tmp_path / "gp")
    assert summary["kind"] == "nngp" and summary["draws"] == "none" and summary["r_hat_max"] is None
    assert "no posterior draws" in summary["note"]
    assert (tmp_path / "gp" / "report.html").exists() and (tmp_path / "gp" / "summary.json").exists()


def test_rank_normalized_rhat_equals_arviz_on_every_scalar():
    # chains that disagree, ties, odd draw counts, 4-d draws, and the undefined cases (one chain, a NaN, a constant)
    import arviz as az

    from bayes_mogp.report import rank_normalized_rhat

    rng = np.random.default_rng(0)
    for shape in [(4, 100, 7), (2, 21, 5), (3, 10, 3, 2), (2, 4, 3)]:
        x = rng.standard_normal(shape) + (0.5 * np.arange(shape[0])).reshape((-1,) + (1,) * (len(shape) - 1))
        x[:, :, 1] = np.round(x[:, :, 1])
        ref = np.asarray(az.rhat(az.convert_to_dataset({"v": x}))["v"])
        np.testing.assert_allclose(rank_normalized_rhat(x), ref, rtol=1e-12)
    x = rng.standard_normal((2, 10, 3))
    x[:, :, 0], x[0, 3, 1] = 1.0, np.nan
    out = rank_normalized_rhat(x)
    assert np.isnan(out[0]) and np.isnan(out[1]) and np.isfinite(out[2])
    assert np.all(np.isnan(rank_normalized_rhat(rng.standard_normal((1, 50, 2)))))


def test_report_names_its_rule_and_shows_failing_r_hat_in_red(tmp_path):
    """The summary and page name the check that applies; an R-hat above 1.01 is red in the page and marked in the
    terminal text; a passing one is not."""
    from bayes_mogp.cli.report import format_text
    from bayes_mogp.report import diagnostic_rule

    idata = _draws(draws=2000)
    # a quantity the data do not identify, its chains 3 sd apart: reported apart, never failing the rule
    idata.posterior["raw_scale"] = (("chain", "draw"),
                                    np.random.default_rng(1).normal(size=(4, 2000)) + 3.0 * np.arange(4)[:, None])
    good = write_report(idata, tmp_path / "good", extra={"method": "nuts"}, unidentified=["raw_scale", "absent"])
    bad = write_report(_draws(shift=3.0), tmp_path / "bad", extra={"method": "nuts"})
    # 8000 iid draws: R-hat - 1 is O(1e-3) per quantity; chain means 3 sd apart give R-hat > 1.5 (test above)
    assert good["r_hat_max"] < 1.01 and good["r_hat_ok"] is True and bad["r_hat_ok"] is False
    assert good["unidentified"] == ["raw_scale"] and good["unidentified_r_hat_max"] > 1.5
    assert "raw_scale" not in good["per_quantity"] and "unidentified_r_hat_max" not in bad
    assert "raw_scale: the likelihood depends on these only" in (tmp_path / "good" / "report.html").read_text()
    assert "not identified, reported, not targeted" in format_text(good, color=False)
    for s in (good, bad):
        assert s["r_hat_threshold"] == 1.01 and "across the 4 chains" in s["diagnostic_rule"]
        assert s == json.loads((tmp_path / ("good" if s is good else "bad") / "summary.json").read_text())
    red = "<span style='color:#c00"
    assert red not in (tmp_path / "good" / "report.html").read_text()
    page = (tmp_path / "bad" / "report.html").read_text()
    assert f"{red};font-weight:bold'>{bad['r_hat_max']}</span>" in page  # the summary's R-hat cell
    assert page.count(red) >= 2  # and the worst quantity's row
    assert "above 1.01" in format_text(bad, color=False) and "\033[31m" in format_text(bad, color=True)
    assert "above" not in format_text(good, color=True) and "\033[" not in format_text(good, color=True)
    # the rule follows the draws and the method
    assert "within the one chain" in diagnostic_rule("mcmc", "nuts", 1)
    assert "no accept step" in diagnostic_rule("mcmc", "sghmc", 2) and "divergences" in diagnostic_rule("mcmc", "nuts", 4)
    assert diagnostic_rule("independent", "svi").startswith("none") and diagnostic_rule("none").startswith("none")
