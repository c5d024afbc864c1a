"""``ce``: the student trained alone with cross-entropy (the reference)."""
from .base import Method, register_method


@register_method("ce")
class CE(Method):
    uses_teacher_samples = False
    uses_teacher = False
    description = "student cross-entropy only (no teacher)"

    def loss_terms(self, b):
        ce = self.ce(self.student(b.x_s), b.y_s)
        return {"loss": ce, "ce": ce}
