r"""What the BNN sees of an input: the data set's transform, then (only if asked) a whitened PCA.

:class:`InputMap` composes

1. the :class:`~bayes_mogp.data.InputTransform` of the :class:`~bayes_mogp.data.Dataset`
   (standardisation of each column, or the per-image preprocessing of MNIST), fitted on the training
   inputs, then
2. optionally, the projection on the top ``k`` principal components of the transformed training
   inputs, whitened: :math:`z = (\tilde x - \mu) V_k / s_k`, with :math:`V_k` ``(d, k)`` the leading
   right singular vectors of the centred training matrix and :math:`s_k` the standard deviations of the
   components (``n - 1`` denominator), so that the training components have unit variance.

PCA is used only when the spec asks for it (``[data] pca = k``) and only when it reduces the dimension
(``k < d``; otherwise it is skipped and the map says so).  Every array is stored in the run folder, so
a saved posterior predicts raw inputs in the user's units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import InputTransform
from ..validation import check_finite_array, check_int
from ..errors import InputError

__all__ = ["InputMap", "pca_inputs"]


@dataclass(frozen=True)
class InputMap:
    """Data-set transform then optional whitened PCA (module docstring).

    ``transform``: the data set's :class:`InputTransform`; ``mean`` ``(d,)``, ``components`` ``(d, k)``
    and ``std`` ``(k,)``: the PCA (None without PCA); ``explained_variance``: the share of the
    training variance the ``k`` components keep (1.0 without PCA).
    """

    transform: InputTransform
    mean: np.ndarray | None = None
    components: np.ndarray | None = None
    std: np.ndarray | None = None
    explained_variance: float = 1.0

    @classmethod
    def fit(cls, dataset, pca: int | None = None) -> "InputMap":
        """Fit on ``dataset``'s training inputs; ``pca``: number of components (None or >= d: no PCA)."""
        transform = dataset.input_transform
        if pca is None:
            return cls(transform)
        d = dataset.input_dim
        k = check_int("pca", pca, minimum=1)
        if k >= d:
            return cls(transform)
        z = transform(dataset.x_train)
        if k > z.shape[0]:
            raise InputError(f"pca must be <= the number of training rows ({z.shape[0]}), got {k}")
        mean, comps, std, ratio = _pca(z, k)
        return cls(transform, mean, comps, std, ratio)

    @property
    def uses_pca(self) -> bool:
        return self.components is not None

    def output_dim(self, input_dim: int) -> int:
        """Dimension of the model inputs for user inputs of dimension ``input_dim``."""
        return int(self.components.shape[1]) if self.uses_pca else int(input_dim)

    def __call__(self, x) -> np.ndarray:
        """Model inputs ``(m, k)`` (float64) of user inputs ``x`` ``(m, d)``."""
        z = self.transform(x)
        if self.uses_pca:
            z = (z - self.mean) @ self.components / self.std
        return z

    def to_arrays(self) -> dict:
        out = self.transform.to_arrays()
        if self.uses_pca:
            out.update(pca_mean=self.mean, pca_components=self.components, pca_std=self.std,
                       pca_explained_variance=np.asarray(self.explained_variance))
        return out

    @classmethod
    def from_arrays(cls, arrays: dict) -> "InputMap":
        transform = InputTransform.from_arrays(arrays)
        if "pca_components" not in arrays:
            return cls(transform)
        return cls(transform, np.asarray(arrays["pca_mean"]), np.asarray(arrays["pca_components"]),
                   np.asarray(arrays["pca_std"]), float(arrays["pca_explained_variance"]))

    def describe(self) -> dict:
        return {"transform": self.transform.kind, "pca": int(self.components.shape[1]) if self.uses_pca else None,
                "pca_explained_variance": self.explained_variance}


def _pca(x, k):
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:k].T
    std = s[:k] / np.sqrt(max(x.shape[0] - 1, 1))
    std = np.where(std > 1e-12, std, 1.0)
    return mean, comps, std, float((s[:k] ** 2).sum() / (s**2).sum())


def pca_inputs(x_train, x_test, num_components: int):
    """Project ``x_train`` and ``x_test`` on the top ``num_components`` principal components of
    ``x_train``, whitened; returns ``(z_train, z_test, explained_variance_ratio)``.  Refuses NaN/Inf."""
    x_train = check_finite_array("x_train", x_train, ndim=2).astype(np.float64)
    x_test = check_finite_array("x_test", x_test, ndim=2).astype(np.float64)
    k = check_int("num_components", num_components, minimum=1, maximum=min(x_train.shape))
    mean, comps, std, ratio = _pca(x_train, k)
    return (x_train - mean) @ comps / std, (x_test - mean) @ comps / std, ratio
