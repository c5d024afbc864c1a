"""The sweep (regime map): grid parsing, paired statistics (and the minimum detectable effect) against
closed forms and scipy, the A/A noise floor, the store's policy (cached, stale, other options), teacher
sharing, executors giving the same numbers, the CLI, the figures."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cmkd_lab import DistillConfig, load_task
from cmkd_lab.cli import main
from cmkd_lab.experiments import parse_grid, run_sweep, split_grid
from cmkd_lab.results import grid_axes
from cmkd_lab.results import (early_diagnostics, minimum_detectable_effect, paired_difference, paired_summary,
                              predictor_table, seeds_needed, spearman)

SMALL = {"n_teacher": 240, "n_student": 240}
CFG = DistillConfig(epochs=2, teacher_epochs=2, batch_size=32)
GRID = {"student_fraction": [0.25, 1.0], "gap": [0.0, 2.0]}
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    logs = []
    # 3 seeds: the fewest from which a comparison gives an interval and a verdict
    res = run_sweep("synthetic", ["ce", "fa"], GRID, SEEDS, out, CFG, task_kwargs=SMALL, workers=1, log=logs.append)
    return out, res, logs


# ------------------------------------------------------------------ the grid
def test_parse_grid_values_and_linked_axes():
    g = parse_grid(["student_fraction=0.02,1", "cost=l2,cosine", "student_fraction:epochs=0.1:40,1:15"][:2])
    assert g == {"student_fraction": [0.02, 1], "cost": ["l2", "cosine"]}
    g = parse_grid(["student_fraction:epochs=0.1:40,1:15", "gap=0"])
    assert g == {"student_fraction:epochs": [[0.1, 40], [1, 15]], "gap": [0]}
    assert grid_axes(g) == [("student_fraction:epochs", ["student_fraction", "epochs"], [(0.1, 40), (1, 15)]),
                            ("gap", ["gap"], [(0,)])]
    assert split_grid(g) == (["student_fraction", "epochs"], ["gap"])


@pytest.mark.parametrize("items,match", [
    (["gap"], "--grid takes key=v1,v2"),
    (["gap="], "at least one value"),
    (["gap=1", "gap=2"], "given twice"),
    (["a:b=1:2,3"], "needs 2 parts"),
])
def test_parse_grid_errors(items, match):
    with pytest.raises(ValueError, match=match):
        parse_grid(items)


@pytest.mark.parametrize("grid,match", [
    ({"seed": [0, 1]}, "must not vary 'seed'"),
    ({"gap": []}, "non-empty list"),
    ({"gap": [1, 1]}, "repeats a value"),
    ({"gap": [1], "eps:gap": [[0.1, 2]]}, "appears on two axes"),
    ({"a:b": [[1, 2], [3]]}, "must be a list of 2"),
])
def test_split_grid_errors(grid, match):
    with pytest.raises(ValueError, match=match):
        split_grid(grid)


# --------------------------------------------------------------- statistics
def test_paired_difference_closed_form_and_scipy():
    d = [0.02, 0.03, 0.04]
    r = paired_difference(d)
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t_{0.975, 2} · s / sqrt(n), s = 0.01
    assert r["mean"] == pytest.approx(0.03) and r["std"] == pytest.approx(0.01)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((0.03 - half, 0.03 + half))
    base = np.array([0.7, 0.8, 0.75])
    assert r["p_value"] == pytest.approx(stats.ttest_rel(base + np.array(d), base).pvalue)
    assert (r["wins"], r["losses"], r["ties"], r["significant"]) == (3, 0, 0, True)
    r = paired_difference([-0.05, 0.04, 0.0, 0.01])
    assert (r["wins"], r["losses"], r["ties"], r["significant"]) == (2, 1, 1, False)
    assert r["ci_low"] < 0 < r["ci_high"]
    one = paired_difference([0.1])
    assert one["ci_low"] is None and one["p_value"] is None and not one["significant"]
    # Zero spread is no evidence (issue 25, fault 5): no interval, no p-value, never significant.
    flat = paired_difference([0.02, 0.02, 0.02])
    assert flat["ci_low"] is None and flat["p_value"] is None and not flat["significant"]
    assert "float resolution" in flat["cannot_tell"]
    two = paired_difference([0.02, 0.03])  # two seeds: too few for a verdict
    assert two["ci_low"] is None and not two["significant"] and "at least 3" in two["cannot_tell"]
    with pytest.raises(ValueError, match="diffs must be"):
        paired_difference([])
    with pytest.raises(ValueError, match="level must be"):
        paired_difference([1, 2], level=1.5)


def test_minimum_detectable_effect_closed_form_and_power():
    # (t_{.975, n-1} + t_{.8, n-1}) · s / sqrt(n), n = 5, s = 0.01
    mde = (stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)) * 0.01 / math.sqrt(5)
    assert minimum_detectable_effect(0.01, 5) == pytest.approx(mde)
    assert paired_difference([0.0, 0.01, -0.01, 0.005, -0.005])["mde"] == pytest.approx(
        minimum_detectable_effect(float(np.std([0.0, 0.01, -0.01, 0.005, -0.005], ddof=1)), 5))
    assert minimum_detectable_effect(0.01, 1) is None
    # A true effect equal to the MDE is detected with the stated power: the non-central t at the MDE.
    n, sd = 8, 0.02
    d = minimum_detectable_effect(sd, n)
    crit = stats.t.ppf(0.975, n - 1)
    power = stats.nct.sf(crit, n - 1, d / (sd / math.sqrt(n)))
    assert 0.78 < power < 0.86  # ≈ 0.8 (the t-sum formula is the standard approximation)
    # seeds_needed: the first n whose MDE is within the effect
    n1 = seeds_needed(0.02, 0.01)
    assert minimum_detectable_effect(0.02, n1) <= 0.01 < minimum_detectable_effect(0.02, n1 - 1)
    assert seeds_needed(0.0, 0.01) == 2 and seeds_needed(None, 0.01) is None


def test_spearman_small_samples_use_the_exact_permutation_p_value():
    # A perfect ranking of 5 points: 2 of the 5! = 120 orderings are as extreme (ρ = ±1), p = 2/120.
    rho, p = spearman([1, 2, 3, 4, 5], [0.1, 0.4, 0.5, 0.9, 1.0])
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 120)
    x, y = np.arange(12.0), np.array([3, 1, 2, 5, 4, 7, 6, 9, 8, 12, 10, 11.0])
    ref = stats.spearmanr(x, y)  # from 10 points on: scipy's value
    assert spearman(x, y) == pytest.approx((ref.statistic, ref.pvalue))
    with pytest.raises(ValueError, match="same length >= 3"):
        spearman([1, 2], [1, 2])


def _run(cell, method, seed, acc, **early):
    return {"cell": cell, "values": {"x": cell}, "method": method, "seed": seed, "student_test_acc": acc,
            "teacher_test_acc": 0.9, "early": {"2": {"epoch": 2.0, "val_acc": acc, **early}}}


def test_paired_summary_pairs_by_seed():
    runs = [_run("a", "ce", s, 0.5 + 0.1 * s) for s in range(3)] + \
           [_run("a", "fa", s, 0.5 + 0.1 * s + d) for s, d in enumerate([0.02, 0.04, 0.03])] + \
           [_run("a", "fa", 9, 0.1)]  # no baseline for seed 9: counted in accuracy, not in the differences
    rows = {r["method"]: r for r in paired_summary(runs)}
    assert rows["ce"]["n_seeds"] == 3 and "delta_mean" not in rows["ce"]
    fa = rows["fa"]
    assert fa["n_seeds"] == 4 and fa["n_pairs"] == 3
    assert fa["delta_mean"] == pytest.approx(0.03) and fa["verdict"] == "helps"


def test_predictors_spearman_and_missing_keys():
    deltas = [0.05, -0.02, 0.01, 0.03, -0.04]
    runs = []
    for s, d in enumerate(deltas):
        runs.append(_run("a", "ce", s, 0.5, purity=0.2))
        early = {"purity": 0.2 + d, "fa": 2.0 * (s + 1), "ce": 1.0, "flat": 1.0}
        if s == 4:
            early.pop("purity")  # a diagnostic missing in one run is skipped for that run only
        runs.append(_run("a", "fa", s, 0.5 + d, **early))
    points, preds = predictor_table(runs, epoch=2)
    assert [p["delta"] for p in points] == pytest.approx(deltas)
    by = {p["diagnostic"]: p for p in preds}
    assert by["purity"]["rho"] == pytest.approx(1.0) and by["purity"]["n"] == 4
    assert by["fa_over_ce"]["rho"] == pytest.approx(stats.spearmanr([2, 4, 6, 8, 10], deltas).statistic)
    _, p_exact = spearman([2, 4, 6, 8, 10], deltas)  # 5 points: the exact permutation p-value
    assert by["fa_over_ce"]["p_value"] == pytest.approx(p_exact)
    assert by["flat"]["rho"] is None and "p_bonferroni" not in by["flat"]  # constant: undefined, not 0
    n_tested = sum(p["method"] == "fa" and p["p_value"] is not None for p in preds)
    assert by["fa_over_ce"]["p_bonferroni"] == pytest.approx(min(1.0, p_exact * n_tested))
    assert by["early_val_delta"]["rho"] == pytest.approx(1.0)
    assert "ce:purity" in points[0]["diag"] and "val_acc" not in points[0]["diag"]
    # An epoch beyond the recorded ones falls back to the last recorded epoch; the OT term is weighted by λ.
    assert early_diagnostics(runs[1], runs[0], epoch=5)["fa_over_ce"] == pytest.approx(2.0)
    assert early_diagnostics(dict(runs[1], lambda_fa=0.1), runs[0], epoch=2)["fa_over_ce"] == pytest.approx(0.2)


# ---------------------------------------------------------------- the sweep
def test_student_fraction_end_to_end(tmp_path):
    """--student-fraction on `run`: stratified, the same subset for a seed whatever the method."""
    kept = {}
    for m in ("ce", "fa"):
        out = tmp_path / m
        assert main(["run", "--task", "synthetic", "--method", m, "--epochs", "1", "--teacher-epochs", "1",
                     "--fast", "--student-fraction", "0.1", "--out", str(out), "--quiet"]) == 0
        r = json.loads((out / "result.json").read_text())
        assert r["student_fraction"] == 0.1
        kept[m] = r["task_info"]["student_train_kept"]
    out = tmp_path / "bench"  # and on `bench`: every method of a seed trains on that same subset
    assert main(["bench", "--task", "synthetic", "--methods", "ce,fa", "--seeds", "2", "--epochs", "1",
                 "--teacher-epochs", "1", "--fast", "--student-fraction", "0.1", "--out", str(out), "--quiet"]) == 0
    for seed in (0, 1):
        runs = [json.loads((out / "runs" / "unpaired" / m / f"seed{seed}" / "result.json").read_text())
                for m in ("ce", "fa")]
        assert {r["student_fraction"] for r in runs} == {0.1}
        assert runs[0]["task_info"]["student_train_kept"] == runs[1]["task_info"]["student_train_kept"]
        if seed == 0:  # the seed-0 subset of `run` above (the synthetic data themselves depend on the seed)
            assert runs[0]["task_info"]["student_train_kept"] == kept["ce"]
    task = load_task("synthetic", seed=0, fast=True)
    y = task.student["train"].y
    sub = task.with_student_fraction(0.1, seed=0).student["train"].y
    assert kept["ce"] == kept["fa"] == len(sub)
    for k in range(task.num_classes):  # per class: round(0.1 · n_k), at least one
        assert (sub == k).sum() == max(1, round(0.1 * (y == k).sum()))
    a = task.with_student_fraction(0.1, seed=0).student["train"].x
    b = task.with_student_fraction(0.1, seed=0).student["train"].x
    c = task.with_student_fraction(0.1, seed=1).student["train"].x
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sweep_writes_tables(swept):
    out, res, logs = swept
    for f in ("sweep.json", "cells.csv", "predictors.csv", "sweep.md"):
        assert (out / f).stat().st_size > 0
    # 4 cells × (ce, fa and the A/A control of ce) × 3 seeds
    assert len(res["runs"]) == 4 * 3 * 3 and all(r["status"] == "completed" for r in res["runs"])
    assert res["grid_kinds"] == {"student_fraction": "config", "gap": "task"}
    from cmkd_lab.results import compact_sweep, load_sweep, made_by_this_code
    assert made_by_this_code(load_sweep(out)) is True and "source" not in compact_sweep(load_sweep(out))
    cells = {(r["cell"], r["method"]): r for r in res["cells"]}
    assert len(cells) == 12
    by = {(r["cell"], r["method"], r["seed"]): r for r in res["runs"]}
    row = cells[("student_fraction=0.25,gap=0.0", "fa")]
    d = [by[("student_fraction=0.25,gap=0.0", "fa", s)]["student_test_acc"]
         - by[("student_fraction=0.25,gap=0.0", "ce", s)]["student_test_acc"] for s in SEEDS]
    assert row["delta_mean"] == pytest.approx(np.mean(d))
    assert {r["student_fraction"] for r in res["runs"]} == {0.25, 1.0}
    # A task key reached the generator; the early records hold the diagnostics of the first epochs.
    r = json.loads((out / "runs" / "student_fraction=0.25,gap=2.0" / "fa" / "seed1" / "result.json").read_text())
    assert r["task_info"]["knobs"]["gap"] == 2.0 and r["student_fraction"] == 0.25
    assert set(by[("student_fraction=0.25,gap=2.0", "fa", 1)]["early"]) == {"1", "2"}
    assert "fa_over_ce" in res["points"][0]["diag"]
    md = (out / "sweep.md").read_text()
    assert "| student_fraction | gap | `ce` acc | A/A Δ (noise floor) | Δ `fa` |" in md and "MDE" in md
    # The noise floor of a cell: ce's spread and the A/A difference (ce retrained with other training noise).
    aa = [by[("student_fraction=0.25,gap=0.0", "ce (A/A)", s)]["student_test_acc"]
          - by[("student_fraction=0.25,gap=0.0", "ce", s)]["student_test_acc"] for s in SEEDS]
    assert row["noise_aa_mean"] == pytest.approx(np.mean(aa))
    assert row["noise_baseline_std"] == pytest.approx(np.std(
        [by[("student_fraction=0.25,gap=0.0", "ce", s)]["student_test_acc"] for s in SEEDS], ddof=1))
    assert row["mde"] == pytest.approx(minimum_detectable_effect(np.std(d, ddof=1), 3))
    aa_run = json.loads((out / "runs" / "student_fraction=0.25,gap=0.0" / "ce-aa" / "seed0" / "result.json").read_text())
    ce_run = json.loads((out / "runs" / "student_fraction=0.25,gap=0.0" / "ce" / "seed0" / "result.json").read_text())
    assert aa_run["config"]["replicate"] == 1 and ce_run["config"]["replicate"] == 0
    assert aa_run["teacher_test_acc"] == ce_run["teacher_test_acc"]  # the same teacher and data, other noise
    assert aa_run["task_info"] == ce_run["task_info"] and aa_run["history"] != ce_run["history"]
    # The A/A control is not a method: no predictor points for it.
    assert not any(p["method"] == "ce (A/A)" for p in res["points"])


def test_sweep_shares_teachers_per_seed(tmp_path, monkeypatch):
    """gap and student_fraction leave the teacher side unchanged: one teacher per seed."""
    monkeypatch.setenv("CMKD_LAB_CACHE", str(tmp_path / "cache"))
    run_sweep("synthetic", ["ce"], GRID, [0, 1], tmp_path / "o", CFG, task_kwargs=SMALL, workers=1,
              diagnostics=False, log=lambda m: None)
    assert len(list((tmp_path / "cache" / "teachers").glob("*.pt"))) == 2
    # teacher_noise changes the teacher view: one teacher per value; 0.1 is the default, whose
    # seed-0 teacher is already cached (the cache keys on the teacher side only).
    run_sweep("synthetic", ["ce"], {"teacher_noise": [0.1, 0.5]}, [0], tmp_path / "o2", CFG, task_kwargs=SMALL,
              workers=1, diagnostics=False, log=lambda m: None)
    assert len(list((tmp_path / "cache" / "teachers").glob("*.pt"))) == 2 + 1


def test_sweep_is_cached_and_refuses_changed_options(swept, tmp_path):
    out, res, _ = swept
    logs = []
    again = run_sweep("synthetic", ["ce", "fa"], GRID, SEEDS, out, CFG, task_kwargs=SMALL, workers=1,
                      log=logs.append)
    assert any("36 runs: 36 read from the store, 0 to run" in m for m in logs)
    assert [r["student_test_acc"] for r in again["runs"]] == [r["student_test_acc"] for r in res["runs"]]
    # Another epochs count in the same folder is another experiment: refused, never mixed in or replaced.
    small = tmp_path / "small"
    run_sweep("synthetic", ["ce"], {"gap": [0.0]}, [0], small, CFG, task_kwargs=SMALL, workers=1,
              log=lambda m: None)
    with pytest.raises(ValueError, match=r"made with other options .*differs in \['config'\].*--overwrite"):
        run_sweep("synthetic", ["ce"], {"gap": [0.0]}, [0], small, CFG.replace(epochs=1), task_kwargs=SMALL,
                  workers=1, log=lambda m: None)
    logs = []
    run_sweep("synthetic", ["ce"], {"gap": [0.0]}, [0], small, CFG.replace(epochs=1), task_kwargs=SMALL,
              workers=1, overwrite=True, log=logs.append)
    assert any("0 read from the store, 2 to run" in m for m in logs)


def test_a_stale_run_is_never_read_back(tmp_path, monkeypatch):
    """A run made by other code (another code version) or on other data runs again, by itself."""
    import cmkd_lab.experiments.engine as engine
    out = tmp_path / "s"
    kw = dict(task_kwargs=SMALL, workers=1, aa=False)
    first = run_sweep("synthetic", ["ce"], {"gap": [0.0]}, [0], out, CFG, log=lambda m: None, **kw)
    logs = []
    monkeypatch.setattr(engine, "code_version", lambda: "another-version")
    again = run_sweep("synthetic", ["ce"], {"gap": [0.0]}, [0], out, CFG, log=logs.append, **kw)
    assert any("1 to run (1 stale: made by other code or on other data)" in m for m in logs)
    assert json.loads((out / "runs" / "gap=0.0" / "ce" / "seed0" / "job.json").read_text())["code_version"] == \
        "another-version"
    assert again["runs"][0]["student_test_acc"] == first["runs"][0]["student_test_acc"]  # same code in fact
    monkeypatch.undo()
    # Other data under the same options (the task's arrays changed): stale as well.
    monkeypatch.setattr("cmkd_lab.data.task.CrossModalTask.fingerprint", lambda self, sides=("teacher", "student"): "x")
    logs = []
    run_sweep("synthetic", ["ce"], {"gap": [0.0]}, [0], out, CFG, log=logs.append, **kw)
    assert any("1 stale" in m for m in logs)


def test_dask_and_process_pool_give_the_serial_numbers(swept, tmp_path):
    distributed = pytest.importorskip("distributed")
    _, res, _ = swept
    serial = {(r["cell"], r["method"], r["seed"]): r["student_test_acc"] for r in res["runs"]}
    grid = {"student_fraction": [0.25], "gap": [2.0]}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        r = run_sweep("synthetic", ["ce", "fa"], grid, [0, 1], tmp_path / "dask", CFG, task_kwargs=SMALL,
                      scheduler=client, log=lambda m: None)
    assert r["executor"] == "dask"
    assert {(x["cell"], x["method"], x["seed"]): x["student_test_acc"] for x in r["runs"]} == \
        {k: v for k, v in serial.items() if k[0] == "student_fraction=0.25,gap=2.0" and k[2] in (0, 1)}
    r = run_sweep("synthetic", ["ce", "fa"], grid, [1], tmp_path / "pool", CFG, task_kwargs=SMALL, workers=2,
                  log=lambda m: None)
    assert r["executor"].startswith("process pool")
    assert {(x["cell"], x["method"], x["seed"]): x["student_test_acc"] for x in r["runs"]} == \
        {k: v for k, v in serial.items() if k[0] == "student_fraction=0.25,gap=2.0" and k[2] == 1}


def test_sweep_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        run_sweep("synthetic", ["nope"], {}, [0], tmp_path, CFG)
    with pytest.raises(ValueError, match=r"grid key\(s\) \['gapp'\] are neither DistillConfig options nor options "
                                         r"of task 'synthetic' \(gap, label_shift"):
        run_sweep("synthetic", ["ce"], {"gapp": [1]}, [0], tmp_path, CFG, log=lambda m: None)
    # A known name with a bad value names the cell and the value, not the name.
    with pytest.raises((ValueError, TypeError), match=r"grid cell gap=abc: task 'synthetic': gap must .*'abc'"):
        run_sweep("synthetic", ["ce"], {"gap": ["abc"]}, [0], tmp_path, CFG, log=lambda m: None)
    with pytest.raises(ValueError, match="student_fraction=0.0.*student_fraction must be"):
        run_sweep("synthetic", ["ce"], {"student_fraction": [0.0]}, [0], tmp_path, CFG)
    with pytest.raises(ValueError, match="scheduler must be"):
        run_sweep("synthetic", ["ce"], {}, [0], tmp_path, CFG, task_kwargs=SMALL, scheduler="nowhere",
                  log=lambda m: None)
    with pytest.raises(ValueError, match="seeds must hold"):
        run_sweep("synthetic", ["ce"], {}, [], tmp_path, CFG)


def test_cli_sweep(tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(["sweep", "--task", "synthetic", "--fast", "--methods", "fa", "--grid", "student_fraction=0.5,1",
               "--seeds", "2", "--epochs", "1", "--teacher-epochs", "1", "--workers", "1", "--no-diagnostics",
               "--out", str(out), "--quiet"])
    assert rc == 0
    res = json.loads((out / "sweep.json").read_text())
    assert res["methods"] == ["ce", "fa"] and len(res["runs"]) == 12 and res["seeds"] == [0, 1]
    assert "Δ `fa`" in capsys.readouterr().out
    assert main(["sweep", "--grid", "seed=1,2", "--out", str(out)]) == 2
    assert "must not vary 'seed'" in capsys.readouterr().err
    assert main(["sweep", "--dask", "--scheduler", "tcp://127.0.0.1:1", "--out", str(out)]) == 2
    assert "not both" in capsys.readouterr().err


# ------------------------------------------------------------------ figures
def test_phase_diagram_bars_and_heatmap(swept):
    from cmkd_lab.viz import phase_diagram
    _, res, _ = swept
    rows = {(r["cell"], r["method"]): r for r in res["cells"]}
    fig = phase_diagram(res, fix={"gap": 0.0})  # 1-D: bars with the intervals as error bars
    bar = fig.data[0]
    assert bar.type == "bar" and list(bar.x) == ["0.25", "1.0"]
    r = rows[("student_fraction=0.25,gap=0.0", "fa")]
    assert bar.y[0] == pytest.approx(100 * r["delta_mean"])
    assert bar.error_y.array[0] == pytest.approx(100 * (r["ci_high"] - r["delta_mean"]))
    fig = phase_diagram(res)  # 2-D: one heatmap per method
    hm = fig.data[0]
    assert hm.type == "heatmap" and list(hm.y) == ["0.25", "1.0"] and list(hm.x) == ["0.0", "2.0"]
    assert hm.z[1][1] == pytest.approx(100 * rows[("student_fraction=1.0,gap=2.0", "fa")]["delta_mean"])
    with pytest.raises(ValueError, match="fix must name grid axes"):
        phase_diagram(res, fix={"nope": 1})
    with pytest.raises(ValueError, match="method must be among"):
        phase_diagram(res, method="ce")


def test_phase_diagram_needs_fix_beyond_two_axes(swept):
    from cmkd_lab.viz import phase_diagram
    _, res, _ = swept
    res3 = dict(res, grid={**res["grid"], "noise": [0.1, 0.3]})
    with pytest.raises(ValueError, match="pass fix="):
        phase_diagram(res3)


def test_diagnostic_figures(swept):
    from cmkd_lab.viz import diagnostic_scatter, predictor_bars
    _, res, _ = swept
    pts = [p for p in res["points"] if "fa_over_ce" in p["diag"]]
    fig = diagnostic_scatter(res, "fa_over_ce", method="fa")
    assert sum(len(t.x) for t in fig.data) == len(pts)
    rho, pv = spearman([p["diag"]["fa_over_ce"] for p in pts], [p["delta"] for p in pts])
    assert f"{rho:+.2f}" in fig.layout.title.text and f"p = {pv:.2g}" in fig.layout.title.text
    with pytest.raises(ValueError, match="diagnostic must be one measured"):
        diagnostic_scatter(res, "nope")
    # fix keeps only the matching cells; ρ is over those points; the legend names the axes still varying
    kept = [p for p in pts if p["method"] == "fa" and p["values"]["gap"] == 2.0]
    fig = diagnostic_scatter(res, "fa_over_ce", method="fa", fix={"gap": 2.0})
    assert sum(len(t.x) for t in fig.data) == len(kept) and "(gap=2.0)" in fig.layout.title.text
    assert {t.name for t in fig.data} == {f"student_fraction={p['values']['student_fraction']}" for p in kept}
    with pytest.raises(ValueError, match="fix must name grid axes"):
        diagnostic_scatter(res, "fa_over_ce", fix={"nope": 1})
    fig = predictor_bars(res, method="fa", top=5)
    assert len(fig.data[0].x) <= 5 and all(-1 <= x <= 1 for x in fig.data[0].x)
    with pytest.raises(ValueError, match="method must be one with predictors"):
        predictor_bars(res, method="zzz")


def test_compact_copy_reads_like_the_full_result(swept, tmp_path):
    from cmkd_lab.results import compact_sweep, load_sweep
    from cmkd_lab.viz import phase_diagram
    _, res, _ = swept
    small = compact_sweep(res, digits=4)
    p = tmp_path / "c.json"
    p.write_text(json.dumps(small))
    back = load_sweep(p)
    assert all("early" not in r for r in back["runs"]) and len(back["points"]) == len(res["points"])
    a, b = phase_diagram(res).data[0].z, phase_diagram(back).data[0].z
    assert np.allclose(np.array(a, dtype=float), np.array(b, dtype=float), rtol=1e-3)
    with pytest.raises(ValueError, match="does not exist"):
        load_sweep(tmp_path / "missing")


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path):
    """A run that raises (here: a corrupted checkpoint left by a killed run) is listed under ``failed``
    with its error, and the other runs still complete."""
    run_sweep("synthetic", ["ce"], {"gap": [0]}, [0], tmp_path, CFG, task_kwargs=SMALL, workers=1,
              diagnostics=False, log=lambda m: None)
    bad = tmp_path / "runs" / "gap=0" / "ce" / "seed0"
    (bad / "result.json").unlink()  # as if killed: only the checkpoint is left, and it is damaged
    (bad / "checkpoint.pt").write_bytes(b"not a checkpoint")
    res = run_sweep("synthetic", ["ce"], {"gap": [0, 1]}, [0], tmp_path, CFG, task_kwargs=SMALL, workers=1,
                    diagnostics=False, log=lambda m: None)
    assert [(f["cell"], f["seed"]) for f in res["failed"]] == [("gap=0", 0)]
    assert res["failed"][0]["error"].startswith("ValueError: checkpoint") and "delete it" in res["failed"][0]["error"]
    # the A/A control of the broken cell and both runs of the other cell finish
    assert {(r["cell"], r["method"]) for r in res["runs"]} == {("gap=0", "ce (A/A)"), ("gap=1", "ce"),
                                                             ("gap=1", "ce (A/A)")}
    assert "Failed: ce (setting gap=0)" in (tmp_path / "sweep.md").read_text()
