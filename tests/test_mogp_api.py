"""MoGP as a product: fit -> posterior -> predict on new inputs, save/load, ArviZ; and the NNGP alike.

One tiny regression posterior (teacher network, n = 60) is fitted once per module and shared; inference settings are minimal (the statistical quality of the MoGP is
measured by ``benchmarks/bench_mogp_teacher.py`` and notebook 03, not here).
"""

import json

import jax
import numpy as np
import pytest

import bayes_mogp
from bayes_mogp import mogp, nngp
from bayes_mogp.data import from_arrays, teacher_network

TINY = dict(num_jumps=3, map_steps=150, num_warmup=25, num_samples=15, num_chains=2, max_tree_depth=5)


@pytest.fixture(scope="module")
def teacher():
    return teacher_network(0, d=4, n_train=60, units=1, n_test=40)


@pytest.fixture(scope="module")
def reg_post(teacher):
    return mogp.fit(jax.random.key(0), teacher.data, **TINY)


def test_regression_posterior_predicts_new_inputs_in_user_units(reg_post, teacher):
    data = teacher.data
    assert reg_post.problem.base.rotation is None  # the sampler's float32 eigenbasis is not kept after the fit
    pred = reg_post.predict(data.x_test)
    assert pred.task == "regression" and pred.loc.shape == (30, 40, 1) and pred.scale.shape == (30, 40, 1)
    # user units: the predictive mean lives on the scale of y, not of the standardised targets
    assert abs(pred.mean.mean() - data.y_train.mean()) < 2 * data.y_train.std()
    s = reg_post.score(data.x_test, data.y_test)
    assert set(s) == {"n", "rmse", "nll", "coverage_90"}
    # a one-unit ReLU teacher in 4 dimensions from 60 points: far better than predicting the mean
    assert s["rmse"] < 0.5 * data.y_test.std(), s
    # the mixture mean is the average of the per-draw GP means, mapped back to the user's units
    means, var, noise = reg_post.predict_components(data.x_test)
    expected = data.target_transform.inverse_mean(means.mean(0))[:, 0]
    # the same sums in another order: agreement to rounding relative to the largest mean (an entry near zero
    # carries the absolute rounding of the others)
    np.testing.assert_allclose(pred.mean[:, 0], expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
    # ordered jumps, learned direction close to the teacher's
    jumps = reg_post.samples["jumps"]
    assert jumps.shape == (2, 15, 3) and np.all(np.diff(jumps, axis=-1) <= 0)
    # Some feature finds the teacher's direction, in at least one chain: the chains of these tiny runs can sit in
    # different modes (seed 0: chain means 0.9988 and 0.8648), and where they do, which one a chain finds turns on
    # the last bits of the arithmetic (one ulp of the kernel's angle moves the pooled mean from 0.992 to 0.976).
    # Over teacher seeds 0-7 (key = seed, these settings) the better chain's mean cosine was 0.9956 on average,
    # sd 0.0030, smallest 0.9891: mean - 4 sd = 0.984, so the bar is 0.98.  A model that learns nothing, stuck at
    # 3 uniformly random directions in R^4, clears it in one of two chains with probability about 0.02.
    t = np.atleast_2d(teacher.weights) * reg_post.input_transform.scale
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    w, _ = reg_post.feature_weights()
    w = w / np.linalg.norm(w, axis=-1, keepdims=True)
    per_chain = np.abs(np.einsum("sjd,kd->skj", w, t)).max(-1)[:, 0].reshape(TINY["num_chains"], -1).mean(1)
    assert per_chain.max() > 0.98, per_chain
    # the posterior's own summary pools both chains: the mean of the per-chain means
    assert reg_post.teacher_cosines(teacher.weights)[0] == pytest.approx(per_chain.mean(), rel=1e-12)
    d = reg_post.feature_directions()
    assert d["directions"].shape == (3, 4) and np.all(d["concentration"] <= 1 + 1e-12)


def test_pruned_prediction_is_the_posterior_of_the_kept_jumps_alone(reg_post, teacher):
    """``keep=k, gp_part=False`` (the k largest jumps' weights kept, the others set to 0 in one compiled program)
    equals the prediction from draws that hold only those k jumps and features; ``keep`` is validated."""
    import dataclasses

    from bayes_mogp.errors import InputError

    x = teacher.data.x_test
    for k in (1, 2):
        cut = {**reg_post.samples, "jumps": reg_post.samples["jumps"][..., :k],
               "features": reg_post.samples["features"][:, :, :k]}
        alone = dataclasses.replace(reg_post, samples=cut)
        (m1, v1, n1), (m2, v2, n2) = (reg_post.predict_components(x, keep=k, gp_part=False),
                                      alone.predict_components(x, gp_part=False))
        np.testing.assert_allclose(m1, m2, rtol=1e-8, atol=1e-9 * np.abs(m2).max())
        np.testing.assert_array_equal(n1, n2)
        # without the GP part the latent variance is the difference of terms ~1/noise larger than itself, so
        # the two summation orders agree to 1e-5 of its largest value, not to float64 rounding
        np.testing.assert_allclose(v1, v2, rtol=0, atol=1e-5 * v2.max())
    full = reg_post.predict_components(x)
    for a, b in zip(full, reg_post.predict_components(x, keep=99)):  # keep above J keeps every jump
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(full[0], reg_post.predict_components(x, keep=1)[0])  # keeping fewer changes it
    with pytest.raises(InputError, match="keep"):
        reg_post.predict(x, keep=0)


def test_save_load_same_predictions_and_inference_data(reg_post, teacher, tmp_path):
    run = reg_post.save(tmp_path / "run")
    back = bayes_mogp.load(run)
    assert isinstance(back, mogp.MoGPPosterior) and back.settings.num_jumps == 3
    x_new = np.random.default_rng(5).normal(size=(6, 4))  # inputs the fit never saw
    a, b = reg_post.predict(x_new), back.predict(x_new)
    np.testing.assert_allclose(a.loc, b.loc, rtol=1e-10)
    np.testing.assert_allclose(a.scale, b.scale, rtol=1e-10)
    idata = back.to_inference_data()
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(idata.groups())
    # the log_likelihood group holds the exact conditional LOO terms: ArviZ's LOO runs on it
    import warnings

    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 30 draws: Pareto k is high, the number is what we check
        loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and idata.log_likelihood["y"].shape == (2, 15, 60)
    assert idata.posterior["features"].dims == ("chain", "draw", "jump", "latent")
    # the sorted kernel weights are computed from the draws, saved with the InferenceData and recomputed on load
    assert "kernel_weights" not in back.samples and idata.posterior["kernel_weights"].dims == ("chain", "draw", "jump")
    np.testing.assert_allclose(idata.posterior["kernel_weights"].values,
                               reg_post.to_inference_data().posterior["kernel_weights"].values, rtol=1e-12)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["kind"] == "mogp" and manifest["data"]["fingerprint"] == teacher.data.fingerprint


def test_r_hat_is_targeted_on_the_identified_quantities(reg_post, teacher):
    """The diagnostics' R-hat is the worst over the identified quantities and five test predictions, each one's
    kept; the raw scales and jumps, which the likelihood sees only through them, are reported apart."""
    import arviz as az

    d = reg_post.diagnostics(teacher.data.x_test)
    assert set(d["r_hat_by_quantity"]) == {"log_marginal_likelihood", "gp_scale", "noise", "kernel_weights",
                                           "test_prediction"} == set(d["quantities"])
    assert d["r_hat_max"] == max(d["r_hat_by_quantity"].values())

    def rhat(values):
        return float(az.rhat(az.convert_to_dataset({"v": values}))["v"].max())

    assert rhat(mogp.kernel_weights(reg_post.samples, "relu")) == d["r_hat_by_quantity"]["kernel_weights"]
    raw = max(rhat(reg_post.samples[k]) for k in ("sigma_v2", "jumps", "drift"))
    assert d["r_hat_unidentified_max"] == pytest.approx(raw, rel=1e-12)


def test_same_key_same_posterior(reg_post, teacher):
    """Refit with the fixture's key and settings: the same draws, bit for bit (the compiled programs are reused
    from the persistent cache, so this costs only the sampling)."""
    again = mogp.fit(jax.random.key(0), teacher.data, **TINY)
    for k in ("features", "arrivals", "noise", "log_marginal_likelihood"):
        np.testing.assert_array_equal(again.samples[k], reg_post.samples[k])


def test_warmup_tree_depth_caps_only_the_warmup(reg_post, teacher):
    """``warmup_tree_depth=1``: every warmup iteration is one leapfrog step, so the warmup adapts another step size
    and the draws differ from the fixture's (warmup at the full depth 5); the sampling phase keeps its own cap of 5
    (trees longer than one step).  A cap above ``max_tree_depth`` stays (a deeper warmup); old records load as
    None."""
    short = mogp.fit(jax.random.key(0), teacher.data, **{**TINY, "warmup_tree_depth": 1})
    assert short.settings.warmup_tree_depth == 1 and short.settings.effective_warmup_tree_depth == 1
    steps = np.asarray(short.stats["num_steps"])
    assert steps.max() > 1 and steps.max() <= 2**5 - 1
    assert not np.array_equal(short.samples["features"], reg_post.samples["features"])
    assert reg_post.settings.warmup_tree_depth is None  # the default: the warmup at max_tree_depth
    assert reg_post.settings.effective_warmup_tree_depth == 5
    assert mogp.MoGPSettings(max_tree_depth=3, warmup_tree_depth=6).effective_warmup_tree_depth == 6
    old = {k: v for k, v in reg_post.settings.to_dict().items() if k != "warmup_tree_depth"}
    assert mogp.MoGPSettings.from_dict(old).warmup_tree_depth is None


CLI_TINY = dict(num_jumps=3, map_steps=100, num_warmup=15, num_samples=15, max_tree_depth=4)


@pytest.mark.slow  # slow pass: each model is fitted in the default suite by its own tests
def test_three_lines_fit_and_predict_with_each_model(reg_post, teacher, clusters):
    """The same three lines work for the NNGP, the NTK and the MoGP on own arrays (regression and
    classification); integer targets mean classification.  The MoGP's regression on own arrays is fitted and
    predicted by ``tests/test_posterior.py`` (the contract of every model), so only its classification is
    fitted here."""
    data = teacher.data
    x, y = data.x_train, data.y_train[:, 0]
    xc, labels = clusters.x, clusters.labels
    cases = [(nngp, {}, x, y, data.x_test), (nngp, {}, xc[:60], labels[:60], xc[60:]),
             (nngp, {"kernel": "ntk"}, x, y, data.x_test), (nngp, {"kernel": "ntk"}, xc[:60], labels[:60], xc[60:]),
             (mogp, CLI_TINY, xc[:60], labels[:60], xc[60:])]
    for model, kw, x_train, target, x_test in cases:
        post = model.fit(jax.random.key(0), x_train, target, **kw)
        pred = post.predict(x_test)
        assert pred.task == ("classification" if target.dtype.kind == "i" else "regression")
        if pred.task == "classification":
            np.testing.assert_allclose(pred.probs.sum(1), 1.0, rtol=1e-9)
            assert np.mean(pred.predicted_class == labels[60:]) >= 0.8  # separated clusters; chance is 1/3
    gp = nngp.fit(jax.random.key(0), data, depth=1)
    s_gp, s_mogp = gp.score(data.x_test, data.y_test), reg_post.score(data.x_test, data.y_test)
    assert np.isfinite(s_gp["nll"]) and s_mogp["rmse"] < s_gp["rmse"]  # the learned feature helps already


def test_nngp_noise_by_marginal_likelihood_uses_training_data_only(teacher):
    """The ML noise maximises the training marginal likelihood (checked against a grid) and does not change
    when the test part does."""
    from bayes_mogp.gp import log_marginal_likelihood

    data = teacher.data
    post = nngp.fit(None, data, depth=1)
    k = post.kernel_train
    best = log_marginal_likelihood(post.amplitude * k, post.y_train, noise_var=post.amplitude * post.noise_var)
    dbar = np.mean(np.diag(k))
    for r in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        amp = np.sum(post.y_train * np.linalg.solve(k + r * dbar * np.eye(len(k)), post.y_train)) / k.shape[0]
        assert log_marginal_likelihood(amp * k, post.y_train, noise_var=amp * r * dbar) <= best + 1e-8
    other = from_arrays(data.x_train, data.y_train, data.x_test[:5] * 3, data.y_test[:5])
    assert nngp.fit(None, other, depth=1).relative_noise == post.relative_noise


def test_nngp_iterative_solver_gives_the_dense_posterior_mean(clusters):
    """``solver="cg"`` (the matrix-free route the baseline takes beyond 10^4 points) predicts the dense
    Cholesky posterior mean to the CG tolerance (relative residual 1e-5, so mean differences far below 1e-3
    of the scale of the one-hot targets) and the same classes.  Its Nystrom (DTC) variance is that of the
    preconditioner's rank-r factor; with n = 60 the preconditioner has full rank r = n, and the DTC variance
    is then the exact one (to rounding; at r < n it is an approximation, measured by the benchmark)."""
    data = from_arrays(clusters.x[:60], clusters.labels[:60], clusters.x[60:], clusters.labels[60:])
    dense = nngp.fit(None, data, depth=2, noise=1e-2, solver="cholesky")
    cg = nngp.fit(jax.random.key(0), data, depth=2, noise=1e-2, solver="cg")
    assert cg.settings.solver.name == "cg" and dense.settings.solver.name == "cholesky"
    m_dense, v_dense, _ = dense.predict_latent(data.x_test)
    m_cg, v_cg, info = cg.predict_latent(data.x_test)
    np.testing.assert_allclose(m_cg, m_dense, atol=1e-3)
    assert info["precond_rank"] == 60
    np.testing.assert_allclose(v_cg, v_dense, rtol=1e-8)
    np.testing.assert_array_equal(cg.predict(data.x_test).predicted_class, dense.predict(data.x_test).predicted_class)
    assert info["converged"] and info["iterations"] > 0 and np.isnan(cg.amplitude)  # amplitude: per solve
    with pytest.raises(ValueError, match="noise='ml' needs the dense solver"):
        nngp.fit(None, data, depth=2, noise="ml", solver="cg")
    with pytest.raises(ValueError, match="pointwise_loo needs the dense kernel"):
        cg.pointwise_loo()
