r"""NUTS (with several chains, checkpoint and resume) and SVI for the BNNs of :mod:`.models`.

* :func:`make_kernel`: NUTS for continuous models; ``DiscreteHMCGibbs(NUTS, modified=True)`` when a
  layer's node variance is discrete (the Bernoulli prior): Gibbs updates of the gates alternate with NUTS
  steps on the continuous sites.
* :func:`run_nuts`: ``num_chains`` chains, vectorised on one device (``chain_method="vectorized"``) or
  ``"parallel"`` across devices (pmap), so the same code runs on CPU and GPU.  With ``checkpoint`` set
  the draws are taken in chunks of ``checkpoint_every``; after each chunk the sampler state
  (``mcmc.last_state``: positions, step size, mass matrix, PRNG keys) and the draws so far are written
  atomically.  :func:`resume_nuts` reloads them, sets ``mcmc.post_warmup_state`` and continues with
  ``run(state.rng_key)``: the continuation is the same Markov chain with the same keys, so the draws
  equal those of an uninterrupted run (tested), and a finished run can be continued with more draws.
* :func:`run_svi`: an ``AutoNormal`` (mean-field) guide fitted with Adam, the fast alternative.

Draws are returned grouped by chain: every array has shape ``(chains, draws, ...)``.
"""

from __future__ import annotations

import pickle
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import numpy as np
from numpyro.infer import MCMC, NUTS, DiscreteHMCGibbs

from ..io import atomic_path
from ..validation import check_choice, check_in_interval, check_int
from .models import BNNConfig, bnn_model

__all__ = ["NutsResult", "make_kernel", "run_nuts", "resume_nuts", "run_svi", "load_checkpoint"]

# ArviZ's sample_stats names for the NUTS fields we collect.
_NUTS_FIELDS = ("diverging", "potential_energy", "energy", "num_steps", "accept_prob", "adapt_state.step_size")
# Under DiscreteHMCGibbs the NUTS statistics live in the inner state (conditional on the gates).
_GIBBS_FIELDS = tuple(f"hmc_state.{f}" for f in _NUTS_FIELDS[:5])


@dataclass
class NutsResult:
    """Draws ``samples[name]`` of shape ``(chains, draws, ...)``, NUTS statistics ``stats`` likewise,
    wall-clock ``seconds`` (warmup included, compilation included), and the last sampler state."""

    samples: dict
    stats: dict
    seconds: float
    last_state: object
    settings: dict


def make_kernel(config: BNNConfig, model=None, *, target_accept_prob: float = 0.9, max_tree_depth: int = 10,
                dense_mass: bool = False):
    """NUTS on ``model`` (default :func:`bnn_model` with ``config`` bound), wrapped in DiscreteHMCGibbs
    when the prior is discrete."""
    check_in_interval("target_accept_prob", target_accept_prob, 0.0, 1.0, low_open=True, high_open=True)
    check_int("max_tree_depth", max_tree_depth, minimum=1, maximum=15)
    model = partial(model or bnn_model, config)
    nuts = NUTS(model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth,
                dense_mass=dense_mass)
    if config.has_discrete:
        return DiscreteHMCGibbs(nuts, modified=True)
    return nuts


def _fields(kernel):
    return _GIBBS_FIELDS if isinstance(kernel, DiscreteHMCGibbs) else _NUTS_FIELDS


def _to_host(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _stats(mcmc) -> dict:
    return {k.removeprefix("hmc_state."): np.asarray(v)
            for k, v in jax.device_get(mcmc.get_extra_fields(group_by_chain=True)).items()}


def _save_checkpoint(path, state, samples, stats, seconds, settings):
    with atomic_path(path, suffix=".pkl") as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump({"state": _to_host(state), "samples": samples, "stats": stats, "seconds": seconds,
                         "settings": settings}, fh)


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`run_nuts`; ``ValueError`` naming the file if missing/corrupt."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise ValueError(f"{path}: corrupt checkpoint ({type(exc).__name__})") from None


def _concat(a: dict, b: dict) -> dict:
    if not a:
        return b
    return {k: np.concatenate([a[k], b[k]], axis=1) for k in b}


def _mcmc(kernel, num_warmup, num_samples, num_chains, chain_method, progress):
    if chain_method == "vectorized" and isinstance(kernel, DiscreteHMCGibbs) and num_chains > 1:
        chain_method = jax.vmap  # NumPyro's Gibbs kernels refuse the string "vectorized" but accept vmap
    return MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=progress)


def run_nuts(key, config: BNNConfig, X, y, *, num_warmup: int = 500, num_samples: int = 500,
             num_chains: int = 4, chain_method: str = "vectorized", model=None, target_accept_prob: float = 0.9,
             max_tree_depth: int = 10, dense_mass: bool = False, checkpoint=None, checkpoint_every: int | None = None,
             progress: bool = False, stop_after: int | None = None) -> NutsResult:
    """Warmup, then ``num_samples`` draws per chain.  Same ``key``, same draws.

    ``checkpoint``: path of the checkpoint file (written after warmup + each chunk of
    ``checkpoint_every`` draws).  ``stop_after``: stop after that many draws (simulates an interruption;
    continue with :func:`resume_nuts`).
    """
    num_warmup = check_int("num_warmup", num_warmup, minimum=1)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    num_chains = check_int("num_chains", num_chains, minimum=1)
    check_choice("chain_method", chain_method, ("vectorized", "parallel", "sequential"))
    X = np.asarray(X)
    kernel = make_kernel(config, model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth,
                         dense_mass=dense_mass)
    settings = dict(num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                    chain_method=chain_method, target_accept_prob=target_accept_prob,
                    max_tree_depth=max_tree_depth, dense_mass=dense_mass)
    fields = _fields(kernel)
    t0 = time.perf_counter()
    if checkpoint is None and stop_after is None:
        mcmc = _mcmc(kernel, num_warmup, num_samples, num_chains, chain_method, progress)
        mcmc.run(key, X, y, extra_fields=fields)
        samples = _to_host(mcmc.get_samples(group_by_chain=True))
        stats = _stats(mcmc)
        return NutsResult(samples, stats, time.perf_counter() - t0, mcmc.last_state, settings)
    chunk = check_int("checkpoint_every", checkpoint_every or num_samples, minimum=1)
    first = min(chunk, num_samples, stop_after or num_samples)
    mcmc = _mcmc(kernel, num_warmup, first, num_chains, chain_method, progress)
    mcmc.run(key, X, y, extra_fields=fields)
    samples = _to_host(mcmc.get_samples(group_by_chain=True))
    stats = _stats(mcmc)
    seconds = time.perf_counter() - t0
    if checkpoint is not None:
        _save_checkpoint(checkpoint, mcmc.last_state, samples, stats, seconds, settings)
    if progress:
        print(f"nuts: warmup done, {first}/{num_samples} draws per chain, {seconds:.0f} s", file=sys.stderr, flush=True)
    return _continue(mcmc, kernel, X, y, samples, stats, seconds, settings, checkpoint, chunk,
                     stop_after=stop_after)


def _continue(mcmc, kernel, X, y, samples, stats, seconds, settings, checkpoint, chunk, *, stop_after=None):
    fields = _fields(kernel)
    target = settings["num_samples"] if stop_after is None else min(stop_after, settings["num_samples"])
    done = next(iter(samples.values())).shape[1]
    while done < target:
        n = min(chunk, target - done)
        if mcmc.num_samples != n:
            state = mcmc.last_state
            mcmc = _mcmc(kernel, 0, n, settings["num_chains"], settings["chain_method"], mcmc.progress_bar)
            mcmc.post_warmup_state = state
        else:
            mcmc.post_warmup_state = mcmc.last_state
        t0 = time.perf_counter()
        mcmc.run(mcmc.post_warmup_state.rng_key, X, y, extra_fields=fields)
        samples = _concat(samples, _to_host(mcmc.get_samples(group_by_chain=True)))
        stats = _concat(stats, _stats(mcmc))
        seconds += time.perf_counter() - t0
        done += n
        if checkpoint is not None:
            _save_checkpoint(checkpoint, mcmc.last_state, samples, stats, seconds, settings)
        if mcmc.progress_bar:
            print(f"nuts: {done}/{target} draws per chain, {seconds:.0f} s"
                  + (f", checkpoint {checkpoint}" if checkpoint is not None else ""), file=sys.stderr, flush=True)
    return NutsResult(samples, stats, seconds, mcmc.last_state, settings)


def resume_nuts(checkpoint, config: BNNConfig, X, y, *, num_samples: int | None = None, model=None,
                checkpoint_every: int | None = None, progress: bool = False) -> NutsResult:
    """Continue the run saved in ``checkpoint`` up to ``num_samples`` draws per chain in total (default:
    the number the run asked for; a larger number continues a finished run with more draws)."""
    ck = load_checkpoint(checkpoint)
    settings = dict(ck["settings"])
    if num_samples is not None:
        settings["num_samples"] = check_int("num_samples", num_samples, minimum=1)
    kernel = make_kernel(config, model, target_accept_prob=settings["target_accept_prob"],
                         max_tree_depth=settings["max_tree_depth"], dense_mass=settings["dense_mass"])
    chunk = checkpoint_every or settings["num_samples"]
    mcmc = _mcmc(kernel, 0, 1, settings["num_chains"], settings["chain_method"], progress)
    mcmc._last_state = jax.tree.map(jax.numpy.asarray, ck["state"])
    mcmc.num_samples = -1  # force a fresh MCMC object of the right chunk size in _continue
    return _continue(mcmc, kernel, np.asarray(X), y, ck["samples"], ck["stats"], ck["seconds"], settings,
                     checkpoint, chunk)


def run_svi(key, config: BNNConfig, X, y, *, num_steps: int = 2000, learning_rate: float = 0.01,
            num_samples: int = 500, model=None):
    """Mean-field ``AutoNormal`` SVI; returns ``(samples, losses)`` with samples shaped ``(1, num_samples, ...)``.

    Not for discrete priors (use NUTS/DiscreteHMCGibbs)."""
    from numpyro.infer import SVI, Predictive, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal
    from numpyro.optim import Adam

    if config.has_discrete:
        raise ValueError("run_svi needs a continuous prior; the Bernoulli prior is discrete: use run_nuts")
    num_steps = check_int("num_steps", num_steps, minimum=1)
    m = partial(model or bnn_model, config)
    guide = AutoNormal(m)
    svi = SVI(m, guide, Adam(learning_rate), Trace_ELBO())
    k1, k2 = jax.random.split(key)
    res = svi.run(k1, num_steps, np.asarray(X), y, progress_bar=False)
    pred = Predictive(m, guide=guide, params=res.params, num_samples=num_samples)
    draws = pred(k2, np.asarray(X), None)
    draws.pop("y", None)
    return {k: np.asarray(v)[None] for k, v in draws.items()}, np.asarray(res.losses)
