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
    """``tree`` without what does not decide what a run computes: docstrings, and the messages of the errors
    it raises and the warnings it gives (the exception's type and the warning's category stay: a message
    reworded is the same code, a check added or removed is not)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            node.exc.args, node.exc.keywords = [], []  # raise E(message) -> raise E()
            node.cause = None if isinstance(node.cause, ast.Constant) else node.cause
        elif isinstance(node, ast.Call) and _is_warn(node.func) and node.args:
            node.args = [ast.Constant(None)] + node.args[1:]  # warnings.warn(message, Category) -> (None, Category)
    return tree


def _is_warn(func: ast.AST) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "warn" and isinstance(func.value, ast.Name)
            and func.value.id == "warnings") or (isinstance(func, ast.Name) and func.id == "warn")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """A short hash of the code that decides what a run computes.

    It covers the source of the core packages (:data:`CORE_PACKAGES`) and the
    modules they share, parsed so that comments, docstrings, formatting and the
    wording of error and warning messages do not count, and the versions of
    torch, NumPy, POT and SciPy. Stored runs and
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
_NONFINITE = "nonfinite"  # the key of write_json's record of the non-finite numbers it wrote as null


def _pointer(path: str, key) -> str:
    """``path`` extended by ``key`` as a JSON pointer (RFC 6901: ``~`` → ``~0``, ``/`` → ``~1``)."""
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def jsonable(v, *, decimals: Optional[int] = None, nonfinite: str = "null", notes: Optional[dict] = None,
             _path: str = "", _in_array: bool = False):
    """``v`` as plain JSON values: the one cleaner of everything cmkd_lab writes as JSON.

    NumPy scalars and arrays and tensors become numbers and lists, paths strings, sets sorted lists;
    other objects are returned as they are (``json.dumps`` then names them).

    Parameters
    ----------
    v : any
    decimals : int, optional
        Round the elements of arrays (and tensors) to this many decimals (compact artefacts).
    nonfinite : {"null", "keep"}
        ``"null"`` (default): NaN and ±inf become None — JSON has no NaN, and other languages' parsers
        reject the bare ``NaN`` Python writes. ``"keep"``: they stay floats (files only this code reads
        back, where a value must survive exactly: checkpoints).
    notes : dict, optional
        With ``nonfinite="null"``, filled with the JSON pointer (``"/history/3/ce"``) → ``"nan"``,
        ``"inf"`` or ``"-inf"`` of every value written as None.
    """
    import numpy as np
    kw = dict(decimals=decimals, nonfinite=nonfinite, notes=notes)
    if isinstance(v, dict):
        return {str(k): jsonable(x, **kw, _path=_pointer(_path, k), _in_array=_in_array) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x, **kw, _path=_pointer(_path, i), _in_array=_in_array) for i, x in enumerate(v)]
    if isinstance(v, (set, frozenset)):
        return jsonable(sorted(v, key=repr), **kw, _path=_path, _in_array=_in_array)
    if isinstance(v, np.ndarray) or (type(v).__module__ == "torch" and hasattr(v, "tolist")):
        plain = (v.detach().cpu() if hasattr(v, "detach") else v).tolist()
        return jsonable(plain, **kw, _path=_path, _in_array=True)
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            if nonfinite == "keep":
                return v
            if notes is not None:
                notes[_path or "/"] = "nan" if v != v else ("inf" if v > 0 else "-inf")
            return None
        return round(v, decimals) if decimals is not None and _in_array else v
    if isinstance(v, Path):
        return str(v)
    return v


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write_text(Path(path), text)


def write_json(path, obj, *, indent: Optional[int] = 1) -> Path:
    """Write ``obj`` as valid JSON to ``path`` atomically (:func:`jsonable`). A non-finite number (a diverged
    run's loss) is written as null, and a dict gets the reason next to it: ``"nonfinite"``, the JSON pointer
    of each such value → ``"nan"`` / ``"inf"`` / ``"-inf"`` (:func:`read_json` puts them back). The text
    is built first, so an object that cannot be serialised raises before anything on disk changes."""
    def plain(o):
        out = jsonable(o, nonfinite="keep")
        if out is o:
            raise TypeError(f"{str(path)!r} cannot be written as JSON: not JSON serialisable: {type(o).__name__}")
        return out
    try:  # most objects hold no NaN: written as they are, without a walk through every number
        text = json.dumps(obj, indent=indent, allow_nan=False, default=plain)
    except ValueError:  # a non-finite number somewhere: null, and the record of where
        notes: dict = {}
        clean = jsonable(obj, notes=notes)
        if notes and isinstance(clean, dict):
            clean[_NONFINITE] = {**(clean.get(_NONFINITE) or {}), **notes}
        text = json.dumps(clean, indent=indent, allow_nan=False, default=plain)
    return write_text(path, text)


def _restore_nonfinite(obj: dict) -> dict:
    """The values :func:`write_json` wrote as null put back as NaN / ±inf (its ``nonfinite`` record)."""
    record = obj.get(_NONFINITE)
    if not isinstance(record, dict) or not all(v in ("nan", "inf", "-inf") for v in record.values()):
        return obj
    for ptr, val in record.items():
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(ptr).split("/")[1:]]
        node = obj
        try:
            for p in parts[:-1]:
                node = node[int(p)] if isinstance(node, list) else node[p]
            last = int(parts[-1]) if isinstance(node, list) else parts[-1]
            if node[last] is None:
                node[last] = float(val)
        except (KeyError, IndexError, ValueError, TypeError):
            continue  # edited by hand since: leave that value as it is
    obj.pop(_NONFINITE)
    return obj


def read_json(path, *, what: str = "file", expect: type = dict):
    """The JSON content of ``path``; every failure names the file and says what to do. The non-finite
    numbers :func:`write_json` wrote as null (its ``nonfinite`` record) come back as NaN / ±inf, so a file
    reads as the object that was written.

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
    return _restore_nonfinite(obj) if isinstance(obj, dict) else obj


def _check_name_lengths(p: Path, what: str) -> None:
    """Refuse a path the file system cannot hold (a folder name over NAME_MAX, the path over PATH_MAX)
    with the rule, instead of the raw ``File name too long`` of the first call that touches it."""
    try:
        name_max, path_max = os.pathconf("/", "PC_NAME_MAX"), os.pathconf("/", "PC_PATH_MAX")
    except (AttributeError, OSError, ValueError):  # pragma: no cover - no pathconf (Windows)
        name_max, path_max = 255, 4096
    long = next((part for part in p.parts if len(os.fsencode(part)) > name_max), None)
    if long is not None:
        raise ValueError(f"{what} names a folder of {len(os.fsencode(long))} bytes ({long[:24]!r}…), and a folder "
                         f"name may have at most {name_max} on this system; choose a shorter {what}")
    if len(os.fsencode(str(p.absolute()))) > path_max - 256:  # room for the run folders and files inside it
        raise ValueError(f"{what} is a path of {len(os.fsencode(str(p.absolute())))} bytes, and paths may have at "
                         f"most {path_max} on this system (with room for the files inside); choose a shorter {what}")


def check_out_dir(raw, *, what: str = "--out") -> Path:
    """The one check of an output folder, before any work starts: a non-empty path that is (or can be
    created as) a folder this process can write to; errors name ``what``, the path and the OS reason.
    Side-effect free: folders it had to create to find out are removed again."""
    import tempfile
    if raw is None or not str(raw).strip():
        raise ValueError(f"{what} must name a folder; got {what} {raw!r}: pass e.g. {what} runs/my-run")
    p = Path(raw).expanduser()
    _check_name_lengths(p, what)
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
