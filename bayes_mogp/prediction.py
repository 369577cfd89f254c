r"""The predictive distribution every model returns: :class:`Prediction`.

A model's prediction at m inputs is an equally weighted mixture over S components (posterior draws;
S = 1 for an exact GP) of location-scale laws of the observation :math:`y \in \mathbb R^k`, independent
over the k outputs within a component:

.. math::

    p(y_* \mid \text{data}) = \frac1S \sum_{s=1}^S \prod_{c=1}^k
        \frac{1}{\sigma_{sc}}\, f\!\Big(\frac{y_c - \mu_{sc}}{\sigma_{sc}}\Big),

with :math:`f` the standard normal density (``df=None``) or Student-t with ``df`` degrees of freedom.
``loc`` is :math:`\mu` (S, m, k) and ``scale`` is :math:`\sigma` (S, m, k), both in the user's units
(noise included: the law of a new observation, not of the latent function).  From them:

* :attr:`Prediction.mean` (m, k) and :attr:`Prediction.variance` (m, k) (law of total variance);
* :meth:`Prediction.log_density` of observed targets (m,), by log-sum-exp over components;
* :meth:`Prediction.quantile` and :meth:`Prediction.interval` of each output's marginal mixture, by
  bisection on the mixture CDF (60 halvings of a bracket that holds every component's 1e-12 tails).

Classification adds ``probs`` (m, C), the predictive class probabilities, and optionally
``prob_draws`` (S, m, C).  GP-type models (NNGP, MoGP) classify by regression on one-hot targets, so
their classification prediction carries both: the Gaussian mixture of the one-hot targets (``loc``,
``scale``, k = C) and the class probabilities :math:`P(\arg\max_c y_c = k)`; their predicted class is
the argmax of the predictive mean.  A BNN's classification prediction carries ``probs`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from .errors import InputError

__all__ = ["Prediction", "gaussian_class_probabilities", "CLASS_PROBABILITY_NODES"]


@dataclass(frozen=True)
class Prediction:
    """Predictive distribution at m inputs (see the module docstring for the maths)."""

    task: str  # "regression" | "classification"
    loc: np.ndarray | None = None  # (S, m, k) component means of y, user units
    scale: np.ndarray | None = None  # (S, m, k) component scales of y (noise included)
    df: float | None = None  # Student-t degrees of freedom of the components (None: Gaussian)
    probs: np.ndarray | None = None  # (m, C) class probabilities (classification)
    prob_draws: np.ndarray | None = None  # (S, m, C) per-draw class probabilities, where they exist
    info: dict | None = field(default=None, compare=False)  # how it was computed (jitter, solver), if reported

    def __post_init__(self):
        if self.task not in ("regression", "classification"):
            raise InputError(f"task must be regression or classification, got {self.task!r}")
        if (self.loc is None) != (self.scale is None):
            raise InputError("give both loc and scale, or neither")
        if self.loc is not None:
            loc, scale = np.asarray(self.loc, dtype=np.float64), np.asarray(self.scale, dtype=np.float64)
            if loc.ndim != 3 or scale.shape != loc.shape:
                raise InputError(f"loc and scale must both have shape (S, m, k); got {loc.shape} and {scale.shape}")
            object.__setattr__(self, "loc", loc)
            object.__setattr__(self, "scale", scale)
        if self.probs is not None:
            object.__setattr__(self, "probs", np.asarray(self.probs, dtype=np.float64))
        if self.task == "regression" and self.loc is None:
            raise InputError("a regression prediction needs loc and scale")
        if self.task == "classification" and self.probs is None:
            raise InputError("a classification prediction needs probs")
        if self.df is not None and not self.df > 2:
            raise InputError(f"df must be > 2 (finite variance), got {self.df}")

    # -- shapes -----------------------------------------------------------------------------------
    @property
    def num_points(self) -> int:
        return int(self.probs.shape[0] if self.loc is None else self.loc.shape[1])

    @property
    def num_components(self) -> int:
        return 0 if self.loc is None else int(self.loc.shape[0])

    # -- moments ----------------------------------------------------------------------------------
    @property
    def mean(self) -> np.ndarray:
        """Predictive mean (m, k); for a classification prediction without ``loc``, the class probabilities."""
        return self.probs if self.loc is None else self.loc.mean(axis=0)

    @property
    def variance(self) -> np.ndarray:
        """Predictive variance of a new observation (m, k): mean of the component variances plus the
        variance of the component means."""
        if self.loc is None:
            return self.probs * (1.0 - self.probs)
        comp = self.scale**2 * (self.df / (self.df - 2.0) if self.df is not None else 1.0)
        return comp.mean(axis=0) + self.loc.var(axis=0)

    @property
    def predicted_class(self) -> np.ndarray:
        """(m,) argmax of the predictive mean (GP-type models) or of the class probabilities (BNN)."""
        return np.argmax(self.mean if self.loc is not None else self.probs, axis=-1)

    # -- densities and quantiles ------------------------------------------------------------------
    def _component_logpdf(self, z):
        if self.df is None:
            return -0.5 * z**2 - 0.5 * np.log(2 * np.pi)
        return stats.t.logpdf(z, self.df)

    def _component_cdf(self, z):
        return special.ndtr(z) if self.df is None else stats.t.cdf(z, self.df)

    def log_density(self, y) -> np.ndarray:
        r"""log p(y_i) (m,) of targets ``y`` (m, k) or (m,) under the mixture (all k outputs jointly)."""
        if self.loc is None:
            raise InputError("this prediction has no density for real targets (classification without loc)")
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        if y.shape != self.loc.shape[1:]:
            raise InputError(f"y must have shape {self.loc.shape[1:]}, got {y.shape}")
        z = (y[None] - self.loc) / self.scale
        lp = np.sum(self._component_logpdf(z) - np.log(self.scale), axis=-1)  # (S, m)
        return special.logsumexp(lp, axis=0) - np.log(lp.shape[0])

    def cdf(self, q) -> np.ndarray:
        """Marginal mixture CDF of each output at ``q`` (m, k)."""
        return self._component_cdf((np.asarray(q)[None] - self.loc) / self.scale).mean(axis=0)

    def quantile(self, p: float) -> np.ndarray:
        """The ``p``-quantile (m, k) of each output's marginal mixture, by bisection (error < 1e-12 of the bracket)."""
        if self.loc is None:
            raise InputError("this prediction has no quantiles (classification without loc)")
        if not 0.0 < p < 1.0:
            raise InputError(f"p must be in (0, 1), got {p}")
        reach = 8.0 if self.df is None else float(stats.t.ppf(1 - 1e-12, self.df))
        lo = (self.loc - reach * self.scale).min(axis=0)
        hi = (self.loc + reach * self.scale).max(axis=0)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < p
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Central ``level`` predictive interval of each output: (lower (m, k), upper (m, k))."""
        if not 0.0 < level < 1.0:
            raise InputError(f"level must be in (0, 1), got {level}")
        a = 0.5 * (1.0 - level)
        return self.quantile(a), self.quantile(1.0 - a)

    # -- storage ----------------------------------------------------------------------------------
    def to_arrays(self) -> dict:
        """Arrays for ``predictions_<name>.npz``: mean, variance, and whatever the prediction holds."""
        out = {"task": np.asarray(self.task)}
        if self.loc is not None:
            out.update(mean=self.mean, variance=self.variance, loc=self.loc, scale=self.scale)
            lo, hi = self.interval(0.9)
            out.update(lower_90=lo, upper_90=hi)
        if self.df is not None:
            out["df"] = np.asarray(self.df)
        if self.probs is not None:
            out["probs"] = self.probs
            out["predicted_class"] = self.predicted_class
        if self.prob_draws is not None:
            out["prob_draws"] = self.prob_draws
        return out


#: Gauss-Hermite nodes of :func:`gaussian_class_probabilities` (its quadrature error is below 1e-6 at 48)
CLASS_PROBABILITY_NODES = 48


def gaussian_class_probabilities(mean, var, *, num_nodes: int = CLASS_PROBABILITY_NODES) -> np.ndarray:
    r""":math:`P(\arg\max_c y_c = k)` for independent :math:`y_c \sim N(m_c, v)` sharing one variance.

    Gauss-Hermite quadrature in :math:`z = (y_k - m_k)/\sqrt v`:
    :math:`\int \varphi(z) \prod_{c \ne k} \Phi(z + (m_k - m_c)/\sqrt v)\, dz`; ``mean`` (..., m, C), ``var``
    (..., m) -> (..., m, C), rows renormalised to sum to 1 (quadrature error below 1e-6 at 48 nodes).
    Jittable (``jax.numpy``).

    The product over :math:`c` is a running product, one class :math:`c` at a time, of arrays (..., m, C,
    nodes), so that XLA fuses the whole into one loop and never holds the C(C-1) CDFs of every node (276 MB for 8
    draws at m = 1000, C = 10): 1.9-2.0x faster than the product of the materialised pairs on 2 CPU cores (226
    against 435-455 ms there), equal to 1e-14 relative, near the cost of the C^2 special functions themselves
    (``benchmarks/bench_mogp.py``).  The CDFs are multiplied directly (no logarithms: 1.5x faster, equal to
    1e-15); a product can underflow to 0 only below 1e-308, far under the floor of every reported metric
    (:data:`bayes_mogp.metrics.MIN_PROB`).  Each CDF is :math:`\Phi(x) = \tfrac12 \operatorname{erfc}(-x/\sqrt2)`,
    one special function, where ``jax.scipy.special.ndtr`` evaluates both ``erf`` and ``erfc`` and selects (so
    that :math:`1 - \Phi` keeps its relative accuracy for large x, which a product of CDFs never needs): 1.8x
    faster, equal to 1e-15.
    """
    import jax.numpy as jnp
    from jax import lax

    t, w = np.polynomial.hermite.hermgauss(num_nodes)
    a, w = jnp.asarray(np.sqrt(2.0) * t), jnp.asarray(w / np.sqrt(np.pi))
    mean = jnp.asarray(mean)
    c = mean.shape[-1]
    if c == 1:
        return jnp.ones_like(mean)
    sd = jnp.sqrt(jnp.maximum(jnp.asarray(var), 1e-300))[..., None]  # (..., m, 1)
    prod = None
    for j in range(c):  # times Phi(z + (m_k - m_j)/sqrt v) for every k != j, at every node
        delta = (mean - mean[..., j:j + 1]) / sd  # (..., m, C)
        cdf = 0.5 * lax.erfc(-np.sqrt(0.5) * (delta[..., None] + a))  # (..., m, C, nodes)
        cdf = jnp.where((np.arange(c) == j)[:, None], 1.0, cdf)
        prod = cdf if prod is None else prod * cdf
    p = jnp.sum(w * prod, axis=-1)  # (..., m, C)
    return p / jnp.sum(p, axis=-1, keepdims=True)
