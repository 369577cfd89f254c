"""The notebooks, as a user opens them and as they run (slow pass: ``pytest -m slow``).

* ``test_committed_notebook_is_built_and_clean``: each committed ``notebooks/NN_name.ipynb`` has the cells
  of its source ``notebooks/src/NN_name.py``, was executed (every code cell), shows at least one figure,
  and no output holds an error, a traceback or warning text.
* ``test_notebook_runs_clean_in_quick_mode``: a copy of each notebook is executed from scratch in quick
  mode (``BAYES_MOGP_QUICK=1``) in a scratch folder, never written back, with the same output check.

Rebuild a notebook after editing its source (full size, a few minutes each):
``uv run --extra dev python notebooks/src/build.py notebooks/src/NN_name.py``.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _build_module():
    spec = importlib.util.spec_from_file_location("notebook_build", ROOT / "notebooks" / "src" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build():
    pytest.importorskip("nbformat")
    return _build_module()


def test_every_notebook_has_a_source():
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        assert (path.parent / "src" / f"{path.stem}.py").is_file(), f"{path.name} has no source in notebooks/src"


def test_output_check_catches_errors_tracebacks_and_warnings():
    """The check itself, on hand-made outputs (fast, default run)."""
    nbformat = pytest.importorskip("nbformat")
    build = _build_module()
    v4 = nbformat.v4
    nb = v4.new_notebook()
    clean = v4.new_code_cell("x")
    clean.outputs = [v4.new_output("stream", name="stdout", text="KS p = 0.3\n"),
                     v4.new_output("stream", name="stderr", text="networks d=3: 100%|####| 4/4\n")]
    nb.cells = [clean]
    assert build.output_problems(nb) == []
    bad = [
        v4.new_output("error", ename="ValueError", evalue="width", traceback=[]),
        v4.new_output("stream", name="stderr", text="/x/tqdm/auto.py:21: TqdmWarning: IProgress not found.\n"),
        v4.new_output("stream", name="stderr",
                      text="mlir.py:1365: UserWarning: Some donated buffers were not usable: bool[15].\n"),
        v4.new_output("stream", name="stdout", text="Traceback (most recent call last):\n"),
    ]
    for out in bad:
        cell = v4.new_code_cell("x")
        cell.outputs = [out]
        nb.cells = [clean, cell]
        assert len(build.output_problems(nb)) == 1, out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_built_and_clean(path, build):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    fresh = build.parse_percent(build.source_of(path).read_text())
    assert [(c.cell_type, c.source) for c in nb.cells] == [(c.cell_type, c.source) for c in fresh.cells], (
        f"{path.name} differs from its source: rebuild it with notebooks/src/build.py")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{path.name} has cells that were never run: rebuild it"
    assert build.count_figures(nb) >= 1, f"{path.name} shows no figure"
    assert build.output_problems(nb) == []


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_clean_in_quick_mode(path, build, tmp_path):
    import nbformat

    pytest.importorskip("nbclient")
    committed = path.read_bytes()
    nb = nbformat.read(path, as_version=4)  # a copy in memory: the file is never written
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    build.execute(nb, quick=True, cwd=tmp_path, timeout=600)
    assert build.output_problems(nb) == []
    assert path.read_bytes() == committed  # the committed notebook is never written
