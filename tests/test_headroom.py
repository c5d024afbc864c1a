"""The paired ceiling and the headroom recovered (issue 22): Fieller's interval against a hand computation,
the inversion of the paired t-test and its coverage by simulation; the headroom in the summaries, the CSV and
the Markdown tables, from synthetic run records (plain dicts as results.summary.run_record builds them).
And the calibration that decides how many seeds a verdict needs (issue 25)."""
import math

import numpy as np
import pytest
from scipy import optimize, stats

from cmkd_lab.results import (bench_csv, fieller_interval, format_bench_markdown, format_sweep_markdown,
                              headroom_recovered, paired_difference, paired_summary)

T975_2 = math.sqrt(722 / 39)  # t_{0.975, 2}, exactly (see test_fieller_roots_by_hand)


# ------------------------------------------------------------------ Fieller's interval
def test_fieller_roots_by_hand():
    # a = method − ce, b = ceiling − ce over 3 seeds: means 0.03 and 0.06, every (co)variance 1e-4, so each
    # (co)variance of the means is 1e-4 / 3. The interval is where
    #   (b̄² − t² v_bb) ρ² − 2 (ā b̄ − t² v_ab) ρ + (ā² − t² v_aa) ≤ 0.
    # With 2 degrees of freedom t² has a closed form: t²_{0.975,2} = 0.95²·2 / (1 − 0.95²) = 722/39, so
    # t²·v = 722e-4/117 = 6.170940e-4; the coefficients are 2.982906e-3, 1.182906e-3 and 2.829060e-4, the
    # discriminant 5.553930e-7 (root 7.452470e-4) and the roots 4.376590e-4 / 2.982906e-3 = 0.146724 and
    # 1.928153e-3 / 2.982906e-3 = 0.646399.
    a, b = [0.02, 0.04, 0.03], [0.05, 0.07, 0.06]
    assert stats.t.ppf(0.975, 2) == pytest.approx(T975_2, rel=1e-9)
    tv = 722e-4 / 117
    qa, qb, qc = 0.06 ** 2 - tv, 0.03 * 0.06 - tv, 0.03 ** 2 - tv
    lo, hi = (qb - math.sqrt(qb * qb - qa * qc)) / qa, (qb + math.sqrt(qb * qb - qa * qc)) / qa
    assert (lo, hi) == pytest.approx((0.146724, 0.646399), abs=1e-6)
    f = fieller_interval(a, b)
    assert f["ratio"] == pytest.approx(0.5) and f["bounded"]
    assert (f["ci_low"], f["ci_high"]) == pytest.approx((lo, hi), rel=1e-9)


def test_fieller_bounds_are_where_the_paired_t_test_of_a_minus_rho_b_just_rejects():
    rng = np.random.default_rng(3)
    b = 0.05 + 0.01 * rng.standard_normal(6)
    a = 0.4 * b + 0.005 * rng.standard_normal(6)
    f = fieller_interval(a, b)
    crit = stats.t.ppf(0.975, 5)

    def excess(rho):  # |t| of the mean of a − ρ·b minus the critical value
        d = a - rho * b
        return abs(d.mean()) / (d.std(ddof=1) / math.sqrt(len(d))) - crit
    r = f["ratio"]
    assert excess(r) < 0  # the estimate is inside
    assert f["ci_low"] == pytest.approx(optimize.brentq(excess, r - 10, r), rel=1e-7)
    assert f["ci_high"] == pytest.approx(optimize.brentq(excess, r, r + 10), rel=1e-7)


def test_fieller_is_unbounded_when_the_denominator_is_not_significant():
    f = fieller_interval([0.01, 0.02, 0.0], [0.01, -0.01, 0.02])
    assert not f["bounded"] and f["ci_low"] is None and f["ci_high"] is None
    with pytest.raises(ValueError, match="same length >= 2"):
        fieller_interval([0.1], [0.2])


def test_fieller_coverage_by_simulation():
    # Paired (a, b) with correlated noise; the true ratio μa/μb = 0.4 is covered ≈ 95 % of the time.
    rng = np.random.default_rng(0)
    n, sims, mu = 5, 2000, np.array([0.02, 0.05])
    cov = 1e-4 * np.array([[1.0, 0.5], [0.5, 1.0]])
    hits = bounded = 0
    for _ in range(sims):
        x = rng.multivariate_normal(mu, cov, size=n)
        f = fieller_interval(x[:, 0], x[:, 1])
        bounded += f["bounded"]
        hits += f["bounded"] and f["ci_low"] <= 0.4 <= f["ci_high"]
    assert bounded / sims > 0.99  # μb is 11 standard errors from zero: nearly always bounded
    assert abs(hits / sims - 0.95) < 3 * math.sqrt(0.95 * 0.05 / sims)


def test_headroom_in_words_when_the_ceiling_is_not_above_ce():
    h = headroom_recovered([0.01, 0.02, 0.0], [0.01, -0.01, 0.02])
    assert h["headroom"] is None and h["note"] == "the ceiling not above ce: headroom undefined"
    h = headroom_recovered([0.01, 0.02], [0.05, 0.06], ceiling="ceiling-kd")
    assert h["headroom"] is None and "cannot tell whether ceiling-kd is above ce" in h["note"]
    h = headroom_recovered([0.02, 0.04, 0.03], [0.05, 0.07, 0.06])
    assert h["headroom"] == pytest.approx(0.5) and h["note"] is None


# ------------------------------------------------------------------ the tables
CE = [0.70, 0.72, 0.69, 0.71, 0.73]
GAIN = {"ceiling-kd": [0.10, 0.12, 0.09, 0.11, 0.10], "ceiling-pl": [0.08, 0.09, 0.07, 0.10, 0.08],
        "fa": [0.04, 0.06, 0.03, 0.05, 0.05], "entmin": [0.0, 0.01, -0.01, 0.0, 0.01],
        "ce (A/A)": [0.01, -0.01, 0.0, 0.01, -0.01]}


def _runs(methods, cell="student_fraction=0.05", values=None):
    values = values or {"student_fraction": 0.05}
    out = []
    for s, base in enumerate(CE):
        for m in ["ce"] + list(methods):
            acc = base + (GAIN[m][s] if m != "ce" else 0.0)
            out.append({"cell": cell, "values": values, "method": m, "seed": s, "student_test_acc": acc,
                        "student_test_acc_last": acc, "teacher_test_acc": 0.85, "wall_s": 1.0,
                        "student_unlabelled": True, "dir": f"runs/{cell}/{m}/seed{s}"})
    return out


def test_paired_summary_gives_the_ceiling_row_and_each_methods_headroom():
    rows = {r["method"]: r for r in paired_summary(_runs(["ceiling-kd", "fa", "entmin", "ce (A/A)"]))}
    ceil = rows["ceiling-kd"]
    assert ceil["is_ceiling"] and "headroom" not in ceil
    assert ceil["delta_mean"] == pytest.approx(np.mean(GAIN["ceiling-kd"])) and ceil["significant"]
    fa = rows["fa"]
    f = fieller_interval(GAIN["fa"], GAIN["ceiling-kd"])
    assert fa["ceiling"] == "ceiling-kd" and fa["headroom"] == pytest.approx(np.mean(GAIN["fa"]) / np.mean(GAIN["ceiling-kd"]))
    assert (fa["headroom_ci_low"], fa["headroom_ci_high"]) == pytest.approx((f["ci_low"], f["ci_high"]), abs=1e-9)
    assert fa["headroom_ci_low"] < fa["headroom"] < fa["headroom_ci_high"] and fa["headroom_n"] == 5
    assert rows["entmin"]["headroom"] == pytest.approx(np.mean(GAIN["entmin"]) / np.mean(GAIN["ceiling-kd"]))
    assert "headroom" not in rows["ce (A/A)"] and "headroom" not in rows["ce"]


def test_the_designated_ceiling_falls_back_to_pl_and_can_be_chosen():
    rows = {r["method"]: r for r in paired_summary(_runs(["ceiling-pl", "fa"]))}
    assert rows["fa"]["ceiling"] == "ceiling-pl" and rows["ceiling-pl"]["is_ceiling"]
    both = _runs(["ceiling-kd", "ceiling-pl", "fa"])
    assert {r["method"]: r for r in paired_summary(both)}["fa"]["ceiling"] == "ceiling-kd"
    assert {r["method"]: r for r in paired_summary(both, ceiling="ceiling-pl")}["fa"]["ceiling"] == "ceiling-pl"
    assert "ceiling" not in {r["method"]: r for r in paired_summary(both, ceiling=None)}["fa"]


def test_bench_tables_show_the_ceiling_and_the_headroom_column():
    runs = _runs(["ceiling-kd", "fa", "ce (A/A)"])
    comps = paired_summary(runs)
    res = {"task": "synthetic", "seeds": list(range(5)), "baseline": "ce", "axes": ["student_fraction"],
           "summary": [{"cell": r["cell"], "values": r["values"], "method": r["method"], "test_acc_best_val_mean": 0.7,
                        "test_acc_best_val_std": 0.01, "test_acc_last_mean": 0.7, "test_acc_last_std": 0.01,
                        "teacher_test_acc_mean": 0.85, "wall_s_mean": 1.0} for r in comps],
           "comparisons": comps, "runs": runs}
    md = format_bench_markdown(res)
    assert "| student_fraction | method | Δ vs ce [95 % CI] w/l · MDE | verdict | headroom recovered |" in md
    fa = {r["method"]: r for r in comps}["fa"]
    want = f"{100 * fa['headroom']:.0f} % [{100 * fa['headroom_ci_low']:.0f} %, {100 * fa['headroom_ci_high']:.0f} %]"
    assert any(line.startswith("| 0.05 | `fa` |") and line.endswith(f"| {want} |") for line in md.splitlines())
    assert any(line.startswith("| 0.05 | *ceiling-kd* (paired ceiling) | **+") and line.endswith("| reference |")
               for line in md.splitlines())
    assert "Fieller's 95 % interval" in md
    csv = bench_csv(res).splitlines()
    head = csv[0].split(",")
    assert {"headroom", "headroom_ci_low", "headroom_ci_high", "headroom_note", "ceiling"} <= set(head)
    row = dict(zip(head, next(line for line in csv if ",fa," in line).split(",")))
    assert float(row["headroom"]) == pytest.approx(fa["headroom"])


def test_sweep_tables_show_the_ceiling_column_and_words_for_an_undefined_headroom():
    flat = {"student_fraction": 1.0}
    runs = _runs(["ceiling-kd", "fa"])
    for r in _runs(["ceiling-kd", "fa"]):  # in this cell the ceiling is level with ce: nothing to recover
        if r["method"] == "ceiling-kd":
            r["student_test_acc"] = CE[r["seed"]] + GAIN["entmin"][r["seed"]]
        runs.append(dict(r, cell="student_fraction=1.0", values=flat))
    cells = paired_summary(runs)
    res = {"task": "synthetic", "baseline": "ce", "methods": ["ce", "fa"], "grid": {"student_fraction": [0.05, 1.0]},
           "seeds": list(range(5)), "metric": "student_test_acc", "cells": cells, "runs": runs}
    md = format_sweep_markdown(res)
    assert "| student_fraction | `ce` acc | Δ `ceiling-kd` (paired ceiling) | Δ `fa` |" in md
    assert "| 1.0 | `fa` | `ceiling-kd` | ceiling-kd not above ce: headroom undefined |" in md
    assert "| 0.05 | `fa` | `ceiling-kd` | 4" in md  # 46 % [...]: a number where the ceiling is above ce
    undefined = next(r for r in cells if r["cell"] == "student_fraction=1.0" and r["method"] == "fa")
    assert undefined["headroom"] is None and undefined["headroom_ci_low"] is None


# ------------------------------------------------------------------ how many seeds a verdict needs
def _null_rate(n, n_test=60, sims=3000, seed=0):
    """(share of 'significant' verdicts, share of 'cannot tell') for a method identical to the baseline."""
    rng = np.random.default_rng(seed)
    sig = unsure = 0
    for _ in range(sims):
        p = rng.uniform(0.6, 0.8, size=n)
        a = (rng.binomial(n_test, p) / n_test).astype(np.float32).astype(float)
        b = (rng.binomial(n_test, p) / n_test).astype(np.float32).astype(float)
        r = paired_difference(a - b, scale=max(a.max(), b.max()))
        sig += r["significant"]
        unsure += r["cannot_tell"] is not None
    return sig / sims, unsure / sims


def test_verdicts_are_calibrated_from_three_seeds_and_withheld_below():
    rate, unsure = _null_rate(3)
    assert abs(rate - 0.05) < 0.015 and unsure < 0.01  # quantised accuracies, yet a 5 % test
    assert _null_rate(2, sims=300) == (0.0, 1.0)  # two seeds: never a verdict


def test_control_tables_end_with_the_headroom_column_only_where_a_ceiling_ran():
    # The published positive control: every method under the three teacher controls, the paired ceiling beside.
    from pathlib import Path

    from cmkd_lab.results import format_control_markdown, load_bench
    from cmkd_lab.results.tables import headroom_text
    res = load_bench(Path(__file__).resolve().parents[1] / "docs" / "results" / "controls_synthetic_shared.json")
    cell = [r for r in res["comparisons"] if (r.get("values") or {}).get("teacher_control", "none") == "none"
            and not r.get("aliased")]
    plain = format_control_markdown(res, rows=res["control_table"])
    md = format_control_markdown(res, rows=res["control_table"], headroom=cell)
    table = [line for line in md.splitlines() if line.startswith("|")]
    head, delim, body = table[0], table[1], table[2:]
    assert head.endswith("| headroom recovered, real teacher [95 % CI] |") and "headroom" not in plain
    assert delim.count("---|") == head.count("|") - 1  # one delimiter per column: a Markdown reader sees a table
    rows = {line.split("|")[1].strip().strip("`"): line for line in body}
    assert rows["ceiling-kd"].endswith("| reference |")
    want = headroom_text(next(r for r in cell if r["method"] == "align-pl"))
    assert want.endswith("]") and rows["align-pl"].endswith(f"| {want} |")
    assert format_control_markdown(res, rows=res["control_table"], headroom=[r for r in cell
                                                                             if not r.get("is_ceiling")]) == plain


def test_compare_methods_is_the_rule_of_every_delta_in_the_tables():
    # notebook 05's "Δ vs entmin" column is computed by the same rule as each "Δ vs ce"
    from cmkd_lab.results import paired_summary
    from cmkd_lab.results.summary import compare_methods
    runs = _runs(["fa", "entmin"])
    fa = {r["method"]: r for r in paired_summary(runs)}["fa"]
    d = compare_methods(runs, "student_fraction=0.05", "fa", "ce")
    assert (d["mean"], d["ci_low"], d["ci_high"]) == pytest.approx((fa["delta_mean"], fa["ci_low"], fa["ci_high"]))
    vs = compare_methods(runs, "student_fraction=0.05", "fa", "entmin")
    assert vs["mean"] == pytest.approx(np.mean(np.subtract(GAIN["fa"], GAIN["entmin"])))
    assert compare_methods(runs, "other cell", "fa", "ce") is None
