"""Paired baselines: ``kd`` (Hinton soft targets) and ``fitnet`` (feature
regression). Both need a teacher sample tied to each student sample.

Options: ``kd_temperature`` and ``kd_alpha`` (:class:`KDOptions`), ``fitnet_weight``
(:class:`FitNetOptions`)."""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import Float, opt
from .base import Method, register_method
from .options import MethodOptions

__all__ = ["KD", "KDOptions", "FitNet", "FitNetOptions"]


@dataclass
class KDOptions(MethodOptions):
    prefix = "kd_"
    temperature: float = opt(4.0, Float(gt=0, le=100, why="a softmax temperature; KD uses 1-20"),
                             "softmax temperature of the soft targets")
    alpha: float = opt(0.5, Float(ge=0, le=1, why="the weight of the soft-target term, CE gets 1 - kd_alpha"),
                       "weight of the soft-target term")


@dataclass
class FitNetOptions(MethodOptions):
    prefix = "fitnet_"
    weight: float = opt(1.0, Float(ge=0), "weight of the feature-regression (hint) term")


@register_method("kd")
class KD(Method):
    description = "Hinton KD: CE + soft targets of the paired teacher sample (needs pairs)"
    terms = {**Method.terms, "kd": "soft-target KL (× T²)"}
    needs_pairs = True
    options = KDOptions
    knobs = ("kd_alpha", "kd_temperature")

    def loss_terms(self, b):
        T, a = self.opts.temperature, self.opts.alpha
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
    options = FitNetOptions
    knobs = ("fitnet_weight",)

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
        return {"loss": ce + self.opts.weight * hint, "ce": ce, "hint": hint}
