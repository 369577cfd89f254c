"""The package's shape: the CLI is a thin layer (no command imports another), and notebooks and benchmarks use
the library only."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "bayes_mogp" / "cli"
COMMANDS = sorted(p.stem for p in CLI.glob("*.py") if not p.stem.startswith("_") and p.stem != "main")


def _imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative ones resolved inside bayes_mogp.cli)."""
    out = set()
    text = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in path.read_text().splitlines())
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1:  # from .x import y / from . import x
                out.update(f"bayes_mogp.cli.{base or a.name}" for a in node.names)
            elif node.level == 0:
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names)
    return out


def test_no_command_imports_another_command():
    for name in COMMANDS:
        other = {f"bayes_mogp.cli.{c}" for c in COMMANDS if c != name}
        bad = _imports(CLI / f"{name}.py") & other
        assert not bad, f"bayes_mogp/cli/{name}.py imports {sorted(bad)}"


def test_notebooks_and_benchmarks_import_only_the_library():
    files = sorted((ROOT / "notebooks" / "src").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
    assert files
    for path in files:
        bad = {m for m in _imports(path) if m == "bayes_mogp.cli" or m.startswith("bayes_mogp.cli.")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
