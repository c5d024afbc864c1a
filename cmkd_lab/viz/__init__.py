"""Plotly figures (each function returns a ``go.Figure``; nothing calls ``show()``)."""
from .audit import audit_figure, audit_summary
from .bound import bound_bars
from .curves import accuracy_curves, loss_curves
from .distances import diagnostic_history, gap_curves, mmd_curves, ot_curves
from .labels import label_heatmaps, transport_plan_figure
from .projection import PROJECTIONS, feature_overlay, project_features, run_feature_overlay
from .run import default_projection, run_figures

__all__ = ["audit_figure", "audit_summary", "loss_curves", "accuracy_curves", "run_figures", "default_projection", "bound_bars",
           "diagnostic_history", "mmd_curves", "ot_curves", "gap_curves", "label_heatmaps",
           "transport_plan_figure", "PROJECTIONS", "feature_overlay", "project_features", "run_feature_overlay"]
from .regime import diagnostic_scatter, phase_diagram, predictor_bars  # noqa: E402  (regime map of a sweep)
__all__ += ["phase_diagram", "diagnostic_scatter", "predictor_bars"]
from .gap import (GAP_FIGURES, gap_class_figure, gap_distance_figure, gap_figures, gap_overlay,  # noqa: E402
                  gap_plan_figure, gap_retrieval_figure, gap_transfer_figure)
__all__ += ["GAP_FIGURES", "gap_figures", "gap_overlay", "gap_distance_figure", "gap_plan_figure", "gap_class_figure",
            "gap_transfer_figure", "gap_retrieval_figure"]
from .compare import CONTROL_LABELS, control_bars, delta_bars  # noqa: E402  (comparisons with a baseline)
from .captions import figure_caption, run_readings  # noqa: E402  (what a run's figures show)
__all__ += ["delta_bars", "control_bars", "CONTROL_LABELS", "figure_caption", "run_readings"]
