"""Readers of finished benches and sweeps (``results.json``, ``sweep.json``), for the figures, the
notebooks and the widgets — without importing the orchestrators that made them."""
from __future__ import annotations

import math
from pathlib import Path

from ..store import read_json

__all__ = ["load_sweep", "load_bench", "compact_sweep"]


def load_sweep(src) -> dict:
    """A sweep result: the dict itself, a ``sweep.json`` path, or the sweep's output folder."""
    if isinstance(src, dict):
        return src
    p = Path(src)
    p = p / "sweep.json" if p.is_dir() else p
    if not p.is_file():
        raise ValueError(f"src must be a sweep result dict, a sweep.json file or its folder; {str(p)!r} does not exist")
    res = read_json(p, what="sweep result")
    if "cells" not in res or "grid" not in res:
        raise ValueError(f"{str(p)!r} is not a sweep.json (no 'cells'/'grid'); write one with "
                         "`python -m cmkd_lab sweep --out DIR`")
    return res


def load_bench(src) -> dict:
    """A bench result: the dict itself, a ``results.json`` path, or the bench's output folder."""
    if isinstance(src, dict):
        return src
    p = Path(src)
    p = p / "results.json" if p.is_dir() else p
    res = read_json(p, what="bench results")
    if "summary" not in res or "task" not in res:
        raise ValueError(f"{str(p)!r} is not a bench results.json (no 'task'/'summary'); write one with "
                         "`python -m cmkd_lab bench --out DIR`")
    res["source"] = str(p)
    return res


def compact_sweep(res: dict, *, digits: int = 5) -> dict:
    """A smaller copy of a sweep result for sharing (docs, reports): floats rounded to ``digits``
    significant digits, the runs' early records dropped (the ``points`` keep the diagnostics);
    :func:`load_sweep` and the figures read it like the full result."""
    def r(v):
        if isinstance(v, float):
            return float(f"{v:.{digits}g}") if math.isfinite(v) else None
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        if isinstance(v, list):
            return [r(x) for x in v]
        return v
    out = r(res)
    out["runs"] = [{k: v for k, v in x.items() if k != "early"} for x in out.get("runs", [])]
    return out
