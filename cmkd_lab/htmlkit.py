"""The HTML toolkit of cmkd_lab's self-contained pages: the run report (:mod:`cmkd_lab.report`) and the
gap report (:mod:`cmkd_lab.gap_report`) share its formatting, its style sheet and its figure embedding.

A page made here opens offline: plotly.js is inlined once per page, plotly's own MathJax is left out
(no figure label uses TeX), and the text uses Unicode for its mathematics, so that nothing is fetched
from the network. :func:`md_inline` turns the Markdown that captions are written in (``**bold**``,
``*emphasis*``, ```code```) into HTML, so that no asterisk or backtick shows literally.
"""
from __future__ import annotations

import html
import json
import re
from typing import Iterable, Optional, Sequence

__all__ = ["PAPER", "BOOK", "STYLE", "esc", "fmt", "percent", "table", "md_inline", "Figures", "details",
           "pre_json", "page"]

# Who the report cites: the paper (an installed package has no docs folder) and the book's pages.
PAPER = ("Tran, Chu, Pham, Nguyen, Hoang, <i>Cross-Modal Knowledge Distillation without Paired Data: "
         "Theoretical Foundation and Algorithm</i>, ICML 2026 (arXiv 2606.10504)")
BOOK = "the cmkd_lab book (<code>make docs</code> builds it)"

STYLE = ("body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222;padding:0 1em;"
         "line-height:1.45}"
         "table{border-collapse:collapse;font-size:13px;display:block;overflow-x:auto;margin:.6em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;white-space:nowrap;text-align:left}"
         "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
         "pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}.note{color:#444;font-size:14px}"
         ".headline{font-size:17px;background:#f3f6fa;padding:.6em 1em;border-left:4px solid #1F77B4}"
         ".warn{color:#a00}h2{margin-top:1.6em;border-bottom:1px solid #ddd}code{background:#f3f3f3;"
         "padding:0 .2em;border-radius:3px}")


def esc(s) -> str:
    """``s`` as HTML text (quotes escaped too)."""
    return html.escape(str(s))


def fmt(v, *, none: str = "—") -> str:
    """A value for a table cell: floats to 4 significant digits, booleans as yes/no, None as ``none``."""
    if v is None:
        return none
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def percent(v: Optional[float], *, signed: bool = False, unit: str = " %") -> str:
    """A fraction in [0, 1] as a percentage with two decimals (``signed``: a difference, in points)."""
    if v is None:
        return "—"
    return f"{100 * v:+.2f}{unit}" if signed else f"{100 * v:.2f}{unit}"


def table(rows: Iterable[Sequence], header: Sequence[str], *, raw: bool = False) -> str:
    """An HTML table. Cells are formatted with :func:`fmt` and escaped, unless ``raw`` (already HTML).
    Numbers are right-aligned."""
    th = "".join(f"<th>{esc(h)}</th>" for h in header)

    def cell(c):
        num = isinstance(c, (int, float)) and not isinstance(c, bool)
        text = c if raw and isinstance(c, str) else esc(fmt(c))
        return f"<td class='num'>{text}</td>" if num else f"<td>{text}</td>"

    trs = "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])")


def md_inline(text: str) -> str:
    """Inline Markdown (``**bold**``, ``*emphasis*``, ```code```) as escaped HTML.

    Only these three marks are read; everything else is text (escaped). A lone ``*`` (as in
    ``2 * 3``) stays as it is.

    Examples
    --------
    >>> md_inline("the *best* epoch of `ce` is **7** < 8")
    'the <em>best</em> epoch of <code>ce</code> is <strong>7</strong> &lt; 8'
    """
    codes: list = []

    def keep(m):
        codes.append(f"<code>{esc(m.group(1))}</code>")
        return f"\x00{len(codes) - 1}\x00"

    s = esc(_CODE.sub(keep, str(text)))
    s = _STRONG.sub(r"<strong>\1</strong>", s)
    s = _EM.sub(r"<em>\1</em>", s)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], s)


class Figures:
    """Embeds plotly figures in one page: plotly.js goes with the first figure only, plotly's MathJax
    never (it would be fetched from a CDN), and animations do not start on load."""

    def __init__(self):
        self.first = True

    def __call__(self, fig) -> str:
        out = fig.to_html(full_html=False, include_plotlyjs=self.first, include_mathjax=False, auto_play=False,
                          config={"displaylogo": False})
        self.first = False
        return out


def details(summary: str, body_html: str) -> str:
    """A folded section (``body_html`` is HTML)."""
    return f"<details><summary>{esc(summary)}</summary>{body_html}</details>"


def pre_json(obj) -> str:
    """``obj`` as indented JSON in a ``<pre>`` block."""
    return f"<pre>{esc(json.dumps(obj, indent=1, ensure_ascii=False, default=str))}</pre>"


def page(title: str, body_html: str) -> str:
    """A whole HTML document with the shared style sheet; ``title`` is text, ``body_html`` HTML."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body_html}</body></html>")
