"""The two jittered Cholesky factorisations of bayes_mogp.numerics, XLA's (under JAX) and LAPACK's (SciPy), and
the mixed-precision solve (a float32 factor refined in float64)."""

import jax
import numpy as np
import pytest

from bayes_mogp.errors import InputError
from bayes_mogp.numerics import cholesky_with_jitter, float64, lapack_cholesky_with_jitter, mixed_precision_cholesky_solve


@float64
def _jax(a):
    chol, jitter = cholesky_with_jitter(jax.numpy.asarray(a))
    return np.asarray(chol), jitter


def _gram(n, rank, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, rank))
    return x @ x.T / rank


def test_lapack_factor_equals_the_jax_one_without_jitter():
    a = _gram(60, 80) + 1e-3 * np.eye(60)
    before = a.copy()
    chol, jitter = lapack_cholesky_with_jitter(a)
    ref, ref_jitter = _jax(a)
    assert jitter == ref_jitter == 0.0
    np.testing.assert_allclose(chol, ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chol @ chol.T, a, rtol=1e-12, atol=1e-12)
    assert np.array_equal(a, before)  # the input is never written


def test_a_singular_matrix_gets_the_same_jitter_from_both():
    a = _gram(50, 5)  # rank 5: the plain factorisation fails in both
    chol, jitter = lapack_cholesky_with_jitter(a)
    ref, ref_jitter = _jax(a)
    assert jitter > 0 and jitter == pytest.approx(ref_jitter, rel=1e-12)
    np.testing.assert_allclose(chol @ chol.T, a + jitter * np.eye(50), rtol=1e-9, atol=1e-12)


def test_shift_is_a_noise_variance_on_the_diagonal():
    a = _gram(40, 3)
    chol, jitter = lapack_cholesky_with_jitter(a, shift=0.5)
    ref, _ = lapack_cholesky_with_jitter(a + 0.5 * np.eye(40))
    assert jitter == 0.0
    np.testing.assert_allclose(chol, ref, rtol=1e-12, atol=1e-14)


def test_bad_matrices_are_refused():
    with pytest.raises(InputError, match="NaN/Inf"):
        lapack_cholesky_with_jitter(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(InputError, match="square"):
        lapack_cholesky_with_jitter(np.ones((2, 3)))
    with pytest.raises(InputError, match="not positive definite"):
        lapack_cholesky_with_jitter(-np.eye(3))


def _conditioned(n, cond, seed=0):
    """A symmetric positive definite matrix with eigenvalues spread log-uniformly over [1, cond]."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return (q * np.geomspace(1.0, cond, n)) @ q.T


def test_mixed_solve_refines_a_float32_factor_to_float64_accuracy():
    from scipy.linalg import cho_solve

    n, cond = 300, 1e4
    a = _conditioned(n, cond)
    a = (a + a.T) / 2
    b = np.random.default_rng(1).normal(size=(n, 3))
    before = a.copy()
    res = mixed_precision_cholesky_solve(a, b, shift=0.5)
    assert res.reason is None and np.array_equal(a, before)
    # float32 alone leaves a backward error near 2^-24; the refinement is what reaches the float64 bound
    # (LAPACK dsposv's: eps64 / 2 * sqrt(n), relative to ||A + sI|| ||x||)
    assert res.refinements >= 1 and res.backward_error <= res.bound == pytest.approx(2.0**-53 * np.sqrt(n))
    chol, _ = lapack_cholesky_with_jitter(a, shift=0.5)
    ref = cho_solve((chol, True), b)
    # forward error of two backward-stable solves: at most cond(A + sI) times twice the bound (cond <= 2e4)
    err = np.abs(res.x - ref).max(axis=0) / np.abs(ref).max(axis=0)
    assert err.max() <= 2 * (cond / 0.5 + 1) * res.bound, err
    # the factor is not float64's: the plain float32 solve (no refinement) is visibly worse
    raw = mixed_precision_cholesky_solve(a, b, shift=0.5, max_refinements=0)
    assert raw.x is None and raw.backward_error > 1e3 * res.bound and "in 0 steps" in raw.reason


def test_mixed_solve_gives_up_where_float32_cannot_factorise_or_refine():
    b = np.ones((200, 1))
    bad = mixed_precision_cholesky_solve(_conditioned(200, 1e12), b)  # kappa * eps32 >> 1
    assert bad.x is None and bad.reason is not None
    assert "float32" in bad.reason or "did not reach" in bad.reason
    with pytest.raises(InputError, match="NaN/Inf"):
        mixed_precision_cholesky_solve(np.eye(3), np.array([[1.0], [np.inf], [0.0]]))
    with pytest.raises(InputError, match="b must be a matrix with 3 rows"):
        mixed_precision_cholesky_solve(np.eye(3), np.ones(3))
    with pytest.raises(InputError, match="square"):
        mixed_precision_cholesky_solve(np.ones((2, 3)), np.ones((2, 1)))
