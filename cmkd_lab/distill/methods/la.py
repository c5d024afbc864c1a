"""``la``: CE + λ2 · label alignment (teacher head on student features)."""
from ...align import label_alignment_loss
from .base import Method, register_method


def la_term(cfg, student_head, teacher_head, z, y):
    """LA on student features ``z`` (B, D); honours la_detach_features / la_teacher_grad."""
    if cfg.la_detach_features:
        z = z.detach()
    s_logits = student_head(z)  # (B, K)
    t_logits = teacher_head(z)  # (B, K): frozen head; graph kept for "as-written"/"align"
    return label_alignment_loss(s_logits, t_logits, y, teacher_grad=cfg.la_teacher_grad)


@register_method("la")
class LA(Method):
    uses_teacher_samples = False
    description = "CE + lambda_la * label alignment (teacher head on student features)"
    terms = {**Method.terms, "la": "label alignment LA_e"}
    knobs = ("lambda_la",)

    def loss_terms(self, b):
        z = self.student.features(b.x_s)
        ce = self.ce(self.student.head(z), b.y_s)
        la = la_term(self.cfg, self.student.head, self.teacher.head, z, b.y_s)
        return {"loss": ce + self.cfg.lambda_la * la, "ce": ce, "la": la}
