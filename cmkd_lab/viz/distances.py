"""Distances between teacher and student features over epochs: MMD (with
p-values), OT / Wasserstein / Sinkhorn, transport-plan purity, modality gap."""
from __future__ import annotations

from typing import List, Optional

from .curves import PALETTE, _check_history, _go

__all__ = ["diagnostic_history", "mmd_curves", "ot_curves", "gap_curves"]


def diagnostic_history(result_or_history, initial: Optional[dict] = None) -> List[dict]:
    """Records that carry diagnostics, with the untrained student as epoch 0.

    Accepts a result dict (uses ``history`` and ``diagnostics["initial"]``) or
    a history list (then ``initial`` may be given).
    """
    if isinstance(result_or_history, dict):
        hist = result_or_history.get("history", [])
        initial = initial or (result_or_history.get("diagnostics") or {}).get("initial")
    else:
        hist = result_or_history
    h = [r for r in _check_history(hist) if "mmd2" in r]
    if initial:
        h = [dict(initial, epoch=0)] + h
    return h


def _series(h, key):
    return [r.get(key) for r in h]


def _add_lines(fig, h, ep, specs, *, color0: int = 0, **where):
    """One line per ``(key, name[, dash])`` in ``specs`` whose key the history holds."""
    go = _go()
    for i, (k, name, *dash) in enumerate(specs):
        if any(r.get(k) is not None for r in h):
            fig.add_trace(go.Scatter(x=ep, y=_series(h, k), name=name, mode="lines+markers",
                                     line=dict(color=PALETTE[color0 + i], dash=dash[0] if dash else None)), **where)


def _empty(title: str, what: str):
    go = _go()
    fig = go.Figure()
    fig.update_layout(title=title, template="plotly_white",
                      annotations=[dict(text=f"no {what} in this run (diagnostics off?)", showarrow=False,
                                        xref="paper", yref="paper", x=0.5, y=0.5)])
    return fig


def _start(history, initial, title: str, what: str, **subplots):
    """``(records, epochs, figure)`` for a per-epoch diagnostics figure laid out by
    ``make_subplots(**subplots)``; ``(None, None, placeholder)`` when the run has no such records."""
    _go()  # plotly is there, or a clear ImportError
    from plotly.subplots import make_subplots

    h = diagnostic_history(history, initial)
    if not h:
        return None, None, _empty(title, what)
    return h, [r["epoch"] for r in h], make_subplots(**subplots)


def mmd_curves(history, *, initial: Optional[dict] = None, title: str = "MMD² between student and teacher features"):
    """Unbiased MMD² (fixed bandwidths) per epoch and its permutation p-value.

    Left axis: MMD², its linear-time estimate and the mean per-class MMD²;
    right axis (log): the p-values, with the 0.05 level dotted.
    """
    go = _go()
    h, ep, fig = _start(history, initial, title, "MMD diagnostics", specs=[[{"secondary_y": True}]])
    if h is None:
        return fig
    _add_lines(fig, h, ep, (("mmd2", "MMD² (permutation test)"), ("mmd2_linear", "MMD² linear-time"),
                            ("mmd_class_mean", "mean per-class MMD²")), secondary_y=False)
    for i, (k, name) in enumerate((("mmd_p", "p-value (permutation)"), ("mmd_linear_p", "p-value (linear-time)"))):
        if any(r.get(k) is not None for r in h):
            ys = [None if v is None else max(v, 1e-12) for v in _series(h, k)]
            fig.add_trace(go.Scatter(x=ep, y=ys, name=name, mode="lines+markers",
                                     line=dict(color=PALETTE[i], dash="dot"), marker=dict(symbol="diamond")),
                          secondary_y=True)
    fig.add_hline(y=0.05, line=dict(color="grey", dash="dot"), secondary_y=True)
    fig.update_yaxes(title_text="MMD²", secondary_y=False)
    fig.update_yaxes(title_text="p-value (log)", type="log", exponentformat="power", secondary_y=True)
    fig.update_layout(title=title, xaxis_title="epoch (0 = untrained student)", template="plotly_white",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def ot_curves(history, *, initial: Optional[dict] = None,
              title: str = "Optimal transport between student and teacher features"):
    """Left: entropic OT cost, exact W1 and Sinkhorn divergence per epoch.
    Right: transport-plan class purity (exact and entropic plans), the same up to a relabelling of the
    classes (``purity_matched``), against chance."""
    h, ep, fig = _start(history, initial, title, "OT diagnostics", rows=1, cols=2,
                        subplot_titles=("distances", "share of mass joining same-class samples"))
    if h is None:
        return fig
    _add_lines(fig, h, ep, (("ot_cost", "entropic OT cost"), ("w1", "W1 (exact OT)"),
                            ("sinkhorn_div", "Sinkhorn divergence")), row=1, col=1)
    _add_lines(fig, h, ep, (("purity", "purity (exact plan)"), ("purity_entropic", "purity (entropic plan)"),
                            ("purity_matched", "purity up to a relabelling of classes", "dash"),
                            ("purity_chance", "chance Σ p_S(k) p_T(k)", "dot")), color0=3, row=1, col=2)
    fig.update_xaxes(title_text="epoch (0 = untrained student)")
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", legend=dict(orientation="h", y=-0.25))
    return fig


def gap_curves(history, *, initial: Optional[dict] = None, title: str = "Modality gap and the teacher head"):
    """Left: centroid gap (and per-class gap); right: cosine between mean
    features, mean κ̂ and the teacher head's accuracy on student features."""
    h, ep, fig = _start(history, initial, title, "gap diagnostics", rows=1, cols=2,
                        subplot_titles=("distances between centroids", "agreement (0-1 scale)"))
    if h is None:
        return fig
    _add_lines(fig, h, ep, (("centroid_gap", "‖mean z_S − mean z_T‖"),
                            ("class_centroid_gap", "mean per-class centroid gap")), row=1, col=1)
    _add_lines(fig, h, ep, (("mean_cos", "cos(mean z_S, mean z_T)"), ("kappa_mean", "mean κ̂ = p_T(y|z_S)"),
                            ("teacher_head_on_student_acc_ref", "teacher head acc. on student features")),
               color0=2, row=1, col=2)
    fig.update_xaxes(title_text="epoch (0 = untrained student)")
    fig.update_layout(title=title, template="plotly_white", legend=dict(orientation="h", y=-0.25))
    return fig
