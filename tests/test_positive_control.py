"""The positive control's parts: the synthetic knobs for shared decisive factors and shared class priors,
the paired ceiling, ``align-pl``, the gradient audit, and evaluation that does each piece of work once.

Known answers: the generator's class separation splits s : 1 − s between the blocks (closed form on its
layout) and the student's view carries no class information at s = 0; a method with its extra terms at
weight 0 is the same run as the method it extends (``ceiling-*`` → ``ce``, ``align-pl`` → ``fa``); a
term computed without gradient shows a zero norm and a term that equals cross-entropy a cosine of 1;
the audit and the evaluation policy leave training bit-identical.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cmkd_lab import distill
from cmkd_lab.data import CrossModalTask, make_synthetic_task
from cmkd_lab.data.synthetic import _Layout
from cmkd_lab.distill import DistillConfig, PairingError, Trainer

pytestmark = pytest.mark.filterwarnings("ignore:.*may be under-trained:RuntimeWarning")

FEW = dict(epochs=2, teacher_epochs=2, batch_size=32, student_fraction=0.2, student_unlabelled=True, seed=1,
           diagnostics_every=0)


@pytest.fixture(scope="module")
def shared_task():
    return make_synthetic_task(n_teacher=400, n_student=400, seed=0, shared_decisive=1.0)


def _hist(r, drop=("time_s",)):
    return [{k: v for k, v in h.items() if k not in drop and not k.startswith(("grad_", "cos_"))}
            for h in r["history"]]


# ------------------------------------------------------------------ the generator
@pytest.mark.parametrize("s", [0.0, 0.3, 1.0])
def test_shared_decisive_splits_the_class_separation(s):
    lay = _Layout(5, 8, 32, 24, 0.5, s)
    m = lay.means  # (K, 2L)
    d_shared = ((m[:, None, :8] - m[None, :, :8]) ** 2).sum(-1)
    d_private = ((m[:, None, 8:] - m[None, :, 8:]) ** 2).sum(-1)
    total = d_shared + d_private
    off = ~np.eye(5, dtype=bool)
    base = _Layout(5, 8, 32, 24, 0.5, None).means
    d_base = ((base[:, None] - base[None]) ** 2).sum(-1)
    np.testing.assert_allclose(d_shared[off], s * d_base[off], rtol=1e-12)  # the shared block: s × today's
    assert np.all(total[off] > 0)
    np.testing.assert_allclose(np.linalg.norm(m[:, 8:], axis=1), 2.5 * np.sqrt(1 - s), rtol=1e-12)


def test_default_generator_is_unchanged():
    a, b = make_synthetic_task(n_teacher=200, n_student=200), make_synthetic_task(n_teacher=200, n_student=200,
                                                                                    shared_decisive=None)
    assert a.fingerprint() == b.fingerprint()
    assert "shared_decisive" not in a.info["knobs"] and "prior_skew" not in a.info["knobs"]


def test_at_zero_the_student_sees_no_class_and_the_teacher_does():
    from sklearn.linear_model import LogisticRegression
    t = make_synthetic_task(n_teacher=2000, n_student=2000, seed=3, shared_decisive=0.0)
    fit = lambda side: LogisticRegression(max_iter=2000).fit(side["train"].x, side["train"].y).score(  # noqa: E731
        side["test"].x, side["test"].y)
    assert fit(t.teacher) > 0.7
    assert fit(t.student) < 0.35  # chance is 0.2 (5 classes); nothing in the student's view tells them apart


def test_prior_skew_skews_both_priors_alike():
    t = make_synthetic_task(n_teacher=6000, n_student=6000, prior_skew=0.5, seed=0)
    want = np.exp(-0.5 * np.arange(5))
    want /= want.sum()
    for side in (t.teacher, t.student):
        freq = np.bincount(side["train"].y, minlength=5) / len(side["train"].y)
        np.testing.assert_allclose(freq, want, atol=0.02)


@pytest.mark.parametrize("kw, msg", [
    (dict(shared_decisive=1.5), "shared_decisive must be in [0, 1]"),
    (dict(shared_decisive="half"), "shared_decisive must be a number"),
    (dict(prior_skew=-1.0), "prior_skew must be >= 0"),
])
def test_generator_knobs_refuse_bad_values(kw, msg):
    with pytest.raises((ValueError, TypeError), match=msg.replace("[", r"\[").replace("]", r"\]")):
        make_synthetic_task(n_teacher=100, n_student=100, **kw)


# ------------------------------------------------------------------ the paired ceiling
@pytest.mark.parametrize("method", ["ceiling-kd", "ceiling-pl"])
def test_ceiling_at_weight_zero_is_ce(shared_task, method):
    base = distill(shared_task, "ce", DistillConfig(**FEW), diagnostics=False)
    key = "ceiling_kd_weight" if method == "ceiling-kd" else "ceiling_pl_weight"
    r = distill(shared_task, method, DistillConfig(**FEW, **{key: 0.0}), diagnostics=False)
    assert [h["val_acc"] for h in r["history"]] == [h["val_acc"] for h in base["history"]]
    assert r["student_test_acc"] == base["student_test_acc"]


def test_ceiling_reads_the_paired_view_of_each_unlabelled_sample(shared_task):
    tr = Trainer(shared_task, "ceiling-pl", DistillConfig(**FEW))
    rest = np.setdiff1d(np.arange(len(shared_task.student["train"].y)),
                        shared_task.student_fraction_indices(0.2, 1))
    from cmkd_lab.distill.teacher import batched_features
    want = batched_features(tr.teacher, shared_task.paired_teacher_x["train"][rest], tr.device)
    torch.testing.assert_close(tr.bank_up, want)
    b = next(iter(tr.batches()))
    # each unlabelled row's paired teacher feature is the bank row of the same unlabelled sample
    idx = [int(np.flatnonzero((tr.x_unl == row).all(1).numpy())[0]) for row in b.x_u]
    torch.testing.assert_close(b.zp_u, tr.bank_up[idx])


def test_ceiling_refused_without_pairs_or_unlabelled_data():
    rng = np.random.default_rng(0)
    t = CrossModalTask.from_arrays(rng.normal(size=(120, 6)), rng.integers(0, 3, 120), rng.normal(size=(120, 5)),
                                   rng.integers(0, 3, 120), name="nopairs")
    with pytest.raises(PairingError, match="paired ceiling.*no paired views"):
        distill(t, "ceiling-kd", DistillConfig(**FEW), diagnostics=False)
    with pytest.raises(ValueError, match="needs unlabelled student data"):
        distill(make_synthetic_task(n_teacher=100, n_student=100), "ceiling-pl", DistillConfig(epochs=1),
                diagnostics=False)


# ------------------------------------------------------------------ align-pl
def test_align_pl_without_its_extra_terms_is_fa(shared_task):
    fa = distill(shared_task, "fa", DistillConfig(**FEW), diagnostics=False)
    apl = distill(shared_task, "align-pl", DistillConfig(**FEW, lambda_la=0.0, apl_weight=0.0),
                  diagnostics=False)
    assert [h["val_acc"] for h in apl["history"]] == [h["val_acc"] for h in fa["history"]]
    assert [h["fa"] for h in apl["history"]] == [h["fa"] for h in fa["history"]]


def test_align_pl_options_are_checked():
    with pytest.raises(ValueError, match=r"apl_threshold must be in \(0, 1\]"):
        DistillConfig(apl_threshold=1.5)


# ------------------------------------------------------------------ the gradient audit
@pytest.mark.parametrize("method", ["ucmkd", "cc-fa", "align-pl", "ucmkd-joint", "proto"])
def test_audit_leaves_training_identical(shared_task, method):
    a = distill(shared_task, method, DistillConfig(**FEW, audit_every=0), diagnostics=False)
    b = distill(shared_task, method, DistillConfig(**FEW, audit_every=1), diagnostics=False)
    assert _hist(a) == _hist(b)
    assert any(k.startswith("grad_enc_") for k in b["history"][0])
    assert not any(k.startswith("grad_") for h in a["history"] for k in h)


def test_audit_known_answers(shared_task):
    # la with the public code's choice (teacher term without gradient) is cross-entropy: cosine 1, equal norms
    r = distill(shared_task, "la", DistillConfig(**FEW, audit_every=1), diagnostics=False)["history"][0]
    assert r["cos_ce_la"] == pytest.approx(1.0, abs=1e-6)
    assert r["grad_enc_la"] == pytest.approx(r["grad_enc_ce"], rel=1e-5)
    # OT and the anchor (frozen teacher head) never reach the student's head
    r = distill(shared_task, "align-pl", DistillConfig(**FEW, audit_every=1), diagnostics=False)["history"][0]
    assert r["grad_head_fa"] == 0.0 and r["grad_head_anchor"] == 0.0 and r["grad_enc_fa"] > 0
    # the last epoch is audited as well as every audit_every-th from the first
    h = distill(shared_task, "ce", DistillConfig(**dict(FEW, epochs=4), audit_every=3),
                diagnostics=False)["history"]
    assert [("grad_enc_ce" in x) for x in h] == [True, False, False, True]


# ------------------------------------------------------------------ evaluation
def test_test_split_only_where_read_and_same_answer(shared_task):
    cfg = dict(FEW, epochs=6, student_unlabelled=False, student_fraction=1.0)
    every = distill(shared_task, "ce", DistillConfig(**cfg, eval_test="every"), diagnostics=False)
    best = distill(shared_task, "ce", DistillConfig(**cfg), diagnostics=False)
    assert [h["val_acc"] for h in every["history"]] == [h["val_acc"] for h in best["history"]]
    for k in ("student_test_acc", "best_epoch", "student_test_acc_last", "student_val_acc"):
        assert every[k] == best[k]
    tested = {h["epoch"] for h in best["history"] if "test_acc" in h}
    assert tested == {best["best_epoch"], best["epochs"]}  # the two epochs a result reads, nothing else
    for h in best["history"]:  # and their numbers are those a per-epoch evaluation gives
        if "test_acc" in h:
            assert h["test_acc"] == every["history"][h["epoch"] - 1]["test_acc"]
    assert all("test_acc" in h for h in every["history"])


def test_the_best_epochs_weights_survive_a_stop_and_a_resume(shared_task, tmp_path):
    from cmkd_lab.distill.callbacks import Callback

    class StopAt(Callback):
        def __init__(self, epoch):
            self.epoch = epoch

        def on_epoch_end(self, trainer, record):
            if record["epoch"] == self.epoch:
                trainer.stop()

    cfg = DistillConfig(**dict(FEW, epochs=6, student_unlabelled=False, student_fraction=1.0))
    ref = Trainer(shared_task, "ce", cfg).fit()
    tr = Trainer(shared_task, "ce", cfg, callbacks=[StopAt(3)], checkpoint=tmp_path / "c.pt")
    part = tr.fit()
    assert part["status"] == "interrupted" and part["history"][-1].get("test_acc") is not None  # its last epoch
    again = Trainer(shared_task, "ce", cfg, checkpoint=tmp_path / "c.pt")
    again.resume()
    r = again.fit()
    assert [h.get("test_acc") for h in r["history"]] == [h.get("test_acc") for h in ref["history"]]
    assert r["student_test_acc"] == ref["student_test_acc"] and r["best_epoch"] == ref["best_epoch"]
    tr.callbacks = []
    r2 = tr.fit()  # the notebook's Start after Stop: the same as an uninterrupted run
    assert [h.get("test_acc") for h in r2["history"]] == [h.get("test_acc") for h in ref["history"]]


def test_a_failing_run_keeps_what_its_callbacks_measured(shared_task, tmp_path):
    from cmkd_lab.distill.callbacks import Callback
    from cmkd_lab.experiments.job import run_one

    class Boom(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 2:
                raise RuntimeError("boom")

    cfg = DistillConfig(**dict(FEW, epochs=3, diagnostics_every=1))
    with pytest.raises(RuntimeError, match="boom"):
        run_one(shared_task, "ce", cfg, tmp_path / "r", callbacks=[Boom()], report=False)
    import json
    r = json.loads((tmp_path / "r" / "result.json").read_text())
    assert r["status"] == "failed" and r["diagnostics"], "the diagnostics measured before the failure are kept"


def test_a_callback_cannot_overwrite_the_result():
    from cmkd_lab.distill.callbacks import Callback

    class Greedy(Callback):
        def result_entries(self, trainer):
            return {"student_test_acc": 1.0}

    t = make_synthetic_task(n_teacher=100, n_student=100)
    with pytest.raises(ValueError, match="contributes result entries"):
        Trainer(t, "ce", DistillConfig(epochs=1, teacher_epochs=1), callbacks=[Greedy()]).fit()
