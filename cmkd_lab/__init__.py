"""cmkd_lab — a laboratory for cross-modal knowledge distillation without paired data.

Implements UCMKD from Tran, Chu, Pham, Nguyen, Hoang, "Cross-Modal Knowledge
Distillation without Paired Data: Theoretical Foundation and Algorithm",
ICML 2026 (arXiv 2606.10504), with its baselines and diagnostics.
"""
__version__ = "0.1.0"

from .align import cost_matrix, label_alignment_loss, mmd, ot_cost
from .data import CrossModalTask, available_tasks, load_task, make_synthetic_task
from .distill import DistillConfig, Trainer, available_methods
from .diagnostics.explore import explore_gap
from .diagnostics.run_gap import explore_run_gap
from .experiments.job import distill

__all__ = ["__version__", "cost_matrix", "label_alignment_loss", "mmd", "ot_cost", "CrossModalTask",
           "available_tasks", "load_task", "make_synthetic_task", "DistillConfig", "Trainer",
           "available_methods", "distill", "explore_gap", "explore_run_gap"]
