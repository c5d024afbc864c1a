"""The engine under ``bench`` and ``sweep``: plan the jobs of a grid, run what the store does not hold,
collect one record per run.

**Planning** (:func:`plan`): every cell × method × seed becomes a job, unless the rule of what can run
(:mod:`cmkd_lab.distill.rules`) says it cannot — it is then *skipped* with the reason — or it would give
the same run as an earlier job (a method that never reads a teacher sample gives one run under every
pairing) — it is then an *alias* of that job and runs once. With ``aa=True`` each cell also gets the
**A/A control**: the baseline trained again with another draw of its training randomness
(``replicate=1``), the noise floor of every comparison in the cell.

**The store's policy** (:func:`run_jobs`, one for bench and sweep): a job's folder holds ``job.json``,
its identity (task, task options, method, config, the data's fingerprint and
:func:`cmkd_lab.store.code_version`). A finished run with the same identity is read back; an interrupted
one resumes from its checkpoint; one made by other code or on other data is *stale* and runs again; one
made with other options is refused (another experiment's folder) unless ``overwrite``.
"""
from __future__ import annotations

import functools
import json
import re
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

from ..results.grid import cell_dir
from ..results.summary import aa_name, run_record
from ..store import code_version, compare_identity, read_json, write_json
from .executors import executor, sigterm_as_interrupt

__all__ = ["plan", "run_jobs", "parse_method", "check_methods", "check_seeds", "MAX_SEEDS"]

# More seeds than this is a typo (every seed is a training per method and cell), not a plan: refused before
# anything is allocated.
MAX_SEEDS = 1000


def check_seeds(seeds, *, flag: str = "seeds") -> list:
    """``seeds`` as a list of distinct ints: non-empty, at most :data:`MAX_SEEDS` of them (checked on its length
    before it is materialised, so ``range(10**9)`` is refused at once)."""
    from .._validation import check_int
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__"):
        raise ValueError(f"{flag} must be a list of seeds (ints); got {seeds!r}")
    if not len(seeds):
        raise ValueError(f"{flag} must hold at least one seed; got an empty list")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"{flag} must hold at most {MAX_SEEDS} seeds (each is a training per method and cell); "
                         f"got {len(seeds)}: use fewer seeds")
    out = list(dict.fromkeys(check_int(f"{flag}[i]", s) for s in seeds))
    return out


def parse_method(spec: str):
    """``"ucmkd-joint[la_teacher_grad=align;lambda_fa=0.1]"`` → (``"ucmkd-joint"``, its option overrides):
    a method variant, compared like any method (values read as JSON where they parse; the one key=value
    parser, :func:`cmkd_lab._validation.parse_assignments`).

    Raises
    ------
    ValueError
        A malformed spec, an option given twice, or an option of another method (the variant would never
        read it).
    """
    from .._validation import parse_assignments
    from ..distill.methods.options import option_owner
    m = re.fullmatch(r"\s*([A-Za-z0-9_-]+)\s*(?:\[(.*)\])?\s*", str(spec))
    if not m:
        raise ValueError(f"a method is a name, or name[option=value;...] for a variant; got {spec!r}")
    items = [x.strip() for x in (m.group(2) or "").split(";") if x.strip()]
    over = parse_assignments(items, what=f"method variant {spec!r}", form="key=value options separated by ';'")
    for k, v in over.items():
        owner = option_owner(k)
        if owner not in (None, m.group(1)):
            raise ValueError(f"method variant {spec!r}: {k}={v!r} is an option of method {owner!r}, which "
                             f"{m.group(1)!r} never reads: leave it out, or make it a variant of {owner!r}")
    return m.group(1), over


def check_methods(specs, config) -> None:
    """Every method (variant) names a registered method and valid option overrides."""
    from ..distill import get_method
    for spec in specs:
        name, over = parse_method(spec)
        get_method(name)
        if over:
            try:
                config.replace(**over)
            except (ValueError, TypeError) as e:
                raise type(e)(f"method variant {spec!r}: {e}") from None

_FINAL = ("completed", "diverged")  # a rerun would give the same answer


# ------------------------------------------------------------------ planning
def _task_facts(task_name, seed, fast, task_kwargs, cache: dict):
    """(task, full fingerprint, has_pairs), loading each (seed, options) once."""
    from ..data import load_task
    key = (seed, fast, json.dumps(task_kwargs, sort_keys=True))
    if key not in cache:
        try:
            t = load_task(task_name, seed=seed, fast=fast, **task_kwargs)
        except TypeError as e:
            raise ValueError(f"task {task_name!r} options {sorted(task_kwargs)}: {e}") from None
        cache[key] = (t, t.fingerprint(), t.has_pairs)
    return cache[key]


def _canonical(method: str, cfg) -> dict:
    """The config of the run ``method`` would really do: options it provably ignores set to their
    default (a method that never reads a teacher sample runs the same under every pairing)."""
    from ..distill.rules import same_as_unpaired, same_under_controls
    d = cfg.to_dict()
    if same_as_unpaired(method, cfg.pairing):
        d["pairing"] = "unpaired"
    if same_under_controls(method, cfg.teacher_control):
        d["teacher_control"] = "none"
    return d


def plan(task: str, methods: List[str], cells: List[dict], seeds: List[int], out: Path, *, fast: bool,
         baseline: str, aa: bool, diagnostics, early_epochs: int, threads: int, report: bool = False,
         dir_of: Optional[Callable[[dict], str]] = None) -> Tuple[List[dict], List[dict], List[dict]]:
    """(jobs, skipped, aliases) for ``cells`` (each ``{"cell", "values", "config", "task_kwargs"}``).

    ``diagnostics``: the diagnostics of each run — True (the default callback, every
    ``config.diagnostics_every`` epochs), a dict of its options, or None (none). ``dir_of(cell)``: the
    cell's folder under ``out/runs`` (default: the cell's name made safe).
    """
    from ..distill.methods.options import config_for
    from ..distill.rules import same_as_unpaired, same_under_controls, why_not
    from ..distill.teacher import teacher_key

    dir_of = dir_of or (lambda c: cell_dir(c["cell"]))
    variants = [(m, *parse_method(m), 0) for m in methods] + ([(aa_name(baseline), baseline, {}, 1)] if aa else [])
    facts: dict = {}
    jobs, skipped, aliases, first = [], [], [], {}
    for seed in seeds:
        for c in cells:
            t, fp, has_pairs = _task_facts(task, seed, fast, c["task_kwargs"], facts)
            base_cfg = c["config"].replace(seed=seed)
            tkey = teacher_key(t, base_cfg)
            for label, method, over, replicate in variants:
                cfg = base_cfg.replace(**over, **({"replicate": replicate} if replicate else {})) \
                    if (over or replicate) else base_cfg
                cfg = config_for(method, cfg)  # other methods' options: not this run's
                why = why_not(method, pairing=cfg.pairing, task_name=task, task_has_pairs=has_pairs,
                              student_unlabelled=cfg.student_unlabelled)
                if why is not None:
                    skipped.append({"cell": c["cell"], "values": c["values"], "method": label, "seed": seed,
                                    "reason": why[1]})
                    continue
                identity = {"task": task, "task_kwargs": c["task_kwargs"], "fast": fast, "method": method,
                            "config": _canonical(method, cfg), "data": fp, "code_version": code_version()}
                key = json.dumps({k: v for k, v in identity.items()}, sort_keys=True, default=str)
                job = {"task": task, "fast": fast, "task_kwargs": c["task_kwargs"], "method": method, "label": label,
                       "config": cfg.to_dict(), "cell": c["cell"], "values": c["values"], "seed": seed,
                       "identity": identity, "teacher_key": tkey, "diagnostics": diagnostics,
                       "early_epochs": early_epochs, "threads": threads, "report": report,
                       "dir": str(out / "runs" / dir_of(c) / (cell_dir(label) if not replicate else f"{method}-aa")
                                  / f"seed{seed}")}
                if key in first:
                    src = first[key]
                    why_same = (f"{method} never reads a teacher sample, so its run is identical to the unpaired one"
                                if same_as_unpaired(method, cfg.pairing) else
                                f"{method} never reads the teacher, so its run is the one with the real teacher"
                                if same_under_controls(method, cfg.teacher_control) else "the same run")
                    aliases.append({"cell": c["cell"], "values": c["values"], "method": label, "seed": seed,
                                    "same_as": src["cell"], "dir": src["dir"], "reason": why_same})
                    continue
                first[key] = job
                jobs.append(job)
    return jobs, skipped, aliases


# ------------------------------------------------------------------ the jobs
# One job at a time per process: the trainer seeds torch's global RNG and torch's thread count is per
# process, so two runs in threads of one process (a Dask worker with --nthreads > 1) would not reproduce.
# Threads of one worker therefore take turns; give workers one thread and use more workers.
_PROCESS_LOCK = threading.Lock()


def _one_at_a_time(fn):
    @functools.wraps(fn)
    def wrapper(job):
        with _PROCESS_LOCK:
            return fn(job)
    return wrapper


def _set_threads(n):
    import torch
    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    return prev


def _load(job):
    from ..data import load_task
    return load_task(job["task"], seed=job["seed"], fast=job["fast"], **job["task_kwargs"])


@_one_at_a_time
def teacher_job(job: dict) -> dict:
    """Train (or find in the cache) the teacher of ``job``; returns its info or ``{"error": ...}``."""
    import torch
    from ..distill import DistillConfig
    from ..distill.teacher import get_teacher
    prev = _set_threads(job["threads"])
    try:
        _, info = get_teacher(_load(job), DistillConfig.from_dict(job["config"]))
        return info
    except Exception as e:  # noqa: BLE001 - reported, the grid goes on
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        torch.set_num_threads(prev)


@_one_at_a_time
def run_job(job: dict) -> dict:
    """One (cell, method, seed) through :func:`~cmkd_lab.experiments.job.run_one`; its record, or
    ``{"error": ...}`` (one failing run does not stop the others; it is retried next time)."""
    import torch
    from ..distill import DistillConfig
    from .job import run_one
    prev = _set_threads(job["threads"])
    try:
        cfg = DistillConfig.from_dict(job["config"])
        out = Path(job["dir"])
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "job.json", job["identity"])
        r = run_one(_load(job), job["method"], cfg, out, overwrite=job.get("overwrite", False), resume=True,
                    report=job["report"], diagnostics=False if job["diagnostics"] is None else job["diagnostics"],
                    restart_stale=True,
                    progress=job.get("progress", False))
        return run_record(r, cell=job["cell"], values=job["values"], method=job["label"],
                          early_epochs=job["early_epochs"])
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        torch.set_num_threads(prev)


def _stored(job: dict) -> Tuple[str, Optional[dict], list]:
    """What the store holds for ``job``: ("absent" | "same" | "unfinished" | "stale" | "different", result, keys)."""
    d = Path(job["dir"])
    if not (d / "job.json").exists() and not (d / "result.json").exists():
        return "absent", None, []
    try:
        stored = read_json(d / "job.json", what="job identity")
    except (OSError, ValueError):
        stored = None
    if isinstance(stored, dict) and isinstance(stored.get("config"), dict):  # options added since: their defaults
        from ..distill import DistillConfig
        stored = dict(stored, config=DistillConfig.with_defaults(stored["config"]))
    state, keys = compare_identity(stored, json.loads(json.dumps(job["identity"], default=str)))
    if state != "same":
        return state, None, keys
    try:
        r = read_json(d / "result.json", what="run result")
    except (OSError, ValueError):
        return "unfinished", None, []
    return ("same" if r.get("status") in _FINAL else "unfinished"), r, []


def run_jobs(jobs: List[dict], aliases: List[dict], *, workers: int, scheduler=None, overwrite: bool = False,
             metric: str = "student_test_acc", log: Callable[[str], None] = print, what: str = "sweep"):
    """Run what the store does not hold; returns (records, failed, n_cached, executor description, wall s,
    interrupted). Ctrl-C / SIGTERM stops the runs in progress and saves them (rerun to resume):
    ``interrupted`` is then True and the records are those finished so far.

    Raises
    ------
    ValueError
        A job's folder holds a finished run made with other options (and not ``overwrite``).
    """
    records, todo, stale, conflicts = [], [], 0, []
    for j in jobs:
        state, r, keys = _stored(j)
        if state == "same":
            records.append(run_record(r, cell=j["cell"], values=j["values"], method=j["label"],
                                      early_epochs=j["early_epochs"]))
            continue
        if state == "different" and not overwrite:
            conflicts.append((j["dir"], keys))
            continue
        j = dict(j, overwrite=state in ("stale", "different"))
        stale += state == "stale"
        todo.append(j)
    if conflicts:
        d, keys = conflicts[0]
        raise ValueError(f"{len(conflicts)} run folder(s) under this --out hold runs made with other options "
                         f"(e.g. {d!r} differs in {keys}); choose another --out, or pass --overwrite to run them "
                         "again with the new options")
    n_cached = len(records)
    log(f"[{what}] {len(jobs)} runs: {n_cached} read from the store, {len(todo)} to run"
        + (f" ({stale} stale: made by other code or on other data)" if stale else ""))
    failed: List[dict] = []
    t0 = time.perf_counter()
    ex, how = executor(workers, scheduler, len(todo))
    interrupted = False
    prev_term = sigterm_as_interrupt()
    try:
        if todo:
            teachers = list({j["teacher_key"]: j for j in todo}.values())  # each distinct teacher once, first
            for j, r in ex.map_unordered(teacher_job, teachers):
                if "error" in r:
                    log(f"[{what}] teacher for seed {j['seed']} failed: {r['error']}")
            log(f"[{what}] {len(teachers)} teacher(s) ready ({time.perf_counter() - t0:.0f} s); running on {how}")
        for i, (j, r) in enumerate(ex.map_unordered(run_job, todo), 1):
            el = time.perf_counter() - t0
            if "error" in r:
                failed.append({"cell": j["cell"], "method": j["label"], "seed": j["seed"], "error": r["error"]})
                log(f"[{what}] {i}/{len(todo)} {j['cell']} {j['label']} seed {j['seed']} FAILED: {r['error']}")
                continue
            if r.get("status") == "interrupted":  # the run was asked to stop (SIGTERM / Ctrl-C): so is the grid
                raise KeyboardInterrupt
            records.append(r)
            acc = r.get(metric)
            log(f"[{what}] {i}/{len(todo)} {j['cell']} {j['label']} seed {j['seed']}: "
                f"{'—' if acc is None else f'{acc:.4f}'} ({r.get('wall_s') or 0:.0f} s; elapsed {el:.0f} s, "
                f"~{el / i * (len(todo) - i):.0f} s left)")
    except KeyboardInterrupt:
        interrupted = True
        log(f"[{what}] interrupted: stopping the runs in progress (they are saved; rerun to resume)")
    finally:
        ex.close(interrupted)
        if prev_term is not None:
            import signal
            signal.signal(signal.SIGTERM, prev_term)
    # Aliases: the same record under another cell.
    by = {(r["cell"], r["method"], r["seed"]): r for r in records}
    src_cell = {j["dir"]: j["cell"] for j in jobs}
    for a in aliases:
        r = by.get((src_cell.get(a["dir"], a["same_as"]), a["method"], a["seed"]))
        if r is not None:
            records.append(dict(r, cell=a["cell"], values=a["values"], alias_of=a["same_as"]))
    order = {(j["cell"], j["label"], j["seed"]): n for n, j in enumerate(jobs)}
    records.sort(key=lambda r: order.get((r["cell"], r["method"], r["seed"]), len(order)))
    return records, failed, n_cached, how, time.perf_counter() - t0, interrupted


def dedupe(items: List[dict], keys=("cell", "method")) -> List[dict]:
    """One entry per ``keys`` (the first), without its seed."""
    seen, out = set(), []
    for s in items:
        k = tuple(s.get(x) for x in keys)
        if k not in seen:
            seen.add(k)
            out.append({x: v for x, v in s.items() if x not in ("seed", "dir")})
    return out
