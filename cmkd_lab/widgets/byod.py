"""``04_bring_your_own_data``: your arrays → ``CrossModalTask.from_arrays`` →
teacher, student, diagnostics, figures.

:func:`demo_arrays` makes stand-in arrays (scikit-learn generated, or a slice
of the built-in HAPT task) shaped like a user's; :func:`task_overview`
checks what the task holds; :func:`run_byod` distils a student with a method
and with cross-entropy alone, so the two can be compared.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from .._validation import check_choice, check_int
from .settings import LabSettings
from ._checks import lab_or_default

__all__ = ["DEMO_KINDS", "demo_arrays", "task_overview", "run_byod"]

DEMO_KINDS = ("sklearn", "hapt-slice")


def _sklearn_arrays(n: int, seed: int) -> dict:
    from sklearn.datasets import make_classification

    # One latent classification problem seen through two different "sensors":
    # the teacher's view is a linear mix of the informative features, the
    # student's a noisier nonlinear one. Teacher and student samples are
    # different instances (unpaired); the teacher view of the student's own
    # instances is kept as paired_teacher_x for the paired baselines.
    X, y = make_classification(n_samples=2 * n, n_features=12, n_informative=8, n_redundant=0, n_classes=4,
                               n_clusters_per_class=1, class_sep=1.6, random_state=seed)
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(12, 20)) / np.sqrt(12)  # teacher mixing (12 -> 20)
    B = rng.normal(size=(12, 16)) / np.sqrt(12)  # student mixing (12 -> 16)
    teacher_view = X @ A + 0.1 * rng.normal(size=(2 * n, 20))  # (2n, 20)
    student_view = np.tanh(X @ B) + 0.4 * rng.normal(size=(2 * n, 16))  # (2n, 16)
    t, s = slice(0, n), slice(n, 2 * n)
    return {"teacher_x": teacher_view[t].astype(np.float32), "teacher_y": y[t],
            "student_x": student_view[s].astype(np.float32), "student_y": y[s],
            "paired_teacher_x": teacher_view[s].astype(np.float32),
            "class_names": ["class A", "class B", "class C", "class D"],
            "teacher_modality": "sensor A (linear view)", "student_modality": "sensor B (noisy nonlinear view)"}


def _hapt_arrays(n: int, seed: int) -> dict:
    from ..data import load_task

    task = load_task("hapt", fast=True, seed=seed)
    rng = np.random.default_rng(seed)

    def pool(side):
        x = np.concatenate([np.asarray(side[s].x) for s in ("train", "val", "test")])  # (N, 3, 128)
        y = np.concatenate([side[s].y for s in ("train", "val", "test")])
        keep = np.sort(rng.choice(len(y), size=min(n, len(y)), replace=False))
        return x[keep], y[keep]

    tx, ty = pool(task.teacher)
    sx, sy = pool(task.student)
    return {"teacher_x": tx, "teacher_y": ty, "student_x": sx, "student_y": sy, "paired_teacher_x": None,
            "class_names": list(task.class_names), "teacher_modality": task.teacher_modality,
            "student_modality": task.student_modality}


def demo_arrays(kind: str = "sklearn", *, n: Optional[int] = None, seed: int = 0,
                lab: Optional[LabSettings] = None) -> dict:
    """Arrays shaped like a user's two modalities.

    Parameters
    ----------
    kind : {"sklearn", "hapt-slice"}
        ``sklearn``: a generated 4-class problem seen through two views,
        teacher (N, 20) and student (N, 16). ``hapt-slice``: windows of the
        built-in HAPT task, accelerometer (N, 3, 128) and gyroscope (N, 3, 128),
        pooled over its splits (re-split by ``from_arrays``).
    n : int, optional
        Samples per modality (default 1500 in fast mode, 4000 otherwise).
    seed : int

    Returns
    -------
    dict with ``teacher_x``, ``teacher_y``, ``student_x``, ``student_y``,
    ``paired_teacher_x`` (or None), ``class_names``, ``teacher_modality``,
    ``student_modality``
    """
    check_choice("kind", kind, DEMO_KINDS)
    lab = lab_or_default(lab)
    n = (1500 if lab.fast else 4000) if n is None else n
    check_int("n", n, minimum=50)
    check_int("seed", seed, minimum=0)
    return _sklearn_arrays(n, seed) if kind == "sklearn" else _hapt_arrays(n, seed)


def task_overview(task):
    """Sizes, input shapes and class counts of a task, per modality and split.

    Returns
    -------
    pandas.DataFrame
        One row per (modality, split): samples, per-sample input shape, the
        encoder kind, and the count of each class.
    """
    import pandas as pd

    from ..data import CrossModalTask

    if not isinstance(task, CrossModalTask):
        raise TypeError(f"task must be a CrossModalTask (e.g. CrossModalTask.from_arrays(...)); got "
                        f"{type(task).__name__}")
    rows = []
    for side_name, side, enc in (("teacher", task.teacher, task.teacher_encoder),
                                 ("student", task.student, task.student_encoder)):
        for s in ("train", "val", "test"):
            counts = np.bincount(side[s].y, minlength=task.num_classes)
            row = {"modality": side_name, "split": s, "samples": len(side[s]),
                   "input shape": tuple(side[s].x.shape[1:]),
                   "encoder": enc.get("kind") if isinstance(enc, dict) else getattr(enc, "__name__", "custom")}
            row.update({str(c): int(k) for c, k in zip(task.class_names, counts)})
            rows.append(row)
    return pd.DataFrame(rows).set_index(["modality", "split"])


def run_byod(task, *, method: str = "ucmkd", baseline: Optional[str] = "ce", epochs: Optional[int] = None,
             teacher_epochs: Optional[int] = None, seed: int = 0, lab: Optional[LabSettings] = None, progress=True,
             **options) -> Tuple[Dict[str, dict], Dict[str, object]]:
    """Distil a student on your task with ``method`` (and ``baseline`` for comparison).

    Parameters
    ----------
    task : CrossModalTask
        E.g. from ``CrossModalTask.from_arrays``.
    method : str
    baseline : str or None
        A second method on the same teacher and data (default ``ce``: no teacher).
    epochs, teacher_epochs, seed, lab, progress, **options
        As :func:`~cmkd_lab.widgets.quickstart.run_quickstart`.

    Returns
    -------
    results : dict method -> result
    figures : dict title -> go.Figure
        The main run's report figures, plus ``"Validation accuracy: <method>
        vs <baseline>"``.
    """
    from ..data import CrossModalTask
    from .quickstart import run_quickstart, run_with_baseline

    if not isinstance(task, CrossModalTask):
        raise TypeError(f"task must be a CrossModalTask (build one with CrossModalTask.from_arrays); got "
                        f"{type(task).__name__}")
    from ..distill.methods import available_methods
    check_choice("method", method, available_methods())  # both names before any training
    if baseline is not None and baseline != "":
        check_choice("baseline", baseline, available_methods())
    lab = lab_or_default(lab)
    kw = dict(epochs=epochs, teacher_epochs=teacher_epochs, seed=seed, lab=lab, progress=progress, **options)
    if baseline and baseline != method:
        return run_with_baseline(task=task, method=method, baseline=baseline, **kw)
    result, figures = run_quickstart(task=task, method=method, **kw)
    return {method: result}, figures
