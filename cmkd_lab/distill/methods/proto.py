"""``proto``: the teacher's class layout as anchors, without pairs.

The teacher's class centroids μ_k (the mean teacher feature of its samples of class k) are fixed points
in the shared feature space; each labelled student feature of class k is pulled towards μ_k:
CE + w · mean ‖z − μ_y‖² / r², with r² the teacher's mean squared distance to its own centroids (so the
term is scale-free: 1 means "as far as a typical teacher sample"). The student's features then take the
teacher's layout, class by class, which the teacher's head reads — without a pair and without a
transport plan. With unlabelled student data, the samples the student predicts with confidence ≥
``proto_threshold`` are pulled towards the centroid of their predicted class.

Options (:class:`ProtoOptions`): ``proto_weight`` (w, 1.0), ``proto_threshold`` (0.9).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ._classes import ClassBank, pseudo_labels
from .base import Method, register_method
from .options import PseudoLabelOptions

__all__ = ["Proto", "ProtoOptions"]


@dataclass
class ProtoOptions(PseudoLabelOptions):
    """``proto_weight`` (weight of the anchoring term) and ``proto_threshold``."""

    prefix = "proto_"


@register_method("proto")
class Proto(Method):
    uses_unlabelled = True
    description = "CE + weight * squared distance to the teacher's class centroid (no pairs)"
    terms = {**Method.terms, "proto": "distance to the teacher's class centroid (/ r²)"}
    records = {"pseudo_share": "share of unlabelled samples pseudo-labelled"}
    options = ProtoOptions
    knobs = ("proto_weight",)

    def __init__(self, trainer):
        super().__init__(trainer)
        bank = ClassBank(trainer)
        self.mu, self.have = bank.centroids()  # (K, D), (K,)
        y = torch.as_tensor(bank.y, device=bank.z.device)
        self.r2 = float(((bank.z - self.mu[y]) ** 2).sum(1).mean().clamp_min(1e-12))

    def _pull(self, z, y):
        m = self.have[y]
        if not bool(m.any()):
            return z.new_zeros(()), 0
        return ((z[m] - self.mu[y[m]]) ** 2).sum(1).sum() / self.r2, int(m.sum())

    def loss_terms(self, b):
        z = self.student.features(b.x_s)  # (B, D)
        ce = self.ce(self.student.head(z), b.y_s)
        total, n = self._pull(z, b.y_s)
        out = {"ce": ce}
        if b.x_u is not None:
            zu = self.student.features(b.x_u)
            lab, conf = pseudo_labels(self.student.head(zu), self.opts.threshold)
            out["pseudo_share"] = conf.float().mean()
            if bool(conf.any()):
                tu, nu = self._pull(zu[conf], lab[conf])
                total, n = total + tu, n + nu
        pull = total / max(n, 1)
        out.update(loss=ce + self.opts.weight * pull, proto=pull)
        return out
