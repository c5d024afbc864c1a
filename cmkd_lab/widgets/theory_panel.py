"""``BoundPanel``: sliders on the synthetic task's knobs; the bound's three
terms and the measured student error redrawn for each setting.

Each setting trains a small teacher and student (seconds in fast mode), in a
background thread; moving a slider while one runs queues the latest setting.
The numbers come from :func:`~cmkd_lab.widgets.theory.bound_point`.
"""
from __future__ import annotations

from typing import Optional

from ._deps import figure_widget, require_ipywidgets
from .figures import sync_figure
from .panel import TrainingPanel, check_controls
from .settings import LabSettings
from ._checks import lab_or_default

__all__ = ["BoundPanel"]

_TRAIL_COLUMNS = ["gap", "rotation", "noise", "overlap", "label_shift", "method", "la_teacher_grad", "bound_err_t",
                  "bound_fa", "bound_la", "bound_sum", "bound_err_s", "bound_holds", "kappa_mean"]


class BoundPanel(TrainingPanel):
    """Sliders for the modality gap and the other knobs; bars for err_T, FA,
    LA and the measured err_S.

    Parameters
    ----------
    lab : LabSettings, optional
    auto : bool
        Recompute when a slider is released (otherwise press Compute).
    **initial
        Starting values (knobs, ``method``, ``lambda_fa``, ``la_teacher_grad``).

    Attributes
    ----------
    widget : ipywidgets.Box
    controls : dict name -> widget
    figure : FigureWidget (the bars)
    points : list of dict (every computed point, oldest first)
    """

    what = "The bound panel"
    more = "; the measurements below were made without it"

    def __init__(self, *, lab: Optional[LabSettings] = None, auto: bool = True, **initial):
        from ..align import TEACHER_GRAD_MODES
        from .theory import KNOB_RANGES, THEORY_KNOBS, THEORY_METHODS

        w = require_ipywidgets()
        self.lab = lab_or_default(lab)
        check_controls(initial, set(THEORY_KNOBS) | {"method", "lambda_fa", "la_teacher_grad"})
        style = {"description_width": "110px"}
        lay = w.Layout(width="360px")
        self.controls = {}
        for k in THEORY_KNOBS:
            lo, hi, step, default = KNOB_RANGES[k]
            self.controls[k] = w.FloatSlider(value=initial.get(k, default), min=lo, max=hi, step=step,
                                             description=k.replace("_", " "), continuous_update=False, style=style,
                                             layout=lay, readout_format=".2f")
        self.controls["method"] = w.Dropdown(options=list(THEORY_METHODS), value=initial.get("method", "ce"),
                                             description="student method", style=style, layout=lay)
        self.controls["lambda_fa"] = w.FloatLogSlider(value=initial.get("lambda_fa", 1.0), base=10, min=-2, max=1,
                                                      step=0.1, description="λ1 (FA)", continuous_update=False,
                                                      style=style, layout=lay)
        self.controls["la_teacher_grad"] = w.ToggleButtons(options=list(TEACHER_GRAD_MODES),
                                                           value=initial.get("la_teacher_grad", "none"),
                                                           description="LA teacher grad",
                                                           style=dict(style, button_width="80px"))
        for k, c in self.controls.items():
            c.add_class(f"cmkd-bound-{k}")
            c.observe(self._changed, names="value")
        self.auto = w.Checkbox(value=auto, description="recompute when a control changes", indent=False)
        self.compute_button = w.Button(description="Compute", button_style="primary", icon="calculator")
        self.compute_button.on_click(lambda _b: self.compute())
        self._plumbing(width="360px", idle="Move a slider (or press Compute) to train a teacher and a student and "
                                           "measure the bound.")
        self.figure = figure_widget()
        self.figure.update_layout(title="err_S ≤ err_T + FA + LA (press Compute)", template="plotly_white",
                                  height=420)
        self.figure.add_class("cmkd-bound-figure")
        self.trail = w.HTML()
        left = w.VBox([*self.controls.values(), self.auto, self.compute_button, self.progress, self.status],
                      layout=w.Layout(width="380px", min_width="380px"))
        self.widget = w.VBox([w.HBox([left, w.VBox([self.figure], layout=w.Layout(flex="1 1 auto"))]), self.trail])
        self.widget.add_class("cmkd-bound-panel")
        self.points = []
        self._pending: Optional[dict] = None

    def _changed(self, _change):
        if self.auto.value:
            self.compute()

    def compute(self, *, block: bool = False, timeout: Optional[float] = None):
        """Measure the bound at the current setting (queued if a run is on)."""
        with self._lock:
            opts = self.options()
            if self.running:
                self._pending = opts
                self.status.value = "<i>queued: the current point finishes first …</i>"
                return self._thread
            self._start(opts)
            thread = self._thread
        if block:
            self.wait(timeout)
        return thread

    def _start(self, opts):
        self.compute_button.disabled = True
        self._start_thread(self._work, opts, name="cmkd-bound")

    def _work(self, opts):
        from .theory import bound_point, bound_point_figure

        try:
            point = bound_point(lab=self.lab, progress=self._sink, **opts)
            self.points.append(point)
            fig = bound_point_figure(point)
            sync_figure(self.figure, fig)
            self._render_trail()
            verdict = "holds" if point["bound_holds"] else "<b style='color:#b00'>does not hold</b>"
            self.progress.bar_style = "success"
            self.status.value = (f"err_S = {point['bound_err_s']:.3f} ≤ {point['bound_err_t']:.3f} + "
                                 f"{point['bound_fa']:.3f} + {point['bound_la']:.3f} = {point['bound_sum']:.3f}? "
                                 f"The estimate {verdict}. Student test acc {point['student_test_acc']:.3f}.")
            self.error = None
        except Exception as e:  # shown in the panel, kept for inspection
            self._fail(e)
        finally:
            with self._lock:
                nxt, self._pending = self._pending, None
                if nxt is not None:
                    self._start(nxt)
                else:
                    self.compute_button.disabled = False

    def _render_trail(self):
        import pandas as pd

        df = pd.DataFrame(self.points)[_TRAIL_COLUMNS].iloc[::-1]
        df.columns = ["gap", "rotation", "noise", "overlap", "label shift", "method", "LA grad", "err_T", "FA", "LA",
                      "sum", "err_S", "holds", "mean κ̂"]
        self.trail.value = ("<b>Points measured so far (latest first)</b>" +
                            df.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0))
