"""Figures: each returns a go.Figure with the expected content; projections are seeded and reproducible."""
import numpy as np
import plotly.graph_objects as go
import pytest

from cmkd_lab import viz
from cmkd_lab.diagnostics import DiagnosticsCallback
from cmkd_lab.distill import DistillConfig, Trainer


@pytest.fixture(scope="module")
def result(small_task):
    cb = DiagnosticsCallback(n_ref=64, n_snapshot=30, seed=0)
    return Trainer(small_task, "fa", DistillConfig(epochs=2, teacher_epochs=2), callbacks=[cb]).fit()


def _names(fig):
    return [t.name for t in fig.data]


def test_loss_curves_show_weighted_terms_and_linear_axis_for_negative_la():
    h = [{"epoch": 1, "loss": 2.0, "ce": 1.0, "fa": 10.0, "la": -0.2}, {"epoch": 2, "loss": 1.5, "ce": 0.8, "fa": 7.0,
                                                                       "la": -0.1}]
    fig = viz.loss_curves(h, config={"lambda_fa": 0.1, "lambda_la": 1.0})
    assert "0.1 × FA term (in the loss)" in _names(fig) and fig.layout.yaxis.type == "linear"
    assert "LA term" in _names(fig) and not any(n.startswith("1 ×") for n in _names(fig))  # λ2 = 1: drawn once
    w = [t for t in fig.data if t.name.startswith("0.1 × FA")][0]
    assert list(w.y) == pytest.approx([1.0, 0.7])
    assert viz.loss_curves(h[:1] and [{"epoch": 1, "ce": 1.0}]).layout.yaxis.type == "log"


def test_distance_curves_start_at_epoch_0(result):
    for fn in (viz.mmd_curves, viz.ot_curves, viz.gap_curves, viz.bound_bars):
        fig = fn(result)
        assert isinstance(fig, go.Figure) and len(fig.data) >= 2
        assert list(fig.data[0].x) == [0, 1, 2], fn.__name__
    fig = viz.mmd_curves(result)
    p = [t for t in fig.data if t.name == "−log10 p (permutation test)"][0]
    assert list(p.y) == pytest.approx([-np.log10(r["mmd_p"]) for r in viz.diagnostic_history(result)])
    # the 0.05 line and the floor 1/(1+P) of a P-permutation test are drawn and labelled
    P = result["diagnostics"]["settings"]["n_permutations"]
    ys = sorted(round(sh.y0, 6) for sh in fig.layout.shapes)
    assert ys == sorted([round(-np.log10(0.05), 6), round(np.log10(1 + P), 6)])
    assert any("1/(1+P)" in a.text for a in fig.layout.annotations)


def test_bound_bars_stack_the_terms_and_mark_failures():
    h = [{"epoch": 1, "mmd2": 0.1, "bound_err_t": 0.3, "bound_fa": 0.2, "bound_la": -0.1, "bound_sum": 0.4,
          "bound_err_s": 0.5, "bound_holds": False},
         {"epoch": 2, "mmd2": 0.1, "bound_err_t": 0.3, "bound_fa": 0.2, "bound_la": 0.1, "bound_sum": 0.6,
          "bound_err_s": 0.5, "bound_holds": True}]
    fig = viz.bound_bars(h)
    assert fig.layout.barmode == "relative"
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [list(b.y) for b in bars] == [[0.3, 0.3], [0.2, 0.2], [-0.1, 0.1]]
    fails = [t for t in fig.data if t.name == "bound does not hold"][0]
    assert list(fails.x) == [1]


def test_label_heatmaps_and_transport_plan(result):
    K = len(result["diagnostics"]["class_names"])
    fig = viz.label_heatmaps(result)
    hm = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(hm) == 6 and np.array(hm[1].z).shape == (K, K)
    np.testing.assert_allclose(np.array(hm[0].z).sum(1), 1.0, atol=1e-3)  # mean predicted distributions
    fig = viz.transport_plan_figure(result, epoch=0)
    mass = np.array(fig.data[1].z)
    assert mass.shape == (K, K) and mass.sum() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="epoch must be one of"):
        viz.transport_plan_figure(result, epoch=7)
    with pytest.raises(ValueError, match="epoch must be one of the diagnosed epochs"):
        viz.label_heatmaps(result, epoch=99)


def test_pca_overlay_is_reproducible_with_a_frame_per_snapshot(result):
    f1 = viz.run_feature_overlay(result, method="pca", fit_on="teacher", seed=0)
    f2 = viz.run_feature_overlay(result, method="pca", fit_on="teacher", seed=0)
    assert len(f1.frames) == 3 and len(f1.layout.sliders[0].steps) == 3
    K = len(result["diagnostics"]["class_names"])
    assert len(f1.data) == 2 * K + K + 2  # two clouds per class, then a legend entry per class and per modality
    assert all(len(fr.data) == 2 * K for fr in f1.frames)  # frames move the clouds, not the legend entries
    for a, b in zip(f1.data, f2.data):
        np.testing.assert_array_equal(a.x, b.x)
    # Fit on the frozen teacher: the teacher's points are the same in every frame.
    np.testing.assert_array_equal(f1.frames[0].data[0].x, f1.frames[2].data[0].x)
    assert {t.marker.symbol for t in f1.data if t.showlegend is False} == {"circle", "x"}


def test_umap_projection_is_seeded_and_supports_both_fits():
    rng = np.random.default_rng(0)
    zt = rng.normal(size=(60, 8))
    zs = [rng.normal(size=(40, 8)) + 1.0, rng.normal(size=(40, 8))]
    t1, s1 = viz.project_features(zt, zs, method="umap", fit_on="both", seed=3)
    t2, s2 = viz.project_features(zt, zs, method="umap", fit_on="both", seed=3)
    np.testing.assert_allclose(t1, t2)
    np.testing.assert_allclose(s1[1], s2[1])
    tt, ss = viz.project_features(zt, zs, method="umap", fit_on="teacher", seed=3)
    assert tt.shape == (60, 2) and [s.shape for s in ss] == [(40, 2), (40, 2)]


def test_overlay_subsamples_stratified():
    rng = np.random.default_rng(1)
    zt, yt = rng.normal(size=(500, 4)), np.repeat(np.arange(5), 100)
    zs, ys = rng.normal(size=(300, 4)), np.repeat(np.arange(5), 60)
    fig = viz.feature_overlay(zt, yt, zs, ys, method="pca", max_points=50)
    pts = [t for t in fig.data if t.showlegend is False]  # the clouds; the legend entries carry no points
    assert sum(len(t.x) for t in pts[0::2]) == 50 and sum(len(t.x) for t in pts[1::2]) == 50
    assert [len(t.x) for t in pts[0::2]] == [10] * 5
    # one legend entry per class (its colour) and one per modality (its marker): 5 + 2, no repeated colour
    keys = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in keys][:5] == [str(k) for k in range(5)] and len(keys) == 7
    assert len({t.marker.color for t in keys[:5]}) == 5
    # many snapshots: each set is cut so that all of them stay under max_total points
    fig = viz.feature_overlay(zt, yt, {f"e{i}": zs for i in range(9)}, ys, method="pca", max_points=300,
                              max_total=1000)
    assert sum(len(t.x) for t in fig.data if t.showlegend is False) == 2 * 100


def test_run_figures_lists_every_figure(result, monkeypatch):
    monkeypatch.setenv("CMKD_LAB_FAST", "1")
    assert viz.default_projection() == "pca"
    titles = [t for t, _ in viz.run_figures(result)]
    assert titles == ["Loss terms", "Accuracy", "Gradient audit", "MMD between student and teacher features",
                      "Optimal transport and transport-plan class purity", "The bound, term by term",
                      "Modality gap", "Label distributions", "Transport plan", "Teacher and student features (PCA)"]
    assert not any("features (" in t for t, _ in viz.run_figures(result, projection="none"))
    monkeypatch.setenv("CMKD_LAB_FAST", "0")
    assert viz.default_projection() == "umap"


def test_figures_without_diagnostics_do_not_fail():
    r = {"history": [{"epoch": 1, "ce": 1.0, "val_acc": 0.5}]}
    assert [t for t, _ in viz.run_figures(r)] == ["Loss terms", "Accuracy"]
    assert isinstance(viz.mmd_curves(r), go.Figure) and isinstance(viz.label_heatmaps({"diagnostics": {}}), go.Figure)


@pytest.mark.parametrize("call,match", [
    (lambda: viz.project_features(np.zeros((5, 2)), [np.zeros((3, 2))], method="tsne"), "method must be one of"),
    (lambda: viz.project_features(np.zeros((5, 2)), [np.zeros((3, 2))], fit_on="student"), "fit_on must be one of"),
    (lambda: viz.project_features(np.zeros((5, 2)), [np.zeros((3, 3))], method="pca"), "teacher's dimension"),
    (lambda: viz.feature_overlay(np.zeros((5, 2)), [0] * 4, np.zeros((3, 2)), [0] * 3, method="pca"),
     "y_teacher must have one label"),
    (lambda: viz.loss_curves({"epoch": 1}), "history must be a list"),
    (lambda: viz.run_feature_overlay({"diagnostics": {}}), "no feature snapshots"),
])
def test_bad_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_epoch_axes_are_whole_numbers_and_inner_shift_has_its_own_axis():
    h = [{"epoch": e, "loss": 1.0 / e, "ce": 1.0 / e, "inner_shift": 0.005 * e, "fa": 2.0, "val_acc": 0.5}
         for e in (1, 2, 3)]
    fig = viz.loss_curves(h)
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.tickformat == "d"
    names = _names(fig)
    assert not any(n.startswith("total") for n in names), "ucmkd's loss is its ce: drawn once"
    shift = [t for t in fig.data if t.name.startswith("inner shift")][0]
    assert shift.yaxis == "y2" and "parameter distance" in fig.layout.yaxis2.title.text
    h2 = [dict(r, loss=r["ce"] + r["fa"]) for r in h]
    assert any(n.startswith("total loss") for n in _names(viz.loss_curves(h2)))
    acc = viz.accuracy_curves(h, num_classes=6, reference={"ce": 0.7})
    assert tuple(acc.layout.yaxis.range) == (0, 1.02)
    assert sorted(round(sh.y0, 4) for sh in acc.layout.shapes) == [round(1 / 6, 4), 0.7]
    many = [{"epoch": e, "ce": 1.0} for e in range(1, 41)]
    assert viz.loss_curves(many).layout.xaxis.dtick == 4


def test_transport_plan_has_colour_scales(result):
    fig = viz.transport_plan_figure(result)
    assert all(t.showscale for t in fig.data if isinstance(t, go.Heatmap))
    assert "independent" in fig.data[0].colorbar.title.text


def _hist(**last):
    base = {"mmd2": 0.1, "mmd_p": 1 / 51, "w1": 5.0, "fa": 3.0, "ce": 1.0, "purity": 0.10, "purity_chance": 0.2,
            "purity_matched": 0.6, "teacher_head_on_student_acc": 0.02, "bound_err_t": 0.3, "bound_fa": 2.0,
            "bound_la": -0.1, "bound_sum": 2.2, "bound_err_s": 0.2, "bound_holds": True, "norm_ratio": 1.0}
    return [dict(base, epoch=1), dict(base, epoch=2, **last)]


def _result(method, history, **cfg):
    return {"method": method, "history": history, "student_test_acc": 0.7,
            "config": dict({"inner_lr": 1e-3, "n1": 1, "n2": 1, "lambda_fa": 1.0}, **cfg),
            "diagnostics": {"class_names": list("ABCDE"), "settings": {"n_permutations": 50}}}


def _records(deltas, *, controls=("none",), method="fa", base=0.7):
    """Run records of a control bench: ce at ``base``, ``method`` at base + deltas[control][seed]."""
    runs = []
    for c in controls:
        cell = f"unpaired,{c}"
        values = {"pairing": "unpaired", "teacher_control": c}
        for s, d in enumerate(deltas[c]):
            runs.append({"cell": cell, "values": values, "method": "ce", "seed": s, "student_test_acc": base})
            runs.append({"cell": cell, "values": values, "method": method, "seed": s, "student_test_acc": base + d})
    return runs


def test_control_bars_draw_the_control_table():
    from cmkd_lab.results import control_table
    deltas = {"none": [0.05, 0.06, 0.04], "random": [0.0, 0.02, -0.01], "shuffled-labels": [0.01, 0.0, 0.01],
              "permuted-classes": [0.05, 0.06, 0.04]}  # fa: renamed classes change nothing
    rows = control_table(_records(deltas, controls=tuple(deltas)))
    assert rows[0]["verdict"] == "gain, the teacher's" and rows[0]["names_matter"] is False
    fig = viz.control_bars(rows)
    bars = {t.name: t for t in fig.data if t.xaxis == "x"}
    assert list(bars["real teacher"].y) == pytest.approx([5.0])
    assert list(bars["random (untrained) teacher"].y) == pytest.approx([100 / 300])
    share = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.name for t in share] == ["random (untrained) teacher", "teacher trained on shuffled labels",
                                       "real teacher, classes renamed"]
    assert list(share[0].y) == pytest.approx([100 * (0.05 - 1 / 300)])
    assert list(share[2].y) == pytest.approx([0.0], abs=1e-9)
    with pytest.raises(ValueError, match="control_table rows"):
        viz.control_bars([])


def test_delta_bars_show_interval_mde_and_noise_floor():
    from cmkd_lab.results import paired_summary
    runs = _records({"none": [0.02, 0.04, 0.03, 0.05]})
    runs += [{"cell": "unpaired,none", "values": {"pairing": "unpaired"}, "method": "ce (A/A)", "seed": s,
              "student_test_acc": 0.7 + d} for s, d in enumerate([0.01, -0.01, 0.0, 0.0])]
    rows = paired_summary(runs)
    fig = viz.delta_bars(rows)
    bar = [t for t in fig.data if t.type == "bar"][0]
    fa = [r for r in rows if r["method"] == "fa"][0]
    assert list(bar.y) == pytest.approx([100 * fa["delta_mean"]])
    assert bar.error_y.array[0] == pytest.approx(100 * (fa["ci_high"] - fa["delta_mean"]))
    assert "n=4" in bar.text[0] and "n = 4 seeds paired" in fig.layout.title.text
    band = fig.layout.shapes[0]
    assert (band.y0, band.y1) == pytest.approx((100 * fa["noise_aa_ci_low"], 100 * fa["noise_aa_ci_high"]))


def test_umap_kernels_are_cached_on_disk(tmp_path):
    pytest.importorskip("umap")
    from cmkd_lab.viz import projection
    rng = np.random.default_rng(0)
    viz.project_features(rng.normal(size=(80, 6)), [rng.normal(size=(60, 6))], method="umap", seed=0)
    assert projection._CACHED["n"] > 20, "umap-learn's kernels were not given an on-disk cache"
    from umap import layouts
    assert type(layouts._nb_optimize_layout_euclidean_single_epoch._cache).__name__ == "FunctionCache"
    import os
    os.environ["NUMBA_CACHE_DIR"] = str(tmp_path)
    try:
        assert projection.umap_cache_dir() == tmp_path
    finally:
        del os.environ["NUMBA_CACHE_DIR"]


def test_class_level_terms_are_drawn_weighted_when_their_weight_is_not_one():
    from cmkd_lab.viz.curves import loss_layout
    h = [{"epoch": e, "loss": 1.0 + 2.0 * 0.5, "ce": 1.0, "ccfa": 0.5, "classkd": 0.2, "proto": 0.1} for e in (1, 2)]
    spec = loss_layout(h, {"ccfa_weight": 2.0, "classkd_weight": 1.0, "proto_weight": 0.5})
    assert dict(spec["weighted"]) == {"ccfa": 2.0, "proto": 0.5}  # λ = 1 needs no second curve
