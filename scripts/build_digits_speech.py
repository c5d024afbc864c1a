"""Build ``cmkd_lab/data/builtin/digits_speech.npz``: spoken digits for the
``digits-speech`` task.

The words "zero" ... "nine" are synthesized with eSpeak NG over many voices
(an English accent plus a voice variant), pitches and speeds, placed at a random
offset in a ~1 s window with white noise at a random SNR, and turned into
log-mel features of shape (1, N_MELS, N_FRAMES). The file also stores
scikit-learn's 8x8 digit images (the teacher modality, CC BY 4.0). Only
eSpeak NG's *output* is shipped: it is GPL-3 and is used as a tool, its code
and data are not vendored.

Requirements (build time only, not a runtime dependency of cmkd_lab)::

    pip install espeakng-loader scikit-learn scipy   # eSpeak NG library + voice data in a wheel

Usage::

    python scripts/build_digits_speech.py            # writes the npz + CHECKSUMS.json
    python scripts/build_digits_speech.py --clean --out /tmp/clean.npz  # no noise, centred

Determinism, so that a rebuild gives the same file byte for byte:

* eSpeak NG repeats a call exactly only in a *fresh* process (repeating it
  inside one process changes the waveform), so each voice is synthesized in
  its own freshly spawned process, always with the same calls in the same order;
* eSpeak's noise generators are seeded per clip (``espeak_ng_SetRandSeed`` and
  libc ``srand``): without that, breathy or rough voices such as ``+f3`` or
  ``+whisper`` differed between runs even in fresh processes;
* everything after synthesis is seeded numpy;
* the npz is written uncompressed with fixed zip timestamps.
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import io
import json
import multiprocessing as mp
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "cmkd_lab" / "data" / "builtin" / "digits_speech.npz"
CHECKSUMS = ROOT / "cmkd_lab" / "data" / "builtin" / "CHECKSUMS.json"
CHECKSUM_KEY = "digits_speech"

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# English accents of this eSpeak NG build ("en-gb" does not exist: "en" is British).
ACCENTS = ["en", "en-us", "en-029", "en-gb-scotland", "en-gb-x-rp",
           "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc"]
# Voice variants (files in espeak-ng-data/voices/!v), one per near-duplicate
# family (e.g. iven..iven4, robosoft..robosoft8, Diogo/Hugo/michel), so that a
# held-out voice is not a copy of a training voice.
VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "croak", "whisper", "whisperf", "klatt", "klatt2", "klatt3", "klatt4",
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "Demonic", "Denis", "Diogo",
    "Gene", "Jacky", "Marco", "Mario", "Michael", "Mr serious", "Nguyen", "Reed",
    "RicishayMax", "Storm", "Tweaky", "adam", "announcer", "antonio", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "grandma",
    "grandpa", "gustave", "ian", "iven", "john", "kaukovalta", "marcelo",
    "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "robosoft",
    "sandro", "shelby", "steph", "travis", "victor", "zac",
]
N_VAL_VOICES, N_TEST_VOICES = 12, 12
RENDITIONS = 3                  # clips per (voice, digit), each with its own pitch and rate
PITCH_RANGE = (25, 75)          # eSpeak base pitch, 0..100 (default 50)
RATE_RANGE = (120, 250)         # words per minute (default 175)
# White noise relative to the speech's power. -5..10 dB puts a linear model on
# summary statistics at ~0.7-0.8 on held-out voices (a linear check on summary statistics gave 0.6-0.8) and a small
# CNN at ~0.85-0.91, below the image teacher; 5..20 dB gave 0.81-0.88 and 0.97-0.98
# (val-test accuracies).
SNR_RANGE_DB = (-5.0, 10.0)
BUILD_SEED = 20260611

SR_SYNTH = 22050                # eSpeak NG output rate
SR = 16000                      # feature rate
WIN, HOP, N_FFT = 400, 320, 512  # 25 ms Hann window, 20 ms hop
N_MELS, N_FRAMES = 32, 48
FMIN, FMAX = 20.0, 8000.0
WINDOW_SAMPLES = WIN + (N_FRAMES - 1) * HOP  # 15,440 samples = 0.965 s
SPEECH_RMS = 0.1                # clips are scaled to this RMS before noise

# eSpeak NG constants (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH = 1, 3


# ------------------------------------------------------------------ synthesis
def synthesize_voice(job):
    """Synthesize a list of words with one voice (run in a fresh process).

    Parameters
    ----------
    job : tuple (voice, items)
        ``voice`` is an eSpeak NG voice name such as ``"en-us+f2"``; ``items``
        a list of ``(word, rate, pitch, noise_seed)``; ``noise_seed`` seeds
        eSpeak's noise generators (its own and libc ``rand``, used by breathy
        and rough voices), which otherwise differ from run to run.

    Returns
    -------
    list of int16 arrays
        One waveform at 22,050 Hz per item, in order.
    """
    import espeakng_loader

    voice, items = job
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    libc = ctypes.CDLL(None)
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                 espeakng_loader.get_data_path().encode(), _INITIALIZE_DONT_EXIT)
    if rate != SR_SYNTH:
        raise RuntimeError(f"eSpeak NG initialisation gave sample rate {rate}, expected {SR_SYNTH}")

    chunks = []

    def on_audio(wav, n, events):  # called by eSpeak with each block of samples
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                ctypes.c_void_p)(on_audio)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
    out = []
    for word, wpm, pitch, noise_seed in items:
        lib.espeak_ng_SetRandSeed(int(noise_seed))
        libc.srand(int(noise_seed))
        lib.espeak_SetParameter(_PARAM_RATE, int(wpm), 0)
        lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
        chunks.clear()
        text = word.encode() + b"\0"
        err = lib.espeak_Synth(text, len(text), 0, 0, 0, _CHARS_UTF8, None, None)
        if err != 0 or not chunks:
            raise RuntimeError(f"eSpeak NG failed on {word!r} with voice {voice!r} (error {err})")
        out.append(np.concatenate(chunks).astype(np.int16))
    lib.espeak_Terminate()
    return out


def check_variants():
    """Raise if a variant in ``VARIANTS`` is missing (eSpeak silently ignores unknown ones)."""
    import espeakng_loader

    have = {p.name for p in (Path(espeakng_loader.get_data_path()) / "voices" / "!v").iterdir()}
    missing = [v for v in VARIANTS if v not in have]
    if missing:
        raise RuntimeError(f"eSpeak NG voice variants not found: {missing}")


def voice_table():
    """Voice names and their split, in a fixed order.

    Returns
    -------
    names : list of str
        ``"<accent>+<variant>"``, one variant per voice, accents spread evenly.
    split : int array (V,)
        0 train, 1 val, 2 test.
    """
    rng = np.random.default_rng(BUILD_SEED)
    variants = [VARIANTS[i] for i in rng.permutation(len(VARIANTS))]
    names = [f"{ACCENTS[i % len(ACCENTS)]}+{v}" for i, v in enumerate(variants)]
    split = np.zeros(len(names), dtype=np.int64)
    split[len(names) - N_VAL_VOICES - N_TEST_VOICES:] = 1
    split[len(names) - N_TEST_VOICES:] = 2
    return names, split


# ------------------------------------------------------------------- features
def mel_filterbank(n_mels=N_MELS, n_fft=N_FFT, sr=SR, fmin=FMIN, fmax=FMAX):
    """Triangular filters equally spaced on the HTK mel scale.

    Returns
    -------
    array (n_mels, n_fft // 2 + 1)
    """
    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))  # (n_mels + 2,)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)                    # (F,)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down))                # (n_mels, F)


_FB = mel_filterbank()
_HANN = np.hanning(WIN + 1)[:-1]  # periodic Hann


def log_mel(x):
    """Log-mel power spectrogram of a 16 kHz window of ``WINDOW_SAMPLES`` samples.

    Parameters
    ----------
    x : float array (WINDOW_SAMPLES,)

    Returns
    -------
    float32 array (N_MELS, N_FRAMES)
    """
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP]  # (N_FRAMES, WIN)
    power = np.abs(np.fft.rfft(frames * _HANN, n=N_FFT)) ** 2          # (N_FRAMES, F)
    return np.log(power @ _FB.T + 1e-10).T.astype(np.float32)          # (N_MELS, N_FRAMES)


def trim(wave, rel=0.01):
    """Drop leading and trailing samples below ``rel`` times the peak."""
    loud = np.flatnonzero(np.abs(wave) > rel * np.abs(wave).max())
    return wave[loud[0]:loud[-1] + 1]


def make_clip(wave_int16, rng, *, clean=False):
    """Resample, place in the window, add noise; return features and the draws.

    Parameters
    ----------
    wave_int16 : int16 array (T,)
        eSpeak NG output at 22,050 Hz.
    rng : numpy Generator
    clean : bool
        No noise and the utterance centred (for the separability check).

    Returns
    -------
    feats : float32 array (N_MELS, N_FRAMES)
    snr_db : float (inf when clean)
    offset : int
        Start of the utterance in the window, in 16 kHz samples.
    """
    from scipy.signal import resample_poly  # here: keeps the synthesis processes light

    speech = resample_poly(trim(wave_int16.astype(np.float64) / 32768.0), SR, SR_SYNTH)
    speech = speech[:WINDOW_SAMPLES]  # the slowest words (~0.8 s) fit; never cut in practice
    speech *= SPEECH_RMS / np.sqrt(np.mean(speech ** 2))
    slack = WINDOW_SAMPLES - speech.size
    offset = slack // 2 if clean else int(rng.integers(0, slack + 1))
    x = np.zeros(WINDOW_SAMPLES)
    x[offset:offset + speech.size] = speech
    snr_db = np.inf
    if not clean:
        snr_db = float(rng.uniform(*SNR_RANGE_DB))
        x += rng.normal(scale=SPEECH_RMS * 10.0 ** (-snr_db / 20.0), size=WINDOW_SAMPLES)
    return log_mel(x), snr_db, offset


# ---------------------------------------------------------------------- build
def digit_images():
    """scikit-learn's bundled 8x8 digits as uint8 (M, 8, 8) in 0..16 and labels (M,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = d.images.astype(np.uint8)
    if not np.array_equal(images, d.images):
        raise RuntimeError("load_digits images are expected to hold integers 0..16")
    return images, d.target.astype(np.int64)


def build(*, clean=False, processes=2):
    """Synthesize every clip and compute its features.

    Returns
    -------
    dict of arrays
        ``x`` float16 (N, 1, N_MELS, N_FRAMES), ``y``, ``voice``, ``pitch``,
        ``rate``, ``offset`` int arrays (N,), ``snr_db`` float32 (N,),
        ``voice_names`` str (V,), ``voice_split`` int (V,) (0/1/2 =
        train/val/test), ``words`` str (10,); and the teacher modality,
        scikit-learn's ``load_digits`` (UCI handwritten digits, CC BY 4.0):
        ``digit_images`` uint8 (1797, 8, 8) with values 0..16, ``digit_labels``
        int (1797,), stored so that loading needs no scikit-learn.
    """
    check_variants()
    names, split = voice_table()
    rng = np.random.default_rng(np.random.SeedSequence([BUILD_SEED, 1]))
    jobs, meta = [], []
    for v, name in enumerate(names):
        items = []
        for r in range(RENDITIONS):
            for d, word in enumerate(WORDS):
                wpm = int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1))
                pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
                items.append((word, wpm, pitch, len(meta)))
                meta.append((d, v, pitch, wpm))
        jobs.append((name, items))
    # maxtasksperchild=1 and the spawn start method: one fresh interpreter per
    # voice, the only way eSpeak NG repeats itself exactly; map keeps the order.
    with mp.get_context("spawn").Pool(processes, maxtasksperchild=1) as pool:
        waves = [w for batch in pool.map(synthesize_voice, jobs, chunksize=1) for w in batch]

    feats, snrs, offsets = [], [], []
    for i, wave in enumerate(waves):
        f, snr, off = make_clip(wave, np.random.default_rng(np.random.SeedSequence([BUILD_SEED, 2, i])),
                                clean=clean)
        feats.append(f)
        snrs.append(snr)
        offsets.append(off)
    images, labels = digit_images()
    y, voice, pitch, wpm = (np.array(c, dtype=np.int64) for c in zip(*meta))
    return {
        "x": np.stack(feats)[:, None].astype(np.float16),  # (N, 1, N_MELS, N_FRAMES)
        "y": y, "voice": voice, "pitch": pitch, "rate": wpm,
        "snr_db": np.array(snrs, dtype=np.float32),
        "offset": np.array(offsets, dtype=np.int64),
        "voice_names": np.array(names),
        "voice_split": split,
        "words": np.array(WORDS),
        "digit_images": images,
        "digit_labels": labels,
    }


def save_npz(path, arrays):
    """Write an npz that depends only on ``arrays`` (fixed timestamps, stored)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            entry = io.BytesIO()
            np.lib.format.write_array(entry, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, entry.getvalue())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def record_checksum(digest, path=CHECKSUMS, key=CHECKSUM_KEY):
    """Set ``key`` in the flat JSON dict at ``path``, keeping the other keys."""
    table = json.loads(Path(path).read_text()) if Path(path).exists() else {}
    table[key] = digest
    Path(path).write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="npz to write")
    ap.add_argument("--clean", action="store_true", help="no noise, centred (not for shipping)")
    ap.add_argument("--processes", type=int, default=2, help="synthesis processes")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    arrays = build(clean=args.clean, processes=args.processes)
    digest = save_npz(args.out, arrays)
    shipped = args.out.resolve() == DEFAULT_OUT.resolve() and not args.clean
    if shipped:
        record_checksum(digest)
    print(json.dumps({
        "out": str(args.out), "clips": int(arrays["y"].size), "voices": int(arrays["voice_names"].size),
        "shape": list(arrays["x"].shape[1:]), "bytes": args.out.stat().st_size, "sha256": digest,
        "checksum_recorded": shipped, "seconds": round(time.perf_counter() - t0, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
