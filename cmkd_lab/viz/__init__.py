"""Plotly figures (each function returns a ``go.Figure``; nothing calls ``show()``)."""
from .curves import loss_curves, accuracy_curves, run_figures

__all__ = ["loss_curves", "accuracy_curves", "run_figures"]
