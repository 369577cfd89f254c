"""``bayes-mogp table1``: measure every column of Table 1 of seed 000 from sampled networks."""

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


def run(args) -> dict:
    import time

    import jax

    from ..table1 import run_table1
    from ._common import progress

    cfg = dict(QUICK if args.quick else DEFAULT)
    if args.widths is not None:
        cfg["widths"] = args.widths
    if args.num_networks is not None:
        cfg["num_networks"] = args.num_networks
    t0 = time.perf_counter()
    result = run_table1(jax.random.PRNGKey(args.seed), cfg["widths"], cfg["num_networks"], kappa=args.kappa,
                        progress=lambda it: progress(it, desc="table1 models"))
    result["seconds"] = time.perf_counter() - t0
    return result


def format_text(result) -> str:
    cols = ["model", "limit", "dependent_outputs", "tail_Z", "tail_W", "active_nodes_mean", "max_W_to_zero",
            "ordered_W2_decay", "compressible", "agrees_with_paper"]
    heads = ["model", "limit", "dep. outputs", "tail Z", "tail W", "active nodes", "max|W|->0", "ordered W^2",
             "compressible", "agrees"]
    rows = []
    for r in result["rows"]:
        vals = []
        for c in cols:
            v = r[c]
            vals.append("inf" if (c == "active_nodes_mean" and v is None) else
                        (f"{v:.2f}" if isinstance(v, float) else ("yes" if v is True else "no" if v is False else str(v))))
        rows.append(vals)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    out = [line(heads), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append("")
    out.append("measured (largest width): spearman|Z1|,|Z2|  Hill(Z)  Hill(W)  kurtosis(Z)  pruning error by width")
    for r in result["rows"]:
        m = r["measured"]
        errs = ", ".join(f"{w['pruning_error']:.2g}" for w in m["per_width"])
        out.append(f"  {r['model']:<4} {m['spearman_abs_Z']:+.3f}  {m['hill_Z']:.2f}  {m['hill_W']:.2f}  "
                   f"{m['kurtosis_Z']:.3g}  [{errs}]")
    out.append(f"widths {result['widths']}, {result['num_networks']} networks each, kappa {result['kappa']}, "
               f"{result['seconds']:.1f} s")
    return "\n".join(out)
