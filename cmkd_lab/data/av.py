"""The paper's audio-visual tasks on your own copy of the data: AVE, CREMA-D, RAVDESS, VGGSound.

These datasets cannot ship with cmkd_lab. Each task reads a user-given root
(``data_root=`` / ``--data-root DIR`` / ``$CMKD_LAB_DATA``) in the
preprocessed layout the public audio-visual learning code (OGM-GE, PMR and
their descendants) uses: video frames as JPEG folders per clip, audio as a
precomputed spectrogram array per clip, and split lists::

    <root>/
      visual/<clip>/frame_00001.jpg ...   (or visual/Image-01-FPS/<clip>/...)
      audio/<clip>.npy                    (or audio/<clip>.pkl, or audio_spec/<clip>.pkl)
      <split lists>                       (per dataset, below)

========  =======  ==========================================================
task      classes  split lists (rows, no header needed)
========  =======  ==========================================================
ave       28       ``my_train.txt`` / ``my_test.txt`` [``my_val.txt``]: ``class,clip,...``
                   (OGM-GE), or AVE's own ``trainSet.txt`` / ``valSet.txt`` /
                   ``testSet.txt`` (``Category&VideoID&...``); class list from
                   ``stat.txt`` (one per line) when present, sorted
crema-d   6        ``train.csv`` / ``test.csv`` [``val.csv``]: ``clip,NEU|HAP|SAD|FEA|DIS|ANG``
ravdess   8        ``train.csv`` / ``test.csv`` [``val.csv``]: ``clip,label`` (label:
                   name or RAVDESS code 01-08; when absent, read from the clip's
                   file name ``MM-VV-EE-II-SS-RR-AA``)
vggsound  from     ``vggsound.csv``: ``youtube_id,start_seconds,label,split`` (clip
          data     ``<youtube_id>_<start_seconds>``), or ``train.csv`` / ``test.csv``
========  =======  ==========================================================

``<root>`` may also be a parent folder holding the dataset under its usual
name (``AVE``, ``CREMA-D``, ``RAVDESS``, ``VGGSound`` ...), which lets one
``$CMKD_LAB_DATA`` serve all four.

Protocol
--------
* ``direction``: ``"A→V"`` (audio teacher, visual student) or ``"V→A"``; the
  defaults follow the paper's Table 1 examples (CREMA-D and AVE V→A,
  RAVDESS A→V; VGGSound A→V).
* ``teacher_student_split``: ``"shared"`` (the paper: teacher and student
  train on the same clips, their pairing broken by the ``unpaired`` sampler)
  or ``"disjoint"`` (the stricter protocol: the training clips are divided,
  stratified and seeded, between teacher and student, so no student clip was
  ever seen by the teacher in any modality).
* All three pairing modes work: ``unpaired``, ``class-matched`` (the public
  code's resampling) and ``paired`` (``paired_teacher_x`` is the teacher
  modality of the student's own clips).
* Validation is separate from test: a dataset's own validation list is used
  when present, else a stratified, seeded share (``val_fraction``) of the
  training clips. Test is never used for model selection.

Samples are :class:`~cmkd_lab.data.lazy.LazyArray` s: frames → (T, 3, S, S)
(ImageNet-normalised), spectrograms → (1, F, L); nothing is decoded until a
batch is asked for. Encoders: ResNet-18 for both modalities
(:class:`~cmkd_lab.models.resnet.ResNet18Encoder`, D = 512).
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._validation import check_choice, check_int
from .lazy import OUTSIDE_HINT, FrameFolderArray, SpectrogramArray, load_spectrogram, outside
from .registry import register_task
from .task import SPLITS, CrossModalTask, Split
from .._seeds import AV_SPLITS, numpy_rng

__all__ = ["AV_TASKS", "DataLayoutError", "load_av", "AV_LAYOUTS"]

AV_TASKS = ("ave", "crema-d", "ravdess", "vggsound")
ENV_VAR = "CMKD_LAB_DATA"


class DataLayoutError(ValueError):
    """A data root that is missing, incomplete or malformed (the message says what was expected where)."""


Row = Tuple[str, str, str]  # (clip id, raw label, "file:line" for messages)


# ------------------------------------------------------------------ readers
def _rows(path: Path, *, delimiter: str = ",") -> List[Tuple[List[str], str]]:
    """Non-empty CSV rows of ``path`` with their "file:line" location."""
    out = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for n, row in enumerate(csv.reader(f, delimiter=delimiter), start=1):
                row = [c.strip() for c in row]
                if any(row):
                    out.append((row, f"{path}:{n}"))
    except UnicodeDecodeError as e:
        raise DataLayoutError(f"the split list {path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as "
                              "UTF-8 CSV") from None
    except csv.Error as e:
        raise DataLayoutError(f"the split list {path} cannot be read as CSV ({e}); save it as plain UTF-8 CSV") from None
    return out


def _no_nul(clip: str, where: str) -> None:
    if "\x00" in clip:  # no path can hold one (os functions raise a bare "embedded null byte")
        raise DataLayoutError(f"{where}: clip {clip!r} contains a NUL byte; the list is damaged or not a text file")


_HEADER_WORDS = {"label", "labels", "class", "category", "emotion", "clip", "id", "name", "video", "videoid",
                 "youtube_id", "ytid", "file", "filename"}


def _is_header(cells: Sequence[str]) -> bool:
    return any(c.lower().replace(" ", "") in _HEADER_WORDS for c in cells)


def _clip_label_file(path: Path, *, label_optional: bool = False) -> List[Row]:
    """``clip,label`` rows (a header row is skipped)."""
    rows = _rows(path)
    if rows and _is_header(rows[0][0]):
        rows = rows[1:]
    out = []
    for cells, where in rows:
        _no_nul(cells[0], where)
        if len(cells) < 2 and not label_optional:
            raise DataLayoutError(f"{where}: expected a row 'clip_id,label'; got {','.join(cells)!r}")
        out.append((cells[0], cells[1] if len(cells) > 1 else "", where))
    return out


def _split_files(root: Path, names: Dict[str, str]) -> Dict[str, Path]:
    """Which of the split files ``names`` (split -> file name) exist; train and test are required."""
    found = {s: root / n for s, n in names.items() if (root / n).is_file()}
    missing = [names[s] for s in ("train", "test") if s not in found]
    if missing:
        raise DataLayoutError(f"expected the split list(s) {', '.join(str(root / m) for m in missing)}; not found")
    return found


def _generic_lists(root: Path, *, label_optional: bool = False) -> Dict[str, List[Row]]:
    files = _split_files(root, {"train": "train.csv", "val": "val.csv", "test": "test.csv"})
    return {s: _clip_label_file(p, label_optional=label_optional) for s, p in files.items()}


def _ave_lists(root: Path) -> Dict[str, List[Row]]:
    if (root / "my_train.txt").is_file() or not (root / "trainSet.txt").is_file():
        if not (root / "my_train.txt").is_file() and (root / "train.csv").is_file():
            return _generic_lists(root)
        files = _split_files(root, {"train": "my_train.txt", "val": "my_val.txt", "test": "my_test.txt"})
        delim = ","
    else:
        files = _split_files(root, {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"})
        delim = "&"
    out = {}
    for s, p in files.items():
        rows = _rows(p, delimiter=delim)
        if rows and _is_header(rows[0][0]):
            rows = rows[1:]
        bad = [(c, w) for c, w in rows if len(c) < 2]
        if bad:
            raise DataLayoutError(f"{bad[0][1]}: expected a row 'class{delim}clip_id{delim}...'; got {delim.join(bad[0][0])!r}")
        for c, w in rows:
            _no_nul(c[1], w)
        out[s] = [(c[1], c[0], w) for c, w in rows]  # AVE lists put the class first
    return out


def _vggsound_lists(root: Path) -> Dict[str, List[Row]]:
    path = root / "vggsound.csv"
    if not path.is_file():
        if (root / "train.csv").is_file():
            return _generic_lists(root)
        raise DataLayoutError(f"expected the split list {path} (rows youtube_id,start_seconds,label,split) or "
                              f"{root / 'train.csv'} and {root / 'test.csv'} (rows clip_id,label); not found")
    out: Dict[str, List[Row]] = {"train": [], "test": []}
    for cells, where in _rows(path):
        if _is_header(cells):
            continue
        if len(cells) < 4:
            raise DataLayoutError(f"{where}: expected a row 'youtube_id,start_seconds,label,split'; got {','.join(cells)!r}")
        split = cells[3].lower()
        split = {"validation": "val", "valid": "val"}.get(split, split)
        if split not in SPLITS:
            raise DataLayoutError(f"{where}: the split column must be train, val or test; got {cells[3]!r}")
        _no_nul(f"{cells[0]}_{cells[1]}", where)
        out.setdefault(split, []).append((f"{cells[0]}_{cells[1]}", cells[2], where))
    return out


# ------------------------------------------------------------- label maps
CREMA_D = [("neutral", "NEU"), ("happy", "HAP"), ("sad", "SAD"), ("fear", "FEA"), ("disgust", "DIS"),
           ("anger", "ANG")]  # class order of the public code (NEU 0 ... ANG 5)
RAVDESS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]  # codes 01..08
_RAVDESS_NAME = re.compile(r"^\d{2}-\d{2}-(\d{2})-\d{2}-\d{2}-\d{2}-\d{2}$")


def _crema_aliases():
    al = {}
    for k, (name, code) in enumerate(CREMA_D):
        al[name] = al[code.lower()] = k
    al.update({"happiness": 1, "sadness": 2, "fearful": 3, "disgusted": 4, "angry": 5})
    return al


def _ravdess_aliases():
    al = {}
    for k, name in enumerate(RAVDESS):
        al[name] = al[str(k + 1)] = al[f"{k + 1:02d}"] = k
    al.update({"fear": 5, "surprise": 7, "anger": 4, "happiness": 2, "sadness": 3, "disgusted": 6})
    return al


def _ravdess_label_from_clip(clip: str) -> str:
    m = _RAVDESS_NAME.match(Path(clip).stem)
    return m.group(1) if m else ""


# ------------------------------------------------------------------ specs
@dataclass(frozen=True)
class AVLayout:
    """What one dataset's root looks like and how to read its labels."""

    name: str
    title: str
    folder_names: Tuple[str, ...]
    read_lists: Callable[[Path], Dict[str, List[Row]]]
    split_list_names: Tuple[str, ...]
    class_names: Optional[Tuple[str, ...]] = None  # fixed order, or None = read from the data
    aliases: Optional[Callable[[], Dict[str, int]]] = None
    expected_classes: Optional[int] = None
    default_direction: str = "a2v"
    default_frames: int = 1
    label_from_clip: Optional[Callable[[str], str]] = None
    notes: str = ""


AV_LAYOUTS: Dict[str, AVLayout] = {
    "ave": AVLayout("ave", "AVE", ("AVE", "AVE_Dataset", "AVE_av", "ave"), _ave_lists,
                    ("my_train.txt", "trainSet.txt", "train.csv"), expected_classes=28,
                    default_direction="v2a", default_frames=3,
                    notes="AVE (Tian et al., ECCV 2018): 4,143 10-s YouTube clips, 28 event classes"),
    "crema-d": AVLayout("crema-d", "CREMA-D", ("CREMA-D", "CREMAD", "crema-d", "cremad", "CREMA"),
                        _generic_lists, ("train.csv",), tuple(n for n, _ in CREMA_D), _crema_aliases,
                        6, default_direction="v2a", default_frames=1,
                        notes="CREMA-D (Cao et al., 2014): 7,442 clips of 91 actors, 6 emotions"),
    "ravdess": AVLayout("ravdess", "RAVDESS", ("RAVDESS", "ravdess"),
                        lambda r: _generic_lists(r, label_optional=True), ("train.csv",), tuple(RAVDESS),
                        _ravdess_aliases, 8, default_direction="a2v", default_frames=1,
                        label_from_clip=_ravdess_label_from_clip,
                        notes="RAVDESS (Livingstone & Russo, 2018): 24 actors, 8 emotions (split by actor)"),
    "vggsound": AVLayout("vggsound", "VGGSound", ("VGGSound", "VGGsound", "vggsound", "VGG-Sound"),
                         _vggsound_lists, ("vggsound.csv", "train.csv"), default_direction="a2v",
                         default_frames=3,
                         notes="VGGSound (Chen et al., ICASSP 2020): 10-s YouTube clips, 309 classes in the "
                               "commonly used release (the class list is read from the data)"),
}

_DIRECTIONS = {"a→v": "a2v", "a->v": "a2v", "a2v": "a2v", "av": "a2v", "audio->visual": "a2v",
               "v→a": "v2a", "v->a": "v2a", "v2a": "v2a", "va": "v2a", "visual->audio": "v2a"}
_PRETTY = {"a2v": "A→V", "v2a": "V→A"}


# ------------------------------------------------------------- the root
def _looks_like(layout: AVLayout, root: Path) -> bool:
    return (root / "visual").is_dir() or any((root / n).is_file() for n in layout.split_list_names)


def _layout_hint(layout: AVLayout, root) -> str:
    return (f"expected {root}/visual/<clip>/frame_00001.jpg, {root}/audio/<clip>.npy (or .pkl) and the split "
            f"lists ({' or '.join(layout.split_list_names)} ...); see the README section 'Reproducing the paper "
            "on your own copy of the data'")


def resolve_root(layout: AVLayout, data_root=None) -> Path:
    """The dataset folder from ``data_root`` / ``$CMKD_LAB_DATA`` (itself or a named subfolder)."""
    raw = data_root if data_root not in (None, "") else os.environ.get(ENV_VAR)
    if raw in (None, ""):
        raise DataLayoutError(
            f"task {layout.name!r} reads your own copy of {layout.title}: pass data_root=DIR "
            f"(command line: --data-root DIR) or set {ENV_VAR}=DIR; {_layout_hint(layout, 'DIR')}")
    root = Path(os.fspath(raw)).expanduser()
    if not root.is_dir():
        raise DataLayoutError(f"data_root {str(root)!r} (from --data-root or ${ENV_VAR}) for task {layout.name!r} "
                              "does not exist or is not a folder; "
                              f"{_layout_hint(layout, root)}")
    if _looks_like(layout, root):
        return root
    for name in layout.folder_names:
        if (root / name).is_dir() and _looks_like(layout, root / name):
            return root / name
    raise DataLayoutError(
        f"{str(root)!r} is not a {layout.title} root: it holds neither visual/ nor a split list, and no subfolder "
        f"named {', '.join(layout.folder_names)}; {_layout_hint(layout, root)}")


def _find_dir(root: Path, given, candidates: Sequence[str], what: str) -> Path:
    if given is not None:
        p = Path(given) if Path(given).is_absolute() else root / given
        if not p.is_dir():
            raise DataLayoutError(f"the {what} folder {p} does not exist")
        return p
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    raise DataLayoutError(f"expected the {what} folder {root / candidates[0]}/ (or {', '.join(str(root / c) for c in candidates[1:])}); "
                          f"not found in {root}")


def _visual_dir(root: Path, given) -> Path:
    vdir = _find_dir(root, given, ("visual", "frames"), "video-frame")
    fps = sorted(p for p in vdir.glob("Image-*-FPS") if p.is_dir())  # OGM-GE's visual/Image-01-FPS/<clip>
    if given is None and len(fps) == 1:
        return fps[0]
    if given is None and len(fps) > 1:
        raise DataLayoutError(f"{vdir} holds several frame-rate folders ({', '.join(p.name for p in fps)}); "
                              "choose one with visual_dir='visual/Image-01-FPS'")
    return vdir


def _audio_path(adir: Path, clip: str) -> Optional[Path]:
    for ext in (".npy", ".pkl"):
        p = adir / f"{clip}{ext}"
        if p.is_file():
            return p
    return None


# ------------------------------------------------------------------ loader
def _labels(layout: AVLayout, lists: Dict[str, List[Row]], class_list: Optional[List[str]]):
    """Class names and, per split, (clip, class index) pairs."""
    if layout.label_from_clip is not None:
        lists = {s: [(c, lab or layout.label_from_clip(c), w) for c, lab, w in rows] for s, rows in lists.items()}
    if layout.class_names is not None:
        names = list(layout.class_names)
        alias = layout.aliases()
    else:
        names = class_list or sorted({lab for rows in lists.values() for _, lab, _ in rows})
        alias = {n.lower(): k for k, n in enumerate(names)}
    out = {}
    for s, rows in lists.items():
        pairs = []
        for clip, lab, where in rows:
            k = alias.get(lab.lower())
            if k is None:
                shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
                raise DataLayoutError(f"{where}: unknown label {lab!r} for clip {clip!r}; known classes: {shown}")
            pairs.append((clip, k))
        out[s] = pairs
    return names, out


def _dedupe(pairs, split):
    seen, out, dup = set(), [], 0
    for clip, k in pairs:
        if clip in seen:
            dup += 1
            continue
        seen.add(clip)
        out.append((clip, k))
    if dup:
        warnings.warn(f"the {split} list names {dup} clip(s) more than once; the first entry of each is kept",
                      RuntimeWarning, stacklevel=4)
    return out


def _stratified_part(y: np.ndarray, fraction: float, rng) -> np.ndarray:
    """A stratified share of positions (at least one per class with >= 2 members)."""
    take = []
    for k in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == k))
        n = int(round(fraction * idx.size))
        n = min(max(n, 1 if idx.size >= 2 else 0), idx.size - 1)
        take.append(idx[:n])
    return np.sort(np.concatenate(take)) if take else np.zeros(0, np.int64)


def load_av(dataset: str, *, seed: int = 0, fast: bool = False, data_root=None, direction: Optional[str] = None,
            teacher_student_split: str = "shared", frames: Optional[int] = None, image_size: int = 224,
            audio_length: Optional[int] = None, width: int = 64, backend: str = "auto", val_fraction: float = 0.1,
            missing: str = "skip", visual_dir=None, audio_dir=None,
            allow_outside_root: bool = False) -> CrossModalTask:
    """Build the ``dataset`` task from your own preprocessed copy (see the module doc for the layout).

    Parameters
    ----------
    dataset : {"ave", "crema-d", "ravdess", "vggsound"}
    seed : int
        Seeds the carved validation split, the disjoint teacher/student
        division and the ``fast`` subset.
    fast : bool
        At most 8 training and 4 validation / test clips per class (quick checks).
    data_root : path, optional
        The dataset folder, or a parent holding it under its usual name;
        default ``$CMKD_LAB_DATA``.
    direction : {"A→V", "V→A"} (also "a2v", "v2a", "A->V" ...), optional
        Teacher → student modalities; default per dataset (module doc).
    teacher_student_split : {"shared", "disjoint"}
        Same training clips for both (the paper) or a stratified half each.
    frames : int, optional
        Frames per clip T (default: AVE and VGGSound 3, CREMA-D and RAVDESS 1).
    image_size : int
        Frames are resized to ``image_size`` × ``image_size`` (224 in the paper).
    audio_length : int, optional
        Spectrogram time frames L; clips are tiled / cropped to it (default:
        the first training clip's length).
    width : int
        ResNet-18 first-stage channels (64 = the paper's network; 4 for tests).
    backend : {"auto", "torchvision", "builtin"}
        ResNet-18 implementation (see :mod:`cmkd_lab.models.resnet`).
    val_fraction : float
        Share of training clips carved (stratified, seeded) into validation when
        the dataset has no validation list.
    missing : {"skip", "error"}
        Clips listed but lacking frames or audio are skipped with a warning
        (as the public code does) or refused.
    visual_dir, audio_dir : path, optional
        Override the frame / spectrogram folders (relative to the root or absolute).
    allow_outside_root : bool
        False (default): every file a split list leads to (clip frame folder,
        each frame, spectrogram) must resolve inside the data root or the
        frame / spectrogram folder in use — paths are resolved first, so
        ``../..``, absolute clip names and symlinks that point outside count
        as outside — and a list that names one is refused (file, line, clip
        and root in the message; even with ``missing="skip"``: a list that
        reaches outside is not a missing clip). True reads them anyway, for a
        layout you trust whose clips live elsewhere (``info["clips_outside_root"]``
        counts them).

    Returns
    -------
    CrossModalTask
        Lazy inputs: frames (N, T, 3, S, S), spectrograms (N, 1, F, L).
    """
    layout = AV_LAYOUTS[check_choice("dataset", dataset, AV_TASKS)]
    frames, d, allow_outside_root = _check_av_options(layout, seed, image_size, width, frames, audio_length,
                                                      teacher_student_split, missing, allow_outside_root,
                                                      val_fraction, data_root, visual_dir, audio_dir, direction)
    root = resolve_root(layout, data_root)
    vdir = _visual_dir(root, visual_dir)
    adir = _find_dir(root, audio_dir, ("audio", "audio_spec", "spectrogram"), "spectrogram")
    names, lists, origin = _read_lists(layout, root)
    clips, n_lost, n_outside = _clip_files(layout, root, vdir, adir, lists, origin, allow_outside_root, missing)
    rng = numpy_rng(seed, AV_SPLITS)  # one stream, drawn in this order: validation, fast subset, halves
    val_source = _carve_validation(clips, val_fraction, rng, seed)
    if fast:
        _fast_subset(clips, rng)
    t_pos, s_pos = _teacher_student_positions(clips["train"][2], teacher_student_split, rng)
    first = load_spectrogram(clips["train"][1][0])  # (F, time): the spectrogram shape of every clip
    F_bins, L = first.shape[0], audio_length or first.shape[1]
    teacher, student, paired = _sides(clips, t_pos, s_pos, d, frames, image_size, F_bins, L,
                                      None if allow_outside_root else [str(root), str(vdir)])
    vis_spec = {"kind": "resnet18", "in_channels": 3, "frames": frames, "width": width, "backend": backend}
    aud_spec = {"kind": "resnet18", "in_channels": 1, "width": width, "backend": backend}
    t_spec, s_spec = (aud_spec, vis_spec) if d == "a2v" else (vis_spec, aud_spec)
    info = {
        "source": layout.notes, "data_root": str(root), "direction": _PRETTY[d],
        "teacher_student_split": teacher_student_split, "validation": val_source,
        "frames": frames, "image_size": image_size, "spectrogram_shape": [F_bins, L],
        "clips": {s: int(clips[s][2].size) for s in SPLITS}, "clips_skipped": n_lost,
        "clips_outside_root": n_outside,
        "protocol": ("teacher and student train on the same clips; the pairing modes decide what ties them"
                     if teacher_student_split == "shared" else
                     "teacher and student train on disjoint halves of the training clips (stratified, seeded)"),
    }
    return CrossModalTask(
        name=layout.name, class_names=names, teacher=teacher, student=student, paired_teacher_x=paired,
        teacher_modality="audio" if d == "a2v" else "visual", student_modality="visual" if d == "a2v" else "audio",
        teacher_encoder=t_spec, student_encoder=s_spec, info=info)


# ------------------------------------------------------------- the steps of load_av
def _check_av_options(layout, seed, image_size, width, frames, audio_length, teacher_student_split, missing,
                      allow_outside_root, val_fraction, data_root, visual_dir, audio_dir, direction):
    """Every option checked, named in its error; returns (frames, direction code, allow_outside_root)."""
    from .._validation import check_bool, check_number, check_path
    check_int("seed", seed)
    check_int("image_size", image_size, minimum=8)
    check_int("width", width, minimum=1)
    frames = layout.default_frames if frames is None else check_int("frames", frames, minimum=1)
    if audio_length is not None:
        check_int("audio_length", audio_length, minimum=1)
    check_choice("teacher_student_split", teacher_student_split, ("shared", "disjoint"))
    check_choice("missing", missing, ("skip", "error"))
    allow_outside_root = check_bool("allow_outside_root", allow_outside_root)
    check_number("val_fraction", val_fraction)
    for n, v in (("data_root", data_root), ("visual_dir", visual_dir), ("audio_dir", audio_dir)):
        check_path(n, v)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1); got val_fraction={val_fraction!r}")
    d = layout.default_direction if direction is None else _DIRECTIONS.get(str(direction).strip().lower())
    if d is None:
        raise ValueError(f"direction must be 'A→V' (audio teacher, visual student) or 'V→A' (also 'a2v', 'v2a', "
                         f"'A->V', 'V->A'); got direction={direction!r}")
    return frames, d, allow_outside_root


def _read_lists(layout, root):
    """(class names, split -> [(clip, label)], clip -> where it is first listed): the split lists read,
    de-duplicated, and refused when a clip appears in two splits."""
    class_list = None
    if (root / "stat.txt").is_file():  # OGM-GE's class list (sorted there too)
        class_list = sorted({ln.strip() for ln in (root / "stat.txt").read_text().splitlines() if ln.strip()})
    raw = layout.read_lists(root)
    origin = {clip: where for rows in raw.values() for clip, _, where in reversed(rows)}  # first listing of each
    names, lists = _labels(layout, raw, class_list)
    K = len(names)
    if layout.expected_classes and K != layout.expected_classes:
        warnings.warn(f"{layout.title} has {layout.expected_classes} classes; this copy has {K}", RuntimeWarning,
                      stacklevel=3)
    lists = {s: _dedupe(p, s) for s, p in lists.items()}
    seen: Dict[str, str] = {}
    for s, pairs in lists.items():  # a clip in two splits would leak test into training
        for clip, _ in pairs:
            if seen.setdefault(clip, s) != s:
                raise DataLayoutError(f"clip {clip!r} is listed in both the {seen[clip]} and the {s} split; "
                                      "each clip may belong to one split only")
    return names, lists, origin


def _clip_files(layout, root, vdir, adir, lists, origin, allow_outside_root, missing):
    """split -> (frame folders, spectrogram files, labels) of the clips that have both, with the count of
    those skipped and of those outside the root. Every path a list leads to must resolve inside the root
    (or the frame / audio folder in use) unless ``allow_outside_root``; missing files are skipped with a
    warning or refused (``missing``)."""
    v_inside, a_inside = [str(root), str(vdir)], [str(root), str(adir)]
    clips: Dict[str, Tuple[List[str], List[str], np.ndarray]] = {}
    lost: List[str] = []
    n_outside = 0
    for s, pairs in lists.items():
        folders, audio, ys = [], [], []
        for clip, k in pairs:
            folder, apath = vdir / clip, _audio_path(adir, clip)
            found = [(folder, v_inside), (apath if apath is not None else adir / f"{clip}.npy", a_inside)]
            reals = [r for r in (outside(p, inside) for p, inside in found) if r is not None]
            if reals:
                if not allow_outside_root:
                    raise DataLayoutError(
                        f"{origin[clip]}: clip {clip!r} resolves to {reals[0]}, outside the data root {root} "
                        f"(symlinks that point outside count as outside): {OUTSIDE_HINT}")
                n_outside += 1
            if not folder.is_dir() or apath is None:
                why = ([f"no folder {folder}/"] if not folder.is_dir() else []) + \
                      ([f"no {adir / clip}.npy or .pkl"] if apath is None else [])
                lost.append(f"{clip} ({' and '.join(why)})")
                continue
            folders.append(str(folder))
            audio.append(str(apath))
            ys.append(k)
        clips[s] = (folders, audio, np.asarray(ys, dtype=np.int64))
    if lost:
        msg = (f"{len(lost)} listed clip(s) lack frames or audio, e.g. {'; '.join(lost[:3])}; "
               f"{_layout_hint(layout, root)}")
        if missing == "error":
            raise DataLayoutError(msg)
        warnings.warn(msg + "; they are skipped (missing='error' refuses instead)", RuntimeWarning, stacklevel=3)
    for s in ("train", "test"):
        if clips[s][2].size == 0:
            raise DataLayoutError(f"no clip of the {s} split has both its frames and its audio; "
                                  f"{_layout_hint(layout, root)}")
    return clips, len(lost), n_outside


def _part(clips, s, pos):
    f, a, y = clips[s]
    return [f[i] for i in pos], [a[i] for i in pos], y[pos]


def _carve_validation(clips, val_fraction, rng, seed) -> str:
    """A stratified, seeded validation split carved from train when the dataset has none; says which."""
    if "val" in clips and clips["val"][2].size > 0:
        return "the dataset's validation list"
    y = clips["train"][2]
    val = _stratified_part(y, val_fraction, rng)
    rest = np.setdiff1d(np.arange(y.size), val)
    clips["val"], clips["train"] = _part(clips, "train", val), _part(clips, "train", rest)
    return f"carved from train (stratified {val_fraction:.0%}, seed {seed})"


def _fast_subset(clips, rng) -> None:
    """At most 8 training and 4 validation / test clips per class, in place."""
    for s, cap in (("train", 8), ("val", 4), ("test", 4)):
        y = clips[s][2]
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == k))[:cap] for k in np.unique(y)]))
        clips[s] = _part(clips, s, keep)


def _teacher_student_positions(y_tr, teacher_student_split, rng):
    """Positions of the teacher's and the student's training clips: all of them for both (``shared``) or
    a stratified half each (``disjoint``)."""
    if teacher_student_split == "disjoint":
        t_pos = _stratified_part(y_tr, 0.5, rng)
        s_pos = np.setdiff1d(np.arange(y_tr.size), t_pos)
    else:
        t_pos = s_pos = np.arange(y_tr.size)
    if t_pos.size < 2 or s_pos.size < 2:
        raise DataLayoutError(f"too few training clips ({y_tr.size}) for teacher_student_split={teacher_student_split!r}")
    return t_pos, s_pos


def _sides(clips, t_pos, s_pos, d, frames, image_size, F_bins, L, v_inside):
    """(teacher, student, paired teacher view) splits of lazy arrays; one sample of each training side is
    decoded now, so that layout errors surface at load time."""
    def visual(f):
        return FrameFolderArray(f, frames=frames, size=image_size, inside=v_inside)

    def audio(a):
        return SpectrogramArray(a, freq=F_bins, length=L)

    teacher, student, paired = {}, {}, {}
    for s in SPLITS:
        f, a, y = clips[s]
        if s == "train":
            tf, ta, ty = _part(clips, "train", t_pos)
            sf, sa, sy = _part(clips, "train", s_pos)
        else:
            tf, ta, ty = sf, sa, sy = f, a, y
        teacher[s] = Split(visual(tf) if d == "v2a" else audio(ta), ty)
        student[s] = Split(visual(sf) if d == "a2v" else audio(sa), sy)
        paired[s] = audio(sa) if d == "a2v" else visual(sf)  # teacher modality of the student's clips
    for side in (teacher["train"].x, student["train"].x):
        side[0]
    return teacher, student, paired


def _register(name: str):
    @register_task(name)
    def _load(*, seed: int = 0, fast: bool = False, data_root=None, **kw) -> CrossModalTask:
        import inspect

        known = [p for p in inspect.signature(load_av).parameters if p not in ("dataset", "seed", "fast", "data_root")]
        for k in kw:
            if k not in known:
                raise ValueError(f"unknown task option {k!r} for task {name!r}; known: {', '.join(known)}")
        return load_av(name, seed=seed, fast=fast, data_root=data_root, **kw)

    _load.__name__ = f"load_{name.replace('-', '_')}"
    _load.__doc__ = f"{AV_LAYOUTS[name].notes}. See :func:`cmkd_lab.data.av.load_av` for the options."
    return _load


for _name in AV_TASKS:
    _register(_name)
