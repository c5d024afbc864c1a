"""Build the cmkd_lab book offline (``make docs``; ``CMKD_LAB_FAST=1 make docs`` for the quick pass).

1. MathJax 3 into ``docs/_generated/static/mathjax`` (:mod:`cmkd_lab.offline`: fetched once from the npm
   registry into the cache, then copied from there);
2. the configuration reference into ``docs/_generated/config_reference.md`` (from ``docs/config_reference.md``);
3. the notebooks, executed, into ``docs/notebooks/``: an executed copy kept by the notebook tests or by an
   earlier build (``test-artifacts/executed/``) is reused when it was made from the same source in the
   same mode; the others are executed here (in a temporary folder) and kept there for the next build. The
   saved widget state is left out (no widget manager runs offline; it can weigh megabytes);
4. ``sphinx-build -W --keep-going -b html docs OUT`` (every warning is an error);
5. the checks of ``scripts/check_book.py`` on OUT (no network request, every internal link resolves,
   every notebook page has its figures, the mathematics is drawn).

Usage: ``python scripts/build_docs.py [--out docs/_build/html] [--no-check] [--no-browser]``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = DOCS / "_generated"
NOTEBOOK_PAGES = DOCS / "notebooks"
sys.path.insert(0, str(ROOT))

PLACEHOLDER = """# Config reference

*The options table is generated from the package's declared option rules into
`docs/config_reference.md`; this build did not find that file. In Python, `help(cmkd_lab.DistillConfig)`
lists every option.*
"""


def prepare_static() -> Path:
    """MathJax (and its licence) where ``mathjax_path`` in docs/conf.py expects it."""
    from cmkd_lab.offline import mathjax_js
    js = mathjax_js()
    dest = GENERATED / "static" / "mathjax"
    dest.mkdir(parents=True, exist_ok=True)
    for f in (js, js.with_name("LICENSE")):
        if f.is_file() and (not (dest / f.name).is_file() or (dest / f.name).stat().st_size != f.stat().st_size):
            shutil.copy2(f, dest / f.name)
    return dest / js.name


def prepare_config_reference() -> Path:
    src, dest = DOCS / "config_reference.md", GENERATED / "config_reference.md"
    dest.parent.mkdir(parents=True, exist_ok=True)
    text = src.read_text(encoding="utf-8") if src.is_file() else PLACEHOLDER
    if not dest.is_file() or dest.read_text(encoding="utf-8") != text:
        dest.write_text(text, encoding="utf-8")
    return dest


def _execute(src: Path, *, timeout: int = 1800):
    import nbclient
    import nbformat
    nb = nbformat.read(str(src), as_version=4)
    with tempfile.TemporaryDirectory(prefix="cmkd_book_") as tmp:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": tmp}}).execute()
    return nb


def prepare_notebooks(*, fast: bool, log=print) -> list:
    """Executed notebooks into docs/notebooks; returns [(name, 'reused' | 'executed', seconds)]."""
    from cmkd_lab.offline import executed_copy, save_executed, without_widget_state
    NOTEBOOK_PAGES.mkdir(parents=True, exist_ok=True)
    done = []
    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for stale in NOTEBOOK_PAGES.glob("*.ipynb"):
        if stale.stem not in {s.stem for s in sources}:
            stale.unlink()
    for src in sources:
        t0 = time.perf_counter()
        kept = executed_copy(src, fast=fast)
        how = "reused"
        if kept is None:
            log(f"executing {src.name} ({'fast' if fast else 'full'} mode) ...")
            kept = save_executed(_execute(src), src, fast=fast)
            how = "executed"
        import nbformat
        nbformat.write(without_widget_state(nbformat.read(str(kept), as_version=4)), str(NOTEBOOK_PAGES / src.name))
        done.append((src.stem, how, round(time.perf_counter() - t0, 1)))
        log(f"{src.stem}: {how} ({done[-1][2]} s)")
    return done


def build(out: Path) -> int:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", str(DOCS), str(out)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Build the cmkd_lab book offline.")
    p.add_argument("--out", default=str(DOCS / "_build" / "html"), help="where the HTML goes")
    p.add_argument("--no-check", action="store_true", help="skip scripts/check_book.py")
    p.add_argument("--no-browser", action="store_true", help="check the pages without opening them in Chromium")
    args = p.parse_args(argv)
    from cmkd_lab._env import fast_mode
    fast = fast_mode()
    t0 = time.perf_counter()
    prepare_static()
    prepare_config_reference()
    nbs = prepare_notebooks(fast=fast)
    t1 = time.perf_counter()
    out = Path(args.out)
    rc = build(out)
    t2 = time.perf_counter()
    print(f"book: notebooks {t1 - t0:.0f} s ({sum(1 for n in nbs if n[1] == 'reused')} reused), sphinx "
          f"{t2 - t1:.0f} s → {out / 'index.html'}")
    if rc != 0:
        print("sphinx-build failed (every warning is an error): see the messages above", file=sys.stderr)
        return rc
    if args.no_check:
        return 0
    sys.path.insert(0, str(ROOT / "scripts"))
    import check_book
    errors = check_book.check(out, NOTEBOOK_PAGES, browser=not args.no_browser)
    print(f"checks {time.perf_counter() - t2:.0f} s")
    for e in errors:
        print("ERROR", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
