"""Optional heavy imports, each with the command that installs it."""
from __future__ import annotations

__all__ = ["require_ipywidgets", "require_plotly", "figure_widget"]


def require_ipywidgets():
    """The ``ipywidgets`` module, or an ImportError naming the install command."""
    try:
        import ipywidgets
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ImportError("the notebook panels need ipywidgets: pip install 'ipywidgets>=8'") from e
    return ipywidgets


def require_plotly():
    """``plotly.graph_objects``, or an ImportError naming the install command."""
    try:
        import plotly.graph_objects as go
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ImportError("figures need plotly: pip install 'plotly>=5.18'") from e
    return go


def figure_widget(fig=None):
    """A live ``plotly.graph_objects.FigureWidget`` (a copy of ``fig`` when given).

    plotly >= 6 draws ``FigureWidget`` through anywidget; the error says how
    to install it when it is missing.
    """
    go = require_plotly()
    try:
        import anywidget  # noqa: F401
    except ImportError as e:
        raise ImportError("live figures need anywidget (plotly >= 6 draws FigureWidget with it): "
                          "pip install anywidget, or pip install -e '.[lab]'") from e
    return go.FigureWidget(fig) if fig is not None else go.FigureWidget()
