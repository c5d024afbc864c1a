"""The results shipped with cmkd_lab (five-seed benches, sweeps and control benches): where they are
found, how a notebook names where a number comes from, and what to say when one has not been made yet.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

__all__ = ["SHIPPED_DIRS", "shipped_dirs", "shipped_bench", "shipped_result", "source_words", "missing_note"]

# Where shipped results are looked for: ``docs/results`` from the working directory (a notebook runs in
# ``notebooks/``, a script at the root), then the results published with the package.
SHIPPED_DIRS = ("docs/results", "../docs/results")


def shipped_dirs() -> list:
    """Where shipped results are looked for: ``docs/results`` and ``../docs/results`` from the working
    directory, then the results published with the package (:func:`cmkd_lab.results.shipped.shipped_dir`:
    the checkout's ``docs/results``, or the copy an installed package carries)."""
    from ..results.shipped import shipped_dir
    here = shipped_dir()
    return [Path(b) for b in SHIPPED_DIRS] + ([here] if here is not None else [])


def shipped_bench(name: str) -> Optional[Path]:
    """``docs/results/<name>.json`` (e.g. ``bench_hapt``) when this installation holds it, else None."""
    for base in shipped_dirs():
        p = base / f"{name}.json"
        if p.is_file():
            return p
    return None


def shipped_result(name: str) -> Optional[dict]:
    """The shipped sweep ``<name>.json`` (e.g. ``"regime_hapt"``), or None when this installation does
    not hold it (or it cannot be read as a sweep)."""
    from ..results import load_sweep
    p = shipped_bench(name)
    if p is None:
        return None
    try:
        return load_sweep(p)
    except (OSError, ValueError):  # unreadable, or not a sweep: the notebook says it is missing
        return None


def source_words(source) -> str:
    """Where a result was read from, in a student's words: the file name of a result shipped with
    cmkd_lab, or the path of the user's own run relative to the working directory (never an absolute
    path of somebody's machine)."""
    if not source:
        return "an unnamed source"
    p = Path(str(source))
    for base in shipped_dirs():
        try:
            if p.resolve().parent == base.resolve():
                return f"the results shipped with cmkd_lab (`{p.name}`)"
        except OSError:  # pragma: no cover - an unreadable path is named as it is
            continue
    try:
        return f"`{p.resolve().relative_to(Path.cwd().resolve())}`"
    except ValueError:
        return f"`{p.name}` (your own run)"


def missing_note(name: str, what: Optional[str] = None):
    """A one-line Markdown note for a shipped result that has not been made for this release."""
    text = (f"*{what or f'The result `{name}`'} has not been made for this release of cmkd_lab yet, so there is "
            "nothing to show here.*")
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover
        return text
    return Markdown(text)
