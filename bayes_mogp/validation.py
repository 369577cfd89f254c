"""Argument checks shared by the library and the CLI.

Every check raises :class:`bayes_mogp.errors.InputError` (a ``ValueError``: bad value) or
:class:`~bayes_mogp.errors.InputTypeError` (also a ``TypeError``: bad type) with a message that names
the parameter, the allowed range and the value received, e.g.
``width must be an integer >= 1, got 0``.  The CLI turns these into one line on stderr and exit
code 2 (:mod:`bayes_mogp.cli.main`).  Checks run on concrete Python/NumPy values only, at
construction time, never inside ``jit``; :func:`hyperparameter` lets a traced value through unchecked
(a hyperprior, a gradient) and checks concrete arrays elementwise.
"""

from __future__ import annotations

import numbers

import numpy as np

from .errors import InputError, InputTypeError

__all__ = [
    "check_int",
    "check_positive",
    "check_nonnegative",
    "check_in_interval",
    "check_choice",
    "check_bool",
    "check_finite_array",
    "hyperparameter",
    "is_real_number",
]


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``int(value)`` if it is an integer within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and float(value).is_integer():
            value = int(value)
        else:
            raise InputTypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InputError(f"{name} must be an integer {rng}, got {value}")
    if maximum is not None and value > maximum:
        rng = f"<= {maximum}" if minimum is None else f"in [{minimum}, {maximum}]"
        raise InputError(f"{name} must be an integer {rng}, got {value}")
    return value


def _as_real(name: str, value) -> float:
    if not is_real_number(value):
        raise InputTypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise InputError(f"{name} must be finite, got {value}")
    return value


def check_positive(name: str, value) -> float:
    """Return ``float(value)`` if it is a finite real number > 0."""
    value = _as_real(name, value)
    if value <= 0:
        raise InputError(f"{name} must be > 0, got {value}")
    return value


def check_nonnegative(name: str, value) -> float:
    """Return ``float(value)`` if it is a finite real number >= 0."""
    value = _as_real(name, value)
    if value < 0:
        raise InputError(f"{name} must be >= 0, got {value}")
    return value


def check_in_interval(
    name: str, value, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> float:
    """Return ``float(value)`` if it lies in the interval given by ``low``, ``high`` and openness."""
    value = _as_real(name, value)
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise InputError(f"{name} must be in {interval}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """Return ``value`` as a Python ``bool`` if it is one (or a NumPy bool): no truthy numbers or strings."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_finite_array(name: str, value, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a NumPy array, refusing NaN/Inf and (optionally) the wrong rank."""
    arr = np.asarray(value)
    if ndim is not None and arr.ndim != ndim:
        raise InputError(f"{name} must have ndim = {ndim}, got ndim = {arr.ndim} (shape {arr.shape})")
    if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"{name} contains {bad} NaN/Inf value(s); clean or impute the data first")
    return arr


def is_real_number(value) -> bool:
    """True for a Python/NumPy real scalar (``bool`` excluded): a value a check can compare concretely."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def hyperparameter(name: str, value, check):
    """A hyperparameter checked by ``check(name, value)`` (e.g. :func:`check_positive`).

    Python numbers are checked and returned as floats (the arithmetic of the priors is then the same as
    with constants).  Arrays are returned as JAX arrays, checked elementwise when they are concrete; a
    traced value (inside ``jit``, ``grad`` or a NumPyro model with a hyperprior) cannot be checked and is
    returned as it is: its law must keep it in range (e.g. a ``Gamma`` hyperprior for a positive ``c``).
    """
    import jax
    import jax.numpy as jnp

    if is_real_number(value):
        return check(name, value)
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, (jax.Array, np.ndarray)):
        for v in np.asarray(value, dtype=float).ravel():
            check(name, float(v))
        return jnp.asarray(value, dtype=jnp.result_type(float))
    return check(name, value)  # raises the type error naming the parameter
