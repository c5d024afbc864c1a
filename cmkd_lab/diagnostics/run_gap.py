"""A finished run's gap, before and after distillation, through :func:`explore_gap`."""
from __future__ import annotations

import numpy as np

from .explore import explore_gap

__all__ = ["explore_run_gap", "before_after_table"]


def explore_run_gap(result: dict, **options) -> dict:
    """:func:`explore_gap` between a run's teacher features and its student's
    first and last feature snapshots (before and after distillation).

    Parameters
    ----------
    result : dict
        A run's ``result.json`` (``python -m cmkd_lab run``) or its
        ``["diagnostics"]``: ``features_teacher``, ``labels_teacher``,
        ``labels_student`` and ``snapshots`` (epoch 0 included when the
        run diagnosed the untrained student).
    **options
        Passed to :func:`explore_gap` (``names`` and labels are set here).

    Returns
    -------
    dict with ``before`` and ``after`` (GapResult), ``epochs`` [first, last],
    ``table`` (rows: quantity, before, after) and ``run`` (task, method, seed)
    """
    if not isinstance(result, dict):
        raise TypeError(f"result must be a run's result dict (result.json) or its ['diagnostics']; got "
                        f"{type(result).__name__}")
    d = result.get("diagnostics", result)
    snaps = (d or {}).get("snapshots") or []
    missing = [k for k in ("features_teacher", "labels_teacher", "labels_student") if k not in (d or {})]
    if missing or len(snaps) < 2:
        raise ValueError(f"the run must hold feature snapshots at two epochs at least (diagnostics with "
                         f"n_snapshot > 0); it has {len(snaps)} snapshot(s)"
                         + (f" and lacks {missing}" if missing else ""))
    for k in ("names", "y_a", "y_b", "pairs"):
        if k in options:
            raise ValueError(f"explore_run_gap sets {k} from the run; do not pass {k}=")
    mods = d.get("modalities") or {}
    names = ("teacher", "student")
    cn = d.get("class_names")
    zt = np.asarray(d["features_teacher"], dtype=np.float64)
    first, last = snaps[0], snaps[-1]
    out = {}
    for key, s in (("before", first), ("after", last)):
        out[key] = explore_gap(zt, np.asarray(s["features_student"], dtype=np.float64), y_a=d["labels_teacher"],
                               y_b=d["labels_student"], names=names, class_names=cn, **options)
    out["epochs"] = [int(first["epoch"]), int(last["epoch"])]
    out["run"] = {k: result.get(k) for k in ("task", "method", "seed", "pairing", "student_test_acc")}
    out["run"]["modalities"] = {"teacher": mods.get("teacher"), "student": mods.get("student")}
    out["table"] = before_after_table(out["before"], out["after"])
    return out


def before_after_table(before: dict, after: dict) -> list:
    """Rows {quantity, before, after} of the headline numbers of two :func:`explore_gap` results."""
    a, b = before["names"]

    def get(r, *path):
        for p in path:
            r = r.get(p) if isinstance(r, dict) else None
        return r

    rows = [("MMD²", ("distance", "mmd", "mmd2")), ("MMD p-value", ("distance", "mmd", "p_value")),
            ("W1", ("distance", "w1", "w1")), ("W1 / median distance", ("distance", "w1", "w1_relative")),
            ("Sinkhorn divergence", ("distance", "sinkhorn", "divergence")),
            ("centroid gap", ("distance", "centroid", "centroid_gap")),
            ("cosine between means", ("distance", "centroid", "mean_cos")),
            ("shift share of W2²", ("gap_vector", "gap", "shift_share_w2")),
            ("MMD² after centring", ("gap_vector", "centred", "mmd2")),
            ("W1 after centring", ("gap_vector", "centred", "w1")),
            ("classes differing (Holm)", ("classes", "per_class_mmd", "n_rejected")),
            ("plan purity", ("classes", "purity", "purity")), ("purity chance", ("classes", "purity", "chance")),
            ("purity up to relabelling", ("classes", "purity", "purity_matched")),
            (f"own accuracy {a}", ("transfer", "own", a)), (f"own accuracy {b}", ("transfer", "own", b)),
            (f"transfer {a}→{b}", ("transfer", "transfer", f"{a}→{b}", "raw")),
            (f"transfer {a}→{b}, centred", ("transfer", "transfer", f"{a}→{b}", "centred")),
            (f"transfer {b}→{a}", ("transfer", "transfer", f"{b}→{a}", "raw")),
            (f"transfer {b}→{a}, centred", ("transfer", "transfer", f"{b}→{a}", "centred"))]
    return [{"quantity": q, "before": get(before, *p), "after": get(after, *p)} for q, p in rows
            if get(before, *p) is not None or get(after, *p) is not None]
