"""Curves over epochs from a run's history."""
from __future__ import annotations

from typing import List, Optional

__all__ = ["loss_curves", "accuracy_curves", "epoch_axis", "PALETTE", "INNER_SHIFT"]

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


_LOSS_KEYS = ("ce", "fa", "la", "kd", "hint")
_WEIGHTS = {"fa": "lambda_fa", "la": "lambda_la", "hint": "fitnet_weight"}
_LOSS_NAMES = {"ce": "ce (student cross-entropy)", "fa": "fa (OT term)", "la": "la (label alignment)",
               "kd": "kd (soft targets)", "hint": "hint (feature regression)"}
INNER_SHIFT = ("inner shift ‖φ̃ − φ‖: how far the n1 + n2 inner steps move the student's parameters before "
               "the outer cross-entropy gradient is taken (a parameter distance, not a loss)")


def epoch_axis(fig, epochs, **where):
    """Whole-number epoch ticks on ``fig``'s x axes (every epoch up to 12 of them, then a round step)."""
    import math
    ep = [e for e in epochs if e is not None]
    span = (max(ep) - min(ep)) if ep else 1
    step = 1 if span <= 12 else int(math.ceil(span / 10))
    fig.update_xaxes(tickmode="linear", tick0=0, dtick=step, tickformat="d", **where)
    return fig


def loss_curves(history: List[dict], title: str = "Loss terms per epoch", *, config: Optional[dict] = None):
    """Each loss term (mean over the epoch's steps) against the epoch.

    The total (what the optimiser minimises) is a wide grey line behind the terms, left out when it is
    the cross-entropy itself (``ucmkd``'s outer loss). With ``config`` (``result["config"]``) the
    weighted terms λ·term are drawn too (dashed), which shows which term dominates the total. The y axis
    is logarithmic unless a term is ≤ 0 (LA can be negative). ``inner_shift`` (bilevel methods) is not a
    loss: it gets its own right-hand axis, defined in its axis title and hover text.
    """
    go = _go()
    from plotly.subplots import make_subplots

    h = _check_history(history)
    ep = [r["epoch"] for r in h]
    shift = any("inner_shift" in r for r in h)
    fig = make_subplots(specs=[[{"secondary_y": True}]]) if shift else go.Figure()
    sec = {"secondary_y": False} if shift else {}
    values = []
    total = [r.get("loss") for r in h]
    same = all(r.get("loss") is None or (r.get("ce") is not None and abs(r["loss"] - r["ce"]) <= 1e-9 * max(1, abs(r["ce"])))
               for r in h)
    if any(v is not None for v in total) and not same:
        values += [v for v in total if v is not None]
        fig.add_trace(go.Scatter(x=ep, y=total, mode="lines", name="total loss (minimised)",
                                 line=dict(color="rgba(90,90,90,0.35)", width=9)), **sec)
    for i, k in enumerate(_LOSS_KEYS):
        if any(k in r for r in h):
            y = [r.get(k) for r in h]
            values += [v for v in y if v is not None]
            what = _LOSS_NAMES[k] + (", the total (the outer loss)" if k == "ce" and same and total[0] is not None
                                     else "")
            fig.add_trace(go.Scatter(x=ep, y=y, mode="lines+markers", name=k, line=dict(color=PALETTE[i]),
                                     hovertemplate="epoch %{x}<br>%{y:.4g}<extra>" + what + "</extra>"), **sec)
            w = (config or {}).get(_WEIGHTS.get(k, ""), None)
            if w is not None and w != 1:
                yw = [None if v is None else w * v for v in y]
                values += [v for v in yw if v is not None]
                fig.add_trace(go.Scatter(x=ep, y=yw, mode="lines", name=f"{w:g}·{k} (in the loss)",
                                         line=dict(color=PALETTE[i], dash="dash")), **sec)
    if shift:
        fig.add_trace(go.Scatter(x=ep, y=[r.get("inner_shift") for r in h], mode="lines+markers",
                                 name="inner shift ‖φ̃ − φ‖ (right axis)", line=dict(color=PALETTE[7], dash="dot"),
                                 marker=dict(symbol="diamond"),
                                 hovertemplate="epoch %{x}<br>‖φ̃ − φ‖ = %{y:.3g}<extra>" + INNER_SHIFT[:60]
                                               + "…</extra>"), secondary_y=True)
        fig.update_yaxes(title_text="inner shift ‖φ̃ − φ‖ (parameter distance)", secondary_y=True,
                         rangemode="tozero", showgrid=False, tickmode="auto", type="linear", tickformat=".2g")
    log = bool(values) and min(values) > 0
    fig.update_layout(title=title, xaxis_title="epoch", template="plotly_white",
                      legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(title_text="loss (nats)" + (", log scale" if log else ""), type="log" if log else "linear",
                     **sec)
    return epoch_axis(fig, ep)


def accuracy_curves(history: List[dict], title: str = "Accuracy per epoch", *, num_classes: Optional[int] = None,
                    reference: Optional[dict] = None):
    """Student validation and test accuracy, and the teacher head on student features, on a 0–1 axis.

    Parameters
    ----------
    num_classes : int, optional
        Draws the chance level 1/K (the teacher head on student features can fall below it).
    reference : dict label -> accuracy, optional
        Horizontal lines to compare with (e.g. ``{"ce student (test)": 0.75}``).
    """
    go = _go()
    h = _check_history(history)
    fig = go.Figure()
    ep = [r["epoch"] for r in h]
    for i, (k, name) in enumerate((("val_acc", "student val"), ("test_acc", "student test"),
                                   ("teacher_head_on_student_acc", "teacher head on student features (val)"))):
        if any(k in r for r in h):
            fig.add_trace(go.Scatter(x=ep, y=[r.get(k) for r in h], mode="lines+markers", name=name,
                                     line=dict(color=PALETTE[i])))
    if num_classes:
        fig.add_hline(y=1 / num_classes, line=dict(color="grey", dash="dot"),
                      annotation_text=f"chance 1/K = {1 / num_classes:.2f}", annotation_position="bottom right")
    for j, (label, v) in enumerate((reference or {}).items()):
        if v is not None:
            fig.add_hline(y=v, line=dict(color=PALETTE[4 + j], dash="dash"), annotation_text=label,
                          annotation_position="top left")
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title="accuracy", yaxis_range=[0, 1.02],
                      template="plotly_white")
    return epoch_axis(fig, ep)
