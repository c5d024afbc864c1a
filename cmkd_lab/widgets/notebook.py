"""What every notebook calls first."""
from __future__ import annotations

import os
from typing import Optional, Union

from .figures import STATIC_RENDERER, setup_plotly
from .settings import LabSettings, settings

__all__ = ["setup_notebook", "torch_threads", "plain_warnings"]


def _plain(message, category, filename, lineno, line=None) -> str:
    return f"note ({category.__name__}): {message}\n"


def plain_warnings(on: bool = True) -> None:
    """Show warnings as one plain line, ``note (RuntimeWarning): …``, without the source file and line a
    reader of a notebook has no use for (``on=False`` restores Python's format)."""
    import warnings
    warnings.formatwarning = _plain if on else _DEFAULT_FORMAT


def _default_format():
    import warnings
    return warnings.formatwarning


_DEFAULT_FORMAT = _default_format()


def torch_threads(threads: Union[str, int, None] = "auto") -> Optional[int]:
    """Set torch's intra-op threads and return the number set (None: left alone).

    ``"auto"``: the cores that are free now — the machine's cores minus its 1-minute load average,
    rounded, at least 1. On a machine that another job keeps busy, two torch threads on two busy
    cores wait on each other at every operation and a run takes several times longer than with one;
    on an idle machine every core is used. (Results can then differ in the last digits from a run with
    another number of threads.) An int sets that many; None leaves torch's default.
    """
    if threads is None:
        return None
    import torch

    cores = os.cpu_count() or 1
    if threads == "auto":
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # no load average on this platform
            load = 0.0
        n = max(1, min(cores, int(round(cores - load))))
    elif isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
        n = threads
    else:
        raise ValueError(f"threads must be 'auto', a positive int or None; got threads={threads!r}")
    torch.set_num_threads(n)
    return n


def setup_notebook(*, fast: Optional[bool] = None, renderer: str = STATIC_RENDERER, quiet: bool = False,
                   threads: Union[str, int, None] = "auto", warm_projection: Optional[bool] = None) -> LabSettings:
    """Set the plotly renderer (figures embedded, viewable offline without a kernel), keep torch to the
    cores that are free (:func:`torch_threads`), show warnings as plain one-line notes
    (:func:`plain_warnings`), start compiling UMAP in the background where the notebook will use it, and
    return the run sizes.

    Parameters
    ----------
    fast : bool, optional
        Force the fast or full mode; default ``CMKD_LAB_FAST``.
    renderer : str
        plotly renderer (default ``plotly_mimetype+notebook``).
    quiet : bool
        Do not print the mode line.
    threads : "auto", int or None
        torch threads (see :func:`torch_threads`).
    warm_projection : bool, optional
        Compile and cache UMAP's kernels in a low-priority background process (once per machine:
        :func:`cmkd_lab.viz.projection.warm_umap`) while the first cells run. Default: in full mode,
        where the figures use UMAP.

    Returns
    -------
    LabSettings
    """
    setup_plotly(renderer)
    plain_warnings()
    lab = settings(fast)
    n = torch_threads(threads)
    if warm_projection if warm_projection is not None else not lab.fast:
        from ..viz.projection import warm_umap
        warm_umap(background=True)
    if not quiet:
        mode = "FAST mode (CMKD_LAB_FAST=1): small data, few epochs" if lab.fast else \
            "full mode (set CMKD_LAB_FAST=1 for a quick pass)"
        cores = os.cpu_count() or 1
        thr = "" if n is None else f"; torch threads {n} of {cores} cores" + (
            " (the machine is busy)" if threads == "auto" and n < cores else "")
        print(f"cmkd_lab notebooks — {mode}; student epochs {lab.epochs}, teacher epochs {lab.teacher_epochs}{thr}")
    return lab
