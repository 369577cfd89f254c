r"""Model (c): :math:`\lambda \sim \mathrm{Beta}(c/p, 1/2)` (normal-gamma-like).

:math:`B(c/p, 1/2) \sim p/c`, so :math:`p F_p(dx) \to \rho(dx) = c\,x^{-1}(1-x)^{-1/2}\,dx` on (0, 1),
drift 0 (MoGP), :math:`E\Lambda = 2c`, :math:`\mathrm{Var}\,\Lambda = 4c/3`.  Closed forms:

* tail :math:`\bar\rho(x) = 2c\,\mathrm{artanh}\sqrt{1-x}`, inverse :math:`\mathrm{sech}^2(g/(2c))`, so
  the ordered jumps decay like :math:`4 e^{-G_j/c}` (Table 1: :math:`O(e^{-cj})`);
* :math:`\int_0^x u\,\rho(du) = 2c(1 - \sqrt{1-x})`;
* :math:`\psi(t) = 2c\int_0^1 (1 - e^{-t(1-v^2)})/(1-v^2)\,dv` (with :math:`x = 1 - v^2`; the integrand is
  smooth), by 64-point Gauss-Legendre quadrature.

:math:`\Lambda` is sampled by Ferguson-Klass with :math:`J = 50 + 50c` jumps plus the remainder mean
(:math:`\approx 4c\,e^{-J/c}`: below float precision).
"""

from __future__ import annotations

import jax.numpy as jnp

from ..validation import check_positive, hyperparameter
from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior, _float, gauss_legendre
from .distributions import LogSpaceBeta

__all__ = ["BetaLevy", "BetaPrior"]


class BetaLevy(LevyMeasure):
    r""":math:`\rho(dx) = c\,x^{-1}(1-x)^{-1/2}` on (0, 1)."""

    def __init__(self, c):
        self.c = c

    def density(self, x):
        x = _float(x)
        inside = (x > 0) & (x < 1)
        xs = jnp.where(inside, x, 0.5)
        return jnp.where(inside, self.c / (xs * jnp.sqrt(1 - xs)), 0.0)

    def tail(self, x):
        x = jnp.clip(_float(x), 0.0, 1.0)
        return 2 * self.c * jnp.arctanh(jnp.sqrt(1 - x))

    def inverse_tail(self, g):
        # sech^2(y) = 4 e^{-2y} / (1 + e^{-2y})^2, stable for large y
        y = _float(g) / (2 * self.c)
        e = jnp.exp(-2 * y)
        return 4 * e / (1 + e) ** 2

    def laplace_exponent(self, t):
        t = _float(t)
        v, w = gauss_legendre(64, 0.0, 1.0)
        v, w = jnp.asarray(v), jnp.asarray(w)
        one_minus = 1 - v**2
        integrand = -jnp.expm1(-t[..., None] * one_minus) / one_minus
        return 2 * self.c * (integrand * w).sum(-1)

    def truncated_first_moment(self, x):
        x = jnp.clip(_float(x), 0.0, 1.0)
        return 2 * self.c * (1 - jnp.sqrt(1 - x))


class BetaPrior(NodeVariancePrior):
    r""":math:`\lambda \sim \mathrm{Beta}(c/p, 1/2)`, sampled in log space (no underflow at :math:`c/p \ll 1`)."""

    name = "beta"
    _defaults = {"c": 1.0}

    def _check(self, hyper):
        return {"c": hyperparameter("c", hyper["c"], check_positive)}

    def _distribution(self):
        return LogSpaceBeta(self.hyper["c"] / self.width, 0.5)

    def log_sample(self, key, sample_shape=()):
        return self._distribution().log_sample(key, tuple(sample_shape))

    def _limit(self):
        c = self.hyper["c"]
        num_jumps = int(50 + 50 * c) if isinstance(c, float) else 200  # arrays: a fixed truncation
        return InfiniteWidthLimit(0.0, BetaLevy(c), default_num_jumps=num_jumps)
