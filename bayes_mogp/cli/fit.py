"""``bayes-mogp fit SPEC [--data-npz FILE | --data-csv FILE --target COL] --out RUN``: a BNN posterior.

NUTS (checkpointed, ``--resume`` continues), SVI, a minibatch method (SGHMC, SGLD, cyclical SGLD, MAP:
checkpointed at epoch boundaries, a progress bar per epoch, ``--resume`` continues) or MILE (a deep ensemble,
then MCLMC from each member; checkpointed after each member) on a spec
(``models/bnn_*.toml``, ``models/paper_*.toml``), on the data set the spec names (MNIST / Fashion-MNIST) or
on the user's own data; writes the run folder RUN (``manifest.json``, ``arrays.npz``, ``posterior.nc``)
that ``predict`` and ``report`` read.  Before a minibatch run starts, its time is estimated from the
network's size and refused above ``--max-minutes`` (MILE's too).
"""

from __future__ import annotations

import os

from ._common import UsageError, add_data_arguments, dataset_from_args, log

NAME = "fit"
HELP = ("fit a BNN spec by NUTS, SVI, SGHMC, SGLD, cyclical SGLD, MAP or MILE on MNIST / Fashion-MNIST or your own "
        "data (.npz / CSV); checkpointed, --resume continues")
METHODS = ("nuts", "svi", "sghmc", "sgld", "csgld", "map", "mile")


def add_arguments(parser):
    parser.add_argument("spec", nargs="?", help="model spec name or path (models/bnn_*.toml); omit with --resume")
    parser.add_argument("--out", required=True, help="run folder to write")
    add_data_arguments(parser, builtin=False)  # --data-npz / --data-csv --target [--test-csv] [--task]
    parser.add_argument("--resume", action="store_true", help="continue the NUTS checkpoint in --out")
    parser.add_argument("--method", default=None, metavar="|".join(METHODS),
                        help="default: the spec's (nuts unless the spec says otherwise)")
    parser.add_argument("--epochs", type=int, default=None, help="minibatch methods: passes over the data")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatch methods: points per minibatch")
    parser.add_argument("--widths", type=int, nargs="+", default=None, help="hidden widths (default: the spec's)")
    parser.add_argument("--noise", default=None, metavar="gaussian|gaussian_threefry|rademacher",
                        help="SG-MCMC noise (default: the spec's, gaussian)")
    parser.add_argument("--no-jacobian", dest="jacobian", action="store_const", const=False, default=None,
                        help="minibatch methods: the prior of each node variance taken as a density of its log, as "
                             "in the code of Lee et al. 2023 (default: the spec's, with the Jacobian)")
    parser.add_argument("--input-transform", default=None, metavar="per_image|unit",
                        help="built-in images: per-image standardisation or pixels / 255 (default: the spec's)")
    parser.add_argument("--max-minutes", type=float, default=120.0,
                        help="refuse a minibatch or MILE run estimated to take longer (default 120)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="draws per chain (total, also after --resume), or draws from the SVI guide")
    parser.add_argument("--num-warmup", type=int, default=None)
    parser.add_argument("--num-chains", type=int, default=None)
    parser.add_argument("--num-steps", type=int, default=None, help="SVI optimisation steps")
    parser.add_argument("--members", type=int, default=None, help="MILE: ensemble members (default: the spec's, 8)")
    parser.add_argument("--sampling-steps", type=int, default=None,
                        help="MILE: MCLMC steps per member (one draw kept every thin; default: the spec's, 5000)")
    parser.add_argument("--checkpoint-every", type=int, default=None,
                        help="draws per chain (NUTS) or epochs (minibatch methods) between checkpoints")
    parser.add_argument("--dtype", choices=("float32", "float64"), default=None, help="default: the spec's (float32)")
    parser.add_argument("--n-train", type=int, default=None, help="training images of a built-in data set")
    parser.add_argument("--quick", action="store_true", help="tiny run (also when BAYES_MOGP_QUICK=1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress on stderr (default: one line per checkpoint, a bar per epoch)")


def run(args) -> dict:
    import jax

    from ..bnn import fit, resume
    from ..validation import check_choice, check_int

    progress = log if args.progress else None
    if args.method is not None:
        check_choice("method", args.method, METHODS)
    for name in ("epochs", "batch_size", "num_samples", "num_warmup", "num_chains", "num_steps", "checkpoint_every",
                 "members", "sampling_steps"):
        if getattr(args, name) is not None:
            check_int(name, getattr(args, name), minimum=1)
    for w in args.widths or ():
        check_int("width", w, minimum=1)
    own_data = args.data_npz or args.data_csv or args.target or args.test_csv
    if args.input_transform is not None:
        check_choice("input_transform", args.input_transform, ("per_image", "unit"))
        if own_data:
            raise UsageError("--input-transform applies to the built-in images; own data are standardised")
    if args.resume:
        if args.spec or own_data:
            raise UsageError("--resume continues the run in --out with its own spec and data; give only --out "
                             "(and --num-samples)")
        log(f"fit: resuming {args.out}")
        post = resume(args.out, num_samples=args.num_samples, log=None, progress=args.progress)
        return {"out": args.out, **post.summary()}
    if args.spec is None:
        raise UsageError("give a model spec (e.g. models/bnn_horseshoe.toml) or --resume")
    _check_bnn_spec(args.spec)
    if (args.target or args.test_csv) and not args.data_csv:
        raise UsageError("--target and --test-csv go with --data-csv")
    data = dataset_from_args(args) if own_data else None  # None: the data set the spec names
    quick = args.quick or os.environ.get("BAYES_MOGP_QUICK") == "1"
    over = dict(method=args.method, num_samples=args.num_samples, num_warmup=args.num_warmup,
                num_chains=args.num_chains, num_steps=args.num_steps, checkpoint_every=args.checkpoint_every,
                dtype=args.dtype, num_epochs=args.epochs, batch_size=args.batch_size, noise=args.noise,
                jacobian=args.jacobian, input_transform=args.input_transform, num_members=args.members,
                sampling_steps=args.sampling_steps)
    log(f"fit: {args.spec}{' on ' + (args.data_npz or args.data_csv) if data is not None else ''} -> {args.out}")
    post = fit(jax.random.PRNGKey(args.seed), args.spec, data, out=args.out, log=progress, n_train=args.n_train,
               data_seed=args.seed, quick=quick, widths=args.widths, progress=args.progress,
               max_minutes=args.max_minutes, **over)
    return {"out": args.out, **post.summary()}


def _check_bnn_spec(name_or_path) -> None:
    """Refuse, in one line naming the right command, a spec written for another command (a MoGP or Table 1 spec)
    instead of listing its keys as unknown BNN keys."""
    from ..specs import load_spec
    from ._common import shown_path, spec_kind

    spec = load_spec(name_or_path)
    kind, path = spec_kind(spec), shown_path(spec["_path"])
    if kind == "mogp":
        raise UsageError(f"{path} is a MoGP spec: run `bayes-mogp mogp {name_or_path}` (`fit` takes BNN specs: "
                         f"models/bnn_*.toml, models/paper_*.toml)")
    if kind == "table1":
        raise UsageError(f"{path} is a Table 1 spec, read by `bayes-mogp table1` (`fit` takes BNN specs: "
                         f"models/bnn_*.toml, models/paper_*.toml)")


def format_text(result) -> str:
    if result["method"] == "nuts":
        what = f"{result['draws']} draws x {result['chains']} chains"
    elif result["method"] == "mile":
        what = (f"MILE, {result['members']} members x {result['draws']} draws, "
                f"{(result.get('gradient_evaluations') or {}).get('total', 0):,} gradient evaluations")
    elif result["method"] == "svi":
        what = f"SVI ({result['guide']} guide), {result['draws']} draws"
    else:
        what = (f"{result['method']}, {result['epochs']} epochs ({result['seconds_per_epoch'] or 0:.2f} s each), "
                f"{result['draws']} draws x {result['chains']} chains")
    div = f", {result['divergences']} divergences" if result.get("divergences") is not None else ""
    return (f"{result['prior']} prior, {result['task']} on {result['data']}: {what} in {result['seconds']:.1f} s"
            f"{div} -> {result['out']}")
