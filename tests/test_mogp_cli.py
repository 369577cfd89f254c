"""`bayes-mogp mogp` and `bayes-mogp predict` end to end on own data, and their one-line errors.

One tiny classification run (three separated clusters, n = 60) is made once per module and shared; its
settings equal those of the classification case of ``test_mogp_api.py``, so the compiled programs come from
the persistent compilation cache when both files run.
"""

import json
from types import SimpleNamespace

import numpy as np
import pytest

import bayes_mogp

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, clusters):
    """`mogp --data-npz --json` on three separated clusters (n = 60), run once."""
    from bayes_mogp.cli.main import main

    tmp = tmp_path_factory.mktemp("mogp_cli")
    x, labels = clusters.x, clusters.labels
    path = tmp / "d.npz"
    np.savez(path, x_train=x[:60], labels_train=labels[:60], x_test=x[60:], labels_test=labels[60:])
    out = tmp / "run"
    argv = ["mogp", "--data-npz", str(path), "--json", "-J", "3", "--map-steps", "100", "--num-warmup", "15",
            "--num-samples", "15", "--max-tree-depth", "4", "--out", str(out), "--seed", "0", "--no-progress",
            "--select", "cv", "--depth", "1", "--chain-selection", "best"]
    return main, argv, path, out, labels


@pytest.mark.slow  # slow pass (about 40 s: MAP, NUTS, the NNGP, predict and report); the default run keeps the errors
def test_cli_json_end_to_end_on_own_data(cli_run, capsys):
    main, argv, path, out, labels = cli_run
    assert main(argv) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)  # exactly one JSON object on stdout
    assert res["task"] == "classification" and set(res["results"]) == {"mogp", "nngp"}
    for name in ("mogp", "nngp"):
        assert set(res["results"][name]) >= {"accuracy", "nll", "nll_gaussian", "ece", "seconds"}
    d = res["diagnostics"]
    assert set(d) >= {"r_hat_max", "ess_bulk_min", "divergences", "per_chain"}
    assert len(d["per_chain"]["accuracy"]) == len(d["per_chain"]["log_likelihood_mean"]) == 4  # the default: 4 chains
    # --chain-selection best: every chain continued from the warmup chain of highest mean log density
    sel = d["chain_selection"]
    assert len(sel["warmup_log_density"]) == 4 and sel["selected"] == int(np.argmax(sel["warmup_log_density"]))
    assert res["results"]["mogp"]["accuracy"] >= 0.8  # separated clusters; chance is 1/3
    acc = res["results"]["mogp"]["accuracy"]
    assert abs(acc * 30 - round(acc * 30)) < 1e-12  # a float64 fraction of the 30 test points
    assert res["run"] == str(out) and res["active_features"]["num_jumps"] == 3
    # --select cv with --depth 1 and -J 3 fixed: the ranks 8, 16, 32 clip to the input dimension, one candidate
    sel = res["selection"]
    d_in = labels.shape and np.load(path)["x_train"].shape[1]
    assert sel["criterion"] == "cv" and sel["chosen"] == {"depth": 1, "rank": d_in, "num_jumps": 3}
    assert len(sel["candidates"]) == 1 and len(sel["candidates"][0]["fold_scores"]) == 3
    assert res["settings"]["depth"] == 1 and res["settings"]["num_jumps"] == 3
    idata = bayes_mogp.load(out).to_inference_data()
    np.testing.assert_allclose(d["per_chain"]["log_likelihood_mean"],
                               np.asarray(idata.posterior["log_marginal_likelihood"]).mean(1), rtol=1e-10)
    # predict from the saved run: same scores as the fit reported, predictions written
    assert main(["predict", str(out), "--data-npz", str(path), "--json"]) == 0
    pr = json.loads(capsys.readouterr().out)
    assert pr["n"] == 30 and pr["accuracy"] == acc and pr["nll"] == res["results"]["mogp"]["nll"]
    saved = np.load(pr["predictions"])
    assert saved["probs"].shape == (30, 3) and saved["predicted_class"].shape == (30,)
    # report from the saved run: sampling diagnostics of the MoGP's NUTS draws, the same R-hat as the fit
    assert main(["report", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["kind"] == "mogp" and (out / "report.html").exists() and (out / "summary.json").exists()
    # the report's R-hat is ArviZ's summary over the identified quantities; the fit's (ArviZ's rhat) also covers five
    # test predictions.  With an odd number of draws (15) the two ArviZ functions differ slightly: rhat folds the
    # split chains about their median, summary folds about the median of all draws, which includes the dropped middle
    import warnings

    import arviz as az

    post = bayes_mogp.load(out)
    ident = post.to_inference_data().posterior[list(post.diagnostic_vars)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summ = az.summary(ident, kind="diagnostics", round_to="none")
    assert rep["r_hat_max"] == pytest.approx(float(summ["r_hat"].max()), rel=1e-9)
    assert float(az.rhat(ident).to_array().max()) <= d["r_hat_max"] * (1 + 1e-12)
    # the raw scales and jumps: reported apart, not targeted
    assert rep["unidentified"] == ["sigma_v2", "drift", "jumps"] and rep["unidentified_r_hat_max"] > 0
    # --chain-selection best: the record survives save and load, the report carries it and says what R-hat measures
    chosen = d["chain_selection"]
    assert chosen["window"] == 15  # the warmup's length, shorter than the default window of 50
    assert post.settings.chain_selection == "best" and post.sampler_record["chain_selection"] == chosen
    assert rep["chain_selection"] == chosen and "within the mode it found" in rep["diagnostic_rule"]


@pytest.mark.parametrize("argv, message", [
    (["--prior", "no_such_prior"], "prior name must be one of"),
    (["--num-jumps", "0"], "num_jumps must be an integer >= 1, got 0"),
    (["--data-npz", "NAN"], "key 'x_train' contains 1 NaN/Inf"),
    (["--data-npz", "NOXTEST"], "missing key 'x_test'"),
    (["--data-npz", "PICKLE"], "not an .npz archive"),
    (["--data-csv", "CSV", "--target", "nope"], "no column 'nope'"),
    (["--data-csv", "CSV"], "--data-csv needs --target"),
    (["--max-minutes", "0.001"], "would take about"),
])
def test_cli_user_errors_are_one_line_exit_2(argv, message, tmp_path, capsys):
    from bayes_mogp.cli.main import main

    x = np.ones((20, 5))
    if "NAN" in argv:
        x[3, 2] = np.nan
    path = tmp_path / "d.npz"
    if "PICKLE" in argv:
        import pickle

        path.write_bytes(pickle.dumps({"x_train": x}))
    elif "NOXTEST" in argv:
        np.savez(path, x_train=x, labels_train=np.arange(20) % 2, labels_test=np.arange(4) % 2)
    else:
        np.savez(path, x_train=x, labels_train=np.arange(20) % 2, x_test=np.ones((4, 5)), labels_test=np.arange(4) % 2)
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    argv = [str(path) if a in ("NAN", "NOXTEST", "PICKLE") else str(csv) if a == "CSV" else a for a in argv]
    if "--data-npz" not in argv and "--data-csv" not in argv:
        argv += ["--data-npz", str(path)]
    assert main(["mogp", *argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0], err


def test_select_takes_its_choices_only(cli):
    code, _, err = cli("mogp", "--select", "aic")
    assert code == 2 and "argument --select: invalid choice: 'aic'" in cli.one_line_error(err)


def test_the_size_check_counts_the_selection(tmp_path, capsys):
    """A budget the fit alone fits in but the fit and the 3-fold selection do not: refused with --select cv."""
    from bayes_mogp.cli.main import main
    from bayes_mogp.mogp import MoGPSettings
    from bayes_mogp.mogp.comparison import estimate_cost
    from bayes_mogp.mogp.selection import selection_cost

    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.random.default_rng(0).normal(size=(40, 5)), labels_train=np.arange(40) % 2,
             x_test=np.ones((4, 5)), labels_test=np.arange(4) % 2)
    s = MoGPSettings()
    fit_only = estimate_cost(40, 4, 2, s)["seconds"]
    with_selection = fit_only + selection_cost(40, 2, s, grid={"depths": (1, 3), "ranks": (8, 16, 32)})
    budget = (fit_only + with_selection) / 2 / 60
    assert with_selection > 1.1 * fit_only
    assert main(["mogp", "--data-npz", str(path), "--select", "cv", "--max-minutes", str(budget),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would take about" in err[0], err


def test_predict_refuses_bad_runs_in_one_line(tmp_path, capsys):
    from bayes_mogp.cli.main import main

    (tmp_path / "empty").mkdir()
    for run, message in ((tmp_path / "nope", "run folder not found"), (tmp_path / "empty", "no manifest.json")):
        assert main(["predict", str(run), "--data-npz", str(tmp_path / "x.npz")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def _folder(path, *names):
    path.mkdir()
    for name in names:
        (path / name).write_text("")
    return path


def test_predict_says_older_version_only_for_a_folder_that_looks_like_an_old_run(tmp_path, cli):
    """A folder without manifest.json is "not a bayes-mogp run folder"; only one laid out like a run of the versions
    before run folders had a manifest (BNN config.json + data.npz, checkpoint.pkl; MoGP <name>.nc) is said to come
    from an older version, and an unfinished fit (checkpoint, no manifest yet) points to --resume."""
    plain = [_folder(tmp_path / "empty"), _folder(tmp_path / "notes", "notes.txt", "data.npz", "results.json")]
    old = [_folder(tmp_path / "old_bnn", "config.json", "data.npz", "posterior.nc", "fit.json"),
           _folder(tmp_path / "old_bnn_ck", "checkpoint.pkl"), _folder(tmp_path / "old_mogp", "mogp_mnist.nc")]
    unfinished = [_folder(tmp_path / "running", "fit_config.json", "fit_data.npz", "checkpoint.npz")]
    for run in plain + old + unfinished:
        code, out, err = cli("predict", run, "--json")
        line = cli.one_line_error(err)
        assert code == 2 and out == "" and f"{run}: not a bayes-mogp run folder (no manifest.json)" in line, line
        assert ("older bayes-mogp version" in line) == (run in old), line
        assert ("unfinished fit" in line and "--resume" in line) == (run in unfinished), line
    assert cli.one_line_error(cli("predict", plain[0])[2]).endswith("(no manifest.json)")


# --------------------------------------------------------------------- predict from CSV, report text (NNGP runs)
@pytest.fixture(scope="module")
def nngp_runs(tmp_path_factory, clusters):
    """Two NNGP run folders written by `baseline --out` in a few seconds: regression on 3 inputs and
    classification on the three clusters (6 inputs), with the data they were fitted on."""
    from bayes_mogp.cli.main import main

    tmp = tmp_path_factory.mktemp("nngp_runs")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=40)
    np.savez(tmp / "reg.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    np.savez(tmp / "cls.npz", x_train=clusters.x[:60], labels_train=clusters.labels[:60], x_test=clusters.x[60:],
             labels_test=clusters.labels[60:])
    runs = {}
    for name in ("reg", "cls"):
        runs[name] = tmp / f"run_{name}"
        assert main(["baseline", "--data-npz", str(tmp / f"{name}.npz"), "--kernels", "nngp", "--out",
                     str(runs[name]), "--no-progress", "--json"]) == 0
    return SimpleNamespace(tmp=tmp, runs=runs, x=x, y=y, clusters=clusters)


def _write_csv(path, header, columns):
    rows = [",".join(header)] + [",".join(str(v) for v in row) for row in zip(*columns)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_predict_reads_csv_as_the_other_commands_do(nngp_runs, tmp_path, cli):
    """`predict RUN --data-csv FILE [--target COL]`: the same predictions and scores as from the .npz holding the
    same rows; the target column may stand anywhere; without --target the rows are only predicted."""
    r = nngp_runs
    x, y = r.x[30:], r.y[30:]
    csv = _write_csv(tmp_path / "new.csv", ["a", "y", "b", "c"], [x[:, 0], y, x[:, 1], x[:, 2]])
    code, out, err = cli("predict", r.runs["reg"], "--data-csv", csv, "--target", "y", "--json")
    assert code == 0, err
    from_csv = json.loads(out)
    code, out, _ = cli("predict", r.runs["reg"], "--data-npz", r.tmp / "reg.npz", "--json")
    from_npz = json.loads(out)
    assert from_csv["n"] == 10 and from_csv["predictions"].endswith("predictions_new.npz")
    for k in ("rmse", "nll", "coverage_90"):
        assert from_csv[k] == pytest.approx(from_npz[k], rel=1e-12)
    np.testing.assert_allclose(np.load(from_csv["predictions"])["mean"], np.load(from_npz["predictions"])["mean"],
                               rtol=1e-12)
    inputs = _write_csv(tmp_path / "inputs.csv", ["a", "b", "c"], list(x.T))
    code, out, err = cli("predict", r.runs["reg"], "--data-csv", inputs, "--name", "in", "--json")
    res = json.loads(out)
    assert code == 0 and res["n"] == 10 and "rmse" not in res and res["predictions"].endswith("predictions_in.npz")
    # classification: the target column holds the integer labels the run was fitted with
    cx, cl = r.clusters.x[60:], r.clusters.labels[60:]
    labelled = _write_csv(tmp_path / "cls.csv", [f"x{j}" for j in range(6)] + ["label"], list(cx.T) + [cl])
    code, out, err = cli("predict", r.runs["cls"], "--data-csv", labelled, "--target", "label", "--json")
    res = json.loads(out)
    assert code == 0 and res["n"] == 30, err
    code, out, _ = cli("predict", r.runs["cls"], "--data-npz", r.tmp / "cls.npz", "--json")
    assert res["accuracy"] == json.loads(out)["accuracy"] > 1 / 3  # the same labels, better than chance


@pytest.mark.parametrize("run, argv, message", [
    ("reg", ["--data-csv", "TWO"], "2 feature column(s), but the nngp run"),
    ("reg", ["--data-csv", "WITH_Y"], "4 feature column(s), but the nngp run"),  # the target not named
    ("reg", ["--data-csv", "WITH_Y", "--target", "nope"], "no column 'nope'"),
    ("reg", ["--data-csv", "TEXT"], "column 'b' is not numeric (value 'x')"),
    ("reg", ["--data-csv", "NAN"], "column 'b' contains NaN/Inf"),
    ("reg", ["--data-csv", "MISSING"], "file not found"),
    ("reg", ["--data-csv", "RAGGED"], "line 3 has 2 fields, the header has 3"),
    ("reg", ["--data-npz", "NPZ4"], "4 columns in x_test, but the nngp run"),
    ("reg", ["--target", "y"], "--target goes with --data-csv"),
    ("reg", ["--data-csv", "TWO", "--data-npz", "NPZ4"], "give one of --data-npz and --data-csv"),
    ("cls", ["--data-csv", "CLASS_NAMES", "--target", "label"], "must hold the integer class labels 0..C-1"),
    ("cls", ["--data-csv", "LABEL_5", "--target", "label"], "label 5 is out of range: the run has 3 classes"),
])
def test_predict_file_errors_are_one_line_exit_2(run, argv, message, nngp_runs, tmp_path, cli):
    """Wrong number of columns (CSV or .npz), bad values, bad labels: one line on stderr, exit 2, nothing on
    stdout (even with --json), never a traceback."""
    r = nngp_runs
    files = {
        "TWO": _write_csv(tmp_path / "two.csv", ["a", "b"], [[1.0, 2.0], [3.0, 4.0]]),
        "WITH_Y": _write_csv(tmp_path / "with_y.csv", ["a", "b", "c", "y"], [[1.0], [2.0], [3.0], [4.0]]),
        "TEXT": _write_csv(tmp_path / "text.csv", ["a", "b", "c"], [[1.0], ["x"], [3.0]]),
        "NAN": _write_csv(tmp_path / "nan.csv", ["a", "b", "c"], [[1.0], ["nan"], [3.0]]),
        "MISSING": tmp_path / "missing.csv",
        "CLASS_NAMES": _write_csv(tmp_path / "names.csv", [f"x{j}" for j in range(6)] + ["label"],
                                  [[0.0]] * 6 + [["cat"]]),
        "LABEL_5": _write_csv(tmp_path / "label5.csv", [f"x{j}" for j in range(6)] + ["label"], [[0.0]] * 6 + [[5]]),
    }
    (tmp_path / "ragged.csv").write_text("a,b,c\n1,2,3\n4,5\n")
    files["RAGGED"] = tmp_path / "ragged.csv"
    np.savez(tmp_path / "npz4.npz", x_test=np.ones((3, 4)))
    files["NPZ4"] = tmp_path / "npz4.npz"
    argv = [str(files.get(a, a)) for a in argv]
    code, out, err = cli("predict", r.runs[run], *argv, "--json")
    line = cli.one_line_error(err)
    assert code == 2 and out == "" and message in line, line


def test_report_text_rounds_seconds(nngp_runs, cli):
    """`report` prints the fitting time to 3 significant digits (0.1 s above 10 s); --json keeps full precision."""
    from bayes_mogp.cli.report import format_seconds, format_text

    code, out, err = cli("report", nngp_runs.runs["reg"])
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("seconds:"))
    value = line.split()[1]
    assert line.endswith(" s") and len(value.replace(".", "").lstrip("0")) <= 3, line
    code, out, _ = cli("report", nngp_runs.runs["reg"], "--json")
    assert json.loads(out)["seconds"] == pytest.approx(float(value), rel=0.01)
    assert [format_seconds(s) for s in (0.0123456, 1.8368781989993295, 12.3456, 1234.5678)] == \
        ["0.0123 s", "1.84 s", "12.3 s", "1234.6 s"]
    text = format_text({"kind": "bnn", "seconds": 71.23456789, "ess_per_second": 2.3456789, "r_hat_max": 1.01})
    assert "seconds: 71.2 s" in text and "ess_per_second: 2.35" in text


def test_cli_spec_fills_unset_flags_and_flags_override():
    """`mogp SPEC`: the spec's settings replace the defaults; an explicit flag beats the spec."""
    import argparse

    from bayes_mogp.cli import mogp as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    settings, data = cmd.resolve_settings(parser.parse_args(["mogp_fashion_beta", "--num-chains", "3"]))
    assert (data["dataset"], settings["prior"], settings["num_chains"], settings["rank"]) == ("fashion", "beta", 3, 8)
    settings, data = cmd.resolve_settings(parser.parse_args([]))
    assert settings == {} and data == cmd.DATA_DEFAULTS  # nothing set: the library's defaults apply


def test_cli_spec_with_unknown_key_is_one_line_exit_2(tmp_path, capsys):
    from bayes_mogp.cli.main import main

    bad = tmp_path / "mogp_bad.toml"
    bad.write_text('[model]\nprior = "horseshoe"\nwidth = 3\n')
    assert main(["mogp", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[model] has unknown key(s) ['width']" in err[0], err


@pytest.mark.slow  # slow pass: the CLI regression path end to end (the API path is in the default suite)
def test_cli_regression_on_own_npz_and_predict_without_targets(tmp_path, capsys):
    """Regression through the CLI: real ``y_*`` make it regression; both models report RMSE, NLL and 90%
    coverage in the user's units (the targets are shifted and scaled far from standard: a model that forgot to
    map back would miss by ~1000); ``predict`` on inputs without targets writes the predictive and no scores.
    Same data shapes and settings as ``test_mogp_api``'s shared fit, so the compiled programs are reused."""
    from bayes_mogp.cli.main import main
    from bayes_mogp.data import teacher_network

    t = teacher_network(0, d=4, n_train=60, units=1, n_test=40)
    d = t.data
    shift, scale = 1000.0, 50.0
    path = tmp_path / "reg.npz"
    np.savez(path, x_train=d.x_train, y_train=shift + scale * d.y_train[:, 0], x_test=d.x_test,
             y_test=shift + scale * d.y_test[:, 0])
    out = tmp_path / "run"
    argv = ["mogp", "--data-npz", path, "--json", "-J", "3", "--map-steps", "150", "--num-warmup", "25",
            "--num-samples", "15", "--max-tree-depth", "5", "--out", out, "--seed", "0", "--no-progress"]
    assert main([str(a) for a in argv]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["task"] == "regression"
    spread = scale * float(np.std(d.y_test))
    for name in ("mogp", "nngp"):
        r = res["results"][name]
        assert set(r) >= {"rmse", "nll", "coverage_90", "seconds"}
        assert r["rmse"] < spread and 0.0 <= r["coverage_90"] <= 1.0  # in the user's units, better than a constant
    new = tmp_path / "new.npz"
    np.savez(new, x_test=d.x_test[:7])
    assert main(["predict", str(out), "--data-npz", str(new), "--name", "new", "--json"]) == 0
    pr = json.loads(capsys.readouterr().out)
    assert "rmse" not in pr and pr["n"] == 7
    saved = np.load(pr["predictions"])
    assert saved["mean"].shape[0] == 7 and np.all(np.abs(saved["mean"] - shift) < 10 * scale)
