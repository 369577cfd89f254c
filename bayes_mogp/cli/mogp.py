"""``bayes-mogp mogp``: fit the MoGP (posterior over random kernels) and the NNGP on the same data, side by side.

A thin layer over :func:`bayes_mogp.mogp.comparison.compare`: flags and an optional spec
(``models/mogp_*.toml``) resolve the settings, the size check refuses what cannot finish, the posterior is
saved as a run folder (``--out``, readable by ``bayes-mogp predict RUN`` and ``bayes_mogp.load``) with the
printed result in ``RUN/results.json``.
"""

from __future__ import annotations

import os

from . import _common

NAME = "mogp"
HELP = ("MoGP regression/classification (posterior over random kernels by NUTS, SMC or parallel tempering) vs the "
        "NNGP, on any data")

# Data-size defaults of the built-in data sets; the model and inference defaults are the library's.
DATA_DEFAULTS = {"dataset": "mnist", "n_train": 1000, "n_test": 1000, "source": None}
MODEL_KEYS = ("prior", "prior_hyper", "num_jumps", "rank", "depth", "drift", "activation", "w_var", "b_var",
              "noise_floor")
INFERENCE_KEYS = ("map_steps", "num_warmup", "num_samples", "max_tree_depth", "warmup_tree_depth",
                  "num_chains", "target_accept_prob", "chain_method", "chain_selection", "dense_mass", "sampler",
                  "smc_particles", "smc_target_ess", "smc_moves", "smc_leapfrog", "pt_temperatures", "pt_beta_min",
                  "pt_leapfrog", "rotation_dtype")
# Spec table -> keys it may hold (TOML names are the flag names with "_" for "-").
SPEC_KEYS = {"model": MODEL_KEYS, "data": tuple(DATA_DEFAULTS), "inference": INFERENCE_KEYS}
QUICK = {"map_steps": 300, "num_warmup": 30, "num_samples": 30, "smc_particles": 16, "smc_moves": 2, "smc_leapfrog": 5,
         "pt_temperatures": 4, "pt_leapfrog": 5}


def add_arguments(parser) -> None:
    from ..mogp import MoGPSettings
    from ..mogp.likelihood import ROTATION_DTYPES
    from ..mogp.model import CHAIN_METHODS, CHAIN_SELECTIONS, SAMPLERS
    from ..mogp.selection import CRITERIA

    d = MoGPSettings().to_dict()
    parser.add_argument("spec", nargs="?", default=None,
                        help="optional model spec (models/mogp_*.toml, by name or path); flags override it")
    _common.add_data_arguments(parser)
    parser.add_argument("--n-train", type=int, default=None, help="built-in data: training images (default 1000)")
    parser.add_argument("--n-test", type=int, default=None, help="built-in data: test images (default 1000)")
    parser.add_argument("--prior", default=None,
                        help=f"per-node variance prior (bayes_mogp.priors names; default {d['prior']})")
    parser.add_argument("--num-jumps", "-J", type=int, default=None,
                        help=f"largest jumps kept, J >= 1 (default {d['num_jumps']})")
    parser.add_argument("--rank", type=int, default=None,
                        help="rank of the feature basis (default: min(d, n, 100) at depth 1, min(n, 32) deeper)")
    parser.add_argument("--depth", type=int, default=None,
                        help=f"hidden layers of the base kernel; the last one's features are learned "
                             f"(default {d['depth']})")
    parser.add_argument("--activation", default=None, help=f"relu, erf, abs, identity (default {d['activation']})")
    parser.add_argument("--w-var", type=float, default=None, help=f"weight variance (default {d['w_var']})")
    parser.add_argument("--b-var", type=float, default=None,
                        help="bias variance of the features (default 1 for standardised inputs, 0 for images)")
    parser.add_argument("--drift", choices=("prior", "free"), default=None,
                        help=f"drift a from the prior's limit, or free with a half-normal prior (default {d['drift']})")
    parser.add_argument("--noise-floor", type=float, default=None,
                        help="lower bound added to the noise variance, model units (default 0)")
    parser.add_argument("--map-steps", type=int, default=None, help=f"default {d['map_steps']}")
    parser.add_argument("--num-warmup", type=int, default=None, help=f"default {d['num_warmup']}")
    parser.add_argument("--num-samples", type=int, default=None, help=f"default {d['num_samples']}")
    parser.add_argument("--max-tree-depth", type=int, default=None,
                        help=f"NUTS tree depth cap (default {d['max_tree_depth']})")
    parser.add_argument("--warmup-tree-depth", type=int, default=None,
                        help="NUTS tree depth cap during warmup only, above or below --max-tree-depth (default: "
                             "--max-tree-depth; 5 halves a large fit's warmup but explores less)")
    parser.add_argument("--num-chains", type=int, default=None, help=f"default {d['num_chains']}")
    parser.add_argument("--chain-method", choices=CHAIN_METHODS, default=None,
                        help=f"chains in one program or one after the other (default {d['chain_method']})")
    parser.add_argument("--chain-selection", choices=CHAIN_SELECTIONS, default=None,
                        help=f"NUTS: best: after the warmup every chain continues from the chain with the highest "
                             f"mean log density over the warmup's last iterations (the chains then sample one mode; "
                             f"each chain's warmup log density is reported); none: each chain from its own "
                             f"(default {d['chain_selection']})")
    parser.add_argument("--sampler", choices=SAMPLERS, default=None,
                        help=f"nuts: MAP start then NUTS; smc: adaptive tempered SMC from the prior, --num-chains "
                             f"independent runs; pt: MAP start then parallel tempering, --num-chains chains of "
                             f"--pt-temperatures replicas (default {d['sampler']})")
    parser.add_argument("--smc-particles", type=int, default=None,
                        help=f"SMC: particles per run (default {d['smc_particles']})")
    parser.add_argument("--smc-target-ess", type=float, default=None,
                        help=f"SMC: relative ESS each tempering step keeps, in (0, 1) (default {d['smc_target_ess']})")
    parser.add_argument("--smc-moves", type=int, default=None,
                        help=f"SMC: HMC moves per tempering step (default {d['smc_moves']})")
    parser.add_argument("--smc-leapfrog", type=int, default=None,
                        help=f"SMC: leapfrog steps per HMC move (default {d['smc_leapfrog']})")
    parser.add_argument("--pt-temperatures", type=int, default=None,
                        help=f"parallel tempering: temperatures per chain (default {d['pt_temperatures']})")
    parser.add_argument("--pt-beta-min", type=float, default=None,
                        help=f"parallel tempering: the hottest replica's power of the likelihood, in (0, 1) "
                             f"(default {d['pt_beta_min']})")
    parser.add_argument("--pt-leapfrog", type=int, default=None,
                        help=f"parallel tempering: leapfrog steps per HMC move (default {d['pt_leapfrog']})")
    parser.add_argument("--rotation-dtype", choices=ROTATION_DTYPES, default=None,
                        help=f"precision of the likelihood's rotation of the features into the base kernel's "
                             f"eigenbasis, its one O(n^2 J) step; all else is float64 (default {d['rotation_dtype']})")
    parser.add_argument("--out", default=None, metavar="RUN",
                        help="run folder for the posterior (default runs/mogp_<data>_<prior>_s<seed>)")
    parser.add_argument("--max-minutes", type=float, default=60.0,
                        help="refuse a run whose estimated time exceeds this (default 60)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no NumPyro progress bar on stderr")
    parser.add_argument("--select", choices=CRITERIA + ("off",), default=None,
                        help="choose depth, rank and J on the training data before the fit (bayes_mogp.mogp."
                             "select_settings): cv (3-fold cross-validation of the MAP start), loo (closed-form "
                             "LOO at the MAP), off; a flag given (--depth, --rank, -J) stays fixed (default: cv for "
                             "a built-in --dataset with no spec, off otherwise)")
    parser.add_argument("--quick", action="store_true", help="tiny inference settings, for smoke tests")


def resolve_settings(args) -> tuple[dict, dict]:
    """(model and inference settings, data settings): flags over the spec (if one is named) over the defaults."""
    from_spec = {}
    if args.spec is not None:
        from ..specs import load_spec

        spec = load_spec(args.spec)
        kind, path = _common.spec_kind(spec), _common.shown_path(spec["_path"])
        if kind == "bnn":
            raise _common.UsageError(f"{path} is a BNN spec: run `bayes-mogp fit {args.spec} --out RUN` (`mogp` "
                                     f"takes MoGP specs: models/mogp_*.toml)")
        if kind == "table1":
            raise _common.UsageError(f"{path} is a Table 1 spec, read by `bayes-mogp table1` (`mogp` takes MoGP "
                                     f"specs: models/mogp_*.toml)")
        unknown = sorted(set(spec) - set(SPEC_KEYS) - {"name", "_path"})
        if unknown:
            raise _common.UsageError(f"spec {spec['_path']}: unknown table(s) or key(s) {unknown}; allowed tables: "
                                     f"{', '.join(SPEC_KEYS)}")
        for table, keys in SPEC_KEYS.items():
            section = spec.get(table, {})
            unknown = sorted(set(section) - set(keys))
            if unknown:
                raise _common.UsageError(f"spec {spec['_path']}: [{table}] has unknown key(s) {unknown}; "
                                         f"allowed: {', '.join(keys)}")
            from_spec.update(section)
    settings = {k: getattr(args, k, None) for k in MODEL_KEYS + INFERENCE_KEYS}
    settings = {k: (v if v is not None else from_spec.get(k)) for k, v in settings.items()}
    settings = {k: v for k, v in settings.items() if v is not None}
    if args.quick:
        settings.update({k: min(v, settings.get(k, v)) for k, v in QUICK.items()})
    data = {k: getattr(args, k, None) if getattr(args, k, None) is not None else from_spec.get(k, default)
            for k, default in DATA_DEFAULTS.items()}
    return settings, data


def run(args) -> dict:
    import jax

    from ..io import atomic_write_json
    from ..mogp.comparison import compare, estimate_cost
    from ..mogp import MoGPSettings
    from ..mogp.selection import select_settings, selection_cost

    overrides, data_settings = resolve_settings(args)
    settings = MoGPSettings().replace(**overrides)
    args.source = data_settings["source"]
    data = _common.dataset_from_args(args, n_train=data_settings["n_train"], n_test=data_settings["n_test"],
                                     dataset=data_settings["dataset"])
    select = args.select or ("cv" if args.spec is None and not (args.data_npz or args.data_csv) else "off")
    grid = _selection_grid(args) if select != "off" else None
    estimate = estimate_cost(data.n_train, data.n_test, data.num_outputs, settings,
                             classification=data.task == "classification")
    if grid is not None:
        extra = selection_cost(data.n_train, data.num_outputs, settings, grid=grid, criterion=select)
        estimate = {**estimate, "seconds": estimate["seconds"] + extra}
    _common.check_budget("mogp", estimate, max_minutes=args.max_minutes)
    key = jax.random.key(args.seed)
    selection = None
    if grid is not None:
        # a key of its own: the fit's key is the seed's whether or not settings were selected, so the selected
        # settings given as flags reproduce the run
        k_sel = jax.random.fold_in(key, 1)
        selection = select_settings(k_sel, data, settings=settings, criterion=select, log=_common.log, **grid)
        settings = selection.settings
        _common.log(f"mogp: selected depth {settings.depth}, rank {settings.rank}, J {settings.num_jumps} "
                    f"({select} on the training data)")
    out = args.out or os.path.join("runs", f"mogp_{data.name.replace(':', '_')}_{settings.prior_name}"
                                           f"_s{args.seed}")
    comp = compare(key, data, settings, log=_common.log, progress=args.progress)
    comp.mogp.save(out)
    result = {"spec": args.spec, **comp.result, "run": out, "estimated_seconds": estimate["seconds"]}
    if selection is not None:
        result["selection"] = selection.to_dict()
    if comp.mogp.settings.depth == 1 and result["active_features"] is not None:
        from ..io import atomic_save_npz

        path = os.path.join(out, "feature_directions.npz")
        atomic_save_npz(path, **comp.mogp.feature_directions())
        result["active_features"]["directions_file"] = path
    atomic_write_json(os.path.join(out, "results.json"), result)
    return result


def _selection_grid(args) -> dict:
    """The candidates of ``--select``: the library's default grid, with each flag the user gave held fixed."""
    from ..mogp.selection import DEFAULT_DEPTHS, DEFAULT_RANKS

    grid = {"depths": DEFAULT_DEPTHS, "ranks": DEFAULT_RANKS}
    if args.depth is not None:
        grid["depths"] = (args.depth,)
    if args.rank is not None:
        grid["ranks"] = (args.rank,)
    if args.num_jumps is not None:
        grid["num_jumps"] = (args.num_jumps,)
    return grid


def format_text(result: dict) -> str:
    r, d = result["results"], result["diagnostics"]
    lines = [f"{result['dataset']} ({result['task']}) {result['prior']}: {result['n_train']} train / "
             f"{result['n_test']} test"]
    keys = ("accuracy", "nll", "nll_gaussian", "ece") if result["task"] == "classification" else ("rmse", "nll",
                                                                                              "coverage_90")
    for name in ("mogp", "nngp"):
        m = r[name]
        lines.append(f"  {name:5s} " + "  ".join(f"{k} {m[k]:.4f}" for k in keys) + f"  ({m['seconds']:.1f} s)")
    lines.append(f"  r_hat_max {d['r_hat_max']}  ess_bulk_min {d['ess_bulk_min']:.1f}  divergences {d['divergences']}")
    if d.get("r_hat_by_quantity"):
        lines.append("  R-hat by quantity: " + ", ".join(f"{k} {v:.3f}" for k, v in d["r_hat_by_quantity"].items())
                     + (f"; raw scales and jumps (not identified, not targeted) {d['r_hat_unidentified_max']:.3f}"
                        if d.get("r_hat_unidentified_max") is not None else ""))
    if "smc" in d:
        smc = d["smc"]
        lines.append(f"  SMC: log evidence {smc['log_evidence']:.2f} +- {smc['log_evidence_se']:.2f} (runs "
                     + ", ".join(f"{v:.1f}" for v in smc["per_run"]) + "); tempering steps "
                     + ", ".join(str(v) for v in smc["tempering_steps"]) + "; particle ESS "
                     + ", ".join(f"{v:.2f}" for v in smc["particle_ess"]))
    if "pt" in d:
        pt = d["pt"]
        lines.append(f"  parallel tempering: {len(pt['betas'])} temperatures down to {pt['betas'][-1]:.3g}; swap "
                     f"acceptance {min(pt['swap_acceptance'], default=float('nan')):.2f}-"
                     f"{max(pt['swap_acceptance'], default=float('nan')):.2f}; round trips per chain "
                     + ", ".join(str(v) for v in pt["round_trips"]))
    if "chain_selection" in d:
        sel = d["chain_selection"]
        lines.append(f"  chains continued from chain {sel['selected']}: mean log density over the last {sel['window']} "
                     f"warmup iterations " + ", ".join(f"{v:.1f}" for v in sel["warmup_log_density"]))
    pc = d["per_chain"]
    metric = "accuracy" if result["task"] == "classification" else "rmse"
    lines.append("  per chain: log-likelihood " + ", ".join(f"{v:.1f}" for v in pc["log_likelihood_mean"])
                 + f"; {metric} " + ", ".join(f"{v:.3f}" for v in pc.get(metric, [])))
    if result["active_features"]:
        a = result["active_features"]
        pruned = r["mogp"].get(f"pruned_{metric}")
        lines.append(f"  active features {a['active']} / {a['num_jumps']}; pruned {metric} {pruned}")
    if "selection" in result:
        c = result["selection"]["chosen"]
        lines.append(f"  selected on the training data ({result['selection']['criterion']}): depth {c['depth']}, "
                     f"rank {c['rank']}, J {c['num_jumps']}")
    lines.append(f"  run folder: {result['run']}")
    return "\n".join(lines)
