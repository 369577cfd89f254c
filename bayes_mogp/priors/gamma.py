r"""Gamma priors in the MoGP regime (gamma process) and generalized gamma (power-law) priors.

Gamma MoGP: :math:`\lambda \sim \mathrm{Gamma}(c/p, \text{rate } b)`.  Then
:math:`\sum_j \lambda_j \sim \mathrm{Gamma}(c, b)` exactly at every width, :math:`\rho(dx) = c x^{-1}
e^{-bx}dx`, drift 0, :math:`\psi(t) = c\log(1 + t/b)`, :math:`\bar\rho(x) = c E_1(bx)`,
:math:`\int_0^x u\rho(du) = c(1 - e^{-bx})/b`; :math:`\bar\rho^{-1}` by :func:`monotone_inverse`.

Generalized gamma: :math:`\rho(dx) = \frac{c}{\Gamma(1-\sigma)} x^{-1-\sigma} e^{-\tau x}dx`,
:math:`0 < \sigma < 1`, :math:`\tau \ge 0`, drift 0, :math:`\psi(t) = \frac c\sigma((t+\tau)^\sigma -
\tau^\sigma)`.  :math:`F_p` is the law of the subordinator's increment over time :math:`1/p`
(:class:`TemperedStable` with :math:`\alpha = c/(\sigma p)`), so :math:`\sum_{j\le p}\lambda_j = \Lambda`
exactly; its density has no closed form (quadrature).  With :math:`z = \tau x`,

.. math::

    \bar\rho(x) = \frac{c}{\sigma\Gamma(1-\sigma)}\Big(x^{-\sigma}e^{-z} - \tau^\sigma\Gamma(1-\sigma)
    Q(1-\sigma, z)\Big), \qquad \int_0^x u\,\rho(du) = c\,\tau^{\sigma-1} P(1-\sigma, z)

(:math:`Q, P` the regularised incomplete gamma functions; at :math:`\tau = 0` the second is
:math:`c\,x^{1-\sigma}/\Gamma(2-\sigma)`).  :math:`\sigma \to 0` recovers the gamma process,
:math:`\sigma = 1/2, \tau = 0` the horseshoe's stable limit.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import gammainc, gammaincc

from ..validation import check_in_interval, check_nonnegative, check_positive, hyperparameter
from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior, _float, monotone_inverse
from .distributions import LogSpaceGamma, TemperedStable, sample_tempered_stable

__all__ = ["exp1", "GammaLevy", "GammaMoGPPrior", "GeneralizedGammaLevy", "GeneralizedGammaPrior"]


_EULER = 0.5772156649015329


def exp1(z):
    r"""Exponential integral :math:`E_1(z)`, :math:`z \ge 0`, with a fixed amount of work per element.

    Written here because ``jax.scipy.special.exp1`` (jax 0.10) does not terminate on some arrays that
    mix small and moderate arguments (e.g. ``[1e-10, 0.5]``).  Series
    :math:`-\gamma - \log z - \sum_k (-z)^k/(k\,k!)` (40 terms) for :math:`z \le 1`, else the continued
    fraction :math:`e^{-z}/(z+1-1/(z+3-4/(z+5-\dots)))` (60 levels); relative error below 1e-13.
    """
    z = _float(z)
    zs = jnp.clip(z, 1e-300, 1.0)
    term, total = jnp.ones_like(zs), jnp.zeros_like(zs)
    for k in range(1, 41):
        term = term * (-zs) / k
        total = total + term / k
    series = -_EULER - jnp.log(zs) - total
    zc = jnp.maximum(z, 1.0)
    t = zc + 121.0
    for n in range(60, 0, -1):
        t = zc + 2 * n - 1 - n * n / t
    frac = jnp.exp(-zc) / t
    return jnp.where(z <= 1.0, series, frac)


class GammaLevy(LevyMeasure):
    r""":math:`\rho(dx) = c\,x^{-1}e^{-bx}dx` (gamma process)."""

    def __init__(self, c, b):
        self.c, self.b = c, b

    def density(self, x):
        x = _float(x)
        xs = jnp.where(x > 0, x, 1.0)
        return jnp.where(x > 0, self.c * jnp.exp(-self.b * xs) / xs, 0.0)

    def tail(self, x):
        z = self.b * _float(x)
        return self.c * exp1(z)

    def inverse_tail(self, g):
        return monotone_inverse(self.tail, self.density, g)

    def laplace_exponent(self, t):
        return self.c * jnp.log1p(_float(t) / self.b)

    def truncated_first_moment(self, x):
        return -self.c * jnp.expm1(-self.b * _float(x)) / self.b


class GammaMoGPPrior(NodeVariancePrior):
    r""":math:`\lambda \sim \mathrm{Gamma}(c/p, \text{rate } b)`; :math:`\Lambda \sim \mathrm{Gamma}(c, b)`."""

    name = "gamma_mogp"
    _defaults = {"c": 2.0, "rate": 1.0}

    def _check(self, hyper):
        return {"c": hyperparameter("c", hyper["c"], check_positive),
                "rate": hyperparameter("rate", hyper["rate"], check_positive)}

    def _distribution(self):
        return LogSpaceGamma(self.hyper["c"] / self.width, self.hyper["rate"])

    def log_sample(self, key, sample_shape=()):
        return self._distribution().log_sample(key, tuple(sample_shape))

    def _limit(self):
        c, b = self.hyper["c"], self.hyper["rate"]

        def total(key, shape):
            return jnp.exp(LogSpaceGamma(c, b).log_sample(key, shape))

        return InfiniteWidthLimit(0.0, GammaLevy(c, b), total_sampler=total)


class GeneralizedGammaLevy(LevyMeasure):
    r""":math:`\rho(dx) = \frac{c}{\Gamma(1-\sigma)} x^{-1-\sigma} e^{-\tau x}dx`."""

    def __init__(self, c: float, sigma: float, tau: float):
        self.c, self.sigma, self.tau = float(c), float(sigma), float(tau)
        self._g = math.gamma(1 - self.sigma)

    def density(self, x):
        x = _float(x)
        xs = jnp.where(x > 0, x, 1.0)
        return jnp.where(x > 0, self.c / self._g * xs ** (-1 - self.sigma) * jnp.exp(-self.tau * xs), 0.0)

    def tail(self, x):
        x = _float(x)
        s, tau = self.sigma, self.tau
        stable = x ** (-s) * jnp.exp(-tau * x)
        if tau > 0:
            stable = stable - tau**s * self._g * gammaincc(1 - s, jnp.clip(tau * x, 0.0, 700.0))
        return self.c / (s * self._g) * stable

    def inverse_tail(self, g):
        if self.tau == 0:  # closed form: (c / (g sigma Gamma(1-sigma)))^(1/sigma)
            return (self.c / (_float(g) * self.sigma * self._g)) ** (1 / self.sigma)
        return monotone_inverse(self.tail, self.density, g)

    def laplace_exponent(self, t):
        s, tau = self.sigma, self.tau
        return self.c / s * ((_float(t) + tau) ** s - tau**s)

    def truncated_first_moment(self, x):
        x = _float(x)
        s, tau = self.sigma, self.tau
        if tau == 0:
            return self.c * x ** (1 - s) / math.gamma(2 - s)
        return self.c * tau ** (s - 1) * gammainc(1 - s, tau * x)


class GeneralizedGammaPrior(NodeVariancePrior):
    r""":math:`\lambda` = increment over time :math:`1/p` of the generalized gamma subordinator (exact sums)."""

    name = "generalized_gamma"
    _defaults = {"c": 2.0, "sigma": 0.5, "tau": 1.0}

    def _check(self, hyper):
        return {
            "c": check_positive("c", hyper["c"]),
            "sigma": check_in_interval("sigma", hyper["sigma"], 0.0, 1.0, low_open=True, high_open=True),
            "tau": check_nonnegative("tau", hyper["tau"]),
        }

    def _distribution(self):
        h = self.hyper
        return TemperedStable(h["c"] / (h["sigma"] * self.width), h["sigma"], h["tau"])

    def log_sample(self, key, sample_shape=()):
        return self._distribution().log_sample(key, tuple(sample_shape))

    def _limit(self):
        h = self.hyper

        def total(key, shape):
            return sample_tempered_stable(key, h["c"] / h["sigma"], h["sigma"], h["tau"], shape)

        return InfiniteWidthLimit(0.0, GeneralizedGammaLevy(h["c"], h["sigma"], h["tau"]), total_sampler=total)
