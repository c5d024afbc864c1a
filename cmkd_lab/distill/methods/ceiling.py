"""The paired ceiling: what the teacher gives when it *can* see the student's unlabelled samples.

With few student labels and many unlabelled student samples (``student_unlabelled=True``), a teacher
that sees the **paired** teacher-modality view of each unlabelled sample can label it — the most any
teacher can give through those samples. Unpaired methods try to recover part of that without pairs;
``(method − ce) / (ceiling − ce)`` is the share they recover (the headroom recovered).

* ``ceiling-kd``: CE on the labelled batch + ``ceiling_kd_weight`` × T² · KL(teacher ‖ student) at
  temperature T = ``ceiling_kd_temperature`` on the unlabelled batch, the teacher's distribution read from
  the paired view of each unlabelled sample (Hinton et al., 2015, on unlabelled data).
* ``ceiling-pl``: CE on the labelled batch + ``ceiling_pl_weight`` × CE on the unlabelled batch against the
  teacher's hard labels (its argmax on the paired view): pseudo-labelling by the teacher.

Both need a task with paired views (synthetic, HAPT, digits-speech; a task built from your own arrays
with ``paired_teacher_x``) and unlabelled student data; they are refused with the reason otherwise. The
labelled part never reads a pair, so the only pairs used are those of the unlabelled samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..._validation import Float, opt
from .base import Method, register_method
from .options import MethodOptions

__all__ = ["CeilingKDOptions", "CeilingPLOptions", "CeilingKD", "CeilingPL"]


@dataclass
class CeilingKDOptions(MethodOptions):
    prefix = "ceiling_kd_"
    weight: float = opt(1.0, Float(ge=0), "weight of the teacher's soft targets on the unlabelled batch")
    temperature: float = opt(1.0, Float(ge=0.05, le=100, why="a softmax temperature"),
                             "temperature T of the soft targets (1: the teacher's own predicted distribution)")


@dataclass
class CeilingPLOptions(MethodOptions):
    prefix = "ceiling_pl_"
    weight: float = opt(1.0, Float(ge=0), "weight of the teacher's hard labels on the unlabelled batch")


class _Ceiling(Method):
    uses_teacher_samples = False     # the teacher batch (z_t) is never read: one run for every pairing
    uses_unlabelled = True
    needs_unlabelled = True
    needs_unlabelled_pairs = True    # the teacher view of each unlabelled student sample (Batch.zp_u)

    def unlabelled_term(self, s_logits: torch.Tensor, t_logits: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def loss_terms(self, b):
        ce = self.ce(self.student(b.x_s), b.y_s)
        with torch.no_grad():
            t = self.teacher.head(b.zp_u).float()  # (U, K): the teacher on the paired views
        term = self.unlabelled_term(self.student(b.x_u).float(), t)
        return {"loss": ce + self.opts.weight * term, "ce": ce, self.term: term}


@register_method("ceiling-kd")
class CeilingKD(_Ceiling):
    description = ("paired ceiling: CE + the teacher's soft targets read from the paired view of each unlabelled "
                   "student sample (needs pairs and unlabelled data)")
    term = "ceil_kd"
    terms = {**Method.terms, "ceil_kd": "KL to the teacher on paired views (× T²)"}
    options = CeilingKDOptions
    knobs = ("ceiling_kd_weight",)

    def unlabelled_term(self, s_logits, t_logits):
        T = self.opts.temperature
        return F.kl_div(F.log_softmax(s_logits / T, 1), F.log_softmax(t_logits / T, 1), log_target=True,
                        reduction="batchmean") * T * T


@register_method("ceiling-pl")
class CeilingPL(_Ceiling):
    description = ("paired ceiling: CE + the teacher's hard labels read from the paired view of each unlabelled "
                   "student sample (needs pairs and unlabelled data)")
    term = "ceil_pl"
    terms = {**Method.terms, "ceil_pl": "CE against the teacher's labels on paired views"}
    options = CeilingPLOptions
    knobs = ("ceiling_pl_weight",)

    def unlabelled_term(self, s_logits, t_logits):
        return F.cross_entropy(s_logits, t_logits.argmax(1))
