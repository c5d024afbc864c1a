"""Write the student edition of the notebooks: the solutions removed, the outputs cleared.

    python scripts/student_edition.py                       # every notebook -> build/student/
    python scripts/student_edition.py --out DIR notebooks/01_theory_bound.ipynb

The notebooks in ``notebooks/`` are the teacher edition. An exercise is a Markdown cell tagged ``exercise``
(the question), often followed by a code cell tagged ``exercise``, ``raises-exception`` and ``remove-output`` (a
stub that stops with ``NotImplementedError`` until it is filled in; ``raises-exception`` lets "Run all" go past
it, ``remove-output`` keeps its traceback out of a rendered page such as the book), then one or more cells
tagged ``solution``. The student edition is written with nbconvert's preprocessors — ``TagRemovePreprocessor``
removes every cell tagged ``solution``, ``ClearOutputPreprocessor`` clears outputs and execution counts — and
starts with one line saying that it is the student edition. ``make student`` runs this script.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
NOTE = ("*Student edition: the solutions of the exercises are not in this copy. Code in an exercise stops with "
        "`NotImplementedError` until you fill it in; the rest of the notebook runs without it.*")


def student_notebook(nb):
    """The student edition of notebook ``nb`` (an nbformat NotebookNode; a new one is returned)."""
    import copy

    import nbformat
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

    out = copy.deepcopy(nb)
    out, _ = TagRemovePreprocessor(remove_cell_tags={SOLUTION_TAG}, enabled=True).preprocess(out, {})
    out, _ = ClearOutputPreprocessor(enabled=True).preprocess(out, {})
    note = nbformat.v4.new_markdown_cell(NOTE)
    note["id"] = "student-edition-note"
    out.cells.insert(1 if out.cells and out.cells[0].cell_type == "markdown" else 0, note)
    out.metadata["cmkd_lab"] = {"edition": "student"}
    nbformat.validate(out)
    return out


def write_student_edition(paths, out_dir: Path) -> list:
    """Write the student edition of each notebook in ``paths`` to ``out_dir``; returns the written paths."""
    import nbformat

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for p in paths:
        p = Path(p)
        nb = nbformat.read(p, as_version=4)
        target = out_dir / p.name
        nbformat.write(student_notebook(nb), target)
        written.append(target)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", help="teacher-edition notebooks (default: notebooks/*.ipynb)")
    ap.add_argument("--out", default=str(ROOT / "build" / "student"), help="where to write (default build/student)")
    a = ap.parse_args(argv)
    paths = [Path(p) for p in a.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"error: notebooks must be existing .ipynb files; not found: {missing}", file=sys.stderr)
        return 2
    for target in write_student_edition(paths, Path(a.out)):
        print(f"student edition: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
