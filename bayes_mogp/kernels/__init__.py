"""Infinite-width kernels: closed-form NNGP/NTK maps on covariances, kernel layers, and a neural-tangents backend.

- :mod:`.layers`: kernels as composable layers in the manner of ``stax`` (:func:`Dense`,
  :func:`Activation`, :func:`serial`, :func:`Sum`, :func:`Scale`) acting on a :class:`Kernel` state, and
  :func:`add` / :func:`scale` of kernels.
- :mod:`.closed_form`: :func:`activation_expectation` (``Sigma -> E[phi(z) phi(z)^T]``), its derivative
  counterpart, and the NNGP/NTK recursions of deep fully-connected networks, blocked in memory (the fast
  path of ``serial(Dense, Activation, Dense, ...)``).
- :mod:`.nt_backend`: :func:`stax_model` (MLP, ResNet, convolutional ``stax`` models) and
  :func:`nt_kernels`; neural-tangents 0.6.5 is imported through :mod:`._nt_compat`.

The activations and their Gaussian expectation maps are in :mod:`bayes_mogp.activations`;
:data:`ACTIVATIONS` is the names with closed forms.  ``import_neural_tangents()`` returns the patched
``neural_tangents`` module for direct use.
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
from .layers import Activation, Dense, Kernel, Layer, Scale, Sum, add, feature_kernel, input_kernel, scale, serial
from .nt_backend import ARCHITECTURES, StaxModel, nt_kernels, stax_activation, stax_model

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "Activation",
    "Dense",
    "Kernel",
    "Layer",
    "Scale",
    "StaxModel",
    "Sum",
    "activation_derivative_expectation",
    "activation_expectation",
    "add",
    "cross_expectation",
    "feature_kernel",
    "import_neural_tangents",
    "input_kernel",
    "kernel_diagonals",
    "nngp_kernel",
    "nngp_ntk_kernels",
    "nt_kernels",
    "ntk_kernel",
    "scale",
    "serial",
    "stax_activation",
    "stax_model",
]
