r"""Minibatch inference for the BNNs of :mod:`.models`: SGHMC, SGLD, cyclical SGLD and MAP, at the scale of
60,000 images.

All four work on the log density of the same NumPyro model as NUTS (:func:`.models.bnn_model`), on its
unconstrained scale (NumPyro's :func:`~numpyro.infer.util.initialize_model` and
:func:`~numpyro.infer.util.potential_energy`): the weights, biases and every per-node variance site the
prior emits (:meth:`~bayes_mogp.priors.NodeVariancePrior.sample_site`) move together.  A minibatch of
``B`` of the ``N`` training points gives the unbiased estimate

.. math::

    \log \hat\pi(\theta) = \log p(\theta) + \frac{N}{B} \sum_{i \in \text{batch}} \log p(y_i \mid x_i, \theta)

(the model's ``likelihood_scale``), and :math:`g = \nabla \log\hat\pi`.  Step sizes are given per data
point, as in SGD on the mean loss :math:`-\log\hat\pi / N`: ``step_size`` :math:`\eta`.

* **SGHMC** (Chen, Fox and Guestrin 2014), the Euler scheme of BlackJAX's
  :func:`blackjax.sgmcmc.diffusions.sghmc` with step :math:`h = \sqrt{\eta / N}` and friction
  :math:`\alpha = a / h`: in momentum form :math:`m = h p`,

  .. math::

      \theta \leftarrow \theta + m, \qquad
      m \leftarrow (1 - a)\, m + \frac{\eta}{N} g + \sqrt{2 a \eta T / N}\; \xi,

  the protocol of Lee et al. (2023): :math:`a = 0.1` (``friction``), :math:`\eta` cosine-annealed from
  0.5 over all steps and floored at 0.1, temperature :math:`T = 1` switched on after half the epochs
  (``noise_start``), one draw every 2 epochs (``thin``) in the second half (``burn_in``).  The momentum
  persists across minibatches (BlackJAX's top-level ``sghmc`` kernel redraws it at every call, which is
  a different sampler).
* **SGLD** (Welling and Teh 2011; BlackJAX's :func:`~blackjax.sgmcmc.diffusions.overdamped_langevin`,
  step :math:`h = \eta / N`): :math:`\theta \leftarrow \theta + \frac{\eta}{N} g + \sqrt{2 \eta T / N}\,\xi`,
  with the same schedule.
* **Cyclical SGLD** ``"csgld"`` (Zhang, Li, Zhang, Chen and Wilson, ICLR 2020): the step size follows
  ``num_cycles`` cosine cycles, :math:`\eta_k = \frac{\eta_0}{2}\,[\cos(\pi\, (k \bmod K) / K) + 1]`, each
  cycle of :math:`K` steps starts with an exploration stage without noise (the first ``exploration``
  share of its epochs) and keeps draws in its sampling stage.  (BlackJAX's ``csgld`` is contour SGLD,
  another algorithm.)
* **MAP** (``"map"``): Adam (optax) on :math:`-(\text{prior\_weight} \log p(\theta) + \frac{N}{B}
  \sum \log p(y_i \mid \theta)) / N`, learning rate ``learning_rate`` lowered at the epochs of
  ``lr_decay``; ``prior_weight = 0.2`` is the paper's penalised training (its loss is the mean
  cross-entropy minus the log prior over :math:`5N`).  One draw.

Which prior density: by default (``jacobian=True``) that of the unconstrained sites, Jacobians of their
transforms included, so SG-MCMC samples the posterior and MAP finds its mode in those coordinates (for a
variance sampled on its log scale, the mode of the density of :math:`\log\lambda`).  ``jacobian=False``
multiplies the prior by :math:`\prod_j \lambda_j^{-1}` over every hidden node: the marginal density of each
:math:`\lambda` is then taken as the density of :math:`\log\lambda`, which is what the code of Lee et al.
(2023) does (its variances are parameters on the log scale, penalised by the log density of :math:`\lambda`).
For MAP this is the mode of the posterior density of :math:`\lambda` itself, the usual MAP estimate.  For
SG-MCMC it is another target: with the horseshoe or GBFRY the tilted prior is improper towards
:math:`\lambda = 0` (near 0 their densities fall more slowly than :math:`\lambda^{-1}`), and unused nodes
drift to vanishing variance, which is what pruning then removes.  The tilt stops at
:math:`\lambda = 10^{-30}` (:data:`LAMBDA_FLOOR`; below it a node is zero for every purpose), so that no
variance is pushed to float underflow.

Why the SG-MCMC updates are written here rather than called from BlackJAX: the same formulas (the tests
check them against :func:`blackjax.sgmcmc.diffusions.sghmc` and ``overdamped_langevin`` to float
rounding, with the same keys and ``noise="gaussian_threefry"``) but with cheaper noise.  The Gaussian noise of
650,000 parameters costs as much as the gradient on 2 CPU cores, so:

* nothing is drawn where the temperature is 0 (BlackJAX draws it and multiplies by 0);
* ``noise="gaussian"`` (the default) draws it with :func:`bayes_mogp.rng.normal_like` (Philox-2x32-10 and an
  inverse-CDF transform: the standard normal law, 0.6x of the cost of JAX's default generator in an epoch at
  width 1000), and ``"gaussian_threefry"`` with JAX's, as BlackJAX's :func:`blackjax.util.generate_gaussian_noise`;
* ``noise="rademacher"``: two-point noise :math:`\pm 1` of the same mean and variance, the simplified weak
  Euler scheme (Kloeden and Platen 1992, section 14.1), which keeps the weak order of the Gaussian scheme at a
  fraction of the cost (one random bit per parameter).

One epoch is one compiled :func:`jax.lax.scan` over ``N // B`` shuffled minibatches (the last partial
batch is dropped, as PyTorch's ``drop_last``), with no host round trip inside it; the host loop over
epochs shows a progress bar (stderr), keeps draws at epoch ends and writes a checkpoint at epoch
boundaries (:mod:`bayes_mogp.checkpoint`), from which :func:`resume` continues with the same keys: the
draws equal those of an uninterrupted run.  Several chains run one after the other inside the epoch on a
CPU (``lax.map``: a batched matrix product is slower there than separate ones), vectorised (``vmap``) on an
accelerator.  With several devices the minibatch is sharded over them (``jax.sharding``; parameters
replicated), which gives the same draws as one device up to float32 rounding.

Initialisation: weights and biases from their N(0, 1) prior, every other site at its prior median
(NumPyro's ``init_to_median``); momentum 0.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import load_checkpoint, restore_state, save_checkpoint
from ..errors import InputError
from ..nuts import current_dtype, precision, raw_key
from ..validation import check_bool, check_choice, check_in_interval, check_int, check_positive
from .inference import _model_arrays
from .models import BNNConfig, bnn_model

__all__ = ["SG_METHODS", "MINIBATCH_METHODS", "NOISES", "MinibatchSettings", "MinibatchResult", "SGState",
           "sghmc_update", "sgld_update", "step_sizes", "run_minibatch", "resume_minibatch", "log_density_fn",
           "estimate_seconds", "check_size", "num_parameters", "initial_positions", "staged_initializer",
           "LAMBDA_FLOOR"]

SG_METHODS = ("sghmc", "sgld", "csgld")
MINIBATCH_METHODS = SG_METHODS + ("map",)
NOISES = ("gaussian", "gaussian_threefry", "rademacher")
INITS = ("iid", "median")


@dataclass(frozen=True)
class MinibatchSettings:
    """Settings of a minibatch run, validated on construction (module docstring for the maths).

    Args:
      method: ``"sghmc"``, ``"sgld"``, ``"csgld"`` or ``"map"``.
      num_epochs: passes over the training data.
      batch_size: points per minibatch, at most ``N``.
      step_size: SG-MCMC :math:`\\eta_0`, per data point (SGD on the mean loss).
      step_size_min: floor of the cosine schedule (SGHMC, SGLD; 0 for none).
      friction: SGHMC momentum decay per step :math:`a`, in (0, 1].
      temperature: :math:`T` of the noise once it is on.
      noise_start: share of the epochs run without noise first (SGHMC, SGLD).
      burn_in: share of the epochs before draws are kept (SGHMC, SGLD).
      thin: keep one draw every ``thin`` epochs.
      num_cycles, exploration: cyclical SGLD: number of cycles, share of each cycle without noise.
      noise: ``"gaussian"``, ``"gaussian_threefry"`` or ``"rademacher"`` (module docstring).
      learning_rate, lr_decay: MAP: Adam's learning rate, and ``((epoch, rate), ...)`` changes.
      prior_weight: multiplies the log prior in MAP (the paper's penalised training: 0.2).
      jacobian: the prior density of the unconstrained sites (True), or tilted by :math:`\\prod_j 1/\\lambda_j`
        as in the code of Lee et al. (False; module docstring).
      num_chains: independent chains, each with its own key (module docstring).
      checkpoint_every: epochs between checkpoints (with a checkpoint path).
      init: ``"iid"`` (every node variance starts at :math:`1/p`, as a He-initialised network) or
        ``"median"`` (the prior median of every variance site).
    """

    method: str = "sghmc"
    num_epochs: int = 100
    batch_size: int = 100
    step_size: float = 0.5
    step_size_min: float = 0.1
    friction: float = 0.1
    temperature: float = 1.0
    noise_start: float = 0.5
    burn_in: float = 0.5
    thin: int = 2
    num_cycles: int = 4
    exploration: float = 0.5
    noise: str = "gaussian"
    learning_rate: float = 0.01
    lr_decay: tuple = ((10, 0.005), (20, 0.001))
    prior_weight: float = 1.0
    jacobian: bool = True
    num_chains: int = 1
    checkpoint_every: int = 1
    init: str = "iid"

    def __post_init__(self):
        check_choice("method", self.method, MINIBATCH_METHODS)
        check_int("num_epochs", self.num_epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("step_size", self.step_size)
        check_in_interval("step_size_min", self.step_size_min, 0.0, self.step_size)
        check_in_interval("friction", self.friction, 0.0, 1.0, low_open=True)
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise InputError(f"temperature must be a finite number >= 0, got {self.temperature}")
        for name in ("noise_start", "burn_in"):
            check_in_interval(name, getattr(self, name), 0.0, 1.0, high_open=True)
        check_int("thin", self.thin, minimum=1)
        check_int("num_cycles", self.num_cycles, minimum=1,
                  maximum=self.num_epochs if self.method == "csgld" else None)
        check_in_interval("exploration", self.exploration, 0.0, 1.0, high_open=True)
        check_choice("noise", self.noise, NOISES)
        check_positive("learning_rate", self.learning_rate)
        decay = tuple((check_int("lr_decay epoch", int(e), minimum=1), float(check_positive("lr_decay rate", r)))
                      for e, r in (self.lr_decay or ()))
        object.__setattr__(self, "lr_decay", decay)
        check_positive("prior_weight", self.prior_weight)
        object.__setattr__(self, "jacobian", check_bool("jacobian", self.jacobian))
        check_int("num_chains", self.num_chains, minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        check_choice("init", self.init, INITS)

    @classmethod
    def from_dict(cls, table: dict) -> "MinibatchSettings":
        """Settings from a spec's ``[inference]`` table (unknown keys ignored: the spec layer checks them)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in table.items() if k in names}
        if "lr_decay" in values:
            values["lr_decay"] = tuple(tuple(x) for x in values["lr_decay"])
        return cls(**values)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["lr_decay"] = [list(x) for x in self.lr_decay]
        return out

    # -- the schedule, per epoch ------------------------------------------------------------------------------
    def noisy(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) adds noise."""
        if self.method == "map" or self.temperature == 0:
            return False
        if self.method == "csgld":
            return self._cycle_position(epoch) >= self.exploration
        return epoch >= int(round(self.noise_start * self.num_epochs))

    def keep(self, epoch: int) -> bool:
        """Whether the state at the end of epoch ``epoch`` (0-based) is kept as a draw."""
        if self.method == "map":
            return epoch == self.num_epochs - 1
        if self.method == "csgld":
            if not self.noisy(epoch):
                return False
            cycle_len = self.num_epochs / self.num_cycles
            end_of_cycle = int(math.floor((epoch + 1) / cycle_len - 1e-9)) != int(math.floor((epoch + 2) / cycle_len - 1e-9))
            return end_of_cycle or (self.num_epochs - 1 - epoch) % self.thin == 0
        first = int(round(self.burn_in * self.num_epochs))
        return epoch >= first and (self.num_epochs - 1 - epoch) % self.thin == 0

    def _cycle_position(self, epoch: int) -> float:
        cycle_len = self.num_epochs / self.num_cycles
        return ((epoch + 0.5) % cycle_len) / cycle_len

    def num_draws(self) -> int:
        return sum(self.keep(e) for e in range(self.num_epochs))


def step_sizes(settings: MinibatchSettings, steps, total_steps: int):
    r"""Per-data-point step size :math:`\eta` at global step(s) ``steps`` (jax.numpy, jittable).

    SGHMC / SGLD: :math:`\max(\eta_{min}, \frac{\eta_0}{2}[\cos(\pi k / K) + 1])` over all ``K`` steps;
    cyclical SGLD: the same cosine restarted in each of ``num_cycles`` cycles, without floor.
    """
    k = jnp.asarray(steps, dtype=jnp.result_type(float))
    if settings.method == "csgld":
        cycle = math.ceil(total_steps / settings.num_cycles)
        return 0.5 * settings.step_size * (jnp.cos(jnp.pi * jnp.mod(k, cycle) / cycle) + 1.0)
    eta = 0.5 * settings.step_size * (jnp.cos(jnp.pi * k / total_steps) + 1.0)
    return jnp.maximum(eta, settings.step_size_min)


# -------------------------------------------------------------------------------------------- the updates
def _noise(key, position, kind: str):
    """Zero-mean, unit-variance noise shaped like ``position`` (module docstring): standard normal from
    :func:`bayes_mogp.rng.normal_like`, from JAX's default generator as BlackJAX draws it, or two-point +-1."""
    if kind == "gaussian":
        from ..rng import normal_like

        return normal_like(key, position)
    if kind == "gaussian_threefry":
        from blackjax.util import generate_gaussian_noise

        return generate_gaussian_noise(key, position)
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(position)
    words = (flat.size + 31) // 32
    bits = jax.random.bits(key, (words,), jnp.uint32)
    signs = (bits[:, None] >> jnp.arange(32, dtype=jnp.uint32)) & 1
    return unravel((2 * signs.reshape(-1)[: flat.size].astype(flat.dtype) - 1).astype(flat.dtype))


def sghmc_update(key, position, momentum, grad, step, alpha, temperature, noise: str | None = "gaussian"):
    r"""One SGHMC step in BlackJAX's form (:func:`blackjax.sgmcmc.diffusions.sghmc`, ``beta = 0``):
    :math:`\theta \leftarrow \theta + h p`, :math:`p \leftarrow (1 - \alpha h) p + h g + \sqrt{2 \alpha h T}\xi`.
    ``noise=None``: no noise (and none drawn)."""
    position = jax.tree.map(lambda x, p: x + step * p, position, momentum)
    if noise is None:
        momentum = jax.tree.map(lambda p, g: (1.0 - alpha * step) * p + step * g, momentum, grad)
    else:
        xi = _noise(key, position, noise)
        scale = jnp.sqrt(step * temperature * 2 * alpha)
        momentum = jax.tree.map(lambda p, g, n: (1.0 - alpha * step) * p + step * g + scale * n, momentum, grad, xi)
    return position, momentum


def sgld_update(key, position, grad, step, temperature, noise: str | None = "gaussian"):
    r"""One SGLD step (:func:`blackjax.sgmcmc.diffusions.overdamped_langevin`):
    :math:`\theta \leftarrow \theta + h g + \sqrt{2 T h}\xi`; ``noise=None``: no noise (none drawn)."""
    if noise is None:
        return jax.tree.map(lambda x, g: x + step * g, position, grad)
    xi = _noise(key, position, noise)
    scale = jnp.sqrt(2 * temperature * step)
    return jax.tree.map(lambda x, g, n: x + step * g + scale * n, position, grad, xi)


# ------------------------------------------------------------------------------------------------ sizing
#: rates behind :func:`estimate_seconds`, measured on 2 CPU cores (float32, 784-500-500-10, batch 100) and
#: rounded down, so that the estimate errs long: dense flops of the gradient, and noise draws
FLOPS_PER_SECOND = 6e10
NOISE_PER_SECOND = {"gaussian": 2e8, "gaussian_threefry": 1.5e8, "rademacher": 1.5e9}


def num_parameters(config: BNNConfig) -> int:
    """Weights and biases of the network (the variance sites are a small addition)."""
    dims = (config.d_in,) + tuple(config.widths) + (config.d_out,)
    return int(sum(a * b + b for a, b in zip(dims[:-1], dims[1:])))


def estimate_seconds(config: BNNConfig, num_data: int, settings: MinibatchSettings) -> float:
    """A conservative estimate of a run's time on this machine's CPU: per epoch, the gradient (3 dense passes
    of 2 flops per weight and point) and, in epochs with noise, one draw per parameter and step; times the
    number of chains.  On a GPU the run is much faster."""
    n_par = num_parameters(config)
    steps = num_data // settings.batch_size
    grad = 6.0 * n_par * steps * settings.batch_size / FLOPS_PER_SECOND
    noise = n_par * steps / NOISE_PER_SECOND[settings.noise]
    noisy = sum(settings.noisy(e) for e in range(settings.num_epochs))
    return settings.num_chains * (settings.num_epochs * grad + noisy * noise)


def check_size(config: BNNConfig, num_data: int, settings: MinibatchSettings, *, max_minutes: float | None = None):
    """Refuse (``InputError`` with the estimate) a run estimated to take more than ``max_minutes``, or whose
    draws and data would not fit in half of this machine's memory; returns the estimate in seconds."""
    from ..memory import require_memory

    if settings.batch_size > num_data:
        raise InputError(f"batch_size must be at most the number of training points ({num_data}), got "
                         f"{settings.batch_size}")
    seconds = estimate_seconds(config, num_data, settings)
    if max_minutes is not None and jax.default_backend() == "cpu" and seconds > 60 * max_minutes:
        raise InputError(f"estimated {seconds / 60:.0f} min on this CPU ({settings.num_epochs} epochs of "
                         f"{num_parameters(config):,} parameters on {num_data:,} points), over --max-minutes "
                         f"{max_minutes:g}; lower --epochs or --widths, or raise --max-minutes")
    need = 4.0 * (num_parameters(config) * (settings.num_draws() + 4) * settings.num_chains
                  + num_data * config.d_in)
    require_memory(need, "the draws and data", "keep fewer draws (raise thin) or lower --widths")
    return seconds


# ------------------------------------------------------------------------------------------- log density
#: where the tilt of ``jacobian=False`` stops (module docstring)
LAMBDA_FLOOR = 1e-30


def log_density_fn(config: BNNConfig, num_data: int, batch_size: int, *, prior_weight: float = 1.0, model=None,
                   jacobian: bool = True):
    r""":math:`(\theta_u, x_b, y_b) \mapsto \text{prior\_weight} \log p(\theta) + \frac{N}{B} \log p(y_b \mid x_b,
    \theta)` on the unconstrained scale of ``model`` (default :func:`.models.bnn_model`), Jacobians
    included (NumPyro's :func:`~numpyro.infer.util.potential_energy`).  ``jacobian=False`` adds
    :math:`-\text{prior\_weight} \sum_{l, j} \log \max(\lambda_{lj}, 10^{-30})` over the hidden nodes'
    variances (the sites ``lam{l}``; module docstring)."""
    from numpyro.handlers import scale
    from numpyro.infer.util import constrain_fn, potential_energy

    base = partial(model or bnn_model, config)
    m = scale(base, prior_weight) if prior_weight != 1.0 else base
    kwargs = {"likelihood_scale": num_data / batch_size / prior_weight}
    names = [f"lam{layer}" for layer in range(len(config.widths))]

    def log_density(position, xb, yb):
        value = -potential_energy(m, (xb, yb), kwargs, position)
        if not jacobian:
            sites = constrain_fn(base, (xb, yb), kwargs, position, return_deterministic=True)
            floor = math.log(LAMBDA_FLOOR)
            value = value - prior_weight * sum(jnp.sum(jnp.maximum(jnp.log(sites[k]), floor)) for k in names)
        return value

    return log_density


class SGState(NamedTuple):
    """The state of a minibatch run between epochs (each leaf with a leading chain axis)."""

    position: dict  # unconstrained sites
    momentum: dict  # SGHMC momentum (zeros for SGLD); Adam's state for MAP lives in ``opt_state``
    opt_state: tuple  # optax state (MAP) or ()
    key: jax.Array  # raw uint32[2] per chain
    epoch: jax.Array  # int32: epochs done


@dataclass
class MinibatchResult:
    """Draws ``samples[name]`` ``(chains, draws, ...)`` (constrained sites and deterministics), ``stats``
    per draw (``step_size``, ``log_density``: the epoch's mean minibatch estimate), ``trace``
    ``(chains, epochs)`` of that estimate per epoch, ``seconds`` (all epochs, compilation included),
    ``seconds_per_epoch`` (median of the epochs after the first of each compiled variant), the settings."""

    samples: dict
    stats: dict
    trace: np.ndarray
    seconds: float
    seconds_per_epoch: float | None
    settings: dict
    epoch_seconds: list


class _Runner:
    """Compiled epochs for one model, data set and settings (built once per fit or resume)."""

    def __init__(self, config, X, y, s: MinibatchSettings, model=None):
        from numpyro.infer import init_to_median

        if config.has_discrete:
            raise InputError(f"method {s.method!r} needs continuous node variances; the {config.prior_name!r} prior "
                             f"is discrete: use method 'nuts' (DiscreteHMCGibbs)")
        n = int(X.shape[0])
        if s.batch_size > n:
            raise InputError(f"batch_size must be at most the number of training points ({n}), got {s.batch_size}")
        self.config, self.s, self.n = config, s, n
        self.num_batches = n // s.batch_size
        self.total_steps = self.num_batches * s.num_epochs
        self.model = partial(model or bnn_model, config)
        self.X, self.y = X, y
        self.log_density = log_density_fn(config, n, s.batch_size, prior_weight=s.prior_weight if s.method == "map"
                                          else 1.0, model=model, jacobian=s.jacobian)
        self._init = staged_initializer(self.model, (X[: s.batch_size], y[: s.batch_size]),
                                        {"likelihood_scale": n / s.batch_size}, init_to_median(num_samples=15))
        if s.method == "map":
            import optax

            # Adam's rate changes at the epochs of lr_decay (optax multiplies the current rate by each scale)
            rates = [s.learning_rate] + [r for _, r in s.lr_decay]
            scales = {e * self.num_batches: rates[i + 1] / rates[i] for i, (e, _) in enumerate(s.lr_decay)}
            self.optimizer = optax.adam(optax.piecewise_constant_schedule(s.learning_rate, scales))
        self.mesh = _batch_mesh(s.batch_size)
        self._epochs = {}

    # -- init ------------------------------------------------------------------------------------------------
    def init_state(self, key) -> SGState:
        keys = jax.random.split(jax.random.wrap_key_data(raw_key(key)), self.s.num_chains)
        positions, self.postprocess = [], None
        for k in keys:
            k_init, k_w = jax.random.split(k)
            pos, self.postprocess = self._init(k_init)
            pos = dict(pos)
            # weights and biases from their N(0, 1) prior (as a network is initialised), the rest at the median
            for name, v in pos.items():
                if name.startswith("V") or (name.startswith("b") and name.endswith("_raw")):
                    pos[name] = jax.random.normal(jax.random.fold_in(k_w, _site_index(name)), v.shape, v.dtype)
            positions.append(self._init_variances(pos) if self.s.init == "iid" else pos)
        position = jax.tree.map(lambda *a: jnp.stack(a), *positions)
        momentum = jax.tree.map(jnp.zeros_like, position)
        opt_state = jax.vmap(self.optimizer.init)(position) if self.s.method == "map" else ()
        chain_keys = jax.vmap(jax.random.key_data)(jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys))
        return SGState(position, momentum, opt_state, chain_keys, jnp.zeros((), jnp.int32))

    def _init_variances(self, pos: dict) -> dict:
        r"""Move the variance sites (every site but the weights and biases) so that each layer's
        :math:`\lambda_j` is :math:`1/p`: 300 Adam steps on the squared log error, whatever the family's
        parametrisation (families without variance sites, such as iid, are left as they are)."""
        import optax

        free = {k: v for k, v in pos.items() if not (k.startswith("V") or (k.startswith("b") and k.endswith("_raw")))
                and k != "sigma"}
        if not free:
            return pos
        widths = self.config.widths

        def loss(f):
            lam = self.postprocess({**pos, **f})
            return sum(jnp.mean((jnp.log(lam[f"lam{l}"]) + jnp.log(p)) ** 2) for l, p in enumerate(widths))

        opt = optax.adam(0.1)

        @jax.jit
        def fit(f):
            def body(carry, _):
                f, st = carry
                g = jax.grad(loss)(f)
                up, st = opt.update(g, st, f)
                return (optax.apply_updates(f, up), st), None

            return jax.lax.scan(body, (f, opt.init(f)), None, length=300)[0][0]

        return {**pos, **fit(free)}

    def template(self) -> SGState:
        """A state of the right shapes (for restoring a checkpoint), and the postprocess function."""
        return self.init_state(jnp.zeros(2, jnp.uint32))

    # -- one epoch -------------------------------------------------------------------------------------------
    def epoch_fn(self, noisy: bool):
        if noisy not in self._epochs:
            run = jax.jit(partial(self._epoch, noisy=noisy))
            self._epochs[noisy] = lambda state: run(state, self.X, self.y)  # data as arguments, not constants
        return self._epochs[noisy]

    def _epoch(self, state: SGState, X, y, noisy: bool):
        s, nb, B = self.s, self.num_batches, self.s.batch_size
        epoch = state.epoch
        value_and_grad = jax.value_and_grad(self.log_density)
        noise = s.noise if noisy else None

        def one_chain(position, momentum, opt_state, key):
            key = jax.random.fold_in(jax.random.wrap_key_data(key), epoch)
            k_perm, k_steps = jax.random.split(key)
            batches = jax.random.permutation(k_perm, self.n)[: nb * B].reshape(nb, B)
            step_keys = jax.random.split(k_steps, nb)
            first = epoch * nb

            def body(carry, inp):
                position, momentum, opt_state = carry
                i, idx, k = inp
                xb, yb = self._shard(X[idx]), self._shard(y[idx])
                value, g = value_and_grad(position, xb, yb)
                if s.method == "map":
                    import optax

                    updates, opt_state = self.optimizer.update(jax.tree.map(lambda a: -a / self.n, g), opt_state,
                                                               position)
                    position = optax.apply_updates(position, updates)
                    eta = jnp.zeros(())
                else:
                    eta = step_sizes(s, first + i, self.total_steps)
                    if s.method == "sghmc":
                        h = jnp.sqrt(eta / self.n)
                        position, momentum = sghmc_update(k, position, momentum, g, h, s.friction / h,
                                                          s.temperature, noise)
                    else:
                        position = sgld_update(k, position, g, eta / self.n, s.temperature, noise)
                return (position, momentum, opt_state), (value, eta)

            (position, momentum, opt_state), (values, etas) = jax.lax.scan(
                body, (position, momentum, opt_state), (jnp.arange(nb), batches, step_keys))
            return position, momentum, opt_state, jnp.mean(values), etas[-1]

        chains = (state.position, state.momentum, state.opt_state, state.key)
        if s.num_chains == 1:  # no chain axis inside: a batched matrix product of one is slower on a CPU
            out = jax.tree.map(lambda a: a[None], one_chain(*jax.tree.map(lambda a: a[0], chains)))
        elif jax.default_backend() == "cpu":  # one chain after the other, each with plain matrix products
            out = jax.lax.map(lambda c: one_chain(*c), chains)
        else:
            out = jax.vmap(one_chain)(*chains)
        position, momentum, opt_state, value, eta = out
        return SGState(position, momentum, opt_state, state.key, epoch + 1), value, eta

    def _shard(self, a):
        if self.mesh is None:
            return a
        from jax.sharding import NamedSharding, PartitionSpec

        spec = PartitionSpec("data", *([None] * (a.ndim - 1)))
        return jax.lax.with_sharding_constraint(a, NamedSharding(self.mesh, spec))

    def constrained(self, position) -> dict:
        """Every site and deterministic of the model at the (chain-batched) unconstrained ``position``."""
        return jax.vmap(self.postprocess)(position)


def staged_initializer(model, model_args: tuple, model_kwargs: dict, init_strategy):
    r"""NumPyro's :func:`~numpyro.infer.util.initialize_model` as one compiled program: a function
    ``key -> (z, postprocess)`` of the initial unconstrained position ``z`` (a dict of arrays) and the model's
    postprocess (unconstrained -> every site and deterministic, NumPyro's
    :func:`~numpyro.infer.util.constrain_fn`), the same values as the eager call's.

    Why not the eager call: it traces the model and draws ``init_strategy``'s values operation by operation, and
    JAX compiles each of the few hundred small operations on its own (a 784-300-300 horseshoe network, profiled:
    26 s of a 40 s SGHMC run of 3 epochs in a fresh process on 2 cores, at XLA's default level; staged, the
    whole run takes 35-38 s against 45-47 s).  The data are arguments of the program, not constants compiled
    into it.  Inside the compiled program NumPyro cannot check the point it found, so the potential energy and
    its gradient are checked here: a point where either is not finite is refused, as the eager call refuses it."""
    from numpyro.handlers import seed
    from numpyro.infer.util import constrain_fn, initialize_model

    @jax.jit
    def staged(key, args):
        info = initialize_model(key, model, model_args=args, model_kwargs=model_kwargs, init_strategy=init_strategy)
        pe, grad = info.param_info.potential_energy, info.param_info.z_grad
        finite = jnp.isfinite(pe) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grad)]))
        return info.param_info.z, finite

    postprocess = partial(constrain_fn, seed(model, rng_seed=0), model_args, model_kwargs, return_deterministic=True)

    def init(key):
        z, finite = staged(key, model_args)
        if not bool(finite):
            raise RuntimeError("cannot find valid initial parameters: the model's log density or its gradient is "
                               "not finite at the prior's median; check the model and its data")
        return z, postprocess

    return init


def initial_positions(key, config: BNNConfig, X, y, num: int, *, init: str = "iid", model=None):
    """``num`` starting points on the unconstrained scale, stacked on a leading axis, and the model's
    ``postprocess`` (unconstrained -> every site and deterministic): weights and biases from their N(0, 1)
    prior, the node variances at :math:`1/p` (``init="iid"``) or every other site at its prior median
    (``"median"``), as the minibatch methods start (module docstring).  Same key, same points."""
    n = int(X.shape[0])
    s = MinibatchSettings(method="map", batch_size=n, num_epochs=1, num_chains=num, init=init)
    runner = _Runner(config, X, y, s, model)
    return runner.init_state(key).position, runner.postprocess


def _site_index(name: str) -> int:
    return sum(ord(c) * 31 ** i for i, c in enumerate(name)) % (2**31 - 1)


def _batch_mesh(batch_size: int):
    """A 1-d mesh over all local devices for the minibatch axis (None on one device, or when the batch does
    not divide evenly)."""
    devices = jax.local_devices()
    if len(devices) < 2 or batch_size % len(devices):
        return None
    from jax.sharding import Mesh

    return Mesh(np.asarray(devices), ("data",))


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="epoch", file=sys.stderr, disable=not enabled,
                leave=False, dynamic_ncols=True)


def run_minibatch(key, config: BNNConfig, X, y, settings: MinibatchSettings, *, dtype: str | None = "float32",
                  model=None, checkpoint=None, log=None, progress: bool = True, stop_after: int | None = None
                  ) -> MinibatchResult:
    """Run ``settings.method`` for ``settings.num_epochs`` epochs (module docstring); same key, same draws.

    ``X`` ``(N, d_in)`` model inputs, ``y`` labels or standardised targets.  ``checkpoint``: a path, written
    every ``checkpoint_every`` epochs and at the end.  ``log``: one line per epoch.  ``stop_after``: stop after
    that many epochs (an interruption; continue with :func:`resume_minibatch`).
    """
    if not isinstance(settings, MinibatchSettings):
        raise InputError("settings must be a MinibatchSettings")
    with precision(dtype):
        X, y = _model_arrays(X, y)
        runner = _Runner(config, X, y, settings, model)
        state = runner.init_state(key)
        meta = {"settings": settings.to_dict(), "dtype": current_dtype(), "backend": jax.default_backend(),
                "devices": jax.local_device_count(), "key": [int(k) for k in np.asarray(raw_key(key))]}
        return _loop(runner, state, {}, {}, [], [], 0.0, meta, checkpoint, log, progress, stop_after)


def resume_minibatch(checkpoint, config: BNNConfig, X, y, *, model=None, log=None, progress: bool = True,
                     num_epochs: int | None = None) -> MinibatchResult:
    """Continue the run saved in ``checkpoint`` (same data as the interrupted run) to its end."""
    ck = load_checkpoint(checkpoint)
    meta = ck["settings"]
    if "settings" not in meta or meta["settings"].get("method") not in MINIBATCH_METHODS:
        raise InputError(f"{checkpoint}: not the checkpoint of a minibatch run (sghmc, sgld, csgld, map)")
    table = dict(meta["settings"])
    if num_epochs is not None and num_epochs != table["num_epochs"]:
        raise InputError(f"num_epochs is fixed by the run's schedule ({table['num_epochs']}); got {num_epochs}")
    settings = MinibatchSettings.from_dict(table)
    with precision(meta["dtype"]):
        X, y = _model_arrays(X, y)
        runner = _Runner(config, X, y, settings, model)
        state = restore_state(ck, runner.template())
        stats = {k: v for k, v in ck["stats"].items() if k != "trace"}
        trace = [list(r) for r in np.asarray(ck["stats"].get("trace", np.zeros((settings.num_chains, 0)))).T]
        samples = {k: v for k, v in ck["samples"].items() if k != "_none"}
        epoch_seconds = [t for _, t in ck["chunks"]]
        return _loop(runner, state, samples, stats, trace, epoch_seconds, ck["seconds"], meta, checkpoint, log,
                     progress, None)


def _loop(runner: _Runner, state: SGState, samples, stats, trace, epoch_seconds, seconds, meta, checkpoint, log,
          progress, stop_after) -> MinibatchResult:
    s = runner.s
    start = int(state.epoch)
    samples = {k: list(np.moveaxis(np.asarray(v), 1, 0)) for k, v in samples.items()}
    stats = {k: list(np.moveaxis(np.asarray(v), 1, 0)) for k, v in stats.items()}
    bar = _progress(s.num_epochs, start, s.method, progress)
    stop = s.num_epochs if stop_after is None else min(s.num_epochs, start + int(stop_after))
    try:
        for epoch in range(start, stop):
            t0 = time.perf_counter()
            state, value, eta = runner.epoch_fn(s.noisy(epoch))(state)
            value = np.asarray(jax.device_get(value))
            dt = time.perf_counter() - t0
            seconds += dt
            epoch_seconds.append(dt)
            trace.append(list(value))
            if not np.all(np.isfinite(value)):
                raise InputError(f"{s.method}: the log density became {value} at epoch {epoch + 1}; lower step_size "
                                 f"(now {s.step_size}) or learning_rate")
            if s.keep(epoch):
                draw = jax.device_get(runner.constrained(state.position))
                for k, v in draw.items():
                    samples.setdefault(k, []).append(np.asarray(v))
                stats.setdefault("step_size", []).append(np.asarray(eta))
                stats.setdefault("log_density", []).append(value)
            bar.update(1)
            bar.set_postfix(log_density=f"{float(np.mean(value)):.4g}")
            if log is not None:
                log(f"{s.method}: epoch {epoch + 1}/{s.num_epochs} in {dt:.2f} s, log density {float(np.mean(value)):.6g}")
            done = epoch + 1
            if checkpoint is not None and (done % s.checkpoint_every == 0 or done == stop):
                _save(checkpoint, state, samples, stats, trace, seconds, meta, epoch_seconds)
    finally:
        bar.close()
    return _result(samples, stats, trace, seconds, meta, epoch_seconds, s)


def _stack(d: dict) -> dict:
    """Lists of per-draw arrays ``(chains, ...)`` -> ``(chains, draws, ...)``."""
    return {k: np.stack(v, axis=1) for k, v in d.items() if len(v)}


def _save(path, state, samples, stats, trace, seconds, meta, epoch_seconds):
    st = _stack(stats)
    st["trace"] = np.asarray(trace).T
    smp = _stack(samples) or {"_none": np.zeros(1)}
    save_checkpoint(path, state, smp, st, seconds=seconds, settings=meta,
                    chunks=[(1, t) for t in epoch_seconds])


def _result(samples, stats, trace, seconds, meta, epoch_seconds, s) -> MinibatchResult:
    # the first epoch of each compiled variant (noise-free, noisy) includes compilation
    firsts = {next((e for e in range(s.num_epochs) if s.noisy(e) == v), None) for v in (False, True)}
    later = [t for e, t in enumerate(epoch_seconds) if e not in firsts]
    per_epoch = float(np.median(later)) if later else None
    return MinibatchResult(_stack(samples), _stack(stats), np.asarray(trace).T, float(seconds), per_epoch,
                           meta, list(epoch_seconds))
