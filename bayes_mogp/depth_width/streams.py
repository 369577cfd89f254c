"""Random streams behind a JAX key: NumPy generators, one per chunk, for the samplers.

Part of :mod:`bayes_mogp.depth_width` (see its docstring for the mathematics)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


# Why NumPy generators behind a JAX key: on CPU, NumPy's SFC64 ziggurat normals are 3-5x faster than
# jax.random.normal (threefry + erfinv; 18-46 M/s against 75-100 M/s measured here), and NumPy's binomial
# and gamma samplers 20x faster than jax.random's rejection loops.  Network simulation draws d n^2 normals
# per sample, so this decides whether the n = 100, d = 100, 2^15-sample check takes minutes or half an
# hour.  The JAX key still fixes the stream: same key, same result.
def _entropy(key) -> list[int]:
    if isinstance(key, (int, np.integer)):
        return [int(key)]
    dt = getattr(key, "dtype", None)
    if dt is not None and jnp.issubdtype(dt, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(v) for v in np.asarray(key, dtype=np.uint64).ravel()]


_OUTPUT_STREAM = 2**31  # stream of the output chi-square in sample_output_log_norm_exact (no chunk index reaches it)


def _chunk_rng(key, chunk: int) -> np.random.Generator:
    """Independent stream for chunk ``chunk`` of the draws made from ``key``."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(_entropy(key), spawn_key=(chunk,))))
