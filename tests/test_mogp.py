"""MoGP: Woodbury likelihood against a direct Cholesky, the random-kernel prior, the feature map."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.mogp import likelihood as lk


def _problem(n=40, c=3, j=5, m=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + m, 6))
    k_all = x @ x.T / 6 + 0.5 * np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1) / 4)
    phi_all = np.maximum(x @ rng.normal(size=(6, j)), 0)
    y = rng.normal(size=(n, c))
    lam = rng.gamma(0.5, 1.0, size=j)
    return k_all, phi_all, y, lam, n


def test_woodbury_matches_direct_cholesky():
    k_all, phi_all, y, lam, n = _problem()
    base = lk.eigen_base(k_all[:n, :n], y)
    for scale, noise in [(1.0, 0.1), (0.3, 1e-3), (2.0, 1.0)]:
        a = lk.woodbury_log_likelihood(base, scale, noise, jnp.asarray(lam), jnp.asarray(phi_all[:n]))
        b = lk.direct_log_likelihood(jnp.asarray(k_all[:n, :n]), y, scale, noise, jnp.asarray(lam),
                                     jnp.asarray(phi_all[:n]))
        # both float64 on a kernel with condition number < 1e5: agreement to ~1e-10 relative
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_woodbury_gradient_matches_direct():
    k_all, phi_all, y, lam, n = _problem(seed=1)
    base = lk.eigen_base(k_all[:n, :n], y)
    kphi = jnp.asarray(k_all[:n, :n])

    def f(params, which):
        s, noise, lam_, phi = params
        if which == "w":
            return lk.woodbury_log_likelihood(base, s, noise, lam_, phi)
        return lk.direct_log_likelihood(kphi, y, s, noise, lam_, phi)

    p = (0.7, 0.05, jnp.asarray(lam), jnp.asarray(phi_all[:n]))
    gw = jax.grad(f)(p, "w")
    gd = jax.grad(f)(p, "d")
    for a, b in zip(jax.tree.leaves(gw), jax.tree.leaves(gd)):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("activation", ["relu", "abs", "identity", "erf"])
def test_likelihood_sees_the_kernel_weights_not_the_jumps_and_lengths_apart(activation):
    """A positively homogeneous activation: scaling feature j by c_j and its jump by 1 / c_j^2 leaves the
    log-likelihood unchanged (to rounding) and so do the kernel weights by which R-hat is judged; erf is not
    homogeneous, its likelihood moves and its kernel weights leave the lengths out."""
    from bayes_mogp.mogp import kernel_weights
    from bayes_mogp.mogp.features import FEATURE_ACTIVATIONS

    k_all, _, y, lam, n = _problem(seed=4)
    rng = np.random.default_rng(4)
    basis = rng.normal(size=(n, 6))
    u = rng.normal(size=(5, 6))
    c = np.array([0.3, 0.8, 1.0, 2.0, 5.0])
    base = lk.eigen_base(k_all[:n, :n], y)
    phi = FEATURE_ACTIVATIONS[activation]

    def loglik(lam_, u_):
        feats = phi(jnp.asarray(basis @ u_.T))
        return float(lk.woodbury_log_likelihood(base, 0.7, 0.05, jnp.asarray(0.9 * lam_), feats))

    moved = dict(jumps=lam / c ** 2, features=u * c[:, None], sigma_v2=np.asarray(0.9))
    here = dict(jumps=lam, features=u, sigma_v2=np.asarray(0.9))
    a, b = loglik(lam, u), loglik(moved["jumps"], moved["features"])
    w_here, w_moved = kernel_weights(here, activation), kernel_weights(moved, activation)
    assert np.all(np.diff(w_here) <= 0)  # largest first
    if activation == "erf":
        assert abs(a - b) > 1.0
        np.testing.assert_allclose(w_here, -np.sort(-0.9 * lam))
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10)  # float64 throughout: rounding only
        np.testing.assert_allclose(w_here, w_moved, rtol=1e-12)
        np.testing.assert_allclose(w_here, -np.sort(-0.9 * lam * (u ** 2).sum(1)), rtol=1e-12)


def test_zero_jumps_and_empty_network_are_the_gp():
    k_all, phi_all, y, lam, n = _problem(seed=2)
    base = lk.eigen_base(k_all[:n, :n], y)
    a = lk.woodbury_log_likelihood(base, 1.0, 0.1, jnp.zeros(5), jnp.asarray(phi_all[:n]))
    b = lk.woodbury_log_likelihood(base, 1.0, 0.1, jnp.zeros(0), jnp.zeros((n, 0)))
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_predict_matches_dense_gp_posterior():
    k_all, phi_all, y, lam, n = _problem(seed=3)
    scale, noise = 0.8, 0.2
    base = lk.eigen_base(k_all[:n, :n], y)
    pbase = lk.predict_base(base, k_all[:n, n:], np.diag(k_all[n:, n:]))
    mean, var = lk.predict(base, pbase, scale, noise, jnp.asarray(lam), jnp.asarray(phi_all[:n]),
                           jnp.asarray(phi_all[n:]))
    kfull = scale * k_all + (phi_all * lam) @ phi_all.T
    kxx = kfull[:n, :n] + noise * np.eye(n)
    ks = kfull[:n, n:]
    mean_ref = ks.T @ np.linalg.solve(kxx, y)
    var_ref = np.diag(kfull[n:, n:]) - np.sum(ks * np.linalg.solve(kxx, ks), axis=0)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(var, var_ref, rtol=1e-7, atol=1e-10)


def test_float32_rotation_is_within_its_rounding_error_and_prediction_stays_float64():
    """The likelihood with the features rotated by a float32 copy of the eigenvectors against float64.

    Bound (first order): each entry of U^T Phi is a length-n dot product of unit-norm U_i with Phi_j; rounding
    Phi to float32 and accumulating in float32 err by about sqrt(n) u ||Phi_j|| per entry (u = 2^-24, random
    rounding errors; n u in the worst case), so ||d(U^T Phi)||_F <= n u ||Phi||_F and the log-likelihood moves by
    at most ||grad_Phi ll||_F n u ||Phi||_F (U orthogonal: the gradient's norm is the same in either basis).  The
    gradient: relative error below 10 n u (the float32 adjoint's own rounding, n u, with a factor for the
    second-order change of A^-1).  The error must not be 0 (the float32 copy is really used).  Prediction and
    leave-one-out rotate in float64 whatever the base keeps: equal to the last bit."""
    k_all, phi_all, y, lam, _ = _problem(n=200, c=2, j=6, m=20, seed=4)
    n = 200
    phi, lam = jnp.asarray(phi_all[:n]), jnp.asarray(lam)
    b64 = lk.eigen_base(k_all[:n, :n], y)
    b32 = lk.eigen_base(k_all[:n, :n], y, rotation_dtype="float32")
    assert b64.rotation is None and b32.rotation.dtype == jnp.float32 and b32.rotation_t.dtype == jnp.float32
    assert lk.with_rotation(b32, "float32") is b32  # the copy is made once per eigendecomposition
    u = 2.0**-24
    vg = jax.jit(jax.value_and_grad(lambda p, b, s, nz: lk.woodbury_log_likelihood(b, s, nz, lam, p)))
    for scale, noise in [(1.0, 0.1), (0.3, 1e-3)]:
        (v64, g64), (v32, g32) = vg(phi, b64, scale, noise), vg(phi, b32, scale, noise)
        bound = float(jnp.linalg.norm(g64) * n * u * jnp.linalg.norm(phi))
        assert 0.0 < abs(float(v32 - v64)) <= bound, (float(v32 - v64), bound)
        assert float(jnp.linalg.norm(g32 - g64) / jnp.linalg.norm(g64)) <= 10 * n * u
    pb = lk.predict_base(b64, k_all[:n, n:], np.diag(k_all[n:, n:]))
    args = (0.8, 0.2, lam, phi, jnp.asarray(phi_all[n:]))
    for a, b in zip(lk.predict(b64, pb, *args), lk.predict(b32, pb, *args)):
        np.testing.assert_array_equal(a, b)
    loo = jax.jit(lk.loo_log_density)
    np.testing.assert_array_equal(loo(b64, 0.8, 0.2, lam, phi), loo(b32, 0.8, 0.2, lam, phi))
    with pytest.raises(ValueError, match="rotation_dtype"):
        lk.eigen_base(k_all[:n, :n], y, rotation_dtype="float16")


def test_the_samplers_copy_of_the_eigenbasis_changes_the_layout_not_the_numbers():
    """``with_rotation(base, "float64")`` rotates with its own copy of U^T and takes the adjoint with U (a custom
    VJP): the value and the gradient equal those of the base without copies up to the rounding of a reordered sum
    (1e-12 relative; measured 0 and 1e-16); ``without_rotation`` drops the copies; a base without copies keeps
    none (prediction and leave-one-out need none)."""
    k_all, phi_all, y, lam, _ = _problem(n=150, c=2, j=5, m=10, seed=7)
    n = 150
    phi, lam = jnp.asarray(phi_all[:n]), jnp.asarray(lam)
    plain = lk.eigen_base(k_all[:n, :n], y)
    assert plain.rotation is None and plain.rotation_t is None
    copied = lk.with_rotation(plain, "float64")
    assert copied.rotation is None and copied.rotation_t.dtype == jnp.float64
    np.testing.assert_array_equal(copied.rotation_t, plain.evecs.T)
    assert lk.with_rotation(copied, "float64") is copied
    vg = jax.jit(jax.value_and_grad(lambda p, b: lk.woodbury_log_likelihood(b, 0.7, 0.05, lam, p)))
    (v0, g0), (v1, g1) = vg(phi, plain), vg(phi, copied)
    assert abs(float(v1 - v0)) <= 1e-12 * abs(float(v0))
    assert float(jnp.linalg.norm(g1 - g0) / jnp.linalg.norm(g0)) <= 1e-12
    back = lk.without_rotation(lk.with_rotation(plain, "float32"))
    assert back.rotation is None and back.rotation_t is None


def test_eigen_base_refuses_nan():
    k_all, phi_all, y, lam, n = _problem()
    y = y.copy()
    y[0, 0] = np.nan
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        lk.eigen_base(k_all[:n, :n], y)


@pytest.mark.slow  # slow pass: a law check over many networks
@pytest.mark.parametrize("depth", [1, 2])
def test_finite_networks_converge_in_law_to_the_random_kernel_sampler(depth):
    """KS on K(x, x), K(x, x') and one output: width 2000 matches the limit sampler, width 5 does not.

    1000 draws each: the KS test has power ~1 against the width-5 law (p < 1e-20 at 2000 draws) and
    level 1e-3 under the null; horseshoe (model (d)) because its tail makes the GP-vs-MoGP gap largest.
    Depth 2: the limit chain (fresh jumps on the first layer's random kernel) against two finite layers.
    """
    from scipy.stats import ks_2samp

    from bayes_mogp.mogp.prior import finite_width_kernel, sample_outputs, sample_random_kernel
    from bayes_mogp.priors import get_prior

    x = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.8]])
    lim = get_prior("horseshoe", 10).limit
    keys = jax.random.split(jax.random.PRNGKey(0), 1000)
    rk = jax.vmap(lambda k: sample_random_kernel(k, x, lim, num_jumps=100, depth=depth).kernel)(keys)
    zk = jax.vmap(lambda k, K: sample_outputs(k, K, 2))(keys, rk)
    for width, close in [(5, False), (2000, True)]:
        prior = get_prior("horseshoe", width)
        fk = jax.vmap(lambda k: finite_width_kernel(k, x, prior, depth=depth))(
            jax.random.split(jax.random.PRNGKey(1), 1000))
        zf = jax.vmap(lambda k, K: sample_outputs(k, K, 2))(keys, fk)
        pvals = [ks_2samp(rk[:, 0, 0], fk[:, 0, 0]).pvalue, ks_2samp(rk[:, 0, 1], fk[:, 0, 1]).pvalue,
                 ks_2samp(zk[:, 0, 0], zf[:, 0, 0]).pvalue]
        if close:
            assert min(pvals[:2]) > 1e-3 and pvals[2] > 1e-3, pvals
        else:
            assert min(pvals[:2]) < 1e-6, pvals


def test_random_kernel_deep_chain_and_truncation_report():
    from bayes_mogp.mogp.prior import sample_random_kernel
    from bayes_mogp.priors import get_prior

    x = np.random.default_rng(0).normal(size=(6, 4))
    lim = get_prior("horseshoe", 10).limit
    rk = sample_random_kernel(jax.random.PRNGKey(3), x, lim, num_jumps=50, depth=3)
    assert rk.jumps.shape == (3, 50) and np.all(np.diff(rk.jumps, axis=1) <= 0)
    assert np.all(np.linalg.eigvalsh(np.asarray(rk.kernel)) > -1e-8 * np.trace(rk.kernel))
    # more jumps, smaller remainder share (the truncation error goes to 0 as J grows)
    shares = [float(sample_random_kernel(jax.random.PRNGKey(3), x, lim, num_jumps=j).remainder_share[0])
              for j in (5, 50, 300)]
    assert shares[0] > shares[1] > shares[2] and shares[2] < 0.05, shares
    with pytest.raises(ValueError, match="num_jumps must be an integer >= 1, got 0"):
        sample_random_kernel(jax.random.PRNGKey(0), x, lim, num_jumps=0)


def test_feature_map_depth_1_is_the_weight_space_of_a_hidden_node():
    """Basis B(x) B(x')^T = Sigma(x, x') exactly at full rank (with the bias), and on the principal subspace at
    rank r < d; the input-space weights reproduce the features."""
    from bayes_mogp.mogp.features import build_feature_map

    rng = np.random.default_rng(0)
    x, xn = rng.normal(size=(30, 5)), rng.normal(size=(7, 5))
    fm = build_feature_map(x, depth=1, w_var=2.0, b_var=0.5)
    assert fm.rank == 6 and fm.trace_kept == 1.0
    np.testing.assert_allclose(fm.basis(xn) @ fm.basis(x).T, 2.0 * xn @ x.T / 5 + 0.5, rtol=1e-12)
    u = rng.normal(size=(3, fm.rank))
    w, b = fm.weights(u)
    np.testing.assert_allclose(fm.basis(xn) @ u.T, np.sqrt(2.0 / 5) * xn @ w.T + np.sqrt(0.5) * b, rtol=1e-12)
    low = build_feature_map(x, depth=1, rank=2, w_var=2.0, b_var=0.0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    proj = vt[:2].T @ vt[:2]
    np.testing.assert_allclose(low.basis(xn) @ low.basis(x).T, 2.0 * xn @ proj @ x.T / 5, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(low.trace_kept, (s[:2] ** 2).sum() / (s**2).sum(), rtol=1e-12)


def test_feature_map_deeper_is_the_nystrom_extension():
    """At the training inputs B(X) B(X)^T is the rank-r truncation of Sigma(X, X) (exact at r = n), and at new
    inputs B(x) B(X)^T = Sigma(x, X) at full rank: the features are the GP's conditional mean extension."""
    from bayes_mogp.kernels import activation_expectation, nngp_kernel
    from bayes_mogp.mogp.features import build_feature_map

    rng = np.random.default_rng(1)
    x, xn = rng.normal(size=(12, 4)), rng.normal(size=(5, 4))
    fm = build_feature_map(x, depth=3, rank=12, b_var=0.1)
    sig = np.asarray(nngp_kernel(x, depth=2, b_var=0.1))
    np.testing.assert_allclose(fm.basis(x) @ fm.basis(x).T, sig, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fm.basis(xn) @ fm.basis(x).T, nngp_kernel(xn, x, depth=2, b_var=0.1), rtol=1e-7)
    # the base kernel is the Gaussian expectation of the activation under Sigma, blockwise
    joint = np.asarray(nngp_kernel(np.vstack([x, xn]), depth=2, b_var=0.1))
    full = np.asarray(activation_expectation("relu", joint))
    np.testing.assert_allclose(fm.base_kernel(x, xn), full[:12, 12:], rtol=1e-10)
    np.testing.assert_allclose(fm.base_kernel_diag(xn), np.diag(full)[12:], rtol=1e-10)


def test_leave_one_out_closed_form_matches_refitting():
    """The exact LOO log density of every training point (Woodbury form) equals refitting the GP n times."""
    k_all, phi_all, y, lam, n = _problem(n=25, seed=4)
    base = lk.eigen_base(k_all[:n, :n], y)
    got = np.asarray(lk.loo_log_density(base, 0.7, 0.05, jnp.asarray(lam), jnp.asarray(phi_all[:n])))
    c = 0.7 * k_all[:n, :n] + (phi_all[:n] * lam) @ phi_all[:n].T + 0.05 * np.eye(n)
    ref = []
    for i in range(n):
        m = np.arange(n) != i
        k = c[i, m]
        mu = k @ np.linalg.solve(c[np.ix_(m, m)], y[m])
        v = c[i, i] - k @ np.linalg.solve(c[np.ix_(m, m)], k)
        ref.append(np.sum(-0.5 * (y[i] - mu) ** 2 / v - 0.5 * np.log(2 * np.pi * v)))
    np.testing.assert_allclose(got, ref, rtol=1e-8)
