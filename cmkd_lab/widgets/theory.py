"""``01_theory_bound``: the bound err_S ≤ err_T + FA + LA measured on the
synthetic task, as plain functions (:func:`bound_point`, :func:`bound_sweep`)
and figures; :class:`~cmkd_lab.widgets.theory_panel.BoundPanel` puts sliders
on them.

Each point trains a teacher and a student on a synthetic task built with the
given knobs (:func:`cmkd_lab.data.make_synthetic_task`) and reads the bound's
terms from :class:`cmkd_lab.diagnostics.DiagnosticsCallback` at the last
epoch, on held-out (validation) reference sets.
"""
from __future__ import annotations

import warnings
from typing import Dict, Optional, Sequence

import numpy as np

from .._validation import check_choice, check_int
from .runner import RunSession, make_sink
from .settings import LabSettings
from ._checks import lab_or_default

__all__ = ["THEORY_KNOBS", "KNOB_RANGES", "THEORY_METHODS", "bound_point", "bound_sweep", "bound_compare",
           "bound_point_figure", "bound_sweep_figure", "bound_check_figure", "bound_table", "BOUND_KEYS", "INV_E"]

INV_E = 0.36787944117144233  # 1/e: the most p·log(1/p) can be

THEORY_KNOBS = ("gap", "rotation", "noise", "overlap", "label_shift")
# (min, max, step, default) of each knob's slider.
KNOB_RANGES = {"gap": (0.0, 5.0, 0.25, 1.0), "rotation": (0.0, 3.1, 0.1, 0.5), "noise": (0.0, 2.0, 0.1, 0.3),
               "overlap": (0.2, 3.0, 0.1, 1.0), "label_shift": (0.0, 3.0, 0.25, 0.0)}
THEORY_METHODS = ("ce", "fa", "la", "ucmkd", "ucmkd-joint")
BOUND_KEYS = ("bound_err_t", "bound_fa", "bound_la", "bound_sum", "bound_err_s", "bound_slack", "bound_holds",
              "bound_w1", "bound_tau", "bound_transfer", "bound_err_t01", "bound_err_s01", "kappa_mean", "purity",
              "purity_chance")
BOUND_TERMS = ("bound_err_t", "bound_fa", "bound_la")


def bound_point(*, gap: float = 1.0, rotation: float = 0.5, noise: float = 0.3, overlap: float = 1.0,
                label_shift: float = 0.0, method: str = "ce", lambda_fa: float = 1.0, la_teacher_grad: str = "none",
                epochs: Optional[int] = None, teacher_epochs: Optional[int] = None, n: Optional[int] = None,
                seed: int = 0, lab: Optional[LabSettings] = None, progress=None) -> dict:
    """The bound's terms for one setting of the synthetic task's knobs.

    Parameters
    ----------
    gap, rotation, noise, overlap, label_shift : float
        Knobs of :func:`cmkd_lab.data.make_synthetic_task`.
    method : str
        How the student is trained (``ce``, ``fa``, ``la``, ``ucmkd``, ``ucmkd-joint``).
    lambda_fa : float
        λ1 of the FA term (methods with one).
    la_teacher_grad : {"none", "as-written", "align"}
    epochs, teacher_epochs : int, optional
        Default: the lab settings' ``theory_epochs`` and ``theory_teacher_epochs``.
    n : int, optional
        Samples per modality (default ``theory_samples``).
    seed : int
    progress : None, True or callable

    Returns
    -------
    dict
        The knobs and options, then ``bound_err_t``, ``bound_fa`` (= τ̂·W1),
        ``bound_la``, ``bound_sum``, ``bound_err_s``, ``bound_slack`` (sum −
        err_S), ``bound_holds``, ``bound_w1``, ``bound_tau``,
        ``bound_transfer``, 0-1 errors, ``kappa_mean``, ``purity``,
        ``purity_chance``, ``student_test_acc``, ``teacher_test_acc``,
        ``majority_acc`` (the accuracy of always answering the student's most
        frequent test class: the floor a student must beat), ``ln_k`` (the
        cross-entropy of a uniform guess over the K classes: a bound above it
        says nothing), ``student_test_counts`` (test samples per class),
        ``notes`` (warnings raised while the task was built or trained, as
        plain sentences) and ``statement`` (one sentence).
    """
    from ..data import make_synthetic_task
    from ..distill import DistillConfig

    lab = lab_or_default(lab)
    check_choice("method", method, THEORY_METHODS)
    epochs = lab.theory_epochs if epochs is None else epochs
    teacher_epochs = lab.theory_teacher_epochs if teacher_epochs is None else teacher_epochs
    n = lab.theory_samples if n is None else n
    DistillConfig.check_options({"epochs": epochs, "teacher_epochs": teacher_epochs, "seed": seed})
    check_int("n", n, minimum=100)
    knobs = dict(gap=float(gap), rotation=float(rotation), noise=float(noise), overlap=float(overlap),
                 label_shift=float(label_shift))
    cfg = DistillConfig.from_dict(dict(epochs=int(epochs), teacher_epochs=int(teacher_epochs), seed=int(seed),
                                       lambda_fa=float(lambda_fa), la_teacher_grad=la_teacher_grad,
                                       diagnostics_every=int(epochs)), source="bound_point options")
    with warnings.catch_warnings(record=True) as caught:  # said once in the table, not as a log line
        warnings.simplefilter("always", RuntimeWarning)
        task = make_synthetic_task(n_teacher=n, n_student=n, seed=seed, **knobs)
        result = RunSession(task, method, cfg, sink=make_sink(progress), n_ref=256 if lab.fast else 512,
                            n_snapshot=0, snapshot_epochs=[], permutations=20, initial=False).run()
    last = [r for r in result["history"] if "bound_sum" in r]
    if not last:
        raise RuntimeError(f"the run recorded no bound terms (status {result.get('status')!r}); "
                           "see result['diagnostics'].get('errors')")
    rec = last[-1]
    out = dict(knobs, method=method, lambda_fa=float(lambda_fa), la_teacher_grad=la_teacher_grad, epochs=epochs,
               n=n, seed=seed)
    out.update({k: rec.get(k) for k in BOUND_KEYS})
    out["student_test_acc"] = result.get("student_test_acc")
    out["teacher_test_acc"] = result.get("teacher_test_acc")
    counts = np.bincount(np.asarray(task.student["test"].y), minlength=task.num_classes)
    out["student_test_counts"] = counts.tolist()
    out["majority_acc"] = float(counts.max() / counts.sum())
    out["ln_k"] = float(np.log(task.num_classes))
    out["notes"] = "; ".join(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)))
    stmt = [r.get("bound_statement") for r in (result.get("diagnostics") or {}).get("records", [])]
    out["statement"] = stmt[-1] if stmt else None
    return out


def bound_sweep(knob: str, values: Optional[Sequence[float]] = None, *, lab: Optional[LabSettings] = None,
                progress=None, **fixed):
    """:func:`bound_point` at several values of one knob, the others fixed.

    Parameters
    ----------
    knob : one of ``THEORY_KNOBS``
    values : sequence of float, optional
        Default: ``lab.sweep_points`` values spread over the knob's range.
    **fixed
        Other arguments of :func:`bound_point`.

    Returns
    -------
    pandas.DataFrame
        One row per value (columns as :func:`bound_point`'s dict).
    """
    import pandas as pd

    check_choice("knob", knob, THEORY_KNOBS)
    if knob in fixed:
        raise ValueError(f"{knob} is the swept knob; do not also fix it (got {knob}={fixed[knob]!r})")
    lab = lab_or_default(lab)
    lo, hi, _, _ = KNOB_RANGES[knob]
    if values is None:
        values = np.round(np.linspace(lo, hi, lab.sweep_points), 3).tolist()
    values = list(values)
    if not values:
        raise ValueError("values must hold at least one value of the knob; got an empty sequence")
    sink = make_sink(progress)
    rows = []
    for i, v in enumerate(values):
        if sink is not None:
            sink("sweep", i, len(values), f"{knob} = {v}")
        rows.append(bound_point(lab=lab, **{knob: v}, **fixed))
    if sink is not None:
        sink("sweep", len(values), len(values), "done")
        sink("done", 1, 1, "")
    return pd.DataFrame(rows)


def bound_compare(variants: Sequence[dict], *, lab: Optional[LabSettings] = None, progress=None, **common):
    """:func:`bound_point` for several training choices on the same task.

    Parameters
    ----------
    variants : sequence of dict
        Each a set of :func:`bound_point` arguments (e.g. ``{"method": "fa"}``)
        applied over ``common``.
    **common
        Arguments shared by every variant (knobs, epochs …).

    Returns
    -------
    pandas.DataFrame
        One row per variant, with a ``variant`` column naming it
        (``method`` plus the options that differ from the defaults).
    """
    import pandas as pd

    from ._checks import need_sequence
    need_sequence(variants, "variants", "a list of dicts of bound_point arguments, e.g. [{'method': 'fa'}]")
    variants = list(variants)
    if not variants or not all(isinstance(v, dict) for v in variants):
        raise ValueError(f"variants must be a non-empty list of dicts of bound_point arguments; got {variants!r}")
    lab = lab_or_default(lab)
    sink = make_sink(progress)
    rows = []
    for i, v in enumerate(variants):
        label = " ".join([str(v.get("method", common.get("method", "ce")))] +
                         [f"{k}={val}" for k, val in v.items() if k != "method"])
        if sink is not None:
            sink("variants", i, len(variants), label)
        rows.append(dict(bound_point(lab=lab, **{**common, **v}), variant=label))
    if sink is not None:
        sink("variants", len(variants), len(variants), "done")
        sink("done", 1, 1, "")
    return pd.DataFrame(rows)


_TERMS = (("bound_err_t", "err<sub>T</sub> (teacher CE)", "#1F77B4"), ("bound_fa", "FA = τ̂ · W<sub>1</sub>", "#FF7F0E"),
          ("bound_la", "LA<sub>e</sub> (plug-in κ̂)", "#2CA02C"))


def _ln_k_line(fig, ln_k) -> None:
    """The cross-entropy of a uniform guess, ln K: a bound above this line is vacuous."""
    if ln_k is not None:
        fig.add_hline(y=ln_k, line=dict(color="#7F7F7F", dash="dash"),
                      annotation_text=f"ln K = {ln_k:.2f}: a uniform guess (a bound above it says nothing)",
                      annotation_position="top left")


def bound_point_figure(point: Dict, *, title: Optional[str] = None):
    """Two bars: the bound (err_T + FA + LA_e stacked) next to the measured err_S."""
    from ._deps import require_plotly

    go = require_plotly()
    from ._checks import need_mapping
    need_mapping(point, "point", "one bound point (the dict bound_point returns)")
    missing = [k for k, _, _ in _TERMS if point.get(k) is None] + [k for k in ("bound_err_s",) if point.get(k) is None]
    if missing:
        raise ValueError(f"point must carry the bound's terms (from bound_point); missing {missing}")
    fig = go.Figure()
    for k, name, c in _TERMS:
        fig.add_trace(go.Bar(x=["bound"], y=[point[k]], name=name, marker_color=c, text=[f"{point[k]:.3f}"],
                             textposition="inside"))
    holds = point.get("bound_holds")
    fig.add_trace(go.Bar(x=["err_S (measured)"], y=[point["bound_err_s"]], name="err<sub>S</sub> (student CE)",
                         marker_color="#444" if holds else "#D62728", text=[f"{point['bound_err_s']:.3f}"],
                         textposition="outside"))
    verdict = "holds" if holds else "does NOT hold"
    sub = (f"sum {point['bound_sum']:.3f} vs err_S {point['bound_err_s']:.3f}: the estimated bound {verdict} "
           f"(slack {point['bound_slack']:.3f}); τ̂ = {point['bound_tau']:.3f}, W1 = {point['bound_w1']:.3f}")
    _ln_k_line(fig, point.get("ln_k"))
    fig.update_layout(barmode="relative", template="plotly_white", height=420, yaxis_title="nats",
                      title=dict(text=(title or "err<sub>S</sub> ≤ err<sub>T</sub> + FA + LA<sub>e</sub>, measured")
                                 + f"<br><sup>{sub}</sup>"),
                      legend=dict(orientation="h", y=-0.15))
    return fig


def bound_sweep_figure(table, knob: str, *, title: Optional[str] = None):
    """Stacked bound terms per row of ``table`` (from :func:`bound_sweep` or
    :func:`bound_compare`), labelled by the column ``knob`` (a knob, or
    ``variant``), with err_S as a line; a red cross where the estimated
    bound does not hold."""
    from ._deps import require_plotly

    go = require_plotly()
    if knob not in getattr(table, "columns", ()):
        raise ValueError(f"knob must be a column of table (a knob from bound_sweep, or 'variant' from "
                         f"bound_compare); got knob={knob!r}, columns {list(getattr(table, 'columns', []))}")
    numeric = knob in THEORY_KNOBS
    t = table.sort_values(knob) if numeric else table
    x = [f"{v:g}" if numeric else str(v) for v in t[knob]]
    fig = go.Figure()
    for k, name, c in _TERMS:
        fig.add_trace(go.Bar(x=x, y=t[k].tolist(), name=name, marker_color=c, opacity=0.85))
    fig.add_trace(go.Scatter(x=x, y=t["bound_err_s"].tolist(), name="err<sub>S</sub> (measured)", mode="lines+markers",
                             line=dict(color="black", width=2)))
    bad = t[t["bound_holds"] == False]  # noqa: E712  (pandas element-wise)
    if len(bad):
        fig.add_trace(go.Scatter(x=[f"{v:g}" if numeric else str(v) for v in bad[knob]], y=bad["bound_err_s"].tolist(),
                                 mode="markers",
                                 name="bound does not hold", marker=dict(symbol="x", size=14, color="#D62728")))
    if "ln_k" in t.columns:
        _ln_k_line(fig, float(t["ln_k"].iloc[0]))
    fig.update_layout(barmode="relative", template="plotly_white", height=420, xaxis_title=knob, yaxis_title="nats",
                      title=title or (f"The bound's terms as {knob} varies" if numeric
                                      else "The bound's terms per training choice"),
                      legend=dict(orientation="h", y=-0.2))
    return fig


TABLE_COLUMNS = {"variant": "training", "gap": "gap", "overlap": "overlap", "noise": "noise",
                 "label_shift": "label shift", "bound_err_t": "err_T", "bound_fa": "FA_e = τ̂·W1",
                 "bound_w1": "W1", "bound_tau": "τ̂", "bound_la": "LA_e", "bound_sum": "sum", "ln_k": "ln K",
                 "bound_err_s": "err_S", "bound_transfer": "err_S − LA_e (≤ 1/e)", "bound_slack": "slack",
                 "bound_holds": "holds", "kappa_mean": "mean κ̂", "student_test_acc": "student test acc",
                 "majority_acc": "majority-class acc", "notes": "note"}
TABLE_LEGEND = {
    "err_T": "the teacher's cross-entropy on its own validation data (nats)",
    "FA_e = τ̂·W1": "the feature-alignment term: the teacher loss's largest measured slope τ̂ times W1",
    "W1": "the exact optimal-transport distance between the two feature sets",
    "LA_e": "the label-alignment term with the plug-in κ̂ (it can be negative)",
    "sum": "err_T + FA_e + LA_e, the bound on err_S",
    "ln K": "the cross-entropy of a uniform guess over the K classes: a sum above it is vacuous",
    "err_S": "the student's measured cross-entropy (what the bound bounds)",
    "err_S − LA_e (≤ 1/e)": "mean κ̂·(−log p_T): what the teacher's head takes off the student's loss, at most 1/e",
    "slack": "sum − err_S (below 0: the estimated bound fails)",
    "mean κ̂": "the teacher head's mean probability of the true class on the student's features",
    "majority-class acc": "always answering the student's most frequent test class: the floor a student must beat",
}


def bound_table(table, columns=None, *, legend: bool = True):
    """The columns of a :func:`bound_sweep` / :func:`bound_compare` table a reader needs, with readable
    names, formatted, and (with ``legend``) what each column means under it (a
    :class:`~cmkd_lab.widgets.tables.Table`): the knobs that vary, the terms, ln K, ``err_S − LA_e`` (at most
    1/e), the slack, and the student's accuracy next to the majority-class accuracy."""
    from .tables import PCT, make_table

    if not hasattr(table, "columns"):
        from ._checks import got
        raise TypeError(f"table must be the DataFrame bound_sweep or bound_compare returns; {got(table)}")
    cols = [c for c in (columns or TABLE_COLUMNS) if c in table.columns]
    knobs = [c for c in THEORY_KNOBS if c in cols and table[c].nunique() > 1]
    keep = [c for c in cols if (c not in THEORY_KNOBS or c in knobs)
            and not (c == "notes" and not table[c].fillna("").astype(bool).any())]
    shown = table[keep].rename(columns=TABLE_COLUMNS)
    skip = {"training", "holds", "note", "student test acc", "majority-class acc"} | {TABLE_COLUMNS[k] for k in knobs}
    num = {c: "{:.3f}" for c in shown.columns if c not in skip}
    notes = [f"{k}: {v}." for k, v in TABLE_LEGEND.items() if k in shown.columns] if legend else []
    return make_table(shown, formats=dict(num, **{"student test acc": PCT, "majority-class acc": PCT}), notes=notes)


def bound_check_figure(*tables, title: Optional[str] = None):
    """Why the estimated bound holds: every measured point's slack (sum − err_S) against err_T + FA_e.

    With the plug-in κ̂, err_S − LA_e = mean κ̂·(−log p_T) is at most 1/e, so slack ≥ err_T + FA_e − 1/e:
    every point lies on or above the dashed line, and the estimate can only fail (slack < 0) left of
    err_T + FA_e = 1/e (the shaded band).

    Parameters
    ----------
    *tables : DataFrame, list of bound_point dicts, or (name, either)
        :func:`bound_sweep` / :func:`bound_compare` tables; a name labels all of a table's points
        (otherwise each row's ``variant``, or its method).
    """
    import pandas as pd

    from ._deps import require_plotly
    from ..viz.curves import PALETTE

    go = require_plotly()
    frames, label = [], []
    for item in tables:
        name, tab = item if isinstance(item, tuple) else (None, item)
        if isinstance(tab, dict):
            tab = [tab]
        if isinstance(tab, list):
            tab = pd.DataFrame(tab)
        if tab is None or not len(tab):
            continue
        frames.append(tab)
        for _, r in tab.iterrows():
            v = r.get("variant")
            label.append(name or (str(v) if isinstance(v, str) else str(r["method"])))
    if not frames:
        raise ValueError("tables must hold at least one bound_point row (from bound_sweep or bound_compare)")
    t = pd.concat(frames, ignore_index=True)
    x = (t["bound_err_t"] + t["bound_fa"]).astype(float)
    y = t["bound_slack"].astype(float)
    hi = float(max(x.max(), INV_E) * 1.1)
    fig = go.Figure()
    fig.add_vrect(x0=0, x1=INV_E, fillcolor="#D62728", opacity=0.08, line_width=0,
                  annotation_text="failure possible only here", annotation_position="top left")
    fig.add_trace(go.Scatter(x=[0, hi], y=[-INV_E, hi - INV_E], mode="lines", name="floor: slack = err_T + FA_e − 1/e",
                             line=dict(color="#D62728", dash="dash")))
    fig.add_hline(y=0, line=dict(color="black", width=1))
    for i, lab in enumerate(dict.fromkeys(label)):
        sel = [j for j, l in enumerate(label) if l == lab]
        fig.add_trace(go.Scatter(x=x.iloc[sel], y=y.iloc[sel], mode="markers", name=lab,
                                 marker=dict(size=10, color=PALETTE[i % len(PALETTE)]),
                                 customdata=t[["bound_err_s", "bound_transfer"]].iloc[sel].to_numpy(),
                                 hovertemplate="err_T + FA_e %{x:.3f}<br>slack %{y:.3f}<br>err_S %{customdata[0]:.3f}"
                                               "<br>err_S − LA_e %{customdata[1]:.3f}<extra>" + lab + "</extra>"))
    fig.update_layout(template="plotly_white", height=440, xaxis_title="err<sub>T</sub> + FA<sub>e</sub> (nats)",
                      yaxis_title="slack = err<sub>T</sub> + FA<sub>e</sub> + LA<sub>e</sub> − err<sub>S</sub> (nats)",
                      xaxis_range=[0, hi], legend=dict(orientation="h", y=-0.2),
                      title=title or "Every measured point against the floor the 1/e cap sets<br><sup>below 0: the "
                                     "estimated bound fails; the dashed line is the lowest a point can sit</sup>")
    return fig
