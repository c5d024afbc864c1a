"""Readers of finished benches and sweeps (``results.json``, ``sweep.json``), for the figures, the
notebooks and the widgets — without importing the orchestrators that made them."""
from __future__ import annotations

import math
from pathlib import Path

from ..store import code_version, read_json

__all__ = ["load_sweep", "load_bench", "compact_sweep", "bench_records", "bench_comparisons", "bench_controls",
           "is_current_bench", "current_bench", "made_by_this_code", "provenance_note"]


# What each kind of result must hold, and the type of each (a file that has the names with other shapes —
# {"task": "x", "summary": 5} — is not that result either).
_SHAPES = {"sweep": ("sweep.json", "sweep result", {"cells": list, "grid": dict, "seeds": list}, "sweep.json"),
           "bench": ("results.json", "bench results", {"task": str, "summary": list, "seeds": list},
                     "bench results.json")}
_ROWS = {"sweep": "cells", "bench": "summary"}  # the list whose entries are rows (JSON objects)


def _load(src, kind: str) -> dict:
    """The one reader of a saved grid: the dict itself, its JSON file, or the folder that holds it; checked
    for the keys (and their types) of ``kind``; every error names the source and says what to do."""
    fname, what, shape, label = _SHAPES[kind]
    p = None
    if isinstance(src, dict):
        res = src
    else:
        if not isinstance(src, (str, Path)):
            raise TypeError(f"src must be a {what} dict, a {fname} file or its folder; got {type(src).__name__}")
        p = Path(src)
        p = p / fname if p.is_dir() else p
        if not p.is_file():
            other = next((f"; that folder holds a {o[1]} ({o[0]}): read it with load_{k}" for k, o in _SHAPES.items()
                          if k != kind and (p.parent / o[0]).is_file()), "")
            raise ValueError(f"src must be a {what} dict, a {fname} file or its folder; {str(p)!r} does not "
                             f"exist{other}")
        res = read_json(p, what=what)
    where = repr(str(p)) if p is not None else "the dict given"
    missing = [k for k in shape if k not in res]
    wrong = [f"{k!r} is a {type(res[k]).__name__}, not a {t.__name__}" for k, t in shape.items()
             if k in res and not isinstance(res[k], t)]
    rows = res.get(_ROWS[kind])
    if not wrong and isinstance(rows, list) and not all(isinstance(r, dict) for r in rows):
        wrong = [f"{_ROWS[kind]!r} holds {type(next(r for r in rows if not isinstance(r, dict))).__name__} entries, "
                 "not rows (objects)"]
    if missing or wrong:
        why = "; ".join(wrong) if wrong else f"no {'/'.join(map(repr, missing))}"
        raise ValueError(f"{where} is not a {label} ({why}); write one with `python -m cmkd_lab {kind} --out DIR`")
    if p is not None:
        res["source"] = str(p)
    return res


def load_sweep(src) -> dict:
    """A sweep result: the dict itself, a ``sweep.json`` path, or the sweep's output folder."""
    return _load(src, "sweep")


def load_bench(src) -> dict:
    """A bench result: the dict itself, a ``results.json`` path, or the bench's output folder."""
    return _load(src, "bench")


def _check_result(res) -> None:
    if not isinstance(res, dict):
        raise TypeError(f"res must be a bench or sweep result dict (from load_bench or load_sweep); got "
                        f"{type(res).__name__}: pass the loaded result, not its path")


def made_by_this_code(res: dict):
    """Whether a bench or sweep result was made by the code of this checkout: True when its recorded
    ``code_version`` (:func:`cmkd_lab.store.code_version`, written with every result) is this checkout's,
    False when it differs, None when the result records none (made before results carried it)."""
    _check_result(res)
    made = res.get("code_version")
    if not made:
        return None
    return made == code_version()


def provenance_note(res: dict) -> str:
    """One sentence for a reader of a saved result made by other code than this checkout's ("" when it is
    this code's): its numbers are what that code gave, not necessarily what this checkout gives."""
    same = made_by_this_code(res)
    if same:
        return ""
    src = res.get("source")
    src = f"`{Path(str(src)).name}`" if src else "this result"  # the file's name, never a path of this machine
    how = ("records no code version: it was made by an earlier version of cmkd_lab" if same is None else
           f"was made by another version of cmkd_lab (code version {res.get('code_version')}; this one is "
           f"{code_version()})")
    return (f"**{src} {how}** — its numbers are what that code gave, not necessarily what this version gives; "
            "re-make it (`bash scripts/make_results.sh` in the source repository) before comparing.")


def compact_sweep(res: dict, *, digits: int = 7) -> dict:
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
    out = r({k: v for k, v in res.items() if k != "source"})  # where it was read from is not part of it
    out["runs"] = [{k: v for k, v in x.items() if k != "early"} for x in out.get("runs", [])]
    return out


def is_current_bench(res: dict) -> bool:
    """Whether a bench result carries its own paired comparisons (``comparisons``: the format that also
    writes the noise floor and, for a bench over teacher controls, ``control_table``)."""
    return isinstance(res, dict) and isinstance(res.get("comparisons"), list) and bool(res["comparisons"])


def bench_records(res: dict, *, baseline: str = "ce") -> list:
    """A bench's runs as summary records (:func:`cmkd_lab.results.run_record` fields with ``cell`` and
    ``values``), also for a ``results.json`` of the older format, whose runs carry neither: there the
    cell is the run's pairing, and the baseline's run — which never reads a teacher sample, so it ran
    once — stands for it in every pairing (an alias, as the bench itself records it now)."""
    runs = [dict(r) for r in res.get("runs", []) if isinstance(r, dict)]
    for r in runs:
        if "cell" not in r:
            r["values"] = dict(r.get("values") or {"pairing": r.get("pairing")})
            r["cell"] = ",".join(str(v) for v in r["values"].values())
    cells = list(dict.fromkeys(r["cell"] for r in runs))
    own = {r["cell"] for r in runs if r.get("method") == baseline}
    base = [r for r in runs if r.get("method") == baseline and not r.get("alias_of")]
    out = list(runs)
    if base and not any(r.get("alias_of") for r in runs):
        src = base[0]["cell"]
        for cell in cells:
            if cell in own:
                continue
            values = next(r["values"] for r in runs if r["cell"] == cell)
            out += [dict(r, cell=cell, values=values, alias_of=src) for r in base if r["cell"] == src]
    return out


def bench_comparisons(res: dict, *, baseline: str = "ce") -> list:
    """The bench's paired comparisons with ``baseline`` (:func:`cmkd_lab.results.paired_summary` rows:
    ``delta_mean``, ``ci_low``/``ci_high``, ``mde``, ``seeds_for_target``, ``noise_baseline_std``,
    ``noise_aa_*`` …): the ones the bench wrote, or — for a ``results.json`` of the older format —
    computed here from its runs (:func:`bench_records`; no A/A control ran there, so no ``noise_aa_*``)."""
    from .summary import paired_summary
    if is_current_bench(res):
        return res["comparisons"]
    recs = bench_records(res, baseline=baseline)
    if not any(r.get("method") == baseline for r in recs):
        return []
    return paired_summary(recs, baseline=res.get("baseline", baseline))


def bench_controls(res: dict, *, baseline: str = "ce") -> list:
    """The teacher-control rows of a bench over ``teacher_control`` (:func:`cmkd_lab.results.control_table`):
    the bench's own ``control_table``, or computed from its runs when they vary ``teacher_control``;
    ``[]`` for a bench without controls."""
    from .summary import control_table
    if isinstance(res.get("control_table"), list) and res["control_table"]:
        return res["control_table"]
    recs = bench_records(res, baseline=baseline)
    if len({r.get("values", {}).get("teacher_control", "none") for r in recs}) < 2:
        return []
    return control_table(recs, baseline=res.get("baseline", baseline))


def current_bench(res: dict, *, baseline: str = "ce") -> dict:
    """A bench result in the current shape, whatever format it was written in: a copy with ``baseline``,
    ``axes``, ``comparisons`` (:func:`bench_comparisons`), ``control_table`` (:func:`bench_controls`) and
    cells named in ``skipped`` and ``summary``, so that :func:`cmkd_lab.results.format_bench_markdown`
    and the figures read an older ``results.json`` too; ``upgraded`` tells whether anything was computed
    here (an older file: no A/A control, so its noise floor is the baseline's spread alone)."""
    if is_current_bench(res):
        return dict(res, upgraded=False)
    out = dict(res, baseline=res.get("baseline", baseline), upgraded=True)
    out.setdefault("axes", ["pairing"])
    out["comparisons"] = bench_comparisons(res, baseline=out["baseline"])
    out["control_table"] = bench_controls(res, baseline=out["baseline"])
    out["skipped"] = [dict(s, cell=s.get("cell", s.get("pairing")),
                           values=s.get("values", {"pairing": s.get("pairing")})) for s in res.get("skipped", [])]
    out["summary"] = [dict(r, cell=r.get("cell", r.get("pairing")),
                           values=r.get("values", {"pairing": r.get("pairing")})) for r in res.get("summary", [])]
    return out
