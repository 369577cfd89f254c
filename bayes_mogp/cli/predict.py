"""``bayes-mogp predict RUN [--data-npz FILE | --data-csv FILE [--target COL]]``: predict new inputs from any
saved run (MoGP, NNGP, BNN).

Loads the run with :func:`bayes_mogp.load`, predicts the inputs of ``FILE`` (or the run's own test part
where it keeps one), writes ``RUN/predictions_<name>.npz`` (mean, variance, 90% interval, class
probabilities...) and, where ``FILE`` has targets, prints the posterior's ``evaluate`` (regression
``n, rmse, nll, coverage_90``; classification ``n, accuracy, nll`` (categorical), ``ece`` and model extras such as
the pruning curve).

Inputs: ``--data-npz FILE`` with ``x_test`` (and ``y_test`` or ``labels_test`` to score), or ``--data-csv FILE``
with a header row, read as by the other commands' ``--data-csv`` (:func:`bayes_mogp.data.load_csv`'s reader):
every column is a feature, in the order of the training inputs, except the one ``--target COL`` names, which
is scored (real targets for a regression run; for a classification run the integer labels ``0..C-1`` the run
was fitted with, since a run keeps no class names).  A file whose number of feature columns differs from the
run's training inputs is refused in one line naming both.
"""

from __future__ import annotations

from pathlib import Path

from . import _common

NAME = "predict"
HELP = "predict new inputs (.npz or CSV) from a saved run (any kind); scores where the file has targets"


def add_arguments(parser):
    parser.add_argument("run", metavar="RUN", help="run folder written by `mogp --out`, `fit --out`, ...")
    parser.add_argument("--data-npz", default=None, metavar="FILE",
                        help=".npz with x_test (and y_test or labels_test to score); default: the run's test part")
    parser.add_argument("--data-csv", default=None, metavar="FILE",
                        help="CSV with a header row: the feature columns in the training order (and --target)")
    parser.add_argument("--target", default=None, metavar="COL",
                        help="target column of --data-csv, scored (classification: integer labels 0..C-1)")
    parser.add_argument("--name", default=None, help="predictions_<name>.npz (default: the file's stem, or 'test')")


def _check_columns(x, post, run: str, source: str, *, csv: bool, target) -> None:
    """The file's inputs have the run's number of input columns, or a one-line error naming both."""
    if x.shape[1] == post.input_dim:
        return
    what = "feature column(s)" if csv else "columns in x_test"
    hint = ""
    if csv and target is None and x.shape[1] == post.input_dim + 1:
        hint = "; if one column is the target, name it with --target COL"
    raise _common.UsageError(f"{source}: {x.shape[1]} {what}, but the {post.kind} run {run} was fitted "
                             f"on {post.input_dim} input column(s){hint}")


def _check_labels(targets, post, source: str) -> None:
    """Class labels within the run's classes ``0..C-1``."""
    if post.task != "classification" or targets is None or not len(targets):
        return
    c = getattr(post, "num_classes", None)
    if c is not None and int(targets.max()) >= int(c):
        raise _common.UsageError(f"{source}: label {int(targets.max())} is out of range: the run has {c} classes "
                                 f"(labels 0..{int(c) - 1})")


def run(args) -> dict:
    import bayes_mogp

    from ..data import load_inputs
    from ..io import atomic_save_npz

    if args.data_npz and args.data_csv:
        raise _common.UsageError("give one of --data-npz and --data-csv")
    if args.target and not args.data_csv:
        raise _common.UsageError("--target goes with --data-csv")
    post = bayes_mogp.load(args.run)
    if args.data_npz:
        arrays = load_inputs(args.data_npz)
        x = arrays["x_test"]
        targets = arrays.get("labels_test") if post.task == "classification" else arrays.get("y_test")
        if targets is None and ("labels_test" in arrays or "y_test" in arrays):
            have = "labels_test" if "labels_test" in arrays else "y_test"
            raise _common.UsageError(f"{args.data_npz}: holds {have}, but {args.run} is a {post.task} run")
        _check_columns(x, post, args.run, args.data_npz, csv=False, target=None)
        _check_labels(targets, post, args.data_npz)
        name = args.name or Path(args.data_npz).stem
    elif args.data_csv:
        from ..data import load_csv_inputs

        x, targets = load_csv_inputs(args.data_csv, target=args.target, task=post.task)
        _check_columns(x, post, args.run, args.data_csv, csv=True, target=args.target)
        _check_labels(targets, post, args.data_csv)
        name = args.name or Path(args.data_csv).stem
    else:
        test = getattr(post, "test_data", None)
        if test is None:
            raise _common.UsageError(f"{args.run}: this run keeps no test data; give --data-npz FILE with x_test "
                                     f"or --data-csv FILE")
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
