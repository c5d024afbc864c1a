"""The published results that come with cmkd_lab: the five-seed benches, the teacher-control benches and the
sweeps that the book's Results pages and the notebooks show.

They have one home, ``docs/results`` in the repository; a built package carries them as
``cmkd_lab/results/published`` (setup.py maps the folder into the package). :func:`shipped_dir` finds
whichever is there, so that an installed package and a source checkout read the same files.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

__all__ = ["shipped_dir", "shipped", "shipped_names"]

_HERE = Path(__file__).resolve().parent


def shipped_dir() -> Optional[Path]:
    """The folder of the published results: the package's own copy (an installed package), else the
    checkout's ``docs/results``; None when neither holds any result."""
    for d in (_HERE / "published", _HERE.parents[1] / "docs" / "results"):
        if d.is_dir() and any(d.glob("*.json")):
            return d
    return None


def shipped(name: str, ext: str = "json") -> Optional[Path]:
    """The published result ``name`` (e.g. ``"bench_hapt"``) as a file of type ``ext`` (``json``, ``md`` or
    ``csv``), or None when it is not published (yet).

    Raises
    ------
    ValueError
        ``name`` is not a plain file stem, or ``ext`` is not one of json, md, csv.
    """
    if not isinstance(name, str) or not name or any(c in name for c in "/\\."):
        raise ValueError(f"name must be the stem of a published result, e.g. 'bench_hapt'; got {name!r}")
    if ext not in ("json", "md", "csv"):
        raise ValueError(f"ext must be one of 'json', 'md', 'csv'; got ext={ext!r}")
    d = shipped_dir()
    p = d / f"{name}.{ext}" if d is not None else None
    return p if p is not None and p.is_file() else None


def shipped_names() -> List[str]:
    """The stems of every published result (its JSON files), sorted."""
    d = shipped_dir()
    return sorted(p.stem for p in d.glob("*.json")) if d is not None else []
