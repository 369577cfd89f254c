"""Finite networks under eq. (1): shapes, determinism, variance against the closed form, pruning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.networks import MLP, apply, init, prune_masks, sample_outputs
from bayes_mogp.priors import get_prior


def test_shapes_deep_with_bias_and_determinism():
    net = MLP(3, (get_prior("iid", 20), get_prior("horseshoe", 30)), d_out=2, activation="tanh", bias_std=0.1)
    x = jnp.ones((5, 3))
    out = sample_outputs(jax.random.PRNGKey(0), net, x, 7, chunk_size=3)
    assert out.shape == (7, 5, 2)
    np.testing.assert_array_equal(out, sample_outputs(jax.random.PRNGKey(0), net, x, 7, chunk_size=4))


def test_iid_relu_output_variance_matches_arccos_kernel():
    # One hidden ReLU layer, lam = 2/p, |x|^2 = d_in: Var Z = 2 E relu(h)^2 = 1 (eq. 4 of Lee et al. 2023 at rho = 1).
    # 4000 networks: SE of the variance about sqrt(2/4000) = 0.022; tolerance 4 SE.
    net = MLP(2, (get_prior("iid", 200),), d_out=1)
    z = sample_outputs(jax.random.PRNGKey(1), net, jnp.ones((1, 2)), 4000)
    assert float(jnp.var(z)) == pytest.approx(1.0, abs=0.09)


def test_pruning_kappa_and_eps():
    lam = [jnp.array([0.5, 0.1, 0.0, 0.9, 0.2])]
    assert prune_masks(lam, kappa=0.4)[0].tolist() == [True, False, False, True, False]
    assert prune_masks(lam, eps=0.15)[0].tolist() == [True, False, False, True, True]
    with pytest.raises(ValueError, match="kappa"):
        prune_masks(lam, kappa=1.5)
    net = MLP(2, (get_prior("b", 50),), d_out=2)
    params = init(jax.random.PRNGKey(3), net)
    x = jnp.ones((4, 2))
    full = apply(params, x, net)
    kept = apply(params, x, net, prune_masks(params["lam"], eps=0.0))  # Bernoulli: drop only the zeros
    np.testing.assert_allclose(full, kept)


def test_bad_arguments():
    with pytest.raises(ValueError, match="activation"):
        MLP(2, (get_prior("iid", 5),), activation="swishy")
    net = MLP(2, (get_prior("iid", 5),))
    with pytest.raises(ValueError, match="d_in"):
        sample_outputs(jax.random.PRNGKey(0), net, jnp.ones((3, 4)), 2)
    with pytest.raises(ValueError, match="NaN"):
        sample_outputs(jax.random.PRNGKey(0), net, jnp.full((3, 2), jnp.nan), 2)
