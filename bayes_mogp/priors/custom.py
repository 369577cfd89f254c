r"""User-defined families: a width-scaled law plus a Lévy measure, without writing a subclass.

:class:`NumericLevyMeasure` takes only a density :math:`\rho(x)` (a NumPy-vectorisable function) and
computes the tail, inverse tail, Laplace exponent and truncated moment by adaptive quadrature
(``scipy.integrate.quad``) and root finding (``scipy.optimize.brentq`` on :math:`\log x`).  It runs on
the host, not under ``jit``: use it to explore a new prior, and write closed forms (as in
:mod:`.beta` or :mod:`.horseshoe`) where the jumps enter a NUTS model.
"""

from __future__ import annotations

import math

import numpy as np

from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior
from ..errors import InputTypeError

__all__ = ["NumericLevyMeasure", "CustomPrior"]


class NumericLevyMeasure(LevyMeasure):
    r"""A Lévy measure given by its density on ``(0, upper)``; everything else by quadrature (host only).

    Parameters
    ----------
    density : callable
        :math:`x \mapsto \rho(x)`, NumPy, for :math:`0 < x < \text{upper}`.
    upper : float
        Right end of the support (``inf`` allowed).
    total_mass : float
        :math:`\rho((0, \infty))`; ``inf`` (default) for infinite activity.
    """

    def __init__(self, density, *, upper: float = math.inf, total_mass: float = math.inf):
        self._density = density
        self.upper = float(upper)
        self.total_mass = float(total_mass)

    def _quad(self, f, a, b):
        from scipy.integrate import quad

        if a >= b:
            return 0.0
        if a > 0:
            # Below mid on the log scale, x = e^u: a Levy density blows up at 0 (like 1/x or x^(-1-alpha)), and
            # tails at x near 1e-300 (inverse_tail's bracket) are smooth in u but not in x.
            mid = min(max(2 * a, 1.0), b)
            low = quad(lambda u: f(math.exp(u)) * math.exp(u), math.log(a), math.log(mid), limit=200)[0]
            return low + (quad(f, mid, b, limit=200)[0] if b > mid else 0.0)
        return quad(f, a, b, limit=200)[0]

    def density(self, x):
        x = np.asarray(x, float)
        inside = (x > 0) & (x < self.upper)
        return np.where(inside, self._density(np.where(inside, x, min(1.0, self.upper / 2))), 0.0)

    def tail(self, x):
        return np.vectorize(lambda v: self._quad(self._density, max(v, 0.0), self.upper))(np.asarray(x, float))

    def inverse_tail(self, g):
        from scipy.optimize import brentq

        hi_cap = min(self.upper, 1e300)

        def one(gv):
            if gv >= self.total_mass:
                return 0.0
            f = lambda y: float(self.tail(math.exp(y))) - gv  # noqa: E731 - decreasing in y
            lo, hi = -700.0, math.log(hi_cap) - 1e-12
            if f(hi) > 0:
                return hi_cap
            if f(lo) < 0:
                return math.exp(lo)
            return math.exp(brentq(f, lo, hi, xtol=1e-12))

        return np.vectorize(one)(np.asarray(g, float))

    def laplace_exponent(self, t):
        return np.vectorize(
            lambda tv: self._quad(lambda x: -math.expm1(-tv * x) * self._density(x), 0.0, self.upper)
        )(np.asarray(t, float))

    def truncated_first_moment(self, x):
        return np.vectorize(lambda v: self._quad(lambda u: u * self._density(u), 0.0, min(v, self.upper)))(
            np.asarray(x, float)
        )


class CustomPrior(NodeVariancePrior):
    r"""A prior from its parts: ``law(width)`` (a NumPyro distribution of one :math:`\lambda`), ``levy``, ``drift``.

    Example (a gamma-process prior written by hand)::

        import numpyro.distributions as dist
        prior = CustomPrior(1000, law=lambda p: dist.Gamma(2.0 / p, 1.0),
                            levy=NumericLevyMeasure(lambda x: 2 * np.exp(-x) / x), name="my_gamma")

    ``total_sampler(key, shape)`` may give exact draws of :math:`\Lambda`; otherwise Ferguson-Klass
    truncated at ``num_jumps`` jumps plus the remainder mean is used (host-side for a numeric measure).
    """

    def __init__(self, width: int, *, law, levy: LevyMeasure, drift: float = 0.0, name: str = "custom",
                 total_sampler=None, num_jumps: int = 200, hyper: dict | None = None):
        from ..validation import check_int, check_nonnegative

        self.name = str(name)
        self.width = check_int("width", width, minimum=1)
        self.hyper = dict(hyper or {})
        if not callable(law):
            raise InputTypeError(f"law must be a callable width -> numpyro Distribution, got {type(law).__name__}")
        if not isinstance(levy, LevyMeasure):
            raise InputTypeError(f"levy must be a LevyMeasure, got {type(levy).__name__}")
        self._law, self._levy = law, levy
        self._drift = check_nonnegative("drift", drift)
        self._total_sampler, self._num_jumps = total_sampler, int(num_jumps)
        self._limit_cache = None

    def _distribution(self):
        return self._law(self.width)

    def _limit(self):
        return InfiniteWidthLimit(self._drift, self._levy, total_sampler=self._total_sampler,
                                  default_num_jumps=self._num_jumps)
