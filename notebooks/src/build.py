"""Build notebooks/NN_name.ipynb from notebooks/src/NN_name.py (percent format), optionally executing it.

Cells are separated by ``# %%`` (code) and ``# %% [markdown]`` (markdown, each line starting ``# ``).

    uv run --extra dev python notebooks/src/build.py notebooks/src/01_priors_and_table1.py [--execute]

``--execute`` runs the notebook in quick mode (``BAYES_MOGP_QUICK=1``) and stores its outputs, so that the
committed notebook shows the plots; the test suite executes every notebook again from scratch.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import nbformat

_CELL = re.compile(r"^# %%(.*)$")


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


def build(src: Path, execute: bool = False, timeout: int = 1200) -> Path:
    nb = parse_percent(src.read_text())
    out = src.parent.parent / f"{src.stem}.ipynb"
    if execute:
        import nbclient

        os.environ.setdefault("BAYES_MOGP_QUICK", "1")
        os.environ.setdefault("MPLBACKEND", "Agg")
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(out.parent)}}).execute()
    nbformat.write(nb, out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+", type=Path)
    ap.add_argument("--execute", action="store_true")
    args = ap.parse_args()
    for src in args.sources:
        print(build(src, execute=args.execute))


if __name__ == "__main__":
    main()
