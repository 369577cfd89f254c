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

from ..io import to_jsonable

__all__ = ["UsageError", "OneLineArgumentParser", "add_common_arguments", "emit", "log", "progress"]


class UsageError(Exception):
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


def log(message: str) -> None:
    """A log line on stderr (never on stdout, which ``--json`` reserves for the result)."""
    print(message, file=sys.stderr, flush=True)


def progress(iterable, *, total=None, desc: str | None = None, disable: bool = False):
    """A tqdm progress bar on stderr."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, disable=disable, leave=False)


def emit(result: dict, as_json: bool, format_text=None) -> None:
    """Print the result: one JSON object with ``--json``, otherwise the command's text rendering."""
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(result)) + "\n")
    elif format_text is not None:
        sys.stdout.write(format_text(result).rstrip("\n") + "\n")
    else:
        sys.stdout.write(json.dumps(to_jsonable(result), indent=2) + "\n")
    sys.stdout.flush()
