"""``DebuggerPanel``: the alignment debugger as an ipywidgets panel.

Controls on the left, live curves (loss terms, MMD², OT) on the right,
redrawn after every epoch while training runs in a background thread (the
kernel stays responsive, so Stop works); then the transport plan, the
feature overlay at a chosen epoch, the label heatmaps, the bound and the
accuracy. Every number it shows comes from :func:`run_debugger`'s plain
functions, which tests drive without a browser.
"""
from __future__ import annotations

import html
from typing import Optional

from ._deps import figure_widget, require_ipywidgets
from .figures import figure_output, sync_figure
from .panel import TrainingPanel, check_controls
from .settings import LabSettings
from ._checks import lab_or_default

__all__ = ["DebuggerPanel", "ARTEFACT_TABS", "debugger_controls"]

# Tabs filled when a run ends (figure name in debugger_figures, tab title).
ARTEFACT_TABS = (("transport_plan", "transport plan"), ("overlay", "features (2-D)"), ("labels", "label heatmaps"),
                 ("bound", "bound"), ("accuracy", "accuracy"), ("audit", "gradient audit"), ("gap", "modality gap"))


def debugger_controls(v: dict, tasks) -> dict:
    """The debugger's controls (name -> widget), starting at the values ``v``."""
    from ..align import COSTS, TEACHER_GRAD_MODES
    from ..data import PAIRINGS
    from ..distill import available_methods
    from ..distill.teacher import TEACHER_CONTROLS

    w = require_ipywidgets()
    style, lay = {"description_width": "120px"}, w.Layout(width="320px")

    def log_slider(name, label, lo, hi, **kw):
        return w.FloatLogSlider(value=v[name], base=10, min=lo, max=hi, step=0.1, description=label, style=style,
                                layout=lay, **kw)

    def drop(name, options, label):
        return w.Dropdown(options=list(options), value=v[name], description=label, style=style, layout=lay)

    controls = {
        "task": drop("task", tasks, "task"), "method": drop("method", available_methods(), "method"),
        "cost": drop("cost", COSTS, "cost metric"), "eps": log_slider("eps", "ε (× median cost)", -3, 1),
        "batch_size": drop("batch_size", [16, 32, 64, 128, 256], "batch size"),
        "lambda_fa": log_slider("lambda_fa", "λ1 (FA)", -3, 1), "lambda_la": log_slider("lambda_la", "λ2 (LA)", -3, 1),
        "n1": w.IntSlider(value=v["n1"], min=0, max=5, description="n1 (inner FA)", style=style, layout=lay),
        "n2": w.IntSlider(value=v["n2"], min=0, max=5, description="n2 (inner LA)", style=style, layout=lay),
        "inner_lr": log_slider("inner_lr", "inner lr (ucmkd)", -4, 0, readout_format=".0e"),
        "pairing": drop("pairing", PAIRINGS, "pairing"),
        "la_teacher_grad": w.ToggleButtons(options=list(TEACHER_GRAD_MODES), value=v["la_teacher_grad"],
                                           description="LA teacher grad", style=dict(style, button_width="100px"),
                                           layout=w.Layout(width="340px")),
        "teacher_control": drop("teacher_control", TEACHER_CONTROLS, "teacher control"),
        "student_fraction": log_slider("student_fraction", "labelled share", -3, 0, readout_format=".3f"),
        "student_unlabelled": w.Checkbox(value=v["student_unlabelled"], description="rest as unlabelled (OT term)",
                                         style=style, layout=lay),
        "epochs": w.IntSlider(value=v["epochs"], min=1, max=max(100, v["epochs"]), description="epochs", style=style,
                              layout=lay),
        "seed": w.BoundedIntText(value=v["seed"], min=0, max=10_000, description="seed", style=style, layout=lay),
    }
    for name, widget in controls.items():
        widget.add_class(f"cmkd-ctl-{name}")
    return controls


class DebuggerPanel(TrainingPanel):
    """Interactive debugger: pick the options, press Run, watch, Stop at will.

    Parameters
    ----------
    lab : LabSettings, optional
        Run sizes (default :func:`cmkd_lab.widgets.settings`).
    tasks : sequence of str, optional
        Task choices (default: ``synthetic`` and the built-in real tasks).
    **initial
        Starting values of the controls (keys of ``DEBUGGER_DEFAULTS`` and
        ``epochs``).

    Attributes
    ----------
    widget : ipywidgets.Box
        What the notebook displays (the panel also displays itself).
    controls : dict name -> widget
    live : dict name -> FigureWidget
        ``losses``, ``mmd``, ``ot``.
    result, figures : the last run's result and figures (kept on Stop).
    """

    what = "The debugger"
    more = "; the same run as plain function calls follows, with its figures embedded"

    def __init__(self, *, lab: Optional[LabSettings] = None, tasks=None, **initial):
        from .debugger import DEBUGGER_DEFAULTS, LIVE_FIGURES, live_figures

        w = require_ipywidgets()
        self.lab = lab_or_default(lab)
        check_controls(initial, list(DEBUGGER_DEFAULTS) + ["epochs"])
        self.controls = debugger_controls(dict(DEBUGGER_DEFAULTS, epochs=self.lab.epochs, **initial),
                                          list(tasks or ("synthetic", "hapt", "digits-speech")))
        self._plumbing(width="320px", idle="Set the options and press Run.")
        self.run_button = w.Button(description="Run", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        for widget, cls in ((self.run_button, "cmkd-run"), (self.stop_button, "cmkd-stop"),
                            (self.progress, "cmkd-progress"), (self.status, "cmkd-status")):
            widget.add_class(cls)
        empty = live_figures([], None, None)
        self.live = {name: self._new_live(name, empty[name]) for name in LIVE_FIGURES}
        self.outputs = {name: w.Output() for name, _ in ARTEFACT_TABS}
        self.tabs = w.Tab(children=[self.outputs[n] for n, _ in ARTEFACT_TABS],
                          titles=[t for _, t in ARTEFACT_TABS])
        self.overlay_epoch = w.Dropdown(options=[], description="features at epoch",
                                        style={"description_width": "120px"}, layout=w.Layout(width="320px"))
        self.overlay_epoch.add_class("cmkd-overlay-epoch")
        self.overlay_epoch.observe(self._on_overlay_epoch, names="value")
        self.run_button.on_click(lambda _b: self.run())
        self.stop_button.on_click(lambda _b: self.stop())
        left = w.VBox([*self.controls.values(), w.HBox([self.run_button, self.stop_button]), self.progress,
                       self.status], layout=w.Layout(width="340px", min_width="340px"))
        self._right = w.VBox(list(self.live.values()), layout=w.Layout(flex="1 1 auto", min_width="480px"))
        self.widget = w.VBox([w.HBox([left, self._right]), self.overlay_epoch, self.tabs])
        self.widget.add_class("cmkd-debugger")
        self.result: Optional[dict] = None
        self.figures: dict = {}
        self.runs = 0
        self._session = None

    # ---------------------------------------------------------------- run
    def run(self, *, block: bool = False, timeout: Optional[float] = None):
        """Start a run with the current options (the Run button). Returns the thread.

        With ``block`` wait for it to end (tests, scripts).
        """
        from .debugger import DebugSession

        with self._lock:
            if self.running:
                return self._thread
            opts = self.options()
            self.error = None
            try:
                self._session = DebugSession(lab=self.lab, sink=self._sink, on_epoch=self._on_epoch, **opts)
            except (ValueError, TypeError) as e:
                self._fail(e)
                return None
            self.run_button.disabled, self.stop_button.disabled = True, False
            self.progress.value, self.progress.max = 0, 1
            self._set_status(f"starting {html.escape(opts['method'])} on {html.escape(str(opts['task']))} …")
            self._start_thread(self._work, name="cmkd-debugger")
        if block:
            self.wait(timeout)
        return self._thread

    def stop(self) -> None:
        """Stop after the current step (the Stop button); what was recorded is kept."""
        if self._session is not None:
            self._session.stop()
            self._set_status("stopping after the current step …")

    # ------------------------------------------------------- thread side
    def _work(self):
        from .debugger import live_figures

        try:
            result, figs = self._session.run()
            self.result, self.figures = result, figs
            d = result.get("diagnostics") or {}
            live = live_figures(result["history"], d.get("initial"), result.get("config"),
                                n_permutations=(d.get("settings") or {}).get("n_permutations"))
            self._update_live(live)
            self._fill_artefacts()
            self.runs += 1
            done, total = result.get("epochs_done", 0), result.get("epochs", 0)
            acc = result.get("student_test_acc")
            acc_txt = "—" if acc is None else f"{acc:.3f}"
            if result.get("status") == "interrupted":
                self.progress.bar_style = "warning"
                self._set_status(f"<b>stopped</b> at epoch {done}/{total}: everything recorded so far is kept "
                                 f"(test acc at best val {acc_txt}).")
            else:
                self.progress.bar_style = "success" if result.get("status") == "completed" else "danger"
                self._set_status(f"<b>done</b> ({result.get('status')}): {done}/{total} epochs, "
                                 f"test acc at best val {acc_txt}, teacher {result.get('teacher_test_acc') or 0:.3f}.")
        except Exception as e:  # shown in the panel, kept for inspection
            self._fail(e)
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _on_epoch(self, history, initial):
        from .debugger import live_figures

        cfg = self._session.config.to_dict() if self._session is not None else None
        perms = self._session.permutations if self._session is not None else None
        self._update_live(live_figures(history, initial, cfg, n_permutations=perms))

    def _new_live(self, name, fig):
        fw = figure_widget(fig)
        fw.add_class(f"cmkd-fig-{name}")
        return fw

    def _update_live(self, figs):
        """Redraw the live curves: in place when only the points changed,
        otherwise with a fresh widget (no stale layout in the browser)."""
        old = []
        for name in list(self.live):
            if not sync_figure(self.live[name], figs[name], replace=False):
                old.append(self.live[name])
                self.live[name] = self._new_live(name, figs[name])
        if old:
            self._right.children = tuple(self.live.values())
            for fw in old:
                fw.close()

    def _fill_artefacts(self):
        snaps = [s["epoch"] for s in ((self.result or {}).get("diagnostics") or {}).get("snapshots", [])]
        self.overlay_epoch.unobserve(self._on_overlay_epoch, names="value")
        self.overlay_epoch.options = snaps
        if snaps:
            self.overlay_epoch.value = snaps[-1]
        self.overlay_epoch.observe(self._on_overlay_epoch, names="value")
        for name, _ in ARTEFACT_TABS:
            self._show(name, self.figures.get(name))

    def _show(self, name, fig):
        # A plotly mime bundle set directly: works from the training thread,
        # where an Output widget's context manager would not capture.
        self.outputs[name].outputs = () if fig is None else (figure_output(fig),)

    def _on_overlay_epoch(self, change):
        from .debugger import overlay_at_epoch

        if self.result is None or change["new"] is None:
            return
        try:
            fig = overlay_at_epoch(self.result, change["new"], projection=self._session.projection)
        except Exception as e:
            self._fail(e)
            return
        self.figures["overlay"] = fig
        self._show("overlay", fig)
