"""``05_regime_map``: a small sweep run from the notebook, and the sweeps shipped with the repository
(``docs/results/*.json``), read without training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .settings import LabSettings
from .shipped import missing_note, shipped_result  # noqa: F401  (re-exported: the notebook's names)
from ._checks import lab_or_default

__all__ = ["REGIME_METHODS", "regime_grid", "run_regime_map", "shipped_result", "regime_table", "best_predictor",
           "predictor_note", "predictor_table", "sweep_note", "missing_note", "cell_delta", "entmin_comparison",
           "entmin_reading"]

REGIME_METHODS = ("ce", "fa", "ucmkd")


def regime_grid(lab: Optional[LabSettings] = None) -> dict:
    """The grid of the notebook's own (small) sweep: the weight of the OT term, λ_fa ∈ {1, 10}, at 20 % of
    the labels. The full grid (λ_fa × label shift at 5 % of the labels, five seeds) is the shipped sweep
    ``docs/results/regime_synthetic.json``, which the notebook reads instead of rerunning it."""
    return {"lambda_fa": [1, 10]}


def _progress_log(sink, what: str = "sweep"):
    """A ``log`` for the engine that moves a progress sink on its ``[sweep] i/N …`` lines."""
    import re

    def log(msg):
        m = re.match(rf"\[{what}\] (\d+)/(\d+) ", msg)
        if sink is not None and m:
            sink(what, int(m.group(1)), int(m.group(2)), msg[m.end():].strip())
    return log


def run_regime_map(*, lab: Optional[LabSettings] = None, out=None, methods=REGIME_METHODS, log=None,
                   progress=True) -> dict:
    """Run (or read back from ``out``) the notebook's small sweep on the synthetic task; returns ``sweep.json``'s
    content. Fast mode: 2 seeds, 3 epochs; full mode: 3 seeds, 10 epochs (about a minute on two cores);
    both at 20 % of the labels. Few seeds: it shows how a sweep is run and read, not a result
    (:func:`sweep_note`)."""
    from ..distill import DistillConfig
    from ..experiments import run_sweep
    lab = lab_or_default(lab)
    out = Path(out) if out is not None else Path("runs") / ("05_regime_map-fast" if lab.fast else "05_regime_map")
    cfg = (DistillConfig(epochs=3, teacher_epochs=3, student_fraction=0.2) if lab.fast else
           DistillConfig(epochs=10, teacher_epochs=10, student_fraction=0.2))
    from .runner import make_sink
    sink = make_sink(progress, label="sweep") if log is None else None
    from ._checks import need_list
    methods = need_list(methods, "methods", "method names", "['ce', 'fa']")
    res = run_sweep("synthetic", list(methods), regime_grid(lab), range(2 if lab.fast else 3), out, cfg,
                    fast=lab.fast, workers=1, log=log or _progress_log(sink))
    if sink is not None:
        sink("done", 1, 1, "")
    return res


def sweep_note(res: dict) -> str:
    """One line on what a sweep's numbers can show: its seeds and epochs, and a warning with one or two."""
    from ._checks import need_sweep
    need_sweep(res)
    n = len(res.get("seeds") or [])
    cfg = res.get("config") or {}
    txt = (f"`{res.get('task')}` sweep: {n} seed{'s' if n != 1 else ''}, {cfg.get('epochs')} epochs, "
           f"{len(res.get('runs', []))} runs.")
    if n <= 3:
        txt += (f" **{n} seeds: this shows how a sweep is run and read, not a result** — with so few seeds an "
                f"interval is {'±12.7' if n == 2 else '±4.3' if n == 3 else 'undefined:'} × the spread of the "
                "paired differences.")
    from ..results import provenance_note
    note = provenance_note(res)
    return txt + (" " + note if note else "")


def best_predictor(res: dict, *, methods=("all", "fa", "ucmkd", "ucmkd-joint"), min_n: int = 6) -> Optional[dict]:
    """The strongest early predictor of a sweep (largest |ρ|, :func:`cmkd_lab.viz.regime.predictor_rows`:
    the computation its table, bars and scatter share) among ``methods`` (``"all"``: every compared method
    pooled), preferring rows with at least ``min_n`` points; a predictor row or None."""
    from ..viz.regime import predictor_rows
    rows = [p for p in predictor_rows(res) if p["method"] in methods]
    if not rows:
        return None
    enough = [p for p in rows if p["n"] >= min_n] or rows
    return max(enough, key=lambda p: abs(p["rho"]))


def predictor_note(res: dict, pred: Optional[dict]) -> str:
    """Markdown: what the predictor's ρ rests on — which methods, how many points — and why the same
    diagnostic can read differently for one method and pooled."""
    if pred is None:
        return "*No early diagnostic could be ranked in this sweep (too few points, or a constant side).*"
    from math import factorial

    from ..viz.regime import diagnostic_label, predictor_rows
    n = pred["n"]
    who = "every compared method pooled" if pred["method"] == "all" else f"`{pred['method']}` alone"
    label = diagnostic_label(pred["diagnostic"], epoch=res.get("diag_epoch"))
    txt = (f"The strongest early diagnostic here is the **{label}** (key `{pred['diagnostic']}`): ρ = "
           f"{pred['rho']:+.2f} over {n} points (grid setting × seed) of {who}, p = {pred['p_value']:.2g}, "
           f"{pred['p_bonferroni']:.2g} after the Bonferroni correction over the diagnostics tried. ")
    if pred["diagnostic"] in ("ce", "fa", "la"):
        txt += (f"It is a *loss term* of the run — not the method `{pred['diagnostic']}`: the value of that term at "
                f"epoch {res.get('diag_epoch')}. ")
    others = [p for p in predictor_rows(res) if p["diagnostic"] == pred["diagnostic"] and p["method"] != pred["method"]]
    if others:
        txt += ("Each method is ranked on its own points and `all` on the pooled ones, so the same diagnostic can "
                "read differently: " + ", ".join(f"`{p['method']}` ρ = {p['rho']:+.2f} (n = {p['n']})"
                                                  for p in others) + ". ")
    if pred["method"] == "all" and others and all(abs(p["rho"]) < abs(pred["rho"]) / 2 for p in others):
        txt += ("The pooled ρ is much stronger than any method's own: most of it comes from the *difference between "
                "the methods* (one has both the larger diagnostic and the larger Δ), not from a prediction within a "
                "method — read a method's own row before trusting it for that method. ")
    if n <= 8:
        txt += (f"With n = {n} points a perfect ρ = ±1 arises by chance with probability 2/{n}! = "
                f"{2 / factorial(n):.2g} — and points of one seed are not independent: read it as a lead, "
                "not evidence.")
    return txt


def predictor_table(res: dict, *, top: int = 6):
    """The strongest early diagnostics per method (``top`` each) as a :class:`~cmkd_lab.widgets.tables.Table`,
    computed like the scatter and the bars (:func:`cmkd_lab.viz.regime.predictor_rows`)."""
    import pandas as pd

    from ..viz.regime import diagnostic_label, predictor_rows
    from .tables import make_table
    rows = []
    every = predictor_rows(res)
    for m in dict.fromkeys(p["method"] for p in every):
        best = sorted([p for p in every if p["method"] == m], key=lambda p: -abs(p["rho"]))[:top]
        rows += [{"method": m, "diagnostic": diagnostic_label(p["diagnostic"]), "ρ": p["rho"], "p": p["p_value"],
                  "p (Bonferroni)": p["p_bonferroni"], "n": p["n"], "key": p["diagnostic"]} for p in best]
    return make_table(pd.DataFrame(rows).drop(columns="key", errors="ignore"), formats={"ρ": "{:+.2f}", "p": "{:.2g}", "p (Bonferroni)": "{:.2g}"},
                      notes=[f"Spearman ρ between each diagnostic (read at epoch {res.get('diag_epoch')} unless "
                             "known before training) and the final Δ accuracy vs `ce`, over the points (grid "
                             "setting × seed) stored with the sweep; `all` pools the methods.",
                             "p (Bonferroni): the p-value times the number of diagnostics the sweep tried for that "
                             "method (at most 1)."] + diagnostic_notes(rows))


# The predictors a sweep derives from two records (cmkd_lab.results.summary), not declared by a producer.
_SWEEP_PREDICTORS = {"fa_over_ce": "the weighted OT term over the cross-entropy term, λ_fa·OT / CE",
                     "early_val_delta": "the validation-accuracy difference with `ce` already visible at that epoch"}


def diagnostic_notes(rows) -> list:
    """One legend line per diagnostic named in ``rows`` (each its ``diagnostic`` label and ``key``): what the
    number is, from its declaration (:mod:`cmkd_lab.keys`); a value of the plain ``ce`` run says so."""
    from ..results.keys import describe
    out = {}
    for r in rows:
        key = r["key"]
        base, of_ce = (key[3:], True) if key.startswith("ce:") else (key, False)
        k = describe(base)
        if base in _SWEEP_PREDICTORS:
            text = _SWEEP_PREDICTORS[base]
        elif k.kind == "other":
            continue
        else:
            text = k.label + (" (unit: " + k.unit + ")" if k.unit else "")
            if k.kind == "loss":
                text += ", a loss term of the run itself (not the method of that name)"
        out.setdefault(r["diagnostic"], f"{r['diagnostic']}: {text}" + (", measured on the plain `ce` run of the "
                                                                     "same setting and seed" if of_ce else "") + ".")
    return list(out.values())


_EXECUTOR_WORDS = (("process pool", "parallel worker processes"), ("serial", "one process"))


def _zero_spread(row: dict) -> bool:
    return (row.get("n_pairs") or 0) > 1 and row.get("delta_std") is not None and row["delta_std"] == 0


def regime_table(res: dict):
    """The sweep's per-cell Markdown table (:func:`cmkd_lab.results.format_sweep_markdown`) in a student's
    words: a comparison whose paired differences are identical at every seed says so instead of an MDE
    of 0.0 and "2 seeds needed"; the early diagnostics are left to :func:`predictor_table`."""
    from ..results import format_sweep_markdown
    from ._checks import need_sweep
    need_sweep(res)
    shown = dict(res, predictors=[], executor=str(res.get("executor", "")))
    for old, new in _EXECUTOR_WORDS:
        shown["executor"] = shown["executor"].replace(old, new)
    cells, notes = [], []
    for r in res["cells"]:
        if _zero_spread(r):
            r = dict(r, ci_low=None, ci_high=None, mde=None, seeds_for_target=None)
            where = ", ".join(f"{k}={v}" for k, v in (r.get("values") or {}).items())
            notes.append(f"`{r['method']}` ({where}): the same accuracy as `{res['baseline']}` at every seed (Δ "
                         f"{100 * r['delta_mean']:+.2f} each time, zero spread) — no interval and no MDE can be "
                         "computed, and these seeds cannot tell how large a difference could hide there.")
        cells.append(r)
    text = format_sweep_markdown(dict(shown, cells=cells)) + "".join(f"\n{n}\n" for n in notes)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - outside IPython
        return text
    return Markdown(text)


def cell_delta(res: dict, method: str, **values) -> Optional[dict]:
    """The paired-difference row of ``method`` in the sweep's cell with these grid ``values`` (e.g.
    ``overlap=0.6, student_unlabelled=True, label_shift=0`` plus the linked axis by its first key,
    ``student_fraction=0.01``), or None."""
    for r in res["cells"]:
        v = r.get("values") or {}
        if r["method"] == method and all(str(v.get(k)) == str(x) for k, x in values.items()):
            return r
    return None


def _vs(res: dict, cell: str, method: str, other: str) -> Optional[dict]:
    """The paired difference ``method`` − ``other`` over the seeds both ran in ``cell`` (from the sweep's runs),
    by the rule of every Δ vs ``ce`` in the tables (:func:`cmkd_lab.results.summary.compare_methods`)."""
    from ..results.summary import compare_methods
    return compare_methods(res.get("runs", []), cell, method, other)


def _ci(mean, lo, hi) -> Optional[str]:
    return None if lo is None else f"[{100 * lo:+.1f}, {100 * hi:+.1f}]"


def entmin_comparison(res: dict, *, methods=("fa", "ucmkd-joint", "entmin"), reference: str = "entmin", **values):
    """One setting of a sweep with unlabelled data: each method's Δ vs ``ce`` with its 95 % interval, and its
    paired Δ vs ``entmin`` (the same unlabelled data, no teacher) with its interval — what a method gains
    beyond the unlabelled data — as a :class:`~cmkd_lab.widgets.tables.Table`. ``values`` select the setting
    (:func:`cell_delta`)."""
    from ._checks import need_sweep
    need_sweep(res)
    import pandas as pd

    from .tables import make_table
    rows = []
    for m in methods:
        r = cell_delta(res, m, **values)
        if r is None:
            continue
        vs = None if m == reference else _vs(res, r["cell"], m, reference)
        rows.append({"method": m, "teacher": "none" if m == reference else "yes",
                     "Δ vs ce (points)": 100 * r["delta_mean"],
                     "95 % interval": _ci(r["delta_mean"], r.get("ci_low"), r.get("ci_high")),
                     "wins/losses": f"{r['wins']}/{r['losses']}", "beyond noise": bool(r.get("significant")),
                     f"Δ vs {reference} (points)": None if vs is None else 100 * vs["mean"],
                     f"95 % interval vs {reference}": None if vs is None else _ci(vs["mean"], vs["ci_low"],
                                                                                  vs["ci_high"])})
    where = ", ".join(f"{k} = {v}" for k, v in values.items())
    return make_table(pd.DataFrame(rows).set_index("method") if rows else pd.DataFrame(),
                      formats={"Δ vs ce (points)": "{:+.1f}", f"Δ vs {reference} (points)": "{:+.1f}"},
                      notes=[f"Setting: {where}; {len(res.get('seeds') or [])} seeds, differences paired by seed.",
                             "beyond noise: the 95 % interval of Δ vs ce excludes zero.",
                             f"Δ vs {reference}: the method minus `{reference}` (which reads no teacher) on the same "
                             "seeds — what it gains beyond the unlabelled data; a dash (—) on the "
                             f"`{reference}` row itself."])


def _word(d: Optional[dict]) -> str:
    """``up`` / ``down`` / ``within`` / ``cannot tell`` of a paired difference (a cell row or a
    :func:`_vs` record), read with the verdict rule every table uses."""
    from ..results.summary import verdict
    if d is None:
        return "cannot tell"
    v = verdict(dict(d, mean=d.get("mean", d.get("delta_mean"))))
    return {"helps": "up", "hurts": "down", "no difference beyond noise": "within"}.get(v, "cannot tell")


def entmin_reading(res: dict, *, methods=("fa", "ucmkd-joint"), reference: str = "entmin", **values) -> str:
    """What :func:`entmin_comparison`'s table says for one setting, in words computed from the same paired
    differences: which methods beat ``ce`` beyond noise, whether ``reference`` (unlabelled data, no teacher)
    does, and whether a teacher method beats ``reference`` too — so the text cannot contradict the table."""
    from ._checks import need_sweep
    need_sweep(res)
    ref = cell_delta(res, reference, **values)
    if ref is None:
        return f"This sweep has no `{reference}` run in that setting: nothing to compare."
    say = {"up": "beyond noise", "down": "a loss beyond noise", "within": "its interval includes zero",
           "cannot tell": "too few seeds or no spread: cannot tell"}
    lines, both, over_ce = [], [], []
    for m in methods:
        r = cell_delta(res, m, **values)
        if r is None:
            continue
        w = _word(r)
        vs = _word(_vs(res, r["cell"], m, reference))
        extra = {"up": f"above `{reference}` beyond noise", "down": f"below `{reference}` beyond noise",
                 "within": f"level with `{reference}`", "cannot tell": f"against `{reference}`: cannot tell"}[vs]
        lines.append(f"`{m}` {100 * r['delta_mean']:+.1f} points vs `ce`, {r['wins']}/{r['losses']} ({say[w]}); "
                     f"{extra}.")
        if w == "up":
            (both if vs == "up" else over_ce).append(f"`{m}`")
    lines.append(f"`{reference}`, which reads no teacher: {100 * ref['delta_mean']:+.1f} points vs `ce` "
                 f"({say[_word(ref)]}).")
    if both:
        verdict = (f"**{', '.join(both)} {'beat' if len(both) > 1 else 'beats'} both `ce` and `{reference}` beyond "
                   "noise**: what a teacher's "
                   "contribution looks like — one measurement, whose owner only the teacher controls (notebook 02) "
                   "can name.")
    elif over_ce:
        many = len(over_ce) > 1
        verdict = (f"**{', '.join(over_ce)} {'gain' if many else 'gains'} on `ce`, but {'are' if many else 'is'} not "
                   f"shown to gain more than `{reference}`**, which "
                   "uses the same unlabelled data without a teacher: the teacher's part in the gain is not shown.")
    elif _word(ref) == "up":
        verdict = (f"**The unlabelled data explain the gain**: `{reference}` gains on `ce` without a teacher, and no "
                   "teacher method does beyond noise.")
    else:
        verdict = "**No method is shown to gain on `ce` here.**"
    return " ".join(lines) + "\n\n" + verdict
