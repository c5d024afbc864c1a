"""``align-pl``: alignment anchored by the few labels, then the teacher's labels on aligned student features.

Built for the regime where the teacher's knowledge can reach the student without pairs: few student
labels, many unlabelled student samples, decisive features visible in both modalities. Three terms on
top of the student's cross-entropy on its labelled batch:

1. **distribution alignment** (λ_fa · OT): the student's features of the labelled and unlabelled batch
   against teacher features drawn from the teacher's own data (class-agnostic, as in ``fa``);
2. **anchor** (λ_la · CE of the frozen teacher head on the *labelled* student features): the few labels
   pull each class of student features into the teacher head's region of that class, which pins the
   assignment of classes that class-agnostic OT cannot tell apart (``la_teacher_grad="align"``'s
   teacher term);
3. **the teacher's labels** (``apl_weight`` · CE of the student head on unlabelled student features
   against the frozen teacher head's prediction on those same features, where its confidence is at least
   ``apl_threshold``): once the student's features sit where the teacher's classes are, the teacher's
   head — trained on all of the teacher's labels — labels the unlabelled student samples.

No pair is read anywhere: the teacher head sees student features, the OT sees teacher features of other
samples. Under a teacher control the head and the features carry no class knowledge (``random``,
``shuffled-labels``) or the wrong names (``permuted-classes``), so a gain that survives the controls is
the teacher's.

Options (:class:`AlignPLOptions`): ``apl_weight`` (1.0), ``apl_threshold`` (0.8); the OT and anchor
weights are the shared ``lambda_fa`` and ``lambda_la``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..._validation import Float, opt
from .base import Method, register_method
from .options import MethodOptions

__all__ = ["AlignPL", "AlignPLOptions"]


@dataclass
class AlignPLOptions(MethodOptions):
    prefix = "apl_"
    weight: float = opt(1.0, Float(ge=0), "weight of the student's CE against the teacher head's labels on "
                                          "unlabelled student features")
    threshold: float = opt(0.8, Float(gt=0, le=1, why="a probability"),
                           "the teacher head's confidence an unlabelled sample needs for its label to be used")


@register_method("align-pl")
class AlignPL(Method):
    uses_unlabelled = True
    description = ("CE + lambda_fa * OT + lambda_la * teacher-head CE on labelled student features + apl_weight * "
                   "the teacher head's confident labels on unlabelled student features (no pairs)")
    terms = {**Method.terms, "fa": "OT(student, teacher features)", "anchor": "teacher head CE on labelled features",
             "tpl": "student CE against the teacher head's labels (unlabelled)"}
    records = {"tpl_share": "share of unlabelled samples the teacher head labels"}
    options = AlignPLOptions
    knobs = ("lambda_fa", "lambda_la", "apl_weight")

    def loss_terms(self, b):
        c = self.cfg
        z = self.student.features(b.x_s)  # (B, D)
        ce = self.ce(self.student.head(z), b.y_s)
        anchor = self.ce(self.teacher.head(z), b.y_s)  # frozen head: the gradient moves the features only
        out = {"ce": ce, "anchor": anchor}
        if b.x_u is None:
            fa = self.ot(z, b.z_t)
            tpl = z.new_zeros(())
        else:
            zu = self.student.features(b.x_u)  # (U, D)
            fa = self.ot(torch.cat([z, zu]), torch.cat([b.z_t, b.z_tu]))
            with torch.no_grad():
                p = F.softmax(self.teacher.head(zu).float(), dim=1)  # (U, K)
                conf, lab = p.max(1)
                keep = conf >= self.opts.threshold
            logits = self.student.head(zu).float()
            tpl = (F.cross_entropy(logits, lab, reduction="none") * keep).sum() / keep.sum().clamp_min(1)
            out["tpl_share"] = keep.float().mean()
        out.update(fa=fa, tpl=tpl, loss=ce + c.lambda_fa * fa + c.lambda_la * anchor + self.opts.weight * tpl)
        return out
