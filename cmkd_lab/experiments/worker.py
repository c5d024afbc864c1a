"""What a grid's worker does with one job, under the store's policy (one for bench and sweep).

A job's folder (``OUT/runs/<cell>/<method>/seed<S>/``) holds its ``result.json`` — which records the run's
own identity (task, method, config, code version) — and, once the run has succeeded, ``job.json``: the
grid's identity of the job (task options, the data's fingerprint …) bound to that very result by its hash.
Nothing of the job's identity is written before the worker holds the folder and the run has finished
(:func:`run_job`), so a folder never claims a run it does not hold.

:func:`stored` decides, before anything runs: a finished run whose own identity and bound ``job.json`` are
the job's is read back (``same``); an interrupted one of the same identity resumes from its checkpoint
(``unfinished``); one made by other code or on other data — or not known to be this grid's — runs again
(``stale``); one made with other options is another experiment's (``different``: refused unless
``overwrite``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ..results.summary import run_record
from ..store import claim, compare_identity, read_json, write_json
from .engine import _FINAL, Job, canonical

__all__ = ["stored", "Stored", "run_job", "teacher_job", "record_of"]

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


def _load(job: Job):
    from ..data import load_task
    return load_task(job.task, seed=job.seed, fast=job.fast, **job.task_kwargs)


def record_of(job: Job, result: dict) -> dict:
    """The summary record of ``job``'s result, carrying its cell, its label and its folder."""
    return run_record(result, cell=job.cell, values=job.values, method=job.label, early_epochs=job.early_epochs,
                      dir=job.rel)


@_one_at_a_time
def teacher_job(job: Job) -> dict:
    """Train (or find in the cache) the teacher of ``job``; returns its info or ``{"error": ...}``."""
    import torch
    from ..distill import DistillConfig
    from ..distill.teacher import get_teacher
    prev = _set_threads(job.threads)
    try:
        _, info = get_teacher(_load(job), DistillConfig.from_dict(job.config))
        return info
    except Exception as e:  # noqa: BLE001 - reported, the grid goes on
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        torch.set_num_threads(prev)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@_one_at_a_time
def run_job(job: Job) -> dict:
    """One (cell, method, seed) through :func:`~cmkd_lab.experiments.job.run_one`, in its folder held for
    the whole job; its record, or ``{"error": ...}`` (one failing run does not stop the others; it is
    retried next time). ``job.json`` is written only after the run has finished, bound to its result."""
    import torch
    from ..distill import DistillConfig
    from .job import run_one
    prev = _set_threads(job.threads)
    try:
        with claim(job.path, what="run directory"):
            (job.path / "job.json").unlink(missing_ok=True)  # whatever it said is about to be replaced
            r = run_one(_load(job), job.method, DistillConfig.from_dict(job.config), job.path,
                        overwrite=job.overwrite, resume=job.resume, report=job.report,
                        diagnostics=False if job.diagnostics is None else job.diagnostics, restart_stale=True,
                        progress=job.progress)
            if r.get("status") in _FINAL:
                write_json(job.path / "job.json", {**job.identity, "result_sha256": _sha256(job.path / "result.json")})
        return record_of(job, r)
    except Exception as e:  # noqa: BLE001
        return {"error": f"{type(e).__name__}: {e}"}
    finally:
        torch.set_num_threads(prev)


@dataclass
class Stored:
    """What a job's folder holds: ``state`` (absent | same | unfinished | stale | different), the result
    when it is read back, and the identity keys that differ."""
    state: str
    result: Optional[dict] = None
    keys: List[str] = field(default_factory=list)


def _own_identity(result: dict) -> Optional[dict]:
    """The identity a result records of itself (what its run really was), in the job's terms."""
    from ..distill import DistillConfig
    ident = result.get("identity")
    if not isinstance(ident, dict) or not isinstance(ident.get("config"), dict):
        return None
    try:
        cfg = DistillConfig.from_dict(DistillConfig.with_defaults(ident["config"]))
        conf = canonical(ident.get("method"), cfg)
    except (ValueError, TypeError):  # options this code no longer knows: made by other code
        return None
    return {"task": ident.get("task"), "method": ident.get("method"), "config": conf,
            "code_version": ident.get("code_version")}


def stored(job: Job) -> Stored:
    """What the store holds for ``job`` (see the module's docstring)."""
    d = job.path
    res_p, ckpt = d / "result.json", d / "checkpoint.pt"
    if not res_p.exists() and not ckpt.exists():
        return Stored("absent")
    try:
        r = read_json(res_p, what="run result")
    except (OSError, ValueError):
        return Stored("unfinished")  # only a checkpoint (a killed run): it checks its own identity on resume
    wanted = json.loads(json.dumps(job.identity, default=str))
    own = _own_identity(r)
    if own is None:
        return Stored("stale", keys=["identity"])
    state, keys = compare_identity(own, {k: wanted.get(k) for k in own})
    if state != "same":
        return Stored(state, keys=keys)
    if r.get("status") not in _FINAL:
        return Stored("unfinished")
    try:
        grid_id = read_json(d / "job.json", what="job identity")
    except (OSError, ValueError):
        grid_id = None
    if not isinstance(grid_id, dict) or grid_id.pop("result_sha256", None) != _sha256(res_p):
        return Stored("stale", keys=["job"])  # not shown to be this grid's run (made by `run`, or before)
    if isinstance(grid_id.get("config"), dict):  # options added since: their defaults
        from ..distill import DistillConfig
        grid_id["config"] = DistillConfig.with_defaults(grid_id["config"])
    state, keys = compare_identity(grid_id, wanted)
    return Stored(state, r if state == "same" else None, keys)
