"""Summaries of a grid of runs: per cell and method, the accuracy over seeds and the paired difference
with the baseline — with the cell's **noise floor** next to it — and early diagnostics as predictors
of the final difference.

Pure functions over *run records* (one per cell × method × seed; see :func:`run_record`). A record whose
``method`` is :func:`aa_name` (``"ce (A/A)"`` for the baseline ``ce``) is the **A/A control**: the
baseline trained again with another draw of its training randomness (student initialisation and batch
order; ``DistillConfig.replicate``) on the same data and teacher. Compared with the baseline under the
same paired statistics, it shows what a method that changes nothing looks like — the noise floor.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..distill.config import TEACHER_CONTROLS as CONTROLS  # declared once, with the option's rule
from .keys import describe
from .stats import headroom_recovered, paired_difference, spearman

__all__ = ["AA_SUFFIX", "aa_name", "is_aa", "run_record", "paired_summary", "noise_floor", "early_diagnostics",
           "predictor_table", "control_table", "CONTROLS", "RECORD_FIELDS", "accuracy_table", "verdict", "CEILING",
           "CEILINGS", "is_ceiling", "designated_ceiling", "compare_methods"]

AA_SUFFIX = " (A/A)"
RECORD_FIELDS = ("task", "method", "seed", "pairing", "status", "student_test_acc", "student_val_acc",
                 "student_test_acc_last", "teacher_test_acc", "best_epoch", "epochs_done", "wall_s", "s_per_epoch",
                 "student_fraction")


CEILING = "ceiling-kd"  # the designated paired ceiling; "ceiling-pl" stands in when only it ran
CEILINGS = ("ceiling-kd", "ceiling-pl")


def is_ceiling(method: str) -> bool:
    """Whether ``method`` (a name or a variant label) is a paired ceiling: the teacher's knowledge delivered
    through pairs on the unlabelled student data, a reference row rather than a method under comparison."""
    return isinstance(method, str) and method.split("[", 1)[0].strip() in CEILINGS


def designated_ceiling(methods, ceiling: Optional[str] = CEILING) -> Optional[str]:
    """The ceiling a cell's headroom is measured against: ``ceiling`` when it ran among ``methods``, else
    ``ceiling-pl`` when the default ``ceiling-kd`` did not run but it did; None without one (or when
    ``ceiling`` is None)."""
    methods = list(methods)
    if ceiling is None:
        return None
    if ceiling in methods:
        return ceiling
    return "ceiling-pl" if ceiling == CEILING and "ceiling-pl" in methods else None


def aa_name(baseline: str) -> str:
    """The name under which the A/A control of ``baseline`` appears in records and tables."""
    return f"{baseline}{AA_SUFFIX}"


def is_aa(method: str) -> bool:
    return isinstance(method, str) and method.endswith(AA_SUFFIX)


def run_record(result: dict, *, cell: str = "all", values: Optional[dict] = None, method: Optional[str] = None,
               early_epochs: int = 0, dir: Optional[str] = None) -> dict:
    """The slim record of a run (``result.json``) for summaries: accuracies, timings, its cell, its folder
    (``dir``, relative to the grid's output folder) and, with ``early_epochs``, the numeric history records
    of its first epochs (``early``: epoch -> record)."""
    rec = {k: result.get(k) for k in RECORD_FIELDS}
    if method is not None:
        rec["method"] = method
    cfg = result.get("config") or {}
    rec.update(cell=cell, values=dict(values or {}), lambda_fa=cfg.get("lambda_fa"),
               student_unlabelled=bool(cfg.get("student_unlabelled", False)))
    if dir is not None:
        rec["dir"] = str(dir)
    early = {}
    for h in (result.get("history") or [])[:early_epochs]:
        early[str(h["epoch"])] = {k: float(v) for k, v in h.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    rec["early"] = early
    return rec


def _index(runs) -> Dict[tuple, dict]:
    return {(r["cell"], r["method"], r["seed"]): r for r in runs}


def _cells_and_methods(runs):
    cells, methods = {}, []
    for r in runs:
        cells.setdefault(r["cell"], r.get("values", {}))
        if r["method"] not in methods:
            methods.append(r["method"])
    return cells, methods


def _stats(v):
    v = [x for x in v if x is not None]
    if not v:
        return None, None
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)


def _pairs(idx, a: tuple, b: tuple, metric: str) -> Tuple[List[int], List[float], float]:
    """The paired differences ``a − b`` of two (cell, method) keys over the seeds where both have the
    metric: (seeds, differences, the magnitude of the values — for the float-resolution rule)."""
    seeds = sorted(s for (c, m, s), r in idx.items() if (c, m) == a and r.get(metric) is not None
                   and (idx.get((*b, s)) or {}).get(metric) is not None)
    va, vb = [idx[(*a, s)][metric] for s in seeds], [idx[(*b, s)][metric] for s in seeds]
    return seeds, [x - y for x, y in zip(va, vb)], max(map(abs, va + vb), default=0.0)


def _compare(idx, a: tuple, b: tuple, metric: str, target: float) -> Optional[dict]:
    """:func:`~cmkd_lab.results.stats.paired_difference` of ``a − b`` (None without a common seed)."""
    _, diffs, scale = _pairs(idx, a, b, metric)
    return paired_difference(diffs, target=target, scale=scale) if diffs else None


def compare_methods(runs: List[dict], cell: str, method: str, other: str, *, metric: str = "student_test_acc",
                    target: float = 0.01) -> Optional[dict]:
    """The paired difference ``method`` − ``other`` in one ``cell`` over the seeds both ran (the rule of every
    Δ in the tables, float-resolution rule included), or None when no seed has both."""
    return _compare(_index(runs), (cell, method), (cell, other), metric, target)


def verdict(pd: Optional[dict]) -> str:
    """``"helps"``, ``"hurts"``, ``"no difference beyond noise"`` or ``"cannot tell: <why>"``."""
    if pd and pd.get("cannot_tell"):
        return f"cannot tell: {pd['cannot_tell']}"
    return ("helps" if pd and pd.get("significant") and pd["mean"] > 0 else
            "hurts" if pd and pd.get("significant") else "no difference beyond noise")


def accuracy_table(runs: List[dict]) -> List[dict]:
    """Mean ± std over seeds per (cell, method) of the test accuracy at the best-validation epoch and at
    the last epoch (a bench's ``summary``); a run shared by two cells (an alias) is counted once, under the
    cell that ran it."""
    groups: Dict[tuple, List[dict]] = {}
    for r in runs:
        if not r.get("alias_of"):
            groups.setdefault((r["cell"], r["method"]), []).append(r)
    rows = []
    for (cell, method), rs in groups.items():
        (mb, sb), (ml, sl) = _stats([r["student_test_acc"] for r in rs]), _stats([r["student_test_acc_last"] for r in rs])
        vals = rs[0].get("values", {})
        rows.append({"pairing": vals.get("pairing", rs[0].get("pairing")),
                     "teacher_control": vals.get("teacher_control", "none"), "cell": cell, "values": vals,
                     "method": method, "n_seeds": len(rs), "test_acc_best_val_mean": mb, "test_acc_best_val_std": sb,
                     "test_acc_last_mean": ml, "test_acc_last_std": sl,
                     "teacher_test_acc_mean": _stats([r["teacher_test_acc"] for r in rs])[0],
                     "wall_s_mean": _stats([r.get("wall_s") or 0.0 for r in rs])[0]})
    return rows


def paired_summary(runs: List[dict], *, baseline: str = "ce", metric: str = "student_test_acc",
                   target: float = 0.01, ceiling: Optional[str] = CEILING) -> List[dict]:
    """One row per (cell, method): the metric over seeds and, for every method but ``baseline``, the paired
    difference with the baseline over the seeds both completed (:func:`~cmkd_lab.results.stats.paired_difference`:
    mean, interval, p-value, wins/losses, ``mde``, ``seeds_for_target``, ``cannot_tell``), its ``verdict``,
    and the cell's noise floor (``noise_*``: the baseline's seed-to-seed std, the A/A row's mean and std and
    its MDE).

    In a cell where the paired ceiling ran (:func:`designated_ceiling` of ``ceiling``), that row is a
    reference (``is_ceiling``) and every other method's row carries the **headroom recovered**
    (:func:`~cmkd_lab.results.stats.headroom_recovered`): ``ceiling``, ``headroom``, ``headroom_ci_low``,
    ``headroom_ci_high``, ``headroom_n`` and ``headroom_note`` (in words when there is no number).
    """
    idx = _index(runs)
    cells, methods = _cells_and_methods(runs)
    floors = {c: noise_floor(runs, c, baseline=baseline, metric=metric, target=target) for c in cells}
    rows = []
    for cell, values in cells.items():
        ceil = designated_ceiling([m for m in methods if any(k[:2] == (cell, m) for k in idx)], ceiling)
        for m in methods:
            rs = sorted((r for (c, mm, _), r in idx.items() if c == cell and mm == m and r.get(metric) is not None),
                        key=lambda r: r["seed"])
            if not rs:
                continue
            mean, sd = _stats([r[metric] for r in rs])
            last_mean, last_sd = _stats([r.get("student_test_acc_last") for r in rs])
            row = {"cell": cell, "values": values, **{f"grid.{k}": v for k, v in values.items()}, "method": m,
                   "aa": is_aa(m), "is_ceiling": is_ceiling(m), "n_seeds": len(rs), "acc_mean": mean, "acc_std": sd,
                   "acc_last_mean": last_mean, "acc_last_std": last_sd,
                   "teacher_acc_mean": _stats([r.get("teacher_test_acc") for r in rs])[0],
                   "wall_s_mean": _stats([r.get("wall_s") for r in rs])[0],
                   "aliased": any(r.get("alias_of") for r in rs)}
            if m != baseline:
                pd = _compare(idx, (cell, m), (cell, baseline), metric, target) or {}
                row.update({f"delta_{k}" if k in ("mean", "std") else k: v for k, v in pd.items() if k != "n"})
                row["n_pairs"] = pd.get("n", 0)
                row["verdict"] = verdict(pd)
                if ceil and m != ceil and not is_aa(m) and not is_ceiling(m):
                    row.update(_headroom(idx, cell, m, ceil, baseline=baseline, metric=metric))
            row.update({f"noise_{k}": v for k, v in floors[cell].items()})
            rows.append(row)
    return rows


def _headroom(idx, cell: str, method: str, ceiling: str, *, baseline: str, metric: str) -> dict:
    """The headroom fields of a row: ``method``'s share of ``ceiling``'s gain over ``baseline``, seed by seed."""
    sa, a, sc_a = _pairs(idx, (cell, method), (cell, baseline), metric)
    sb, b, sc_b = _pairs(idx, (cell, ceiling), (cell, baseline), metric)
    both = sorted(set(sa) & set(sb))
    a, b = [a[sa.index(s)] for s in both], [b[sb.index(s)] for s in both]
    h = (headroom_recovered(a, b, scale=max(sc_a, sc_b), baseline=baseline, ceiling=ceiling) if both else
         {"n": 0, "headroom": None, "ci_low": None, "ci_high": None,
          "note": f"no seed where {method}, {ceiling} and {baseline} all finished: headroom undefined"})
    return {"ceiling": ceiling, "headroom": h["headroom"], "headroom_ci_low": h["ci_low"],
            "headroom_ci_high": h["ci_high"], "headroom_n": h["n"], "headroom_note": h["note"]}


def noise_floor(runs: List[dict], cell: str, *, baseline: str = "ce", metric: str = "student_test_acc",
                target: float = 0.01) -> dict:
    """The noise floor of one cell: ``baseline_std`` (the baseline's seed-to-seed standard deviation),
    and when the A/A control ran, its paired difference with the baseline: ``aa_mean``, ``aa_std``,
    ``aa_ci_low``/``aa_ci_high``, ``aa_mde`` (what a null method can 'show' and what the seeds can detect),
    ``aa_seeds_for_target`` and ``aa_cannot_tell``."""
    idx = _index(runs)
    base = [r for (c, m, _), r in idx.items() if c == cell and m == baseline and r.get(metric) is not None]
    out = {"baseline_std": _stats([r[metric] for r in base])[1], "n_baseline": len(base)}
    pd = _compare(idx, (cell, aa_name(baseline)), (cell, baseline), metric, target)
    if pd:
        out.update(aa_n=pd["n"], aa_mean=pd["mean"], aa_std=pd["std"], aa_ci_low=pd["ci_low"],
                   aa_ci_high=pd["ci_high"], aa_mde=pd["mde"], aa_seeds_for_target=pd["seeds_for_target"],
                   aa_cannot_tell=pd["cannot_tell"])
    return out


def _at_epoch(run: dict, epoch: int) -> Tuple[Optional[int], dict]:
    """The early history record at ``epoch`` (or the last one before it)."""
    early = run.get("early") or {}
    eps = sorted(int(e) for e in early if int(e) <= epoch)
    return (eps[-1], early[str(eps[-1])]) if eps else (None, {})


def early_diagnostics(run: dict, base: Optional[dict], *, epoch: int, baseline: str = "ce") -> Dict[str, float]:
    """Diagnostics of ``run`` at ``epoch``: its own record's predictor keys (loss terms and diagnostics, as
    declared in :mod:`cmkd_lab.keys`), ``fa_over_ce`` (the weighted OT term λ_fa·OT over the cross-entropy:
    how much of the loss the alignment is; λ_fa from the run's ``lambda_fa``, 1 if absent),
    ``early_val_delta`` (validation accuracy minus the baseline's at that epoch) and the baseline run's own
    diagnostics, prefixed ``"<baseline>:"`` (what a plain run already shows)."""
    _, rec = _at_epoch(run, epoch)
    out = {k: v for k, v in rec.items() if describe(k).predictor or describe(k).kind == "other"}
    if rec.get("fa") is not None and rec.get("ce"):
        lam = run.get("lambda_fa")
        out["fa_over_ce"] = (1.0 if lam is None else lam) * rec["fa"] / rec["ce"]
    if base is not None:
        _, brec = _at_epoch(base, epoch)
        if "val_acc" in rec and "val_acc" in brec:
            out["early_val_delta"] = rec["val_acc"] - brec["val_acc"]
        out.update({f"{baseline}:{k}": v for k, v in brec.items()
                    if (describe(k).predictor or describe(k).kind == "other") and k != "ce"})
    return out


def predictor_table(runs: List[dict], *, baseline: str = "ce", metric: str = "student_test_acc",
                    epoch: int = 2, min_points: int = 4) -> Tuple[List[dict], List[dict]]:
    """(points, predictors).

    points: one per (cell, method ≠ baseline and not the A/A control, seed) with ``delta`` (final metric −
    baseline's) and ``diag`` (:func:`early_diagnostics`). predictors: per method (and ``"all"`` pooled)
    and per diagnostic present in at least ``min_points`` points, Spearman's ρ between the diagnostic and
    ``delta`` with its p-value and the Bonferroni-adjusted p-value over that method's diagnostics
    (``p_bonferroni``), sorted by method then |ρ|; None where either side is constant.
    """
    idx = _index(runs)
    points = []
    for r in runs:
        if r["method"] == baseline or is_aa(r["method"]) or is_ceiling(r["method"]) or r.get(metric) is None:
            continue  # the references (A/A, the paired ceiling) are not methods whose gain is predicted
        b = idx.get((r["cell"], baseline, r["seed"]))
        if b is None or b.get(metric) is None:
            continue
        points.append({"cell": r["cell"], "values": r.get("values", {}), "method": r["method"], "seed": r["seed"],
                       # to 1e-6 (a test split of a million samples): two deltas of the same accuracies tie
                       # exactly, as they do in a saved (rounded) copy, so ρ is the same from either
                       "delta": round(r[metric] - b[metric], 6),
                       "diag": early_diagnostics(r, b, epoch=epoch, baseline=baseline)})
    rows = []
    groups = {m: [p for p in points if p["method"] == m] for m in dict.fromkeys(p["method"] for p in points)}
    if len(groups) > 1:
        groups["all"] = points
    for m, pts in groups.items():
        keys = list(dict.fromkeys(k for p in pts for k in p["diag"]))
        for k in keys:
            sel = [p for p in pts if k in p["diag"]]
            if len(sel) < min_points:
                continue
            x = np.array([p["diag"][k] for p in sel])
            y = np.array([p["delta"] for p in sel])
            rho = pv = None
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                rho, pv = spearman(x, y)
            rows.append({"method": m, "diagnostic": k, "epoch": epoch, "n": len(sel), "rho": rho, "p_value": pv})
        tested = [r for r in rows if r["method"] == m and r["p_value"] is not None]
        for r in tested:  # many diagnostics are tried at once: Bonferroni over this method's tests
            r["p_bonferroni"] = min(1.0, r["p_value"] * len(tested))
    order = {m: i for i, m in enumerate(groups)}
    rows.sort(key=lambda r: (order[r["method"]], -(abs(r["rho"]) if r["rho"] is not None else -1)))
    return points, rows


def control_table(runs: List[dict], *, baseline: str = "ce", metric: str = "student_test_acc",
                  target: float = 0.01) -> List[dict]:
    """Whose knowledge is a gain? One row per (cell without its ``teacher_control``, method): the method's
    paired difference with ``baseline`` under each teacher control (``delta[control]``, as
    :func:`paired_summary`), and the **teacher's share**: the method with the real teacher against the same
    method under each control, seed by seed (``contrast[control]``). ``verdict``:

    * ``"gain, the teacher's"`` — the method beats the baseline with the real teacher and beats itself
      under ``random`` and under ``shuffled-labels`` (both intervals above zero);
    * ``"gain, not shown to be the teacher's"`` — it beats the baseline, but not itself under a control;
    * ``"no gain over <baseline>"`` — it does not beat the baseline with the real teacher.

    ``names_matter`` tells whether it also beats itself under ``permuted-classes`` (it uses the class names).
    """
    idx = _index(runs)
    rows, order = [], []
    groups: Dict[tuple, dict] = {}
    for r in runs:
        vals = dict(r.get("values", {}))
        control = vals.pop("teacher_control", "none")
        if r["method"] == baseline or is_aa(r["method"]):
            continue
        key = (tuple(sorted(vals.items(), key=lambda kv: kv[0])), r["method"])
        g = groups.setdefault(key, {"values": vals, "method": r["method"], "cells": {}})
        g["cells"][control] = r["cell"]
        if key not in order:
            order.append(key)
    for key in order:
        g = groups[key]
        m, cells = g["method"], g["cells"]
        row = {"values": g["values"], **{f"grid.{k}": v for k, v in g["values"].items()}, "method": m,
               "delta": {}, "contrast": {}}
        for c, cell in cells.items():
            row["delta"][c] = _compare(idx, (cell, m), (cell, baseline), metric, target)
            if "none" in cells and c != "none":
                row["contrast"][c] = _compare(idx, (cells["none"], m), (cell, m), metric, target)

        def above(pd):
            return bool(pd and pd.get("significant") and pd["mean"] > 0)
        gain = above(row["delta"].get("none"))
        teacher = gain and all(above(row["contrast"].get(c)) for c in ("random", "shuffled-labels"))
        row["verdict"] = ("reference: the paired ceiling (runs with the real teacher only)" if is_ceiling(m) else
                          "gain, the teacher's" if teacher else
                          "gain, not shown to be the teacher's" if gain else f"no gain over {baseline}")
        row["names_matter"] = above(row["contrast"].get("permuted-classes"))
        rows.append(row)
    return rows
