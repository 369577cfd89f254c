"""Min ESS per second of our horseshoe BNN against the same prior written the plain (centred) way.

The prior is the headline's (``models/bnn_horseshoe.toml``: regularised horseshoe, half-normal global
scale; ``--global-scale``/``--slab-scale`` change it).  Same data (MNIST subset, PCA inputs), same NUTS
settings, same key, one process, side by side.  ESS is
the minimum bulk ESS over the identifiable quantities (global scale tau, sorted lambdas, total
log-likelihood); seconds include warmup.  Prints both, their divergence counts and the ratio.

    uv run python benchmarks/bench_bnn.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import sys

import jax

jax.config.update("jax_enable_x64", True)


def _min_ess(config, res, X, y):
    import arviz as az
    import numpy as np

    from bayes_mogp.bnn import flatten_chains, predict_probs

    flat = flatten_chains(res.samples)
    p = predict_probs(config, flat, X)
    ll = np.log(np.take_along_axis(p, y[None, :, None], -1)[..., 0]).sum(-1)
    chains, draws = res.samples["lam_sorted0"].shape[:2]
    post = {"lam_sorted0": res.samples["lam_sorted0"], "log_lik_total": ll.reshape(chains, draws)}
    if config.global_scale != "fixed":
        post["tau0"] = res.samples["tau0"]
    ess = az.ess(az.from_dict(posterior=post), method="bulk")
    return float(min(float(ess[v].min()) for v in post))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 images, 10 units, 2 x (50 + 50), tree depth 6: a smoke test")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--global-scale", default=None, help="override the spec's global_scale")
    ap.add_argument("--slab-scale", type=float, default=None, help="override the spec's slab_scale (0: none)")
    args = ap.parse_args(argv)
    from bayes_mogp.specs import load_spec

    model_spec = load_spec("bnn_horseshoe")["model"]
    global_scale = args.global_scale or model_spec.get("global_scale", "half_cauchy")
    slab = model_spec.get("slab_scale") if args.slab_scale is None else (args.slab_scale or None)
    from bayes_mogp.bnn import BNNConfig, NutsSettings, bnn_model, centred_horseshoe_model, pca_inputs, run_nuts
    from bayes_mogp.data import mnist_5k_split

    n, width, warm, draws, chains = (100, 10, 50, 50, 2) if args.quick else (500, 50, 300, 300, 2)
    split = mnist_5k_split(n_train=n, n_test=1000)
    X, _, _ = pca_inputs(split.x_train, split.x_test, 20 if args.quick else 50)
    y = split.labels_train
    config = BNNConfig(d_in=X.shape[1], d_out=10, widths=(width,), prior="horseshoe", global_scale=global_scale,
                       slab_scale=slab)
    out = {"n_train": n, "width": width, "num_warmup": warm, "num_samples": draws, "num_chains": chains,
           "global_scale": global_scale, "slab_scale": slab}
    depth = {"max_tree_depth": 6} if args.quick else {}  # quick: a smoke test, trees capped at 63 steps
    for name, model in (("ours", bnn_model), ("centred", centred_horseshoe_model)):
        res = run_nuts(jax.random.PRNGKey(0), config, X, y, NutsSettings(num_warmup=warm, num_samples=draws,
                                                                          num_chains=chains, **depth), model=model)
        ess = _min_ess(config, res, X, y)
        out[name] = {"min_ess": ess, "seconds": res.seconds, "ess_per_second": ess / res.seconds,
                     "divergences": int(res.stats["diverging"].sum())}
        print(f"{name:8s} min ESS {ess:8.1f}  {res.seconds:8.1f} s  ESS/s {ess / res.seconds:8.4f}  "
              f"divergences {out[name]['divergences']}", file=sys.stderr if args.json else sys.stdout)
    out["ratio_ess_per_second"] = out["ours"]["ess_per_second"] / out["centred"]["ess_per_second"]
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(out))  # strict JSON: NaN/Inf -> null
    else:
        print(f"ratio (ours / centred) of min ESS per second: {out['ratio_ess_per_second']:.2f}")


if __name__ == "__main__":
    main()
