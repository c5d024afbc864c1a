"""``cc-fa``: class-conditional feature alignment without pairs.

CE + λ · Σ_k (n_k / n) · OT(student features of class k, teacher features of class k). Each labelled
student sample of class k meets a teacher feature drawn at random among the teacher's samples of class
k (the classes the teacher gives its own data: no instance is paired), and the entropic OT is taken
within each class, so the plan can only join samples of the same class — the class purity that
class-agnostic OT (``fa``) lacks. With unlabelled student data (``student_unlabelled=True``) the
samples the student itself predicts with confidence ≥ ``ccfa_threshold`` join the alignment under their
predicted class (pseudo-labels; no teacher is read to label them). A class with one sample in the batch
contributes its transport cost to its one partner.

Options (:class:`CCFAOptions`): ``ccfa_weight`` (λ, 1.0), ``ccfa_threshold`` (0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._classes import ClassBank, pseudo_labels
from .base import Method, register_method
from .options import PseudoLabelOptions

__all__ = ["CCFA", "CCFAOptions", "class_conditional_ot"]


@dataclass
class CCFAOptions(PseudoLabelOptions):
    """``ccfa_weight`` (λ of the class-conditional OT term) and ``ccfa_threshold``."""

    prefix = "ccfa_"


def class_conditional_ot(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor, ot) -> torch.Tensor:
    """Σ_k (n_k / n) · ot(z_s[y == k], z_t[y == k]) for student features ``z_s`` (n, D) and teacher
    features ``z_t`` (n, D) that share the labels ``y`` (n,); ``ot(a, b)`` is the OT cost of two sets.
    A class with one sample contributes the Euclidean distance between its two points."""
    total = z_s.new_zeros(())
    n = y.numel()
    for k in torch.unique(y).tolist():
        m = y == k
        nk = int(m.sum())
        if nk >= 2:
            total = total + (nk / n) * ot(z_s[m], z_t[m])
        else:
            total = total + (1 / n) * (z_s[m] - z_t[m]).norm()
    return total


@register_method("cc-fa")
class CCFA(Method):
    uses_unlabelled = True
    description = "CE + weight * OT within each class (teacher features of the same class, no pairs)"
    terms = {**Method.terms, "ccfa": "class-conditional OT"}
    records = {"pseudo_share": "share of unlabelled samples pseudo-labelled"}
    options = CCFAOptions
    knobs, knobs_up = ("ccfa_weight",), ("eps",)

    def __init__(self, trainer):
        super().__init__(trainer)
        self.bank, self.bank_u = ClassBank(trainer, 0), ClassBank(trainer, 1)

    def state_dict(self) -> dict:
        return {"bank": self.bank.state_dict(), "bank_u": self.bank_u.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.bank.load_state_dict(state["bank"])
        self.bank_u.load_state_dict(state["bank_u"])

    def loss_terms(self, b):
        z = self.student.features(b.x_s)  # (B, D)
        ce = self.ce(self.student.head(z), b.y_s)
        y = b.y_s
        keep = torch.as_tensor(self.bank.has(y.cpu().numpy()), device=y.device)  # classes the teacher holds
        zs, ys = z[keep], y[keep]
        zt = self.bank.draw(ys.cpu().numpy())  # (B', D) same-class teacher features
        share = z.new_zeros(())
        if b.x_u is not None:
            zu = self.student.features(b.x_u)  # (U, D)
            lab, conf = pseudo_labels(self.student.head(zu), self.opts.threshold)
            conf = conf & torch.as_tensor(self.bank_u.has(lab.cpu().numpy()), device=conf.device)
            share = conf.float().mean()
            if bool(conf.any()):
                zs = torch.cat([zs, zu[conf]])
                zt = torch.cat([zt, self.bank_u.draw(lab[conf].cpu().numpy())])
                ys = torch.cat([ys, lab[conf]])
        cc = class_conditional_ot(zs, zt, ys, lambda a, t: self.ot(a, t)) if ys.numel() else z.new_zeros(())
        out = {"loss": ce + self.opts.weight * cc, "ce": ce, "ccfa": cc}
        if b.x_u is not None:
            out["pseudo_share"] = share
        return out
