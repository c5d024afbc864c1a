"""Running one (task, method, seed, pairing) and writing its results safely."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ._atomic import atomic_write_text

__all__ = ["write_json_atomic", "run_one", "ResultExistsError"]


class ResultExistsError(ValueError):
    """The output directory already holds a result."""


def write_json_atomic(obj, path) -> None:
    """Write JSON to ``path`` via a temp file + rename (never a half-written file).

    The whole text is built first, so an object that cannot be serialised
    raises before anything on disk changes.
    """
    atomic_write_text(path, json.dumps(obj, indent=1, default=_jsonable))


def _jsonable(o):
    import numpy as np
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if type(o).__module__ == "torch" and hasattr(o, "tolist"):  # tensors, without importing torch
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def run_one(task, method: str, config, out: Optional[Path] = None, *, overwrite: bool = False, resume: bool = False,
            callbacks=(), progress: bool = False, report: bool = True, teacher=None,
            diagnostics: bool = True) -> dict:
    """Train one student and (if ``out``) write ``out/result.json`` and ``out/report.html``.

    Nothing in ``out`` is replaced silently: an existing ``result.json`` or
    the ``checkpoint.pt`` of an unfinished run is refused unless
    ``overwrite`` (start again; the old checkpoint is deleted) or ``resume``
    (continue from ``checkpoint.pt``, exactly: same history and weights as an
    uninterrupted run on the CPU). ``resume`` with no checkpoint and no result
    starts a new run (so a grid can always pass it); ``resume`` with a result
    but no checkpoint is refused unless ``overwrite`` is also given. A run
    stopped by Ctrl-C / SIGTERM / ``Trainer.stop`` writes a ``result.json``
    with ``status="interrupted"``; one that raises writes ``status="failed"``
    and its ``error`` before the exception propagates.
    ``diagnostics`` attaches a default ``cmkd_lab.diagnostics.DiagnosticsCallback``
    (every ``config.diagnostics_every`` epochs) unless ``callbacks`` already hold one.
    """
    from .distill import Trainer

    if diagnostics:
        from .diagnostics import DiagnosticsCallback
        if not any(isinstance(cb, DiagnosticsCallback) or isinstance(getattr(cb, "inner", None), DiagnosticsCallback)
                   for cb in callbacks):
            callbacks = [*callbacks, DiagnosticsCallback()]

    ckpt = None
    if out is not None:
        out = Path(out)
        res_path, ckpt = out / "result.json", out / "checkpoint.pt"
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out must be a directory; {str(out)!r} is a file: choose another --out")
        if res_path.exists() and not (overwrite or resume):
            raise ResultExistsError(
                f"{str(res_path)!r} already exists; pass --overwrite to replace it or --resume to continue, "
                "or choose another --out"
            )
        if ckpt.exists() and not (overwrite or resume):
            raise ResultExistsError(
                f"{str(out)!r} holds the checkpoint of an unfinished run ({ckpt.name}); pass --resume to continue "
                "it or --overwrite to start again, or choose another --out"
            )
        if resume and not overwrite and res_path.exists() and not ckpt.exists():
            raise ResultExistsError(
                f"cannot resume: {str(out)!r} holds a result.json but no {ckpt.name} to continue from; pass "
                "--overwrite to start the run again, or choose another --out"
            )
        out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(task, method, config, callbacks=callbacks, checkpoint=ckpt, progress=progress, teacher=teacher)
    from .distill.distributed import is_main_process
    writes = out is not None and is_main_process()  # under torchrun only rank 0 writes files
    if ckpt is not None and ckpt.exists():
        if resume:
            trainer.resume(ckpt)
        elif writes:  # overwrite: a stale checkpoint must not be mistaken for this run's later
            ckpt.unlink(missing_ok=True)
    import signal
    prev = None
    if out is not None:
        try:
            prev = signal.signal(signal.SIGTERM, lambda *_: trainer.stop())
        except ValueError:  # not the main thread
            prev = None
    try:
        result = trainer.fit()
    except Exception:
        if writes:  # an error must not lose the epochs already trained: write them, then re-raise
            write_json_atomic(trainer.result(), out / "result.json")
        raise
    finally:
        if prev is not None:
            signal.signal(signal.SIGTERM, prev)
    if writes:
        write_json_atomic(result, out / "result.json")
        if report:
            from .report import write_report
            try:
                write_report(result, out / "report.html")
            except Exception as e:  # a report failure must never lose the result
                import warnings
                warnings.warn(f"report.html could not be written ({type(e).__name__}: {e}); result.json is saved")
    return result
