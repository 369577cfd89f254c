"""Exact chi-square sampler of G against brute-force network simulation.

Same law (two-sample KS on G) and the speed ratio, side by side in one process:

    uv run python benchmarks/bench_depth_width.py            # n = 100, d = 100, 2^15 samples (minutes)
    uv run python benchmarks/bench_depth_width.py --quick    # n = 30, d = 10, 2^12 samples
    uv run python benchmarks/bench_depth_width.py --json

The exact sampler is timed as the median of ``--repeats`` runs; the network simulation, which dominates
the cost (d n^2 normals per sample), once.  Both draw from NumPy generators keyed by a JAX key, so the
ratio measures the algorithms, not two random-number libraries.  Absolute times are inflated by whatever
else runs on the machine; the ratio much less so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

jax.config.update("jax_enable_x64", True)

from bayes_mogp import depth_width as dw  # noqa: E402


def summary(g, widths):
    beta = dw.beta_mlp(widths)
    s = dw.summarize_g(g, beta)
    em, ev = dw.exact_moments(widths)
    return {"beta": beta, "mean_G": s.mean, "var_G": s.var, "se_mean_G": s.se_mean, "se_var_G": s.se_var,
            "theory_mean": -beta / 2, "theory_var": beta, "exact_mean_G": em, "exact_var_G": ev,
            "ks_stat": s.ks_stat, "ks_pvalue": s.ks_pvalue, "zero_outputs": s.zero_outputs}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="n = 30, d = 10, 2^12 samples")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--depth", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of the exact sampler (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    n = args.width or (30 if args.quick else 100)
    d = args.depth if args.depth is not None else (10 if args.quick else 100)
    s = args.samples or (2**12 if args.quick else 2**15)
    widths = dw.as_widths(n, d)
    key_exact, key_net = jax.random.split(jax.random.key(args.seed))

    dw.sample_g_exact(key_exact, widths, 16)  # warm-up
    times = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        g_exact = dw.sample_g_exact(jax.random.fold_in(key_exact, r), widths, s)
        times.append(time.perf_counter() - t0)
    t_exact = statistics.median(times)

    print(f"network simulation: n={n}, d={d}, {s} samples ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    net = dw.simulate_network(key_net, widths, s, n_in=10, n_out=10)
    t_net = time.perf_counter() - t0

    ks = stats.ks_2samp(g_exact[np.isfinite(g_exact)], net.g[np.isfinite(net.g)])
    result = {
        "width": n, "depth": d, "samples": s,
        "exact_seconds_median": t_exact, "exact_seconds_all": times, "network_seconds": t_net,
        "speed_ratio": t_net / t_exact,
        "ks2_stat": float(ks.statistic), "ks2_pvalue": float(ks.pvalue),
        "exact": summary(g_exact, widths), "network": summary(net.g, widths),
        "second_order": dict(zip(("mean_G", "var_G"), dw.second_order_moments(widths))),
    }
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(result))  # strict JSON: NaN/Inf -> null
    else:
        print(f"n = {n}, d = {d}, {s} samples")
        print(f"  exact sampler   median {t_exact:.4f} s over {args.repeats} runs")
        print(f"  network         {t_net:.2f} s (one run)")
        print(f"  speed ratio     {t_net / t_exact:.0f}x")
        print(f"  two-sample KS   D = {ks.statistic:.4f}, p = {ks.pvalue:.3g}")
        for name in ("exact", "network"):
            r = result[name]
            print(f"  {name:8s} mean G {r['mean_G']:.4f} +- {r['se_mean_G']:.4f}  var G {r['var_G']:.4f} +- "
                  f"{r['se_var_G']:.4f}  KS vs N(-beta/2, beta) p = {r['ks_pvalue']:.3g}")
        r = result["exact"]
        print(f"  theory: beta = {r['beta']:.4f} -> mean {r['theory_mean']:.4f}, var {r['theory_var']:.4f};"
              f" exact finite-n mean {r['exact_mean_G']:.4f}, var {r['exact_var_G']:.4f}")
    return result


if __name__ == "__main__":
    main()
