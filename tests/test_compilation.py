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


def _cli(args, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "bayes_mogp.cli.main", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)


def test_the_cli_caches_its_programs_and_never_fails_for_the_cache(tmp_path):
    """A command keeps its compiled programs under $XDG_CACHE_HOME/bayes-mogp/jax; a cache directory that cannot
    be created costs one line on stderr, not the run."""
    rng = np.random.default_rng(0)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=rng.normal(size=(20, 3)), y_train=rng.normal(size=20), x_test=rng.normal(size=(5, 3)),
             y_test=rng.normal(size=5))
    args = ["baseline", "--data-npz", str(data), "--depth", "1", "--kernels", "nngp", "--json"]
    out = _cli(args, {"XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(os.listdir(tmp_path / "xdg" / "bayes-mogp" / "jax")) > 0
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out2 = _cli(args, {compilation.ENV_VAR: str(blocker / "cache")}, tmp_path)
    assert out2.returncode == 0, out2.stderr[-2000:]
    lines = [ln for ln in out2.stderr.splitlines() if "compilation cache" in ln]
    assert len(lines) == 1 and "cannot create the directory" in lines[0] and "running without it" in lines[0]
    first, second = (json.loads(o.stdout)["results"]["nngp"] for o in (out, out2))
    assert {k: first[k] for k in ("rmse", "nll", "coverage_90")} == {k: second[k] for k in ("rmse", "nll", "coverage_90")}
