"""Bench results of every format read the same: the paired comparisons, the noise floor and the control
table, computed from the runs where an older ``results.json`` does not carry them."""
import pytest

from cmkd_lab.results import (bench_comparisons, bench_controls, bench_records, current_bench,
                              format_bench_markdown, is_current_bench)


def _old_bench():
    """A results.json of the older format: runs without cells; ce ran once (unpaired) and serves paired."""
    runs = []
    for s, (ce, fa_u, fa_p, kd) in enumerate([(0.70, 0.72, 0.74, 0.71), (0.68, 0.71, 0.70, 0.69),
                                               (0.72, 0.73, 0.76, 0.70)]):
        runs += [{"method": "ce", "pairing": "unpaired", "seed": s, "student_test_acc": ce},
                 {"method": "fa", "pairing": "unpaired", "seed": s, "student_test_acc": fa_u},
                 {"method": "fa", "pairing": "paired", "seed": s, "student_test_acc": fa_p},
                 {"method": "kd", "pairing": "paired", "seed": s, "student_test_acc": kd}]
    summary = [{"pairing": p, "method": m, "n_seeds": 3, "test_acc_best_val_mean": 0.7, "test_acc_best_val_std": 0.01,
                "test_acc_last_mean": 0.7, "test_acc_last_std": 0.01, "teacher_test_acc_mean": 0.9, "wall_s_mean": 1.0}
               for p, m in (("unpaired", "ce"), ("unpaired", "fa"), ("paired", "fa"), ("paired", "kd"))]
    return {"task": "hapt", "seeds": [0, 1, 2], "summary": summary, "runs": runs,
            "skipped": [{"method": "ce", "pairing": "paired", "reason": "ce never reads a teacher sample"}]}


def test_old_format_comparisons_are_paired_by_seed_with_ce_aliased():
    res = _old_bench()
    assert not is_current_bench(res)
    recs = bench_records(res)
    paired_ce = [r for r in recs if r["cell"] == "paired" and r["method"] == "ce"]
    assert [r["seed"] for r in paired_ce] == [0, 1, 2] and all(r["alias_of"] == "unpaired" for r in paired_ce)
    rows = {(r["cell"], r["method"]): r for r in bench_comparisons(res)}
    assert rows[("unpaired", "fa")]["delta_mean"] == pytest.approx((0.02 + 0.03 + 0.01) / 3)
    assert rows[("paired", "fa")]["delta_mean"] == pytest.approx((0.04 + 0.02 + 0.04) / 3)
    assert rows[("paired", "kd")]["delta_mean"] == pytest.approx((0.01 + 0.01 - 0.02) / 3)
    assert rows[("unpaired", "fa")]["noise_baseline_std"] == pytest.approx(0.02)  # std of 0.70, 0.68, 0.72
    assert rows[("unpaired", "fa")]["mde"] is not None and "noise_aa_mean" not in rows[("unpaired", "fa")]
    assert bench_controls(res) == []


def test_current_bench_makes_old_files_printable_and_leaves_new_ones_alone():
    res = current_bench(_old_bench())
    assert res["upgraded"] and res["baseline"] == "ce" and res["axes"] == ["pairing"]
    md = format_bench_markdown(res)
    assert "Paired differences against `ce`" in md and "| paired | `kd` |" in md and "Not run: ce (setting paired)" in md
    new = dict(_old_bench(), comparisons=[{"method": "fa", "delta_mean": 0.1}])
    assert is_current_bench(new) and current_bench(new)["upgraded"] is False
    assert bench_comparisons(new) == [{"method": "fa", "delta_mean": 0.1}]


def test_controls_are_computed_from_runs_that_vary_the_teacher():
    runs = []
    for c, d in (("none", 0.05), ("random", 0.0)):
        for s in range(3):
            v = {"pairing": "unpaired", "teacher_control": c}
            runs += [{"cell": f"unpaired,{c}", "values": v, "method": "ce", "seed": s, "student_test_acc": 0.7},
                     {"cell": f"unpaired,{c}", "values": v, "method": "fa", "seed": s,
                      "student_test_acc": 0.7 + d + 0.01 * s}]
    rows = bench_controls({"task": "synthetic", "runs": runs, "summary": []})
    assert len(rows) == 1 and rows[0]["method"] == "fa"
    assert rows[0]["contrast"]["random"]["mean"] == pytest.approx(0.05)


def test_saved_results_say_whether_this_code_made_them(tmp_path):
    # A bench stamps the code version of the core it ran; a reader compares it with this checkout's and
    # says so when it differs or is missing (a shipped table is never shown as if this code had made it).
    from cmkd_lab.distill import DistillConfig
    from cmkd_lab.experiments import run_bench
    from cmkd_lab.results import load_bench, made_by_this_code, provenance_note
    from cmkd_lab.store import code_version
    from cmkd_lab.widgets import bench_note
    run_bench("synthetic", ["ce"], ["unpaired"], [0], tmp_path, DistillConfig(epochs=1, teacher_epochs=1,
              diagnostics_every=0), fast=True, log=lambda s: None)
    res = load_bench(tmp_path)
    assert res["code_version"] == code_version() and made_by_this_code(res) is True
    assert provenance_note(res) == "" and "earlier version" not in bench_note(res)
    old = {k: v for k, v in res.items() if k != "code_version"}
    assert made_by_this_code(old) is None and "records no code version" in provenance_note(old)
    other = dict(res, code_version="0" * 16)
    assert made_by_this_code(other) is False
    assert "made by another version of cmkd_lab" in provenance_note(other) and code_version() in provenance_note(other)
    assert "made by another version of cmkd_lab" in bench_note(other)


def test_provenance_of_something_that_is_not_a_result_is_refused_by_name():
    from cmkd_lab.results import made_by_this_code, provenance_note
    for f in (made_by_this_code, provenance_note):
        with pytest.raises(TypeError, match=r"res must be a bench or sweep result dict .* got str"):
            f("docs/results/bench_hapt.json")
