"""Sharded PCG exact GP (bayes_mogp.iterative_gp) against the dense Cholesky of bayes_mogp.gp.

Error bounds used below, for the solution :math:`\\tilde\\alpha` of the float32-stored operator
:math:`\\tilde K + \\sigma^2 I` with residual :math:`\\tilde r`:
:math:`\\tilde\\alpha - \\alpha = A^{-1}(-\\tilde r + (K - \\tilde K)\\tilde\\alpha)`, :math:`\\|A^{-1}\\| \\le 1/\\sigma^2`,
:math:`\\|K - \\tilde K\\|_2 \\le 2^{-24} \\|K - c\\|_F`, so a prediction :math:`k_*^\\top\\tilde\\alpha` is within
:math:`\\|k_*\\| (\\|\\tilde r\\| + 2^{-24}\\|K - c\\|_F \\|\\tilde\\alpha\\|) / \\sigma^2` of the exact one.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from bayes_mogp.gp import gp_posterior
from bayes_mogp.iterative_gp import (
    KernelSpec,
    build_operator,
    exact_gp_predict,
    make_mesh,
    memory_estimate,
    pivoted_cholesky,
)
from bayes_mogp.iterative_gp.operator import from_blocks, to_blocks
from bayes_mogp.kernels import kernel_diagonals, nngp_kernel, ntk_kernel

N, M, D, C = 400, 24, 16, 3
NOISE = 2e-3  # 1e-3 x the mean diagonal (2 for w_var = 2 and inputs of norm sqrt(d))
TOL = 1e-8
KW = dict(depth=3, activation="relu", w_var=2.0, b_var=0.0)
CG = dict(KW, noise_var=NOISE, tol=TOL, precond_rank=40, block_size=64)
# -> CG; exact variances of all test points, and their Nystrom values in info["var_check"]
MAIN = dict(CG, solver="auto", dense_max_n=100, variance="exact", var_check_points=M, refine=True)

# the 4-device run: the same call in a fresh interpreter (conftest fixes this one at 1 device)
SCRIPT = textwrap.dedent("""
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from bayes_mogp.iterative_gp import exact_gp_predict
    d = np.load(sys.argv[1])
    kw = json.loads(sys.argv[2])
    r = exact_gp_predict(d["x_train"], d["y_train"], d["x_test"], **kw)
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
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp / "in.npz"), json.dumps(MAIN), str(tmp / "out.npz")],
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
    res = exact_gp_predict(xtr, y, xte, progress=events.append, **MAIN)
    return res, events


def _bound(dense, res, residual, rhs_norm, sol_norm):
    """Largest error of k_*^T alpha allowed by the relative residual and the float32 storage (module docstring)."""
    k_c = np.linalg.norm(dense["k"] - res.info["centre"])
    return np.linalg.norm(dense["ks"], axis=1)[:, None] * (residual * rhs_norm + 2.0**-24 * k_c * sol_norm) / NOISE


def test_auto_picks_cg_above_threshold_and_reports(cg_run):
    res, _ = cg_run
    info = res.info
    assert info["solver"] == "cg" and "dense_max_n" in info["solver_reason"]
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
    res = exact_gp_predict(xtr, y, xte, noise_var=NOISE, **KW)  # auto: n <= dense_max_n
    assert res.info["solver"] == "cholesky"
    np.testing.assert_allclose(res.mean, dense["mean"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.var, dense["var"], rtol=0, atol=1e-12)
    sub = exact_gp_predict(xtr, y[:, 0], xte, noise_var=NOISE, var_points=[3, 5], solver="cholesky", **KW)
    assert sub.mean.shape == (M, 1) and np.array_equal(sub.var_indices, [3, 5])
    np.testing.assert_allclose(sub.var, dense["var"][[3, 5]], atol=1e-12)


@pytest.mark.parametrize(
    "change, exc, name",
    [
        (dict(x_train="nan"), ValueError, "x_train"),
        (dict(x_test="cols"), ValueError, "x_test"),
        (dict(y_train="rows"), ValueError, "y_train"),
        (dict(tol=0.0), ValueError, "tol"),
        (dict(tol=1.5), ValueError, "tol"),
        (dict(tol="small"), TypeError, "tol"),
        (dict(noise_var=-1.0), ValueError, "noise_var"),
        (dict(noise_var=0.0, solver="cg"), ValueError, "noise_var"),
        (dict(solver="lu"), ValueError, "solver"),
        (dict(variance="diag"), ValueError, "variance"),
        (dict(storage="float16"), ValueError, "storage"),
        (dict(precond_rank=0), ValueError, "precond_rank"),
        (dict(max_iter=2.5), TypeError, "max_iter"),
        (dict(depth=0), ValueError, "depth"),
        (dict(kernel="rbf"), ValueError, "kernel"),
        (dict(var_points=[0, M]), ValueError, "var_points"),
        (dict(var_check_points=40), ValueError, "var_check_points"),
        (dict(progress="bar"), TypeError, "progress"),
        (dict(refine=1), TypeError, "refine"),
        (dict(memory_limit_gb=0), ValueError, "memory_limit_gb"),
        (dict(key=0), TypeError, "key"),
    ],
)
def test_bad_inputs_raise_naming_the_parameter(data, change, exc, name):
    xtr, y, xte = data
    args = dict(x_train=xtr, y_train=y, x_test=xte, noise_var=NOISE, **KW)
    special = {"nan": lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a),
               "cols": lambda a: a[:, :-1], "rows": lambda a: a[:-1]}
    for key, value in change.items():
        args[key] = special[value](args[key]) if isinstance(value, str) and value in special else value
    with pytest.raises(exc, match=name):
        exact_gp_predict(args.pop("x_train"), args.pop("y_train"), args.pop("x_test"), **args)


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
