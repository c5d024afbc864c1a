"""``02_unpaired_vs_paired``: every method under unpaired and paired data on
the built-in real tasks — saved ``bench`` results when present, otherwise a
run of :func:`cmkd_lab.experiments.run_bench` — as a table and figures.

``python -m cmkd_lab bench --task hapt --out runs/bench/hapt`` writes the
``results.json`` this notebook reads.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from .runner import make_sink
from .settings import LabSettings
from .shipped import SHIPPED_DIRS, shipped_bench, shipped_dirs, source_words  # noqa: F401  (re-exported)
from ._checks import lab_or_default

__all__ = ["SAVED_BENCH_DIRS", "SHIPPED_DIRS", "find_bench_results", "load_or_run_bench", "bench_table", "bench_figure",
           "bench_runs_figure", "bench_dir", "shipped_bench", "bench_markdown", "bench_delta_figure", "bench_note",
           "load_controls", "controls_markdown", "controls_figure", "CONTROL_SETS", "shipped_comparison",
           "shipped_controls", "controls_overview"]


# Where saved bench results are looked for when no path is given: your own runs first, then the results
# shipped with the repository (``docs/results``, see :mod:`.shipped`).
SAVED_BENCH_DIRS = ("runs/bench", "../runs/bench")
# The shipped teacher-control benches: (task, regime) -> file stem.
CONTROL_SETS = {(t, r): f"controls_{t.split('-')[0]}_{r}" for t in ("hapt", "digits-speech", "synthetic")
                for r in ("full", "scarce")}  # the names scripts/make_results.sh publishes (controls_digits_*)
_REGIME_WORDS = {"full": "all labels", "scarce": "a few labels, the rest unlabelled"}


def bench_dir(lab: Optional[LabSettings] = None) -> Path:
    """Where the notebook's own bench runs go: ``runs/bench`` (full mode) or
    ``runs/bench-fast`` (fast mode), relative to the working directory."""
    lab = lab_or_default(lab)
    return Path("runs") / ("bench-fast" if lab.fast else "bench")


def find_bench_results(task: str, search: Sequence[Union[str, Path]] = ()) -> Optional[Path]:
    """The first ``results.json`` for ``task`` under the ``search`` folders.

    A folder matches when it holds ``<task>/results.json`` or a
    ``results.json`` whose ``task`` is ``task``; a path to a ``results.json``
    matches when its task is ``task``.
    """
    for base in search:
        base = Path(base)
        for cand in ((base,) if base.suffix == ".json" else (base / task / "results.json", base / "results.json")):
            if cand.is_file():
                try:
                    if json.loads(cand.read_text()).get("task") == task:
                        return cand
                except (OSError, ValueError):
                    continue
    return None


def _read(path: Path) -> dict:
    try:
        res = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"bench results {str(path)!r} cannot be read ({type(e).__name__}: {e}); "
                         "point to a results.json written by `python -m cmkd_lab bench`") from None
    if not isinstance(res, dict) or "summary" not in res or "task" not in res:
        raise ValueError(f"{str(path)!r} is not a bench results.json (no 'task'/'summary'); "
                         "write one with `python -m cmkd_lab bench --out DIR`")
    res["source"] = str(path)
    return res


def load_or_run_bench(*, tasks: Optional[Sequence[str]] = None, path=None, methods: Optional[Sequence[str]] = None,
                      pairings: Sequence[str] = ("unpaired", "paired"), seeds: Optional[Sequence[int]] = None,
                      epochs: Optional[int] = None, out=None, lab: Optional[LabSettings] = None,
                      progress=True, run_missing: bool = True, shipped_first: bool = True) -> Dict[str, dict]:
    """Bench results per task: read from disk when saved, otherwise run.

    Parameters
    ----------
    tasks : sequence of str, optional
        Default: ``lab.bench_tasks`` (``hapt`` in fast mode; ``hapt`` and
        ``digits-speech`` otherwise).
    path : path or dict task -> path, optional
        Saved results (a ``results.json`` or a folder holding
        ``<task>/results.json``). Default: ``runs/bench`` and
        ``../runs/bench`` (a bench run from the repository root, seen from
        ``notebooks/``), then — with ``shipped_first`` — the results shipped in ``docs/results``
        (``bench_<task>.json``: five seeds, fifteen epochs). Searched before ``out``.
    methods : sequence of str, optional
        Default: ``lab.bench_methods`` (every method when None).
    pairings : sequence of str
    seeds : sequence of int, optional
        Default ``lab.bench_seeds``.
    epochs : int, optional
        Student epochs per run (default ``lab.bench_epochs``).
    out : path, optional
        Where a run writes (default :func:`bench_dir`); ``out/<task>``.
    progress : None, True or callable
        A bar over the runs.
    run_missing : bool
        Run the bench for tasks with no saved results (else raise).
    shipped_first : bool
        Read the shipped results before running anything (the notebooks' default: a class needs the
        five-seed numbers, not a one-seed rerun).

    Returns
    -------
    dict task -> results dict (as ``results.json``, plus ``source``: the file read or written)
    """
    from ..experiments import run_bench
    from ..data import available_tasks
    from ..distill import DistillConfig, available_methods, get_method

    lab = lab_or_default(lab)
    from ._checks import need_list
    tasks = need_list(tasks or lab.bench_tasks, "tasks", "built-in task names", "['hapt']")
    known = available_tasks()
    for t in tasks:
        if t not in known:
            raise ValueError(f"tasks must be built-in task names ({', '.join(known)}); got {t!r}")
    methods = need_list(methods or lab.bench_methods or available_methods(), "methods", "method names",
                        "['ce', 'ucmkd']")
    for m in methods:
        get_method(m)
    seeds = need_list(lab.bench_seeds if seeds is None else seeds, "seeds", "seeds", "[0, 1, 2]")
    epochs = lab.bench_epochs if epochs is None else epochs
    out = Path(out) if out is not None else bench_dir(lab)
    sink = make_sink(progress)
    results = {}
    for t in tasks:
        given = path.get(t) if isinstance(path, dict) else path
        search = [given] if given is not None else list(SAVED_BENCH_DIRS)
        shipped = shipped_bench(f"bench_{t.replace('-', '_')}") if given is None and shipped_first else None
        found = find_bench_results(t, search + ([shipped] if shipped else []) + [out])
        if found is not None:
            results[t] = _read(found)
            continue
        if not run_missing:
            raise FileNotFoundError(f"no bench results for task {t!r} under {given or out}; run "
                                    f"`python -m cmkd_lab bench --task {t} --out {out / t}` or pass run_missing=True")
        def log(msg, t=t):  # "[bench] i/N cell method seed s: acc" after each run
            m = re.match(r"\[bench\] (\d+)/(\d+) ", msg)
            if sink is not None and m:
                sink("bench", int(m.group(1)), int(m.group(2)), f"{t}: {msg[m.end():].strip()}")

        cfg = DistillConfig(epochs=epochs, teacher_epochs=lab.teacher_epochs)
        res = run_bench(t, methods, list(pairings), seeds, out / t, cfg, fast=lab.task_fast, log=log)
        res["source"] = str(out / t / "results.json")
        results[t] = res
        if sink is not None:
            sink("bench", 1, 1, f"{t}: done")
    if sink is not None:
        sink("done", 1, 1, "")
    return results


def bench_table(res: dict):
    """The summary as a table: one row per (pairing, method), accuracies in %.

    Returns
    -------
    pandas.DataFrame indexed by (pairing, method)
    """
    import pandas as pd

    from ._checks import need_bench
    need_bench(res)

    def pct(v):
        return None if v is None else round(100 * v, 2)

    rows = [{"pairing": r["pairing"], "method": r["method"], "seeds": r["n_seeds"],
             "test acc % (best val)": pct(r["test_acc_best_val_mean"]), "± std": pct(r["test_acc_best_val_std"]),
             "test acc % (last)": pct(r["test_acc_last_mean"]), "teacher %": pct(r["teacher_test_acc_mean"]),
             "s / run": round(r["wall_s_mean"], 1)} for r in res["summary"] if not r.get("aliased")]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    order = {"unpaired": 0, "class-matched": 1, "paired": 2}
    df = df.sort_values(["pairing", "method"], key=lambda s: s.map(order) if s.name == "pairing" else s)
    return df.set_index(["pairing", "method"])


def bench_figure(res: dict, *, title: Optional[str] = None):
    """Grouped bars: test accuracy (best-validation epoch) per method, one
    colour per pairing, ± std over seeds; the teacher's accuracy dotted."""
    from ._deps import require_plotly

    go = require_plotly()
    from ..viz.curves import PALETTE

    from ._checks import need_bench
    need_bench(res)
    fig = go.Figure()
    summary = [r for r in res["summary"] if not r.get("aliased")]  # a run shared by two pairings, shown once
    methods = sorted({r["method"] for r in summary})
    for i, pairing in enumerate(p for p in ("unpaired", "class-matched", "paired")
                                if any(r["pairing"] == p for r in summary)):
        rows = {r["method"]: r for r in summary if r["pairing"] == pairing}
        ys = [rows[m]["test_acc_best_val_mean"] if m in rows else None for m in methods]
        es = [rows[m]["test_acc_best_val_std"] if m in rows else None for m in methods]
        fig.add_trace(go.Bar(x=methods, y=ys, name=pairing, marker_color=PALETTE[i],
                             error_y=dict(type="data", array=es, visible=True)))
    teach = [r["teacher_test_acc_mean"] for r in res["summary"] if r.get("teacher_test_acc_mean") is not None]
    if teach:
        fig.add_hline(y=sum(teach) / len(teach), line=dict(dash="dot", color="grey"),
                      annotation_text="teacher (its own modality)", annotation_position="top left")
    _ce_line(fig, res)
    seeds = res.get("seeds")
    fig.update_layout(barmode="group", template="plotly_white", height=420, yaxis_title="student test accuracy",
                      yaxis_range=[0, 1], xaxis_title="method",
                      title=title or f"{res.get('task')}: unpaired vs paired (seeds {seeds}"
                                     f"{', fast subset' if res.get('fast') else ''})")
    return fig


def bench_runs_figure(res: dict, *, title: Optional[str] = None):
    """Every run as a point (method × pairing, one point per seed): the seed spread."""
    from ._deps import require_plotly

    go = require_plotly()
    from ..viz.curves import PALETTE

    from ._checks import need_bench
    need_bench(res)
    runs = [r for r in res.get("runs", []) if r.get("student_test_acc") is not None and not r.get("alias_of")]
    fig = go.Figure()
    present = [p for p in ("unpaired", "class-matched", "paired") if any(r["pairing"] == p for r in runs)]
    for i, pairing in enumerate(present):
        rs = [r for r in runs if r["pairing"] == pairing]
        fig.add_trace(go.Scatter(x=[r["method"] for r in rs], y=[r["student_test_acc"] for r in rs], mode="markers",
                                 name=pairing, marker=dict(color=PALETTE[i], size=9, opacity=0.75),
                                 text=[f"seed {r['seed']}" for r in rs]))
    _ce_line(fig, res)
    fig.update_layout(template="plotly_white", height=380, yaxis_title="student test accuracy", xaxis_title="method",
                      title=title or f"{res.get('task')}: every run (one point per seed)")
    return fig


def _ce_line(fig, res: dict, baseline: str = "ce") -> None:
    """A dashed line at the baseline's mean accuracy: the reference every method is read against."""
    b = [r for r in res.get("summary", []) if r.get("method") == baseline and r.get("test_acc_best_val_mean") is not None]
    if b:
        fig.add_hline(y=b[0]["test_acc_best_val_mean"], line=dict(dash="dash", color="#D62728", width=1),
                      annotation_text=f"{baseline} (no teacher): {100 * b[0]['test_acc_best_val_mean']:.1f} %",
                      annotation_position="top right")


def _md(text: str):
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - outside IPython
        return text
    return Markdown(text)


def bench_note(res: dict) -> str:
    """One line on where a bench's numbers come from and what they can show: the file, the seeds, the
    format (an older file has no A/A control), and a warning when one or two seeds stand behind them."""
    from ..results import current_bench, provenance_note
    from ._checks import need_bench
    need_bench(res)
    r = current_bench(res)
    seeds = list(res.get("seeds") or [])
    n = len(seeds)
    parts = [f"`{res.get('task')}` from {source_words(res.get('source'))}: {n} seed{'s' if n != 1 else ''} "
             f"{seeds}, {((res.get('config') or {}).get('epochs'))} epochs{', fast subset' if res.get('fast') else ''}."]
    if n == 1:
        parts.append("**One seed: no interval, no noise floor — no difference between methods can be read from "
                     "these numbers**; they show the mechanics only.")
    elif n == 2:
        parts.append("**Two seeds: an interval is ±12.7 × the spread of the paired differences — no difference "
                     "between methods can be read from these numbers**; they show the mechanics only.")
    if r.get("upgraded"):
        parts.append("This file predates the A/A control: the paired differences are computed here from its runs, "
                     "and the noise floor is the baseline's seed-to-seed spread alone.")
    parts.append(provenance_note(res))
    return " ".join(p for p in parts if p)


def bench_markdown(res: dict):
    """The bench's tables as Markdown (:func:`cmkd_lab.results.format_bench_markdown` on
    :func:`cmkd_lab.results.current_bench`): accuracies, then every paired difference with ``ce`` with its
    interval, wins/losses, MDE and noise floor, and the seeds a comparison would need."""
    from ..results import current_bench, format_bench_markdown
    from ._checks import need_bench
    need_bench(res)
    cur = current_bench(res)
    text = format_bench_markdown(dict(cur, skipped=[], aliases=[])).rstrip()
    return _md(bench_note(res) + "\n\n" + text + "".join(f"\n\n{line}" for line in skipped_lines(cur)))


def skipped_lines(res: dict) -> list:
    """One line per pairing for the methods a bench did not run there, with the reason in a student's words
    (a paired baseline under ``unpaired``: it needs the teacher's view of each student sample), and one line
    for the runs that serve both pairings."""
    by = {}
    for s in res.get("skipped", []):
        by.setdefault(s["pairing"], []).append(s)
    out = []
    for pairing, rows in by.items():
        names = ", ".join(f"`{s['method']}`" for s in rows)
        if all("tied to each student sample" in s["reason"] for s in rows):
            why = "they need the teacher's view of each student sample, which only paired data has"
        else:
            why = "; ".join(s["reason"] for s in rows)
        out.append(f"Not run under `{pairing}`: {names} — {why}.")
    shared = list(dict.fromkeys(a["method"] for a in res.get("aliases", [])))
    if shared:
        out.append("One run serves both pairings for " + ", ".join(f"`{m}`" for m in shared)
                   + ": they never read a teacher sample, so pairing cannot change them.")
    return out


def bench_delta_figure(res: dict, *, title: Optional[str] = None):
    """Paired differences with ``ce`` per method and pairing, with intervals, ± MDE and the noise floor
    (:func:`cmkd_lab.viz.delta_bars`)."""
    from ..results import current_bench
    from ..viz import delta_bars
    from ._checks import need_bench
    need_bench(res)
    r = current_bench(res)
    n = len(res.get("seeds") or [])
    return delta_bars(r["comparisons"], baseline=r["baseline"], group="pairing",
                      title=title or f"{res.get('task')}: Δ test accuracy vs {r['baseline']}, paired by seed "
                                     f"({n} seeds): mean, 95 % interval, ± MDE (grey ticks)")


def load_controls(task: str = "synthetic", regime: str = "scarce", path=None) -> Optional[dict]:
    """The shipped teacher-control bench ``docs/results/controls_<task>_<regime>.json`` (or ``path``), in the
    current shape (:func:`cmkd_lab.results.current_bench`), or None when it is missing or holds no control
    table (a file of an older format)."""
    from ..results import current_bench, load_bench
    if (task, regime) not in CONTROL_SETS and path is None:
        raise ValueError(f"task and regime must name a shipped control bench {sorted(CONTROL_SETS)}; "
                         f"got {(task, regime)!r}")
    p = Path(path) if path is not None else shipped_bench(CONTROL_SETS[(task, regime)])
    if p is None or not p.exists():
        return None
    try:
        res = current_bench(load_bench(p))
    except (OSError, ValueError):
        return None
    return res if res.get("control_table") else None


def controls_markdown(res: Optional[dict], *, what: str = ""):
    """The control table as Markdown (:func:`cmkd_lab.results.format_control_markdown`), or a one-line note
    when ``res`` is None (the file is not in this checkout yet)."""
    from ..results import format_control_markdown, provenance_note
    if res is None:
        return _md(f"*{what or 'This control bench'} has not been made for this release of cmkd_lab yet.*")
    return _md(f"{what + ': ' if what else ''}`{res.get('task')}` from {source_words(res.get('source'))}, "
               f"seeds {res.get('seeds')}. "
               f"{provenance_note(res)}\n\n" + format_control_markdown(res, rows=res["control_table"]))


def shipped_controls() -> list:
    """The (task, regime) pairs of :data:`CONTROL_SETS` whose control bench this release ships."""
    return [key for key in CONTROL_SETS if load_controls(*key) is not None]


def controls_overview():
    """Markdown: which control benches this release ships and which have not been made yet, in a
    student's words."""
    have = shipped_controls()
    words = {t: t.replace("hapt", "HAPT") for t, _ in CONTROL_SETS}
    name = [f"{words[t]} with {_REGIME_WORDS[r]}" for t, r in CONTROL_SETS]
    shipped = [n for n, key in zip(name, CONTROL_SETS) if key in have]
    later = [n for n, key in zip(name, CONTROL_SETS) if key not in have]
    text = "Control benches shipped with this release: " + ("; ".join(shipped) if shipped else "none") + "."
    if later:
        text += (" Not made yet: " + "; ".join(later) + " — those runs are still to be done, so their "
                 "tables are missing below, not hidden.")
    return _md(text)


def controls_figure(res: Optional[dict], *, title: Optional[str] = None):
    """:func:`cmkd_lab.viz.control_bars` of a control bench, or None when ``res`` is None."""
    if res is None:
        return None
    from ..viz import control_bars
    return control_bars(res["control_table"], baseline=res.get("baseline", "ce"),
                        title=title or f"{res.get('task')}: whose knowledge is the gain? "
                                       f"(mean over {len(res.get('seeds') or [])} seeds, 95 % intervals)")


def shipped_comparison(task: str = "hapt", methods: Sequence[str] = ("ucmkd",), *, pairing: str = "unpaired"):
    """The shipped five-seed comparison of ``methods`` with ``ce`` on ``task`` (``docs/results/bench_<task>.json``)
    as Markdown: Δ with its 95 % interval, wins/losses, MDE and the verdict, then ``ce``'s noise floor — the
    reference a one-seed run in a notebook is read against. A one-line note when the file is missing."""
    from ..results import current_bench, load_bench, provenance_note
    from ..results.tables import fmt_delta
    from ._checks import need_str
    need_str(task, "task", "a built-in task's name, e.g. 'hapt'")
    p = shipped_bench(f"bench_{task.replace('-', '_')}")
    if p is None:
        return _md(f"*The five-seed bench of `{task}` has not been made for this release of cmkd_lab: no "
                   "reference to compare with.*")
    res = current_bench(load_bench(p))
    rows = [r for r in res["comparisons"] if r["method"] in methods and (r.get("values") or {}).get("pairing",
                                                                                                   pairing) == pairing]
    base = next((r for r in res["comparisons"] if r["method"] == res["baseline"] and not r.get("aliased")), None)
    lines = [f"Shipped reference, `{task}` ({pairing}), {len(res.get('seeds') or [])} seeds × "
             f"{(res.get('config') or {}).get('epochs')} epochs, from {source_words(p)}:", "",
             f"| method | Δ vs {res['baseline']} (points) [95 % CI] wins/losses · MDE | verdict |", "|---|---|---|"]
    lines += [f"| `{r['method']}` | {fmt_delta(r)} | {r.get('verdict', '')} |" for r in rows]
    if base is not None and base.get("noise_baseline_std") is not None:
        lines += ["", f"Noise floor: `{res['baseline']}` alone spreads ±{100 * base['noise_baseline_std']:.2f} points "
                      "from seed to seed" + (f"; the A/A control (ce against ce retrained with other training noise) "
                                             f"reads {100 * base['noise_aa_mean']:+.2f} points"
                                             if base.get("noise_aa_mean") is not None else
                                             " (this file predates the A/A control)") + "."]
    note = provenance_note(res)
    if note:
        lines += ["", note]
    return _md("\n".join(lines))
