"""A difference quoted in prose — a notebook's text, the README, a book page — is one the published results
hold: every ``+1.42 [-0.17, +3.01]`` written by hand must appear, with the same three numbers, in a table of
docs/results. When a result is re-made, a quote of the old numbers fails here instead of contradicting the
table beside it."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUOTE = re.compile(r"([+\-−]?\d+\.\d\d) \[([+\-−]?\d+\.\d\d), ([+\-−]?\d+\.\d\d)\]")
SKIP = {("docs", d) for d in ("_build", "_generated", "results", "notebooks", "api")}  # built or published
REGION = re.compile(r"<!-- table: [\w:-]+ -->.*?<!-- /table -->", re.S)  # generated from the results


def _triples(text: str):
    for m in QUOTE.finditer(text):
        yield tuple(float(x.replace("−", "-")) for x in m.groups())


def _published():
    out = set()
    for f in (ROOT / "docs" / "results").glob("*.md"):
        out.update(_triples(f.read_text(encoding="utf-8")))
    return out


def _prose():
    for f in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(f.read_text(encoding="utf-8"))
        for i, c in enumerate(nb["cells"]):
            if c["cell_type"] == "markdown":
                yield f"{f.name} cell {i}", "".join(c["source"])
    for f in [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]:
        if f.relative_to(ROOT).parts[:2] in SKIP:
            continue
        yield str(f.relative_to(ROOT)), REGION.sub("", f.read_text(encoding="utf-8"))


def test_the_pattern_reads_signs_and_unicode_minus():
    assert list(_triples("ucmkd +0.43 [−0.21, +1.07] 4/0 and -6.10 [-9.22, -2.97]")) == [
        (0.43, -0.21, 1.07), (-6.10, -9.22, -2.97)]


PROSE = list(_prose())


@pytest.mark.parametrize("where,text", PROSE, ids=[w for w, _ in PROSE])
def test_every_quoted_difference_is_a_published_one(where, text):
    published = _published()
    stale = [t for t in _triples(text) if t not in published]
    assert not stale, (f"{where} quotes {stale}, which no table of docs/results holds: the result was re-made; "
                       "quote the new numbers (or let the notebook read them from cmkd_lab.results.shipped)")
