"""The README's gap-explorer examples, measured on the built-in tasks (full mode).

* HAPT: the teacher's features of the accelerometer view of the student's
  test windows against the features of gyroscope students trained with
  ``ce`` and with ``fa`` (λ = 0.1) — the same windows, so ``pairs=True``;
* the synthetic generator's ``gap`` knob (notebook 06's sweep, full mode);
* a finished ``fa`` run on HAPT, before (epoch 0) and after (last epoch).

Writes ``docs/results/gap_examples.md`` and ``.json``, the HAPT ``ce``
report to ``runs/gap_examples/hapt_ce/gap.html`` and, where kaleido and a
Chromium are installed, its figures to ``docs/figures/gap_hapt_ce_*.png``.

Usage::

    python scripts/gap_examples.py
"""
from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _markdown(df) -> str:
    """A DataFrame as a Markdown table (no tabulate needed)."""
    def cell(v):
        return "—" if v is None or v != v else f"{v:.3g}" if isinstance(v, float) else str(v)
    cols = [df.index.name or ""] + list(df.columns)
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join([str(i)] + [cell(v) for v in r]) + " |" for i, r in zip(df.index, df.itertuples(index=False))]
    return "\n".join(rows)


def _slim(r: dict) -> dict:
    """A result without its bulky parts (the pooled plan and the gap vector's coordinates)."""
    out = json.loads(json.dumps(r))
    out.pop("plan", None)
    out["gap_vector"]["gap"].pop("vector", None)
    return out


def main():
    from cmkd_lab import explore_gap
    from cmkd_lab.cli import main as cli
    from cmkd_lab.gap_report import export_gap_pngs, gap_report_from_run, write_gap_report
    from cmkd_lab.widgets.gap import gap_table, synthetic_gap_sweep, task_features
    from cmkd_lab.widgets.settings import settings

    lab = settings(fast=False)
    out = ROOT / "runs" / "gap_examples"
    t0 = time.perf_counter()
    hapt = {}
    for method, opts in (("ce", {}), ("fa", {"lambda_fa": 0.1})):
        f = task_features("hapt", method=method, lab=lab, **opts)
        r = explore_gap(f["teacher_on_student"], f["student"], y_a=f["student_y"], y_b=f["student_y"], pairs=True,
                        names=("accelerometer", f"gyroscope ({method})"), class_names=f["class_names"])
        hapt[f"hapt: teacher (accelerometer) vs {method} student (gyroscope), test windows"] = r
        print(method, f["student_test_acc"], r["headline"], flush=True)
        if method == "ce":
            write_gap_report(r, out / "hapt_ce")
            pngs, why = export_gap_pngs(r, ROOT / "docs" / "figures", prefix="gap_hapt_ce")
            print(why or f"{len(pngs)} PNGs", flush=True)
    sweep, _ = synthetic_gap_sweep(lab=lab)
    run_dir = out / "run_hapt_fa"
    from cmkd_lab.store import code_version, read_json
    old = read_json(run_dir / "result.json", what="run result") if (run_dir / "result.json").exists() else None
    if not old or (old.get("identity") or {}).get("code_version") != code_version():  # none, or made by other code
        cli(["run", "--task", "hapt", "--method", "fa", "--set", "lambda_fa=0.1", "--epochs", "10",
             "--set", "diagnostics_every=5", "--out", str(run_dir), "--quiet", "--overwrite"])
    run = gap_report_from_run(run_dir, out / "run_hapt_fa_gap")
    table = gap_table({**hapt, **sweep})
    lines = ["# Gap explorer on the built-in tasks", "",
             "Made by `python scripts/gap_examples.py` (full mode of notebook 06: students 10 epochs, teacher 15; "
             f"{time.perf_counter() - t0:.0f} s on this machine).", "",
             "A = the first set named, B = the second; R@1 = paired retrieval recall@1 A→B.", "",
             _markdown(table), "",
             f"## A finished `fa` run (λ = 0.1) on HAPT: teacher vs student features, epoch {run['epochs'][0]} "
             f"vs {run['epochs'][1]}", "", "| quantity | before | after |", "|---|---|---|"]
    for row in run["table"]:
        fmt = (lambda v: "—" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append(f"| {row['quantity']} | {fmt(row['before'])} | {fmt(row['after'])} |")
    lines += ["", "Readings (HAPT, `ce` student):", ""] + [f"* {s}" for s in next(iter(hapt.values()))["readings"]]
    (ROOT / "docs" / "results" / "gap_examples.md").write_text("\n".join(lines) + "\n")
    (ROOT / "docs" / "results" / "gap_examples.json").write_text(json.dumps(
        {"code_version": code_version(),  # as every published result records the code that made it
         "comparisons": {k: _slim(v) for k, v in {**hapt, **sweep}.items()},
         "run": {k: run[k] for k in ("epochs", "run", "table")}}, indent=1, ensure_ascii=False))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
