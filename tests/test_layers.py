"""The package's shape: imports go one way through its layers (imports inside functions count), there
is no import cycle, and every number a run records is declared once by the code that records it."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "cmkd_lab"

# Lower layers never import higher ones.
LAYERS = [
    ("core", ("align", "models", "data", "distill", "diagnostics", "keys", "store", "_validation", "_seeds",
              "_atomic", "_env", "_names")),
    ("results", ("results",)),
    ("views", ("viz", "report", "gap_report", "htmlkit", "offline")),
    ("experiments", ("experiments",)),
    ("faces", ("cli", "widgets", "__main__", "")),
]
# Inside the core, a strict order: a package imports only packages of a lower rank (never one of its own
# rank: align, models and data know nothing of each other), so diagnostics may import distill, never the
# reverse.
CORE_RANKS = [
    ("foundations", ("_validation", "_seeds", "_atomic", "_env", "_names", "keys")),
    ("store", ("store",)),
    ("primitives", ("align", "models", "data")),
    ("distill", ("distill",)),
    ("diagnostics", ("diagnostics",)),
]
# Known arrows against CORE_RANKS, each to be removed by the change that fixes it.
ALLOWED_CORE: set = set()  # known exceptions to the core's order (none: distill() lives beside run_one)
# Known arrows that close an import cycle, each to be removed by the change that fixes it. distill.methods
# imports every method module in its registration loop, and options.py reads METHODS back through the
# package (`from . import METHODS`): the fix, `from .base import METHODS`, changes the core's code version, so
# it waits for the next core change (every published table is keyed by that version).
ALLOWED_CYCLE_ARROWS = {("cmkd_lab.distill.methods.options", "cmkd_lab.distill.methods")}


def _modules():
    mods = {}
    for p in ROOT.rglob("*.py"):
        parts = p.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = p
    return mods


def _imports(mods):
    """module -> the cmkd_lab modules it imports anywhere in its body, imports inside functions included.

    ``from P import x`` imports ``P`` (its ``__init__`` runs first, and ``x`` is read from it, possibly
    half-built) and ``P.x`` when that is a module: ``from . import x`` inside package ``P`` is an arrow to
    ``P`` itself. A name that is no module counts as the nearest module above it. An import of the root
    package alone (its version, its re-exported face) draws no arrow."""
    graph = {}
    root = ROOT.name
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                targets.add(mod)
                targets.update(f"{mod}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        if p.name == "__init__.py" and _imports_every_submodule(ast.parse(p.read_text())):
            # a registration loop (importlib over pkgutil.iter_modules(__path__)): an arrow to each submodule
            targets.update(x for x in mods if x.rpartition(".")[0] == m)
        out = set()
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != m and t != root:
                out.add(t)
        graph[m] = out
    return graph


def _imports_every_submodule(tree) -> bool:
    """Whether a package's ``__init__`` imports its submodules by name at run time (``importlib.import_module``
    over ``pkgutil.iter_modules(__path__)``), which no import statement shows."""
    calls = {(n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None))
             for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {"import_module", "iter_modules"} <= calls


def _top(mod: str) -> str:
    return mod[len("cmkd_lab"):].lstrip(".").split(".")[0]


def _rank(mod: str, table=None) -> int:
    """The index of ``mod``'s row in ``table`` (LAYERS by default, or CORE_RANKS)."""
    table = LAYERS if table is None else table
    for i, (_, tops) in enumerate(table):
        if _top(mod) in tops:
            return i
    name = "LAYERS" if table is LAYERS else "CORE_RANKS"
    raise AssertionError(f"module {mod} is in no row of {name}: add it there in {Path(__file__).name}")


def test_every_module_has_a_layer_and_imports_go_downward():
    graph = _imports(_modules())
    bad = [f"{m} ({LAYERS[_rank(m)][0]}) imports {x} ({LAYERS[_rank(x)][0]})"
           for m, xs in graph.items() for x in xs if _rank(x) > _rank(m)]
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(bad))


def test_the_core_has_a_strict_inner_order():
    """align, models, data < distill < diagnostics (and the foundations and the store below them)."""
    graph = _imports(_modules())
    core = [m for m in graph if _rank(m) == 0]
    bad = [f"{m} ({CORE_RANKS[_rank(m, CORE_RANKS)][0]}) imports {x} ({CORE_RANKS[_rank(x, CORE_RANKS)][0]})"
           for m in core for x in graph[m] if _rank(x) == 0 and _top(x) != _top(m)
           and _rank(x, CORE_RANKS) >= _rank(m, CORE_RANKS) and (m, x) not in ALLOWED_CORE]
    assert not bad, "imports against the core's order:\n" + "\n".join(sorted(bad))
    stale = [e for e in ALLOWED_CORE if e[1] not in graph.get(e[0], ())]
    assert not stale, f"ALLOWED_CORE lists arrows that no longer exist, remove them: {stale}"


def _cycles(graph) -> list:
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))
    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle():
    graph = _imports(_modules())
    stale = [e for e in ALLOWED_CYCLE_ARROWS if e[1] not in graph.get(e[0], ())]
    assert not stale, f"ALLOWED_CYCLE_ARROWS lists arrows that no longer exist, remove them: {stale}"
    for m, x in ALLOWED_CYCLE_ARROWS:
        graph[m] = graph[m] - {x}
    cycles = _cycles(graph)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_registration_loop(tmp_path, monkeypatch):
    """A package that imports its submodules in a loop draws an arrow to each: a submodule that imports the
    package back closes a cycle."""
    pkg = _plant(tmp_path, {"distill/__init__.py": "", "distill/methods/__init__.py":
                            "import importlib\nimport pkgutil\nfor _m in pkgutil.iter_modules(__path__):\n"
                            "    importlib.import_module(f'{__name__}.{_m.name}')\n",
                            "distill/methods/a.py": "def f():\n    from . import METHODS\n"})
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    monkeypatch.setattr(__import__(__name__), "ALLOWED_CYCLE_ARROWS", set())
    assert "cmkd_lab.distill.methods.a" in _imports(_modules())["cmkd_lab.distill.methods"]
    with pytest.raises(AssertionError, match=r"import cycles: \[\['cmkd_lab.distill.methods', "
                                             r"'cmkd_lab.distill.methods.a'\]\]"):
        test_no_import_cycle()


def _plant(tmp_path, files: dict):
    pkg = tmp_path / "cmkd_lab"
    for rel, text in {"__init__.py": "", **files}.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    return pkg


def test_the_checker_sees_a_cycle_and_a_layer_violation(tmp_path, monkeypatch):
    """The tests above are not vacuous: a planted cycle (through an import inside a function), an upward
    import, an arrow against the core's order and a cycle through ``from . import x`` are all caught."""
    pkg = _plant(tmp_path, {"distill/__init__.py": "", "distill/a.py": "def f():\n    from .b import g\n",
                            "distill/b.py": "from .a import f\nfrom ..experiments import run\n",
                            "experiments.py": "run = 1\n"})
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    monkeypatch.setattr(__import__(__name__), "ALLOWED_CYCLE_ARROWS", set())  # the real package's, not here
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle()
    with pytest.raises(AssertionError, match="cmkd_lab.distill.b \\(core\\) imports cmkd_lab.experiments"):
        test_every_module_has_a_layer_and_imports_go_downward()


def test_the_checker_sees_the_core_order_and_package_relative_imports(tmp_path, monkeypatch):
    pkg = _plant(tmp_path / "order", {
        "align/__init__.py": "", "align/x.py": "def f():\n    from ..diagnostics import core\n",
        "diagnostics/__init__.py": "", "diagnostics/core.py": "", "distill/__init__.py": "",
        "distill/t.py": "from ..diagnostics.core import g\n"})
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    with pytest.raises(AssertionError) as e:
        test_the_core_has_a_strict_inner_order()
    assert "cmkd_lab.align.x (primitives) imports cmkd_lab.diagnostics.core (diagnostics)" in str(e.value)
    assert "cmkd_lab.distill.t (distill) imports cmkd_lab.diagnostics.core (diagnostics)" in str(e.value)
    # `from . import x` names the package: with the package importing the module back, a cycle
    pkg = _plant(tmp_path / "rel", {"diagnostics/__init__.py": "from .explore import go\n",
                                    "diagnostics/explore.py": "from . import _text\n", "diagnostics/_text.py": ""})
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    monkeypatch.setattr(__import__(__name__), "ALLOWED_CYCLE_ARROWS", set())
    assert _imports(_modules())["cmkd_lab.diagnostics.explore"] == {"cmkd_lab.diagnostics",
                                                                  "cmkd_lab.diagnostics._text"}
    with pytest.raises(AssertionError, match=r"import cycles: \[\['cmkd_lab.diagnostics', "
                                             r"'cmkd_lab.diagnostics.explore'\]\]"):
        test_no_import_cycle()


def test_every_term_a_method_returns_is_declared(small_task):
    """One step of every method: the keys it returns are its declared terms and records."""
    from cmkd_lab import DistillConfig
    from cmkd_lab.distill import Trainer
    from cmkd_lab.distill.methods import METHODS
    for name, cls in METHODS.items():
        cfg = DistillConfig(epochs=1, teacher_epochs=1, batch_size=32,
                            pairing="paired" if cls.needs_pairs else "unpaired",
                            student_fraction=0.5 if cls.needs_unlabelled else 1.0,
                            student_unlabelled=bool(cls.needs_unlabelled))
        tr = Trainer(small_task, name, cfg)
        terms = tr.method.step(next(iter(tr.batches())))
        assert set(terms) <= set(cls.terms) | set(cls.records), (name, set(terms) - set(cls.terms) - set(cls.records))
        assert set(cls.terms) <= set(terms), (name, "a declared loss term is not returned")


def test_declared_kinds_drive_the_predictors():
    from cmkd_lab.results.keys import describe
    assert describe("val_acc").kind == "outcome" and not describe("val_acc").predictor
    assert describe("loss").kind == "loss" and not describe("loss").predictor
    assert describe("fa").predictor and describe("purity").predictor and describe("ent").predictor
    assert describe("bound_err_s").kind == "outcome" and describe("diag_time_s").kind == "bookkeeping"
    assert describe("never_declared_key").kind == "other"


@pytest.mark.parametrize("method,kw,own", [
    ("entmin", dict(student_fraction=0.5, student_unlabelled=True), ["ent"]),
    ("c2kd", dict(pairing="paired"), ["kd", "proxy", "selected"]),
])
def test_the_report_shows_every_number_a_run_records(small_task, method, kw, own):
    """Every key of every history record (the method's own terms, every diagnostic diagnose writes) is a
    column of the report's tables: none is dropped by a list kept by hand."""
    import html
    from cmkd_lab import DistillConfig
    from cmkd_lab import distill
    from cmkd_lab.report import render_report
    r = distill(small_task, method, DistillConfig(epochs=1, teacher_epochs=1, batch_size=32, **kw))
    page = render_report(r, projection="none")
    recorded = {k for h in r["history"] for k in h}
    assert set(own) <= recorded
    assert {"bound_w1", "bound_slack", "ot_marginal_err", "label_prior_tv"} <= recorded  # diagnose writes them
    for k in recorded:  # each a column, headed by its declared label (the key in the tooltip)
        assert f"<th title='{html.escape(k)}'>" in page, k


def test_distill_records_diagnostics_as_run_does(small_task):
    from cmkd_lab import DistillConfig
    from cmkd_lab import distill
    r = distill(small_task, "ce", DistillConfig(epochs=1, teacher_epochs=1, batch_size=32))
    assert "mmd2" in r["history"][0] and r["diagnostics"]["enabled"]
    r = distill(small_task, "ce", DistillConfig(epochs=1, teacher_epochs=1, batch_size=32), diagnostics=False)
    assert "mmd2" not in r["history"][0]


def test_no_reference_to_a_document_outside_the_repository():
    root = Path(__file__).resolve().parents[1]
    files = [p for d in ("cmkd_lab", "notebooks", "docs", "scripts", "benchmarks", "tests") for p in (root / d).rglob("*")
             if p.is_file() and p.suffix in (".py", ".md", ".ipynb", ".sh", ".json") and p.name != Path(__file__).name]
    files.append(root / "README.md")
    word = "DES" + "IGN"  # (spelled in two so that this test does not find itself)
    hits = [str(p.relative_to(root)) for p in files if word in p.read_text(errors="ignore")]
    assert not hits, f"references to {word}: {hits}"
