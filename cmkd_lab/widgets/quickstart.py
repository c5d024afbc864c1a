"""``00_quickstart``: from nothing to a distilled student on a real built-in
task, with its report figures (plain function; progress bars in a notebook)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

from .runner import RunSession, load_named_task, make_sink
from .settings import LabSettings
from ._checks import lab_or_default

__all__ = ["run_quickstart", "run_with_baseline", "result_summary", "report_figures"]


def report_figures(result: dict, *, lab: Optional[LabSettings] = None) -> Dict[str, object]:
    """The run report's figures (:func:`cmkd_lab.viz.run_figures`) as a dict title -> figure.

    The feature overlay uses PCA in fast mode and UMAP otherwise.
    """
    from ..viz import run_figures
    from ._checks import need_run
    need_run(result)

    lab = lab_or_default(lab)
    return dict(run_figures(result, projection="pca" if lab.fast else "umap", seed=int(result.get("seed") or 0)))


def result_summary(result: dict):
    """One row per run: task, method, pairing, status, accuracies, time; with a ``ce`` run of the same
    task and seed among them, each other row also gets its difference with it (points of accuracy).

    Parameters
    ----------
    result : dict, list of dict, or dict name -> result
        Run results (``result.json``).

    Returns
    -------
    Table
        A pandas DataFrame shown with accuracies in %, "—" where a value does not apply, and notes.
    """
    import pandas as pd

    from .tables import PCT, make_table

    if isinstance(result, dict) and "history" not in result and result and \
            all(isinstance(v, dict) and "history" in v for v in result.values()):
        result = list(result.values())
    results = result if isinstance(result, (list, tuple)) else [result]
    rows = []
    for r in results:
        if not isinstance(r, dict) or "history" not in r:
            from ._checks import got
            raise TypeError(f"result must be a run's result dict (with 'history') or a list of them; {got(r)}")
        rows.append({"task": r.get("task"), "method": r.get("method"), "pairing": r.get("pairing"),
                     "seed": r.get("seed"), "status": r.get("status"), "epochs": r.get("epochs_done"),
                     "teacher test acc": r.get("teacher_test_acc"),
                     "student test acc (best val)": r.get("student_test_acc"),
                     "student test acc (last)": r.get("student_test_acc_last"),
                     "best epoch": r.get("best_epoch"), "train time (s)": round(float(r.get("wall_s") or 0.0), 1)})
    ce = {(x["task"], x["seed"]): x["student test acc (best val)"] for x in rows if x["method"] == "ce"}
    notes = []
    if ce and len(rows) > 1:
        for x in rows:
            ref = ce.get((x["task"], x["seed"]))
            acc = x["student test acc (best val)"]
            x["Δ vs ce (points, 1 seed)"] = (None if x["method"] == "ce" or ref is None or acc is None
                                              else round(100 * (acc - ref), 2))
        notes.append("Δ vs ce: this run's test accuracy minus the `ce` run's, same task and seed, in points; a "
                     "dash (—) on the `ce` row itself (it is the reference). One seed: a point or two either way "
                     "is noise.")
    pct = {c: PCT for c in ("teacher test acc", "student test acc (best val)", "student test acc (last)")}
    return make_table(pd.DataFrame(rows), formats=dict(pct, **{"train time (s)": "{:.1f}",
                                                               "Δ vs ce (points, 1 seed)": "{:+.2f}"}), notes=notes)


def run_quickstart(*, task="hapt", method: str = "ucmkd", epochs: Optional[int] = None,
                   teacher_epochs: Optional[int] = None, seed: int = 0, out=None, lab: Optional[LabSettings] = None,
                   progress=True, figures: bool = True, **options) -> Tuple[dict, Dict[str, object]]:
    """Train a teacher (cached) and distil a student; returns ``(result, figures)``.

    Parameters
    ----------
    task : str or CrossModalTask
        Default ``hapt`` (accelerometer teacher → gyroscope student, real data
        shipped with the package).
    method : str
    epochs, teacher_epochs : int, optional
        Default: the lab settings (fast or full mode).
    seed : int
    out : path, optional
        Also write ``out/result.json`` and ``out/report.html``.
    lab : LabSettings, optional
    progress : None, True or callable
        True: progress bars (widgets in a notebook, text elsewhere) and, at the end, one line per phase.
    figures : bool
        Draw the report's figures (and write the report with ``out``); False returns ``(result, {})``.
    **options
        Any other :class:`~cmkd_lab.distill.DistillConfig` option.

    Returns
    -------
    result : dict
        As ``result.json``, with ``diagnostics``.
    figures : dict title -> go.Figure
        The report's figures.
    """
    from ..distill import DistillConfig

    lab = lab_or_default(lab)
    epochs = lab.epochs if epochs is None else epochs
    teacher_epochs = lab.teacher_epochs if teacher_epochs is None else teacher_epochs
    # each by the config's own rule (the upper bound on epochs included), before anything is loaded
    DistillConfig.check_options({"epochs": epochs, "teacher_epochs": teacher_epochs, "seed": seed})
    # the lab's diagnostics_every is a default: an option given by the caller wins (no duplicate keyword)
    config = DistillConfig.from_dict({"diagnostics_every": lab.diagnostics_every, **options, "epochs": epochs,
                                      "teacher_epochs": teacher_epochs, "seed": seed}, source="quickstart options")
    if out is not None:  # an unwritable out is named before the training, not after it
        from ..store import check_out_dir
        out = check_out_dir(out, what="out")
    the_task = load_named_task(task, seed=seed, fast=lab.task_fast)
    sink = make_sink(progress, label=method)
    result = RunSession(the_task, method, config, sink=sink, n_ref=256 if lab.fast else 512,
                        permutations=50 if lab.fast else 200).run()
    if not figures:
        if sink is not None:
            sink("done", 1, 1, result.get("status", ""))
        return result, {}
    if sink is not None:
        sink("figures", 0, 1, "drawing the report's figures")
    figs = report_figures(result, lab=lab)
    if out is not None:
        from ..report import write_report
        from ..store import write_json

        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "result.json", result)
        write_report(result, out / "report.html", figures=figs)  # the figures drawn once
    if sink is not None:
        sink("figures", 1, 1, f"{len(figs)} figures" + (f", report in {out / 'report.html'}" if out else ""))
        sink("done", 1, 1, result.get("status", ""))
    return result, figs


def run_with_baseline(*, task="hapt", method: str = "ucmkd", baseline: str = "ce", lab: Optional[LabSettings] = None,
                      out=None, progress=True, **options) -> Tuple[Dict[str, dict], Dict[str, object]]:
    """:func:`run_quickstart` for ``method``, then the same for ``baseline`` (default ``ce``: the student
    alone, with the same seed, data and teacher), so that what distillation adds can be read off.

    The baseline run keeps its diagnostics (they say how far a student that never saw the teacher sits
    from it) but draws no figures of its own; the figures are the method's report figures plus
    ``"Validation accuracy: <method> vs <baseline>"``.

    Returns
    -------
    results : dict method -> result (``method`` first)
    figures : dict title -> go.Figure
    """
    from .figures import curve_figure

    if baseline == method:
        raise ValueError(f"baseline must differ from method (both {method!r})")
    from ..distill import get_method
    for name, value in (("method", method), ("baseline", baseline)):  # both known before anything trains
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a method name (see python -m cmkd_lab methods); got {value!r}")
        try:
            get_method(value)
        except ValueError as e:
            raise ValueError(str(e).replace("method must", f"{name} must").replace("method=", f"{name}=")) from None
    results = {}
    results[method], figures = run_quickstart(task=task, method=method, lab=lab, out=out, progress=progress,
                                              **options)
    results[baseline], _ = run_quickstart(task=task, method=baseline, lab=lab, progress=progress,
                                          figures=False, **options)
    by_epoch = {}
    for m in (method, baseline):
        for r in results[m]["history"]:
            if "epoch" in r:
                by_epoch.setdefault(r["epoch"], {"epoch": r["epoch"]})[m] = r.get("val_acc")
    hist = [by_epoch[e] for e in sorted(by_epoch)]
    K = len(((results[method].get("diagnostics") or {}).get("class_names")) or []) or None
    fig = curve_figure(hist, [method, baseline], title=f"Student validation accuracy: {method} vs {baseline} "
                                                       f"(same seed, data and teacher)",
                       yaxis_title="validation accuracy", yaxis_range=(0, 1.02))
    if K:
        fig.add_hline(y=1 / K, line=dict(color="grey", dash="dot"), annotation_text=f"chance 1/K = {1 / K:.2f}",
                      annotation_position="bottom right")
    figures = dict(figures)
    figures[f"Validation accuracy: {method} vs {baseline}"] = fig
    return results, figures
