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
    assert set(_load_commands()) <= set(COMMANDS)
