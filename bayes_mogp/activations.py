r"""The activation registry: every activation the package knows, with its Gaussian expectation maps.

One entry (:class:`Activation`) per name, holding the elementwise function :math:`\phi` and, where a
closed form exists, the maps that the infinite-width kernels need (docs/math.md sections 2 and 5).  For
:math:`(z_1, z_2) \sim N\big(0, \big[\begin{smallmatrix} k_{11} & k_{12} \\ k_{12} & k_{22}
\end{smallmatrix}\big]\big)`:

.. math::

    \texttt{expectation}(k_{11}, k_{22}, k_{12}) = \mathbb{E}[\phi(z_1)\,\phi(z_2)],
    \qquad
    \texttt{derivative\_expectation}(k_{11}, k_{22}, k_{12}) = \mathbb{E}[\phi'(z_1)\,\phi'(z_2)].

The first is the NNGP map (the covariance of a layer's post-activations given the covariance of its
pre-activations), the second the NTK map (the factor by which an activation layer multiplies the
tangent kernel: :math:`\Theta \mapsto \mathbb{E}[\phi'\phi'] \odot \Theta`).  ``diag`` and
``derivative_diag`` are the same maps on the diagonal, :math:`k \mapsto \mathbb{E}[\phi(z)^2]` and
:math:`\mathbb{E}[\phi'(z)^2]` for :math:`z \sim N(0, k)`; they evaluate the pair maps at
:math:`(k, k, k)`, so they agree bit for bit with the diagonal of the full maps.

Shapes: all maps are elementwise and broadcast their arguments, e.g. ``k11`` (n1, 1), ``k22`` (1, n2),
``k12`` (n1, n2) -> (n1, n2); ``diag`` takes and returns any shape.  They are pure ``jax.numpy``
functions: jittable, vmappable and differentiable.

Closed forms, with :math:`\theta = \arccos\big(k_{12}/\sqrt{k_{11}k_{22}}\big) \in [0, \pi]` and
:math:`s = \sqrt{k_{11}k_{22} - k_{12}^2}`:

- ``relu``: :math:`\mathbb{E}[\phi\phi] = (s + (\pi - \theta) k_{12}) / (2\pi)`,
  :math:`\mathbb{E}[\phi'\phi'] = (\pi - \theta) / (2\pi)`;
- ``abs``: :math:`2 J(k_{12}) + 2 J(-k_{12})` with :math:`J` the relu map, and :math:`1 - 2\theta/\pi`;
- ``erf``: :math:`\tfrac{2}{\pi}\arcsin\big(2k_{12} / \sqrt{(1+2k_{11})(1+2k_{22})}\big)`, and
  :math:`\tfrac{4}{\pi}\big((1+2k_{11})(1+2k_{22}) - 4k_{12}^2\big)^{-1/2}`;
- ``identity``: :math:`k_{12}`, and :math:`1`;
- ``sin``: :math:`e^{-(k_{11}+k_{22})/2}\sinh k_{12}`, and :math:`e^{-(k_{11}+k_{22})/2}\cosh k_{12}`;
- ``cos``: :math:`e^{-(k_{11}+k_{22})/2}\cosh k_{12}`, and :math:`e^{-(k_{11}+k_{22})/2}\sinh k_{12}`;
- ``tanh``: none (no closed form is known for the 2-D Gaussian integral); ``gelu``: none here (below).

relu is the arc-cosine kernel of order 1 (Cho and Saul 2009), and its derivative map that of order 0;
abs follows from :math:`|u| = \mathrm{relu}(u) + \mathrm{relu}(-u)`; erf is Williams (1997); sin and cos
follow from :math:`\mathbb{E}[e^{i(z_1 \pm z_2)}] = e^{-(k_{11} + k_{22} \pm 2k_{12})/2}`.  ``gelu`` is
``jax.nn.gelu``, the tanh approximation of GELU; the closed form known for GELU (Tsuchida et al. 2021,
used by neural-tangents' ``stax.Gelu``) is that of the exact, erf-based GELU, so it is not attached here.
Activations without a closed form (``expectation is None``) can be used by finite networks only.

The ReLU map has a hand-written derivative (``jax.custom_jvp``): differentiating ``arccos`` and the
square root separately gives ``inf - inf`` on the diagonal (:math:`\theta = 0`), while the true partial
derivatives :math:`\partial/\partial k_{12} = (\pi-\theta)/(2\pi)` and
:math:`\partial/\partial k_{11} = s / (4\pi k_{11})` are bounded.

The angle :math:`\theta` is :func:`bayes_mogp.fastmath.polar_angle`, ``arctan2(s, k12)`` to two ulps and
about 8 times faster than ``jnp.arctan2`` on the CPU (the kernels' hot loop).

The functions are the ones used elsewhere in JAX (``jax.nn.relu``, ``jnp.tanh``,
``jax.scipy.special.erf``, ...), so code switching to the registry computes the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable

import jax
import jax.numpy as jnp

from .errors import InputError
from .fastmath import polar_angle

__all__ = ["Activation", "ACTIVATION_NAMES", "CLOSED_FORM_NAMES", "REGISTRY", "get_activation"]


@dataclass(frozen=True)
class Activation:
    """One activation: its function and, where a closed form exists, its Gaussian expectation maps.

    Attributes
    ----------
    name : str
        The registry key.
    fn : callable
        :math:`\\phi`, elementwise: array -> array of the same shape.
    expectation : callable or None
        ``(k11, k22, k12) -> E[phi(z1) phi(z2)]`` (module docstring), or ``None`` without a closed form.
    derivative_expectation : callable or None
        ``(k11, k22, k12) -> E[phi'(z1) phi'(z2)]``, the NTK map, or ``None``.
    diag : callable or None
        ``k -> E[phi(z)^2]`` for ``z ~ N(0, k)``, elementwise, or ``None``.
    derivative_diag : callable or None
        ``k -> E[phi'(z)^2]``, or ``None``.
    stax_layer : str or None
        Name of the neural-tangents ``stax`` layer with the same function and kernel, or ``None``.
    stax_kwargs : tuple of (str, value) pairs
        Keyword arguments of that layer (e.g. ``(("c", pi / 2),)`` makes ``stax.Sin`` a cosine).
    """

    name: str
    fn: Callable
    expectation: Callable | None = None
    derivative_expectation: Callable | None = None
    diag: Callable | None = None
    derivative_diag: Callable | None = None
    stax_layer: str | None = None
    stax_kwargs: tuple = ()

    @property
    def has_closed_form(self) -> bool:
        """Whether the NNGP map (and hence the NNGP/NTK recursions) has a closed form."""
        return self.expectation is not None


# -- closed forms ---------------------------------------------------------------------------------


def _safe_div(num, den):
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


@jax.custom_jvp
def _sqrt_nonneg(x):
    """sqrt(max(x, 0)) with a zero (not NaN) derivative at and below 0.  The guard is in the derivative only: a
    ``where`` in the value makes XLA recompute the argument's producers (the previous layer) for each use."""
    return jnp.sqrt(jnp.maximum(x, 0.0))


@_sqrt_nonneg.defjvp
def _sqrt_nonneg_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    out = _sqrt_nonneg(x)
    ok = out > 0
    return out, jnp.where(ok, 0.5 * dx / jnp.where(ok, out, 1.0), 0.0)


def _theta_s(k11, k22, k12):
    s = _sqrt_nonneg(k11 * k22 - k12 * k12)
    theta = polar_angle(s, k12)  # = arccos(rho) in [0, pi], well-defined when s = 0 (arctan2, vectorised)
    return theta, s


@jax.custom_jvp
def _relu_expectation(k11, k22, k12):
    """E[relu(u) relu(v)] for (u, v) ~ N(0, [[k11, k12], [k12, k22]]), elementwise (arc-cosine, order 1)."""
    theta, s = _theta_s(k11, k22, k12)
    return (s + (jnp.pi - theta) * k12) / (2 * jnp.pi)


@_relu_expectation.defjvp
def _relu_expectation_jvp(primals, tangents):
    k11, k22, k12 = primals
    t11, t22, t12 = tangents
    theta, s = _theta_s(k11, k22, k12)
    out = (s + (jnp.pi - theta) * k12) / (2 * jnp.pi)
    d12 = (jnp.pi - theta) / (2 * jnp.pi)
    d11 = _safe_div(s, 4 * jnp.pi * k11)
    d22 = _safe_div(s, 4 * jnp.pi * k22)
    return out, d11 * t11 + d22 * t22 + d12 * t12


def _relu_derivative(k11, k22, k12):
    """E[1{u>0} 1{v>0}] = (pi - theta) / (2 pi) (arc-cosine, order 0)."""
    theta, _ = _theta_s(k11, k22, k12)
    return (jnp.pi - theta) / (2 * jnp.pi)


def _abs_expectation(k11, k22, k12):
    """E[|u| |v|] = 2 J(k12) + 2 J(-k12), J the relu map."""
    return 2 * (_relu_expectation(k11, k22, k12) + _relu_expectation(k11, k22, -k12))


def _abs_derivative(k11, k22, k12):
    """E[sgn u sgn v] = 1 - 2 theta / pi."""
    return 4 * _relu_derivative(k11, k22, k12) - 1


def _erf_expectation(k11, k22, k12):
    den = jnp.sqrt((1 + 2 * k11) * (1 + 2 * k22))
    return (2 / jnp.pi) * jnp.arcsin(jnp.clip(2 * k12 / den, -1.0, 1.0))


def _erf_derivative(k11, k22, k12):
    return (4 / jnp.pi) / jnp.sqrt((1 + 2 * k11) * (1 + 2 * k22) - 4 * k12 * k12)


def _identity(z):
    """The identity activation."""
    return z


def _identity_expectation(k11, k22, k12):
    return k12


def _identity_derivative(k11, k22, k12):
    return jnp.ones_like(k12)


def _sin_expectation(k11, k22, k12):
    return jnp.exp(-(k11 + k22) / 2) * jnp.sinh(k12)


def _sin_derivative(k11, k22, k12):
    return jnp.exp(-(k11 + k22) / 2) * jnp.cosh(k12)


def _cos_expectation(k11, k22, k12):
    return jnp.exp(-(k11 + k22) / 2) * jnp.cosh(k12)


def _cos_derivative(k11, k22, k12):
    return jnp.exp(-(k11 + k22) / 2) * jnp.sinh(k12)


def _self_map(pair_map):
    """``k -> pair_map(k, k, k)``: the diagonal of a pair map."""

    def diag(k):
        return pair_map(k, k, k)

    diag.__name__ = f"{pair_map.__name__}_diag"
    return diag


def _closed_form(name, fn, expectation, derivative, stax_layer, stax_kwargs=()):
    return Activation(name, fn, expectation, derivative, _self_map(expectation), _self_map(derivative),
                      stax_layer, tuple(stax_kwargs))


# Order: the closed forms first, in the order of ``bayes_mogp.kernels.ACTIVATIONS``.
_ENTRIES = (
    _closed_form("relu", jax.nn.relu, _relu_expectation, _relu_derivative, "Relu"),
    _closed_form("abs", jnp.abs, _abs_expectation, _abs_derivative, "Abs"),
    _closed_form("erf", jax.scipy.special.erf, _erf_expectation, _erf_derivative, "Erf"),
    _closed_form("identity", _identity, _identity_expectation, _identity_derivative, "Identity"),
    _closed_form("sin", jnp.sin, _sin_expectation, _sin_derivative, "Sin"),
    # neural-tangents has no Cos layer: cos(z) = sin(z + pi/2)
    _closed_form("cos", jnp.cos, _cos_expectation, _cos_derivative, "Sin", (("c", math.pi / 2),)),
    Activation("tanh", jnp.tanh),
    Activation("gelu", jax.nn.gelu),
)

#: name -> :class:`Activation`, read-only
REGISTRY = MappingProxyType({entry.name: entry for entry in _ENTRIES})
#: every registered name
ACTIVATION_NAMES = tuple(REGISTRY)
#: the names with closed-form expectation maps (usable by the NNGP/NTK kernels)
CLOSED_FORM_NAMES = tuple(name for name, entry in REGISTRY.items() if entry.has_closed_form)


def get_activation(name: str, *, closed_form: bool = False, param: str = "activation") -> Activation:
    """The registry entry called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATION_NAMES`.
    closed_form : bool
        Require closed-form expectation maps (``name`` in :data:`CLOSED_FORM_NAMES`).
    param : str
        The parameter name used in the error message.

    Raises
    ------
    InputError
        (a ``ValueError``) naming ``param``, the allowed names and the value received.
    """
    allowed = CLOSED_FORM_NAMES if closed_form else ACTIVATION_NAMES
    if not isinstance(name, str) or name not in allowed:
        extra = ""
        if closed_form and isinstance(name, str) and name in REGISTRY:
            extra = f" ({name!r} has no closed-form Gaussian expectation, so no NNGP/NTK kernel)"
        raise InputError(f"{param} must be one of {', '.join(allowed)}; got {name!r}{extra}")
    return REGISTRY[name]
