"""Exact NNGP regression on Fashion-MNIST: sharded PCG (ours) against neural-tangents' dense predict.

    uv run python benchmarks/bench_iterative_gp.py [--quick] [--json] [--nt-sizes 4000 10000] [--sizes 60000]
        [--n-test 10000] [--tol 1e-5] [--rank R] [--refine] [--var-check 6]

Data: ``bayes_mogp.data.train_test_split("fashion", n, n_test, source="debian")`` (stratified training
images, the fixed test images), preprocessed as in Lee et al. 2018; one-hot targets minus 0.1.
Kernel: depth-3 ReLU NNGP, w_var 2, b_var 0; noise_var = 1e-3 * mean diag K (the baseline's rule).

In one process, for each n of ``--nt-sizes`` (side by side, same inputs, predictive means only):

- ``nt-dense``: neural-tangents' ``kernel_fn`` (``stax_model("mlp")``, jitted, get="nngp") for the train
  and test-train matrices, then ``neural_tangents.predict.gp_inference`` (float64 Cholesky);
- ``ours-cholesky``: :func:`bayes_mogp.iterative_gp.exact_gp_predict` with ``solver=Cholesky()`` (what
  ``solver=Auto()`` picks at n <= 10 000: a float32 factor refined to float64 accuracy);
- ``ours-cholesky-f64``: the same with ``Cholesky(precision="float64")`` (LAPACK's ``dpotrf``);
- ``ours-cg``: the same with ``solver=CG(...)`` (float32 tiles, pivoted-Cholesky preconditioner, PCG).

then, for each n of ``--sizes``, ``ours-cg`` alone with the Nystrom (DTC) variance and
``--var-check`` test points whose exact variance rides along with the mean's solve.  At the smallest
``--nt-sizes`` n the Nystrom variance of every test point is also compared with the exact (dense) one.

The limit: this machine's float64 dgemm and Cholesky rates (``machine_rates``, timed first and again after the
paths, each rate the best of both, so that a slow moment at the start does not lower the limit below what the
paths then reach; the float32 Cholesky rate for the mixed-precision path) applied to the dense path's products and
factorisation (``limit_seconds``); ``fraction_of_limit`` is that time over a path's.

Columns: wall seconds of the whole call (kernels, solve, prediction; JAX compilation included, no
warm-up at the measured shapes; the dense paths are then called a second time, compiled: ``seconds_warm``; the
float64 dense path runs after the mixed one and reuses its compiled kernels, so the two compare by their second
calls), CPU seconds of the process during it (user + system; on a machine
shared with other jobs CPU seconds are the steadier measure), peak resident memory during the call
(sampled every 20 ms), test accuracy, CG iterations and final relative residual, the largest absolute
difference of the predictive means from neural-tangents' and the ratio ours / neural-tangents of
seconds (< 1: ours faster).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from bayes_mogp.memory import PeakRSS  # noqa: E402


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _measure(fn):
    gc.collect()
    c0, t0 = _cpu(), time.perf_counter()
    with PeakRSS() as mem:
        out = fn()
    return out, {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu() - c0,
                 "peak_rss_gb": mem.peak / 2**30, "rss_before_gb": mem.before / 2**30}


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _progress(label):
    """A compact stderr progress printer (one line per stage milestone)."""
    last = {}

    def cb(ev):
        key = ev.stage
        now = time.perf_counter()
        done_all = ev.total is not None and ev.done >= ev.total
        if done_all or now - last.get(key, 0.0) > 30.0:
            last[key] = now
            res = f" residual {ev.residual:.2e}" if ev.residual is not None else ""
            _log(f"  [{label}] {ev.stage} {ev.done}/{ev.total}{res}")

    return cb


def machine_rates(size: int) -> dict:
    """This machine's float64 matrix-product rate and its LAPACK Cholesky rates in float64 (``dpotrf``) and float32
    (``spotrf``), the routines the dense paths call (flop/s, each the best of 3 calls at ``size``): the limit
    that the dense paths are held against."""
    import jax.numpy as jnp
    from scipy.linalg import lapack

    a = jax.random.normal(jax.random.key(1), (size, size), jnp.float64)
    spd = np.asarray(a @ a.T / size + jnp.eye(size))
    dgemm = jax.jit(lambda x: x @ x)
    jax.block_until_ready(dgemm(a))
    out = {"dgemm_flops_per_second": 2.0 * size**3 / min(_timed(dgemm, a) for _ in range(3))}
    for name, potrf, dtype in (("cholesky", lapack.dpotrf, np.float64), ("cholesky_float32", lapack.spotrf, np.float32)):
        best = float("inf")
        for _ in range(3):
            work = np.array(spd, dtype=dtype, order="F")
            t0 = time.perf_counter()
            potrf(work, lower=1, clean=0, overwrite_a=1)
            best = min(best, time.perf_counter() - t0)
        out[f"{name}_flops_per_second"] = size**3 / 3.0 / best
    out["size"] = size
    return out


def _timed(fn, x) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x))
    return time.perf_counter() - t0


def limit_seconds(n: int, m: int, d: int, c: int, rates: dict, factor: str = "float64") -> float:
    """The dense path's floating-point work at this machine's rates: the first layer's products for the train and
    test kernels (``2 (n^2 + m n) d``) and the predictions (``2 m n c``) at the dgemm rate, the factorisation
    (``n^3 / 3``) at the Cholesky rate of its precision (``factor``: ``"float32"`` for the mixed-precision
    solver).  The kernels' elementwise layers are left out, so this is a lower bound."""
    rate = rates["cholesky_flops_per_second" if factor == "float64" else "cholesky_float32_flops_per_second"]
    return (2.0 * (n * n + m * n) * d + 2.0 * m * n * c) / rates["dgemm_flops_per_second"] + n**3 / 3.0 / rate


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 1000 side by side, 2000 alone, 1000 test images")
    ap.add_argument("--nt-sizes", type=int, nargs="*", default=[4000, 10000])
    ap.add_argument("--sizes", type=int, nargs="*", default=[60000])
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--rank", type=int, default=None, help="preconditioner rank (default: the library's)")
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--refine", action="store_true", help="check (and refine) the residual with the float64 kernel")
    ap.add_argument("--var-check", type=int, default=6, help="test points with exact variance in the large runs")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)
    if args.quick:
        args.nt_sizes, args.sizes, args.n_test = [1000], [2000], 1000

    from bayes_mogp.data import train_test_split
    from bayes_mogp.iterative_gp import CG, Cholesky, KernelSpec, exact_gp_predict
    from bayes_mogp.kernels import import_neural_tangents, kernel_diagonals, stax_model

    nt = import_neural_tangents()
    depth = 3
    model = stax_model("mlp", depth=depth, activation="relu", w_var=2.0, b_var=0.0)
    nt_kernel = jax.jit(model.kernel_fn, static_argnames="get")
    spec = KernelSpec("nngp", depth=depth, activation="relu", w_var=2.0, b_var=0.0)
    cg = CG(tol=args.tol, precond_rank=args.rank, block_size=args.block_size)
    key = jax.random.key(0)  # the preconditioner's pivots

    def split(n):
        s = train_test_split("fashion", n, args.n_test, source="debian")
        noise = 1e-3 * float(np.mean(np.asarray(kernel_diagonals(s.x_train, depth=depth)[0])))
        return s, noise

    def accuracy(mean, s):
        return float(np.mean(np.argmax(mean, axis=1) == s.labels_test))

    def row_from(n, method, mean, s, meas, info=None, ref=None):
        row = {"n": n, "method": method, **meas, "accuracy": accuracy(mean, s)}
        factor = "float32" if (info or {}).get("precision") == "mixed" else "float64"
        # the limit's work, priced at the machine's rates once they are known (after every path: below)
        limit_args.append((n, s.x_test.shape[0], s.x_train.shape[1], s.y_train.shape[1], factor))
        if info is not None:
            keep = ("solver", "storage", "iterations", "residual", "residual_exact", "converged", "precond_rank",
                    "precond_residual_trace", "memory_estimate_gb", "stage_seconds", "var_check", "layout",
                    "amplitude", "precision", "precision_fallback", "refinements", "backward_error")
            row.update({k: info[k] for k in keep if k in info})
        if ref is not None:
            row["max_abs_mean_diff_vs_nt"] = float(np.max(np.abs(mean - ref["mean"])))
            row["argmax_agreement_vs_nt"] = float(np.mean(np.argmax(mean, 1) == np.argmax(ref["mean"], 1)))
            row["seconds_ratio_vs_nt"] = row["seconds"] / ref["seconds"]
            if "seconds_warm" in row:
                row["seconds_warm_ratio_vs_nt"] = row["seconds_warm"] / ref["seconds_warm"]
            row["cpu_ratio_vs_nt"] = row["cpu_seconds"] / ref["cpu_seconds"]
            row["peak_rss_ratio_vs_nt"] = row["peak_rss_gb"] / ref["peak_rss_gb"]
        return row

    # one-off JAX start-up (backends, linalg) outside every timing, on 20 points
    s0, noise0 = split(20 if not args.quick else 20)
    exact_gp_predict(s0.x_train, s0.y_train, s0.x_test[:5], spec, noise0, key=None, solver=Cholesky())
    rates = machine_rates(min(max(args.nt_sizes or [1000]), 4000))
    _log(f"this machine: dgemm {rates['dgemm_flops_per_second'] / 1e9:.0f} Gflop/s, Cholesky "
         f"{rates['cholesky_flops_per_second'] / 1e9:.0f} Gflop/s (float64), "
         f"{rates['cholesky_float32_flops_per_second'] / 1e9:.0f} Gflop/s (float32; n = {rates['size']})")
    rows, limit_args = [], []  # limit_args: one per row, in order
    variance_check = None
    for n in args.nt_sizes:
        s, noise = split(n)
        _log(f"n = {n}: neural-tangents dense ...")

        def nt_run():
            k = nt_kernel(s.x_train, None, "nngp")
            ks = nt_kernel(s.x_test, s.x_train, "nngp")
            predict = nt.predict.gp_inference(k, s.y_train, diag_reg=noise, diag_reg_absolute_scale=True)
            return np.asarray(predict("nngp", k_test_train=ks))

        mean_nt, meas = _measure(nt_run)
        meas["seconds_warm"] = _measure(nt_run)[1]["seconds"]  # again, compiled: the cost of one more call
        ref = {"mean": mean_nt, **meas}
        rows.append(row_from(n, "nt-dense", mean_nt, s, meas))
        _log(f"  nt-dense {meas['seconds']:.1f} s, peak {meas['peak_rss_gb']:.2f} GiB, acc {rows[-1]['accuracy']:.4f}")
        del mean_nt
        for method, solver in (("ours-cholesky", Cholesky()), ("ours-cholesky-f64", Cholesky(precision="float64")),
                               ("ours-cg", cg)):
            _log(f"n = {n}: {method} ...")
            def ours_run():
                return exact_gp_predict(s.x_train, s.y_train, s.x_test, spec, noise, key=key, solver=solver,
                                        variance="none", progress=_progress(method))

            res, meas = _measure(ours_run)
            if method.startswith("ours-cholesky"):  # the second dense path's first call reuses the kernels'
                meas["seconds_warm"] = _measure(ours_run)[1]["seconds"]  # compilation: compare the warm calls
            rows.append(row_from(n, method, res.mean, s, meas, res.info, ref))
            r = rows[-1]
            _log(f"  {method} {r['seconds']:.1f} s (ratio {r['seconds_ratio_vs_nt']:.2f}), peak {r['peak_rss_gb']:.2f} GiB,"
                 f" acc {r['accuracy']:.4f}, max |mean - nt| {r['max_abs_mean_diff_vs_nt']:.1e}")
        if variance_check is None:  # the Nystrom variance of every test point against the exact one
            _log(f"n = {n}: variance check (dense exact vs Nystrom, all {args.n_test} test points) ...")
            ex = exact_gp_predict(s.x_train, s.y_train, s.x_test, spec, noise, key=None, solver=Cholesky(),
                                  variance="exact")
            ny = exact_gp_predict(s.x_train, s.y_train, s.x_test, spec, noise, key=key, solver=cg,
                                  variance="nystrom")
            ratio = ny.var / ex.var
            variance_check = {"n": n, "precond_rank": ny.info["precond_rank"],
                              "nystrom_over_exact_quantiles": dict(zip(
                                  ("min", "q05", "median", "q95", "max"),
                                  np.quantile(ratio, [0, 0.05, 0.5, 0.95, 1.0]).round(3).tolist())),
                              "correlation": float(np.corrcoef(ny.var, ex.var)[0, 1]),
                              "exact_median": float(np.median(ex.var))}
            _log(f"  Nystrom / exact variance: {variance_check['nystrom_over_exact_quantiles']}")
        del s
    for n in args.sizes:
        s, noise = split(n)
        _log(f"n = {n}: ours-cg (alone) ...")
        res, meas = _measure(lambda: exact_gp_predict(
            s.x_train, s.y_train, s.x_test, spec, noise, key=key, solver=dataclasses.replace(cg, refine=args.refine),
            variance="nystrom", var_check_points=args.var_check, progress=_progress("ours-cg")))
        rows.append(row_from(n, "ours-cg", res.mean, s, meas, res.info))
        r = rows[-1]
        _log(f"  ours-cg {r['seconds']:.1f} s (cpu {r['cpu_seconds']:.0f} s), peak {r['peak_rss_gb']:.2f} GiB, "
             f"acc {r['accuracy']:.4f}, {r['iterations']} iterations, residual {r['residual']:.2e}")
        del s, res
    # the rates again after the paths, each the best of the two timings; every row's limit priced at them
    again = machine_rates(rates["size"])
    rates = {k: (max(v, again[k]) if k.endswith("_per_second") else v) for k, v in rates.items()}
    for r, (n, m, d, c, factor) in zip(rows, limit_args, strict=True):
        r["limit_seconds"] = limit_seconds(n, m, d, c, rates, factor)
        r["fraction_of_limit"] = r["limit_seconds"] / r["seconds"]
    result = {
        "benchmark": "iterative_gp",
        "dataset": "fashion (debian)",
        "kernel": "nngp, depth 3 relu, w_var 2, b_var 0",
        "noise": "1e-3 * mean diag K",
        "n_test": args.n_test,
        "tol": args.tol,
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "devices": [str(d) for d in jax.devices()],
        "machine_rates": rates,
        "rows": rows,
        "variance_check": variance_check,
    }
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(result))  # strict JSON: NaN/Inf -> null
    else:
        head = (f"{'n':>6} {'method':17} {'seconds':>8} {'cpu s':>7} {'peak GiB':>9} {'accuracy':>9} {'iters':>6}"
                f" {'residual':>9} {'|dmean| vs nt':>14} {'ratio vs nt':>12}")
        print(head)
        for r in rows:
            it = r.get("iterations")
            res = r.get("residual")
            diff = r.get("max_abs_mean_diff_vs_nt")
            ratio = r.get("seconds_ratio_vs_nt")
            print(f"{r['n']:>6} {r['method']:17} {r['seconds']:>8.1f} {r['cpu_seconds']:>7.1f} {r['peak_rss_gb']:>9.2f}"
                  f" {r['accuracy']:>9.4f} {'' if not it else it:>6} {'' if res is None else f'{res:.1e}':>9}"
                  f" {'' if diff is None else f'{diff:.1e}':>14} {'' if ratio is None else f'{ratio:.2f}':>12}")
        if variance_check:
            print(f"Nystrom / exact variance at n = {variance_check['n']} (rank {variance_check['precond_rank']}): "
                  f"{variance_check['nystrom_over_exact_quantiles']}")
        by_key = {(r["n"], r["method"]): r for r in rows}
        for (n, method), r in by_key.items():
            f64 = by_key.get((n, "ours-cholesky-f64"))
            if method == "ours-cholesky" and f64 is not None:
                print(f"n = {n}: mixed / float64 dense, second calls: {r['seconds_warm'] / f64['seconds_warm']:.2f}")
        for r in rows:
            if "seconds_warm_ratio_vs_nt" in r:
                print(f"n = {r['n']}: a second call, compiled: ours {r['seconds_warm']:.2f} s, ratio vs nt "
                      f"{r['seconds_warm_ratio_vs_nt']:.2f}")
        for r in rows:
            print(f"n = {r['n']} {r['method']}: {r['fraction_of_limit']:.2f} of the limit ({r['limit_seconds']:.2f} s "
                  f"of products and factorisation at this machine's rates)")
        print(f"load average at the end: {os.getloadavg()}")
    return result


if __name__ == "__main__":
    main()
