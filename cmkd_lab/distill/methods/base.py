"""Method protocol and registry.

A method turns one :class:`Batch` into an optimiser step on the student and
returns its loss terms as a dict of detached scalar tensors (no host sync).
Register one with ``@register_method("name")``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Type

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Batch", "Method", "register_method", "get_method", "available_methods", "METHODS"]

METHODS: Dict[str, Type["Method"]] = {}


@dataclass
class Batch:
    """One training step's data (all on the trainer's device).

    x_s : (B, ...) student inputs;  y_s : (B,) student labels;
    z_t : (B, D) teacher features from the frozen bank;  y_t : (B,) their labels;
    idx_s, idx_t : (B,) indices into the student train split and the bank.
    """

    x_s: torch.Tensor
    y_s: torch.Tensor
    z_t: torch.Tensor
    y_t: torch.Tensor
    idx_s: torch.Tensor
    idx_t: torch.Tensor


def register_method(name: str):
    def deco(cls):
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls
    return deco


def available_methods() -> List[str]:
    return sorted(METHODS)


def get_method(name: str) -> Type["Method"]:
    if name not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, available_methods()))}; got method={name!r}")
    return METHODS[name]


class Method:
    """Base class. Subclasses implement :meth:`loss_terms` (single-level) or
    override :meth:`step` (bilevel).

    Class attributes
    ----------------
    needs_pairs : bool
        Needs a teacher sample tied to each student sample (``paired`` or
        ``class-matched``); refused under ``unpaired`` with the reason.
    description : str
        One line for ``python -m cmkd_lab methods``.
    """

    name = "base"
    needs_pairs = False
    description = ""

    def __init__(self, trainer):
        self.trainer = trainer
        self.cfg = trainer.config
        self.student = trainer.student
        self.teacher = trainer.teacher

    # Extra trainable modules (e.g. a FitNet regressor), added to the optimiser.
    def extra_modules(self) -> List[nn.Module]:
        return []

    def loss_terms(self, batch: Batch) -> Dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def ot(self, z_s, z_t, *, warn: bool = False):
        from ...align import ot_cost
        c = self.cfg
        with torch.autocast(device_type=z_s.device.type, enabled=False):
            return ot_cost(z_s.float(), z_t.float(), cost=c.cost, eps=c.eps, max_iter=c.sinkhorn_iter,
                           eps_units=c.eps_units, warn=warn)

    def step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        opt = self.trainer.optimizer
        opt.zero_grad(set_to_none=True)
        terms = self.loss_terms(batch)
        terms["loss"].backward()
        self.trainer.clip_gradients()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    @staticmethod
    def ce(logits, y):
        return F.cross_entropy(logits, y)
