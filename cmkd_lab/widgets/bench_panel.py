"""``BenchPanel``: one task's bench results — the table and the figures side by side."""
from __future__ import annotations

from typing import Dict

from ._deps import require_ipywidgets
from .figures import figure_output

__all__ = ["BenchPanel"]


class BenchPanel:
    """Pick a task; see its results table next to the accuracy bars and the per-seed points.

    Parameters
    ----------
    results : dict task -> results
        From :func:`~cmkd_lab.widgets.bench_view.load_or_run_bench`.

    Attributes
    ----------
    widget : ipywidgets.Box
    task : ipywidgets.Dropdown
    """

    def __init__(self, results: Dict[str, dict]):
        w = require_ipywidgets()
        if not isinstance(results, dict) or not results:
            raise ValueError("results must map at least one task name to its bench results "
                             "(from load_or_run_bench); got an empty or non-dict value")
        self.results = results
        self.task = w.Dropdown(options=list(results), value=next(iter(results)), description="task")
        self.task.add_class("cmkd-bench-task")
        self.table = w.HTML(layout=w.Layout(width="46%", overflow="auto"))
        self.bars = w.Output(layout=w.Layout(width="54%"))
        self.points = w.Output()
        self.deltas = w.Output()
        self.source = w.HTML()
        self.task.observe(lambda _c: self.show(), names="value")
        self.widget = w.VBox([self.task, self.source, w.HBox([self.table, self.bars]), self.deltas, self.points])
        self.widget.add_class("cmkd-bench-panel")
        self.show()

    def _ipython_display_(self):
        from .figures import display_panel

        display_panel(self.widget, 'The bench panel', '; the static copies below show the same tables and figures')

    def show(self, task=None) -> None:
        """Show ``task`` (default: the dropdown's)."""
        from .bench_view import bench_delta_figure, bench_figure, bench_note, bench_runs_figure, bench_table

        if task is not None:
            self.task.value = task
            return
        res = self.results[self.task.value]
        skipped = "".join(f"<li>{s['method']} under {s['pairing']}: {s['reason']}</li>" for s in res.get("skipped", []))
        import html as _html
        self.source.value = (f"<small>{_html.escape(bench_note(res)).replace('**', '')}</small>"
                             + (f"<br><small>skipped:</small><ul style='margin:0'>{skipped}</ul>" if skipped else ""))
        self.table.value = bench_table(res).to_html(border=0, na_rep="—")
        self.bars.outputs = (figure_output(bench_figure(res)),)
        self.points.outputs = (figure_output(bench_runs_figure(res)),)
        self.deltas.outputs = (figure_output(bench_delta_figure(res)),)
