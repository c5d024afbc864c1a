"""Built-in task ``digits-speech``: handwritten digit images teach spoken digits.

* **Teacher modality** — scikit-learn's bundled ``load_digits``: 1,797 8×8
  grey images of handwritten digits (UCI Optical Recognition of Handwritten
  Digits, CC BY 4.0; a copy ships in the same npz so that loading needs no
  scikit-learn), scaled to [0, 1] then standardised with the teacher train
  split's mean and standard deviation. Split 70/15/15, stratified, by ``seed``.
* **Student modality** — the words "zero" … "nine" synthesized with eSpeak NG
  over 72 voices (an English accent plus a voice variant), random pitch and
  speed, a random position in a 0.965 s window and white noise at -5 to 10 dB
  SNR, as log-mel spectrograms (1, 32, 48) (25 ms window, 20 ms hop, 16 kHz),
  standardised per mel band with the student train split's statistics, then each
  clip's own mean level subtracted (``clip_level``: the level follows the noise,
  not the word; removing it raised validation accuracy). Split
  **by voice**: 48 train, 12 val, 12 test voices, fixed at build time, so test
  voices are never heard in training. The features ship in
  ``builtin/digits_speech.npz`` (built by ``scripts/build_digits_speech.py``;
  only eSpeak NG's *output* is shipped, the GPL-3 synthesizer is not).

There is no natural pair between a drawing and an utterance. For the
``paired`` mode the task **constructs** pairs: each student clip gets a fixed
(seeded) teacher image of the same digit from the teacher split of the same
name. Such pairs carry class identity only, not a co-recorded instance.

**The student's network** pools its last feature map by the maximum over time and
frequency (``pool="max"``): the word fills about a quarter of the window at a
random offset, and an average dilutes it (with average pooling the student learns
slowly and its BatchNorm statistics lag the moving weights, so its last epoch
scored 20 points below its best one). ``pool="avg"`` and ``clip_level=False`` give
the earlier choices back.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from .._validation import check_int
from .registry import register_task
from .task import SPLITS, CrossModalTask, Split, stratified_split
from .._seeds import DIGITS_SPEECH_TASK, numpy_rng

__all__ = ["load_digits_speech", "DIGITS_SPEECH_PATH"]

BUILTIN = Path(__file__).resolve().parent / "builtin"
DIGITS_SPEECH_PATH = BUILTIN / "digits_speech.npz"
CHECKSUMS_PATH = BUILTIN / "CHECKSUMS.json"
_CHECKSUM_KEY = "digits_speech"
_REBUILD = "rebuild it with `python scripts/build_digits_speech.py` (needs `pip install espeakng-loader`)"
CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
FAST_FRACTION = 1.0 / 3.0


def _expected_sha256() -> str:
    try:
        return json.loads(CHECKSUMS_PATH.read_text())[_CHECKSUM_KEY]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(
            f"no SHA-256 recorded for {_CHECKSUM_KEY!r} in {CHECKSUMS_PATH} ({e!r}); {_REBUILD}"
        ) from e


def read_speech_arrays(path=None) -> dict:
    """Read the shipped arrays after checking the file's SHA-256.

    Parameters
    ----------
    path : str or Path, optional
        The npz to read; the packaged ``builtin/digits_speech.npz`` by default.
        It must match the hash recorded in ``builtin/CHECKSUMS.json``.

    Returns
    -------
    dict of arrays
        ``x`` float16 (N, 1, 32, 48); ``y``, ``voice``, ``pitch``, ``rate``,
        ``offset`` int (N,); ``snr_db`` float (N,); ``voice_names`` str (V,);
        ``voice_split`` int (V,) with 0/1/2 = train/val/test; the teacher
        images ``digit_images`` uint8 (M, 8, 8) in 0..16 and ``digit_labels``
        int (M,) (a copy of scikit-learn's ``load_digits``).

    Raises
    ------
    ValueError
        When the file's SHA-256 differs from the recorded one, naming the file,
        both hashes and the rebuild command.
    """
    path = Path(DIGITS_SPEECH_PATH if path is None else path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"spoken-digit features not found at {path}; {_REBUILD}") from e
    expected, actual = _expected_sha256(), hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{path} is corrupt or out of date: SHA-256 expected {expected}, got {actual}; {_REBUILD}"
        )
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _thin(y: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Sorted indices keeping ``fraction`` of each class (at least one)."""
    keep = [rng.choice(idx, size=max(1, int(round(fraction * idx.size))), replace=False)
            for idx in (np.flatnonzero(y == k) for k in np.unique(y))]
    return np.sort(np.concatenate(keep))


def _student_clips(z, clip_level: bool):
    """Student: log-mel clips (N, 1, n_mels, n_frames), split by voice, standardised per band with the
    training voices' statistics (then each clip's own level removed, with ``clip_level``)."""
    sx = z["x"].astype(np.float32)                                     # (N, 1, n_mels, n_frames)
    clip_split = z["voice_split"][z["voice"]]                          # (N,)
    s_idx = {s: np.flatnonzero(clip_split == i) for i, s in enumerate(SPLITS)}
    band_mu = sx[s_idx["train"]].mean(axis=(0, 1, 3), keepdims=True)   # (1, 1, n_mels, 1)
    band_sd = sx[s_idx["train"]].std(axis=(0, 1, 3), keepdims=True)
    sx = (sx - band_mu) / band_sd
    if clip_level:
        sx = sx - sx.mean(axis=(1, 2, 3), keepdims=True)                  # each clip's own level removed
    return sx, s_idx


def _constructed_pairs(teacher, student, rng) -> dict:
    """For each student clip, a fixed (seeded) image of the same digit from the same-named teacher split."""
    paired = {}
    for s in SPLITS:
        by_class = {k: np.flatnonzero(teacher[s].y == k) for k in range(len(CLASS_NAMES))}
        pick = np.array([rng.choice(by_class[k]) for k in student[s].y])
        paired[s] = teacher[s].x[pick]                                  # (N_s, 1, 8, 8)
    return paired


@register_task("digits-speech")
def load_digits_speech(*, seed: int = 0, fast: bool = False, path=None, pool: str = "max", clip_level: bool = True,
                       **kw) -> CrossModalTask:
    """Digit images (teacher) and spoken digits (student), 10 classes.

    Parameters
    ----------
    seed : int
        Seeds the teacher's stratified 70/15/15 split, the ``fast`` subsample
        and the constructed pairs. The student's voice split is fixed.
    fast : bool
        Keep a stratified third of every split of both modalities (the same
        clips and images for a given seed; standardisation is unchanged).
    path : str or Path, optional
        An npz to use instead of the packaged one (checked against the same
        recorded SHA-256).
    pool : {"max", "avg"}
        Global pooling of the student's 2-D CNN (the module docstring says why max).
    clip_level : bool
        Subtract each clip's mean (over bands and frames) after the per-band standardisation.

    Returns
    -------
    CrossModalTask
        Teacher inputs (M, 1, 8, 8), student inputs (N, 1, 32, 48), both
        float32 and standardised; ``paired_teacher_x[split]`` (N_split, 1, 8, 8)
        holds the constructed pairs; ``info`` the provenance, licences, voices
        per split and per-clip metadata (voice id, pitch, rate, SNR, offset).
    """
    if kw:
        raise TypeError(f"digits-speech takes seed, fast, path, pool and clip_level only; got {sorted(kw)}")
    check_int("seed", seed)
    from .._validation import check_bool, check_choice
    check_choice("pool", pool, ("max", "avg"))
    clip_level = check_bool("clip_level", clip_level)
    rng = numpy_rng(seed, DIGITS_SPEECH_TASK)

    z = read_speech_arrays(path)

    # Teacher: images, stratified random split, scalar standardisation.
    tx = (z["digit_images"] / 16.0).astype(np.float32)[:, None]       # (M, 1, 8, 8) in [0, 1]
    ty = z["digit_labels"].astype(np.int64)
    t_idx = stratified_split(ty, 0.15, 0.15, seed)
    mu, sd = tx[t_idx["train"]].mean(), tx[t_idx["train"]].std()
    tx = (tx - mu) / sd

    sx, s_idx = _student_clips(z, clip_level)

    if fast:
        t_idx = {s: t_idx[s][_thin(ty[t_idx[s]], FAST_FRACTION, rng)] for s in SPLITS}
        s_idx = {s: s_idx[s][_thin(z["y"][s_idx[s]], FAST_FRACTION, rng)] for s in SPLITS}

    teacher = {s: Split(tx[t_idx[s]], ty[t_idx[s]]) for s in SPLITS}
    student = {s: Split(sx[s_idx[s]], z["y"][s_idx[s]].astype(np.int64)) for s in SPLITS}

    paired = _constructed_pairs(teacher, student, rng)

    names = [str(n) for n in z["voice_names"]]
    meta_keys = ("voice", "pitch", "rate", "snr_db", "offset")
    _, n_mels, n_frames = sx.shape[1:]
    return CrossModalTask(
        name="digits-speech",
        class_names=CLASS_NAMES,
        teacher=teacher,
        student=student,
        paired_teacher_x=paired,
        teacher_modality="image (8x8 digit)",
        student_modality="speech (log-mel, eSpeak NG voices)",
        teacher_encoder={"kind": "cnn2d", "in_channels": 1, "height": 8, "width": 8},
        student_encoder={"kind": "cnn2d", "in_channels": 1, "height": int(n_mels), "width": int(n_frames),
                         "pool": pool},
        info={
            "source": {
                "teacher": "scikit-learn load_digits: UCI Optical Recognition of Handwritten Digits "
                           "(Alpaydin & Kaynak, 1998), licence CC BY 4.0",
                "student": "words 'zero'..'nine' synthesized with eSpeak NG 1.52 (GPL-3) from the "
                           "espeakng-loader wheel; only its output (log-mel features) is shipped; "
                           "built by scripts/build_digits_speech.py",
            },
            "pairing": "constructed: each student clip is paired with a fixed (seeded) teacher image "
                       "of the same digit from the teacher split of the same name; pairs carry class "
                       "identity, not a co-recorded instance",
            "student_split": "by voice (accent + eSpeak voice variant); train/val/test voices are disjoint",
            "voices": {s: [names[v] for v in np.flatnonzero(z["voice_split"] == i)]
                       for i, s in enumerate(SPLITS)},
            "features": "log-mel power, 16 kHz, 25 ms Hann window, 20 ms hop, "
                        f"{n_mels} HTK-mel bands 20-8000 Hz, {n_frames} frames (0.965 s); "
                        f"white noise at {np.floor(z['snr_db'].min()):.0f} to "
                        f"{np.ceil(z['snr_db'].max()):.0f} dB SNR, random time offset",
            "standardisation": {"teacher": [float(mu), float(sd)],
                                "student": "per mel band, student train split"
                                           + ("; then each clip's mean level subtracted" if clip_level else "")},
            "student_pool": pool,
            "student_meta": {s: {k: z[k][s_idx[s]].tolist() for k in meta_keys} for s in SPLITS},
            "voice_names": names,
            "fast": bool(fast),
            "seed": int(seed),
        },
    )
