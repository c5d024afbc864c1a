"""Figures of comparisons with a baseline: paired differences with their intervals and noise floor
(:func:`delta_bars`), and the teacher controls (:func:`control_bars`).

Both read the rows of :mod:`cmkd_lab.results` (``paired_summary`` / ``bench_comparisons`` rows and
``control_table`` rows); differences are drawn in points of accuracy.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from .curves import PALETTE, _go

__all__ = ["delta_bars", "control_bars", "CONTROL_LABELS", "CONTROL_COLOURS"]

CONTROL_LABELS = {"none": "real teacher", "random": "random (untrained) teacher",
                  "shuffled-labels": "teacher trained on shuffled labels",
                  "permuted-classes": "real teacher, classes renamed"}
CONTROL_COLOURS = {"none": "#1F77B4", "random": "#7F7F7F", "shuffled-labels": "#FF7F0E",
                   "permuted-classes": "#9467BD"}


def _pts(v):
    return None if v is None else 100 * v


def _err(rows, key_mean="delta_mean", lo="ci_low", hi="ci_high"):
    up = [0 if r.get(hi) is None or r.get(key_mean) is None else 100 * (r[hi] - r[key_mean]) for r in rows]
    down = [0 if r.get(lo) is None or r.get(key_mean) is None else 100 * (r[key_mean] - r[lo]) for r in rows]
    return dict(type="data", symmetric=False, array=up, arrayminus=down, visible=True)


def delta_bars(rows: Sequence[dict], *, baseline: str = "ce", group: str = "pairing", title: Optional[str] = None):
    """Paired differences with ``baseline``, one bar per method (grouped by ``group``, e.g. the pairing),
    with the t-based 95 % interval, the number of seeds in the label, the minimum detectable effect as a
    tick (±MDE) and the noise floor: the A/A control's interval when the bench ran it (grey band), else
    ± the baseline's seed-to-seed standard deviation.

    Parameters
    ----------
    rows : paired-summary rows (``cell``, ``values``, ``method``, ``delta_mean``, ``ci_low``, ``ci_high``,
        ``mde``, ``n_seeds``/``n_pairs``, ``noise_*``)
    """
    go = _go()
    comp = [r for r in rows if r.get("method") != baseline and r.get("delta_mean") is not None
            and not str(r.get("method", "")).endswith("(A/A)")]
    fig = go.Figure()
    groups = list(dict.fromkeys((r.get("values") or {}).get(group, r.get("cell", "all")) for r in comp))
    methods = list(dict.fromkeys(r["method"] for r in comp))
    for i, g in enumerate(groups):
        rs = {r["method"]: r for r in comp if (r.get("values") or {}).get(group, r.get("cell", "all")) == g}
        sel = [rs.get(m, {}) for m in methods]
        fig.add_trace(go.Bar(
            x=methods, y=[_pts(r.get("delta_mean")) for r in sel], name=str(g), marker_color=PALETTE[i % 10],
            error_y=dict(_err(sel), color="#333", thickness=1.5, width=6), offsetgroup=str(i),
            text=[None if not r else f"n={r.get('n_pairs', r.get('n_seeds'))}" for r in sel], textposition="none",
            customdata=[[_pts(r.get("ci_low")), _pts(r.get("ci_high")), _pts(r.get("mde")), r.get("verdict", "")]
                        if r else [None] * 4 for r in sel],
            hovertemplate="%{x}: Δ %{y:+.2f} points<br>95 % CI [%{customdata[0]:+.2f}, %{customdata[1]:+.2f}]"
                          "<br>MDE %{customdata[2]:.2f}<br>%{customdata[3]}<extra>" + str(g) + "</extra>"))
        fig.add_trace(go.Scatter(
            x=methods, y=[_pts(r.get("mde")) for r in sel], mode="markers", offsetgroup=str(i),
            marker=dict(symbol="line-ew", size=16, line=dict(width=2, color="#888")), showlegend=i == 0,
            name="± MDE (smallest effect these seeds can detect)", legendgroup="mde", hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=methods, y=[None if r.get("mde") is None else -100 * r["mde"] for r in sel], mode="markers",
            offsetgroup=str(i), marker=dict(symbol="line-ew", size=16, line=dict(width=2, color="#888")),
            showlegend=False, legendgroup="mde", hoverinfo="skip"))
    floor = next((r for r in rows if r.get("noise_aa_ci_low") is not None), None)
    if floor is not None:
        fig.add_hrect(y0=100 * floor["noise_aa_ci_low"], y1=100 * floor["noise_aa_ci_high"], fillcolor="grey",
                      opacity=0.15, line_width=0, annotation_text=f"A/A: {baseline} vs {baseline} (95 % CI)",
                      annotation_position="top left")
        what = "grey band: the A/A control"
    else:
        sd = next((r.get("noise_baseline_std") for r in rows if r.get("noise_baseline_std") is not None), None)
        if sd is not None:
            fig.add_hrect(y0=-100 * sd, y1=100 * sd, fillcolor="grey", opacity=0.12, line_width=0,
                          annotation_text=f"± {baseline}'s seed-to-seed std ({100 * sd:.1f})",
                          annotation_position="top left")
        what = f"grey band: ± {baseline}'s seed-to-seed std (no A/A control in this file)"
    fig.add_hline(y=0, line=dict(color="black", width=1))
    ns = sorted({r.get("n_pairs", r.get("n_seeds")) for r in comp if r.get("n_pairs", r.get("n_seeds")) is not None})
    what += "; n = " + (f"{ns[0]} seeds paired" if len(ns) == 1 else f"{ns[0]}–{ns[-1]} seeds paired (hover)")
    fig.update_layout(barmode="group", scattermode="group", template="plotly_white", height=460, xaxis_title="method",
                      yaxis_title=f"Δ test accuracy vs {baseline} (points)",
                      title=(title or f"Paired difference with {baseline}, seed by seed: mean, 95 % interval, ± MDE")
                      + f"<br><sup>{what}</sup>",
                      legend=dict(orientation="h", y=-0.2, title_text=group))
    return fig


def control_bars(rows: List[dict], *, baseline: str = "ce", title: Optional[str] = None):
    """The teacher controls: left, each method's paired difference with ``baseline`` with the real teacher
    and under each control (bars, 95 % intervals); right, the teacher's share — the method with the real
    teacher minus the same method under each control, seed by seed. A gain is the teacher's when it
    stands with the real teacher and falls under ``random`` and ``shuffled-labels``.

    Parameters
    ----------
    rows : :func:`cmkd_lab.results.control_table` rows (``values``, ``method``, ``delta``, ``contrast``,
        ``verdict``)
    """
    go = _go()
    from plotly.subplots import make_subplots

    if not rows:
        raise ValueError("rows must hold control_table rows (a bench over teacher_control); got none")
    keys = [k for k in rows[0].get("values", {}) if len({str(r["values"].get(k)) for r in rows}) > 1]
    label = [f"{r['method']}" + (" · " + ", ".join(f"{k}={r['values'][k]}" for k in keys) if keys else "")
             for r in rows]
    present = [c for c in CONTROL_LABELS if any(c in r["delta"] for r in rows)]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, column_widths=[0.55, 0.45],
                        subplot_titles=(f"Δ vs {baseline} under each teacher", "the teacher's share: real − control"))
    for c in present:
        pd = [r["delta"].get(c) or {} for r in rows]
        fig.add_trace(go.Bar(x=label, y=[_pts(p.get("mean")) for p in pd], name=CONTROL_LABELS[c],
                             marker_color=CONTROL_COLOURS[c], legendgroup=c,
                             error_y=_err(pd, "mean"),
                             hovertemplate="%{x}<br>Δ %{y:+.2f} points<extra>" + CONTROL_LABELS[c] + "</extra>"),
                      row=1, col=1)
        if c != "none":
            ct = [r["contrast"].get(c) or {} for r in rows]
            fig.add_trace(go.Bar(x=label, y=[_pts(p.get("mean")) for p in ct], name=CONTROL_LABELS[c],
                                 marker_color=CONTROL_COLOURS[c], legendgroup=c, showlegend=False,
                                 error_y=_err(ct, "mean"),
                                 hovertemplate="%{x}<br>real − control %{y:+.2f} points<extra>"
                                               + CONTROL_LABELS[c] + "</extra>"), row=1, col=2)
    for col in (1, 2):
        fig.add_hline(y=0, line=dict(color="black", width=1), row=1, col=col)
    n = next((p.get("n") for r in rows for p in r["delta"].values() if p), None)
    fig.update_yaxes(title_text="points of test accuracy", row=1, col=1)
    fig.update_layout(barmode="group", template="plotly_white", height=480,
                      title=title or f"Whose knowledge is the gain? Bars: mean over {n} seeds, 95 % intervals",
                      legend=dict(orientation="h", y=-0.25))
    verdicts = "; ".join(f"{lab}: {r['verdict']}" for lab, r in zip(label, rows))
    fig.add_annotation(text=verdicts, xref="paper", yref="paper", x=0, y=1.13, showarrow=False,
                       font=dict(size=11), align="left", xanchor="left")
    return fig
