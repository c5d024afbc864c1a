"""Self-contained HTML report of a run (plotly.js inlined once, viewable offline).

``write_report(result, path, baseline=...)`` renders the run's results — next to a baseline run
(``ce``: the student alone, same seed, data and teacher) when one is given —, a plain-language summary of
the diagnostics, every figure of :func:`cmkd_lab.viz.run_figures` with its caption
(:func:`cmkd_lab.viz.captions.figure_caption`), the per-epoch history labelled by the declared keys
(:mod:`cmkd_lab.results.keys`), the task, the config and the environment. ``export_pngs`` writes the
figures as PNG files where kaleido and a Chrome/Chromium are available (opt-in: ``report --png``).
The page is built with :mod:`cmkd_lab.htmlkit` and makes no network request.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import List, Optional, Tuple

from .htmlkit import PAPER, BOOK, Figures, details, esc, fmt, md_inline, page, percent, pre_json, table

__all__ = ["write_report", "render_report", "export_pngs", "write_pngs", "diagnostics_summary", "read_result",
           "check_result", "check_baseline", "RESULT_FIELDS", "RUN_FIELDS"]

REQUIRED_KEYS = ("history", "method", "task")  # what a report cannot be written without

# What the report's tables show of a result: the run's description, then its numbers (labels from the
# declared keys, :mod:`cmkd_lab.keys`).
RUN_FIELDS = ("task", "method", "seed", "pairing", "status", "student_fraction", "device")
RESULT_FIELDS = ("student_test_acc", "student_val_acc", "best_epoch", "student_test_acc_last", "teacher_test_acc",
                 "epochs_done", "wall_s", "s_per_epoch")


def _label(key: str) -> str:
    """People's name of a recorded number, with its unit (from its declaration; the key itself when
    nobody declared it)."""
    from .results.keys import describe
    k = describe(key)
    return f"{k.label} ({k.unit})" if k.unit else k.label


def _value(key: str, v) -> str:
    if v is None:
        return "—"
    if key.endswith("_acc") or key.endswith("_acc_last"):
        return percent(v)
    if key == "student_fraction":
        return f"{100 * v:g} %"
    if key in ("wall_s", "s_per_epoch") and isinstance(v, (int, float)):
        return f"{v:.1f}"
    return fmt(v)


def _labelled_table(keys, rows, *, first: str = "") -> str:
    """A table whose header names each column by its label (the key in a tooltip)."""
    th = (f"<th>{esc(first)}</th>" if first else "") + "".join(
        f"<th title='{esc(k)}'>{esc(_label(k))}</th>" for k in keys)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
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
    ordered and named by their declarations (:mod:`cmkd_lab.keys`); undeclared keys are shown too."""
    from .results.keys import describe, ordered
    present = list(dict.fromkeys(k for r in hist for k in r))
    diag_src = {k for k in present if describe(k).source == "diagnostics"}
    train = ordered([k for k in present if k not in diag_src])
    if "epoch" in train:  # the row's epoch first, as in the diagnostics table
        train = ["epoch"] + [k for k in train if k != "epoch"]
    out = "<h3>Training</h3>" + _labelled_table(train, [[esc(fmt(r.get(c))) for c in train] for r in hist])
    diag_rows = [r for r in hist if diag_src & set(r)]
    if diag_rows:
        cols = ["epoch"] + ordered(diag_src)
        out += "<h3>Diagnostics</h3>" + _labelled_table(cols, [[esc(fmt(r.get(c))) for c in cols] for r in diag_rows])
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
        acc = last.get("teacher_head_on_student_acc_ref")
        out.append(f"The teacher head gives the true class a mean probability κ̂ = {last['kappa_mean']:.3f} on the "
                   "student's features" + (f" and reads the right class for {acc:.1%} of them" if acc is not None
                                           else "") + ".")
    recs = d.get("records") or []
    stmt = next((r.get("bound_statement") for r in reversed(recs) if r.get("bound_statement")), None)
    if stmt:
        names = d.get("class_names") or []
        total = next((r.get("bound_sum") for r in reversed(hist) if r.get("bound_sum") is not None), None)
        if len(names) > 1 and total is not None and total > math.log(len(names)):
            stmt += (f" It is vacuous here: the sum is above ln K = {math.log(len(names)):.2f} nats, the "
                     "cross-entropy of a uniform guess (see The bound, term by term).")
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
    bad = [k for k in RESULT_FIELDS if result.get(k) is not None
           and (isinstance(result[k], bool) or not isinstance(result[k], (int, float)))]
    if bad or not all(isinstance(r, dict) for r in result["history"]):
        why = (f"{bad[0]} must be a number or null; got {result[bad[0]]!r}" if bad
               else "history must be a list of per-epoch records (JSON objects)")
        raise ValueError(f"{what}: {why}; the file was edited by hand or damaged: run the run again")
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


def _caption(title: str, result: dict, baseline: Optional[dict]) -> str:
    """The figure's caption (Markdown, from :mod:`cmkd_lab.viz.captions`) as HTML; empty when none."""
    try:
        from .viz.captions import figure_caption
    except ImportError:  # plotly missing: no figures, no captions
        return ""
    text = figure_caption(title, result, reference=baseline)
    return f"<p class='note'>{md_inline(text)}</p>" if text else ""


def check_baseline(result: dict, baseline) -> Optional[dict]:
    """``baseline`` must be a run result of the same task and seed as ``result`` (or None)."""
    if baseline is None:
        return None
    if not isinstance(baseline, dict):
        raise TypeError(f"baseline must be a run result (a dict as in result.json) or None; got "
                        f"{type(baseline).__name__}")
    check_result(baseline, source="baseline")
    for key in ("task", "seed"):
        if key in result and key in baseline and result[key] != baseline[key]:
            raise ValueError(f"baseline must be a run of the same {key} as the result ({key}={result[key]!r}); "
                             f"got {key}={baseline[key]!r}: pass the baseline run made with the same {key}")
    return baseline


def _results_section(result: dict, baseline: Optional[dict]) -> str:
    run = _labelled_table([k for k in RUN_FIELDS if result.get(k) is not None],
                          [[esc(_value(k, result.get(k))) for k in RUN_FIELDS if result.get(k) is not None]])
    keys = [k for k in RESULT_FIELDS if result.get(k) is not None or (baseline or {}).get(k) is not None]
    name = str(result.get("method"))
    if baseline is None:
        rows = [[f"<span title='{esc(k)}'>{esc(_label(k))}</span>", esc(_value(k, result.get(k)))] for k in keys]
        nums = table(rows, ["", name], raw=True)
        note = ("<p class='note'>No baseline run was given: to read what distillation adds, compare with "
                "<code>ce</code> (the student alone) trained with the same seed — "
                "<code>python -m cmkd_lab run --method ce</code> with the same options, or "
                "<code>python -m cmkd_lab demo</code>, which trains both.</p>")
    else:
        bname = str(baseline.get("method"))
        rows = []
        for k in keys:
            a, b = result.get(k), baseline.get(k)
            diff = ""
            if k.endswith("_acc") or k.endswith("_acc_last"):
                diff = percent(a - b, signed=True, unit=" points") if a is not None and b is not None else "—"
            rows.append([f"<span title='{esc(k)}'>{esc(_label(k))}</span>", esc(_value(k, a)), esc(_value(k, b)),
                         esc(diff)])
        nums = table(rows, ["", f"{name} (this run)", f"{bname} (baseline)", f"{name} − {bname}"], raw=True)
        note = (f"<p class='note'>The baseline <code>{esc(bname)}</code> is the student trained alone with the "
                "same seed, data and teacher. One seed each: a difference of a point or two between two runs is "
                "within the seed-to-seed spread; the benches with five seeds and their noise floor are in the "
                "book's Results pages.</p>")
    return f"<h2>Results</h2>{run}{nums}{note}"


def render_report(result: dict, *, projection: Optional[str] = None, figures=None,
                  baseline: Optional[dict] = None) -> str:
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
    baseline : dict, optional
        The result of the reference run (``ce``, same task and seed), shown next to this run's numbers and
        read by the captions.

    Raises
    ------
    TypeError, ValueError
        ``result`` (or ``baseline``) is not a run result, or the baseline is of another task or seed.
    """
    check_result(result)
    baseline = check_baseline(result, baseline)
    figs = _figures(result, projection) if figures is None else list(
        figures.items() if isinstance(figures, dict) else figures)
    embed = Figures()
    parts = []
    for title, fig in figs:
        parts.append(f"<h2>{esc(title)}</h2>{_caption(title, result, baseline)}{embed(fig)}")
    hist = [r for r in result.get("history", []) if isinstance(r, dict)]
    d = result.get("diagnostics") or {}
    bullets = "".join(f"<li>{md_inline(s)}</li>" for s in diagnostics_summary(result))
    settings = d.get("settings")
    recs = d.get("records") or []
    method = next((r.get("bound_method") for r in reversed(recs) if r.get("bound_method")), None)
    diag_info = ""
    if settings:
        diag_info = details("Diagnostics settings", pre_json(settings) + (
            "<p>How the bound's terms were estimated:</p>" + pre_json(method) if method else ""))
    if d.get("errors"):
        diag_info += f"<p class='warn'>Diagnostics failed at some epochs: {esc(d['errors'])}</p>"
    title = f"cmkd_lab — {result.get('task')} · {result.get('method')} · seed {result.get('seed')}"
    if (result.get("task_info") or {}).get("fast"):  # a quick pass: say so where the reader starts
        title += " · fast subset (a quick pass: not comparable with full runs)"
    body = (f"<p>The method and the bound: {PAPER}. What each figure and number means: the Theory and User "
            f"guide pages of {BOOK}.</p>"
            + _results_section(result, baseline)
            + f"<h2>What the diagnostics say</h2><ul>{bullets}</ul>{diag_info}"
            + "".join(parts)
            + f"<h2>History</h2>{_history_tables(hist)}"
            + "<h2>Task</h2>" + pre_json(result.get("task_summary", {})) + pre_json(result.get("task_info", {}))
            + "<h2>Config</h2>" + pre_json(result.get("config", {}))
            + "<h2>Environment</h2>" + pre_json(result.get("versions", {})))
    return page(title, body)


def write_report(result: dict, path, *, projection: Optional[str] = None, figures=None,
                 baseline: Optional[dict] = None) -> Path:
    """Write ``report.html`` for ``result`` (a dict as in ``result.json``); atomic. ``figures`` and
    ``baseline``: as :func:`render_report` (the figures already drawn, so that none is drawn twice; the
    ``ce`` run of the same seed shown next to this one)."""
    from ._atomic import atomic_write_text
    return atomic_write_text(Path(path), render_report(result, projection=projection, figures=figures,
                                                       baseline=baseline))


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
