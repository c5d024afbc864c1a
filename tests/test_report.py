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
    assert text.count("Plotly.newPlot") == 10 and ">Gradient audit<" in text  # 9 + the gradient audit
    assert "addFrames" in text and "Plotly.animate(" not in text  # the epoch slider does not auto-play on load
    assert "estimated bound" in text and "Diagnostics settings" in text


def test_summary_sentences_read_the_recorded_numbers(result):
    lines = diagnostics_summary(result)
    h = [r for r in result["history"] if "mmd2" in r]
    assert any(f"{h[-1]['mmd2']:.4g}" in s and "MMD²" in s for s in lines)
    assert any("chance level" in s for s in lines)
    acc = h[-1]["teacher_head_on_student_acc_ref"]  # an accuracy reads as a percentage, like every other share
    assert any(f"reads the right class for {acc:.1%} of them" in s for s in lines)


def test_the_summary_says_a_vacuous_bound_is_vacuous(result):
    """The summary's bound sentence says "vacuous" exactly when the sum is above ln K (as the bound's own
    section does), so that "the bound holds" never reads as news about the student."""
    import copy
    import math
    K = len(result["diagnostics"]["class_names"])
    for total, vacuous in ((math.log(K) + 1.0, True), (math.log(K) - 0.1, False)):
        r = copy.deepcopy(result)
        for rec in r["history"]:
            if rec.get("bound_sum") is not None:
                rec["bound_sum"] = total
        line = next(s for s in diagnostics_summary(r) if "estimated bound" in s)
        assert ("vacuous" in line) is vacuous and (f"ln K = {math.log(K):.2f}" in line) is vacuous, line


def test_the_history_tables_start_with_the_epoch(result):
    page = render_report(result, projection="none")
    for title in ("Training", "Diagnostics"):
        head = page.split(f"<h3>{title}</h3>", 1)[1].split("</th>", 1)[0]
        assert head.endswith(">epoch"), (title, head[-80:])
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


def _visible_text(page: str) -> str:
    """The page's text as a reader sees it (scripts and tags dropped, entities decoded)."""
    import html as _html
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return _html.unescape(re.sub(r"<[^>]+>", " ", body))


@pytest.fixture(scope="module")
def baseline(small_task):
    cb = DiagnosticsCallback(n_ref=48, n_snapshot=20, seed=0)
    return Trainer(small_task, "ce", DistillConfig(epochs=2, teacher_epochs=2), callbacks=[cb]).fit()


def test_report_shows_the_baseline_next_to_the_run(result, baseline):
    page = render_report(result, projection="none", baseline=baseline)
    text = _visible_text(page)
    a, b = result["student_test_acc"], baseline["student_test_acc"]
    assert "fa (this run)" in text and "ce (baseline)" in text and "fa − ce" in text
    assert f"{100 * a:.2f} %" in text and f"{100 * b:.2f} %" in text  # both accuracies, as percentages
    assert f"{100 * (a - b):+.2f} points" in text  # and their difference
    alone = _visible_text(render_report(result, projection="none"))
    assert "No baseline run was given" in alone and "(baseline)" not in alone


def test_report_refuses_a_baseline_of_another_seed_or_not_a_result(result, baseline):
    with pytest.raises(ValueError, match=r"baseline must be a run of the same seed as the result \(seed=0\); "
                                         r"got seed=1"):
        render_report(result, projection="none", baseline={**baseline, "seed": 1})
    with pytest.raises(TypeError, match="baseline must be a run result"):
        render_report(result, projection="none", baseline=[1])
    with pytest.raises(ValueError, match="baseline is not a cmkd_lab run result"):
        render_report(result, projection="none", baseline={"task": result["task"]})


def test_report_labels_come_from_the_declared_keys_and_markdown_is_rendered(result):
    from cmkd_lab.results.keys import describe
    page = render_report(result, projection="pca")
    text = _visible_text(page)
    for key in ("s_per_epoch", "wall_s", "student_test_acc", "best_epoch"):
        label = describe(key).label
        assert label != key and label in text, key  # people's words, not the field name
    assert not re.search(r"\bs_per_epoch\b|\bstudent_test_acc\b", text)
    # Markdown in captions and readings becomes HTML: no asterisk or backtick is left in the text
    assert "*" not in text and "`" not in text
    assert "<em>" in page or "<strong>" in page or "<code>" in page
    # nothing a reader of an installed package lacks is cited; the paper is
    assert "theory.md" not in page and "docs/" not in text and "arXiv 2606.10504" in text


def test_md_inline_renders_the_three_marks_and_escapes_the_rest():
    from cmkd_lab.htmlkit import md_inline
    assert md_inline("the *best* epoch of `ce` is **7** < 8") == \
        "the <em>best</em> epoch of <code>ce</code> is <strong>7</strong> &lt; 8"
    assert md_inline("2 * 3 * 4") == "2 * 3 * 4"  # a lone asterisk is text
    assert md_inline("`a*b*c` and *x*") == "<code>a*b*c</code> and <em>x</em>"  # code is left as it is
    assert md_inline("<script>") == "&lt;script&gt;"


def test_the_title_says_when_a_run_is_a_fast_subset(result):
    """A quick pass (CMKD_LAB_FAST) trains on part of the data: its report says so in its title, where a reader
    comparing it with the published tables starts; a full run's title does not."""
    import copy
    full = render_report(result, projection="pca")
    assert "fast subset" not in full.split("</title>")[0]
    fast = copy.deepcopy(result)
    fast["task_info"] = dict(fast.get("task_info") or {}, fast=True)
    assert "fast subset (a quick pass: not comparable with full runs)" in render_report(fast, projection="pca").split(
        "</title>")[0]
