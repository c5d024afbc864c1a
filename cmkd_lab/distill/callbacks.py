"""The callback protocol of :class:`~cmkd_lab.distill.Trainer` (a module of its own, so that the
diagnostics and the widgets can subclass it without importing the trainer)."""
from __future__ import annotations

from typing import Dict

import torch

__all__ = ["Callback"]


class Callback:
    """Hooks; override what you need. ``record`` (one epoch's history entry) may be extended in place.

    What a callback adds to the run's result goes through :meth:`result_entries`, which the trainer reads
    every time it builds a result — also for a run that fails or is interrupted, so nothing a callback
    measured is lost with it. ``on_train_end`` receives the finished result to read, not to change."""

    def on_train_begin(self, trainer): ...

    def on_step_end(self, trainer, step: int, terms: Dict[str, torch.Tensor]): ...

    def on_epoch_end(self, trainer, record: dict): ...

    def on_train_end(self, trainer, result: dict): ...

    def result_entries(self, trainer) -> Dict[str, object]:
        """Top-level entries this callback contributes to the result (e.g. ``{"diagnostics": [...]}``);
        none by default. A name the trainer writes itself, or that another callback contributes, is an
        error."""
        return {}
