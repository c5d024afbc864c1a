"""One store for results and caches: how files are written, locked, read and keyed.

Every part of cmkd_lab that keeps something on disk goes through here (the run
directories of ``run``, ``bench`` and ``sweep``, and the teacher cache), under
one policy:

* **Atomic writes.** A file is written to a temp file in the same folder,
  flushed and renamed, so a reader (or a run killed half-way) sees the old file
  or the new one, never a mix (:func:`write_json`, :func:`write_text`).
* **One process per directory.** :func:`claim` takes an exclusive lock on a
  directory (``DIR/.lock``, an ``fcntl`` lock the kernel releases when the
  process ends, also when it is killed). A second process that asks for the
  same directory is refused at once with a message naming the holder (pid,
  host, command line, since when); a cache entry waits for the holder instead
  (:func:`locked`), then reads what it built.
* **Nothing stale.** A stored run or cache entry carries an *identity*: its
  options, a hash of the data it was trained on and :func:`code_version`, a
  hash of the core's code (``align``, ``models``, ``data``, ``distill``,
  ``diagnostics``; docstrings and comments do not count) and of the numerical
  libraries' versions. :func:`compare_identity` tells a stored entry that is
  current from one made by other code or data (*stale*: run again) and from one
  made with other options (*different*: refused, never mixed in).
* **Clear failures.** A file that cannot be read or parsed is named in the
  error with what to do (:func:`read_json`); a cache folder that cannot be
  written is a warning, and the work goes on without caching.

The lock is advisory and local: two machines writing into one network folder
are not protected (give each its own ``--out``).
"""
from __future__ import annotations

import ast
import contextlib
import datetime
import functools
import hashlib
import json
import math
import os
import socket
import sys
import warnings
from pathlib import Path
from typing import Iterator, Optional, Tuple

from ._atomic import atomic_write_text

__all__ = ["code_version", "cache_dir", "claim", "locked", "DirectoryInUse", "write_json", "write_text",
           "read_json", "jsonable", "compare_identity", "check_out_dir", "CORE_PACKAGES"]

try:  # POSIX; elsewhere directories are not locked (a warning says so once)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

# The packages whose code decides what a run computes: a change there makes stored runs stale.
CORE_PACKAGES = ("align", "models", "data", "distill", "diagnostics")
_CORE_MODULES = ("_validation.py", "_seeds.py")
_LIBRARIES = ("torch", "numpy", "pot", "scipy")


class DirectoryInUse(RuntimeError):
    """Another process holds the directory (see :func:`claim`)."""


# ------------------------------------------------------------------ identity
def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A short hash of the code that decides what a run computes.

    It covers the source of the core packages (:data:`CORE_PACKAGES`) and the
    modules they share, parsed so that comments, docstrings and formatting do
    not count, and the versions of torch, NumPy, POT and SciPy. Stored runs and
    cached teachers made with another value are stale.
    """
    import importlib.metadata as md
    root = Path(__file__).resolve().parent
    files = sorted(p for pkg in CORE_PACKAGES for p in (root / pkg).rglob("*.py"))
    files += [root / m for m in _CORE_MODULES if (root / m).is_file()]
    h = hashlib.sha256()
    for p in files:
        tree = _strip_docstrings(ast.parse(p.read_text(encoding="utf-8")))
        h.update(str(p.relative_to(root)).encode())
        h.update(ast.dump(tree, annotate_fields=False).encode())
    for lib in _LIBRARIES:
        try:
            h.update(f"{lib}={md.version(lib)}".encode())
        except md.PackageNotFoundError:
            h.update(f"{lib}=none".encode())
    return h.hexdigest()[:16]


def compare_identity(stored: Optional[dict], wanted: dict) -> Tuple[str, list]:
    """How a stored entry's identity relates to the one wanted now.

    Returns ``("same", [])``, ``("stale", keys)`` when only the code version or
    the data fingerprint differ (the entry was made by other code or on other
    data: it must be made again), or ``("different", keys)`` when an option
    differs (another experiment's entry: never mixed in). A missing or
    unreadable stored identity counts as stale.
    """
    if not isinstance(stored, dict):
        return "stale", ["identity"]
    keys = sorted(set(stored) | set(wanted))
    diff = [k for k in keys if stored.get(k) != wanted.get(k)]
    if not diff:
        return "same", []
    versionish = {"code_version", "data", "task_fingerprint"}
    if set(diff) <= versionish:
        return "stale", diff
    return "different", [k for k in diff if k not in versionish]


# --------------------------------------------------------------------- files
def jsonable(v, *, decimals: Optional[int] = None, _in_array: bool = False):
    """``v`` as plain JSON values: NumPy scalars and arrays, tensors and paths become numbers, lists
    and strings. With ``decimals``, the elements of arrays are rounded to that many decimals and
    non-finite floats anywhere become None (JSON has no NaN); without it, values are kept as they are."""
    import numpy as np
    if isinstance(v, dict):
        return {str(k): jsonable(x, decimals=decimals, _in_array=_in_array) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x, decimals=decimals, _in_array=_in_array) for x in v]
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "b":
            return v.tolist()
        if v.dtype.kind in "iu":
            return v.astype(np.int64).tolist()
        return jsonable(v.astype(np.float64).tolist(), decimals=decimals, _in_array=True)
    if type(v).__module__ == "torch" and hasattr(v, "tolist"):
        return jsonable(np.asarray(v.detach().cpu() if hasattr(v, "detach") else v), decimals=decimals)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (np.floating, float)) and not isinstance(v, bool):
        v = float(v)
        if decimals is None:
            return v
        if not math.isfinite(v):
            return None
        return round(v, decimals) if _in_array else v
    if isinstance(v, Path):
        return str(v)
    return v


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write_text(Path(path), text)


def write_json(path, obj, *, indent: Optional[int] = 1) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically. The text is built first, so an object that
    cannot be serialised raises before anything on disk changes."""
    def default(o):
        out = jsonable(o)
        if out is o:
            raise TypeError(f"not JSON serialisable: {type(o).__name__}")
        return out
    return write_text(path, json.dumps(obj, indent=indent, default=default))


def read_json(path, *, what: str = "file", expect: type = dict):
    """The JSON content of ``path``; every failure names the file and says what to do.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        It is not UTF-8, not JSON, or not a ``expect`` (a dict by default).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {str(p)!r} does not exist") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {str(p)!r} is a directory, not a file") from None
    except OSError as e:
        raise ValueError(f"{what} {str(p)!r} cannot be read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {str(p)!r} is not UTF-8 text ({e.reason} at byte {e.start}): it is not a "
                         "file cmkd_lab wrote, or it is damaged") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {str(p)!r} is not valid JSON ({e.msg} at line {e.lineno}); was it cut short "
                         "while being written, or edited by hand?") from None
    if expect is not None and not isinstance(obj, expect):
        raise ValueError(f"{what} {str(p)!r} must hold a JSON {'object' if expect is dict else expect.__name__}; "
                         f"got a {type(obj).__name__}")
    return obj


def check_out_dir(raw, *, what: str = "--out") -> Path:
    """The one check of an output folder, before any work starts: a non-empty path that is (or can be
    created as) a folder this process can write to; errors name ``what``, the path and the OS reason.
    Side-effect free: folders it had to create to find out are removed again."""
    import tempfile
    if raw is None or not str(raw).strip():
        raise ValueError(f"{what} must name a folder; got {what} {raw!r}: pass e.g. {what} runs/my-run")
    p = Path(raw).expanduser()
    try:
        p.exists()
    except OSError as e:  # a name longer than the file system allows (ENAMETOOLONG)
        raise ValueError(f"{what} {str(p)!r} cannot be created ({e.strerror or type(e).__name__}); choose a folder "
                         "you can write to") from None
    if p.exists() and not p.is_dir():
        raise ValueError(f"{what} must be a directory; {str(p)!r} is {'a file' if p.is_file() else 'not a folder'}")
    created = []
    q = p
    while not q.exists() and not q.is_symlink() and q != q.parent:
        created.append(q)  # deepest first
        q = q.parent
    try:
        for d in reversed(created):
            d.mkdir()
        fd, probe = tempfile.mkstemp(dir=p, prefix=".cmkd_lab-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = e.strerror or type(e).__name__
        where = f": {e.filename!r}" if e.filename else ""
        raise ValueError(f"{what} {str(p)!r} cannot be {'created' if created else 'written to'} ({why}{where}); "
                         "choose a folder you can write to") from None
    finally:
        for d in created:
            try:
                d.rmdir()
            except OSError:
                pass
    return p


# --------------------------------------------------------------------- locks
def _holder_text(lock_path: Path) -> str:
    try:
        info = json.loads(lock_path.read_text())
        return (f"pid {info.get('pid')} on {info.get('host')}, `{info.get('command')}`, since "
                f"{info.get('since')}")
    except (OSError, ValueError):
        return "another process"


@contextlib.contextmanager
def _flock(lock_path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold an exclusive lock on ``lock_path``; yields False when ``wait`` is False and another holds it."""
    global _WARNED_NO_LOCK
    if fcntl is None:  # pragma: no cover - Windows
        if not _WARNED_NO_LOCK:
            warnings.warn("directory locks need fcntl (POSIX); on this platform two cmkd_lab processes can write "
                          "into one directory: give each its own --out", RuntimeWarning, stacklevel=3)
            _WARNED_NO_LOCK = True
        yield True
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
                    "since": datetime.datetime.now().isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_WARNED_NO_LOCK = False
_HELD: dict = {}  # directory -> depth, so one process may claim a directory it already holds


@contextlib.contextmanager
def claim(directory, *, what: str = "run directory") -> Iterator[Path]:
    """Hold ``directory`` (created if needed) for this process.

    Raises
    ------
    DirectoryInUse
        Another process holds it; the message names that process.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = str(d.resolve())
    if _HELD.get(key):  # re-entrant within one process (bench → run_one on its own folder)
        _HELD[key] += 1
        try:
            yield d
        finally:
            _HELD[key] -= 1
        return
    lock_path = d / ".lock"
    with _flock(lock_path, wait=False) as got:
        if not got:
            raise DirectoryInUse(f"{what} {str(d)!r} is in use by {_holder_text(lock_path)}; wait for it to "
                                 "finish or choose another --out")
        _HELD[key] = 1
        try:
            yield d
        finally:
            _HELD.pop(key, None)


@contextlib.contextmanager
def locked(path) -> Iterator[None]:
    """Hold the lock of a cache entry ``path`` (``path`` + ``.lock``), waiting for another process that
    builds it; if the lock file cannot be created (a read-only cache) nothing is locked."""
    lp = Path(str(path) + ".lock")
    try:
        lp.parent.mkdir(parents=True, exist_ok=True)
        cm = _flock(lp, wait=True)
        cm.__enter__()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        cm.__exit__(None, None, None)


def cache_dir() -> Path:
    """Where teachers are cached: ``$CMKD_LAB_CACHE`` or ``~/.cache/cmkd_lab`` (not created here)."""
    return Path(os.environ.get("CMKD_LAB_CACHE") or (Path.home() / ".cache" / "cmkd_lab"))
