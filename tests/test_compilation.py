"""XLA's persistent compilation cache: the CLI's default, its opt-out, and refusals (bayes_mogp.compilation)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from bayes_mogp import compilation
from bayes_mogp.errors import InputError


def test_enable_refuses_a_bad_size_cap_and_an_uncreatable_directory(tmp_path):
    before = jax.config.jax_compilation_cache_dir
    with pytest.raises(InputError, match="max_bytes must be an integer of at least 1 MiB"):
        compilation.enable_compilation_cache(tmp_path, max_bytes=10)
    with pytest.raises(InputError, match="max_bytes"):
        compilation.enable_compilation_cache(tmp_path, max_bytes=True)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(InputError, match="cannot create the directory .*a_file/cache"):
        compilation.enable_compilation_cache(blocker / "cache")
    assert jax.config.jax_compilation_cache_dir == before  # refused before any setting changed


def test_the_environment_turns_it_off_or_keeps_the_users_own(monkeypatch):
    monkeypatch.setenv(compilation.ENV_VAR, "off")
    assert compilation.configure_from_environment() is None
    monkeypatch.setenv(compilation.ENV_VAR, "")
    # this suite sets its own cache directory (tests/conftest.py): a directory JAX already has is left as it is
    own = jax.config.jax_compilation_cache_dir
    assert own and compilation.configure_from_environment() == own
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert compilation.default_cache_dir() == os.path.join("/somewhere", "bayes-mogp", "jax")


def test_an_unusable_directory_costs_one_line_and_changes_nothing(monkeypatch, tmp_path):
    """A cache directory that cannot be created: one line through ``log``, the cache left off, no JAX setting
    changed (the suite's own cache directory is hidden from the function for the test)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(compilation.ENV_VAR, str(blocker / "cache"))
    monkeypatch.setattr(compilation, "_jax_cache_dir", lambda: None)
    before = jax.config.jax_compilation_cache_dir
    lines = []
    assert compilation.configure_from_environment(lines.append) is None
    assert len(lines) == 1 and "cannot create the directory" in lines[0] and "running without it" in lines[0]
    assert jax.config.jax_compilation_cache_dir == before


@pytest.mark.slow  # a CLI subprocess (about 8 s); the default pass tests the same functions in-process
def test_the_cli_keeps_its_programs_in_the_cache(tmp_path):
    """A command started without a JAX cache directory keeps its compiled programs where
    BAYES_MOGP_COMPILATION_CACHE says (the default, $XDG_CACHE_HOME/bayes-mogp/jax, by the same code path)."""
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=rng.normal(size=(20, 3)), y_train=rng.normal(size=20), x_test=rng.normal(size=(5, 3)),
             y_test=rng.normal(size=5))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env[compilation.ENV_VAR] = str(tmp_path / "cache")
    out = subprocess.run([sys.executable, "-m", "bayes_mogp.cli.main", "baseline", "--data-npz", str(data),
                          "--depth", "1", "--kernels", "nngp", "--json"], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["results"]["nngp"]["rmse"] > 0
    assert len(os.listdir(tmp_path / "cache")) > 0
