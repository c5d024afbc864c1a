"""The notebooks are a course: every notebook has at least three exercises, each with its solution, and
``scripts/student_edition.py`` (``make student``) writes a student edition that is valid, carries no
solution, and whose exercise stubs stop with NotImplementedError. Cheap: nothing here runs a notebook (the
teacher edition is executed by tests/test_notebooks.py, where a stub must raise NotImplementedError too)."""
from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="install the dev extra: pip install -e '.[dev]'")
pytest.importorskip("nbconvert", reason="the student edition is written with nbconvert's preprocessors")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISE = re.compile(r"\*\*Exercise (\d\d\.\d+) — ")
SOLUTION = re.compile(r"^(?:\*\*Solution|# Solution) (\d\d\.\d+)")


def _script():
    spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tags(cell) -> set:
    return set(cell.get("metadata", {}).get("tags", []))


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = _script().write_student_edition(NOTEBOOKS, out)
    return {p.stem: (nbformat.read(t, as_version=4), nbformat.read(p, as_version=4))
            for p, t in zip(NOTEBOOKS, written)}


def exercises(nb) -> dict:
    """Exercise number -> {"question": cell, "stubs": [cells], "solutions": [cells]} of a teacher edition."""
    out = {}
    current = None
    for c in nb.cells:
        tags = _tags(c)
        m = EXERCISE.search(c.source) if "exercise" in tags and c.cell_type == "markdown" else None
        if m:
            current = m.group(1)
            assert current not in out, f"exercise {current} is numbered twice"
            out[current] = {"question": c, "stubs": [], "solutions": []}
        elif "exercise" in tags and c.cell_type == "code":
            assert current is not None and current in c.source, f"a stub outside its exercise: {c.source[:60]!r}"
            out[current]["stubs"].append(c)
        elif "solution" in tags:
            m = SOLUTION.match(c.source)
            assert m, f"a solution cell must start with '**Solution NN.k**' or '# Solution NN.k': {c.source[:60]!r}"
            assert m.group(1) in out, f"solution {m.group(1)} has no exercise before it"
            out[m.group(1)]["solutions"].append(c)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_three_exercises_with_solutions(path):
    nb = nbformat.read(path, as_version=4)
    ex = exercises(nb)
    assert len(ex) >= 3, f"{path.name}: {len(ex)} exercises, the course needs at least three"
    for n, e in ex.items():
        assert e["solutions"], f"{path.name}: exercise {n} has no solution"
        assert n.startswith(path.stem[:2]), f"{path.name}: exercise {n} is numbered for another notebook"
        for stub in e["stubs"]:
            assert "raises-exception" in _tags(stub), f"exercise {n}: a stub must be tagged raises-exception"
    assert any(e["stubs"] for e in ex.values()), f"{path.name}: no coding exercise"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_edition_is_valid_and_carries_no_solution(path, editions):
    student, teacher = editions[path.stem]
    nbformat.validate(student)
    assert student.metadata["cmkd_lab"]["edition"] == "student"
    assert not any("solution" in _tags(c) for c in student.cells)
    text = "\n".join(c.source for c in student.cells)
    assert not re.search(r"\*\*Solution \d|# Solution \d", text)
    for n, e in exercises(teacher).items():
        assert EXERCISE.search(e["question"].source).group(1) in text  # the question stays
        for sol in e["solutions"]:
            body = sol.source.split("\n", 1)[-1] if sol.cell_type == "code" else sol.source.split("**", 2)[-1]
            assert body.strip() and body.strip() not in text, f"exercise {n}: solution text in the student edition"
    kept = [c for c in teacher.cells if "solution" not in _tags(c)]
    assert [c.source for c in student.cells if c.get("id") != "student-edition-note"] == [c.source for c in kept]
    assert all(c.outputs == [] and c.execution_count is None for c in student.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_stubs_raise_not_implemented(path, editions):
    """Each stub, run on its own, stops with NotImplementedError before it touches anything else."""
    student, _ = editions[path.stem]
    stubs = [c for c in student.cells if c.cell_type == "code" and "exercise" in _tags(c)]
    assert stubs
    for c in stubs:
        first = ast.parse(c.source).body[0]
        assert isinstance(first, ast.Raise), f"a stub's first statement must raise: {c.source[:80]!r}"
        with pytest.raises(NotImplementedError, match=r"Exercise \d\d\.\d+"):
            exec(compile(c.source, "<stub>", "exec"), {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_edition_needs_no_solution_to_run(path):
    """No cell outside the exercises reads a name that only an exercise (its stub or its solution) defines:
    the student edition runs on, past the unfilled stubs."""
    nb = nbformat.read(path, as_version=4)
    only_solutions, defined = set(), set()
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        tree = ast.parse(c.source)
        stores = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        stores |= {a.asname or a.name.split(".")[0] for n in ast.walk(tree)
                   if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        if _tags(c) & {"solution", "exercise"}:  # a stub defines nothing until it is filled in
            only_solutions |= stores - defined
            continue
        loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        used = (loads - stores) & only_solutions
        assert not used, f"{path.name}: {sorted(used)} come only from an exercise: {c.source[:60]!r}"
        defined |= stores


def test_script_refuses_a_missing_notebook(tmp_path, capsys):
    assert _script().main(["--out", str(tmp_path), str(tmp_path / "nope.ipynb")]) == 2
    assert "not found" in capsys.readouterr().err
