"""``bench``: every method × pairing × seed on one task — a sweep over the pairing axis, with the bench's
own folders and tables.

Each run is written to ``OUT/runs/<pairing>/<method>/seed<S>/result.json`` under the store's policy
(:mod:`.engine`: finished runs with the same identity are read back, interrupted ones resume, stale ones
run again, runs with other options are refused unless ``overwrite``). A method that never reads a teacher
sample (``ce``, ``la``) runs once: its unpaired run is also its run under the other pairings. Paired-only
methods under ``unpaired`` are skipped with the reason. Every cell gets the A/A control of ``ce`` (its
noise floor), and every method its paired difference with ``ce`` with the interval and the minimum
detectable effect. Teachers are shared per seed through the teacher cache.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .._validation import check_choice
from ..data.sampling import PAIRINGS
from ..results.summary import control_table, paired_summary
from ..results.tables import csv_text, format_bench_markdown
from ..store import claim, code_version, write_json, write_text
from .engine import check_methods, check_seeds, dedupe, plan, run_jobs

__all__ = ["run_bench", "summarize"]


def _mean_std(v: List[float]):
    v = [x for x in v if x is not None]
    if not v:
        return None, None
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def summarize(runs: List[dict]) -> List[dict]:
    """Mean ± std over seeds per (pairing, method); a run shared by two pairings (an alias) is counted once,
    under the pairing that ran it."""
    groups: Dict[tuple, List[dict]] = {}
    for r in runs:
        if not r.get("alias_of"):
            groups.setdefault((r["cell"], r["method"]), []).append(r)
    rows = []
    for (cell, method), rs in groups.items():
        mb, sb = _mean_std([r["student_test_acc"] for r in rs])
        ml, sl = _mean_std([r["student_test_acc_last"] for r in rs])
        mt, _ = _mean_std([r["teacher_test_acc"] for r in rs])
        vals = rs[0].get("values", {})
        rows.append({"pairing": vals.get("pairing", rs[0].get("pairing")),
                     "teacher_control": vals.get("teacher_control", "none"), "cell": cell,
                     "values": rs[0].get("values", {}), "method": method, "n_seeds": len(rs),
                     "test_acc_best_val_mean": mb, "test_acc_best_val_std": sb, "test_acc_last_mean": ml,
                     "test_acc_last_std": sl, "teacher_test_acc_mean": mt,
                     "wall_s_mean": statistics.fmean(r.get("wall_s") or 0.0 for r in rs)})
    return rows


def run_bench(task: str, methods: Sequence[str], pairings: Sequence[str], seeds: Sequence[int], out,
              config=None, *, fast: bool = False, task_kwargs: Optional[dict] = None,
              log: Callable[[str], None] = print, progress: bool = False, workers: int = 1, aa: bool = True,
              overwrite: bool = False, baseline: str = "ce", controls: Sequence[str] = ("none",)) -> dict:
    """Run the grid and write ``results.json``, ``results.csv``, ``results.md`` in ``out``.

    ``controls`` lists the teacher controls (``teacher_control``), an axis next to the pairings; ``aa``
    adds the A/A control of ``baseline`` (when the bench runs it and has two seeds or more);
    ``workers`` > 1 runs the jobs in a local process pool; ``progress`` is kept for the callers that
    pass it (the per-run bars of a serial bench).
    """
    from ..distill import DistillConfig
    out = Path(out)
    config = config or DistillConfig()
    seeds = check_seeds(seeds)
    for name, v in (("methods", methods), ("pairings", pairings)):
        if isinstance(v, str) or not len(v):
            raise ValueError(f"{name} must be a non-empty list; got {name}={v!r}")
    check_methods(methods, config)  # unknown names or options fail before any training
    for p in pairings:
        check_choice("pairing", p, PAIRINGS)
    from ..distill.teacher import TEACHER_CONTROLS
    if isinstance(controls, str) or not len(controls):
        raise ValueError(f"controls must be a non-empty list; got controls={controls!r}")
    for c in controls:
        check_choice("teacher_control", c, TEACHER_CONTROLS)
    if config.student_unlabelled and any(p != "unpaired" for p in pairings):
        raise ValueError(f"student_unlabelled=True runs only with pairing 'unpaired'; got pairings={list(pairings)!r}: "
                         "use --pairing unpaired")
    methods = list(dict.fromkeys(methods))
    aa = bool(aa and baseline in methods and len(seeds) > 1)
    controls = list(dict.fromkeys(controls))
    axes = ["pairing"] + (["teacher_control"] if controls != ["none"] else [])
    cells = []
    for p in pairings:
        for c in controls:
            values = {"pairing": p, **({"teacher_control": c} if len(axes) > 1 else {})}
            cells.append({"cell": ",".join(values.values()), "values": values,
                          "config": config.replace(pairing=p, teacher_control=c), "task_kwargs": dict(task_kwargs or {})})
    with claim(out, what="bench directory"):
        jobs, skipped, aliases = plan(task, methods, cells, seeds, out, fast=fast, baseline=baseline, aa=aa,
                                      diagnostics=True, early_epochs=0, threads=1 if workers != 1 else 0,
                                      dir_of=lambda c: "/".join(c["values"].values()))
        for j in jobs:
            j["progress"] = progress
        runs, failed, n_cached, how, wall, interrupted = run_jobs(
            jobs, aliases, workers=workers if workers else (os.cpu_count() or 1), overwrite=overwrite, log=log,
            what="bench")
        if interrupted:
            log("[bench] interrupted; run the same command again to continue")
        has_baseline = any(r["method"] == baseline for r in runs)
        for s in skipped + aliases:  # the bench's cells are its pairings (and controls)
            s.update(s["values"])
        res = {"task": task, "task_kwargs": dict(task_kwargs or {}), "methods": methods, "pairings": list(pairings),
               "controls": controls, "seeds": seeds, "fast": fast, "config": config.to_dict(), "baseline": baseline,
               "axes": axes,
               "summary": summarize(runs),
               "comparisons": paired_summary(runs, baseline=baseline) if has_baseline else [],
               "control_table": control_table(runs, baseline=baseline) if has_baseline and len(controls) > 1 else [],
               "skipped": dedupe(skipped), "aliases": dedupe(aliases), "failed": failed, "runs": runs,
               "bench_wall_s": wall, "executor": how, "n_cached": n_cached, "interrupted": interrupted,
               "code_version": code_version()}
        write_json(out / "results.json", res)
        write_text(out / "results.csv", csv_text(res["summary"], drop=("values",)))
        write_text(out / "results.md", format_bench_markdown(res))
    return res
