"""The one grid runner under ``bench`` and ``sweep``: claim → plan → run → summarise → write.

``bench`` and ``sweep`` build their cells (:class:`~.engine.Cell`) and choose their tables; everything else
is done once, here, the same way:

* the output folder is held for the whole grid (:func:`cmkd_lab.store.claim`);
* the plan (:func:`~.engine.plan`) is checked before anything trains: a baseline that cannot run in a
  cell is refused with the rule's reason, as are runs that would share a folder;
* what the store holds is read back, resumed, run again or refused (:mod:`.worker`); teachers are trained
  once per distinct teacher, first; the runs go to the executor (serial, process pool or Dask);
* **one interrupt behaviour**: Ctrl-C or SIGTERM stops the runs in progress (each saves a resumable
  checkpoint), and the grid still writes what finished — marked ``"interrupted": true``, with the tables
  saying they are partial — and returns; the CLI then exits with 130 and says to rerun the same command,
  which reads the finished runs back and resumes the others. A partial grid is never presented as complete,
  and nothing that finished is lost.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..store import claim, code_version, write_json, write_text
from .engine import Cell, Job, Plan, dedupe, plan
from .executors import executor, sigterm_as_interrupt
from .worker import record_of, run_job, stored, teacher_job

__all__ = ["Grid", "Ran", "run_grid", "run_jobs", "check_workers"]


@dataclass
class Grid:
    """What a bench or a sweep asks the runner for (the cells are built by them)."""
    what: str                     # "bench" | "sweep": the name in logs and of the ``<what>_wall_s`` key
    task: str
    methods: List[str]
    cells: List[Cell]
    seeds: List[int]
    out: Path
    fast: bool = False
    baseline: str = "ce"
    aa: bool = True
    ceiling: Optional[str] = None
    diagnostics: object = True
    early_epochs: int = 0
    threads: int = 0
    report: bool = False
    progress: bool = False


@dataclass
class Ran:
    """What running a plan gave: one record per run (finished or read back, aliases included), the failed
    runs with their errors, how many were read from the store, where they ran, the wall time, and whether
    the grid was interrupted (then the records are those finished so far)."""
    records: List[dict] = field(default_factory=list)
    failed: List[dict] = field(default_factory=list)
    n_cached: int = 0
    executor: str = "serial"
    wall_s: float = 0.0
    interrupted: bool = False


def check_workers(workers) -> int:
    """``workers`` local processes: None → one per core; otherwise an int ≥ 1, by the rule the command line
    checks too (:func:`cmkd_lab._validation.check_workers`, one message for both)."""
    from .._validation import check_workers as rule
    workers = rule(workers)
    return (os.cpu_count() or 1) if workers is None else workers


def _triage(jobs: List[Job], *, overwrite: bool):
    """(records read back, jobs to run, number stale), refusing folders that hold other options' runs."""
    records, todo, stale, conflicts = [], [], 0, []
    for j in jobs:
        s = stored(j)
        if s.state == "same":
            records.append(record_of(j, s.result))
            continue
        if s.state == "different" and not overwrite:
            conflicts.append((str(j.path), s.keys))
            continue
        has_ckpt = (j.path / "checkpoint.pt").exists()
        j.resume = s.state == "unfinished" and has_ckpt  # continue exactly where it stopped
        j.overwrite = s.state in ("stale", "different") or (s.state == "unfinished" and not has_ckpt)
        stale += s.state == "stale"
        todo.append(j)
    if conflicts:
        d, keys = conflicts[0]
        raise ValueError(f"{len(conflicts)} run folder(s) under this --out hold runs made with other options "
                         f"(e.g. {d!r} differs in {keys}); choose another --out, or pass --overwrite to run them "
                         "again with the new options")
    return records, todo, stale


def run_jobs(p: Plan, *, workers: int, scheduler=None, overwrite: bool = False, metric: str = "student_test_acc",
             log: Callable[[str], None] = print, what: str = "sweep") -> Ran:
    """Run what the store does not hold (see the module's docstring for an interrupt)."""
    records, todo, stale = _triage(p.jobs, overwrite=overwrite)
    ran = Ran(records=records, n_cached=len(records))
    log(f"[{what}] {len(p.jobs)} runs: {ran.n_cached} read from the store, {len(todo)} to run"
        + (f" ({stale} stale: made by other code or on other data)" if stale else ""))
    t0 = time.perf_counter()
    ex, ran.executor = executor(workers, scheduler, len(todo))
    prev_term = sigterm_as_interrupt()
    try:
        if todo:
            teachers = list({j.teacher_key: j for j in todo}.values())  # each distinct teacher once, first
            for j, r in ex.map_unordered(teacher_job, teachers):
                if "error" in r:
                    log(f"[{what}] teacher for seed {j.seed} failed: {r['error']}")
            log(f"[{what}] {len(teachers)} teacher(s) ready ({time.perf_counter() - t0:.0f} s); running on "
                f"{ran.executor}")
        for i, (j, r) in enumerate(ex.map_unordered(run_job, todo), 1):
            el = time.perf_counter() - t0
            if "error" in r:
                ran.failed.append({"cell": j.cell, "method": j.label, "seed": j.seed, "error": r["error"]})
                log(f"[{what}] {i}/{len(todo)} {j.cell} {j.label} seed {j.seed} FAILED: {r['error']}")
                continue
            if r.get("status") == "interrupted":  # the run was asked to stop (SIGTERM / Ctrl-C): so is the grid
                raise KeyboardInterrupt
            ran.records.append(r)
            acc = r.get(metric)
            log(f"[{what}] {i}/{len(todo)} {j.cell} {j.label} seed {j.seed}: "
                f"{'—' if acc is None else f'{acc:.4f}'} ({r.get('wall_s') or 0:.0f} s; elapsed {el:.0f} s, "
                f"~{el / i * (len(todo) - i):.0f} s left)")
    except KeyboardInterrupt:
        ran.interrupted = True
        log(f"[{what}] interrupted: stopping the runs in progress (they are saved; rerun to resume)")
    finally:
        ex.close(ran.interrupted)
        if prev_term is not None:
            import signal
            signal.signal(signal.SIGTERM, prev_term)
    by = {(r["cell"], r["method"], r["seed"]): r for r in ran.records}
    src_cell = {j.rel: j.cell for j in p.jobs}
    for a in p.aliases:  # the same record under another cell
        r = by.get((src_cell.get(a.rel, a.same_as), a.method, a.seed))
        if r is not None:
            ran.records.append(dict(r, cell=a.cell, values=a.values, alias_of=a.same_as))
    order = {(j.cell, j.label, j.seed): n for n, j in enumerate(p.jobs)}
    ran.records.sort(key=lambda r: order.get((r["cell"], r["method"], r["seed"]), len(order)))
    ran.wall_s = time.perf_counter() - t0
    return ran


def _entries(items) -> List[dict]:
    """The ``skipped`` or ``aliases`` of a result: one per (cell, method), with its cell's axis values."""
    return [{**e, **{k: v for k, v in e["values"].items() if k not in e}} for e in dedupe(items)]


def _check_baseline(p: Plan, baseline: str) -> None:
    """A baseline the rule refuses in some cell would leave every Δ of that cell empty: refused up front."""
    s = next((s for s in p.skipped if s.method == baseline), None)
    if s is not None:
        raise ValueError(f"baseline {baseline!r} cannot run in cell {s.cell}: {s.reason}; every comparison there "
                         "needs it — choose another baseline (--baseline ce)")


def run_grid(g: Grid, *, workers: int, scheduler=None, overwrite: bool = False, metric: str = "student_test_acc",
             log: Callable[[str], None] = print, head: dict, summarise: Callable[[List[dict]], dict],
             json_name: str, files: Dict[str, Callable[[dict], str]]) -> dict:
    """Claim ``g.out``, plan, run, summarise and write; returns the result (the content of ``json_name``).

    ``head``: the fields that describe the grid (task, methods, seeds …), first in the result;
    ``summarise(records)``: the grid's own summary fields; ``files``: file name → the text of that file
    made from the complete result (its tables).
    """
    with claim(g.out, what=f"{g.what} directory"):
        p = plan(g.task, g.methods, g.cells, g.seeds, g.out, fast=g.fast, baseline=g.baseline, aa=g.aa,
                 diagnostics=g.diagnostics, early_epochs=g.early_epochs, threads=g.threads, report=g.report,
                 progress=g.progress, ceiling=g.ceiling)
        _check_baseline(p, g.baseline)
        ran = run_jobs(p, workers=workers, scheduler=scheduler, overwrite=overwrite, metric=metric, log=log,
                       what=g.what)
        if ran.interrupted:
            log(f"[{g.what}] interrupted: the tables hold the {len(ran.records)} finished run(s) of "
                f"{len(p.jobs) + len(p.aliases)}; run the same command again to complete them")
        res = {**head, **summarise(ran.records), "ceiling": g.ceiling, "skipped": _entries(p.skipped),
               "aliases": _entries(p.aliases), "failed": ran.failed, "runs": ran.records,
               f"{g.what}_wall_s": ran.wall_s, "executor": ran.executor, "n_cached": ran.n_cached,
               "n_planned": len(p.jobs) + len(p.aliases), "interrupted": ran.interrupted,
               "code_version": code_version()}
        write_json(g.out / json_name, res)
        for name, render in files.items():
            write_text(g.out / name, render(res))
    return res
