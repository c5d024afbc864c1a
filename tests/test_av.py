"""Audio-visual tasks on fixture folders in each dataset's usual layout, lazy arrays, the data loader.

The real datasets cannot be downloaded here; the fixtures below write a few
clips per class in the layout the public audio-visual code reads (tiny JPEG
frames, small spectrogram arrays, split lists), and every test runs on them.
"""
import csv
import json
import os
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cmkd_lab.data import CrossModalTask, Split, load_task
from cmkd_lab.data.av import AV_LAYOUTS, CREMA_D, RAVDESS, DataLayoutError, load_av
from cmkd_lab.data.lazy import FrameFolderArray, LazyArray, SpectrogramArray, is_lazy, take
from cmkd_lab.data.loader import iterate_batches, resolve_workers
from cmkd_lab.distill import DistillConfig, Trainer
from cmkd_lab.distill.teacher import batched_features, train_teacher

SIZE, FREQ, LEN = 32, 16, 20
SMALL = dict(image_size=SIZE, width=4)  # tiny ResNet-18 (8·4 = 32 features) on 32×32 frames


# ----------------------------------------------------------------- fixtures
def _write_clip(root, clip, k, rng, *, frames=2, audio_dir="audio", ext=".npy", length=LEN):
    vdir = root / "visual" / clip
    vdir.mkdir(parents=True)
    for t in range(frames):
        px = np.clip(rng.normal(40 + 30 * (k % 7), 25, size=(SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(px).save(vdir / f"frame_{t + 1:05d}.jpg", quality=90)
    spec = (rng.normal(size=(FREQ, length)) + 0.3 * k).astype(np.float32)
    adir = root / audio_dir
    adir.mkdir(exist_ok=True)
    if ext == ".npy":
        np.save(adir / f"{clip}.npy", spec)
    else:
        with open(adir / f"{clip}.pkl", "wb") as f:
            pickle.dump(spec, f)


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)


def make_crema_d(root, *, per_class=(4, 2), seed=0):
    """CREMA-D as OGM-GE ships its lists: train.csv / test.csv rows 'clip,NEU'."""
    rng = np.random.default_rng(seed)
    rows = {"train": [], "test": []}
    n = 0
    for k, (_, code) in enumerate(CREMA_D):
        for split, count in zip(("train", "test"), per_class):
            for _ in range(count):
                clip = f"{1001 + n}_IEO_{code}_XX"
                n += 1
                _write_clip(root, clip, k, rng, frames=2)
                rows[split].append([clip, code])
    _write_csv(root / "train.csv", rows["train"])
    _write_csv(root / "test.csv", rows["test"])
    return root


AVE_CLASSES = ["Accordion", "Acoustic guitar", "Baby cry, infant cry", "Banjo", "Bark", "Bus", "Cat", "Chainsaw",
               "Church bell", "Clock", "Female speech, woman speaking", "Fixed-wing aircraft, airplane", "Flute",
               "Frying (food)", "Goat", "Helicopter", "Horse", "Male speech, man speaking", "Mandolin", "Motorcycle",
               "Race car, auto racing", "Rodents, rats, mice", "Shofar", "Toilet flush", "Train horn", "Truck",
               "Ukulele", "Violin, fiddle"]


def make_ave(root, *, seed=0):
    """AVE in OGM-GE's layout: stat.txt, my_train/my_val/my_test.txt ('class,clip,...'), audio_spec/*.pkl."""
    rng = np.random.default_rng(seed)
    rows = {"train": [], "val": [], "test": []}
    n = 0
    for k, name in enumerate(AVE_CLASSES):
        for split, count in (("train", 3), ("val", 1), ("test", 1)):
            for _ in range(count):
                clip = f"vid{n:04d}"
                n += 1
                _write_clip(root, clip, k, rng, frames=4, audio_dir="audio_spec", ext=".pkl")
                rows[split].append([name, clip, "good", "0", "10"])
    (root / "stat.txt").write_text("\n".join(AVE_CLASSES) + "\n")
    for split, fname in (("train", "my_train.txt"), ("val", "my_val.txt"), ("test", "my_test.txt")):
        _write_csv(root / fname, rows[split])
    return root


def make_ravdess(root, *, seed=0):
    """RAVDESS: clip ids are the file names MM-VV-EE-II-SS-RR-AA; test.csv without a label column."""
    rng = np.random.default_rng(seed)
    rows = {"train": [["clip", "label"]], "test": []}
    for k, name in enumerate(RAVDESS):
        for split, actors in (("train", (1, 2, 3)), ("test", (23, 24))):
            for a in actors:
                clip = f"01-01-{k + 1:02d}-01-01-01-{a:02d}"
                # ragged test clips: actor 23 shorter (tiled), actor 24 longer (cropped)
                _write_clip(root, clip, k, rng, frames=1, length={23: LEN - 6, 24: LEN + 5}.get(a, LEN))
                rows[split].append([clip, name] if split == "train" else [clip])
    _write_csv(root / "train.csv", rows["train"])
    _write_csv(root / "test.csv", rows["test"])
    return root


VGG_CLASSES = ["dog barking", "playing violin, fiddle", "people marching", "rain", "train horning"]


def make_vggsound(root, *, seed=0, classes=VGG_CLASSES, per_class=(4, 2)):
    """VGGSound: vggsound.csv rows 'youtube_id,start_seconds,label,split'; the class list comes from the data."""
    rng = np.random.default_rng(seed)
    rows = []
    n = 0
    for k, name in enumerate(classes):
        for split, count in zip(("train", "test"), per_class):
            for _ in range(count):
                ytid, start = f"-yt{n:05d}x", str(10 * n)
                n += 1
                _write_clip(root, f"{ytid}_{start}", k, rng, frames=3)
                rows.append([ytid, start, name, split])
    _write_csv(root / "vggsound.csv", rows)
    return root


MAKERS = {"crema-d": make_crema_d, "ave": make_ave, "ravdess": make_ravdess, "vggsound": make_vggsound}
N_CLASSES = {"crema-d": 6, "ave": 28, "ravdess": 8, "vggsound": 5}


@pytest.fixture(autouse=True)
def _one_thread():
    # The models here are tiny: one thread avoids oversubscription on shared CPUs.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("av")
    out = {}
    for name, make in MAKERS.items():
        (base / name).mkdir()
        out[name] = make(base / name)
    return out


def _cfg(**kw):
    base = dict(epochs=1, teacher_epochs=1, batch_size=8, feature_dim=32, device="cpu", lr=1e-2)
    base.update(kw)
    return DistillConfig(**base)


# ---------------------------------------------------------------- loading
@pytest.mark.parametrize("name", list(MAKERS))
def test_each_layout_loads_lazily_with_its_classes(roots, name):
    t = load_task(name, data_root=roots[name], **SMALL)
    assert t.num_classes == N_CLASSES[name]
    lay = AV_LAYOUTS[name]
    d = lay.default_direction
    assert (t.teacher_modality, t.student_modality) == (("audio", "visual") if d == "a2v" else ("visual", "audio"))
    vis = t.student if d == "a2v" else t.teacher
    aud = t.teacher if d == "a2v" else t.student
    for s in ("train", "val", "test"):
        assert is_lazy(vis[s].x) and is_lazy(aud[s].x) and is_lazy(t.paired_teacher_x[s])
        assert vis[s].x.shape[1:] == (lay.default_frames, 3, SIZE, SIZE)
        assert aud[s].x.shape[1:] == (1, FREQ, LEN)
        # the paired view is the teacher modality of the student's own clips
        assert t.paired_teacher_x[s].shape[1:] == t.teacher[s].x.shape[1:]
        assert len(t.paired_teacher_x[s]) == len(t.student[s])
    assert t.teacher_encoder["kind"] == t.student_encoder["kind"] == "resnet18"
    x = vis["train"].x[:3]
    assert x.dtype == np.float32 and x.shape == (3, lay.default_frames, 3, SIZE, SIZE) and np.isfinite(x).all()


def test_labels_come_from_the_lists_in_the_public_class_order(roots):
    t = load_task("crema-d", data_root=roots["crema-d"], **SMALL)
    assert t.class_names == ["neutral", "happy", "sad", "fear", "disgust", "anger"]  # NEU 0 ... ANG 5
    rows = list(csv.reader(open(roots["crema-d"] / "test.csv")))
    code = {c: k for k, (_, c) in enumerate(CREMA_D)}
    assert np.array_equal(t.student["test"].y, [code[r[1]] for r in rows])
    # RAVDESS: names in train.csv, codes read from the clip names for test.csv
    r = load_task("ravdess", data_root=roots["ravdess"], **SMALL)
    assert r.class_names == RAVDESS
    assert np.array_equal(np.bincount(r.student["test"].y), [2] * 8)
    v = load_task("vggsound", data_root=roots["vggsound"], **SMALL)
    assert v.class_names == sorted(VGG_CLASSES)  # read from the data, commas inside quotes kept
    a = load_task("ave", data_root=roots["ave"], **SMALL)
    assert a.class_names == sorted(AVE_CLASSES)


def test_ave_uses_its_validation_list_and_others_carve_one_from_train(roots):
    a = load_task("ave", data_root=roots["ave"], **SMALL)
    assert a.info["validation"] == "the dataset's validation list"
    assert (len(a.teacher["train"]), len(a.teacher["val"]), len(a.teacher["test"])) == (84, 28, 28)
    c = load_task("crema-d", data_root=roots["crema-d"], seed=3, **SMALL)
    assert c.info["validation"].startswith("carved from train")
    # 4 training clips per class: one per class goes to validation (stratified)
    assert np.array_equal(np.bincount(c.student["val"].y), [1] * 6)
    assert np.array_equal(np.bincount(c.student["train"].y), [3] * 6)
    assert np.array_equal(np.bincount(c.student["test"].y), [2] * 6)


def _clips(x):
    base = x.base if hasattr(x, "base") else x
    names = base.folders if hasattr(base, "folders") else base.paths
    idx = x.idx if hasattr(x, "idx") else range(len(names))
    return {names[i].rsplit("/", 1)[-1].split(".")[0] for i in idx}


def test_splits_never_share_clips_and_are_seeded(roots):
    t1 = load_task("crema-d", data_root=roots["crema-d"], seed=1, **SMALL)
    t1b = load_task("crema-d", data_root=roots["crema-d"], seed=1, **SMALL)
    t2 = load_task("crema-d", data_root=roots["crema-d"], seed=2, **SMALL)
    tr, va, te = (_clips(t1.student[s].x) for s in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te) and len(tr | va | te) == 36
    assert _clips(t1b.student["val"].x) == va
    assert _clips(t2.student["val"].x) != va
    assert t1.fingerprint() == t1b.fingerprint() != t2.fingerprint()


def test_disjoint_split_divides_training_clips_between_teacher_and_student(roots):
    sh = load_task("crema-d", data_root=roots["crema-d"], **SMALL)
    dj = load_task("crema-d", data_root=roots["crema-d"], teacher_student_split="disjoint", **SMALL)
    assert _clips(sh.teacher["train"].x) == _clips(sh.student["train"].x)
    t, s = _clips(dj.teacher["train"].x), _clips(dj.student["train"].x)
    assert not (t & s) and t | s == _clips(sh.student["train"].x)
    # stratified halves: per class the counts differ by at most one (3 clips: 2 + 1)
    nt, ns = np.bincount(dj.teacher["train"].y, minlength=6), np.bincount(dj.student["train"].y, minlength=6)
    assert np.all(np.abs(nt - ns) <= 1) and np.all(ns >= 1) and np.array_equal(nt + ns, [3] * 6)
    # paired view: the teacher modality of the student's clips (never seen by the teacher)
    assert _clips(dj.paired_teacher_x["train"]) == s
    assert dj.info["teacher_student_split"] == "disjoint"


def test_direction_option_swaps_the_modalities(roots):
    av = load_task("crema-d", data_root=roots["crema-d"], direction="A→V", **SMALL)
    va = load_task("crema-d", data_root=roots["crema-d"], direction="v->a", **SMALL)
    assert (av.teacher_modality, av.student_modality, av.info["direction"]) == ("audio", "visual", "A→V")
    assert (va.teacher_modality, va.student_modality, va.info["direction"]) == ("visual", "audio", "V→A")
    assert av.teacher["train"].x.shape[1:] == va.student["train"].x.shape[1:] == (1, FREQ, LEN)
    with pytest.raises(ValueError, match="direction must be 'A→V'"):
        load_task("crema-d", data_root=roots["crema-d"], direction="sideways")


def test_ragged_spectrograms_are_tiled_or_cropped_to_one_length(roots):
    r = load_task("ravdess", data_root=roots["ravdess"], **SMALL)  # test clips of 14, 20 and 25 frames
    aud = r.teacher["test"].x
    assert aud.shape[1:] == (1, FREQ, LEN)  # the first training clip's length
    for i, path in enumerate(aud.paths):
        raw = np.load(path)
        a = aud[i][0]  # (F, L)
        if raw.shape[1] >= LEN:  # cropped
            assert np.array_equal(a, raw[:, :LEN])
        else:  # tiled: 14 frames, then its first 6 again
            assert raw.shape[1] == LEN - 6
            assert np.array_equal(a, np.concatenate([raw, raw[:, :6]], 1))
    long = load_task("ravdess", data_root=roots["ravdess"], audio_length=45, **SMALL).teacher["test"].x
    assert long.shape[1:] == (1, FREQ, 45)
    raw = np.load(long.paths[0])
    np.testing.assert_array_equal(long[0][0], np.tile(raw, (1, 4))[:, :45])


def test_parent_folder_and_environment_variable_find_the_dataset(roots, monkeypatch):
    parent = roots["crema-d"].parent  # holds crema-d/ among others
    t = load_task("crema-d", data_root=parent, **SMALL)
    assert t.info["data_root"] == str(roots["crema-d"])
    monkeypatch.setenv("CMKD_LAB_DATA", str(parent))
    assert load_task("ave", **SMALL).info["data_root"] == str(roots["ave"])


def test_fast_keeps_a_few_clips_per_class(roots):
    t = load_task("vggsound", data_root=roots["vggsound"], fast=True, **SMALL)
    assert max(np.bincount(t.student["train"].y)) <= 8 and max(np.bincount(t.student["test"].y)) <= 4


# ------------------------------------------------------------------ errors
def _copy(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_missing_root_says_how_to_give_one(monkeypatch, tmp_path):
    monkeypatch.delenv("CMKD_LAB_DATA", raising=False)
    with pytest.raises(DataLayoutError, match=r"pass data_root=DIR \(command line: --data-root DIR\) or set CMKD_LAB_DATA"):
        load_task("crema-d")
    with pytest.raises(DataLayoutError, match="does not exist or is not a folder"):
        load_task("crema-d", data_root=tmp_path / "nowhere")
    with pytest.raises(DataLayoutError, match=r"is not a CREMA-D root.*no subfolder named CREMA-D"):
        load_task("crema-d", data_root=tmp_path)


@pytest.mark.parametrize("breakage,match", [
    (lambda r: (r / "train.csv").unlink(), r"expected the split list\(s\) .*train\.csv; not found"),
    (lambda r: (r / "visual").rename(r / "pictures"), r"expected the video-frame folder .*/visual/"),
    (lambda r: (r / "audio").rename(r / "sound"), r"expected the spectrogram folder .*/audio/"),
    (lambda r: (r / "test.csv").write_text("1001_IEO_NEU_XX\n"), r"test\.csv:1: expected a row 'clip_id,label'"),
    (lambda r: (r / "test.csv").write_text("1001_IEO_NEU_XX,BORED\n"), r"test\.csv:1: unknown label 'BORED'"),
    (lambda r: (r / "test.csv").write_text((r / "train.csv").read_text()), r"listed in both the train and the test"),
    (lambda r: (r / "test.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe"), r"the split list .*test\.csv is not UTF-8 "
     r"text \(invalid start byte at byte 0\); save it as UTF-8 CSV"),
    (lambda r: (r / "test.csv").write_bytes(b"1999_IEO_NEU_XX,NEU\n\x00\x00,NEU\n"),
     r"test\.csv:2: clip '\\x00\\x00' contains a NUL byte; the list is damaged or not a text file"),
    (lambda r: (r / "test.csv").write_text("x" * 200_000 + ",NEU\n"),
     r"the split list .*test\.csv cannot be read as CSV \(field larger than field limit"),
])
def test_malformed_layouts_name_the_file(roots, tmp_path, breakage, match):
    r = _copy(roots["crema-d"], tmp_path / "CREMA-D")
    breakage(r)
    with pytest.raises(DataLayoutError, match=match):
        load_av("crema-d", data_root=r, **SMALL)


def test_missing_clip_files_are_skipped_with_a_warning_or_refused(roots, tmp_path):
    r = _copy(roots["crema-d"], tmp_path / "CREMA-D")
    clip = list(csv.reader(open(r / "train.csv")))[0][0]
    (r / "audio" / f"{clip}.npy").unlink()
    with pytest.warns(RuntimeWarning, match=rf"1 listed clip\(s\) lack frames or audio, e\.g\. {clip} \(no .*audio/{clip}\.npy or \.pkl\)"):
        t = load_av("crema-d", data_root=r, **SMALL)
    assert t.info["clips_skipped"] == 1
    with pytest.raises(DataLayoutError, match=rf"{clip} \(no .*{clip}\.npy or \.pkl\)"):
        load_av("crema-d", data_root=r, missing="error", **SMALL)
    for p in (r / "audio").iterdir():
        p.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataLayoutError, match="no clip of the train split has both its frames and its audio"):
            load_av("crema-d", data_root=r, **SMALL)


def test_bad_clip_contents_are_reported_when_decoded(roots, tmp_path):
    r = _copy(roots["crema-d"], tmp_path / "CREMA-D")
    t = load_av("crema-d", data_root=r, **SMALL)
    frames, spec = t.teacher["test"].x, t.student["test"].x  # V→A: frames teach
    for g in Path(frames.folders[1]).iterdir():
        g.unlink()
    with pytest.raises(ValueError, match="holds no .jpg/.jpeg/.png frames"):
        frames[1]
    with pytest.raises(ValueError, match=r"^the frame folder .* holds no .jpg.*\(raised in a DataLoader worker"):
        list(iterate_batches(frames, [np.array([0]), np.array([1])], "cpu", num_workers=1))
    np.save(spec.paths[2], np.zeros((FREQ + 1, LEN), np.float32))
    with pytest.raises(ValueError, match=r"has 17 frequency bins, but the others have 16"):
        spec[2]
    np.save(spec.paths[3], np.full((FREQ, LEN), -np.inf, np.float32))
    with pytest.raises(ValueError, match="contains NaN or inf"):
        spec[3]


def _outside_clip(base, name, rng):
    """A clip in another folder: frames in base/name/, audio at base/name.npy (what '<list>/../..' reaches)."""
    (base / name).mkdir(parents=True)
    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(base / name / "frame_00001.jpg")
    np.save(base / f"{name}.npy", np.zeros((FREQ, LEN), np.float32))
    return base / name


def _add_row(root, clip, code="NEU", name="train.csv"):
    with open(root / name, "a", newline="") as f:
        csv.writer(f).writerow([clip, code])
    return sum(1 for _ in open(root / name))  # the line just written


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlinked folder", "symlinked audio"])
def test_listed_clips_must_stay_inside_the_data_root(roots, tmp_path, how):
    r = _copy(roots["crema-d"], tmp_path / "CREMA-D")
    out = _outside_clip(tmp_path / "outside", "clip", np.random.default_rng(0))
    if how == "dotdot":
        clip = "../../outside/clip"  # visual/../../outside/clip and audio/../../outside/clip.npy
    elif how == "absolute":
        clip = str(out)
    else:
        clip = "1999_IEO_NEU_XX"
        _write_clip(r, clip, 0, np.random.default_rng(1))
        if how == "symlinked folder":
            import shutil
            shutil.rmtree(r / "visual" / clip)
            (r / "visual" / clip).symlink_to(out, target_is_directory=True)
        else:
            (r / "audio" / f"{clip}.npy").unlink()
            (r / "audio" / f"{clip}.npy").symlink_to(tmp_path / "outside" / "clip.npy")
    line = _add_row(r, clip)
    with pytest.raises(DataLayoutError, match=rf"train\.csv:{line}: clip '{re.escape(clip)}' resolves to "
                                              rf"{re.escape(str(tmp_path / 'outside'))}/clip(\.npy)?, outside the data "
                                              rf"root {re.escape(str(r))} \(symlinks that point outside count as "
                                              rf"outside\): fix the list, or pass allow_outside_root=True \(command "
                                              rf"line: --task-option allow_outside_root=true\) if you trust it"):
        load_av("crema-d", data_root=r, **SMALL)
    with pytest.raises(DataLayoutError, match="outside the data root"):  # refused even where missing clips are skipped
        load_av("crema-d", data_root=r, missing="skip", **SMALL)
    t = load_av("crema-d", data_root=r, allow_outside_root=True, **SMALL)  # the explicit door
    assert t.info["clips_outside_root"] == 1


def test_clips_may_use_symlinks_that_stay_inside_the_root(roots, tmp_path):
    # A visual/ folder that is itself a link to another disk is the user's own choice of folder, and a clip
    # linked to another place inside the root stays inside: both load.
    import shutil
    r = _copy(roots["crema-d"], tmp_path / "CREMA-D")
    big = tmp_path / "bigdisk" / "visual"
    shutil.move(str(r / "visual"), str(big))
    (r / "visual").symlink_to(big, target_is_directory=True)
    clip = list(csv.reader(open(r / "train.csv")))[0][0]
    shutil.move(str(r / "audio" / f"{clip}.npy"), str(r / f"{clip}.npy"))
    (r / "audio" / f"{clip}.npy").symlink_to(r / f"{clip}.npy")
    t = load_av("crema-d", data_root=r, **SMALL)
    assert t.info["clips_outside_root"] == 0 and len(t.student["test"]) == 12


def test_a_frame_linked_outside_the_root_is_refused_when_decoded(roots, tmp_path):
    r = _copy(roots["crema-d"], tmp_path / "CREMA-D")
    t = load_av("crema-d", data_root=r, **SMALL)
    frames = t.teacher["test"].x  # V→A: frames teach
    out = _outside_clip(tmp_path / "outside", "clip", np.random.default_rng(0))
    for first in sorted(Path(frames.folders[1]).iterdir()):  # every frame of clip 1 linked outside
        first.unlink()
        first.symlink_to(out / "frame_00001.jpg")
    with pytest.raises(ValueError, match=rf"the frame {re.escape(str(first.parent))}/frame_\d+\.jpg resolves to .*outside/clip/frame_00001"
                                         rf"\.jpg, outside the data root {re.escape(str(r))} .*allow_outside_root=True"):
        frames[1]
    frames[0]  # the others still decode
    ok = load_av("crema-d", data_root=r, allow_outside_root=True, **SMALL).teacher["test"].x
    assert np.isfinite(ok[1]).all()


def test_pickled_spectrograms_never_run_foreign_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError, match="refusing to load global"):
        SpectrogramArray([str(path)], freq=FREQ, length=LEN)[0]


def test_bad_options_are_refused(roots):
    for kw, match in ((dict(teacher_student_split="half"), "teacher_student_split must be one of"),
                      (dict(missing="ignore"), "missing must be one of"),
                      (dict(frames=0), "frames must be >= 1"),
                      (dict(val_fraction=1.5), r"val_fraction must be in \(0, 1\)"),
                      (dict(val_fraction="0.1"), r"val_fraction must be a number; got val_fraction='0.1'"),
                      (dict(allow_outside_root="yes"), r"allow_outside_root must be true or false"),
                      (dict(data_root=3), r"data_root must be a path \(str or os.PathLike\); got 3 of type int"),
                      (dict(visual_dir=3), r"visual_dir must be a path \(str or os.PathLike\); got 3 of type int")):
        with pytest.raises((ValueError, TypeError), match=match):
            load_av("crema-d", **{"data_root": roots["crema-d"], **kw})


# -------------------------------------------------------------- lazy arrays
class CountingArray(LazyArray):
    """Sample i is i·ones((2, 3)); counts decodes."""

    def __init__(self, n):
        super().__init__(n, (2, 3))
        self.loads = 0

    def load(self, i):
        self.loads += 1
        return np.full((2, 3), i, np.float32)


def test_lazy_array_indexing_matches_numpy():
    lz = CountingArray(10)
    ref = np.stack([np.full((2, 3), i, np.float32) for i in range(10)])
    for key in (3, -1, slice(2, 8, 3), slice(None), np.array([4, 0, 4]), [1, 2], ref[:, 0, 0] > 5):
        np.testing.assert_array_equal(lz[key], ref[key])
    assert lz.shape == (10, 2, 3) and lz.ndim == 3 and len(lz) == 10
    np.testing.assert_array_equal(np.asarray(lz), ref)
    with pytest.raises(IndexError):
        lz[10]
    with pytest.raises(IndexError):
        lz[np.array([0.5])]


def test_selection_views_decode_nothing_until_indexed():
    lz = CountingArray(10)
    v = take(lz, np.array([9, 7, 5]))
    w = v.select(np.array([2, 0]))
    assert is_lazy(v) and lz.loads == 0 and v.fingerprint() != w.fingerprint()
    np.testing.assert_array_equal(w[:], np.stack([np.full((2, 3), i, np.float32) for i in (5, 9)]))
    assert lz.loads == 2
    assert take(np.arange(5), [1, 2]).tolist() == [1, 2]


def test_task_validation_checks_lazy_shapes_and_labels_without_decoding():
    xs = {s: CountingArray(6) for s in ("train", "val", "test")}
    ys = np.array([0, 1, 0, 1, 0, 1])
    t = CrossModalTask("lazy", ["a", "b"], {s: Split(xs[s], ys) for s in xs}, {s: Split(xs[s], ys) for s in xs},
                       teacher_encoder={"kind": "mlp", "in_features": 6}, student_encoder={"kind": "mlp", "in_features": 6})
    t.fingerprint()
    sub = t.with_student_fraction(0.5, seed=0)
    assert is_lazy(sub.student["train"].x) and len(sub.student["train"]) == 4  # round(0.5 · 3) per class
    assert sum(x.loads for x in xs.values()) == 0
    with pytest.raises(ValueError, match=r"teacher\['train'\]\.y must be in 0\.\.1"):
        CrossModalTask("lazy", ["a", "b"], {s: Split(xs[s], ys + 1) for s in xs}, {s: Split(xs[s], ys) for s in xs},
                       teacher_encoder={"kind": "mlp", "in_features": 6}, student_encoder={"kind": "mlp", "in_features": 6})


def test_frames_are_resized_and_imagenet_normalised(tmp_path):
    d = tmp_path / "clip"
    d.mkdir()
    for t, v in enumerate((0, 255, 128)):
        Image.fromarray(np.full((8, 12, 3), v, np.uint8)).save(d / f"frame_{t + 1:05d}.png")
    x = FrameFolderArray([str(d)], frames=3, size=16)[0]
    assert x.shape == (3, 3, 16, 16)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(x[:, :, 5, 5], (np.array([0, 1, 128 / 255])[:, None] - mean) / std, rtol=1e-5)
    # five frames, two asked for: the centres of two equal segments (frames 2 and 4 of 5, 0-based 1 and 3)
    for t in range(3, 5):
        Image.fromarray(np.full((8, 12, 3), 50 * t, np.uint8)).save(d / f"frame_{t + 1:05d}.png")
    y = FrameFolderArray([str(d)], frames=2, size=4)[0]
    np.testing.assert_allclose(y[:, 0, 0, 0], (np.array([1, 150 / 255]) - mean[0]) / std[0], rtol=1e-5)


# ------------------------------------------------------------------ loader
def test_iterate_batches_keeps_order_with_workers(monkeypatch):
    lz = CountingArray(23)
    batches = [np.array([5, 1]), np.array([22, 0, 7]), np.arange(10, 20)]
    for workers in (0, 2):
        out = list(iterate_batches(lz, batches, "cpu", num_workers=workers))
        assert [o.shape[0] for o in out] == [2, 3, 10]
        for o, b in zip(out, batches):
            assert o.dtype == torch.float32 and o[:, 0, 0].tolist() == b.tolist()
    dense = np.arange(23 * 6, dtype=np.float64).reshape(23, 2, 3)
    got = list(iterate_batches(dense, batches, "cpu"))
    assert all(torch.equal(g, torch.as_tensor(dense[b], dtype=torch.float32)) for g, b in zip(got, batches))


def test_workers_persist_across_passes_and_nested_passes_stay_correct():
    import gc

    lz = CountingArray(30)
    b1 = [np.arange(i, i + 5) for i in range(0, 30, 5)]
    outer = iterate_batches(lz, b1, "cpu", num_workers=2)
    first = next(outer)
    inner = list(iterate_batches(lz, [np.array([29, 3])], "cpu", num_workers=2))  # outer pass still running
    rest = list(outer)
    assert [t[:, 0, 0].tolist() for t in [first, *rest]] == [b.tolist() for b in b1]
    assert inner[0][:, 0, 0].tolist() == [29, 3]
    (entry,) = lz._loaders.values()  # one cached loader; the nested pass used a one-off
    pids = [w.pid for w in entry["loader"]._iterator._workers]
    again = list(iterate_batches(lz, [np.array([7, 8])], "cpu", num_workers=2))
    assert again[0][:, 0, 0].tolist() == [7, 8]
    assert [w.pid for w in entry["loader"]._iterator._workers] == pids  # same processes
    abandoned = iterate_batches(lz, b1, "cpu", num_workers=2)
    next(abandoned)
    del abandoned  # a pass stopped half-way (Trainer.stop) ...
    after = list(iterate_batches(lz, b1[::-1], "cpu", num_workers=2))  # ... leaves nothing behind
    assert [t[:, 0, 0].tolist() for t in after] == [b.tolist() for b in b1[::-1]]
    assert [w.pid for w in entry["loader"]._iterator._workers] == pids
    assert not hasattr(pickle.loads(pickle.dumps(lz)), "_loaders")
    del entry, outer, lz
    gc.collect()


def test_worker_count_resolution(monkeypatch):
    monkeypatch.delenv("CMKD_LAB_WORKERS", raising=False)
    assert resolve_workers(None, "cpu") == 0 and resolve_workers(3, "cpu") == 3
    monkeypatch.setenv("CMKD_LAB_WORKERS", "2")
    assert resolve_workers(None, "cpu") == 2
    monkeypatch.setenv("CMKD_LAB_WORKERS", "many")
    with pytest.raises(ValueError, match="CMKD_LAB_WORKERS must be an integer"):
        resolve_workers(None, "cpu")
    monkeypatch.setenv("CMKD_LAB_WORKERS", "-1")
    with pytest.raises(ValueError, match=r"CMKD_LAB_WORKERS must be an integer >= 0; got CMKD_LAB_WORKERS='-1'"):
        resolve_workers(None, "cpu")
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0"):
        resolve_workers(-1, "cpu")


def _materialised(task):
    """The same task with every lazy array decoded into memory."""
    dense = {side: {s: Split(np.asarray(getattr(task, side)[s].x), getattr(task, side)[s].y)
                    for s in ("train", "val", "test")} for side in ("teacher", "student")}
    return CrossModalTask(task.name, task.class_names, dense["teacher"], dense["student"],
                          paired_teacher_x={s: np.asarray(v) for s, v in task.paired_teacher_x.items()},
                          teacher_encoder=task.teacher_encoder, student_encoder=task.student_encoder)


def test_lazy_and_in_memory_training_are_identical(roots, monkeypatch):
    lazy = load_task("crema-d", data_root=roots["crema-d"], **SMALL)
    dense = _materialised(lazy)
    cfg = _cfg(pairing="class-matched")
    t_l, info_l = train_teacher(lazy, cfg, torch.device("cpu"))
    t_d, info_d = train_teacher(dense, cfg, torch.device("cpu"))
    assert info_l == info_d
    for a, b in zip(t_l.state_dict().values(), t_d.state_dict().values()):
        assert torch.equal(a, b)
    torch.testing.assert_close(batched_features(t_l, lazy.teacher["val"].x, "cpu"),
                               batched_features(t_d, dense.teacher["val"].x, "cpu"))
    hist = []
    for task, workers in ((dense, "0"), (lazy, "0"), (lazy, "2")):
        monkeypatch.setenv("CMKD_LAB_WORKERS", workers)
        tr = Trainer(task, "ucmkd", cfg, teacher=(t_l, info_l))
        assert is_lazy(tr.x_train) == (task is lazy)
        hist.append([{k: v for k, v in r.items() if k != "time_s"} for r in tr.fit()["history"]])
    assert hist[0] == hist[1] == hist[2]


# ------------------------------------------------------------- short runs
@pytest.mark.parametrize("name", list(MAKERS))
def test_short_run_under_each_pairing(roots, name, tmp_path):
    from cmkd_lab.experiments import run_one

    task = load_task(name, data_root=roots[name], **SMALL)
    for pairing, method in (("unpaired", "ucmkd"), ("class-matched", "ucmkd"), ("paired", "kd")):
        r = run_one(task, method, _cfg(pairing=pairing), tmp_path / pairing, report=False)
        assert r["status"] == "completed" and r["pairing"] == pairing
        assert 0 <= r["student_test_acc"] <= 1 and 0 <= r["teacher_test_acc"] <= 1
        assert json.loads((tmp_path / pairing / "result.json").read_text())["task_info"]["direction"]


def test_command_line_run_and_bench_with_data_root(roots, tmp_path, capsys):
    from cmkd_lab.cli import main

    # warmup_epochs=0: the paper's 5 warm-up epochs do not fit a 1-epoch run (refused since issue 25)
    common = ["--data-root", str(roots["crema-d"].parent), "--preset", "paper", "--device", "cpu", "--epochs", "1",
              "--set", "warmup_epochs=0",
              "--teacher-epochs", "1", "--quiet", "--task-option", "width=4", "--task-option", "image_size=32"]
    assert main(["run", "--task", "crema-d", *common, "--task-option", "direction=A→V", "--method", "ucmkd",
                 "--out", str(tmp_path / "r")]) == 0
    r = json.loads((tmp_path / "r" / "result.json").read_text())
    assert r["task"] == "crema-d" and r["task_info"]["direction"] == "A→V" and r["status"] == "completed"
    assert r["config"]["feature_dim"] == 512 and r["config"]["optimizer"] == "sgd" and r["config"]["inner_lr"] == 1e-5
    assert main(["bench", "--task", "ravdess", *common, "--methods", "ce,kd", "--pairing", "paired",
                 "--out", str(tmp_path / "b")]) == 0
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert res["task_kwargs"]["data_root"] == str(roots["crema-d"].parent)
    assert sorted((x["pairing"], x["method"], x["status"]) for x in res["runs"]) == [
        ("paired", "ce", "completed"), ("paired", "kd", "completed")]
    capsys.readouterr()
    for argv, msg in (
        (["run", "--task", "synthetic", "--data-root", "/tmp", "--out", str(tmp_path / "s")],
         "--data-root is read by the tasks ave, crema-d, ravdess, vggsound; got --task synthetic"),
        (["run", "--task", "crema-d", "--data-root", str(tmp_path / "none"), "--out", str(tmp_path / "m")],
         "does not exist or is not a folder"),
        (["run", "--task", "crema-d", "--data-root", str(roots["crema-d"]), "--task-option", "colour=1",
          "--out", str(tmp_path / "o")], "unknown task option 'colour' for task 'crema-d'"),
    ):
        assert main(argv) == 2
        assert msg in capsys.readouterr().err


def test_paper_preset_on_av_tasks_uses_512_features():
    from cmkd_lab.cli import build_config, make_parser

    args = make_parser().parse_args(["bench", "--task", "crema-d", "--preset", "paper", "--out", "x"])
    cfg = build_config(args)
    assert cfg.feature_dim == 512 and cfg.optimizer == "sgd" and cfg.lr == 1e-2 and cfg.inner_lr == 1e-5
    hapt = build_config(make_parser().parse_args(["bench", "--task", "hapt", "--preset", "paper", "--out", "x"]))
    assert hapt.feature_dim == 64
    over = build_config(make_parser().parse_args(["run", "--task", "ave", "--set", "feature_dim=32", "--out", "x"]))
    assert over.feature_dim == 32
