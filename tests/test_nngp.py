"""bayes_mogp.nngp: NNGPSettings, fit (overrides, the solver choice, the key), predict against the dense GP
formulas, CG against Cholesky, and run folders (round trips and folders written before the settings were a
record).

Tolerances.  Dense: the package and the reference solve the same float64 system :math:`A = K + \\sigma^2 I`
(relative noise 1e-2, so :math:`\\kappa(A) \\le 1 + n \\max K_{ii} / \\sigma^2 \\approx 4 \\cdot 10^3` at n = 40),
by a Cholesky and by LU; each is backward stable, so they differ by about :math:`\\kappa \\epsilon n`
relative, 1e-10: we allow 1e-9.  CG: a relative residual ``tol`` of the stored (float32, centred) operator
gives, as in tests/test_iterative_gp.py, :math:`|\\Delta\\mu_*| \\le \\|k_*\\|(\\mathrm{tol}\\|y\\| +
2^{-24}\\|K - c\\|_F\\|\\alpha\\|)/\\sigma^2`.
"""

import dataclasses
import json

import jax
import numpy as np
import pytest

import bayes_mogp
from bayes_mogp import nngp
from bayes_mogp.data import from_arrays
from bayes_mogp.errors import InputError, InputTypeError
from bayes_mogp.iterative_gp import CG, DENSE_MAX_N, Auto, Cholesky, KernelSpec, choose_solver
from bayes_mogp.kernels import kernel_diagonals, nngp_kernel, nngp_ntk_kernels
from bayes_mogp.nngp import NNGPSettings

N, M, D = 40, 12, 3
KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def problems():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((N + M, D))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.05 * rng.standard_normal(N + M)
    labels = np.argmax(x + 0.3 * rng.standard_normal(x.shape), axis=1)
    reg = from_arrays(x[:N], y[:N], x[N:], y[N:])
    cls = from_arrays(x[:N], labels_train=labels[:N], x_test=x[N:], labels_test=labels[N:])
    return reg, cls


@pytest.fixture(scope="module")
def cg_pair(problems):
    """The same classification problem fitted with Cholesky and with CG (default options, key 0)."""
    _, cls = problems
    dense = nngp.fit(KEY, cls, depth=2, noise=1e-2, solver="cholesky")
    cg = nngp.fit(KEY, cls, depth=2, noise=1e-2, solver="cg")
    return dense, cg


# -- settings -------------------------------------------------------------------------------------------------


def test_settings_defaults_and_solver_names_become_records():
    s = NNGPSettings()
    assert (s.kernel, s.depth, s.activation, s.w_var, s.b_var, s.noise) == ("nngp", 3, "relu", 2.0, None, "ml")
    assert s.solver == Auto()  # "auto" is stored as the record
    assert NNGPSettings(solver="cg").solver == CG() and NNGPSettings(solver="cholesky").solver == Cholesky()
    cg = CG(tol=1e-7)
    assert NNGPSettings(solver=cg).solver is cg
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.depth = 2
    assert type(NNGPSettings(depth=np.int64(2), w_var=1).w_var) is float  # validated values stored normalised


@pytest.mark.parametrize(
    "change, exc, name",
    [
        (dict(kernel="rbf"), InputError, "kernel"),
        (dict(depth=0), InputError, "depth"),
        (dict(depth=1.5), InputTypeError, "depth"),
        (dict(activation="gelu"), InputError, "activation"),
        (dict(w_var=0.0), InputError, "w_var"),
        (dict(b_var=-1.0), InputError, "b_var"),
        (dict(noise="mll"), InputError, "noise must be 'ml' or a number > 0"),
        (dict(noise=0.0), InputError, "noise"),
        (dict(noise=float("nan")), InputError, "noise"),
        (dict(solver="lu"), InputError, "solver"),
        (dict(solver=3), InputTypeError, "solver"),
    ],
)
def test_settings_are_checked_when_built(change, exc, name):
    with pytest.raises(exc, match=name):
        NNGPSettings(**change)
    with pytest.raises(exc, match=name):  # replace() builds a new record: the same checks
        NNGPSettings().replace(**change)


def test_settings_replace_refuses_unknown_names_listing_the_allowed_ones():
    with pytest.raises(InputTypeError, match=r"unknown NNGP setting\(s\) \['dept'\]; allowed: kernel, depth, "
                                             r"activation, w_var, b_var, noise, solver"):
        NNGPSettings().replace(dept=2)


def test_settings_dict_round_trip_is_json():
    s = NNGPSettings(kernel="ntk", depth=2, b_var=0.5, noise=1e-3, solver=Auto(dense_max_n=5, cg=CG(tol=1e-6)))
    d = s.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["solver"]["name"] == "auto" and d["solver"]["cg"] == {**CG(tol=1e-6).to_dict()}
    assert NNGPSettings.from_dict(d) == s
    assert NNGPSettings.from_dict({"solver": "cg", "depth": 2}) == NNGPSettings(solver=CG(), depth=2)


# -- fit: overrides, the solver choice, the key -----------------------------------------------------------------


def test_fit_overrides_apply_to_the_settings_record(problems):
    reg, _ = problems
    post = nngp.fit(KEY, reg, depth=2, noise=1e-3)
    # resolved: b_var from the data (standardised inputs: 1), the solver that ran
    assert post.settings == NNGPSettings(depth=2, noise=1e-3, b_var=1.0, solver=Cholesky())
    base = NNGPSettings(depth=1, activation="erf", noise=1e-3)
    post2 = nngp.fit(KEY, reg, settings=base, depth=2)  # the override wins over the record
    assert post2.settings == base.replace(depth=2, b_var=1.0, solver=Cholesky())
    images = from_arrays(np.abs(reg.x_train) * 100, reg.y_train, input_transform="per_image")
    assert nngp.fit(None, images, noise=1e-3, depth=1).settings.b_var == 0.0  # images: b_var 0
    with pytest.raises(InputTypeError, match="unknown NNGP setting.*allowed: kernel, depth"):
        nngp.fit(KEY, reg, dept=2)
    with pytest.raises(InputTypeError, match="settings must be an NNGPSettings"):
        nngp.fit(KEY, reg, settings={"depth": 2})


def test_fit_takes_its_solver_from_choose_solver(problems, monkeypatch):
    from bayes_mogp.iterative_gp import solvers

    reg, _ = problems
    calls = []

    def spy(solver, n, m, d, c):
        calls.append((solver, n, m, d, c))
        return choose_solver(solver, n, m, d, c)

    monkeypatch.setattr(solvers, "choose_solver", spy)
    nngp.fit(KEY, reg, depth=1, noise=1e-3)
    assert calls == [(Auto(), N, 0, D, 1)]  # m = 0: the test set is not known at fit time


def test_auto_picks_its_cg_above_dense_max_n_and_noise_ml_needs_the_dense_solver(problems):
    reg, _ = problems
    cg = CG(tol=1e-6, precond_rank=10)
    post = nngp.fit(KEY, reg, depth=1, noise=1e-3, solver=Auto(dense_max_n=N - 1, cg=cg))
    assert post.settings.solver is cg and np.isnan(post.amplitude)
    assert nngp.fit(KEY, reg, depth=1, noise=1e-3, solver=Auto(dense_max_n=N)).settings.solver == Cholesky()
    assert DENSE_MAX_N == 10_000  # the default threshold of Auto()
    with pytest.raises(InputError, match=r"noise='ml' needs the dense solver, but the CG solver runs "
                                         r"\(n = 40 > dense_max_n = 39\)"):
        nngp.fit(KEY, reg, depth=1, solver=Auto(dense_max_n=N - 1))


def test_cg_fit_needs_a_key_and_keeps_it(problems):
    reg, _ = problems
    with pytest.raises(InputTypeError, match="key must be a JAX PRNG key.*pivots"):
        nngp.fit(None, reg, depth=1, noise=1e-3, solver="cg")
    with pytest.raises(InputTypeError, match="key"):
        nngp.fit(0, reg, depth=1, noise=1e-3, solver="cg")
    typed = nngp.fit(jax.random.key(3), reg, depth=1, noise=1e-3, solver="cg")
    raw = nngp.fit(jax.random.PRNGKey(3), reg, depth=1, noise=1e-3, solver="cg")
    for post in (typed, raw):
        assert post.key_data.dtype == np.uint32 and post.key_impl == "threefry2x32"
        np.testing.assert_array_equal(post.key_data, jax.random.key_data(jax.random.key(3)))
    assert nngp.fit(None, reg, depth=1, noise=1e-3).key_data is None  # the dense solver draws nothing


# -- predictions ------------------------------------------------------------------------------------------------


def _dense_reference(kmat, ks, kss, y, noise_var):
    """Mean and latent variance of the GP posterior and the ML amplitude, by LU solves (not the package's Cholesky)."""
    a = kmat + noise_var * np.eye(len(kmat))
    alpha = np.linalg.solve(a, y)
    w = np.linalg.solve(a, ks.T)
    return ks @ alpha, kss - np.sum(ks.T * w, axis=0), float(np.sum(y * alpha)) / y.size


def test_dense_regression_is_the_gp_posterior_formula(problems):
    reg, _ = problems
    post = nngp.fit(KEY, reg, depth=2, noise=1e-2)
    kw = dict(depth=2, activation="relu", w_var=2.0, b_var=1.0)
    x, xq = post.x_train, post.input_transform(reg.x_test)
    kmat = np.asarray(nngp_kernel(x, **kw))
    noise_var = 1e-2 * np.mean(np.diag(kmat))
    mean, var, amp = _dense_reference(kmat, np.asarray(nngp_kernel(xq, x, **kw)),
                                      np.asarray(kernel_diagonals(xq, **kw)[0]), post.y_train, noise_var)
    assert post.noise_var == pytest.approx(noise_var, rel=1e-14) and post.amplitude == pytest.approx(amp, rel=1e-9)
    pred = post.predict(reg.x_test)
    t = post.target_transform
    np.testing.assert_allclose(pred.loc[0], t.inverse_mean(mean), rtol=1e-9, atol=1e-9 * np.abs(mean).max())
    sd = np.sqrt(amp * (var + noise_var))[:, None]
    np.testing.assert_allclose(pred.scale[0], t.inverse_scale(sd), rtol=1e-9)
    assert pred.info["jitter"] == 0.0  # sigma^2 = 1e-2 mean diag K: no jitter needed


def test_dense_classification_and_ntk_are_their_formulas(problems):
    _, cls = problems
    post = nngp.fit(KEY, cls, depth=2, noise=1e-2)
    kw = dict(depth=2, activation="relu", w_var=2.0, b_var=1.0)
    x, xq = post.x_train, post.input_transform(cls.x_test)
    np.testing.assert_allclose(post.y_train, np.eye(D)[cls.y_train] - 1.0 / D)  # one-hot minus 1/C
    kmat = np.asarray(nngp_kernel(x, **kw))
    noise_var = 1e-2 * np.mean(np.diag(kmat))
    mean, var, amp = _dense_reference(kmat, np.asarray(nngp_kernel(xq, x, **kw)),
                                      np.asarray(kernel_diagonals(xq, **kw)[0]), post.y_train, noise_var)
    pred = post.predict(cls.x_test)
    np.testing.assert_allclose(pred.loc[0], mean, rtol=1e-9, atol=1e-9 * np.abs(mean).max())
    np.testing.assert_allclose(pred.scale[0], np.sqrt(amp * (var + noise_var))[:, None] * np.ones(D), rtol=1e-9)
    np.testing.assert_allclose(pred.probs.sum(1), 1.0, rtol=1e-9)
    np.testing.assert_array_equal(pred.predicted_class, np.argmax(mean, 1))

    # NTK: the t = inf ensemble mean Theta_* (Theta + r mean diag(Theta) I)^{-1} Y
    ntk = nngp.fit(KEY, cls, kernel="ntk", depth=2, noise=1e-2)
    _, th = nngp_ntk_kernels(x, **kw)
    _, ths = nngp_ntk_kernels(xq, x, **kw)
    th, ths = np.asarray(th), np.asarray(ths)
    ref = ths @ np.linalg.solve(th + 1e-2 * np.mean(np.diag(th)) * np.eye(N), ntk.y_train)
    np.testing.assert_allclose(ntk.predict_latent(cls.x_test)[0], ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())


def test_cg_agrees_with_cholesky_within_the_derived_bound(cg_pair, problems):
    _, cls = problems
    dense, cg = cg_pair
    assert cg.settings.solver == CG() and dense.settings.solver == Cholesky()
    m_dense, v_dense, _ = dense.predict_latent(cls.x_test)
    m_cg, v_cg, info = cg.predict_latent(cls.x_test)
    assert info["solver"] == "cg" and info["solver_reason"] == "requested" and info["converged"]
    kw = dict(depth=2, activation="relu", w_var=2.0, b_var=1.0)
    kmat = np.asarray(nngp_kernel(cg.x_train, **kw))
    ks = np.asarray(nngp_kernel(cg.input_transform(cls.x_test), cg.x_train, **kw))
    alpha = np.linalg.solve(kmat + cg.noise_var * np.eye(N), cg.y_train)
    bound = np.linalg.norm(ks, axis=1)[:, None] * (
        info["residual"] * np.linalg.norm(cg.y_train, axis=0)
        + 2.0**-24 * np.linalg.norm(kmat - info["centre"]) * np.linalg.norm(alpha, axis=0)) / cg.noise_var
    assert np.all(np.abs(m_cg - m_dense) <= bound)
    # rank r = n = 40: the Nystrom (DTC) variance is the exact one, up to the pivoted Cholesky's stopping
    # rule (residual diagonal < 1e-12 max diag) amplified by kappa(A) ~ 1e3 -- 1e-6 relative is ample
    assert info["precond_rank"] == N
    np.testing.assert_allclose(v_cg, v_dense, rtol=1e-6)
    # the amplitude from the solve, tr(Y^T A^-1 Y) / (n C), against the dense one: the same residual bound
    assert info["amplitude"] == pytest.approx(dense.amplitude, rel=1e-3)
    np.testing.assert_array_equal(cg.predict(cls.x_test).predicted_class, dense.predict(cls.x_test).predicted_class)


def test_cg_predictions_are_reproducible_and_leave_the_posterior_unchanged(cg_pair, problems):
    _, cls = problems
    _, cg = cg_pair
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in cg.__dict__.items()}
    a, b = cg.predict(cls.x_test), cg.predict(cls.x_test)
    np.testing.assert_array_equal(a.loc, b.loc)  # the same key, the same pivots, the same numbers
    np.testing.assert_array_equal(a.probs, b.probs)
    assert cg.__dict__.keys() == before.keys()  # nothing cached or set on the posterior by predict
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(cg.__dict__[k], v)
    other = nngp.fit(jax.random.key(1), cls, depth=2, noise=1e-2, solver="cg")
    assert not np.array_equal(other.key_data, cg.key_data)


# -- run folders ------------------------------------------------------------------------------------------------


def test_save_load_round_trip_dense_and_cg(cg_pair, problems, tmp_path):
    _, cls = problems
    dense, cg = cg_pair
    for name, post in (("dense", dense), ("cg", cg)):
        run = post.save(tmp_path / name)
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["spec"]["solver"] == post.settings.solver.to_dict()
        back = bayes_mogp.load(run)
        assert back.settings == post.settings
        a, b = post.predict(cls.x_test), back.predict(cls.x_test)
        np.testing.assert_array_equal(a.loc, b.loc)
        np.testing.assert_array_equal(a.probs, b.probs)
    arrays = np.load(tmp_path / "cg" / "arrays.npz")
    assert arrays["key_data"].dtype == np.uint32 and str(arrays["key_impl"]) == "threefry2x32"
    assert "key_data" not in np.load(tmp_path / "dense" / "arrays.npz").files


# A run folder as the code wrote it before NNGPSettings: the flat settings dict with the solver's name (or, older,
# without a solver), the arrays without a key.  The expected predictions are those that code printed for it
# (CG: with its fallback key, jax.random.key(0)).
_X = np.random.default_rng(7).standard_normal((14, 2))
_OLD_ARRAYS = {"x_train", "y_train", "amplitude", "noise_var", "relative_noise", "input_kind", "input_shift",
               "input_scale", "task", "num_classes"}  # and, for regression, "target_shift", "target_scale"
_OLD = {
    "cg": ({"kernel": "nngp", "depth": 2, "activation": "relu", "w_var": 2.0, "b_var": 1.0, "noise": 0.01,
            "solver": "cg", "timings": {"seconds": 0.78}},
           [[0.9994609903782954, 0.0005390096217046395], [0.969128660265855, 0.030871339734144933],
            [0.10688294782836412, 0.893117052171636], [0.9941781259206108, 0.0058218740793892125]]),
    "cholesky": ({"kernel": "nngp", "depth": 2, "activation": "relu", "w_var": 2.0, "b_var": 1.0, "noise": 0.01,
                  "solver": "cholesky", "timings": {"seconds": 0.74}},
                 ([-1.451754049125727, -0.7403117540440511, -0.06008523180229386, -1.9350648020287795],
                  [0.2667031708785309, 0.29095548710136965, 0.16189956622851903, 0.38935559061690206])),
    "none": ({"kernel": "nngp", "depth": 2, "activation": "relu", "w_var": 2.0, "b_var": 1.0, "noise": 0.01,
              "timings": {"fit_seconds": 0.74}}, None),
}


def _old_folder(tmp_path, which):
    """Write the old folder: the arrays (the same as the old code's, without the key) and the old manifest."""
    from bayes_mogp.runs import read_manifest

    x = _X
    if which == "cg":
        labels = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(np.int64)
        post = nngp.fit(KEY, x[:10], labels[:10], depth=2, noise=1e-2, solver="cg")
    else:
        post = nngp.fit(None, x[:10], np.sin(x[:10, 0]) + x[:10, 1], depth=2, noise=1e-2)
    run = post.save(tmp_path / which)
    arrays = dict(np.load(run / "arrays.npz"))
    expected = _OLD_ARRAYS | (set() if which == "cg" else {"target_shift", "target_scale"})
    old = {k: v for k, v in arrays.items() if k in expected}
    assert set(old) == expected and set(arrays) - expected == ({"key_data", "key_impl"} if which == "cg" else set())
    np.savez(run / "arrays.npz", **old)
    manifest = read_manifest(run)
    manifest["spec"] = _OLD[which][0]
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.mark.parametrize("which", ["cg", "cholesky", "none"])
def test_run_folders_written_before_the_settings_record_still_load(tmp_path, which):
    back = bayes_mogp.load(_old_folder(tmp_path, which))
    solver = CG() if which == "cg" else Cholesky()
    assert back.settings == NNGPSettings(depth=2, b_var=1.0, noise=0.01, solver=solver)
    pred = back.predict(_X[10:])
    # the old code's numbers, to the rounding of the same float64 operations (the same key for CG)
    if which == "cg":
        np.testing.assert_array_equal(back.key_data, jax.random.key_data(jax.random.key(0)))
        np.testing.assert_allclose(pred.probs, _OLD["cg"][1], rtol=0, atol=1e-12)
    elif which == "cholesky":
        np.testing.assert_allclose(pred.loc[0, :, 0], _OLD["cholesky"][1][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(pred.scale[0, :, 0], _OLD["cholesky"][1][1], rtol=0, atol=1e-12)
    else:
        assert back.key_data is None and back.seconds == 0.74


def test_kernel_spec_of_a_fitted_posterior(problems):
    reg, _ = problems
    post = nngp.fit(KEY, reg, kernel="ntk", depth=2, activation="erf", w_var=1.5, noise=1e-3)
    assert post.settings.kernel_spec == KernelSpec("ntk", 2, "erf", 1.5, 1.0)
    with pytest.raises(InputError, match="b_var is None"):
        NNGPSettings().kernel_spec


def test_no_function_in_nngp_takes_more_than_twelve_parameters():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(nngp.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            a = node.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
            count = len(names) + (a.vararg is not None) + (a.kwarg is not None) - (names[:1] in (["self"], ["cls"]))
            assert count <= 12, node.name
