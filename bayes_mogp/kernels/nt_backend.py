r"""neural-tangents backend: ``stax`` models for any architecture it supports, and their kernels.

The closed forms in :mod:`.closed_form` cover fully-connected networks; convolutions, residual
blocks and pooling are left to neural-tangents (Novak et al. 2020), which is the reference
implementation researchers already trust.  neural-tangents 0.6.5 is imported through the
compatibility layer :mod:`._nt_compat`.

Architectures built by :func:`stax_model` (``phi`` the activation, ``Dense``/``Conv`` with
``W_std = sqrt(w_var)``, ``b_std = sqrt(b_var)``, neural-tangents' "ntk" parameterisation):

- ``"mlp"``: ``Dense(width) -> [phi -> Dense(width)] * (depth - 1) -> phi -> Dense(out)``, the network of
  :func:`.nngp_kernel` (``depth`` hidden layers);
- ``"resnet"``: ``Dense(width) -> [FanOut(2) -> parallel(Identity * alpha, phi -> Dense(width) * lam)
  -> FanInSum] * depth -> phi -> Dense(out)``, ``alpha^2 + lam^2 = 1`` (docs/math.md section 4; inputs
  (n, d));
- ``"conv"``: ``[Conv(width, (3, 3), SAME) -> phi] * depth -> Flatten -> Dense(out)`` (inputs
  (n, H, W, C)); ``readout="gap"`` uses ``GlobalAvgPool`` instead of ``Flatten``.

Every model is a neural-tangents triple ``(init_fn, apply_fn, kernel_fn)``: finite networks and
their infinite-width kernels share one definition, so they cannot drift apart.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..activations import get_activation
from ..errors import InputError
from ..validation import check_choice, check_in_interval, check_int, check_nonnegative, check_positive
from ._nt_compat import import_neural_tangents

__all__ = ["ARCHITECTURES", "StaxModel", "stax_model", "stax_activation", "nt_kernels"]

ARCHITECTURES = ("mlp", "resnet", "conv")


class StaxModel(NamedTuple):
    """A neural-tangents ``stax`` model: finite network and its infinite-width kernel."""

    init_fn: object  # (key, input_shape) -> (output_shape, params)
    apply_fn: object  # (params, x) -> (n, out)
    kernel_fn: object  # (x1, x2, get) -> Kernel / namedtuple with .nngp, .ntk


def stax_activation(activation: str):
    """The ``stax`` layer of a closed-form activation name (its registry entry's ``stax_layer``)."""
    entry = get_activation(activation, closed_form=True)
    if entry.stax_layer is None:
        raise InputError(f"activation {activation!r} has no neural-tangents stax layer")
    stax = import_neural_tangents().stax
    return getattr(stax, entry.stax_layer)(**dict(entry.stax_kwargs))


def stax_model(
    architecture: str = "mlp",
    *,
    depth: int,
    activation: str = "relu",
    w_var: float = 2.0,
    b_var: float = 0.0,
    width: int = 512,
    out_dim: int = 1,
    residual_alpha: float = math.sqrt(0.5),
    readout: str = "flatten",
) -> StaxModel:
    """Build a ``stax`` model; see the module docstring for the architectures.

    ``depth`` >= 1 hidden layers (blocks for ``"resnet"``, conv layers for ``"conv"``); ``width`` the
    finite width used by ``init_fn``/``apply_fn`` (the kernels do not depend on it); ``residual_alpha``
    the skip weight of the residual blocks (``lam = sqrt(1 - alpha^2)``).
    """
    check_choice("architecture", architecture, ARCHITECTURES)
    depth = check_int("depth", depth, minimum=1)
    width = check_int("width", width, minimum=1)
    out_dim = check_int("out_dim", out_dim, minimum=1)
    w_std = math.sqrt(check_positive("w_var", w_var))
    b_std = math.sqrt(check_nonnegative("b_var", b_var))
    check_choice("readout", readout, ("flatten", "gap"))
    stax = import_neural_tangents().stax

    def act():
        return stax_activation(activation)

    if architecture == "mlp":
        layers = [stax.Dense(width, W_std=w_std, b_std=b_std)]
        for _ in range(depth - 1):
            layers += [act(), stax.Dense(width, W_std=w_std, b_std=b_std)]
        layers += [act(), stax.Dense(out_dim, W_std=w_std, b_std=b_std)]
    elif architecture == "resnet":
        alpha = check_in_interval("residual_alpha", residual_alpha, 0.0, 1.0)
        lam = math.sqrt(max(0.0, 1.0 - alpha * alpha))
        block = stax.serial(
            stax.FanOut(2),
            stax.parallel(
                _scale(stax, alpha),
                stax.serial(act(), stax.Dense(width, W_std=w_std * lam, b_std=b_std * lam)),
            ),
            stax.FanInSum(),
        )
        layers = [stax.Dense(width, W_std=w_std, b_std=b_std)] + [block] * depth
        layers += [act(), stax.Dense(out_dim, W_std=w_std, b_std=b_std)]
    else:  # conv
        layers = []
        for _ in range(depth):
            layers += [stax.Conv(width, (3, 3), padding="SAME", W_std=w_std, b_std=b_std), act()]
        layers += [stax.Flatten() if readout == "flatten" else stax.GlobalAvgPool()]
        layers += [stax.Dense(out_dim, W_std=w_std, b_std=b_std)]
    return StaxModel(*stax.serial(*layers))


def _scale(stax, alpha):
    """The skip branch ``alpha * x``: a constant, non-trainable ``DotGeneral`` (kernels scale by alpha^2,
    and the branch stays Gaussian, which ``FanInSum`` requires)."""
    return stax.DotGeneral(lhs=float(alpha))


def nt_kernels(x1, x2=None, *, architecture: str = "mlp", get=("nngp", "ntk"), batch_size: int = 0, **model_kwargs):
    """Infinite-width kernels from neural-tangents: a tuple in the order of ``get``.

    ``batch_size`` > 0 computes in ``nt.batch`` blocks of that many rows (bounded memory; ``n1`` and
    ``n2`` must be multiples of it).  ``model_kwargs`` go to :func:`stax_model`.
    """
    nt = import_neural_tangents()
    import jax

    model = stax_model(architecture, **model_kwargs)
    kernel_fn = jax.jit(model.kernel_fn, static_argnames="get")
    batch_size = check_int("batch_size", batch_size, minimum=0)
    if batch_size:
        kernel_fn = nt.batch(model.kernel_fn, batch_size=batch_size)
    get = (get,) if isinstance(get, str) else tuple(get)
    out = kernel_fn(np.asarray(x1) if not hasattr(x1, "shape") else x1, x2, get)
    return tuple(getattr(out, g) for g in get)
