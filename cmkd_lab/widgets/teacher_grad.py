"""The three ``la_teacher_grad`` choices side by side (the sign of the LA
gradient, notebook 03).

* ``none`` — no gradient through the teacher term (the public code's choice):
  the LA step is a cross-entropy step;
* ``as-written`` — the gradient of +κ̂·log p_T as the loss is written, which
  *lowers* the teacher head's probability of the true class on student
  features;
* ``align`` — the frozen teacher head's cross-entropy on student features,
  which pulls them into the teacher's class regions.

The teacher head's accuracy on student features and the mean κ̂ over the
epochs show the difference at a glance.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

from .runner import make_sink
from .settings import LabSettings
from .tables import PCT, make_table
from ._checks import lab_or_default

__all__ = ["compare_teacher_grad", "teacher_grad_figures", "compare_variants", "variant_figures", "LIGHT_DIAGNOSTICS"]

# Diagnostics for a comparison that reads a few curves (κ̂, the teacher head, the inner shift): smaller
# reference sets, few permutations, no feature snapshots.
LIGHT_DIAGNOSTICS = dict(n_ref=256, permutations=20, snapshot_epochs=[])


def teacher_grad_figures(results: Dict[str, dict]) -> Dict[str, object]:
    """Curves of the teacher head's accuracy on student features, mean κ̂ and
    student validation accuracy, one line per ``la_teacher_grad`` mode.

    Parameters
    ----------
    results : dict mode -> result dict

    Returns
    -------
    dict with ``teacher_head`` and ``student`` figures
    """
    from ._checks import need_runs
    need_runs(results, what="la_teacher_grad mode -> one run's result dict (compare_teacher_grad's third value)")
    from ._deps import require_plotly
    from plotly.subplots import make_subplots

    go = require_plotly()
    from ..viz.curves import PALETTE

    head = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                         subplot_titles=("teacher head's accuracy<br>on student features (val)",
                                         "mean κ̂ = p<sub>T</sub>(y | z<sub>S</sub>)"))
    stud = go.Figure()
    for i, (mode, r) in enumerate(results.items()):
        h = [x for x in r["history"] if "epoch" in x]
        ep = [x["epoch"] for x in h]
        c = dict(color=PALETTE[i % len(PALETTE)])
        head.add_trace(go.Scatter(x=ep, y=[x.get("teacher_head_on_student_acc") for x in h], name=mode,
                                  legendgroup=mode, mode="lines+markers", line=c), row=1, col=1)
        head.add_trace(go.Scatter(x=ep, y=[x.get("kappa_mean") for x in h], name=mode, legendgroup=mode,
                                  showlegend=False, mode="lines+markers", line=c), row=1, col=2)
        stud.add_trace(go.Scatter(x=ep, y=[x.get("val_acc") for x in h], name=mode, mode="lines+markers", line=c))
    from ..viz.curves import epoch_axis
    eps = [x["epoch"] for r in results.values() for x in r["history"] if "epoch" in x]
    K = next((len((r.get("diagnostics") or {}).get("class_names") or []) for r in results.values()), 0) or None
    head.update_xaxes(title_text="epoch")
    head.update_yaxes(range=[0, 1.02])
    if K:
        for col in (1, 2):
            head.add_hline(y=1 / K, line=dict(color="grey", dash="dot"), row=1, col=col,
                           annotation_text=f"chance 1/K = {1 / K:.2f}", annotation_position="bottom right")
    head.update_layout(title="la_teacher_grad: what the LA gradient does to the teacher head's reading of student "
                             "features", template="plotly_white", height=400, legend_title_text="la_teacher_grad",
                       margin=dict(t=110))
    stud.update_layout(title="Student validation accuracy per epoch", xaxis_title="epoch", yaxis_title="accuracy",
                       yaxis_range=[0, 1.02], template="plotly_white", height=330, legend_title_text="la_teacher_grad")
    if K:
        stud.add_hline(y=1 / K, line=dict(color="grey", dash="dot"), annotation_text=f"chance 1/K = {1 / K:.2f}",
                       annotation_position="bottom right")
    return {"teacher_head": epoch_axis(head, eps), "student": epoch_axis(stud, eps)}


def compare_teacher_grad(*, task="synthetic", method: str = "la",
                         modes: Sequence[str] = ("none", "as-written", "align"), epochs: Optional[int] = None,
                         lab: Optional[LabSettings] = None, progress=None,
                         **options) -> Tuple[object, Dict[str, object], Dict[str, dict]]:
    """Run the same student under each ``la_teacher_grad`` mode.

    Parameters
    ----------
    task : str or CrossModalTask
    method : str
        A method with an LA term (``la``, ``ucmkd``, ``ucmkd-joint``).
    modes : sequence of str
        Values of ``la_teacher_grad`` to compare.
    epochs : int, optional
        Default: the lab settings.
    progress : None, True or callable
        As in :func:`run_debugger`.
    **options
        Other debugger options (``lambda_la``, ``seed`` …).

    Returns
    -------
    table : pandas.DataFrame
        One row per mode: final test accuracy (at best val), teacher head's
        accuracy on student features and mean κ̂ at the last epoch.
    figures : dict name -> go.Figure
    results : dict mode -> result
    """
    import pandas as pd

    from ..align import TEACHER_GRAD_MODES
    from .debugger import DebugSession

    lab = lab_or_default(lab)
    modes = list(modes)
    if not modes:
        raise ValueError("modes must list at least one la_teacher_grad value; got an empty list")
    for m in modes:
        if m not in TEACHER_GRAD_MODES:
            raise ValueError(f"modes must hold values of {TEACHER_GRAD_MODES}; got {m!r}")
    if method not in ("la", "ucmkd", "ucmkd-joint"):
        raise ValueError(f"method must have an LA term ('la', 'ucmkd' or 'ucmkd-joint'); got method={method!r}")
    results = {}
    sink = make_sink(progress)
    for i, m in enumerate(modes):
        if sink is not None:
            sink("comparison", i, len(modes), f"la_teacher_grad={m}")
        s = DebugSession(task=task, method=method, la_teacher_grad=m, epochs=epochs, lab=lab,
                         **{**LIGHT_DIAGNOSTICS, **options})
        results[m], _ = s.run(figures=False)
    if sink is not None:
        sink("comparison", len(modes), len(modes), "done")
        sink("done", 1, 1, "")
    rows = []
    for m, r in results.items():
        last = [x for x in r["history"] if "epoch" in x][-1]
        rows.append({"la_teacher_grad": m, "student test acc (best val)": r["student_test_acc"],
                     "teacher head on student features (val acc)": last.get("teacher_head_on_student_acc"),
                     "mean κ̂": last.get("kappa_mean"), "LA term (last epoch)": last.get("la")})
    table = make_table(pd.DataFrame(rows).set_index("la_teacher_grad"),
                       formats={"student test acc (best val)": PCT, "teacher head on student features (val acc)": PCT,
                                "mean κ̂": "{:.3f}", "LA term (last epoch)": "{:.3f}"},
                       notes=["One seed, the same data and teacher for every row."])
    return table, teacher_grad_figures(results), results


def _label(v: dict) -> str:
    return " ".join([str(v.get("method", "ucmkd"))] + [f"{k}={val}" for k, val in v.items() if k != "method"])


def variant_figures(results: Dict[str, dict]) -> Dict[str, object]:
    """Validation accuracy per epoch of each variant (``val_acc``) and, for the bilevel ones, the inner
    shift ‖φ̃ − φ‖ per epoch (``inner_shift``, log axis)."""
    from ._checks import need_runs
    need_runs(results, what="variant name -> one run's result dict (compare_variants's third value)")
    from ._deps import require_plotly
    from ..viz.curves import INNER_SHIFT, PALETTE, epoch_axis

    go = require_plotly()
    acc, shift = go.Figure(), go.Figure()
    eps = []
    for i, (name, r) in enumerate(results.items()):
        h = [x for x in r["history"] if "epoch" in x]
        ep = [x["epoch"] for x in h]
        eps += ep
        c = dict(color=PALETTE[i % len(PALETTE)])
        # The first line is drawn wide and light underneath: a run that follows it exactly stays visible.
        acc.add_trace(go.Scatter(x=ep, y=[x.get("val_acc") for x in h], name=name, mode="lines+markers",
                                 line=dict(c, width=7 if i == 0 else 2), opacity=0.45 if i == 0 else 1.0))
        if any("inner_shift" in x for x in h):
            shift.add_trace(go.Scatter(x=ep, y=[x.get("inner_shift") for x in h], name=name, mode="lines+markers",
                                       line=c, hovertemplate="epoch %{x}<br>‖φ̃ − φ‖ = %{y:.3g}<extra>" + name
                                                             + "</extra>"))
    K = next((len((r.get("diagnostics") or {}).get("class_names") or []) for r in results.values()), 0) or None
    acc.update_layout(title="Student validation accuracy per epoch, one line per variant (same seed, data, teacher)",
                      xaxis_title="epoch", yaxis_title="validation accuracy", yaxis_range=[0, 1.02],
                      template="plotly_white", height=360, legend=dict(orientation="h", y=-0.25))
    if K:
        acc.add_hline(y=1 / K, line=dict(color="grey", dash="dot"), annotation_text=f"chance 1/K = {1 / K:.2f}",
                      annotation_position="bottom right")
    out = {"val_acc": epoch_axis(acc, eps)}
    if shift.data:
        shift.update_layout(title="Inner shift ‖φ̃ − φ‖ per epoch (mean over the epoch's steps)<br><sup>"
                                  + INNER_SHIFT + "</sup>", xaxis_title="epoch",
                            yaxis_title="‖φ̃ − φ‖ (log scale)", yaxis_type="log", template="plotly_white", height=380,
                            legend=dict(orientation="h", y=-0.25), margin=dict(t=100))
        out["inner_shift"] = epoch_axis(shift, eps)
    return out


def compare_variants(variants: Sequence[dict], *, task="synthetic", epochs: Optional[int] = None,
                     lab: Optional[LabSettings] = None, progress=None,
                     **options) -> Tuple[object, Dict[str, object], Dict[str, dict]]:
    """Train the same student (task, seed, teacher) under several option sets, with light diagnostics.

    Parameters
    ----------
    variants : sequence of dict
        Each a set of debugger options over ``options`` (e.g. ``{"method": "ce"}``,
        ``{"method": "ucmkd", "inner_lr": 0.1}``).
    task, epochs, lab, progress, **options
        As :func:`compare_teacher_grad`.

    Returns
    -------
    table : pandas.DataFrame
        One row per variant: student test accuracy (best val), its difference with the ``ce`` variant
        when there is one (points, one seed), the mean inner shift, the teacher head's accuracy on student
        features and mean κ̂ at the last epoch.
    figures : dict (:func:`variant_figures`)
    results : dict label -> result
    """
    import pandas as pd

    from .debugger import DebugSession

    from ._checks import need_sequence
    need_sequence(variants, "variants", "a list of dicts of debugger options, e.g. [{'method': 'ce'}, {'method': 'ucmkd'}]")
    variants = list(variants)
    if not variants or not all(isinstance(v, dict) for v in variants):
        raise ValueError(f"variants must be a non-empty list of dicts of debugger options; got {variants!r}")
    lab = lab_or_default(lab)
    sink = make_sink(progress)
    results = {}
    for i, v in enumerate(variants):
        name = _label(v)
        if sink is not None:
            sink("comparison", i, len(variants), name)
        opts = {**LIGHT_DIAGNOSTICS, **options, **v}
        results[name], _ = DebugSession(task=task, epochs=epochs, lab=lab, **opts).run(figures=False)
    if sink is not None:
        sink("comparison", len(variants), len(variants), "done")
        sink("done", 1, 1, "")
    ce = next((r["student_test_acc"] for r in results.values() if r.get("method") == "ce"), None)
    rows = []
    for name, r in results.items():
        h = [x for x in r["history"] if "epoch" in x]
        shifts = [x["inner_shift"] for x in h if x.get("inner_shift") is not None]
        acc = r.get("student_test_acc")
        rows.append({"variant": name, "student test acc (best val)": acc,
                     "Δ vs ce (points, 1 seed)": (None if ce is None or acc is None or r.get("method") == "ce"
                                                  else round(100 * (acc - ce), 2)),
                     "mean inner shift ‖φ̃ − φ‖": (sum(shifts) / len(shifts)) if shifts else None,
                     "teacher head on student features (val acc)": h[-1].get("teacher_head_on_student_acc"),
                     "mean κ̂ (last epoch)": h[-1].get("kappa_mean")})
    table = make_table(pd.DataFrame(rows).set_index("variant"),
                       formats={"student test acc (best val)": PCT, "Δ vs ce (points, 1 seed)": "{:+.2f}",
                                "mean inner shift ‖φ̃ − φ‖": "{:.3g}",
                                "teacher head on student features (val acc)": PCT, "mean κ̂ (last epoch)": "{:.3f}"},
                       notes=["Δ vs ce: a dash (—) on the `ce` row (it is the reference); one seed.",
                              "mean inner shift: a dash (—) where a method takes no inner steps (only `ucmkd` "
                              "does)."])
    return table, variant_figures(results), results
