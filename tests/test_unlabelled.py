"""Unlabelled student data (``config.student_unlabelled``) and the relabelling-invariant plan purity."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from cmkd_lab.align import ot_cost
from cmkd_lab.diagnostics import plan_class_purity
from cmkd_lab.distill import DistillConfig, Trainer
from cmkd_lab.distill.methods.base import Batch
from cmkd_lab.experiments import run_one
from test_resume import canon  # a result without its wall-clock times

CFG = DistillConfig(epochs=3, teacher_epochs=2, batch_size=32, diagnostics_every=0, student_fraction=0.1,
                    student_unlabelled=True)


def test_unlabelled_pool_is_the_rest_of_the_train_split(small_task):
    tr = Trainer(small_task, "fa", CFG, progress=False)
    full = small_task.student["train"]
    keep = small_task.student_fraction_indices(0.1, CFG.seed)
    rest = np.setdiff1d(np.arange(len(full.y)), keep)
    assert tr.x_train.shape[0] == keep.size and tr.x_unl.shape[0] == rest.size == len(full.y) - keep.size
    np.testing.assert_array_equal(tr.x_unl.numpy(), full.x[rest])
    np.testing.assert_array_equal(tr.x_train.numpy(), full.x[keep])
    b = next(iter(tr.batches()))
    assert b.x_u.shape == (CFG.batch_size, full.x.shape[1]) and b.z_tu.shape == (CFG.batch_size, CFG.feature_dim)
    # every unlabelled row comes from the pool, none from the labelled subset
    pool = {r.tobytes() for r in tr.x_unl.numpy()}
    assert all(r.tobytes() in pool for r in b.x_u.numpy())
    assert not pool & {r.tobytes() for r in tr.x_train.numpy()}


def test_ce_ignores_the_unlabelled_data_exactly(small_task):
    # The unlabelled stream has its own generator: the labelled batches and ce's run are unchanged.
    a = Trainer(small_task, "ce", CFG, progress=False).fit()
    b = Trainer(small_task, "ce", CFG.replace(student_unlabelled=False), progress=False).fit()
    ha = [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in a["history"]]
    hb = [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in b["history"]]
    assert ha == hb
    assert a["n_student_unlabelled"] == len(small_task.student["train"].y) - len(
        small_task.student_fraction_indices(0.1, 0)) and b["n_student_unlabelled"] == 0


def test_fa_ot_term_is_the_ot_of_the_pooled_batch(small_task):
    tr = Trainer(small_task, "fa", CFG, progress=False)
    b = next(iter(tr.batches()))
    with torch.no_grad():
        terms = tr.method.loss_terms(b)
        zs = torch.cat([tr.student.features(b.x_s), tr.student.features(b.x_u)])
        want = ot_cost(zs, torch.cat([b.z_t, b.z_tu]), cost=CFG.cost, eps=CFG.eps, eps_units=CFG.eps_units,
                       max_iter=CFG.sinkhorn_iter)
        without = tr.method.loss_terms(Batch(**{**b.__dict__, "x_u": None, "z_tu": None}))
    assert torch.allclose(terms["fa"], want, rtol=1e-6)
    assert not torch.allclose(terms["fa"], without["fa"])


@pytest.mark.parametrize("scope", ["full", "last-layer"])
def test_ucmkd_inner_ot_step_sees_the_unlabelled_batch(small_task, scope):
    cfg = CFG.replace(inner_scope=scope, n1=1, n2=0)
    tr = Trainer(small_task, "ucmkd", cfg, progress=False)
    b = next(iter(tr.batches()))
    with torch.no_grad():
        zs = torch.cat([tr.student.features(b.x_s), tr.student.features(b.x_u)])
        want = ot_cost(zs, torch.cat([b.z_t, b.z_tu]), cost=cfg.cost, eps=cfg.eps, eps_units=cfg.eps_units,
                       max_iter=cfg.sinkhorn_iter)
    terms = tr.method.step(b)  # reports the OT term at the student's parameters before the inner step
    assert torch.allclose(terms["fa"], want, rtol=1e-5)
    assert float(terms["inner_shift"]) > 0


def test_resume_with_unlabelled_data_is_exact(small_task, tmp_path):
    from cmkd_lab.distill import Callback

    class StopAfter(Callback):
        def on_epoch_end(self, trainer, record):
            if trainer.epoch == 2:
                trainer.stop()

    ref = run_one(small_task, "fa", CFG, tmp_path / "ref", report=False, diagnostics=False)
    out = tmp_path / "cut"
    r = run_one(small_task, "fa", CFG, out, callbacks=[StopAfter()], report=False, diagnostics=False)
    assert r["status"] == "interrupted" and r["epochs_done"] == 2
    r2 = run_one(small_task, "fa", CFG, out, resume=True, report=False, diagnostics=False)
    assert canon(r2) == canon(ref)


def test_unlabelled_changes_fa_and_is_deterministic(small_task):
    a = Trainer(small_task, "fa", CFG, progress=False).fit()
    b = Trainer(small_task, "fa", CFG, progress=False).fit()
    c = Trainer(small_task, "fa", CFG.replace(student_unlabelled=False), progress=False).fit()
    assert canon(a["history"]) == canon(b["history"])
    assert a["history"][-1]["fa"] != c["history"][-1]["fa"]


@pytest.mark.parametrize("changes, err, msg", [
    ({"student_fraction": 1.0}, ValueError,
     r"student_unlabelled=True uses the student training samples left out by student_fraction, and "
     r"student_fraction=1.0 leaves none: set student_fraction below 1"),
    ({"pairing": "class-matched"}, ValueError,
     r"student_unlabelled=True needs pairing='unpaired' .*; got pairing='class-matched'"),
    ({"student_unlabelled": 1}, TypeError, r"^student_unlabelled must be true or false \(.*\); got "  # every door's
                                           r"student_unlabelled=1 of type int"),
])
def test_bad_unlabelled_options_are_named(changes, err, msg):
    with pytest.raises(err, match=msg):
        DistillConfig(student_fraction=0.1, student_unlabelled=True).replace(**changes).validate()


def test_cli_flag_sets_the_option():
    from cmkd_lab.cli import build_config, make_parser
    args = make_parser().parse_args(["run", "--task", "synthetic", "--student-fraction", "0.05",
                                     "--student-unlabelled", "--out", "x"])
    cfg = build_config(args)
    assert cfg.student_unlabelled is True and cfg.student_fraction == 0.05
    assert build_config(make_parser().parse_args(["run", "--task", "synthetic", "--out", "x"])).student_unlabelled is False


# ----------------------------------------------------------------- purity up to a relabelling
def test_purity_matched_of_a_permuting_plan():
    # Student sample i goes to teacher sample i, whose class is perm[y_i]: no mass joins equal labels,
    # all of it keeps the classes apart.
    K, n = 3, 30
    y = np.repeat(np.arange(K), n // K)
    perm = np.array([1, 2, 0])
    r = plan_class_purity(np.eye(n) / n, y, perm[y], K)
    assert r["purity"] == pytest.approx(0.0) and r["purity_matched"] == pytest.approx(1.0)
    np.testing.assert_array_equal(r["matching"], perm)


def test_purity_matched_equals_brute_force_over_permutations():
    rng = np.random.default_rng(0)
    K = 4
    for _ in range(5):
        P = rng.random((40, 36))
        ys, yt = rng.integers(0, K, 40), rng.integers(0, K, 36)
        r = plan_class_purity(P, ys, yt, K)
        M = r["class_mass"]
        best = max(sum(M[k, s[k]] for k in range(K)) for s in itertools.permutations(range(K)))
        assert r["purity_matched"] == pytest.approx(best, rel=1e-12)
        assert r["purity_matched"] >= r["purity"] - 1e-15
        assert sum(M[k, r["matching"][k]] for k in range(K)) == pytest.approx(best)


def test_shard_cuts_each_field_by_its_own_length():
    from cmkd_lab.distill.distributed import DistContext
    ctx = DistContext.__new__(DistContext)
    ctx.rank, ctx.world_size = 1, 2
    t = lambda n: torch.arange(n)  # noqa: E731
    b = Batch(x_s=t(8), y_s=t(8), z_t=t(8), y_t=t(8), idx_s=t(8), idx_t=t(8), x_u=t(12), z_tu=t(12))
    s = ctx.shard(b)
    assert s.x_s.tolist() == [4, 5, 6, 7] and s.x_u.tolist() == list(range(6, 12))
    s = ctx.shard(Batch(x_s=t(8), y_s=t(8), z_t=t(8), y_t=t(8), idx_s=t(8), idx_t=t(8)))
    assert s.x_u is None and s.z_tu is None


# ----------------------------------------------------------------- entmin, the teacher-free control
def test_entmin_is_ce_plus_the_entropy_of_unlabelled_predictions(small_task):
    tr = Trainer(small_task, "entmin", CFG.replace(lambda_ent=0.5), progress=False)
    b = next(iter(tr.batches()))
    with torch.no_grad():
        terms = tr.method.loss_terms(b)
        p = torch.softmax(tr.student(b.x_u), 1)
        ent = float(-(p * p.log()).sum(1).mean())
        ce = float(torch.nn.functional.cross_entropy(tr.student(b.x_s), b.y_s))
    assert float(terms["ent"]) == pytest.approx(ent, rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(ce + 0.5 * ent, rel=1e-5)
    # lambda_ent = 0: the same run as ce
    a = Trainer(small_task, "entmin", CFG.replace(lambda_ent=0.0), progress=False).fit()
    c = Trainer(small_task, "ce", CFG, progress=False).fit()
    assert [r["val_acc"] for r in a["history"]] == [r["val_acc"] for r in c["history"]]


def test_entmin_without_unlabelled_data_is_refused_and_skipped(small_task, tmp_path):
    with pytest.raises(ValueError, match=r"method 'entmin' needs unlabelled student data: set "
                                         r"student_unlabelled=True \(--student-unlabelled\) with student_fraction < 1"):
        Trainer(small_task, "entmin", CFG.replace(student_unlabelled=False))
    from cmkd_lab.experiments import run_bench
    res = run_bench("synthetic", ["entmin"], ["unpaired"], [0], tmp_path / "b",
                    CFG.replace(student_unlabelled=False, epochs=1), fast=True, log=lambda s: None)
    assert res["skipped"] and "needs unlabelled student data" in res["skipped"][0]["reason"]
    with pytest.raises(ValueError, match=r"student_unlabelled=True runs only with pairing 'unpaired'; got "
                                         r"pairings=\['unpaired', 'paired'\]"):
        run_bench("synthetic", ["fa"], ["unpaired", "paired"], [0], tmp_path / "c", CFG, fast=True)


def test_purity_is_bounded_by_the_class_prior_mismatch():
    # With uniform marginals a plan's class masses are the label priors, so at least TV(prior_s, prior_t)
    # of the mass joins different classes: purity <= 1 - TV, attained here by POT's exact plan on far-apart
    # class clusters.
    import ot
    rng = np.random.default_rng(1)
    ys = np.repeat([0, 1, 2], [30, 20, 10])
    yt = np.repeat([0, 1, 2], [20, 20, 20])
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    xs, xt = centres[ys] + rng.normal(size=(60, 2)), centres[yt] + rng.normal(size=(60, 2))
    P = ot.emd(np.full(60, 1 / 60), np.full(60, 1 / 60), ot.dist(xs, xt))
    r = plan_class_purity(P, ys, yt, 3)
    tv = 0.5 * np.abs(np.bincount(ys) / 60 - np.bincount(yt) / 60).sum()
    assert r["purity"] <= 1 - tv + 1e-12 and r["purity"] == pytest.approx(1 - tv, abs=1e-9)
    from cmkd_lab.diagnostics.labels import label_diagnostics
    lab = label_diagnostics(teacher_logits_on_student=torch.zeros(60, 3), student_logits=torch.zeros(60, 3),
                            y_student=ys, teacher_logits_on_teacher=torch.zeros(60, 3), y_teacher=yt)
    assert lab["scalars"]["label_prior_tv"] == pytest.approx(tv)


# ----------------------------------------------------------------- review follow-ups
def _cnn_task():
    from cmkd_lab.data import CrossModalTask
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 60)
    xs = (rng.normal(size=(180, 3, 16)) + y[:, None, None]).astype(np.float32)
    xt = (rng.normal(size=(180, 8)) + y[:, None]).astype(np.float32)
    return CrossModalTask.from_arrays(xt, y, xs, y, student_encoder={"kind": "cnn1d", "in_channels": 3, "length": 16},
                                      teacher_encoder={"kind": "mlp", "in_features": 8})


def test_last_layer_scope_leaves_batchnorm_stats_to_the_labelled_batch():
    # As in the full scope, the unlabelled inputs' backbone pass must not move BatchNorm's running stats.
    task = _cnn_task()
    cfg = CFG.replace(inner_scope="last-layer", student_fraction=0.2)
    tr = Trainer(task, "ucmkd", cfg, progress=False)
    b = next(iter(tr.batches()))
    ref = Trainer(task, "ucmkd", cfg, progress=False)
    ref.student.load_state_dict(tr.student.state_dict())
    tr.method.step(b)
    ref.method.step(Batch(**{**b.__dict__, "x_u": None, "z_tu": None}))
    for (k, v), (_, w) in zip(tr.student.named_buffers(), ref.student.named_buffers()):
        assert torch.equal(v, w), k


def test_labelled_teacher_batches_do_not_depend_on_the_unlabelled_data(small_task):
    a = Trainer(small_task, "fa", CFG, progress=False)
    b = Trainer(small_task, "fa", CFG.replace(student_unlabelled=False), progress=False)
    for ba, bb in zip(a.batches(), b.batches()):
        assert torch.equal(ba.idx_s, bb.idx_s) and torch.equal(ba.idx_t, bb.idx_t)
        assert ba.x_u is not None and bb.x_u is None


def test_too_few_unlabelled_samples_are_named(small_task):
    with pytest.raises(ValueError, match=r"student_unlabelled=True: student_fraction=0.999 leaves 0 unlabelled "
                                         r"training sample\(s\) of task 'synthetic'; the OT term needs at least 2"):
        Trainer(small_task, "fa", CFG.replace(student_fraction=0.999), progress=False)


def test_runs_written_before_an_option_existed_are_read_back(small_task, tmp_path):
    # A cached bench run whose stored config lacks options added later (here the unlabelled-data ones)
    # still matches a config that leaves them at their defaults: read back, not refused or re-run.
    from cmkd_lab.experiments import run_bench
    cfg = DistillConfig(epochs=1, teacher_epochs=1, diagnostics_every=0)
    run_bench("synthetic", ["ce"], ["unpaired"], [0], tmp_path, cfg, fast=True, log=lambda s: None)
    rp = tmp_path / "runs" / "unpaired" / "ce" / "seed0" / "result.json"
    r = json.loads(rp.read_text())
    for k in ("student_unlabelled", "lambda_ent"):
        del r["config"][k]
    rp.write_text(json.dumps(r))
    logs = []
    run_bench("synthetic", ["ce"], ["unpaired"], [0], tmp_path, cfg, fast=True, log=logs.append)
    assert not any("[bench] synthetic" in s for s in logs)  # nothing trained again
    assert DistillConfig.with_defaults(r["config"]) == cfg.to_dict()


def test_sweep_skips_entmin_where_there_is_no_unlabelled_data(tmp_path):
    from cmkd_lab.experiments import run_sweep
    res = run_sweep("synthetic", ["ce", "entmin"], {"student_unlabelled": [False, True]}, [0], tmp_path,
                    DistillConfig(epochs=1, teacher_epochs=1, batch_size=32, student_fraction=0.2,
                                  student_unlabelled=True), task_kwargs={"n_teacher": 240, "n_student": 240},
                    workers=1, diagnostics=False, log=lambda s: None)
    assert [s["cell"] for s in res["skipped"]] == ["student_unlabelled=False"]
    assert "needs unlabelled student data" in res["skipped"][0]["reason"]
    assert {(r["cell"], r["method"]) for r in res["runs"]} == {
        ("student_unlabelled=False", "ce"), ("student_unlabelled=True", "ce"), ("student_unlabelled=True", "entmin"),
        ("student_unlabelled=False", "ce (A/A)"), ("student_unlabelled=True", "ce (A/A)"),
        ("student_unlabelled=True", "ceiling-kd")}  # the paired ceiling joins every cell with unlabelled data


def test_fix_with_a_value_the_grid_lacks_is_named():
    from cmkd_lab.viz import diagnostic_scatter, phase_diagram
    from pathlib import Path
    res = Path(__file__).resolve().parents[1] / "docs" / "results" / "regime_synthetic_unlabelled.json"
    with pytest.raises(ValueError, match=r"fix\['overlap'\] must be one of the grid's values \['0.6', '1.0'\]; got 1"):
        phase_diagram(res, fix={"overlap": 1, "student_unlabelled": True})
    with pytest.raises(ValueError, match=r"fix\['student_unlabelled'\] must be one of .*\['False', 'True'\]; got 'true'"):
        diagnostic_scatter(res, "label_prior_tv", fix={"student_unlabelled": "true"})
