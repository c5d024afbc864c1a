"""The gradient audit of a run: what each loss term does to the student's parameters.

The trainer records, at the first step of every ``audit_every``-th epoch (and of the last), each loss
term's gradient norm on the student's encoder and on its head and the cosine between that gradient and
the cross-entropy term's (:mod:`cmkd_lab.distill.audit`). Three panels side by side: the encoder norms,
the head norms (both on a log axis: a term whose gradient is zero has no point there, and the caption
names it) and the cosines with the CE term on [−1, 1]. The CE term's own lines are drawn first, wide and
light, so that a term whose gradient equals cross-entropy's (the LA term under ``la_teacher_grad="none"``)
does not hide them.
"""
from __future__ import annotations

from typing import Dict, List

from .curves import PALETTE, _check_history, _go, epoch_axis, term_label

__all__ = ["audit_terms", "audit_figure", "audit_summary"]


def audit_terms(history: List[dict]) -> List[str]:
    """The loss terms the audit measured in ``history`` (in the order they first appear)."""
    out: List[str] = []
    for r in history:
        for k in r:
            if k.startswith("grad_enc_") and k[9:] not in out:
                out.append(k[9:])
    return out


def audit_summary(history: List[dict]) -> Dict[str, dict]:
    """Per term: the mean encoder and head gradient norms and the mean cosine with CE over the audited epochs
    (``None`` where not measured), and the number of audited epochs."""
    h = [r for r in history if isinstance(r, dict)]
    out = {}
    for t in audit_terms(h):
        rows = [r for r in h if f"grad_enc_{t}" in r]

        def mean(key):
            v = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            return sum(v) / len(v) if v else None
        out[t] = {"enc": mean(f"grad_enc_{t}"), "head": mean(f"grad_head_{t}"), "cos_ce": mean(f"cos_ce_{t}"),
                  "n": len(rows)}
    return out


def audit_figure(history: List[dict], title: str = "Gradient audit: what each loss term does to the student"):
    """The three panels of the gradient audit (encoder norm, head norm, cosine with the CE term) over the
    audited epochs; the total loss is left out (it is the weighted sum of the terms).

    Parameters
    ----------
    history : list of dict
        ``result["history"]`` of a run with the audit on (``audit_every`` > 0).
    """
    go = _go()
    from plotly.subplots import make_subplots
    h = [r for r in _check_history(history) if any(k.startswith("grad_enc_") for k in r)]
    if not h:
        raise ValueError("history holds no gradient audit (the run had audit_every=0): run with audit_every > 0")
    terms = [t for t in audit_terms(h) if t != "loss"]
    terms.sort(key=lambda t: t != "ce")  # the CE term first, drawn wide and light: a term equal to it stays visible
    fig = make_subplots(rows=1, cols=3, subplot_titles=("|∇| on the encoder", "|∇| on the head",
                                                         "cos(∇ term, ∇ CE term)"), horizontal_spacing=0.08)
    ep = [r["epoch"] for r in h]
    for i, t in enumerate(terms):
        color = PALETTE[i % len(PALETTE)]
        for col, key in ((1, f"grad_enc_{t}"), (2, f"grad_head_{t}")):
            pts = [(r["epoch"], r[key]) for r in h if isinstance(r.get(key), (int, float)) and r[key] > 0]
            if pts:
                fig.add_trace(go.Scatter(x=[e for e, _ in pts], y=[v for _, v in pts], mode="lines+markers",
                                         name=term_label(t), legendgroup=t, showlegend=col == 1 or not any(
                                             isinstance(r.get(f"grad_enc_{t}"), (int, float)) and
                                             r[f"grad_enc_{t}"] > 0 for r in h),
                                         line=dict(color=color, width=7 if t == "ce" else 2),
                                         opacity=0.4 if t == "ce" else 1), row=1, col=col)
        pts = [(r["epoch"], r[f"cos_ce_{t}"]) for r in h if isinstance(r.get(f"cos_ce_{t}"), (int, float))]
        if pts and t != "ce":
            fig.add_trace(go.Scatter(x=[e for e, _ in pts], y=[v for _, v in pts], mode="lines+markers",
                                     name=term_label(t), legendgroup=t, showlegend=False, line=dict(color=color)),
                          row=1, col=3)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=2)
    fig.update_yaxes(range=[-1.05, 1.05], row=1, col=3)
    fig.add_hline(y=0, line=dict(color="grey", dash="dot"), row=1, col=3)
    fig.update_layout(title=title, template="plotly_white", height=360)
    fig.update_xaxes(title_text="epoch")
    return epoch_axis(fig, ep)
