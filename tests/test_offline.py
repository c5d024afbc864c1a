"""Pages that open offline, checked in a real browser with the network blocked: a notebook exported to
HTML (:mod:`cmkd_lab.offline`) and a run report (:mod:`cmkd_lab.report`). Each must make no request
that leaves the machine, draw its figures, and show no TeX source (``$…$``, ``\\(…\\)``) as text.

Chromium is Debian's /usr/bin/chromium, driven by Playwright (CI's .ci/run installs it); MathJax is
fetched once from the npm registry into the cache (:func:`cmkd_lab.offline.mathjax_js`). Screenshots go
to ``test-artifacts/offline/``.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "offline"


def _check_book():
    spec = importlib.util.spec_from_file_location("check_book", ROOT / "scripts" / "check_book.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _browser():
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("/usr/bin/chromium is missing: apt-get install -y chromium (CI's .ci/run does)")
    pytest.importorskip("playwright", reason="install the dev extra: pip install -e '.[dev]'")
    return _check_book()


# -- the pieces, without a browser ------------------------------------------------------------------------

def test_external_resources_lists_what_a_page_would_fetch_and_not_links():
    from cmkd_lab.offline import external_resources, strip_cdn_mathjax
    page = ('<script src="https://cdn.example/x.js"></script><link rel="stylesheet" href="//fonts.example/f.css">'
            '<img src="http://example.org/a.png"><a href="https://arxiv.org/abs/2606.10504">paper</a>'
            '<script src="_static/local.js"></script><link rel="canonical" href="https://example.org/">'
            '<link href="https://example.org/s.css" rel="stylesheet">')
    assert external_resources(page) == ["https://cdn.example/x.js", "//fonts.example/f.css",
                                        "http://example.org/a.png", "https://example.org/s.css"]
    plotly = ('<div><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/tex-svg.min.js">'
              '</script><script>Plotly.newPlot("a")</script></div>')
    assert external_resources(strip_cdn_mathjax(plotly)) == [] and "Plotly.newPlot" in strip_cdn_mathjax(plotly)


def test_executed_copies_are_reused_only_for_the_same_source_and_mode(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from cmkd_lab.offline import executed_copy, save_executed
    src = tmp_path / "notebooks" / "x.ipynb"
    src.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("1 + 1")]
    nbformat.write(nb, str(src))
    kept = tmp_path / "kept"
    p = save_executed(nb, src, fast=True, out_dir=kept)
    assert json.loads(p.read_text())["metadata"]["cmkd_lab"]["fast"] is True and "cmkd_lab" not in nb.metadata
    assert executed_copy(src, fast=True, out_dir=kept) == p
    assert executed_copy(src, fast=False, out_dir=kept) is None  # made in the other mode
    nb.cells.append(nbformat.v4.new_markdown_cell("changed"))
    nbformat.write(nb, str(src))
    assert executed_copy(src, fast=True, out_dir=kept) is None  # the source changed since


def test_saved_widget_state_is_left_out_of_a_page():
    nbformat = pytest.importorskip("nbformat")
    from cmkd_lab.offline import notebook_html, without_widget_state
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"m": {"x": "BUNDLE" * 10}}}}
    nb.cells = [nbformat.v4.new_markdown_cell("text")]
    assert "widgets" not in without_widget_state(nb).metadata and "widgets" in nb.metadata  # a copy
    assert "BUNDLE" not in notebook_html(nb)


def test_mathjax_env_naming_nothing_is_refused(tmp_path, monkeypatch):
    from cmkd_lab.offline import mathjax_js
    monkeypatch.setenv("CMKD_LAB_MATHJAX", str(tmp_path / "nope.js"))
    with pytest.raises(FileNotFoundError, match=r"CMKD_LAB_MATHJAX=.*must name mathjax@3\.2\.2's es5/tex-svg-full\.js"):
        mathjax_js()


# -- in the browser ---------------------------------------------------------------------------------------

MATH_MD = ("## The bound $\\mathrm{err}_S \\le \\mathrm{err}_T + \\mathrm{FA} + \\mathrm{LA}$\n\n"
           "With $\\tilde\\varphi$ the adapted parameters and\n\n$$\\mathrm{LA}_e = -\\frac{1}{n}\\sum_i "
           "\\log \\frac{p_S(y_i\\mid z_i)}{p_T(y_i\\mid z_i)^{\\hat\\kappa_i}}$$")


def test_exported_notebook_page_draws_maths_and_figures_offline(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    check = _browser()
    from cmkd_lab.offline import export_notebook
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell(MATH_MD), nbformat.v4.new_code_cell(
        "import cmkd_lab.widgets as W\nlab = W.setup_notebook(quiet=True)\n"
        "W.curve_figure([{'epoch': 1, 'ce': 2.0}, {'epoch': 2, 'ce': 1.0}], ['ce'], title='offline check').show()")]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    raw = "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", []))
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in raw  # plotly's output does ask for a CDN MathJax ...
    page = export_notebook(nb, tmp_path / "page.html")
    assert "cdnjs" not in page.read_text()  # ... which the export removes
    seen = check.open_offline(page, expect_figures=1, screenshot=ARTIFACTS / "notebook_page.png")
    assert seen["requests"] == [], seen["requests"]
    assert seen["raw_tex"] == [], seen["raw_tex"]
    assert seen["math"] >= 3 and seen["figures"] == 1 and not seen["errors"], seen


def test_run_report_opens_offline_without_tex_or_requests(tmp_path, small_task):
    check = _browser()
    from cmkd_lab.diagnostics import DiagnosticsCallback
    from cmkd_lab.distill import DistillConfig, Trainer
    from cmkd_lab.report import write_report
    cfg = DistillConfig(epochs=2, teacher_epochs=2)
    result = Trainer(small_task, "ucmkd", cfg, callbacks=[DiagnosticsCallback(n_ref=48, n_snapshot=20, seed=0)]).fit()
    base = Trainer(small_task, "ce", cfg).fit()
    page = write_report(result, tmp_path / "report.html", projection="pca", baseline=base)
    assert "theory.md" not in page.read_text()  # an installed package has no docs folder: the book is cited
    n_figs = page.read_text().count("Plotly.newPlot")
    seen = check.open_offline(page, expect_figures=n_figs, screenshot=ARTIFACTS / "run_report.png")
    assert seen["requests"] == [], seen["requests"]
    assert seen["raw_tex"] == [], seen["raw_tex"]
    assert seen["figures"] == n_figs >= 5 and not seen["errors"], seen
