"""``bayes-mogp table1``: measure every column of Table 1 of Lee et al. (2023) from sampled networks."""

from __future__ import annotations

NAME = "table1"
HELP = "measure Table 1 (GP/MoGP limit, dependence, tails, active nodes, max|W|, pruning) from sampled networks"

QUICK = {"widths": [30, 300, 1000], "num_networks": 1000}
DEFAULT = {"widths": [30, 300, 3000, 10000], "num_networks": 4000}


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help=f"small version: widths {QUICK['widths']}, "
                        f"{QUICK['num_networks']} networks per width")
    parser.add_argument("--widths", type=int, nargs="+", default=None,
                        help=f"increasing hidden widths (default {DEFAULT['widths']})")
    parser.add_argument("--num-networks", type=int, default=None,
                        help=f"networks sampled per model and width (default {DEFAULT['num_networks']})")
    parser.add_argument("--kappa", type=float, default=0.1, help="fraction of nodes kept when pruning (0, 1]")
    parser.add_argument("--max-minutes", type=float, default=60.0,
                        help="refuse a run whose estimated time exceeds this (default 60; "
                        "bayes_mogp.table1.estimate_cost, checked before any sampling)")


def run(args) -> dict:
    import time

    import jax

    from ..table1 import MODELS, estimate_cost, run_table1
    from ..validation import check_in_interval, check_int
    from ._common import UsageError, log, progress

    cfg = dict(QUICK if args.quick else DEFAULT)
    if args.widths is not None:
        cfg["widths"] = [check_int("--widths", w, minimum=2) for w in args.widths]
        if len(cfg["widths"]) < 2 or sorted(cfg["widths"]) != cfg["widths"]:
            raise UsageError(f"--widths must be at least two increasing integers, got {cfg['widths']}")
    if args.num_networks is not None:
        cfg["num_networks"] = check_int("--num-networks", args.num_networks, minimum=100)
    check_in_interval("--kappa", args.kappa, 0.0, 1.0, low_open=True)
    if not args.max_minutes > 0:
        raise UsageError(f"--max-minutes must be > 0, got {args.max_minutes}")
    est = estimate_cost(cfg["widths"], cfg["num_networks"])
    what = (f"{est['nodes']:.3g} nodes ({len(MODELS)} models x {cfg['num_networks']} networks x widths {cfg['widths']}), about "
            f"{est['seconds'] / 60:.3g} min and {est['bytes'] / 2**30:.3g} GiB")
    if est["seconds"] > 60 * args.max_minutes:
        raise UsageError(f"{what}: over --max-minutes {args.max_minutes:g}; reduce --widths or --num-networks, "
                         "or raise --max-minutes")
    if est["seconds"] > 60:
        log(f"table1: {what} (estimate)")
    t0 = time.perf_counter()
    result = run_table1(jax.random.PRNGKey(args.seed), cfg["widths"], cfg["num_networks"], kappa=args.kappa,
                        progress=lambda it: progress(it, desc="table1 models"))
    result["seconds"] = time.perf_counter() - t0
    return result


def format_text(result) -> str:
    from ..table1 import format_table

    return format_table(result)
