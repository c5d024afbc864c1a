"""The built-in HAPT task, its integrity check and the restricted unpickler."""
import importlib.util
import io
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from cmkd_lab.data import available_tasks, load_task
from cmkd_lab.data._safe_pickle import PandasStub, _np_core, frame_columns, safe_load
from cmkd_lab.data.hapt import BUILTIN_DIR, HAPT_SPLIT_USERS, arrays_sha256, load_hapt

ROOT = Path(__file__).resolve().parents[1]
NPZ = BUILTIN_DIR / "hapt.npz"


@pytest.fixture(scope="module")
def task():
    return load_task("hapt")


@pytest.fixture(scope="module")
def raw():
    with np.load(NPZ) as z:
        return {k: z[k] for k in z.files}


def _build_script():
    spec = importlib.util.spec_from_file_location("build_hapt", ROOT / "scripts" / "build_hapt.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------- the task
def test_registered():
    assert "hapt" in available_tasks()


def test_shapes_classes_and_specs(task):
    assert task.class_names == ["walk", "upstairs", "downstairs", "sit", "stand", "lie"]
    assert (task.teacher_modality, task.student_modality) == ("accelerometer", "gyroscope")
    spec = {"kind": "cnn1d", "in_channels": 3, "length": 128}
    assert task.teacher_encoder == spec and task.student_encoder == spec
    for side in (task.teacher, task.student):
        for split in side.values():
            assert split.x.shape[1:] == (3, 128) and split.x.dtype == np.float32
            assert set(np.unique(split.y)) == set(range(6))
    assert sum(len(task.student[s]) for s in ("train", "val")) + len(task.teacher["train"]) \
        + len(task.teacher["val"]) + len(task.student["test"]) == 10017
    assert "CC BY 4.0" in task.info["licence"]


def test_standardised_on_own_training_split(task):
    for side in (task.teacher, task.student):
        x = side["train"].x
        np.testing.assert_allclose(x.mean(axis=(0, 2)), 0, atol=1e-3)
        np.testing.assert_allclose(x.std(axis=(0, 2)), 1, atol=1e-3)


def test_splits_are_user_disjoint(task, raw):
    users = {(role, s): set(u) for role, splits in HAPT_SPLIT_USERS.items() for s, u in splits.items()}
    assert not users["teacher", "train"] & users["student", "train"]
    trainval = set().union(*(users[r, s] for r in ("teacher", "student") for s in ("train", "val")))
    assert not users["teacher", "test"] & trainval and users["teacher", "test"] == users["student", "test"]
    assert not users["teacher", "val"] & (users["teacher", "train"] | users["student", "train"])
    # The task's splits hold exactly those users' windows ...
    for role, side in (("teacher", task.teacher), ("student", task.student)):
        for s, split in side.items():
            mask = np.isin(raw["user"], list(users[role, s]))
            np.testing.assert_array_equal(split.y, raw["y"][mask])
    # ... so no teacher training window is the same instant as a student training one.
    t_rows = {r.tobytes() for r in task.teacher["train"].x}
    assert not any(r.tobytes() in t_rows for r in task.paired_teacher_x["train"])


def test_paired_teacher_x_aligned_with_student(task, raw):
    np.testing.assert_array_equal(task.paired_teacher_x["test"], task.teacher["test"].x)
    acc = raw["acc"].astype(np.float32)
    t_train = acc[np.isin(raw["user"], list(HAPT_SPLIT_USERS["teacher"]["train"]))]
    mean, std = t_train.mean(axis=(0, 2))[:, None], t_train.std(axis=(0, 2))[:, None]
    for s in ("train", "val"):
        rows = np.isin(raw["user"], list(HAPT_SPLIT_USERS["student"][s]))
        assert task.paired_teacher_x[s].shape == task.student[s].x.shape
        np.testing.assert_allclose(task.paired_teacher_x[s], (acc[rows] - mean) / std, atol=1e-4)


def test_fast_is_a_stratified_quarter_fixed_by_seed(task):
    a, b, c = (load_task("hapt", fast=True, seed=s) for s in (0, 0, 1))
    for s in ("train", "val", "test"):
        full, sub = np.bincount(task.student[s].y), np.bincount(a.student[s].y)
        np.testing.assert_allclose(sub, full / 4, atol=1)
        np.testing.assert_array_equal(a.student[s].x, b.student[s].x)
        np.testing.assert_array_equal(a.paired_teacher_x[s].shape[0], len(a.student[s]))
    assert not np.array_equal(a.student["train"].x, c.student["train"].x)


def test_unknown_option_is_refused():
    with pytest.raises(TypeError, match="unexpected options"):
        load_task("hapt", window=64)


# ---------------------------------------------------------- integrity check
def test_checksum_mismatch_names_file_hashes_and_fix(tmp_path, raw):
    expected = json.loads((BUILTIN_DIR / "CHECKSUMS.json").read_text())["hapt"]
    assert arrays_sha256(raw) == expected
    tampered = dict(raw, y=raw["y"].copy())
    tampered["y"][0] = (tampered["y"][0] + 1) % 6
    path = tmp_path / "hapt.npz"
    np.savez(path, **tampered)
    with pytest.raises(ValueError) as err:
        load_hapt(path=path)
    msg = str(err.value)
    assert str(path) in msg and expected in msg and arrays_sha256(tampered) in msg
    assert "scripts/build_hapt.py" in msg


@pytest.mark.parametrize("damage", ["truncate", "flip", "missing"])
def test_corrupt_or_missing_file_gives_clear_error(tmp_path, damage):
    path = tmp_path / "hapt.npz"
    shutil.copy(NPZ, path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(data)
    else:
        path.unlink()
    with pytest.raises(ValueError, match=r"(?s)hapt\.npz.*integrity.*unreadable.*build_hapt\.py"):
        load_hapt(path=path)


def test_merge_checksum_keeps_other_keys(tmp_path, monkeypatch):
    mod = _build_script()
    monkeypatch.setattr(mod, "BUILTIN_DIR", tmp_path)
    (tmp_path / "CHECKSUMS.json").write_text(json.dumps({"digits_speech": "abc"}))
    mod.merge_checksum("hapt", "def")
    assert json.loads((tmp_path / "CHECKSUMS.json").read_text()) == {"digits_speech": "abc", "hapt": "def"}


def test_write_npz_is_deterministic(tmp_path, raw):
    mod = _build_script()
    small = {k: v[:50] for k, v in raw.items()}
    mod.write_npz(tmp_path / "a.npz", small)
    mod.write_npz(tmp_path / "b.npz", small)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as z:
        assert arrays_sha256({k: z[k] for k in z.files}) == arrays_sha256(small)


# ------------------------------------------------------- the safe unpickler
class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'touch {t}'\ntR.",
    b"cbuiltins\neval\n(S'open(\"{t}\", \"w\")'\ntR.",
    b"c__builtin__\neval\n(S'open(\"{t}\", \"w\")'\ntR.",
    b"csubprocess\ncall\n(S'touch {t}'\ntR.",
    "reduce",
])
def test_safe_unpickler_refuses_code(tmp_path, payload):
    target = tmp_path / "pwned"
    data = pickle.dumps(_Evil(target)) if payload == "reduce" else payload.replace(b"{t}", str(target).encode())
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global (os|posix|builtins|__builtin__|subprocess)\.(system|eval|call)"):
        safe_load(io.BytesIO(data))
    assert not target.exists()


def test_safe_unpickler_refuses_misuse_of_allowed_helpers():
    # copyreg._reconstructor may only build pandas stubs, _codecs.encode only latin-1.
    with pytest.raises(pickle.UnpicklingError, match="_reconstructor"):
        safe_load(io.BytesIO(b"ccopy_reg\n_reconstructor\n(cbuiltins\nobject\ncbuiltins\nobject\nNtR."))
    with pytest.raises(pickle.UnpicklingError, match="latin1"):
        safe_load(io.BytesIO(b"c_codecs\nencode\n(S'x'\nS'rot13'\ntR."))


@pytest.mark.parametrize("payload", [
    b"c_codecs\nencode\n}(S'x'\nI1\nub.",
    b"cnumpy._core.numeric\n_frombuffer\n(N}(S'__defaults__'\n(I1\ntutb.",
])
def test_safe_unpickler_refuses_to_modify_allowed_functions(payload):
    defaults = _np_core.numeric._frombuffer.__defaults__
    with pytest.raises(pickle.UnpicklingError, match="refusing to set state"):
        safe_load(io.BytesIO(payload))
    assert _np_core.numeric._frombuffer.__defaults__ == defaults


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_unpickler_loads_numpy_arrays(protocol):
    obj = {"a": np.arange(12.0).reshape(3, 4), "b": np.asfortranarray(np.eye(3, dtype=np.float16)),
           "c": [np.array([1, -2], dtype=np.int8), (1, "x", None)]}
    out = safe_load(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
    for k in ("a", "b"):
        np.testing.assert_array_equal(out[k], obj[k])
        assert out[k].dtype == obj[k].dtype
    np.testing.assert_array_equal(out["c"][0], obj["c"][0])
    assert out["c"][1] == (1, "x", None)


def test_frame_columns_reads_a_stubbed_frame():
    # A frame in the pandas >= 0.14.1 BlockManager layout, built from stubs.
    from cmkd_lab.data import _safe_pickle as sp

    index = sp._STUBS["pandas.core.indexes.base", "Index"]()
    index.state = {"data": np.array(["a", "b", "c"], dtype=object)}
    manager = sp._STUBS["pandas.core.internals.managers", "BlockManager"]()
    blocks = [{"values": np.array([[1.0, 2.0]]), "mgr_locs": slice(1, 2, 1)},
              {"values": np.array([[3, 4], [5, 6]]), "mgr_locs": np.array([0, 2])}]
    manager.state = (None, None, None, {"0.14.1": {"axes": [index, None], "blocks": blocks}})
    frame = sp._STUBS["pandas.core.frame", "DataFrame"]()
    frame.state = {"_data": manager}
    cols = frame_columns(frame)
    assert list(cols) == ["a", "b", "c"] and isinstance(frame, PandasStub)
    np.testing.assert_array_equal(cols["a"], [3, 4])
    np.testing.assert_array_equal(cols["b"], [1.0, 2.0])
    np.testing.assert_array_equal(cols["c"], [5, 6])


# ------------------------------------------- rebuild from the raw sdist (optional)
RAW = os.environ.get("CMKD_HAPT_RAW")  # path to HAPT.pkl.gz or the sdist .tar.gz


@pytest.mark.skipif(not RAW or not Path(RAW).exists(), reason="set CMKD_HAPT_RAW to the raw HAPT file")
def test_rebuild_from_raw_matches_shipped_checksum():
    mod = _build_script()
    arrays = mod.cut_windows(mod.read_raw(Path(RAW)))
    expected = json.loads((BUILTIN_DIR / "CHECKSUMS.json").read_text())["hapt"]
    assert arrays_sha256(arrays) == expected


def test_gyroscope_compression_spreads_the_static_windows():
    """The signed-log knee keeps the static activities visible: before it, their windows are ~0.03 in
    amplitude after standardisation; after it, of order 1 (gyro_knee=0 gives the plain standardisation)."""
    import numpy as np
    from cmkd_lab.data import load_task
    new, plain = load_task("hapt"), load_task("hapt", gyro_knee=0)
    static = np.isin(new.student["train"].y, [3, 4, 5])  # sit, stand, lie

    def spread(t):
        return float(np.median(t.student["train"].x[static].std(axis=2)))
    assert spread(plain) < 0.1 < 0.3 < spread(new)
    for t in (new, plain):  # standardised on their own training split either way
        np.testing.assert_allclose(t.student["train"].x.mean(axis=(0, 2)), 0, atol=1e-3)
        np.testing.assert_allclose(t.student["train"].x.std(axis=(0, 2)), 1, atol=1e-3)
    np.testing.assert_array_equal(new.teacher["train"].x, plain.teacher["train"].x)  # the teacher is unchanged
    with pytest.raises(ValueError, match="gyro_knee must be >= 0"):
        load_task("hapt", gyro_knee=-1)
