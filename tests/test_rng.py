"""bayes_mogp.rng: Philox-2x32-10 against its published known answers, the inverse-CDF transform against
SciPy on every input it can receive, and the law, independence and determinism of the normals it draws."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import erfinv

from bayes_mogp import rng
from bayes_mogp.errors import InputError


@pytest.mark.parametrize("counter, key, expected", [
    # Random123's kat_vectors for philox2x32 with 10 rounds: (ctr0, ctr1), key -> (out0, out1)
    ((0x00000000, 0x00000000), 0x00000000, (0xFF1DAE59, 0x6CD10DF2)),
    ((0xFFFFFFFF, 0xFFFFFFFF), 0xFFFFFFFF, (0x2C3F628B, 0xAB4FD7AD)),
    ((0x243F6A88, 0x85A308D3), 0x13198A2E, (0xDD7CE038, 0xF62A4C12)),
])
def test_philox2x32_known_answers(counter, key, expected):
    out = jax.jit(rng.philox2x32)(jnp.asarray([counter[0]], jnp.uint32), jnp.asarray([counter[1]], jnp.uint32),
                                  jnp.uint32(key))
    assert tuple(int(o[0]) for o in out) == expected


def test_erfinv_on_every_input_within_4_ulps():
    """All 2^24 values x = (2m + 1)/2^24 - 1 that normal_from_bits feeds the approximation: relative error within
    4 float32 ulps (4 x 2^-23 = 4.8e-7) of SciPy's float64 erfinv (measured 2.6e-7 at XLA's default optimisation,
    3.1e-7 at the suite's -O0); XLA's own float32 erf_inv is off by 5.8e-6 here."""
    m = np.arange(2**24, dtype=np.uint32)
    z = np.asarray(jax.jit(rng.normal_from_bits)(jnp.asarray(m << np.uint32(8))), np.float64)
    x = (2.0 * m.astype(np.float64) + 1.0) / 2**24 - 1.0
    exact = np.sqrt(2.0) * erfinv(x)
    assert np.max(np.abs(z - exact) / np.abs(exact)) < 4 * 2.0**-23
    assert z.max() == -z.min() and 5.4 < z.max() < 5.45  # symmetric, truncated at 5.42 sd


def test_normals_have_the_standard_normal_law():
    """10^6 draws: mean within 4 SE (4e-3), variance within 4 SE (4 sqrt(2/n) = 5.7e-3), kurtosis within 4 SE
    (4 sqrt(96/n) = 0.039) of 3, and a KS test at the 1e-3 level against N(0, 1)."""
    n = 10**6
    z = np.asarray(rng.normal(jax.random.key(0), (n,)), np.float64)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(np.mean(z**4) / z.var() ** 2 - 3) < 4 * np.sqrt(96 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3


def test_draws_are_uncorrelated_across_keys_elements_and_leaves():
    """Correlations of 2 x 10^5 pairs: between consecutive keys of a split (the noise of consecutive steps),
    between neighbouring elements, and between two leaves of one pytree; each within 4 SE (4 / sqrt(n))."""
    n = 200_000
    keys = jax.random.split(jax.random.key(1), 2)
    a, b = (np.asarray(rng.normal(k, (n,)), np.float64) for k in keys)
    tree = rng.normal_like(keys[0], {"u": jnp.zeros(n), "v": jnp.zeros(n)})
    pairs = [(a, b), (a[:-1], a[1:]), (np.asarray(tree["u"]), np.asarray(tree["v"]))]
    for u, v in pairs:
        assert abs(np.corrcoef(u, v)[0, 1]) < 4 / np.sqrt(u.size)


def test_same_key_same_numbers_under_jit_and_vmap_and_in_float64():
    key = jax.random.key(7)
    z = rng.normal(key, (3, 4))
    assert z.shape == (3, 4) and z.dtype == jnp.float32
    np.testing.assert_array_equal(z, jax.jit(rng.normal, static_argnums=1)(key, (3, 4)))
    keys = jax.random.split(key, 5)
    batched = jax.vmap(lambda k: rng.normal(k, (3, 4)))(keys)
    np.testing.assert_array_equal(batched[2], rng.normal(keys[2], (3, 4)))
    assert not np.allclose(batched[0], batched[1])
    np.testing.assert_array_equal(rng.normal(jax.random.key_data(key), (3, 4)), z)  # a raw key: the same numbers
    with jax.enable_x64(True):
        z64 = rng.normal(key, (3, 4), jnp.float64)
    assert z64.dtype == jnp.float64
    np.testing.assert_allclose(z64, z, rtol=1e-6, atol=1e-7)  # the same words, converted in float64
    tree = rng.normal_like(key, {"a": jnp.zeros((2, 2)), "b": jnp.zeros(3, jnp.float32)})
    assert tree["a"].shape == (2, 2) and tree["b"].shape == (3,)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="dtype must be a floating type"):
        rng.normal(jax.random.key(0), (2,), jnp.int32)
    with pytest.raises(InputError, match="key must be a JAX PRNG key"):
        rng.normal(jnp.zeros(3, jnp.uint32), (2,))
