"""``sweep``: a regime map — every grid cell × method × seed, with paired differences against a baseline
(``ce``), the noise floor of every cell (the A/A control) and early diagnostics as predictors.

Grid keys are decided by name: a :class:`~cmkd_lab.distill.DistillConfig` field (``student_fraction``,
``lambda_fa``, ``eps``, ``pairing`` …) changes the config, any other key is passed to the task loader
(``gap``, ``noise`` … of the synthetic generator). Runs go to ``OUT/runs/<cell>/<method>/seed<S>/``
through the one grid runner (:mod:`cmkd_lab.experiments.runner`), under the store's policy (:mod:`.worker`):
a finished run with the same identity is read back, an interrupted one resumes, a stale one (other code or data) runs
again, one with other options is refused; an interrupt writes what finished, marked ``interrupted``.
Teachers are trained once per distinct teacher, first, through the teacher cache (``$CMKD_LAB_CACHE``; on
a cluster point it at a shared folder).

Cells run in a local process pool (``workers``) or on Dask distributed (``scheduler="local"`` for a
LocalCluster on 127.0.0.1, ``"tcp://host:port"``, or a ``distributed.Client``); the numbers do not depend
on the executor.
"""
from __future__ import annotations

import itertools
from dataclasses import fields
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .._names import split_names
from .._validation import parse_value
from ..results.grid import cell_dir, cell_id, grid_axes
from ..results.summary import CEILING, paired_summary, predictor_table
from ..results.tables import csv_text, format_sweep_markdown
from .engine import (check_grid_args, check_method_name, Cell, check_methods, check_seeds, check_task_kwargs,
                     check_variants)
from .runner import Grid, check_workers, run_grid

__all__ = ["run_sweep", "parse_grid", "split_grid", "grid_cells"]


# ----------------------------------------------------------------- the grid
def parse_grid(items: Sequence[str]) -> Dict[str, list]:
    """``["student_fraction=0.02,0.2", "gap=0,2"]`` → ``{"student_fraction": [0.02, 0.2], "gap": [0, 2]}``.

    A linked axis varies several keys together: ``"student_fraction:epochs=0.02:60,1:15"`` →
    ``{"student_fraction:epochs": [[0.02, 60], [1, 15]]}`` (two cells, not four). Values are read as
    JSON where they parse (numbers, true/false), else kept as strings.
    """
    grid: Dict[str, list] = {}
    for item in items or []:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"--grid takes key=v1,v2,...; got {item!r}")
        k, raw = item.split("=", 1)
        k = k.strip()
        parts = split_names(raw)
        if not k or not parts:
            raise ValueError(f"--grid takes key=v1,v2,... with at least one value; got {item!r}")
        n = len(k.split(":"))
        vals = []
        for v in parts:
            sub = [parse_value(x) for x in v.split(":")] if n > 1 else [parse_value(v)]
            if len(sub) != n:
                raise ValueError(f"--grid {k} links {n} keys, so each value needs {n} parts joined by ':'; got {v!r}")
            vals.append(sub if n > 1 else sub[0])
        if k in grid:
            raise ValueError(f"--grid key {k!r} is given twice; put all its values in one --grid {k}=v1,v2")
        grid[k] = vals
    return grid


def split_grid(grid: Dict[str, list]):
    """(config keys, task keys): a key is a config key when DistillConfig has a field of that name."""
    from ..distill import DistillConfig
    from ..distill.methods.options import option_fields
    known = {f.name for f in fields(DistillConfig)} | set(option_fields())
    keys = [x for _, ks, _ in grid_axes(grid) for x in ks]
    for k in keys:
        if k == "seed":
            raise ValueError("grid must not vary 'seed'; every cell already runs every seed (use seeds=N)")
        if k == "extra":
            raise ValueError("grid cannot vary 'extra'; vary a method's option by its own name (e.g. c2kd_tau)")
    return [k for k in keys if k in known], [k for k in keys if k not in known]


def grid_cells(task: str, grid: Dict[str, list], config, task_kwargs: dict, *, fast: bool) -> List[Cell]:
    """The cells of ``grid``, each validated by building its config and loading its task once (seed 0);
    errors name the cell and the option."""
    from ..data import load_task, task_options
    cfg_keys, task_keys = split_grid(grid)
    accepted = task_options(task)
    unknown = [k for k in task_keys if accepted is not None and k not in accepted]
    if unknown:
        raise ValueError(f"grid key(s) {unknown} are neither DistillConfig options nor options of task {task!r} "
                         f"({', '.join(sorted(accepted)) or 'none'}); check the names")
    cells = []
    axes = grid_axes(grid)
    for combo in itertools.product(*[vals for _, _, vals in axes]):
        values = {k: v for (_, ks, _), vs in zip(axes, combo) for k, v in zip(ks, vs)}
        try:
            cfg = config.replace(**{k: values[k] for k in cfg_keys})
        except (ValueError, TypeError) as e:
            raise type(e)(f"grid cell {cell_id(values)}: {e}") from None
        tkw = {**task_kwargs, **{k: values[k] for k in task_keys}}
        if task_keys:
            try:
                load_task(task, seed=0, fast=fast, **tkw)
            except (ValueError, TypeError) as e:
                raise type(e)(f"grid cell {cell_id(values)}: task {task!r}: {e}") from None
        cells.append(Cell(cell_id(values), values, cfg, tkw, cell_dir(cell_id(values))))
    return cells


# ------------------------------------------------------------------- the sweep
def _validate(methods, baseline, seeds, diag_epoch, metric, workers, config, grid):
    from .._validation import check_choice, check_int
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ValueError("methods must name at least one method besides the baseline; got an empty list")
    check_method_name(baseline, what="baseline")
    check_methods(methods, config)
    check_variants(methods, axes=[k for _, ks, _ in grid_axes(grid) for k in ks])
    if baseline not in methods:
        methods = [baseline] + methods
    seeds = check_seeds(seeds)
    check_int("diag_epoch", diag_epoch, minimum=1)
    check_choice("metric", metric, ("student_test_acc", "student_test_acc_last"))
    return methods, seeds, check_workers(workers)


def run_sweep(task: str, methods: Sequence[str], grid: Dict[str, list], seeds: Sequence[int], out,
              config=None, *, baseline: str = "ce", fast: bool = False, task_kwargs: Optional[dict] = None,
              workers: Optional[int] = None, scheduler=None, diagnostics: bool = True, diag_epoch: int = 2,
              metric: str = "student_test_acc", threads: int = 1, aa: bool = True, overwrite: bool = False,
              ceiling: Optional[str] = CEILING, log: Callable[[str], None] = print) -> dict:
    """Run every grid cell × method × seed; write ``sweep.json``, ``cells.csv``, ``predictors.csv``, ``sweep.md``.

    Parameters
    ----------
    task : str
        A built-in task (``cmkd_lab.available_tasks()``).
    methods : sequence of str
        Methods to compare; ``baseline`` is added when missing.
    grid : dict of str -> list
        Values per key; cells are the Cartesian product in key order.
    seeds : sequence of int
        Every cell and method runs every seed (paired by seed).
    out : path
        Output folder (runs are kept there: a rerun reads them back or resumes them).
    config : DistillConfig, optional
        Options shared by every run (grid keys override them).
    baseline : str
        The method every other one is compared with, seed by seed.
    fast : bool
        The tasks' small subsets.
    task_kwargs : dict, optional
        Fixed task options (grid task keys override them).
    workers : int, optional
        Local processes (default ``os.cpu_count()``); 1 runs in this process.
    scheduler : None, "local", "tcp://host:port" or distributed.Client
        Run on Dask distributed instead of the local pool.
    diagnostics : bool
        Record the diagnostics of the first ``diag_epoch`` epochs of every run.
    diag_epoch : int
        The epoch at which early diagnostics are read as predictors.
    metric : str
        ``student_test_acc`` (at the best-validation epoch) or ``student_test_acc_last``.
    threads : int
        torch threads per job.
    aa : bool
        Add the A/A control (the baseline with another draw of its training noise) to every cell.
    overwrite : bool
        Run again the folders that hold runs made with other options (refused otherwise).
    ceiling : str or None
        The paired ceiling (``ceiling-kd``; ``ceiling-pl`` stands in when only it ran), added to every cell
        with unlabelled student data: the reference of each method's headroom recovered. None: not added.

    Returns
    -------
    dict
        The content of ``sweep.json``: ``cells`` (per cell × method: accuracy and the paired difference
        with its interval, wins/losses, MDE and verdict, and the cell's noise floor), ``predictors``
        (Spearman ρ of each early diagnostic against the final difference), ``points``, ``runs``,
        ``skipped``, ``aliases``, ``failed``, ``interrupted`` (True: an interrupt stopped the sweep and these
        are the runs that finished; run the same call again to complete them).
    """
    from .._validation import check_int
    out, config, fast = check_grid_args(out=out, config=config, fast=fast, log=log, ceiling=ceiling, task=task)
    task_kwargs = check_task_kwargs(task_kwargs)  # seed / fast here: refused before anything runs
    check_int("threads", threads, minimum=0)
    methods, seeds, workers = _validate(methods, baseline, seeds, diag_epoch, metric, workers, config, grid)
    base_kwargs = dict(task_kwargs or {})
    cells = grid_cells(task, grid, config, base_kwargs, fast=fast)
    cfg_keys, _ = split_grid(grid)
    diag = {"until": diag_epoch, "n_snapshot": 0, "initial": False} if diagnostics else None
    g = Grid("sweep", task, methods, cells, seeds, Path(out), fast=fast, baseline=baseline, aa=aa, ceiling=ceiling,
             diagnostics=diag, early_epochs=diag_epoch, threads=threads)
    log(f"[sweep] {task}: {len(cells)} cell(s) × {len(methods)} method(s){' + A/A' if aa else ''} × "
        f"{len(seeds)} seed(s)")

    def summarise(runs):
        points, predictors = predictor_table(runs, baseline=baseline, metric=metric, epoch=diag_epoch)
        return {"cells": paired_summary(runs, baseline=baseline, metric=metric, ceiling=ceiling),
                "predictors": predictors, "points": points}
    head = {"task": task, "methods": methods, "baseline": baseline, "grid": grid,
            "grid_kinds": {k: ("config" if k in cfg_keys else "task") for _, ks, _ in grid_axes(grid) for k in ks},
            "cells_order": [c.name for c in cells], "seeds": seeds, "fast": fast, "metric": metric,
            "diag_epoch": diag_epoch, "config": config.to_dict(), "task_kwargs": base_kwargs, "aa": aa}
    return run_grid(g, workers=workers, scheduler=scheduler, overwrite=overwrite, metric=metric, log=log,
                    head=head, summarise=summarise, json_name="sweep.json",
                    files={"cells.csv": lambda res: csv_text(res["cells"], drop=("values",)),
                           "predictors.csv": lambda res: csv_text(res["predictors"]),
                           "sweep.md": format_sweep_markdown})
