r"""The fitted maps between the user's units and the model's: :class:`InputTransform` and :class:`TargetTransform`.

* **inputs**: :class:`InputTransform`, either ``"standardize"`` (each column minus its training mean,
  divided by its training standard deviation; constant columns are only centred) or ``"per_image"``
  (the preprocessing of Lee et al. 2018 for images: pixels to [0, 1], each image centred and scaled to
  norm :math:`\sqrt d`, so that :math:`x\cdot x/d = 1`; nothing is fitted) or ``"unit"`` (8-bit pixels
  divided by 255, into [0, 1], and nothing else: the preprocessing of the code of Lee et al. 2023) or
  ``"none"``;
* **targets**: regression targets ``y`` (n, k) are standardised per output,
  :math:`\tilde y = (y - \mu_y)/s_y`, and every prediction is mapped back
  (:meth:`TargetTransform.inverse_mean`, :meth:`TargetTransform.inverse_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_choice

__all__ = ["INPUT_TRANSFORMS", "InputTransform", "TargetTransform"]

INPUT_TRANSFORMS = ("standardize", "per_image", "unit", "none")


@dataclass(frozen=True)
class InputTransform:
    """The map from the user's inputs to the model's, fitted on the training inputs.

    ``kind``: ``"standardize"`` (``(x - shift) / scale`` per column), ``"per_image"`` (Lee et al. 2018,
    row by row, nothing fitted), ``"unit"`` (``x / 255``) or ``"none"``.  ``shift``, ``scale``: (d,) for ``"standardize"``.
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
        if self.kind == "unit":
            return x / 255.0
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
