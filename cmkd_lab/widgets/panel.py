"""The plumbing every training panel shares (:class:`~cmkd_lab.widgets.debugger_panel.DebuggerPanel`,
:class:`~cmkd_lab.widgets.theory_panel.BoundPanel`): named controls read and set as a user would, a
progress bar and a status line fed by a progress sink, work in a background thread (the kernel stays
responsive), errors shown in the panel and kept, and the note a reader without a kernel sees.
"""
from __future__ import annotations

import html
import threading
from typing import Callable, Dict, Optional

from ._deps import require_ipywidgets

__all__ = ["TrainingPanel", "check_controls"]


def check_controls(initial: dict, known) -> None:
    """Refuse starting values for controls a panel does not have, naming the known ones."""
    unknown = sorted(set(initial) - set(known))
    if unknown:
        raise ValueError(f"unknown control(s) {unknown}; known: {sorted(known)}")


class TrainingPanel:
    """Base of a panel that trains in a background thread.

    A subclass builds ``self.controls`` (name -> widget) and ``self.widget``, calls :meth:`_plumbing`
    first, and starts work with :meth:`_start_thread`. ``what`` and ``more`` name the panel in the
    note shown under it (:func:`~cmkd_lab.widgets.figures.display_panel`).
    """

    what = "This panel"
    more = ""
    controls: Dict[str, object]
    widget: object

    def _plumbing(self, *, width: str, idle: str) -> None:
        w = require_ipywidgets()
        self.progress = w.IntProgress(value=0, min=0, max=1, description="", layout=w.Layout(width=width))
        self.status = w.HTML(value=f"<i>{html.escape(idle)}</i>", layout=w.Layout(width=width))
        self.error: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------- display
    def _ipython_display_(self):
        from .figures import display_panel

        display_panel(self.widget, self.what, self.more)

    # ------------------------------------------------------------ options
    def options(self) -> dict:
        """The controls' current values (what the next run uses)."""
        return {k: c.value for k, c in self.controls.items()}

    def set(self, **values):
        """Set controls by name (as a user would)."""
        for k, v in values.items():
            if k not in self.controls:
                raise ValueError(f"unknown control {k!r}; known: {sorted(self.controls)}")
            self.controls[k].value = v
        return self

    # ------------------------------------------------------------- thread
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until no work is running (work queued meanwhile included); True when it has ended."""
        while True:
            t = self._thread
            if t is None:
                return True
            t.join(timeout)
            if t.is_alive():
                return False
            with self._lock:
                if self._thread is t:
                    return True

    def _start_thread(self, target: Callable, *args, name: str) -> threading.Thread:
        self.progress.bar_style = ""
        self._thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._thread.start()
        return self._thread

    # ----------------------------------------------------- progress, errors
    def _set_status(self, text: str) -> None:
        self.status.value = text

    def _sink(self, phase, done, total, text=""):
        self.progress.max = max(1, int(total))
        self.progress.value = min(int(done), self.progress.max)
        self.progress.description = phase
        if text:
            self._set_status(html.escape(f"{phase}: {text}"))

    def _fail(self, e: BaseException) -> None:
        self.error = e
        self.progress.bar_style = "danger"
        self._set_status(f"<span style='color:#b00'><b>{type(e).__name__}</b>: {html.escape(str(e))}</span>")
