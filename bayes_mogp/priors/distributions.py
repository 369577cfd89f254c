r"""NumPyro distributions of one node's variance that NumPyro does not ship, or ships with a sampler
that underflows at the tiny concentrations of width-scaled priors.

* :class:`BernoulliVariance`: :math:`\lambda = s\,B`, :math:`B \sim \mathrm{Bernoulli}(q)` (model (b)).
  NumPyro's ``Bernoulli`` returns integers on ``{0, 1}``; a variance needs a float with a scale.
* :class:`LogSpaceBeta`, :class:`LogSpaceGamma`: NumPyro's ``Beta``/``Gamma`` with a sampler in log
  space (``jax.random.loggamma``), since with concentration :math:`1/p` (models (c), gamma MoGP) most
  draws are below the smallest float: ``Gamma(1e-4).sample`` returns exact zeros, whose ``log_prob`` is
  ``-inf``.  Here ``sample`` returns ``exp(log draw)`` and :meth:`log_sample` the log draw itself.
* :class:`TemperedStable`: the law with Laplace exponent :math:`\alpha((t+\tau)^\sigma - \tau^\sigma)`,
  the increment over time :math:`1/p` of a generalized gamma subordinator.  Sampled by Kanter's
  representation of the positive :math:`\sigma`-stable law, exponentially tilted by rejection;
  density by Zolotarev's integral (Gauss-Legendre quadrature, no closed form for general
  :math:`\sigma`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax import lax
from numpyro.distributions import constraints
from numpyro.distributions.util import promote_shapes, validate_sample

from ._base import gauss_legendre

__all__ = [
    "BernoulliVariance",
    "LogSpaceBeta",
    "LogSpaceGamma",
    "TemperedStable",
    "log_positive_stable",
    "sample_tempered_stable",
]


class _ZeroOrScale(constraints.Constraint):
    """The discrete two-point support ``{0, scale}`` (``is_discrete``: NumPyro's Gibbs/enumeration see it)."""

    is_discrete = True
    event_dim = 0

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, x):
        return (x == 0) | (x == self.scale)

    def feasible_like(self, prototype):
        return jnp.zeros_like(prototype)

    def tree_flatten(self):
        return (self.scale,), (("scale",), dict())

    def __repr__(self):
        return f"ZeroOrScale(scale={self.scale})"


class BernoulliVariance(dist.Distribution):
    r""":math:`\lambda = s B`, :math:`B \sim \mathrm{Bernoulli}(q)`: mass :math:`q` at ``scale`` and :math:`1-q` at 0.

    The support is discrete (``{0, scale}``, ``support.is_discrete``), so NumPyro never moves it by HMC.
    NumPyro's Gibbs kernels (``DiscreteHMCGibbs``, ``MixedHMC``) propose integer values ``0..K-1``; in
    such a model sample the indicator and scale it::

        b = numpyro.sample("b", d.indicator())      # Bernoulli(q), Gibbs-updated
        lam = numpyro.deterministic("lam", d.scale * b)
    """

    arg_constraints = {"probs": constraints.unit_interval, "scale": constraints.positive}
    has_enumerate_support = True
    pytree_data_fields = ("probs", "scale")

    def __init__(self, probs, scale=1.0, *, validate_args=None):
        self.probs, self.scale = promote_shapes(probs, scale)
        batch_shape = lax.broadcast_shapes(jnp.shape(probs), jnp.shape(scale))
        super().__init__(batch_shape=batch_shape, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = sample_shape + self.batch_shape
        on = jax.random.uniform(key, shape) < self.probs
        return jnp.where(on, self.scale, 0.0) * jnp.ones(shape)

    @validate_sample
    def log_prob(self, value):
        on = jnp.log(self.probs) * jnp.ones_like(value)
        off = jnp.log1p(-self.probs) * jnp.ones_like(value)
        return jnp.where(value == self.scale, on, jnp.where(value == 0, off, -jnp.inf))

    def indicator(self) -> dist.Bernoulli:
        """The on/off indicator :math:`B \\sim \\mathrm{Bernoulli}(q)` (``lam = scale * B``)."""
        return dist.Bernoulli(probs=self.probs)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return _ZeroOrScale(self.scale)

    def enumerate_support(self, expand=True):
        values = jnp.stack([jnp.zeros(self.batch_shape), jnp.broadcast_to(self.scale, self.batch_shape)])
        if not expand:
            values = values.reshape((2,) + (1,) * len(self.batch_shape))
        return values

    @property
    def mean(self):
        return self.probs * self.scale

    @property
    def variance(self):
        return self.probs * (1 - self.probs) * self.scale**2


def _log_gamma_ge1(key, a, shape, num_proposals: int = 12):
    r"""Log-draws of Gamma(a), :math:`a \ge 1`, by Marsaglia-Tsang with a fixed number of proposals.

    Written here because ``jax.random.gamma`` runs a per-element rejection loop that is slow on CPU
    (about 8 us a draw here).  Each proposal is accepted with probability > 0.95 for :math:`a \ge 1`,
    so all ``num_proposals`` fail with probability < 0.05**12 (then the last proposal is kept).
    """
    dtype = jnp.result_type(float)
    d = a - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    kx, ku = jax.random.split(key)
    x = jax.random.normal(kx, (num_proposals,) + shape, dtype)
    u = jax.random.uniform(ku, (num_proposals,) + shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    v = 1.0 + c * x
    v3 = jnp.where(v > 0, v, 1.0) ** 3
    ok = (v > 0) & (jnp.log(u) < 0.5 * x**2 + d - d * v3 + d * jnp.log(v3))
    first = jnp.argmax(ok.at[-1].set(True), axis=0)
    logv = jnp.take_along_axis(jnp.log(v3), first[None], axis=0)[0]
    return jnp.log(d) + logv


def _log_gamma_draw(key, concentration, shape):
    r"""Log-draws of Gamma(a): for :math:`a < 1`, :math:`\log G_{a+1} + \log(U)/a` (exact boost; no
    underflow, unlike ``Gamma(a).sample`` in linear space)."""
    dtype = jnp.result_type(float)
    kg, ku = jax.random.split(key)
    a = jnp.broadcast_to(jnp.asarray(concentration, dtype), shape)
    small = a < 1
    log_g = _log_gamma_ge1(kg, jnp.where(small, a + 1, a), shape)
    u = jax.random.uniform(ku, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    return log_g + jnp.where(small, jnp.log(u) / a, 0.0)


class LogSpaceGamma(dist.Gamma):
    r"""``Gamma(concentration, rate)`` sampled in log space (no underflow for tiny ``concentration``)."""

    def log_sample(self, key, sample_shape=()):
        shape = sample_shape + self.batch_shape
        conc = jnp.broadcast_to(self.concentration, shape)
        return _log_gamma_draw(key, conc, shape) - jnp.log(self.rate)

    def sample(self, key, sample_shape=()):
        return jnp.exp(self.log_sample(key, sample_shape))


class LogSpaceBeta(dist.Beta):
    r"""``Beta(a, b)`` sampled in log space as :math:`X/(X+Y)`, :math:`X \sim \Gamma(a)`, :math:`Y \sim \Gamma(b)`."""

    def log_sample(self, key, sample_shape=()):
        shape = sample_shape + self.batch_shape
        k1, k2 = jax.random.split(key)
        log_x = _log_gamma_draw(k1, jnp.broadcast_to(self.concentration1, shape), shape)
        log_y = _log_gamma_draw(k2, jnp.broadcast_to(self.concentration0, shape), shape)
        return log_x - jnp.logaddexp(log_x, log_y)

    def sample(self, key, sample_shape=()):
        return jnp.exp(self.log_sample(key, sample_shape))


def _log_kanter_a(u, sigma):
    r""":math:`\log A(u)`, :math:`A(u) = [\sin(\sigma u)^\sigma \sin((1-\sigma)u)^{1-\sigma} / \sin u]^{1/(1-\sigma)}`."""
    return (sigma * jnp.log(jnp.sin(sigma * u)) + (1 - sigma) * jnp.log(jnp.sin((1 - sigma) * u)) - jnp.log(jnp.sin(u))) / (
        1 - sigma
    )


def log_positive_stable(key, sigma: float, shape=()):
    r"""Log-draws of the positive :math:`\sigma`-stable law with :math:`E e^{-tS} = e^{-t^\sigma}` (Kanter 1975).

    :math:`S = (A(U)/E)^{(1-\sigma)/\sigma}`, :math:`U \sim U(0, \pi)`, :math:`E \sim \mathrm{Exp}(1)`.
    """
    ku, ke = jax.random.split(key)
    dtype = jnp.result_type(float)
    u = jax.random.uniform(ku, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=math.pi)
    e = jax.random.exponential(ke, shape, dtype)
    return (1 - sigma) / sigma * (_log_kanter_a(u, sigma) - jnp.log(e))


def _log_tilted_stable_rejection(key, alpha, sigma, tau, shape):
    """Log-draws with Laplace exponent alpha((t+tau)^sigma - tau^sigma): stable proposal, accept w.p. exp(-tau S)."""
    dtype = jnp.result_type(float)
    log_scale = jnp.log(alpha) / sigma

    def propose(k):
        k1, k2 = jax.random.split(k)
        log_s = log_scale + log_positive_stable(k1, sigma, shape)
        accept = jnp.log(jax.random.uniform(k2, shape, dtype)) <= -tau * jnp.exp(log_s)
        return log_s, accept

    def cond(state):
        return ~jnp.all(state[2])

    def body(state):
        k, out, done = state
        k, sub = jax.random.split(k)
        log_s, accept = propose(sub)
        take = accept & ~done
        return k, jnp.where(take, log_s, out), done | accept

    init = (key, jnp.full(shape, -jnp.inf, dtype), jnp.zeros(shape, bool))
    if tau == 0:
        return log_scale + log_positive_stable(key, sigma, shape)
    return lax.while_loop(cond, body, init)[1]


def sample_tempered_stable(key, alpha: float, sigma: float, tau: float, shape=(), *, log: bool = False):
    r"""Draws with Laplace exponent :math:`\alpha((t+\tau)^\sigma - \tau^\sigma)`.

    The law is split into ``n`` iid pieces of exponent :math:`\psi/n` so that each piece is accepted with
    probability :math:`e^{-\alpha\tau^\sigma/n} \ge e^{-1/4}`; the pieces are summed (exact by infinite
    divisibility).
    """
    shape = tuple(shape)
    n = max(1, int(math.ceil(alpha * tau**sigma / 0.25)))
    if n == 1:
        out = _log_tilted_stable_rejection(key, alpha, sigma, tau, shape)
        return out if log else jnp.exp(out)
    pieces = _log_tilted_stable_rejection(key, alpha / n, sigma, tau, shape + (n,))
    out = jax.scipy.special.logsumexp(pieces, axis=-1)
    return out if log else jnp.exp(out)


class TemperedStable(dist.Distribution):
    r"""Exponentially tilted positive stable law: :math:`E e^{-t X} = \exp(-\alpha((t+\tau)^\sigma - \tau^\sigma))`.

    Density (Zolotarev): with :math:`S` unit stable, :math:`X \overset{d}{=} \alpha^{1/\sigma} S` tilted by
    :math:`e^{-\tau x + \alpha\tau^\sigma}`, and
    :math:`f_S(s) = \frac{\sigma}{1-\sigma} s^{-1/(1-\sigma)} \frac1\pi \int_0^\pi A(u)
    e^{-A(u) s^{-\sigma/(1-\sigma)}} du`, computed with ``num_nodes`` Gauss-Legendre nodes (relative
    accuracy about 1e-6 in the bulk, lower far in the tails).
    """

    arg_constraints = {
        "alpha": constraints.positive,
        "sigma": constraints.open_interval(0.0, 1.0),
        "tau": constraints.nonnegative,
    }
    support = constraints.positive
    pytree_aux_fields = ("alpha", "sigma", "tau", "num_nodes")

    def __init__(self, alpha: float, sigma: float, tau: float = 0.0, *, num_nodes: int = 256, validate_args=None):
        self.alpha, self.sigma, self.tau = float(alpha), float(sigma), float(tau)
        self.num_nodes = int(num_nodes)
        super().__init__(batch_shape=(), validate_args=validate_args)

    def log_sample(self, key, sample_shape=()):
        return sample_tempered_stable(key, self.alpha, self.sigma, self.tau, sample_shape, log=True)

    def sample(self, key, sample_shape=()):
        return jnp.exp(self.log_sample(key, sample_shape))

    def log_prob(self, value):
        sigma = self.sigma
        u, w = gauss_legendre(self.num_nodes, 0.0, math.pi)
        log_a = _log_kanter_a(jnp.asarray(u), sigma)  # (n,)
        log_s = jnp.log(value) - jnp.log(self.alpha) / sigma  # unit-stable coordinate
        expo = jnp.exp(-sigma / (1 - sigma) * log_s)[..., None]
        integrand = log_a - jnp.exp(log_a) * expo + jnp.log(jnp.asarray(w))
        log_int = jax.scipy.special.logsumexp(integrand, axis=-1) - math.log(math.pi)
        log_f_s = math.log(sigma / (1 - sigma)) - log_s / (1 - sigma) + log_int
        log_f = log_f_s - jnp.log(self.alpha) / sigma
        return log_f - self.tau * value + self.alpha * self.tau**sigma

    @property
    def mean(self):
        if self.tau == 0:
            return jnp.inf
        return self.alpha * self.sigma * self.tau ** (self.sigma - 1)
