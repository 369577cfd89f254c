r"""Infinite-width kernels as composable layers, in the manner of neural-tangents' ``stax``.

A :class:`Layer` is a map on a small pytree, the :class:`Kernel` state of a layer's outputs between two
input sets ``x1`` (n1, d) and ``x2`` (n2, d):

- ``nngp`` (n1, n2): :math:`K(x_1, x_2)`, the covariance of the outputs (the NNGP kernel);
- ``ntk`` (n1, n2) or ``None``: :math:`\Theta(x_1, x_2)`, the neural tangent kernel (``None``: not tracked);
- ``diag1`` (n1,), ``diag2`` (n2,): :math:`K(x_1, x_1)` and :math:`K(x_2, x_2)` on the diagonal, which
  the activation maps need (the variances of the two Gaussian arguments).

Layers (``w_var`` is :math:`\sigma_w^2`, ``b_var`` :math:`\sigma_b^2`; neural-tangents' "ntk"
parameterisation, so results match ``stax``):

- :func:`Dense` ``(w_var, b_var)``: :math:`K \mapsto \sigma_w^2 K + \sigma_b^2`,
  :math:`\Theta \mapsto K_{\text{new}} + \sigma_w^2\,\Theta` (infinite width: no width argument);
- :func:`Activation` ``(name)``: :math:`K \mapsto \mathbb{E}[\phi(z_1)\phi(z_2)]`,
  :math:`\Theta \mapsto \mathbb{E}[\phi'(z_1)\phi'(z_2)] \odot \Theta`, with
  :math:`(z_1, z_2) \sim N(0, [[K_{11}, K_{12}], [K_{12}, K_{22}]])`, the closed-form maps of
  :mod:`bayes_mogp.activations` (docs/math.md section 5);
- :func:`Scale` ``(factor)``: every kernel times ``factor`` (the output times :math:`\sqrt{\text{factor}}`);
- :func:`serial` ``(*layers)``: composition; :func:`Sum` ``(*layers)``: independent branches applied to
  the same input, outputs added, so their kernels add (``stax``'s ``FanOut -> parallel -> FanInSum``).

The input kernel (:func:`input_kernel`) is :math:`K^0 = x_1 x_2^\top / d`, :math:`\Theta^0 = 0`.  So
``serial(Dense(w, b), *[Activation(phi), Dense(w, b)] * L)`` is the fully-connected network with
:math:`L` hidden layers of :func:`.nngp_kernel` / :func:`.ntk_kernel`:

.. math::

    K^{1} = \sigma_w^2\, x \cdot x' / d + \sigma_b^2,\quad \Theta^1 = K^1,\qquad
    K^{l+1} = \sigma_w^2\, \mathbb{E}[\phi\phi](K^l) + \sigma_b^2,\quad
    \Theta^{l+1} = K^{l+1} + \sigma_w^2\, \mathbb{E}[\phi'\phi'](K^l) \odot \Theta^l.

:mod:`.closed_form` evaluates that recursion in row blocks with the maps :func:`dense_map` and
:func:`activation_map` of this module.

Kernels of other models combine with :func:`add` and :func:`scale` on :class:`Kernel` states, e.g. the
MoGP kernel :math:`s K_\phi + \Phi\,\mathrm{diag}(\lambda)\,\Phi^\top` is
``add(scale(k_phi, s), feature_kernel(phi1, phi2, lam))``.

Every map is a pure ``jax.numpy`` function: jittable, differentiable.  :meth:`Layer.kernel_fn` is
``kernel_fn(x1, x2=None, get=("nngp", "ntk"))`` as ``neural_tangents.stax.serial(...)[2]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..activations import get_activation
from ..errors import InputError, InputTypeError
from ..validation import check_choice, check_finite_array, check_nonnegative, check_positive, hyperparameter

__all__ = [
    "Kernel",
    "Layer",
    "Dense",
    "Activation",
    "Scale",
    "Sum",
    "serial",
    "add",
    "scale",
    "input_kernel",
    "feature_kernel",
    "dense_map",
    "activation_map",
]

GETS = ("nngp", "ntk")


class Kernel(NamedTuple):
    """The kernels of a layer's outputs between ``x1`` (n1, d) and ``x2`` (n2, d) (a pytree)."""

    nngp: jax.Array  # (..., n1, n2) K(x1, x2)
    ntk: jax.Array | None  # (..., n1, n2) Theta(x1, x2), or None when not tracked
    diag1: jax.Array  # (..., n1) K(x1_i, x1_i)
    diag2: jax.Array  # (..., n2) K(x2_j, x2_j); the same object as diag1 when x2 is x1


# -- the maps -------------------------------------------------------------------------------------


def dense_map(kernel: Kernel, w_var, b_var) -> Kernel:
    r"""Infinite-width dense layer: :math:`K \mapsto \sigma_w^2 K + \sigma_b^2`,
    :math:`\Theta \mapsto \sigma_w^2 K + \sigma_b^2 + \sigma_w^2\Theta`.  Shapes are kept.

    No checks (``w_var``, ``b_var`` may be traced); :func:`Dense` checks them.
    """
    nngp = w_var * kernel.nngp + b_var
    ntk = None if kernel.ntk is None else nngp + w_var * kernel.ntk
    diag1 = w_var * kernel.diag1 + b_var
    diag2 = diag1 if kernel.diag2 is kernel.diag1 else w_var * kernel.diag2 + b_var
    return Kernel(nngp, ntk, diag1, diag2)


def activation_map(kernel: Kernel, activation: str) -> Kernel:
    r"""Activation layer: :math:`K_{12} \mapsto \mathbb{E}[\phi(z_1)\phi(z_2)]`,
    :math:`\Theta_{12} \mapsto \mathbb{E}[\phi'(z_1)\phi'(z_2)]\,\Theta_{12}` for
    :math:`(z_1, z_2) \sim N(0, [[K_{11}, K_{12}], [K_{12}, K_{22}]])`, entrywise.  Shapes are kept.

    ``activation`` is a name in :data:`bayes_mogp.activations.CLOSED_FORM_NAMES` (static under ``jit``).
    """
    entry = get_activation(activation, closed_form=True)
    k11, k22 = kernel.diag1[..., :, None], kernel.diag2[..., None, :]
    ntk = None if kernel.ntk is None else kernel.ntk * entry.derivative_expectation(k11, k22, kernel.nngp)
    nngp = entry.expectation(k11, k22, kernel.nngp)
    diag1 = entry.diag(kernel.diag1)
    diag2 = diag1 if kernel.diag2 is kernel.diag1 else entry.diag(kernel.diag2)
    return Kernel(nngp, ntk, diag1, diag2)


def scale(kernel: Kernel, factor) -> Kernel:
    """Every kernel of ``kernel`` times ``factor`` (outputs times ``sqrt(factor)``)."""
    diag1 = factor * kernel.diag1
    diag2 = diag1 if kernel.diag2 is kernel.diag1 else factor * kernel.diag2
    return Kernel(factor * kernel.nngp, None if kernel.ntk is None else factor * kernel.ntk, diag1, diag2)


def add(*kernels: Kernel) -> Kernel:
    """The kernel of a sum of independent outputs: the sum of the kernels, entry by entry.

    All ``nngp`` must have one shape.  The ``ntk`` is the sum where every term has one, else ``None``.
    """
    if not kernels:
        raise InputError("add needs at least one Kernel")
    for i, k in enumerate(kernels):
        if not isinstance(k, Kernel):
            raise InputTypeError(f"kernels[{i}] must be a Kernel, got {type(k).__name__}")
        if k.nngp.shape != kernels[0].nngp.shape:
            raise InputError(f"kernels must have one shape; kernels[0].nngp is {kernels[0].nngp.shape}, "
                             f"kernels[{i}].nngp is {k.nngp.shape}")

    def total(arrays):
        return reduce(lambda a, b: a + b, arrays)

    symmetric = all(k.diag2 is k.diag1 for k in kernels)
    diag1 = total([k.diag1 for k in kernels])
    ntks = [k.ntk for k in kernels]
    return Kernel(total([k.nngp for k in kernels]), None if any(t is None for t in ntks) else total(ntks),
                  diag1, diag1 if symmetric else total([k.diag2 for k in kernels]))


# -- kernels from data ------------------------------------------------------------------------------


def _check_inputs(x1, x2, name1="x1", name2="x2"):
    """``x1`` (n1, d) and ``x2`` (n2, d) (``None``: ``x1``) as floating JAX arrays, checked."""

    def conv(name, x):
        if isinstance(x, (np.ndarray, list, tuple)):
            check_finite_array(name, x, ndim=2)
        x = jnp.asarray(x)
        if x.ndim != 2:
            raise InputError(f"{name} must have shape (n, d), got shape {x.shape}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        return x

    x1 = conv(name1, x1)
    x2 = x1 if x2 is None else conv(name2, x2)
    if x1.shape[1] != x2.shape[1]:
        raise InputError(f"x1 and x2 must have the same number of features, got {x1.shape[1]} and {x2.shape[1]}")
    return x1, x2


def input_kernel(x1, x2=None, *, ntk: bool = True) -> Kernel:
    r"""The kernel of the inputs: :math:`K^0 = x_1 x_2^\top / d`, :math:`\Theta^0 = 0` (``None`` if not ``ntk``).

    ``x1`` (n1, d), ``x2`` (n2, d) or ``None`` (then ``x2 = x1`` and ``diag2 is diag1``).

    The variances are ``sum(x * x, axis=1) / d``, as in :mod:`.closed_form`.  They can differ from the
    diagonal of ``nngp`` in the last bit, and at a pair of identical points (correlation
    :math:`\rho = 1`) the NTK maps of relu and abs, :math:`(\pi - \theta)/(2\pi)` and
    :math:`1 - 2\theta/\pi` with :math:`\theta \approx \sqrt{2(1 - \rho)}`, turn a rounding error
    :math:`\epsilon` into :math:`\sqrt{\epsilon}`: those NTK entries carry a ~1e-8 relative error, as
    in :mod:`.closed_form`.  (Taking the variances from the diagonal of ``nngp`` instead is exact in
    eager mode, but under ``jax.jit`` on CPU, jax 0.10.2, XLA's fusion emitter then returned a ``abs``
    NTK 10% off on the diagonal at depth 2, so it is not done.)
    """
    x1, x2 = _check_inputs(x1, x2)
    d = x1.shape[1]
    nngp = (x1 @ x2.T) / d
    diag1 = jnp.sum(x1 * x1, axis=1) / d
    diag2 = diag1 if x2 is x1 else jnp.sum(x2 * x2, axis=1) / d
    return Kernel(nngp, jnp.zeros_like(nngp) if ntk else None, diag1, diag2)


def feature_kernel(f1, f2=None, weights=None) -> Kernel:
    r"""The kernel of finitely many features: :math:`K = \Phi_1\,\mathrm{diag}(\lambda)\,\Phi_2^\top`.

    ``f1`` (n1, J) and ``f2`` (n2, J) (``None``: ``f1``) the features at the two input sets,
    ``weights`` (J,) the :math:`\lambda_j` (``None``: all ones).  ``ntk`` is ``None`` (no training
    dynamics are defined for fixed features).
    """
    f1 = jnp.asarray(f1)
    f2_ = f1 if f2 is None else jnp.asarray(f2)
    if f1.ndim != 2 or f2_.ndim != 2 or f1.shape[1] != f2_.shape[1]:
        raise InputError(f"f1 and f2 must have shapes (n1, J) and (n2, J), got {f1.shape} and {f2_.shape}")
    lam = jnp.ones(f1.shape[1], f1.dtype) if weights is None else jnp.asarray(weights)
    if lam.shape != (f1.shape[1],):
        raise InputError(f"weights must have shape (J,) = ({f1.shape[1]},), got {lam.shape}")
    diag1 = jnp.sum(f1 * f1 * lam, axis=1)
    diag2 = diag1 if f2 is None else jnp.sum(f2_ * f2_ * lam, axis=1)
    return Kernel((f1 * lam) @ f2_.T, None, diag1, diag2)


# -- layers ---------------------------------------------------------------------------------------


def _check_get(get):
    if get is None:
        return None, False
    if isinstance(get, str):
        return (check_choice("get", get, GETS),), True
    get = tuple(get)
    if not get:
        raise InputError(f"get must be None, one of {', '.join(GETS)} or a non-empty tuple of them")
    for g in get:
        check_choice("get", g, GETS)
    return get, False


@dataclass(frozen=True)
class Layer:
    """A kernel layer: ``kernel_map`` takes the :class:`Kernel` of its inputs to that of its outputs."""

    name: str
    kernel_map: Callable[[Kernel], Kernel]

    def __call__(self, kernel: Kernel) -> Kernel:
        return self.kernel_map(kernel)

    def kernel_fn(self, x1, x2=None, get=GETS):
        """Kernels of this layer's outputs on inputs ``x1`` (n1, d), ``x2`` (n2, d) or ``None`` (``x1``).

        ``get``: ``"nngp"`` or ``"ntk"`` (one (n1, n2) array), a tuple of them (a tuple of arrays in
        that order), or ``None`` (the whole :class:`Kernel`, NTK included).
        """
        names, single = _check_get(get)
        out = self.kernel_map(input_kernel(x1, x2, ntk=names is None or "ntk" in names))
        if names is None:
            return out
        values = tuple(getattr(out, g) for g in names)
        return values[0] if single else values


def _check_layers(layers):
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise InputTypeError(f"layers[{i}] must be a Layer, got {type(layer).__name__}")
    if not layers:
        raise InputError("give at least one layer")
    return tuple(layers)


def Dense(w_var: float = 2.0, b_var: float = 0.0) -> Layer:  # noqa: N802  (stax naming)
    r"""Infinite-width dense layer (:func:`dense_map`).

    ``w_var`` :math:`\sigma_w^2 > 0` and ``b_var`` :math:`\sigma_b^2 \ge 0`, checked (error names them).
    """
    w_var = hyperparameter("w_var", w_var, check_positive)
    b_var = hyperparameter("b_var", b_var, check_nonnegative)

    def kernel_map(kernel):
        return dense_map(kernel, w_var, b_var)

    return Layer(f"Dense(w_var={w_var}, b_var={b_var})", kernel_map)


def Activation(name: str) -> Layer:  # noqa: N802
    """Activation layer (:func:`activation_map`) for a registry name with a closed form.

    Raises :class:`~bayes_mogp.errors.InputError` naming ``activation`` for unknown names and for
    activations without a closed-form Gaussian expectation (e.g. ``"tanh"``).
    """
    get_activation(name, closed_form=True)

    def kernel_map(kernel):
        return activation_map(kernel, name)

    return Layer(f"Activation({name!r})", kernel_map)


def Scale(factor: float) -> Layer:  # noqa: N802
    """Every kernel times ``factor`` >= 0 (:func:`scale`)."""
    factor = check_nonnegative("factor", factor)

    def kernel_map(kernel):
        return scale(kernel, factor)

    return Layer(f"Scale({factor})", kernel_map)


def serial(*layers: Layer) -> Layer:
    """The composition ``layers[-1] o ... o layers[0]`` (the first layer sees the inputs)."""
    layers = _check_layers(layers)

    def kernel_map(kernel):
        for layer in layers:
            kernel = layer.kernel_map(kernel)
        return kernel

    return Layer("serial(" + ", ".join(layer.name for layer in layers) + ")", kernel_map)


def Sum(*layers: Layer) -> Layer:  # noqa: N802
    """Independent branches on the same input, outputs added: the kernels add (:func:`add`)."""
    layers = _check_layers(layers)

    def kernel_map(kernel):
        return add(*(layer.kernel_map(kernel) for layer in layers))

    return Layer("Sum(" + ", ".join(layer.name for layer in layers) + ")", kernel_map)
