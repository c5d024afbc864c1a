"""The README's and the book's tables are generated from the published results (docs/results) by
scripts/render_tables.py: none may differ from its file, and the README stays a front door."""
import importlib.util
import json
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _renderer():
    spec = importlib.util.spec_from_file_location("render_tables", ROOT / "scripts" / "render_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_generated_table_matches_the_published_results():
    diffs = _renderer().stale()
    assert not diffs, ("tables differ from docs/results; run `python scripts/render_tables.py`:\n"
                       + "\n".join(diffs.values())[:4000])


def test_the_marked_regions_are_where_the_readers_look():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- table: headline -->" in readme
    marks = [m for f in (ROOT / "docs" / "findings").glob("*.md")
             for m in re.findall(r"<!-- table: ([\w:-]+) -->", f.read_text(encoding="utf-8"))]
    assert {"headline", "bench:bench_hapt", "bench:bench_digits_speech", "controls:controls_hapt_scarce",
            "controls:controls_hapt_full", "controls:controls_digits_full", "regime:regime_hapt"} <= set(marks)


def test_a_hand_edited_number_is_caught():
    r = _renderer()
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    edited = text.replace("84.40 ± 0.75", "84.41 ± 0.75", 1)
    assert edited != text and r.render_text(edited) == text  # rendering puts the published number back


def test_the_headline_reads_the_runs_themselves():
    """The `ce` accuracy of the HAPT row is the mean over its five seeds' runs, recomputed here from the
    runs the bench file holds (not from its summary)."""
    res = json.loads((ROOT / "docs" / "results" / "bench_hapt.json").read_text())
    accs = [r["student_test_acc"] for r in res["runs"] if r["method"] == "ce" and r["cell"] == "unpaired"]
    assert len(accs) == len(res["seeds"]) == 5
    mean, sd = 100 * statistics.fmean(accs), 100 * statistics.stdev(accs)
    row = next(l for l in _renderer().headline().splitlines() if l.startswith("| HAPT (bench)"))
    assert f"| {mean:.2f} ± {sd:.2f} |" in row


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the manual belongs in the book (docs/)"
    text = "\n".join(lines)
    makefile = (ROOT / "Makefile").read_text()
    for cmd in ("demo", "test", "lab", "docs"):  # every make command it names exists
        assert f"make {cmd}" in text and re.search(rf"^{cmd}:", makefile, re.M), cmd
    assert "make test" in (ROOT / ".ci" / "run").read_text()  # CI runs the README's test command
    assert "docs/_build/html/index.html" in text
    for img in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (ROOT / img).is_file(), img


def test_every_generated_table_is_a_table_to_a_markdown_reader():
    """Each table row (header, delimiter, body) has as many cells as the header: a delimiter row one column
    short makes GitHub and the book show the whole table as one paragraph of pipes."""
    r = _renderer()
    for f in r.FILES:
        for m in r.REGION.finditer(f.read_text(encoding="utf-8")):
            rows = [l for l in m.group("body").splitlines() if l.startswith("|")]
            blocks, cur = [], []
            for l in m.group("body").splitlines() + [""]:
                if l.startswith("|"):
                    cur.append(l)
                elif cur:
                    blocks.append(cur)
                    cur = []
            assert rows, (f.name, m.group("spec"))
            for block in blocks:
                widths = {len(re.findall(r"(?<!\\)\|", l)) for l in block}
                assert len(widths) == 1 and re.fullmatch(r"\|(---\|)+", block[1]), (f.name, m.group("spec"), block[:2])


def test_a_loss_is_never_shown_as_the_largest_gain():
    """Where no method without pairs is above `ce` (the largest mean is a loss), the headline says so before
    naming the closest method."""
    rows = [r for r in _renderer().headline().splitlines() if r.startswith("| ") and "(" in r.split("|")[1]]
    assert rows
    for row in rows:
        cell = row.split(" | ")[6]  # the best method without pairs and its Δ
        delta = re.search(r"` \**([+\-]\d+\.\d\d) \[", cell)
        assert delta, cell
        assert (float(delta.group(1)) <= 0) == cell.startswith("none above `ce`; closest: "), row
