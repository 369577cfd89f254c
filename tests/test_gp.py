"""Exact GP posterior, marginal likelihood, NTK-ensemble prediction (against neural-tangents)."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from bayes_mogp.gp import (
    amplitude_mle,
    gp_posterior,
    log_marginal_likelihood,
    ntk_ensemble_predict,
)
from bayes_mogp.kernels import import_neural_tangents, nngp_ntk_kernels, stax_model

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def gp(small_gp):
    """The shared small problem (tests/conftest.py) under the short names used here."""
    g = small_gp
    return (g.x_train, g.x_test, g.y_train, g.k, g.k_test, g.k_test_test, g.t, g.t_test, g.t_test_test)


def test_posterior_matches_dense_formula(gp):
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    nv = 0.05
    post = gp_posterior(K, KS, YTR, noise_var=nv, k_test_test=KSS)
    a = np.asarray(K) + nv * np.eye(15)
    mean = np.asarray(KS) @ np.linalg.solve(a, YTR)
    cov = np.asarray(KSS) - np.asarray(KS) @ np.linalg.solve(a, np.asarray(KS).T)
    np.testing.assert_allclose(post.mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(post.cov, cov, rtol=1e-8, atol=1e-12)
    assert post.jitter == 0.0
    diag = gp_posterior(K, KS, YTR[:, 0], noise_var=nv, k_test_test=jnp.diag(KSS))
    assert diag.cov is None and diag.mean.shape == (6, 1)
    np.testing.assert_allclose(diag.var, np.diag(cov), rtol=1e-8, atol=1e-12)


def test_jitter_is_added_and_reported_for_a_singular_kernel(gp):
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    x = np.vstack([XTR, XTR[:3]])  # duplicated rows: singular kernel, no noise
    k, _ = nngp_ntk_kernels(x, depth=1)
    post = gp_posterior(k, k[:2], np.ones(18), noise_var=0.0)
    assert post.jitter > 0 and bool(jnp.all(jnp.isfinite(post.mean)))


def test_log_marginal_likelihood_matches_scipy(gp):
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    nv = 0.1
    a = np.asarray(K) + nv * np.eye(15)
    ref = sum(multivariate_normal(np.zeros(15), a).logpdf(YTR[:, c]) for c in range(2))
    assert abs(log_marginal_likelihood(K, YTR, noise_var=nv) - ref) < 1e-9 * abs(ref)


def test_amplitude_mle_maximises_the_marginal_likelihood(gp):
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    nv = 0.1
    s = amplitude_mle(K, YTR, noise_var=nv)
    lml = lambda scale: log_marginal_likelihood(scale * K, YTR, noise_var=scale * nv)
    assert lml(s) > lml(0.9 * s) and lml(s) > lml(1.1 * s)


@pytest.fixture(scope="module")
def nt_predict(gp):
    """neural-tangents' NTK-ensemble predictor on the shared problem, built once (it caches its eigensystems)."""
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    nt = import_neural_tangents()
    model = stax_model("mlp", depth=2, b_var=0.1)
    return nt.predict.gradient_descent_mse_ensemble(model.kernel_fn, XTR, YTR, learning_rate=1.0, diag_reg=0.0)


@pytest.mark.parametrize("t", [None, 0.5, 5.0])
def test_ntk_ensemble_matches_neural_tangents(t, gp, nt_predict):
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    lr = 1.0  # the learning rate nt_predict was built with
    ref = nt_predict(t=t, x_test=XTE, get="ntk", compute_cov=True)
    ours = ntk_ensemble_predict(
        T, TS, YTR, t=t, learning_rate=lr / YTR.size,  # neural-tangents' loss is the MSE averaged over Y's entries
        nngp_train_train=K, nngp_test_train=KS, nngp_test_test=KSS,
    )
    np.testing.assert_allclose(ours.mean, ref.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.cov, ref.covariance, rtol=1e-6, atol=1e-9)


def test_ntk_ensemble_limits(gp):
    """t = 0 gives the prior (mean 0, cov = NNGP); large t tends to t = inf."""
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    p0 = ntk_ensemble_predict(T, TS, YTR, t=0.0, nngp_train_train=K, nngp_test_train=KS, nngp_test_test=KSS)
    np.testing.assert_allclose(p0.mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(p0.cov, KSS, rtol=1e-10, atol=1e-12)
    pinf = ntk_ensemble_predict(T, TS, YTR, nngp_train_train=K, nngp_test_train=KS, nngp_test_test=jnp.diag(KSS))
    pbig = ntk_ensemble_predict(T, TS, YTR, t=1e9, nngp_train_train=K, nngp_test_train=KS, nngp_test_test=KSS)
    np.testing.assert_allclose(pbig.mean, pinf.mean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(jnp.diag(pbig.cov), pinf.var, rtol=1e-5, atol=1e-8)


def test_gp_classifier_scores_perfect_and_reference_nll():
    """A GP classifier's scores come from its Gaussian predictive of the one-hot targets (minus 1/C):
    perfect means give accuracy 1 and ECE 0; ``nll_gaussian`` is that of independent Gaussians per class, ``nll``
    the categorical NLL of the class probabilities."""
    from bayes_mogp import metrics
    from bayes_mogp.prediction import Prediction, gaussian_class_probabilities

    labels = np.array([0, 1, 2, 1])
    targets = metrics.one_hot_targets(labels, 3)

    def gp_prediction(mean, var):
        sd = np.sqrt(var)[:, None] * np.ones(3)
        return Prediction("classification", mean[None], sd[None], probs=gaussian_class_probabilities(mean, var))

    s = metrics.score(gp_prediction(targets, np.full(4, 1e-8)), labels)
    assert s["accuracy"] == 1.0 and s["ece"] < 1e-12
    mean = targets + 0.3 * RNG.normal(size=targets.shape)
    var = np.array([0.1, 0.2, 0.3, 0.4]) + 0.05
    s = metrics.score(gp_prediction(mean, var), labels)
    ref = -np.mean([np.sum(multivariate_normal(mean[i], var[i] * np.eye(3)).logpdf(targets[i])) for i in range(4)])
    assert abs(s["nll_gaussian"] - ref) < 1e-10  # the Gaussian density of the one-hot targets
    assert abs(s["nll"] - metrics.nll_class(gaussian_class_probabilities(mean, var), labels)) < 1e-12  # categorical


def test_bad_arguments(gp):
    XTR, XTE, YTR, K, KS, KSS, T, TS, TSS = gp
    with pytest.raises(ValueError, match="noise_var"):
        gp_posterior(K, KS, YTR, noise_var=-1.0)
    with pytest.raises(ValueError, match="y_train"):
        gp_posterior(K, KS, YTR[:3], noise_var=0.1)
    with pytest.raises(ValueError, match="k_test_test"):
        gp_posterior(K, KS, YTR, noise_var=0.1, k_test_test=np.ones(3))
    with pytest.raises(ValueError, match="nngp"):
        ntk_ensemble_predict(T, TS, YTR, nngp_test_test=KSS)


def test_nngp_classifies_mnist_from_the_shared_kernels(mnist_split, mnist_kernels):
    """Kernels, data and GP together: 200 MNIST images, depth-2 NNGP, 100 test images (ten per class).

    Measured accuracy 0.85 (chance 0.1); the bound 0.6 fails for kernels whose train and test blocks do not
    match (test-train columns shuffled: 0.04) with room for other platforms' numerics."""
    post = gp_posterior(mnist_kernels.k, mnist_kernels.k_test, mnist_split.y_train, noise_var=1e-3,
                        k_test_test=mnist_kernels.k_test_diag)
    pred = np.argmax(np.asarray(post.mean), axis=1)
    accuracy = float(np.mean(pred == mnist_split.labels_test[mnist_kernels.test]))
    assert accuracy > 0.6, accuracy
    assert np.all(np.asarray(post.var) > 0)
