"""Figures of :func:`cmkd_lab.explore_gap` (each returns a ``go.Figure``, none calls ``show()``).

:func:`gap_figures` returns them all as ``[(title, figure), ...]``: the two
sets overlaid in 2-D (UMAP and PCA; coloured by set and by class), the
distances before and after removing the gap vector, the transport plan
sorted by class, the per-class distances, the transfer matrix and, with
pairs, the retrieval recalls. The overlays need the features, which a
:class:`~cmkd_lab.diagnostics.GapResult` keeps in ``result.arrays``; a result
read back from ``gap.json`` gives every other figure.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .._validation import check_choice, check_int
from .curves import PALETTE, _go
from .labels import transport_plan_figure
from .projection import PROJECTIONS, project_features

__all__ = ["gap_figures", "gap_overlay", "gap_distance_figure", "gap_plan_figure", "gap_class_figure",
           "gap_transfer_figure", "gap_retrieval_figure", "GAP_FIGURES"]

SET_COLOURS = ("#1F77B4", "#D62728")
GAP_FIGURES = ("Overlay (UMAP)", "Overlay (PCA)", "Distances before and after removing the gap vector",
               "Transport plan sorted by class", "Per-class distances", "Cross-modal transfer", "Paired retrieval")


def _check(result) -> dict:
    if not isinstance(result, dict) or "distance" not in result or "names" not in result:
        raise TypeError("result must be what explore_gap returns (or gap.json read back); got "
                        f"{type(result).__name__}")
    return result


def _sub(n: int, y, k: int, seed: int) -> np.ndarray:
    from ..diagnostics import stratified_indices
    if n <= k:
        return np.arange(n)
    if y is not None:
        return stratified_indices(y, k, seed)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def gap_overlay(result, *, method: str = "umap", max_points: int = 1000, seed: int = 0):
    """Both sets in one 2-D embedding: coloured by set (left) and, with labels,
    by class with a marker per set (right). PCA also draws the gap vector (an
    arrow between the two projected means: PCA is linear, so it is exact).

    Parameters
    ----------
    result : GapResult
        From :func:`cmkd_lab.explore_gap` (needs ``result.arrays``).
    method : {"umap", "pca"}
    max_points : int
        Points per set (stratified when labelled, seeded).
    seed : int

    Returns
    -------
    go.Figure
    """
    go = _go()
    from plotly.subplots import make_subplots

    r = _check(result)
    check_choice("method", method, PROJECTIONS)
    check_int("max_points", max_points, minimum=3)
    arr = getattr(r, "arrays", None) or {}
    if arr.get("z_a") is None:
        raise ValueError("the overlay needs the features: pass the GapResult that explore_gap returned "
                         "(a result read back from gap.json holds no features)")
    za, zb, ya, yb = arr["z_a"], arr["z_b"], arr.get("y_a"), arr.get("y_b")
    ia, ib = _sub(len(za), ya, max_points, seed), _sub(len(zb), yb, max_points, seed + 1)
    ea, (eb,) = project_features(za[ia], [zb[ib]], method=method, fit_on="both", seed=seed)
    a, b = r["names"]
    labelled = ya is not None
    what = {"umap": "UMAP", "pca": "PCA"}[method]
    fig = make_subplots(rows=1, cols=2 if labelled else 1, horizontal_spacing=0.08,
                        subplot_titles=("coloured by set",) + (("coloured by class (● " + a + ", ✕ " + b + ")",)
                                                               if labelled else ()))
    for e, name, c, sym in ((ea, a, SET_COLOURS[0], "circle"), (eb, b, SET_COLOURS[1], "x")):
        fig.add_trace(go.Scatter(x=e[:, 0], y=e[:, 1], mode="markers", name=name, legendgroup="sets",
                                 marker=dict(color=c, symbol=sym, size=6, opacity=0.55)), row=1, col=1)
    if method == "pca":
        ma, mb = ea.mean(0), eb.mean(0)
        fig.add_annotation(x=mb[0], y=mb[1], ax=ma[0], ay=ma[1], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowwidth=2.5, arrowcolor="#222", text="",
                           row=1, col=1)
        fig.add_trace(go.Scatter(x=[ma[0], mb[0]], y=[ma[1], mb[1]], mode="markers+text", name="means (gap vector)",
                                 text=[f"mean {a}", f"mean {b}"], textposition=["top left", "bottom right"],
                                 marker=dict(color="#222", size=10, symbol="diamond")), row=1, col=1)
    if labelled:
        names = r.get("class_names") or [str(k) for k in range(int(max(ya.max(), yb.max())) + 1)]
        for k, cname in enumerate(names):
            col = PALETTE[k % len(PALETTE)]
            for e, y, name, sym in ((ea, ya[ia], a, "circle"), (eb, yb[ib], b, "x")):
                m = y == k
                if m.any():
                    fig.add_trace(go.Scatter(x=e[m, 0], y=e[m, 1], mode="markers", name=f"{cname} · {name}",
                                             legendgroup=f"class{k}",
                                             marker=dict(color=col, symbol=sym, size=6, opacity=0.6)), row=1, col=2)
    fig.update_layout(title=f"{a} and {b} in one {what} embedding (fitted on both, {len(ia)} + {len(ib)} points, "
                            f"seed {seed})", template="plotly_white", height=560)
    fig.update_xaxes(title_text=f"{what} 1")
    fig.update_yaxes(title_text=f"{what} 2")
    return fig


def gap_distance_figure(result):
    """MMD² and W1 (over the median distance) as the sets stand and after
    centring each set, and the share of W2² that the gap vector explains."""
    go = _go()
    from plotly.subplots import make_subplots

    r = _check(result)
    d, gv = r["distance"], r["gap_vector"]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("MMD²", "W1 / median distance", "W2² split"),
                        horizontal_spacing=0.1)
    x = ["as they stand", "each set centred"]
    mm = [d["mmd"]["mmd2"], gv["centred"]["mmd2"]]
    ps = [d["mmd"]["p_value"], gv["centred"]["p_value"]]
    fig.add_trace(go.Bar(x=x, y=mm, marker_color=["#555", "#9ab"], showlegend=False,
                         text=[f"p = {p:.2g}" if p is not None else "" for p in ps], textposition="outside"), 1, 1)
    fig.add_trace(go.Bar(x=x, y=[d["w1"]["w1_relative"], gv["centred"]["w1_relative"]], marker_color=["#555", "#9ab"],
                         showlegend=False), 1, 2)
    share = gv["gap"]["shift_share_w2"]
    if share is not None:
        fig.add_trace(go.Bar(x=["W2²"], y=[share], name="shift (‖Δmean‖²)", marker_color="#D62728"), 1, 3)
        fig.add_trace(go.Bar(x=["W2²"], y=[1 - share], name="change of shape", marker_color="#1F77B4"), 1, 3)
        fig.update_layout(barmode="stack")
        fig.update_yaxes(range=[0, 1], title_text="share", row=1, col=3)
    a, b = r["names"]
    fig.update_layout(title=f"What the gap vector (mean {b} − mean {a}, norm {gv['gap']['norm']:.3g}) explains",
                      template="plotly_white", height=420)
    return fig


def gap_plan_figure(result):
    """The entropic plan (rows: A, columns: B) sorted by class and pooled, and
    the class-to-class mass of the exact plan (:func:`transport_plan_figure`)."""
    r = _check(result)
    if not r.get("plan"):
        raise ValueError("the transport plan figure needs labels: pass y_a and y_b to explore_gap")
    a, b = r["names"]
    p = r["plan"]
    pur = r["classes"]["purity"]
    d = {"plans": [{"epoch": 0, "plan_x_uniform": p["plan_x_uniform"], "row_classes": p["row_classes"],
                    "col_classes": p["col_classes"]}],
         "records": [{"epoch": 0, "class_mass_exact": p["class_mass_exact"]}], "class_names": r.get("class_names")}
    sub = (f"chance level Σ_k p_A(k)·p_B(k) = {pur['chance']:.3f} (A = {a}, B = {b}) · up to a relabelling of "
           f"the classes {pur['purity_matched']:.3f}")
    return transport_plan_figure(d, title=f"Transport plan sorted by class ({a} rows, {b} columns)",
                                 row_name=a, col_name=b, subtitle=sub)


def gap_class_figure(result):
    """Per class: the MMD² between the two sets (✱ = rejected after Holm) and
    the distance between the class centroids."""
    go = _go()
    from plotly.subplots import make_subplots

    r = _check(result)
    if not r.get("classes"):
        raise ValueError("the per-class figure needs labels: pass y_a and y_b to explore_gap")
    pc = r["classes"]["per_class_mmd"]
    rows = pc["classes"]
    names = [q["name"] for q in rows]
    fig = make_subplots(rows=1, cols=2,
                        subplot_titles=("MMD² per class (✱ rejected, Holm)", "centroid gap per class"),
                        horizontal_spacing=0.1)
    fig.add_trace(go.Bar(x=names, y=[q["mmd2"] for q in rows], showlegend=False,
                         marker_color=[PALETTE[k % len(PALETTE)] for k in range(len(rows))],
                         text=["✱" if q["rejected"] else "" for q in rows], textposition="outside",
                         hovertext=[f"p (Holm) = {q['p_holm']}" for q in rows]), 1, 1)
    fig.add_trace(go.Bar(x=names, y=[q["centroid_gap"] for q in rows], showlegend=False,
                         marker_color=[PALETTE[k % len(PALETTE)] for k in range(len(rows))]), 1, 2)
    a, b = r["names"]
    fig.update_layout(title=f"Per-class distances between {a} and {b} ({pc['n_rejected']} of {pc['n_tested']} "
                            f"classes differ at α = {pc['alpha']})", template="plotly_white", height=420)
    return fig


def gap_transfer_figure(result):
    """Accuracy of a linear classifier: rows = the set it was trained on,
    columns = the set it is tested on (diagonal: own cross-validated
    accuracy), as the sets stand and after centring each set."""
    go = _go()
    from plotly.subplots import make_subplots

    r = _check(result)
    if not r.get("transfer"):
        raise ValueError("the transfer figure needs labels: pass y_a and y_b to explore_gap")
    tr = r["transfer"]
    a, b = r["names"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("as the sets stand", "each set centred"),
                        horizontal_spacing=0.06)
    for j, key in enumerate(("matrix_raw", "matrix_centred")):
        M = np.asarray(tr[key], dtype=float)
        fig.add_trace(go.Heatmap(z=M, x=[f"test {a}", f"test {b}"], y=[f"train {a}", f"train {b}"], zmin=0, zmax=1,
                                 colorscale="Blues", texttemplate="%{z:.3f}", showscale=j == 1,
                                 hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>"), 1, j + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=j == 0, row=1, col=j + 1)
    ch = tr["chance"]
    fig.update_layout(title=dict(text=f"Cross-modal transfer of a linear classifier ({tr['model']}, {tr['cv']}-fold "
                                      f"cross-fit)<br><sup>chance (most frequent class): {a} {ch[a]:.3f}, "
                                      f"{b} {ch[b]:.3f}</sup>"), template="plotly_white", height=420,
                      margin=dict(t=110))
    return fig


def gap_retrieval_figure(result):
    """Recall@1, @5 and @10 of paired retrieval, both ways, as the spaces
    stand, after centring, and after an orthogonal map fitted on other pairs."""
    go = _go()
    from plotly.subplots import make_subplots

    r = _check(result)
    if not r.get("paired"):
        raise ValueError("the retrieval figure needs pairs: pass pairs=True or a (P, 2) index array to explore_gap")
    rt = r["paired"]["retrieval"]
    a, b = r["names"]
    ways = [f"{a}→{b}", f"{b}→{a}"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=ways, horizontal_spacing=0.08)
    ks = list(rt["chance"])
    for j, way in enumerate(ways):
        for i, (variant, rec) in enumerate(rt["recall"].items()):
            fig.add_trace(go.Bar(x=[f"recall{k}" for k in ks], y=[rec[way][k] for k in ks], name=variant,
                                 legendgroup=variant, showlegend=j == 0, marker_color=PALETTE[i]), 1, j + 1)
        fig.add_trace(go.Scatter(x=[f"recall{k}" for k in ks], y=[rt["chance"][k] for k in ks], mode="markers",
                                 name="chance", legendgroup="chance", showlegend=j == 0,
                                 marker=dict(symbol="line-ew-open", size=30, color="#222")), 1, j + 1)
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(title=f"Paired retrieval among {rt['n_candidates']} candidates (cross-fitted halves)",
                      barmode="group", template="plotly_white", height=420)
    return fig


def gap_figures(result, *, projection: Union[str, Sequence[str]] = ("umap", "pca"), max_points: int = 1000,
                seed: Optional[int] = None) -> List[Tuple[str, object]]:
    """Every figure that ``result`` supports, as ``[(title, go.Figure), ...]``.

    Parameters
    ----------
    result : GapResult or dict
        From :func:`cmkd_lab.explore_gap`; a dict read back from ``gap.json``
        gives every figure but the overlays.
    projection : "umap", "pca", "none" or a sequence of them
        Overlays to draw (UMAP compiles for ≈ 10–15 s on its first call in a process).
    max_points : int
        Points per set in the overlays.
    seed : int, optional
        Default: the seed of the result.

    Returns
    -------
    list of (str, go.Figure), titles among :data:`GAP_FIGURES`
    """
    r = _check(result)
    methods = [projection] if isinstance(projection, str) else list(projection)
    for m in methods:
        check_choice("projection", m, PROJECTIONS + ("none",))
    seed = int(r.get("settings", {}).get("seed", 0)) if seed is None else seed
    figs = []
    if (getattr(r, "arrays", None) or {}).get("z_a") is not None:
        for m in methods:
            if m != "none":
                figs.append((f"Overlay ({m.upper()})", gap_overlay(r, method=m, max_points=max_points, seed=seed)))
    figs.append((GAP_FIGURES[2], gap_distance_figure(r)))
    if r.get("plan"):
        figs.append((GAP_FIGURES[3], gap_plan_figure(r)))
    if r.get("classes"):
        figs.append((GAP_FIGURES[4], gap_class_figure(r)))
    if r.get("transfer"):
        figs.append((GAP_FIGURES[5], gap_transfer_figure(r)))
    if r.get("paired"):
        figs.append((GAP_FIGURES[6], gap_retrieval_figure(r)))
    return figs
