"""Atomic file writes: a temp file in the same folder, flushed, then renamed.

A reader (or a run killed half-way) sees either the old file or the new one,
never a truncated mix; a failed write leaves no temp file behind, and its
``OSError`` (errno kept) names the file and what to do (a full disk says so).
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Union

__all__ = ["atomic_write_bytes", "atomic_write_text"]

_UMASK = os.umask(0)  # read once (os.umask can only be read by setting it)
os.umask(_UMASK)


def atomic_write_bytes(path, data: Union[bytes, bytearray, memoryview]) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path.

    The file gets the permissions a plain ``open(path, "wb")`` would give
    (``mkstemp`` alone would leave it readable by its owner only).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:  # also Ctrl-C mid-write: drop the temp file, keep the old one
        if tmp is not None:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if isinstance(e, OSError):
            raise _named(e, path) from e
        raise
    return path


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def _named(e: OSError, path: Path) -> OSError:
    """``e`` again (same errno, so the same OSError subclass) with the file named and the remedy."""
    why = e.strerror or str(e) or type(e).__name__
    tail = "the previous file is unchanged" if path.exists() else "no file was written"
    if e.errno in _FULL:
        msg = f"cannot write {str(path)!r} ({why}): the disk may be full (or over quota); free some space or write " \
              f"elsewhere; {tail}"
    elif e.errno in _DENIED:
        msg = f"cannot write {str(path)!r} ({why}): check that you may write to {str(path.parent)!r}; {tail}"
    else:
        msg = f"cannot write {str(path)!r} ({why}); {tail}"
    return OSError(e.errno, msg) if e.errno is not None else OSError(msg)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))
