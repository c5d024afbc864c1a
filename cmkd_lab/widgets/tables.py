"""Tables a student reads: the numbers stay numbers (a pandas DataFrame), the display is formatted.

:class:`Table` is a DataFrame that shows every value with its column's format, a missing value as "—",
and notes under it (what each column means, why a value is missing). Anything derived from it (a slice,
``set_index``, arithmetic) is a plain DataFrame again.
"""
from __future__ import annotations

import html
import math
from typing import Callable, Dict, Iterable, Optional, Union

import pandas as pd

__all__ = ["Table", "make_table", "fmt_value", "PCT", "POINTS", "NUM"]

PCT = "{:.1%}"      # a share shown as a percentage: 0.8244 -> 82.4%
POINTS = "{:+.2f}"  # a difference in points of accuracy
NUM = "{:.3g}"      # any other number: three significant digits

Format = Union[str, Callable[[object], str]]


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return bool(isinstance(v, float) and math.isnan(v)) or v is pd.NA
    except TypeError:
        return False


def fmt_value(v, fmt: Optional[Format] = None) -> str:
    """``v`` as text: "—" when missing, ``fmt`` (a format string or a callable) when given, else
    booleans as yes/no, integers as they are and other numbers with three significant digits."""
    if _missing(v):
        return "—"
    if fmt is not None:
        return fmt(v) if callable(fmt) else fmt.format(v)
    if isinstance(v, bool) or type(v).__name__ == "bool_":
        return "yes" if v else "no"
    if isinstance(v, int) or type(v).__name__.startswith("int"):
        return str(v)
    if isinstance(v, float) or type(v).__name__.startswith("float"):
        return NUM.format(float(v))
    return str(v)


def _code_spans(text: str) -> str:
    """Markdown's `code` spans of an (escaped) note as HTML <code>."""
    import re
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


class Table(pd.DataFrame):
    """A DataFrame shown with formatted numbers, "—" for a missing value and notes under it.

    Attributes
    ----------
    formats : dict column -> format string or callable
    notes : list of str
        Lines shown under the table (a legend of the columns, the reason for a "—").
    """

    _metadata = ["formats", "notes"]

    @property
    def _constructor(self):
        return pd.DataFrame

    def shown(self) -> pd.DataFrame:
        """The table as the strings it displays."""
        formats = getattr(self, "formats", None) or {}
        out = pd.DataFrame(index=self.index)
        for col in self.columns:
            out[col] = [fmt_value(v, formats.get(col)) for v in self[col]]
        return out

    def __repr__(self) -> str:
        text = self.shown().to_string()
        notes = getattr(self, "notes", None) or []
        return text + ("\n\n" + "\n".join(notes) if notes else "")

    def _repr_html_(self) -> str:
        body = self.shown().to_html(border=0, escape=True)
        notes = getattr(self, "notes", None) or []
        if notes:
            body += ("<ul class='cmkd-table-notes' style='font-size:12px;color:#444;margin:4px 0'>"
                     + "".join(f"<li>{_code_spans(html.escape(n))}</li>" for n in notes) + "</ul>")
        return body


def make_table(df: pd.DataFrame, *, formats: Optional[Dict[str, Format]] = None,
               notes: Iterable[str] = ()) -> Table:
    """``df`` as a :class:`Table` with ``formats`` (column -> format) and ``notes`` under it."""
    t = Table(df)
    t.formats = dict(formats or {})
    t.notes = [n for n in notes if n]
    return t
