"""Spec files: every bad file is one ValueError line naming it (library) and exit code 2 (CLI); the specs the
library needs ship inside the package, one copy of each."""

import tomllib
from pathlib import Path

import pytest

from bayes_mogp import specs
from bayes_mogp.specs import builtin_spec, check_spec, list_specs, load_spec
from bayes_mogp.table1 import MODELS, SPEC_SCHEMA

ROOT = Path(__file__).resolve().parent.parent

GOOD = 'name = "t"\nrow = "d"\nprior = "horseshoe"\nactivation = "relu"\nd_out = 2\n[hyper]\nscale = 1.0\n'


def _bad_files(tmp_path):
    """(path, what the message must say) for each kind of bad spec file."""
    cases = []

    def write(name, content):
        p = tmp_path / name
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        return p

    cases.append((write("not_toml.toml", "[model\nprior = horseshoe\n"), "not valid TOML"))
    cases.append((write("binary.toml", b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), "not UTF-8"))
    cases.append((tmp_path / "missing.toml", "file not found"))
    cases.append((tmp_path / "sub" / "missing.toml", "file not found"))
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    cases.append((folder, "is a directory"))
    cases.append((tmp_path, "is a directory"))
    cases.append((write("model_is_a_string.toml", 'model = "horseshoe"\n'), "[model] must be a table"))
    cases.append((write("data_is_a_list.toml", "data = [1, 2]\n[model]\nprior = 'beta'\n"),
                  "[data] must be a table"))
    cases.append((write("inference_is_a_number.toml", "inference = 3\n"), "[inference] must be a table"))
    cases.append((write("name_is_a_number.toml", "name = 3\n"), "key name must be a string"))
    return cases


def test_bad_spec_files_raise_one_line_value_error_naming_the_file(tmp_path):
    for path, what in _bad_files(tmp_path):
        with pytest.raises(ValueError) as exc:
            load_spec(path)
        msg = str(exc.value)
        assert len(msg.splitlines()) == 1 and str(path) in msg and what in msg, (path, msg)


def test_unknown_name_lists_the_catalogue():
    with pytest.raises(ValueError, match="unknown model spec 'no_such_spec'.*known specs: .*table1_d"):
        load_spec("no_such_spec")


def test_schema_checks_types_missing_and_unknown_keys(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    spec = load_spec(good, schema=SPEC_SCHEMA)
    assert spec["hyper"] == {"scale": 1.0} and spec["_path"] == str(good)
    for edit, what in [
        (("d_out = 2", 'd_out = "two"'), "key d_out must be an integer, got 'two' (str)"),
        (("d_out = 2", "d_out = true"), "key d_out must be an integer, got True (bool)"),
        (("scale = 1.0", 'scale = "big"'), "key hyper.scale must be a number, got 'big' (str)"),
        (("[hyper]\nscale = 1.0\n", "hyper = 1.0\n"), "[hyper] must be a table"),
        (('prior = "horseshoe"\n', ""), "missing key prior"),
        (('name = "t"\n', 'name = "t"\nwidth = 3\n'), "unknown key(s) width"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(GOOD.replace(*edit))
        with pytest.raises(ValueError) as exc:
            load_spec(bad, schema=SPEC_SCHEMA)
        assert str(bad) in str(exc.value) and what in str(exc.value), str(exc.value)
    # integers pass where a number is expected; nested tables and optional keys
    check_spec({"a": 1, "t": {"x": 2}}, {"a": float, "t": {"x": int}, "opt": (str, type(None))})


def test_name_path_and_bare_file_name_resolve(tmp_path, monkeypatch):
    by_name = load_spec("table1_c")
    assert by_name["prior"] == "beta" and Path(by_name["_path"]).name == "table1_c.toml"
    assert load_spec("table1_c.toml")["_path"] == by_name["_path"]  # not in the working folder: catalogue
    own = tmp_path / "table1_c.toml"
    own.write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    assert load_spec("table1_c.toml")["prior"] == "horseshoe"  # a file here wins over the catalogue
    assert load_spec("table1_c")["prior"] == "beta"  # a bare name is a catalogue name


# ------------------------------------------------------------------------------------- the catalogue
def test_table1_specs_ship_with_the_package_one_copy():
    """``models/`` is the only copy: the wheel carries it as ``bayes_mogp/models`` (hatch force-include)."""
    with open(ROOT / "pyproject.toml", "rb") as fh:
        wheel = tomllib.load(fh)["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["force-include"].get("models") == "bayes_mogp/models"
    assert not (ROOT / "bayes_mogp" / "models").exists(), "a second copy of the specs in the source tree"
    assert specs.packaged_models_dir() == ROOT / "models"
    for model in MODELS:
        spec = builtin_spec(f"table1_{model}", schema=SPEC_SCHEMA)
        assert spec["row"] == model and Path(spec["_path"]).parent == ROOT / "models"
    assert {f"table1_{m}" for m in MODELS} <= set(list_specs("table1_"))


def test_table1_reads_its_own_specs_whatever_the_user_catalogue(tmp_path, monkeypatch):
    """``$BAYES_MOGP_MODELS`` points the CLI at the user's catalogue; Table 1 keeps the package's specs."""
    (tmp_path / "table1_d.toml").write_text(GOOD.replace('prior = "horseshoe"', 'prior = "iid"'))
    (tmp_path / "mine.toml").write_text("[model]\nprior = 'beta'\n")
    monkeypatch.setenv("BAYES_MOGP_MODELS", str(tmp_path))
    assert load_spec("mine")["model"] == {"prior": "beta"}
    assert load_spec("table1_d")["prior"] == "iid"  # the user's catalogue comes first for names
    assert builtin_spec("table1_d")["prior"] == "horseshoe"
    assert "table1_iid" in list_specs("table1_")  # the shipped catalogue is still listed

    import jax

    from bayes_mogp import table1

    class Stop(Exception):
        pass

    def record(name, width, **hyper):  # stands in for get_prior: which spec did measure_model read?
        raise Stop(name, hyper)

    monkeypatch.setattr(table1, "get_prior", record)
    with pytest.raises(Stop) as exc:
        table1.measure_model(jax.random.PRNGKey(0), "d", [10, 20], 100)
    assert exc.value.args == ("horseshoe", {"scale": 1.0})


def test_packaged_catalogue_in_an_installed_wheel(tmp_path, monkeypatch):
    """In a wheel, ``bayes_mogp/models`` exists and is used (simulated by pointing the module at a copy)."""
    shipped = tmp_path / "bayes_mogp" / "models"
    shipped.mkdir(parents=True)
    (shipped / "table1_d.toml").write_text((ROOT / "models" / "table1_d.toml").read_text())
    monkeypatch.setattr(specs, "_PACKAGED_MODELS", shipped)
    monkeypatch.setattr(specs, "_CHECKOUT_MODELS", tmp_path / "no_checkout")
    monkeypatch.delenv("BAYES_MOGP_MODELS", raising=False)
    assert specs.packaged_models_dir() == shipped and specs.models_dir() == shipped
    assert builtin_spec("table1_d")["_path"] == str(shipped / "table1_d.toml")
    with pytest.raises(ValueError, match="table1_c.toml: file not found.*reinstall"):
        builtin_spec("table1_c")


# --------------------------------------------------------------------------------------------- CLI
def test_cli_bad_spec_files_one_line_exit_2(tmp_path, cli):
    for path, what in _bad_files(tmp_path):
        code, out, err = cli("mogp", path, "--json")
        line = cli.one_line_error(err)
        assert code == 2 and out == "" and what in line and str(path) in line, (path, err)
    code, _, err = cli("mogp", "no_such_spec")
    assert code == 2 and "unknown model spec" in cli.one_line_error(err)


def test_cli_fit_bad_spec_file_exit_2(tmp_path, cli):
    bad = tmp_path / "bnn.toml"
    bad.write_text("[model\n")
    code, _, err = cli("fit", bad, "--out", tmp_path / "run")
    errors = [line for line in err.strip().splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "not valid TOML" in errors[0] and "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_spec_kind_of_the_catalogue():
    from bayes_mogp.cli._common import spec_kind

    expected = {"mogp_": "mogp", "bnn_": "bnn", "paper_": "bnn", "table1_": "table1"}
    for path in sorted((ROOT / "models").glob("*.toml")):
        kind = next(k for prefix, k in expected.items() if path.name.startswith(prefix))
        assert spec_kind(load_spec(path)) == kind, path.name
    assert spec_kind({"model": {"prior": "beta"}, "name": "x", "_path": "x.toml"}) is None  # keys do not tell


@pytest.mark.parametrize("argv, message", [
    (["fit", "mogp_mnist_horseshoe"],
     "models/mogp_mnist_horseshoe.toml is a MoGP spec: run `bayes-mogp mogp mogp_mnist_horseshoe`"),
    (["fit", "models/mogp_fashion_beta.toml"],
     "models/mogp_fashion_beta.toml is a MoGP spec: run `bayes-mogp mogp models/mogp_fashion_beta.toml`"),
    (["fit", "table1_d"], "models/table1_d.toml is a Table 1 spec, read by `bayes-mogp table1`"),
    (["mogp", "bnn_horseshoe"], "models/bnn_horseshoe.toml is a BNN spec: run `bayes-mogp fit bnn_horseshoe --out RUN`"),
    (["mogp", "paper_fashion_iid"], "models/paper_fashion_iid.toml is a BNN spec"),
    # a Table 1 spec has no [model] table: `mogp` used to run its defaults on MNIST (--max-minutes keeps that short)
    (["mogp", "table1_a", "--max-minutes", "0.0001"], "models/table1_a.toml is a Table 1 spec"),
])
def test_cli_spec_for_another_command_is_one_line_naming_that_command(argv, message, tmp_path, cli, monkeypatch):
    """A spec written for another command is refused in one line that says which command runs it, instead of a
    list of unknown keys (or, for `mogp` on a Table 1 spec, a run with the defaults)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("BAYES_MOGP_MODELS", raising=False)
    out = tmp_path / "run"
    code, stdout, err = cli(*argv, "--out", out, "--json")
    line = cli.one_line_error(err)
    assert code == 2 and stdout == "" and message in line, line
    assert "unknown key" not in line and not out.exists()


def test_cli_mogp_spec_with_an_unknown_table_is_one_line_exit_2(tmp_path, cli):
    bad = tmp_path / "mogp_extra.toml"
    bad.write_text('[model]\nprior = "horseshoe"\n[extra]\nx = 1\n')
    code, _, err = cli("mogp", bad, "--out", tmp_path / "run", "--max-minutes", "0.0001")
    line = cli.one_line_error(err)
    assert code == 2 and str(bad) in line and "unknown table(s) or key(s) ['extra']" in line, line
