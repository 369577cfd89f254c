"""The two jittered Cholesky factorisations of bayes_mogp.numerics: XLA's (under JAX) and LAPACK's (SciPy)."""

import jax
import numpy as np
import pytest

from bayes_mogp.errors import InputError
from bayes_mogp.numerics import cholesky_with_jitter, float64, lapack_cholesky_with_jitter


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
