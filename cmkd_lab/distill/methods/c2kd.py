"""``c2kd``: a paired baseline after C2KD (Huo et al., "C2KD: Bridging the
Modality Gap for Cross-Modal Knowledge Distillation", CVPR 2024), written from
the paper's description.

Ingredients, as that paper describes them:

* **proxies**: a small trainable proxy head on each side (on the frozen
  teacher's features and on the student's features) carries the exchange, so
  the main heads are not forced onto the other modality's logits;
* **bidirectional distillation**: the teacher proxy learns from the student
  proxy and the student proxy from the teacher proxy (each direction with the
  other side's logits detached); the teacher proxy is also anchored to the
  teacher's own head;
* **on-the-fly selection**: only samples whose teacher-proxy and student-proxy
  logits rank the classes alike (Kendall's τ above ``c2kd_tau``) are distilled;
* **non-target-class distillation**: the KL divergence is taken over the
  non-target classes only (target logit removed, the rest renormalised).

Adaptation here: the teacher backbone stays frozen (cmkd_lab's feature bank),
so bidirectionality acts through the proxies; the student's main head is
trained by cross-entropy and by the same non-target distillation from the
teacher proxy on selected samples. Options (:class:`C2KDOptions`, given as
``c2kd_tau`` etc. like any config option): ``c2kd_tau`` (0.0), ``c2kd_weight``
(1.0), ``c2kd_temperature`` (4.0, the ``kd`` baseline's default).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Method, register_method
from ..._validation import Float, opt
from .options import MethodOptions

__all__ = ["C2KD", "C2KDOptions", "kendall_tau", "non_target_kl"]


@dataclass
class C2KDOptions(MethodOptions):
    prefix = "c2kd_"
    tau: float = opt(0.0, Float(ge=-1, le=1, why="a Kendall tau"),
                     "Kendall-τ threshold of the on-the-fly sample selection")
    weight: float = opt(1.0, Float(ge=0), "weight of the non-target distillation terms")
    temperature: float = opt(4.0, Float(gt=0, le=100, why="a softmax temperature; KD uses 1-20"),
                             "softmax temperature of the proxies' distillation")


def kendall_tau(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Kendall's τ-a between the rows of ``a`` and ``b`` (B, K) → (B,)."""
    da = torch.sign(a[:, :, None] - a[:, None, :])  # (B, K, K)
    db = torch.sign(b[:, :, None] - b[:, None, :])
    K = a.shape[1]
    return (da * db).sum((1, 2)) / (K * (K - 1))


def non_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, y: torch.Tensor,
                  temperature: float) -> torch.Tensor:
    """KL(teacher ‖ student) over the non-target classes, per sample (B,), × T²."""
    mask = F.one_hot(y, student_logits.shape[1]).bool()  # (B, K)
    big = torch.finfo(student_logits.dtype).max / 4
    s = (student_logits / temperature).masked_fill(mask, -big)
    t = (teacher_logits / temperature).masked_fill(mask, -big)
    log_ps, log_pt = F.log_softmax(s, 1), F.log_softmax(t, 1)
    kl = (log_pt.exp() * (log_pt - log_ps)).masked_fill(mask, 0.0).sum(1)
    return kl * temperature ** 2


@register_method("c2kd")
class C2KD(Method):
    description = "C2KD-style: proxies, bidirectional non-target KD, Kendall-tau sample selection (needs pairs)"
    terms = {**Method.terms, "kd": "non-target KD (three directions)", "proxy": "proxy anchoring"}
    records = {"selected": "share of samples selected (Kendall τ)"}
    needs_pairs = True
    options = C2KDOptions
    knobs = ("c2kd_weight", "c2kd_temperature")

    def __init__(self, trainer):
        super().__init__(trainer)
        D, K = self.cfg.feature_dim, trainer.task.num_classes
        self.tau, self.weight, self.T = self.opts.tau, self.opts.weight, self.opts.temperature
        self.teacher_proxy = nn.Sequential(nn.Linear(D, D), nn.ReLU(), nn.Linear(D, K)).to(trainer.device)
        self.student_proxy = nn.Sequential(nn.Linear(D, D), nn.ReLU(), nn.Linear(D, K)).to(trainer.device)

    def extra_modules(self):
        return [self.teacher_proxy, self.student_proxy]

    def loss_terms(self, b):
        z = self.student.features(b.x_s)  # (B, D)
        logits = self.student.head(z)  # (B, K)
        ce = self.ce(logits, b.y_s)
        with torch.no_grad():
            t_main = self.teacher.head(b.z_t)  # (B, K)
        tp = self.teacher_proxy(b.z_t)  # (B, K)
        sp = self.student_proxy(z)  # (B, K)
        # Proxies stay anchored to their own side's task.
        anchor = F.cross_entropy(tp, b.y_t) + F.cross_entropy(sp, b.y_s) + \
            F.kl_div(F.log_softmax(tp / self.T, 1), F.log_softmax(t_main / self.T, 1), log_target=True,
                     reduction="batchmean") * self.T ** 2
        with torch.no_grad():
            keep = (kendall_tau(tp, sp) > self.tau).float()  # (B,) on-the-fly selection
        n_keep = keep.sum().clamp_min(1.0)
        s_from_t = (non_target_kl(sp, tp.detach(), b.y_s, self.T) * keep).sum() / n_keep
        t_from_s = (non_target_kl(tp, sp.detach(), b.y_t, self.T) * keep).sum() / n_keep
        main_from_t = (non_target_kl(logits, tp.detach(), b.y_s, self.T) * keep).sum() / n_keep
        kd = s_from_t + t_from_s + main_from_t
        loss = ce + anchor + self.weight * kd
        return {"loss": loss, "ce": ce, "kd": kd, "proxy": anchor, "selected": keep.mean()}
