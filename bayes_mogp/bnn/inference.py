r"""NUTS (several chains, checkpoint and exact resume) and SVI for the BNNs of :mod:`.models`.

* :func:`make_kernel`: NUTS for continuous models; ``DiscreteHMCGibbs(NUTS, modified=True)`` when a
  layer's node variance is discrete (the Bernoulli prior): Gibbs updates of the gates alternate with NUTS
  steps on the continuous sites.
* :func:`run_nuts`: ``num_chains`` chains, ``chain_method="auto"``: one process per device
  (``"parallel"``, pmap) when there are at least as many devices as chains (several GPUs), else all
  chains vectorised on one device (``"vectorized"``, vmap).  The whole sampling loop of a chunk runs
  inside one compiled ``lax`` loop: no host round trip per draw (NumPyro's per-draw progress bar is not
  used for that reason; progress is one line per chunk).  With ``checkpoint`` set the draws are taken
  in chunks of ``checkpoint_every``; after warmup + each chunk the sampler state (NumPyro's
  ``MCMC.last_state``: positions, step size, mass matrix, PRNG keys) and the draws so far are written
  atomically (:mod:`.checkpoint`: arrays only, no pickle).  :func:`resume_nuts` reloads them, sets
  NumPyro's public ``MCMC.post_warmup_state`` and continues with ``run(state.rng_key)``: the
  continuation is the same Markov chain with the same keys, so the draws equal those of an
  uninterrupted run (tested), and a finished run can be continued with more draws.
* :func:`run_svi`: stochastic variational inference with an ``AutoNormal`` (mean-field) or
  ``AutoLowRankMultivariateNormal`` (rank-``r`` plus diagonal covariance) guide, fitted with Adam; the
  fast alternative.  Its draws are independent draws from the fitted guide.
* :func:`precision`: the context in which a fit runs in float32 (the default of :func:`.fit`: a BNN
  does not need float64, and float32 halves memory and roughly doubles CPU throughput) or float64.

Draws are returned grouped by chain: every array has shape ``(chains, draws, ...)``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS, DiscreteHMCGibbs

from ..validation import check_choice, check_in_interval, check_int, check_positive
from .checkpoint import load_checkpoint, restore_state, save_checkpoint
from .models import BNNConfig, bnn_model
from ..errors import InputError

__all__ = ["NutsResult", "SviResult", "make_kernel", "run_nuts", "resume_nuts", "run_svi", "precision",
           "resolve_chain_method", "CHAIN_METHODS", "DTYPES", "GUIDES"]

CHAIN_METHODS = ("auto", "vectorized", "parallel", "sequential")
DTYPES = ("float32", "float64")
GUIDES = ("normal", "low_rank")
# ArviZ's sample_stats names for the NUTS fields we collect.
_NUTS_FIELDS = ("diverging", "potential_energy", "energy", "num_steps", "accept_prob", "adapt_state.step_size")
# Under DiscreteHMCGibbs the NUTS statistics live in the inner state (conditional on the gates).
_GIBBS_FIELDS = tuple(f"hmc_state.{f}" for f in _NUTS_FIELDS[:5])


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


@dataclass
class SviResult:
    """Draws from the fitted guide ``samples[name]`` ``(1, num_samples, ...)``, the loss (negative ELBO)
    per step ``losses``, wall-clock ``seconds``, the guide's parameters and the settings."""

    samples: dict
    losses: np.ndarray
    seconds: float
    params: dict
    settings: dict
    stats: dict = field(default_factory=dict)


def precision(dtype: str | None):
    """Context in which JAX computes in ``dtype`` (``"float32"``/``"float64"``; None: leave as it is)."""
    if dtype is None:
        return contextlib.nullcontext()
    check_choice("dtype", dtype, DTYPES)
    return jax.enable_x64(dtype == "float64")


def _current_dtype() -> str:
    return "float64" if jax.config.jax_enable_x64 else "float32"


def resolve_chain_method(chain_method: str, num_chains: int) -> str:
    """``"auto"`` -> ``"parallel"`` when there are at least ``num_chains`` > 1 devices, else ``"vectorized"``."""
    check_choice("chain_method", chain_method, CHAIN_METHODS)
    if chain_method != "auto":
        return chain_method
    return "parallel" if num_chains > 1 and jax.local_device_count() >= num_chains else "vectorized"


def _raw_key(key):
    """A raw ``uint32[2]`` key (typed keys are unwrapped), so that sampler states store plain arrays."""
    key = jnp.asarray(key) if not hasattr(key, "dtype") else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


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


def _concat(a: dict, b: dict) -> dict:
    if not a:
        return b
    return {k: np.concatenate([a[k], b[k]], axis=1) for k in b}


def _mcmc(kernel, num_warmup, num_samples, num_chains, chain_method):
    if chain_method == "vectorized" and isinstance(kernel, DiscreteHMCGibbs) and num_chains > 1:
        # NumPyro's Gibbs kernels refuse the string "vectorized" but accept a callable.  jit(vmap), not a bare
        # vmap: under a bare vmap NumPyro's sampling loop donates its draw buffers where XLA cannot reuse them
        # ("Some donated buffers were not usable"); inside one jit the donation is moot.  Same draws.
        chain_method = lambda f: jax.jit(jax.vmap(f))  # noqa: E731
    return MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method=chain_method, progress_bar=False)


def _model_arrays(X, y):
    """Inputs and targets as JAX arrays in the current precision."""
    X = jnp.asarray(np.asarray(X), dtype=jnp.result_type(float))
    y = np.asarray(y)
    y = jnp.asarray(y, dtype=jnp.result_type(int) if y.dtype.kind in "iub" else jnp.result_type(float))
    return X, y


def run_nuts(key, config: BNNConfig, X, y, *, num_warmup: int = 500, num_samples: int = 500,
             num_chains: int = 4, chain_method: str = "auto", model=None, target_accept_prob: float = 0.9,
             max_tree_depth: int = 10, dense_mass: bool = False, dtype: str | None = None, checkpoint=None,
             checkpoint_every: int | None = None, log=None, stop_after: int | None = None) -> NutsResult:
    """Warmup, then ``num_samples`` draws per chain.  Same ``key``, same draws (chunked or not).

    ``X`` ``(n, d_in)`` model inputs; ``y`` labels ``(n,)`` or standardised targets ``(n, k)``.
    ``dtype``: run in float32 / float64 (None: JAX's current setting).  ``checkpoint``: path of the
    checkpoint file (written after warmup + each chunk of ``checkpoint_every`` draws).  ``log``: a
    callable receiving one line per chunk.  ``stop_after``: stop after that many draws (an
    interruption; continue with :func:`resume_nuts`).
    """
    num_warmup = check_int("num_warmup", num_warmup, minimum=1)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    num_chains = check_int("num_chains", num_chains, minimum=1)
    chain_method = resolve_chain_method(chain_method, num_chains)
    if checkpoint_every is not None:
        check_int("checkpoint_every", checkpoint_every, minimum=1)
    with precision(dtype):
        X, y = _model_arrays(X, y)
        kernel = make_kernel(config, model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth,
                             dense_mass=dense_mass)
        settings = dict(num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                        chain_method=chain_method, target_accept_prob=target_accept_prob,
                        max_tree_depth=max_tree_depth, dense_mass=dense_mass, dtype=_current_dtype(),
                        devices=jax.local_device_count(), backend=jax.default_backend())
        fields = _fields(kernel)
        chunk = checkpoint_every or num_samples
        first = min(chunk, num_samples, stop_after or num_samples)
        t0 = time.perf_counter()
        mcmc = _mcmc(kernel, num_warmup, first, num_chains, chain_method)
        mcmc.run(_raw_key(key), X, y, extra_fields=fields)
        samples = _to_host(mcmc.get_samples(group_by_chain=True))
        stats = _stats(mcmc)
        seconds = time.perf_counter() - t0
        chunks = [(first, seconds)]
        if checkpoint is not None:
            save_checkpoint(checkpoint, mcmc.last_state, samples, stats, seconds=seconds, settings=settings,
                            chunks=chunks)
        if log is not None:
            log(f"nuts: warmup ({num_warmup}) + {first}/{num_samples} draws x {num_chains} chains "
                f"({chain_method}, {settings['dtype']}, {settings['backend']}) in {seconds:.1f} s")
        return _continue(mcmc, mcmc.last_state, X, y, fields, samples, stats, seconds, settings, checkpoint,
                         chunk, log, chunks, stop_after=stop_after)


def _continue(mcmc, state, X, y, fields, samples, stats, seconds, settings, checkpoint, chunk, log, chunks, *,
              stop_after=None):
    """Draw chunks of ``chunk`` draws from ``state`` on (NumPyro's ``post_warmup_state``) up to the target."""
    target = settings["num_samples"] if stop_after is None else min(stop_after, settings["num_samples"])
    done = next(iter(samples.values())).shape[1]
    while done < target:
        n = min(chunk, target - done)
        mcmc.post_warmup_state = state
        mcmc.num_samples = n  # the same MCMC object: its compiled sampling loop is reused for equal chunks
        t0 = time.perf_counter()
        mcmc.run(state.rng_key, X, y, extra_fields=fields)
        state = mcmc.last_state
        samples = _concat(samples, _to_host(mcmc.get_samples(group_by_chain=True)))
        stats = _concat(stats, _stats(mcmc))
        dt = time.perf_counter() - t0
        seconds += dt
        done += n
        chunks = chunks + [(n, dt)]
        if checkpoint is not None:
            save_checkpoint(checkpoint, mcmc.last_state, samples, stats, seconds=seconds, settings=settings,
                            chunks=chunks)
        if log is not None:
            log(f"nuts: {done}/{target} draws per chain, {seconds:.1f} s"
                + (f", checkpoint {checkpoint}" if checkpoint is not None else ""))
    return NutsResult(samples, stats, seconds, state, settings, chunks)


def resume_nuts(checkpoint, config: BNNConfig, X, y, *, num_samples: int | None = None, model=None,
                checkpoint_every: int | None = None, log=None) -> NutsResult:
    """Continue the run saved in ``checkpoint`` up to ``num_samples`` draws per chain in total (default:
    the number the run asked for; a larger number continues a finished run with more draws).

    ``X``, ``y`` must be the data of the interrupted run; the precision, number of chains and NUTS
    settings are the checkpoint's.  The sampler state is rebuilt on the tree structure of a fresh
    initial state of the same kernel (:func:`.checkpoint.restore_state`).
    """
    ck = load_checkpoint(checkpoint)
    settings = dict(ck["settings"])
    if num_samples is not None:
        settings["num_samples"] = check_int("num_samples", num_samples, minimum=1)
    done = next(iter(ck["samples"].values())).shape[1]
    chunk = check_int("checkpoint_every", checkpoint_every or settings["num_samples"], minimum=1)
    with precision(settings["dtype"]):
        X, y = _model_arrays(X, y)
        kernel = make_kernel(config, model, target_accept_prob=settings["target_accept_prob"],
                             max_tree_depth=settings["max_tree_depth"], dense_mass=settings["dense_mass"])
        method = settings["chain_method"]
        if method == "parallel" and jax.local_device_count() < settings["num_chains"]:
            method = "vectorized"  # fewer devices than when the run started: same chains, one device
        state = restore_state(ck, _template_state(kernel, X, y, settings["num_chains"], method))
        if done >= settings["num_samples"]:
            return NutsResult(ck["samples"], ck["stats"], ck["seconds"], state, settings, ck["chunks"])
        mcmc = _mcmc(kernel, 0, min(chunk, settings["num_samples"] - done), settings["num_chains"], method)
        return _continue(mcmc, state, X, y, _fields(kernel), ck["samples"], ck["stats"], ck["seconds"], settings,
                         checkpoint, chunk, log, ck["chunks"])


def _template_state(kernel, X, y, num_chains: int, chain_method: str):
    """Shapes and dtypes (``jax.ShapeDtypeStruct``) of a fresh initial state of ``kernel`` with the chain
    layout the sampler will use; a checkpoint must match its tree structure and leaves.

    ``kernel.init`` is traced abstractly (``jax.eval_shape``): nothing is compiled or run, but the kernel
    is set up (NumPyro's ``MCMC`` then skips its own ``init``).  Vectorised NUTS chains take the batched
    init, which also sets up NumPyro's vmapped transition; pmap / vmap-wrapped kernels run one chain per
    call, so their state is the single-chain one with a leading chain axis."""
    key = jax.random.PRNGKey(0)
    if num_chains > 1 and chain_method == "vectorized" and not isinstance(kernel, DiscreteHMCGibbs):
        return jax.eval_shape(lambda k: kernel.init(k, 0, None, (X, y), {}), jax.random.split(key, num_chains))
    state = jax.eval_shape(lambda k: kernel.init(k, 0, None, (X, y), {}), key)
    if num_chains > 1:
        state = jax.tree.map(lambda a: jax.ShapeDtypeStruct((num_chains,) + tuple(a.shape), a.dtype), state)
    return state


def run_svi(key, config: BNNConfig, X, y, *, guide: str = "normal", rank: int | None = None,
            num_steps: int = 5000, learning_rate: float = 0.01, num_samples: int = 500, model=None,
            dtype: str | None = None, log=None) -> SviResult:
    r"""Fit a variational guide by maximising the ELBO with Adam, then draw ``num_samples`` from it.

    ``guide``: ``"normal"`` (:class:`numpyro.infer.autoguide.AutoNormal`, mean-field) or ``"low_rank"``
    (:class:`~numpyro.infer.autoguide.AutoLowRankMultivariateNormal`, covariance
    :math:`WW^\top + D` of rank ``rank``, default :math:`\lceil\sqrt{D}\rceil` capped at 20, :math:`D`
    the number of weights and biases).  The loss is NumPyro's ``Trace_ELBO`` (one Monte Carlo sample per step); the whole
    optimisation is one compiled loop.  Draws include every deterministic site (``lam{l}``,
    ``lam_sorted{l}``, ``tau{l}``), shaped ``(1, num_samples, ...)``.  Not for discrete priors.
    """
    from numpyro.infer import SVI, Predictive, Trace_ELBO
    from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal
    from numpyro.optim import Adam

    if config.has_discrete:
        raise InputError("SVI needs a continuous prior; the Bernoulli prior is discrete: use method='nuts'")
    check_choice("guide", guide, GUIDES)
    num_steps = check_int("num_steps", num_steps, minimum=1)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    check_positive("learning_rate", learning_rate)
    m = partial(model or bnn_model, config)
    with precision(dtype):
        X, y = _model_arrays(X, y)
        if guide == "normal":
            g = AutoNormal(m)
        else:
            rank = _default_rank(config) if rank is None else check_int("rank", rank, minimum=1)
            g = AutoLowRankMultivariateNormal(m, rank=rank)
        svi = SVI(m, g, Adam(learning_rate), Trace_ELBO())
        k1, k2 = jax.random.split(_raw_key(key))
        t0 = time.perf_counter()
        res = svi.run(k1, num_steps, X, y, progress_bar=False)
        sites = [k for k, v in g.prototype_trace.items()  # every latent and deterministic site of the model
                 if v["type"] == "deterministic" or (v["type"] == "sample" and not v["is_observed"])]
        predictive = Predictive(m, guide=g, params=res.params, num_samples=num_samples, return_sites=sites,
                                parallel=True)
        draws = jax.jit(predictive)(k2, X, None)  # one compiled call, not op-by-op
        samples = {k: np.asarray(v)[None] for k, v in jax.device_get(draws).items()}
        seconds = time.perf_counter() - t0
        losses = np.asarray(res.losses)
        settings = dict(method="svi", guide=guide, rank=getattr(g, "rank", None), num_steps=num_steps,
                        learning_rate=learning_rate, num_samples=num_samples, dtype=_current_dtype(),
                        backend=jax.default_backend())
    if log is not None:
        log(f"svi: {guide} guide, {num_steps} steps in {seconds:.1f} s, final loss {losses[-1]:.1f}")
    return SviResult(samples, losses, seconds, _to_host(res.params), settings)


def _default_rank(config: BNNConfig) -> int:
    r""":math:`\lceil\sqrt{D}\rceil` capped at 20, :math:`D` the number of weights and biases."""
    dims = (config.d_in,) + config.widths + (config.d_out,)
    num = sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))
    return int(min(20, max(1, np.ceil(np.sqrt(num)))))
