r"""Synthetic regression data with known features: a teacher network with a few hidden units.

:func:`teacher_network` draws :math:`x \sim N(0, I_d)` and
:math:`y = \sum_{k \le K} a_k\, \phi(w_k \cdot x) + \varepsilon`, :math:`\varepsilon \sim N(0, \text{noise}^2)`,
with unit directions :math:`w_k` uniform on the sphere, output weights :math:`a_k = \pm U(1, 2)` and
:math:`\phi` = ReLU or :math:`\tanh(2\,\cdot)` (a bounded unit, which a ReLU feature can only approximate
with a bias).  Only K directions of the d-dimensional input matter: the regime where learned features beat
a fixed kernel (the MoGP against the NNGP).  The noiseless test function values are returned too, so that
the error of the predictive mean in f can be measured.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import check_choice, check_int, check_nonnegative
from .dataset import Dataset, from_arrays

__all__ = ["TEACHER_ACTIVATIONS", "Teacher", "teacher_network"]

TEACHER_ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0), "tanh": lambda z: np.tanh(2.0 * z)}


class Teacher(NamedTuple):
    data: Dataset  # the regression data set (train and test parts)
    weights: np.ndarray  # (K, d) unit directions w_k
    output_weights: np.ndarray  # (K,) a_k
    f_test: np.ndarray  # (m,) noiseless teacher output at the test inputs


def teacher_network(seed: int, *, d: int, n_train: int, units: int, activation: str = "relu", n_test: int = 1000,
                    noise: float = 0.1) -> Teacher:
    """A teacher-network regression data set (module docstring); same ``seed``, same data."""
    d = check_int("d", d, minimum=1)
    n_train = check_int("n_train", n_train, minimum=2)
    n_test = check_int("n_test", n_test, minimum=1)
    units = check_int("units", units, minimum=1)
    check_choice("activation", activation, TEACHER_ACTIVATIONS)
    noise = check_nonnegative("noise", noise)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    w = rng.normal(size=(units, d))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    a = rng.choice([-1.0, 1.0], size=units) * rng.uniform(1.0, 2.0, size=units)
    x = rng.normal(size=(n_train + n_test, d))
    f = TEACHER_ACTIVATIONS[activation](x @ w.T) @ a
    y = f + noise * rng.normal(size=f.shape)
    data = from_arrays(x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                       name=f"teacher(d={d}, n={n_train}, {units} {activation})")
    return Teacher(data, w, a, f[n_train:])
