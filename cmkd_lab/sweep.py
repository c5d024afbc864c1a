"""``sweep``: a regime map — every grid cell × method × seed, with paired
differences against a baseline (``ce``) and early diagnostics as predictors.

Grid keys are decided by name: a :class:`~cmkd_lab.distill.DistillConfig`
field (``student_fraction``, ``lambda_fa``, ``eps`` …) changes the config, any
other key is passed to the task loader (``gap``, ``noise`` … of the synthetic
generator). Runs go to ``OUT/runs/<cell>/<method>/seed<S>/`` through
:func:`cmkd_lab.runs.run_one`; a completed run whose options are unchanged is
read back, not repeated, and an interrupted one resumes from its checkpoint.

Teachers depend only on the teacher side of a task: cells whose teacher data
and teacher recipe agree share one teacher per seed (trained once, first,
through the teacher cache; the cache lives in ``$CMKD_LAB_CACHE``, so on a
cluster point it at a shared folder or each machine trains its own).

The cache key of a run is its task, task options, method and config; the
diagnostics do not change training, so a cached run keeps the diagnostics it
was run with.

Cells run in a local process pool (``workers``, default ``os.cpu_count()``)
or on Dask distributed (``scheduler="local"`` for a LocalCluster on
127.0.0.1, ``"tcp://host:port"`` for a running scheduler, or a
``distributed.Client``). Each job sets torch to one thread, and a process runs
one job at a time (the trainer seeds torch's global RNG): start Dask workers
with ``--nthreads 1`` and as many workers as cores. Results do not depend on
the executor: the same seed gives the same numbers serially, in the pool and
on Dask.
"""
from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ._atomic import atomic_write_text
from .bench import _slim
from .runs import write_json_atomic
from .sweep_stats import format_sweep_markdown, paired_summary, predictor_table

__all__ = ["run_sweep", "parse_grid", "grid_axes", "split_grid", "load_sweep", "compact_sweep",
           "diagnostics_available", "paired_summary", "predictor_table", "format_sweep_markdown"]

_TEACHER_RECIPE = ("feature_dim", "teacher_epochs", "teacher_lr", "batch_size")


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
        parts = [v.strip() for v in raw.split(",") if v.strip()]
        if not k or not parts:
            raise ValueError(f"--grid takes key=v1,v2,... with at least one value; got {item!r}")
        n = len(k.split(":"))
        vals = []
        for v in parts:
            sub = [_value(x.strip()) for x in v.split(":")] if n > 1 else [_value(v)]
            if len(sub) != n:
                raise ValueError(f"--grid {k} links {n} keys, so each value needs {n} parts joined by ':'; got {v!r}")
            vals.append(sub if n > 1 else sub[0])
        if k in grid:
            raise ValueError(f"--grid key {k!r} is given twice; put all its values in one --grid {k}=v1,v2")
        grid[k] = vals
    return grid


def _value(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def grid_axes(grid: Dict[str, list]) -> List[tuple]:
    """The axes of ``grid``: (axis name, its keys, its values as tuples), validated."""
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


def split_grid(grid: Dict[str, list]):
    """(config keys, task keys): a key is a config key when DistillConfig has a field of that name."""
    from .distill import DistillConfig
    known = {f.name for f in fields(DistillConfig)}
    keys = [x for _, ks, _ in grid_axes(grid) for x in ks]
    for k in keys:
        if k == "seed":
            raise ValueError("grid must not vary 'seed'; every cell already runs every seed (use seeds=N)")
        if k == "extra":
            raise ValueError("grid cannot vary 'extra'; vary its method-specific options through a config file")
    return [k for k in keys if k in known], [k for k in keys if k not in known]


def _cell_id(values: dict) -> str:
    if not values:
        return "all"
    return ",".join(f"{k}={v}" for k, v in values.items())


def _cell_dir(cid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=,+-]", "_", cid)


# ------------------------------------------------------------------ the jobs
def _teacher_fingerprint(task) -> str:
    """A hash of the teacher side only, with its encoder."""
    return task.fingerprint(sides=("teacher",)) + hashlib.sha256(repr(task.teacher_encoder).encode()).hexdigest()[:8]


def _load(job, kwargs_key):
    from .data import load_task
    return load_task(job["task"], seed=job["config"]["seed"], fast=job["fast"], **job[kwargs_key])


def _set_threads(n):
    import torch
    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    return prev


def _teacher_job(job: dict) -> dict:
    """Train (or find in the cache) the teacher of ``job``; returns its info."""
    import torch
    from .distill import DistillConfig
    from .distill.teacher import get_teacher
    prev = _set_threads(job["threads"])
    try:
        _, info = get_teacher(_load(job, "teacher_task_kwargs"), DistillConfig.from_dict(job["config"]))
        return info
    finally:
        torch.set_num_threads(prev)


class _UntilEpoch:
    """Forward a callback's ``on_epoch_end`` only up to epoch ``until`` (early diagnostics are cheap)."""

    def __init__(self, inner, until: int):
        self.inner, self.until = inner, until

    def on_train_begin(self, trainer):
        self.inner.on_train_begin(trainer)

    def on_step_end(self, trainer, step, terms):
        self.inner.on_step_end(trainer, step, terms)

    def on_epoch_end(self, trainer, record):
        if record["epoch"] <= self.until:
            self.inner.on_epoch_end(trainer, record)

    def on_train_end(self, trainer, result):
        self.inner.on_train_end(trainer, result)


def diagnostics_available() -> bool:
    try:
        from .diagnostics import DiagnosticsCallback  # noqa: F401
    except ImportError:
        return False
    return True


def _run_job(job: dict) -> dict:
    """One (cell, method, seed): train through ``run_one`` and return its slim record."""
    import torch
    from .distill import DistillConfig
    from .distill.teacher import get_teacher
    from .runs import run_one
    prev = _set_threads(job["threads"])
    try:
        cfg = DistillConfig.from_dict(job["config"])
        task = _load(job, "task_kwargs")
        tt = task if job["teacher_task_kwargs"] == job["task_kwargs"] else _load(job, "teacher_task_kwargs")
        teacher = get_teacher(tt, cfg)
        callbacks = []
        if job["diagnostics"] and diagnostics_available():
            from .diagnostics import DiagnosticsCallback
            try:  # no feature snapshots, no epoch-0 pass: only the scalars of the first epochs are read
                cb = DiagnosticsCallback(n_snapshot=0, initial=False)
            except TypeError:
                cb = DiagnosticsCallback()
            callbacks.append(_UntilEpoch(cb, job["diag_epoch"]))
        out = Path(job["dir"])
        write_json_atomic(_identity(job), out / "sweep_job.json")
        # The sweep's own diagnostics callback (first epochs only) replaces run_one's default (every epoch).
        import inspect
        no_default = {"diagnostics": False} if "diagnostics" in inspect.signature(run_one).parameters else {}
        r = run_one(task, job["method"], cfg, out, overwrite=True, resume=True, report=False, teacher=teacher,
                    callbacks=callbacks, **no_default)
        return _record(r, job)
    finally:
        torch.set_num_threads(prev)


# One job at a time per process: the trainer seeds torch's global RNG and torch's thread count is
# per process, so two runs in threads of one process (a Dask worker with --nthreads > 1) would not
# reproduce. Threads of one worker therefore take turns; give workers one thread and use more workers.
_PROCESS_LOCK = threading.Lock()


def _guarded(fn_name: str, job: dict) -> dict:
    """Run ``_teacher_job`` or ``_run_job``; an exception becomes ``{"error": ...}`` so one failing run
    does not stop the others (it is retried on the next sweep)."""
    with _PROCESS_LOCK:
        try:
            return {"_teacher_job": _teacher_job, "_run_job": _run_job}[fn_name](job)
        except Exception as e:  # noqa: BLE001 - reported per run, the sweep goes on
            return {"error": f"{type(e).__name__}: {e}"}


def _identity(job: dict) -> dict:
    return {k: job[k] for k in ("task", "fast", "task_kwargs", "method", "config")}


def _record(r: dict, job: dict) -> dict:
    """The slim run record plus its cell and its first ``diag_epoch`` history records (numbers only)."""
    rec = _slim(r)
    rec.update(cell=job["cell"], values=job["values"], epochs_done=r.get("epochs_done"),
               lambda_fa=job["config"].get("lambda_fa"))
    early = {}
    for h in r.get("history", [])[:job["diag_epoch"]]:
        early[str(h["epoch"])] = {k: float(v) for k, v in h.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    rec["early"] = early
    return rec


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _cached(job: dict) -> Optional[dict]:
    """The record of a finished run with the same options; None when it must run (an interrupted run with
    the same options resumes from its checkpoint; a run with other options is cleared first)."""
    d = Path(job["dir"])
    if not d.exists():
        return None
    stored = _read_json(d / "sweep_job.json")
    if isinstance(stored, dict) and isinstance(stored.get("config"), dict):  # options added since: their defaults
        from .distill import DistillConfig
        stored = dict(stored, config=DistillConfig.with_defaults(stored["config"]))
    if stored != json.loads(json.dumps(_identity(job))):
        for f in ("result.json", "checkpoint.pt", "sweep_job.json"):  # other options: cannot be resumed
            (d / f).unlink(missing_ok=True)
        return None
    r = _read_json(d / "result.json")
    if r is not None and r.get("status") in ("completed", "diverged"):
        return _record(r, job)
    return None


# ------------------------------------------------------------------ executors
class _Serial:
    def map_unordered(self, fn, jobs):
        for j in jobs:
            yield j, _guarded(fn, j)

    def close(self, interrupted: bool = False):
        pass


class _Pool:
    def __init__(self, workers):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        self.ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
        self.futs = {}

    def map_unordered(self, fn, jobs):
        from concurrent.futures import as_completed
        self.futs = {self.ex.submit(_guarded, fn, j): j for j in jobs}
        for f in as_completed(self.futs):
            yield self.futs[f], f.result()

    def close(self, interrupted: bool = False):
        if not interrupted:
            self.ex.shutdown(wait=True, cancel_futures=True)
            return
        # Cancel what has not started; SIGTERM the workers so that run_one stops each run after its
        # step and saves it (resumable); give them a minute, then make sure no worker is left.
        procs = list((getattr(self.ex, "_processes", None) or {}).values())
        for f in self.futs:
            f.cancel()
        running = [f for f in self.futs if f.running()]  # includes up to one queued job not yet started
        for p in procs:
            p.terminate()
        t_end = time.monotonic() + 60
        while sum(f.done() for f in running) < min(len(procs), len(running)) and time.monotonic() < t_end:
            time.sleep(0.2)
        for p in procs:
            if p.is_alive():
                p.kill()
        self.ex.shutdown(wait=False, cancel_futures=True)


class _Dask:
    def __init__(self, scheduler, workers):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as e:
            raise ImportError('Dask scheduling needs dask.distributed: pip install "cmkd_lab[cluster]" '
                              '(or pip install "dask[distributed]")') from e
        self.own = None
        if isinstance(scheduler, Client):
            self.client = scheduler
        elif scheduler == "local":
            self.own = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None)
            self.client = Client(self.own)
        elif isinstance(scheduler, str) and re.match(r"^(tcp|tls|inproc|ucx)://", scheduler):
            self.client = Client(scheduler)
        else:
            raise ValueError("scheduler must be None (local process pool), 'local' (a Dask LocalCluster), an "
                             f"address like 'tcp://host:8786', or a distributed.Client; got scheduler={scheduler!r}")

    def map_unordered(self, fn, jobs):
        from dask.distributed import as_completed
        futs = {self.client.submit(_guarded, fn, j, pure=False, key=f"cmkd-{fn}-{i}-{time.time_ns()}"): j
                for i, j in enumerate(jobs)}
        for f in as_completed(list(futs)):
            yield futs[f], f.result()

    def close(self, interrupted: bool = False):
        if self.own is not None:
            self.client.close()
            self.own.close()


def _sigterm_as_interrupt():
    """In the main thread, make SIGTERM raise KeyboardInterrupt (so workers are stopped cleanly);
    returns the previous handler, or None where signals cannot be set."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(*_):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def _executor(workers: int, scheduler, n_jobs: int):
    if scheduler is not None:
        return _Dask(scheduler, workers), "dask"
    if workers <= 1 or n_jobs <= 1:
        return _Serial(), "serial"
    return _Pool(min(workers, n_jobs)), f"process pool ({min(workers, n_jobs)} workers)"


# ------------------------------------------------------------------- the sweep
def run_sweep(task: str, methods: Sequence[str], grid: Dict[str, list], seeds: Sequence[int], out,
              config=None, *, baseline: str = "ce", fast: bool = False, task_kwargs: Optional[dict] = None,
              workers: Optional[int] = None, scheduler=None, diagnostics: bool = True, diag_epoch: int = 2,
              metric: str = "student_test_acc", threads: int = 1,
              log: Callable[[str], None] = print) -> dict:
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
        Output folder (runs are cached there: a rerun resumes).
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
        Attach ``cmkd_lab.diagnostics.DiagnosticsCallback`` for the first ``diag_epoch`` epochs.
    diag_epoch : int
        The epoch at which early diagnostics are read as predictors.
    metric : str
        ``student_test_acc`` (at the best-validation epoch) or ``student_test_acc_last``.
    threads : int
        torch threads per job.

    Returns
    -------
    dict
        The content of ``sweep.json``: ``cells`` (per cell × method: accuracy and the paired difference
        with its t-based 95 % interval, wins and losses), ``predictors`` (Spearman ρ of each early
        diagnostic against the final difference), ``points``, ``runs``, ``skipped``.
    """
    from .distill import DistillConfig, get_method
    from .data import load_task
    from ._validation import check_choice, check_int

    config = config or DistillConfig()
    if not isinstance(config, DistillConfig):
        raise TypeError(f"config must be a DistillConfig; got {type(config).__name__}")
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ValueError("methods must name at least one method besides the baseline; got an empty list")
    for m in methods + [baseline]:
        get_method(m)
    if baseline not in methods:
        methods = [baseline] + methods
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must hold at least one seed; got an empty list")
    for s in seeds:
        check_int("seeds[i]", s)
    check_int("diag_epoch", diag_epoch, minimum=1)
    check_choice("metric", metric, ("student_test_acc", "student_test_acc_last"))
    workers = (os.cpu_count() or 1) if workers is None else check_int("workers", workers, minimum=1)
    cfg_keys, task_keys = split_grid(grid)
    base_kwargs = dict(task_kwargs or {})
    out = Path(out)

    # Cells, validated by building their config and loading their task once (also fingerprints the teachers).
    cells = []
    axes = grid_axes(grid)
    for combo in itertools.product(*[vals for _, _, vals in axes]):
        values = {k: v for (_, ks, _), vs in zip(axes, combo) for k, v in zip(ks, vs)}
        try:
            cfg = config.replace(**{k: values[k] for k in cfg_keys})
        except (ValueError, TypeError) as e:
            raise type(e)(f"grid cell {_cell_id(values)}: {e}") from None
        cells.append({"cell": _cell_id(values), "values": values, "config": cfg,
                      "task_kwargs": {**base_kwargs, **{k: values[k] for k in task_keys}}})
    teacher_of: Dict[tuple, dict] = {}  # (seed, teacher fingerprint, recipe) -> canonical task kwargs
    jobs, skipped, runs, failed = [], [], [], []
    for seed in seeds:
        fps = {}
        for c in cells:
            key = json.dumps(c["task_kwargs"], sort_keys=True)
            if key not in fps:
                try:
                    t = load_task(task, seed=seed, fast=fast, **c["task_kwargs"])
                except (TypeError, ValueError) as e:
                    if isinstance(e, ValueError) and "has no option" not in str(e):
                        raise  # a known option with a bad value: the loader's own message
                    raise ValueError(
                        f"grid/task option(s) {task_keys or sorted(base_kwargs)} are neither DistillConfig options "
                        f"nor options task {task!r} accepts ({e}); check the names") from None
                fps[key] = (_teacher_fingerprint(t), t.has_pairs)
            fp, has_pairs = fps[key]
            cfg = c["config"].replace(seed=seed)
            recipe = (seed, fp) + tuple(getattr(cfg, k) for k in _TEACHER_RECIPE)
            teacher_kwargs = teacher_of.setdefault(recipe, c["task_kwargs"])
            for m in methods:
                if get_method(m).needs_pairs and cfg.pairing == "unpaired":
                    skipped.append({"cell": c["cell"], "method": m, "reason": f"{m} needs paired samples"})
                    continue
                if get_method(m).needs_unlabelled and not cfg.student_unlabelled:
                    skipped.append({"cell": c["cell"], "method": m,
                                    "reason": f"{m} needs unlabelled student data (student_unlabelled=True)"})
                    continue
                if cfg.pairing == "paired" and not has_pairs:
                    skipped.append({"cell": c["cell"], "method": m, "reason": f"task {task!r} has no pairs"})
                    continue
                jobs.append({"task": task, "fast": fast, "task_kwargs": c["task_kwargs"],
                             "teacher_task_kwargs": teacher_kwargs, "method": m, "config": cfg.to_dict(),
                             "cell": c["cell"], "values": c["values"], "diag_epoch": diag_epoch,
                             "diagnostics": diagnostics, "threads": threads,
                             "dir": str(out / "runs" / _cell_dir(c["cell"]) / m / f"seed{seed}")})
    todo = []
    for j in jobs:
        r = _cached(j)
        (runs.append(r) if r is not None else todo.append(j))
    if diagnostics and todo and not diagnostics_available():
        log("[sweep] cmkd_lab.diagnostics.DiagnosticsCallback is not available: predictors use the methods' "
            "own loss terms and the trainer's records only")
    log(f"[sweep] {task}: {len(cells)} cell(s) × {len(methods)} method(s) × {len(seeds)} seed(s) = {len(jobs)} "
        f"runs, {len(runs)} cached, {len(todo)} to run")

    t0 = time.perf_counter()
    ex, how = _executor(workers, scheduler, len(todo))
    interrupted = False
    prev_term = _sigterm_as_interrupt()
    try:
        if todo:
            tj = {}
            for j in todo:  # one teacher job per distinct teacher, before the students that share it
                tj.setdefault((j["config"]["seed"], json.dumps(j["teacher_task_kwargs"], sort_keys=True))
                              + tuple(j["config"][k] for k in _TEACHER_RECIPE), j)
            for j, r in ex.map_unordered("_teacher_job", list(tj.values())):
                if "error" in r:
                    log(f"[sweep] teacher for seed {j['config']['seed']} failed: {r['error']}")
            log(f"[sweep] {len(tj)} teacher(s) ready ({time.perf_counter() - t0:.0f} s); running on {how}")
        for i, (j, r) in enumerate(ex.map_unordered("_run_job", todo), 1):
            el = time.perf_counter() - t0
            if "error" in r:
                failed.append({"cell": j["cell"], "method": j["method"], "seed": j["config"]["seed"],
                               "error": r["error"]})
                log(f"[sweep] {i}/{len(todo)} {j['cell']} {j['method']} seed {j['config']['seed']} "
                    f"FAILED: {r['error']}")
                continue
            if r.get("status") == "interrupted":  # the run was asked to stop (SIGTERM / Ctrl-C): so is the sweep
                raise KeyboardInterrupt
            runs.append(r)
            acc = r.get(metric)
            log(f"[sweep] {i}/{len(todo)} {j['cell']} {j['method']} seed {j['config']['seed']}: "
                f"{'—' if acc is None else f'{acc:.4f}'} ({r.get('wall_s') or 0:.0f} s; elapsed {el:.0f} s, "
                f"~{el / i * (len(todo) - i):.0f} s left)")
    except KeyboardInterrupt:
        interrupted = True
        log("[sweep] interrupted: stopping the runs in progress (they are saved; rerun the sweep to resume)")
        raise
    finally:
        ex.close(interrupted)
        if prev_term is not None:
            import signal
            signal.signal(signal.SIGTERM, prev_term)

    order = {(j["cell"], j["method"], j["config"]["seed"]): n for n, j in enumerate(jobs)}
    runs.sort(key=lambda r: order[(r["cell"], r["method"], r["seed"])])
    summary = paired_summary(runs, baseline=baseline, metric=metric)
    points, predictors = predictor_table(runs, baseline=baseline, metric=metric, epoch=diag_epoch)
    res = {"task": task, "methods": methods, "baseline": baseline, "grid": grid,
           "grid_kinds": {k: ("config" if k in cfg_keys else "task") for _, ks, _ in axes for k in ks},
           "cells_order": [c["cell"] for c in cells], "seeds": seeds, "fast": fast, "metric": metric,
           "diag_epoch": diag_epoch, "config": config.to_dict(), "task_kwargs": base_kwargs,
           "executor": how, "sweep_wall_s": time.perf_counter() - t0, "n_cached": len(jobs) - len(todo),
           "cells": summary, "predictors": predictors, "points": points, "skipped": _dedupe(skipped),
           "failed": failed, "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(res, out / "sweep.json")
    _write_csv(summary, out / "cells.csv", drop=("values",))
    _write_csv(predictors, out / "predictors.csv")
    atomic_write_text(out / "sweep.md", format_sweep_markdown(res))
    return res


def _dedupe(skipped):
    seen, out = set(), []
    for s in skipped:
        if (s["cell"], s["method"]) not in seen:
            seen.add((s["cell"], s["method"]))
            out.append(s)
    return out


def _write_csv(rows, path, drop=()):
    f = io.StringIO(newline="")
    if rows:
        keys = [k for k in rows[0] if k not in drop]
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    atomic_write_text(Path(path), f.getvalue())


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


def load_sweep(src) -> dict:
    """A sweep result: the dict itself, a ``sweep.json`` path, or the sweep's output folder."""
    if isinstance(src, dict):
        return src
    p = Path(src)
    p = p / "sweep.json" if p.is_dir() else p
    if not p.is_file():
        raise ValueError(f"src must be a sweep result dict, a sweep.json file or its folder; {str(p)!r} does not exist")
    return json.loads(p.read_text())

