"""``bayes-mogp mogp``: MoGP regression (posterior over random kernels, NUTS) against the NNGP, same split.

The NNGP numbers come from :func:`bayes_mogp.cli.baseline.evaluate` on the split of
:func:`bayes_mogp.data.train_test_split`, so they match ``bayes-mogp baseline``.  The MoGP is
:mod:`bayes_mogp.mogp.regression`: GP part = the depth-``--depth`` NNGP-type kernel, sparse network of the
``--num-jumps`` largest jumps of the prior's Levy measure at the last hidden layer, started from a MAP fit,
then NUTS.  NLL is the Gaussian NLL of the one-hot targets, as in ``baseline`` (the mixture density
for the MoGP); ``nll_class`` is the categorical NLL of the class probabilities.  The posterior is saved
as ArviZ InferenceData (netCDF) under ``--out``.
"""

from __future__ import annotations

import os

from . import _common

NAME = "mogp"
HELP = "MoGP regression (posterior over random kernels by NUTS) vs NNGP on MNIST / Fashion-MNIST"


# Built-in settings; a spec (``models/mogp_*.toml``) overrides them and explicit flags override both.
DEFAULTS = {"dataset": "mnist", "prior": "horseshoe", "n_train": 1000, "n_test": 1000, "num_jumps": 8, "rank": 32,
            "depth": 3, "drift": "prior", "map_steps": 1500, "num_warmup": 100, "num_samples": 100,
            "max_tree_depth": 6, "num_chains": 2, "source": None}
# Spec table -> keys it may hold (TOML names are the flag names with "_" for "-").
SPEC_KEYS = {"model": ("prior", "num_jumps", "rank", "depth", "drift"),
             "data": ("dataset", "n_train", "n_test", "source"),
             "inference": ("map_steps", "num_warmup", "num_samples", "max_tree_depth", "num_chains")}


def add_arguments(parser) -> None:
    parser.add_argument("spec", nargs="?", default=None,
                        help="optional model spec (models/mogp_*.toml, by name or path); flags override it")
    d = DEFAULTS
    parser.add_argument("--dataset", choices=("mnist", "fashion"), default=None, help=f"default {d['dataset']}")
    parser.add_argument("--prior", default=None,
                        help=f"per-node variance prior (bayes_mogp.priors names; default {d['prior']})")
    parser.add_argument("--n-train", type=int, default=None, help=f"default {d['n_train']}")
    parser.add_argument("--n-test", type=int, default=None, help=f"default {d['n_test']}")
    parser.add_argument("--num-jumps", "-J", type=int, default=None,
                        help=f"largest jumps kept, J >= 1 (default {d['num_jumps']})")
    parser.add_argument("--rank", type=int, default=None,
                        help=f"rank of the feature prior factor (default {d['rank']})")
    parser.add_argument("--depth", type=int, default=None,
                        help=f"hidden layers of the base kernel (default {d['depth']})")
    parser.add_argument("--drift", choices=("prior", "free"), default=None,
                        help=f"drift a from the prior's limit, or free with a half-normal prior "
                             f"(default {d['drift']})")
    parser.add_argument("--map-steps", type=int, default=None, help=f"default {d['map_steps']}")
    parser.add_argument("--num-warmup", type=int, default=None, help=f"default {d['num_warmup']}")
    parser.add_argument("--num-samples", type=int, default=None, help=f"default {d['num_samples']}")
    parser.add_argument("--max-tree-depth", type=int, default=None,
                        help=f"NUTS tree depth cap (default {d['max_tree_depth']})")
    parser.add_argument("--num-chains", type=int, default=None, help=f"default {d['num_chains']}")
    parser.add_argument("--source", default=None, help="data source (as in `baseline`)")
    parser.add_argument("--data-npz", default=None,
                        help="own data: .npz with x_train, labels_train, x_test, labels_test (overrides --dataset)")
    parser.add_argument("--out", default="runs", help="folder for the InferenceData netCDF (default runs/)")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for smoke tests")


def resolve_settings(args) -> None:
    """Fill every unset flag of ``args`` from the spec (if one is named), then from :data:`DEFAULTS`."""
    from_spec = {}
    if args.spec is not None:
        from ..specs import load_spec

        spec = load_spec(args.spec)
        for table, keys in SPEC_KEYS.items():
            section = spec.get(table, {})
            unknown = sorted(set(section) - set(keys))
            if unknown:
                raise _common.UsageError(f"spec {spec['_path']}: [{table}] has unknown key(s) {unknown}; "
                                         f"allowed: {', '.join(keys)}")
            from_spec.update(section)
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, from_spec.get(key, default))


def _load_split(args):
    import numpy as np

    from ..data import Split, one_hot, train_test_split
    from ..validation import check_finite_array

    if args.data_npz:
        if not os.path.exists(args.data_npz):
            raise _common.UsageError(f"--data-npz {args.data_npz}: file not found")
        d = np.load(args.data_npz)
        xtr = check_finite_array("x_train", d["x_train"], ndim=2)
        xte = check_finite_array("x_test", d["x_test"], ndim=2)
        ltr, lte = np.asarray(d["labels_train"]).astype(int), np.asarray(d["labels_test"]).astype(int)
        return Split(xtr, one_hot(ltr, 10), ltr, xte, one_hot(lte, 10), lte, np.arange(len(ltr)), np.arange(len(lte)))
    return train_test_split(args.dataset, args.n_train, args.n_test, seed=args.seed, source=args.source)


def run(args) -> dict:
    import time

    from ..priors import get_prior
    from ..validation import check_int

    resolve_settings(args)
    num_jumps = check_int("--num-jumps", args.num_jumps, 1)
    check_int("--rank", args.rank, 1)
    depth = check_int("--depth", args.depth, 1)
    prior = get_prior(args.prior, 1000)  # width unused: the limit is what the MoGP needs
    limit = prior.limit
    if args.quick:
        args.map_steps, args.num_warmup, args.num_samples = min(args.map_steps, 300), 30, 30
    split = _load_split(args)

    import arviz as az
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ..io import atomic_path, atomic_save_npz
    from ..kernels import activation_expectation, nngp_kernel
    from ..mogp import regression as rg
    from .baseline import evaluate

    key = jax.random.PRNGKey(args.seed)
    k_map, k_nuts, k_nngp = jax.random.split(key, 3)
    t0 = time.perf_counter()
    res_nngp, _ = evaluate(split, key=k_nngp, depth=depth, which=("nngp",), log=_common.log)
    nngp = {k: v for k, v in res_nngp["nngp"].items() if k not in ("predictions", "jitter")}
    nngp["nll_class"] = rg.classification_metrics(res_nngp["nngp"]["predictions"]["probs"], split.labels_test)["nll"]

    t0 = time.perf_counter()
    n = split.x_train.shape[0]
    x_all = jnp.asarray(np.concatenate([split.x_train, split.x_test]))
    sigma = np.asarray(nngp_kernel(x_all, depth=depth - 1)) if depth > 1 else np.asarray(x_all @ x_all.T * 2.0 /
                                                                                          x_all.shape[1])
    k_phi = np.asarray(activation_expectation("relu", jnp.asarray(sigma)))
    problem = rg.build_problem(k_phi, sigma, split.y_train, n, rank=min(args.rank, x_all.shape[0]))
    kw = dict(problem=problem, limit=limit, num_jumps=num_jumps if limit.regime == "MoGP" else 0, drift=args.drift)
    _common.log(f"mogp: MAP ({args.map_steps} steps)")
    params, _ = rg.fit_map(k_map, kw, steps=args.map_steps)
    _common.log(f"mogp: NUTS {args.num_chains} x ({args.num_warmup} + {args.num_samples})")
    mcmc = rg.run_nuts(k_nuts, kw, num_warmup=args.num_warmup, num_samples=args.num_samples,
                       num_chains=args.num_chains, init_params=params,
                       max_tree_depth=check_int("--max-tree-depth", args.max_tree_depth, 1, 12))
    samples = mcmc.get_samples()
    divergences = int(np.sum(mcmc.get_extra_fields()["diverging"]))
    nuts_seconds = time.perf_counter() - t0
    means, variances, noises = rg.predict_draws(problem, limit, samples, drift=args.drift)
    mean, var, probs = rg.mixture_predictive(means, variances, noises)
    met = rg.classification_metrics(probs, split.labels_test)
    mogp = {"accuracy": rg.mean_accuracy(mean, split.labels_test),
            "nll": rg.target_nll(means, variances, noises, split.y_test), "ece": met["ece"],
            "nll_class": met["nll"], "seconds": time.perf_counter() - t0}

    # diagnostics on identifiable quantities: log-likelihood, ordered jumps, scales, test predictions
    nc, ns = args.num_chains, args.num_samples
    grouped = mcmc.get_samples(group_by_chain=True)
    ident = {k: np.asarray(grouped[k]) for k in ("log_likelihood", "gp_scale", "noise", "sigma_v2", "jumps")
             if k in grouped}
    chain_means = np.asarray(means).reshape(nc, ns, *means.shape[1:])  # (chains, draws, m, C)
    ident["test_prediction"] = chain_means[:, :, np.arange(5), split.labels_test[:5]]
    ds = az.convert_to_dataset(ident)
    rhat = az.rhat(ds) if nc > 1 else None
    ess = az.ess(ds, method="bulk")
    per_chain = rg.per_chain_summary(ident["log_likelihood"], chain_means, split.labels_test)
    diagnostics = {"r_hat_max": float(max(float(rhat[v].max()) for v in rhat.data_vars)) if rhat is not None else None,
                   "ess_bulk_min": float(min(float(ess[v].min()) for v in ess.data_vars)),
                   "divergences": divergences, "quantities": sorted(ident), "per_chain": per_chain,
                   "map_plus_nuts_seconds": nuts_seconds}

    active = None
    if "jumps" in samples:
        lam = np.asarray(samples["jumps"]) * np.asarray(samples["sigma_v2"])[:, None]
        share = lam / (lam.sum(1, keepdims=True) + np.asarray(samples["gp_scale"])[:, None])
        pruned = {}
        for k in sorted({1, max(1, num_jumps // 2), num_jumps}):
            pm, pv, pn = rg.predict_draws(problem, limit, samples, drift=args.drift, gp_part=False, keep=k)
            pruned[str(k)] = rg.mean_accuracy(pm.mean(0), split.labels_test)
        feats = np.asarray(samples["features"])  # (S, J, r)
        h_tr = np.einsum("nr,sjr->sjn", np.asarray(problem.feat_factor[:n]), feats)
        xtr = np.asarray(split.x_train)
        weights = np.linalg.lstsq(xtr, h_tr.mean(0).T, rcond=None)[0].T  # (J, d): posterior-mean feature images
        active = {"num_jumps": num_jumps, "lambda_median": np.median(lam, 0),
                  "kernel_share_median": np.median(share, 0),
                  "active": int(np.sum(np.median(share, 0) > 0.01)),
                  "pruned_accuracy": pruned, "trace_kept_by_rank": problem.trace_kept}
    dataset = f"npz:{os.path.basename(args.data_npz)}" if args.data_npz else args.dataset
    stem = f"mogp_{dataset.replace(':', '_')}_{args.prior}_n{n}_s{args.seed}"
    idata = az.from_numpyro(mcmc)
    out = os.path.join(args.out, stem + ".nc")
    os.makedirs(args.out, exist_ok=True)
    with atomic_path(out) as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")
    if active is not None:
        atomic_save_npz(os.path.join(args.out, stem + "_features.npz"), weights=weights,
                        lambda_median=active["lambda_median"])
    return {"spec": args.spec, "dataset": dataset, "prior": args.prior, "n_train": n,
            "n_test": int(split.x_test.shape[0]),
            "settings": {"num_jumps": num_jumps, "rank": args.rank, "depth": depth, "drift": args.drift,
                         "num_warmup": args.num_warmup, "num_samples": args.num_samples,
                         "num_chains": args.num_chains, "map_steps": args.map_steps,
                         "max_tree_depth": args.max_tree_depth},
            "results": {"mogp": mogp, "nngp": nngp}, "diagnostics": diagnostics, "active_features": active,
            "inference_data": out}


def format_text(result: dict) -> str:
    r = result["results"]
    d = result["diagnostics"]
    lines = [f"{result['dataset']} {result['prior']}: {result['n_train']} train / {result['n_test']} test"]
    for name in ("mogp", "nngp"):
        m = r[name]
        lines.append(f"  {name:5s} accuracy {m['accuracy']:.4f}  nll {m['nll']:.4f}  nll_class {m['nll_class']:.4f}"
                     f"  ece {m['ece']:.4f}  ({m['seconds']:.1f} s)")
    lines.append(f"  r_hat_max {d['r_hat_max']}  ess_bulk_min {d['ess_bulk_min']:.1f}  divergences {d['divergences']}")
    pc = d["per_chain"]
    lines.append("  per chain: log-likelihood " + ", ".join(f"{v:.1f}" for v in pc["log_likelihood_mean"])
                 + "; accuracy " + ", ".join(f"{v:.3f}" for v in pc["accuracy"]))
    if result["active_features"]:
        a = result["active_features"]
        lines.append(f"  active features {a['active']} / {a['num_jumps']}; pruned accuracy {a['pruned_accuracy']}")
    lines.append(f"  posterior: {result['inference_data']}")
    return "\n".join(lines)
