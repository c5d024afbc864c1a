"""The book's machinery, on a small book built with the real configuration (docs/conf.py), and the package's
published results in a built wheel.

The whole book is built by ``make docs`` (CI: ``CMKD_LAB_FAST=1 make docs`` after ``make test``), which runs
the same checks (scripts/check_book.py) on every page; here they run on two pages — one with mathematics,
one an executed notebook with a figure — and are shown to catch what they are for.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "book"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MATH_PAGE = """# A page with mathematics

The bound $\\mathrm{err}_S \\le \\mathrm{err}_T + \\mathrm{FA} + \\mathrm{LA}$ holds with $\\tilde\\varphi$, and

$$\\mathrm{LA}_e = -\\frac{1}{n}\\sum_i \\log \\frac{p_S(y_i\\mid z_i)}{p_T(y_i\\mid z_i)^{\\hat\\kappa_i}}$$

See [the notebook](notebooks/nb.ipynb) and [its section](notebooks/nb.ipynb#a-figure).

```{toctree}
notebooks/nb
```
"""


@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    """A two-page book built with docs/conf.py: a Markdown page with maths, an executed notebook."""
    pytest.importorskip("sphinx", reason="install the docs extra: pip install -e '.[dev]'")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    build_docs = _script("build_docs")
    build_docs.prepare_static()  # MathJax where conf.py expects it
    src = tmp_path_factory.mktemp("src")
    (src / "index.md").write_text(MATH_PAGE, encoding="utf-8")
    (src / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook $\\hat\\kappa$\n\n## A figure"),
                nbformat.v4.new_code_cell(
                    "import cmkd_lab.widgets as W\nlab = W.setup_notebook(quiet=True)\n"
                    "W.curve_figure([{'epoch': 1, 'ce': 2.0}, {'epoch': 2, 'ce': 1.0}], ['ce'], title='in the book').show()")]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(src)}}).execute()
    nbformat.write(nb, str(src / "notebooks" / "nb.ipynb"))
    out = tmp_path_factory.mktemp("html")
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
                        "-c", str(ROOT / "docs"), str(src), str(out)], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert r.returncode == 0, f"sphinx-build failed (warnings are errors):\n{r.stderr[-4000:]}"
    return {"src": src, "out": out, "nb_dir": src / "notebooks"}


def test_the_small_book_passes_every_check_offline(small_book):
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("/usr/bin/chromium is missing: apt-get install -y chromium (CI's .ci/run does)")
    check = _script("check_book")
    out = small_book["out"]
    assert check.check(out, small_book["nb_dir"], browser=True, shots=ARTIFACTS) == []
    seen = check.open_offline(out / "index.html", screenshot=ARTIFACTS / "small_book_math.png")
    assert seen["math"] >= 3 and seen["requests"] == [] and seen["raw_tex"] == []  # maths drawn, locally
    nb_page = check.open_offline(out / "notebooks" / "nb.html", expect_figures=1)
    assert nb_page["figures"] == 1 and nb_page["requests"] == [] and nb_page["raw_tex"] == []
    assert "cdnjs" not in (out / "notebooks" / "nb.html").read_text()  # plotly's CDN MathJax removed


def test_the_checks_catch_a_broken_link_a_missing_figure_and_a_fetch(small_book, tmp_path):
    check = _script("check_book")
    out = tmp_path / "html"
    shutil.copytree(small_book["out"], out)
    page = out / "index.html"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace('href="notebooks/nb.html#a-figure"', 'href="notebooks/nb.html#nowhere"')
                    .replace("</body>", '<a href="gone.html">x</a><script src="https://cdn.example/x.js">'
                             '</script></body>'), encoding="utf-8")
    errors = check.check_links(out) + check.check_offline(out)
    assert any("gone.html" in e for e in errors) and any("#nowhere" in e for e in errors)
    assert any("cdn.example" in e for e in errors)
    nb = out / "notebooks" / "nb.html"
    nb.write_text(nb.read_text(encoding="utf-8").replace("Plotly.newPlot(", "Plotly.oldPlot("), encoding="utf-8")
    with pytest.raises(AssertionError, match=r"nb\.html lacks 1 of the notebook's 1 figures"):
        check.check_notebook_pages(out, small_book["nb_dir"])


def test_the_wheel_carries_the_published_results(tmp_path):
    """The package built from this checkout holds every published result (cmkd_lab/results/published),
    which cmkd_lab.results.shipped finds in an installed package."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "cmkd_lab", src / "cmkd_lab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "docs" / "results", src / "docs" / "results")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("cmkd_lab-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    published = sorted(p.name for p in (ROOT / "docs" / "results").iterdir() if p.suffix in (".json", ".md", ".csv"))
    assert published and all(f"cmkd_lab/results/published/{n}" in names for n in published), \
        sorted(set(f"cmkd_lab/results/published/{n}" for n in published) - names)
    assert "cmkd_lab/results/shipped.py" in names and "cmkd_lab/data/builtin/hapt.npz" in names
    # installed (unpacked) without the checkout beside it, the accessor finds the package's own copy
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from cmkd_lab.results.shipped import shipped, shipped_dir; "
            "print(shipped_dir()); print(shipped('bench_hapt'))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(site)), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.split()
    assert lines[0] == str(site / "cmkd_lab" / "results" / "published") and lines[1].endswith("bench_hapt.json")


def test_shipped_refuses_a_path_and_an_unknown_type():
    from cmkd_lab.results.shipped import shipped, shipped_names
    assert "bench_hapt" in shipped_names() and shipped("bench_hapt").name == "bench_hapt.json"
    assert shipped("not_published_yet") is None
    with pytest.raises(ValueError, match="name must be the stem of a published result"):
        shipped("../README")
    with pytest.raises(ValueError, match=r"ext must be one of 'json', 'md', 'csv'; got ext='txt'"):
        shipped("bench_hapt", ext="txt")


def test_the_api_reference_documents_a_package_whose_name_a_function_shadows():
    """``cmkd_lab.distill`` is a package and the one-call function; ``cmkd_lab.align.mmd`` and
    ``cmkd_lab.widgets.settings`` likewise. The book's autosummary resolves a name that is a module to the module
    (docs/conf.py), so every module of the package gets its page; any other name still resolves to its object."""
    import importlib
    import pkgutil
    import types

    pytest.importorskip("sphinx")
    spec = importlib.util.spec_from_file_location("book_conf", ROOT / "docs" / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    import cmkd_lab

    shadowed = []

    def walk(pkg):
        for m in pkgutil.iter_modules(pkg.__path__):
            full = f"{pkg.__name__}.{m.name}"
            mod = importlib.import_module(full)
            if not isinstance(getattr(pkg, m.name, None), types.ModuleType):
                shadowed.append(full)
            obj, _parent, modname = conf.import_module_first(full)
            assert obj is mod and modname == full, full
            if m.ispkg:
                walk(mod)

    walk(cmkd_lab)
    assert {"cmkd_lab.distill", "cmkd_lab.align.mmd"} <= set(shadowed)  # the cases this is for
    obj, _parent, _ = conf.import_module_first("cmkd_lab.DistillConfig")
    assert obj is cmkd_lab.DistillConfig
