r"""Fast Gaussian noise for the SG-MCMC samplers: :func:`normal` and :func:`normal_like`.

An SGHMC step of a 784-500-500-10 network needs 650,000 fresh standard normal numbers; on a CPU, drawing them
with JAX's default generator (:func:`jax.random.normal`: a 20-round Threefry-2x32 hash per 32-bit word, then
``sqrt(2) erfinv(2u - 1)``) costs as much as the gradient of the whole minibatch.  This module draws the same
law for less, from two standard, published pieces:

* **bits**: Philox-2x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
  SC 2011), the counter-based generator of cuRAND, TensorFlow and PyTorch in its 2-word form: ten rounds of
  one 32 x 32 -> 64-bit product and two xors.  Element ``i`` of a draw hashes the counter ``(i, k_1)`` under the
  key ``k_0``, where ``(k_0, k_1)`` are the two words of a JAX key; it is checked against the generator's
  published known-answer vectors (``tests/test_rng.py``).  Where the 32-bit words are not enough, a draw is
  refused (at most :math:`2^{32}` numbers per key).
* **normals**: the top 24 bits give :math:`x = (2m + 1)/2^{24} - 1 \in (-1, 1)`, symmetric and never
  :math:`\pm 1`, and :math:`z = \sqrt 2\, \mathrm{erf}^{-1}(x)`, with :math:`\mathrm{erf}^{-1}` from the
  single-precision approximation of Giles ("Approximating the erfinv function", GPU Computing Gems, 2011): one
  logarithm, one square root and two polynomials of degree 8.  Over all :math:`2^{24}` inputs :math:`x` it is
  within :math:`3 \cdot 10^{-7}`, under 3 float32 ulps, of the exact value (relative; tested exhaustively
  against SciPy), closer than XLA's own float32 ``erf_inv`` (:math:`6 \cdot 10^{-6}`); :math:`|z| \le 5.42`, so the law is the standard
  normal truncated at 5.42 standard deviations (mass :math:`6 \cdot 10^{-8}` cut off, one draw in 17 million).

Why not a library: JAX's generators are the slower ones above; BlackJAX and NumPyro draw their noise with
JAX's.  Measured on 2 CPU cores (``benchmarks/bench_paper_compressibility.py --speed``), one SGHMC epoch of
784-1000-1000-10 on 60,000 images: the noise costs 2.8 s with this module and 4.6 s with JAX's normal (epochs
of 6.9 s and 8.7 s); at width 500 the difference is within the machine's run-to-run noise.  Alone, on
650,000 numbers, the Philox words take 1.0-1.7 ns each against 1.8 ns for Threefry's, and the transform 0.8 ns
against 1.4 ns for XLA's float32 ``erf_inv``; fused into the SGHMC update the two do not add up to the sum of
their parts.

Everything is pure ``jax.numpy`` on ``uint32`` words (the 64-bit product is four 16-bit ones), so it runs the
same with or without JAX's x64 mode, under ``jit`` and ``vmap``, on any backend; the same key gives the same
numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .errors import InputError

__all__ = ["philox2x32", "random_bits", "normal", "normal_like", "normal_from_bits"]

#: Philox-2x32's multiplier and key increment (Salmon et al. 2011)
_M = 0xD256D193
_W = 0x9E3779B9
ROUNDS = 10


def _mulhilo(a, m: int):
    """Low and high 32-bit words of ``a * m`` (``a`` uint32 array, ``m`` a 32-bit constant), from four 16-bit
    products, so that no 64-bit integer type is needed."""
    u32 = np.uint32
    m_lo, m_hi = u32(m & 0xFFFF), u32(m >> 16)
    a_lo, a_hi = a & u32(0xFFFF), a >> u32(16)
    lh, hl = a_lo * m_hi, a_hi * m_lo
    mid = ((a_lo * m_lo) >> u32(16)) + (lh & u32(0xFFFF)) + (hl & u32(0xFFFF))
    hi = a_hi * m_hi + (lh >> u32(16)) + (hl >> u32(16)) + (mid >> u32(16))
    return a * u32(m), hi


def philox2x32(c0, c1, k, rounds: int = ROUNDS):
    """The Philox-2x32 bijection of counters ``(c0, c1)`` (uint32 arrays of one shape) under the key ``k``
    (uint32 scalar): the two output words."""
    c0, c1 = jnp.asarray(c0, jnp.uint32), jnp.asarray(c1, jnp.uint32)
    k = jnp.asarray(k, jnp.uint32)
    for r in range(rounds):
        if r:
            k = k + np.uint32(_W)
        lo, hi = _mulhilo(c0, _M)
        c0, c1 = hi ^ k ^ c1, lo
    return c0, c1


def _key_words(key):
    """The two uint32 words of a JAX key (typed or raw ``uint32[2]``)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    key = jnp.asarray(key)
    if key.shape != (2,) or key.dtype != jnp.uint32:
        raise InputError(f"key must be a JAX PRNG key or a raw uint32[2] key, got {key.dtype}{list(key.shape)}")
    return key[0], key[1]


def random_bits(key, shape) -> jax.Array:
    """``uint32`` words of the given shape: element ``i`` (row-major) is Philox-2x32-10's first word of counter
    ``(i, k_1)`` under key ``k_0``."""
    k0, k1 = _key_words(key)
    size = int(np.prod(shape, dtype=np.int64))
    if size > 2**32:
        raise InputError(f"at most 2^32 numbers per key, got shape {tuple(shape)}")
    counter = jax.lax.iota(jnp.uint32, size)
    return philox2x32(counter, jnp.broadcast_to(k1, counter.shape), k0)[0].reshape(shape)


#: Giles' single-precision erfinv: central branch (w < 5) in w - 2.5, tail branch in sqrt(w) - 3, highest first
_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
            -0.00417768164, 0.246640727, 1.50140941)
_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
         0.00943887047, 1.00167406, 2.83297682)


def _erfinv(x):
    """Giles' approximation of :math:`\\mathrm{erf}^{-1}(x)` for ``|x| < 1`` (module docstring)."""
    w = -jnp.log((1.0 - x) * (1.0 + x))
    t1, t2 = w - 2.5, jnp.sqrt(w) - 3.0
    p1, p2 = _CENTRAL[0], _TAIL[0]
    for a, b in zip(_CENTRAL[1:], _TAIL[1:]):
        p1, p2 = a + p1 * t1, b + p2 * t2
    return jnp.where(w < 5.0, p1, p2) * x


def normal_from_bits(bits, dtype=jnp.float32) -> jax.Array:
    """Standard normal numbers from ``uint32`` words (their top 24 bits; module docstring)."""
    m = (bits >> np.uint32(8)).astype(jnp.int32)
    x = (2 * m + np.int32(1 - 2**24)).astype(dtype) * np.asarray(2.0**-24, dtype)  # exact: |2m + 1 - 2^24| < 2^24
    return np.asarray(np.sqrt(2.0), dtype) * _erfinv(x)


def normal(key, shape, dtype=jnp.float32) -> jax.Array:
    """Standard normal numbers of ``shape`` and floating ``dtype`` (module docstring); same key, same numbers."""
    if not jnp.issubdtype(dtype, jnp.floating):
        raise InputError(f"dtype must be a floating type, got {dtype}")
    return normal_from_bits(random_bits(key, shape), dtype)


def normal_like(key, tree):
    """A pytree of standard normal numbers shaped like ``tree`` (each leaf's shape and dtype); leaf ``j`` uses the
    key ``fold_in(key, j)``."""
    leaves, treedef = jax.tree.flatten(tree)
    if jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        typed = key
    else:
        typed = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    out = [normal(jax.random.fold_in(typed, j), jnp.shape(x), jnp.result_type(x)) for j, x in enumerate(leaves)]
    return jax.tree.unflatten(treedef, out)
