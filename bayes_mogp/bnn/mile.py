r"""Microcanonical Langevin ensembles (MILE) for the BNNs of :mod:`.models`: ``method="mile"``.

Sommer, Robnik, Nozadze, Seljak and Rügamer, "Microcanonical Langevin Ensembles: Advancing the Sampling of
Bayesian Neural Networks" (ICLR 2025): a deep ensemble first, then a sampler made for high dimensions from
each member.

1. **Members.** ``num_members`` independent starts (weights and biases from their N(0, 1) prior, every node
   variance at :math:`1/p`, as :mod:`.sgmcmc` starts), each optimised by full-batch Adam (optax) on the
   negative log posterior density of the unconstrained sites (the same density the sampler then uses,
   Jacobians included), ``map_steps`` steps with the learning rate cosine-decayed from ``learning_rate`` to
   1% of it.  The members land in different modes: that is the point of the ensemble.
2. **Tuning**, from each member's optimum, with BlackJAX's :func:`blackjax.mclmc_find_L_and_step_size` in
   three calls of ``tuning_steps / 2`` steps each: the step size in the unit metric (adapted to the
   energy-error target ``desired_energy_var`` per dimension, starting from ``step_size_init``: BlackJAX's
   own start, :math:`\sqrt{d}/4`, is far too large for a network and collapses the tuner), then the scale
   of each coordinate (``diagonal_preconditioning``), then the step size again in that metric, starting
   from a quarter of the unit metric's and from the unit metric's state, with :math:`L = \sqrt{d}`.
   BlackJAX's own sequence re-adapts the step size right after estimating the scales, starting from the
   unit metric's step size; on the real-size MNIST network that collapsed one member in eight (step size
   0.1 against 6-9, the network at chance accuracy), which is why its state is not used.  Checks: a
   collapse of the first call (non-finite or vanishing step size, or a state more than
   :data:`COLLAPSE_PER_DIM` :math:`\cdot d` below the optimum, where a Gaussian's typical set lies
   :math:`d/2` below) is an error; a preconditioned state more than :data:`TYPICAL_SET_SDS`
   :math:`\sqrt{d}` below the unit metric's falls back to the unit metric (``preconditioned`` in the
   statistics).  Then the step size is calibrated on the measured energy error (:meth:`_Member.calibrate`:
   lowered only).
3. **Sampling**: unadjusted MCLMC (:func:`blackjax.mclmc`, its default isokinetic McLachlan integrator,
   two gradient evaluations per step) for ``sampling_steps`` steps per member, one draw kept every ``thin``.

Draws are returned as ``(members, draws, ...)``: each member is one chain.  The members sit in different
modes by design, so R-hat across members does not measure convergence: the diagnostic is the split R-hat
within each member (:func:`bayes_mogp.report.diagnostic_rule`), and the ensemble's effective sample size
is the sum of the members'.

Members run one after the other (their keys are folded from the fit's key, so the draws do not depend on
how the run was cut); the checkpoint is written after each member and :func:`resume_mile` continues with
the next.  Why here rather than in BlackJAX: BlackJAX provides the kernel and the tuner (used as they
are); the ensemble, the optimisation, the collapse check and the bookkeeping are ours.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import InputError
from ..nuts import current_dtype, precision, raw_key
from ..validation import check_bool, check_in_interval, check_int, check_positive
from .inference import _model_arrays
from .models import BNNConfig
from .sgmcmc import FLOPS_PER_SECOND, initial_positions, log_density_fn, num_parameters

__all__ = ["MileSettings", "MileResult", "run_mile", "resume_mile", "estimate_seconds", "check_size",
           "GRADS_PER_STEP", "COLLAPSE_PER_DIM"]

#: gradient evaluations per step of the isokinetic McLachlan integrator (BlackJAX's default for MCLMC)
GRADS_PER_STEP = 2
#: a tuned state more than this many nats per dimension below the member's optimum is a collapse
COLLAPSE_PER_DIM = 5.0
#: the preconditioned state may lie at most this many sqrt(d) below the unit metric's (a typical set's log
#: density fluctuates by about sqrt(d / 2))
TYPICAL_SET_SDS = 5.0
#: the step size's calibration to the energy-error target after tuning: rounds, and steps per round
CALIBRATION_ROUNDS, CALIBRATION_STEPS = 4, 100


@dataclass(frozen=True)
class MileSettings:
    """Settings of a MILE run, validated on construction (module docstring for what each does).

    Args:
      num_members: ensemble members (chains).
      map_steps, learning_rate: full-batch Adam steps per member and their starting learning rate.
      tuning_steps: MCLMC tuning steps per member (before the calibration).
      sampling_steps, thin: MCLMC sampling steps per member, and one draw kept every ``thin``.
      desired_energy_var: the tuner's target energy-error variance per dimension.
      step_size_init: the tuner's first step size.
      num_effective_samples: the tuner's averaging window (BlackJAX's name).
      diagonal_preconditioning: estimate a diagonal preconditioner while tuning.

    With a checkpoint path the run is checkpointed after every member (a member is minutes of work; the
    spec key ``checkpoint_every`` belongs to NUTS and the minibatch methods).
    """

    num_members: int = 8
    map_steps: int = 2000
    learning_rate: float = 0.01
    tuning_steps: int = 2000
    sampling_steps: int = 5000
    thin: int = 50
    desired_energy_var: float = 5e-4
    step_size_init: float = 0.005
    num_effective_samples: int = 100
    diagonal_preconditioning: bool = True

    def __post_init__(self):
        for name in ("num_members", "map_steps", "sampling_steps", "thin", "num_effective_samples"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=1))
        object.__setattr__(self, "tuning_steps", check_int("tuning_steps", self.tuning_steps, minimum=4))
        if self.thin > self.sampling_steps:
            raise InputError(f"thin must be at most sampling_steps ({self.sampling_steps}), got {self.thin}")
        for name in ("learning_rate", "desired_energy_var", "step_size_init"):
            check_positive(name, getattr(self, name))
        check_in_interval("desired_energy_var", self.desired_energy_var, 0.0, 1.0, low_open=True)
        object.__setattr__(self, "diagonal_preconditioning",
                           check_bool("diagonal_preconditioning", self.diagonal_preconditioning))

    @classmethod
    def from_dict(cls, table: dict) -> "MileSettings":
        """Settings from a spec's ``[inference]`` table (unknown keys ignored: the spec layer checks them)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in table.items() if k in names})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def draws_per_member(self) -> int:
        return self.sampling_steps // self.thin

    def tune_steps(self) -> int:
        """Integrator steps of the tuning: three calls of half of ``tuning_steps`` (the second with BlackJAX's
        re-adaptation, a third of its steps more), or one without preconditioning, and the calibration."""
        half = round(self.tuning_steps * 0.5)
        calibration = CALIBRATION_ROUNDS * min(CALIBRATION_STEPS, max(1, self.tuning_steps // 4))
        return half + (2 * half + half // 3 if self.diagonal_preconditioning else 0) + calibration

    def gradient_evaluations(self) -> dict:
        """Gradient evaluations per member by stage."""
        return {"map": self.map_steps, "tune": GRADS_PER_STEP * self.tune_steps(),
                "sample": GRADS_PER_STEP * self.sampling_steps}


@dataclass
class MileResult:
    """Draws ``samples[name]`` ``(members, draws, ...)`` (constrained sites and deterministics), ``stats``
    per draw (``step_size``, ``L``, ``log_density``, ``energy_var``: the mean squared energy error per
    dimension over the draw's ``thin`` steps, ``diverging``: a non-finite step among them, ``num_steps``:
    gradient evaluations per draw, ``preconditioned``, ``tune_steps``), ``map_losses`` ``(members, map_steps)``, ``seconds``
    (compilation included), ``member_seconds`` per stage, ``gradient_evaluations`` (all members, by stage)
    and the settings."""

    samples: dict
    stats: dict
    map_losses: np.ndarray
    seconds: float
    member_seconds: list
    gradient_evaluations: dict
    settings: dict


class _MemberOut(NamedTuple):
    samples: dict
    stats: dict
    map_loss: np.ndarray
    seconds: dict
    preconditioned: bool


def estimate_seconds(config: BNNConfig, num_data: int, settings: MileSettings) -> float:
    """A conservative estimate of a run's time on this machine's CPU (3 dense passes of 2 flops per weight and
    point per gradient evaluation); on a GPU it is much faster."""
    grads = sum(settings.gradient_evaluations().values()) * settings.num_members
    return grads * 6.0 * num_parameters(config) * num_data / FLOPS_PER_SECOND


def check_size(config: BNNConfig, num_data: int, settings: MileSettings, *, max_minutes: float | None = None) -> float:
    """Refuse (``InputError`` with the estimate) a run estimated to take more than ``max_minutes`` on a CPU, or
    whose draws would not fit in half of this machine's memory; returns the estimate in seconds."""
    from ..memory import require_memory

    seconds = estimate_seconds(config, num_data, settings)
    if max_minutes is not None and jax.default_backend() == "cpu" and seconds > 60 * max_minutes:
        raise InputError(f"estimated {seconds / 60:.0f} min on this CPU ({settings.num_members} members of "
                         f"{num_parameters(config):,} parameters on {num_data:,} points, full-batch gradients), over "
                         f"--max-minutes {max_minutes:g}; lower num_members or sampling_steps, or raise --max-minutes")
    need = 4.0 * num_parameters(config) * (settings.draws_per_member * settings.num_members + 8)
    require_memory(need, "the draws", "keep fewer draws (raise thin) or lower --widths")
    return seconds


class _Member:
    """The compiled stages of one fit (built once per fit or resume, shared by the members), for any log density
    ``logdensity(position)`` of a pytree; ``num_data`` scales the optimiser's loss (the mean per data point)."""

    def __init__(self, logdensity, s: MileSettings, num_data: int = 1):
        import blackjax
        import optax

        self.s, n = s, num_data
        self.logdensity = logdensity
        self.kernel = blackjax.mcmc.mclmc.build_kernel()
        schedule = optax.cosine_decay_schedule(s.learning_rate, s.map_steps, alpha=0.01)
        optimizer = optax.adam(schedule)

        @jax.jit
        def fit_map(p):
            loss = lambda q: -self.logdensity(q) / n

            def body(carry, _):
                q, st = carry
                value, g = jax.value_and_grad(loss)(q)
                up, st = optimizer.update(g, st, q)
                return (optax.apply_updates(q, up), st), value

            (q, _), losses = jax.lax.scan(body, (p, optimizer.init(p)), None, length=s.map_steps)
            return q, losses

        self.fit_map = fit_map
        self._tuners = {}  # (frac_tune1, frac_tune2, diagonal_preconditioning) -> one compiled tuner per fit
        self._sample = jax.jit(self._sample_impl)
        self._energy = jax.jit(self._energy_impl)
        self.calibration_steps = min(CALIBRATION_STEPS, max(1, s.tuning_steps // 4))

    # -- tuning ----------------------------------------------------------------------------------------------
    def _find(self, state, key, params, *, frac_tune1, frac_tune2, diagonal_preconditioning):
        """BlackJAX's ``mclmc_find_L_and_step_size`` under one ``jax.jit`` per stage, kept for the fit: called
        bare, it builds and compiles new closures on every call, once per stage and member."""
        import blackjax

        stage = (frac_tune1, frac_tune2, diagonal_preconditioning)
        if stage not in self._tuners:
            s = self.s

            def find(state, key, params):
                return blackjax.mclmc_find_L_and_step_size(
                    self.kernel, s.tuning_steps, state, key, params=params, logdensity_fn=self.logdensity,
                    frac_tune1=frac_tune1, frac_tune2=frac_tune2, frac_tune3=0.0,
                    desired_energy_var=s.desired_energy_var, num_effective_samples=s.num_effective_samples,
                    diagonal_preconditioning=diagonal_preconditioning)

            self._tuners[stage] = jax.jit(find)
        state, params, steps = self._tuners[stage](state, key, params)
        return state, params, int(steps)

    def tune(self, key, position, dim):
        """Tune from the optimum ``position`` (module docstring): returns the state, BlackJAX's parameters, the
        integrator steps spent and whether the diagonal preconditioner is used."""
        import blackjax
        from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState

        s = self.s
        k_init, k_unit, k_scale, k_metric, k_cal = jax.random.split(key, 5)
        state = blackjax.mcmc.mclmc.init(position, self.logdensity, k_init)
        dtype = state.logdensity.dtype
        start = MCLMCAdaptationState(jnp.sqrt(dim), jnp.asarray(s.step_size_init, dtype), jnp.ones((dim,), dtype))
        floor = float(state.logdensity) - COLLAPSE_PER_DIM * dim
        # 1. the step size in the unit metric, from the optimum: half of tuning_steps
        tuned, params, steps = self._find(state, k_unit, start, frac_tune1=0.5, frac_tune2=0.0,
                                          diagonal_preconditioning=False)
        if not _healthy(tuned, params, floor):
            raise InputError(f"mile: the MCLMC tuner collapsed (step size {float(params.step_size):.3g}, log density "
                             f"{float(tuned.logdensity):.6g} against {float(state.logdensity):.6g} at the optimum); "
                             f"lower step_size_init (now {s.step_size_init}) or desired_energy_var (now "
                             f"{s.desired_energy_var})")
        preconditioned = False
        if s.diagonal_preconditioning:
            # 2. the scale of each coordinate from the other half (BlackJAX's estimate; the state and step size its
            #    short re-adaptation leaves are not used: starting from the unit metric's step size it collapsed)
            _, scaled, more = self._find(tuned, k_scale, params, frac_tune1=0.0, frac_tune2=0.5,
                                         diagonal_preconditioning=True)
            steps += more
            imm = scaled.inverse_mass_matrix
            if bool(jnp.all(jnp.isfinite(imm) & (imm > 0))):
                # 3. the step size for that metric, from the healthy state and a quarter of the unit metric's step
                trial = MCLMCAdaptationState(jnp.sqrt(dim), params.step_size * 0.25, imm)
                new, new_params, more = self._find(tuned, k_metric, trial, frac_tune1=0.5, frac_tune2=0.0,
                                                   diagonal_preconditioning=False)
                steps += more
                near = float(tuned.logdensity) - TYPICAL_SET_SDS * math.sqrt(dim)
                if _healthy(new, new_params, max(floor, near)):
                    tuned, params, preconditioned = new, new_params, True
        tuned, params, more = self.calibrate(k_cal, tuned, params)
        return tuned, params, int(steps + more), preconditioned

    def calibrate(self, key, state, params):
        r"""Lower the step size until the measured energy error per dimension is at most near the target: the
        tuner's weighted average left it 15-35x above on the real-size MNIST network.  :data:`CALIBRATION_ROUNDS`
        rounds of :data:`CALIBRATION_STEPS` steps (at most a quarter of ``tuning_steps``), each multiplying the step
        size by
        :math:`(\text{target} / \text{measured})^{1/6}` (the energy error's variance grows as the step
        size to the sixth), clipped to [1/2, 1]: never raised (raising it on a quiet stretch of 100 steps
        broke a member in trials)."""
        target = self.s.desired_energy_var
        for k in jax.random.split(key, CALIBRATION_ROUNDS):
            new, evar, ok = self._energy(state, k, params.L, params.step_size, params.inverse_mass_matrix)
            evar = float(evar)
            if not bool(ok) or not math.isfinite(evar):
                params = params._replace(step_size=params.step_size * 0.5)
                continue
            state = new
            factor = min(1.0, max(0.5, (target / max(evar, 1e-30)) ** (1.0 / 6.0)))
            params = params._replace(step_size=params.step_size * factor)
        return state, params, CALIBRATION_ROUNDS * self.calibration_steps

    # -- sampling --------------------------------------------------------------------------------------------
    def _steps(self, state, key, num, L, step_size, inverse_mass_matrix):
        """``num`` MCLMC steps from ``state``: the last state, the mean squared energy error per dimension and
        whether every step was finite."""
        def step(st, k):
            st, info = self.kernel(k, st, self.logdensity, inverse_mass_matrix, L, step_size)
            return st, (jnp.square(info.energy_change), info.nonans)

        st, (de2, ok) = jax.lax.scan(step, state, jax.random.split(key, num))
        return st, jnp.mean(de2) / inverse_mass_matrix.shape[0], jnp.all(ok)

    def _energy_impl(self, state, key, L, step_size, inverse_mass_matrix):
        return self._steps(state, key, self.calibration_steps, L, step_size, inverse_mass_matrix)

    def _sample_impl(self, state, key, L, step_size, inverse_mass_matrix):
        s = self.s

        def draw(st, k):
            st, evar, ok = self._steps(st, k, s.thin, L, step_size, inverse_mass_matrix)
            return st, (st.position, st.logdensity, evar, ~ok)

        return jax.lax.scan(draw, state, jax.random.split(key, s.draws_per_member))[1]

    def run(self, key, position, postprocess, log=None, index=0) -> _MemberOut:
        s = self.s
        k_tune, k_sample = jax.random.split(key)
        t0 = time.perf_counter()
        opt, losses = self.fit_map(position)
        losses = np.asarray(jax.device_get(losses))
        t1 = time.perf_counter()
        if not np.all(np.isfinite(losses)):
            raise InputError(f"mile: member {index + 1}'s optimisation diverged (loss {losses[-1]}); lower "
                             f"learning_rate (now {s.learning_rate})")
        dim = int(sum(np.size(v) for v in jax.tree.leaves(opt)))
        tuned, params, tune_steps, preconditioned = self.tune(k_tune, opt, dim)
        t2 = time.perf_counter()
        pos, logd, evar, div = jax.device_get(self._sample(tuned, k_sample, params.L, params.step_size,
                                                           params.inverse_mass_matrix))
        t3 = time.perf_counter()
        draws = jax.device_get(jax.vmap(postprocess)(pos))
        m = s.draws_per_member
        stats = {"step_size": np.full(m, float(params.step_size), np.float32),
                 "L": np.full(m, float(params.L), np.float32),
                 "log_density": np.asarray(logd), "energy_var": np.asarray(evar, np.float32),
                 "diverging": np.asarray(div, bool), "num_steps": np.full(m, GRADS_PER_STEP * s.thin, np.int32),
                 "preconditioned": np.full(m, preconditioned, bool), "tune_steps": np.full(m, tune_steps, np.int32)}
        if log is not None:
            log(f"mile: member {index + 1}/{s.num_members}: MAP loss {losses[0]:.4g} -> {losses[-1]:.4g} "
                f"({t1 - t0:.1f} s), tuned L {float(params.L):.3g} step {float(params.step_size):.3g}"
                f"{'' if preconditioned else ' (unit metric)'} ({t2 - t1:.1f} s), {m} draws ({t3 - t2:.1f} s), energy error "
                f"{float(np.mean(evar)):.2g} per dim (target {s.desired_energy_var:g})")
        return _MemberOut({k: np.asarray(v) for k, v in draws.items()}, stats, losses,
                          {"map": t1 - t0, "tune": t2 - t1, "sample": t3 - t2}, preconditioned)


def _healthy(state, params, floor: float) -> bool:
    eps = float(params.step_size)
    return bool(math.isfinite(eps) and eps > 1e-8 and math.isfinite(float(state.logdensity))
                and float(state.logdensity) > floor)


def _member_key(key, index: int):
    return jax.random.fold_in(jax.random.wrap_key_data(raw_key(key)), index)


def run_mile(key, config: BNNConfig, X, y, settings: MileSettings, *, dtype: str | None = "float32", model=None,
             checkpoint=None, log=None, stop_after: int | None = None) -> MileResult:
    """Fit ``settings.num_members`` members and sample from each (module docstring); same key, same draws.

    ``X`` ``(n, d_in)`` model inputs, ``y`` labels or standardised targets.  ``checkpoint``: a path written
    after every member.  ``log``: one line per member.  ``stop_after``: stop
    after that many members (an interruption; continue with :func:`resume_mile`).
    """
    if not isinstance(settings, MileSettings):
        raise InputError("settings must be a MileSettings")
    key = raw_key(key)
    meta = {"settings": {**settings.to_dict(), "method": "mile"}, "key": [int(k) for k in np.asarray(key)]}
    return _loop(key, config, X, y, settings, dtype, model, meta, [], [], 0.0, checkpoint, log, stop_after)


def resume_mile(checkpoint, config: BNNConfig, X, y, *, model=None, log=None) -> MileResult:
    """Continue the run saved in ``checkpoint`` (same data as the interrupted run) to its last member."""
    ck = load_checkpoint(checkpoint)
    meta = ck["settings"]
    if meta.get("settings", {}).get("method") != "mile":
        raise InputError(f"{checkpoint}: not the checkpoint of a MILE run")
    settings = MileSettings.from_dict(meta["settings"])
    done = int(np.asarray(ck["leaves"][0]))
    member_seconds = [list(c) for c in meta.pop("member_seconds", [])]
    outs = [_MemberOut({k[1:]: v[i] for k, v in ck["samples"].items()},
                       {k: v[i] for k, v in ck["stats"].items() if k != "map_loss"}, ck["stats"]["map_loss"][i],
                       dict(zip(("map", "tune", "sample"), member_seconds[i])), bool(ck["stats"]["preconditioned"][i][0]))
            for i in range(done)]
    key = np.asarray(meta["key"], np.uint32)
    return _loop(key, config, X, y, settings, meta["dtype"], model, meta, outs, member_seconds, ck["seconds"],
                 checkpoint, log, None)


def _loop(key, config, X, y, s: MileSettings, dtype, model, meta, outs, member_seconds, seconds, checkpoint, log,
          stop_after) -> MileResult:
    with precision(dtype):
        X, y = _model_arrays(X, y)
        meta = {**meta, "dtype": current_dtype(), "backend": jax.default_backend(),
                "devices": jax.local_device_count()}
        if config.has_discrete:
            raise InputError(f"method 'mile' needs continuous node variances; the {config.prior_name!r} prior is "
                             f"discrete: use method 'nuts' (DiscreteHMCGibbs)")
        n = int(X.shape[0])
        ld = log_density_fn(config, n, n, model=model)
        member = _Member(lambda p: ld(p, X, y), s, n)
        positions, postprocess = initial_positions(key, config, X, y, s.num_members, model=model)
        start = len(outs)
        stop = s.num_members if stop_after is None else min(s.num_members, start + int(stop_after))
        for i in range(start, stop):
            t0 = time.perf_counter()
            p0 = jax.tree.map(lambda a: a[i], positions)
            out = member.run(_member_key(key, i + 1), p0, postprocess, log=log, index=i)
            seconds += time.perf_counter() - t0
            outs.append(out)
            member_seconds.append([out.seconds["map"], out.seconds["tune"], out.seconds["sample"]])
            if checkpoint is not None:
                _save(checkpoint, outs, seconds, {**meta, "member_seconds": member_seconds})
    return _result(outs, seconds, member_seconds, s, meta)


def _stack(outs, field):
    return {k: np.stack([getattr(o, field)[k] for o in outs]) for k in getattr(outs[0], field)}


def _save(path, outs, seconds, meta):
    samples = {f"m{k}": v for k, v in _stack(outs, "samples").items()}
    stats = {**_stack(outs, "stats"), "map_loss": np.stack([o.map_loss for o in outs])}
    save_checkpoint(path, (np.asarray(len(outs), np.int32),), samples, stats, seconds=seconds, settings=meta)


def _result(outs, seconds, member_seconds, s: MileSettings, meta) -> MileResult:
    unit = int(sum(not o.preconditioned for o in outs))
    grads = {"map": s.map_steps * len(outs),
             "tune": GRADS_PER_STEP * int(sum(int(o.stats["tune_steps"][0]) for o in outs)),
             "sample": GRADS_PER_STEP * s.sampling_steps * len(outs)}
    grads["total"] = sum(grads.values())
    return MileResult(_stack(outs, "samples"), _stack(outs, "stats"), np.stack([o.map_loss for o in outs]),
                      float(seconds), member_seconds, grads, {**meta, "unit_metric_members": unit})
