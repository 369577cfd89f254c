r"""NUTS and SVI for the BNNs of :mod:`.models`.

* :func:`make_kernel`: NUTS for continuous models; ``DiscreteHMCGibbs(NUTS, modified=True)`` when a
  layer's node variance is discrete (the Bernoulli prior): Gibbs updates of the gates alternate with NUTS
  steps on the continuous sites.
* :func:`run_nuts` / :func:`resume_nuts`: the package's one NUTS driver (:mod:`bayes_mogp.nuts`: chains
  vectorised on one device or one per device, chunks, checkpoints, exact resume) on the BNN's kernel and
  data, in the precision of the fit.
* :func:`run_svi`: stochastic variational inference with an ``AutoNormal`` (mean-field) or
  ``AutoLowRankMultivariateNormal`` (rank-``r`` plus diagonal covariance) guide, fitted with Adam; the
  fast alternative.  Its draws are independent draws from the fitted guide.
* :func:`precision`: the context in which a fit runs in float32 (the default of :func:`.fit`: a BNN
  does not need float64, and float32 halves memory and roughly doubles CPU throughput) or float64.

Draws are returned grouped by chain: every array has shape ``(chains, draws, ...)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import NUTS, DiscreteHMCGibbs

from .. import nuts
from ..checkpoint import load_checkpoint
from ..errors import InputError, InputTypeError
from ..nuts import CHAIN_METHODS, DTYPES, NutsResult, current_dtype, precision, raw_key, resolve_chain_method
from ..validation import check_bool, check_choice, check_in_interval, check_int, check_positive
from .models import BNNConfig, bnn_model

__all__ = ["NutsResult", "NutsSettings", "SviResult", "make_kernel", "run_nuts", "resume_nuts", "run_svi", "precision",
           "resolve_chain_method", "CHAIN_METHODS", "DTYPES", "GUIDES"]

GUIDES = ("normal", "low_rank")


@dataclass(frozen=True)
class NutsSettings:
    """A BNN's NUTS run: draws per chain (``num_warmup``, ``num_samples``), ``num_chains`` and their layout
    (``chain_method``, :data:`CHAIN_METHODS`), the kernel (``target_accept_prob`` in (0, 1),
    ``max_tree_depth`` 1 to 15, ``dense_mass``) and ``checkpoint_every`` (draws per chunk when the run is
    checkpointed).  Validated in ``__post_init__``; ``to_dict``/``from_dict`` are the spec's ``[inference]``
    keys."""

    num_warmup: int = 500
    num_samples: int = 500
    num_chains: int = 4
    chain_method: str = "auto"
    target_accept_prob: float = 0.9
    max_tree_depth: int = 10
    dense_mass: bool = False
    checkpoint_every: int = 100

    def __post_init__(self):
        nuts.Schedule(self.num_warmup, self.num_samples, self.num_chains, self.chain_method)  # validates those
        for name, high in (("num_warmup", None), ("num_samples", None), ("num_chains", None),
                           ("max_tree_depth", 15), ("checkpoint_every", None)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1, maximum=high))
        object.__setattr__(self, "target_accept_prob", check_in_interval(
            "target_accept_prob", self.target_accept_prob, 0.0, 1.0, low_open=True, high_open=True))
        check_bool("dense_mass", self.dense_mass)

    @property
    def schedule(self) -> nuts.Schedule:
        return nuts.Schedule(self.num_warmup, self.num_samples, self.num_chains, self.chain_method)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "NutsSettings":
        """The fields of ``d`` that name one (a spec's ``[inference]`` table holds other keys too)."""
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


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


def make_kernel(config: BNNConfig, model=None, *, target_accept_prob: float = 0.9, max_tree_depth: int = 10,
                dense_mass: bool = False):
    """NUTS on ``model`` (default :func:`bnn_model` with ``config`` bound), wrapped in DiscreteHMCGibbs
    when the prior is discrete."""
    check_in_interval("target_accept_prob", target_accept_prob, 0.0, 1.0, low_open=True, high_open=True)
    check_int("max_tree_depth", max_tree_depth, minimum=1, maximum=15)
    model = partial(model or bnn_model, config)
    kernel = NUTS(model, target_accept_prob=target_accept_prob, max_tree_depth=max_tree_depth,
                  dense_mass=dense_mass)
    if config.has_discrete:
        return DiscreteHMCGibbs(kernel, modified=True)
    return kernel


def _model_arrays(X, y):
    """Inputs and targets as JAX arrays in the current precision."""
    X = jnp.asarray(np.asarray(X), dtype=jnp.result_type(float))
    y = np.asarray(y)
    y = jnp.asarray(y, dtype=jnp.result_type(int) if y.dtype.kind in "iub" else jnp.result_type(float))
    return X, y


def run_nuts(key, config: BNNConfig, X, y, settings: NutsSettings | None = None, *, model=None,
             dtype: str | None = None, checkpoint=None, log=None, stop_after: int | None = None) -> NutsResult:
    """Warmup, then ``settings.num_samples`` draws per chain (:func:`bayes_mogp.nuts.sample`).  Same ``key``,
    same draws.

    ``X`` ``(n, d_in)`` model inputs; ``y`` labels ``(n,)`` or standardised targets ``(n, k)``.
    ``settings``: a :class:`NutsSettings` (default: its defaults).  ``dtype``: run in float32 / float64
    (None: JAX's current setting).  ``checkpoint``: path of the checkpoint file (written after warmup + each
    chunk of ``settings.checkpoint_every`` draws).  ``log``: a callable receiving one line per chunk.
    ``stop_after``: stop after that many draws (an interruption; continue with :func:`resume_nuts`).
    """
    s = NutsSettings() if settings is None else settings
    if not isinstance(s, NutsSettings):
        raise InputTypeError(f"settings must be a NutsSettings (or None), got {type(s).__name__}")
    with precision(dtype):
        X, y = _model_arrays(X, y)
        kernel = make_kernel(config, model, target_accept_prob=s.target_accept_prob, max_tree_depth=s.max_tree_depth,
                             dense_mass=s.dense_mass)
        extra = dict(target_accept_prob=s.target_accept_prob, max_tree_depth=s.max_tree_depth, dense_mass=s.dense_mass)
        ck = nuts.Checkpoint(checkpoint, s.checkpoint_every if checkpoint is not None else None, stop_after)
        return nuts.sample(key, kernel, (X, y), schedule=s.schedule, settings=extra, checkpoint=ck, log=log)


def resume_nuts(checkpoint, config: BNNConfig, X, y, *, num_samples: int | None = None, model=None,
                checkpoint_every: int | None = None, log=None) -> NutsResult:
    """Continue the run saved in ``checkpoint`` up to ``num_samples`` draws per chain in total (default:
    the number the run asked for; a larger number continues a finished run with more draws).

    ``X``, ``y`` must be the data of the interrupted run; the precision, number of chains and NUTS
    settings are the checkpoint's (:func:`bayes_mogp.nuts.resume`).
    """
    ck = load_checkpoint(checkpoint)  # read once: its settings choose the kernel, nuts.resume takes the rest
    settings = ck["settings"]
    with precision(settings["dtype"]):
        X, y = _model_arrays(X, y)
        kernel = make_kernel(config, model, target_accept_prob=settings["target_accept_prob"],
                             max_tree_depth=settings["max_tree_depth"], dense_mass=settings["dense_mass"])
        return nuts.resume(ck, kernel, (X, y), num_samples=num_samples, checkpoint_every=checkpoint_every, log=log)


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
        k1, k2 = jax.random.split(raw_key(key))
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
                        learning_rate=learning_rate, num_samples=num_samples, dtype=current_dtype(),
                        backend=jax.default_backend())
    if log is not None:
        log(f"svi: {guide} guide, {num_steps} steps in {seconds:.1f} s, final loss {losses[-1]:.1f}")
    return SviResult(samples, losses, seconds, jax.tree.map(np.asarray, jax.device_get(res.params)), settings)


def _default_rank(config: BNNConfig) -> int:
    r""":math:`\lceil\sqrt{D}\rceil` capped at 20, :math:`D` the number of weights and biases."""
    dims = (config.d_in,) + config.widths + (config.d_out,)
    num = sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))
    return int(min(20, max(1, np.ceil(np.sqrt(num)))))
