"""Figure helpers shared by the panels: the offline renderer, live refresh of
a FigureWidget, figures as widget outputs, static display, a simple curve."""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Sequence

from ._deps import require_plotly

__all__ = ["figure_output", "figure_structure", "sync_figure", "figure_signature", "show_figures", "curve_figure",
           "STATIC_RENDERER", "setup_plotly", "show_markdown", "kernel_note", "display_panel", "KERNEL_NOTE"]

# JupyterLab draws the plotly mime bundle; a viewer without a kernel (nbconvert
# HTML, an IDE's preview) falls back to the text/html part, which carries
# plotly.js inline ("notebook" renderer) and so needs no network.
STATIC_RENDERER = "plotly_mimetype+notebook"


def setup_plotly(renderer: str = STATIC_RENDERER) -> str:
    """Make ``fig.show()`` embed figures so that they render offline without a kernel.

    Returns the renderer set (``plotly_mimetype+notebook`` by default).
    """
    require_plotly()
    import plotly.io as pio

    if not isinstance(renderer, str) or not renderer:
        raise TypeError(f"renderer must be a plotly renderer name such as {STATIC_RENDERER!r}; got {renderer!r}")
    pio.renderers.default = renderer
    return renderer


def figure_output(fig) -> dict:
    """A notebook ``display_data`` output holding ``fig`` as plotly's mime bundle
    (what an ``ipywidgets.Output`` shows; built without a running kernel)."""
    import plotly.io as pio

    from ._checks import need_figure
    need_figure(fig)
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    return {"output_type": "display_data", "data": bundle, "metadata": {}}


def figure_signature(fig) -> list:
    """(type, name, number of points) of each trace: what a test compares."""
    from ._checks import need_figure
    need_figure(fig)
    out = []
    for t in fig.data:
        n = None
        for attr in ("y", "z", "x"):
            v = getattr(t, attr, None)
            if v is not None:
                n = len(v)
                break
        out.append((t.type, t.name, n))
    return out


def figure_structure(fig) -> tuple:
    """What must match for an in-place update: each trace's type, name and
    axes, the layout's top-level keys, and its annotation and shape counts."""
    from ._checks import need_figure
    need_figure(fig)
    traces = tuple((t.type, t.name, getattr(t, "xaxis", None), getattr(t, "yaxis", None)) for t in fig.data)
    lay = fig.layout.to_plotly_json()
    return traces, tuple(sorted(lay)), len(lay.get("annotations", ())), len(lay.get("shapes", ()))


def sync_figure(target, source, *, replace: bool = True) -> bool:
    """Make ``target`` (a Figure or FigureWidget) show what ``source`` shows.

    When both have the same structure (:func:`figure_structure`: a live curve
    that gained a point) the traces and the layout are updated in place, in
    one message for a widget, without flicker. Otherwise, with ``replace``,
    the traces and the layout are replaced (right for a ``go.Figure``; a
    widget's browser side may keep stale layout keys, so a panel passes
    ``replace=False`` and swaps in a new widget instead).

    Returns
    -------
    bool
        True when updated in place; False when the structure differed.
    """
    if figure_structure(target) == figure_structure(source):
        ctx = target.batch_update() if hasattr(target, "batch_update") else _Null()
        with ctx:
            for t_old, t_new in zip(target.data, source.data):
                t_old.update(t_new.to_plotly_json(), overwrite=True)
            target.layout.update(source.layout.to_plotly_json(), overwrite=True)
        return True
    if replace:
        target.data = ()
        if source.data:
            target.add_traces(list(source.data))
        target.layout = source.layout
    return False


def _palette(i: int) -> str:
    from ..viz.curves import PALETTE
    return PALETTE[i % len(PALETTE)]


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def show_figures(figures: Mapping[str, object] | Sequence, *, only: Iterable[str] = (), result: dict = None,
                 reference: dict = None) -> None:
    """Display figures with the active plotly renderer (in ``only``'s order when given).

    Parameters
    ----------
    figures : dict name -> Figure, or list of (name, Figure)
    only : names to show (default: all)
    result : dict, optional
        The run the figures belong to: each figure is then followed by its caption
        (:func:`cmkd_lab.viz.captions.figure_caption`), which explains what it shows and reads this run's
        numbers where a curve needs it.
    reference : dict, optional
        A ``ce`` run of the same task and seed, named in the captions as the reference.
    """
    if figures is None or isinstance(figures, (str, bytes)) or not hasattr(figures, "__iter__"):
        from ._checks import got
        raise TypeError(f"figures must be a dict name -> figure (what the *_figures helpers return) or a list of "
                        f"(name, figure); {got(figures)}")
    items = dict(figures.items() if isinstance(figures, Mapping) else figures)
    only = list(only)
    unknown = [n for n in only if n not in items]
    if unknown:
        raise ValueError(f"only must name figures among {list(items)}; got unknown {unknown}")
    readings = None
    if result is not None:
        from ..viz.captions import run_readings
        readings = run_readings(result, reference=reference)
    for name in only or list(items):
        if items[name] is not None:
            items[name].show()
            if readings is not None:
                from ..viz.captions import figure_caption
                text = figure_caption(name, result, readings=readings, figure=items[name])
                if text:
                    show_markdown(text)


def show_markdown(text: str) -> None:
    """Display Markdown in a notebook (printed elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - outside IPython
        print(text)
        return
    if get_ipython() is None:
        print(text)
    else:
        display(Markdown(text))


KERNEL_NOTE = ("<p class='cmkd-static-note' style='color:#666;font-size:12px;margin:2px 0'>▶ {what} is an "
               "interactive panel: it needs a running Jupyter kernel (with ipywidgets) and stays blank in a saved "
               "copy{more}.</p>")


def kernel_note(what: str = "This", more: str = "") -> dict:
    """The one-line note shown with every panel: a mime bundle (``text/html`` and ``text/plain``) that
    reads the same with and without a kernel."""
    import html
    import re
    from ._checks import need_str
    need_str(what, "what", "the words naming the panel, e.g. 'This panel'")
    need_str(more, "more", "a sentence added to the note (or '')")
    text = KERNEL_NOTE.format(what=html.escape(what), more=html.escape(more))
    return {"text/html": text, "text/plain": re.sub(r"<[^>]+>", "", text)}


def display_panel(widget, what: str, more: str = "") -> None:
    """Display an ipywidgets panel and, under it, :func:`kernel_note` (visible offline)."""
    from IPython.display import display
    display(widget)
    display(kernel_note(what, more), raw=True)


def curve_figure(history: Sequence[dict], keys: Sequence[str], *, title: str, yaxis_title: str = "value",
                 log_y: bool = False, names: Dict[str, str] | None = None, yaxis_range=None):
    """Scalars of a run's history against the epoch, one line per key present.

    Parameters
    ----------
    history : list of dict
        One record per epoch (``epoch`` plus scalar keys).
    keys : names of the scalars to draw (missing ones are skipped)
    title, yaxis_title : str
    log_y : bool
    names : dict key -> legend label, optional
    yaxis_range : (low, high), optional

    Returns
    -------
    go.Figure
    """
    go = require_plotly()
    names = names or {}
    fig = go.Figure()
    for k in keys:
        pts = [(r["epoch"], r[k]) for r in history if isinstance(r.get(k), (int, float)) and "epoch" in r]
        if pts:
            first = not fig.data  # drawn wide and light underneath: a curve that follows it exactly stays visible
            fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                     name=names.get(k, k), opacity=0.45 if first and len(keys) > 1 else 1.0,
                                     line=dict(color=_palette(len(fig.data)),
                                               width=7 if first and len(keys) > 1 else 2)))
    fig.update_layout(title=title, xaxis_title="epoch", yaxis_title=yaxis_title, template="plotly_white",
                      height=330, margin=dict(l=50, r=20, t=50, b=40))
    if log_y:
        fig.update_yaxes(type="log")
    if yaxis_range is not None:
        fig.update_yaxes(range=list(yaxis_range))
    from ..viz.curves import epoch_axis
    return epoch_axis(fig, [r.get("epoch") for r in history])
