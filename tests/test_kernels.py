"""Closed-form NNGP/NTK kernels against neural-tangents (float64) and against Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.kernels import (
    ACTIVATIONS,
    activation_derivative_expectation,
    activation_expectation,
    kernel_diagonals,
    nngp_kernel,
    nngp_ntk_kernels,
    nt_kernels,
    ntk_kernel,
    stax_model,
)

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=(13, 6))
X2 = RNG.normal(size=(7, 6))

# (activation, w_var): variances kept moderate for the bounded activations
CASES = [("relu", 2.0), ("abs", 1.0), ("erf", 1.7), ("identity", 0.9), ("sin", 0.8), ("cos", 0.6)]


def _rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize("activation,w_var", CASES)
@pytest.mark.parametrize("depth,b_var", [(1, 0.0), (3, 0.25)])
def test_closed_form_matches_neural_tangents(activation, w_var, depth, b_var):
    kw = dict(depth=depth, activation=activation, w_var=w_var, b_var=b_var)
    k, t = nngp_ntk_kernels(X1, X2, block_size=5, **kw)  # blocks of 5 rows: exercises the blocking
    k_nt, t_nt = nt_kernels(X1, X2, **kw)
    assert k.shape == (13, 7) and t.shape == (13, 7)
    assert _rel(k, k_nt) < 1e-6
    assert _rel(t, t_nt) < 1e-6


@pytest.mark.parametrize("block_size", [4, 5, 13, None])
def test_symmetric_tiling_and_jit(block_size):
    """x2 = None uses tiles above the diagonal (mirrored); under jit the plain row blocks."""
    k, t = nngp_ntk_kernels(X1, None, block_size=block_size, depth=2, b_var=0.1)
    k_nt, t_nt = nt_kernels(X1, None, depth=2, b_var=0.1)
    assert _rel(k, k_nt) < 1e-6 and _rel(t, t_nt) < 1e-6
    k_jit = jax.jit(lambda x: nngp_kernel(x, depth=2, b_var=0.1, block_size=block_size))(X1)
    assert _rel(k_jit, k_nt) < 1e-6


# neural-tangents warns that FanInSum assumes independent branches; here they are (the residual branch
# starts with fresh weights, independent of the skip), so the kernel of the sum is the sum of kernels.
@pytest.mark.filterwarnings("ignore:`FanIn` layers assume independent inputs")
def test_resnet_with_zero_skip_is_the_mlp_one_deeper():
    """neural-tangents ResNet backend with alpha = 0 reduces to an MLP of depth + 1 (closed form)."""
    k_nt, t_nt = nt_kernels(X1, X2, architecture="resnet", depth=2, residual_alpha=0.0, b_var=0.1)
    k, t = nngp_ntk_kernels(X1, X2, depth=3, b_var=0.1)
    assert _rel(k, k_nt) < 1e-6 and _rel(t, t_nt) < 1e-6
    # a real skip connection changes the kernel
    k_skip, _ = nt_kernels(X1, X2, architecture="resnet", depth=2, residual_alpha=0.6, b_var=0.1)
    assert _rel(k_skip, k) > 1e-2


def test_nt_batched_kernels_match_unbatched():
    x = RNG.normal(size=(12, 6))
    k_b, t_b = nt_kernels(x, None, depth=2, batch_size=4)
    k, t = nngp_ntk_kernels(x, None, depth=2)
    assert _rel(k_b, k) < 1e-6 and _rel(t_b, t) < 1e-6


def test_conv_backend_builds_and_is_psd():
    x = RNG.normal(size=(5, 6, 6, 2))
    (k,) = nt_kernels(x, None, architecture="conv", depth=2, get="nngp")
    assert k.shape == (5, 5)
    assert float(jnp.min(jnp.linalg.eigvalsh(k))) > -1e-10


def test_symmetric_default_and_diagonals():
    k = nngp_kernel(X1, depth=2, activation="erf", b_var=0.1)
    t = ntk_kernel(X1, depth=2, activation="erf", b_var=0.1)
    assert _rel(k, k.T) < 1e-14
    kd, td = kernel_diagonals(X1, depth=2, activation="erf", b_var=0.1)
    assert _rel(kd, jnp.diag(k)) < 1e-12 and _rel(td, jnp.diag(t)) < 1e-12


def _random_cov(n, key):
    a = jax.random.normal(key, (n, n))
    return a @ a.T / n + 0.1 * jnp.eye(n)


@pytest.fixture(scope="module")
def mc_draws():
    """2e5 draws of z ~ N(0, cov) for a random 4 x 4 covariance, shared by every activation."""
    cov = _random_cov(4, jax.random.key(1))
    return cov, jax.random.multivariate_normal(jax.random.key(2), jnp.zeros(4), cov, (200_000,))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_expectation_monte_carlo(activation, mc_draws):
    """E[phi(z) phi(z)^T] and E[phi'(z) phi'(z)^T] against 2e5 draws.

    Tolerance: 6 Monte Carlo standard errors of each entry (estimated from the same draws), so a
    correct formula fails with probability < 1e-8 per entry; a wrong one (e.g. relu without the
    sqrt term, an error of order 0.1) fails."""
    cov, z = mc_draws
    phi = {"relu": jax.nn.relu, "abs": jnp.abs, "erf": jax.scipy.special.erf, "identity": lambda u: u,
           "sin": jnp.sin, "cos": jnp.cos}[activation]
    dphi = lambda u: jax.jvp(phi, (u,), (jnp.ones_like(u),))[1]  # noqa: E731  (elementwise derivative)
    for fn, vals in ((activation_expectation, phi(z)), (activation_derivative_expectation, dphi(z))):
        prod = vals[:, :, None] * vals[:, None, :]
        mc, se = prod.mean(0), prod.std(0) / np.sqrt(prod.shape[0])
        exact = fn(activation, cov)
        assert bool(jnp.all(jnp.abs(exact - mc) <= 6 * se + 1e-12)), (fn.__name__, exact - mc, se)


def test_activation_expectation_batched_jit_and_grad():
    covs = jnp.stack([_random_cov(3, k) for k in jax.random.split(jax.random.key(3), 4)])
    out = jax.jit(lambda c: activation_expectation("relu", c))(covs)
    assert out.shape == (4, 3, 3)
    assert _rel(out[2], activation_expectation("relu", covs[2])) < 1e-14
    # gradient is finite on the diagonal (rho = 1) and matches central finite differences
    f = jax.jit(lambda c: jnp.sum(activation_expectation("relu", c) * jnp.arange(9.0).reshape(3, 3)))
    c0 = covs[0]
    g = jax.grad(f)(c0)
    assert bool(jnp.all(jnp.isfinite(g)))
    eps = 1e-6
    for i, j in [(0, 0), (0, 1), (2, 1)]:
        e = jnp.zeros((3, 3)).at[i, j].set(eps)
        fd = (f(c0 + e) - f(c0 - e)) / (2 * eps)
        assert abs(float(g[i, j] - fd)) < 1e-6 * max(1.0, abs(float(fd)))
    # degenerate rank-one covariance (all rho = 1): still finite
    v = jnp.array([1.0, 2.0, 0.5])
    assert bool(jnp.all(jnp.isfinite(jax.grad(f)(jnp.outer(v, v)))))


def test_finite_networks_converge_to_the_closed_form():
    """Monte Carlo over 16 finite networks (width 512, 256 outputs) of the stax model vs the closed form.

    Tolerance 12 % relative to the largest entry: per network the hidden kernel fluctuates with relative
    sd ~ sqrt(2 / width) = 6 % per layer, averaged over 16 networks ~ 2 % for two layers; the readout
    adds sqrt(2 / (16 * 256)) = 2 %; the finite-width bias is O(depth / width) = 0.4 %.  That is ~3 %
    sd, so 12 % is 4 sd; a wrong convention (w_var applied once too often, a missing bias) is off by
    more than 30 %."""
    x = X1[:5]
    model = stax_model("mlp", depth=2, width=512, out_dim=256, b_var=0.3)

    def one(key):
        _, params = model.init_fn(key, (-1, 6))
        f = model.apply_fn(params, x)
        return f @ f.T / f.shape[1]

    mc = jnp.mean(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 16)), axis=0)
    exact = nngp_kernel(x, depth=2, b_var=0.3)
    assert mc.shape == (5, 5)
    assert _rel(mc, exact) < 0.12


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(depth=0), "depth"),
        (dict(depth=2, activation="tanh"), "activation"),
        (dict(depth=2, w_var=-1.0), "w_var"),
        (dict(depth=2, b_var=-0.1), "b_var"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nngp_kernel(X1, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="features"):
        nngp_kernel(X1, X2[:, :3], depth=1)
    bad = X1.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        nngp_kernel(bad, depth=1)
    with pytest.raises(ValueError, match="cov"):
        activation_expectation("relu", jnp.ones((3, 2)))
