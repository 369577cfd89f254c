"""The CLI protocol every command shares: --help, one-line errors with exit code 2."""

import subprocess
import sys

import pytest

from bayes_mogp.cli.main import COMMANDS, _load_commands, main


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "bayes-mogp" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(_load_commands()))
def test_every_command_has_help_seed_json(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--seed" in out and "--json" in out


def test_unknown_command_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "bayes_mogp.cli.main", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_commands_listed():
    """The registry and the command modules on disk are the same set, each module has the command protocol,
    and ``--help`` shows every command.  Fails if a command module is left out of ``COMMANDS`` or a listed
    one is missing."""
    import pathlib

    import bayes_mogp.cli as cli_pkg
    from bayes_mogp.cli.main import build_parser

    folder = pathlib.Path(cli_pkg.__file__).parent
    on_disk = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_") and p.stem != "main"}
    assert set(COMMANDS) == on_disk
    modules = _load_commands()
    assert list(modules) == list(COMMANDS)
    for name, module in modules.items():
        assert callable(module.run) and callable(module.add_arguments) and module.HELP, name
    help_text = build_parser().format_help()
    for name in COMMANDS:
        assert name in help_text, name


def _raising_report(monkeypatch, exc):
    from bayes_mogp.cli import report

    def run(args):
        raise exc

    monkeypatch.setattr(report, "run", run)


def test_package_input_errors_are_one_line_exit_2_and_other_errors_bugs(monkeypatch, cli):
    """InputError, InputTypeError and any ValueError/TypeError class that bayes_mogp defines (even one not derived
    from InputError) are one line on stderr with exit code 2; a plain TypeError is a bug (exit 1, traceback)."""
    from bayes_mogp.errors import InputError, InputTypeError

    class PackageValueError(ValueError):
        pass

    PackageValueError.__module__ = "bayes_mogp.somewhere"
    for exc in (InputError("x must have 3 columns"), InputTypeError("x must be numeric"),
                PackageValueError("bad value of something")):
        _raising_report(monkeypatch, exc)
        code, out, err = cli("report", "RUN", "--json")
        assert code == 2 and out == "" and str(exc) in cli.one_line_error(err), err
    _raising_report(monkeypatch, TypeError("unsupported operand"))
    code, out, err = cli("report", "RUN")
    assert code == 1 and "Traceback" in err and out == ""
