"""The callback protocol of :class:`~cmkd_lab.distill.Trainer` (a module of its own, so that the
diagnostics and the widgets can subclass it without importing the trainer)."""
from __future__ import annotations

from typing import Dict

import torch

__all__ = ["Callback"]


class Callback:
    """Hooks; override what you need. ``record`` may be extended in place."""

    def on_train_begin(self, trainer): ...

    def on_step_end(self, trainer, step: int, terms: Dict[str, torch.Tensor]): ...

    def on_epoch_end(self, trainer, record: dict): ...

    def on_train_end(self, trainer, result: dict): ...
