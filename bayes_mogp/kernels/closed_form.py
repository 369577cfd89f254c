r"""Closed-form NNGP and NTK kernels of deep fully-connected networks, as maps on covariance matrices.

The building block is the Gaussian expectation of an activation under an arbitrary covariance
(docs/math.md sections 2 and 5):

.. math::

    \mathcal{E}_\phi(\Sigma) = \mathbb{E}_{z \sim N(0, \Sigma)}[\phi(z) \phi(z)^\top],
    \qquad
    \dot{\mathcal{E}}_\phi(\Sigma) = \mathbb{E}_{z \sim N(0, \Sigma)}[\phi'(z) \phi'(z)^\top].

Entry :math:`(i, j)` depends only on :math:`\Sigma_{ii}, \Sigma_{jj}, \Sigma_{ij}`, so both maps are
elementwise over the matrix and accept any PSD ``cov`` of shape ``(..., n, n)``.  The elementwise maps
and their closed forms (arc-cosine for ReLU, Cho and Saul 2009; erf, Williams 1997; abs, identity, sin,
cos) live in the activation registry :mod:`bayes_mogp.activations`; :data:`ACTIVATIONS` is the names
that have one.  They are used twice in the package: in the deterministic NNGP/NTK recursions below and
in the random-kernel chain of the MoGP limit (docs/math.md section 2), which needs
:math:`\mathcal{E}_\phi` for covariances that are not NNGP kernels of any data set, and its gradient.
neural-tangents computes the same quantities inside ``stax`` but does not expose them as a function of
a covariance, hence this module.

Network (neural-tangents' ``"ntk"`` parameterisation, so results match ``stax`` exactly; J. Lee et al.
2018 for the NNGP, Jacot et al. 2018 for the NTK), with ``depth`` hidden layers, inputs
:math:`x \in \mathbb{R}^{d}`:

.. math::

    K^{1}(x, x') = \sigma_w^2\, x \cdot x' / d + \sigma_b^2,\qquad \Theta^{1} = K^{1},

    K^{l+1} = \sigma_w^2\, \mathcal{E}_\phi(K^{l}) + \sigma_b^2,\qquad
    \Theta^{l+1} = K^{l+1} + \sigma_w^2\, \dot{\mathcal{E}}_\phi(K^{l}) \odot \Theta^{l},

for :math:`l = 1, \dots, \text{depth}`; the NNGP is :math:`K^{\text{depth}+1}` and the NTK
:math:`\Theta^{\text{depth}+1}` (the readout layer included).  ``w_var`` is :math:`\sigma_w^2` and
``b_var`` is :math:`\sigma_b^2`; ``w_var=2, b_var=0`` with ReLU is He initialisation (the "iid" row of
docs/math.md section 1).  Each step :math:`l \to l+1` is the ``Activation`` then ``Dense`` layer of
:mod:`.layers` (:func:`.layers.activation_map`, :func:`.layers.dense_map`); this module is the blocked
fast path of ``layers.serial(Dense, Activation, Dense, ...)``.

Memory: kernel matrices between ``x1`` (n1, d) and ``x2`` (n2, d) are computed in row blocks of
``block_size`` rows, each block needing only the per-point variances, so the temporaries are
``O(block_size * n2)`` and the only full-size array is the result (n = 10^4: 0.8 GB in float64).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..activations import CLOSED_FORM_NAMES, get_activation
from ..validation import check_finite_array, check_int, check_nonnegative, check_positive, hyperparameter
from ..errors import InputError
from .layers import Kernel, _check_inputs, activation_map, dense_map

__all__ = [
    "ACTIVATIONS",
    "activation_expectation",
    "activation_derivative_expectation",
    "cross_expectation",
    "nngp_kernel",
    "ntk_kernel",
    "nngp_ntk_kernels",
    "kernel_diagonals",
]

#: the activations with closed-form Gaussian expectation maps (from :mod:`bayes_mogp.activations`)
ACTIVATIONS = CLOSED_FORM_NAMES


def _pair_maps(activation):
    """(E[phi phi], E[phi' phi']) as functions of (k11, k22, k12), elementwise (registry entries)."""
    entry = get_activation(activation, closed_form=True)
    return entry.expectation, entry.derivative_expectation


def _diag_self(activation):
    """(E[phi(u)^2], E[phi'(u)^2]) for u ~ N(0, k), elementwise (the diagonal of the maps)."""
    entry = get_activation(activation, closed_form=True)
    return entry.diag, entry.derivative_diag


def _check_cov(cov):
    if isinstance(cov, (np.ndarray, list, tuple, float, int)):
        check_finite_array("cov", cov)
    cov = jnp.asarray(cov)
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise InputError(f"cov must have shape (..., n, n), got {cov.shape}")
    if not jnp.issubdtype(cov.dtype, jnp.floating):
        cov = cov.astype(jnp.result_type(float))
    return cov


def activation_expectation(activation: str, cov):
    r""":math:`\mathbb{E}_{z\sim N(0,\Sigma)}[\phi(z)\phi(z)^\top]` for a PSD ``cov`` of shape (..., n, n).

    ``activation`` is one of :data:`ACTIVATIONS`.  Jittable and differentiable with respect to
    ``cov`` (bounded derivatives on the diagonal for ReLU, see the module docstring).  Returns an
    array of the shape and dtype of ``cov``.
    """
    e, _ = _pair_maps(activation)
    cov = _check_cov(cov)
    d = jnp.diagonal(cov, axis1=-2, axis2=-1)
    return e(d[..., :, None], d[..., None, :], cov)


def cross_expectation(activation: str, var1, var2, cov12):
    r""":math:`\mathbb{E}[\phi(u)\phi(v)]` for :math:`(u, v)` Gaussian with variances ``var1``, ``var2`` and
    covariance ``cov12``, elementwise (broadcasting): the block :math:`\mathcal{E}_\phi(\Sigma)_{12}` of a
    covariance given only its two diagonals and its off-diagonal block.

    E.g. ``var1`` (n, 1), ``var2`` (1, m), ``cov12`` (n, m) -> (n, m): the base kernel between training
    and test inputs without forming the joint (n + m, n + m) covariance.  Jittable, differentiable.
    """
    e, _ = _pair_maps(activation)
    return e(jnp.asarray(var1), jnp.asarray(var2), jnp.asarray(cov12))


def activation_derivative_expectation(activation: str, cov):
    r""":math:`\mathbb{E}_{z\sim N(0,\Sigma)}[\phi'(z)\phi'(z)^\top]` (the NTK factor), shape of ``cov``."""
    _, dd = _pair_maps(activation)
    cov = _check_cov(cov)
    d = jnp.diagonal(cov, axis1=-2, axis2=-1)
    return dd(d[..., :, None], d[..., None, :], cov)


def _check_hyper(depth, activation, w_var, b_var):
    depth = check_int("depth", depth, minimum=1)
    get_activation(activation, closed_form=True)
    w_var = hyperparameter("w_var", w_var, check_positive)  # arrays and traced values pass: gradients in w_var
    b_var = hyperparameter("b_var", b_var, check_nonnegative)
    return depth, w_var, b_var


@partial(jax.jit, static_argnames=("num_features", "depth", "activation"))
def _chain_from_norms(sq_norms, num_features, depth, activation, w_var, b_var):
    """Per-point variances K^l(x, x), l = 1..depth+1, from the squared norms of the inputs: (depth + 1, n)."""
    e_self, _ = _diag_self(activation)
    k = w_var * sq_norms / num_features + b_var
    out = [k]
    for _ in range(depth):
        k = w_var * e_self(k) + b_var
        out.append(k)
    return jnp.stack(out)


def _diag_chain(x, depth, activation, w_var, b_var):
    """Per-point variances K^l(x, x), l = 1..depth+1: shape (depth + 1, n)."""
    return _chain_from_norms(jnp.sum(x * x, axis=1), x.shape[1], depth, activation, w_var, b_var)


@partial(jax.jit, static_argnames=("depth", "activation", "want_nngp", "want_ntk"))
def _block(x1, x2, d1, d2, depth, activation, w_var, b_var, want_nngp, want_ntk):
    """Kernel block between rows x1 (b, d) and x2 (n2, d), given their variance chains d1, d2.

    Layer 1 is ``Dense`` on the inputs; each further step is ``Activation`` then ``Dense``
    (:mod:`.layers`), with the variances taken from the chains computed once for all rows.
    """
    k = w_var * (x1 @ x2.T) / x1.shape[1] + b_var
    state = Kernel(k, k if want_ntk else None, d1[0], d2[0])
    for layer in range(depth):
        state = state._replace(diag1=d1[layer], diag2=d2[layer])
        state = dense_map(activation_map(state, activation), w_var, b_var)
    return (state.nngp if want_nngp else None), state.ntk


def _pad_rows(a, rows, axis=0, xp=jnp):
    """``a`` padded along ``axis`` to ``rows`` entries with ``xp.pad`` (``jnp`` traced, ``np`` on the host)."""
    extra = rows - a.shape[axis]
    if extra <= 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, extra)
    return xp.pad(a, widths, constant_values=1.0)  # padded points get unit variance; results are dropped


def _block_size(n1, n2, block_size, symmetric):
    """Rows per block: given, or about 2e6 entries per block (16 MB per float64 temporary); the symmetric
    case cuts the matrix in at least 2 x 2 square tiles."""
    if block_size is not None:
        return check_int("block_size", block_size, minimum=1)
    budget = 2_000_000
    if symmetric:
        tiles = max(2, -(-n1 // int(budget**0.5)))
        return -(-n1 // tiles)
    return max(1, min(n1, budget // max(1, n2)))


def _host_chains(x1, x2, depth, activation, w_var, b_var):
    """The variance chains of concrete x1 and x2 (NumPy arrays) from one call on their joined squared norms."""
    sq = [np.einsum("ij,ij->i", x, x) for x in ((x1,) if x2 is x1 else (x1, x2))]
    chains = np.asarray(_chain_from_norms(np.concatenate(sq), x1.shape[1], depth, activation, w_var, b_var))
    d1 = chains[:, :x1.shape[0]]
    return d1, (d1 if x2 is x1 else chains[:, x1.shape[0]:])


def _blocked(x1, x2, depth, activation, w_var, b_var, want_nngp, want_ntk, block_size):
    """Kernel matrices in blocks of equal shape (padded), so that XLA compiles one block function.

    With concrete inputs and hyperparameters (none traced) the rows of x1 are padded and sliced in NumPy,
    the variance chains of x1 and x2 come from one call, and with ``x2 is x1`` only the tiles on and above
    the diagonal are computed (:func:`_symmetric_tiles`).  Done by JAX eagerly, each pad and slice is
    compiled for its shape and copied on the device: the train and test-train kernels of 4000 and 10,000
    images took 2.95 s that way against 2.71 s on the host, cold, on two cores (the block function is
    compiled either way).  Traced: the same blocks, padded and sliced by JAX.  Temporaries are O(block
    entries); the result is the only (n1, n2) array.
    """
    host = not any(isinstance(a, jax.core.Tracer) for a in (x1, x2, w_var, b_var))
    args = (depth, activation, w_var, b_var, want_nngp, want_ntk)
    n1 = x1.shape[0]
    if host:
        h1 = np.asarray(x1)
        d1, d2 = _host_chains(h1, h1 if x2 is x1 else np.asarray(x2), depth, activation, w_var, b_var)
        if x2 is x1 and (n1 >= 800 if block_size is None else block_size < n1):
            return _symmetric_tiles(h1, d1, _block_size(n1, n1, block_size, True), args)
    else:
        h1 = x1
        d1 = _diag_chain(x1, depth, activation, w_var, b_var)
        d2 = d1 if x2 is x1 else _diag_chain(x2, depth, activation, w_var, b_var)
    b = _block_size(n1, x2.shape[0], block_size, False)
    nb = -(-n1 // b)
    xp, dp = _pad_rows(h1, nb * b, xp=np if host else jnp), _pad_rows(d1, nb * b, axis=1, xp=np if host else jnp)
    blocks = [_block(xp[i * b:(i + 1) * b], x2, dp[:, i * b:(i + 1) * b], d2, *args)  # x2 stays on the device
              for i in range(nb)]

    def cat(parts):  # the blocks stay on the device too: one copy into the result
        out = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=0)
        return out[:n1] if out.shape[0] != n1 else out

    return tuple(cat([blk[k] for blk in blocks]) if want else None for k, want in enumerate((want_nngp, want_ntk)))


def _symmetric_tiles(x, d, b, args):
    """K(x, x) from the tiles on and above the diagonal (``b`` rows each), mirrored into a NumPy array."""
    n = x.shape[0]
    nb = -(-n // b)
    xp, dp = _pad_rows(x, nb * b, xp=np), _pad_rows(d, nb * b, axis=1, xp=np)
    outs = [np.empty((nb * b, nb * b), x.dtype) if want else None for want in args[-2:]]
    for i in range(nb):
        ri = slice(i * b, (i + 1) * b)
        for j in range(i, nb):
            rj = slice(j * b, (j + 1) * b)
            for out, blk in zip(outs, _block(xp[ri], xp[rj], dp[:, ri], dp[:, rj], *args)):
                if out is not None:
                    blk = np.asarray(blk)
                    out[ri, rj] = blk
                    if j != i:
                        out[rj, ri] = blk.T
    return tuple(None if out is None else jnp.asarray(out[:n, :n]) for out in outs)


def nngp_kernel(x1, x2=None, *, depth: int, activation: str = "relu", w_var: float = 2.0, b_var: float = 0.0,
                block_size: int | None = None):
    r"""Closed-form NNGP kernel :math:`K^{\text{depth}+1}(x_1, x_2)` of a fully-connected network.

    ``x1`` (n1, d), ``x2`` (n2, d) or ``None`` (then ``x2 = x1``).  Returns an (n1, n2) array in the
    input dtype.  Computed in row blocks of ``block_size`` rows (default: ~2e6 entries per block).
    Equal to ``stax.serial(Dense(., sqrt(w_var), sqrt(b_var)), phi, ..., Dense(1, ...))`` in
    neural-tangents (checked to 1e-6 relative in float64 in ``tests/test_kernels.py``).
    """
    depth, w_var, b_var = _check_hyper(depth, activation, w_var, b_var)
    x1, x2 = _check_inputs(x1, x2)
    return _blocked(x1, x2, depth, activation, w_var, b_var, True, False, block_size)[0]


def ntk_kernel(x1, x2=None, *, depth: int, activation: str = "relu", w_var: float = 2.0, b_var: float = 0.0,
               block_size: int | None = None):
    r"""Closed-form NTK :math:`\Theta^{\text{depth}+1}(x_1, x_2)` (infinite width, "ntk" parameterisation).

    Same arguments and shapes as :func:`nngp_kernel`.
    """
    depth, w_var, b_var = _check_hyper(depth, activation, w_var, b_var)
    x1, x2 = _check_inputs(x1, x2)
    return _blocked(x1, x2, depth, activation, w_var, b_var, False, True, block_size)[1]


def nngp_ntk_kernels(x1, x2=None, *, depth: int, activation: str = "relu", w_var: float = 2.0,
                     b_var: float = 0.0, block_size: int | None = None):
    """Both kernels in one pass: ``(nngp, ntk)``, each (n1, n2)."""
    depth, w_var, b_var = _check_hyper(depth, activation, w_var, b_var)
    x1, x2 = _check_inputs(x1, x2)
    return _blocked(x1, x2, depth, activation, w_var, b_var, True, True, block_size)


def kernel_diagonals(x, *, depth: int, activation: str = "relu", w_var: float = 2.0, b_var: float = 0.0):
    r"""Diagonals :math:`K(x_i, x_i)` and :math:`\Theta(x_i, x_i)`, each (n,), in O(n d) memory."""
    depth, w_var, b_var = _check_hyper(depth, activation, w_var, b_var)
    x, _ = _check_inputs(x, None, "x", "x")
    chain = _diag_chain(x, depth, activation, w_var, b_var)
    _, d_self = _diag_self(activation)
    theta = chain[0]
    for layer in range(depth):
        theta = chain[layer + 1] + w_var * d_self(chain[layer]) * theta
    return chain[-1], theta

