r"""The angle of the arc-cosine kernels, fast and to within two ulps: :func:`polar_angle`.

Every ReLU (and abs) kernel evaluation, in the NNGP and NTK recursions and in the MoGP's random-kernel chain,
needs :math:`\theta = \arccos\big(k_{12}/\sqrt{k_{11}k_{22}}\big)` per entry and layer.  On the CPU, XLA's
float64 ``atan2``/``acos`` are scalar library calls: in a depth-3 kernel between 10,000 and 4,000 images they
are most of the time that is not the first layer's matrix product.  :func:`polar_angle` computes the same angle
from ``s`` and ``c`` with one square root, one division and a polynomial, all of which XLA vectorises (measured
on 2 CPU cores, blocks of 2e6 float64 entries: 2.7 ms against 21 ms for ``jnp.arctan2``; largest error
4.4e-16 over 1e6 angles in :math:`[0, \pi]`, ``tests/test_fastmath.py``).

The reduction: with :math:`r = \sqrt{s^2 + c^2}`, :math:`\theta = \pi/2 - \arcsin(c/r)` where
:math:`|c| \le s`, else :math:`\arcsin(s/r)` (``c > 0``) or :math:`\pi - \arcsin(s/r)`; both arguments of
:math:`\arcsin` lie in :math:`[0, 1/\sqrt2]`.  There :math:`\arcsin u = u + u z\, g(z)`, :math:`z = u^2 \le 1/2`,
with :math:`g(z) = \sum_{n \ge 1} \frac{(2n)!}{4^n (n!)^2 (2n+1)} z^{n-1}` (the Maclaurin series of arcsin),
and :math:`g` is replaced by its degree-18 Chebyshev interpolant on :math:`[0, 1/2]`, computed at import from
the series (analytic up to :math:`z = 1`, so the interpolant converges like :math:`(3 + \sqrt8)^{-n}`).  The
derivative is that of ``jnp.arctan2`` (``jax.custom_jvp``), and 0 where :math:`s = c = 0`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["polar_angle"]

_ZMAX = 0.5
_DEGREE = 18


def _series_g(z: np.ndarray, terms: int = 80) -> np.ndarray:
    """:math:`g(z) = (\\arcsin(u)/u - 1)/z` from its Maclaurin series (80 terms: 0.5^80 is far below 1e-17)."""
    out, power, coef = np.zeros_like(z), np.ones_like(z), 1.0
    for n in range(1, terms):
        coef *= (2 * n - 1) / (2 * n)  # (2n)! / (4^n (n!)^2)
        out += coef / (2 * n + 1) * power
        power = power * z
    return out


def _coefficients() -> tuple[float, ...]:
    """Power-basis coefficients (highest first) of the Chebyshev interpolant of ``g`` in ``t = 4z - 1``."""
    k = np.arange(_DEGREE + 1)
    t = np.cos(np.pi * (k + 0.5) / (_DEGREE + 1))
    cheb = np.polynomial.chebyshev.chebfit(t, _series_g((t + 1) * _ZMAX / 2), _DEGREE)
    return tuple(float(a) for a in np.polynomial.chebyshev.cheb2poly(cheb)[::-1])


_G = _coefficients()


def _asin_small(u):
    """:math:`\\arcsin u` for :math:`0 \\le u \\le 1/\\sqrt2` (module docstring)."""
    z = u * u
    t = z * (2.0 / _ZMAX) - 1.0
    g = _G[0]
    for a in _G[1:]:
        g = g * t + a
    return u + (u * z) * g


@jax.custom_jvp
def polar_angle(s, c):
    r""":math:`\operatorname{atan2}(s, c) \in [0, \pi]` for :math:`s \ge 0`, elementwise (module docstring):
    the angle whose sine and cosine are proportional to ``s`` and ``c``; 0 where both are 0, as ``arctan2``."""
    s, c = jnp.asarray(s), jnp.asarray(c)
    r = jnp.sqrt(s * s + c * c)
    inv = 1.0 / jnp.where(r > 0, r, 1.0)
    middle = (jnp.abs(c) <= s) & (s > 0)
    a = _asin_small(jnp.where(middle, jnp.abs(c), s) * inv)
    return jnp.where(middle, jnp.pi / 2 - jnp.sign(c) * a, jnp.where(c >= 0, a, jnp.pi - a))


@polar_angle.defjvp
def _polar_angle_jvp(primals, tangents):
    s, c = primals
    ds, dc = tangents
    r2 = s * s + c * c
    ok = r2 > 0
    return polar_angle(s, c), jnp.where(ok, (c * ds - s * dc) / jnp.where(ok, r2, 1.0), 0.0)
