"""`bayes-mogp baseline`: JSON schema, determinism, one-line errors with exit code 2."""

import json

import pytest

from bayes_mogp.cli.main import main


def _run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_baseline_json_schema_and_determinism(capsys):
    argv = ["baseline", "--dataset", "mnist", "--n-train", "60", "--n-test", "50", "--depth", "2", "--json"]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    res = json.loads(out)
    assert (res["dataset"], res["n_train"], res["n_test"]) == ("mnist", 60, 50)
    for name in ("nngp", "ntk"):
        r = res["results"][name]
        assert set(r) >= {"accuracy", "nll", "ece", "seconds"}
        # 60 MNIST images already give ~70 % with a depth-2 NNGP; chance is 10 %.
        assert r["accuracy"] > 0.4 and 0.0 <= r["ece"] <= 1.0 and r["seconds"] > 0
    code, out2, _ = _run(argv, capsys)
    res2 = json.loads(out2)
    for name in ("nngp", "ntk"):
        for k in ("accuracy", "nll", "ece"):
            assert res["results"][name][k] == res2["results"][name][k]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--dataset", "cifar"], "invalid choice"),
        (["--n-train", "4001"], "--n-train"),
        (["--n-test", "1001"], "--n-test"),
        (["--depth", "0"], "--depth"),
        (["--activation", "tanh"], "--activation"),
        (["--solver", "cg", "--reg", "ml", "--n-train", "60", "--n-test", "50"], "--reg ml"),
        (["--kernels", "gp", "--n-train", "60", "--n-test", "50"], "--kernels"),
        # the full Fashion-MNIST job is sized first (CG, NNGP only: about 18 min on 2 cores) and refused
        (["--dataset", "fashion", "--n-train", "60000", "--n-test", "10000", "--max-minutes", "5"], "--max-minutes"),
    ],
)
def test_baseline_bad_arguments_one_line_exit_2(argv, needle, capsys):
    try:
        code = main(["baseline", *argv])
    except SystemExit as exc:  # argparse errors exit directly
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.strip().splitlines() if "error" in line]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


@pytest.mark.parametrize("value", ["abc", "-1", "0", "nan", "inf", ""])
def test_bad_reg_names_the_flag_and_the_allowed_values(value, cli):
    """``--reg abc`` is refused by argparse in one line naming ``--reg`` and what it accepts (it said
    ``invalid _reg value``, the name of the parsing function)."""
    code, out, err = cli("baseline", "--reg", value, "--n-train", "60", "--n-test", "50", "--json")
    line = cli.one_line_error(err)
    assert code == 2 and out == ""
    assert "argument --reg: must be a finite number > 0" in line and "'ml'" in line and repr(value) in line, line
    assert "_reg" not in line


def test_a_bug_keeps_its_traceback_and_is_not_reported_as_a_user_error(monkeypatch, capsys):
    """Only :class:`bayes_mogp.errors.InputError` (bad flags, settings, files, data) is a one-line exit 2; any
    other exception inside a command -- here a ``ValueError`` from deep inside a computation -- is a bug:
    exit 1, its traceback, and a one-line hint to report it."""
    from bayes_mogp import nngp

    def broken(*args, **kwargs):
        raise ValueError("incompatible shapes for broadcasting: (3,) and (4,)")

    monkeypatch.setattr(nngp, "fit", broken)
    code = main(["baseline", "--n-train", "60", "--n-test", "50", "--kernels", "nngp"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" in err and "incompatible shapes" in err
    assert err.strip().splitlines()[-1].endswith("please report it with the command line and the traceback above")


@pytest.fixture(scope="module")
def own_npz(tmp_path_factory):
    """Three overlapping Gaussian classes in R^5 (80 training, 40 test points), as a user's ``.npz``."""
    import numpy as np

    rng = np.random.default_rng(11)
    centres = rng.normal(scale=1.0, size=(3, 5))  # overlapping: confidences spread over 0.5-1
    labels = rng.integers(0, 3, 120)
    x = centres[labels] + rng.normal(size=(120, 5))
    path = tmp_path_factory.mktemp("own") / "own.npz"
    np.savez(path, x_train=x[:80], labels_train=labels[:80], x_test=x[80:], labels_test=labels[80:])
    return path, x[80:], labels[80:]


def test_baseline_on_own_data_equals_an_independent_gp_and_metrics(own_npz, tmp_path, cli):
    """Values, not keys: ``baseline --data-npz ... --out RUN`` against the GP mean written here from
    neural-tangents' kernel and a plain solve, and against accuracy / NLL / ECE recomputed from the
    predicted probabilities.  The run folder's results.json is the printed JSON."""
    import math

    import numpy as np

    import bayes_mogp
    from bayes_mogp.kernels.nt_backend import import_neural_tangents  # neural-tangents without TensorFlow

    stax = import_neural_tangents().stax

    path, x_test, labels_test = own_npz
    run = tmp_path / "run"
    code, out, err = cli("baseline", "--data-npz", str(path), "--depth", "2", "--kernels", "nngp", "--out", str(run),
                         "--json", "--no-progress")
    assert code == 0, err
    res = json.loads(out)
    assert json.loads((run / "results.json").read_text()) == res
    r = res["results"]["nngp"]
    post = bayes_mogp.load(run)
    # the targets: one-hot minus 1/C of the labels
    labels_train = np.load(path)["labels_train"]
    np.testing.assert_array_equal(post.y_train, np.eye(3)[labels_train] - 1 / 3)
    # the mean: k(x*, X) (K + noise I)^-1 Y with neural-tangents' depth-2 ReLU NNGP kernel
    s = res["settings"]
    w_std, b_std = math.sqrt(s["w_var"]), math.sqrt(s["b_var"])
    _, _, kernel_fn = stax.serial(stax.Dense(512, W_std=w_std, b_std=b_std), stax.Relu(),
                                  stax.Dense(512, W_std=w_std, b_std=b_std), stax.Relu(),
                                  stax.Dense(1, W_std=w_std, b_std=b_std))
    xtr, xte = np.asarray(post.x_train), np.asarray(post.input_transform(x_test))
    k = np.asarray(kernel_fn(xtr, xtr, "nngp"), dtype=np.float64)
    ks = np.asarray(kernel_fn(xte, xtr, "nngp"), dtype=np.float64)
    noise = s["relative_noise"] * np.mean(np.diag(k))
    mean = ks @ np.linalg.solve(k + noise * np.eye(len(k)), post.y_train)
    pred = post.predict(x_test)
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-6, atol=1e-8)
    # the metrics, from the probabilities: argmax accuracy, categorical NLL, 15-bin ECE
    p = pred.probs
    assert np.allclose(p.sum(1), 1.0) and r["n"] == 40
    assert r["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == labels_test), abs=1e-12)
    assert r["nll"] == pytest.approx(-np.mean(np.log(p[np.arange(40), labels_test])), rel=1e-9)
    conf, hit = p.max(1), (p.argmax(1) == labels_test)
    bins = np.minimum((conf * 15).astype(int), 14)
    ece = sum(np.mean(bins == b) * abs(hit[bins == b].mean() - conf[bins == b].mean()) for b in np.unique(bins))
    assert r["ece"] == pytest.approx(ece, abs=1e-12)
    # three classes that overlap (0.875 measured): the GP is far above chance (1/3), its NLL below the uniform log 3
    assert r["accuracy"] >= 0.7 and r["nll"] < math.log(3)


def test_baseline_cg_run_matches_the_dense_one(own_npz, tmp_path, cli):
    """``--solver cg`` on the same data: the same classes and metrics as the dense solve, to the CG
    tolerance, and its report (iterations, converged) in the JSON."""
    path, x_test, _ = own_npz
    runs = {}
    for solver in ("cholesky", "cg"):
        code, out, err = cli("baseline", "--data-npz", str(path), "--depth", "2", "--kernels", "nngp", "--solver",
                             solver, "--json", "--no-progress")
        assert code == 0, err
        runs[solver] = json.loads(out)["results"]["nngp"]
    dense, cg = runs["cholesky"], runs["cg"]
    assert cg["solver"] == "cg" and cg["converged"] is True and cg["iterations"] >= 1
    assert cg["accuracy"] == dense["accuracy"]
    assert cg["nll"] == pytest.approx(dense["nll"], rel=1e-3) and cg["ece"] == pytest.approx(dense["ece"], abs=1e-2)
