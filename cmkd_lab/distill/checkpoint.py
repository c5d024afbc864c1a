"""Checkpoint files: a checksum header, then a ``torch.save`` payload that
``torch.load(weights_only=True)`` reads (tensors and plain values only).

Layout of a file::

    b"CMKDLAB-CKPT\\n" + sha256(payload) as 64 hex digits + b"\\n" + payload

The digest catches a truncated or damaged file before anything is loaded;
``weights_only=True`` means loading never runs code from the file. Values that
are not tensors (history, config, RNG states of Python / NumPy and the
sampler) travel as one JSON string, so callbacks may put NumPy scalars in
their history records without breaking the safe loader.
"""
from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import numpy as np
import torch

from .._atomic import atomic_write_bytes
from ..store import jsonable

__all__ = ["CHECKPOINT_FORMAT", "write_checkpoint", "read_checkpoint", "to_json", "from_json",
           "global_rng_state", "set_global_rng_state"]

CHECKPOINT_FORMAT = 2
_MAGIC = b"CMKDLAB-CKPT\n"
_HEAD = len(_MAGIC) + 65  # magic + 64 hex digits + newline


def to_json(obj) -> str:
    """JSON text of ``obj`` (NumPy scalars/arrays and tensors become lists or numbers; NaN kept: a checkpoint
    must give back exactly what it holds)."""
    def plain(o):
        out = jsonable(o, nonfinite="keep")
        if out is o:
            raise TypeError(f"a checkpoint can hold only plain values; got {type(o).__name__}")
        return out
    return json.dumps(obj, default=plain)


def from_json(text: str):
    return json.loads(text)


def global_rng_state() -> dict:
    """Python's and NumPy's global RNG states as plain lists."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    v, internal, gnext = random.getstate()
    return {"python": [v, list(internal), gnext], "numpy": [name, keys.tolist(), int(pos), int(has_gauss),
                                                             float(gauss)]}


def set_global_rng_state(state: dict) -> None:
    v, internal, gnext = state["python"]
    random.setstate((v, tuple(internal), gnext))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


def write_checkpoint(state: dict, path) -> Path:
    """Serialise ``state`` with its checksum and write it atomically to ``path``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode()
    return atomic_write_bytes(path, b"".join([_MAGIC, digest, b"\n", payload]))


def read_checkpoint(path, map_location="cpu") -> dict:
    """Verify and load a checkpoint written by :func:`write_checkpoint`.

    Raises
    ------
    ValueError
        Missing file, not a cmkd_lab checkpoint, checksum mismatch
        (truncated or damaged), unreadable payload or another format version;
        the message names the file and says what to do.
    """
    path = Path(path)
    fix = "delete it (or pass --overwrite) to start the run again"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"checkpoint {str(path)!r} does not exist; run without --resume to start a new run") from None
    except OSError as e:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read ({e.strerror or e})") from None
    if not data.startswith(_MAGIC) or len(data) < _HEAD or data[_HEAD - 1:_HEAD] != b"\n":
        raise ValueError(f"checkpoint {str(path)!r} is not a cmkd_lab checkpoint (no checksum header; "
                         f"{len(data)} bytes): it is damaged or was written by another program or an older "
                         f"cmkd_lab; {fix}")
    expected = data[len(_MAGIC):_HEAD - 1].decode("ascii", "replace")
    payload = data[_HEAD:]
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise ValueError(f"checkpoint {str(path)!r} failed its checksum (SHA-256 expected {expected[:16]}..., got "
                         f"{actual[:16]}...; {len(payload)} payload bytes): it is truncated or damaged; {fix}")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint {str(path)!r} cannot be loaded safely ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); {fix}") from None
    fmt = state.get("format") if isinstance(state, dict) else None
    if fmt != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} has format {fmt!r}, this cmkd_lab reads format "
                         f"{CHECKPOINT_FORMAT}; {fix}")
    return state

