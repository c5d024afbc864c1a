"""``00_quickstart``: from nothing to a distilled student on a real built-in
task, with its report figures (plain function; progress bars in a notebook)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

from .runner import RunSession, load_named_task, make_sink
from .settings import LabSettings, settings as lab_settings

__all__ = ["run_quickstart", "result_summary", "report_figures"]


def report_figures(result: dict, *, lab: Optional[LabSettings] = None) -> Dict[str, object]:
    """The run report's figures (:func:`cmkd_lab.viz.run_figures`) as a dict title -> figure.

    The feature overlay uses PCA in fast mode and UMAP otherwise.
    """
    from ..viz import run_figures

    lab = lab or lab_settings()
    return dict(run_figures(result, projection="pca" if lab.fast else "umap", seed=int(result.get("seed") or 0)))


def result_summary(result: dict):
    """One row per run: task, method, pairing, status, accuracies, time.

    Parameters
    ----------
    result : dict or list of dict
        Run results (``result.json``).

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    results = result if isinstance(result, (list, tuple)) else [result]
    rows = []
    for r in results:
        if not isinstance(r, dict) or "history" not in r:
            raise TypeError("result must be a run's result dict (with 'history') or a list of them")
        rows.append({"task": r.get("task"), "method": r.get("method"), "pairing": r.get("pairing"),
                     "status": r.get("status"), "epochs": r.get("epochs_done"),
                     "teacher test acc": r.get("teacher_test_acc"),
                     "student test acc (best val)": r.get("student_test_acc"),
                     "student test acc (last)": r.get("student_test_acc_last"),
                     "best epoch": r.get("best_epoch"), "train time (s)": round(float(r.get("wall_s") or 0.0), 1)})
    return pd.DataFrame(rows)


def run_quickstart(*, task="hapt", method: str = "ucmkd", epochs: Optional[int] = None,
                   teacher_epochs: Optional[int] = None, seed: int = 0, out=None, lab: Optional[LabSettings] = None,
                   progress=True, **options) -> Tuple[dict, Dict[str, object]]:
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
        True: progress bars (widgets in a notebook, text elsewhere).
    **options
        Any other :class:`~cmkd_lab.distill.DistillConfig` option.

    Returns
    -------
    result : dict
        As ``result.json``, with ``diagnostics``.
    figures : dict title -> go.Figure
        The report's figures.
    """
    from .._validation import check_int
    from ..distill import DistillConfig

    lab = lab or lab_settings()
    epochs = lab.epochs if epochs is None else epochs
    teacher_epochs = lab.teacher_epochs if teacher_epochs is None else teacher_epochs
    check_int("epochs", epochs, minimum=1)
    check_int("teacher_epochs", teacher_epochs, minimum=1)
    check_int("seed", seed, minimum=0)
    config = DistillConfig.from_dict(dict(epochs=epochs, teacher_epochs=teacher_epochs, seed=seed,
                                          diagnostics_every=lab.diagnostics_every, **options),
                                     source="quickstart options")
    the_task = load_named_task(task, seed=seed, fast=lab.task_fast)
    sink = make_sink(progress)
    result = RunSession(the_task, method, config, sink=sink, n_ref=256 if lab.fast else 512,
                        permutations=50 if lab.fast else 200).run()
    if sink is not None:
        sink("figures", 0, 1, "drawing the report's figures")
    figures = report_figures(result, lab=lab)
    if out is not None:
        from ..report import write_report
        from ..store import write_json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "result.json", result)
        write_report(result, out / "report.html")
    if sink is not None:
        sink("done", 1, 1, result.get("status", ""))
    return result, figures
