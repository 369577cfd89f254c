r"""The training kernel matrix as a linear operator, its tiles sharded over the rows of :math:`K`.

Layout.  The n training points are padded to :math:`N = n_b b` (``num_blocks`` row blocks of ``block``
rows; padded rows are masked to zero) and :math:`K` is cut into :math:`b \times b` tiles
:math:`K_{IJ}`.  Row block :math:`I` owns the tiles :math:`K_{I,(I+k) \bmod n_b}`,
:math:`k = 0, \dots, h = \lfloor n_b/2 \rfloor`: every unordered pair of blocks is owned once (twice,
by both ends, for :math:`k = n_b/2` when :math:`n_b` is even), each row block owns the same number of
tiles, and the owned tiles hold about half of :math:`K` (symmetry).  The product is

.. math::

    (K V)_I = \sum_{k=0}^{h} K_{I,I+k} V_{I+k} + \sum_{0<k<n_b/2} K_{I-k,I}^\top V_{I-k},

so each owned tile is read once per product and used twice.  The row blocks are sharded over the
devices of a one-axis :class:`jax.sharding.Mesh` (axis ``"rows"``): a device computes the products of
its own tiles against the (all-gathered, ``N x C``) vector and the partial results are summed and
scattered back to their row blocks with one ``psum_scatter``; only vectors cross devices.

Storage (``"float32"``, :func:`store_tiles`): the owned tiles of :math:`K - c\,\mathbf 1 \mathbf 1^\top`
are computed in float64 from the inputs with the closed forms of :mod:`bayes_mogp.kernels.closed_form`
(its block function ``_block``, the one :func:`~bayes_mogp.kernels.nngp_kernel` uses) and stored in
float32 (4 bytes per entry, :meth:`TileLayout.storage_bytes`), each row block on its own device.  The constant :math:`c` (the median
kernel entry of a subsample) is subtracted because the rounding error of an entry is relative to
its size: deep ReLU NNGP entries sit in a narrow band away from 0, and centring them shrinks the
absolute rounding error about five-fold; :math:`c\,\mathbf 1 (\mathbf 1^\top V)` is added back
exactly.  Each tile is converted to float64 before its products, so all sums (within a tile,
across tiles and across devices) are float64.  Recompute (``"recompute"``): the same tiles are
recomputed in float64 from the inputs at every product (no storage, about 50 times slower on a CPU);
this is also the exact operator that the float32 solution is checked against.

Kernel evaluations (the tiles, the columns :math:`K(X, x_q)`, the products :math:`K(x_q, X) W`) take
several blocks at once, about :data:`CHUNK_ENTRIES` entries per evaluation, in a Python loop unrolled
inside the compiled function rather than a ``lax.scan`` / ``lax.map``: XLA's CPU backend runs a loop
body on one thread and without its fusions across iterations, and the same 8 tiles of 504 x 504 took
241 ms through ``lax.map`` against 55-57 ms unrolled or as one evaluation (2 cores).  The stored
operator's product keeps its ``lax.scan`` over tiles: it is bound by reading the tiles, not by flops.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..kernels.closed_form import _block, _diag_chain

__all__ = [
    "AXIS",
    "KERNELS",
    "KernelSpec",
    "TileLayout",
    "make_layout",
    "make_mesh",
    "KernelOperator",
    "build_operator",
    "store_tiles",
    "query_chain",
    "kernel_diagonal",
    "pad_rows",
    "kernel_columns",
    "train_columns",
    "cross_matmul",
    "to_blocks",
    "from_blocks",
    "replicated",
    "global_array",
]

AXIS = "rows"
KERNELS = ("nngp", "ntk")
CHUNK_ENTRIES = 1 << 21  # kernel entries per evaluation in the tiles, columns and cross products (16 MB in float64)
MAX_UNROLL = 32  # evaluations unrolled in one compiled function; more items make larger groups


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """The kernel of a fully-connected network: ``kind`` ``"nngp"`` or ``"ntk"`` of a ``depth``-hidden-layer
    network (>= 1) with ``activation`` (:data:`bayes_mogp.kernels.ACTIVATIONS`), weight variance ``w_var`` > 0
    and bias variance ``b_var`` >= 0, as :func:`bayes_mogp.kernels.nngp_kernel`.  Checked when built; frozen
    and hashable (a static argument of the jitted functions)."""

    kind: str = "nngp"
    depth: int = 3
    activation: str = "relu"
    w_var: float = 2.0
    b_var: float = 0.0

    def __post_init__(self):
        from ..kernels.closed_form import ACTIVATIONS
        from ..validation import check_choice, check_int, check_nonnegative, check_positive

        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen: validated copies)
        check_choice("kernel", self.kind, KERNELS)
        set_("depth", check_int("depth", self.depth, minimum=1))
        check_choice("activation", self.activation, ACTIVATIONS)
        set_("w_var", check_positive("w_var", self.w_var))
        set_("b_var", check_nonnegative("b_var", self.b_var))

    @property
    def kernel_kwargs(self) -> dict:
        """``depth``, ``activation``, ``w_var``, ``b_var`` as keyword arguments of :func:`bayes_mogp.kernels.nngp_kernel`."""
        return dict(depth=self.depth, activation=self.activation, w_var=self.w_var, b_var=self.b_var)


def kernel_tile(spec: KernelSpec, x1, x2, d1, d2):
    """Kernel block (b1, b2) between ``x1`` (b1, d) and ``x2`` (b2, d) with their variance chains."""
    nngp, ntk = _block(x1, x2, d1, d2, spec.depth, spec.activation, spec.w_var, spec.b_var,
                       spec.kind == "nngp", spec.kind == "ntk")
    return nngp if spec.kind == "nngp" else ntk


@dataclasses.dataclass(frozen=True)
class TileLayout:
    """Row blocks of the padded training set and the tiles each row block owns (module docstring)."""

    n: int  # training points
    block: int  # rows per block, b
    num_blocks: int  # n_b, a multiple of num_devices
    num_devices: int

    @property
    def padded(self) -> int:
        return self.block * self.num_blocks

    @property
    def half(self) -> int:
        return self.num_blocks // 2

    @property
    def local_blocks(self) -> int:
        return self.num_blocks // self.num_devices

    @property
    def num_tiles(self) -> int:
        return self.num_blocks * (self.half + 1)

    def storage_bytes(self) -> int:
        """Bytes of the float32 tile storage, all devices together."""
        return self.num_tiles * self.block * self.block * 4


def make_layout(n: int, num_devices: int, block_size: int) -> TileLayout:
    """Blocks of at most ~``block_size`` rows (a multiple of 8), their number a multiple of the devices."""
    nb = max(1, math.ceil(n / block_size))
    nb = math.ceil(nb / num_devices) * num_devices
    b = math.ceil(n / nb)
    b = math.ceil(b / 8) * 8
    while nb > num_devices and (nb - num_devices) * b >= n:  # rounding b up may leave padding blocks
        nb -= num_devices
    return TileLayout(n=n, block=b, num_blocks=nb, num_devices=num_devices)


def make_mesh(devices=None) -> Mesh:
    """A one-axis mesh (axis ``"rows"``) over ``devices`` (default: all devices, ``jax.devices()``)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices, dtype=object), (AXIS,))


def global_array(a: np.ndarray, mesh: Mesh, spec) -> jax.Array:
    """A global array from a host array that every process holds (works across hosts)."""
    a = np.asarray(a)
    if a.ndim:
        a = np.ascontiguousarray(a)  # (it would turn a 0-d array into a 1-d one)
    return jax.make_array_from_callback(a.shape, NamedSharding(mesh, spec), lambda idx: a[idx])


def pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """Pad with copies of the first row (valid inputs, so no NaN in masked tiles)."""
    extra = rows - a.shape[0]
    if extra <= 0:
        return a
    return np.concatenate([a, np.repeat(a[:1], extra, axis=0)], axis=0)


def query_chain(spec: KernelSpec, x: np.ndarray) -> np.ndarray:
    """Per-point variances :math:`K^l(x, x)`, l = 1..depth+1, of query points: (depth + 1, s), float64."""
    return np.asarray(_diag_chain(jnp.asarray(x, jnp.float64), spec.depth, spec.activation, spec.w_var,
                                  spec.b_var))


def kernel_diagonal(spec: KernelSpec, x: np.ndarray) -> np.ndarray:
    """Kernel diagonal :math:`k(x_i, x_i)` (s,) of ``spec`` at the rows of ``x``."""
    if spec.kind == "nngp":  # the last variance of the (jitted) chain: no eager ops to compile
        return query_chain(spec, x)[-1]
    from ..kernels import kernel_diagonals

    nngp_d, ntk_d = kernel_diagonals(x, **spec.kernel_kwargs)
    return np.asarray(nngp_d if spec.kind == "nngp" else ntk_d)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class KernelOperator:
    r""":math:`v \mapsto (K + \sigma^2 I) v` on row-blocked vectors (``num_blocks``, ``block``, C).

    ``tiles`` (num_blocks, h + 1, b, b) float32, row-sharded, or ``None`` (recompute mode); ``xb``
    (num_blocks, b, d) and ``db`` (depth + 1, num_blocks, b) the padded inputs and their variance
    chains, replicated; ``mask`` (num_blocks, b) 1.0 on real rows, replicated; ``centre`` the
    constant :math:`c` subtracted before storage (0 in recompute mode); ``noise`` :math:`\sigma^2`.
    """

    tiles: jax.Array | None
    xb: jax.Array
    db: jax.Array
    mask: jax.Array
    centre: jax.Array
    noise: jax.Array
    spec: KernelSpec = dataclasses.field(metadata=dict(static=True))
    layout: TileLayout = dataclasses.field(metadata=dict(static=True))
    mesh: Mesh = dataclasses.field(metadata=dict(static=True))

    @property
    def storage(self) -> str:
        return "recompute" if self.tiles is None else "float32"

    def exact(self) -> "KernelOperator":
        """The same kernel recomputed in float64 at every product (no rounding to float32)."""
        return dataclasses.replace(self, tiles=None, centre=global_array(np.float64(0.0), self.mesh, P()))

    def kernel_matvec(self, v):
        r""":math:`K V` for ``v`` (num_blocks, b, C), float64, row-sharded like ``v``."""
        lay, spec = self.layout, self.spec
        nb, nbl, half = lay.num_blocks, lay.local_blocks, lay.half

        def products(tile, v):
            """Both uses of every owned tile of this device; partial sums scattered to their rows."""
            dev = lax.axis_index(AXIS)
            ids = jnp.arange(nbl * (half + 1))
            li, k = ids // (half + 1), ids % (half + 1)
            gi = dev * nbl + li
            j = (gi + k) % nb
            w = ((k > 0) & (2 * k < nb)).astype(v.dtype)  # transposed use: each pair of blocks once

            def body(y, inp):
                li_, k_, gi_, j_, w_ = inp
                t = tile(li_, k_, gi_, j_)
                y = y.at[gi_].add(t @ v[j_])
                y = y.at[j_].add(w_ * (v[gi_].T @ t).T)
                return y, None

            y0 = lax.pcast(jnp.zeros((nb,) + v.shape[1:], v.dtype), AXIS, to="varying")
            y, _ = lax.scan(body, y0, (li, k, gi, j, w))
            return lax.psum_scatter(y, AXIS, scatter_dimension=0, tiled=True)

        if self.tiles is not None:
            def stored(tiles, v):
                return products(lambda li_, k_, gi_, j_: tiles[li_, k_].astype(jnp.float64), v)

            out = jax.shard_map(stored, mesh=self.mesh, in_specs=(P(AXIS), P()), out_specs=P(AXIS))(self.tiles, v)
        else:
            def recomputed(xb, db, mask, v):
                def tile(li_, k_, gi_, j_):
                    t = kernel_tile(spec, xb[gi_], xb[j_], db[:, gi_], db[:, j_])
                    return t * mask[gi_][:, None] * mask[j_][None, :]

                return products(tile, v)

            out = jax.shard_map(recomputed, mesh=self.mesh, in_specs=(P(), P(), P(), P()), out_specs=P(AXIS))(
                self.xb, self.db, self.mask, v)
        if self.tiles is not None:  # add back c 1 1^T v, on the real rows only
            m = self.mask[..., None]
            out = out + self.centre * m * jnp.sum(m * v, axis=(0, 1))
        return out

    def matvec(self, v):
        r""":math:`(K + \sigma^2 I) V` (padded rows: :math:`\sigma^2 V`, zero for zero-padded ``v``)."""
        return self.kernel_matvec(v) + self.noise * v


def _group(count: int, entries_each: int) -> int:
    """Items (row blocks or tiles) per kernel evaluation: about :data:`CHUNK_ENTRIES` entries, and at most
    :data:`MAX_UNROLL` evaluations for ``count`` items (larger groups beyond that)."""
    g = max(1, min(count, CHUNK_ENTRIES // max(1, entries_each)))
    return max(g, -(-count // MAX_UNROLL))


def evaluation_entries(layout: TileLayout) -> int:
    """An upper bound on the kernel entries of one evaluation (:func:`_group`) of the tiles, columns or cross
    products on ``layout`` (columns and cross products of at most ``block`` query points): the memory model's."""
    b2 = layout.block * layout.block
    return max(CHUNK_ENTRIES, _group(layout.half + 1, b2) * b2, _group(layout.local_blocks, b2) * b2)


def _row_groups(xb, db, per_block: int):
    """Consecutive groups of row blocks (:func:`_group`, ``per_block`` entries per block of the evaluation) as
    ``(i0, i1, rows, chains)``: the blocks ``i0:i1`` flattened to rows; a loop unrolled in the compiled function
    (module docstring: loop bodies run on one thread)."""
    nbl, _, d = xb.shape
    g = _group(nbl, per_block)
    for i0 in range(0, nbl, g):
        i1 = min(nbl, i0 + g)
        yield i0, i1, xb[i0:i1].reshape(-1, d), db[:, i0:i1].reshape(db.shape[0], -1)


@partial(jax.jit, static_argnames=("spec", "layout"), donate_argnums=(0,))
def _fill_row_block(tiles_local, xb, db, mask, centre, li, gi, spec, layout):
    """Compute the tiles owned by row block ``gi`` into ``tiles_local[li]`` in place (float64 -> float32):
    the tiles :math:`K_{g_i, g_i + k}` of several k from one kernel evaluation (:func:`_group`), unrolled."""
    nb, b, h1 = layout.num_blocks, layout.block, layout.half + 1
    g = _group(h1, b * b)
    for k0 in range(0, h1, g):
        k1 = min(h1, k0 + g)
        j = (gi + jnp.arange(k0, k1)) % nb
        t = kernel_tile(spec, xb[gi], xb[j].reshape(-1, xb.shape[-1]), db[:, gi],
                        db[:, j].reshape(db.shape[0], -1))  # (b, (k1 - k0) b)
        t = (t - centre) * mask[gi][:, None] * mask[j].reshape(-1)[None, :]
        t = t.reshape(b, k1 - k0, b).transpose(1, 0, 2).astype(jnp.float32)
        tiles_local = lax.dynamic_update_slice(tiles_local, t[None], (li, k0, 0, 0))
    return tiles_local


def _centre(spec: KernelSpec, x: np.ndarray, sample: int = 512) -> float:
    """Median off-diagonal kernel entry over an evenly spaced subsample (the constant ``c``)."""
    n = x.shape[0]
    idx = np.unique(np.linspace(0, n - 1, min(n, sample)).astype(int))
    xs = jnp.asarray(x[idx])
    ds = jnp.asarray(query_chain(spec, x[idx]))
    k = np.asarray(kernel_tile(spec, xs, xs, ds, ds))
    off = k[~np.eye(k.shape[0], dtype=bool)]
    return float(np.median(off)) if off.size else float(k.mean())


def build_operator(x: np.ndarray, spec: KernelSpec, noise_var: float, *, mesh: Mesh, block_size: int,
                   storage: str, progress=None) -> KernelOperator:
    """Pad and shard the inputs; with ``storage="float32"`` also compute and store the owned tiles
    (:func:`store_tiles`), else the operator recomputes them at every product.

    Multi-host: every process passes the same ``x``; each computes only its own devices' tiles.
    """
    n, d = x.shape
    lay = make_layout(n, mesh.devices.size, block_size)
    nb, b = lay.num_blocks, lay.block
    xp = pad_rows(np.asarray(x, np.float64), lay.padded)
    chain = query_chain(spec, xp)  # (depth + 1, N)
    mask = (np.arange(lay.padded) < n).astype(np.float64).reshape(nb, b)
    op = KernelOperator(tiles=None, xb=global_array(xp.reshape(nb, b, d), mesh, P()),
                        db=global_array(chain.reshape(chain.shape[0], nb, b), mesh, P()),
                        mask=global_array(mask, mesh, P()), centre=global_array(np.float64(0.0), mesh, P()),
                        noise=global_array(np.float64(noise_var), mesh, P()), spec=spec, layout=lay, mesh=mesh)
    return store_tiles(op, x, progress=progress) if storage == "float32" else op


def store_tiles(op: KernelOperator, x: np.ndarray, progress=None) -> KernelOperator:
    """``op`` with its owned tiles of :math:`K - c` computed (float64) and stored (float32), row block by
    row block on the device that owns it; ``x`` (n, d) the training inputs (for the centre ``c``).

    ``progress(stage, done, total)`` is called after each row block (stage ``"kernel"``).
    """
    lay, spec, mesh = op.layout, op.spec, op.mesh
    nb, b = lay.num_blocks, lay.block
    centre = _centre(spec, np.asarray(x, np.float64))
    sharding = NamedSharding(mesh, P(AXIS))
    shape = (nb, lay.half + 1, b, b)
    local = {}
    for dev, idx in sharding.addressable_devices_indices_map(shape).items():
        start = idx[0].start or 0
        shard_of = lambda a, dev=dev: next(s.data for s in a.addressable_shards if s.device == dev)  # noqa: E731
        local[dev] = [jnp.zeros((lay.local_blocks,) + shape[1:], jnp.float32, device=dev), start,
                      shard_of(op.xb), shard_of(op.db), shard_of(op.mask)]
    c = np.float64(centre)
    for li in range(lay.local_blocks):  # interleave devices so that they work concurrently
        for st in local.values():
            st[0] = _fill_row_block(st[0], st[2], st[3], st[4], c, li, st[1] + li, spec, lay)
        if progress is not None:
            jax.block_until_ready([st[0] for st in local.values()])
            progress("kernel", (li + 1) * lay.num_devices, nb)
    tiles = jax.make_array_from_single_device_arrays(shape, sharding, [st[0] for st in local.values()])
    return dataclasses.replace(op, tiles=tiles, centre=global_array(np.float64(centre), mesh, P()))


def _columns(xb, db, mask, xq, dq, spec):
    b, s = xb.shape[1], xq.shape[0]
    parts = [kernel_tile(spec, rows, xq, chains, dq).reshape(i1 - i0, b, s)
             for i0, i1, rows, chains in _row_groups(xb, db, b * s)]
    out = parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=0)
    return out * mask[..., None]


@jax.jit
def kernel_columns(op: KernelOperator, xq, dq) -> jax.Array:
    """:math:`K(X, x_q)` (num_blocks, b, s), row-sharded, for query inputs ``xq`` (s, d), chains ``dq``."""
    fn = jax.shard_map(partial(_columns, spec=op.spec), mesh=op.mesh,
                       in_specs=(P(AXIS), P(None, AXIS), P(AXIS), P(), P()), out_specs=P(AXIS))
    return fn(op.xb, op.db, op.mask, xq, dq)


@jax.jit
def _gather_rows(xb, db, idx):
    d = xb.shape[-1]
    return xb.reshape(-1, d)[idx], db.reshape(db.shape[0], -1)[:, idx]


def train_columns(op: KernelOperator, idx) -> jax.Array:
    """:math:`K(X, X_{idx})` (num_blocks, b, s) for indices ``idx`` (s,) into the padded training set."""
    xq, dq = _gather_rows(op.xb, op.db, idx)
    return kernel_columns(op, xq, dq)


def _cross(xb, db, mask, w, xq, dq, spec):
    acc = None
    for i0, i1, rows, chains in _row_groups(xb, db, xb.shape[1] * xq.shape[0]):
        k = kernel_tile(spec, xq, rows, dq, chains)
        part = (k * mask[i0:i1].reshape(-1)[None, :]) @ w[i0:i1].reshape(-1, w.shape[-1])
        acc = part if acc is None else acc + part
    return lax.psum(acc, AXIS)


@jax.jit
def cross_matmul(op: KernelOperator, xq, dq, w) -> jax.Array:
    """:math:`K(x_q, X)\\, W` (s, C), replicated, for ``w`` (num_blocks, b, C) row-sharded."""
    fn = jax.shard_map(partial(_cross, spec=op.spec), mesh=op.mesh,
                       in_specs=(P(AXIS), P(None, AXIS), P(AXIS), P(AXIS), P(), P()), out_specs=P())
    return fn(op.xb, op.db, op.mask, w, xq, dq)


def to_blocks(op: KernelOperator, a: np.ndarray) -> jax.Array:
    """Host (n, C) -> (num_blocks, b, C) float64, zero-padded, row-sharded."""
    lay = op.layout
    a = np.asarray(a, np.float64)
    out = np.zeros((lay.padded,) + a.shape[1:], np.float64)
    out[: lay.n] = a
    return global_array(out.reshape((lay.num_blocks, lay.block) + a.shape[1:]), op.mesh, P(AXIS))


@functools.lru_cache(maxsize=8)
def _replicator(mesh: Mesh):
    return jax.jit(lambda v: v, out_shardings=NamedSharding(mesh, P()))


def replicated(mesh: Mesh, a: jax.Array) -> jax.Array:
    """``a`` gathered onto every device of ``mesh`` (and so readable by every process)."""
    return _replicator(mesh)(a)


def from_blocks(op: KernelOperator, a: jax.Array) -> np.ndarray:
    """(num_blocks, b, C) row-sharded -> host (n, C) (gathered to every process)."""
    out = np.asarray(replicated(op.mesh, a))
    return out.reshape((-1,) + out.shape[2:])[: op.layout.n]
