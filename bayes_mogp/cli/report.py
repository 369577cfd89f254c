"""``bayes-mogp report RUN``: diagnostics of any run folder -> RUN/report.html (PNGs embedded), RUN/summary.json."""

from __future__ import annotations

NAME = "report"
HELP = "diagnose a run (any model): R-hat, ESS, divergences, BFMI, LOO/WAIC, plots -> RUN/report.html, summary.json"


def add_arguments(parser):
    parser.add_argument("dir", help="run folder written by `bayes-mogp fit` (or any other model's command)")


def run(args) -> dict:
    from ..report import report_run

    return report_run(args.dir)


def format_text(result) -> str:
    keys = [k for k in ("kind", "method", "r_hat_max", "ess_bulk_min", "divergences", "accuracy", "nll", "ece",
                        "rmse", "coverage_90", "seconds", "ess_per_second", "note") if result.get(k) is not None]
    return "\n".join(f"{k}: {result[k]}" for k in keys)
