r"""The generalised BFRY (GBFRY) prior: per-node variances with a double power law.

Lee, Ayed, Lee, Yang, Jung, Caron, *Deep neural networks with dependent weights* (JMLR 2023).
Hyperparameters :math:`0 < \alpha < 1` (small-variance power), :math:`\tau > 1` (tail power) and
:math:`\mu > 0` (the mean of the limit).  At width :math:`p`,

.. math::

    \lambda = c\, W P G, \qquad c = \mu\,\frac{\tau - 1}{\tau - \alpha}, \qquad
    t_p = \Big(\frac{\alpha p \tau}{\tau - \alpha}\Big)^{1/\alpha},

with :math:`W`, :math:`P`, :math:`G` independent: :math:`W^{-\alpha}` uniform on :math:`[1, (1+t_p)^\alpha]`
(density :math:`\propto w^{-1-\alpha}` on :math:`[1/(1+t_p), 1]`), :math:`P` Pareto (scale 1, shape
:math:`\tau`) and :math:`G \sim \mathrm{Gamma}(1-\alpha, 1)`.  With :math:`s = \tau - \alpha` and
:math:`P(s, \cdot)` the regularised lower incomplete gamma function, :math:`x = \lambda / c` has density

.. math::

    f_p(x) = \frac{\tau\alpha\,\Gamma(s)}{\Gamma(1-\alpha)((1+t_p)^\alpha - 1)}\, x^{-1-\tau}
    \Big[P(s, x) - \frac{P(s, (1+t_p)x)}{(1+t_p)^{s}}\Big].

The bracket cancels catastrophically where :math:`(1+t_p)x` is small (:math:`t_p` is :math:`10^5` to
:math:`10^{10}` at widths 500-2000), and :math:`\lambda` itself is far below the smallest float32 for most
nodes when :math:`\alpha` is small, so everything is computed from :math:`u = \log x` (see
:func:`gbfry_log_density`): with :math:`A(z) = P(s, z) z^{-s}` the bracket is
:math:`x^s (A(x) - A(y))`, :math:`y = (1+t_p)x`, and :math:`A(x) - A(y)` is summed as a differenced series
(:math:`y < 1`), from incomplete gamma functions written without cancellation (:math:`y \ge 1`), or, when
:math:`L = \log(1 + t_p) < 1`, as :math:`s\int_{u}^{u+L} P(s+1, e^v) e^{-sv}\,dv` by Gauss-Legendre.

Limit (drift 0, MoGP, infinite activity): :math:`p f_p(x) \to \rho(x)` with

.. math::

    \rho(x) = \frac{\Gamma(1+\tau-\alpha)}{\Gamma(1-\alpha)}\, x^{-1-\tau} P(\tau-\alpha, x)
    = \frac{s}{\Gamma(1-\alpha)} x^{-1-\alpha} \int_0^1 v^{s-1} e^{-vx}\, dv

in units of :math:`x` (for :math:`\lambda = c x` the measure is rescaled by :math:`c`): small jumps
:math:`\rho(x) \sim x^{-1-\alpha}/\Gamma(1-\alpha)`, tail :math:`\rho(x) \sim
\Gamma(1+s)/\Gamma(1-\alpha)\, x^{-1-\tau}`, and :math:`E\Lambda = c \int x\rho(dx) = c\,s/(\tau-1) = \mu`.
Closed forms (:math:`Q = 1 - P`, :math:`\Gamma(-\alpha, x) = (x^{-\alpha}e^{-x} - \Gamma(1-\alpha)
Q(1-\alpha, x))/\alpha`):

.. math::

    \bar\rho(x) = \frac{\Gamma(1+s)\, x^{-\tau} P(s, x) + s\,\Gamma(-\alpha, x)}{\tau\,\Gamma(1-\alpha)},
    \qquad
    \int_0^x u\,\rho(du) = \frac{s}{\tau - 1}\Big[P(1-\alpha, x) - \frac{\Gamma(s)}{\Gamma(1-\alpha)}
    x^{1-\tau} P(s, x)\Big],

the second summed as :math:`\frac{s\,x^{1-\alpha}}{\Gamma(1-\alpha)}\sum_k \frac{(-x)^k}{k!(1-\alpha+k)(s+k)}`
for :math:`x < 1`.  The mixture form gives :math:`\psi(t) = \frac1\alpha\int_0^1 s v^{s-1}((t+v)^\alpha -
v^\alpha)\,dv = \frac1\alpha\int_0^\infty e^{-z}\big((t + e^{-z/s})^\alpha - e^{-\alpha z/s}\big)dz`,
computed by 64-point Gauss-Laguerre (relative error about 1e-7; 1e-4 when :math:`s < 0.05`).
:math:`\bar\rho^{-1}` is :func:`monotone_inverse`.  :math:`\Lambda` is sampled exactly up to a remainder
mean: the mixture form says that :math:`\rho` is the :math:`\alpha`-stable measure
:math:`x^{-1-\alpha}dx/\Gamma(1-\alpha)` whose jump :math:`x` is kept with probability
:math:`E e^{-Vx}`, :math:`V \sim \mathrm{Beta}(s, 1)`; the stable jumps in decreasing order are
:math:`(\alpha\Gamma(1-\alpha) G_j)^{-1/\alpha}` in closed form, so ``num_jumps`` of them are thinned by
uniform draws and the jumps below the last one are replaced by their mean :math:`\int_0^{x_J} u\,\rho(du)`.

``alpha_prior``: ``"fixed"`` (default) or ``"uniform"``, where :meth:`GBFRYPrior.sample_site` draws the
layer's :math:`\alpha \sim U(0.01, 0.99)` as the site ``"{name}_alpha"`` (NUTS moves its logit) and uses it
for that layer's variances.  ``distribution``, ``sample`` and ``limit`` use the fixed ``alpha``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import gammainc, gammaincc, gammaln
from jax.scipy.special import logsumexp
from numpyro.distributions import constraints

from ..validation import check_choice, check_in_interval, check_positive, hyperparameter
from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior, _float, _site_namer, monotone_inverse
from .distributions import _log_gamma_draw

__all__ = [
    "ALPHA_PRIORS",
    "ALPHA_PRIOR_RANGE",
    "GBFRYLevy",
    "GBFRYPrior",
    "GBFRYVariance",
    "LogGBFRYVariance",
    "gbfry_log_density",
]

#: the options of ``alpha_prior``
ALPHA_PRIORS = ("fixed", "uniform")
#: the support of the uniform hyperprior of ``alpha`` (the paper's clipping range)
ALPHA_PRIOR_RANGE = (0.01, 0.99)

_NUM_SERIES = 24  # terms of the power series, all used at |z| <= 1: truncation error < 1/25! ~ 6e-26
_GL_NODES = 16  # Gauss-Legendre nodes of the L < 1 branch (an analytic integrand on an interval of length < 1)
_LAGUERRE_NODES = 64


def _series_terms(log_z, power_shift=0):
    r""":math:`(-1)^{k-d} z^{k-d}/k!` for :math:`k = 1, \dots, N` on a new last axis (:math:`d` = ``power_shift``).

    One vectorised expression rather than a loop of :math:`N` steps: the traced program (and its gradient)
    stays small, which is what the compilation time of a BNN with these sites depends on.
    """
    k = jnp.arange(1, _NUM_SERIES + 1, dtype=log_z.dtype)
    sign = jnp.where((k - power_shift) % 2 == 0, 1.0, -1.0).astype(log_z.dtype)
    return sign * jnp.exp((k - power_shift) * log_z[..., None] - gammaln(k + 1))


def _m_series_minus_1(a, log_z):
    r""":math:`M_a(z) - 1 = \sum_{k \ge 1} \frac{a}{a+k} \frac{(-z)^k}{k!}` (:math:`z = e^{\log z} \le 1`)."""
    k = jnp.arange(1, _NUM_SERIES + 1, dtype=log_z.dtype)
    return (a[..., None] / (a[..., None] + k) * _series_terms(log_z)).sum(-1)


def _m_series(a, log_z):
    r""":math:`M_a(z) = \sum_{k \ge 0} \frac{a}{a+k} \frac{(-z)^k}{k!}`, so :math:`P(a, z) = \frac{z^a}{\Gamma(a+1)} M_a(z)`."""
    return 1.0 + _m_series_minus_1(a, log_z)


def _log_p(a, log_z):
    r""":math:`\log P(a, e^{\log z})`: the series below 1 (no underflow of :math:`z^a`), ``gammainc`` above."""
    a, log_z = jnp.broadcast_arrays(a, log_z)
    z = jnp.exp(log_z)
    small = log_z < 0
    series = a * jnp.where(small, log_z, -1.0) - gammaln(a + 1) + jnp.log(_m_series(a, jnp.minimum(log_z, 0.0)))
    zl = jnp.clip(jnp.where(small, 1.0, z), 1.0, 1e30)
    return jnp.where(small, series, jnp.log(gammainc(a, zl)))


def _width_terms(alpha, tau, width):
    r"""``log t_p``, :math:`L = \log(1+t_p)`, :math:`\log L` and :math:`\log((1+t_p)^\alpha - 1)`, stably."""
    log_t = (jnp.log(alpha) + math.log(width) + jnp.log(tau) - jnp.log(tau - alpha)) / alpha
    tiny = log_t < -20.0  # t_p < 2e-9: L = t_p and (1+t_p)^alpha - 1 = alpha t_p to float64 precision
    L = jax.nn.softplus(log_t)
    log_L = jnp.where(tiny, log_t, jnp.log(jax.nn.softplus(jnp.maximum(log_t, -20.0))))
    log_em = jnp.where(tiny, jnp.log(alpha) + log_t, jnp.log(jnp.expm1(alpha * jnp.where(tiny, 1.0, L))))
    return log_t, L, log_L, log_em


def _quadrature_needed(alpha, width, alpha_min) -> bool:
    r"""Whether :math:`L = \log(1+t_p) < 1` is possible, decided before tracing (a static branch).

    :math:`L \ge 1` iff :math:`\alpha p\tau/(\tau-\alpha) \ge (e-1)^\alpha`, which holds whenever
    :math:`\alpha p \ge e - 1`; with a lower bound on :math:`\alpha` (a concrete value, or the support of its
    hyperprior) a wide layer never needs the quadrature branch, and its program leaves it out.
    """
    if alpha_min is None:
        if isinstance(alpha, jax.core.Tracer):
            return True
        alpha_min = float(np.min(np.asarray(alpha)))
    return alpha_min * width < math.e - 1


def _log_bracket(u, s, log_t, L, log_L, quadrature=True):
    r""":math:`\log\,\Gamma(s+1)(A(x) - A(y))`, :math:`x = e^u`, :math:`y = (1+t_p)x`, :math:`A(z) = P(s,z)z^{-s}`."""
    dtype = u.dtype
    if not quadrature:
        return _log_bracket_series(u, s, log_t, L)
    # (i) L < 1: Gamma(s+1) s int_u^{u+L} P(s+1, e^v) e^{-sv} dv, Gauss-Legendre in v
    xi, wi = np.polynomial.legendre.leggauss(_GL_NODES)
    xi, wi = jnp.asarray(0.5 * (xi + 1.0), dtype), jnp.asarray(0.5 * wi, dtype)
    Ls = jnp.where(L < 1.0, L, 0.5)[..., None]
    v = u[..., None] + Ls * xi
    s_ = s[..., None]
    log_quad = gammaln(s + 1) + jnp.log(s) + jnp.where(L < 1.0, log_L, jnp.log(0.5)) + logsumexp(
        _log_p(s_ + 1.0, v) - s_ * v + jnp.log(wi), axis=-1)
    return jnp.where(L < 1.0, log_quad, _log_bracket_series(u, s, log_t, L))


def _log_bracket_series(u, s, log_t, L):
    """The bracket of :func:`_log_bracket` where :math:`L \\ge 1`."""
    log_y = u + L
    # y < 1: M_s(x) - M_s(y) = (y - x) sum_{k>=1} s/(s+k) (-1)^(k+1) y^(k-1) (1 - r^k)/(1 - r) / k!
    Lm = jnp.maximum(L, 1.0)[..., None]
    k = jnp.arange(1, _NUM_SERIES + 1, dtype=u.dtype)
    terms = _series_terms(jnp.minimum(log_y, 0.0), power_shift=1)  # (-y)^(k-1) / k!
    ratio = -jnp.expm1(-k * Lm) / -jnp.expm1(-Lm)  # (1 - r^k) / (1 - r)
    total = (s[..., None] / (s[..., None] + k) * terms * ratio).sum(-1)
    log_small = u + log_t + jnp.log(total)
    # y >= 1 > x: (M_s(x) - 1) - expm1(lgamma(s+1) - s log y) + Gamma(s+1) Q(s, y) y^-s   (no 1/s cancellation)
    m_minus_1 = _m_series_minus_1(s, jnp.minimum(u, 0.0))
    ly = jnp.maximum(log_y, 0.0)
    yl = jnp.clip(jnp.exp(ly), 1.0, 1e30)
    mid = m_minus_1 - jnp.expm1(gammaln(s + 1) - s * ly) + jnp.exp(gammaln(s + 1) - s * ly) * gammaincc(s, yl)
    log_mid = jnp.log(jnp.where((log_y >= 0) & (u < 0), mid, 1.0))
    # x >= 1: Gamma(s+1) x^-s [P(s,x)(1 - r^s) - r^s (Q(s,x) - Q(s,y))]
    xl = jnp.clip(jnp.exp(jnp.maximum(u, 0.0)), 1.0, 1e30)
    rs = jnp.exp(-s * L)
    big = gammainc(s, xl) * (-jnp.expm1(-s * L)) - rs * (gammaincc(s, xl) - gammaincc(s, yl))
    log_big = gammaln(s + 1) - s * jnp.maximum(u, 0.0) + jnp.log(jnp.where(u >= 0, big, 1.0))
    return jnp.where(log_y < 0, log_small, jnp.where(u < 0, log_mid, log_big))


def gbfry_log_density(log_x, alpha, tau, width, *, alpha_min=None):
    r"""Log-density of :math:`u = \log x`, :math:`x = \lambda/c`, at width ``width``: :math:`\log f_p(e^u) + u`.

    :math:`\log f_p(e^u) + u = \log K - \alpha u + \log D(u)`, :math:`K = \frac{\tau\alpha}{s\Gamma(1-\alpha)
    ((1+t_p)^\alpha - 1)}`, :math:`D = \Gamma(s+1)(A(x) - A(y))` (module docstring).  Works in float32 for
    any :math:`u` that float32 holds, whatever :math:`x = e^u` is; differentiable in ``alpha`` and ``tau``.
    ``alpha_min``: a lower bound on a traced ``alpha`` (its hyperprior's support), which lets a wide layer
    leave out the branch of :math:`\log(1+t_p) < 1` (:func:`_quadrature_needed`).
    """
    quadrature = _quadrature_needed(alpha, width, alpha_min)
    u = _float(log_x)
    alpha, tau = _float(alpha), _float(tau)
    u, alpha, tau = jnp.broadcast_arrays(u, alpha, tau)
    s = tau - alpha
    log_t, L, log_L, log_em = _width_terms(alpha, tau, width)
    log_k = jnp.log(tau) + jnp.log(alpha) - jnp.log(s) - gammaln(1 - alpha) - log_em
    return log_k - alpha * u + _log_bracket(u, s, log_t, L, log_L, quadrature)


def _log_scale(alpha, tau, mu):
    r""":math:`\log c = \log\mu + \log(\tau - 1) - \log(\tau - \alpha)`."""
    return jnp.log(mu) + jnp.log(tau - 1) - jnp.log(tau - alpha)


def _log_sample_x(key, alpha, tau, width, shape):
    r"""Draws of :math:`\log x = \log W + \log P + \log G` (all in log space: no underflow)."""
    dtype = jnp.result_type(float)
    k1, k2, k3 = jax.random.split(key, 3)
    tiny = jnp.finfo(dtype).tiny
    u1 = jax.random.uniform(k1, shape, dtype, minval=tiny, maxval=1.0)
    u2 = jax.random.uniform(k2, shape, dtype, minval=tiny, maxval=1.0)
    _, _, _, log_em = _width_terms(alpha, tau, width)
    # W^-alpha = 1 + U ((1+t)^alpha - 1)
    log_w = -jnp.log1p(u1 * jnp.exp(log_em)) / alpha
    log_p = -jnp.log(u2) / tau
    log_g = _log_gamma_draw(k3, jnp.broadcast_to(1.0 - alpha, shape), shape)
    return log_w + log_p + log_g


class LogGBFRYVariance(dist.Distribution):
    r"""The law of :math:`\log\lambda` under the GBFRY prior at width ``width`` (support: the real line).

    The site a NumPyro model samples: NUTS moves :math:`\log\lambda` itself, so the log-density never
    forms :math:`\lambda` (which underflows float32 for most nodes at small :math:`\alpha`).
    """

    arg_constraints = {
        "alpha": constraints.open_interval(0.0, 1.0),
        "tau": constraints.greater_than(1.0),
        "mu": constraints.positive,
    }
    support = constraints.real
    pytree_data_fields = ("alpha", "tau", "mu")
    pytree_aux_fields = ("width", "alpha_min")

    def __init__(self, alpha, tau, mu, width: int, *, alpha_min=None, validate_args=None):
        self.alpha, self.tau, self.mu = alpha, tau, mu
        self.width = int(width)
        self.alpha_min = alpha_min  # a lower bound on a traced alpha (static), see gbfry_log_density
        batch_shape = jax.lax.broadcast_shapes(jnp.shape(alpha), jnp.shape(tau), jnp.shape(mu))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    @property
    def log_scale(self):
        r""":math:`\log c`."""
        return _log_scale(self.alpha, self.tau, self.mu)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        a = jnp.broadcast_to(_float(self.alpha), shape)
        t = jnp.broadcast_to(_float(self.tau), shape)
        return self.log_scale + _log_sample_x(key, a, t, self.width, shape)

    def log_prob(self, value):
        return gbfry_log_density(value - self.log_scale, self.alpha, self.tau, self.width, alpha_min=self.alpha_min)


class GBFRYVariance(dist.Distribution):
    r"""The law of one node's variance :math:`\lambda = cWPG` at width ``width`` (module docstring).

    ``sample`` returns ``exp(log_sample)`` (zeros where :math:`\lambda` is below the smallest float);
    :meth:`log_sample` the log draws; :meth:`log_distribution` the law of :math:`\log\lambda`.
    """

    arg_constraints = LogGBFRYVariance.arg_constraints
    support = constraints.positive
    pytree_data_fields = ("alpha", "tau", "mu")
    pytree_aux_fields = ("width",)

    def __init__(self, alpha, tau, mu, width: int, *, validate_args=None):
        self.alpha, self.tau, self.mu = alpha, tau, mu
        self.width = int(width)
        batch_shape = jax.lax.broadcast_shapes(jnp.shape(alpha), jnp.shape(tau), jnp.shape(mu))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def log_distribution(self) -> LogGBFRYVariance:
        """The law of :math:`\\log\\lambda`."""
        return LogGBFRYVariance(self.alpha, self.tau, self.mu, self.width)

    def log_sample(self, key, sample_shape=()):
        return self.log_distribution().sample(key, sample_shape)

    def sample(self, key, sample_shape=()):
        return jnp.exp(self.log_sample(key, sample_shape))

    def log_prob(self, value):
        log_v = jnp.log(_float(value))
        return self.log_distribution().log_prob(log_v) - log_v

    @property
    def mean(self):
        r""":math:`E\lambda = c\,\frac{\alpha\tau(1 - (1+t_p)^{\alpha-1})}{(\tau-1)((1+t_p)^\alpha - 1)}` (:math:`\to\mu/p`)."""
        a, t = _float(self.alpha), _float(self.tau)
        _, L, log_L, log_em = _width_terms(a, t, self.width)
        log_num = jnp.where(L < 1e-8, jnp.log1p(-a) + log_L, jnp.log(-jnp.expm1(-(1 - a) * jnp.maximum(L, 1e-8))))
        return jnp.exp(_log_scale(a, t, self.mu) + jnp.log(a * t / (t - 1)) + log_num - log_em)


class GBFRYLevy(LevyMeasure):
    r""":math:`\rho(d\lambda)` of the GBFRY limit: :math:`\rho_x(\lambda/c)\,d\lambda/c`, :math:`\rho_x` in the module docstring."""

    def __init__(self, alpha, tau, mu):
        self.alpha, self.tau, self.mu = alpha, tau, mu

    @property
    def scale(self):
        """:math:`c = \\mu(\\tau-1)/(\\tau-\\alpha)`: :math:`\\lambda = c x`."""
        return jnp.exp(_log_scale(_float(self.alpha), _float(self.tau), _float(self.mu)))

    def _params(self):
        a, t = _float(self.alpha), _float(self.tau)
        return a, t, t - a

    # ---- the measure in units of x = lambda / c
    def log_density_x(self, x):
        r""":math:`\log\rho_x(x)`."""
        a, t, s = self._params()
        log_x = jnp.log(_float(x))
        return gammaln(1 + s) - gammaln(1 - a) - (1 + t) * log_x + _log_p(s, log_x)

    def tail_x(self, x):
        r""":math:`\bar\rho_x(x)`."""
        a, t, s = self._params()
        x = _float(x)
        log_x = jnp.log(x)
        first = jnp.exp(gammaln(1 + s) - t * log_x + _log_p(s, log_x))
        upper = (jnp.exp(-a * log_x - x) - jnp.exp(gammaln(1 - a)) * gammaincc(1 - a, x)) / a
        return (first + s * upper) / (t * jnp.exp(gammaln(1 - a)))

    def truncated_first_moment_x(self, x):
        r""":math:`\int_0^x u\,\rho_x(du)`."""
        a, t, s = self._params()
        x = _float(x)
        small = x < 1
        xs = jnp.where(small, x, 0.5)
        term, total = jnp.ones_like(xs), 1.0 / ((1 - a) * s) * jnp.ones_like(xs)
        for k in range(1, _NUM_SERIES + 1):
            term = term * (-xs) / k
            total = total + term / ((1 - a + k) * (s + k))
        series = s * xs ** (1 - a) / jnp.exp(gammaln(1 - a)) * total
        xl = jnp.where(small, 1.0, x)
        log_xl = jnp.log(xl)
        second = jnp.exp(gammaln(s) - gammaln(1 - a) + (1 - t) * log_xl + _log_p(s, log_xl))
        closed = s / (t - 1) * (gammainc(1 - a, xl) - second)
        return jnp.where(small, series, closed)

    def laplace_exponent_x(self, t_):
        r""":math:`\psi_x(t) = \frac1\alpha\int_0^\infty e^{-z}((t + e^{-z/s})^\alpha - e^{-\alpha z/s})dz` (Gauss-Laguerre)."""
        a, _, s = self._params()
        z, w = np.polynomial.laguerre.laggauss(_LAGUERRE_NODES)
        t_ = _float(t_)
        z, w = jnp.asarray(z, t_.dtype), jnp.asarray(w, t_.dtype)
        a_, s_ = a[..., None], s[..., None]
        e = z / s_  # -log v
        q = jnp.log(t_)[..., None] + e  # log(t / v)
        # (t + v)^a - v^a = v^a expm1(a log1p(t/v)) for t < v, t^a ((1 + v/t)^a - (v/t)^a) otherwise
        lo = jnp.exp(-a_ * e) * jnp.expm1(a_ * jnp.log1p(jnp.exp(jnp.minimum(q, 0.0))))
        qp = jnp.maximum(q, 0.0)
        hi = jnp.exp(a_ * jnp.log(t_)[..., None]) * (jnp.exp(a_ * jnp.log1p(jnp.exp(-qp))) - jnp.exp(-a_ * qp))
        h = jnp.where(q < 0, lo, hi)
        return (h * w).sum(-1) / a

    # ---- the LevyMeasure interface, in units of lambda
    def density(self, x):
        x = _float(x)
        xs = jnp.where(x > 0, x, 1.0) / self.scale
        return jnp.where(x > 0, jnp.exp(self.log_density_x(xs)) / self.scale, 0.0)

    def tail(self, x):
        return self.tail_x(_float(x) / self.scale)

    def inverse_tail(self, g):
        return self.scale * monotone_inverse(self.tail_x, lambda x: jnp.exp(self.log_density_x(x)), g)

    def laplace_exponent(self, t):
        return self.laplace_exponent_x(_float(t) * self.scale)

    def truncated_first_moment(self, x):
        return self.scale * self.truncated_first_moment_x(_float(x) / self.scale)

    @property
    def mean(self):
        r""":math:`E\Lambda = \int x\,\rho(dx) = c\,(\tau-\alpha)/(\tau-1) = \mu`."""
        return self.mu


def _sample_limit_total(key, levy: GBFRYLevy, shape, num_jumps: int):
    r"""Draws of :math:`\Lambda`: thinned :math:`\alpha`-stable jumps plus the mean of the rest (module docstring)."""
    dtype = jnp.result_type(float)
    a, _, s = levy._params()
    k1, k2, k3 = jax.random.split(key, 3)
    full = tuple(shape) + (int(num_jumps),)
    arrivals = jnp.cumsum(jax.random.exponential(k1, full, dtype), axis=-1)
    log_x = -(jnp.log(a) + gammaln(1 - a) + jnp.log(arrivals)) / a  # stable jumps, decreasing
    log_v = jnp.log(jax.random.uniform(k2, full, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)) / s  # Beta(s, 1)
    keep = jax.random.exponential(k3, full, dtype) > jnp.exp(log_v + log_x)  # w.p. exp(-V x)
    x = jnp.exp(log_x)
    total = jnp.where(keep, x, 0.0).sum(-1) + levy.truncated_first_moment_x(x[..., -1])
    return levy.scale * total


def _check_alpha(name, value):
    return check_in_interval(name, value, 0, 1, low_open=True, high_open=True)


def _check_tau(name, value):
    return check_in_interval(name, value, 1, math.inf, low_open=True, high_open=True)  # finite: _as_real


class GBFRYPrior(NodeVariancePrior):
    r"""GBFRY per-node variances (module docstring): hyperparameters ``alpha`` in (0, 1), ``tau`` > 1,
    ``mu`` > 0 (:math:`E\Lambda`), ``alpha_prior`` in ``("fixed", "uniform")``."""

    name = "gbfry"
    _defaults = {"alpha": 0.5, "tau": 2.0, "mu": 1.0, "alpha_prior": "fixed"}

    def _check(self, hyper):
        return {
            "alpha": hyperparameter("alpha", hyper["alpha"], _check_alpha),
            "tau": hyperparameter("tau", hyper["tau"], _check_tau),
            "mu": hyperparameter("mu", hyper["mu"], check_positive),
            "alpha_prior": check_choice("alpha_prior", hyper["alpha_prior"], ALPHA_PRIORS),
        }

    @property
    def scale(self):
        r""":math:`c = \mu(\tau-1)/(\tau-\alpha)`."""
        h = self.hyper
        return jnp.exp(_log_scale(_float(h["alpha"]), _float(h["tau"]), _float(h["mu"])))

    def _distribution(self):
        h = self.hyper
        return GBFRYVariance(h["alpha"], h["tau"], h["mu"], self.width)

    def log_distribution(self, alpha=None) -> LogGBFRYVariance:
        """The law of :math:`\\log\\lambda` (with ``alpha``, drawn from its hyperprior, in place of the prior's own)."""
        h = self.hyper
        if alpha is None:
            return LogGBFRYVariance(h["alpha"], h["tau"], h["mu"], self.width)
        return LogGBFRYVariance(alpha, h["tau"], h["mu"], self.width, alpha_min=ALPHA_PRIOR_RANGE[0])

    def log_sample(self, key, sample_shape=()):
        return self.log_distribution().sample(key, tuple(sample_shape))

    def sample_site(self, name: str = "lam", *, site_names=None):
        r"""Per-node variances ``(width,)`` inside a NumPyro model.

        Sites (roles): ``alpha`` (only for ``alpha_prior="uniform"``) :math:`\alpha \sim U(0.01, 0.99)`,
        shared by the layer; ``raw`` ``(width,)``: :math:`\log\lambda` (real support, so NUTS works on
        :math:`\log\lambda` with a log-density that never forms :math:`\lambda`); and ``name``
        (deterministic) :math:`\lambda = e^{\mathrm{raw}}`.
        """
        import numpyro

        names = _site_namer(name, site_names)
        alpha = None
        if self.hyper["alpha_prior"] == "uniform":
            alpha = numpyro.sample(names("alpha"), dist.Uniform(*ALPHA_PRIOR_RANGE))
        log_lam = numpyro.sample(names("raw"), self.log_distribution(alpha).expand([self.width]).to_event(1))
        return numpyro.deterministic(name, jnp.exp(log_lam))

    def _limit(self):
        h = self.hyper
        levy = GBFRYLevy(h["alpha"], h["tau"], h["mu"])
        num_jumps = 300

        def total(key, shape):
            return _sample_limit_total(key, levy, shape, num_jumps)

        return InfiniteWidthLimit(0.0, levy, total_sampler=total)
