"""Diagnostics of the modality gap during distillation.

MMD two-sample tests, Wasserstein / Sinkhorn distances and transport-plan
class purity, label distributions and κ̂, the paper's bound term by term
(Tran et al., ICML 2026, arXiv 2606.10504; docs/theory.md) and a modality-gap
summary; :class:`DiagnosticsCallback` records them during training, and
:func:`explore_gap` explores the gap between any two embedding sets without training.
"""
from ._common import stratified_indices
from .bound import LIPSCHITZ_METHOD, bound_terms, lipschitz_estimate, plugin_teacher_loss
from .callback import DiagnosticsCallback
from .core import DiagnosticsSettings, diagnose, pool_plan
from .explore import GapResult, explore_gap
from .run_gap import before_after_table, explore_run_gap
from .gap import modality_gap
from .labels import confusion_matrix, kappa_hat, label_diagnostics, predicted_distribution
from .paired import linear_cka, paired_measures, procrustes_residual, retrieval_recall
from .mmd_test import (class_conditional_mmd, holm_correction, linear_mmd, mmd2_unbiased, mmd_permutation_test,
                       permutation_masks, rbf_bandwidths)
from .transport import (class_mass_matrix, entropic_ot, exact_ot, median_cost, plan_class_purity,
                        sinkhorn_divergence)
from .transfer import linear_transfer

__all__ = [
    "stratified_indices", "LIPSCHITZ_METHOD", "bound_terms", "lipschitz_estimate", "plugin_teacher_loss",
    "DiagnosticsCallback", "DiagnosticsSettings", "diagnose", "pool_plan", "modality_gap", "confusion_matrix",
    "kappa_hat", "label_diagnostics", "predicted_distribution", "class_conditional_mmd", "holm_correction",
    "linear_mmd", "mmd2_unbiased", "mmd_permutation_test", "permutation_masks", "rbf_bandwidths",
    "class_mass_matrix", "entropic_ot", "exact_ot", "median_cost", "plan_class_purity", "sinkhorn_divergence",
    "GapResult", "before_after_table", "explore_gap", "explore_run_gap", "linear_cka", "paired_measures",
    "procrustes_residual", "retrieval_recall", "linear_transfer",
]
