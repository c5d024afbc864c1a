"""Notebook panels (ipywidgets) built on :mod:`cmkd_lab.viz` and :mod:`cmkd_lab.distill`.

Every panel has a plain-function counterpart that returns data and figures
(tests drive those without a browser):

=========================  ====================================  ==========================
notebook                   plain functions                       panel
=========================  ====================================  ==========================
00_quickstart              :func:`run_quickstart`                (progress bars)
01_theory_bound            :func:`bound_point`,                  :class:`BoundPanel`
                           :func:`bound_sweep`
02_unpaired_vs_paired      :func:`load_or_run_bench`,            :class:`BenchPanel`
                           :func:`bench_table`
03_alignment_debugger      :func:`run_debugger`,                 :class:`DebuggerPanel`
                           :func:`compare_teacher_grad`
04_bring_your_own_data     :func:`demo_arrays`, :func:`run_byod` (progress bars)
05_regime_map              :func:`run_regime_map`,               (tables, figures)
                           :func:`shipped_result`
06_explore_gap             :mod:`cmkd_lab.widgets.gap`:          (figures, tables)
                           ``task_features``, ``explore``,
                           ``synthetic_gap_sweep``
=========================  ====================================  ==========================

Run sizes come from :func:`settings` (``CMKD_LAB_FAST=1``: the fast mode);
:func:`setup_notebook` also makes figures render offline without a kernel.
"""
from .settings import FAST_ENV, LabSettings, fast_mode, settings
from .figures import (STATIC_RENDERER, curve_figure, figure_output, figure_signature, figure_structure, setup_plotly,
                      show_figures, sync_figure)
from .runner import RunSession, TextProgress, make_sink
from .notebook import setup_notebook
from .quickstart import report_figures, result_summary, run_quickstart
from .theory import (KNOB_RANGES, THEORY_KNOBS, bound_compare, bound_point, bound_point_figure, bound_sweep,
                     bound_sweep_figure)
from .theory_panel import BoundPanel
from .bench_view import bench_dir, bench_figure, bench_runs_figure, bench_table, find_bench_results, load_or_run_bench
from .bench_panel import BenchPanel
from .debugger_panel import DebuggerPanel
from .debugger import (DEBUGGER_DEFAULTS, DebugSession, debugger_config, debugger_figures,
                       live_figures, overlay_at_epoch, run_debugger)
from .teacher_grad import compare_teacher_grad, teacher_grad_figures
from .byod import DEMO_KINDS, demo_arrays, run_byod, task_overview
from .regime import REGIME_METHODS, regime_grid, regime_table, run_regime_map, shipped_result
from . import gap

__all__ = [
    "FAST_ENV", "LabSettings", "fast_mode", "settings", "STATIC_RENDERER", "curve_figure", "figure_output",
    "figure_signature", "figure_structure", "setup_plotly", "show_figures", "sync_figure", "RunSession",
    "TextProgress", "make_sink", "setup_notebook", "report_figures", "result_summary", "run_quickstart",
    "KNOB_RANGES", "THEORY_KNOBS", "bound_compare", "bound_point", "bound_point_figure", "bound_sweep",
    "bound_sweep_figure",
    "BoundPanel", "bench_dir", "bench_figure", "bench_runs_figure", "bench_table", "find_bench_results",
    "load_or_run_bench", "BenchPanel", "DEBUGGER_DEFAULTS", "DebuggerPanel", "DebugSession", "debugger_config",
    "debugger_figures", "live_figures", "overlay_at_epoch", "run_debugger", "compare_teacher_grad",
    "teacher_grad_figures", "DEMO_KINDS", "demo_arrays", "run_byod", "task_overview", "REGIME_METHODS",
    "regime_grid", "regime_table", "run_regime_map", "shipped_result", "gap",
]
