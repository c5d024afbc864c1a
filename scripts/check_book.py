"""Checks of the built book (run by scripts/build_docs.py; ``python scripts/check_book.py [OUT]`` alone).

* **Offline**: no page loads a script, style sheet, image or frame from the network
  (:func:`cmkd_lab.offline.external_resources`); links a reader may follow to other sites are allowed
  and never fetched.
* **Links**: every link between the book's own pages and files resolves — the file exists, and so does
  the ``#anchor`` in it (the offline stand-in for Sphinx's linkcheck, which needs the internet).
* **Notebook figures**: every plotly figure of each executed notebook is on its page.
* **In a browser** (Debian's Chromium through Playwright, every request that is not a file blocked and
  recorded): each notebook page and the pages with mathematics open without a request leaving the
  machine, draw every figure, and show no TeX source (``$…$``, ``\\(…\\)``) as text.
"""
from __future__ import annotations

import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional, Set
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PLOTLY = "application/vnd.plotly.v1+json"


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links: List[str] = []
        self.ids: Set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "link", "script", "img", "iframe", "source"):
                self.links.append(a[key])


def _parse(page: Path) -> _Refs:
    r = _Refs()
    r.feed(page.read_text(encoding="utf-8", errors="replace"))
    return r


def pages(out: Path) -> List[Path]:
    """The book's pages (not the theme's templates under _static)."""
    return sorted(p for p in out.rglob("*.html") if not {"_sources", "_static"} & set(p.relative_to(out).parts))


def check_rendered(out: Path) -> List[str]:
    """Text that docutils could not parse is shown marked "problematic" on a page: none may be."""
    return [f"{p.relative_to(out)}: text docutils could not parse: "
            f"{re.search(r'class=.problematic[^>]*>([^<]{0,80})', t).group(1)!r}"
            for p in pages(out) if 'class="problematic"' in (t := p.read_text(encoding="utf-8", errors="replace"))]


def check_offline(out: Path) -> List[str]:
    from cmkd_lab.offline import external_resources
    errors = []
    for p in pages(out):
        left = external_resources(p.read_text(encoding="utf-8", errors="replace"))
        if left:
            errors.append(f"{p.relative_to(out)} would fetch from the network: {left[:3]}")
    return errors


def check_links(out: Path) -> List[str]:
    errors, ids = [], {}
    parsed = {p: _parse(p) for p in pages(out)}
    for p, r in parsed.items():
        ids[p.resolve()] = r.ids
    for p, r in parsed.items():
        for link in r.links:
            u = urlsplit(link)
            if u.scheme or link.startswith("//") or link.startswith("mailto:") or link.startswith("data:"):
                continue  # another site (never fetched), or inline data
            target = (p.parent / unquote(u.path)).resolve() if u.path else p.resolve()
            if not target.exists():
                errors.append(f"{p.relative_to(out)}: broken link {link!r} (no {target})")
                continue
            if u.fragment and target.suffix == ".html":
                known = ids.get(target)
                if known is None:
                    known = ids[target] = _parse(target).ids
                if unquote(u.fragment) not in known:
                    errors.append(f"{p.relative_to(out)}: link {link!r} names an anchor that "
                                  f"{target.relative_to(out.resolve())} lacks")
    return errors


def notebook_figures(nb_path: Path) -> List[str]:
    """The div id of every plotly figure an executed notebook shows."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    ids = []
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            if PLOTLY in data:
                ids += re.findall(r'Plotly\.newPlot\(\s*"([0-9a-f-]+)"', "".join(data.get("text/html", "")))
    return ids


def check_notebook_pages(out: Path, nb_dir: Path) -> Dict[str, int]:
    """Notebook name -> its number of figures; raises AssertionError naming a page that lacks one."""
    counts = {}
    for nb in sorted(nb_dir.glob("*.ipynb")):
        page = out / "notebooks" / f"{nb.stem}.html"
        assert page.is_file(), f"the notebook {nb.name} has no page in the book ({page} is missing)"
        html = page.read_text(encoding="utf-8")
        ids = notebook_figures(nb)
        missing = [i for i in ids if not re.search(r'Plotly\.newPlot\(\s*"' + re.escape(i) + '"', html)]
        assert not missing, f"{page.name} lacks {len(missing)} of the notebook's {len(ids)} figures"
        if ids:
            assert re.search(r"plotly\.js v\d", html), f"{page.name}: plotly.js is not inside the page"
        counts[nb.stem] = len(ids)
    return counts


# What a reader sees, less code and outputs in <pre>/<code> and the drawn mathematics.
VISIBLE_TEXT_JS = """() => {
  const c = document.body.cloneNode(true);
  c.querySelectorAll('script, style, pre, code, mjx-container, .MathJax, textarea').forEach(e => e.remove());
  return c.innerText;
}"""
RAW_TEX = re.compile(r"\$[^$\n]{1,200}\$|\\\(|\\\)|\\\[|\\\]")


def open_offline(page: Path, *, screenshot: Optional[Path] = None, expect_figures: Optional[int] = None,
                 wait_ms: int = 1500) -> dict:
    """Open ``page`` in Chromium with every non-file request blocked; returns what was seen:
    ``requests`` (blocked URLs), ``raw_tex`` (TeX source left as text), ``math`` (drawn formulas),
    ``figures`` (plotly figures drawn), ``errors`` (page errors)."""
    from playwright.sync_api import sync_playwright
    seen = {"requests": [], "errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1300, "height": 900})

            def route(r):
                url = r.request.url
                if url.startswith(("file:", "data:", "blob:", "about:")):
                    r.continue_()
                else:
                    seen["requests"].append(url)
                    r.abort()

            ctx.route("**/*", route)
            pg = ctx.new_page()
            pg.on("pageerror", lambda e: seen["errors"].append(str(e)))
            pg.goto(page.resolve().as_uri(), wait_until="load", timeout=120_000)
            pg.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) ? "
                        "MathJax.startup.promise.then(() => true) : true")  # the maths typeset
            if expect_figures:
                pg.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= "
                                     f"{expect_figures}", timeout=60_000, polling=500)
            pg.wait_for_timeout(wait_ms)
            text = pg.evaluate(VISIBLE_TEXT_JS)
            seen["raw_tex"] = [m.group(0) for m in RAW_TEX.finditer(text)][:10]
            seen["math"] = pg.evaluate("() => document.querySelectorAll('mjx-container').length")
            seen["figures"] = pg.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                          ".filter(d => d.querySelector('.main-svg')).length")
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                pg.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return seen


def check_in_browser(out: Path, counts: Dict[str, int], shots: Optional[Path] = None) -> List[str]:
    errors = []
    targets = [(out / "notebooks" / f"{n}.html", k) for n, k in counts.items()]
    targets += [(out / name, 0) for name in ("theory.html", "index.html") if (out / name).is_file()]
    for page, k in targets:
        seen = open_offline(page, expect_figures=k, screenshot=(shots / f"book_{page.stem}.png") if shots else None)
        rel = page.relative_to(out)
        if seen["requests"]:
            errors.append(f"{rel}: requests left the machine: {seen['requests'][:3]}")
        if seen["raw_tex"]:
            errors.append(f"{rel}: TeX source shown as text: {seen['raw_tex'][:3]}")
        if seen["figures"] != k:
            errors.append(f"{rel}: {seen['figures']} of {k} figures drawn")
    return errors


def check(out, nb_dir, *, browser: bool = True, shots: Optional[Path] = None) -> List[str]:
    """Every check above; returns the errors (empty: the book is fine)."""
    out, nb_dir = Path(out), Path(nb_dir)
    errors = check_offline(out) + check_links(out) + check_rendered(out)
    try:
        counts = check_notebook_pages(out, nb_dir)
    except AssertionError as e:
        return errors + [str(e)]
    if browser:
        if not os.path.exists(CHROMIUM):
            return errors + [f"{CHROMIUM} is missing: install it (apt-get install chromium) or pass --no-browser"]
        errors += check_in_browser(out, counts, shots=shots)
    return errors


if __name__ == "__main__":
    o = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "_build" / "html"
    errs = check(o, ROOT / "docs" / "notebooks", shots=ROOT / "test-artifacts" / "book")
    for e in errs:
        print("ERROR", e)
    raise SystemExit(1 if errs else 0)
