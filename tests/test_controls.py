"""Teacher controls (whose knowledge is a gain?) and the class-aware methods without pairs, with known
answers: a random teacher is at chance, a permuted teacher is the real one renamed, ``fa`` cannot tell a
permuted teacher from the real one (exactly the same run) while class-aware methods can, class-level soft
targets and centroids against their closed forms, class-conditional OT against POT per class."""
import numpy as np
import ot
import pytest
import torch

from cmkd_lab import DistillConfig, make_synthetic_task
from cmkd_lab import distill
from cmkd_lab.distill import Trainer
from cmkd_lab.distill.methods.ccfa import class_conditional_ot
from cmkd_lab.distill.methods.classkd import class_soft_targets
from cmkd_lab.distill.teacher import bank_labels, class_derangement, get_teacher, shuffled_labels

CFG = DistillConfig(epochs=2, teacher_epochs=3, batch_size=32)


@pytest.fixture(scope="module")
def task():
    return make_synthetic_task(n_teacher=600, n_student=600, seed=0)


def _acc(model, split):
    with torch.no_grad():
        return float((model(torch.as_tensor(split.x)).argmax(1).numpy() == split.y).mean())


def test_random_and_shuffled_teachers_are_at_chance_and_the_real_one_is_not(task):
    real, info = get_teacher(task, CFG)
    prior = np.bincount(task.teacher["test"].y).max() / len(task.teacher["test"].y)
    assert info["teacher_test_acc"] > prior + 0.3
    for control in ("random", "shuffled-labels"):
        m, inf = get_teacher(task, CFG.replace(teacher_control=control))
        assert inf["teacher_control"] == control and inf["bank_labels"] == "shuffled"
        assert inf["teacher_test_acc"] == pytest.approx(_acc(m, task.teacher["test"]))
        assert inf["teacher_test_acc"] < prior + 0.12, (control, inf["teacher_test_acc"], prior)
    assert get_teacher(task, CFG.replace(teacher_control="random"))[1]["teacher_epochs"] == 0


def test_permuted_teacher_is_the_real_one_under_other_names(task):
    real, _ = get_teacher(task, CFG)
    perm, info = get_teacher(task, CFG.replace(teacher_control="permuted-classes"))
    sigma = np.asarray(info["class_permutation"])
    K = task.num_classes
    assert sorted(sigma.tolist()) == list(range(K)) and not np.any(sigma == np.arange(K))  # a derangement
    assert np.array_equal(sigma, class_derangement(K, CFG.seed))
    x = torch.as_tensor(task.teacher["test"].x)
    with torch.no_grad():
        torch.testing.assert_close(perm.features(x), real.features(x))  # the same knowledge
        torch.testing.assert_close(perm(x)[:, sigma], real(x))  # logit σ(k) of the renamed = logit k of the real
        pred = real(x).argmax(1).numpy()
    assert info["teacher_test_acc"] == pytest.approx(float((sigma[pred] == task.teacher["test"].y).mean()))
    y = task.teacher["train"].y
    assert np.array_equal(bank_labels(y, info, CFG.seed), sigma[y])
    assert np.array_equal(bank_labels(y, {"bank_labels": "shuffled"}, 3), shuffled_labels(y, 3, "bank"))
    assert np.array_equal(np.sort(shuffled_labels(y, 3, "bank")), np.sort(y))  # a shuffle keeps the counts


def test_fa_cannot_tell_a_permuted_teacher_and_class_aware_methods_can(task):
    """fa reads only the teacher's feature distribution: exactly the same run under permuted-classes.
    LA with the aligning gradient, class-matched pairing and the class-aware methods read class identity."""
    def run(method, **kw):
        return distill(task, method, CFG.replace(**kw), diagnostics=False)
    student_keys = ("loss", "ce", "fa", "val_acc", "val_loss", "test_acc", "test_loss")
    a, b = run("fa"), run("fa", teacher_control="permuted-classes")
    assert [{k: r[k] for k in student_keys} for r in a["history"]] == \
        [{k: r[k] for k in student_keys} for r in b["history"]]
    assert a["teacher_test_acc"] != b["teacher_test_acc"]  # the teacher itself is renamed
    for method, kw in (("la", dict(la_teacher_grad="align")), ("fa", dict(pairing="class-matched")),
                       ("cc-fa", {}), ("class-kd", {}), ("proto", {})):
        x, y = run(method, **kw), run(method, teacher_control="permuted-classes", **kw)
        assert [r["val_loss"] for r in x["history"]] != [r["val_loss"] for r in y["history"]], method


def test_methods_that_never_read_the_teacher_run_once_across_controls(tmp_path):
    from cmkd_lab.experiments import run_sweep
    res = run_sweep("synthetic", ["ce", "fa"], {"teacher_control": ["none", "random"]}, [0, 1], tmp_path,
                    DistillConfig(epochs=1, teacher_epochs=1, batch_size=32),
                    task_kwargs={"n_teacher": 240, "n_student": 240}, workers=1, diagnostics=False,
                    log=lambda m: None)
    shared = {(a["method"], a["cell"]) for a in res["aliases"]}
    assert shared == {("ce", "teacher_control=random"), ("ce (A/A)", "teacher_control=random")}
    by = {(r["cell"], r["method"], r["seed"]): r["student_test_acc"] for r in res["runs"]}
    for s in (0, 1):  # the shared run appears in both cells, so every Δ is paired with the same ce
        assert by[("teacher_control=random", "ce", s)] == by[("teacher_control=none", "ce", s)]
    assert len(list((tmp_path / "runs").glob("teacher_control=random/ce/seed*"))) == 0


def test_class_conditional_ot_matches_pot_class_by_class():
    rng = np.random.default_rng(0)
    y = torch.as_tensor([0, 0, 0, 1, 1, 2])
    zs, zt = torch.as_tensor(rng.normal(size=(6, 3))), torch.as_tensor(rng.normal(size=(6, 3)))

    def exact(a, b):
        M = ot.dist(a.numpy(), b.numpy(), metric="euclidean")
        return torch.as_tensor(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), M))
    want = 3 / 6 * exact(zs[:3], zt[:3]) + 2 / 6 * exact(zs[3:5], zt[3:5]) + 1 / 6 * (zs[5] - zt[5]).norm()
    assert float(class_conditional_ot(zs, zt, y, exact)) == pytest.approx(float(want))
    # Within-class transport: two far-apart clusters whose class labels a class-agnostic plan would swap.
    a = torch.cat([torch.zeros(4, 2), torch.full((4, 2), 10.0)])
    lab = torch.as_tensor([0] * 4 + [1] * 4)
    b = torch.cat([torch.full((4, 2), 10.0), torch.zeros(4, 2)])  # class 0 of the teacher sits where the student's 1 is
    assert float(exact(a, b)) == pytest.approx(0.0, abs=1e-9)  # plain OT: no cost, classes crossed
    assert float(class_conditional_ot(a, b, lab, exact)) == pytest.approx(10 * np.sqrt(2))


def test_class_soft_targets_closed_form():
    K, T = 3, 2.0
    head = torch.nn.Linear(K, K, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(K))
    z = torch.eye(K).repeat(4, 1)  # each class's features are its one-hot vector
    y = np.tile(np.arange(K), 4)
    q, have = class_soft_targets(head, z, y, K, T)
    torch.testing.assert_close(q, torch.softmax(torch.eye(K) / T, 1))
    assert bool(have.all())
    q, have = class_soft_targets(head, z[:2], y[:2], K, T)  # class 2 absent: no target
    assert not bool(have[2]) and bool(torch.isnan(q[2]).all())


def test_proto_pull_is_zero_at_the_teacher_centroids(task):
    tr = Trainer(task, "proto", CFG)
    m = tr.method
    y = torch.as_tensor(tr.bank_y_np)
    r2 = float(((tr.bank - m.mu[y]) ** 2).sum(1).mean())
    assert m.r2 == pytest.approx(r2)
    pull, n = m._pull(m.mu[torch.arange(task.num_classes)], torch.arange(task.num_classes))
    assert float(pull) == pytest.approx(0.0) and n == task.num_classes


def test_class_draws_never_read_the_student_instance(task):
    """A student sample meets a teacher feature of its class drawn from the teacher's own samples: the
    draw depends on the labels only, never on which student instance it is (no pair can be used)."""
    from cmkd_lab.distill.methods._classes import ClassBank
    tr = Trainer(task, "cc-fa", CFG)
    labels = task.student["train"].y[:40]
    a, b = ClassBank(tr, 0), ClassBank(tr, 0)
    za, zb = a.draw(labels), b.draw(labels.copy())
    torch.testing.assert_close(za, zb)
    bank_y = tr.bank_y_np
    idx = [int(torch.nonzero((tr.bank == z).all(1))[0]) for z in za]
    assert np.array_equal(bank_y[idx], labels)


@pytest.mark.parametrize("opts,match", [
    ({"ccfa_threshold": 0.0}, r"ccfa_threshold must be in \(0, 1\]"),
    ({"ccfa_weight": -1}, r"ccfa_weight must be >= 0"),
    ({"classkd_temperature": 0}, r"classkd_temperature must be in \(0, 100\]"),  # a range since issue 25
    ({"proto_threshold": 2}, r"proto_threshold must be in \(0, 1\]"),
    ({"proto_weigth": 1}, r"unknown keys \['proto_weigth'\] \('proto_weigth': did you mean 'proto_weight'\?\)"),
    ({"extra": {"c2kd_tua": 0.5}}, r"unknown method option 'c2kd_tua' \(did you mean 'c2kd_tau'\?\)"),
])
def test_method_options_are_validated_by_name(opts, match):
    with pytest.raises(ValueError, match=match):
        DistillConfig.from_dict(opts)
    with pytest.raises(TypeError, match=r"c2kd_tau must be a number; got c2kd_tau='abc' of type str"):  # the Float rule
        DistillConfig(extra={"c2kd_tau": "abc"})
    assert DistillConfig.from_dict({"ccfa_threshold": 0.5}).extra == {"ccfa_threshold": 0.5}


def test_teacher_control_everywhere(task, tmp_path):
    from cmkd_lab.cli import main
    with pytest.raises(ValueError, match=r"teacher_control must be one of"):
        DistillConfig(teacher_control="nope")
    out = tmp_path / "r"
    assert main(["run", "--task", "synthetic", "--fast", "--method", "fa", "--teacher-control", "random",
                 "--epochs", "1", "--teacher-epochs", "1", "--quiet", "--out", str(out)]) == 0
    import json
    r = json.loads((out / "result.json").read_text())
    assert r["config"]["teacher_control"] == "random" and r["task_info"] is not None
    assert "teacher_control" in (out / "report.html").read_text()
