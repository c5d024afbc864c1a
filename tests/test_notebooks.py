"""Every notebook executes headless in fast mode (nbclient, kernel ``python3``),
and the committed notebooks are thin and carry no outputs.

Execution times are written to ``test-artifacts/notebook_times.json`` (a
record for people, not an assertion).
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="install the dev extra: pip install -e '.[dev]'")
nbclient = pytest.importorskip("nbclient", reason="install the dev extra: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OURS = ["00_quickstart", "01_theory_bound", "02_unpaired_vs_paired", "03_alignment_debugger",
        "04_bring_your_own_data", "06_explore_gap"]
ARTIFACTS = ROOT / "test-artifacts"


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_five_notebooks_exist():
    names = {p.stem for p in NOTEBOOKS}
    assert set(OURS) <= names, f"missing notebooks: {sorted(set(OURS) - names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_thin(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    src = "\n".join(c.source for c in _code(nb))
    assert "cmkd_lab" in src, "a notebook imports cmkd_lab and calls it"
    for i, c in enumerate(_code(nb)):
        assert c.outputs == [], f"cell {i} has outputs: commit notebooks with outputs cleared"
        assert c.execution_count is None, f"cell {i} has an execution count: clear it before committing"
        tree = ast.parse(c.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), (
                f"cell {i} defines a function or class: put it in cmkd_lab.widgets where tests reach it")
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    assert not isinstance(t, (ast.Attribute, ast.Subscript)), (
                        f"cell {i} mutates an object ({ast.unparse(t)} = ...): notebooks pass options as arguments")


def _run(nb, cwd: Path, timeout: int = 900):
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def test_python3_kernel_is_this_interpreter(tmp_path):
    """``python3`` resolves to the interpreter running the tests (the venv)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import sys; print(sys.executable)")]
    _run(nb, tmp_path, timeout=120)
    out = nb.cells[0].outputs[0]["text"].strip()
    assert os.path.realpath(out) == os.path.realpath(sys.executable)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_fast_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("CMKD_LAB_FAST", "1")
    work = tmp_path / "nb"
    work.mkdir()
    shutil.copy(path, work / path.name)  # runs/ written by the notebook stay in tmp
    nb = nbformat.read(work / path.name, as_version=4)
    t0 = time.perf_counter()
    try:
        _run(nb, work)
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name} failed in fast mode:\n{str(e)[-4000:]}")
    wall = time.perf_counter() - t0
    errors = [o for c in _code(nb) for o in c.outputs if o.get("output_type") == "error"]
    assert not errors
    figures = sum(1 for c in _code(nb) for o in c.outputs
                  if "application/vnd.plotly.v1+json" in o.get("data", {}))
    if path.stem in OURS:
        assert figures >= 2, f"{path.name} showed {figures} static figures"
        # Static fallback: each shown figure also carries HTML with plotly.js embedded.
        html = [o for c in _code(nb) for o in c.outputs if "text/html" in o.get("data", {})]
        assert any("plotly" in "".join(o["data"]["text/html"]) for o in html)
    ARTIFACTS.mkdir(exist_ok=True)
    times = ARTIFACTS / "notebook_times.json"
    record = json.loads(times.read_text()) if times.exists() else {}
    record[path.stem] = {"wall_s": round(wall, 1), "fast": True, "figures": figures}
    times.write_text(json.dumps(record, indent=1, sort_keys=True))
