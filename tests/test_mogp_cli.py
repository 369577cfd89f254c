"""`bayes-mogp mogp` and `bayes-mogp predict` end to end on own data, and their one-line errors.

One tiny classification run (three separated clusters, n = 60) is made once per module and shared; its
settings equal those of the classification case of ``test_mogp_api.py``, so the compiled programs come from
the persistent compilation cache when both files run.
"""

import json

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
            "--num-samples", "15", "--max-tree-depth", "4", "--out", str(out), "--seed", "0", "--no-progress"]
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
    assert len(d["per_chain"]["accuracy"]) == len(d["per_chain"]["log_likelihood_mean"]) == 2
    assert res["results"]["mogp"]["accuracy"] >= 0.8  # separated clusters; chance is 1/3
    acc = res["results"]["mogp"]["accuracy"]
    assert abs(acc * 30 - round(acc * 30)) < 1e-12  # a float64 fraction of the 30 test points
    assert res["run"] == str(out) and res["active_features"]["num_jumps"] == 3
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
    assert rep["r_hat_max"] == pytest.approx(d["r_hat_max"], rel=1e-9)


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


def test_predict_refuses_bad_runs_in_one_line(tmp_path, capsys):
    from bayes_mogp.cli.main import main

    (tmp_path / "empty").mkdir()
    for run, message in ((tmp_path / "nope", "run folder not found"), (tmp_path / "empty", "no manifest.json")):
        assert main(["predict", str(run), "--data-npz", str(tmp_path / "x.npz")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


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
