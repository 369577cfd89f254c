"""``bayes-mogp predict DIR``: posterior predictive accuracy, NLL, ECE and the pruning curve of a fit."""

from __future__ import annotations

NAME = "predict"
HELP = "test accuracy/NLL/ECE and pruning curve of a fitted BNN; writes DIR/predictions.json"


def add_arguments(parser):
    parser.add_argument("dir", help="run directory written by `bayes-mogp fit`")


def run(args) -> dict:
    from ..bnn.pipeline import predict

    return predict(args.dir)


def format_text(result) -> str:
    lines = [f"accuracy {result['accuracy']:.4f}  nll {result['nll']:.4f}  ece {result['ece']:.4f}  (n={result['n_test']})",
             "pruned fraction -> accuracy:"]
    pr = result["pruning"]
    lines += [f"  {f:.2f} -> {a:.4f}" for f, a in zip(pr["fraction"], pr["accuracy"])]
    return "\n".join(lines)
