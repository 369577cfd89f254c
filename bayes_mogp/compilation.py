"""XLA's persistent compilation cache for the package's programs: a fit compiles once per shape, not once per run.

A MoGP or BNN fit spends much of a small run compiling: at n = 300 a short MoGP fit took 28 s in a fresh process,
about 25 s of it the compilation of its MAP and NUTS programs and of the many small programs of NumPyro's eager
initialisation, and 9.5 s with those programs read back from JAX's persistent cache (2 CPU cores).  NumPyro builds
new closures for every SVI and MCMC run, so JAX's in-memory cache misses even within one process (the
cross-validated selection of the MoGP's settings fits the same shapes on several folds, the report predicts
with several pruned networks); the persistent cache is keyed on the compiled program itself, so it hits.  With the
cache warm, ``bayes-mogp mogp`` on 300 points took 42 s against 66 s without it, the bare MNIST command
(``bayes-mogp mogp --dataset mnist --n-train 1000``) 178 s against 236 s, with the same results.

This is JAX's own cache (``jax_compilation_cache_dir``), switched on for every program, with a size cap and
least-recently-used eviction.  The CLI turns it on unless told not to (:func:`configure_from_environment`); in
Python it is the caller's choice (:func:`enable_compilation_cache`), since it is a process-wide JAX setting.

    BAYES_MOGP_COMPILATION_CACHE=off bayes-mogp ...       # no cache
    BAYES_MOGP_COMPILATION_CACHE=/scratch/jax bayes-mogp ...  # another directory
"""

from __future__ import annotations

import os

from .errors import InputError

__all__ = ["enable_compilation_cache", "configure_from_environment", "default_cache_dir", "ENV_VAR",
           "DEFAULT_MAX_BYTES"]

#: the environment variable the CLI reads: "off" (or 0, false, no) disables the cache, a path moves it
ENV_VAR = "BAYES_MOGP_COMPILATION_CACHE"
#: the cache's size cap in bytes; past it the least recently used programs are evicted (``bayes-mogp mogp`` on 300
#: points leaves 8.5 MB, the bare MNIST command with its selection 120 MB)
DEFAULT_MAX_BYTES = 2**30

_OFF = ("off", "0", "false", "no")


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/bayes-mogp/jax`` (``~/.cache/bayes-mogp/jax`` when the variable is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bayes-mogp", "jax")


def enable_compilation_cache(path: str | os.PathLike | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Turn on JAX's persistent compilation cache in ``path`` (default :func:`default_cache_dir`) for every
    program, whatever its compile time or size, capped at ``max_bytes`` (least recently used evicted first).

    A process-wide JAX setting: call it before the first compilation (JAX fixes the cache when it first
    compiles).  Returns the directory.  An uncreatable directory raises :class:`~bayes_mogp.errors.InputError`."""
    import jax

    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 2**20:
        raise InputError(f"max_bytes must be an integer of at least 1 MiB ({2**20}), got {max_bytes!r}")
    path = os.path.abspath(os.fspath(path) if path is not None else default_cache_dir())
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise InputError(f"compilation cache: cannot create the directory {path}: {exc.strerror or exc}") from exc
    if not os.access(path, os.W_OK):
        raise InputError(f"compilation cache: the directory {path} is not writable")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
    return path


def _jax_cache_dir() -> str | None:
    """The cache directory JAX has now (its ``JAX_COMPILATION_CACHE_DIR`` or a ``jax.config`` update), or None."""
    import jax

    return jax.config.jax_compilation_cache_dir or None


def configure_from_environment(log=None) -> str | None:
    """The CLI's cache: none when :data:`ENV_VAR` says "off"; the user's own when JAX already has a cache
    directory (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``), left as it is; otherwise :data:`ENV_VAR`'s
    directory, or :func:`default_cache_dir`.  A directory that cannot be created or written leaves the cache off
    with one line through ``log``; a command never fails for its cache.  Returns the directory in use, or None."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF:
        return None
    own = _jax_cache_dir()
    if own:
        return own
    try:
        return enable_compilation_cache(value or None)
    except InputError as exc:
        if log:
            log(f"{exc}; running without it (set {ENV_VAR}=off to silence this)")
        return None
