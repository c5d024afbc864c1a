"""Pages that open offline: notebooks exported to HTML, and the book, draw their mathematics with a local
MathJax and fetch nothing from the network.

MathJax is MathJax 3 (the ``mathjax`` package of the npm registry, version :data:`MATHJAX_VERSION`, the
version plotly itself loads): its single-file component ``es5/tex-svg-full.js`` turns TeX into SVG with
every glyph inside the file, so a page that inlines it needs no font and makes no further request.
:func:`mathjax_js` finds it — ``$CMKD_LAB_MATHJAX`` when set, else the cache
(``$CMKD_LAB_CACHE/mathjax/<version>/``, by default under ``~/.cache/cmkd_lab``) — and fetches it there
once with ``npm pack`` when it is missing.

* :func:`notebook_html` / :func:`export_notebook`: an executed notebook as one self-contained HTML page
  (nbconvert's ``lab`` template; plotly.js and MathJax inlined; no require.js, widget manager or mermaid
  from a CDN, and no saved widget state; plotly's CDN MathJax removed from the figures' outputs).
* :func:`external_resources`: the scripts, style sheets and images a page would fetch from the network.
* :func:`save_executed` / :func:`executed_copy`: an executed notebook kept for the book (so that the
  book does not execute a notebook the tests already executed), valid while its source is unchanged.

Command line: ``python -m cmkd_lab.offline export NOTEBOOK.ipynb ... --out DIR`` (executes each notebook
and writes ``DIR/NAME.html``) and ``python -m cmkd_lab.offline fetch-mathjax``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import List, Optional, Union

__all__ = ["MATHJAX_VERSION", "MATHJAX_ENV", "MATHJAX_CONFIG", "mathjax_js", "fetch_mathjax", "mathjax_head",
           "strip_cdn_mathjax", "external_resources", "notebook_html", "export_notebook", "EXECUTED_DIR",
           "source_hash", "save_executed", "executed_copy", "without_widget_state"]

MATHJAX_VERSION = "3.2.2"
MATHJAX_ENV = "CMKD_LAB_MATHJAX"
_MATHJAX_FILE = "tex-svg-full.js"

# TeX between $…$ / \(…\) inline and $$…$$ / \[…\] displayed, as in Jupyter; code and outputs in
# <pre> are left alone; the assistive tools that would load more code from a CDN stay off.
MATHJAX_CONFIG = json.dumps({
    "tex": {"inlineMath": [["$", "$"], ["\\(", "\\)"]], "displayMath": [["$$", "$$"], ["\\[", "\\]"]],
            "processEscapes": True, "processEnvironments": True},
    "svg": {"fontCache": "global"},
    "options": {"ignoreHtmlClass": "tex2jax_ignore", "processHtmlClass": "tex2jax_process",
                "enableMenu": False},
})


def _cache_root() -> Path:
    from .store import cache_dir
    return cache_dir() / "mathjax" / MATHJAX_VERSION


def fetch_mathjax(dest: Optional[Union[str, Path]] = None) -> Path:
    """Fetch MathJax :data:`MATHJAX_VERSION` from the npm registry (``npm pack``) and keep
    ``tex-svg-full.js`` and its licence in ``dest`` (default: the cache).

    Returns
    -------
    Path of ``tex-svg-full.js``.

    Raises
    ------
    RuntimeError
        npm is missing or the package cannot be fetched (the message says what to do).
    """
    dest = Path(dest) if dest is not None else _cache_root()
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"MathJax {MATHJAX_VERSION} is needed to draw the mathematics offline and is not in "
                           f"{dest}: install Node.js's npm (e.g. apt-get install npm) and run "
                           f"`python -m cmkd_lab.offline fetch-mathjax`, or set {MATHJAX_ENV} to a copy of "
                           f"mathjax@{MATHJAX_VERSION}'s es5/{_MATHJAX_FILE}")
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run([npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent", "--pack-destination", tmp],
                           capture_output=True, text=True, timeout=600)
        tgz = next(Path(tmp).glob("mathjax-*.tgz"), None)
        if r.returncode != 0 or tgz is None:
            raise RuntimeError(f"`npm pack mathjax@{MATHJAX_VERSION}` failed ({r.returncode}): "
                               f"{(r.stderr or r.stdout).strip()[-500:]}")
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tgz) as t:
            for member, name in ((f"package/es5/{_MATHJAX_FILE}", _MATHJAX_FILE), ("package/LICENSE", "LICENSE")):
                data = t.extractfile(member).read()
                part = dest / (name + ".part")
                part.write_bytes(data)
                os.replace(part, dest / name)
    return dest / _MATHJAX_FILE


def mathjax_js(*, fetch: bool = True) -> Path:
    """Where ``tex-svg-full.js`` is: ``$CMKD_LAB_MATHJAX`` (a file, or a folder holding it), else the cache;
    fetched into the cache when missing and ``fetch``.

    Raises
    ------
    FileNotFoundError
        ``$CMKD_LAB_MATHJAX`` names nothing usable, or the file is missing and ``fetch`` is False.
    RuntimeError
        Fetching failed (see :func:`fetch_mathjax`).
    """
    env = os.environ.get(MATHJAX_ENV)
    if env:
        p = Path(env)
        p = p / _MATHJAX_FILE if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"{MATHJAX_ENV}={env!r} must name mathjax@{MATHJAX_VERSION}'s es5/"
                                    f"{_MATHJAX_FILE} (or a folder holding it); there is no such file: unset it "
                                    "to use the cache")
        return p
    p = _cache_root() / _MATHJAX_FILE
    if p.is_file():
        return p
    if not fetch:
        raise FileNotFoundError(f"{p} is missing: run `python -m cmkd_lab.offline fetch-mathjax`")
    return fetch_mathjax()


def mathjax_head(*, src: Optional[str] = None) -> str:
    """The ``<script>`` tags that configure and load MathJax: inlined (a self-contained page), or from
    ``src`` (a URL relative to the page, e.g. in the book's static files)."""
    config = f"<script>window.MathJax = {MATHJAX_CONFIG};</script>"
    if src is not None:
        return f'{config}<script defer src="{src}"></script>'
    code = mathjax_js().read_text(encoding="utf-8").replace("</script", "<\\/script")
    return f"{config}<script>{code}</script>"


# plotly's HTML output loads MathJax from a CDN next to every figure (``include_mathjax="cdn"`` in its
# notebook renderer); the page's own MathJax serves instead.
_CDN_MATHJAX = re.compile(r'<script[^>]*\bsrc="https?://[^"]*/mathjax/[^"]*"[^>]*>\s*</script>', re.I)
_TAG = re.compile(r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*>", re.I)
_URL_ATTR = re.compile(r"""\b(?:src|href|data)\s*=\s*["']?((?:https?:)?//[^"'\s>]+)""", re.I)
_FETCHED_LINK = re.compile(r"""\brel\s*=\s*["']?[^"'>]*\b(stylesheet|preload|modulepreload|prefetch|icon|manifest)\b""",
                           re.I)


def strip_cdn_mathjax(text: str) -> str:
    """``text`` without the ``<script src=".../mathjax/...">`` tags plotly adds to its figures."""
    return _CDN_MATHJAX.sub("", text)


def external_resources(text: str) -> List[str]:
    """The URLs an HTML page would fetch from the network when opened: the ``src``/``href`` of its
    scripts, style sheets (and other fetched ``<link>`` tags), images, frames and media. A link a reader
    may follow (``<a href>``, ``<link rel="canonical">``) is not fetched, and not listed."""
    out = []
    for tag in _TAG.finditer(text):
        html_tag = tag.group(0)
        if tag.group(1).lower() == "link" and not _FETCHED_LINK.search(html_tag):
            continue
        out += _URL_ATTR.findall(html_tag)
    return out


_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{{ resources.cmkd_mathjax }}{%- endblock html_head_js_mathjax -%}
"""


def without_widget_state(nb):
    """A copy of ``nb`` without its saved widget state (``metadata.widgets``). Offline there is no widget
    manager to draw a panel from it (each panel has a static copy beside it), and the state can weigh
    megabytes: a plotly FigureWidget keeps its whole JavaScript bundle there."""
    import nbformat
    out = nbformat.from_dict(json.loads(json.dumps(nb)))
    out.metadata.pop("widgets", None)
    return out


def notebook_html(nb, *, mathjax_src: Optional[str] = None) -> str:
    """An executed notebook (an ``nbformat`` node) as one HTML page that opens offline.

    Parameters
    ----------
    nb : nbformat.NotebookNode
    mathjax_src : str, optional
        A URL of ``tex-svg-full.js`` relative to the page; default: MathJax inlined (about 2 MB).

    Raises
    ------
    RuntimeError
        The page would still fetch something from the network (named in the message).
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"cmkd_offline.html.j2": _TEMPLATE})],
                            template_file="cmkd_offline.html.j2")
    text, _ = exporter.from_notebook_node(without_widget_state(nb),
                                          resources={"cmkd_mathjax": mathjax_head(src=mathjax_src)})
    text = strip_cdn_mathjax(text)
    left = external_resources(text)
    if left:
        raise RuntimeError(f"the exported page would fetch {len(left)} resource(s) from the network: {left[:5]}")
    return text


def export_notebook(nb_or_path, out_path, *, mathjax_src: Optional[str] = None) -> Path:
    """Write :func:`notebook_html` of ``nb_or_path`` (a notebook node, or the path of an executed
    ``.ipynb``) to ``out_path`` (atomic). Returns ``out_path``."""
    import nbformat
    from ._atomic import atomic_write_text

    nb = nbformat.read(str(nb_or_path), as_version=4) if isinstance(nb_or_path, (str, Path)) else nb_or_path
    return atomic_write_text(Path(out_path), notebook_html(nb, mathjax_src=mathjax_src))


# Executed notebooks kept for the book: ``test-artifacts/executed/<name>.ipynb`` at the repository root
# (tests/test_notebooks.py writes them; the book reuses those made from the same source in the same mode).
EXECUTED_DIR = Path("test-artifacts") / "executed"


def source_hash(path: Union[str, Path]) -> str:
    """SHA-256 of a notebook file's bytes (what an executed copy records of its source)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_executed(nb, source: Union[str, Path], *, fast: bool, out_dir: Union[str, Path] = None) -> Path:
    """Keep the executed notebook ``nb`` of ``source`` as ``out_dir/<name>.ipynb`` (default
    :data:`EXECUTED_DIR` under the source's repository), recording the source's hash and the mode."""
    import nbformat
    from ._atomic import atomic_write_text

    source = Path(source)
    out = Path(out_dir) if out_dir is not None else source.resolve().parents[1] / EXECUTED_DIR
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))  # a copy: the caller's notebook is left as it is
    nb.metadata["cmkd_lab"] = {"source_sha256": source_hash(source), "fast": bool(fast)}
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out / f"{source.stem}.ipynb", nbformat.writes(nb))


def executed_copy(source: Union[str, Path], *, fast: bool, out_dir: Union[str, Path] = None) -> Optional[Path]:
    """The kept executed copy of ``source`` when it was made from the same bytes in the same mode, else None."""
    source = Path(source)
    p = (Path(out_dir) if out_dir is not None else source.resolve().parents[1] / EXECUTED_DIR) / f"{source.stem}.ipynb"
    if not p.is_file():
        return None
    try:
        meta = json.loads(p.read_text(encoding="utf-8")).get("metadata", {}).get("cmkd_lab", {})
    except (OSError, ValueError):
        return None
    if meta.get("source_sha256") != source_hash(source) or meta.get("fast") is not bool(fast):
        return None
    return p


def _main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m cmkd_lab.offline",
                                description="Notebooks as HTML pages that open offline, with their mathematics.")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="execute notebooks and write each as DIR/NAME.html")
    e.add_argument("notebooks", nargs="+")
    e.add_argument("--out", required=True, help="folder for the pages")
    e.add_argument("--no-execute", action="store_true", help="the notebooks are executed already")
    e.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    sub.add_parser("fetch-mathjax", help=f"fetch MathJax {MATHJAX_VERSION} into the cache with npm")
    args = p.parse_args(argv)
    if args.cmd == "fetch-mathjax":
        print(fetch_mathjax())
        return 0
    import nbformat
    from .store import check_out_dir
    if args.timeout < 1:
        e.error(f"--timeout must be an integer >= 1 (seconds a cell may run); got --timeout {args.timeout}")
    try:  # every bad argument is one line (status 2), before any notebook runs
        out = check_out_dir(args.out)
    except ValueError as err:
        e.error(str(err))
    books = []
    for name in args.notebooks:
        src = Path(name)
        if not src.is_file():
            e.error(f"notebook {name!r} " + ("is a folder: pass the .ipynb files in it (e.g. DIR/*.ipynb)"
                                             if src.is_dir() else "does not exist"))
        try:
            books.append((src, nbformat.read(str(src), as_version=4)))
        except Exception as err:  # noqa: BLE001 - not JSON, not a notebook, not UTF-8: the file is named
            e.error(f"notebook {name!r} cannot be read as a Jupyter notebook ({type(err).__name__}: "
                    f"{str(err).splitlines()[0][:200] if str(err) else ''}); pass an .ipynb file")
    for src, nb in books:
        if not args.no_execute:
            from nbclient import NotebookClient
            NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(src.resolve().parent)}}).execute()
        print(export_notebook(nb, out / f"{src.stem}.html"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
