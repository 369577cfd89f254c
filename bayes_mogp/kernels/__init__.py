"""Infinite-width kernels: closed-form NNGP/NTK maps on covariances, and a neural-tangents backend.

- :mod:`.closed_form`: :func:`activation_expectation` (``Sigma -> E[phi(z) phi(z)^T]``), its derivative
  counterpart, and the NNGP/NTK recursions of deep fully-connected networks, blocked in memory.
- :mod:`.nt_backend`: :func:`stax_model` (MLP, ResNet, convolutional ``stax`` models) and
  :func:`nt_kernels`; neural-tangents 0.6.5 is imported through :mod:`._nt_compat`.

``import_neural_tangents()`` returns the patched ``neural_tangents`` module for direct use.
"""

from ._nt_compat import import_neural_tangents
from .closed_form import (
    ACTIVATIONS,
    activation_derivative_expectation,
    activation_expectation,
    cross_expectation,
    kernel_diagonals,
    nngp_kernel,
    nngp_ntk_kernels,
    ntk_kernel,
)
from .nt_backend import ARCHITECTURES, StaxModel, nt_kernels, stax_activation, stax_model

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "StaxModel",
    "activation_derivative_expectation",
    "activation_expectation",
    "cross_expectation",
    "import_neural_tangents",
    "kernel_diagonals",
    "nngp_kernel",
    "nngp_ntk_kernels",
    "nt_kernels",
    "ntk_kernel",
    "stax_activation",
    "stax_model",
]
