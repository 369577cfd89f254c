"""bayes_mogp.fastmath.polar_angle against numpy's arctan2: values to two ulps, the edges, the derivative."""

import jax
import jax.numpy as jnp
import numpy as np

from bayes_mogp.fastmath import polar_angle


def test_polar_angle_is_arctan2_to_two_ulps():
    """1e6 angles uniform in [0, pi] at radii in [1e-3, 1e3], and the branch edges (|c| = s, s = 0, c = 0,
    angles of 1e-9 from 0 and pi): the largest error is under 2 ulps of pi (8.9e-16)."""
    rng = np.random.default_rng(0)
    edges = np.array([0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi, 1e-9, np.pi - 1e-9, 1e-300])
    theta = np.concatenate([rng.uniform(0, np.pi, 10**6), edges])
    r = 10.0 ** rng.uniform(-3, 3, theta.size)
    s, c = np.abs(r * np.sin(theta)), r * np.cos(theta)
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(polar_angle)(jnp.asarray(s), jnp.asarray(c)))
    np.testing.assert_allclose(got, np.arctan2(s, c), rtol=0, atol=8.9e-16)
    with jax.enable_x64(True):
        zero = np.asarray(polar_angle(jnp.zeros(3), jnp.asarray([0.0, 2.0, -2.0])))
    np.testing.assert_array_equal(zero, [0.0, 0.0, np.pi])  # as arctan2 on the s = 0 axis


def test_polar_angle_derivative_is_arctan2s():
    with jax.enable_x64(True):
        pts = jnp.asarray([[0.3, 0.8], [1.0, -1.0], [2.0, 0.1], [0.5, 0.5], [1e-3, -2.0]])
        for s, c in pts:
            ours = jax.grad(polar_angle, argnums=(0, 1))(s, c)
            ref = jax.grad(jnp.arctan2, argnums=(0, 1))(s, c)
            np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=1e-14)
        assert jax.grad(polar_angle)(0.0, 0.0) == 0.0  # arctan2's is NaN there


def test_polar_angle_in_float32():
    s = jnp.asarray([0.2, 1.0, 3.0], jnp.float32)
    c = jnp.asarray([1.0, -1.0, 0.5], jnp.float32)
    got = polar_angle(s, c)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), np.arctan2(np.asarray(s), np.asarray(c)), rtol=2e-7)
