"""Every notebook executes headless in fast mode (nbclient, kernel ``python3``),
and the committed notebooks are thin and carry no outputs.

Each executed notebook is also exported to HTML (nbconvert, as a reader without a kernel sees it) and
checked there: every figure it showed is in the page with plotly.js embedded, and every interactive
panel or progress bar (a widget, blank without a kernel) comes with something visible next to it. Where
Chromium and Playwright are available the page is loaded offline and every figure must draw.

Execution times are written to ``test-artifacts/notebook_times.json`` and the pages to
``test-artifacts/html/`` (a record for people, not an assertion).
"""
from __future__ import annotations

import ast
import json
import os
import re
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
        "04_bring_your_own_data", "05_regime_map", "06_explore_gap"]
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_notebooks_exist():
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


def figure_ids(nb) -> list:
    """The div id of every plotly figure a notebook's outputs show (from the HTML part each carries)."""
    ids = []
    for c in _code(nb):
        for o in c.outputs:
            data = o.get("data", {})
            if PLOTLY in data:
                found = re.findall(r'Plotly\.newPlot\(\s*"([0-9a-f-]+)"', "".join(data.get("text/html", "")))
                assert found, f"a figure output without its static HTML part (cell source: {c.source[:80]!r})"
                ids += found
    return ids


def check_offline_html(nb, html: str) -> list:
    """What a reader without a kernel sees: every figure in the page, plotly.js inlined (no CDN), and a
    visible output next to every widget. Returns the figures' ids."""
    ids = figure_ids(nb)
    for fid in ids:
        assert f'id="{fid}"' in html and re.search(r'Plotly\.newPlot\(\s*"' + re.escape(fid) + '"', html), (
            f"figure {fid} is missing from the HTML")
    if ids:
        assert re.search(r"plotly\.js v\d", html), "plotly.js is not embedded in the page"
    for c in _code(nb):
        kinds = [o for o in c.outputs if WIDGET in o.get("data", {})]
        if kinds:
            visible = [o for o in c.outputs if o.get("output_type") == "stream" or
                       any(k in o.get("data", {}) for k in ("text/html", "text/markdown", PLOTLY, "image/png"))
                       and WIDGET not in o.get("data", {})]
            assert visible, (f"a cell shows a widget (blank without a kernel) and nothing else: "
                             f"{c.source.splitlines()[0][:80]!r}")
    return ids


def _rendered_figures(page_path: Path) -> int:
    """How many plotly figures draw when the page is opened offline in Chromium (-1: no browser here)."""
    if not os.path.exists(CHROMIUM):
        return -1
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return -1
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_context(offline=True).new_page()
            page.goto(page_path.as_uri(), wait_until="load", timeout=120_000)
            page.wait_for_timeout(1500)
            return page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                 ".filter(d => d.querySelector('.main-svg')).length")
        finally:
            browser.close()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_in_fast_mode(path, tmp_path, monkeypatch):
    nbconvert = pytest.importorskip("nbconvert")
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
    check_errors_and_text(nb)
    figures = sum(1 for c in _code(nb) for o in c.outputs if PLOTLY in o.get("data", {}))
    if path.stem in OURS:
        assert figures >= 2, f"{path.name} showed {figures} static figures"
    from cmkd_lab import offline
    offline.save_executed(nb, path, fast=True)  # `make docs` reuses it instead of executing the notebook again
    html = offline.notebook_html(nb)  # the page a reader without a kernel opens: MathJax and plotly.js inlined
    ids = check_offline_html(nb, html)
    assert len(ids) == figures
    out = ARTIFACTS / "html"
    out.mkdir(parents=True, exist_ok=True)
    page = out / f"{path.stem}.html"
    page.write_text(html, encoding="utf-8")
    drawn = _rendered_figures(page)
    if drawn >= 0:
        assert drawn == figures, f"{path.name}: {drawn} of {figures} figures draw offline in Chromium"
    times = ARTIFACTS / "notebook_times.json"
    record = json.loads(times.read_text()) if times.exists() else {}
    record[path.stem] = {"wall_s": round(wall, 1), "fast": True, "figures": figures, "drawn_offline": drawn}
    times.write_text(json.dumps(record, indent=1, sort_keys=True))


STUDENT_WORDS = [  # what a student has no use for in a notebook's text or outputs
    (r"docs/|README|\.md\b", "a file a student does not have"),
    (r"process pool|\bcheckout\b", "developers' words"),
    (r"(?<![\w-])cell(s)?\b", "notebook plumbing ('cell'): say 'step' or 'below'"),
    (r"/work/|/home/|/tmp/|site-packages|[A-Za-z]:\\\\", "an absolute path of some machine"),
    (r"\.py:\d+: \w*Warning", "a warning with its source path"),
    (r"Skipped \w+ (in cell|under) ", "a log line per skipped run"),
]


def check_errors_and_text(nb, *, executed: bool = True) -> None:
    """Errors only where an exercise stub stops with NotImplementedError (``executed``); no developer text
    in the Markdown or in what the notebook printed."""
    for c in _code(nb) if executed else []:
        errors = [o for o in c.outputs if o.get("output_type") == "error"]
        if "exercise" in c.metadata.get("tags", []):
            assert [e["ename"] for e in errors] == ["NotImplementedError"], (
                f"an exercise stub must stop with NotImplementedError: {c.source[:80]!r}")
        else:
            assert not errors, f"{errors[0]['ename']}: {errors[0]['evalue']} in {c.source[:80]!r}"
    for c in nb.cells:
        texts = [c.source] if c.cell_type == "markdown" else [
            "".join(o.get("text", "")) + "".join(str(v) for k, v in o.get("data", {}).items()
                                                 if k in ("text/plain", "text/markdown"))
            for o in c.get("outputs", []) if o.get("output_type") != "error"]
        for text in texts:
            for pat, why in STUDENT_WORDS:
                m = re.search(pat, text)
                assert not m, f"{why}: {m.group(0)!r} in {text[max(0, m.start() - 60):m.end() + 60]!r}"


def test_text_check_catches_developer_words():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("See docs/theory.md §3 for the proof.")]
    with pytest.raises(AssertionError, match="a file a student does not have"):
        check_errors_and_text(nb)
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr",
                                           text="/x/y/job.py:82: RuntimeWarning: few labels\n")]
    nb.cells = [cell]
    with pytest.raises(AssertionError, match="absolute path|source path"):
        check_errors_and_text(nb)
    stub = nbformat.v4.new_code_cell("raise NotImplementedError('Exercise 00.1')")
    stub.metadata["tags"] = ["exercise", "raises-exception"]
    stub.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="x", traceback=[])]
    nb.cells = [stub]
    with pytest.raises(AssertionError, match="must stop with NotImplementedError"):
        check_errors_and_text(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_text_is_for_students(path):
    """The committed Markdown already (the outputs are checked when the notebook runs)."""
    check_errors_and_text(nbformat.read(path, as_version=4), executed=False)


def repeated_paragraphs(nb) -> list:
    """Sentences (of more than 80 characters) that the Markdown of ``nb`` says twice: a paragraph pasted again,
    even when its later sentences were edited."""
    seen, twice = set(), []
    for c in nb.cells:
        if c.cell_type != "markdown":
            continue
        for sentence in (t.strip() for t in re.split(r"(?<=[.!?])\s+|\n\n", c.source)):
            if len(sentence) > 80 and sentence in seen:
                twice.append(sentence[:80])
            seen.add(sentence)
    return twice


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_paragraph_is_said_twice(path):
    """A student reads each explanation once (03 once carried the same paragraph before and after an exercise)."""
    assert repeated_paragraphs(nbformat.read(path, as_version=4)) == []


def test_the_repeat_check_catches_a_repeat():
    nb = nbformat.v4.new_notebook()
    text = "With the default inner rate the UCMKD student ends where `ce` ends, often to the last digit of its accuracy."
    nb.cells = [nbformat.v4.new_markdown_cell(text + " Then one ending."),
                nbformat.v4.new_markdown_cell(text + " Another ending.\n\n## Next")]
    assert repeated_paragraphs(nb) == [text[:80]]


def test_offline_check_catches_a_figure_without_its_html():
    """The HTML check fails a notebook whose figure has no static part (05 before it called setup_notebook)."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig")
    cell.outputs = [nbformat.v4.new_output("display_data", data={PLOTLY: {"data": [], "layout": {}}})]
    nb.cells = [cell]
    with pytest.raises(AssertionError, match="without its static HTML part"):
        check_offline_html(nb, "<html></html>")
    widget = nbformat.v4.new_code_cell("panel")
    widget.outputs = [nbformat.v4.new_output("display_data", data={WIDGET: {"model_id": "x"}, "text/plain": "VBox"})]
    nb.cells = [widget]
    with pytest.raises(AssertionError, match="blank without a kernel"):
        check_offline_html(nb, "<html></html>")
