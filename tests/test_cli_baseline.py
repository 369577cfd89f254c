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
