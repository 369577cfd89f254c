r"""The small base every per-node variance prior is built on (docs/math.md sections 1-2, Lee et al. 2023, eq. 1-2).

A prior is a *width-scaled family*: for a layer of width :math:`p` it gives the law :math:`F_p` of one
node's variance :math:`\lambda` (a NumPyro distribution, batch shape ``()``), such that
:math:`\sum_{j \le p} \lambda_j \to \Lambda` in law, with :math:`\Lambda` infinitely divisible on
:math:`[0, \infty)`:

.. math::

    \mathbb E\, e^{-t \Lambda} = e^{-\psi(t)}, \qquad
    \psi(t) = a\, t + \int_0^\infty (1 - e^{-t x})\, \rho(dx).

* :class:`LevyMeasure`: :math:`\rho` with its density, tail :math:`\bar\rho(x) = \rho((x, \infty))`,
  inverse tail, Laplace exponent and truncated first moment :math:`\int_0^x u\, \rho(du)`.
* :class:`InfiniteWidthLimit`: the drift :math:`a`, the Lévy measure, the regime ("GP" when
  :math:`\rho = 0`, else "MoGP"), a sampler of :math:`\Lambda` and of the ordered jumps.  The jumps in
  decreasing order are :math:`\lambda_{(j)} = \bar\rho^{-1}(G_j)`, :math:`G_j` the arrival times of a
  unit-rate Poisson process (Ferguson-Klass; DESIGN section 2).  Truncating at :math:`J` jumps leaves
  a remainder with mean :math:`\int_0^{\lambda_{(J)}} x\, \rho(dx)` (:meth:`remainder_mean`).
* :class:`NodeVariancePrior`: the family at one width; subclasses implement ``_distribution`` and
  ``_limit`` (see :class:`bayes_mogp.priors.CustomPrior` to define one without subclassing).  A prior is
  a JAX pytree whose leaves are its numeric hyperparameters, which may be arrays (a hyperprior: sample
  ``c`` in a NumPyro model and build the prior from it) and are differentiable; and it emits its own
  NumPyro sites, :meth:`NodeVariancePrior.sample_site`, so that any model (the BNN, a user's own) draws
  one layer's variances in the parametrisation NUTS handles best, without knowing the family.

``inverse_tail`` is written in ``jax.numpy`` and is jittable and differentiable with respect to the
arrival times (closed forms, or a bisection in log space with an implicit-function JVP
:math:`d\bar\rho^{-1}(g)/dg = -1/\rho(x)` where no closed form exists), because MoGP regression samples
the arrival times as latent variables inside NUTS.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from ..errors import InputError, InputTypeError
from ..validation import is_real_number

__all__ = [
    "LevyMeasure",
    "ZeroLevyMeasure",
    "InfiniteWidthLimit",
    "NodeVariancePrior",
    "monotone_inverse",
    "gauss_legendre",
]


def _float(x):
    """A JAX array of the default float dtype (float64 when x64 is on)."""
    return jnp.asarray(x, dtype=jnp.result_type(float))


def gauss_legendre(n: int, low: float, high: float):
    """Nodes and weights of the ``n``-point Gauss-Legendre rule on ``[low, high]`` (NumPy, host)."""
    import numpy as np

    x, w = np.polynomial.legendre.leggauss(n)
    half = 0.5 * (high - low)
    return low + half * (x + 1.0), half * w


def monotone_inverse(tail, density, g, *, num_iter: int = 90):
    r"""Solve :math:`\bar\rho(x) = g` for a decreasing tail function, elementwise, in ``jax.numpy``.

    Bisection on :math:`\log x` over the representable positive floats (``num_iter`` halvings of
    ``[log(tiny), 80]``, width about 790, leave an error far below float precision), then the JVP
    :math:`dx/dg = -1/\rho(x)` by the implicit function theorem, so gradients do not flow through the
    loop.  Jittable; ``g`` any shape.
    """
    g = _float(g)
    finfo = jnp.finfo(g.dtype)
    log_lo, log_hi = float(math.log(finfo.tiny)), 80.0  # jumps above e^80 are not meaningful

    @jax.custom_jvp
    def _inv(g):
        lo = jnp.full(g.shape, log_lo, g.dtype)
        hi = jnp.full(g.shape, log_hi, g.dtype)

        def body(_, state):
            lo, hi = state
            mid = 0.5 * (lo + hi)
            right = tail(jnp.exp(mid)) > g  # the root lies to the right of mid
            return jnp.where(right, mid, lo), jnp.where(right, hi, mid)

        lo, hi = lax.fori_loop(0, num_iter, body, (lo, hi))
        return jnp.exp(0.5 * (lo + hi))

    @_inv.defjvp
    def _inv_jvp(primals, tangents):
        (g,), (dg,) = primals, tangents
        x = _inv(g)
        return x, -dg / density(x)

    return _inv(g)


class LevyMeasure:
    r"""A Lévy measure :math:`\rho` on :math:`(0, \infty)` with :math:`\int \min(1, x)\,\rho(dx) < \infty`.

    Subclasses implement :meth:`density`, :meth:`tail`, :meth:`inverse_tail`,
    :meth:`laplace_exponent`, :meth:`truncated_first_moment` and :attr:`total_mass`; all take and return
    ``jax.numpy`` arrays, elementwise.  Atoms (Bernoulli) are allowed: :meth:`density` then returns
    the weight of the atom at that point and 0 elsewhere.
    """

    total_mass: float = math.inf  # rho((0, inf)); inf for infinite-activity measures

    def density(self, x):
        r""":math:`\rho(dx)/dx` (elementwise)."""
        raise NotImplementedError

    def tail(self, x):
        r""":math:`\bar\rho(x) = \rho((x, \infty))`, decreasing from ``total_mass`` to 0."""
        raise NotImplementedError

    def inverse_tail(self, g):
        r""":math:`\bar\rho^{-1}(g) = \sup\{x: \bar\rho(x) > g\}` (0 where ``g >= total_mass``)."""
        raise NotImplementedError

    def laplace_exponent(self, t):
        r""":math:`\int_0^\infty (1 - e^{-t x})\,\rho(dx)` for :math:`t \ge 0`."""
        raise NotImplementedError

    def truncated_first_moment(self, x):
        r""":math:`\int_{(0, x)} u\, \rho(du)`: the mean of the jumps smaller than ``x``."""
        raise NotImplementedError

    @property
    def is_zero(self) -> bool:
        """True for the zero measure (GP regime); a measure with array parameters is never zero."""
        return is_real_number(self.total_mass) and self.total_mass == 0

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class ZeroLevyMeasure(LevyMeasure):
    """The trivial measure :math:`\\rho = 0` (GP regime)."""

    total_mass = 0.0

    def density(self, x):
        return jnp.zeros_like(_float(x))

    def tail(self, x):
        return jnp.zeros_like(_float(x))

    def inverse_tail(self, g):
        return jnp.zeros_like(_float(g))

    def laplace_exponent(self, t):
        return jnp.zeros_like(_float(t))

    def truncated_first_moment(self, x):
        return jnp.zeros_like(_float(x))


class InfiniteWidthLimit:
    r"""The law of :math:`\Lambda = \lim_p \sum_{j \le p} \lambda_j`: drift ``a`` plus Lévy measure ``levy``.

    Parameters
    ----------
    drift : float
        :math:`a \ge 0`.
    levy : LevyMeasure
        :math:`\rho`; :class:`ZeroLevyMeasure` for the GP regime.
    total_sampler : callable, optional
        ``total_sampler(key, shape) -> Lambda`` draws, exact where the family has a closed form.  When
        omitted, :meth:`sample_total` uses ``default_num_jumps`` Ferguson-Klass jumps plus the drift
        plus the mean of the truncated remainder.
    """

    def __init__(self, drift: float, levy: LevyMeasure, *, total_sampler=None, default_num_jumps: int = 1000):
        if is_real_number(drift):
            if drift < 0:
                raise InputError(f"drift must be >= 0, got {drift}")
            if drift == 0 and levy.is_zero:
                raise InputError("the limit is degenerate (drift 0 and zero Levy measure): Lambda = 0")
            drift = float(drift)
        self.drift = drift
        self.levy = levy
        self._total_sampler = total_sampler
        self.default_num_jumps = int(default_num_jumps)

    @property
    def regime(self) -> str:
        """``"GP"`` when the Lévy measure is zero, else ``"MoGP"`` (Lee et al. 2023, section 2)."""
        return "GP" if self.levy.is_zero else "MoGP"

    def laplace_exponent(self, t):
        r""":math:`\psi(t) = a t + \int (1 - e^{-tx})\rho(dx)`, so that :math:`E e^{-t\Lambda} = e^{-\psi(t)}`."""
        t = _float(t)
        return self.drift * t + self.levy.laplace_exponent(t)

    def sample_jumps(self, key, num_jumps: int, shape=()):
        r"""The ``num_jumps`` largest jumps of :math:`\Lambda`, decreasing, shape ``shape + (num_jumps,)``.

        :math:`\lambda_{(j)} = \bar\rho^{-1}(G_j)`, :math:`G_j = E_1 + \dots + E_j`,
        :math:`E_i \sim \mathrm{Exp}(1)` iid (Ferguson-Klass).  All zeros in the GP regime.
        """
        shape = tuple(shape) + (int(num_jumps),)
        arrivals = jnp.cumsum(jax.random.exponential(key, shape, dtype=jnp.result_type(float)), axis=-1)
        return self.levy.inverse_tail(arrivals)

    def remainder_mean(self, smallest_jump):
        r""":math:`\int_0^{x} u\,\rho(du)` at ``x = smallest_jump``: the mean of what truncation leaves out."""
        return self.levy.truncated_first_moment(smallest_jump)

    def sample_total(self, key, shape=()):
        r"""Draws of :math:`\Lambda`, shape ``shape``."""
        shape = tuple(shape)
        if self._total_sampler is not None:
            return self._total_sampler(key, shape)
        if self.levy.is_zero:
            return jnp.full(shape, self.drift, dtype=jnp.result_type(float))
        jumps = self.sample_jumps(key, self.default_num_jumps, shape)
        return self.drift + jumps.sum(-1) + self.remainder_mean(jumps[..., -1])

    def sample_site(self, name: str, num_jumps: int, *, site_names=None):
        r"""The ``num_jumps`` largest jumps as NumPyro sites, inside a model; returns them, decreasing.

        The latent site ``"{name}_arrivals"`` (or ``site_names["arrivals"]``) holds the increments
        :math:`E_i \sim \mathrm{Exp}(1)` of the arrival times, shape ``(num_jumps,)``; the jumps
        :math:`\bar\rho^{-1}(E_1 + \dots + E_j)` are recorded as the deterministic site ``name``.
        NUTS moves the arrivals on their log scale; the jumps follow through the (differentiable)
        inverse tail.  Used by MoGP regression, and by any model that puts the limit's jumps on data.
        """
        import numpyro
        import numpyro.distributions as dist

        names = _site_namer(name, site_names)
        e = numpyro.sample(names("arrivals"), dist.Exponential(1.0).expand([int(num_jumps)]).to_event(1))
        lam = self.levy.inverse_tail(jnp.cumsum(e))
        numpyro.deterministic(name, lam)
        return lam

    def __repr__(self) -> str:
        return f"InfiniteWidthLimit(drift={self.drift!r}, levy={self.levy!r}, regime={self.regime!r})"


def _site_namer(name: str, site_names):
    """``role -> site name``: ``site_names[role]`` where given, else ``"{name}_{role}"``."""
    site_names = dict(site_names or {})

    def names(role: str) -> str:
        return site_names.get(role, f"{name}_{role}")

    return names


class NodeVariancePrior:
    r"""A per-node variance prior at width ``p``: the law :math:`F_p` of one :math:`\lambda` and its limit.

    Subclasses set ``name`` and ``_defaults`` (the hyperparameters with their default values),
    validate them in ``_check``, and implement ``_distribution()`` (a NumPyro distribution of one
    node's variance, batch shape ``()``) and ``_limit()`` (an :class:`InfiniteWidthLimit`).  They may
    override :meth:`log_sample` with a sampler that works in log space for tiny concentrations.
    """

    name: str = "prior"
    _defaults: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, _flatten_prior, partial(_unflatten_prior, cls))

    def __init__(self, width: int, **hyper):
        from ..validation import check_int

        self.width = check_int("width", width, minimum=1)
        unknown = sorted(set(hyper) - set(self._defaults))
        if unknown:
            allowed = ", ".join(self._defaults) or "none"
            raise InputTypeError(f"{self.name} prior got unknown hyperparameter(s) {unknown}; allowed: {allowed}")
        merged = {**self._defaults, **hyper}
        self.hyper = self._check(merged)
        self._limit_cache = None

    def _check(self, hyper: dict) -> dict:
        return hyper

    def _distribution(self):
        raise NotImplementedError

    def _limit(self) -> InfiniteWidthLimit:
        raise NotImplementedError

    @property
    def distribution(self):
        """NumPyro distribution of one node's variance (batch shape ``()``); ``.expand([width])`` for a layer."""
        return self._distribution()

    @property
    def limit(self) -> InfiniteWidthLimit:
        """The infinite-width limit of :math:`\\sum_j \\lambda_j` (drift, Lévy measure, samplers)."""
        if self._limit_cache is None:
            self._limit_cache = self._limit()
        return self._limit_cache

    @property
    def is_discrete(self) -> bool:
        """True when one node's variance has discrete support (e.g. Bernoulli gates): :meth:`sample_site`
        then emits an index site, which NUTS cannot move (use ``numpyro.infer.DiscreteHMCGibbs``)."""
        d = self.distribution
        return bool(getattr(d.support, "is_discrete", False) or getattr(d, "has_enumerate_support", False))

    def sample_site(self, name: str = "lam", *, site_names=None):
        r"""Draw one layer's per-node variances inside a NumPyro model: returns :math:`\lambda`, ``(width,)``.

        The prior emits its latent sites in the parametrisation NUTS handles best, named
        ``"{name}_{role}"`` (``site_names`` maps a role to another name), and records :math:`\lambda`
        as the deterministic site ``name``.  This default serves every continuous family: one latent
        site ``"{name}_raw"`` ``~ distribution.expand([width])`` (NUTS works on its unconstrained
        transform); a discrete family gets the index site ``"{name}_index"`` over the support
        :math:`\{v_1, \dots, v_m\}` of one node, ``Categorical(logits = log p(v_i))``, and
        :math:`\lambda = v_{\mathrm{index}}` (an indicator for Bernoulli gates).  Families with a
        better parametrisation override it (the horseshoe's two-factor half-Cauchy; ``iid``: no site).
        Hyperparameters may be traced (a hyperprior)::

            c = numpyro.sample("c", dist.Gamma(2.0, 2.0))
            lam = get_prior("beta", 50, c=c).sample_site("lam")     # (50,)
        """
        import numpyro
        import numpyro.distributions as dist

        names = _site_namer(name, site_names)
        d = self.distribution
        p = self.width
        if self.is_discrete:
            # the index over the support is discrete for NumPyro whatever the law declares as its support
            values = jnp.asarray(d.enumerate_support(expand=False)).reshape(-1)
            idx = numpyro.sample(names("index"), dist.Categorical(logits=d.log_prob(values)).expand([p]))
            lam = values[idx]
        else:
            lam = numpyro.sample(names("raw"), d.expand([p]).to_event(1))
            lam = jnp.asarray(lam, dtype=jnp.result_type(float))
        return numpyro.deterministic(name, lam)

    def sample(self, key, sample_shape=()):
        """Draws of :math:`\\lambda`, shape ``sample_shape``, float, never NaN."""
        return jnp.exp(self.log_sample(key, sample_shape))

    def log_sample(self, key, sample_shape=()):
        """Draws of :math:`\\log\\lambda` (``-inf`` where :math:`\\lambda = 0`), shape ``sample_shape``."""
        lam = self.distribution.sample(key, tuple(sample_shape))
        return jnp.log(_float(lam))

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}(width={self.width}{', ' if hyper else ''}{hyper})"


def _is_leaf_hyper(value) -> bool:
    return not isinstance(value, (str, type(None), bool))


def _flatten_prior(prior):
    """Pytree leaves: the numeric hyperparameters; the rest (width, options, a custom law) is static."""
    keys = tuple(k for k, v in prior.hyper.items() if _is_leaf_hyper(v))
    static = tuple((k, v) for k, v in prior.hyper.items() if k not in keys)
    rest = tuple(sorted((k, v) for k, v in vars(prior).items() if k not in ("hyper", "_limit_cache")))
    return tuple(prior.hyper[k] for k in keys), (keys, static, rest)


def _unflatten_prior(cls, aux, leaves):
    keys, static, rest = aux
    prior = object.__new__(cls)  # no validation: leaves may be tracers or placeholders
    prior.__dict__.update(dict(rest))
    prior.hyper = {**dict(zip(keys, leaves)), **dict(static)}
    prior._limit_cache = None
    return prior
