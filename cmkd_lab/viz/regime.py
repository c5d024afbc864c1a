"""Figures of a sweep (:func:`cmkd_lab.experiments.run_sweep`): the regime map and
whether an early diagnostic predicts the outcome.

Every function takes the sweep's result (the dict, ``sweep.json`` or its
folder) and returns a ``go.Figure``. Differences are in points of accuracy
(method − baseline, paired by seed).
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

__all__ = ["phase_diagram", "diagnostic_scatter", "predictor_bars", "predictor_rows", "point_spearman",
           "diagnostic_label", "BEFORE_TRAINING", "series_colours"]

_SYMBOLS = ("circle", "diamond", "square", "x")  # one marker per compared method
_COLOURS = ("#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#17BECF")  # one colour per compared method
# Diagnostics a sweep records that depend on the labels alone: they are known before any training.
BEFORE_TRAINING = ("label_prior_tv", "purity_chance")
# Loss terms among the diagnostics, named as terms so that they never read as a method ("ce" is a method).
_TERM_KEYS = {"ce": "CE loss term", "fa": "FA loss term", "la": "LA loss term"}


def diagnostic_label(key: str, *, epoch: Optional[int] = None) -> str:
    """A sweep diagnostic as a student reads it: a loss term as a term (``"ce"`` -> ``"CE loss term"``),
    a value of the plain ``ce`` run as such (``"ce:mmd2"`` -> ``"mmd2 of the `ce` run"``), and the epoch
    it was read at — or "known before training" for one that depends on the labels alone."""
    base, of_ce = (key[3:], True) if key.startswith("ce:") else (key, False)
    name = _TERM_KEYS.get(base, base) + (" of the ce run" if of_ce else "")
    if base in BEFORE_TRAINING:
        return f"{name} (known before training)"
    return name + (f" at epoch {epoch}" if epoch is not None else "")


def series_colours(n: int) -> List[str]:
    """``n`` distinct colours (plotly's 10-colour cycle up to 10 series, its 24-colour palette beyond)."""
    from plotly.colors import qualitative
    pal = qualitative.Plotly if n <= len(qualitative.Plotly) else qualitative.Dark24 + qualitative.Light24
    if n > len(pal):
        raise ValueError(f"at most {len(pal)} series can get distinct colours; got {n}")
    return list(pal[:n])


def _points(res, method, diagnostic, fix=None) -> list:
    ms = _methods(res, None if method in (None, "all") else method)
    _, fixed = _varying(res, fix)
    return [p for p in res["points"] if p["method"] in ms and diagnostic in p["diag"]
            and all(_tick(p.get("values", {}), ks) == v for ks, v in fixed.values())]


def point_spearman(res: dict, method: Optional[str], diagnostic: str, fix=None):
    """Spearman's ρ, its p-value and n over the sweep's stored points of ``method`` (None or ``"all"``:
    every compared method pooled) — the one computation behind the predictor table, its bars and the
    scatter, so that they agree. ``(None, None, n)`` when ρ is undefined (fewer than 3 points, or a
    constant side)."""
    from ..results import spearman
    pts = _points(res, method, diagnostic, fix)
    x = np.array([p["diag"][diagnostic] for p in pts], dtype=float)
    y = np.array([p["delta"] for p in pts], dtype=float)
    if len(pts) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None, len(pts)
    r, pv = spearman(x, y)
    return float(r), float(pv), len(pts)


def predictor_rows(sweep) -> List[dict]:
    """The sweep's predictor table recomputed with :func:`point_spearman` on the stored points, for each
    (method, diagnostic) the sweep ranked and stored: ``method``, ``diagnostic``, ``rho``, ``p_value``,
    ``p_bonferroni`` (× the number of diagnostics the sweep tried for that method) and ``n``."""
    from ..results import load_sweep
    res = load_sweep(sweep)
    stored = {k for p in res["points"] for k in p["diag"]}
    tried: Dict[str, int] = {}
    for p in res.get("predictors", []):
        tried[p["method"]] = tried.get(p["method"], 0) + 1
    out = []
    for p in res.get("predictors", []):
        if p["diagnostic"] not in stored:
            continue
        rho, pv, n = point_spearman(res, p["method"], p["diagnostic"])
        if rho is None:
            continue
        out.append({"method": p["method"], "diagnostic": p["diagnostic"], "rho": rho, "p_value": pv,
                    "p_bonferroni": min(1.0, pv * tried[p["method"]]), "n": n})
    return out


def _go():
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as e:  # pragma: no cover
        raise ImportError("figures need plotly: pip install plotly") from e
    return go, make_subplots


def _tick(values: dict, keys) -> str:
    return ":".join(str(values.get(k)) for k in keys)


def _methods(res, method) -> List[str]:
    others = [m for m in res["methods"] if m != res["baseline"]]
    if method is None:
        return others
    ms = [method] if isinstance(method, str) else list(method)
    bad = [m for m in ms if m not in others]
    if bad:
        raise ValueError(f"method must be among the sweep's compared methods {others}; got method={bad[0]!r}")
    return ms


def _varying(res, fix: Optional[Dict[str, object]]):
    """The axes with more than one value, after keeping only the cells that match ``fix``."""
    from ..results import grid_axes
    axes = grid_axes(res["grid"])
    fix = dict(fix or {})
    names = [a for a, _, _ in axes]
    unknown = [k for k in fix if k not in names]
    if unknown:
        raise ValueError(f"fix must name grid axes {names}; got {unknown[0]!r}")
    keep = [a for a in axes if len(a[2]) > 1 and a[0] not in fix]
    fixed = {a[0]: (a[1], ":".join(map(str, fix[a[0]])) if isinstance(fix[a[0]], (list, tuple)) else str(fix[a[0]]))
             for a in axes if a[0] in fix}
    for name, keys, vals in axes:  # a value the axis does not have would silently select nothing
        if name in fixed:
            ticks = [":".join(map(str, v)) for v in vals]
            if fixed[name][1] not in ticks:
                raise ValueError(f"fix[{name!r}] must be one of the grid's values {ticks}; got {fix[name]!r}")
    return keep, fixed


def phase_diagram(sweep, *, method=None, fix: Optional[Dict[str, object]] = None, title: Optional[str] = None):
    """The regime map: Δ accuracy against the baseline over the grid.

    One varying axis: bars per method with their t-based 95 % intervals. Two varying axes: a heatmap per
    method (red: the method loses, blue: it wins), each cell labelled with its Δ. Cells where the interval
    excludes zero carry a ``*``.

    Parameters
    ----------
    sweep : dict, str or Path
        The sweep's result, its ``sweep.json`` or its output folder.
    method : str or list of str, optional
        Which compared methods to show (default all but the baseline).
    fix : dict, optional
        Axis name → value, to cut a grid of more than two varying axes down to two.
    title : str, optional
    """
    from ..results import load_sweep
    go, make_subplots = _go()
    res = load_sweep(sweep)
    methods = _methods(res, method)
    axes, fixed = _varying(res, fix)
    if len(axes) > 2:
        raise ValueError(f"the grid varies {len(axes)} axes ({[a[0] for a in axes]}); pass fix={{axis: value}} "
                         "for all but two of them")
    rows = [r for r in res["cells"] if r["method"] in methods and r.get("delta_mean") is not None
            and all(_tick(r["values"], ks) == v for ks, v in fixed.values())]
    # a method with no setting in this slice (e.g. entmin where there is no unlabelled data) gets no empty panel
    methods = [m for m in methods if any(r["method"] == m for r in rows)] or methods
    base = res["baseline"]
    n_seeds = len(res.get("seeds") or [])
    few = n_seeds <= 2
    title = title or (f"{res['task']}: Δ accuracy vs {base} (points; * = 95 % interval excludes 0; "
                      f"{n_seeds} seed{'s' if n_seeds != 1 else ''})"
                      + (f" — {', '.join(f'{k}={v}' for k, (_, v) in fixed.items())}" if fixed else "")
                      + ("<br><sup>one or two seeds: an interval is ±12.7 × their spread — read the mechanics, "
                         "not the numbers</sup>" if few else ""))

    def star(r):
        return "*" if r.get("significant") else ""

    if len(axes) <= 1:
        name, keys, vals = axes[0] if axes else ("cell", [], [()])
        ticks = [":".join(map(str, v)) for v in vals] if axes else ["all"]
        fig = go.Figure()
        # The axis covers the means with room to spare; an interval that reaches beyond it (one or two seeds)
        # is cut at the axis and written out in the bar's label instead of flattening every bar.
        means = [abs(100 * r["delta_mean"]) for r in rows]
        reach = max(means + [1.0]) * 3
        cut = False
        for i, m in enumerate(methods):
            by = {(_tick(r["values"], keys) if axes else "all"): r for r in rows if r["method"] == m}
            rs = [by.get(t) for t in ticks]
            y = [None if r is None else 100 * r["delta_mean"] for r in rs]
            hi = [0 if r is None or r.get("ci_high") is None else 100 * (r["ci_high"] - r["delta_mean"]) for r in rs]
            lo = [0 if r is None or r.get("ci_low") is None else 100 * (r["delta_mean"] - r["ci_low"]) for r in rs]
            text = []
            for r in rs:
                if r is None:
                    text.append(None)
                    continue
                t = f"{100 * r['delta_mean']:+.1f}{star(r)} ({r['wins']}/{r['losses']})"
                if r.get("ci_low") is not None and max(abs(100 * r["ci_low"]), abs(100 * r["ci_high"])) > reach:
                    t += f"<br>[{100 * r['ci_low']:+.0f}, {100 * r['ci_high']:+.0f}]"
                    cut = True
                text.append(t)
            fig.add_trace(go.Bar(x=ticks, y=y, name=m, text=text, textposition="outside",
                                 marker_color=_COLOURS[i % len(_COLOURS)],
                                 error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo)))
        fig.add_hline(y=0, line_color="black", line_width=1)
        fig.update_layout(barmode="group", title=title, xaxis_title=name, xaxis_type="category",
                          yaxis_title=f"Δ accuracy vs {base} (points)", template="plotly_white")
        if cut:
            fig.update_yaxes(range=[-reach, reach])
            fig.add_annotation(text="intervals beyond the axis are cut; their ends are in the labels", xref="paper",
                               yref="paper", x=1, y=-0.18, showarrow=False, xanchor="right", font=dict(size=11))
        return fig

    (n1, k1, v1), (n2, k2, v2) = axes
    t1, t2 = [":".join(map(str, v)) for v in v1], [":".join(map(str, v)) for v in v2]
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, shared_yaxes=True)
    zmax = max([abs(100 * r["delta_mean"]) for r in rows] + [1e-9])
    for j, m in enumerate(methods, 1):
        by = {(_tick(r["values"], k1), _tick(r["values"], k2)): r for r in rows if r["method"] == m}
        z = [[None if by.get((a, b)) is None else 100 * by[(a, b)]["delta_mean"] for b in t2] for a in t1]
        text = [["" if by.get((a, b)) is None else f"{100 * by[(a, b)]['delta_mean']:+.1f}{star(by[(a, b)])}"
                 for b in t2] for a in t1]
        fig.add_trace(go.Heatmap(z=z, x=t2, y=t1, text=text, texttemplate="%{text}", colorscale="RdBu", zmid=0,
                                 zmin=-zmax, zmax=zmax, showscale=j == len(methods),
                                 colorbar=dict(title="Δ (points)"),
                                 hovertemplate=f"{n2}=%{{x}}<br>{n1}=%{{y}}<br>Δ=%{{z:.2f}}<extra>{m}</extra>"),
                      row=1, col=j)
        fig.update_xaxes(title_text=n2, type="category", row=1, col=j)
    fig.update_yaxes(title_text=n1, type="category", row=1, col=1)
    fig.update_layout(title=title, template="plotly_white")
    return fig


def diagnostic_scatter(sweep, diagnostic: str, *, method: Optional[str] = None,
                       fix: Optional[Dict[str, object]] = None, title: Optional[str] = None):
    """An early diagnostic (x) against the final Δ accuracy (y), one point per cell × seed, one colour per
    cell (no two cells share one); the title gives Spearman's ρ over the points shown, computed as in the
    predictor table (:func:`point_spearman`).

    Parameters
    ----------
    sweep : dict, str or Path
    diagnostic : str
        A key of the sweep's ``points[i]["diag"]`` (see ``predictors`` for the list), e.g. ``"purity"``,
        ``"fa_over_ce"``, ``"ce:mmd2"``.
    method : str, optional
        One compared method (default: all, pooled).
    fix : dict, optional
        Axis name → value: only the cells with those values (e.g. ``{"student_unlabelled": True}``); the
        legend then names each cell by the axes that still vary.
    """
    from ..results import load_sweep
    go, _ = _go()
    res = load_sweep(sweep)
    ms = _methods(res, method)
    axes, fixed = _varying(res, fix)
    pts = _points(res, method, diagnostic, fix)
    if not pts:
        known = sorted({k for p in res["points"] for k in p["diag"]})
        raise ValueError(f"diagnostic must be one measured in the sweep (e.g. {known[:8]}) in the cells kept by "
                         f"fix={fix!r}; got {diagnostic!r}")
    fig = go.Figure()
    cells = list(dict.fromkeys(p["cell"] for p in pts))
    colours = series_colours(len(cells))
    for cell, colour in zip(cells, colours):
        sel = [p for p in pts if p["cell"] == cell]
        vals = sel[0].get("values", {})
        name = ",".join(f"{':'.join(ks)}={_tick(vals, ks)}" for _, ks, _ in axes) if fixed and axes else cell
        fig.add_trace(go.Scatter(x=[p["diag"][diagnostic] for p in sel], y=[100 * p["delta"] for p in sel],
                                 mode="markers", name=name, text=[f"{p['method']} seed {p['seed']}" for p in sel],
                                 marker=dict(size=9, color=colour,
                                             symbol=[_SYMBOLS[ms.index(p["method"]) % 4] for p in sel])))
    who = ms[0] if len(ms) == 1 else f"{', '.join(ms)} pooled"
    r, pv, n = point_spearman(res, method, diagnostic, fix)
    rho = (f"Spearman ρ = {r:+.2f} (p = {pv:.2g}, n = {n} points of {who})" if r is not None else
           f"Spearman ρ undefined (n = {n} points of {who}, or a constant side)")
    fig.add_hline(y=0, line_color="black", line_width=1)
    where = f" ({', '.join(f'{k}={v}' for k, (_, v) in fixed.items())})" if fixed else ""
    label = diagnostic_label(diagnostic, epoch=res.get("diag_epoch"))
    fig.update_layout(title=title or f"Does the {label} predict the outcome?{where}<br><sup>{rho}</sup>",
                      xaxis_title=label, yaxis_title=f"final Δ accuracy vs {res['baseline']} (points)",
                      template="plotly_white")
    return fig


def predictor_bars(sweep, *, method: str = "all", top: int = 12, title: Optional[str] = None):
    """Spearman's ρ of the ``top`` strongest early diagnostics against the final Δ, for one method
    (or ``"all"`` pooled), as :func:`predictor_rows` computes them; bars with p < 0.05 are solid, the others
    faded."""
    from ..results import load_sweep
    go, _ = _go()
    res = load_sweep(sweep)
    every = predictor_rows(res)
    rows = [p for p in every if p["method"] == method]
    if not rows:
        have = sorted({p["method"] for p in every})
        raise ValueError(f"method must be one with predictors in this sweep {have}; got method={method!r}")
    rows = sorted(rows, key=lambda p: -abs(p["rho"]))[:top][::-1]
    fig = go.Figure(go.Bar(
        x=[p["rho"] for p in rows], y=[diagnostic_label(p["diagnostic"]) for p in rows], orientation="h",
        marker_opacity=[1.0 if p["p_value"] < 0.05 else 0.35 for p in rows],
        text=[f"p={p['p_value']:.2g}" for p in rows], textposition="auto"))
    fig.update_layout(title=title or f"Early diagnostics (epoch {res.get('diag_epoch')}) vs final Δ — {method}",
                      xaxis_title="Spearman ρ", xaxis_range=[-1, 1], template="plotly_white",
                      height=max(300, 28 * len(rows) + 120))
    return fig
