"""``bayes-mogp report DIR``: ArviZ diagnostics, DIR/report.html (PNGs embedded) and DIR/summary.json."""

from __future__ import annotations

from pathlib import Path

NAME = "report"
HELP = "diagnose a fitted BNN: R-hat, ESS, divergences, BFMI, LOO/WAIC, plots -> DIR/report.html, summary.json"


def add_arguments(parser):
    parser.add_argument("dir", help="run directory written by `bayes-mogp fit`")


def run(args) -> dict:
    from ..bnn.pipeline import load_run, predict
    from ..io import read_json
    from ..report import write_report

    out = Path(args.dir)
    _, idata, _ = load_run(out)
    pred = read_json(out / "predictions.json") if (out / "predictions.json").exists() else predict(out)
    fit = read_json(out / "fit.json")
    extra = {"accuracy": pred["accuracy"], "nll": pred["nll"], "ece": pred["ece"], "seconds": fit["seconds"],
             "pruning": pred["pruning"], "prior": fit["prior"], "backend": fit.get("backend")}
    return write_report(idata, out, extra=extra, title=f"BNN fit: {fit['prior']} prior")


def format_text(result) -> str:
    keys = ("r_hat_max", "ess_bulk_min", "divergences", "accuracy", "nll", "seconds", "ess_per_second")
    return "\n".join(f"{k}: {result[k]}" for k in keys)
