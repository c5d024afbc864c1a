"""``bench``: every method × pairing × seed on one task — a grid over the pairing axis (and the teacher
controls), with the bench's own folders and tables.

Each run is written to ``OUT/runs/<pairing>[/<control>]/<method>/seed<S>/result.json`` by the one grid
runner (:mod:`cmkd_lab.experiments.runner`: finished runs with the same identity are read back, interrupted ones
resume, stale ones run again, runs with other options are refused unless ``overwrite``; an interrupt writes what
finished, marked ``interrupted``). A method that never reads a teacher sample (``ce``, ``la``) runs once:
its unpaired run is also its run under the other pairings. Paired-only methods under ``unpaired`` are
skipped with the reason. Every cell gets the A/A control of ``ce`` (its noise floor), a cell with
unlabelled student data the paired ceiling, and every method its paired difference with ``ce`` with the
interval, the minimum detectable effect and — where the ceiling ran — the headroom it recovers. Teachers
are shared per seed through the teacher cache.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

from .._validation import check_choice
from ..data.sampling import PAIRINGS
from ..results.grid import cell_dir
from ..results.summary import CEILING, accuracy_table, control_table, paired_summary
from ..results.tables import bench_csv, format_bench_markdown
from .engine import (Cell, check_grid_args, check_method_name, check_methods, check_seeds, check_task_kwargs,
                     check_variants)
from .runner import Grid, check_workers, run_grid

__all__ = ["run_bench"]


def _cells(pairings, controls, config, task_kwargs) -> list:
    """One cell per pairing (× teacher control when controls other than ``none`` are asked for)."""
    by_control = list(controls) != ["none"]
    cells = []
    for p in pairings:
        for c in controls:
            values = {"pairing": p, **({"teacher_control": c} if by_control else {})}
            cells.append(Cell(",".join(values.values()), values, config.replace(pairing=p, teacher_control=c),
                              dict(task_kwargs or {}), "/".join(cell_dir(v) for v in values.values())))
    return cells


def _validate(methods, pairings, controls, seeds, config):
    from ..distill.teacher import TEACHER_CONTROLS
    seeds = check_seeds(seeds)
    for name, v in (("methods", methods), ("pairings", pairings), ("controls", controls)):
        if isinstance(v, str) or not len(v):
            raise ValueError(f"{name} must be a non-empty list; got {name}={v!r}")
    check_methods(methods, config)  # unknown names or options fail before any training
    check_variants(methods, axes=("pairing", "teacher_control"))
    for p in pairings:
        check_choice("pairing", p, PAIRINGS)
    for c in controls:
        check_choice("teacher_control", c, TEACHER_CONTROLS)
    if config.student_unlabelled and any(p != "unpaired" for p in pairings):
        raise ValueError(f"student_unlabelled=True runs only with pairing 'unpaired'; got pairings={list(pairings)!r}: "
                         "use --pairing unpaired")
    return list(dict.fromkeys(methods)), seeds, list(dict.fromkeys(controls))


def run_bench(task: str, methods: Sequence[str], pairings: Sequence[str], seeds: Sequence[int], out,
              config=None, *, fast: bool = False, task_kwargs: Optional[dict] = None,
              log: Callable[[str], None] = print, progress: bool = False, workers: Optional[int] = 1,
              aa: bool = True, overwrite: bool = False, baseline: str = "ce", controls: Sequence[str] = ("none",),
              ceiling: Optional[str] = CEILING) -> dict:
    """Run the grid and write ``results.json``, ``results.csv``, ``results.md`` in ``out``.

    ``controls`` lists the teacher controls (``teacher_control``), an axis next to the pairings; ``aa``
    adds the A/A control of ``baseline`` (when the bench runs it and has two seeds or more); ``ceiling``
    the paired ceiling to cells with unlabelled student data (None: none), against which the headroom
    recovered is measured; ``workers`` local processes (None: one per core; > 1 a process pool);
    ``progress`` the per-run bars of a serial bench. An interrupt (Ctrl-C, SIGTERM) writes the finished
    runs' tables with ``interrupted`` True and returns them; run the same call again to complete them.
    """
    out, config, fast = check_grid_args(out=out, config=config, fast=fast, log=log, ceiling=ceiling, task=task)
    task_kwargs = check_task_kwargs(task_kwargs)  # seed / fast here: refused before anything runs
    check_method_name(baseline, what="baseline")  # a typo is named before anything runs, not a bench without Δ
    methods, seeds, controls = _validate(methods, pairings, controls, seeds, config)
    pairings = list(dict.fromkeys(pairings))  # a pairing given twice is one cell
    workers = check_workers(workers)
    cells = _cells(pairings, controls, config, task_kwargs)
    aa = bool(aa and baseline in methods and len(seeds) > 1)
    axes = list(cells[0].values)
    g = Grid("bench", task, methods, cells, seeds, Path(out), fast=fast, baseline=baseline, aa=aa, ceiling=ceiling,
             diagnostics=True, early_epochs=0, threads=1 if workers != 1 else 0, progress=progress)

    def summarise(runs):
        has_baseline = any(r["method"] == baseline for r in runs)
        return {"summary": accuracy_table(runs),
                "comparisons": paired_summary(runs, baseline=baseline, ceiling=ceiling) if has_baseline else [],
                "control_table": control_table(runs, baseline=baseline) if has_baseline and len(controls) > 1 else []}
    head = {"task": task, "task_kwargs": dict(task_kwargs or {}), "methods": methods, "pairings": list(pairings),
            "controls": controls, "seeds": seeds, "fast": fast, "config": config.to_dict(), "baseline": baseline,
            "axes": axes}
    return run_grid(g, workers=workers, overwrite=overwrite, log=log, head=head, summarise=summarise,
                    json_name="results.json", files={"results.csv": bench_csv, "results.md": format_bench_markdown})
