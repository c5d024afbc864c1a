"""The HTML report: self-contained (plotly.js inlined once), every figure, the diagnostics in words; --png opt-in."""
import json
import re

import pytest

from cmkd_lab.cli import main
from cmkd_lab.diagnostics import DiagnosticsCallback
from cmkd_lab.distill import DistillConfig, Trainer
from cmkd_lab.report import diagnostics_summary, export_pngs, render_report, write_report


@pytest.fixture(scope="module")
def result(small_task):
    cb = DiagnosticsCallback(n_ref=48, n_snapshot=20, seed=0)
    return Trainer(small_task, "fa", DistillConfig(epochs=2, teacher_epochs=2), callbacks=[cb]).fit()


def test_report_is_self_contained_with_every_figure(result, tmp_path):
    p = write_report(result, tmp_path / "report.html", projection="pca")
    text = p.read_text()
    assert text.count("plotly.js v") == 1  # the library, inlined once
    assert not re.search(r"<script[^>]+src=['\"]https?://", text)  # nothing fetched from the network
    for title in ("MMD between student and teacher features", "The bound, term by term", "Transport plan",
                  "Label distributions", "Teacher and student features (PCA)", "What the diagnostics say", "Config",
                  "Environment"):
        assert f">{title}<" in text, title
    assert text.count("Plotly.newPlot") == 9
    assert "addFrames" in text and "Plotly.animate(" not in text  # the epoch slider does not auto-play on load
    assert "estimated bound" in text and "Diagnostics settings" in text


def test_summary_sentences_read_the_recorded_numbers(result):
    lines = diagnostics_summary(result)
    h = [r for r in result["history"] if "mmd2" in r]
    assert any(f"{h[-1]['mmd2']:.4g}" in s and "MMD²" in s for s in lines)
    assert any("chance level" in s for s in lines)
    assert diagnostics_summary({"history": [{"epoch": 1}]}) == ["No diagnostics were recorded in this run."]


def test_report_without_diagnostics_still_renders():
    r = {"task": "t", "method": "ce", "history": [{"epoch": 1, "ce": 1.0, "val_acc": 0.5}], "config": {}}
    text = render_report(r)
    assert text.count("Plotly.newPlot") == 2 and "No diagnostics were recorded" in text


def test_cli_report_rewrites_and_png_is_opt_in(result, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CMKD_LAB_FAST", "1")
    d = tmp_path / "run"
    d.mkdir()
    (d / "result.json").write_text(json.dumps(result))
    assert main(["report", str(d)]) == 0
    assert (d / "report.html").stat().st_size > 1_000_000 and not (d / "figures").exists()
    assert main(["report", str(d), "--png"]) == 0
    out = capsys.readouterr().out
    if "PNG export skipped" in out:  # no kaleido / no Chrome here: a clear message
        assert "kaleido" in out and "chromium" in out.lower()
    else:
        pngs = sorted((d / "figures").glob("*.png"))
        assert len(pngs) == 9 and all(p.stat().st_size > 1000 for p in pngs) and "9 PNG figures" in out


def test_export_pngs_says_why_when_kaleido_is_missing(result, tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "kaleido", None)  # makes `import kaleido` fail
    paths, why = export_pngs(result, tmp_path / "f")
    assert paths == [] and why.startswith("PNG export skipped: kaleido is not installed (pip install kaleido")


def test_render_report_rejects_non_dict():
    with pytest.raises(TypeError, match="result must be a dict"):
        render_report([1, 2])


def test_render_report_refuses_a_result_without_its_required_keys(tmp_path):
    # {} used to give a report full of "None"; every door (CLI, run_one, widgets) goes through render_report.
    with pytest.raises(ValueError, match=r"result is not a cmkd_lab run result: it lacks the required key\(s\) "
                                         r"\['history', 'method', 'task'\]"):
        render_report({})
    with pytest.raises(ValueError, match=r"history must be a list of per-epoch records; got str"):
        write_report({"task": "t", "method": "ce", "history": "none"}, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
