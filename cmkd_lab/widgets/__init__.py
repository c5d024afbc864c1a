"""Notebook panels (ipywidgets) built on :mod:`cmkd_lab.viz` and :mod:`cmkd_lab.distill`.

Every panel has a plain-function counterpart that returns data and figures
(tests drive those without a browser):

=========================  ====================================  ==========================
notebook                   plain functions                       panel
=========================  ====================================  ==========================
00_quickstart              :func:`run_with_baseline`,            (progress bars)
                           :func:`shipped_comparison`
01_theory_bound            :func:`bound_point`,                  :class:`BoundPanel`
                           :func:`bound_sweep`
02_unpaired_vs_paired      :func:`load_or_run_bench`,            :class:`BenchPanel`
                           :func:`bench_table`
03_alignment_debugger      :func:`run_debugger`,                 :class:`DebuggerPanel`
                           :func:`compare_teacher_grad`
04_bring_your_own_data     :func:`demo_arrays`,                  (progress bars)
                           :func:`run_byod`
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
from .figures import (STATIC_RENDERER, curve_figure, display_panel, figure_output, figure_signature, figure_structure,
                      kernel_note, setup_plotly, show_figures, show_markdown, sync_figure)
from .runner import RunSession, TextProgress, make_sink
from .notebook import setup_notebook, torch_threads
from .quickstart import report_figures, result_summary, run_quickstart, run_with_baseline
from .theory import (INV_E, KNOB_RANGES, THEORY_KNOBS, bound_check_figure, bound_compare, bound_point,
                     bound_point_figure, bound_sweep, bound_sweep_figure, bound_table)
from .theory_panel import BoundPanel
from .tables import Table, make_table
from .shipped import shipped_bench, source_words
from .bench_view import (CONTROL_SETS, bench_delta_figure, bench_dir, bench_figure, bench_markdown, bench_note,
                         bench_runs_figure, bench_table, controls_figure, controls_markdown, controls_overview,
                         find_bench_results, load_controls, load_or_run_bench, shipped_comparison, shipped_controls)
from .bench_panel import BenchPanel
from .debugger_panel import DebuggerPanel
from .debugger import (DEBUGGER_DEFAULTS, DebugSession, debugger_config, debugger_figures,
                       live_figures, overlay_at_epoch, run_debugger)
from .teacher_grad import (LIGHT_DIAGNOSTICS, compare_teacher_grad, compare_variants, teacher_grad_figures,
                           variant_figures)
from .byod import DEMO_KINDS, demo_arrays, run_byod, task_overview
from .regime import (REGIME_METHODS, best_predictor, cell_delta, entmin_comparison, entmin_reading, missing_note, predictor_note,
                     predictor_table, regime_grid, regime_table, run_regime_map, shipped_result, sweep_note)
from .transfer import TRANSFER_SETS, transfer_figure, transfer_note, transfer_runs, transfer_table
from ..viz.audit import audit_figure
from . import gap

__all__ = [
    "TRANSFER_SETS", "transfer_figure", "transfer_note", "transfer_runs", "transfer_table", "audit_figure",
    "FAST_ENV", "LabSettings", "fast_mode", "settings", "STATIC_RENDERER", "curve_figure", "figure_output",
    "figure_signature", "figure_structure", "setup_plotly", "show_figures", "show_markdown", "sync_figure",
    "kernel_note", "display_panel", "RunSession", "TextProgress", "make_sink", "setup_notebook", "torch_threads",
    "report_figures", "result_summary", "run_quickstart", "run_with_baseline",
    "INV_E", "KNOB_RANGES", "THEORY_KNOBS", "bound_check_figure", "bound_compare", "bound_point",
    "bound_point_figure", "bound_sweep", "bound_sweep_figure", "bound_table",
    "BoundPanel", "CONTROL_SETS", "bench_delta_figure", "bench_dir", "bench_figure", "bench_markdown", "bench_note",
    "bench_runs_figure", "bench_table", "controls_figure", "controls_markdown", "find_bench_results",
    "load_controls", "load_or_run_bench", "shipped_bench", "shipped_comparison", "BenchPanel", "Table", "make_table",
    "source_words", "controls_overview", "shipped_controls", "cell_delta", "entmin_comparison", "entmin_reading", "predictor_table",
    "DEBUGGER_DEFAULTS", "DebuggerPanel", "DebugSession", "debugger_config",
    "debugger_figures", "live_figures", "overlay_at_epoch", "run_debugger", "LIGHT_DIAGNOSTICS",
    "compare_teacher_grad", "compare_variants", "teacher_grad_figures", "variant_figures", "DEMO_KINDS",
    "demo_arrays", "run_byod", "task_overview", "REGIME_METHODS", "best_predictor", "missing_note",
    "predictor_note", "regime_grid", "regime_table", "run_regime_map", "shipped_result", "sweep_note", "gap",
]
