"""One job: train one student and write its results safely (``python -m cmkd_lab run``)."""
from __future__ import annotations

import signal
import warnings
from pathlib import Path
from typing import Optional, Union

from ..store import check_out_dir, claim, write_json

__all__ = ["run_one", "distill", "ResultExistsError"]


class ResultExistsError(ValueError):
    """The output directory already holds a result."""


def _check_out(out: Path, *, overwrite: bool, resume: bool) -> None:
    res_path, ckpt = out / "result.json", out / "checkpoint.pt"
    if res_path.exists() and not (overwrite or resume):
        raise ResultExistsError(f"{str(res_path)!r} already exists; pass --overwrite to replace it or --resume to "
                                "continue, or choose another --out")
    if ckpt.exists() and not (overwrite or resume):
        raise ResultExistsError(f"{str(out)!r} holds the checkpoint of an unfinished run ({ckpt.name}); pass "
                                "--resume to continue it or --overwrite to start again, or choose another --out")
    if resume and not overwrite and res_path.exists() and not ckpt.exists():
        raise ResultExistsError(f"cannot resume: {str(out)!r} holds a result.json but no {ckpt.name} to continue "
                                "from; pass --overwrite to start the run again, or choose another --out")


def run_one(task, method: str, config, out: Optional[Path] = None, *, overwrite: bool = False, resume: bool = False,
            callbacks=(), progress: bool = False, report: bool = True, teacher=None,
            diagnostics: Union[bool, dict] = True, restart_stale: bool = False) -> dict:
    """Train one student and (if ``out``) write ``out/result.json`` and ``out/report.html``.

    Nothing in ``out`` is replaced silently: an existing ``result.json`` or the ``checkpoint.pt`` of an
    unfinished run is refused unless ``overwrite`` (start again; the old checkpoint is deleted) or
    ``resume`` (continue from ``checkpoint.pt``, exactly: same history and weights as an uninterrupted
    run on the CPU). ``resume`` with no checkpoint and no result starts a new run, with a warning that says
    so; ``resume`` with a result but no checkpoint is refused unless ``overwrite`` is also given. A
    checkpoint written by other code cannot continue exactly: it is refused, or with ``restart_stale``
    (bench, sweep) deleted and the run started again.

    ``out`` is held by this process for the whole job (:func:`cmkd_lab.store.claim`): a second process
    writing into the same directory is refused with a message naming this one. A run stopped by Ctrl-C /
    SIGTERM / ``Trainer.stop`` writes a ``result.json`` with ``status="interrupted"``; one that raises
    writes ``status="failed"`` and its ``error`` before the exception propagates. A SIGTERM that arrives
    while the report is being written lets the report finish (the result is already saved).

    ``diagnostics``: True attaches the default :class:`cmkd_lab.diagnostics.DiagnosticsCallback` (every
    ``config.diagnostics_every`` epochs), a dict its options, False none; callbacks that already hold one
    keep theirs.
    """
    if out is None:
        return _run(task, method, config, None, overwrite=overwrite, resume=resume, callbacks=callbacks,
                    progress=progress, report=report, teacher=teacher, diagnostics=diagnostics,
                    restart_stale=restart_stale)
    out = check_out_dir(out, what="--out")
    _check_out(out, overwrite=overwrite, resume=resume)
    if resume and not (out / "checkpoint.pt").exists() and not (out / "result.json").exists():
        warnings.warn(f"--resume: {str(out)!r} holds no run to continue (no checkpoint.pt, no result.json), so a new "
                      "run starts there; check --out if you meant to continue another run", stacklevel=2)
    from ..distill.distributed import is_main_process
    if not is_main_process():  # under torchrun only rank 0 writes, so only rank 0 holds the folder
        return _run(task, method, config, out, overwrite=overwrite, resume=resume, callbacks=callbacks,
                    progress=progress, report=report, teacher=teacher, diagnostics=diagnostics,
                    restart_stale=restart_stale)
    with claim(out, what="run directory"):
        _check_out(out, overwrite=overwrite, resume=resume)  # again, now that no one else can write here
        return _run(task, method, config, out, overwrite=overwrite, resume=resume, callbacks=callbacks,
                    progress=progress, report=report, teacher=teacher, diagnostics=diagnostics,
                    restart_stale=restart_stale)


def _run(task, method, config, out, *, overwrite, resume, callbacks, progress, report, teacher, diagnostics,
         restart_stale) -> dict:
    from ..distill import Trainer
    from ..distill.distributed import is_main_process
    from ..distill.trainer import StaleCheckpointError

    callbacks = _with_diagnostics(callbacks, diagnostics)
    ckpt = out / "checkpoint.pt" if out is not None else None
    trainer = Trainer(task, method, config, callbacks=callbacks, checkpoint=ckpt, progress=progress, teacher=teacher)
    writes = out is not None and is_main_process()  # under torchrun only rank 0 writes files
    if ckpt is not None and ckpt.exists():
        if resume:
            try:
                trainer.resume(ckpt)
            except StaleCheckpointError:
                if not restart_stale:
                    raise
                if writes:
                    ckpt.unlink(missing_ok=True)
                trainer = Trainer(task, method, config, callbacks=callbacks, checkpoint=ckpt, progress=progress,
                                  teacher=teacher)
        elif writes:  # overwrite: a stale checkpoint must not be mistaken for this run's later
            ckpt.unlink(missing_ok=True)
    prev, pending = None, []
    if out is not None:
        try:  # SIGTERM stops training after the current step; during the report it only waits for the end
            prev = signal.signal(signal.SIGTERM, lambda *_: (trainer.stop(), pending.append(1)))
        except ValueError:  # not the main thread
            prev = None
    try:
        try:
            result = trainer.fit()
        except Exception:
            if writes:  # an error must not lose the epochs already trained: write them, then re-raise
                write_json(out / "result.json", trainer.result())
            raise
        if writes:
            write_json(out / "result.json", result)
            if report:
                from ..report import write_report
                try:
                    write_report(result, out / "report.html")
                except Exception as e:  # a report failure must never lose the result
                    warnings.warn(f"report.html could not be written ({type(e).__name__}: {e}); result.json is saved")
    finally:
        if prev is not None:
            signal.signal(signal.SIGTERM, prev)
    return result


def _with_diagnostics(callbacks, diagnostics: Union[bool, dict]):
    """``callbacks`` with the default diagnostics attached (True, or a dict of their options), unless
    ``diagnostics`` is False or a callback already holds one."""
    if not diagnostics:
        return callbacks
    from ..diagnostics.callback import with_diagnostics
    return with_diagnostics(callbacks, **(diagnostics if isinstance(diagnostics, dict) else {}))


def distill(task, method: str = "ucmkd", config=None, *, diagnostics: Union[bool, dict] = True, callbacks=(),
            **kwargs) -> dict:
    """One-call API: ``distill(load_task("hapt"), "ucmkd", DistillConfig(epochs=10))`` → result dict.

    It runs what ``python -m cmkd_lab run`` runs, with the same defaults, without writing files: the
    diagnostics are recorded every ``config.diagnostics_every`` epochs (``diagnostics=False``, or
    ``diagnostics_every=0``, for none); ``kwargs`` go to :class:`~cmkd_lab.distill.Trainer` (``teacher``,
    ``checkpoint``, ``progress``).
    """
    from ..distill import Trainer
    _check_distill_arguments(method, callbacks, kwargs)
    if not isinstance(diagnostics, (bool, dict)):
        raise TypeError(f"diagnostics must be True, False or a dict of DiagnosticsCallback options; got "
                        f"diagnostics={diagnostics!r}")
    if not isinstance(kwargs.get("progress", False), bool):
        raise TypeError(f"progress must be true or false (a progress bar); got progress={kwargs['progress']!r}")
    if config is None:  # the task's own defaults, as the command line gives them
        from .engine import default_config
        config = default_config(task)
    return Trainer(task, method, config, callbacks=_with_diagnostics(callbacks, diagnostics), **kwargs).fit()


_TRAINER_KWARGS = ("teacher", "checkpoint", "progress")
_HOOKS = ("on_train_begin", "on_step_end", "on_epoch_end", "on_train_end")


def _check_distill_arguments(method, callbacks, kwargs) -> None:
    """What :func:`distill` adds to the Trainer's own checks, before anything is built: the method's name
    (with the closest one), the callbacks as the user gave them (before the diagnostics join them), the
    keyword arguments by name, and a checkpoint whose folder can be written (not after an epoch of training)."""
    import difflib
    from .engine import check_method_name
    if isinstance(method, str):
        check_method_name(method)
    if not isinstance(callbacks, (list, tuple)) or not all(any(hasattr(cb, h) for h in _HOOKS) for cb in callbacks):
        raise TypeError(f"callbacks must be a list of Callback objects, each with one of {', '.join(_HOOKS)} (wrap "
                        f"a single one in a list); got callbacks={callbacks!r}")
    unknown = [k for k in kwargs if k not in _TRAINER_KWARGS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], _TRAINER_KWARGS + ("diagnostics", "callbacks"), n=1)
        raise TypeError(f"distill() takes task, method, config, diagnostics, callbacks, {', '.join(_TRAINER_KWARGS)}; "
                        f"got {', '.join(map(repr, unknown))}" + (f" (did you mean {close[0]!r}?)" if close else "")
                        + "; options of the run go in the config: DistillConfig(...)")
    ckpt = kwargs.get("checkpoint")
    if isinstance(ckpt, (str, Path)) and str(ckpt).strip():
        p = Path(ckpt).expanduser()
        if p.is_dir():
            raise ValueError(f"checkpoint must be a file path; {str(p)!r} is a directory: pass e.g. "
                             f"{str(p / 'checkpoint.pt')!r}")
        check_out_dir(p.parent, what="checkpoint's folder")
