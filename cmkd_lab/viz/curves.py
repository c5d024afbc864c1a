"""Curves over epochs from a run's history."""
from __future__ import annotations

from typing import List, Optional

__all__ = ["loss_curves", "accuracy_curves", "PALETTE"]

PALETTE = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22",
           "#17BECF"]


def _go():
    try:
        import plotly.graph_objects as go
    except ImportError as e:  # pragma: no cover
        raise ImportError("figures need plotly: pip install plotly") from e
    return go


def _check_history(history) -> list:
    if not isinstance(history, (list, tuple)):
        raise TypeError(f"history must be a list of per-epoch dicts (result['history']); got {type(history).__name__}")
    h = [r for r in history if isinstance(r, dict) and "epoch" in r]
    if len(h) != len(history):
        raise ValueError("history must hold dicts with an 'epoch' key (result['history']); some entries lack it")
    return h


_LOSS_KEYS = ("loss", "ce", "fa", "la", "kd", "hint", "inner_shift")
_WEIGHTS = {"fa": "lambda_fa", "la": "lambda_la", "hint": "fitnet_weight"}


def loss_curves(history: List[dict], title: str = "Loss terms per epoch", *, config: Optional[dict] = None):
    """Each loss term (mean over the epoch's steps) against the epoch.

    With ``config`` (``result["config"]``) the weighted terms λ·term are drawn
    too (dashed), which shows which term dominates the total. The y axis is
    logarithmic unless a term is ≤ 0 (LA can be negative).
    """
    go = _go()
    h = _check_history(history)
    fig = go.Figure()
    ep = [r["epoch"] for r in h]
    values = []
    for i, k in enumerate(_LOSS_KEYS):
        if any(k in r for r in h):
            y = [r.get(k) for r in h]
            values += [v for v in y if v is not None]
            fig.add_trace(go.Scatter(x=ep, y=y, mode="lines+markers", name=k, line=dict(color=PALETTE[i])))
            w = (config or {}).get(_WEIGHTS.get(k, ""), None)
            if w is not None and w != 1:
                yw = [None if v is None else w * v for v in y]
                values += [v for v in yw if v is not None]
                fig.add_trace(go.Scatter(x=ep, y=yw, mode="lines", name=f"{w:g}·{k} (in the loss)",
                                         line=dict(color=PALETTE[i], dash="dash")))
    log = bool(values) and min(values) > 0
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="value", yaxis_type="log" if log else "linear",
                      template="plotly_white")
    return fig


def accuracy_curves(history: List[dict], title: str = "Accuracy per epoch"):
    """Student validation and test accuracy, and the teacher head on student features."""
    go = _go()
    h = _check_history(history)
    fig = go.Figure()
    ep = [r["epoch"] for r in h]
    for k, name in (("val_acc", "student val"), ("test_acc", "student test"),
                    ("teacher_head_on_student_acc", "teacher head on student features (val)")):
        if any(k in r for r in h):
            fig.add_trace(go.Scatter(x=ep, y=[r.get(k) for r in h], mode="lines+markers", name=name))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="accuracy", template="plotly_white")
    return fig
