"""``entmin``: a teacher-free control for runs with unlabelled student data.

CE on the labelled batch + ``lambda_ent`` × the mean entropy of the student's
predictions on the unlabelled batch (entropy minimisation, Grandvalet & Bengio,
NeurIPS 2004). It reads no teacher at all: when ``fa`` or ``ucmkd-joint`` gain
over ``ce`` with ``student_unlabelled=True``, comparing them with ``entmin``
tells how much of the gain is the teacher's and how much any use of the
unlabelled data would give.
"""
from dataclasses import dataclass

import torch

from ..._validation import Float, opt
from .base import Method, register_method
from .options import MethodOptions


@dataclass
class EntMinOptions(MethodOptions):
    lambda_ent: float = opt(1.0, Float(ge=0), "weight of the prediction entropy on unlabelled student data")


@register_method("entmin")
class EntMin(Method):
    uses_teacher_samples = False
    uses_teacher = False
    uses_unlabelled = True
    needs_unlabelled = True
    description = "CE + lambda_ent * entropy of the student's predictions on unlabelled data (teacher-free control)"
    terms = {**Method.terms, "ent": "prediction entropy on unlabelled data"}
    options = EntMinOptions
    knobs = ("lambda_ent",)

    def loss_terms(self, b):
        ce = self.ce(self.student(b.x_s), b.y_s)
        logp = torch.log_softmax(self.student(b.x_u).float(), dim=1)  # (U, K)
        ent = -(logp.exp() * logp).sum(1).mean()
        return {"loss": ce + self.opts.lambda_ent * ent, "ce": ce, "ent": ent}
