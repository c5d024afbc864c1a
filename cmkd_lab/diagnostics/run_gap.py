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
    ``table`` (rows: quantity, before, after), ``run`` (task, method, seed,
    status) and ``notes`` (e.g. that the run was interrupted, so that its last
    snapshot is not a finished run's)
    """
    if not isinstance(result, dict):
        raise TypeError(f"result must be a run's result dict (result.json) or its ['diagnostics']; got "
                        f"{type(result).__name__}" + (": read the file first, e.g. cmkd_lab.report.read_result("
                                                      "run_dir / 'result.json'), or use python -m cmkd_lab gap --run "
                                                      "RUN_DIR" if isinstance(result, (str, bytes)) or hasattr(
                                                          result, "__fspath__") else ""))
    d = result.get("diagnostics", result)
    snaps = (d or {}).get("snapshots") or []
    missing = [k for k in ("features_teacher", "labels_teacher", "labels_student") if k not in (d or {})]
    if missing or len(snaps) < 2:
        raise ValueError(f"the run must hold feature snapshots at two epochs at least (diagnostics with "
                         f"n_snapshot > 0); it has {len(snaps)} snapshot(s)"
                         + (f" and lacks {missing}" if missing else "")
                         + (f" (its status is {result.get('status')!r}: it stopped before a second snapshot)"
                            if result.get("status") in ("diverged", "failed", "interrupted") else "")
                         + ": run it again with the diagnostics on (the default; not diagnostics_every=0, not "
                           "sweep's --no-diagnostics) and at least one epoch")
    for k in ("names", "y_a", "y_b", "pairs"):
        if k in options:
            raise ValueError(f"explore_run_gap sets {k} from the run; do not pass {k}=")
    mods = d.get("modalities") or {}
    names = ("teacher", "student")
    cn = d.get("class_names")
    zt = _stored("diagnostics.features_teacher", d["features_teacher"], None)
    first, last = snaps[0], snaps[-1]
    out = {}
    for key, i in (("before", 0), ("after", len(snaps) - 1)):
        s = snaps[i]
        where = f"diagnostics.snapshots[{i}].features_student" + (f" (epoch {s['epoch']})" if isinstance(s, dict) and
                                                                 "epoch" in s else "")
        zs = _stored(where, s.get("features_student") if isinstance(s, dict) else None, zt.shape[1])
        out[key] = explore_gap(zt, zs, y_a=d["labels_teacher"], y_b=d["labels_student"], names=names,
                               class_names=cn, **options)
    out["epochs"] = [int(first["epoch"]), int(last["epoch"])]
    out["run"] = {k: result.get(k) for k in ("task", "method", "seed", "pairing", "student_test_acc", "status")}
    out["run"]["modalities"] = {"teacher": mods.get("teacher"), "student": mods.get("student")}
    out["table"] = before_after_table(out["before"], out["after"])
    out["notes"] = _run_notes(result, out["epochs"])
    for n in out["notes"]:
        out["after"]["notes"].append(n)
    return out


def _stored(where: str, v, dim) -> np.ndarray:
    """A feature matrix read back from a run's result, checked: a damaged one is named by where it sits."""
    try:
        z = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        z = None
    if z is None or z.ndim != 2 or z.shape[0] < 4 or not np.all(np.isfinite(z)) or (dim is not None and
                                                                                     z.shape[1] != dim):
        got = "no numeric matrix" if z is None or z.ndim != 2 else (
            f"{z.shape[0]} row(s)" if z.shape[0] < 4 else
            f"{z.shape[1]} column(s), not the teacher's {dim}" if dim is not None and z.shape[1] != dim else
            "NaN or inf values")
        raise ValueError(f"the run's result.json holds {got} in {where}; the gap needs a finite (N >= 4, D) feature "
                         "matrix there: re-run with n_snapshot >= 4 (DiagnosticsCallback), or pass another run (this "
                         "file may be damaged)")
    return z


def _run_notes(result: dict, epochs: list) -> list:
    """What the reader must know about the epochs compared (an unfinished run's last snapshot)."""
    status = result.get("status")
    if status in (None, "completed"):
        return []
    done, total = result.get("epochs_done"), result.get("epochs")
    how = f" after {done} of {total} epochs" if done is not None and total is not None else ""
    return [f"the run is {status}{how}: 'after' is its last snapshot, epoch {epochs[1]} (compared with epoch "
            f"{epochs[0]}), not the end of a finished run"]


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
