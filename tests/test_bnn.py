"""BNNs: fit on own data (API and CLI), prediction in user units, exact resume, checkpoints without pickle,
pruning, ArviZ, save / load, SVI, and every bad input of ``fit`` / ``report`` / ``predict`` (one line, exit 2).

Cost: every NUTS or SVI fit compiles a sampler (seconds), so the tests share a few tiny fits (3 hidden
units, 2 chains, 4 draws): one regression and one classification fit through the API (module fixtures),
and one CLI run that is interrupted after its first checkpoint and resumed.
"""

import json
import shutil

import jax
import numpy as np
import pytest
from numpyro.infer import NUTS, DiscreteHMCGibbs

import bayes_mogp
from bayes_mogp import bnn
from bayes_mogp.bnn import BNNConfig, forward, make_kernel, pca_inputs, prune_masks
from bayes_mogp.bnn.inputs import InputMap
from bayes_mogp.cli.main import main
from bayes_mogp.data import from_arrays

KEY = jax.random.PRNGKey(0)
TINY = {"model": {"prior": "horseshoe", "widths": [3], "global_scale": "half_normal", "slab_scale": 4.0},
        "inference": {"num_warmup": 60, "num_samples": 4, "num_chains": 2, "max_tree_depth": 5,
                      "checkpoint_every": 2}}
TINY_TOML = """
[model]
prior = "horseshoe"
widths = [3]
global_scale = "half_normal"
slab_scale = 4.0
[inference]
num_warmup = 60
num_samples = 4
num_chains = 2
max_tree_depth = 5
checkpoint_every = 2
"""


def _regression(n=40, m=20, seed=0):
    """Targets in their own units (around 1000, spread 300): the model must map predictions back."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + m, 3))
    y = 1000.0 + 300.0 * np.tanh(x[:, 0] - x[:, 1]) + 20.0 * rng.normal(size=n + m)
    return x[:n], y[:n], x[n:], y[n:]


def _classification(n=40, m=20, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + m, 3))
    labels = (x[:, 0] + 0.2 * rng.normal(size=n + m) > 0).astype(int)
    return x[:n], labels[:n], x[n:], labels[n:]


@pytest.fixture(scope="module")
def reg():
    x, y, xt, yt = _regression()
    post = bnn.fit(KEY, TINY, x, y)  # the three lines, regression: fit ...
    return post, x, y, xt, yt


@pytest.fixture(scope="module")
def cls():
    x, labels, xt, lt = _classification()
    spec = {"model": {"prior": "inverse_gamma", "widths": [3]}, "inference": {**TINY["inference"], "num_chains": 1}}
    post = bnn.fit(KEY, spec, x, labels)  # one chain, a simple prior: a third of the compile time
    return post, x, labels, xt, lt


def test_three_lines_regression_on_own_arrays_in_user_units(reg):
    post, x, y, xt, yt = reg
    pred = post.predict(xt)  # ... predict ...
    scores = post.score(xt, yt)  # ... score
    assert post.task == "regression" and post.config.likelihood == "gaussian"
    assert set(scores) == {"n", "rmse", "nll", "coverage_90"} and scores["n"] == len(yt)
    # Predictions are in the user's units: loc = mu_y + s_y f_s(x), scale = s_y sigma_s, exactly.
    tt = post.target_transform
    np.testing.assert_allclose(pred.loc, tt.shift + tt.scale * post.outputs(xt), rtol=1e-12)
    sigma = post.flat_samples()["sigma"].astype(float)
    np.testing.assert_allclose(pred.scale[:, 0, 0], tt.scale[0] * sigma, rtol=1e-6)
    # The network learned something: RMSE well below the spread of the targets (a constant predictor
    # scores std(y) ~ 215), and the 90% interval covers some but not all test targets.
    assert scores["rmse"] < 0.6 * np.std(yt)
    assert 0.5 <= scores["coverage_90"] <= 1.0
    assert post.samples["V0"].dtype == np.float32  # float32 by default, although the tests turn x64 on


def test_three_lines_classification_on_own_arrays(cls):
    post, x, labels, xt, lt = cls
    pred = post.predict(xt)
    scores = post.score(xt, lt)
    assert post.task == "classification" and post.config.likelihood == "categorical"
    assert pred.prob_draws.shape == (4, len(lt), 2)
    np.testing.assert_allclose(pred.probs.sum(-1), 1.0, atol=1e-6)
    assert set(scores) == {"n", "accuracy", "nll", "ece"}
    assert scores["accuracy"] >= 0.8  # labels are sign(x_0) up to 0.2 noise: a linear rule gets ~0.95


def test_evaluate_adds_the_pruning_curve_and_prune_removes_the_smallest_lambdas(cls):
    post, x, labels, xt, lt = cls
    ev = post.evaluate(xt, lt)
    assert ev["pruning"]["fraction"] == [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99]  # the fractions of Lee et al. (2023)
    assert 1 <= ev["distinct_top_images"] <= len(lt)
    assert ev["pruning"]["accuracy"][0] == ev["accuracy"]
    pruned = post.prune(2 / 3)  # 2 of the 3 nodes removed in every draw
    lam, lam0 = pruned.flat_samples()["lam0"], post.flat_samples()["lam0"]
    assert np.all((lam == 0).sum(-1) == 2)
    np.testing.assert_array_equal(lam.max(-1), lam0.max(-1))  # the largest node survives in every draw
    # Every node removed: the output is the output bias, the same at every input.
    f = post.prune(1.0).outputs(xt)
    np.testing.assert_allclose(f, np.broadcast_to(f[:, :1], f.shape), atol=1e-6)


def test_inference_data_groups_and_identifiable_quantities(reg):
    post = reg[0]
    idata = post.to_inference_data()
    assert {"posterior", "sample_stats", "log_likelihood", "posterior_predictive", "observed_data"} <= set(idata.groups())
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 4
    assert set(post.diagnostic_vars) == {"lam_sorted0", "tau0", "sigma", "log_lik_total", "test_pred"}
    assert set(post.diagnostic_vars) <= set(idata.posterior.data_vars)
    np.testing.assert_allclose(idata.posterior["log_lik_total"].values,
                               idata.log_likelihood["y"].values.sum(-1), rtol=1e-10)
    # ArviZ's sign convention: lp = -potential_energy.
    np.testing.assert_allclose(idata.sample_stats["lp"].values, -post.stats["potential_energy"])
    # The log-likelihood is in user units: the Gaussian predictive density of a training target.
    s0 = post.flat_samples()
    f = post.outputs(post.x_train[:1])[0, 0, 0]
    mu, sd = post.target_transform.shift[0] + post.target_transform.scale[0] * f, \
        post.target_transform.scale[0] * float(s0["sigma"][0])
    from scipy import stats

    np.testing.assert_allclose(idata.log_likelihood["y"].values[0, 0, 0],
                               stats.norm.logpdf(post.y_train[0, 0], mu, sd), rtol=1e-5)


def test_save_load_roundtrip_without_pickles(cls, tmp_path):
    post, x, labels, xt, lt = cls
    post.save(tmp_path / "run")
    back = bayes_mogp.load(tmp_path / "run")
    assert type(back).__name__ == "BNNPosterior" and back.kind == "bnn"
    np.testing.assert_allclose(back.predict(xt).probs, post.predict(xt).probs, rtol=1e-6)
    with np.load(tmp_path / "run" / "arrays.npz", allow_pickle=False) as z:
        assert "x_train" in z.files
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["kind"] == "bnn"


def test_student_t_likelihood_predicts_student_t_mixtures(reg):
    """Same draws read under the Student-t likelihood (df 4): the prediction's components are Student-t,
    so its 90% intervals are wider than the Gaussian's (t_4's 95% quantile 2.132 vs 1.645)."""
    from dataclasses import replace

    post = reg[0]
    t_post = replace(post, config=replace(post.config, likelihood="student_t", df=4.0))
    g, t = post.predict(reg[3]), t_post.predict(reg[3])
    assert g.df is None and t.df == 4.0
    assert np.all(t.interval(0.9)[1] - t.interval(0.9)[0] > g.interval(0.9)[1] - g.interval(0.9)[0])


def test_student_t_model_log_density_is_the_student_t_sum():
    from numpyro.infer.util import log_density
    from scipy import stats

    from bayes_mogp.bnn import bnn_model

    cfg = BNNConfig(d_in=2, d_out=1, widths=(2,), prior="iid", likelihood="student_t", df=5.0)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    params = {"V0": rng.normal(size=(2, 2)), "V1": rng.normal(size=(2, 1)), "b0_raw": rng.normal(size=2),
              "b1_raw": rng.normal(size=1), "sigma": np.asarray(0.7)}

    @jax.jit  # one compiled call instead of many eager ones
    def y_log_prob_and_mean(params):
        _, trace = log_density(bnn_model, (cfg, X, Y), {}, params)
        f = forward(cfg, {"V0": params["V0"], "V1": params["V1"], "b0": params["b0_raw"], "b1": params["b1_raw"],
                          "lam0": np.full(2, 1.0)}, X)
        return trace["y"]["fn"].log_prob(Y).sum(), f

    lp, f = y_log_prob_and_mean(params)
    np.testing.assert_allclose(lp, stats.t.logpdf(Y, 5.0, np.asarray(f), 0.7).sum(), rtol=1e-10)


def _svi_checks(post, guide, xt, yt):
    assert post.method == "svi" and post.num_chains == 1 and post.num_draws == 50
    assert post.spec["inference"]["guide"] == guide
    assert post.losses.shape == (300,) and post.losses[-20:].mean() < post.losses[:20].mean()
    assert post.score(xt, yt)["rmse"] < np.std(yt)


@pytest.mark.slow  # compiles an SVI loop (~10 s); notebook 04 and benchmarks/bench_bnn_svi_vs_nuts.py run it too
def test_svi_low_rank_guide_predicts_and_reports(tmp_path):
    x, y, xt, yt = _regression()
    spec = {"model": TINY["model"], "inference": {"method": "svi", "guide": "low_rank", "rank": 2,
                                                  "num_steps": 300, "num_samples": 50}}
    post = bnn.fit(KEY, spec, x, y)
    _svi_checks(post, "low_rank", xt, yt)
    assert post.spec["inference"]["rank"] == 2
    post.save(tmp_path / "svi")
    from bayes_mogp.report import report_run

    summary = report_run(tmp_path / "svi")
    assert summary["r_hat_max"] is None and "variational" in summary["note"]
    assert (tmp_path / "svi" / "report_svi_loss.png").exists()


@pytest.mark.slow  # the same code as the low-rank guide; notebook 04 and benchmarks/bench_bnn_svi_vs_nuts.py (full) run it
def test_svi_mean_field_guide_predicts():
    x, y, xt, yt = _regression()
    spec = {"model": TINY["model"], "inference": {"method": "svi", "num_steps": 300, "num_samples": 50}}
    _svi_checks(bnn.fit(KEY, spec, x, y), "normal", xt, yt)


# ------------------------------------------------------------------------- CLI: interrupted, resumed, reported
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """``fit SPEC --data-npz`` interrupted (Ctrl-C) right after its first checkpoint, then ``fit --resume``."""
    root = tmp_path_factory.mktemp("cli")
    x, y, xt, yt = _regression()
    np.savez(root / "data.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    (root / "tiny.toml").write_text(TINY_TOML)
    import bayes_mogp.nuts as inference

    real = inference.save_checkpoint

    def interrupt_after_first(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BAYES_MOGP_QUICK", "0")
        mp.setattr(inference, "save_checkpoint", interrupt_after_first)
        code_fit = main(["fit", str(root / "tiny.toml"), "--data-npz", str(root / "data.npz"), "--out", str(run),
                         "--no-progress"])
        mp.setattr(inference, "save_checkpoint", real)
        code_resume = main(["fit", "--resume", "--out", str(run), "--no-progress", "--json"])
    return {"root": root, "run": run, "codes": (code_fit, code_resume)}


def test_cli_resume_gives_the_draws_of_an_uninterrupted_run(cli_run, reg):
    assert cli_run["codes"] == (130, 0)  # 130: interrupted after the first checkpoint (2 of 4 draws)
    resumed = bayes_mogp.load(cli_run["run"])
    assert resumed.num_draws == 4
    for name, value in reg[0].samples.items():  # the API fit of the same data, key and spec, never stopped
        np.testing.assert_array_equal(resumed.samples[name], value, err_msg=name)
    np.testing.assert_array_equal(resumed.stats["diverging"], reg[0].stats["diverging"])


def test_fit_or_resume_loads_a_finished_run_continues_an_interrupted_one_and_refuses_another(cli_run, tmp_path):
    from bayes_mogp.errors import InputError

    done = bnn.fit_or_resume(KEY, TINY, cli_run["run"])  # finished: read back, nothing fitted
    np.testing.assert_array_equal(done.samples["lam0"], bayes_mogp.load(cli_run["run"]).samples["lam0"])
    with pytest.raises(InputError, match=r"widths \[3\], not \[5\]"):
        bnn.fit_or_resume(KEY, TINY, cli_run["run"], widths=[5])
    run = tmp_path / "interrupted"
    shutil.copytree(cli_run["run"], run)
    for name in ("manifest.json", "posterior.nc", "arrays.npz"):  # as if stopped after the last checkpoint
        (run / name).unlink()
    again = bnn.fit_or_resume(KEY, TINY, run)
    assert (run / "manifest.json").exists() and again.timings.get("resumed") is True
    np.testing.assert_array_equal(again.samples["lam0"], done.samples["lam0"])


def test_cli_report_and_predict_on_the_run(cli_run, capsys):
    run, root = cli_run["run"], cli_run["root"]
    assert main(["report", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("r_hat_max", "ess_bulk_min", "divergences", "rmse", "nll", "coverage_90", "seconds"):
        assert key in summary, key
    page = (run / "report.html").read_text()
    assert "<img" in page and "src='http" not in page
    # report's R-hat and divergences by value: ArviZ on the run's own InferenceData
    import arviz as az

    import bayes_mogp
    from bayes_mogp.report import identifiable_names

    post = bayes_mogp.load(run)
    idata = post.to_inference_data()
    names = [v for v in identifiable_names(idata) if v in idata.posterior]
    rhat = az.rhat(idata, var_names=names)
    assert summary["r_hat_max"] == pytest.approx(max(float(rhat[v].max()) for v in names), rel=1e-9)
    assert summary["divergences"] == int(idata.sample_stats["diverging"].sum())
    assert main(["predict", str(run), "--data-npz", str(root / "data.npz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"n", "rmse", "nll", "coverage_90", "predictions"} <= set(out)
    # predict's scores by value: the Python API on the same run, and RMSE / coverage from the saved predictions
    with np.load(root / "data.npz") as d:
        xt, yt = d["x_test"], d["y_test"].reshape(-1, 1)
    api = post.score(xt, yt)
    for k in ("rmse", "nll", "coverage_90"):
        assert out[k] == pytest.approx(api[k], rel=1e-9), k
    with np.load(out["predictions"], allow_pickle=False) as z:
        assert z["mean"].shape == (20, 1) and z["lower_90"].shape == (20, 1)
        assert out["rmse"] == pytest.approx(float(np.sqrt(np.mean((z["mean"] - yt) ** 2))), rel=1e-9)
        inside = (z["lower_90"] <= yt) & (yt <= z["upper_90"])
        assert out["coverage_90"] == pytest.approx(float(inside.mean()), abs=1e-12)


def _one_line_exit_2(argv, capsys, match):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.strip().splitlines() if line.startswith("bayes-mogp")]  # not the log lines
    assert len(errors) == 1 and "Traceback" not in err and err.strip().splitlines()[-1] == errors[0], err
    assert match in errors[0], errors[0]


@pytest.mark.parametrize("damage, match", [
    ("truncate", "corrupt checkpoint"), ("pickle", "pickled"), ("garbage", "corrupt checkpoint"),
    ("other_model", "another model"), ("missing", "checkpoint not found"),
])
def test_resume_refuses_a_bad_checkpoint_in_one_line(cli_run, tmp_path, capsys, damage, match):
    run = tmp_path / "run"
    shutil.copytree(cli_run["run"], run)
    ck = run / "checkpoint.npz"
    if damage == "truncate":
        ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    elif damage == "pickle":
        with np.load(ck) as z:
            arrays = dict(z)
        arrays["state_000"] = np.array([{"a": 1}], dtype=object)
        np.savez(ck, **arrays)
    elif damage == "garbage":
        ck.write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "other_model":
        cfg = json.loads((run / "fit_config.json").read_text())
        cfg["spec"]["model"]["widths"] = [5]
        (run / "fit_config.json").write_text(json.dumps(cfg))
    else:
        ck.unlink()
    _one_line_exit_2(["fit", "--resume", "--out", str(run), "--num-samples", "6"], capsys, match)


SPEC = """
[model]
prior = "{prior}"
widths = [{width}]
{extra}
"""


def _npz(path, **over):
    x, y, xt, yt = _regression(n=12, m=4)
    arrays = {"x_train": x, "y_train": y, "x_test": xt, "y_test": yt}
    arrays.update(over)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.mark.parametrize("case, match", [
    ("unknown_prior", "no_such_prior"), ("bad_width", "width"), ("nan", "NaN"), ("missing_key", "x_test"),
    ("rows", "rows"), ("labels_with_gaussian", "likelihood 'gaussian' needs real targets"),
    ("unknown_inference_key", "num_leapfrog"), ("csv_no_target", "no column 'price'"),
    ("csv_without_target_flag", "--target"), ("target_without_csv", "--data-csv"), ("not_npz", "not an .npz"),
    ("no_data", "names no [data] dataset"),
])
def test_fit_bad_input_is_one_line_exit_2(tmp_path, capsys, case, match):
    prior, width, extra = "horseshoe", 3, ""
    data = ["--data-npz", str(_npz(tmp_path / "d.npz"))]
    if case == "unknown_prior":
        prior = "no_such_prior"
    elif case == "bad_width":
        width = -2
    elif case == "nan":
        x = _regression(n=12, m=4)[0]
        x[3, 1] = np.nan
        data = ["--data-npz", str(_npz(tmp_path / "nan.npz", x_train=x))]
    elif case == "missing_key":
        data = ["--data-npz", str(_npz(tmp_path / "m.npz", x_test=None, y_test=None))]
    elif case == "rows":
        data = ["--data-npz", str(_npz(tmp_path / "r.npz", y_train=np.zeros(5)))]
    elif case == "labels_with_gaussian":
        extra = 'likelihood = "gaussian"'
        data = ["--data-npz", str(_npz(tmp_path / "l.npz", y_train=None, y_test=None,
                                       labels_train=np.arange(12) % 2, labels_test=np.arange(4) % 2))]
    elif case == "unknown_inference_key":
        extra = "[inference]\nnum_leapfrog = 3"
    elif case in ("csv_no_target", "csv_without_target_flag"):
        (tmp_path / "d.csv").write_text("a,b,y\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n2,2,2\n")
        data = ["--data-csv", str(tmp_path / "d.csv")] + (["--target", "price"] if case == "csv_no_target" else [])
    elif case == "target_without_csv":
        data += ["--target", "y"]
    elif case == "not_npz":
        (tmp_path / "x.npz").write_text("x_train,y_train\n")
        data = ["--data-npz", str(tmp_path / "x.npz")]
    elif case == "no_data":
        data = []
    (tmp_path / "s.toml").write_text(SPEC.format(prior=prior, width=width, extra=extra))
    _one_line_exit_2(["fit", str(tmp_path / "s.toml"), *data, "--out", str(tmp_path / "run")], capsys, match)


def test_fit_refuses_a_folder_that_holds_a_run_and_resume_refuses_other_kinds(cli_run, tmp_path, capsys):
    (tmp_path / "s.toml").write_text(TINY_TOML)
    _one_line_exit_2(["fit", str(tmp_path / "s.toml"), "--data-npz", str(cli_run["root"] / "data.npz"),
                      "--out", str(cli_run["run"])], capsys, "already holds a run")
    other = tmp_path / "other"
    from bayes_mogp.runs import write_run

    write_run(other, kind="mogp", spec={}, data={}, arrays={"a": np.zeros(1)})
    _one_line_exit_2(["fit", "--resume", "--out", str(other)], capsys, "a mogp run, not a bnn run")
    _one_line_exit_2(["fit", "--resume", "--out", str(tmp_path / "nothing")], capsys, "not found")
    _one_line_exit_2(["report", str(tmp_path / "nothing")], capsys, "not found")


def test_report_and_predict_refuse_damaged_runs_in_one_line(cli_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(cli_run["run"], run)
    (run / "posterior.nc").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    _one_line_exit_2(["report", str(run)], capsys, "corrupt netCDF")
    shutil.copy(cli_run["run"] / "posterior.nc", run / "posterior.nc")
    np.savez(tmp_path / "wrong.npz", x_test=np.zeros((3, 5)))
    _one_line_exit_2(["predict", str(run), "--data-npz", str(tmp_path / "wrong.npz")], capsys, "fitted on 3 input column")
    (run / "arrays.npz").write_bytes(b"nonsense")
    _one_line_exit_2(["predict", str(run), "--data-npz", str(tmp_path / "wrong.npz")], capsys, "arrays.npz")


# ------------------------------------------------------------------------------------------- no sampling
def test_discrete_prior_gets_discrete_hmc_gibbs_and_continuous_gets_nuts():
    assert isinstance(make_kernel(BNNConfig(d_in=2, d_out=2, widths=(5,), prior="bernoulli")), DiscreteHMCGibbs)
    assert type(make_kernel(BNNConfig(d_in=2, d_out=2, widths=(5,), prior="inverse_gamma"))) is NUTS


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(prior="no_such_prior"), "no_such_prior"), (dict(widths=(-3,)), "width"),
     (dict(activation="sigmoid"), "activation"), (dict(prior="horseshoe", slab_scale=-1.0), "slab_scale"),
     (dict(likelihood="student_t", df=2.0), "df"), (dict(likelihood="poisson"), "likelihood")],
)
def test_bad_config_raises_naming_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        BNNConfig(d_in=2, d_out=2, **kwargs)


def test_the_data_decide_the_likelihood_unless_the_spec_does():
    from bayes_mogp.bnn.spec import resolve_config

    assert resolve_config({"model": {}}, task="regression", d_in=2, d_out=1).likelihood == "gaussian"
    assert resolve_config({"model": {}}, task="classification", d_in=2, d_out=3).likelihood == "categorical"
    assert resolve_config({"model": {"likelihood": "student_t"}}, task="regression", d_in=2, d_out=1).df == 4.0
    with pytest.raises(ValueError, match="needs class labels"):
        resolve_config({"model": {"likelihood": "categorical"}}, task="regression", d_in=2, d_out=1)


def test_pca_only_when_asked_and_only_when_it_reduces_the_dimension():
    rng = np.random.default_rng(0)
    ds = from_arrays(rng.normal(size=(30, 4)) @ rng.normal(size=(4, 4)), rng.normal(size=30))
    assert not InputMap.fit(ds, None).uses_pca and not InputMap.fit(ds, 4).uses_pca
    two = InputMap.fit(ds, 2)
    z = two(ds.x_train)
    assert z.shape == (30, 2)
    np.testing.assert_allclose(z.std(0, ddof=1), 1.0, rtol=1e-10)  # whitened on the training inputs
    back = InputMap.from_arrays(two.to_arrays())
    np.testing.assert_allclose(back(ds.x_train[:3]), z[:3])
    with pytest.raises(ValueError, match="pca"):
        InputMap.fit(from_arrays(rng.normal(size=(5, 8)), rng.normal(size=5)), 6)


def test_pruning_masks_remove_the_smallest_lambdas_per_draw():
    cfg = BNNConfig(d_in=2, d_out=2, widths=(10,), prior="iid")
    lam = np.random.default_rng(1).permuted(np.tile(np.arange(1.0, 11.0), (3, 1)), axis=1)
    (mask,) = prune_masks(cfg, {"lam0": lam}, 0.8)
    assert mask.sum(-1).tolist() == [2.0, 2.0, 2.0]
    assert np.all(lam[mask == 1] >= 9.0)  # the two largest (9 and 10) survive in every draw


def test_pruning_ranks_equal_lambdas_by_outgoing_weight_norm():
    # iid: all lam equal in a draw, so the rank is lam * sum_k V_jk^2 (Lee et al. 2023)
    cfg = BNNConfig(d_in=2, d_out=2, widths=(4,), prior="iid")
    V1 = np.array([[[3.0, 0.0], [0.1, 0.1], [1.0, 1.0], [0.0, 0.2]]])
    (mask,) = prune_masks(cfg, {"lam0": np.full((1, 4), 0.5), "V1": V1}, 0.5)
    assert mask.tolist() == [[1.0, 0.0, 1.0, 0.0]]


def test_forward_with_all_nodes_pruned_is_the_output_bias():
    cfg = BNNConfig(d_in=3, d_out=2, widths=(4,), prior="iid")
    rng = np.random.default_rng(0)
    params = {"V0": rng.normal(size=(3, 4)), "b0": rng.normal(size=4), "V1": rng.normal(size=(4, 2)),
              "b1": np.array([0.5, -1.0]), "lam0": np.full(4, 0.5)}
    out = forward(cfg, params, rng.normal(size=(5, 3)), lam_mask=(np.zeros(4),))
    np.testing.assert_allclose(out, np.tile([0.5, -1.0], (5, 1)))


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
    cfg = BNNConfig(d_in=1, d_out=1, widths=(p,), prior="horseshoe", global_scale=global_scale, slab_scale=slab,
                    likelihood="gaussian")
    X = np.zeros((1, 1))
    draws = {}
    for name, model in (("ours", bnn_model), ("centred", centred_horseshoe_model)):
        out = Predictive(model, num_samples=n, return_sites=["lam0", "tau0"], parallel=True)(
            jax.random.PRNGKey(3), cfg, X)
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


@pytest.mark.slow  # a fresh process with two CPU devices (~30 s): the multi-device (GPU) path, run on CPU
def test_chains_run_in_parallel_across_devices_and_resume(tmp_path):
    """With as many devices as chains, ``chain_method="auto"`` runs one chain per device (pmap), as on
    several GPUs; a run interrupted after its first checkpoint resumes to the draws of the same run left
    uninterrupted (checkpointed in the same chunks: the programs that draw each chunk are then the same)."""
    import subprocess
    import sys

    script = f"""
import json, jax, numpy as np
from bayes_mogp import bnn
import bayes_mogp.nuts as inference
x = np.random.default_rng(0).normal(size=(30, 2)); y = np.sin(x[:, 0])
spec = {json.dumps(TINY)}
full = bnn.fit(jax.random.PRNGKey(0), spec, x, y, out="{tmp_path / 'full'}")
real = inference.save_checkpoint
def stop(*a, **k):
    real(*a, **k); raise KeyboardInterrupt
inference.save_checkpoint = stop
try:
    bnn.fit(jax.random.PRNGKey(0), spec, x, y, out="{tmp_path / 'run'}")
except KeyboardInterrupt:
    pass
inference.save_checkpoint = real
res = bnn.resume("{tmp_path / 'run'}")
same = all(np.array_equal(full.samples[k], res.samples[k]) for k in full.samples)
print(json.dumps({{"devices": jax.local_device_count(), "method": full.spec["inference"]["chain_method"],
                  "resumed_method": res.spec["inference"]["chain_method"], "same": same, "draws": res.num_draws}}))
"""
    env = {**__import__("os").environ, "XLA_FLAGS": __import__("os").environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"devices": 2, "method": "parallel", "resumed_method": "parallel", "same": True, "draws": 4}
