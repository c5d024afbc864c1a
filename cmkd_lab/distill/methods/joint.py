"""``ucmkd-joint``: CE + λ1·FA + λ2·LA in one level (the paper's
"without bilevel" ablation)."""
from .base import Method, register_method
from .la import la_term


@register_method("ucmkd-joint")
class UCMKDJoint(Method):
    uses_unlabelled = True
    description = "CE + lambda_fa * OT + lambda_la * LA, one level (the paper's ablation)"
    terms = {**Method.terms, "fa": "OT(student, teacher features)", "la": "label alignment LA_e"}
    knobs, knobs_up = ("lambda_fa", "lambda_la"), ("eps",)

    def loss_terms(self, b):
        z = self.student.features(b.x_s)
        ce = self.ce(self.student.head(z), b.y_s)
        fa = self.align_ot(z, b)
        la = la_term(self.cfg, self.student.head, self.teacher.head, z, b.y_s)
        return {"loss": ce + self.cfg.lambda_fa * fa + self.cfg.lambda_la * la, "ce": ce, "fa": fa, "la": la}
