r"""Randomly pivoted Cholesky factor of the kernel (in blocks) and the Woodbury preconditioner on it.

Pivoted Cholesky (Harbrecht, Peters and Schneider 2012; the preconditioner of Gardner et al. 2018)
builds :math:`L` (n, r) with :math:`K \approx L L^\top`, :math:`K - L L^\top \succeq 0`, from r
columns of :math:`K`, each pivot chosen by the residual diagonal :math:`d = \operatorname{diag}(K - L L^\top)`.
Here pivots are *sampled* with probability proportional to :math:`d` (randomly pivoted Cholesky,
Chen, Epperly, Tropp and Webber 2022), ``block`` at a time: ``block`` candidates are drawn without
replacement (Gumbel top-k on :math:`\log d`, one NumPy generator seeded from the PRNG key), their
residual columns :math:`G = K_{:,c} - L L_{c,:}^\top` are computed from the inputs (one kernel block,
sharded over the rows), and a small Cholesky of :math:`G_{c,:}` takes them in the order drawn,
dropping a candidate whose residual fell below 1e-3 of its value before the block (a near-duplicate
of one already taken).  The accepted columns :math:`G_{:,a} L_{aa}^{-\top}` extend :math:`L`; the loop
runs in Python, one compiled step.  (Accepting candidate j only with probability :math:`d'_j/d_j`,
the rejection rule of Epperly, Tropp and Webber 2024 that makes block sampling exact, kept a quarter
of the first block on the 60 000-image kernel, whose entries are all strongly correlated; the
deterministic rule gave the same CG iteration counts at n = 4000.)

Why not the greedy rule (largest :math:`d`): it picks outliers and leaves the bulk of the spectrum.
Measured on the Fashion-MNIST NNGP (n = 4000, r = 500): :math:`\lambda_{\max}(K - LL^\top)` 28.6
greedy against 3.0 sampled, and 99 against 79 CG iterations to a relative residual of 1e-5.

The preconditioner is :math:`M = L L^\top + \sigma^2 I`, applied through the Woodbury identity with
one r x r Cholesky factor :math:`R R^\top = \sigma^2 I_r + L^\top L` (float64) folded into the basis
:math:`Q = L R^{-\top}` once:

.. math::

    M^{-1} v = \sigma^{-2}\big(v - L\,(\sigma^2 I_r + L^\top L)^{-1} L^\top v\big)
             = \sigma^{-2}\big(v - Q Q^\top v\big).

The eigenvalues of :math:`M^{-1}(K + \sigma^2 I)` lie in :math:`[1, 1 + \lambda_{\max}(K - L L^\top)/\sigma^2]`,
so CG needs about :math:`\sqrt{\lambda_{\max}(K - LL^\top)}/\sigma` iterations per digit.  Jitter, if the
r x r core needs any, changes :math:`M` only, never the solution.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from ..numerics import cholesky_with_jitter
from .operator import AXIS, KernelOperator, global_array, replicated, train_columns

_DUPLICATE = 1e-3  # in a block, drop a candidate whose residual fell below this fraction of its own

__all__ = ["PivotedCholesky", "pivoted_cholesky", "WoodburyPreconditioner", "woodbury_preconditioner"]


class PivotedCholesky(NamedTuple):
    """:math:`K \\approx L L^\\top` with ``factor`` L (num_blocks, b, r) row-sharded (padded rows zero)."""

    factor: jax.Array
    pivots: np.ndarray  # (r,) training indices, in pivot order; factor rows at the pivots are lower triangular
    residual_trace: float  # tr(K - L L^T) / tr(K)


@jax.jit
def _residual_columns(op: KernelOperator, blocks, used, cand):
    r""":math:`G = K(X, X_c) - L L_c^\top` (num_blocks, b, s) and its rows at the candidates (s, s).

    ``blocks`` (k_max, num_blocks, b, s) holds L by column blocks, of which the first ``used`` are
    filled: the loop touches only those (no flops on the unfilled part of L).
    """
    n_pad = op.layout.padded
    cols = train_columns(op, cand)
    g0 = cols.reshape(n_pad, -1)

    def body(k, g):
        fk = blocks[k].reshape(n_pad, -1)  # (N, s); reshape + matmul (an einsum over (i, b) is ~4x slower on CPU)
        return g - fk @ fk[cand].T

    g = lax.fori_loop(0, used, body, g0)
    return g.reshape(cols.shape), g[cand]


@partial(jax.jit, donate_argnums=(0,))
def _extend(blocks, g, w, k):
    """Write :math:`G W` (num_blocks, b, s) as column block ``k`` of L; return its squared row norms."""
    new = (g.reshape(-1, g.shape[-1]) @ w).reshape(g.shape)
    return lax.dynamic_update_index_in_dim(blocks, new, k, 0), jnp.sum(new * new, axis=-1)


@jax.jit
def _inverse_transpose(lower):
    return jsl.solve_triangular(lower, jnp.eye(lower.shape[0], dtype=lower.dtype), lower=True).T


@partial(jax.jit, static_argnames=("widths",))
def _compact(blocks, widths):
    """L (num_blocks, b, r) from the filled leading columns of each column block."""
    return jnp.concatenate([blocks[k, ..., :w] for k, w in enumerate(widths)], axis=-1)


def _block_cholesky(s: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Candidates of one block, in the order drawn: position j is accepted unless its residual after
    the block's accepted candidates fell below ``_DUPLICATE`` of its residual before (a near-duplicate).
    Returns the accepted positions and the lower-triangular factor of ``s[acc][:, acc]`` (that order)."""
    s = 0.5 * (s + s.T)
    d0 = np.diag(s).copy()
    dd = d0.copy()
    lc = np.zeros((s.shape[0], s.shape[0]))
    acc: list[int] = []
    for j in range(s.shape[0]):
        if not dd[j] > _DUPLICATE * d0[j] or not dd[j] > 0:
            continue
        k = len(acc)
        lc[:, k] = (s[:, j] - lc[:, :k] @ lc[j, :k]) / np.sqrt(dd[j])
        acc.append(j)
        dd = dd - lc[:, k] ** 2
    return acc, lc[acc, : len(acc)]


def pivoted_cholesky(op: KernelOperator, diag: np.ndarray, rank: int, *, key, block: int = 128,
                     progress: Callable[[int, int], None] | None = None) -> PivotedCholesky:
    r"""Rank-``rank`` (at most) randomly pivoted Cholesky of the training kernel of ``op`` (module docstring).

    ``diag`` (n,) the kernel diagonal; ``key`` a JAX PRNG key (same key, same pivots).  Stops early
    when the residual diagonal falls below ``1e-12 * max(diag)`` (numerical rank reached), or when
    rejections used up the ``1.1 rank / block + 2`` column blocks allocated (the rank reached is
    ``factor.shape[-1]``).
    ``progress(rank so far, rank)`` after each block.
    """
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64).tolist())
    lay = op.layout
    n, n_pad = lay.n, lay.padded
    rank = int(min(rank, n))
    block = int(min(block, rank))
    d = np.full(n_pad, -np.inf)
    d[:n] = np.asarray(diag, np.float64)
    total = float(np.sum(d[:n]))
    floor = 1e-12 * float(np.max(d[:n]))
    k_max = -(-11 * rank // (10 * block)) + 2  # room for blocks that accept fewer than `block` candidates
    shape = (k_max, lay.num_blocks, lay.block, block)
    blocks = jnp.zeros(shape, jnp.float64, device=NamedSharding(op.mesh, P(None, AXIS)))
    pivots: list[int] = []
    widths: list[int] = []
    r = 0
    while r < rank and len(widths) < k_max:
        s = min(block, rank - r)
        if not np.max(d) > floor:
            break
        score = np.where(d > 0, np.log(np.where(d > 0, d, 1.0)), -np.inf) + rng.gumbel(size=n_pad)
        order = np.argpartition(-score, s - 1)[:s] if s < n_pad else np.arange(n_pad)
        cand = order[np.argsort(-score[order])]  # without replacement, proportional to d, in draw order
        cand_pad = np.concatenate([cand, np.repeat(cand[:1], block - s)])  # fixed shape: one compilation
        g, g_cc = _residual_columns(op, blocks, len(widths), cand_pad)
        g_cc = np.asarray(replicated(op.mesh, g_cc))[:s, :s]
        acc, l_acc = _block_cholesky(g_cc)
        if not acc:
            break
        # W with G W = G[:, acc] L_acc^{-T}: the small inverse in JAX, padded to one shape (NumPy's
        # threaded BLAS stalls on a busy machine, and a JAX solve per distinct size would recompile)
        a = len(acc)
        l_pad = np.eye(block)
        l_pad[:a, :a] = l_acc
        w = np.zeros((block, block))
        w[np.asarray(acc), :a] = np.asarray(_inverse_transpose(l_pad))[:a, :a]
        blocks, sq = _extend(blocks, g, w, len(widths))
        widths.append(len(acc))
        d = d - np.asarray(replicated(op.mesh, sq)).reshape(-1)
        d[cand[acc]] = -np.inf
        pivots.extend(int(c) for c in cand[acc])
        r += len(acc)
        if progress is not None:
            progress(r, rank)
    factor = _compact(blocks, tuple(widths))
    del blocks
    resid = float(np.sum(np.where(np.isfinite(d[:n]), np.maximum(d[:n], 0.0), 0.0))) / total if total > 0 else 0.0
    return PivotedCholesky(factor, np.asarray(pivots, dtype=np.int64), resid)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class WoodburyPreconditioner:
    r""":math:`v \mapsto (L L^\top + \sigma^2 I)^{-1} v = \sigma^{-2}(v - Q Q^\top v)` (module docstring); jittable
    pytree.  ``basis`` :math:`Q = L R^{-\top}` (num_blocks, b, r), row-sharded, with :math:`R R^\top = \sigma^2 I +
    L^\top L` (``core``, lower, replicated); ``pivot_rows`` :math:`L_{PP}` (r, r), the factor's rows at the pivots
    (lower triangular in pivot order, replicated: the Nystrom variance needs them, not the whole factor)."""

    basis: jax.Array
    core: jax.Array
    pivot_rows: jax.Array
    noise: jax.Array

    def apply(self, v):
        flat = self.basis.reshape(-1, self.basis.shape[-1])  # (N, r)
        u = flat.T @ v.reshape(-1, v.shape[-1])  # Q^T v, (r, C)
        return (v - (flat @ u).reshape(v.shape)) / self.noise


@jax.jit
def _gram(factor):
    flat = factor.reshape(-1, factor.shape[-1])
    return flat.T @ flat


@jax.jit
def _basis(factor, core):
    r""":math:`Q = L R^{-\top}`: one r x r triangular inverse, then one product (the (r, N) triangular solve
    would be r^2 N flops of XLA's slower triangular solve)."""
    r_inv_t = jsl.solve_triangular(core, jnp.eye(core.shape[0], dtype=core.dtype), lower=True).T
    return (factor.reshape(-1, factor.shape[-1]) @ r_inv_t).reshape(factor.shape)


@jax.jit
def _pivot_rows(factor, idx):
    return factor.reshape(-1, factor.shape[-1])[idx]


def woodbury_preconditioner(chol: PivotedCholesky, noise_var: float, mesh) -> tuple[WoodburyPreconditioner, float]:
    r"""The preconditioner of ``chol`` and noise ``noise_var`` > 0; also the jitter added to its core.

    Applied as :math:`\sigma^{-2}(v - Q Q^\top v)` rather than with a triangular solve per application: the
    same two passes over an (N, r) array without the solve, 21 ms against 37-47 ms per application at
    n = 10 000, r = 1250 (2 CPU cores), equal to 1e-15."""
    gram = np.asarray(replicated(mesh, _gram(chol.factor)))
    core, jitter = cholesky_with_jitter(jnp.asarray(gram + noise_var * np.eye(gram.shape[0])))
    core = global_array(np.asarray(core), mesh, P())
    rows = replicated(mesh, _pivot_rows(chol.factor, jnp.asarray(chol.pivots)))
    pre = WoodburyPreconditioner(_basis(chol.factor, core), core, rows, global_array(np.float64(noise_var), mesh, P()))
    return pre, float(jitter)
