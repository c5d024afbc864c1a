"""``class-kd``: class-level soft targets from the teacher, without pairs.

The teacher's knowledge of which classes resemble each other, taken at the level of classes: for each
class k, ``q_k`` is the teacher's mean predicted distribution (softmax at temperature T) over the
teacher's own samples of class k. Every labelled student sample of class k is distilled towards
``q_k``: CE + w · T² · KL(q_y ‖ softmax(s / T)) — Hinton's soft targets with the pair replaced by the
class. It needs labels, not pairs. Classes the teacher holds no sample of get no soft target.

Options (:class:`ClassKDOptions`): ``classkd_weight`` (w, 1.0), ``classkd_temperature`` (T, 4.0, the ``kd``
baseline's default).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._classes import ClassBank
from .base import Method, register_method
from ..._validation import Float, opt
from .options import MethodOptions

__all__ = ["ClassKD", "ClassKDOptions", "class_soft_targets"]


@dataclass
class ClassKDOptions(MethodOptions):
    prefix = "classkd_"
    weight: float = opt(1.0, Float(ge=0), "weight of the class-level soft-target term")
    temperature: float = opt(4.0, Float(gt=0, le=100, why="a softmax temperature; KD uses 1-20"),
                             "softmax temperature of the class-level soft targets")


@torch.no_grad()
def class_soft_targets(head, z: torch.Tensor, y, num_classes: int, temperature: float):
    """(K, K) the mean of softmax(head(z) / T) over the samples of each class (rows of classes absent from
    ``y`` are NaN) and the (K,) mask of the classes present."""
    p = torch.softmax(head(z).float() / temperature, dim=1)  # (M, K)
    y = torch.as_tensor(y, device=p.device)
    q = torch.full((num_classes, p.shape[1]), float("nan"), device=p.device)
    have = torch.zeros(num_classes, dtype=torch.bool, device=p.device)
    for k in range(num_classes):
        m = y == k
        if bool(m.any()):
            q[k], have[k] = p[m].mean(0), True
    return q, have


@register_method("class-kd")
class ClassKD(Method):
    description = "CE + weight * KL(teacher's mean prediction for the class || student), no pairs"
    terms = {**Method.terms, "classkd": "class-level soft-target KL (× T²)"}
    options = ClassKDOptions
    knobs = ("classkd_weight", "classkd_temperature")

    def __init__(self, trainer):
        super().__init__(trainer)
        self.T = self.opts.temperature
        bank = ClassBank(trainer)
        self.q, self.have = class_soft_targets(self.teacher.head, bank.z, bank.y, bank.K, self.T)

    def loss_terms(self, b):
        s = self.student(b.x_s)  # (B, K)
        ce = self.ce(s, b.y_s)
        m = self.have[b.y_s]
        if bool(m.any()):
            log_p = F.log_softmax(s[m].float() / self.T, dim=1)
            q = self.q[b.y_s[m]]  # (B', K) targets
            kl = (q * (torch.log(q.clamp_min(1e-12)) - log_p)).sum(1).mean() * self.T ** 2
        else:
            kl = s.new_zeros(())
        return {"loss": ce + self.opts.weight * kl, "ce": ce, "classkd": kl}
