"""Sharded PCG exact GP (bayes_mogp.iterative_gp) against the dense Cholesky of bayes_mogp.gp.

Error bounds used below, for the solution :math:`\\tilde\\alpha` of the float32-stored operator
:math:`\\tilde K + \\sigma^2 I` with residual :math:`\\tilde r`:
:math:`\\tilde\\alpha - \\alpha = A^{-1}(-\\tilde r + (K - \\tilde K)\\tilde\\alpha)`, :math:`\\|A^{-1}\\| \\le 1/\\sigma^2`,
:math:`\\|K - \\tilde K\\|_2 \\le 2^{-24} \\|K - c\\|_F`, so a prediction :math:`k_*^\\top\\tilde\\alpha` is within
:math:`\\|k_*\\| (\\|\\tilde r\\| + 2^{-24}\\|K - c\\|_F \\|\\tilde\\alpha\\|) / \\sigma^2` of the exact one.
"""

import ast
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from bayes_mogp.errors import InputError, InputTypeError
from bayes_mogp.gp import gp_posterior
from bayes_mogp.iterative_gp import (
    CG,
    DENSE_MAX_N,
    Auto,
    Cholesky,
    KernelSpec,
    as_solver,
    build_operator,
    choose_solver,
    exact_gp_predict,
    make_mesh,
    memory_estimate,
    pivoted_cholesky,
)
from bayes_mogp.iterative_gp.solvers import solver_from_dict
from bayes_mogp.iterative_gp.operator import from_blocks, to_blocks
from bayes_mogp.kernels import kernel_diagonals, nngp_kernel, ntk_kernel

N, M, D, C = 400, 24, 16, 3
NOISE = 2e-3  # 1e-3 x the mean diagonal (2 for w_var = 2 and inputs of norm sqrt(d))
TOL = 1e-8
KW = dict(depth=3, activation="relu", w_var=2.0, b_var=0.0)
SPEC = KernelSpec("nngp", **KW)
CG_OPTS = dict(tol=TOL, precond_rank=40, block_size=64)
# -> CG (n = 400 > dense_max_n); exact variances of all test points, and their Nystrom values in info["var_check"]
MAIN_OPTS = dict(kernel=KW, cg=dict(CG_OPTS, refine=True), dense_max_n=100, var_check_points=M)


def _main_call(opts):
    """The keyword arguments of the main CG run from ``MAIN_OPTS`` (JSON, for the 4-device subprocess)."""
    return dict(key=jax.random.key(0), solver=Auto(dense_max_n=opts["dense_max_n"], cg=CG(**opts["cg"])),
                variance="exact", var_check_points=opts["var_check_points"])


# the 4-device run: the same call in a fresh interpreter (conftest fixes this one at 1 device)
SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from bayes_mogp.iterative_gp import CG, Auto, KernelSpec, exact_gp_predict
    d = np.load(sys.argv[1])
    o = json.loads(sys.argv[2])
    r = exact_gp_predict(d["x_train"], d["y_train"], d["x_test"], KernelSpec("nngp", **o["kernel"]), o["noise_var"],
                         key=jax.random.key(0), solver=Auto(dense_max_n=o["dense_max_n"], cg=CG(**o["cg"])),
                         variance="exact", var_check_points=o["var_check_points"])
    np.savez(sys.argv[3], mean=r.mean, var=r.var, devices=len(jax.devices()),
             num_devices=r.info["layout"]["num_devices"], iterations=r.info["iterations"])
""")


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N + M, D))
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * np.sqrt(D)
    y = np.sin(2 * x[:N, :C]) + 0.1 * rng.standard_normal((N, C))
    return x[:N], y, x[N:]


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory, data):
    """Start the 4-device subprocess at once: it compiles while this process runs the other tests."""
    tmp = tmp_path_factory.mktemp("four")
    xtr, y, xte = data
    np.savez(tmp / "in.npz", x_train=xtr, y_train=y, x_test=xte)
    env = dict(os.environ, XLA_FLAGS=os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    log = open(tmp / "log.txt", "w")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp / "in.npz"), json.dumps(dict(MAIN_OPTS, noise_var=NOISE)), str(tmp / "out.npz")],
                            env=env, cwd=Path(__file__).resolve().parents[1], stdout=log, stderr=subprocess.STDOUT)
    yield proc, tmp / "out.npz", tmp / "log.txt"
    log.close()
    if proc.poll() is None:
        proc.kill()


@pytest.fixture(scope="module")
def dense(data):
    xtr, y, xte = data
    k = np.asarray(nngp_kernel(xtr, **KW))
    ks = np.asarray(nngp_kernel(xte, xtr, **KW))
    kss = np.asarray(kernel_diagonals(xte, **KW)[0])
    post = gp_posterior(k, ks, y, noise_var=NOISE, k_test_test=kss)
    alpha = np.linalg.solve(k + NOISE * np.eye(N), y)
    return {"k": k, "ks": ks, "kss": kss, "mean": np.asarray(post.mean), "var": np.asarray(post.var), "alpha": alpha}


@pytest.fixture(scope="module")
def cg_run(data, four_devices):
    xtr, y, xte = data
    events = []
    res = exact_gp_predict(xtr, y, xte, SPEC, NOISE, progress=events.append, **_main_call(MAIN_OPTS))
    return res, events


def _bound(dense, res, residual, rhs_norm, sol_norm):
    """Largest error of k_*^T alpha allowed by the relative residual and the float32 storage (module docstring)."""
    k_c = np.linalg.norm(dense["k"] - res.info["centre"])
    return np.linalg.norm(dense["ks"], axis=1)[:, None] * (residual * rhs_norm + 2.0**-24 * k_c * sol_norm) / NOISE


def test_auto_picks_cg_above_threshold_and_reports(cg_run):
    res, _ = cg_run
    info = res.info
    assert info["solver"] == "cg" and "dense_max_n" in info["solver_reason"]
    assert info["solver_options"] == {**CG(refine=True, **CG_OPTS).to_dict(), "storage": "float32"}  # as used
    assert info["storage"] == "float32" and info["converged"]
    assert info["residual_exact"] <= TOL and 0 < info["iterations"] < 200  # refine=True: float64 kernel
    assert info["residual"] < 1e-5  # the stored operator (float32 tiles) of the refined solution
    assert info["precond_rank"] == 40 and 0 < info["precond_residual_trace"] < 1
    assert info["peak_rss_gb"] > 0 and info["seconds"] > 0 and info["memory_estimate_gb"] > 0
    assert set(info["stage_seconds"]) >= {"kernel", "preconditioner", "cg", "predict", "variance"}
    assert res.mean.shape == (M, C) and res.var.shape == (M,) and np.array_equal(res.var_indices, np.arange(M))


def test_cg_mean_matches_cholesky_within_derived_tolerance(cg_run, dense, data):
    res, _ = cg_run
    y = data[1]
    err = np.abs(res.mean - dense["mean"])
    bound = _bound(dense, res, res.info["residual"], np.linalg.norm(y, axis=0), np.linalg.norm(dense["alpha"], axis=0))
    assert np.all(err <= bound)
    assert err.max() < 1e-6  # and in absolute terms (the bound is loose)
    # refine=True: the residual for the float64 kernel is below tol, so the storage term drops out
    assert res.info["residual_exact"] <= TOL and res.info["refinements"] >= 0
    exact_bound = np.linalg.norm(dense["ks"], axis=1)[:, None] * TOL * np.linalg.norm(y, axis=0) / NOISE
    assert np.all(err <= exact_bound)


def test_cg_exact_variance_matches_cholesky(cg_run, dense):
    res, _ = cg_run
    w = np.linalg.solve(dense["k"] + NOISE * np.eye(N), dense["ks"].T)
    bound = _bound(dense, res, res.info["var_residual"], np.linalg.norm(dense["ks"], axis=1), np.linalg.norm(w, axis=0))[:, 0]
    err = np.abs(res.var - dense["var"])
    assert np.all(err <= bound) and err.max() < 1e-5


def test_progress_events(cg_run):
    _, events = cg_run
    stages = [e.stage for e in events]
    assert {"kernel", "preconditioner", "cg", "predict"} <= set(stages)
    cg = [e for e in events if e.stage == "cg"]
    assert [e.done for e in cg] == list(range(1, len(cg) + 1)) and cg[-1].residual <= TOL
    pre = [e for e in events if e.stage == "preconditioner"]
    assert pre[-1].done == pre[-1].total == 40


def test_nystrom_variance_is_dtc_of_the_pivoted_cholesky(data, dense, cg_run):
    xtr, y, xte = data
    check = cg_run[0].info["var_check"]  # exact (solved with the mean) and Nystrom variances of all M points
    nystrom = np.asarray(check["nystrom"])
    # the same factor, from the public building blocks (same key, same pivots)
    op = build_operator(xtr, KernelSpec("nngp", **KW), NOISE, mesh=make_mesh(), block_size=64, storage="float32")
    chol = pivoted_cholesky(op, np.asarray(kernel_diagonals(xtr, **KW)[0]), 40, key=jax.random.key(0))
    lmat = np.asarray(chol.factor).reshape(-1, 40)[:N]
    piv = chol.pivots
    assert np.allclose(np.triu(lmat[piv], 1), 0.0)  # lower triangular in pivot order
    resid = dense["k"] - lmat @ lmat.T
    assert np.linalg.eigvalsh(resid).min() > -1e-9  # K - L L^T is PSD
    ell = np.linalg.solve(lmat[piv], dense["ks"][:, piv].T)
    dtc = dense["kss"] - np.sum(ell * ell, 0) + NOISE * np.sum(ell * np.linalg.solve(NOISE * np.eye(40) + lmat.T @ lmat, ell), 0)
    np.testing.assert_allclose(nystrom, dtc, rtol=1e-8, atol=1e-10)
    # 0 <= k** - l^T l <= DTC <= k** (the Nystrom part never explains more than the prior variance)
    assert np.all(nystrom <= dense["kss"]) and np.all(nystrom >= dense["kss"] - np.sum(ell * ell, 0) - 1e-12)
    np.testing.assert_allclose(check["exact"], dense["var"], atol=1e-5)
    assert check["nystrom_over_exact_median"] == pytest.approx(np.median(nystrom / dense["var"]), rel=1e-4)


def test_cholesky_path_is_gp_posterior(data, dense):
    xtr, y, xte = data
    res = exact_gp_predict(xtr, y, xte, SPEC, NOISE, key=None)  # Auto(): n <= dense_max_n; no key needed
    assert res.info["solver"] == "cholesky" and res.info["solver_reason"] == f"n = {N} <= dense_max_n = {DENSE_MAX_N}"
    # mixed precision by default: a float32 factor refined to a float64 solve's backward error (LAPACK's bound
    # eps64 / 2 sqrt(n)), so the solutions differ from float64's by at most 2 kappa times that bound relative
    # (kappa <= tr K / NOISE = 2 N / NOISE), and mean and variance by that times the rows of K_* (Cauchy-Schwarz)
    info = res.info
    assert (info["precision"], info["storage"], info["jitter"]) == ("mixed", "dense-mixed", 0.0)
    rel = 2.0**-53 * np.sqrt(N)
    assert info["refinements"] >= 1 and info["backward_error"] <= rel and info["precision_fallback"] is None
    ks_rows = np.linalg.norm(dense["ks"], axis=1)
    drift = 2 * (2 * N / NOISE) * rel
    np.testing.assert_array_less(np.abs(res.mean - dense["mean"]),
                                 drift * ks_rows[:, None] * np.linalg.norm(dense["alpha"], axis=0) + 1e-15)
    np.testing.assert_array_less(np.abs(res.var - dense["var"]), drift * ks_rows**2 / NOISE + 1e-15)
    sub = exact_gp_predict(xtr, y[:, 0], xte, SPEC, NOISE, key=None, var_points=[3, 5], solver="cholesky")
    assert sub.mean.shape == (M, 1) and np.array_equal(sub.var_indices, [3, 5])
    np.testing.assert_allclose(sub.var, res.var[[3, 5]], rtol=0, atol=2 * drift * np.max(ks_rows[[3, 5]] ** 2) / NOISE)
    # float64 (LAPACK's dpotrf): the same numbers as gp_posterior to rounding
    f64 = exact_gp_predict(xtr, y, xte, SPEC, NOISE, key=None, solver=Cholesky(precision="float64"))
    assert (f64.info["precision"], f64.info["storage"], f64.info["precision_fallback"]) == ("float64", "dense-float64", None)
    np.testing.assert_allclose(f64.mean, dense["mean"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(f64.var, dense["var"], rtol=0, atol=1e-12)


def test_mixed_precision_falls_back_to_float64_and_says_why(data, dense, monkeypatch):
    from bayes_mogp.iterative_gp import dense as dense_module

    xtr, y, xte = data
    # noise-free interpolation of a repeated training input with another target: K is singular and the system
    # has no solution, so no refinement converges; float64 with adaptive jitter solves the jittered one, and the
    # result is float64's to the last bit
    xtr2, y2 = np.concatenate([xtr, xtr[:1]]), np.concatenate([y, y[:1] + 1.0])
    res = exact_gp_predict(xtr2, y2, xte, SPEC, 0.0, key=None, variance="none", solver="cholesky")
    assert res.info["precision"] == "float64" and res.info["storage"] == "dense-float64"
    assert "float32" in res.info["precision_fallback"] or "did not reach" in res.info["precision_fallback"]
    ref = exact_gp_predict(xtr2, y2, xte, SPEC, 0.0, key=None, variance="none", solver=Cholesky(precision="float64"))
    np.testing.assert_array_equal(res.mean, ref.mean)
    assert res.info["jitter"] == ref.info["jitter"]
    # more right-hand sides (outputs + exact-variance points) than it refines: one float64 factorisation
    monkeypatch.setattr(dense_module, "MIXED_MAX_COLUMNS", M + C - 1)
    many = exact_gp_predict(xtr, y, xte, SPEC, NOISE, key=None, solver="cholesky")
    assert many.info["precision"] == "float64" and "right-hand sides" in many.info["precision_fallback"]
    np.testing.assert_allclose(many.mean, dense["mean"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "change, exc, name",
    [
        (dict(x_train="nan"), InputError, "x_train"),
        (dict(x_test="cols"), InputError, "x_test"),
        (dict(y_train="rows"), InputError, "y_train"),
        (dict(noise_var=-1.0), InputError, "noise_var"),
        (dict(noise_var=0.0, solver=CG()), InputError, "noise_var"),
        (dict(solver="lu"), InputError, "solver"),
        (dict(solver=3), InputTypeError, "solver"),
        (dict(kernel="nngp"), InputTypeError, "kernel"),
        (dict(variance="diag"), InputError, "variance"),
        (dict(var_points=[0, M]), InputError, "var_points"),
        (dict(var_check_points=40), InputError, "var_check_points"),
        (dict(progress="bar"), InputTypeError, "progress"),
        (dict(key=0), InputTypeError, "key"),
        (dict(key=None, solver=CG()), InputTypeError, "key"),  # CG samples its pivots: no hidden default key
        (dict(key=None, solver=Auto(dense_max_n=10)), InputTypeError, "key"),  # Auto resolves to CG here
    ],
)
def test_bad_inputs_raise_naming_the_parameter(data, change, exc, name):
    xtr, y, xte = data
    args = dict(x_train=xtr, y_train=y, x_test=xte, kernel=SPEC, noise_var=NOISE, key=jax.random.key(0))
    special = {"nan": lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a),
               "cols": lambda a: a[:, :-1], "rows": lambda a: a[:-1]}
    for key, value in change.items():
        args[key] = special[value](args[key]) if isinstance(value, str) and value in special else value
    with pytest.raises(exc, match=name):
        exact_gp_predict(args.pop("x_train"), args.pop("y_train"), args.pop("x_test"), args.pop("kernel"),
                         args.pop("noise_var"), **args)


@pytest.mark.parametrize(
    "build, exc, name",
    [
        (lambda: Cholesky(precision="float32"), InputError, "precision"),
        (lambda: CG(tol=0.0), InputError, "tol"),
        (lambda: CG(tol=1.5), InputError, "tol"),
        (lambda: CG(tol="small"), InputTypeError, "tol"),
        (lambda: CG(max_iter=2.5), InputTypeError, "max_iter"),
        (lambda: CG(max_iter=0), InputError, "max_iter"),
        (lambda: CG(precond_rank=0), InputError, "precond_rank"),
        (lambda: CG(storage="float16"), InputError, "storage"),
        (lambda: CG(refine=1), InputTypeError, "refine"),
        (lambda: CG(block_size=4), InputError, "block_size"),
        (lambda: CG(devices=["cpu"]), InputTypeError, "devices"),
        (lambda: CG(devices=[]), InputTypeError, "devices"),
        (lambda: CG(memory_limit_gb=0), InputError, "memory_limit_gb"),
        (lambda: Auto(dense_max_n=-1), InputError, "dense_max_n"),
        (lambda: Auto(memory_limit_gb=-2.0), InputError, "memory_limit_gb"),
        (lambda: Auto(cg="cg"), InputTypeError, "cg"),
        (lambda: KernelSpec("rbf"), InputError, "kernel"),
        (lambda: KernelSpec("nngp", depth=0), InputError, "depth"),
        (lambda: KernelSpec("nngp", activation="gelu"), InputError, "activation"),
        (lambda: KernelSpec("nngp", w_var=0.0), InputError, "w_var"),
        (lambda: KernelSpec("nngp", b_var=-1.0), InputError, "b_var"),
        (lambda: solver_from_dict({"name": "cg", "tolerance": 1e-3}), InputTypeError, "tolerance"),
    ],
)
def test_solver_and_kernel_records_are_checked_when_built(build, exc, name):
    with pytest.raises(exc, match=name):
        build()


def test_solver_records_defaults_frozen_and_normalised():
    cg = CG()
    # the defaults exact_gp_predict had before the solvers were records
    assert (cg.tol, cg.max_iter, cg.precond_rank, cg.storage, cg.refine, cg.block_size, cg.devices,
            cg.memory_limit_gb) == (1e-5, 1000, None, "auto", False, 512, None, None)
    assert Auto() == Auto(dense_max_n=DENSE_MAX_N, memory_limit_gb=None, cg=CG()) and DENSE_MAX_N == 10_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        cg.tol = 1e-3
    with pytest.raises(dataclasses.FrozenInstanceError):
        SPEC.depth = 2
    # validated values are stored normalised (Python numbers, tuples), so records are hashable and compare equal
    odd = CG(max_iter=10.0, precond_rank=np.int64(5), tol=np.float32(0.5), devices=jax.devices())
    assert type(odd.max_iter) is int and type(odd.precond_rank) is int and type(odd.tol) is float
    assert odd.devices == tuple(jax.devices()) and hash(odd) == hash(CG(max_iter=10, precond_rank=5, tol=0.5,
                                                                        devices=tuple(jax.devices())))
    assert KernelSpec("nngp", depth=np.int64(3), w_var=2) == SPEC and hash(KernelSpec()) == hash(SPEC)
    assert CG().rank_for(400) == 100 and CG().rank_for(40_000) == 3000 and CG(precond_rank=500).rank_for(60) == 60
    assert (Cholesky().name, CG().name, Auto().name) == ("cholesky", "cg", "auto")


def test_solver_names_become_records_in_one_helper():
    assert as_solver("auto") == Auto() and as_solver("cholesky") == Cholesky() and as_solver("cg") == CG()
    cg = CG(tol=1e-7)
    assert as_solver(cg) is cg
    with pytest.raises(InputError, match="solver must be one of auto, cholesky, cg"):
        as_solver("lu")
    with pytest.raises(InputTypeError, match="--solver"):
        as_solver(None, name="--solver")


def test_choose_solver_is_the_one_dense_or_cg_rule():
    cg = CG(tol=1e-7)
    auto = Auto(dense_max_n=100, cg=cg)
    assert choose_solver(auto, 100, 10, 4, 1) == (Cholesky(), "n = 100 <= dense_max_n = 100")
    chosen, reason = choose_solver(auto, 101, 10, 4, 1)
    assert chosen is cg and reason == "n = 101 > dense_max_n = 100"  # Auto's own CG options
    # below dense_max_n, a dense estimate (4 n^2 float64 + ...) above the budget also picks CG
    chosen, reason = choose_solver(Auto(memory_limit_gb=1e-6), 100, 10, 4, 1)
    assert chosen == CG() and reason.startswith("dense estimate") and "limit 0.0 GiB" in reason
    assert choose_solver(Cholesky(), 10**6, 1, 1, 1) == (Cholesky(), "requested")
    assert choose_solver(cg, 5, 1, 1, 1) == (cg, "requested")
    assert choose_solver("auto", DENSE_MAX_N + 1, 1, 1, 1) == (CG(), f"n = {DENSE_MAX_N + 1} > dense_max_n = {DENSE_MAX_N}")
    assert choose_solver("cholesky", 10, 1, 1, 1)[0] == Cholesky()


def test_exact_gp_predict_takes_its_solver_from_choose_solver(data, monkeypatch):
    from bayes_mogp.iterative_gp import predict

    calls = []

    def spy(solver, n, m, d, c):
        calls.append((solver, n, m, d, c))
        return choose_solver(solver, n, m, d, c)

    monkeypatch.setattr(predict, "choose_solver", spy)
    xtr, y, xte = data
    exact_gp_predict(xtr[:50], y[:50], xte[:3], SPEC, NOISE, key=None, solver="auto", variance="none")
    assert calls == [(Auto(), 50, 3, D, C)]


def test_solver_dicts_round_trip():
    for solver in (Cholesky(), Cholesky(precision="float64"), CG(), CG(tol=1e-7, precond_rank=12, storage="recompute", refine=True, block_size=64,
                                     devices=jax.devices(), memory_limit_gb=2.5),
                   Auto(dense_max_n=7, memory_limit_gb=3.0, cg=CG(max_iter=9))):
        d = solver.to_dict()
        assert json.loads(json.dumps(d)) == d and d["name"] == solver.name
        assert solver_from_dict(d) == solver
    assert solver_from_dict("cg") == CG() and solver_from_dict("cholesky") == Cholesky()  # bare names, as before
    assert solver_from_dict({"name": "cholesky"}) == Cholesky(precision="mixed")  # records written before precision
    missing = dict(CG(devices=jax.devices()).to_dict(), devices=[10**6])  # a device this process does not have
    assert solver_from_dict(missing) == CG()


def test_cg_key_raw_or_typed_same_pivots_same_numbers(data):
    """The key is explicit: jax.random.PRNGKey(0) (raw uint32) is the typed key(0)'s data, so the same pivots
    and bit-identical results; another key changes the pivots, and the results only within the CG tolerance."""
    xtr, y, xte = data
    n = 120
    cg = CG(tol=1e-10, precond_rank=20, block_size=32, storage="recompute")  # the exact operator: bound below
    run = lambda key: exact_gp_predict(xtr[:n], y[:n], xte, SPEC, NOISE, key=key, solver=cg,  # noqa: E731
                                       variance="nystrom")
    typed, raw, other = run(jax.random.key(0)), run(jax.random.PRNGKey(0)), run(jax.random.key(1))
    np.testing.assert_array_equal(typed.mean, raw.mean)
    np.testing.assert_array_equal(typed.var, raw.var)
    assert not np.array_equal(typed.var, other.var)  # rank 20 < n: the Nystrom variance depends on the pivots
    # relative residual 1e-10 of A alpha = y with ||A^{-1}|| <= 1/sigma^2: |dmean| <= ||k_*|| 2 tol ||y|| / sigma^2
    ks = np.asarray(nngp_kernel(xte, xtr[:n], **KW))
    bound = np.linalg.norm(ks, axis=1)[:, None] * 2 * 1e-10 * np.linalg.norm(y[:n], axis=0) / NOISE
    assert np.all(np.abs(typed.mean - other.mean) <= bound)


def test_no_function_takes_more_than_twelve_parameters():
    root = Path(__file__).resolve().parents[1] / "bayes_mogp" / "iterative_gp"
    too_many = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                count = len(names) + (a.vararg is not None) + (a.kwarg is not None) - (names[:1] in (["self"], ["cls"]))
                if count > 12:
                    too_many.append(f"{path.name}:{node.name} ({count})")
    assert not too_many


@pytest.mark.parametrize("kind, n, storage, rtol", [("nngp", 130, "float32", 2e-7), ("ntk", 120, "recompute", 1e-8)])
def test_operator_products_match_the_dense_kernel(kind, n, storage, rtol):
    """Odd (5) and even (4: the k = n_b / 2 tiles are owned twice) numbers of row blocks, with padding.

    float32: the rounding of K - c; recompute: exact up to the NTK's sqrt(eps) sensitivity at rho = 1
    (the Gram entries of the tiles and of ntk_kernel are rounded differently).
    """
    xtr = _data()[0][:n]
    kmat = np.asarray((nngp_kernel if kind == "nngp" else ntk_kernel)(xtr, **KW))
    v = np.random.default_rng(1).standard_normal((n, 2))
    op = build_operator(xtr, KernelSpec(kind, **KW), NOISE, mesh=make_mesh(), block_size=32, storage=storage)
    assert op.layout.num_blocks == (5 if n == 130 else 4) and op.layout.padded >= n
    out = from_blocks(op, jax.jit(lambda op, v: op.matvec(v))(op, to_blocks(op, v)))
    ref = kmat @ v + NOISE * v
    assert np.max(np.abs(out - ref)) <= rtol * np.max(np.abs(kmat)) * np.sum(np.abs(v), axis=0).max()


def test_kernel_evaluations_in_several_groups_match_the_dense_kernel(monkeypatch):
    """With :data:`CHUNK_ENTRIES` lowered to two 32 x 32 tiles, every kernel evaluation of the operator runs in
    several unrolled groups (the last one shorter): the stored tiles' product, the columns K(X, x_q) and the
    products K(x_q, X) W equal the dense kernel's (float32 tiles: to their rounding; the rest to float64's).
    A layout no other test uses (n = 150), so the compiled functions are traced afresh."""
    from bayes_mogp.iterative_gp import operator as opm

    monkeypatch.setattr(opm, "CHUNK_ENTRIES", 2 * 32 * 32)
    x_all = _data()[0]
    xtr, xq = x_all[:150], x_all[150:157]
    spec = KernelSpec("nngp", **KW)
    op = build_operator(xtr, spec, NOISE, mesh=make_mesh(), block_size=32, storage="float32")
    assert op.layout.num_blocks == 5 and opm._group(op.layout.half + 1, 32 * 32) == 2
    kmat = np.asarray(nngp_kernel(xtr, **KW))
    v = np.random.default_rng(2).standard_normal((150, 3))
    out = from_blocks(op, jax.jit(lambda op, v: op.matvec(v))(op, to_blocks(op, v)))
    ref = kmat @ v + NOISE * v
    assert np.max(np.abs(out - ref)) <= 2e-7 * np.max(np.abs(kmat)) * np.sum(np.abs(v), axis=0).max()
    kq = np.asarray(nngp_kernel(xtr, xq, **KW))  # (150, 7)
    dq = opm.query_chain(spec, xq)
    np.testing.assert_allclose(from_blocks(op, opm.kernel_columns(op, xq, dq)), kq, rtol=1e-12, atol=1e-12)
    cross = np.asarray(opm.cross_matmul(op, xq, dq, to_blocks(op, v)))
    np.testing.assert_allclose(cross, kq.T @ v, rtol=1e-10, atol=1e-10)


def test_memory_estimate_picks_the_larger_terms():
    dense_est = memory_estimate(60000, 10000, 784, 10, solver="cholesky")
    cg_est = memory_estimate(60000, 10000, 784, 10, solver="cg", precond_rank=3000, block_size=512)
    assert dense_est["total"] > 100 * 2**30  # 4 n^2 float64: no dense solve at n = 60 000 here
    assert 6.7 * 2**30 < cg_est["tiles"] < 7.0 * 2**30  # about n^2 / 2 float32 entries: 7.2e9 bytes
    assert cg_est["total"] < 12 * 2**30
    assert memory_estimate(60000, 10000, 784, 10, solver="cg", storage="recompute")["tiles"] == 0


def test_four_fake_devices_give_the_one_device_numbers(cg_run, four_devices):
    proc, out, log = four_devices
    proc.wait(timeout=300)
    assert proc.returncode == 0, log.read_text()[-3000:]
    four = np.load(out)
    assert int(four["devices"]) == 4 and int(four["num_devices"]) == 4
    res, _ = cg_run
    assert res.info["devices"] == 1
    np.testing.assert_allclose(four["mean"], res.mean, rtol=0, atol=1e-6)
    np.testing.assert_allclose(four["var"], res.var, rtol=0, atol=1e-6)
