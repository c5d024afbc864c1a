"""Distances between teacher and student features over epochs: MMD (with
p-values), OT / Wasserstein / Sinkhorn, transport-plan purity, modality gap."""
from __future__ import annotations

from typing import List, Optional

from .curves import PALETTE, _check_history, _go, epoch_axis

__all__ = ["diagnostic_history", "mmd_curves", "ot_curves", "gap_curves", "OT_DISTANCES", "OT_PURITY", "MMD_SIZES",
           "GAP_DISTANCES", "GAP_AGREEMENT", "lines_present"]

# The lines each figure draws, (history key, legend name[, dash]); a line is drawn when the history holds its key.
MMD_SIZES = (("mmd2", "MMD² (permutation test)"), ("mmd2_linear", "MMD² linear-time"),
             ("mmd_class_mean", "mean per-class MMD²"))
OT_DISTANCES = (("ot_cost", "entropic OT cost"), ("w1", "W1 (exact OT)"), ("sinkhorn_div", "Sinkhorn divergence"))
OT_PURITY = (("purity", "purity (exact plan)"), ("purity_entropic", "purity (entropic plan)"),
             ("purity_matched", "purity up to a relabelling of classes", "dash"),
             ("purity_chance", "chance Σ p_S(k) p_T(k)", "dot"))
GAP_DISTANCES = (("centroid_gap", "‖mean z_S − mean z_T‖"), ("class_centroid_gap", "mean per-class centroid gap"))
GAP_AGREEMENT = (("mean_cos", "cos(mean z_S, mean z_T)"), ("kappa_mean", "mean κ̂ = p_T(y|z_S)"),
                 ("teacher_head_on_student_acc_ref", "teacher head acc. on student features"))


def lines_present(h: List[dict], specs) -> List[tuple]:
    """The specs among ``specs`` whose key some record of ``h`` holds: the lines a figure draws."""
    return [s for s in specs if any(r.get(s[0]) is not None for r in h)]


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
    present = lines_present(h, specs)
    for i, (k, name, *dash) in enumerate(specs):
        if (k, name, *dash) in present:
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


def _permutations(history, given: Optional[int]) -> Optional[int]:
    if given is not None:
        return int(given)
    if isinstance(history, dict):
        st = (history.get("diagnostics") or {}).get("settings") or {}
        if st.get("n_permutations"):
            return int(st["n_permutations"])
    return None


def mmd_curves(history, *, initial: Optional[dict] = None, n_permutations: Optional[int] = None,
               title: str = "MMD² between student and teacher features, and its test"):
    """Unbiased MMD² (fixed bandwidths) per epoch and the evidence that the two feature clouds differ.

    Top: MMD², its linear-time estimate and the mean per-class MMD². Bottom: −log10 of the p-values
    (higher = stronger evidence of a difference), with p = 0.05 labelled and, for the permutation test,
    its floor 1/(1 + P): with P permutations no p-value can be smaller, so a curve sitting on that line
    means "none of the P shuffles came close", not a measured p. The linear-time test's p comes from a
    normal approximation and can be astronomically small: it is drawn at most at the axis' top (▲, its
    value in the hover). ``n_permutations`` (P) is read from ``result["diagnostics"]["settings"]`` when a
    result is given.
    """
    import math

    go = _go()
    h, ep, fig = _start(history, initial, title, "MMD diagnostics", rows=2, cols=1, shared_xaxes=True,
                        vertical_spacing=0.1, row_heights=[0.55, 0.45],
                        subplot_titles=("MMD² (size of the difference)", "−log10 p (evidence of a difference)"))
    if h is None:
        return fig
    _add_lines(fig, h, ep, MMD_SIZES, row=1, col=1)
    P = _permutations(history, n_permutations)
    floor = math.log10(1 + P) if P else None
    cap = max(4.0, (floor or 0) + 1.0)
    for i, (k, name) in enumerate((("mmd_p", "−log10 p (permutation test)"),
                                   ("mmd_linear_p", "−log10 p (linear-time test)"))):
        if any(r.get(k) is not None for r in h):
            raw = _series(h, k)
            ys = [None if v is None else -math.log10(max(v, 1e-300)) for v in raw]
            shown = [None if v is None else min(v, cap) for v in ys]
            sym = ["triangle-up" if v is not None and v > cap else "diamond" for v in ys]
            fig.add_trace(go.Scatter(x=ep, y=shown, name=name, mode="lines+markers",
                                     line=dict(color=PALETTE[i], dash="dot"), marker=dict(symbol=sym, size=9),
                                     customdata=[v if v is not None else float("nan") for v in raw],
                                     hovertemplate="epoch %{x}<br>p = %{customdata:.3g}" f"<extra>{name}</extra>"),
                          row=2, col=1)
    fig.add_hline(y=-math.log10(0.05), line=dict(color="grey", dash="dot"), row=2, col=1,
                  annotation_text="p = 0.05 (above: the clouds differ)", annotation_position="top left")
    if floor is not None:
        fig.add_hline(y=floor, line=dict(color="#D62728", dash="dash", width=1), row=2, col=1,
                      annotation_text=f"floor of the {P}-permutation test: p = 1/(1+P) = {1 / (1 + P):.2g}",
                      annotation_position="top right")
    fig.update_yaxes(title_text="MMD²", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="−log10 p", range=[0, cap * 1.12], row=2, col=1,
                     tickvals=[0, 1, 2, 3, 4] + ([round(floor, 2)] if floor else []),
                     ticktext=["0 (p=1)", "1 (p=0.1)", "2 (p=0.01)", "3 (p=0.001)", "4 (p=1e-4)"]
                     + ([f"{floor:.2f}"] if floor else []))
    fig.update_xaxes(title_text="epoch (0 = untrained student)", row=2, col=1)
    fig.update_layout(title=title, template="plotly_white", height=560, legend=dict(orientation="h", y=-0.18))
    return epoch_axis(fig, ep)


def ot_curves(history, *, initial: Optional[dict] = None,
              title: str = "Optimal transport between student and teacher features"):
    """Left: entropic OT cost, exact W1 and Sinkhorn divergence per epoch.
    Right: transport-plan class purity (exact and entropic plans), the same up to a relabelling of the
    classes (``purity_matched``), against chance."""
    h, ep, fig = _start(history, initial, title, "OT diagnostics", rows=1, cols=2,
                        subplot_titles=("distances", "share of mass joining same-class samples"))
    if h is None:
        return fig
    _add_lines(fig, h, ep, OT_DISTANCES, row=1, col=1)
    _add_lines(fig, h, ep, OT_PURITY, color0=3, row=1, col=2)
    fig.update_xaxes(title_text="epoch (0 = untrained student)")
    fig.update_yaxes(title_text="distance (l2 units of the features)", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="share of mass", range=[0, 1.02], row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", legend=dict(orientation="h", y=-0.25))
    return epoch_axis(fig, ep)


def gap_curves(history, *, initial: Optional[dict] = None, title: str = "Modality gap and the teacher head"):
    """Left: centroid gap (and per-class gap); right: cosine between mean
    features, mean κ̂ and the teacher head's accuracy on student features."""
    h, ep, fig = _start(history, initial, title, "gap diagnostics", rows=1, cols=2,
                        subplot_titles=("distances between centroids", "agreement (at most 1)"))
    if h is None:
        return fig
    _add_lines(fig, h, ep, GAP_DISTANCES, row=1, col=1)
    _add_lines(fig, h, ep, GAP_AGREEMENT, color0=2, row=1, col=2)
    fig.update_xaxes(title_text="epoch (0 = untrained student)")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[min(0, min((v for r in h for v in (r.get("mean_cos"),) if v is not None), default=0)) - 0.02,
                            1.02], row=1, col=2)
    fig.update_layout(title=title, template="plotly_white", legend=dict(orientation="h", y=-0.25))
    return epoch_axis(fig, ep)
