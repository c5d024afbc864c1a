"""``05_regime_map``: a small sweep run from the notebook, and the sweeps shipped with the repository
(``docs/results/*.json``), read without training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .settings import LabSettings, settings as lab_settings

__all__ = ["REGIME_METHODS", "regime_grid", "run_regime_map", "shipped_result", "regime_table"]

REGIME_METHODS = ("ce", "fa", "ucmkd")
# Where the repository's shipped results are looked for (a notebook runs in notebooks/, a script at the root).
_SHIPPED = (Path("docs") / "results", Path("..") / "docs" / "results")


def regime_grid(lab: Optional[LabSettings] = None) -> dict:
    """The grid of the notebook's own sweep: λ_fa × label shift at 5 % of the labels (fast mode: λ_fa only)."""
    lab = lab or lab_settings()
    if lab.fast:
        return {"lambda_fa": [1, 10]}
    return {"student_fraction:epochs": [[0.05, 60]], "lambda_fa": [1, 10], "label_shift": [0, 1]}


def run_regime_map(*, lab: Optional[LabSettings] = None, out=None, methods=REGIME_METHODS, log=None) -> dict:
    """Run (or read back from ``out``) the notebook's sweep on the synthetic task; returns ``sweep.json``'s
    content. Fast mode: 2 seeds, 3 epochs, 20 % of the labels; full mode: 5 seeds, the config's defaults."""
    from ..distill import DistillConfig
    from ..experiments import run_sweep
    lab = lab or lab_settings()
    out = Path(out) if out is not None else Path("runs") / ("05_regime_map-fast" if lab.fast else "05_regime_map")
    cfg = DistillConfig(epochs=3, teacher_epochs=3, student_fraction=0.2) if lab.fast else DistillConfig()
    return run_sweep("synthetic", list(methods), regime_grid(lab), range(2 if lab.fast else 5), out, cfg,
                     fast=lab.fast, workers=1 if lab.fast else None, log=log or (lambda m: None))


def shipped_result(name: str) -> Optional[dict]:
    """The shipped sweep ``docs/results/<name>.json`` (e.g. ``"regime_hapt"``), or None when this checkout
    does not hold it."""
    from ..results import load_sweep
    for base in _SHIPPED:
        p = base / f"{name}.json"
        if p.is_file():
            return load_sweep(p)
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
