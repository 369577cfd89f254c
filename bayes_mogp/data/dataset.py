"""The supervised-data container :class:`Dataset`, built from arrays by :func:`from_arrays` / :func:`as_dataset`.

:class:`Dataset` holds the user's arrays *in the user's units* (validated once, when it is built), the task,
and the transforms (:mod:`.transforms`) fitted on the training part.  Classification labels (integers
``0..C-1``) become one-hot regression targets minus :math:`1/C` for the GP-type models (0.9 / -0.1 for ten
classes, as in Lee et al. 2018), :meth:`Dataset.one_hot_targets`.  ``Dataset.fingerprint`` (SHA-256 of the
training arrays) is what a run folder records, so that a posterior can tell which data it was fitted on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..validation import check_choice, check_int
from .checks import DataError, _as_float_matrix, _as_labels, _where
from .transforms import InputTransform, TargetTransform

__all__ = ["TASKS", "Dataset", "from_arrays", "as_dataset"]

TASKS = ("regression", "classification")


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
