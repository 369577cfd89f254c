"""Why the MoGP does not beat the NNGP here: the feature posterior rewards fitting, not generalising.

Not a speed benchmark: the study behind the issue-4 closing notes, on the `mogp` CLI's data and model
(``bayes_mogp.mogp.regression``: free drift, log-normal noise, depth-3 base kernel), against the NNGP of
``bayes-mogp baseline`` on the same split.

``--part map``: MAP (the CLI's start) for several (J, rank): the more expressive the J features, the
higher the log posterior density and the *lower* the test accuracy (the features learn the training labels;
the marginal-likelihood over-fitting of deep kernel learning, Ober, Rasmussen & van der Wilk, UAI 2021).

``--part chains``: one NUTS chain per seed, started from the prior (``init_to_median``), long warmup;
prints the chain's log-likelihood by tenths of its run (does it plateau?) and the test accuracy of its
predictive.  Chains from different seeds plateau at different levels (different feature modes: R-hat
of the log-likelihood far above 1.05), and the higher plateau need not predict better.

    uv run python benchmarks/study_mogp_capacity.py --part map [--dataset mnist] [--configs 8,32 16,32 8,128 32,128]
    uv run python benchmarks/study_mogp_capacity.py --part chains --seed 0 [--num-warmup 600 --num-samples 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def _problem(dataset, n_train, n_test, seed=0):
    """The CLI's split and kernels: pre-activation covariance of the last hidden layer and its ReLU kernel."""
    from bayes_mogp.data import train_test_split
    from bayes_mogp.kernels import activation_expectation, nngp_kernel

    split = train_test_split(dataset, n_train, n_test, seed=seed)
    x_all = jnp.asarray(np.concatenate([split.x_train, split.x_test]))
    sigma = np.asarray(nngp_kernel(x_all, depth=2))  # depth-3 network: the last hidden layer's input covariance
    k_phi = np.asarray(activation_expectation("relu", jnp.asarray(sigma)))
    return split, sigma, k_phi


def part_map(args, limit, split, sigma, k_phi):
    from bayes_mogp.mogp import regression as rg

    rows = []
    for cfg in args.configs:
        num_jumps, rank = (int(v) for v in cfg.split(","))
        t = time.perf_counter()
        problem = rg.build_problem(k_phi, sigma, split.y_train, args.n_train, rank=rank)
        kw = dict(problem=problem, limit=limit, num_jumps=num_jumps, drift="free")
        params, losses = rg.fit_map(jax.random.PRNGKey(args.seed), kw, steps=args.map_steps)
        draw = {k: jnp.asarray(v)[None] for k, v in params.items()}
        draw["jumps"] = limit.levy.inverse_tail(jnp.cumsum(draw["arrivals"], axis=-1))
        means, _, _ = rg.predict_draws(problem, limit, draw, drift="free")
        row = {"num_jumps": num_jumps, "rank": rank, "trace_kept": round(problem.trace_kept, 3),
               "neg_log_joint": float(losses[-1]), "noise": float(params["noise"]),
               "accuracy": rg.mean_accuracy(means.mean(0), split.labels_test),
               "seconds": round(time.perf_counter() - t, 1)}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    return {"part": "map", "dataset": args.dataset, "rows": rows}


def part_chains(args, limit, split, sigma, k_phi):
    from numpyro.infer import MCMC, NUTS, init_to_median

    from bayes_mogp.mogp import regression as rg

    problem = rg.build_problem(k_phi, sigma, split.y_train, args.n_train, rank=args.rank)
    kw = dict(problem=problem, limit=limit, num_jumps=args.num_jumps, drift="free")
    t = time.perf_counter()
    mc = MCMC(NUTS(rg.mogp_model, init_strategy=init_to_median(num_samples=15), target_accept_prob=0.85,
                   max_tree_depth=args.max_tree_depth),
              num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=1, progress_bar=False)
    key_w, key_s = jax.random.split(jax.random.PRNGKey(args.seed))
    mc.warmup(key_w, collect_warmup=True, extra_fields=("num_steps",), **kw)
    ll_warm = np.asarray(mc.get_samples()["log_likelihood"])
    mc.run(key_s, extra_fields=("num_steps", "diverging"), **kw)
    s = mc.get_samples()
    ll = np.concatenate([ll_warm, np.asarray(s["log_likelihood"])])
    means, _, _ = rg.predict_draws(problem, limit, s, drift="free")
    tenths = [round(float(c.mean()), 1) for c in np.array_split(ll, 10)]
    return {"part": "chains", "dataset": args.dataset, "seed": args.seed, "num_jumps": args.num_jumps,
            "rank": args.rank, "log_likelihood_by_tenth": tenths,
            "log_likelihood_mean_draws": float(np.mean(s["log_likelihood"])),
            "leapfrog_steps_mean": float(np.mean(mc.get_extra_fields()["num_steps"])),
            "divergences": int(np.sum(mc.get_extra_fields()["diverging"])),
            "accuracy": rg.mean_accuracy(means.mean(0), split.labels_test),
            "seconds": round(time.perf_counter() - t, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=("map", "chains"), required=True)
    ap.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    ap.add_argument("--prior", default="horseshoe")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--configs", nargs="+", default=["8,32", "16,32", "8,128", "32,128"],
                    help="J,rank pairs for --part map")
    ap.add_argument("--map-steps", type=int, default=1500)
    ap.add_argument("--num-jumps", type=int, default=8)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--num-warmup", type=int, default=600)
    ap.add_argument("--num-samples", type=int, default=200)
    ap.add_argument("--max-tree-depth", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from bayes_mogp.cli.baseline import evaluate
    from bayes_mogp.priors import get_prior

    limit = get_prior(args.prior, 1000).limit
    split, sigma, k_phi = _problem(args.dataset, args.n_train, args.n_test)
    out = (part_map if args.part == "map" else part_chains)(args, limit, split, sigma, k_phi)
    res, _ = evaluate(split, key=jax.random.PRNGKey(0), depth=3, which=("nngp",))
    out["nngp_accuracy"] = res["nngp"]["accuracy"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
