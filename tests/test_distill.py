"""Trainer, methods and the bilevel step."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmkd_lab import distill
from cmkd_lab.distill import DistillConfig, PairingError, Trainer, available_methods
from cmkd_lab.models import build_classifier, check_compatible


def _trainer(task, method="ucmkd", **kw):
    cfg = DistillConfig(**{"epochs": 1, "teacher_epochs": 2, "batch_size": 32, **kw})
    return Trainer(task, method, cfg)


def test_bilevel_step_matches_an_independent_first_order_computation(small_task):
    tr = _trainer(small_task, optimizer="sgd", lr=0.1, momentum=0.0, grad_clip=0.0, inner_lr=0.05,
                  lambda_fa=0.7, lambda_la=1.3, la_teacher_grad="align", n1=2, n2=1)
    batch = next(iter(tr.batches()))
    before = copy.deepcopy(tr.student)
    teacher_before = copy.deepcopy(tr.teacher.state_dict())
    tr.method.step(batch)

    # Independent computation: deep copy, plain SGD inner steps, CE gradient at the adapted copy.
    from cmkd_lab.align import label_alignment_loss, ot_cost
    cfg = tr.config
    tmp = copy.deepcopy(before)
    tmp.train()
    # the inner passes must not touch the running statistics the outer pass uses
    for _ in range(cfg.n1):
        z = tmp.features(batch.x_s)
        loss = cfg.lambda_fa * ot_cost(z, batch.z_t, eps=cfg.eps, eps_units=cfg.eps_units, warn=False)
        grads = torch.autograd.grad(loss, list(tmp.encoder.parameters()))
        with torch.no_grad():
            for p, g in zip(tmp.encoder.parameters(), grads):
                p -= cfg.inner_lr * g
    for _ in range(cfg.n2):
        z = tmp.features(batch.x_s)
        loss = cfg.lambda_la * label_alignment_loss(tmp.head(z), tr.teacher.head(z), batch.y_s, teacher_grad="align")
        grads = torch.autograd.grad(loss, list(tmp.parameters()))
        with torch.no_grad():
            for p, g in zip(tmp.parameters(), grads):
                p -= cfg.inner_lr * g
    tmp.load_state_dict({**tmp.state_dict(), **{k: v for k, v in before.state_dict().items() if "running" in k or "num_batches" in k}})
    ce = F.cross_entropy(tmp(batch.x_s), batch.y_s)
    g_outer = torch.autograd.grad(ce, list(tmp.parameters()))
    for (n, p_new), p_old, g in zip(tr.student.named_parameters(), before.parameters(), g_outer):
        torch.testing.assert_close(p_new, p_old - 0.1 * g, rtol=1e-4, atol=1e-5, msg=n)
    # teacher untouched
    for k, v in tr.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k])


def test_ucmkd_without_inner_steps_equals_ce(small_task):
    a = _trainer(small_task, "ucmkd", n1=0, n2=0, seed=0)
    b = _trainer(small_task, "ce", seed=0)
    ba, bb = next(iter(a.batches())), next(iter(b.batches()))
    assert torch.equal(ba.x_s, bb.x_s)
    a.method.step(ba)
    b.method.step(bb)
    for pa, pb in zip(a.student.parameters(), b.student.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_inner_steps_only_touch_what_they_should(small_task):
    # n1 FA steps alone move the encoder; the head moves only through the outer step.
    tr = _trainer(small_task, "ucmkd", n1=1, n2=0, inner_lr=0.5, optimizer="sgd", lr=1e-9, momentum=0.0)
    b = next(iter(tr.batches()))
    terms = tr.method.step(b)
    assert float(terms["inner_shift"]) > 0
    assert {"ce", "fa", "inner_shift", "loss"} <= set(terms)


def test_determinism_under_seed(small_task):
    r1 = distill(small_task, "ucmkd", DistillConfig(epochs=2, teacher_epochs=2, seed=3))
    r2 = distill(small_task, "ucmkd", DistillConfig(epochs=2, teacher_epochs=2, seed=3))
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("time_s", "diag_time_s")} for r in h]  # noqa: E731
    assert strip(r1["history"]) == strip(r2["history"])


@pytest.mark.parametrize("method", ["ce", "fa", "la", "ucmkd", "ucmkd-joint"])
def test_every_unpaired_method_runs(small_task, method):
    r = distill(small_task, method, DistillConfig(epochs=1, teacher_epochs=2))
    assert r["status"] == "completed" and 0 <= r["student_test_acc"] <= 1


@pytest.mark.parametrize("method", ["kd", "fitnet"])
def test_paired_methods(small_task, method):
    r = distill(small_task, method, DistillConfig(epochs=1, teacher_epochs=2, pairing="paired"))
    assert r["status"] == "completed"
    with pytest.raises(PairingError, match="cannot run with pairing='unpaired'"):
        Trainer(small_task, method, DistillConfig(epochs=1))


def test_paired_needs_pairs():
    from cmkd_lab.data import CrossModalTask
    rng = np.random.default_rng(0)
    t = CrossModalTask.from_arrays(rng.normal(size=(90, 4)), rng.integers(0, 3, 90), rng.normal(size=(90, 4)),
                                   rng.integers(0, 3, 90))
    with pytest.raises(PairingError, match="has none"):
        Trainer(t, "ce", DistillConfig(pairing="paired"))


def test_unknown_method_lists_known():
    with pytest.raises(ValueError, match="method must be one of .*'ucmkd'"):
        Trainer.__init__  # noqa: B018
        from cmkd_lab.distill import get_method
        get_method("ucmk")
    assert {"ce", "fa", "la", "ucmkd", "ucmkd-joint", "kd", "fitnet"} <= set(available_methods())


def test_feature_dim_mismatch_is_clear():
    t = build_classifier({"kind": "mlp", "in_features": 4}, 16, 3)
    s = build_classifier({"kind": "mlp", "in_features": 4}, 8, 3)
    with pytest.raises(ValueError, match="feature dimensions differ.*16.*8"):
        check_compatible(t, s, torch.zeros(2, 4), torch.zeros(2, 4))


@pytest.mark.parametrize("kw,match", [
    (dict(eps=0.0), "eps must be > 0"),
    (dict(lr=-1.0), "lr must be > 0"),
    (dict(epochs=0), "epochs must be >= 1"),
    (dict(cost="l3"), "cost must be one of"),
    (dict(pairing="sometimes"), "pairing must be one of"),
    (dict(batch_size=1), "batch_size must be >= 2"),
    (dict(la_teacher_grad="both"), "la_teacher_grad must be one of"),
])
def test_config_bad_values(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DistillConfig(**kw)


def test_config_from_dict_unknown_and_wrong_types():
    with pytest.raises(ValueError, match=r"unknown keys \['epoch'\]"):
        DistillConfig.from_dict({"epoch": 3})
    with pytest.raises(TypeError, match="epochs must be an integer; got epochs=.3. of type str"):  # the Int rule
        DistillConfig.from_dict({"epochs": "3"})
    assert DistillConfig.from_dict({"lr": 1}).lr == 1.0


def test_cuda_without_gpu_is_clear():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        from cmkd_lab.distill import resolve_device
        resolve_device("cuda")
