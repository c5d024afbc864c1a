"""Running one (task, method, seed, pairing) and writing its results safely."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional

__all__ = ["write_json_atomic", "run_one", "ResultExistsError"]


class ResultExistsError(ValueError):
    """The output directory already holds a result."""


def write_json_atomic(obj, path) -> None:
    """Write JSON to ``path`` via a temp file + rename (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(o):
    import numpy as np
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def run_one(task, method: str, config, out: Optional[Path] = None, *, overwrite: bool = False, resume: bool = False,
            callbacks=(), progress: bool = False, report: bool = True, teacher=None) -> dict:
    """Train one student and (if ``out``) write ``out/result.json`` and ``out/report.html``.

    An existing ``result.json`` is refused unless ``overwrite`` or ``resume``.
    With ``resume`` a checkpoint in ``out`` is continued; a run stopped by
    Ctrl-C / SIGTERM / ``Trainer.stop`` writes a result marked interrupted.
    """
    from .distill import Trainer

    ckpt = None
    if out is not None:
        out = Path(out)
        res_path = out / "result.json"
        if res_path.exists() and not (overwrite or resume):
            raise ResultExistsError(
                f"{str(res_path)!r} already exists; pass --overwrite to replace it or --resume to continue, "
                "or choose another --out"
            )
        out.mkdir(parents=True, exist_ok=True)
        ckpt = out / "checkpoint.pt"
    trainer = Trainer(task, method, config, callbacks=callbacks, checkpoint=ckpt, progress=progress, teacher=teacher)
    if resume and ckpt is not None and ckpt.exists():
        trainer.resume(ckpt)
    import signal
    prev = None
    if out is not None:
        try:
            prev = signal.signal(signal.SIGTERM, lambda *_: trainer.stop())
        except ValueError:  # not the main thread
            prev = None
    try:
        result = trainer.fit()
    finally:
        if prev is not None:
            signal.signal(signal.SIGTERM, prev)
    if out is not None:
        write_json_atomic(result, out / "result.json")
        if report:
            from .report import write_report
            try:
                write_report(result, out / "report.html")
            except Exception as e:  # a report failure must never lose the result
                import warnings
                warnings.warn(f"report.html could not be written ({type(e).__name__}: {e}); result.json is saved")
    return result
