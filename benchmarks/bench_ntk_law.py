"""The empirical NTK at initialisation against the law its infinite-width limit predicts, prior by prior.

For each prior and width: the mean diagonal of the initial empirical NTK of ``--num-inits`` one-hidden-layer
networks (neural-tangents ``empirical_ntk_fn``, the networks ``bayes-mogp lazy`` trains) against
``--num-draws`` draws of the limit law (``bayes_mogp.dynamics.compare_ntk_law``): medians, interquartile range
over median, and in the MoGP regime a two-sample KS test; in the GP regime the limit is a constant and the
finite spread should fall as ``p^-1/2``.

    uv run python benchmarks/bench_ntk_law.py                 # 6 priors x widths 100, 1000 (minutes)
    uv run python benchmarks/bench_ntk_law.py --quick         # horseshoe and iid at width 100
    uv run python benchmarks/bench_ntk_law.py --json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402

from bayes_mogp.dynamics import LazySettings, compare_ntk_law  # noqa: E402

PRIORS = ("iid", "inverse_gamma", "horseshoe", "beta", "bernoulli", "gbfry")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="iid and horseshoe at width 100, 50 networks")
    ap.add_argument("--priors", default=None, help=f"comma-separated (default: {','.join(PRIORS)})")
    ap.add_argument("--widths", default=None, help="comma-separated (default: 100,1000)")
    ap.add_argument("--num-inits", type=int, default=None, help="finite networks per width (default 400)")
    ap.add_argument("--num-draws", type=int, default=4000, help="draws of the limit law")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    priors = args.priors.split(",") if args.priors else (("iid", "horseshoe") if args.quick else PRIORS)
    widths = [int(w) for w in args.widths.split(",")] if args.widths else ([100] if args.quick else [100, 1000])
    num_inits = args.num_inits or (50 if args.quick else 400)
    rows = []
    for i, prior in enumerate(priors):
        for w in widths:
            t0 = time.perf_counter()
            r = compare_ntk_law(jax.random.fold_in(jax.random.key(args.seed), i), prior, w, LazySettings(depth=1),
                                num_inits=num_inits, num_draws=args.num_draws)
            r = {k: v for k, v in r.items() if k not in ("finite", "limit")}
            r["seconds"] = time.perf_counter() - t0
            rows.append(r)
            print(f"{prior:14s} p={w:5d}: median {r['median_finite']:.3f} (limit {r['median_limit']:.3f}), "
                  f"IQR/median {r['iqr_over_median_finite']:.3f} (limit {r['iqr_over_median_limit']:.3f}), "
                  f"KS p {r['ks_pvalue'] if r['ks_pvalue'] is None else round(r['ks_pvalue'], 3)}, "
                  f"{r['seconds']:.1f} s", file=sys.stderr if args.json else sys.stdout, flush=True)
    result = {"rows": rows, "num_inits": num_inits, "num_draws": args.num_draws, "seed": args.seed}
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(result))
    return result


if __name__ == "__main__":
    main()
