"""Label-distribution heatmaps and the transport plan sorted by class."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .curves import _go

__all__ = ["label_heatmaps", "transport_plan_figure"]


def _diag(result_or_diag) -> dict:
    if not isinstance(result_or_diag, dict):
        raise TypeError(f"expected a result dict or result['diagnostics']; got {type(result_or_diag).__name__}")
    d = result_or_diag.get("diagnostics", result_or_diag)
    if not isinstance(d, dict):
        raise ValueError("result['diagnostics'] must be a dict (written by DiagnosticsCallback)")
    return d


def _record(d: dict, epoch: Optional[int]) -> Optional[dict]:
    recs = d.get("records") or []
    if not recs:
        return None
    if epoch is None:
        return recs[-1]
    for r in recs:
        if r.get("epoch") == epoch:
            return r
    raise ValueError(f"epoch must be one of the diagnosed epochs {[r.get('epoch') for r in recs]}; got epoch={epoch}")


def _names(d, K):
    names = d.get("class_names") or [str(k) for k in range(K)]
    return [str(n) for n in names][:K]


def _short(name: str, n: int = 28) -> str:
    name = str(name)
    return name if len(name) <= n else name[:n - 1] + "…"


def _empty(title):
    go = _go()
    fig = go.Figure()
    fig.update_layout(title=title, template="plotly_white",
                      annotations=[dict(text="no diagnostics in this run", showarrow=False, xref="paper",
                                        yref="paper", x=0.5, y=0.5)])
    return fig


def label_heatmaps(result_or_diag, *, epoch: Optional[int] = None, title: Optional[str] = None):
    """Per-class predicted-label distributions (top row) and row-normalised
    confusion matrices (bottom row) for: the teacher head on teacher features,
    the teacher head on student features (what κ̂ reads) and the student head.

    Parameters
    ----------
    result_or_diag : dict
        A result (``result.json``) or its ``["diagnostics"]``.
    epoch : int, optional
        A diagnosed epoch (default: the last).
    """
    go = _go()
    from plotly.subplots import make_subplots

    d = _diag(result_or_diag)
    rec = _record(d, epoch)
    title = title or "Label distributions (rows: true class, columns: predicted class)"
    if rec is None or "pred_dist_teacher" not in rec:
        return _empty(title)
    K = len(rec["pred_dist_teacher"])
    names = _names(d, K)
    mods = d.get("modalities") or {}
    tm, sm = mods.get("teacher", "teacher"), mods.get("student", "student")
    cols = [("pred_dist_teacher", "conf_teacher", f"teacher head<br>on {_short(tm)} features"),
            ("pred_dist_teacher_on_student", "conf_teacher_head_on_student",
             f"teacher head<br>on {_short(sm)} features"),
            ("pred_dist_student", "conf_student", f"student head<br>on {_short(sm)} features")]
    fig = make_subplots(rows=2, cols=3, subplot_titles=[c[2] + ": mean p" for c in cols] +
                        [c[2] + ": confusion" for c in cols], horizontal_spacing=0.09, vertical_spacing=0.2)
    for j, (pk, ck, _) in enumerate(cols):
        P = np.asarray(rec[pk], dtype=float)
        C = np.asarray(rec[ck], dtype=float)
        Cn = C / np.maximum(C.sum(1, keepdims=True), 1)
        for i, (M, raw) in enumerate(((P, P), (Cn, C))):
            text = [[f"{v:.2f}" if i == 0 else f"{int(c)}" for v, c in zip(rowm, rowr)] for rowm, rowr in zip(M, raw)]
            fig.add_trace(go.Heatmap(z=M, x=names, y=names, zmin=0, zmax=1, colorscale="Blues", text=text,
                                     texttemplate="%{text}", showscale=(i == 0 and j == 2),
                                     colorbar=dict(title=dict(text="share of<br>the row", side="top")),
                                     hovertemplate="true %{y}<br>pred %{x}<br>%{z:.3f}<extra></extra>"),
                          row=i + 1, col=j + 1)
            fig.update_yaxes(autorange="reversed", row=i + 1, col=j + 1)
    kap = rec.get("kappa_per_class")
    sub = f"epoch {rec.get('epoch')}"
    if kap:
        sub += " · mean κ̂ per class: " + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, kap) if v is not None)
    fig.update_annotations(font_size=12)
    fig.update_layout(title=dict(text=f"{title}<br><sup>{sub}</sup>"), template="plotly_white", height=780,
                      margin=dict(t=140))
    return fig


def transport_plan_figure(result_or_diag, *, epoch: Optional[int] = None, title: Optional[str] = None,
                          row_name: str = "student", col_name: str = "teacher", subtitle: Optional[str] = None):
    """The entropic transport plan between student (rows) and teacher (columns)
    reference features, sorted by class and pooled within classes, next to the
    class-to-class transported mass of the exact plan (its diagonal = purity).

    ``row_name`` and ``col_name`` name the two sides on the axes; ``subtitle``
    replaces the default one (the epoch and the chance level)."""
    go = _go()
    from plotly.subplots import make_subplots

    d = _diag(result_or_diag)
    plans = d.get("plans") or []
    title = title or "Transport plan sorted by class (student rows, teacher columns)"
    if not plans:
        return _empty(title)
    if epoch is None:
        p = plans[-1]
    else:
        match = [q for q in plans if q["epoch"] == epoch]
        if not match:
            raise ValueError(f"epoch must be one of the epochs with a stored plan {[q['epoch'] for q in plans]}; "
                             f"got epoch={epoch}")
        p = match[0]
    rec = _record(d, p["epoch"])
    P = np.asarray(p["plan_x_uniform"], dtype=float)  # mass per cell over that of a⊗b: 1 = independent coupling
    K = max(max(p["row_classes"]), max(p["col_classes"])) + 1
    names = _names(d, K)
    mass = np.asarray(rec.get("class_mass_exact") or rec.get("class_mass_entropic"), dtype=float)
    which = "exact" if rec.get("class_mass_exact") else "entropic"
    fig = make_subplots(rows=1, cols=2, column_widths=[0.5, 0.5], horizontal_spacing=0.22,
                        subplot_titles=("entropic plan, pooled<br>(1 = independent coupling)",
                                        f"class-to-class mass, {which} plan<br>purity (diagonal) = "
                                        f"{np.trace(mass):.3f}"))
    fig.add_trace(go.Heatmap(z=P, colorscale="Viridis", showscale=True, zmin=0,
                             colorbar=dict(title=dict(text="× the<br>independent<br>coupling", side="top"),
                                           x=0.4, xanchor="left", len=0.9, thickness=12),
                             hovertemplate=f"{row_name} group %{{y}}<br>{col_name} group %{{x}}<br>"
                                           "%{z:.3g} × the independent coupling<extra></extra>"),
                  row=1, col=1)
    for axis, cls in (("x", p["col_classes"]), ("y", p["row_classes"])):
        cls = np.asarray(cls)
        cuts = np.flatnonzero(np.diff(cls)) + 0.5
        for c in cuts:
            kw = dict(line=dict(color="white", width=1), row=1, col=1)
            fig.add_vline(x=c, **kw) if axis == "x" else fig.add_hline(y=c, **kw)
        centres = [float(np.mean(np.flatnonzero(cls == k))) for k in np.unique(cls)]
        labels = [names[int(k)] for k in np.unique(cls)]
        upd = fig.update_xaxes if axis == "x" else fig.update_yaxes
        upd(tickvals=centres, ticktext=labels, row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.add_trace(go.Heatmap(z=mass, x=names, y=names, colorscale="Blues", zmin=0, texttemplate="%{z:.3f}",
                             showscale=True, colorbar=dict(title=dict(text="share of<br>all mass", side="top"),
                                                           len=0.9, thickness=12),
                             hovertemplate=f"{row_name} %{{y}} → {col_name} %{{x}}<br>%{{z:.3f}} of the mass"
                                           "<extra></extra>"), row=1, col=2)
    fig.update_yaxes(autorange="reversed", title_text=f"{row_name} class", row=1, col=2)
    fig.update_xaxes(title_text=f"{col_name} class", row=1, col=2)
    chance = float(mass.sum(1) @ mass.sum(0))  # Σ_k p_S(k) p_T(k)
    sub = subtitle or f"epoch {p['epoch']} · chance level Σ_k p_S(k)·p_T(k) = {chance:.3f}"
    fig.update_layout(title=dict(text=f"{title}<br><sup>{sub}</sup>"), template="plotly_white", height=560,
                      margin=dict(t=130))
    return fig
