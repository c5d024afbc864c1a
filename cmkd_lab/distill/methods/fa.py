"""``fa``: CE + λ1 · entropic OT between student and teacher features
(the paper's "feature distillation" baseline)."""
from .base import Method, register_method


@register_method("fa")
class FA(Method):
    uses_unlabelled = True
    description = "CE + lambda_fa * OT(student features, teacher features)"
    terms = {**Method.terms, "fa": "OT(student, teacher features)"}
    knobs, knobs_up = ("lambda_fa",), ("eps",)

    def loss_terms(self, b):
        z = self.student.features(b.x_s)  # (B, D)
        ce = self.ce(self.student.head(z), b.y_s)
        fa = self.align_ot(z, b)
        return {"loss": ce + self.cfg.lambda_fa * fa, "ce": ce, "fa": fa}
