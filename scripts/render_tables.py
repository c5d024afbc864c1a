"""Fill the tables of README.md and of the book's Results pages from the published results (docs/results).

A generated table sits between two marks in a Markdown file::

    <!-- table: KIND[:NAME] -->
    ...                      (written by this script: do not edit by hand)
    <!-- /table -->

Kinds:

* ``headline`` — one row per published bench: `ce` with its seed-to-seed spread, the noise floor (the
  A/A row: `ce` against `ce` retrained), the method closest to a gain, and what is beyond the noise;
* ``bench:NAME`` — every method of ``docs/results/NAME.json``: accuracy and Δ vs `ce` with its interval,
  wins/losses, MDE and verdict;
* ``controls:NAME`` — the teacher-control table of ``docs/results/NAME.json`` with its noise floor;
* ``regime:NAME`` — the regime map of the sweep ``docs/results/NAME.md`` (its first table, as the sweep wrote
  it): per cell `ce`, the A/A row and each method's Δ.

Usage (from the repository root)::

    python scripts/render_tables.py            # rewrite the marked regions
    python scripts/render_tables.py --check    # exit 1 and show the difference when a file is stale

tests/test_readme_tables.py runs the check, so a table can never drift from its result file.
"""
from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
FILES = [ROOT / "README.md", *sorted((ROOT / "docs" / "findings").glob("*.md"))]
REGION = re.compile(r"(<!-- table: (?P<spec>[\w:-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)

TASKS = {"hapt": "HAPT", "digits-speech": "digits-speech", "synthetic": "synthetic"}


def headline_names() -> List[str]:
    """Every published bench (``bench_*``, then ``controls_*`` at full labels, then at scarce labels), the real
    tasks before the synthetic one: a file made later joins the headline by itself."""
    def key(stem):
        kind = 0 if stem.startswith("bench_") else (1 if stem.endswith("_full") else 2)
        task = 2 if "synthetic" in stem else (0 if "hapt" in stem else 1)
        return kind, task, stem
    stems = [p.stem for p in RESULTS.glob("*.json") if p.stem.startswith(("bench_", "controls_"))]
    return sorted(stems, key=key)


def _load(name: str) -> dict:
    p = RESULTS / f"{name}.json"
    if not p.is_file():
        raise FileNotFoundError(f"docs/results/{name}.json does not exist (named by a table mark)")
    return json.loads(p.read_text(encoding="utf-8"))


def _pct(v: Optional[float]) -> str:
    return "—" if v is None else f"{100 * v:.2f}"


def _delta(r: Optional[dict], *, bold: bool = True) -> str:
    from cmkd_lab.results import tables
    return tables.fmt_delta(r, bold=bold) if r else "—"


def _real_teacher(r: dict) -> bool:
    return (r.get("values") or {}).get("teacher_control", "none") == "none"


def _cell_rows(res: dict) -> List[dict]:
    """The comparisons of the unpaired cell with the real teacher (not the aliased copies)."""
    return [r for r in res["comparisons"] if (r.get("values") or {}).get("pairing", "unpaired") == "unpaired"
            and _real_teacher(r) and not r.get("aliased")]


def _labels(res: dict) -> str:
    cfg = res.get("config") or {}
    f = cfg.get("student_fraction", 1.0)
    text = "all" if f is None or f >= 1 else f"{100 * f:g} %"
    return text + (" + the rest unlabelled" if cfg.get("student_unlabelled") else "")


def headline() -> str:
    from cmkd_lab.results import is_aa
    rows, versions = [], {}
    for name in headline_names():
        res = _load(name)
        base = res.get("baseline", "ce")
        cell = _cell_rows(res)
        b = next(r for r in cell if r["method"] == base)
        aa = next((r for r in cell if is_aa(r["method"])), None)
        others = [r for r in cell if r["method"] != base and not is_aa(r["method"]) and not r.get("is_ceiling")
                  and r.get("delta_mean") is not None]
        shown = [r for r in others if r.get("significant") and r["delta_mean"] > 0] or others
        best = max(shown, key=lambda r: r["delta_mean"])  # a gain beyond the noise first, else the largest mean
        ceilings = {r["method"]: r for r in cell if r.get("is_ceiling") and r.get("delta_mean") is not None}
        ceiling = ceilings.get(best.get("ceiling")) or (max(ceilings.values(), key=lambda r: r["delta_mean"])
                                                        if ceilings else None)  # the one the headroom is read against
        room = ""
        if ceiling is not None:
            from cmkd_lab.results.tables import headroom_text
            room = f"; headroom recovered {headroom_text(best)}" if best.get("headroom") is not None else ""
        verdicts = {r["method"]: r.get("verdict") for r in res.get("control_table") or []}
        helps = [f"`{r['method']}`" + (f" ({verdicts[r['method']]})" if r["method"] in verdicts else "")
                 for r in others if r.get("significant") and r["delta_mean"] > 0]
        hurts = [f"`{r['method']}`" for r in others if r.get("significant") and r["delta_mean"] < 0]
        beyond = "; ".join(x for x in (f"helps: {', '.join(helps)}" if helps else "helps: none",
                                       f"hurts: {', '.join(hurts)}" if hurts else "") if x)
        lead = "" if best["delta_mean"] > 0 else "none above `ce`; closest: "  # the largest mean may be a loss
        kind = "teacher controls" if name.startswith("controls") else "bench"
        sd = (res.get("task_kwargs") or {}).get("shared_decisive")
        if sd is not None:  # the positive control and its null twin: the knob that tells them apart
            kind += f", shared_decisive={sd:g}"
        rows.append(f"| {TASKS.get(res['task'], res['task'])} ({kind}) | {_labels(res)} | {len(res['seeds'])} | "
                    f"{_pct(b['acc_mean'])} ± {_pct(b['acc_std'])} | {_delta(aa, bold=False)} | "
                    f"{_delta(ceiling) if ceiling else '—'} | {lead}`{best['method']}` {_delta(best)}{room} | {beyond} |")
        versions.setdefault(res.get("code_version") or "not recorded", []).append(name)
    head = ["| published result | student's labels | seeds | `ce` accuracy (%) | noise floor: A/A Δ | "
            "paired ceiling: Δ vs `ce` | largest gain without pairs (beyond the noise first) | beyond the noise (unpaired, "
            "real teacher) |",
            "|---|---|---|---|---|---|---|---|"]
    made = "; ".join(f"{v} ({', '.join(n)})" for v, n in versions.items())
    note = ("\nΔ = method − `ce` in points of accuracy, paired by seed: mean [95 % interval] wins/losses · MDE "
            "(the smallest difference these seeds could detect); **bold** where the interval excludes zero. The "
            "A/A row is `ce` trained again with other random draws: what a method that changes nothing shows. "
            "The paired ceiling is the teacher's knowledge delivered through pairs on the unlabelled student "
            "samples (`ceiling-kd`: the teacher's soft targets), made only where the student has "
            "unlabelled samples; the headroom recovered is the share of its gain a method gets without pairs. "
            f"Code version that made each file: {made}.\n")
    return "\n".join(head + rows) + "\n" + note


def bench(name: str) -> str:
    from cmkd_lab.results import is_aa
    res = _load(name)
    base = res.get("baseline", "ce")
    comps = res["comparisons"]
    twins = {r["method"] for r in comps if r.get("aliased")}
    lines = ["| pairing | method | test acc (best val) | test acc (last) | Δ vs `ce` [95 % CI] w/l · MDE | verdict |",
             "|---|---|---|---|---|---|"]
    order = sorted((r for r in comps if not r.get("aliased")),
                   key=lambda r: (r["method"] not in twins, r["method"] != base, not is_aa(r["method"])))
    for r in order:
        pairing = "" if r["method"] in twins else (r.get("values") or {}).get("pairing", "")
        aa = is_aa(r["method"])
        method = f"*`{base}` (A/A)*" if aa else f"`{r['method']}`"
        delta = "" if r["method"] == base else _delta(r, bold=not aa)
        verdict = "" if r["method"] == base else ("the noise floor" if aa else r.get("verdict", ""))
        lines.append(f"| {pairing} | {method} | {_pct(r['acc_mean'])} ± {_pct(r['acc_std'])} | "
                     f"{_pct(r.get('acc_last_mean'))} ± {_pct(r.get('acc_last_std'))} | {delta} | {verdict} |")
    teacher = next((r.get("teacher_acc_mean") for r in comps if r.get("teacher_acc_mean") is not None), None)
    lines.append(f"\n{len(res['seeds'])} seeds; teacher (its own modality, its own test split): {_pct(teacher)} %.\n")
    return "\n".join(lines)


def controls(name: str) -> str:
    from cmkd_lab.results import format_control_markdown, is_aa
    res = _load(name)
    base = res.get("baseline", "ce")
    cell = _cell_rows(res)
    b = next(r for r in cell if r["method"] == base)
    aa = next((r for r in cell if is_aa(r["method"])), None)
    minutes = sum(r.get("wall_s") or 0 for r in res.get("runs", [])) / 60
    teacher = b.get("teacher_acc_mean")
    head = (f"`{base}` {_pct(b['acc_mean'])} ± {_pct(b['acc_std'])}; A/A {_delta(aa, bold=False)}; teacher "
            f"{_pct(teacher)}; {len(res['seeds'])} seeds, {len(res.get('runs', []))} runs, {minutes:.0f} min of "
            "training summed over the runs\n")
    table = format_control_markdown(res, rows=res["control_table"], headroom=cell)
    table = table[table.index("\n| "):].lstrip("\n")  # the table alone: the page explains the columns
    return head + "\n" + table


def regime(name: str) -> str:
    # The sweep's own table (docs/results/NAME.md, formatted from the full-precision runs when the sweep
    # ended): formatting the compact JSON again would round its five-digit floats a second time, and a
    # bound such as 0.1081533 (+10.82) stored as 0.10815 would print as +10.81.
    text = (RESULTS / f"{name}.md").read_text(encoding="utf-8")
    start = text.index("\n| ") + 1
    end = text.find("\n\n", start)
    return text[start:end if end >= 0 else None] + "\n"


def render_spec(spec: str) -> str:
    kind, _, name = spec.partition(":")
    if kind == "headline" and not name:
        return headline()
    if kind == "bench" and name:
        return bench(name)
    if kind == "controls" and name:
        return controls(name)
    if kind == "regime" and name:
        return regime(name)
    raise ValueError(f"unknown table mark {spec!r}: use headline, bench:NAME, controls:NAME or regime:NAME")


def render_text(text: str) -> str:
    """``text`` with every marked region filled."""
    return REGION.sub(lambda m: m.group(1) + render_spec(m.group("spec")).rstrip("\n") + "\n" + m.group(4), text)


def stale(files=None) -> Dict[Path, str]:
    """File -> unified diff, for each file whose marked tables differ from the published results."""
    out = {}
    for f in files or FILES:
        old = f.read_text(encoding="utf-8")
        new = render_text(old)
        if new != old:
            out[f] = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(f), "rendered"))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 when a file differs from its rendering")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    diffs = stale()
    if args.check:
        for d in diffs.values():
            print(d)
        if diffs:
            print(f"{len(diffs)} file(s) stale: run python scripts/render_tables.py", file=sys.stderr)
        return 1 if diffs else 0
    for f in FILES:
        old = f.read_text(encoding="utf-8")
        new = render_text(old)
        if new != old:
            f.write_text(new, encoding="utf-8")
            print(f"rewrote {f.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
