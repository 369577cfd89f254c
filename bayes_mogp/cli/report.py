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


def format_text(result, *, color: bool | None = None) -> str:
    """The summary for a terminal; an R-hat above the rule's threshold is marked (and red where ``color``; None:
    when stdout is a terminal)."""
    import sys

    from ..report import R_HAT_THRESHOLD, _above

    color = sys.stdout.isatty() if color is None else color
    keys = [k for k in ("kind", "method", "r_hat_max", "unidentified_r_hat_max", "ess_bulk_min", "divergences",
                        "accuracy", "nll", "ece", "rmse", "coverage_90", "seconds", "ess_per_second", "diagnostic_rule",
                        "note")
            if result.get(k) is not None]

    def show(k):
        v = result[k]
        if k == "seconds":
            return format_seconds(v)
        if k == "ess_per_second":
            return f"{float(v):.3g}"
        if k == "unidentified_r_hat_max":
            return f"{float(v):.4f} ({', '.join(result.get('unidentified', []))}: not identified, reported, not targeted)"
        if k == "r_hat_max" and _above(v):
            text = f"{float(v):.4f} (above {R_HAT_THRESHOLD}: the chains disagree)"
            return f"\033[31m{text}\033[0m" if color else text
        return v

    return "\n".join(f"{k}: {show(k)}" for k in keys)
