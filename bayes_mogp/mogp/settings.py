"""The settings of a MoGP fit: one frozen, validated record (:class:`MoGPSettings`).

>>> from bayes_mogp.mogp import MoGPSettings
>>> s = MoGPSettings(prior="beta", num_jumps=4)        # every field checked in __post_init__
>>> s.replace(num_chains=4).num_chains                  # a new record; unknown names are refused
4

:func:`bayes_mogp.mogp.fit` takes one (``settings=``) and/or field names as keyword arguments, and the fitted
:class:`~bayes_mogp.mogp.MoGPPosterior` keeps the resolved record (``b_var`` and ``rank`` filled in from the
data) as ``post.settings``.  Run folders store :meth:`MoGPSettings.to_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import InputError, InputTypeError
from ..validation import check_bool, check_choice, check_in_interval, check_int, check_nonnegative, check_positive

__all__ = ["MoGPSettings"]


@dataclass(frozen=True)
class MoGPSettings:
    """What a MoGP fit does.

    Model: ``prior`` (a name of :data:`bayes_mogp.priors.PRIOR_NAMES` or a prior object) and its
    hyperparameters ``prior_hyper``; ``depth`` (hidden layers of the base kernel, the last one's features are
    learned); ``num_jumps`` J (largest jumps of the Levy measure kept); ``rank`` of the feature basis (None: the
    data decide, :func:`bayes_mogp.mogp.features.build_feature_map`); ``activation``; ``w_var``, ``b_var``
    (weight and bias variances of the features; ``b_var=None``: 1 for standardised inputs, 0 for images);
    ``drift`` ("free": half-normal prior, "prior": the prior's limit drift); ``noise_floor`` (added to the noise
    variance, model units).

    Inference: ``map_steps`` (Adam steps of the MAP start), then NUTS with ``num_warmup``, ``num_samples``,
    ``num_chains``, ``max_tree_depth`` (1 to 12), ``warmup_tree_depth`` (the cap during warmup only, 1 to 12,
    above or below ``max_tree_depth``, NumPyro's ``max_tree_depth=(warmup, sampling)``; None, the default:
    ``max_tree_depth``.  5 caps a warmup iteration at 31 leapfrog steps instead of 127 and halves a large fit's
    time, but the warmup's long trajectories are also what moves the chains away from the MAP start into the
    features of hard cases; a deeper warmup than sampling keeps those and spends the sampling phase's gradients on
    more, shorter trajectories: benchmarks/bench_mogp_teacher.py),
    ``target_accept_prob`` in (0, 1), ``dense_mass`` (a dense mass matrix adapted in warmup, NumPyro's
    ``dense_mass=True``, instead of a diagonal one), ``chain_method`` ("vectorized", the default: all chains in
    one program, the gradient of every chain in one pass over the n x n eigenbasis: at n = 2000 a step of 4 chains
    takes 4.4 ms against 4 x 1.6 ms one after the other; "sequential": one chain after the other; the same law,
    other random numbers), ``chain_selection`` ("none", the default: every chain samples from where its warmup
    left it; "best": after the warmup every chain continues from the chain whose last
    :data:`~bayes_mogp.mogp.model.CHAIN_SELECTION_WINDOW` warmup iterations have the highest mean log posterior
    density, :func:`bayes_mogp.nuts.sample`'s ``select_window``: the chains then sample the best mode the warmup
    found, R-hat across them measures the mixing within it, and the diagnostics keep each chain's warmup log
    density; NUTS only).

    Sampler: ``sampler`` "nuts" (the MAP start and NUTS above), "smc" (adaptive tempered SMC from the prior,
    :mod:`bayes_mogp.mogp.smc`: ``num_chains`` independent runs of ``smc_particles`` particles each, the
    tempering schedule keeping a relative ESS of ``smc_target_ess`` in (0, 1), ``smc_moves`` HMC moves of
    ``smc_leapfrog`` leapfrog steps per tempering step; no MAP start, and ``num_warmup``, ``num_samples``,
    ``max_tree_depth``, ``target_accept_prob``, ``dense_mass``, ``chain_method`` are NUTS's only) or "pt"
    (parallel tempering from the MAP start, :mod:`bayes_mogp.mogp.tempering`: ``num_chains`` chains of
    ``pt_temperatures`` replicas, the hottest at the likelihood's power ``pt_beta_min`` in (0, 1), HMC moves of
    ``pt_leapfrog`` leapfrog steps tuned to ``target_accept_prob``, ``num_warmup`` and ``num_samples`` iterations
    rounded up to multiples of 10, the warmup to at least 30; ``max_tree_depth``, ``dense_mass``, ``chain_method``
    and ``chain_selection`` are NUTS's only).

    Numerics: ``rotation_dtype`` "float32" (default) or "float64", the precision in which the sampler's
    likelihood rotates the features into the base kernel's eigenbasis, its one O(n^2 J) operation (float32:
    1.5x faster per gradient of 4 vectorised chains at n = 2000, log-likelihood errors of order 1e-7; everything
    else, prediction and leave-one-out included, is float64; :mod:`bayes_mogp.mogp.likelihood`).
    """

    prior: Any = "horseshoe"
    prior_hyper: Mapping = field(default_factory=dict)
    depth: int = 1
    num_jumps: int = 8
    rank: int | None = None
    activation: str = "relu"
    w_var: float = 2.0
    b_var: float | None = None
    drift: str = "free"
    noise_floor: float = 0.0
    map_steps: int = 1500
    num_warmup: int = 200
    num_samples: int = 100
    num_chains: int = 4
    max_tree_depth: int = 7
    warmup_tree_depth: int | None = None
    target_accept_prob: float = 0.85
    dense_mass: bool = False
    chain_method: str = "vectorized"
    chain_selection: str = "none"
    sampler: str = "nuts"
    smc_particles: int = 64
    smc_target_ess: float = 0.9
    smc_moves: int = 10
    smc_leapfrog: int = 10
    pt_temperatures: int = 32
    pt_beta_min: float = 0.1
    pt_leapfrog: int = 16
    rotation_dtype: str = "float32"

    def __post_init__(self):
        from .features import FEATURE_ACTIVATIONS
        from .likelihood import ROTATION_DTYPES
        from .model import CHAIN_METHODS, CHAIN_SELECTIONS, DRIFTS, SAMPLERS
        from .posterior import _limit

        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen: validated copies)
        if not isinstance(self.prior_hyper, Mapping):
            raise InputTypeError(f"prior_hyper must be a mapping of hyperparameter names to values, "
                                 f"got {type(self.prior_hyper).__name__}")
        set_("prior_hyper", MappingProxyType(dict(self.prior_hyper)))
        _limit(self.prior, self.prior_hyper)  # a known prior name (or object) with valid hyperparameters
        for name, low, high in (("depth", 1, None), ("num_jumps", 1, None), ("map_steps", 1, None),
                                ("num_warmup", 1, None), ("num_samples", 1, None), ("num_chains", 1, None),
                                ("max_tree_depth", 1, 12), ("smc_particles", 2, None), ("smc_moves", 1, None),
                                ("smc_leapfrog", 1, None), ("pt_temperatures", 1, None), ("pt_leapfrog", 1, None)):
            set_(name, check_int(name, getattr(self, name), low, high))
        if self.rank is not None:
            set_("rank", check_int("rank", self.rank, 1))
        if self.warmup_tree_depth is not None:
            set_("warmup_tree_depth", check_int("warmup_tree_depth", self.warmup_tree_depth, 1, 12))
        set_("w_var", check_positive("w_var", self.w_var))
        if self.b_var is not None:
            set_("b_var", check_nonnegative("b_var", self.b_var))
        set_("noise_floor", check_nonnegative("noise_floor", self.noise_floor))
        set_("target_accept_prob", check_in_interval("target_accept_prob", self.target_accept_prob, 0.0, 1.0,
                                                     low_open=True, high_open=True))
        set_("dense_mass", check_bool("dense_mass", self.dense_mass))
        check_choice("drift", self.drift, DRIFTS)
        check_choice("chain_method", self.chain_method, CHAIN_METHODS)
        check_choice("chain_selection", self.chain_selection, CHAIN_SELECTIONS)
        if self.chain_selection != "none" and self.num_chains < 2:
            raise InputError(f"chain_selection={self.chain_selection!r} selects among chains: it needs "
                             f"num_chains >= 2, got {self.num_chains}")
        check_choice("sampler", self.sampler, SAMPLERS)
        set_("smc_target_ess", check_in_interval("smc_target_ess", self.smc_target_ess, 0.0, 1.0, low_open=True,
                                                 high_open=True))
        set_("pt_beta_min", check_in_interval("pt_beta_min", self.pt_beta_min, 0.0, 1.0, low_open=True,
                                              high_open=True))
        check_choice("activation", self.activation, FEATURE_ACTIVATIONS)
        check_choice("rotation_dtype", self.rotation_dtype, ROTATION_DTYPES)

    @property
    def effective_warmup_tree_depth(self) -> int:
        """The tree depth cap of NUTS's warmup: ``warmup_tree_depth`` (None: ``max_tree_depth``)."""
        return self.max_tree_depth if self.warmup_tree_depth is None else self.warmup_tree_depth

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes) -> "MoGPSettings":
        """A copy with ``changes`` (field names; anything else is an :class:`InputTypeError` naming it)."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise InputTypeError(f"unknown MoGP setting(s) {unknown}; allowed: {', '.join(self.names())}")
        return dataclasses.replace(self, **changes)

    @property
    def prior_name(self) -> str:
        """The prior's name ("custom" for a prior object without one)."""
        return self.prior if isinstance(self.prior, str) else getattr(self.prior, "name", "custom")

    def to_dict(self) -> dict:
        """JSON-able fields (a prior object is stored by its name)."""
        out = {f: getattr(self, f) for f in self.names()}
        out["prior"], out["prior_hyper"] = self.prior_name, dict(self.prior_hyper)
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> "MoGPSettings":
        """The inverse of :meth:`to_dict` (unknown names refused).  A record without ``warmup_tree_depth`` (written
        before the setting existed) ran its warmup at ``max_tree_depth``: it loads as None; one without the
        ``pt_`` settings (written before parallel tempering existed) gets their defaults."""
        d = dict(d)
        d.setdefault("warmup_tree_depth", None)
        return cls().replace(**d)
