"""``bayes-mogp predict RUN [--data-npz FILE]``: predict new inputs from any saved run (MoGP, NNGP, BNN).

Loads the run with :func:`bayes_mogp.load`, predicts ``x_test`` of ``FILE`` (or the run's own test part
where it keeps one), writes ``RUN/predictions_<name>.npz`` (mean, variance, 90% interval, class
probabilities...) and, where ``FILE`` has targets, prints the posterior's ``evaluate`` (regression
``n, rmse, nll, coverage_90``; classification ``n, accuracy, nll`` (categorical), ``ece`` and model extras such as
the pruning curve).
"""

from __future__ import annotations

from pathlib import Path

from . import _common

NAME = "predict"
HELP = "predict new inputs from a saved run (any kind); scores where the file has targets"


def add_arguments(parser):
    parser.add_argument("run", metavar="RUN", help="run folder written by `mogp --out`, `fit --out`, ...")
    parser.add_argument("--data-npz", default=None, metavar="FILE",
                        help=".npz with x_test (and y_test or labels_test to score); default: the run's test part")
    parser.add_argument("--name", default=None, help="predictions_<name>.npz (default: the file's stem, or 'test')")


def run(args) -> dict:
    import bayes_mogp

    from ..data import load_inputs
    from ..io import atomic_save_npz

    post = bayes_mogp.load(args.run)
    if args.data_npz:
        arrays = load_inputs(args.data_npz)
        x = arrays["x_test"]
        targets = arrays.get("labels_test") if post.task == "classification" else arrays.get("y_test")
        if targets is None and ("labels_test" in arrays or "y_test" in arrays):
            have = "labels_test" if "labels_test" in arrays else "y_test"
            raise _common.UsageError(f"{args.data_npz}: holds {have}, but {args.run} is a {post.task} run")
        name = args.name or Path(args.data_npz).stem
    else:
        test = getattr(post, "test_data", None)
        if test is None:
            raise _common.UsageError(f"{args.run}: this run keeps no test data; give --data-npz FILE with x_test")
        x, targets = test
        name = args.name or "test"
    pred = post.predict(x)
    out = Path(args.run) / f"predictions_{name}.npz"
    atomic_save_npz(out, **pred.to_arrays())
    result = {"run": str(args.run), "kind": post.kind, "task": post.task, "n": int(x.shape[0])}
    if targets is not None:
        result.update(post.evaluate(x, targets))
    result["predictions"] = str(out)
    return result


def format_text(result) -> str:
    skip = {"run", "kind", "task", "predictions"}
    lines = [f"{result['kind']} run {result['run']} ({result['task']}): {result['n']} inputs"]
    lines += [f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}" for k, v in result.items() if k not in skip]
    lines.append(f"  predictions: {result['predictions']}")
    return "\n".join(lines)
