"""The grid of a sweep: axes, cell names and folders (pure functions, shared by the orchestrator that
runs a grid and by the readers and figures that show one)."""
from __future__ import annotations

import re
from typing import Dict, List

__all__ = ["grid_axes", "cell_id", "cell_dir"]


def grid_axes(grid: Dict[str, list]) -> List[tuple]:
    """The axes of ``grid``: (axis name, its keys, its values as tuples), validated.

    A linked axis (``"a:b"``) varies several keys together; each of its values is a list with one entry
    per key.
    """
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict of name -> list of values; got {type(grid).__name__}")
    axes, seen = [], set()
    for k, v in grid.items():
        keys = [x.strip() for x in str(k).split(":")]
        if not isinstance(v, (list, tuple)) or not v:
            raise ValueError(f"grid[{k!r}] must be a non-empty list of values; got {v!r}")
        if len(keys) > 1:
            bad = [x for x in v if not isinstance(x, (list, tuple)) or len(x) != len(keys)]
            if bad:
                raise ValueError(f"grid[{k!r}] links {len(keys)} keys: each value must be a list of {len(keys)}; "
                                 f"got {bad[0]!r}")
        vals = [tuple(x) if len(keys) > 1 else (x,) for x in v]
        if len(set(map(repr, vals))) != len(vals):
            raise ValueError(f"grid[{k!r}] repeats a value; got {list(v)!r}")
        for x in keys:
            if x in seen:
                raise ValueError(f"grid key {x!r} appears on two axes; vary it on one")
            seen.add(x)
        axes.append((str(k), keys, vals))
    return axes


def cell_id(values: dict) -> str:
    """The name of a grid cell: ``key=value`` pairs joined by commas (``"all"`` for an empty grid)."""
    if not values:
        return "all"
    return ",".join(f"{k}={v}" for k, v in values.items())


MAX_NAME = 120  # a folder name at most this long (file systems allow 255 bytes; the rest is the path's)


def cell_dir(cid: str) -> str:
    """A safe folder name for a cell, a method or a variant label: characters outside ``A-Za-z0-9_.=,+-``
    become ``_``, a name of dots only (``.``, ``..``) or empty gets a ``_`` in front, and a name longer than
    :data:`MAX_NAME` keeps its first characters and a hash of the whole (the same name always gives the same
    folder; two names that reduce to one folder are refused by the grid's plan)."""
    import hashlib
    safe = re.sub(r"[^A-Za-z0-9_.=,+-]", "_", str(cid))
    if not safe.strip("."):
        safe = "_" + safe
    if len(safe) > MAX_NAME:
        safe = f"{safe[:MAX_NAME - 17]}~{hashlib.sha256(str(cid).encode()).hexdigest()[:16]}"
    return safe
