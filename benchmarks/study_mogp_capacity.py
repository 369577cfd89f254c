"""Why the MoGP does not beat the NNGP here: the feature posterior rewards fitting, not generalising.

Not a speed benchmark: a study on the MNIST/Fashion catalogue setting of the MoGP (``bayes_mogp.mogp``: free
drift, log-normal noise, depth-3 base kernel with a Nystrom feature basis of rank r), against the NNGP of
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
    """The CLI's data set (raw pixels, per-image transform) in model units."""
    from bayes_mogp.data import from_builtin

    data = from_builtin(dataset, n_train, n_test, seed=seed)
    return data, data.inputs(), data.targets(), data.inputs(data.x_test)


def _accuracy(problem, fmap, x, x_test, limit, draws, labels):
    from bayes_mogp.mogp.predictive import predict_draws, test_inputs

    means, _, _ = predict_draws(problem, test_inputs(problem, fmap, x, x_test), limit, draws, drift="free")
    return float(np.mean(np.argmax(means.mean(0), -1) == labels))


def part_map(args, limit, data, x, y, x_test):
    from bayes_mogp.mogp.features import build_feature_map
    from bayes_mogp.mogp.model import build_problem, fit_map, model_kwargs

    rows = []
    for cfg in args.configs:
        num_jumps, rank = (int(v) for v in cfg.split(","))
        t = time.perf_counter()
        fmap = build_feature_map(x, depth=3, rank=rank)
        problem = build_problem(fmap, x, y)
        kw = model_kwargs(problem, limit, num_jumps, drift="free")
        params, losses = fit_map(jax.random.PRNGKey(args.seed), kw, steps=args.map_steps)
        draw = {k: jnp.asarray(v)[None] for k, v in params.items()}
        draw["jumps"] = limit.levy.inverse_tail(jnp.cumsum(draw["arrivals"], axis=-1))
        row = {"num_jumps": num_jumps, "rank": rank, "trace_kept": round(fmap.trace_kept, 3),
               "neg_log_joint": float(losses[-1]), "noise": float(params["noise"]),
               "accuracy": _accuracy(problem, fmap, x, x_test, limit, draw, data.y_test),
               "seconds": round(time.perf_counter() - t, 1)}
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    return {"part": "map", "dataset": args.dataset, "rows": rows}


def part_chains(args, limit, data, x, y, x_test):
    from numpyro.infer import MCMC, NUTS, init_to_median

    from bayes_mogp.mogp.features import build_feature_map
    from bayes_mogp.mogp.model import build_problem, model_kwargs, mogp_model

    fmap = build_feature_map(x, depth=3, rank=args.rank)
    problem = build_problem(fmap, x, y)
    kw = model_kwargs(problem, limit, args.num_jumps, drift="free")
    t = time.perf_counter()
    mc = MCMC(NUTS(mogp_model, init_strategy=init_to_median(num_samples=15), target_accept_prob=0.85,
                   max_tree_depth=args.max_tree_depth),
              num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=1, progress_bar=False)
    key_w, key_s = jax.random.split(jax.random.PRNGKey(args.seed))
    mc.warmup(key_w, collect_warmup=True, extra_fields=("num_steps",), **kw)
    ll_warm = np.asarray(mc.get_samples()["log_marginal_likelihood"])
    mc.run(key_s, extra_fields=("num_steps", "diverging"), **kw)
    s = mc.get_samples()
    ll = np.concatenate([ll_warm, np.asarray(s["log_marginal_likelihood"])])
    tenths = [round(float(c.mean()), 1) for c in np.array_split(ll, 10)]
    return {"part": "chains", "dataset": args.dataset, "seed": args.seed, "num_jumps": args.num_jumps,
            "rank": args.rank, "log_likelihood_by_tenth": tenths,
            "log_likelihood_mean_draws": float(np.mean(s["log_marginal_likelihood"])),
            "leapfrog_steps_mean": float(np.mean(mc.get_extra_fields()["num_steps"])),
            "divergences": int(np.sum(mc.get_extra_fields()["diverging"])),
            "accuracy": _accuracy(problem, fmap, x, x_test, limit, s, data.y_test),
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
    from bayes_mogp import nngp
    from bayes_mogp.priors import get_prior

    limit = get_prior(args.prior, 1000).limit
    data, x, y, x_test = _problem(args.dataset, args.n_train, args.n_test)
    out = (part_map if args.part == "map" else part_chains)(args, limit, data, x, y, x_test)
    out["nngp_accuracy"] = nngp.fit(None, data, depth=3, noise=1e-3).score(data.x_test, data.y_test)["accuracy"]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
