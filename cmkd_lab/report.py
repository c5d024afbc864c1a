"""Self-contained HTML report of a run (plotly.js inlined once, viewable offline).

``write_report(result, path)`` renders every figure of
:func:`cmkd_lab.viz.run_figures`, a plain-language summary of the
diagnostics, the results, the per-epoch history, the task, the config and
the environment. ``export_pngs`` writes the figures as PNG files where
kaleido and a Chrome/Chromium are available (opt-in: ``report --png``).
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import List, Optional, Tuple

__all__ = ["write_report", "render_report", "export_pngs", "write_pngs", "diagnostics_summary", "read_result",
           "check_result"]

REQUIRED_KEYS = ("history", "method", "task")  # what a report cannot be written without

_EXPLAIN = {
    "Loss terms": "Mean of each loss term over the epoch's steps; dashed lines are the terms as weighted in the "
                  "loss (λ·term), which shows which term drives the gradient.",
    "Accuracy": "Student accuracy on its validation and test splits (the reported test accuracy is taken at the "
                "best validation epoch), and the frozen teacher head applied to the student's features.",
    "MMD between student and teacher features": "Unbiased MMD² with an RBF kernel whose bandwidths are fixed from "
        "the teacher's reference features for the whole run, on fixed held-out subsets (student val, teacher val), "
        "so epochs are comparable. p-values from a permutation test; below the dotted line (0.05) the two feature "
        "distributions are distinguishable.",
    "Optimal transport and transport-plan class purity": "Left: distances between the feature sets (entropic OT "
        "cost with a fixed ε, exact W1, debiased Sinkhorn divergence). Right: the share of transported mass that "
        "joins samples of the same class. At the chance level the alignment ignores the classes.",
    "The bound, term by term": "err_S ≤ err_T + FA + LA_e (the paper's theorem; docs/theory.md), estimated on the reference sets. FA = τ̂·W1 "
        "with τ̂ a sampled estimate of the Lipschitz constant of the teacher loss; LA_e uses the plug-in κ̂.",
    "Modality gap": "Centroid gap and cosine between mean features (no pairs needed), mean κ̂ = p_T(y | z_S) and "
                    "the teacher head's accuracy on the student's features.",
    "Label distributions": "Rows: true class; columns: predicted class. The middle column is what the teacher's "
                           "head reads from the student's features (the quantity LA relies on).",
    "Transport plan": "The entropic plan between student (rows) and teacher (columns) reference features, sorted "
                      "by class and pooled within classes: mass on the diagonal blocks respects the classes.",
    "Teacher and student features (UMAP)": "A 2-D UMAP of the teacher's (●) and the student's (✕) features, "
        "coloured by class, fitted once on all stored epochs; the slider moves across them. UMAP keeps local "
        "neighbourhoods, so two modalities often stay apart even when their distributions have moved closer.",
    "Teacher and student features (PCA)": "The same features on the first two principal components (a linear "
        "projection fitted on all stored epochs): global shifts and overlaps show as they are.",
}


def _fmt(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return ""
    return str(v)


def _table(rows, header):
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def _figures(result, projection):
    try:
        from .viz import run_figures
    except ImportError:  # plotly missing
        return []
    return run_figures(result, projection=projection)


def _history_tables(hist) -> str:
    """Every number the run recorded, in two tables: training (bookkeeping, loss terms, outcomes and the
    trainer's and methods' own measurements) and diagnostics (what ``diagnose`` records), the columns
    ordered by their declarations (:mod:`cmkd_lab.keys`); undeclared keys are shown too."""
    from .results.keys import describe, ordered
    present = list(dict.fromkeys(k for r in hist for k in r))
    diag_src = {k for k in present if describe(k).source == "diagnostics"}
    train = ordered([k for k in present if k not in diag_src])
    out = f"<h3>Training</h3>{_table([[r.get(c) for c in train] for r in hist], train)}"
    diag_rows = [r for r in hist if diag_src & set(r)]
    if diag_rows:
        cols = ["epoch"] + ordered(diag_src)
        out += f"<h3>Diagnostics</h3>{_table([[r.get(c) for c in cols] for r in diag_rows], cols)}"
    return out


def diagnostics_summary(result: dict) -> List[str]:
    """Plain sentences on what the diagnostics recorded (first vs last epoch)."""
    hist = [r for r in result.get("history", []) if "mmd2" in r]
    if not hist:
        return ["No diagnostics were recorded in this run."]
    d = result.get("diagnostics") or {}
    first = d.get("initial") or hist[0]
    e0 = 0 if d.get("initial") else hist[0]["epoch"]
    last = hist[-1]
    e1 = last["epoch"]
    out = []

    def trend(key, name, fmt="{:.4g}"):
        a, b = first.get(key), last.get(key)
        if a is None or b is None:
            return None
        word = "fell" if b < a else "rose" if b > a else "stayed"
        return f"{name} {word} from {fmt.format(a)} (epoch {e0}) to {fmt.format(b)} (epoch {e1})"

    s = trend("mmd2", "MMD²")
    if s:
        p = last.get("mmd_p")
        out.append(s + (f"; permutation p-value at the last epoch {p:.3g}" if p is not None else "") + ".")
    for key, name in (("w1", "W1 (exact OT)"), ("sinkhorn_div", "The Sinkhorn divergence"),
                      ("centroid_gap", "The centroid gap")):
        s = trend(key, name)
        if s:
            out.append(s + ".")
    if last.get("purity") is not None:
        out.append(f"At epoch {e1}, {last['purity']:.1%} of the transported mass (exact plan) joins same-class "
                   f"samples, against a chance level of {last.get('purity_chance', float('nan')):.1%}"
                   + (f"; up to a relabelling of the classes, {last['purity_matched']:.1%}"
                      if last.get("purity_matched") is not None else "") + ".")
    if last.get("kappa_mean") is not None:
        out.append(f"The teacher head gives the true class a mean probability κ̂ = {last['kappa_mean']:.3f} on the "
                   f"student's features (accuracy {last.get('teacher_head_on_student_acc_ref', float('nan')):.3f}).")
    recs = d.get("records") or []
    stmt = next((r.get("bound_statement") for r in reversed(recs) if r.get("bound_statement")), None)
    if stmt:
        out.append(f"Epoch {e1}: {stmt}")
    fails = [r["epoch"] for r in hist if r.get("bound_holds") is False]
    if fails:
        out.append(f"The estimated bound does not hold at epoch(s) {fails}.")
    return out


def check_result(result, source: str = "result") -> dict:
    """``result`` must be a run result: a dict with at least :data:`REQUIRED_KEYS`, its history a list
    of records. Other keys are optional (a report shows what is there; ``Trainer.fit()`` results
    carry fewer keys than ``result.json``)."""
    what = f"{source} is not a cmkd_lab run result"
    if not isinstance(result, dict):
        if source == "result":
            raise TypeError(f"result must be a dict as in result.json; got {type(result).__name__}")
        raise TypeError(f"{what}: it must hold a JSON object; got a {type(result).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in result]
    if missing:
        raise ValueError(f"{what}: it lacks the required key(s) {missing}; pass the folder of a run written by "
                         "python -m cmkd_lab run (or the dict Trainer.fit() returns)")
    if not isinstance(result["history"], list):
        raise ValueError(f"{what}: history must be a list of per-epoch records; got "
                         f"{type(result['history']).__name__}")
    return result


def read_result(path) -> dict:
    """Read and check a ``result.json`` (through :func:`cmkd_lab.store.read_json`); every error names the file."""
    from .store import read_json
    try:
        result = read_json(path, what="run result", expect=None)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from None
    try:
        return check_result(result, source=repr(str(path)))
    except TypeError as e:
        raise ValueError(str(e)) from None


def _readings(result) -> dict:
    """Figure title -> the data-driven readings of this run (:mod:`cmkd_lab.viz.captions`)."""
    try:
        from .viz.captions import FIGURE_KINDS, run_readings
    except ImportError:  # plotly missing: no figures, no readings
        return {}
    r = run_readings(result)
    return {title: r.get(kind, []) for title, kind in FIGURE_KINDS.items()}


def render_report(result: dict, *, projection: Optional[str] = None, figures=None) -> str:
    """The HTML text of a run's report.

    Parameters
    ----------
    result : dict
        As in ``result.json``.
    projection : {"umap", "pca", "none"}, optional
        Projection of the feature overlay (default: UMAP, PCA in fast mode).
    figures : dict title -> figure or list of (title, figure), optional
        The run's figures when they are already drawn (:func:`cmkd_lab.viz.run_figures`); otherwise they
        are drawn here.
    """
    check_result(result)
    figs = _figures(result, projection) if figures is None else list(
        figures.items() if isinstance(figures, dict) else figures)
    readings = _readings(result)
    parts = []
    first = True
    for title, fig in figs:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if title in _EXPLAIN:
            parts.append(f"<p class='note'>{html.escape(_EXPLAIN[title])}</p>")
        for line in readings.get(title, []):
            parts.append(f"<p class='note'>{html.escape(line.replace('**', '').replace('`', ''))}</p>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True if first else False, auto_play=False,
                                 config={"displaylogo": False}))
        first = False
    keys = ["task", "method", "seed", "pairing", "epochs", "epochs_done", "status", "student_test_acc",
            "student_val_acc", "best_epoch", "student_test_acc_last", "teacher_test_acc", "student_fraction",
            "wall_s", "s_per_epoch", "device"]
    summary = _table([(k, result.get(k)) for k in keys], ["field", "value"])
    hist = [r for r in result.get("history", []) if isinstance(r, dict)]
    d = result.get("diagnostics") or {}
    bullets = "".join(f"<li>{html.escape(s)}</li>" for s in diagnostics_summary(result))
    settings = d.get("settings")
    recs = d.get("records") or []
    method = next((r.get("bound_method") for r in reversed(recs) if r.get("bound_method")), None)
    diag_info = ""
    if settings:
        diag_info += ("<details><summary>Diagnostics settings</summary>"
                      f"<pre>{html.escape(json.dumps(settings, indent=1))}</pre>")
        if method:
            diag_info += ("<p>How the bound's terms were estimated:</p>"
                          f"<pre>{html.escape(json.dumps(method, indent=1))}</pre>")
        diag_info += "</details>"
    if d.get("errors"):
        diag_info += f"<p class='warn'>Diagnostics failed at some epochs: {html.escape(json.dumps(d['errors']))}</p>"
    info = html.escape(json.dumps(result.get("task_info", {}), indent=1, default=str))
    tsum = html.escape(json.dumps(result.get("task_summary", {}), indent=1, default=str))
    cfg = html.escape(json.dumps(result.get("config", {}), indent=1))
    env = html.escape(json.dumps(result.get("versions", {}), indent=1))
    title = f"cmkd_lab — {result.get('task')} · {result.get('method')} · seed {result.get('seed')}"
    style = ("body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222;padding:0 1em}"
             "table{border-collapse:collapse;font-size:12px;display:block;overflow-x:auto}"
             "td,th{border:1px solid #ccc;padding:3px 6px;white-space:nowrap}"
             "pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}.note{color:#555;font-size:14px}"
             ".warn{color:#a00}h2{margin-top:1.6em;border-bottom:1px solid #ddd}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            "<p>UCMKD: Tran, Chu, Pham, Nguyen, Hoang, <i>Cross-Modal Knowledge Distillation without Paired Data: "
            "Theoretical Foundation and Algorithm</i>, ICML 2026 (arXiv 2606.10504).</p>"
            f"<h2>Results</h2>{summary}<h2>What the diagnostics say</h2><ul>{bullets}</ul>{diag_info}"
            f"{''.join(parts)}<h2>History</h2>{_history_tables(hist)}"
            f"<h2>Task</h2><pre>{tsum}</pre><pre>{info}</pre><h2>Config</h2><pre>{cfg}</pre>"
            f"<h2>Environment</h2><pre>{env}</pre></body></html>")


def write_report(result: dict, path, *, projection: Optional[str] = None, figures=None) -> Path:
    """Write ``report.html`` for ``result`` (a dict as in ``result.json``); atomic. ``figures``: as
    :func:`render_report` (the figures already drawn, so that none is drawn twice)."""
    from ._atomic import atomic_write_text
    return atomic_write_text(Path(path), render_report(result, projection=projection, figures=figures))


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")[:50]


def export_pngs(result: dict, out_dir, *, projection: Optional[str] = None, width: int = 1100,
                height: int = 600) -> Tuple[List[Path], Optional[str]]:
    """Write each report figure as ``out_dir/NN_title.png`` with kaleido.

    Returns
    -------
    paths : list of Path written
    message : str or None
        Why nothing was written (kaleido or a Chrome missing), else None.
    """
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return [], _NO_KALEIDO
    return write_pngs(_figures(result, projection), out_dir, width=width, height=height)


_NO_KALEIDO = ("PNG export skipped: kaleido is not installed (pip install kaleido; it also needs a Chrome or "
               "Chromium, e.g. apt-get install chromium)")


def write_pngs(figs, out_dir, *, prefix: str = "", width: int = 1100,
               height: int = 600) -> Tuple[List[Path], Optional[str]]:
    """Write ``[(title, figure), ...]`` as ``out_dir/[prefix_]NN_title.png`` with kaleido (one browser session).

    Returns
    -------
    paths : list of Path written
    message : str or None
        Why nothing (or not everything) was written, else None.
    """
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return [], _NO_KALEIDO
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{prefix + '_' if prefix else ''}{i:02d}_{_slug(title)}.png" for i, (title, _) in enumerate(figs)]
    heights = [int(fig.layout.height or height) for _, fig in figs]
    try:
        import plotly.io as pio
        if hasattr(pio, "write_images"):  # one browser session for all figures
            pio.write_images([f for _, f in figs], [str(p) for p in paths], width=width, height=heights)
        else:  # pragma: no cover - older plotly
            for (_, f), p, h in zip(figs, paths, heights):
                f.write_image(str(p), width=width, height=h)
    except Exception as e:  # no Chrome, or kaleido cannot start it
        return [p for p in paths if p.exists()], (
            f"PNG export skipped: kaleido could not render ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); install a Chrome or Chromium "
            "(apt-get install chromium) or run kaleido's get_chrome")
    return paths, None
