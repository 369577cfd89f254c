"""``bayes-mogp fit SPEC --out DIR``: NUTS on a BNN spec (models/bnn_*.toml), checkpointed, resumable."""

from __future__ import annotations

import os

from ._common import UsageError, log

NAME = "fit"
HELP = "fit a BNN spec by NUTS (checkpointed; --resume continues); writes DIR/posterior.nc"


def add_arguments(parser):
    parser.add_argument("spec", nargs="?", help="model spec name or path (models/bnn_*.toml); omit with --resume")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    parser.add_argument("--num-samples", type=int, default=None, help="draws per chain (total, after resume)")
    parser.add_argument("--num-warmup", type=int, default=None)
    parser.add_argument("--num-chains", type=int, default=None)
    parser.add_argument("--n-train", type=int, default=None, help="training images (default: the spec's)")
    parser.add_argument("--quick", action="store_true", help="tiny run (also when BAYES_MOGP_QUICK=1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars (default: NumPyro's progress bars and one line per "
                             "checkpoint on stderr)")


def run(args) -> dict:
    from ..bnn.pipeline import fit
    from ..specs import load_spec

    if args.spec is None and not args.resume:
        raise UsageError("give a model spec (e.g. models/bnn_horseshoe.toml) or --resume")
    spec = {} if args.resume else load_spec(args.spec)
    quick = args.quick or os.environ.get("BAYES_MOGP_QUICK") == "1"
    over = dict(num_samples=args.num_samples, num_warmup=args.num_warmup, num_chains=args.num_chains,
                n_train=args.n_train)
    if quick and not args.resume:
        over = {"num_samples": 20, "num_warmup": 20, "num_chains": 2, "n_train": 100, **{k: v for k, v in over.items() if v}}
    log(f"fit: {'resuming ' + args.out if args.resume else args.spec} -> {args.out}")
    return fit(spec, args.out, seed=args.seed, resume=args.resume, progress=args.progress, **over)


def format_text(result) -> str:
    return (f"{result['prior']}: {result['draws']} draws x {result['num_chains']} chains in {result['seconds']:.1f} s, "
            f"{result['divergences']} divergences -> {result['out']}/posterior.nc")
