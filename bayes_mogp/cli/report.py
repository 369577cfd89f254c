"""``bayes-mogp report RUN``: diagnostics of any run folder -> RUN/report.html (PNGs embedded), RUN/summary.json."""

from __future__ import annotations

NAME = "report"
HELP = "diagnose a run (any model): R-hat, ESS, divergences, BFMI, LOO/WAIC, plots -> RUN/report.html, summary.json"


def add_arguments(parser):
    parser.add_argument("dir", help="run folder written by `bayes-mogp fit` (or any other model's command)")


def run(args) -> dict:
    from ..report import report_run

    return report_run(args.dir)


def format_seconds(seconds: float) -> str:
    """A duration for people: 3 significant digits, at most 0.1 s resolution (0.0123 s, 1.84 s, 12.3 s, 1234.6 s)."""
    seconds = float(seconds)
    return f"{seconds:.1f} s" if abs(seconds) >= 10 else f"{seconds:.3g} s"


def format_text(result) -> str:
    keys = [k for k in ("kind", "method", "r_hat_max", "ess_bulk_min", "divergences", "accuracy", "nll", "ece",
                        "rmse", "coverage_90", "seconds", "ess_per_second", "note") if result.get(k) is not None]

    def show(k):
        v = result[k]
        if k == "seconds":
            return format_seconds(v)
        if k == "ess_per_second":
            return f"{float(v):.3g}"
        return v

    return "\n".join(f"{k}: {show(k)}" for k in keys)
