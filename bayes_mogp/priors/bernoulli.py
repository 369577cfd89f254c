r"""Model (b): :math:`\lambda = s\,\mathrm{Bernoulli}(c/p)` (Jantre et al. 2021).

:math:`p F_p \to \rho = c\,\delta_s` (an atom of mass ``c`` at ``s``), drift 0, so
:math:`\Lambda = s\,N`, :math:`N \sim \mathrm{Poisson}(c)`: a compound-Poisson MoGP with finitely many
active nodes (Poisson(2) for Table 1's ``c = 2, s = 1``).

Lévy measure: :math:`\bar\rho(x) = c\,1\{x < s\}`, :math:`\bar\rho^{-1}(g) = s\,1\{g < c\}`,
:math:`\psi(t) = c(1 - e^{-ts})`, :math:`\int_{(0,x)} u\,\rho(du) = c s 1\{x > s\}`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..validation import check_positive, hyperparameter
from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior, _float
from .distributions import BernoulliVariance
from ..errors import InputError

__all__ = ["BernoulliLevy", "BernoulliPrior"]


class BernoulliLevy(LevyMeasure):
    r""":math:`\rho = c\,\delta_s`."""

    def __init__(self, rate, size):
        self.rate, self.size = rate, size
        self.total_mass = self.rate

    def density(self, x):
        x = _float(x)
        return jnp.where(x == self.size, self.rate, 0.0)

    def tail(self, x):
        return jnp.where(_float(x) < self.size, self.rate, 0.0)

    def inverse_tail(self, g):
        return jnp.where(_float(g) < self.rate, self.size, 0.0)

    def laplace_exponent(self, t):
        return self.rate * (1.0 - jnp.exp(-_float(t) * self.size))

    def truncated_first_moment(self, x):
        return jnp.where(_float(x) > self.size, self.rate * self.size, 0.0)


class BernoulliPrior(NodeVariancePrior):
    r""":math:`\lambda = \text{size} \cdot \mathrm{Bernoulli}(\text{rate}/p)`; needs ``width >= rate``."""

    name = "bernoulli"
    _defaults = {"rate": 2.0, "size": 1.0}

    def _check(self, hyper):
        rate = hyperparameter("rate", hyper["rate"], check_positive)
        if not isinstance(rate, jax.core.Tracer) and float(jnp.max(rate)) > self.width:
            raise InputError(f"width must be >= rate = {rate} for bernoulli (probability rate/width <= 1), got {self.width}")
        return {"rate": rate, "size": hyperparameter("size", hyper["size"], check_positive)}

    def _distribution(self):
        return BernoulliVariance(self.hyper["rate"] / self.width, self.hyper["size"])

    def _limit(self):
        rate, size = self.hyper["rate"], self.hyper["size"]

        def total(key, shape):
            return size * jax.random.poisson(key, rate, shape).astype(jnp.result_type(float))

        return InfiniteWidthLimit(0.0, BernoulliLevy(rate, size), total_sampler=total)
