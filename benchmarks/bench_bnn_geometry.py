"""Why the horseshoe BNN is slow under NUTS: leapfrog steps per draw and adapted step size, side by side.

One chain per variant, same data (MNIST subset, PCA inputs), same key, same NUTS settings, one process:

* ``iid``: no per-node variance (the reference geometry);
* ``horseshoe/fixed``: our non-centred horseshoe with the global scale fixed at pi/p (model (d));
* ``horseshoe/half_cauchy``: the same with a half-Cauchy global scale (the plain horseshoe);
* ``horseshoe/half_cauchy+slab``: with the slab of the regularised horseshoe (the headline's c);
* ``horseshoe/half_normal+slab``: half-normal global scale and slab: the headline prior
  (``models/bnn_horseshoe.toml``).

Also printed: the 5/50/95% posterior quantiles of the global scale tau (against tau0 = pi/p) and the
posterior medians of the largest and of the 10th largest node variance: the evidence that separable
data push a heavy-tailed prior into its tail (plain horseshoe: lambdas in the hundreds; half-Cauchy
tau with a slab: tau hundreds of times tau0 and every node at the slab).

Prints, per variant, the mean number of leapfrog steps per draw, the adapted step size, seconds per
iteration (warmup and compilation included: in ``--quick`` mode compilation dominates, so read the step
counts there) and the ratios of steps and of seconds per iteration to ``iid``.  With ``max_tree_depth``
10, 1023 steps per draw means NUTS hits the tree-depth cap on every draw.

    uv run python benchmarks/bench_bnn_geometry.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import jax


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 images, PCA 10, 8 units, 50 + 20 iterations, tree depth 6: a smoke test")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=None, help="comma-separated subset of the variant names")
    args = ap.parse_args(argv)

    import numpy as np

    from bayes_mogp.bnn import BNNConfig, NutsSettings, pca_inputs, run_nuts
    from bayes_mogp.data import mnist_5k_split
    from bayes_mogp.specs import load_spec

    n, pca, width, warm, draws = (100, 10, 8, 50, 20) if args.quick else (500, 50, 50, 300, 50)
    split = mnist_5k_split(n_train=n, n_test=1000)
    xtr, _, _ = pca_inputs(split.x_train, split.x_test, pca)
    tau0 = math.pi / width  # the horseshoe's global-scale width scaling (bayes_mogp.bnn.models)
    slab = float(load_spec("bnn_horseshoe")["model"].get("slab_scale", 4.0))
    variants = [("iid", {}), ("horseshoe/fixed", {"global_scale": "fixed"}),
                ("horseshoe/half_cauchy", {"global_scale": "half_cauchy"}),
                ("horseshoe/half_cauchy+slab", {"global_scale": "half_cauchy", "slab_scale": slab}),
                ("horseshoe/half_normal+slab", {"global_scale": "half_normal", "slab_scale": slab})]
    if args.variants:
        wanted = args.variants.split(",")
        unknown = sorted(set(wanted) - {name for name, _ in variants})
        if unknown:
            ap.error(f"--variants: unknown {unknown}")
        variants = [v for v in variants if v[0] in wanted or v[0] == "iid"]  # iid: the reference
    rows = {}
    for name, kw in variants:
        config = BNNConfig(d_in=pca, d_out=10, widths=(width,), prior=name.split("/")[0], **kw)
        t0 = time.perf_counter()
        res = run_nuts(jax.random.PRNGKey(args.seed), config, xtr, split.labels_train,
                       NutsSettings(num_warmup=warm, num_samples=draws, num_chains=1,
                                    **({"max_tree_depth": 6} if args.quick else {})))  # quick: trees <= 63 steps
        sec = time.perf_counter() - t0
        rows[name] = {"mean_leapfrog_steps": float(np.mean(res.stats["num_steps"])),
                      "step_size": float(np.mean(res.stats["adapt_state.step_size"])),
                      "seconds_per_iteration": sec / (warm + draws),
                      "divergences": int(np.sum(res.stats["diverging"]))}
        lam_sorted = np.median(res.samples["lam_sorted0"], axis=(0, 1))
        rows[name]["lambda_median_largest"] = float(lam_sorted[0])
        rows[name]["lambda_median_10th"] = float(lam_sorted[min(9, width - 1)])
        if "tau0" in res.samples and kw.get("global_scale") != "fixed":
            q = np.quantile(res.samples["tau0"], [0.05, 0.5, 0.95]) / tau0
            rows[name]["tau_over_tau0_q05_q50_q95"] = [float(v) for v in q]
        print(f"{name:24s} steps/draw {rows[name]['mean_leapfrog_steps']:7.1f}  step size "
              f"{rows[name]['step_size']:.2e}  s/iter {rows[name]['seconds_per_iteration']:.3f}  "
              f"lambda(1) {rows[name]['lambda_median_largest']:.3g}  lambda(10) {rows[name]['lambda_median_10th']:.3g}"
              + (f"  tau/tau0 {rows[name]['tau_over_tau0_q05_q50_q95']}" if "tau_over_tau0_q05_q50_q95" in rows[name]
                 else ""), file=sys.stderr)
    base = rows["iid"]["seconds_per_iteration"]
    steps = rows["iid"]["mean_leapfrog_steps"]
    for r in rows.values():
        r["ratio_to_iid"] = r["seconds_per_iteration"] / base
        r["steps_ratio_to_iid"] = r["mean_leapfrog_steps"] / steps
    out = {"settings": {"n_train": n, "pca": pca, "width": width, "num_warmup": warm, "num_samples": draws},
           "variants": rows}
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(out))  # strict JSON: NaN/Inf -> null
    else:
        for k, r in rows.items():
            print(f"{k:24s} {r['steps_ratio_to_iid']:6.2f}x the leapfrog steps and {r['ratio_to_iid']:6.2f}x the "
                  "time per iteration of iid")
    return out


if __name__ == "__main__":
    main()
