"""The one-line-error validators that turn user arrays into float matrices or integer labels, and :class:`DataError`.

Every message names the source (a file) and the key, and says how to fix the data.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["DataError"]


class DataError(InputError):
    """A data file or array that cannot be used as it is: the message names the file/key and the fix."""


def _where(source: str | None, key: str) -> str:
    return f"{source}: key {key!r}" if source else key


def _as_float_matrix(a, key, source, *, ndim_ok=(2,)) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == object:
        raise DataError(f"{_where(source, key)} holds Python objects, not numbers; save a numeric array")
    if a.dtype.kind not in "biuf":
        raise DataError(f"{_where(source, key)} must be numeric, got dtype {a.dtype}")
    if a.ndim not in ndim_ok:
        want = " or ".join(f"{n}-d" for n in ndim_ok)
        raise DataError(f"{_where(source, key)} must be {want}, got shape {a.shape}")
    a = a.astype(np.float64)
    bad = a.size - int(np.count_nonzero(np.isfinite(a)))
    if bad:
        raise DataError(f"{_where(source, key)} contains {bad} NaN/Inf value(s); clean or impute the data first")
    if a.shape[0] == 0:
        raise DataError(f"{_where(source, key)} is empty")
    return a


def _as_labels(a, key, source) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise DataError(f"{_where(source, key)} must hold integer class labels, got dtype {a.dtype}")
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise DataError(f"{_where(source, key)} must be 1-d (one integer label per row), got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise DataError(f"{_where(source, key)} contains NaN/Inf; labels must be integers 0..C-1")
        if not np.all(a == np.round(a)):
            raise DataError(f"{_where(source, key)} holds non-integer values; for real targets use "
                            f"{key.replace('labels', 'y')!r} (regression)")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise DataError(f"{_where(source, key)} has negative labels; labels must be integers 0..C-1")
    return a

