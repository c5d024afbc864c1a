"""The three ``la_teacher_grad`` choices side by side (docs/theory.md, "a sign to
make explicit").

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

from .settings import LabSettings, settings as lab_settings

__all__ = ["compare_teacher_grad", "teacher_grad_figures"]


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
    from ._deps import require_plotly
    from plotly.subplots import make_subplots

    go = require_plotly()
    from ..viz.curves import PALETTE

    head = make_subplots(rows=1, cols=2, subplot_titles=("teacher head accuracy on student features (val)",
                                                         "mean κ̂ = p_T(y | z_S)"))
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
    head.update_xaxes(title_text="epoch")
    head.update_layout(title="la_teacher_grad: what the LA gradient does to the teacher head's reading of student "
                             "features", template="plotly_white", height=380, legend_title_text="la_teacher_grad")
    stud.update_layout(title="Student validation accuracy per epoch", xaxis_title="epoch", yaxis_title="accuracy",
                       template="plotly_white", height=330, legend_title_text="la_teacher_grad")
    return {"teacher_head": head, "student": stud}


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

    lab = lab or lab_settings()
    modes = list(modes)
    if not modes:
        raise ValueError("modes must list at least one la_teacher_grad value; got an empty list")
    for m in modes:
        if m not in TEACHER_GRAD_MODES:
            raise ValueError(f"modes must hold values of {TEACHER_GRAD_MODES}; got {m!r}")
    if method not in ("la", "ucmkd", "ucmkd-joint"):
        raise ValueError(f"method must have an LA term ('la', 'ucmkd' or 'ucmkd-joint'); got method={method!r}")
    results = {}
    for m in modes:
        s = DebugSession(task=task, method=method, la_teacher_grad=m, epochs=epochs, lab=lab, sink=progress,
                         snapshot_epochs="auto", **options)
        results[m], _ = s.run(figures=False)
    rows = []
    for m, r in results.items():
        last = [x for x in r["history"] if "epoch" in x][-1]
        rows.append({"la_teacher_grad": m, "student test acc (best val)": r["student_test_acc"],
                     "teacher head on student features (val acc)": last.get("teacher_head_on_student_acc"),
                     "mean κ̂": last.get("kappa_mean"), "LA term (last epoch)": last.get("la")})
    return pd.DataFrame(rows).set_index("la_teacher_grad"), teacher_grad_figures(results), results
