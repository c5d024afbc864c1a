"""Tasks, splits and pairing modes."""
import numpy as np
import pytest

from cmkd_lab.data import CrossModalTask, TeacherBatchSampler, load_task, make_synthetic_task


def _arrays(n=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, k, n), rng.normal(size=(n, 2, 16)), rng.integers(0, k, n)


def test_from_arrays_builds_splits_and_encoders():
    tx, ty, sx, sy = _arrays()
    t = CrossModalTask.from_arrays(tx, ty, sx, sy, class_names=["a", "b", "c"])
    assert t.num_classes == 3
    assert sum(len(t.teacher[s]) for s in ("train", "val", "test")) == 60
    assert t.teacher_encoder["kind"] == "mlp" and t.student_encoder["kind"] == "cnn1d"
    assert not t.has_pairs


@pytest.mark.parametrize("change,match", [
    (dict(teacher_y=np.array([0, 1, 5] * 20)), r"teacher_y must be in 0..2"),
    (dict(student_y=np.array([-1, 0, 1] * 20)), r"student_y must be in 0..2"),
    (dict(teacher_x=np.full((60, 5), np.nan)), "NaN or inf"),
    (dict(student_x=np.zeros((59, 2, 16))), "student_x has 59 samples but student_y has 60"),
    (dict(teacher_x=np.zeros((2, 5)), teacher_y=np.array([0, 1])), "at least 3 sample"),
    (dict(teacher_y=np.linspace(0, 1, 60)), "integer class indices"),
    (dict(student_x=np.array(["a"] * 60)), "must hold numbers"),
])
def test_from_arrays_bad_inputs(change, match):
    tx, ty, sx, sy = _arrays()
    kw = dict(teacher_x=tx, teacher_y=ty, student_x=sx, student_y=sy)
    kw.update(change)
    with pytest.raises((ValueError, TypeError), match=match):
        CrossModalTask.from_arrays(kw.pop("teacher_x"), kw.pop("teacher_y"), kw.pop("student_x"),
                                   kw.pop("student_y"), class_names=["a", "b", "c"])


def test_empty_split_is_refused():
    tx, ty, sx, sy = _arrays()
    splits = {"train": np.arange(50), "val": np.arange(50, 60), "test": np.array([], dtype=int)}
    with pytest.raises(ValueError, match=r"teacher_splits\['test'\] is empty"):
        CrossModalTask.from_arrays(tx, ty, sx, sy, teacher_splits=splits)


def test_unpaired_sampler_never_sees_student_indices():
    # Audit: the teacher draws are identical whatever the student batch is.
    labels = np.repeat(np.arange(4), 25)
    a = TeacherBatchSampler("unpaired", labels, 4, seed=3)
    b = TeacherBatchSampler("unpaired", labels, 4, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        s1 = rng.permutation(100)[:16]
        s2 = rng.permutation(100)[:16]
        assert np.array_equal(a.draw(s1, labels[s1]), b.draw(s2, labels[s2]))


def test_unpaired_trainer_batches_are_independent_of_student_order(small_task):
    from cmkd_lab.distill import DistillConfig, Trainer
    cfg = DistillConfig(epochs=1, teacher_epochs=1, seed=0)
    tr = Trainer(small_task, "ce", cfg)
    idx_t = [b.idx_t.cpu().numpy() for b in tr.batches()]
    # A fresh sampler with the same seed reproduces the teacher stream without any student index.
    ref = TeacherBatchSampler("unpaired", tr.bank_y_np, small_task.num_classes, seed=0)
    for it in idx_t:
        assert np.array_equal(it, ref.unpaired(len(it)))


def test_class_matched_and_paired():
    labels = np.repeat(np.arange(3), 10)
    s = TeacherBatchSampler("class-matched", labels, 3, seed=0)
    y = np.array([0, 2, 2, 1])
    assert np.array_equal(labels[s.draw(np.arange(4), y)], y)
    p = TeacherBatchSampler("paired", labels, 3)
    assert np.array_equal(p.draw(np.array([5, 7]), None), [5, 7])
    with pytest.raises(ValueError, match="pairing must be one of"):
        TeacherBatchSampler("random", labels, 3)


def test_student_fraction_is_stratified_and_fixed_per_seed():
    t = make_synthetic_task(n_teacher=300, n_student=1000, seed=0)
    a = t.with_student_fraction(0.1, seed=1)
    b = t.with_student_fraction(0.1, seed=1)
    c = t.with_student_fraction(0.1, seed=2)
    assert np.array_equal(a.student["train"].y, b.student["train"].y)
    assert np.array_equal(a.student["train"].x, b.student["train"].x)
    assert not np.array_equal(a.student["train"].x, c.student["train"].x)
    full = np.bincount(t.student["train"].y, minlength=5) / len(t.student["train"])
    part = np.bincount(a.student["train"].y, minlength=5) / len(a.student["train"])
    assert np.abs(full - part).max() < 0.03
    assert len(a.paired_teacher_x["train"]) == len(a.student["train"])
    with pytest.raises(ValueError, match=r"student_fraction must be in \(0, 1\]"):
        t.with_student_fraction(0.0, seed=0)


def test_load_task_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="task must be one of .*'synthetic'"):
        load_task("nope")


def test_synthetic_knobs_validated():
    with pytest.raises(ValueError, match="gap must be >= 0; got gap=-1"):
        make_synthetic_task(gap=-1.0)
