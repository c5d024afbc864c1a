"""Paired baselines: ``kd`` (Hinton soft targets) and ``fitnet`` (feature
regression). Both need a teacher sample tied to each student sample."""
import torch
import torch.nn.functional as F
from torch import nn

from .base import Method, register_method


@register_method("kd")
class KD(Method):
    description = "Hinton KD: CE + soft targets of the paired teacher sample (needs pairs)"
    terms = {**Method.terms, "kd": "soft-target KL (× T²)"}
    needs_pairs = True

    def loss_terms(self, b):
        T, a = self.cfg.kd_temperature, self.cfg.kd_alpha
        s = self.student(b.x_s)  # (B, K)
        with torch.no_grad():
            t = self.teacher.head(b.z_t)  # (B, K)
        ce = self.ce(s, b.y_s)
        kl = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), log_target=True,
                      reduction="batchmean") * T * T
        return {"loss": (1 - a) * ce + a * kl, "ce": ce, "kd": kl}


@register_method("fitnet")
class FitNet(Method):
    description = "FitNet: CE + regression of paired teacher features (needs pairs)"
    terms = {**Method.terms, "hint": "feature regression (MSE)"}
    needs_pairs = True

    def __init__(self, trainer):
        super().__init__(trainer)
        D = self.cfg.feature_dim
        self.regressor = nn.Linear(D, D).to(trainer.device)

    def extra_modules(self):
        return [self.regressor]

    def loss_terms(self, b):
        z = self.student.features(b.x_s)
        ce = self.ce(self.student.head(z), b.y_s)
        hint = F.mse_loss(self.regressor(z), b.z_t)
        return {"loss": ce + self.cfg.fitnet_weight * hint, "ce": ce, "hint": hint}
