"""``bayes-mogp`` entry point: dispatches to one module per command.

Each command module (``bayes_mogp/cli/<name>.py``) follows the protocol documented in
:mod:`bayes_mogp.cli._common`.  Heavy imports live inside each command's ``run`` so that ``--help`` is
fast.  Errors that come from the user (bad flags, bad values, missing or corrupt files) become one
line on stderr and exit code 2; anything else is a bug and keeps its traceback.
Set ``BAYES_MOGP_DEBUG=1`` to see the traceback of a user error too.  Every command keeps XLA's compiled programs in
a persistent cache (:mod:`bayes_mogp.compilation`; ``BAYES_MOGP_COMPILATION_CACHE=off`` to run without it).
"""

from __future__ import annotations

import importlib
import os
import sys

from ..errors import InputError
from ._common import OneLineArgumentParser, add_common_arguments, emit, log

# Order shown in --help.  Every module ``bayes_mogp/cli/<name>.py`` other than ``main`` and the private
# ``_*`` helpers is a command and must be listed here (tests/test_cli.py holds the two sets equal).
COMMANDS = ("table1", "baseline", "mogp", "fit", "predict", "report", "loggauss", "lazy")


def _load_commands():
    """Import every listed command module.  A listed module that does not import is a broken installation,
    so its error propagates rather than the command silently vanishing from ``--help``."""
    return {name: importlib.import_module(f"bayes_mogp.cli.{name}") for name in COMMANDS}


def build_parser():
    parser = OneLineArgumentParser(
        prog="bayes-mogp",
        description="Bayesian neural networks with per-node random variances, and their GP / MoGP limits.",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"bayes-mogp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=OneLineArgumentParser)
    modules = _load_commands()
    for name, module in modules.items():
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP))
        module.add_arguments(p)
        add_common_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the input is wrong: :class:`~bayes_mogp.errors.InputError` (and its subclasses
    ``InputTypeError``, ``RunFolderError``, ``DataError``, ``CheckpointError``, ``UsageError``), any other
    ``ValueError``/``TypeError`` class that bayes_mogp defines, or a missing / unreadable file.  A plain
    ``ValueError``/``TypeError`` (from NumPy, JAX or a bare ``raise``) is a bug."""
    if isinstance(exc, (InputError, FileNotFoundError, IsADirectoryError, PermissionError)):
        return True
    return isinstance(exc, (ValueError, TypeError)) and type(exc).__module__.split(".")[0] == "bayes_mogp"


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "command", None) is None:
        parser.print_help(sys.stderr)
        return 2
    import jax

    # float64 for every Cholesky and log-likelihood the commands compute (numerics.require_x64).
    jax.config.update("jax_enable_x64", True)
    # XLA's persistent compilation cache (bayes_mogp.compilation): a second run of the same shapes compiles nothing
    from ..compilation import configure_from_environment

    configure_from_environment(log)
    module = args._module
    try:
        result = module.run(args)
    except Exception as exc:
        if not _is_user_error(exc):  # anything else is a bug: keep the traceback, say where to report it
            import traceback

            traceback.print_exc()
            sys.stderr.write(f"bayes-mogp {args.command}: internal error (a bug, not your input); please report it "
                             f"with the command line and the traceback above\n")
            return 1
        # a user error (bad flag, setting, file or data): one line, exit 2
        if os.environ.get("BAYES_MOGP_DEBUG"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"bayes-mogp {args.command}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.stderr.write(f"bayes-mogp {args.command}: interrupted\n")
        return 130
    emit(result, args.json, getattr(module, "format_text", None))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
