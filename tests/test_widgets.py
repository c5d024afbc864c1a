"""The notebook panels' plain-function counterparts and the panels themselves,
driven without a browser (fast mode, small tasks)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

W = pytest.importorskip("cmkd_lab.widgets")
pytest.importorskip("anywidget", reason="live figures need anywidget: pip install -e '.[dev]'")


@pytest.fixture(scope="module")
def lab():
    return W.settings(fast=True)


@pytest.fixture(scope="module")
def tiny_task():
    from cmkd_lab.data import make_synthetic_task
    return make_synthetic_task(n_teacher=300, n_student=300, seed=0)


@pytest.fixture(scope="module")
def debug_run(tiny_task, lab):
    return W.run_debugger(task=tiny_task, method="ucmkd", epochs=2, lab=lab)


# ----------------------------------------------------------------- settings
def test_settings_follow_the_environment(monkeypatch):
    monkeypatch.setenv("CMKD_LAB_FAST", "1")
    fast = W.settings()
    monkeypatch.setenv("CMKD_LAB_FAST", "0")
    full = W.settings()
    monkeypatch.delenv("CMKD_LAB_FAST")
    assert W.settings() == full
    assert fast.fast and not full.fast
    assert fast.epochs < full.epochs and fast.teacher_epochs < full.teacher_epochs
    assert fast.task_fast and not full.task_fast


def test_settings_reject_bad_values(monkeypatch):
    monkeypatch.setenv("CMKD_LAB_FAST", "maybe")
    with pytest.raises(ValueError, match=r"CMKD_LAB_FAST.*'maybe'"):
        W.settings()
    with pytest.raises(TypeError, match="fast must be"):
        W.settings(fast="yes")


def test_setup_notebook_sets_an_offline_renderer():
    import plotly.io as pio

    import warnings

    from cmkd_lab.widgets.notebook import plain_warnings
    lab = W.setup_notebook(fast=True, quiet=True, threads=None)
    try:
        assert lab.fast
        assert pio.renderers.default == W.STATIC_RENDERER == "plotly_mimetype+notebook"
        # a warning reads as one plain line, without the source file a notebook reader has no use for
        line = warnings.formatwarning("few labels", RuntimeWarning, "/x/job.py", 82)
        assert line == "note (RuntimeWarning): few labels\n"
    finally:
        plain_warnings(False)


def test_torch_threads_follow_the_free_cores(monkeypatch):
    import os

    import torch
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(os, "cpu_count", lambda: 4)
        monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0.0, 0.0))
        assert W.torch_threads("auto") == 1 and torch.get_num_threads() == 1  # round(4 - 2.6) = 1
        monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
        assert W.torch_threads("auto") == 4
        monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 0.0, 0.0))
        assert W.torch_threads("auto") == 1  # a busy machine still gets one thread
        assert W.torch_threads(2) == 2 and W.torch_threads(None) is None
        with pytest.raises(ValueError, match="threads must be"):
            W.torch_threads(0)
    finally:
        torch.set_num_threads(before)


def test_text_progress_leaves_a_line_per_phase(capsys):
    sink = W.TextProgress()
    sink("teacher", 0, 3, "teacher (cached after the first run)")
    sink("teacher", 3, 3, "teacher ready, test acc 0.900")
    sink("student", 10, 10, "epoch 2/2, val acc 0.700")
    sink("done", 1, 1, "")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("teacher: 3/3 — teacher ready, test acc 0.900 (") and out[1].startswith("student: 10/10")


def test_panels_come_with_a_note_for_readers_without_a_kernel():
    note = W.kernel_note("The bench panel", "; the static copies below show the same")
    assert "needs a running Jupyter kernel" in note["text/plain"] and "cmkd-static-note" in note["text/html"]
    assert "<" not in note["text/plain"]


# ------------------------------------------------------------------ figures
def _fig(ys, names=("a", "b")):
    import plotly.graph_objects as go
    return go.Figure([go.Scatter(x=list(range(len(y))), y=y, name=n) for y, n in zip(ys, names)])


def test_sync_figure_updates_in_place_when_only_points_change():
    target = _fig([[1, 2], [3, 4]])
    trace0 = target.data[0]
    assert W.sync_figure(target, _fig([[1, 2, 5], [3, 4, 6]])) is True
    assert target.data[0] is trace0  # the same trace object, new points
    assert list(target.data[0].y) == [1, 2, 5] and list(target.data[1].y) == [3, 4, 6]


def test_sync_figure_replaces_when_the_structure_changes():
    target = _fig([[1, 2]], names=("a",))
    source = _fig([[1], [2]], names=("a", "c"))
    assert W.sync_figure(target, source, replace=False) is False
    assert W.figure_signature(target) == [("scatter", "a", 2)]  # untouched without replace
    assert W.sync_figure(target, source) is False
    assert W.figure_signature(target) == W.figure_signature(source)


def test_show_figures_rejects_unknown_names():
    with pytest.raises(ValueError, match="only must name figures"):
        W.show_figures({"a": _fig([[1]])}, only=["nope"])


def test_figure_output_is_a_plotly_mime_bundle():
    out = W.figure_output(_fig([[1, 2]]))
    assert out["output_type"] == "display_data"
    assert out["data"]["application/vnd.plotly.v1+json"]["data"][0]["y"] == [1, 2]


def test_tables_show_formatted_numbers_and_say_why_a_value_is_missing():
    import pandas as pd
    t = W.make_table(pd.DataFrame({"acc": [0.824444, 0.7177], "Δ": [None, -10.6667], "ok": [True, False]}),
                     formats={"acc": "{:.1%}", "Δ": "{:+.2f}"}, notes=["Δ: — on the reference row."])
    text = repr(t)
    assert "82.4%" in text and "-10.67" in text and "—" in text and "yes" in text
    assert "0.824444" not in text and "NaN" not in text and "Δ: — on the reference row." in text
    assert "<td>82.4%</td>" in t._repr_html_() and "cmkd-table-notes" in t._repr_html_()
    assert t.loc[0, "acc"] == 0.824444  # the numbers stay numbers
    assert type(t.iloc[:, :1]) is pd.DataFrame  # anything derived is a plain DataFrame


def test_make_sink_validates():
    assert W.make_sink(None) is None and W.make_sink(False) is None
    assert isinstance(W.make_sink(True), W.TextProgress)
    with pytest.raises(TypeError, match="progress must be"):
        W.make_sink("loud")


# ----------------------------------------------------------------- debugger
def test_run_debugger_returns_the_recorded_numbers(debug_run):
    result, figs = debug_run
    assert result["status"] == "completed" and result["epochs_done"] == 2
    h = result["history"]
    for key in ("mmd2", "mmd_p", "ot_cost", "sinkhorn_div", "purity", "purity_chance", "bound_sum"):
        assert all(key in r for r in h), key
    assert {"losses", "mmd", "ot", "accuracy", "bound", "transport_plan", "overlay", "labels"} <= set(figs)
    # The loss figure plots exactly the history's values.
    by_name = {t.name: list(t.y) for t in figs["losses"].data}
    for k, label in (("ce", "CE term"), ("fa", "FA term"), ("la", "LA term")):  # terms, never named as methods
        assert by_name[label] == pytest.approx([r[k] for r in h])


def test_overlay_at_epoch_uses_a_stored_snapshot(debug_run):
    result, _ = debug_run
    epochs = [s["epoch"] for s in result["diagnostics"]["snapshots"]]
    assert epochs == [0, 1, 2]  # the debugger keeps every epoch
    fig = W.overlay_at_epoch(result, 0, projection="pca")
    assert "epoch 0" in fig.layout.title.text
    with pytest.raises(ValueError, match=r"epoch must be one of the snapshot epochs \[0, 1, 2\]; got epoch=7"):
        W.overlay_at_epoch(result, 7)


def test_debugger_validates_its_options(tiny_task, lab):
    with pytest.raises(ValueError, match="eps must be > 0; got eps=-1"):
        W.DebugSession(task=tiny_task, eps=-1.0, lab=lab)
    with pytest.raises(ValueError, match="method must be one of"):
        W.DebugSession(task=tiny_task, method="nope", lab=lab)
    with pytest.raises(ValueError, match="la_teacher_grad must be one of"):
        W.DebugSession(task=tiny_task, la_teacher_grad="sideways", lab=lab)
    with pytest.raises(TypeError, match="task must be a built-in task name"):
        W.run_debugger(task=3, lab=lab)
    with pytest.raises(ValueError, match="task must be one of"):
        W.run_debugger(task="no-such-task", lab=lab)


def test_stop_keeps_what_was_recorded(tiny_task, lab):
    holder = {}

    def on_epoch(history, initial):  # the Stop button, pressed after the first epoch
        holder["session"].stop()

    s = W.DebugSession(task=tiny_task, method="fa", epochs=10, lab=lab, on_epoch=on_epoch)
    holder["session"] = s
    result, figs = s.run()
    assert result["status"] == "interrupted" and result["epochs_done"] == 1
    assert len(result["history"]) == 1 and "mmd2" in result["history"][0]
    assert [t.name for t in figs["losses"].data if t.name == "FA term"] == ["FA term"]
    assert len(figs["losses"].data[0].y) == 1


def test_debugger_panel_runs_and_stops(lab):
    panel = W.DebuggerPanel(lab=lab)
    assert panel.options()["method"] == "ucmkd" and panel.options()["epochs"] == lab.epochs
    before = W.figure_signature(panel.live["losses"])
    panel.set(method="fa", epochs=2)
    panel.run(block=True, timeout=600)
    assert panel.error is None, panel.error
    after = W.figure_signature(panel.live["losses"])
    assert after != before
    assert ("scatter", "FA term", 2) in after
    assert "done" in panel.status.value
    assert panel.outputs["transport_plan"].outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert list(panel.overlay_epoch.options) == [0, 1, 2]
    panel.overlay_epoch.value = 0
    assert "epoch 0" in panel.figures["overlay"].layout.title.text

    # Stop: a long run pressed after its first epoch keeps what it recorded.
    panel.set(epochs=30)
    panel.run()
    deadline = time.time() + 600
    while time.time() < deadline and not (panel._session and panel._session.trainer
                                          and panel._session.trainer.history):
        time.sleep(0.2)
    panel.stop_button.click()
    assert panel.wait(600)
    r = panel.result
    assert r["status"] == "interrupted" and 1 <= r["epochs_done"] < 30
    assert dict((n, k) for _, n, k in W.figure_signature(panel.live["losses"]))["FA term"] == r["epochs_done"]
    assert "stopped" in panel.status.value


def test_debugger_panel_rejects_unknown_controls(lab):
    with pytest.raises(ValueError, match=r"unknown control\(s\) \['lr'\]"):
        W.DebuggerPanel(lab=lab, lr=0.1)


def test_debugger_panel_shows_errors_in_its_status(lab):
    panel = W.DebuggerPanel(lab=lab)
    panel.set(method="kd", pairing="unpaired")
    assert panel.run() is None  # refused before any training
    assert "PairingError" in panel.status.value and "pairing=&#x27;paired&#x27;" in panel.status.value
    assert panel.progress.bar_style == "danger" and not panel.run_button.disabled


def test_debugger_panel_unlabelled_controls(lab):
    panel = W.DebuggerPanel(lab=lab)
    assert panel.options()["student_fraction"] == 1.0 and panel.options()["student_unlabelled"] is False
    panel.set(student_unlabelled=True)  # with every label kept there is nothing left unlabelled
    assert panel.run() is None
    assert "student_fraction=1.0 leaves none" in panel.status.value
    panel.set(method="fa", epochs=1, student_fraction=0.1)
    panel.run(block=True, timeout=600)
    assert panel.error is None, panel.error
    r = panel.result
    assert r["config"]["student_unlabelled"] is True and r["n_student_unlabelled"] > 0


def test_compare_variants_measures_the_inner_shift(tiny_task, lab):
    table, figs, results = W.compare_variants([{"method": "ce"}, {"method": "ucmkd"},
                                               {"method": "ucmkd", "inner_lr": 0.1}], task=tiny_task, epochs=2, lab=lab)
    assert list(table.index) == ["ce", "ucmkd", "ucmkd inner_lr=0.1"]
    assert results["ucmkd inner_lr=0.1"]["config"]["inner_lr"] == 0.1
    shift = table["mean inner shift ‖φ̃ − φ‖"]
    assert math.isnan(shift["ce"]) and 0 < shift["ucmkd"] < shift["ucmkd inner_lr=0.1"]  # the knob moves it
    ce = results["ce"]["student_test_acc"]
    for name in ("ucmkd", "ucmkd inner_lr=0.1"):
        assert table.loc[name, "Δ vs ce (points, 1 seed)"] == pytest.approx(
            round(100 * (results[name]["student_test_acc"] - ce), 2))
    assert set(figs) == {"val_acc", "inner_shift"} and len(figs["inner_shift"].data) == 2
    assert not results["ucmkd"]["diagnostics"].get("snapshots")  # light diagnostics: no feature snapshots


def test_compare_teacher_grad(tiny_task, lab):
    table, figs, results = W.compare_teacher_grad(task=tiny_task, method="la", epochs=1, lab=lab)
    assert list(table.index) == ["none", "as-written", "align"]
    assert set(results) == {"none", "as-written", "align"}
    assert [r["config"]["la_teacher_grad"] for r in results.values()] == ["none", "as-written", "align"]
    assert len(figs["teacher_head"].data) == 6
    with pytest.raises(ValueError, match="method must have an LA term"):
        W.compare_teacher_grad(task=tiny_task, method="ce", lab=lab)
    with pytest.raises(ValueError, match="modes must hold values"):
        W.compare_teacher_grad(task=tiny_task, modes=["up"], lab=lab)


# ------------------------------------------------------------------- theory
@pytest.fixture(scope="module")
def point(lab):
    return W.bound_point(gap=1.0, n=300, epochs=1, lab=lab)


def test_bound_point_terms_add_up(point):
    p = point
    assert p["bound_sum"] == pytest.approx(p["bound_err_t"] + p["bound_fa"] + p["bound_la"])
    assert p["bound_fa"] == pytest.approx(p["bound_tau"] * p["bound_w1"])
    assert p["bound_slack"] == pytest.approx(p["bound_sum"] - p["bound_err_s"])
    assert p["bound_holds"] == (p["bound_err_s"] <= p["bound_sum"] + 1e-12)
    # With the plug-in κ̂ = p_T(y|z), err_S − LA_e = mean p·(−log p) ≤ 1/e.
    assert p["bound_transfer"] == pytest.approx(p["bound_err_s"] - p["bound_la"])
    assert 0 <= p["bound_transfer"] <= 1 / math.e + 1e-9
    assert p["gap"] == 1.0 and p["method"] == "ce"
    assert p["statement"].startswith("The estimated bound")
    # what a reader compares the numbers with: a uniform guess (ln K) and always answering the majority class
    assert p["ln_k"] == pytest.approx(math.log(5)) and sum(p["student_test_counts"]) > 0
    assert p["majority_acc"] == pytest.approx(max(p["student_test_counts"]) / sum(p["student_test_counts"]))


def test_bound_point_figure(point):
    fig = W.bound_point_figure(point)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.x[0] for t in bars] == ["bound"] * 3 + ["err_S (measured)"]
    assert sum(t.y[0] for t in bars[:3]) == pytest.approx(point["bound_sum"])
    with pytest.raises(ValueError, match="missing"):
        W.bound_point_figure({"bound_err_t": 1.0})


def test_bound_check_figure_draws_the_one_over_e_floor(point):
    import pandas as pd
    fig = W.bound_check_figure(("one", [point]), pd.DataFrame([point]))
    floor = [t for t in fig.data if t.name.startswith("floor")][0]
    assert floor.y[0] == pytest.approx(-W.INV_E) and floor.y[1] - floor.x[1] == pytest.approx(-W.INV_E)
    pts = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in pts] == ["one", "ce"]
    assert pts[0].x[0] == pytest.approx(point["bound_err_t"] + point["bound_fa"])
    assert pts[0].y[0] == pytest.approx(point["bound_slack"])
    assert point["bound_slack"] >= point["bound_err_t"] + point["bound_fa"] - W.INV_E - 1e-9  # the cap
    table = W.bound_table(pd.DataFrame([point]))
    assert "err_S − LA_e (≤ 1/e)" in table.columns
    assert table["err_S − LA_e (≤ 1/e)"].iloc[0] <= W.INV_E + 1e-9
    with pytest.raises(ValueError, match="at least one bound_point row"):
        W.bound_check_figure()


def test_bound_sweep_and_compare(lab):
    df = W.bound_sweep("noise", [0.0, 1.0], n=300, epochs=1, lab=lab)
    assert list(df["noise"]) == [0.0, 1.0]
    fig = W.bound_sweep_figure(df, "noise")
    assert list(fig.data[0].x) == ["0", "1"]
    with pytest.raises(ValueError, match="knob must be one of"):
        W.bound_sweep("colour", [1.0], lab=lab)
    with pytest.raises(ValueError, match="noise is the swept knob"):
        W.bound_sweep("noise", [1.0], noise=0.5, lab=lab)
    cmp = W.bound_compare([{"method": "ce"}, {"method": "fa", "lambda_fa": 0.1}], n=300, epochs=1, lab=lab)
    assert list(cmp["variant"]) == ["ce", "fa lambda_fa=0.1"]
    assert list(W.bound_sweep_figure(cmp, "variant").data[0].x) == ["ce", "fa lambda_fa=0.1"]
    with pytest.raises(ValueError, match="variants must be a non-empty list"):
        W.bound_compare([], lab=lab)


def test_bound_panel_computes_and_queues(lab):
    from cmkd_lab.widgets.theory_panel import BoundPanel

    panel = BoundPanel(lab=lab, auto=False)
    panel.compute(block=True, timeout=600)
    assert panel.error is None, panel.error
    assert len(panel.points) == 1
    assert [t.type for t in panel.figure.data] == ["bar"] * 4
    panel.auto.value = True
    panel.set(gap=0.0)          # starts a point …
    panel.set(noise=1.0)        # … and queues the latest setting
    assert panel.wait(600)
    assert panel.error is None, panel.error
    assert panel.points[-1]["noise"] == 1.0 and panel.points[-1]["gap"] == 0.0
    assert "Points measured so far" in panel.trail.value


# -------------------------------------------------------------------- bench
def test_load_or_run_bench_runs_then_reads(tmp_path, lab):
    kw = dict(tasks=["synthetic"], methods=["ce", "kd"], seeds=[0], epochs=1, out=tmp_path, lab=lab, progress=None)
    res = W.load_or_run_bench(**kw)["synthetic"]
    rows = {(r["pairing"], r["method"]) for r in res["summary"]}
    skipped = {(s["pairing"], s["method"]) for s in res["skipped"]}
    shared = {(a["pairing"], a["method"]) for a in res["aliases"]}  # ce's unpaired run serves under paired
    # Every (pairing, method) is run, shared with another pairing's run, or skipped with a reason; kd needs pairs.
    assert rows | skipped | shared == {(p, m) for p in ("unpaired", "paired") for m in ("ce", "kd")}
    assert not rows & skipped and not rows & shared and ("paired", "ce") in shared
    assert ("unpaired", "ce") in rows and ("paired", "kd") in rows and ("unpaired", "kd") in skipped
    saved = tmp_path / "synthetic" / "results.json"
    assert res["source"] == str(saved)
    again = W.load_or_run_bench(run_missing=False, **kw)["synthetic"]
    assert again["summary"] == json.loads(saved.read_text())["summary"]

    table = W.bench_table(res)
    for r in res["summary"]:
        assert table.loc[(r["pairing"], r["method"]), "test acc % (best val)"] == \
            pytest.approx(round(100 * r["test_acc_best_val_mean"], 2))
    fig = W.bench_figure(res)
    assert [t.name for t in fig.data] == ["unpaired", "paired"]
    assert [t.name for t in W.bench_runs_figure(res).data] == ["unpaired", "paired"]

    from cmkd_lab.widgets.bench_panel import BenchPanel
    panel = BenchPanel({"synthetic": res})
    assert "kd" in panel.table.value and panel.bars.outputs


def test_shipped_results_are_read_before_anything_runs(tmp_path, lab, monkeypatch):
    saved = W.load_or_run_bench(tasks=["synthetic"], methods=["ce", "fa"], seeds=[0, 1], epochs=1, out=tmp_path / "b",
                                lab=lab, progress=None)["synthetic"]
    docs = tmp_path / "nb" / "docs" / "results"
    docs.mkdir(parents=True)
    (docs / "bench_synthetic.json").write_text((tmp_path / "b" / "synthetic" / "results.json").read_text())
    monkeypatch.chdir(tmp_path / "nb")
    got = W.load_or_run_bench(tasks=["synthetic"], lab=lab, progress=None, run_missing=False)["synthetic"]
    assert got["source"] == str(Path("docs/results/bench_synthetic.json")) and got["summary"] == saved["summary"]
    assert "the results shipped with cmkd_lab (`bench_synthetic.json`)" in W.bench_note(got)
    assert str(tmp_path) not in W.bench_note(got)  # no absolute path of this machine
    assert "2 seeds" in W.bench_note(got) and "±12.7" in W.bench_note(got)
    fig = W.bench_delta_figure(got)
    fa = [r for r in saved["comparisons"] if r["method"] == "fa" and r["cell"] == "unpaired"][0]
    assert [t for t in fig.data if t.type == "bar"][0].y[0] == pytest.approx(100 * fa["delta_mean"])
    assert "Paired differences" in W.bench_markdown(got).data
    import cmkd_lab.widgets.shipped as shipped
    monkeypatch.setattr(shipped, "shipped_dirs", lambda: [docs])  # this checkout's own docs/results left out
    assert W.load_controls("synthetic", "scarce") is None  # not shipped here: one line says so
    assert "has not been made for this release" in W.controls_markdown(None, what="x").data
    assert W.shipped_controls() == []
    overview = W.controls_overview().data
    assert "shipped with this release: none" in overview and "Not made yet: hapt" not in overview
    assert "Not made yet: HAPT with all labels" in overview


def test_bench_inputs_are_checked(tmp_path, lab):
    with pytest.raises(ValueError, match="tasks must be built-in task names"):
        W.load_or_run_bench(tasks=["nope"], lab=lab, out=tmp_path)
    with pytest.raises(FileNotFoundError, match="no bench results for task 'hapt'"):
        W.load_or_run_bench(tasks=["hapt"], lab=lab, out=tmp_path, path=tmp_path, run_missing=False)
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"task": "hapt"}))
    with pytest.raises(ValueError, match="not a bench results.json"):
        W.load_or_run_bench(tasks=["hapt"], lab=lab, path=bad)
    assert W.find_bench_results("digits-speech", [bad]) is None


# ------------------------------------------------------- quickstart and byod
def test_run_quickstart_writes_result_and_report(tiny_task, lab, tmp_path):
    result, figs = W.run_quickstart(task=tiny_task, method="fa", epochs=1, lab=lab, out=tmp_path, progress=None)
    assert json.loads((tmp_path / "result.json").read_text())["method"] == "fa"
    assert (tmp_path / "report.html").read_text().startswith("<!doctype html>")
    assert "Loss terms" in figs and "Accuracy" in figs
    row = W.result_summary(result).iloc[0]
    assert row["method"] == "fa" and row["student test acc (best val)"] == result["student_test_acc"]
    assert "NaN" not in repr(W.result_summary(result)) and "%" in repr(W.result_summary(result))
    with pytest.raises(TypeError, match="result must be"):
        W.result_summary({"x": 1})


def test_demo_arrays_and_from_arrays(lab):
    from cmkd_lab import CrossModalTask

    a = W.demo_arrays("sklearn", n=200, lab=lab)
    assert a["teacher_x"].shape == (200, 20) and a["student_x"].shape == (200, 16)
    assert a["paired_teacher_x"].shape == (200, 20)
    task = CrossModalTask.from_arrays(a["teacher_x"], a["teacher_y"], a["student_x"], a["student_y"],
                                      paired_teacher_x=a["paired_teacher_x"], class_names=a["class_names"])
    ov = W.task_overview(task)
    assert ov.loc[("teacher", "train"), "samples"] == len(task.teacher["train"])
    assert int(ov.loc[("student", "test"), a["class_names"]].sum()) == len(task.student["test"])
    seq = W.demo_arrays("hapt-slice", n=100, lab=lab)
    assert seq["teacher_x"].shape == (100, 3, 128) and seq["student_x"].shape == (100, 3, 128)
    with pytest.raises(ValueError, match="kind must be one of"):
        W.demo_arrays("images", lab=lab)
    with pytest.raises(TypeError, match="task must be a CrossModalTask"):
        W.task_overview(np.zeros(3))


def test_run_with_baseline_puts_ce_next_to_the_method(tiny_task, lab, tmp_path):
    results, figs = W.run_with_baseline(task=tiny_task, method="fa", epochs=1, lab=lab, out=tmp_path, progress=None)
    assert list(results) == ["fa", "ce"] and json.loads((tmp_path / "result.json").read_text())["method"] == "fa"
    table = W.result_summary(results)
    d = table.set_index("method").loc["fa", "Δ vs ce (points, 1 seed)"]
    assert d == pytest.approx(round(100 * (results["fa"]["student_test_acc"] - results["ce"]["student_test_acc"]), 2))
    cmp = figs["Validation accuracy: fa vs ce"]
    assert tuple(cmp.layout.yaxis.range) == (0, 1.02) and cmp.layout.shapes  # chance line
    with pytest.raises(ValueError, match="baseline must differ"):
        W.run_with_baseline(task=tiny_task, method="ce", baseline="ce", lab=lab)


def test_run_byod_compares_with_the_baseline(tiny_task, lab):
    results, figs = W.run_byod(tiny_task, method="la", baseline="ce", epochs=1, lab=lab, progress=None)
    assert set(results) == {"la", "ce"}
    cmp = figs["Validation accuracy: la vs ce"]
    assert [t.name for t in cmp.data] == ["la", "ce"]
    assert list(cmp.data[1].y) == [r["val_acc"] for r in results["ce"]["history"]]
    with pytest.raises(TypeError, match="build one with CrossModalTask.from_arrays"):
        W.run_byod("hapt", lab=lab)


# ------------------------------------------------------------------- regime
def _sweep_with_points(values_fa, values_ucmkd, deltas_fa, deltas_ucmkd):
    """A small sweep: one cell per λ, 2 seeds; ``purity`` and the CE term as diagnostics."""
    pts, cells = [], []
    for m, vals, ds in (("fa", values_fa, deltas_fa), ("ucmkd", values_ucmkd, deltas_ucmkd)):
        for i, (v, d) in enumerate(zip(vals, ds)):
            lam = 1 if i < 2 else 10
            pts.append({"cell": f"lambda_fa={lam}", "values": {"lambda_fa": lam}, "method": m, "seed": i % 2,
                        "delta": d, "diag": {"purity": v, "ce": 1.0 + v}})
    preds = [{"method": m, "diagnostic": d, "rho": 0.0, "p_value": 1.0, "n": 4}
             for m in ("fa", "ucmkd", "all") for d in ("purity", "ce", "w1")]
    return {"task": "synthetic", "methods": ["ce", "fa", "ucmkd"], "baseline": "ce", "seeds": [0, 1],
            "grid": {"lambda_fa": [1, 10]}, "grid_kinds": {"lambda_fa": "config"}, "diag_epoch": 2,
            "cells": cells, "points": pts, "predictors": preds}


def test_predictor_table_note_and_scatter_share_one_computation():
    from scipy import stats

    from cmkd_lab.viz import diagnostic_scatter
    res = _sweep_with_points([0.1, 0.2, 0.3, 0.4], [0.4, 0.1, 0.3, 0.2], [-0.01, -0.02, -0.04, -0.08],
                             [0.0, 0.01, -0.01, 0.02])
    pred = W.best_predictor(res, min_n=3)
    rho = stats.spearmanr([0.1, 0.2, 0.3, 0.4], [-0.01, -0.02, -0.04, -0.08]).statistic
    assert pred["method"] in ("fa", "all") and pred["diagnostic"] in ("purity", "ce")
    table = W.predictor_table(res)
    fa = table[(table["method"] == "fa") & (table["diagnostic"] == "purity")].iloc[0]
    assert fa["ρ"] == pytest.approx(rho) and fa["p (Bonferroni)"] == pytest.approx(min(1, 3 * fa["p"]))
    assert "w1" not in set(table["diagnostic"])  # not stored with the points: not recomputed, not shown
    fig = diagnostic_scatter(res, "purity", method="fa")
    assert f"ρ = {rho:+.2f}" in fig.layout.title.text  # the scatter says what the table says
    note = W.predictor_note(res, dict(pred, diagnostic="ce", method="fa"))
    assert "CE loss term at epoch 2" in note and "not the method `ce`" in note
    assert "2/4! = 0.083" in note and "No early diagnostic" in W.predictor_note(res, None)
    assert "(CE loss term" not in repr(table) and "CE loss term" in set(table["diagnostic"])
    legend = " ".join(table.notes)  # every diagnostic the table names is explained under it, a loss term as one
    from cmkd_lab.results.keys import describe
    assert f"purity: {describe('purity').label}." in legend
    assert "CE loss term: " in legend and "not the method of that name" in legend and "key" not in table.columns


def test_scatter_gives_every_series_its_own_colour():
    from cmkd_lab.viz import diagnostic_scatter
    res = W.shipped_result("regime_synthetic_unlabelled")
    if res is None:
        pytest.skip("the shipped unlabelled sweep is not in this installation")
    fig = diagnostic_scatter(res, "label_prior_tv", method="ucmkd-joint", fix={"student_unlabelled": True})
    colours = [t.marker.color for t in fig.data]
    assert len(colours) == 12 and len(set(colours)) == 12
    assert "known before training" in fig.layout.xaxis.title.text and "epoch" not in fig.layout.xaxis.title.text


def test_phase_diagram_draws_no_empty_panel():
    from cmkd_lab.viz import phase_diagram
    res = W.shipped_result("regime_synthetic_unlabelled")
    if res is None:
        pytest.skip("the shipped unlabelled sweep is not in this installation")
    without = phase_diagram(res, fix={"overlap": 0.6, "student_unlabelled": False})  # entmin needs unlabelled data
    assert [a.text for a in without.layout.annotations] == ["fa", "ucmkd-joint", "ucmkd"]
    assert len(without.data) == 3


def test_entmin_comparison_reads_one_cell():
    res = W.shipped_result("regime_synthetic_unlabelled")
    if res is None:
        pytest.skip("the shipped unlabelled sweep is not in this installation")
    t = W.entmin_comparison(res, overlap=0.6, student_unlabelled=True, student_fraction=0.01, label_shift=0)
    assert list(t.index) == ["fa", "ucmkd-joint", "entmin"]
    row = W.cell_delta(res, "entmin", overlap=0.6, student_unlabelled=True, student_fraction=0.01, label_shift=0)
    assert t.loc["entmin", "Δ vs ce (points)"] == pytest.approx(100 * row["delta_mean"])
    assert "NaN" not in repr(t) and "+5.0" in repr(t)
    # paired by seed from the runs; with the same seeds its mean is the difference of the two Δ vs ce
    joint = W.cell_delta(res, "ucmkd-joint", overlap=0.6, student_unlabelled=True, student_fraction=0.01, label_shift=0)
    assert t.loc["ucmkd-joint", "Δ vs entmin (points)"] == pytest.approx(
        100 * (joint["delta_mean"] - row["delta_mean"]), abs=1e-6)


def test_zero_spread_says_it_cannot_tell():
    res = {"task": "synthetic", "methods": ["ce", "ucmkd"], "baseline": "ce", "seeds": [0, 1, 2], "metric": "acc",
           "grid": {"lambda_fa": [1]}, "grid_kinds": {"lambda_fa": "config"}, "executor": "process pool (2 workers)",
           "cells": [{"cell": "lambda_fa=1", "values": {"lambda_fa": 1}, "method": "ce", "acc_mean": 0.8,
                      "acc_std": 0.01},
                     {"cell": "lambda_fa=1", "values": {"lambda_fa": 1}, "method": "ucmkd", "delta_mean": 0.0,
                      "delta_std": 0.0, "ci_low": 0.0, "ci_high": 0.0, "wins": 0, "losses": 0, "mde": 0.0,
                      "seeds_for_target": 2, "target": 0.01, "n_pairs": 3, "significant": False}]}
    text = W.regime_table(res).data
    assert "MDE 0.0" not in text and "| 2 |" not in text and "zero spread" in text
    assert "process pool" not in text and "parallel worker processes" in text


def test_phase_diagram_cuts_intervals_of_two_seeds():
    from cmkd_lab.viz import phase_diagram
    res = {"task": "synthetic", "methods": ["ce", "fa"], "baseline": "ce", "seeds": [0, 1],
           "grid": {"lambda_fa": [1, 10]}, "grid_kinds": {"lambda_fa": "config"},
           "cells": [{"cell": f"lambda_fa={v}", "values": {"lambda_fa": v}, "method": "fa", "delta_mean": d,
                      "ci_low": d - 1.3, "ci_high": d + 1.2, "wins": 1, "losses": 1, "significant": False}
                     for v, d in ((1, 0.02), (10, -0.03))]}
    fig = phase_diagram(res)
    assert "2 seeds" in fig.layout.title.text and "mechanics" in fig.layout.title.text
    assert tuple(fig.layout.yaxis.range) == pytest.approx((-9.0, 9.0))  # 3 × the largest |mean|, in points
    assert "[-128, +122]" in fig.data[0].text[0]
    assert "2 seeds" in W.sweep_note(dict(res, runs=[], config={"epochs": 3}))


def test_run_with_baseline_refuses_an_unknown_baseline_before_training(monkeypatch):
    import cmkd_lab.widgets.quickstart as q
    monkeypatch.setattr(q, "run_quickstart", lambda **kw: (_ for _ in ()).throw(AssertionError("trained")))
    with pytest.raises(ValueError, match=r"baseline must be one of .*; got baseline='nosuch'"):
        q.run_with_baseline(task="synthetic", baseline="nosuch")


def test_debugger_panel_turns_the_inner_learning_rate(lab):
    """The knob notebook 03 turns by hand is on the panel too: its default is the method's, and a value set on
    the panel reaches the run's config (checked before any training)."""
    from cmkd_lab.distill.methods.ucmkd import UCMKDOptions
    panel = W.DebuggerPanel(lab=lab)
    assert panel.options()["inner_lr"] == UCMKDOptions().inner_lr == 1e-3
    panel.set(inner_lr=0.01)
    assert W.DebugSession(lab=lab, **panel.options()).config.inner_lr == 0.01
    panel.set(method="fa")  # another method never reads it: refused with the reason, in the panel's status
    assert panel.run() is None and "inner_lr=0.01 is an option of method &#x27;ucmkd&#x27;" in panel.status.value


def test_entmin_reading_says_what_the_table_shows_in_every_setting():
    """The sentence under notebook 05's entmin comparisons is computed from the same paired differences as the
    table: in every setting with unlabelled data of the shipped sweep, a method is called beyond noise exactly
    when its interval against `ce` is above zero, and the verdict says "both" exactly when some method's interval
    is above zero against `ce` and against `entmin` (recomputed here from the runs, seed by seed)."""
    from cmkd_lab.results.stats import paired_difference
    res = W.shipped_result("regime_synthetic_unlabelled")
    if res is None:
        pytest.skip("regime_synthetic_unlabelled is not shipped")
    settings = {tuple(sorted(c["values"].items())) for c in res["cells"] if c["values"].get("student_unlabelled")}
    assert len(settings) >= 4
    acc = {(r["cell"], r["method"], r["seed"]): r["student_test_acc"] for r in res["runs"]}
    for setting in settings:
        values = dict(setting)
        text = W.entmin_reading(res, **values)
        both = False
        for m in ("fa", "ucmkd-joint"):
            r = W.cell_delta(res, m, **values)
            if r is None:
                continue
            up = r.get("ci_low") is not None and r["ci_low"] > 0 and not r.get("cannot_tell")
            said = f"`{m}` {100 * r['delta_mean']:+.1f} points vs `ce`, {r['wins']}/{r['losses']} (beyond noise)"
            assert (said in text) == up, (values, m, text)
            seeds = sorted(s for (c, mm, s) in acc if c == r["cell"] and mm == m and (c, "entmin", s) in acc)
            vs = paired_difference([acc[(r["cell"], m, s)] - acc[(r["cell"], "entmin", s)] for s in seeds])
            both |= up and vs["ci_low"] > 0
        assert ("both `ce` and `entmin` beyond" in text) == both, (values, text)
