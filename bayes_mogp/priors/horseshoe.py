r"""Model (d): the horseshoe, :math:`\lambda = \tau^2 U^2`, :math:`U \sim C^+(0,1)`, :math:`\tau = \pi c/p`.

:math:`p\,P(\lambda > x) = p\,P(U > \sqrt x/\tau) \to 2c\,x^{-1/2}`, so :math:`\rho(dx) = c\,x^{-3/2}dx`,
drift 0, and :math:`\psi(t) = 2c\sqrt{\pi t}`: :math:`\Lambda` is positive 1/2-stable (Lévy),
:math:`\Lambda \overset{d}{=} 2\pi c^2 / Z^2`, :math:`Z \sim N(0,1)` (Table 1, ``c = 1``: :math:`2\pi/Z^2`).

Closed forms: :math:`\bar\rho(x) = 2c x^{-1/2}`, :math:`\bar\rho^{-1}(g) = 4c^2/g^2` (ordered jumps
:math:`O(j^{-2})`), :math:`\int_0^x u\,\rho(du) = 2c\sqrt x`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions.transforms import PowerTransform

from ..validation import check_positive
from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior, _float

__all__ = ["HorseshoeLevy", "HorseshoePrior"]


class HorseshoeLevy(LevyMeasure):
    r""":math:`\rho(dx) = c\,x^{-3/2}dx`."""

    def __init__(self, c: float):
        self.c = float(c)

    def density(self, x):
        x = _float(x)
        return jnp.where(x > 0, self.c * jnp.where(x > 0, x, 1.0) ** -1.5, 0.0)

    def tail(self, x):
        return 2 * self.c / jnp.sqrt(_float(x))

    def inverse_tail(self, g):
        return (2 * self.c / _float(g)) ** 2

    def laplace_exponent(self, t):
        return 2 * self.c * jnp.sqrt(math.pi * _float(t))

    def truncated_first_moment(self, x):
        return 2 * self.c * jnp.sqrt(_float(x))


class HorseshoePrior(NodeVariancePrior):
    r""":math:`\lambda = (\pi c/p)^2 U^2`: ``distribution`` is ``HalfCauchy(pi c/p)`` under ``PowerTransform(2)``."""

    name = "horseshoe"
    _defaults = {"scale": 1.0}

    def _check(self, hyper):
        return {"scale": check_positive("scale", hyper["scale"])}

    @property
    def global_scale(self) -> float:
        """:math:`\\tau = \\pi c / p`, the horseshoe's global scale."""
        return math.pi * self.hyper["scale"] / self.width

    def _distribution(self):
        return dist.TransformedDistribution(dist.HalfCauchy(self.global_scale), PowerTransform(2.0))

    def log_sample(self, key, sample_shape=()):
        dtype = jnp.result_type(float)
        u = jax.random.uniform(key, tuple(sample_shape), dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
        # |tan(pi u / 2)| is half-Cauchy
        return 2 * (math.log(self.global_scale) + jnp.log(jnp.tan(0.5 * math.pi * u)))

    def _limit(self):
        c = self.hyper["scale"]

        def total(key, shape):
            z = jax.random.normal(key, shape, dtype=jnp.result_type(float))
            return 2 * math.pi * c**2 / z**2

        return InfiniteWidthLimit(0.0, HorseshoeLevy(c), total_sampler=total)
