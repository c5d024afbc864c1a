"""Names: those that become file or folder names (a task's name in the teacher cache, a label in a
folder), and lists of names given as one comma-separated string.

One rule for every name that reaches the file system: :func:`safe_name` keeps a name
that is already a plain file name as it is, and reduces any other to one component that
stays inside the folder it is put in. :func:`split_names` is the one reading of ``"a, b,c"``.
"""
from __future__ import annotations

import hashlib
import re

__all__ = ["safe_name", "split_names"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,+-]")


def safe_name(name: str, *, max_len: int = 64) -> str:
    """``name`` as one path component that cannot leave its folder.

    Characters outside ``A-Z a-z 0-9 _ . = , + -`` (a ``/``, a ``\\``, a space …)
    become ``_``, a leading dot too (no ``..``, no hidden file), and the result has
    at most ``max_len`` characters. A name that had to change gets 8 hex digits of
    its SHA-256 appended, so that two different names never give one component
    (``a/b`` → ``a_b-…``, while ``a_b`` stays ``a_b``).

    Parameters
    ----------
    name : str
    max_len : int >= 16

    Returns
    -------
    str
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string; got {type(name).__name__}")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 16:
        raise ValueError(f"max_len must be an integer >= 16; got max_len={max_len!r}")
    safe = _UNSAFE.sub("_", name)
    safe = "_" + safe[1:] if safe.startswith(".") else safe
    if safe == name and 0 < len(name) <= max_len:
        return name
    tag = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[:max_len - 9]}-{tag}"


def split_names(text: str) -> list:
    """``"a, b,,c "`` → ``["a", "b", "c"]``: the items of a comma-separated list, stripped, empty ones
    dropped (a trailing comma or a doubled one is not a name)."""
    return [x.strip() for x in str(text).split(",") if x.strip()]
