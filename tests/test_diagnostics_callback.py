"""DiagnosticsCallback attached to training: records, artefacts, reference sets, resume, run_one wiring."""
import json

import numpy as np
import pytest

from cmkd_lab.diagnostics import DiagnosticsCallback
from cmkd_lab.distill import DistillConfig, Trainer

KEYS = {"mmd2", "mmd_p", "ot_cost", "sinkhorn_div", "purity", "purity_chance", "bound_err_t", "bound_fa", "bound_la",
        "bound_sum", "bound_err_s", "bound_holds", "centroid_gap", "mean_cos", "kappa_mean", "w1"}


@pytest.fixture(scope="module")
def fitted(small_task):
    cb = DiagnosticsCallback(n_ref=64, n_snapshot=40, seed=0)
    tr = Trainer(small_task, "fa", DistillConfig(epochs=3, teacher_epochs=2, diagnostics_every=2), callbacks=[cb])
    return tr, cb, tr.fit()


def test_records_hold_flat_scalars_at_the_chosen_epochs(fitted):
    tr, cb, r = fitted
    h = r["history"]
    assert "mmd2" not in h[0] and KEYS <= set(h[1]) and KEYS <= set(h[2])  # every=2, plus the last epoch
    for k in KEYS:
        assert isinstance(h[1][k], (int, float, bool)), k
    assert h[1]["bound_sum"] == pytest.approx(h[1]["bound_err_t"] + h[1]["bound_fa"] + h[1]["bound_la"])
    assert h[1]["bound_fa"] == pytest.approx(h[1]["bound_tau"] * h[1]["w1"])
    assert 0 <= h[2]["purity"] <= 1 and 0 < h[2]["purity_chance"] < 1


def test_artefacts_are_small_and_json(fitted):
    tr, cb, r = fitted
    d = r["diagnostics"]
    assert d["epochs"] == [0, 2, 3] and d["initial"]["mmd2"] is not None
    assert [s["epoch"] for s in d["snapshots"]] == [0, 2, 3]
    K = small_task_K = tr.task.num_classes
    rec = d["records"][-1]
    assert np.array(rec["conf_student"]).shape == (K, K) and "bound_statement" in rec
    assert len(d["features_teacher"]) == len(d["labels_teacher"]) <= 40
    assert len(d["snapshots"][0]["features_student"]) == len(d["labels_student"])
    text = json.dumps(r, allow_nan=False)
    assert len(text) < 5_000_000
    assert d["settings"]["bandwidths"] and d["settings"]["eps_absolute"] > 0 and small_task_K == K


def test_reference_sets_are_the_val_splits(fitted):
    tr, cb, _ = fitted
    sv = tr.task.student["val"]
    np.testing.assert_array_equal(cb._xs, sv.x[cb._is])
    np.testing.assert_array_equal(cb._ys, sv.y[cb._is])
    assert len(cb._ys) == min(64, len(sv))


def test_same_seed_same_diagnostics(small_task, fitted):
    _, _, r1 = fitted
    cb = DiagnosticsCallback(n_ref=64, n_snapshot=40, seed=0)
    r2 = Trainer(small_task, "fa", DistillConfig(epochs=3, teacher_epochs=2, diagnostics_every=2),
                 callbacks=[cb]).fit()
    for k in ("mmd2", "mmd_p", "w1", "purity", "bound_sum"):
        assert r2["history"][2][k] == pytest.approx(r1["history"][2][k], rel=1e-6)


def test_off_when_diagnostics_every_is_zero(small_task):
    cb = DiagnosticsCallback(n_ref=32)
    r = Trainer(small_task, "ce", DistillConfig(epochs=1, teacher_epochs=2, diagnostics_every=0),
                callbacks=[cb]).fit()
    assert r["diagnostics"]["enabled"] is False and "mmd2" not in r["history"][0]


def test_state_roundtrip_keeps_artefacts(fitted):
    _, cb, _ = fitted
    st = json.loads(json.dumps(cb.state_dict()))
    other = DiagnosticsCallback()
    other.load_state_dict(st)
    assert other.diagnostics["epochs"] == [0, 2, 3] and len(other.diagnostics["snapshots"]) == 3


def test_run_one_attaches_diagnostics_by_default(small_task, tmp_path):
    from cmkd_lab.experiments import run_one
    cfg = DistillConfig(epochs=1, teacher_epochs=2)
    r = run_one(small_task, "ce", cfg, tmp_path / "a", report=False)
    assert "mmd2" in r["history"][0] and r["diagnostics"]["enabled"]
    saved = json.loads((tmp_path / "a" / "result.json").read_text())
    assert saved["diagnostics"]["epochs"] == [0, 1]
    r = run_one(small_task, "ce", cfg, tmp_path / "b", report=False, diagnostics=False)
    assert "mmd2" not in r["history"][0] and "diagnostics" not in r
    mine = DiagnosticsCallback(n_ref=16, n_snapshot=0, initial=False)
    r = run_one(small_task, "ce", cfg, None, callbacks=[mine])
    assert r["diagnostics"]["epochs"] == [1]  # the given callback is used, no second one added


@pytest.mark.parametrize("kw,match", [
    (dict(n_ref=2), "n_ref must be >= 4"),
    (dict(every=-1), "every must be >= 0"),
    (dict(eps=0.0), "eps must be > 0"),
    (dict(snapshot_epochs="last"), "snapshot_epochs must be"),
])
def test_bad_arguments(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DiagnosticsCallback(**kw)
