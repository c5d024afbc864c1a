"""One instrumented run, shared by every panel: task → teacher → student with
diagnostics, progress reported phase by phase, stoppable from another thread.

Progress goes to a *sink*: any callable ``sink(phase, done, total, text)``
with ``phase`` one of ``"teacher"``, ``"student"``, ``"figures"``,
``"done"``. :class:`TextProgress` prints text bars (tqdm); the panels pass a
sink that moves an ipywidgets progress bar.
"""
from __future__ import annotations

import threading
from typing import Callable, Optional, Sequence

from ..distill.callbacks import Callback

__all__ = ["RunSession", "TextProgress", "LiveCallback", "load_named_task", "make_sink", "PHASES"]

PHASES = ("teacher", "student", "figures", "done")


class TextProgress:
    """A progress sink printing one bar (tqdm: a widget in a notebook, text elsewhere) per phase, and,
    when the work is done, one plain line per phase — what it did and how long it took — so that a saved
    notebook, where the bars' widgets stay blank, still says what happened."""

    def __init__(self, *, summary: bool = True, label: str = ""):
        self._bars = {}
        self._info = {}
        self.summary, self.label = summary, label

    def __call__(self, phase: str, done: int, total: int, text: str = "") -> None:
        import time

        from tqdm.auto import tqdm

        if phase == "done":
            self.close()
            return
        bar = self._bars.get(phase)
        if bar is None:
            bar = self._bars[phase] = tqdm(total=max(1, total), desc=f"{self.label}: {phase}" if self.label else phase,
                                           leave=False)
            self._info[phase] = {"t0": time.perf_counter()}
        bar.total = max(1, total)
        bar.n = min(done, bar.total)
        info = self._info[phase]
        info.update(done=bar.n, total=bar.total, t1=time.perf_counter())
        if text:
            info["text"] = text
            bar.set_postfix_str(text, refresh=False)
        bar.refresh()

    def lines(self) -> list:
        """One line per phase seen so far: ``phase: done/total, last message (seconds)``."""
        out = []
        for phase, i in self._info.items():
            secs = i.get("t1", i["t0"]) - i["t0"]
            msg = f" — {i['text']}" if i.get("text") else ""
            who = f"[{self.label}] " if self.label else ""
            out.append(f"{who}{phase}: {i.get('done', 0)}/{i.get('total', 1)}{msg} ({secs:.0f} s)")
        return out

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        if self.summary and self._info:
            print("\n".join(self.lines()), flush=True)
        self._info.clear()


def make_sink(progress, label: str = ""):
    """A progress sink from a user's ``progress`` argument.

    ``True`` (or ``"text"``): :class:`TextProgress` bars (ipywidgets bars in a
    notebook, text elsewhere), named ``label``; ``None``/``False``: none; a callable: itself.
    """
    if progress is True or progress == "text":
        return TextProgress(label=label)
    if progress is None or progress is False:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"progress must be None, True (bars) or a callable sink(phase, done, total, text); "
                    f"got progress={progress!r}")


class LiveCallback(Callback):
    """Reports steps and epochs to a sink and to ``on_epoch(history, initial)``.

    Put it *after* the DiagnosticsCallback so that the record it sees carries
    the epoch's diagnostics.
    """

    def __init__(self, sink: Optional[Callable] = None, on_epoch: Optional[Callable] = None,
                 diagnostics=None, every_steps: int = 1):
        self.sink, self.on_epoch, self.diag = sink, on_epoch, diagnostics
        self.every_steps = max(1, int(every_steps))
        self._steps_per_epoch = 1

    def on_train_begin(self, trainer):
        n = trainer.x_train.shape[0]
        self._steps_per_epoch = max(1, n // trainer.config.batch_size)
        self._report(trainer, trainer.epoch * self._steps_per_epoch, "")

    def _report(self, trainer, done: int, text: str):
        if self.sink is not None:
            self.sink("student", done, trainer.epochs * self._steps_per_epoch, text)

    def on_step_end(self, trainer, step, terms):
        if (step + 1) % self.every_steps == 0:
            self._report(trainer, trainer.epoch * self._steps_per_epoch + step + 1,
                         f"epoch {trainer.epoch + 1}/{trainer.epochs}")

    def on_epoch_end(self, trainer, record):
        acc = record.get("val_acc")
        text = f"epoch {trainer.epoch}/{trainer.epochs}" + (f", val acc {acc:.3f}" if acc is not None else "")
        self._report(trainer, trainer.epoch * self._steps_per_epoch, text)
        if self.on_epoch is not None:
            initial = (self.diag.diagnostics or {}).get("initial") if self.diag is not None else None
            self.on_epoch(list(trainer.history) + [record], initial)


def load_named_task(task, *, seed: int = 0, fast: bool = False):
    """A :class:`~cmkd_lab.data.CrossModalTask` as given, or a built-in task by name."""
    from ..data import CrossModalTask, available_tasks, load_task

    if isinstance(task, CrossModalTask):
        return task
    if not isinstance(task, str):
        raise TypeError(f"task must be a built-in task name ({', '.join(available_tasks())}) or a CrossModalTask; "
                        f"got {type(task).__name__}")
    return load_task(task, seed=seed, fast=fast)


class RunSession:
    """Train one student with diagnostics; :meth:`stop` is safe from any thread.

    Parameters
    ----------
    task : CrossModalTask
    method : str
    config : DistillConfig
    sink : callable, optional
        Progress sink ``sink(phase, done, total, text)``.
    on_epoch : callable, optional
        ``on_epoch(history, initial)`` after each diagnosed epoch (from the
        training thread).
    diagnostics : bool
        Attach :class:`cmkd_lab.diagnostics.DiagnosticsCallback`.
    n_ref, n_snapshot : int
        Reference-set and snapshot sizes of the diagnostics.
    snapshot_epochs : "auto", "all" or list of int
        Epochs whose student features are kept ("all": every epoch, so that
        any epoch can be shown in the feature overlay).
    permutations : int
        Permutations of the MMD test.
    initial : bool
        Also diagnose the untrained student (epoch 0).
    callbacks : sequence of Callback
        More callbacks, run after the diagnostics.
    """

    def __init__(self, task, method: str, config, *, sink: Optional[Callable] = None,
                 on_epoch: Optional[Callable] = None, diagnostics: bool = True, n_ref: int = 256,
                 n_snapshot: int = 200, snapshot_epochs="auto", permutations: int = 100, initial: bool = True,
                 callbacks: Sequence[Callback] = ()):
        from ..distill import get_method

        get_method(method)
        self.task, self.method, self.config = task, method, config.validate()
        self.sink, self.on_epoch = sink, on_epoch
        self.diagnostics, self.n_ref, self.n_snapshot = diagnostics, n_ref, n_snapshot
        self.snapshot_epochs, self.permutations, self.initial = snapshot_epochs, permutations, initial
        self.extra_callbacks = list(callbacks)
        self.trainer = None
        self.diag = None
        self._stop = threading.Event()

    # ----------------------------------------------------------------- control
    def stop(self) -> None:
        """Stop after the current step; what was recorded so far is kept."""
        self._stop.set()
        if self.trainer is not None:
            self.trainer.stop()

    # --------------------------------------------------------------------- run
    def _teacher(self, device):
        from ..distill.teacher import get_teacher

        def report(ep, total):
            if self.sink is not None:
                self.sink("teacher", ep, total, f"teacher epoch {ep}/{total}")

        task = self.task.with_student_fraction(self.config.student_fraction, self.config.seed)
        if self.sink is not None:
            self.sink("teacher", 0, self.config.teacher_epochs, "teacher (cached after the first run)")
        teacher = get_teacher(task, self.config, device, progress=report)
        if self.sink is not None:
            self.sink("teacher", self.config.teacher_epochs, self.config.teacher_epochs,
                      f"teacher ready, test acc {teacher[1].get('teacher_test_acc', float('nan')):.3f}")
        return teacher

    def run(self) -> dict:
        """Train (teacher from the cache when it exists) and return the result dict.

        A run stopped with :meth:`stop` returns ``status="interrupted"`` and
        every epoch recorded before the stop.
        """
        from ..distill import Trainer
        from ..distill.runtime import resolve_device

        device = resolve_device(self.config.device)
        teacher = self._teacher(device)
        callbacks = []
        if self.diagnostics:
            from ..diagnostics import DiagnosticsSettings
            from ..diagnostics.callback import with_diagnostics

            snaps = self.snapshot_epochs
            if snaps == "all":
                snaps = list(range(0, self.config.epochs + 1))
            callbacks = with_diagnostics(
                [], n_ref=self.n_ref, n_snapshot=self.n_snapshot, snapshot_epochs=snaps, seed=self.config.seed,
                initial=self.initial, settings=DiagnosticsSettings(n_permutations=self.permutations,
                                                                   class_permutations=max(10, self.permutations // 2)))
            self.diag = callbacks[0]
        callbacks.append(LiveCallback(self.sink, self.on_epoch, self.diag))
        callbacks += self.extra_callbacks
        self.trainer = Trainer(self.task, self.method, self.config, callbacks=callbacks, teacher=teacher)
        if self._stop.is_set():
            self.trainer.stop()
        result = self.trainer.fit()
        return result
