"""The README's quick start runs as written, and the shipped text cites nothing that does not ship.

The quick start is the first ```python block after the "Quick start" heading of README.md; it runs in a fresh
interpreter (``sys.executable -c``) from an empty temporary directory, with JAX's float64 switch left as a
new user would have it (off), so it checks that the public API works without touching JAX's configuration.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def quick_start_code() -> str:
    text = README.read_text(encoding="utf-8")
    heading = re.search(r"^#+\s*Quick start\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    assert heading, "README.md has no 'Quick start' heading"
    block = re.search(r"^```python\s*\n(.*?)^```\s*$", text[heading.end():], flags=re.MULTILINE | re.DOTALL)
    assert block, "no ```python block after the README's 'Quick start' heading"
    return block.group(1)


def test_quick_start_runs_as_written(tmp_path):
    code = quick_start_code()
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_ENABLE_X64", "PYTHONPATH")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"quick start failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


def shipped_text_files():
    return [README, ROOT / "pyproject.toml", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "notebooks").glob("*.ipynb")), *sorted((ROOT / "notebooks" / "src").glob("*.py")),
            *sorted((ROOT / "bayes_mogp").rglob("*.py")), *sorted((ROOT / "models").glob("*.toml"))]


@pytest.mark.parametrize("needle", ["seed 00", "DESIGN.md", "shared/"])
def test_shipped_text_has_no_internal_references(needle):
    found = [f"{p.relative_to(ROOT)}:{i}" for p in shipped_text_files()
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if needle.lower() in line.lower()]
    assert not found, f"{needle!r} in {', '.join(found)}"
