"""The built-in ``digits-speech`` task (digit images -> spoken digits)."""
import hashlib
import json
import shutil

import numpy as np
import pytest

from cmkd_lab.data import available_tasks, load_task
from cmkd_lab.data.digits_speech import CHECKSUMS_PATH, DIGITS_SPEECH_PATH, load_digits_speech

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def task():
    return load_digits_speech(seed=0)


def test_registered_and_loadable_by_name():
    assert "digits-speech" in available_tasks()
    assert load_task("digits-speech", fast=True).name == "digits-speech"


def test_shapes_classes_and_encoders(task):
    assert task.class_names == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for s in SPLITS:
        assert task.teacher[s].x.shape[1:] == (1, 8, 8)
        assert task.student[s].x.shape[1:] == (1, 32, 48)
        assert task.teacher[s].x.dtype == task.student[s].x.dtype == np.float32
        assert set(np.unique(task.teacher[s].y)) == set(range(10))
        assert set(np.unique(task.student[s].y)) == set(range(10))
    assert sum(len(task.teacher[s]) for s in SPLITS) == 1797
    assert task.teacher_encoder == {"kind": "cnn2d", "in_channels": 1, "height": 8, "width": 8}
    assert task.student_encoder == {"kind": "cnn2d", "in_channels": 1, "height": 32, "width": 48, "pool": "max"}
    # standardised on the train splits
    assert abs(task.teacher["train"].x.mean()) < 1e-4 and abs(task.teacher["train"].x.std() - 1) < 1e-3
    assert np.allclose(task.student["train"].x.mean(axis=(0, 1, 3)), 0, atol=1e-3)


def test_student_splits_are_voice_disjoint(task):
    meta = task.info["student_meta"]
    voices = {s: set(meta[s]["voice"]) for s in SPLITS}
    assert not voices["train"] & voices["val"]
    assert not voices["train"] & voices["test"]
    assert not voices["val"] & voices["test"]
    named = {s: set(task.info["voices"][s]) for s in SPLITS}
    assert sum(map(len, named.values())) == len(set().union(*named.values()))
    for s in SPLITS:
        assert {task.info["voice_names"][v] for v in voices[s]} == named[s]
        assert len(meta[s]["pitch"]) == len(meta[s]["rate"]) == len(task.student[s])


def test_constructed_pairs_share_the_student_class(task):
    assert task.has_pairs and "constructed" in task.info["pairing"]
    for s in SPLITS:
        label_of = {row.tobytes(): y for row, y in zip(task.teacher[s].x, task.teacher[s].y)}
        px = task.paired_teacher_x[s]
        assert px.shape == (len(task.student[s]), 1, 8, 8)
        # every paired image is an image of the same digit from the same-named teacher split
        assert [label_of[row.tobytes()] for row in px] == task.student[s].y.tolist()


def test_load_is_deterministic_and_seed_moves_teacher_split_only(task):
    again = load_digits_speech(seed=0)
    other = load_digits_speech(seed=1)
    for s in SPLITS:
        np.testing.assert_array_equal(again.teacher[s].x, task.teacher[s].x)
        np.testing.assert_array_equal(again.student[s].x, task.student[s].x)
        np.testing.assert_array_equal(again.paired_teacher_x[s], task.paired_teacher_x[s])
        np.testing.assert_array_equal(other.student[s].y, task.student[s].y)  # voice split is fixed
    assert not np.array_equal(other.teacher["test"].y, task.teacher["test"].y)


def test_fast_is_a_stratified_third(task):
    fast = load_digits_speech(seed=0, fast=True)
    for s in SPLITS:
        for full, small in ((task.teacher[s], fast.teacher[s]), (task.student[s], fast.student[s])):
            assert abs(len(small) - len(full) / 3) <= 10
            assert set(np.unique(small.y)) == set(range(10))
        # fast keeps clips of the full task, standardised the same way
        rows = {r.tobytes() for r in task.student[s].x}
        assert all(r.tobytes() in rows for r in fast.student[s].x)


def test_shipped_file_matches_recorded_checksum():
    digest = hashlib.sha256(DIGITS_SPEECH_PATH.read_bytes()).hexdigest()
    assert json.loads(CHECKSUMS_PATH.read_text())["digits_speech"] == digest


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_file_fails_with_a_clear_error(tmp_path, damage):
    bad = tmp_path / "digits_speech.npz"
    shutil.copy(DIGITS_SPEECH_PATH, bad)
    blob = bytearray(bad.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    else:
        del blob[len(blob) // 2:]
    bad.write_bytes(bytes(blob))
    expected = json.loads(CHECKSUMS_PATH.read_text())["digits_speech"]
    with pytest.raises(ValueError) as err:
        load_digits_speech(path=bad)
    msg = str(err.value)
    assert str(bad) in msg and expected in msg
    assert hashlib.sha256(bytes(blob)).hexdigest() in msg
    assert "python scripts/build_digits_speech.py" in msg


def test_missing_file_and_unknown_option():
    with pytest.raises(FileNotFoundError, match="build_digits_speech"):
        load_digits_speech(path="/nonexistent/digits_speech.npz")
    with pytest.raises(TypeError, match="noise"):
        load_digits_speech(noise=0.5)


def test_the_earlier_preprocessing_is_an_option():
    """pool="avg" and clip_level=False give back the earlier student network and inputs; the default
    subtracts each clip's level (per-band standardisation is kept: every band still has mean 0)."""
    import numpy as np
    from cmkd_lab.data import load_task
    new, old = load_task("digits-speech"), load_task("digits-speech", pool="avg", clip_level=False)
    assert old.student_encoder["pool"] == "avg" and new.student_encoder["pool"] == "max"
    x_new, x_old = new.student["train"].x, old.student["train"].x
    np.testing.assert_allclose(x_new, x_old - x_old.mean(axis=(1, 2, 3), keepdims=True), atol=1e-5)
    assert np.allclose(x_new.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    assert np.allclose(x_new.mean(axis=(0, 1, 3)), 0, atol=1e-3)
