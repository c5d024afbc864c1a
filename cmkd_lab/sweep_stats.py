"""Statistics of a sweep: paired differences against the baseline per cell, and
early diagnostics as predictors of the final difference (Spearman ρ).

Pure functions over the slim run records that :func:`cmkd_lab.sweep.run_sweep`
collects (each: ``cell``, ``values``, ``method``, ``seed``, the accuracy
metrics, and ``early``: the numeric history records of the first epochs).
"""
from __future__ import annotations

import itertools
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["paired_difference", "paired_summary", "early_diagnostics", "spearman", "predictor_table",
           "format_sweep_markdown"]

# History keys that are outcomes or bookkeeping, not diagnostics.
_NOT_DIAGNOSTICS = {"epoch", "steps", "lr", "time_s", "test_acc", "test_loss", "loss", "val_loss", "val_acc",
                    "diag_time_s", "teacher_acc_ref", "student_acc_ref", "ot_marginal_err", "bound_err_t",
                    "bound_err_t01", "bound_err_s", "bound_err_s01", "teacher_head_on_student_acc_ref"}


def paired_difference(diffs: Sequence[float], *, level: float = 0.95) -> dict:
    """Mean of paired differences with a t-based confidence interval and a two-sided paired t-test.

    Parameters
    ----------
    diffs : sequence of float, shape (n,)
        One difference per seed (method − baseline).
    level : float in (0, 1)
        Confidence level of the interval.

    Returns
    -------
    dict
        ``n``, ``mean``, ``std`` (n − 1 denominator), ``ci_low``, ``ci_high``, ``p_value``, ``wins``,
        ``losses``, ``ties`` and ``significant`` (the interval excludes zero). With n = 1 the interval and
        the p-value are None; with zero spread the interval is the point and p is 0 (or 1 for a zero mean).
    """
    from scipy import stats
    d = np.asarray(list(diffs), dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError(f"diffs must be a non-empty 1-D sequence of finite numbers; got {list(d.ravel())[:5]}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got level={level!r}")
    n, mean = d.size, float(d.mean())
    out = {"n": int(n), "mean": mean, "std": None, "ci_low": None, "ci_high": None, "p_value": None,
           "wins": int((d > 0).sum()), "losses": int((d < 0).sum()), "ties": int((d == 0).sum()),
           "significant": False}
    if n >= 2:
        sd = float(d.std(ddof=1))
        se = sd / math.sqrt(n)
        half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
        out.update(std=sd, ci_low=mean - half, ci_high=mean + half)
        if se > 0:
            out["p_value"] = float(2 * stats.t.sf(abs(mean) / se, n - 1))
        else:
            out["p_value"] = 0.0 if mean != 0 else 1.0
        out["significant"] = bool(out["ci_low"] > 0 or out["ci_high"] < 0)
    return out


def _index(runs) -> Dict[tuple, dict]:
    return {(r["cell"], r["method"], r["seed"]): r for r in runs}


def paired_summary(runs: List[dict], *, baseline: str = "ce", metric: str = "student_test_acc") -> List[dict]:
    """One row per (cell, method): accuracy over seeds and, for methods other than ``baseline``,
    the paired difference with the baseline over the seeds both completed."""
    idx = _index(runs)
    cells, methods = [], []
    for r in runs:
        if r["cell"] not in [c for c, _ in cells]:
            cells.append((r["cell"], r.get("values", {})))
        if r["method"] not in methods:
            methods.append(r["method"])
    rows = []
    for cell, values in cells:
        for m in methods:
            rs = [r for (c, mm, _), r in idx.items() if c == cell and mm == m and r.get(metric) is not None]
            if not rs:
                continue
            acc = np.array([r[metric] for r in rs])
            row = {"cell": cell, "values": values, **{f"grid.{k}": v for k, v in values.items()}, "method": m,
                   "n_seeds": len(rs), "acc_mean": float(acc.mean()),
                   "acc_std": float(acc.std(ddof=1)) if len(rs) > 1 else 0.0,
                   "teacher_acc_mean": _mean([r.get("teacher_test_acc") for r in rs])}
            if m != baseline:
                diffs = [r[metric] - idx[(cell, baseline, r["seed"])][metric] for r in rs
                         if idx.get((cell, baseline, r["seed"]), {}).get(metric) is not None]
                pd = paired_difference(diffs) if diffs else {}
                row.update({f"delta_{k}" if k in ("mean", "std") else k: v for k, v in pd.items() if k != "n"})
                row["n_pairs"] = len(diffs)
                row["verdict"] = ("helps" if pd.get("significant") and pd["mean"] > 0 else
                                  "hurts" if pd.get("significant") else "no difference beyond noise")
            rows.append(row)
    return rows


def _mean(v):
    v = [x for x in v if x is not None]
    return float(np.mean(v)) if v else None


def _at_epoch(run: dict, epoch: int) -> Tuple[Optional[int], dict]:
    """The early history record at ``epoch`` (or the last one before it)."""
    early = run.get("early") or {}
    eps = sorted(int(e) for e in early if int(e) <= epoch)
    return (eps[-1], early[str(eps[-1])]) if eps else (None, {})


def early_diagnostics(run: dict, base: Optional[dict], *, epoch: int, baseline: str = "ce") -> Dict[str, float]:
    """Diagnostics of ``run`` at ``epoch``: its own record's diagnostic keys, ``fa_over_ce`` (the weighted
    OT term λ_fa·OT over the cross-entropy: how much of the loss the alignment is; λ_fa from the run's
    ``lambda_fa``, 1 if absent), ``early_val_delta`` (validation accuracy minus the baseline's at that
    epoch) and the baseline run's own diagnostics, prefixed ``"<baseline>:"`` (what a plain run already
    shows)."""
    _, rec = _at_epoch(run, epoch)
    out = {k: v for k, v in rec.items() if k not in _NOT_DIAGNOSTICS}
    if rec.get("fa") is not None and rec.get("ce"):
        lam = run.get("lambda_fa")
        out["fa_over_ce"] = (1.0 if lam is None else lam) * rec["fa"] / rec["ce"]
    if base is not None:
        _, brec = _at_epoch(base, epoch)
        if "val_acc" in rec and "val_acc" in brec:
            out["early_val_delta"] = rec["val_acc"] - brec["val_acc"]
        out.update({f"{baseline}:{k}": v for k, v in brec.items()
                    if k not in _NOT_DIAGNOSTICS and k not in ("ce",)})
    return out


def spearman(x, y) -> Tuple[float, float]:
    """Spearman's ρ and its two-sided p-value. Below 10 points the p-value comes from the permutation
    distribution (exact up to 7 points, 9,999 seeded resamples for 8 or 9), where the t approximation of
    ``scipy.stats.spearmanr`` is unreliable (it gives p = 0 for any perfect ranking); from 10 points on,
    scipy's value.

    Parameters
    ----------
    x, y : array-like, shape (n,)
    """
    from scipy import stats
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(f"x and y must be 1-D of the same length >= 3; got shapes {x.shape} and {y.shape}")
    res = stats.spearmanr(x, y)
    rho, p = float(res.statistic), float(res.pvalue)
    n = x.size
    if n < 10 and math.isfinite(rho):
        # ρ is Pearson's r of the (average) ranks: centre and scale them once, then one matrix product
        # gives ρ for every permutation of y's ranks.
        rx, ry = stats.rankdata(x), stats.rankdata(y)
        rx, ry = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean()), (ry - ry.mean()) / np.linalg.norm(ry - ry.mean())
        if n <= 7:
            perms = np.array(list(itertools.permutations(range(n))))  # (n!, n), the identity included
            extra = 0
        else:
            rng = np.random.default_rng(0)
            perms = np.argsort(rng.random((9999, n)), axis=1)  # (9999, n)
            extra = 1  # the observed ordering counts as one resample
        null = ry[perms] @ rx  # (P,)
        p = float((np.sum(np.abs(null) >= abs(rho) - 1e-12) + extra) / (len(perms) + extra))
    return rho, p


def predictor_table(runs: List[dict], *, baseline: str = "ce", metric: str = "student_test_acc",
                    epoch: int = 2, min_points: int = 4) -> Tuple[List[dict], List[dict]]:
    """(points, predictors).

    points: one per (cell, method ≠ baseline, seed) with ``delta`` (final metric − baseline's) and ``diag``
    (:func:`early_diagnostics`). predictors: per method (and ``"all"`` pooled) and per diagnostic present in
    at least ``min_points`` points, Spearman's ρ between the diagnostic and ``delta`` with its p-value and
    the Bonferroni-adjusted p-value over that method's diagnostics (``p_bonferroni``), sorted by method then
    |ρ|; None where either side is constant.
    """
    idx = _index(runs)
    points = []
    for r in runs:
        if r["method"] == baseline or r.get(metric) is None:
            continue
        b = idx.get((r["cell"], baseline, r["seed"]))
        if b is None or b.get(metric) is None:
            continue
        points.append({"cell": r["cell"], "values": r.get("values", {}), "method": r["method"], "seed": r["seed"],
                       "delta": r[metric] - b[metric],
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


def _pct(v, signed=False):
    return "—" if v is None else (f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}")


def format_sweep_markdown(res: dict, *, top: int = 6) -> str:
    """The regime map as Markdown: per cell the baseline's accuracy and each method's paired
    difference (points of %) with its 95 % interval and wins/losses; then the best predictors."""
    base, cells = res["baseline"], res["cells"]
    methods = [m for m in res["methods"] if m != base]
    keys = list(res.get("grid_kinds") or res["grid"])
    lines = [f"Task `{res['task']}`{' (fast subset)' if res.get('fast') else ''}, seeds {res['seeds']}, metric "
             f"`{res['metric']}`. Δ = method − `{base}` in points of accuracy (%), paired by seed: mean "
             "[t-based 95 % interval] wins/losses. **Bold**: the interval excludes zero.", ""]
    head = keys + [f"`{base}` acc"] + [f"Δ `{m}`" for m in methods]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by = {(r["cell"], r["method"]): r for r in cells}
    for cid in res.get("cells_order") or list(dict.fromkeys(r["cell"] for r in cells)):
        b = by.get((cid, base))
        vals = next((r["values"] for r in cells if r["cell"] == cid), {})
        row = [str(vals.get(k, "")) for k in keys]
        row.append("—" if b is None else f"{_pct(b['acc_mean'])} ± {_pct(b['acc_std'])}")
        for m in methods:
            r = by.get((cid, m))
            if r is None or r.get("delta_mean") is None:
                row.append("—")
                continue
            ci = (f" [{_pct(r['ci_low'], True)}, {_pct(r['ci_high'], True)}]" if r.get("ci_low") is not None else "")
            txt = f"{_pct(r['delta_mean'], True)}{ci} {r['wins']}/{r['losses']}"
            row.append(f"**{txt}**" if r.get("significant") else txt)
        lines.append("| " + " | ".join(row) + " |")
    preds = [p for p in res.get("predictors", []) if p["rho"] is not None]
    if preds:
        lines += ["", f"Early diagnostics (epoch {res.get('diag_epoch')}) against the final Δ: Spearman ρ, its "
                  f"p-value, the p-value after a Bonferroni correction over the diagnostics tried for that method, "
                  f"and the number of points (cell × seed); the {top} strongest per method. `all` pools the methods.",
                  "", "| method | diagnostic | ρ | p | p (Bonferroni) | n |", "|---|---|---|---|---|---|"]
        for m in dict.fromkeys(p["method"] for p in preds):
            for p in [p for p in preds if p["method"] == m][:top]:
                pb = p.get("p_bonferroni")
                lines.append(f"| {m} | `{p['diagnostic']}` | {p['rho']:+.2f} | {p['p_value']:.2g} | "
                             f"{'—' if pb is None else f'{pb:.2g}'} | {p['n']} |")
    for s in res.get("skipped", []):
        lines.append(f"\nSkipped {s['method']} in cell {s['cell']}: {s['reason']}.")
    for f in res.get("failed", []):
        lines.append(f"\nFailed: {f['method']} in cell {f['cell']}, seed {f['seed']}: {f['error']} "
                     "(rerun the sweep to retry).")
    cached = f" ({res['n_cached']} read from the cache)" if res.get("n_cached") else ""
    lines.append(f"\n{len(res.get('runs', []))} runs{cached}, {res.get('sweep_wall_s', 0):.0f} s on "
                 f"{res.get('executor')}.")
    return "\n".join(lines) + "\n"
