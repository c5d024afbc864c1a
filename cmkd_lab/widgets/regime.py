"""``05_regime_map``: a small sweep run from the notebook, and the sweeps shipped with the repository
(``docs/results/*.json``), read without training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .settings import LabSettings, settings as lab_settings

__all__ = ["REGIME_METHODS", "regime_grid", "run_regime_map", "shipped_result", "regime_table", "best_predictor",
           "predictor_note", "sweep_note", "missing_note"]

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
    lab = lab or lab_settings()
    out = Path(out) if out is not None else Path("runs") / ("05_regime_map-fast" if lab.fast else "05_regime_map")
    cfg = (DistillConfig(epochs=3, teacher_epochs=3, student_fraction=0.2) if lab.fast else
           DistillConfig(epochs=10, teacher_epochs=10, student_fraction=0.2))
    from .runner import make_sink
    sink = make_sink(progress, label="sweep") if log is None else None
    res = run_sweep("synthetic", list(methods), regime_grid(lab), range(2 if lab.fast else 3), out, cfg,
                    fast=lab.fast, workers=1, log=log or _progress_log(sink))
    if sink is not None:
        sink("done", 1, 1, "")
    return res


def sweep_note(res: dict) -> str:
    """One line on what a sweep's numbers can show: its seeds and epochs, and a warning with one or two."""
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
    """The strongest early predictor of a sweep (largest |ρ|) among ``methods`` (``"all"``: every compared
    method pooled), preferring rows with at least ``min_n`` points; a predictors row (``method``,
    ``diagnostic``, ``rho``, ``p_value``, ``n`` …) or None."""
    rows = [p for p in res.get("predictors", []) if p.get("rho") is not None and p["method"] in methods]
    if not rows:
        return None
    enough = [p for p in rows if p["n"] >= min_n] or rows
    return max(enough, key=lambda p: abs(p["rho"]))


def predictor_note(res: dict, pred: Optional[dict]) -> str:
    """Markdown: what the predictor's ρ rests on — which methods, how many points — and why the same
    diagnostic can read differently in the table (one method) and in a pooled scatter."""
    if pred is None:
        return "*No early diagnostic could be ranked in this sweep (too few points, or a constant side).*"
    from math import factorial
    n = pred["n"]
    who = "every compared method pooled" if pred["method"] == "all" else f"`{pred['method']}` alone"
    txt = (f"The strongest early diagnostic here is `{pred['diagnostic']}`: ρ = {pred['rho']:+.2f} over {n} points "
           f"(cell × seed) of {who}, p = {pred['p_value']:.2g}"
           + (f", {pred['p_bonferroni']:.2g} after the Bonferroni correction over the diagnostics tried"
              if pred.get("p_bonferroni") is not None else "") + ". ")
    others = [p for p in res.get("predictors", []) if p["diagnostic"] == pred["diagnostic"] and p is not pred
              and p.get("rho") is not None]
    if others:
        txt += ("The table ranks each method on its own points and `all` on the pooled ones, so the same diagnostic "
                "can read differently: " + ", ".join(f"`{p['method']}` ρ = {p['rho']:+.2f} (n = {p['n']})"
                                                     for p in others) + ". ")
    if pred["method"] == "all" and others and all(abs(p["rho"]) < abs(pred["rho"]) / 2 for p in others):
        txt += ("The pooled ρ is much stronger than any method's own: most of it comes from the *difference between "
                "the methods* (one has both the larger diagnostic and the larger Δ), not from a prediction within a "
                "method — read a method's own row before trusting it for that method. ")
    if n <= 8:
        txt += (f"With n = {n} points a perfect ρ = ±1 arises by chance with probability 2/{n}! = "
                f"{2 / factorial(n):.2g} — and points of one seed's cells are not independent: read it as a lead, "
                "not evidence.")
    return txt


def shipped_result(name: str) -> Optional[dict]:
    """The shipped sweep ``docs/results/<name>.json`` (e.g. ``"regime_hapt"``), or None when this checkout
    does not hold it."""
    from ..results import load_sweep
    from .bench_view import shipped_dirs
    for base in shipped_dirs():
        p = base / f"{name}.json"
        if p.is_file():
            try:
                return load_sweep(p)
            except (OSError, ValueError):  # unreadable, or not a sweep: the notebook says it is missing
                return None
    return None


def regime_table(res: dict):
    """The sweep's Markdown table (an IPython ``Markdown`` object in a notebook, else the text)."""
    from ..results import format_sweep_markdown
    text = format_sweep_markdown(res)
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover - outside IPython
        return text
    return Markdown(text)


def missing_note(name: str):
    """A one-line Markdown note for a shipped result this checkout does not hold."""
    text = (f"*`docs/results/{name}.json` is not in this checkout (or not readable): make it with "
            f"`bash scripts/make_results.sh` (see `docs/results/{name}.md` for its command).*")
    try:
        from IPython.display import Markdown
    except ImportError:  # pragma: no cover
        return text
    return Markdown(text)
