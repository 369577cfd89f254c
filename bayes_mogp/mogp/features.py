r"""The MoGP's hidden-node features as functions of the input, so that a fitted posterior predicts any new x.

In the MoGP limit (Lee et al. 2023; docs/math.md section 2) each of the J largest jumps carries a feature
:math:`h_j`, a draw of the Gaussian process of the last hidden layer's pre-activations, :math:`h_j \sim GP(0, \Sigma)`;
the base kernel of the GP part is :math:`K_\phi(x, x') = E[\phi(h(x))\phi(h(x'))]`.  Here every feature
is written :math:`h_j(x) = B(x)\, u_j` with :math:`u_j \sim N(0, I_r)` (the NUTS latents) and a fixed
*basis* :math:`B(x) \in \mathbb R^r` such that :math:`B(x) B(x')^\top \approx \Sigma(x, x')`:

* **one hidden layer** (``depth=1``), :math:`\Sigma(x, x') = \sigma_w^2\, x\cdot x'/d + \sigma_b^2`:
  the features are those of a hidden node, :math:`h_j(x) = \sigma_w d^{-1/2}\, w_j \cdot x + \sigma_b b_j`
  with :math:`w_j = V_r u_{j,1:r}` in input space and :math:`b_j = u_{j,r+1}` its bias (the bias
  coordinate exists when :math:`\sigma_b^2 > 0`).  :math:`V_r` (d, r) holds the top-r right singular
  vectors of the training inputs (``rank`` r < d: the weights are restricted to the principal
  subspace, the fraction of :math:`\mathrm{tr}\,\Sigma` kept is reported; r = d: exact, :math:`V = I`).
  The learned :math:`w_j` are directions in the input space: :meth:`FeatureMap.weights`.
* **deeper base kernels** (``depth`` L > 1), :math:`\Sigma = K^{L}`, the NNGP covariance of the L-th
  hidden layer's pre-activations (:func:`bayes_mogp.kernels.nngp_kernel` with ``depth = L - 1``): the
  Nystrom map.  With :math:`\Sigma(X, X) = U E U^\top` on the training inputs and its top-r eigenpairs,
  :math:`B(x) = \Sigma(x, X)\, U_r E_r^{-1/2}`.  At the training inputs :math:`B(X) = U_r E_r^{1/2}`, the
  rank-r factor of :math:`\Sigma(X, X)`; at a new input it is the conditional mean of the feature given
  its values on the training inputs (in the rank-r approximation), the standard Nystrom extension
  (Williams and Seeger 2001).  The features of the lower layers are in the GP regime and are not
  learned; only the last hidden layer's are.

The base kernel between any two input sets is :func:`bayes_mogp.kernels.cross_expectation` of
:math:`\Sigma` (closed forms in :mod:`bayes_mogp.activations`: arc-cosine for ReLU, Cho and Saul 2009).
Shapes: inputs (m, d) in the model's units (already transformed by :class:`bayes_mogp.data.InputTransform`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ..activations import get_activation
from ..kernels import cross_expectation, kernel_diagonals, nngp_kernel
from ..validation import check_choice, check_int, check_nonnegative, check_positive
from ..errors import InputError

__all__ = ["FeatureMap", "build_feature_map", "FEATURE_ACTIVATIONS"]


#: the activations of the MoGP features (closed-form base kernel), name -> elementwise phi, from the registry
FEATURE_ACTIVATIONS = {name: get_activation(name, closed_form=True).fn for name in ("relu", "erf", "abs", "identity")}


class FeatureMap(NamedTuple):
    """Basis :math:`B(x)` of the features and the covariances they come from (module docstring)."""

    depth: int
    activation: str
    w_var: float
    b_var: float
    proj: np.ndarray  # depth 1: (d, r) V_r; depth > 1: (n, r) U_r E_r^{-1/2}
    x_ref: np.ndarray | None  # depth > 1: the training inputs (n, d); depth 1: None
    trace_kept: float  # fraction of tr Sigma(X, X) kept by the rank-r basis

    @property
    def rank(self) -> int:
        """Dimension of the latents u_j (r, plus one bias coordinate at depth 1 when b_var > 0)."""
        return int(self.proj.shape[1]) + int(self.depth == 1 and self.b_var > 0)

    def phi(self, z):
        """The activation, elementwise."""
        return FEATURE_ACTIVATIONS[self.activation](z)

    # -- the pre-activation covariance Sigma -------------------------------------------------------
    def sigma(self, x1, x2):
        """:math:`\\Sigma(x_1, x_2)` (m1, m2)."""
        x1, x2 = jnp.asarray(x1), jnp.asarray(x2)
        if self.depth == 1:
            return self.w_var * (x1 @ x2.T) / x1.shape[1] + self.b_var
        return nngp_kernel(x1, x2, depth=self.depth - 1, activation=self.activation, w_var=self.w_var,
                           b_var=self.b_var)

    def sigma_diag(self, x):
        """:math:`\\Sigma(x, x)` (m,)."""
        x = jnp.asarray(x)
        if self.depth == 1:
            return self.w_var * jnp.sum(x * x, axis=1) / x.shape[1] + self.b_var
        return kernel_diagonals(x, depth=self.depth - 1, activation=self.activation, w_var=self.w_var,
                                b_var=self.b_var)[0]

    # -- what the model needs -----------------------------------------------------------------------
    def basis(self, x):
        """:math:`B(x)` (m, rank): the features at ``x`` are ``basis(x) @ u.T`` for latents ``u`` (J, rank)."""
        x = jnp.asarray(x)
        if self.depth == 1:
            b = jnp.sqrt(self.w_var / x.shape[1]) * (x @ jnp.asarray(self.proj))
            if self.b_var > 0:
                b = jnp.concatenate([b, jnp.full((x.shape[0], 1), np.sqrt(self.b_var), b.dtype)], axis=1)
            return b
        return self.sigma(x, self.x_ref) @ jnp.asarray(self.proj)

    def base_kernel(self, x1, x2=None):
        """:math:`K_\\phi(x_1, x_2) = E[\\phi(h(x_1))\\phi(h(x_2))]` (m1, m2), ``x2=None``: ``x2 = x1``."""
        x2_ = x1 if x2 is None else x2
        d1 = self.sigma_diag(x1)
        d2 = d1 if x2 is None else self.sigma_diag(x2_)
        return cross_expectation(self.activation, d1[:, None], d2[None, :], self.sigma(x1, x2_))

    def base_kernel_diag(self, x):
        """:math:`K_\\phi(x, x)` (m,)."""
        d = self.sigma_diag(x)
        return cross_expectation(self.activation, d, d, d)

    def weights(self, u) -> tuple[np.ndarray, np.ndarray]:
        """Depth 1 only: the input-space weights ``w`` (..., J, d) and biases ``b`` (..., J) of latents ``u``
        (..., J, rank), so that :math:`h_j(x) = \\sigma_w d^{-1/2} w_j\\cdot x + \\sigma_b b_j` (model units)."""
        if self.depth != 1:
            raise InputError("input-space feature weights exist for depth = 1 only (deeper features are "
                             "Nystrom-extended functions of the training inputs)")
        u = np.asarray(u)
        r = self.proj.shape[1]
        w = u[..., :r] @ np.asarray(self.proj).T
        b = u[..., r] if self.b_var > 0 else np.zeros(u.shape[:-1])
        return w, b

    # -- storage ------------------------------------------------------------------------------------
    def to_arrays(self, prefix: str = "features_") -> dict:
        out = {f"{prefix}depth": np.asarray(self.depth), f"{prefix}activation": np.asarray(self.activation),
               f"{prefix}w_var": np.asarray(self.w_var), f"{prefix}b_var": np.asarray(self.b_var),
               f"{prefix}proj": np.asarray(self.proj), f"{prefix}trace_kept": np.asarray(self.trace_kept)}
        if self.x_ref is not None:
            out[f"{prefix}x_ref"] = np.asarray(self.x_ref)
        return out

    @classmethod
    def from_arrays(cls, a: dict, prefix: str = "features_") -> "FeatureMap":
        x_ref = a.get(f"{prefix}x_ref")
        return cls(int(a[f"{prefix}depth"]), str(a[f"{prefix}activation"]), float(a[f"{prefix}w_var"]),
                   float(a[f"{prefix}b_var"]), np.asarray(a[f"{prefix}proj"]),
                   None if x_ref is None else np.asarray(x_ref), float(a[f"{prefix}trace_kept"]))


def build_feature_map(x_train, *, depth: int = 1, rank: int | None = None, activation: str = "relu",
                      w_var: float = 2.0, b_var: float = 0.0) -> FeatureMap:
    """Fit the basis on the training inputs ``x_train`` (n, d) (module docstring).

    ``rank`` r: default ``min(d, n, 100)`` at depth 1 and ``min(n, 32)`` deeper.
    """
    x = np.asarray(x_train, dtype=np.float64)
    n, d = x.shape
    depth = check_int("depth", depth, minimum=1)
    check_choice("activation", activation, FEATURE_ACTIVATIONS)
    w_var = check_positive("w_var", w_var)
    b_var = check_nonnegative("b_var", b_var)
    if depth == 1:
        r = check_int("rank", min(d, n, 100) if rank is None else rank, minimum=1, maximum=d)
        if r == d:
            proj = np.eye(d)
            kept = 1.0
        else:
            _, s, vt = np.linalg.svd(x, full_matrices=False)
            proj = vt[:r].T
            # Sigma(X, X) = w_var X X^T / d + b_var 1 1^T: the bias part is kept exactly
            kept = float((w_var * (s[:r] ** 2).sum() / d + n * b_var) / (w_var * (s**2).sum() / d + n * b_var))
        return FeatureMap(1, activation, w_var, b_var, proj, None, kept)
    r = check_int("rank", min(n, 32) if rank is None else rank, minimum=1, maximum=n)
    fm = FeatureMap(depth, activation, w_var, b_var, np.zeros((n, 0)), x, 1.0)
    sig = np.asarray(fm.sigma(x, x))
    ev, vec = np.linalg.eigh(0.5 * (sig + sig.T))
    ev, vec = np.clip(ev[::-1], 0.0, None), vec[:, ::-1]
    if ev[r - 1] <= 1e-12 * ev[0]:
        r = max(1, int(np.sum(ev > 1e-12 * ev[0])))
    proj = vec[:, :r] / np.sqrt(ev[:r])
    kept = float(ev[:r].sum() / max(ev.sum(), 1e-300))
    return fm._replace(proj=proj, trace_kept=kept)
