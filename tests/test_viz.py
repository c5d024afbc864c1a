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
    assert "0.1·fa (in the loss)" in _names(fig) and fig.layout.yaxis.type == "linear"
    w = [t for t in fig.data if t.name.startswith("0.1·fa")][0]
    assert list(w.y) == pytest.approx([1.0, 0.7])
    assert viz.loss_curves(h[:1] and [{"epoch": 1, "ce": 1.0}]).layout.yaxis.type == "log"


def test_distance_curves_start_at_epoch_0(result):
    for fn in (viz.mmd_curves, viz.ot_curves, viz.gap_curves, viz.bound_bars):
        fig = fn(result)
        assert isinstance(fig, go.Figure) and len(fig.data) >= 2
        assert list(fig.data[0].x) == [0, 1, 2], fn.__name__
    fig = viz.mmd_curves(result)
    p = [t for t in fig.data if t.name == "p-value (permutation)"][0]
    assert list(p.y) == pytest.approx([r["mmd_p"] for r in viz.diagnostic_history(result)])


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
    assert len(f1.data) == 2 * K
    for a, b in zip(f1.data, f2.data):
        np.testing.assert_array_equal(a.x, b.x)
    # Fit on the frozen teacher: the teacher's points are the same in every frame.
    np.testing.assert_array_equal(f1.frames[0].data[0].x, f1.frames[2].data[0].x)
    assert {t.marker.symbol for t in f1.data} == {"circle", "x"}


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
    assert sum(len(t.x) for t in fig.data[0::2]) == 50 and sum(len(t.x) for t in fig.data[1::2]) == 50
    assert [len(t.x) for t in fig.data[0::2]] == [10] * 5


def test_run_figures_lists_every_figure(result, monkeypatch):
    monkeypatch.setenv("CMKD_LAB_FAST", "1")
    assert viz.default_projection() == "pca"
    titles = [t for t, _ in viz.run_figures(result)]
    assert titles == ["Loss terms", "Accuracy", "MMD between student and teacher features",
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
