r"""Model (d): the horseshoe, :math:`\lambda = \tau^2 U^2`, :math:`U \sim C^+(0,1)`, :math:`\tau = \pi c/p`.

:math:`p\,P(\lambda > x) = p\,P(U > \sqrt x/\tau) \to 2c\,x^{-1/2}`, so :math:`\rho(dx) = c\,x^{-3/2}dx`,
drift 0, and :math:`\psi(t) = 2c\sqrt{\pi t}`: :math:`\Lambda` is positive 1/2-stable (Lévy),
:math:`\Lambda \overset{d}{=} 2\pi c^2 / Z^2`, :math:`Z \sim N(0,1)` (Table 1, ``c = 1``: :math:`2\pi/Z^2`).

Closed forms: :math:`\bar\rho(x) = 2c x^{-1/2}`, :math:`\bar\rho^{-1}(g) = 4c^2/g^2` (ordered jumps
:math:`O(j^{-2})`), :math:`\int_0^x u\,\rho(du) = 2c\sqrt x`.

In a NumPyro model (:meth:`HorseshoePrior.sample_site`) the half-Cauchy factors are written
:math:`U = |z|/\sqrt g`, :math:`z \sim N(0, 1)`, :math:`g \sim \mathrm{Gamma}(1/2, 1/2)`: a scale mixture
whose two factors have light-tailed, well-conditioned log-densities (as in rstanarm's ``hs()``), where
NUTS on :math:`\log U` of a half-Cauchy meets a funnel.  Two options shape only that form:

* ``scale_prior``: a hyperprior on ``c``, :math:`c\,t` with :math:`t` half-Cauchy(1) (two-factor form)
  or half-normal(1), shared by the layer (a random global scale :math:`\tau = \pi c t / p`); ``"fixed"``
  (default) keeps :math:`t = 1`, model (d) itself.  Any other hyperprior: pass a traced ``scale``.
* ``slab_scale`` :math:`s`: the regularised horseshoe of Piironen and Vehtari (2017),
  :math:`\tilde\lambda = c_s^2 \lambda / (c_s^2 + \lambda)` with :math:`c_s^2 = 2 s^2 / p` (the slab of a
  He-scaled node).
* ``site``: ``"two_factor"`` (default, the form above) or ``"log"``: one site per node on
  :math:`u = \log\lambda` (``"{name}_raw"``, :class:`LogHorseshoeVariance`, density
  :math:`1/(2\pi\cosh((u - 2\log\tau)/2))`, written directly: NumPyro's half-Cauchy under a square and an
  exponential has an infinite float32 gradient below :math:`\lambda \approx 10^{-26}`), the coordinates in
  which the code of Lee et al. (2023) learns its variances.  A step on both factors moves
  :math:`\log\lambda` five times as far as the same step on :math:`\log\lambda` (:math:`\log\lambda =
  2\log\tau + 2\log z - \log g`), which the minibatch samplers' fixed step sizes feel: with pixels in
  [0, 1] the two-factor form diverges at the paper's step size where the log form does not.  With a fixed
  global scale only.

``distribution``, ``sample`` and ``limit`` are those of model (d) (:math:`t = 1`, no slab).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import PowerTransform

from ..errors import InputError
from ..validation import check_positive, hyperparameter
from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior, _float

__all__ = ["HorseshoeLevy", "HorseshoePrior", "LogHorseshoeVariance", "SCALE_PRIORS", "SITES"]


class HorseshoeLevy(LevyMeasure):
    r""":math:`\rho(dx) = c\,x^{-3/2}dx`."""

    def __init__(self, c):
        self.c = c

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


SCALE_PRIORS = ("fixed", "half_cauchy", "half_normal")
SITES = ("two_factor", "log")


def _half_cauchy_site(z_name: str, g_name: str, shape):
    """Half-Cauchy(1) draws as :math:`|z| / \\sqrt{g}`, :math:`z \\sim N(0,1)`, :math:`g \\sim \\chi^2_1`."""
    import numpyro
    import numpyro.distributions as dist

    z = numpyro.sample(z_name, dist.HalfNormal(1.0).expand(shape).to_event(len(shape)))
    g = numpyro.sample(g_name, dist.Gamma(0.5, 0.5).expand(shape).to_event(len(shape)))
    return z / jnp.sqrt(g)


class LogHorseshoeVariance(dist.Distribution):
    r"""The law of :math:`u = \log\lambda`, :math:`\lambda = \tau^2 U^2`, :math:`U \sim C^+(0, 1)`: with
    :math:`v = \log U = (u - 2\log\tau)/2`, density :math:`1/(2\pi\cosh v)` on the real line (its
    log-density's gradient is :math:`-\tanh(v)/2`, bounded wherever :math:`\lambda` is)."""

    arg_constraints = {"tau": constraints.positive}
    support = constraints.real
    pytree_data_fields = ("tau",)

    def __init__(self, tau, *, validate_args=None):
        self.tau = tau
        super().__init__(batch_shape=jnp.shape(tau), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        dtype = jnp.result_type(float)
        u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
        return 2 * (jnp.log(self.tau) + jnp.log(jnp.tan(0.5 * math.pi * u)))  # |tan(pi u / 2)| is half-Cauchy

    def log_prob(self, value):
        v = jnp.abs(0.5 * (value - 2 * jnp.log(self.tau)))
        return -math.log(math.pi) - v - jnp.log1p(jnp.exp(-2 * v))  # -log(2 pi cosh v), stably


class HorseshoePrior(NodeVariancePrior):
    r""":math:`\lambda = (\pi c/p)^2 U^2`: ``distribution`` is ``HalfCauchy(pi c/p)`` under ``PowerTransform(2)``.

    Hyperparameters: ``scale`` :math:`c > 0`; ``scale_prior`` in ``("fixed", "half_cauchy",
    "half_normal")``, ``slab_scale`` (None or > 0) and ``site`` (``"two_factor"`` or ``"log"``) for
    :meth:`sample_site` (module docstring).
    """

    name = "horseshoe"
    _defaults = {"scale": 1.0, "scale_prior": "fixed", "slab_scale": None, "site": "two_factor"}

    def _check(self, hyper):
        from ..validation import check_choice

        slab = hyper["slab_scale"]
        out = {"scale": hyperparameter("scale", hyper["scale"], check_positive),
               "scale_prior": check_choice("scale_prior", hyper["scale_prior"], SCALE_PRIORS),
               "slab_scale": None if slab is None else hyperparameter("slab_scale", slab, check_positive),
               "site": check_choice("site", hyper["site"], SITES)}
        if out["site"] == "log" and out["scale_prior"] != "fixed":
            raise InputError(f"site 'log' needs scale_prior 'fixed' (one site per node), got {out['scale_prior']!r}")
        return out

    @property
    def global_scale(self):
        """:math:`\\tau = \\pi c / p`, the horseshoe's global scale."""
        return math.pi * self.hyper["scale"] / self.width

    def sample_site(self, name: str = "lam", *, site_names=None):
        r"""Per-node variances ``(width,)`` in the two-factor form, or on their log scale (module docstring).

        Sites (roles): ``tau_z`` (and ``tau_g`` for a half-Cauchy ``scale_prior``), the factors of
        :math:`t`; ``tau`` (deterministic) :math:`\tau = \pi c t / p`; ``u_z``, ``u_g`` ``(width,)``, the
        factors of :math:`U`; and ``name`` (deterministic) :math:`\lambda = \tau^2 U^2` (slab applied).
        With ``site="log"``: ``raw`` ``(width,)``, :math:`\log\lambda` (:class:`LogHorseshoeVariance`), and
        ``name``.
        """
        import numpyro
        import numpyro.distributions as dist

        from ._base import _site_namer

        names = _site_namer(name, site_names)
        tau0, kind, p = self.global_scale, self.hyper["scale_prior"], self.width
        if self.hyper["site"] == "log":
            log_lam = numpyro.sample(names("raw"), LogHorseshoeVariance(tau0).expand([p]).to_event(1))
            return numpyro.deterministic(name, self.slab(jnp.exp(log_lam)))
        if kind == "fixed":
            tau = jnp.asarray(tau0)
        elif kind == "half_normal":
            tau = tau0 * numpyro.sample(names("tau_z"), dist.HalfNormal(1.0))
        else:
            tau = tau0 * _half_cauchy_site(names("tau_z"), names("tau_g"), ())
        numpyro.deterministic(names("tau"), tau)
        u = _half_cauchy_site(names("u_z"), names("u_g"), (p,))
        return numpyro.deterministic(name, self.slab((tau * u) ** 2))

    def slab(self, lam):
        r"""The regularised horseshoe's slab :math:`c_s^2 \lambda / (c_s^2 + \lambda)`, :math:`c_s^2 = 2 s^2/p`
        (``lam`` unchanged when ``slab_scale`` is None)."""
        s = self.hyper["slab_scale"]
        if s is None:
            return lam
        c2 = s**2 * 2.0 / self.width
        return c2 * lam / (c2 + lam)

    def _distribution(self):
        return dist.TransformedDistribution(dist.HalfCauchy(self.global_scale), PowerTransform(2.0))

    def log_sample(self, key, sample_shape=()):
        dtype = jnp.result_type(float)
        u = jax.random.uniform(key, tuple(sample_shape), dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
        # |tan(pi u / 2)| is half-Cauchy
        tau = self.global_scale
        log_tau = math.log(tau) if isinstance(tau, float) else jnp.log(tau)
        return 2 * (log_tau + jnp.log(jnp.tan(0.5 * math.pi * u)))

    def _limit(self):
        c = self.hyper["scale"]

        def total(key, shape):
            z = jax.random.normal(key, shape, dtype=jnp.result_type(float))
            return 2 * math.pi * c**2 / z**2  # Lambda = 2 pi c^2 / Z^2

        return InfiniteWidthLimit(0.0, HorseshoeLevy(c), total_sampler=total)
