"""Sphinx configuration of the cmkd_lab book (``make docs``; ``python scripts/build_docs.py``).

Sphinx with MyST-NB (Markdown pages and executed notebooks) and the PyData theme; the API reference is
generated from the package's numpydoc docstrings (autosummary + numpydoc). Everything a page needs is on
disk: MathJax 3 is served from ``_static/mathjax`` (:mod:`cmkd_lab.offline`), plotly.js is inside each
notebook page, and plotly's CDN MathJax is removed from the figures' outputs.

The notebooks are read as executed copies from ``docs/notebooks/`` (written by scripts/build_docs.py, which
reuses the copies the notebook tests keep); MyST-NB does not execute anything itself.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

from cmkd_lab.offline import strip_cdn_mathjax  # noqa: E402

project = "cmkd_lab"
author = "the cmkd_lab authors"
copyright = "the cmkd_lab authors, MIT licence"
release = version = "0.1.0"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# Sources: Markdown pages, the executed notebooks, the API pages autosummary writes.
exclude_patterns = ["_build", "results/*.md", "results/*.csv", "notebooks/runs", "**/.ipynb_checkpoints",
                    "_generated/*.md", "config_reference.md", "**/README.md"]
root_doc = "index"

# MyST: $…$ and $$…$$ mathematics, ::: fences, definition lists; heading anchors for links between pages.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# MyST-NB: notebooks as executed (never executed here), Markdown outputs parsed as MyST (tables, maths),
# no ipywidgets JavaScript from a CDN (the panels need a kernel; each has a static copy beside it).
nb_execution_mode = "off"
nb_render_markdown_format = "myst"
nb_ipywidgets_js = {}
nb_merge_streams = True

# The API reference: one page per module listed in api.md, from the numpydoc docstrings.
# Each object is documented once, in the module that defines it (a package's re-exports are not repeated).
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "ignore-module-all": True}
autodoc_typehints = "none"
templates_path = ["_templates"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False


def import_module_first(name, grouped_exception=True):
    """autosummary's lookup, except that a name which is a module is that module. ``cmkd_lab.distill`` is a
    package and also the function ``cmkd_lab`` re-exports (likewise ``cmkd_lab.align.mmd`` and
    ``cmkd_lab.widgets.settings``): autosummary tries the attribute first and would document the function in
    place of the package, leaving the package's modules out of the reference."""
    import importlib
    try:
        return importlib.import_module(name), None, name
    except ImportError:
        return _import_object_by_name(name, grouped_exception=grouped_exception)


import sphinx.ext.autosummary as _autosummary  # noqa: E402

_import_object_by_name = _autosummary._import_by_name
_autosummary._import_by_name = import_module_first

# In Sphinx, MyST-NB parses every mime type of an output and keeps the HTML one: plotly's JSON beside its
# HTML is not a loss (scripts/check_book.py checks that every figure is on its page).
suppress_warnings = ["mystnb.unknown_mime_type"]

# MathJax 3 from _static/mathjax (scripts/build_docs.py puts it there from the local copy).
mathjax_path = "mathjax/tex-svg-full.js"
mathjax3_config = {"svg": {"fontCache": "global"}, "options": {"enableMenu": False}}

html_theme = "pydata_sphinx_theme"
html_title = "cmkd_lab"
html_static_path = ["_generated/static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
    "icon_links": [],
}
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None

# External links are never fetched by the build (it runs offline); scripts/check_book.py checks that every
# link between the book's own pages and files resolves.
linkcheck_ignore = [r"https?://.*"]


def _offline_body(app, pagename, templatename, context, doctree):
    """Remove the CDN MathJax plotly puts next to every figure: the page's own MathJax draws the maths."""
    if "body" in context:
        context["body"] = strip_cdn_mathjax(context["body"])


_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _plain_bars(app, what, name, obj, options, lines):
    """A ``|`` in a docstring's prose (|ρ|, p(y|z)) is text, not a reStructuredText substitution: escape it
    outside literals and outside table and line-block lines."""
    for i, line in enumerate(lines):
        text = line.lstrip()
        if "|" not in line or text == "|" or text.startswith(("| ", "+-", "+=")):  # a line block, a grid table
            continue
        parts = _LITERAL.split(line)
        lines[i] = "".join(p if j % 2 else p.replace("|", "\\|") for j, p in enumerate(parts))


def setup(app):
    app.set_html_assets_policy("always")  # MathJax on every page: a page title in the navigation may hold maths
    app.connect("html-page-context", _offline_body)
    app.connect("autodoc-process-docstring", _plain_bars)
