r"""The one NUTS driver of the package: several chains, chunks, checkpoints and exact resume, for any model.

:func:`sample` runs a NumPyro MCMC kernel (``NUTS``, or ``DiscreteHMCGibbs`` around it) on a model's
arguments and returns a :class:`NutsResult` whose arrays are grouped by chain, ``(chains, draws, ...)``.
The BNN (:func:`bayes_mogp.bnn.run_nuts`) and MoGP regression (:func:`bayes_mogp.mogp.model.run_nuts`)
call it; so can a user's own model.

* Chains: ``chain_method="auto"`` runs one chain per device (``"parallel"``, pmap) when there are at least
  as many devices as chains (several GPUs), else all chains vectorised on one device (``"vectorized"``,
  vmap); ``"sequential"`` runs them one after the other (what a small model on 2 CPU cores wants).  The
  sampling loop of a chunk is one compiled ``lax`` loop: no host round trip per draw (NumPyro's per-draw
  progress bar is not used for that reason; progress is one line per chunk through ``log``).
* Checkpoints: with a :class:`Checkpoint` path the draws are taken in chunks of ``Checkpoint.every``; after warmup
  and each chunk the sampler state (NumPyro's ``MCMC.last_state``: positions, step size, mass matrix,
  PRNG keys) and the draws so far are written atomically (:mod:`bayes_mogp.checkpoint`: arrays only, no
  pickle).  :func:`resume` reloads them, sets NumPyro's public ``MCMC.post_warmup_state`` and continues
  with ``run(state.rng_key)``: the same Markov chain with the same keys, so the draws equal those of an
  uninterrupted run, and a finished run can be continued with more draws.
* :func:`precision`: the context in which a run computes in float32 or float64.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np
from numpyro.infer import MCMC, DiscreteHMCGibbs

from .checkpoint import load_checkpoint, restore_state, save_checkpoint
from .errors import InputError, InputTypeError
from .validation import check_choice, check_int

__all__ = ["NutsResult", "Schedule", "Checkpoint", "sample", "resume", "precision", "resolve_chain_method", "raw_key", "CHAIN_METHODS",
           "DTYPES", "NUTS_FIELDS"]

CHAIN_METHODS = ("auto", "vectorized", "parallel", "sequential")
DTYPES = ("float32", "float64")
#: ArviZ's sample_stats names for the NUTS fields collected by default.
NUTS_FIELDS = ("diverging", "potential_energy", "energy", "num_steps", "accept_prob", "adapt_state.step_size")
# Under DiscreteHMCGibbs the NUTS statistics live in the inner state (conditional on the gates).
_GIBBS_FIELDS = tuple(f"hmc_state.{f}" for f in NUTS_FIELDS[:5])


@dataclass
class NutsResult:
    """Draws ``samples[name]`` of shape ``(chains, draws, ...)``, NUTS statistics ``stats`` likewise,
    wall-clock ``seconds`` (warmup and compilation included), the last sampler state, the settings, and
    ``chunks``: ``(draws per chain, seconds)`` of each chunk, the first one with the warmup."""

    samples: dict
    stats: dict
    seconds: float
    last_state: object
    settings: dict
    chunks: list = field(default_factory=list)


@dataclass(frozen=True)
class Schedule:
    """How many draws in how many chains, laid out how: the arguments of NumPyro's ``MCMC``, validated.

    ``num_warmup`` and ``num_samples`` per chain (>= 1), ``num_chains`` (>= 1), ``chain_method`` one of
    :data:`CHAIN_METHODS` (``"auto"``: :func:`resolve_chain_method`)."""

    num_warmup: int
    num_samples: int
    num_chains: int = 1
    chain_method: str = "auto"

    def __post_init__(self):
        for name in ("num_warmup", "num_samples", "num_chains"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        check_choice("chain_method", self.chain_method, CHAIN_METHODS)


class Checkpoint(NamedTuple):
    """Where a run saves its state (``path``), how many draws per chain each chunk holds (``every``; None: one
    chunk) and, to interrupt a run on purpose, after how many draws to stop (``stop_after``; continue with
    :func:`resume`)."""

    path: str | Path | None = None
    every: int | None = None
    stop_after: int | None = None


class _Draws(NamedTuple):
    """What a run has drawn so far: ``(chains, draws, ...)`` samples and stats, seconds, ``(draws, seconds)``
    per chunk."""

    samples: dict
    stats: dict
    seconds: float
    chunks: list


def precision(dtype: str | None):
    """Context in which JAX computes in ``dtype`` (``"float32"``/``"float64"``; None: leave as it is)."""
    if dtype is None:
        return contextlib.nullcontext()
    check_choice("dtype", dtype, DTYPES)
    return jax.enable_x64(dtype == "float64")


def current_dtype() -> str:
    """``"float64"`` when JAX's x64 mode is on, else ``"float32"``."""
    return "float64" if jax.config.jax_enable_x64 else "float32"


def resolve_chain_method(chain_method: str, num_chains: int) -> str:
    """``"auto"`` -> ``"parallel"`` when there are at least ``num_chains`` > 1 devices, else ``"vectorized"``."""
    check_choice("chain_method", chain_method, CHAIN_METHODS)
    if chain_method != "auto":
        return chain_method
    return "parallel" if num_chains > 1 and jax.local_device_count() >= num_chains else "vectorized"


def raw_key(key):
    """A raw ``uint32[2]`` key (typed keys are unwrapped), so that sampler states store plain arrays."""
    key = jax.numpy.asarray(key) if not hasattr(key, "dtype") else key
    if jax.numpy.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def _default_fields(kernel):
    return _GIBBS_FIELDS if isinstance(kernel, DiscreteHMCGibbs) else NUTS_FIELDS


def _to_host(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _stats(mcmc) -> dict:
    return {k.removeprefix("hmc_state."): np.asarray(v)
            for k, v in jax.device_get(mcmc.get_extra_fields(group_by_chain=True)).items()}


def _concat(a: dict, b: dict) -> dict:
    if not a:
        return b
    return {k: np.concatenate([a[k], b[k]], axis=1) for k in b}


def _mcmc(kernel, num_warmup, num_samples, num_chains, chain_method, progress_bar=False):
    if chain_method == "vectorized" and isinstance(kernel, DiscreteHMCGibbs) and num_chains > 1:
        # NumPyro's Gibbs kernels refuse the string "vectorized" but accept a callable.  jit(vmap), not a bare
        # vmap: under a bare vmap NumPyro's sampling loop donates its draw buffers where XLA cannot reuse them
        # ("Some donated buffers were not usable"); inside one jit the donation is moot.  Same draws.
        chain_method = lambda f: jax.jit(jax.vmap(f))  # noqa: E731
    return MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress_bar)


def sample(key, kernel, model_args=(), model_kwargs=None, *, schedule: Schedule, fields=None,
           settings: dict | None = None, checkpoint: Checkpoint | None = None, log=None, label: str = "nuts",
           progress_bar: bool = False, select_window: int | None = None) -> NutsResult:
    """Warmup, then ``schedule.num_samples`` draws per chain of ``kernel`` on ``model(*model_args, **model_kwargs)``.

    Same ``key``, same draws (chunked or not).  ``schedule``: a :class:`Schedule`.  ``fields``: the extra
    fields to collect (default: the NUTS statistics :data:`NUTS_FIELDS`, read inside a Gibbs kernel's HMC
    state).  ``settings``: extra entries recorded in the result's settings (and checkpoint).  ``checkpoint``:
    a :class:`Checkpoint` (written after warmup + each chunk of ``checkpoint.every`` draws when it has a
    path; ``stop_after`` interrupts the run).  ``log``: a callable receiving one line per chunk, prefixed
    by ``label``.  ``progress_bar``: NumPyro's per-draw progress bar on stderr (sequential chains: the
    sampling loop then returns to the host at every draw, which costs little only when a draw is slow).

    ``select_window`` (None: off; needs 2 or more chains): the warmup runs first, then every chain continues
    from the state of the chain whose last ``select_window`` warmup iterations have the highest mean log
    density (the lowest mean potential energy), that chain's adapted step size and mass matrix included; each
    chain keeps its own random numbers.  Chains that a warmup left in different modes then sample the best mode
    found, and R-hat across them measures the mixing within it, not whether the modes agree: the settings
    record ``chain_selection`` (each chain's mean warmup log density over the window, the chain selected) keeps
    what the warmup found.  The draws differ from a run without selection (the warmup and the sampling take
    two keys split from ``key``).
    """
    if not isinstance(schedule, Schedule):
        raise InputTypeError(f"schedule must be a bayes_mogp.nuts.Schedule, got {type(schedule).__name__}")
    ck = _as_checkpoint(checkpoint)
    num_warmup, num_samples, num_chains = schedule.num_warmup, schedule.num_samples, schedule.num_chains
    chain_method = resolve_chain_method(schedule.chain_method, num_chains)
    settings = dict(num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                    chain_method=chain_method, **(settings or {}), dtype=current_dtype(),
                    devices=jax.local_device_count(), backend=jax.default_backend())
    fields = tuple(fields) if fields is not None else _default_fields(kernel)
    model_kwargs = dict(model_kwargs or {})
    chunk = ck.every or num_samples
    first = min(chunk, num_samples, ck.stop_after or num_samples)
    t0 = time.perf_counter()
    mcmc = _mcmc(kernel, num_warmup, first, num_chains, chain_method, progress_bar)
    if select_window is None:
        mcmc.run(raw_key(key), *model_args, extra_fields=fields, **model_kwargs)
    else:
        k_warmup, k_run = jax.random.split(raw_key(key))
        settings["chain_selection"] = _warmup_and_select(mcmc, k_warmup, model_args, model_kwargs, num_chains,
                                                         num_warmup, select_window)
        mcmc.run(k_run, *model_args, extra_fields=fields, **model_kwargs)
    samples = _to_host(mcmc.get_samples(group_by_chain=True))
    stats = _stats(mcmc)
    seconds = time.perf_counter() - t0
    draws = _Draws(samples, stats, seconds, [(first, seconds)])
    if ck.path is not None:
        save_checkpoint(ck.path, mcmc.last_state, samples, stats, seconds=seconds, settings=settings,
                        chunks=draws.chunks)
    if log is not None:
        log(f"{label}: warmup ({num_warmup}) + {first}/{num_samples} draws x {num_chains} chains "
            f"({chain_method}, {settings['dtype']}, {settings['backend']}) in {seconds:.1f} s")
    return _continue(mcmc, mcmc.last_state, (model_args, model_kwargs, fields), draws, settings, ck._replace(
        every=chunk), log, label)


def _warmup_and_select(mcmc, key, model_args, model_kwargs, num_chains: int, num_warmup: int, window: int) -> dict:
    """Run ``mcmc``'s warmup with ``key``, then set its post-warmup state to the best chain's in every chain
    (:func:`sample`'s ``select_window``); returns the record of what was selected."""
    window = check_int("select_window", window, minimum=1, maximum=num_warmup)
    if num_chains < 2:
        raise InputError(f"select_window needs 2 or more chains to select among, got num_chains={num_chains}")
    mcmc.warmup(key, *model_args, collect_warmup=True, extra_fields=("potential_energy",), **model_kwargs)
    potential = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["potential_energy"], dtype=np.float64)
    tail = potential[:, -window:].mean(axis=1)
    best = int(np.argmin(tail))
    state = mcmc.post_warmup_state
    leaves = jax.tree.leaves(state)
    if not all(np.ndim(x) >= 1 and np.shape(x)[0] == num_chains for x in leaves):
        raise InputError("select_window needs a sampler state with one row per chain (chain_method 'vectorized' "
                         "or 'sequential')")
    mcmc.post_warmup_state = jax.tree.map(lambda x: jax.numpy.broadcast_to(x[best], x.shape), state)
    return {"window": window, "warmup_log_density": [float(-v) for v in tail], "selected": best}


def _as_checkpoint(checkpoint) -> Checkpoint:
    if checkpoint is None:
        return Checkpoint()
    if not isinstance(checkpoint, Checkpoint):
        raise InputTypeError(f"checkpoint must be None or a bayes_mogp.nuts.Checkpoint(path, every, stop_after), "
                             f"got {type(checkpoint).__name__}")
    if checkpoint.every is not None:
        check_int("checkpoint_every", checkpoint.every, minimum=1)
    if checkpoint.stop_after is not None:
        check_int("stop_after", checkpoint.stop_after, minimum=1)
    return checkpoint


def _continue(mcmc, state, model, draws: _Draws, settings: dict, ck: Checkpoint, log, label: str) -> NutsResult:
    """Draw chunks of ``ck.every`` draws from ``state`` on (NumPyro's ``post_warmup_state``) up to the target;
    ``model``: ``(model_args, model_kwargs, fields)``."""
    model_args, model_kwargs, fields = model
    target = settings["num_samples"] if ck.stop_after is None else min(ck.stop_after, settings["num_samples"])
    samples, stats, seconds, chunks = draws
    done = next(iter(samples.values())).shape[1]
    while done < target:
        n = min(ck.every, target - done)
        mcmc.post_warmup_state = state
        mcmc.num_samples = n  # the same MCMC object: its compiled sampling loop is reused for equal chunks
        t0 = time.perf_counter()
        mcmc.run(state.rng_key, *model_args, extra_fields=fields, **model_kwargs)
        state = mcmc.last_state
        samples = _concat(samples, _to_host(mcmc.get_samples(group_by_chain=True)))
        stats = _concat(stats, _stats(mcmc))
        dt = time.perf_counter() - t0
        seconds += dt
        done += n
        chunks = chunks + [(n, dt)]
        if ck.path is not None:
            save_checkpoint(ck.path, mcmc.last_state, samples, stats, seconds=seconds, settings=settings,
                            chunks=chunks)
        if log is not None:
            log(f"{label}: {done}/{target} draws per chain, {seconds:.1f} s"
                + (f", checkpoint {ck.path}" if ck.path is not None else ""))
    return NutsResult(samples, stats, seconds, state, settings, chunks)


def resume(checkpoint, kernel, model_args=(), model_kwargs=None, *, num_samples: int | None = None,
           checkpoint_every: int | None = None, fields=None, log=None, label: str = "nuts") -> NutsResult:
    """Continue the run saved in ``checkpoint`` up to ``num_samples`` draws per chain in total (default: the
    number the run asked for; a larger number continues a finished run with more draws).  ``checkpoint``: its
    path, or what :func:`bayes_mogp.checkpoint.load_checkpoint` read from it (not read again); the
    continuation is checkpointed to the same path.

    ``kernel`` and the model arguments must be those of the interrupted run, in the precision it ran in
    (``precision(load_checkpoint(checkpoint)["settings"]["dtype"])``); the number of chains is the
    checkpoint's.  The sampler state is rebuilt on the tree structure of a fresh initial state of the same
    kernel (:func:`bayes_mogp.checkpoint.restore_state`); with fewer devices than when the run started,
    parallel chains continue vectorised on one device (same chains).
    """
    ck = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    checkpoint = ck["path"]
    settings = dict(ck["settings"])
    if num_samples is not None:
        settings["num_samples"] = check_int("num_samples", num_samples, minimum=1)
    done = next(iter(ck["samples"].values())).shape[1]
    chunk = check_int("checkpoint_every", checkpoint_every or settings["num_samples"], minimum=1)
    model_kwargs = dict(model_kwargs or {})
    method = settings["chain_method"]
    if method == "parallel" and jax.local_device_count() < settings["num_chains"]:
        method = "vectorized"
    state = restore_state(ck, _template_state(kernel, model_args, model_kwargs, settings["num_chains"], method,
                                              settings.get("num_warmup", 0)))
    if done >= settings["num_samples"]:
        return NutsResult(ck["samples"], ck["stats"], ck["seconds"], state, settings, ck["chunks"])
    mcmc = _mcmc(kernel, 0, min(chunk, settings["num_samples"] - done), settings["num_chains"], method)
    fields = tuple(fields) if fields is not None else _default_fields(kernel)
    draws = _Draws(ck["samples"], ck["stats"], ck["seconds"], ck["chunks"])
    return _continue(mcmc, state, (model_args, model_kwargs, fields), draws, settings,
                     Checkpoint(checkpoint, chunk), log, label)


def _template_state(kernel, model_args, model_kwargs, num_chains: int, chain_method: str, num_warmup: int = 0):
    """Shapes and dtypes (``jax.ShapeDtypeStruct``) of a fresh initial state of ``kernel`` with the chain
    layout the sampler will use; a checkpoint must match its tree structure and leaves.

    ``num_warmup``: the interrupted run's.  NumPyro builds the kernel's transition for that many warmup
    steps (the adaptation's branch is in the compiled program only when it is positive), so the resumed
    chunks run the same program as the uninterrupted run's later chunks, not one compiled without it
    (which any compiler may round differently).

    ``kernel.init`` is traced abstractly (``jax.eval_shape``): nothing is compiled or run, but the kernel
    is set up (NumPyro's ``MCMC`` then skips its own ``init``).  Vectorised NUTS chains take the batched
    init, which also sets up NumPyro's vmapped transition; pmap / vmap-wrapped kernels run one chain per
    call, so their state is the single-chain one with a leading chain axis."""
    key = jax.random.PRNGKey(0)  # shapes only (eval_shape): no value of this key reaches a draw

    def init(k):
        return kernel.init(k, num_warmup, None, tuple(model_args), dict(model_kwargs))

    if num_chains > 1 and chain_method == "vectorized" and not isinstance(kernel, DiscreteHMCGibbs):
        return jax.eval_shape(init, jax.random.split(key, num_chains))
    state = jax.eval_shape(init, key)
    if num_chains > 1:
        state = jax.tree.map(lambda a: jax.ShapeDtypeStruct((num_chains,) + tuple(a.shape), a.dtype), state)
    return state
