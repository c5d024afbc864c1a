"""Bad data: CrossModalTask.from_arrays, the task constructor, load_task and the
built-in generators, damaged data files, and what the Trainer refuses about a
task (a pairing it cannot provide, mismatched teacher, missing device)."""
import io
import pickle
import shutil

import numpy as np
import pytest
import torch

from cmkd_lab.data import CrossModalTask, load_task, make_synthetic_task
from cmkd_lab.data.task import Split
from cmkd_lab.distill import DistillConfig, PairingError, Trainer

rng = np.random.default_rng(0)
TX, TY = rng.normal(size=(60, 5)), rng.integers(0, 3, 60)
SX, SY = rng.normal(size=(60, 2, 16)), rng.integers(0, 3, 60)
SPLITS = {"train": np.arange(40), "val": np.arange(40, 50), "test": np.arange(50, 60)}


def _with(arr, i, v):
    a = np.array(arr, dtype=float)
    a.flat[i] = v
    return a


# (label, changes to the from_arrays keyword arguments, exception, regex)
FROM_ARRAYS_BAD = [
    ("1-D inputs", dict(teacher_x=rng.normal(size=60)), ValueError,
     r"teacher_x must have at least 2 dimension\(s\) \(samples first\); got shape \(60,\); .*reshape\(-1, 1\)"),
    ("NaN input", dict(teacher_x=_with(TX, 7, np.nan)), ValueError,
     r"teacher_x contains NaN or inf values \(1 of 300 entries\); clean or impute"),
    ("inf input", dict(student_x=_with(SX, 3, np.inf)), ValueError, r"student_x contains NaN or inf values"),
    ("NaN in paired view", dict(paired_teacher_x=np.full((60, 5), np.nan)), ValueError,
     r"paired_teacher_x contains NaN or inf"),
    ("string inputs", dict(student_x=np.array(["a"] * 60)), TypeError, r"student_x must hold numbers; got dtype <U1"),
    ("complex inputs", dict(teacher_x=TX.astype(complex)), TypeError, r"teacher_x must hold numbers; got dtype complex128"),
    ("ragged inputs", dict(teacher_x=[[1.0, 2.0], [3.0]] * 30), ValueError,
     r"teacher_x must have rows of one shape; row 0 has length 2 but row 1 has length 1: pad or crop the samples"),
    ("ragged inputs, deeper", dict(student_x=[[[1.0] * 16] * 2] * 59 + [[[1.0] * 16, [1.0] * 15]]), ValueError,
     r"student_x must have rows of one shape; row 59\[0\] has length 16 but row 59\[1\] has length 15"),
    ("ragged labels", dict(teacher_y=[[0]] * 30 + [0] * 30), ValueError,
     r"teacher_y must have rows of one shape; row 0 has length 1 but row 30 is a scalar"),
    ("x/y length mismatch", dict(student_x=SX[:59]), ValueError, r"student_x has 59 samples but student_y has 60"),
    ("too few samples", dict(teacher_x=TX[:2], teacher_y=TY[:2]), ValueError, r"teacher_x must have at least 3 sample\(s\); got 2"),
    ("no samples", dict(teacher_x=TX[:0], teacher_y=TY[:0]), ValueError, r"teacher_x must have at least 3 sample\(s\); got 0"),
    ("2-D labels", dict(teacher_y=TY[:, None]), ValueError, r"teacher_y and student_y must be 1-D; got shapes \(60, 1\)"),
    ("label >= K", dict(teacher_y=np.array([0, 1, 5] * 20), class_names=["a", "b", "c"]), ValueError,
     r"teacher_y must be in 0..2 \(num_classes=3\); got values \[5, .*\]; re-encode labels as 0..K-1"),
    ("negative label", dict(student_y=np.array([-1, 0, 1] * 20)), ValueError,
     r"student_y must hold class indices >= 0; got values \[-1, .*\]; re-encode"),
    ("fractional labels", dict(teacher_y=np.linspace(0, 1, 60)), TypeError,
     r"teacher_y must hold integer class indices; got non-integer values \[0.0169"),
    ("NaN label", dict(teacher_y=_with(TY, 3, np.nan)), TypeError, r"teacher_y must hold integer class indices; got non-integer values \[nan\]"),
    ("string labels", dict(teacher_y=TY.astype(str)), TypeError, r"teacher_y must hold numbers; got dtype <U21"),
    ("class count mismatch", dict(class_names=["a", "b"]), ValueError, r"teacher_y must be in 0..1 \(num_classes=2\); got values \[2"),
    ("one class", dict(teacher_y=np.zeros(60, int), student_y=np.zeros(60, int)), ValueError,
     r"class_names must list at least 2 classes; got 1"),
    ("class_names a string", dict(class_names="abc"), TypeError, r"class_names must be a list of names, one per class; got 'abc'"),
    ("duplicate class names", dict(class_names=["a", "a", "b"]), ValueError, r"class_names must be distinct; \['a'\] appear more than once"),
    ("split key missing", dict(teacher_splits={"train": SPLITS["train"], "val": SPLITS["val"]}), ValueError,
     r"teacher_splits must have keys \('train', 'val', 'test'\); missing \['test'\]"),
    ("unknown split key", dict(student_splits={**SPLITS, "dev": [1]}), ValueError,
     r"student_splits has unknown keys \['dev'\]; the keys are \('train', 'val', 'test'\)"),
    ("splits not a dict", dict(teacher_splits=[1, 2, 3]), TypeError, r"teacher_splits must be a dict .* got list"),
    ("empty split", dict(teacher_splits={**SPLITS, "test": np.array([], dtype=int)}), ValueError,
     r"teacher_splits\['test'\] is empty; every split needs at least one sample"),
    ("one-sample train split", dict(teacher_splits={**SPLITS, "train": [0]}), ValueError,
     r"teacher\['train'\] must have at least 2 samples; got 1"),
    ("overlapping splits", dict(teacher_splits={**SPLITS, "val": np.arange(35, 50)}), ValueError,
     r"teacher_splits\['train'\] and \['val'\] share 5 sample\(s\) \(e.g. \[35, 36, 37, 38, 39\]\); splits must be disjoint"),
    ("index out of range", dict(student_splits={**SPLITS, "test": np.arange(50, 61)}), ValueError,
     r"student_splits\['test'\] has indices outside 0..59: \[60\]"),
    ("negative index", dict(student_splits={**SPLITS, "test": [-1, 55]}), ValueError, r"has indices outside 0..59: \[-1\]"),
    ("fractional indices", dict(teacher_splits={**SPLITS, "train": np.arange(40) + 0.5}), TypeError,
     r"teacher_splits\['train'\] must hold integer sample indices; got \[0.5, 1.5"),
    ("boolean mask as split", dict(teacher_splits={**SPLITS, "train": np.arange(60) < 40}), TypeError,
     r"must hold sample indices, not a boolean mask; pass np.flatnonzero\(mask\)"),
    ("repeated indices", dict(teacher_splits={**SPLITS, "val": [40, 40, 41]}), ValueError,
     r"teacher_splits\['val'\] repeats sample indices \(1 duplicates\)"),
    ("2-D split indices", dict(teacher_splits={**SPLITS, "val": np.arange(40, 50)[:, None]}), ValueError,
     r"teacher_splits\['val'\] must be a 1-D array of sample indices; got shape \(10, 1\)"),
    ("val_fraction = 0", dict(val_fraction=0.0), ValueError, r"val_fraction must be > 0; got val_fraction=0.0"),
    ("val_fraction string", dict(val_fraction="0.1"), TypeError, r"val_fraction must be a number; got val_fraction='0.1'"),
    ("fractions sum to 1", dict(val_fraction=0.6, test_fraction=0.5), ValueError, r"val_fraction \+ test_fraction must be < 1"),
    ("split too small to stratify", dict(teacher_x=TX[:3], teacher_y=np.array([0, 1, 2])), ValueError,
     r"the val split is empty with 3 samples; pass more data or explicit splits"),
    ("negative seed", dict(seed=-1), ValueError, r"seed must be >= 0; got seed=-1"),
    ("paired view, wrong row count", dict(paired_teacher_x=TX[:50]), ValueError,
     r"paired_teacher_x must have one row per student sample \(60\); got 50"),
    ("paired view, wrong feature shape", dict(paired_teacher_x=rng.normal(size=(60, 7))), ValueError,
     r"paired_teacher_x must have the teacher's per-sample shape \(5,\) \(teacher_x is \(60, 5\)\); got \(7,\)"),
    ("labels beyond the sample count", dict(teacher_y=np.array([0, 1000, 5] * 20)), ValueError,
     r"teacher_y and student_y hold 5 distinct labels up to 1000: that makes K=1001 classes for 120 samples, "
     r"nearly all empty; re-encode the labels as 0..K-1 \(np.unique\(y, return_inverse=True\)\) or pass "
     r"class_names"),
    ("sides share no class", dict(teacher_y=TY, student_y=SY + 3), ValueError,
     r"teacher and student share no class: the teacher's training labels are \['0', '1', '2'\], the student's "
     r"\['3', '4', '5'\]; distillation needs one label set on both sides"),
    ("paired view, not a number array", dict(paired_teacher_x=np.array(["a"] * 60)), TypeError,
     r"paired_teacher_x must hold numbers; got dtype <U1"),
    ("paired view, a scalar", dict(paired_teacher_x=3.0), ValueError,
     r"paired_teacher_x must have at least 2 dimension\(s\) \(samples first\); got shape \(\)"),
    ("paired view, wrong feature shape (one array)", dict(paired_teacher_x=rng.normal(size=(60, 5, 1))), ValueError,
     r"paired_teacher_x must have the teacher's per-sample shape \(5,\) \(teacher_x is \(60, 5\)\); got "
     r"\(5, 1\) \(shape \(60, 5, 1\)\)"),
    ("paired view, ragged", dict(paired_teacher_x=[[1.0] * 5] * 59 + [[1.0] * 4]), ValueError,
     r"paired_teacher_x must have rows of one shape; row 0 has length 5 but row 59 has length 4"),
    ("values beyond float32", dict(teacher_x=_with(TX, 4, 1e300)), ValueError,
     r"teacher_x holds values up to 1e\+300, beyond float32 \(max 3.4e\+38\), the precision cmkd_lab trains in; "
     r"rescale \(standardise\) the inputs"),
    ("name not a string", dict(name=3), TypeError, r"name must be a non-empty string \(used in caches and results\); "
     r"got name=3"),
    ("modality not a string", dict(student_modality=None), TypeError, r"student_modality must be a string; got None"),
    ("encoder spec a string", dict(teacher_encoder="mlp"), TypeError,
     r"teacher_encoder must be an encoder spec dict with a 'kind' key \(e.g. \{'kind': 'mlp', 'in_features': 5\}\) "
     r"or a factory fn\(feature_dim\) -> nn.Module; got 'mlp'"),
    ("no encoder for 4-D samples", dict(teacher_x=rng.normal(size=(60, 1, 2, 3, 4))), ValueError,
     r"cannot infer an encoder for inputs of per-sample shape \(1, 2, 3, 4\); pass teacher_encoder="),
]


def _build(**change):
    kw = dict(teacher_x=TX, teacher_y=TY, student_x=SX, student_y=SY)
    kw.update(change)
    return CrossModalTask.from_arrays(kw.pop("teacher_x"), kw.pop("teacher_y"), kw.pop("student_x"),
                                      kw.pop("student_y"), **kw)


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("label,change,exc,match", FROM_ARRAYS_BAD, ids=_ids(FROM_ARRAYS_BAD))
def test_from_arrays_bad_input(label, change, exc, match):
    with pytest.raises(exc, match=match):
        _build(**change)


def test_absurd_label_range_is_refused_before_anything_is_allocated():
    # Labels [0, 10**9, 5] used to build 10**9 + 1 class names and get the process killed for memory:
    # run it where memory is capped at 2 GiB, so a regression fails instead of taking the machine down.
    import subprocess
    import sys
    code = (
        "import resource, numpy as np\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "from cmkd_lab.data.task import CrossModalTask\n"
        "x = np.zeros((60, 3))\n"
        "try:\n"
        "    CrossModalTask.from_arrays(x, np.array([0, 10**9, 5] * 20), x, np.arange(60) % 3)\n"
        "except ValueError as e:\n"
        "    print('refused:', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused: teacher_y and student_y hold 5 distinct labels up to 1000000000: that makes K=1000000001 " \
           "classes for 120 samples" in r.stdout, r.stdout


def test_class_names_check_is_linear():
    import time
    from cmkd_lab._validation import check_class_names
    names = [f"c{i}" for i in range(40_000)]
    t = time.perf_counter()
    assert check_class_names(names) == names
    assert time.perf_counter() - t < 1.0  # was 46 s (quadratic)
    with pytest.raises(ValueError, match=r"class_names must be distinct; \['c3', 'c7'\] appear more than once"):
        check_class_names(names + ["c7", "c3", "c7"])


def test_empty_classes_are_named_in_a_warning():
    y = np.array([0, 5, 9] * 20)
    with pytest.warns(RuntimeWarning, match=r"classes \['1', '2', '3', '4', '6', '7', '8'\] \(7 of K=10\) have no sample "
                                            r"on either side: remap the labels to 0..2 \(np.unique\(y, "
                                            r"return_inverse=True\)\) or leave the empty classes out of class_names"):
        t = _build(teacher_y=y, student_y=y)
    assert t.num_classes == 10  # kept on purpose: the labels are taken as given, the warning says what it means
    with pytest.warns(RuntimeWarning, match=r"classes \['d'\] \(1 of K=4\) have no sample on either side"):
        _build(class_names=["a", "b", "c", "d"])


def test_partial_class_overlap_names_what_each_side_lacks():
    ty, sy = TY.copy(), SY.copy()
    ty[ty == 2] = 1  # the teacher never sees class 2
    sy[sy == 0] = 1  # the student never sees class 0
    with pytest.warns(RuntimeWarning, match=r"teacher and student training splits cover different classes: the "
                                            r"teacher has no sample of \['c'\], the student none of \['a'\]; the "
                                            r"teacher cannot teach a class it never saw"):
        _build(teacher_y=ty, student_y=sy, class_names=["a", "b", "c"])


def test_paired_view_per_split_is_checked_in_the_constructor():
    kw = dict(name="t", class_names=["a", "b"], teacher={s: _split() for s in ("train", "val", "test")},
              student={s: _split() for s in ("train", "val", "test")})
    bad = {s: rng.normal(size=(10, 3)) for s in ("train", "val", "test")}
    bad["val"] = np.full((10, 3), np.nan)
    with pytest.raises(ValueError, match=r"paired_teacher_x\['val'\] contains NaN or inf values \(30 of 30 entries\)"):
        CrossModalTask(**kw, paired_teacher_x=bad)
    with pytest.raises(ValueError, match=r"paired_teacher_x has unknown keys \['dev'\]; the keys are \('train', 'val', "
                                         r"'test'\)"):
        CrossModalTask(**kw, paired_teacher_x={**bad, "val": bad["train"], "dev": bad["train"]})
    with pytest.raises(TypeError, match=r"paired_teacher_x must be a dict split -> array \(N_split, ...\) or None; "
                                        r"got ndarray"):
        CrossModalTask(**kw, paired_teacher_x=bad["train"])
    with pytest.raises(TypeError, match=r"paired_teacher_x\['test'\] must be an array \(N_split, ...\); got list"):
        CrossModalTask(**kw, paired_teacher_x={**bad, "val": bad["train"], "test": [[1.0] * 3] * 10})


def test_constructor_takes_lists_as_arrays():
    sp = {s: _split() for s in ("train", "val", "test")}
    t = CrossModalTask("t", ["a", "b"], {**sp, "train": Split([[0.5, 1.0, 2.0]] * 10, [0, 1] * 5)}, sp)
    assert isinstance(t.teacher["train"].x, np.ndarray) and t.teacher["train"].x.shape == (10, 3)


def test_from_arrays_lenient_on_purpose():
    # Boolean labels are class indices 0/1; torch tensors are arrays; one-sample val/test splits are allowed
    # (accuracy is defined), only training needs two samples.
    t = _build(teacher_y=np.arange(60) % 2 == 0, student_y=SY % 2)
    assert t.num_classes == 2
    t = _build(teacher_x=torch.as_tensor(TX), teacher_y=torch.as_tensor(TY))
    assert t.teacher["train"].x.dtype == np.float32
    t = _build(teacher_splits={"train": np.arange(58), "val": [58], "test": [59]})
    assert len(t.teacher["val"]) == 1


# ------------------------------------------------------- the constructor
def _split(n=10, d=3, k=2):
    return Split(rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % k)


CTOR_BAD = [
    ("split missing", dict(teacher={"train": _split(), "val": _split()}), ValueError,
     r"teacher must have keys \('train', 'val', 'test'\); missing \['test'\]"),
    ("per-sample shapes differ", dict(student={"train": _split(), "val": _split(d=4), "test": _split()}), ValueError,
     r"student splits must share one per-sample shape; got \[\(3,\), \(4,\)\]"),
    ("x/y rows differ", dict(teacher={"train": Split(np.zeros((10, 3), np.float32), np.zeros(9, int)), "val": _split(),
                                      "test": _split()}), ValueError, r"teacher\['train'\]: x has 10 samples but y has 9"),
    ("label out of range", dict(student={"train": Split(np.zeros((10, 3), np.float32), np.arange(10)), "val": _split(),
                                         "test": _split()}), ValueError, r"student\['train'\].y must be in 0..1"),
    ("sides not a dict", dict(teacher=[_split(), _split(), _split()]), TypeError,
     r"teacher must be a dict split -> Split\(x, y\) with keys \('train', 'val', 'test'\); got list"),
    ("split a 3-tuple", dict(teacher={"train": (1, 2, 3), "val": _split(), "test": _split()}), TypeError,
     r"teacher\['train'\] must be a Split\(x, y\) or an \(x, y\) pair; got tuple of length 3"),
    ("ragged list as x", dict(student={"train": Split([[1.0, 2.0, 3.0]] * 9 + [[1.0]], np.arange(10) % 2),
                                       "val": _split(), "test": _split()}), ValueError,
     r"student\['train'\].x must have rows of one shape; row 0 has length 3 but row 9 has length 1"),
]


@pytest.mark.parametrize("label,change,exc,match", CTOR_BAD, ids=_ids(CTOR_BAD))
def test_constructor_bad_input(label, change, exc, match):
    kw = dict(name="t", class_names=["a", "b"], teacher={s: _split() for s in ("train", "val", "test")},
              student={s: _split() for s in ("train", "val", "test")})
    kw.update(change)
    with pytest.raises(exc, match=match):
        CrossModalTask(**kw)


# ------------------------------------------------------- registry and generators
REGISTRY_BAD = [
    ("unknown task", lambda: load_task("hapd"), ValueError, r"task must be one of .*'hapt'.*; got task='hapd'"),
    ("task name not a string", lambda: load_task(3), ValueError, r"task must be one of .*; got task=3"),
    ("negative seed", lambda: load_task("synthetic", seed=-1), ValueError, r"seed must be >= 0; got seed=-1"),
    ("unknown task option", lambda: load_task("synthetic", foo=1), ValueError,
     r"task 'synthetic' has no option 'foo'; its options are gap, label_shift, .*overlap"),
    ("hapt unknown option", lambda: load_task("hapt", users=3), TypeError, r"load_hapt got unexpected options \['users'\]"),
    ("synthetic gap < 0", lambda: make_synthetic_task(gap=-1.0), ValueError, r"gap must be >= 0; got gap=-1.0"),
    ("synthetic one class", lambda: make_synthetic_task(num_classes=1), ValueError, r"num_classes must be >= 2"),
    ("synthetic overlap = 0", lambda: make_synthetic_task(overlap=0.0), ValueError, r"overlap must be > 0"),
    ("synthetic rotation NaN", lambda: make_synthetic_task(rotation=float("nan")), ValueError,
     r"rotation must be finite; got rotation=nan"),
    ("synthetic rotation string", lambda: make_synthetic_task(rotation="0.5"), TypeError,
     r"rotation must be a number; got rotation='0.5' of type str"),
    ("fast not a bool", lambda: load_task("synthetic", fast="no"), TypeError,
     r"fast must be true or false \(.*\); got fast='no' of type str"),
    ("seed a string", lambda: load_task("hapt", seed="1"), TypeError, r"seed must be an integer; got seed='1'"),
    ("synthetic too few samples", lambda: make_synthetic_task(n_student=5), ValueError, r"n_student must be >= 20"),
    ("mlp spec without in_features", lambda: _enc({"kind": "mlp"}), ValueError,
     r"encoder spec \{'kind': 'mlp', ...\}: missing required key\(s\) \['in_features'\]; mlp takes in_features "
     r"\(required\), hidden"),
    ("cnn1d spec with an unknown key", lambda: _enc({"kind": "cnn1d", "in_channels": 3, "kernel": 5}), ValueError,
     r"encoder spec \{'kind': 'cnn1d', ...\}: unknown key\(s\) \['kernel'\]; cnn1d takes in_channels \(required\)"),
]


def _enc(spec):
    from cmkd_lab.models.encoders import build_encoder
    return build_encoder(spec, 8)


@pytest.mark.parametrize("label,call,exc,match", REGISTRY_BAD, ids=_ids(REGISTRY_BAD))
def test_registry_bad_input(label, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------- damaged data files
def _damage(src, dst, how):
    data = bytearray(src.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0xFF
    elif how == "truncate":
        data = data[: len(data) // 2]
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_hapt_damaged_file_fails_its_checksum(tmp_path, how):
    from cmkd_lab.data.hapt import BUILTIN_DIR, load_hapt
    src = BUILTIN_DIR / "hapt.npz"
    if not src.is_file():
        pytest.skip("hapt.npz not built")
    p = _damage(src, tmp_path / "hapt.npz", how)
    with pytest.raises(ValueError, match=r"the HAPT data file .*hapt.npz failed its integrity check: expected SHA-256 "
                                         r"[0-9a-f]{64}, got .*; rebuild it with"):
        load_hapt(path=p)


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_digits_speech_damaged_file_fails_its_checksum(tmp_path, how):
    from cmkd_lab.data.digits_speech import DIGITS_SPEECH_PATH, read_speech_arrays
    if not DIGITS_SPEECH_PATH.is_file():
        pytest.skip("digits_speech.npz not built")
    p = _damage(DIGITS_SPEECH_PATH, tmp_path / "d.npz", how)
    with pytest.raises(ValueError, match=r"d.npz is corrupt or out of date: SHA-256 expected [0-9a-f]{64}, got [0-9a-f]{64}"):
        read_speech_arrays(p)


def test_missing_data_file_names_the_fix(tmp_path):
    from cmkd_lab.data.digits_speech import read_speech_arrays
    with pytest.raises(FileNotFoundError, match=r"spoken-digit features not found at .*; rebuild it"):
        read_speech_arrays(tmp_path / "none.npz")


def test_raw_pickle_reader_refuses_code(tmp_path):
    from cmkd_lab.data._safe_pickle import safe_load
    target = tmp_path / "pwned"
    payload = b"cos\nsystem\n(S'touch " + str(target).encode() + b"'\ntR."
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (os|posix)\.system"):
        safe_load(io.BytesIO(payload))
    assert not target.exists()


# ------------------------------------------------------- what the Trainer refuses
@pytest.fixture(scope="module")
def tiny():
    return make_synthetic_task(n_teacher=120, n_student=120, seed=0)


def _cfg(**kw):
    return DistillConfig(**{"epochs": 1, "teacher_epochs": 1, "batch_size": 16, **kw})


def test_pairing_the_task_cannot_provide():
    t = _build()
    with pytest.raises(PairingError, match=r"pairing='paired' needs a task with paired samples, and task 'custom' has none"):
        Trainer(t, "ce", _cfg(pairing="paired"))


def test_paired_method_under_unpaired(tiny):
    with pytest.raises(PairingError, match=r"method 'kd' needs a teacher sample tied to each student sample; it cannot "
                                           r"run with pairing='unpaired'"):
        Trainer(tiny, "kd", _cfg())


def test_class_matched_needs_every_student_class_in_the_teacher():
    ty = TY.copy()
    ty[ty == 2] = 1  # the teacher never sees class 2
    t = _build(teacher_y=ty, class_names=["a", "b", "c"])
    with pytest.raises(PairingError, match=r"pairing='class-matched' needs teacher training samples of every student "
                                           r"class; classes \['c'\] have none"):
        Trainer(t, "ce", _cfg(pairing="class-matched"))


def test_given_teacher_with_other_feature_dim_or_class_count(tiny):
    from cmkd_lab.models import build_classifier
    wrong_d = build_classifier(tiny.teacher_encoder, 16, tiny.num_classes)
    with pytest.raises(ValueError, match=r"feature dimensions differ.*16.*64"):
        Trainer(tiny, "ce", _cfg(), teacher=(wrong_d, {}))
    wrong_k = build_classifier(tiny.teacher_encoder, 64, tiny.num_classes + 1)
    with pytest.raises(ValueError, match=r"class counts differ: teacher K=6, student K=5"):
        Trainer(tiny, "ce", _cfg(), teacher=(wrong_k, {}))


TRAINER_BAD = [
    ("task not a task", lambda t: Trainer({"x": 1}, "ce"), TypeError, r"task must be a CrossModalTask .*got dict"),
    ("config as dict", lambda t: Trainer(t, "ce", {"epochs": 1}), TypeError,
     r"config must be a DistillConfig; got dict: build one with DistillConfig.from_dict"),
    ("unknown method", lambda t: Trainer(t, "ucmk", _cfg()), ValueError, r"method must be one of .*'ucmkd'.*; got method='ucmk'"),
    ("method not a string", lambda t: Trainer(t, ["ce"], _cfg()), TypeError, r"method must be a method name \(str"),
    ("single callback not in a list", lambda t: Trainer(t, "ce", _cfg(), callbacks=__import__(
        "cmkd_lab.distill", fromlist=["Callback"]).Callback()), TypeError, r"callbacks must be a sequence of Callback"),
    ("teacher not a pair", lambda t: Trainer(t, "ce", _cfg(), teacher="t.pt"), TypeError,
     r"teacher must be a \(model, info dict\) pair"),
]


@pytest.mark.parametrize("label,call,exc,match", TRAINER_BAD, ids=_ids(TRAINER_BAD))
def test_trainer_bad_input(tiny, label, call, exc, match):
    with pytest.raises(exc, match=match):
        call(tiny)


def test_device_that_does_not_exist(tiny):
    from cmkd_lab.distill import resolve_device
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda:99' does not exist: \d+ GPU\(s\) visible"):
            resolve_device("cuda:99")
    else:
        with pytest.raises(ValueError, match=r"device='cuda' was asked for but no CUDA GPU is available here; use "
                                             r"device='cpu' or 'auto'"):
            Trainer(tiny, "ce", _cfg(device="cuda"))
    with pytest.raises(ValueError, match=r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got device='gpu'"):
        resolve_device("gpu")


def test_bad_input_count():
    n = len(FROM_ARRAYS_BAD) + len(CTOR_BAD) + len(REGISTRY_BAD) + len(TRAINER_BAD)
    assert n + 2 * 2 + 2 + 4 + 2 == 92  # files (flip/truncate × 2, missing, pickle), trainer pairings, device
