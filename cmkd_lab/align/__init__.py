"""Losses and distances between feature sets (functional core + thin modules).

Reference: Tran, Chu, Pham, Nguyen, Hoang, "Cross-Modal Knowledge Distillation
without Paired Data: Theoretical Foundation and Algorithm", ICML 2026
(arXiv 2606.10504).
"""
from .costs import COSTS, cost_matrix
from .ot import OTLoss, SinkhornConvergenceWarning, ot_cost, sinkhorn_plan
from .la import TEACHER_GRAD_MODES, label_alignment_loss
from .mmd import median_bandwidth, mmd, rbf_kernel_sum

__all__ = [
    "COSTS", "cost_matrix", "ot_cost", "sinkhorn_plan", "OTLoss", "SinkhornConvergenceWarning",
    "label_alignment_loss", "TEACHER_GRAD_MODES", "mmd", "median_bandwidth", "rbf_kernel_sum",
]
