"""Curves over epochs from a run's history."""
from __future__ import annotations

from typing import List, Tuple


def _go():
    try:
        import plotly.graph_objects as go
    except ImportError as e:  # pragma: no cover
        raise ImportError("figures need plotly: pip install plotly") from e
    return go


_LOSS_KEYS = ("loss", "ce", "fa", "la", "kd", "hint", "inner_shift")


def loss_curves(history: List[dict], title: str = "Loss terms per epoch"):
    """Each loss term (mean over the epoch's steps) against the epoch; log y axis."""
    go = _go()
    fig = go.Figure()
    ep = [r["epoch"] for r in history]
    for k in _LOSS_KEYS:
        if any(k in r for r in history):
            fig.add_trace(go.Scatter(x=ep, y=[r.get(k) for r in history], mode="lines+markers", name=k))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="value", yaxis_type="log", template="plotly_white")
    return fig


def accuracy_curves(history: List[dict], title: str = "Accuracy per epoch"):
    """Student validation and test accuracy, and the teacher head on student features."""
    go = _go()
    fig = go.Figure()
    ep = [r["epoch"] for r in history]
    for k, name in (("val_acc", "student val"), ("test_acc", "student test"),
                    ("teacher_head_on_student_acc", "teacher head on student features (val)")):
        if any(k in r for r in history):
            fig.add_trace(go.Scatter(x=ep, y=[r.get(k) for r in history], mode="lines+markers", name=name))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="accuracy", template="plotly_white")
    return fig


def run_figures(result: dict) -> List[Tuple[str, object]]:
    """(title, figure) pairs for a run's report."""
    h = [r for r in result.get("history", []) if "epoch" in r]
    if not h:
        return []
    return [("Loss terms", loss_curves(h)), ("Accuracy", accuracy_curves(h))]
