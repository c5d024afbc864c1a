"""What every notebook calls first."""
from __future__ import annotations

from typing import Optional

from .figures import STATIC_RENDERER, setup_plotly
from .settings import LabSettings, settings

__all__ = ["setup_notebook"]


def setup_notebook(*, fast: Optional[bool] = None, renderer: str = STATIC_RENDERER, quiet: bool = False) -> LabSettings:
    """Set the plotly renderer (figures embedded, viewable offline without a
    kernel), keep torch to the machine's cores, and return the run sizes.

    Parameters
    ----------
    fast : bool, optional
        Force the fast or full mode; default ``CMKD_LAB_FAST``.
    renderer : str
        plotly renderer (default ``plotly_mimetype+notebook``).
    quiet : bool
        Do not print the mode line.

    Returns
    -------
    LabSettings
    """
    setup_plotly(renderer)
    lab = settings(fast)
    if not quiet:
        mode = "FAST mode (CMKD_LAB_FAST=1): small data, few epochs" if lab.fast else \
            "full mode (set CMKD_LAB_FAST=1 for a quick pass)"
        print(f"cmkd_lab notebooks — {mode}; student epochs {lab.epochs}, teacher epochs {lab.teacher_epochs}")
    return lab
