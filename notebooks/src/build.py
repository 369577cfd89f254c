"""Build notebooks/NN_name.ipynb from notebooks/src/NN_name.py (percent format) and execute it.

Cells are separated by ``# %%`` (code) and ``# %% [markdown]`` (markdown, each line starting ``# ``).

    uv run --extra dev python notebooks/src/build.py notebooks/src/05_depth_and_width.py
    uv run --extra dev python notebooks/src/build.py notebooks/src/*_*.py --quick

By default the notebook is executed at full size (``BAYES_MOGP_QUICK`` unset in the kernel) and written
with its outputs to ``notebooks/``: what a user sees on opening it.  ``--quick`` is a fast local check: it
executes in quick mode (``BAYES_MOGP_QUICK=1``) and writes nothing unless ``--out DIR`` is given.
``--no-execute`` only converts.  The build fails (exit 1, and the committed notebook is left as it was)
when an output holds an error, a traceback or warning text (:func:`output_problems`); the test suite
(``tests/test_notebooks.py``, slow pass) executes a copy of every notebook in quick mode with the same check.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat

_CELL = re.compile(r"^# %%(.*)$")
#: text that must not appear in a stream output (stderr warnings, tracebacks)
_BAD_TEXT = re.compile(r"Traceback|Warning|WARNING")
NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent


def parse_percent(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    kind, lines = None, []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if not body:
            return
        if kind == "markdown":
            md = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(md))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(body))

    for line in text.splitlines():
        m = _CELL.match(line)
        if m:
            flush()
            kind = "markdown" if "[markdown]" in m.group(1) else "code"
            lines = []
        else:
            if kind is None:
                kind = "code"
            lines.append(line)
    flush()
    return nb


def source_of(notebook: Path) -> Path:
    """The percent-format source of ``notebooks/NN_name.ipynb``: ``notebooks/src/NN_name.py``."""
    return notebook.parent / "src" / f"{notebook.stem}.py"


def output_problems(nb) -> list[str]:
    """One line per output that a clean notebook must not have: errors, tracebacks, warning text.

    Checked: ``error`` outputs; stream outputs (stdout and stderr) containing ``Traceback``, ``Warning`` or
    ``WARNING`` (``UserWarning: ...``, ``TqdmWarning: IProgress not found``, JAX's ``Some donated buffers
    were not usable``, absl's ``WARNING:``); plain-text results containing ``Traceback``.
    """
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "error":
                problems.append(f"cell {i}: {out.get('ename')}: {out.get('evalue', '')[:200]}")
            elif kind == "stream":
                text = "".join(out.get("text", ""))
                if _BAD_TEXT.search(text):
                    line = next(l for l in text.splitlines() if _BAD_TEXT.search(l))
                    problems.append(f"cell {i} ({out.get('name')}): {line.strip()[:200]}")
            else:
                text = "".join(out.get("data", {}).get("text/plain", ""))
                if "Traceback" in text:
                    problems.append(f"cell {i}: traceback in the result")
    return problems


def count_figures(nb) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def execute(nb, *, quick: bool, cwd: Path, timeout: int = 3600):
    """Run every cell of ``nb`` in place in a fresh kernel; ``quick`` sets ``BAYES_MOGP_QUICK=1``, otherwise
    the kernel runs without it (full size).  The kernel's environment is passed explicitly: the caller's
    ``os.environ`` is not changed."""
    import nbclient
    from traitlets.config import Config

    env = dict(os.environ)
    env.pop("BAYES_MOGP_QUICK", None)
    if quick:
        env["BAYES_MOGP_QUICK"] = "1"
    env.pop("MPLBACKEND", None)  # the kernel's inline backend, as in Jupyter

    # IPC transport (a local socket file) rather than TCP: nothing listens on the network.  A generous
    # start-up timeout: a kernel importing JAX on two busy cores can take over a minute to answer.
    with tempfile.TemporaryDirectory(prefix="kernel_") as sockets:
        config = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "ipc")}})
        client = nbclient.NotebookClient(nb, timeout=timeout, startup_timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(cwd)}}, config=config)
        client.execute(env=env)
    return nb


def build(src: Path, *, run: bool = True, quick: bool = False, out_dir: Path | None = None,
          timeout: int = 3600) -> Path | None:
    """Convert ``src`` and (``run``) execute it; write it to ``out_dir`` (default: ``notebooks/``, except in
    quick mode, where nothing is written without ``out_dir``).  Raises ``RuntimeError`` listing the output
    problems, before writing anything."""
    src = Path(src)
    nb = parse_percent(src.read_text())
    target_dir = out_dir if out_dir is not None else (None if quick else src.resolve().parent.parent)
    if run:
        with tempfile.TemporaryDirectory(prefix="nb_") as tmp:
            # run where the committed notebook lives (relative paths as a user has them), unless quick mode
            # without an output folder: then in a scratch folder, so that nothing is left behind
            cwd = Path(tmp) if target_dir is None else Path(target_dir)
            execute(nb, quick=quick, cwd=cwd, timeout=timeout)
        problems = output_problems(nb)
        if problems:
            raise RuntimeError(f"{src.name}: " + "; ".join(problems))
    if target_dir is None:
        return None
    out = Path(target_dir) / f"{src.stem}.ipynb"
    nbformat.write(nb, out)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", type=Path, help="notebooks/src/NN_name.py files")
    ap.add_argument("--quick", action="store_true",
                    help="execute in quick mode (BAYES_MOGP_QUICK=1) as a local check; writes only with --out")
    ap.add_argument("--no-execute", dest="run", action="store_false", help="convert only, no outputs")
    ap.add_argument("--out", type=Path, default=None, help="folder for the .ipynb (default: notebooks/)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per cell (default 3600)")
    args = ap.parse_args(argv)
    status = 0
    for src in args.sources:
        if src.name == Path(__file__).name:
            continue
        try:
            out = build(src, run=args.run, quick=args.quick, out_dir=args.out, timeout=args.timeout)
        except RuntimeError as exc:
            print(f"build.py: {exc}", file=sys.stderr)
            status = 1
            continue
        figures = "" if out is None or not args.run else f" ({count_figures(nbformat.read(out, 4))} figures)"
        print(f"{src.name}: ok{'' if out is None else ' -> ' + str(out)}{figures}")
    return status


if __name__ == "__main__":
    sys.exit(main())
