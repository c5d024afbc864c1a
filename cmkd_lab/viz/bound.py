"""The bound's terms per epoch: stacked bars err_T + FA + LA_e against err_S."""
from __future__ import annotations

from typing import Optional

from .curves import PALETTE, _go, epoch_axis
from .distances import _empty, diagnostic_history

__all__ = ["bound_bars"]


def bound_bars(history, *, initial: Optional[dict] = None,
               title: str = "The bound err<sub>S</sub> ≤ err<sub>T</sub> + FA + LA<sub>e</sub>, term by term"):
    """Stacked bars of err_T, FA = τ̂·W1 and LA_e (LA_e can be negative: the
    bars stack relative to 0) with the measured err_S as a line. Epochs where
    the estimated bound does not hold are marked with a red cross."""
    go = _go()
    h = [r for r in diagnostic_history(history, initial) if "bound_sum" in r]
    if not h:
        return _empty(title, "bound diagnostics")
    ep = [r["epoch"] for r in h]
    fig = go.Figure()
    for i, (k, name) in enumerate((("bound_err_t", "err<sub>T</sub> (teacher CE on teacher val)"),
                                   ("bound_fa", "FA = τ̂ · W<sub>1</sub>"), ("bound_la", "LA<sub>e</sub> (plug-in κ̂)"))):
        fig.add_trace(go.Bar(x=ep, y=[r.get(k) for r in h], name=name, marker_color=PALETTE[i], opacity=0.8))
    fig.add_trace(go.Scatter(x=ep, y=[r.get("bound_sum") for r in h], name="err<sub>T</sub> + FA + LA<sub>e</sub>", mode="markers",
                             marker=dict(symbol="line-ew-open", size=22, color="black", line=dict(width=2))))
    fig.add_trace(go.Scatter(x=ep, y=[r.get("bound_err_s") for r in h], name="err<sub>S</sub> (student CE on student val)",
                             mode="lines+markers", line=dict(color="black", width=2)))
    bad = [r for r in h if r.get("bound_holds") is False]
    if bad:
        fig.add_trace(go.Scatter(x=[r["epoch"] for r in bad], y=[r["bound_err_s"] for r in bad],
                                 name="bound does not hold", mode="markers",
                                 marker=dict(symbol="x", size=14, color="#D62728")))
    fig.add_hline(y=0, line=dict(color="black", width=1))
    fig.update_layout(title=title, barmode="relative", xaxis_title="epoch (0 = untrained student)",
                      yaxis_title="nats (expected cross-entropy)", template="plotly_white",
                      legend=dict(orientation="h", y=-0.2))
    return epoch_axis(fig, ep)
