"""Curves over epochs from a run's history."""
from __future__ import annotations

from typing import List, Optional

__all__ = ["loss_curves", "loss_layout", "accuracy_curves", "epoch_axis", "term_label", "test_is_sparse", "PALETTE",
           "INNER_SHIFT", "LOSS_TERMS"]

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


# Loss terms as a run's history records them, with the label a student sees: a term is named with
# capitals ("CE term"), a method in lower case (`ce`), so that the two never read alike.
LOSS_TERMS = {"ce": "CE term", "fa": "FA term", "la": "LA term", "kd": "KD term", "hint": "hint term",
              "ent": "entropy term", "ccfa": "class-OT term", "classkd": "class-KD term", "proto": "prototype term",
              "proxy": "proxy term", "anchor": "anchor term", "tpl": "teacher-head label term",
              "ceil_kd": "paired soft-target term", "ceil_pl": "paired label term"}
# Each term's weight option (a term whose weight depends on the method, `kd`'s in kd and c2kd, is left out)
_WEIGHTS = {"fa": "lambda_fa", "la": "lambda_la", "hint": "fitnet_weight", "ent": "lambda_ent", "anchor": "lambda_la",
            "tpl": "apl_weight", "ceil_kd": "ceiling_kd_weight", "ceil_pl": "ceiling_pl_weight",
            "ccfa": "ccfa_weight", "classkd": "classkd_weight", "proto": "proto_weight"}
_LOSS_WHAT = {"ce": "the student's cross-entropy on its labels", "fa": "OT between student and teacher features",
              "la": "label alignment LA_e", "kd": "soft targets of the paired teacher sample",
              "hint": "regression onto the paired teacher features",
              "ent": "entropy of the student's predictions on unlabelled data"}
INNER_SHIFT = ("inner shift ‖φ̃ − φ‖: how far the n1 + n2 inner steps move the student's parameters before "
               "the outer cross-entropy gradient is taken (a parameter distance, not a loss)")


def term_label(key: str) -> str:
    """The label of loss term ``key`` (``"ce"`` -> ``"CE term"``); unknown keys as they are."""
    return LOSS_TERMS.get(key, key)


def epoch_axis(fig, epochs, **where):
    """Whole-number epoch ticks on ``fig``'s x axes (every epoch up to 12 of them, then a round step)."""
    import math
    ep = [e for e in epochs if e is not None]
    span = (max(ep) - min(ep)) if ep else 1
    step = 1 if span <= 12 else int(math.ceil(span / 10))
    fig.update_xaxes(tickmode="linear", tick0=0, dtick=step, tickformat="d", **where)
    return fig


def test_is_sparse(history: List[dict]) -> bool:
    """True when the test split was evaluated only at some epochs (``eval_test="best"``: the best-validation
    and the last epoch), False when at every evaluated epoch (``eval_test="every"``)."""
    evaluated = [r for r in history if isinstance(r, dict) and "val_acc" in r]
    return any("test_acc" in r for r in evaluated) and not all("test_acc" in r for r in evaluated)


def loss_layout(history: List[dict], config: Optional[dict] = None) -> dict:
    """What :func:`loss_curves` draws for this history — the one place that decides it, so that a caption
    (:mod:`cmkd_lab.viz.captions`) describes exactly the figure.

    Returns
    -------
    dict with ``terms`` (keys drawn, in order), ``total`` (True: the total is drawn as a wide grey line
    behind the terms; False when there is none or it equals the CE term), ``total_is_ce`` (the total is
    the CE term itself, e.g. ``ucmkd``'s outer loss), ``weighted`` (list of (key, λ) drawn dashed as λ·term),
    ``inner_shift`` (drawn dotted on a right-hand axis) and ``log`` (logarithmic y axis).
    """
    h = _check_history(history)
    total = [r.get("loss") for r in h]
    has_total = any(v is not None for v in total)
    same = has_total and all(r.get("loss") is None or (r.get("ce") is not None and abs(r["loss"] - r["ce"])
                                                        <= 1e-9 * max(1, abs(r["ce"]))) for r in h)
    terms = [k for k in LOSS_TERMS if any(k in r for r in h)]
    weighted = []
    for k in terms:
        w = (config or {}).get(_WEIGHTS.get(k, ""), None)
        if w is not None and w != 1:
            weighted.append((k, w))
    values = [r.get(k) for r in h for k in terms] + ([v for v in total] if has_total and not same else [])
    values += [w * r.get(k) for k, w in weighted for r in h if r.get(k) is not None]
    values = [v for v in values if v is not None]
    return {"terms": terms, "total": has_total and not same, "total_is_ce": same and "ce" in terms,
            "weighted": weighted, "inner_shift": any("inner_shift" in r for r in h),
            "log": bool(values) and min(values) > 0}


def loss_curves(history: List[dict], title: str = "Loss terms per epoch", *, config: Optional[dict] = None):
    """Each loss term (mean over the epoch's steps) against the epoch, as :func:`loss_layout` decides.

    The total (what the optimiser minimises) is a wide grey line behind the terms, left out when it is
    the CE term itself (``ucmkd``'s outer loss). With ``config`` (``result["config"]``) the terms whose
    weight λ is not 1 are drawn weighted too (dashed, λ·term), which shows which term dominates the total.
    The y axis is logarithmic unless a term is ≤ 0 (LA can be negative). ``inner_shift`` (bilevel methods)
    is not a loss: it gets its own right-hand axis, defined in its axis title and hover text.
    """
    go = _go()
    from plotly.subplots import make_subplots

    h = _check_history(history)
    spec = loss_layout(h, config)
    ep = [r["epoch"] for r in h]
    fig = make_subplots(specs=[[{"secondary_y": True}]]) if spec["inner_shift"] else go.Figure()
    sec = {"secondary_y": False} if spec["inner_shift"] else {}
    if spec["total"]:
        fig.add_trace(go.Scatter(x=ep, y=[r.get("loss") for r in h], mode="lines", name="total loss (minimised)",
                                 line=dict(color="rgba(90,90,90,0.35)", width=9)), **sec)
    weights = dict(spec["weighted"])
    for i, k in enumerate(spec["terms"]):
        y = [r.get(k) for r in h]
        what = _LOSS_WHAT.get(k, k) + (", the total (the outer loss)" if k == "ce" and spec["total_is_ce"] else "")
        colour = PALETTE[i if i < 7 else i + 1]  # PALETTE[7] (grey) is the inner shift's
        fig.add_trace(go.Scatter(x=ep, y=y, mode="lines+markers", name=term_label(k), line=dict(color=colour),
                                 hovertemplate="epoch %{x}<br>%{y:.4g}<extra>" + what + "</extra>"), **sec)
        if k in weights:
            w = weights[k]
            fig.add_trace(go.Scatter(x=ep, y=[None if v is None else w * v for v in y], mode="lines",
                                     name=f"{w:g} × {term_label(k)} (in the loss)",
                                     line=dict(color=colour, dash="dash")), **sec)
    if spec["inner_shift"]:
        fig.add_trace(go.Scatter(x=ep, y=[r.get("inner_shift") for r in h], mode="lines+markers",
                                 name="inner shift ‖φ̃ − φ‖ (right axis)", line=dict(color=PALETTE[7], dash="dot"),
                                 marker=dict(symbol="diamond"),
                                 hovertemplate="epoch %{x}<br>‖φ̃ − φ‖ = %{y:.3g}<extra>" + INNER_SHIFT[:60]
                                               + "…</extra>"), secondary_y=True)
        fig.update_yaxes(title_text="inner shift ‖φ̃ − φ‖ (parameter distance)", secondary_y=True,
                         rangemode="tozero", showgrid=False, tickmode="auto", type="linear", tickformat=".2g")
    fig.update_layout(title=title, xaxis_title="epoch", template="plotly_white",
                      legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(title_text="loss (nats)" + (", log scale" if spec["log"] else ""),
                     type="log" if spec["log"] else "linear", **sec)
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
    sparse = test_is_sparse(h)
    for i, (k, name) in enumerate((("val_acc", "student val"),
                                   ("test_acc", "student test (best-validation and last epochs)" if sparse
                                    else "student test"),
                                   ("teacher_head_on_student_acc", "teacher head on student features (val)"))):
        if any(k in r for r in h):
            xs = [r["epoch"] for r in h if k in r] if k == "test_acc" and sparse else ep
            ys = [r[k] for r in h if k in r] if k == "test_acc" and sparse else [r.get(k) for r in h]
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers" if k == "test_acc" and sparse else "lines+markers",
                                     name=name, line=dict(color=PALETTE[i]),
                                     marker=dict(size=10, symbol="diamond") if k == "test_acc" and sparse else None))
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
