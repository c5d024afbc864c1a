"""What a transfer looks like: the positive control beside its null (notebook 02).

The synthetic task with every factor that decides the label seen by both views (``shared_decisive=1``)
against the same task where the student sees none of them (``shared_decisive=0``), few labels and the rest
of the student's data unlabelled. Two sources:

* the shipped five-seed control benches (``controls_synthetic_shared`` / ``_unshared``):
  :func:`transfer_table` — each method's paired difference with ``ce``, the paired ceiling, the headroom
  recovered and the teacher controls, side by side for the two tasks;
* one live run per task of ``ce`` and ``align-pl`` with the diagnostics and the gradient audit on
  (:func:`transfer_runs`, :func:`transfer_figure`): what the student's features and gradients do when a
  transfer happens, and when it cannot.
"""
from __future__ import annotations

from typing import Dict, Optional

from .settings import LabSettings, settings
from .tables import make_table
from ._checks import lab_or_default

__all__ = ["TRANSFER_SETS", "transfer_table", "transfer_runs", "transfer_figure", "transfer_note"]

# The two shipped benches: task variant -> file stem (scripts/make_results.sh makes them).
TRANSFER_SETS = {"shared": "controls_synthetic_shared", "unshared": "controls_synthetic_unshared"}
_WORDS = {"shared": "decisive factors shared (s = 1)", "unshared": "decisive factors teacher-only (s = 0)"}


def _load(which: str) -> Optional[dict]:
    from ..results import current_bench, load_bench
    from .shipped import shipped_bench
    p = shipped_bench(TRANSFER_SETS[which])
    if p is None:
        return None
    try:
        res = current_bench(load_bench(p))
    except (OSError, ValueError):
        return None
    return res


def _ci(row: Optional[dict], key_mean="delta_mean", lo="ci_low", hi="ci_high", scale=100.0) -> Optional[str]:
    if not row or row.get(key_mean) is None:
        return None
    if row.get("cannot_tell") or row.get(lo) is None:
        return f"{scale * row[key_mean]:+.1f} (cannot tell)"
    star = "*" if row.get("significant") else ""
    return f"{star}{scale * row[key_mean]:+.1f} [{scale * row[lo]:+.1f}, {scale * row[hi]:+.1f}]{star}"


def transfer_table(methods=("align-pl", "ucmkd-joint[la_teacher_grad=align]", "fa", "entmin", "ceiling-kd",
                            "ceiling-pl")):
    """The positive control and its null side by side, from the shipped five-seed benches: for each method
    and task, Δ vs ``ce`` in points with its 95 % interval (``*``: beyond noise), the headroom recovered
    with its interval, real − random and real − shuffled-labels, and the verdict. A note says which bench
    is not shipped yet."""
    from ..experiments.engine import check_method_name, parse_method
    from ..results.tables import headroom_text
    from ._checks import need_list
    methods = need_list(methods, "methods", "method names or variants", "['align-pl', 'fa']")
    for m in methods:  # a typo is named, not a table that silently leaves the method out
        check_method_name(parse_method(m)[0] if isinstance(m, str) else m)
    rows, missing = [], []
    for which in ("shared", "unshared"):
        res = _load(which)
        if res is None:
            missing.append(_WORDS[which])
            continue
        comp = {r["method"]: r for r in res.get("comparisons", []) if r.get("values", {}).get("teacher_control",
                                                                                               "none") == "none"}
        ctrl = {r["method"]: r for r in res.get("control_table", [])}
        ce = next((r for r in res.get("comparisons", []) if r["method"] == "ce"), None)
        for m in methods:
            c = comp.get(m)
            if c is None:
                continue
            k = ctrl.get(m, {})
            # in percent, as every table and page writes it; a dash where there is nothing to recover
            hr = headroom_text(c) if c.get("headroom") is not None else None
            rows.append({"task": _WORDS[which], "method": m,
                         "ce acc": None if ce is None else ce.get("acc_mean"),
                         "acc": c.get("acc_mean"), "Δ vs ce": _ci(c),
                         "headroom": hr,
                         "real − random": _ci((k.get("contrast") or {}).get("random"), "mean"),
                         "real − shuffled": _ci((k.get("contrast") or {}).get("shuffled-labels"), "mean"),
                         "verdict": "reference (pairs)" if c.get("is_ceiling") else k.get("verdict", c.get("verdict"))})
    legend = {"ce acc": "the student alone (`ce`), mean test accuracy over five seeds",
             "acc": "the method's mean test accuracy", "Δ vs ce": "method − `ce` in points, paired by seed, "
             "[95 % interval]; * where the interval excludes zero",
             "headroom": "(method − ce) / (ceiling − ce): the share of what the paired ceiling gains that the "
                         "method gains without pairs, [95 % Fieller interval]; a dash (—) where the ceiling is not "
                         "above `ce` (nothing to recover)",
             "real − random": "the method with the real teacher minus itself with an untrained teacher",
             "real − shuffled": "minus itself with a teacher trained on shuffled labels",
             "verdict": "\"gain, the teacher's\": beats `ce` and itself under both controls"}
    import pandas as pd
    from .tables import PCT
    notes = [f"{k}: {v}" for k, v in legend.items()]
    if missing:
        notes.append("Not shipped with this release yet: " + "; ".join(missing) + " (made by "
                     "`bash scripts/make_results.sh positive`).")
    return make_table(pd.DataFrame(rows, columns=["task", "method", *legend]), formats={"ce acc": PCT, "acc": PCT},
                      notes=notes)


def transfer_runs(lab: Optional[LabSettings] = None, *, seed: int = 0, progress: bool = False) -> Dict[str, dict]:
    """One run each of ``ce`` and ``align-pl`` on the task with shared decisive factors and on the one
    without, with the diagnostics (plan purity, the teacher head on the student's features) and the gradient
    audit every epoch: ``{"shared": {"ce": result, "align-pl": result}, "unshared": {...}}``.

    Full mode: 10,000 student samples, 0.2 % of them labelled (14 labels), 300 optimiser steps; fast mode:
    3,000 samples, 1 % labelled, 60 steps (a smoke run: its numbers are not the shipped ones).
    """
    from ..data import load_task
    from ..distill import DistillConfig
    from ..experiments.job import distill
    lab = lab_or_default(lab)
    big = not lab.fast
    out: Dict[str, dict] = {}
    for which, s in (("shared", 1.0), ("unshared", 0.0)):
        task = load_task("synthetic", seed=seed, shared_decisive=s, n_student=10000 if big else 3000)
        cfg = DistillConfig(epochs=30 if big else 3, min_steps=300 if big else 60, student_fraction=0.002 if big
                            else 0.01, student_unlabelled=True, teacher_epochs=30 if big else 5, seed=seed,
                            audit_every=1, diagnostics_every=10 if big else 20)
        out[which] = {m: distill(task, m, cfg, progress=progress) for m in ("ce", "align-pl")}
    return out


def _last(result: dict, key: str):
    v = [r[key] for r in result.get("history", []) if isinstance(r.get(key), (int, float))]
    return v[-1] if v else None


def transfer_figure(runs: Dict[str, dict]):
    """Grouped bars for the two tasks: the student's test accuracy with ``ce`` and with ``align-pl``, the
    frozen teacher head's accuracy on ``align-pl``'s student features (validation, last epoch) and the class
    purity of its transport plan (last diagnosed epoch), with chance 1/K dotted."""
    import plotly.graph_objects as go
    from ..viz.curves import PALETTE
    from ._checks import need_runs
    need_runs(runs, "runs", "task -> {method: result} (what transfer_runs returns)")
    names = [_WORDS[w] for w in runs]
    series = [("ce: student test accuracy", lambda r: r["ce"].get("student_test_acc")),
              ("align-pl: student test accuracy", lambda r: r["align-pl"].get("student_test_acc")),
              ("align-pl: teacher head on the student's features",
               lambda r: _last(r["align-pl"], "teacher_head_on_student_acc")),
              ("align-pl: transport-plan class purity", lambda r: _last(r["align-pl"], "purity"))]
    fig = go.Figure()
    for i, (label, get) in enumerate(series):
        fig.add_trace(go.Bar(x=names, y=[get(runs[w]) for w in runs], name=label, marker_color=PALETTE[i]))
    k = next(iter(runs.values()))["ce"].get("task_summary", {}).get("classes") or 5
    fig.add_hline(y=1 / k, line=dict(color="grey", dash="dot"), annotation_text=f"chance 1/K = {1 / k:.2f}")
    fig.update_layout(barmode="group", title="One seed: a transfer (left) and its null (right)",
                      yaxis_title="accuracy / purity", yaxis_range=[0, 1.02], template="plotly_white")
    return fig


def transfer_note(runs: Dict[str, dict]) -> str:
    """One sentence per task reading the live runs' numbers (one seed: an illustration, not a comparison)."""
    from ._checks import need_runs
    need_runs(runs, "runs", "task -> {method: result} (what transfer_runs returns)")
    lines = []
    for w, r in runs.items():
        a, b = r["ce"].get("student_test_acc"), r["align-pl"].get("student_test_acc")
        th = _last(r["align-pl"], "teacher_head_on_student_acc")
        if a is None or b is None:
            continue
        lines.append(f"*{_WORDS[w]}*: `ce` {100 * a:.1f} %, `align-pl` {100 * b:.1f} % "
                     f"({100 * (b - a):+.1f} points on this one seed)"
                     + ("" if th is None else f"; the teacher head reads {100 * th:.1f} % of the student's "
                        "validation features correctly"))
    return "\n\n".join(lines) + ("\n\nOne seed shows what happens, not whether it is beyond noise: the table "
                                 "above, over five seeds with its intervals, says that.")
