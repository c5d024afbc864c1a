"""Issue 25's inputs in the grid's area, kept as regression tests: a variant that overrides the seed (fault 1),
a foreign run read back as a bench's own (fault 2), a verdict from zero spread (fault 5), and the unclear cases
(`run --resume` on a missing folder, `report DIR/result.json`, a 300-character --out, a baseline that cannot
run, a bench file of the wrong shape, names that become paths)."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from cmkd_lab import DistillConfig
from cmkd_lab.cli import main
from cmkd_lab.experiments import run_bench, run_sweep
from cmkd_lab.results import format_bench_markdown, load_bench, paired_difference, paired_summary

CFG = DistillConfig(epochs=1, teacher_epochs=1, diagnostics_every=0)
FAST = ["--task", "synthetic", "--fast", "--epochs", "1", "--teacher-epochs", "1", "--set", "diagnostics_every=0",
        "--quiet"]


def _one_line_error(capsys, args, rc=2):
    assert main(args) == rc
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ------------------------------------------------------------------ fault 1: a variant names the run
@pytest.mark.parametrize("methods,match", [
    (["ce", "fa[seed=3]"], r"method variant 'fa\[seed=3\]' sets 'seed', which names the run \(every method already "
                           r"runs every seed \(use --seeds N\)\); remove seed= from the variant"),
    (["ce", "fa[replicate=1]"], r"sets 'replicate', which names the run"),
    (["ce", "fa[pairing=paired]"], r"sets 'pairing', which names the run \('pairing' is an axis of this grid"),
    (["ce", "fa[teacher_control=random]"], r"sets 'teacher_control'"),
])
def test_a_bench_variant_cannot_set_what_names_its_run(tmp_path, methods, match):
    with pytest.raises(ValueError, match=match):
        run_bench("synthetic", methods, ["unpaired"], [0, 1], tmp_path, CFG, fast=True, log=lambda m: None)
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_a_sweep_variant_cannot_set_the_seed_or_a_grid_key(tmp_path):
    with pytest.raises(ValueError, match=r"'fa\[seed=7\]' sets 'seed'"):
        run_sweep("synthetic", ["fa[seed=7]"], {"gap": [0.0]}, [0], tmp_path, CFG, fast=True, log=lambda m: None)
    with pytest.raises(ValueError, match=r"'fa\[student_fraction=1\]' sets 'student_fraction'.*axis of this grid"):
        run_sweep("synthetic", ["fa[student_fraction=1]"], {"student_fraction": [0.5, 1.0]}, [0], tmp_path, CFG,
                  fast=True, log=lambda m: None)
    assert not (tmp_path / "runs").exists()


def test_cli_bench_refuses_a_seed_in_a_variant(tmp_path, capsys):
    err = _one_line_error(capsys, ["bench", "--methods", "ce,fa[seed=3]", "--seeds", "2", "--out", str(tmp_path)] + FAST)
    assert "method variant 'fa[seed=3]' sets 'seed'" in err and "--seeds N" in err


# ------------------------------------------------------------------ fault 2: a foreign run in a bench folder
def test_a_foreign_run_in_a_bench_folder_is_never_read_back(tmp_path, capsys):
    b = tmp_path / "B"
    folder = b / "runs" / "unpaired" / "fa" / "seed0"
    assert main(["run", "--method", "fa", "--set", "lambda_fa=0.5", "--out", str(folder)] + FAST) == 0
    foreign = (folder / "result.json").read_bytes()
    bench = ["bench", "--methods", "fa", "--out", str(b)] + FAST
    for _ in range(2):  # refused both times: it is another experiment's run, never published as this one's
        err = _one_line_error(capsys, bench)
        assert "hold runs made with other options" in err and "differs in ['config']" in err and "--overwrite" in err
        assert (folder / "result.json").read_bytes() == foreign
        assert not (folder / "job.json").exists()  # no identity written for a run that is not this bench's
    assert main(bench + ["--overwrite"]) == 0
    capsys.readouterr()
    res = json.loads((b / "results.json").read_text())
    assert res["n_cached"] == 0 and res["runs"][0]["lambda_fa"] == DistillConfig().lambda_fa
    assert json.loads((folder / "result.json").read_text())["config"]["lambda_fa"] == DistillConfig().lambda_fa
    assert main(bench) == 0 and "1 runs: 1 read from the store" in capsys.readouterr().out  # its own, now


def test_a_run_with_the_same_options_on_other_data_is_run_again_not_read_back(tmp_path, capsys):
    """A `run` with the bench's config but other task options, written over a finished bench run: its own
    identity matches, but the bench's job.json is bound to the result it was written for — made again."""
    b = tmp_path / "B"
    bench = ["bench", "--methods", "ce", "--out", str(b)] + FAST
    assert main(bench) == 0
    folder = b / "runs" / "unpaired" / "ce" / "seed0"
    assert main(["run", "--method", "ce", "--overwrite", "--task-option", "gap=3.0", "--out", str(folder)] + FAST) == 0
    assert json.loads((folder / "result.json").read_text())["task_info"]["knobs"]["gap"] == 3.0
    capsys.readouterr()
    assert main(bench) == 0
    assert "1 stale" in capsys.readouterr().out
    assert json.loads((folder / "result.json").read_text())["task_info"]["knobs"]["gap"] != 3.0


# ------------------------------------------------------------------ fault 5: no verdict from zero spread
def _quantised(k):  # an accuracy over 60 test samples, as the trainer computes it (float32)
    return float(np.float32(k / 60))


def test_zero_spread_at_two_seeds_is_cannot_tell_with_the_issues_numbers():
    # The issue's case: 2 seeds, A/A differences of one test sample each, scattered by float32 rounding.
    runs = []
    for s, k in enumerate((30, 31)):
        for m, kk in (("ce", k), ("ce (A/A)", k + 1), ("fa", k + 1)):
            runs.append({"cell": "unpaired", "values": {"pairing": "unpaired"}, "method": m, "seed": s,
                         "student_test_acc": _quantised(kk), "student_test_acc_last": _quantised(kk),
                         "teacher_test_acc": 0.9, "wall_s": 1.0})
    d = [_quantised(31) - _quantised(30), _quantised(32) - _quantised(31)]
    assert 4e-8 < np.std(d, ddof=1) < 4.5e-8  # the spread the issue saw: float noise, not seeds
    rows = {r["method"]: r for r in paired_summary(runs)}
    for m in ("fa", "ce (A/A)"):
        r = rows[m]
        assert r["delta_mean"] == pytest.approx(1 / 60, abs=1e-6)
        assert not r["significant"] and r["p_value"] is None and r["ci_low"] is None and r["mde"] is None
        assert r["verdict"].startswith("cannot tell") and r["verdict"] != "helps"
    assert rows["ce"]["noise_aa_ci_low"] is None and rows["ce"]["noise_aa_cannot_tell"]
    md = format_bench_markdown({"task": "synthetic", "seeds": [0, 1], "baseline": "ce", "axes": ["pairing"],
                                "summary": [], "comparisons": list(rows.values()), "runs": runs})
    table = [line for line in md.splitlines() if line.startswith("| unpaired |")]
    assert len(table) == 2 and not any("**" in line for line in table)  # nothing bold
    assert "[+1.67, +1.67]" not in md and "MDE 0.0" not in md and "cannot tell" in md


def test_paired_difference_of_identical_values_is_never_significant():
    x = 0.0166667
    for diffs in ([x, x], [x, x, x], [x, x, x, x, x]):
        r = paired_difference(diffs)
        assert not r["significant"] and r["p_value"] is None and r["cannot_tell"]
    # three seeds whose accuracies differ only by float32 rounding: float resolution, whatever the count
    r = paired_difference([_quantised(k + 1) - _quantised(k) for k in (30, 31, 44, 50)],
                          scale=_quantised(51))
    assert not r["significant"] and "float resolution" in r["cannot_tell"]
    # a real spread at 3 seeds gives a verdict
    r = paired_difference([0.02, 0.03, 0.04])
    assert r["significant"] and r["cannot_tell"] is None


# ------------------------------------------------------------------ the unclear cases
def test_resume_on_a_missing_folder_says_that_a_new_run_starts(tmp_path, capsys):
    out = tmp_path / "nothing-here"
    assert main(["run", "--method", "ce", "--resume", "--out", str(out)] + FAST) == 0
    err = capsys.readouterr().err
    assert (f"python -m cmkd_lab run: warning: --resume: {str(out)!r} holds no run to continue (no checkpoint.pt, "
            "no result.json), so a new run starts there") in err
    from cmkd_lab.experiments import run_one
    from cmkd_lab.data import load_task
    with pytest.warns(UserWarning, match="holds no run to continue"):
        run_one(load_task("synthetic", fast=True), "ce", CFG, tmp_path / "py", resume=True, report=False,
                diagnostics=False)


def test_report_accepts_the_result_file_itself(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--method", "ce", "--out", str(out)] + FAST) == 0
    (out / "report.html").unlink()
    assert main(["report", str(out / "result.json")]) == 0
    assert (out / "report.html").stat().st_size > 0
    err = _one_line_error(capsys, ["report", str(tmp_path / "missing" / "result.json")])
    assert "RUN_DIR must hold a result.json;" in err and "or its result.json" in err


@pytest.mark.parametrize("cmd", [["run", "--method", "ce"], ["bench", "--methods", "ce"], ["sweep", "--methods", "fa"]])
def test_a_300_character_out_is_refused_with_the_rule(tmp_path, capsys, cmd):
    err = _one_line_error(capsys, cmd + ["--out", str(tmp_path / ("a" * 300))] + FAST)
    assert "--out names a folder of 300 bytes" in err and "at most 255" in err and "choose a shorter --out" in err


def test_check_out_dir_refuses_long_names_for_every_door(tmp_path):
    from cmkd_lab.store import check_out_dir
    with pytest.raises(ValueError, match=r"--out names a folder of 256 bytes .*at most 255"):
        check_out_dir(tmp_path / ("é" * 128))  # bytes, not characters, are what the file system counts
    assert check_out_dir(tmp_path / ("a" * 200)) == tmp_path / ("a" * 200)


def test_a_baseline_that_cannot_run_is_refused_up_front(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"baseline 'kd' cannot run in cell gap=0.0: method 'kd' needs a teacher "
                                         r"sample tied to each student sample.*choose another baseline"):
        run_sweep("synthetic", ["fa"], {"gap": [0.0]}, [0], tmp_path / "s", CFG, baseline="kd", fast=True,
                  log=lambda m: None)
    assert not (tmp_path / "s" / "runs").exists()
    err = _one_line_error(capsys, ["sweep", "--methods", "fa", "--baseline", "kd", "--grid", "gap=0",
                                   "--out", str(tmp_path / "c")] + FAST)
    assert "baseline 'kd' cannot run" in err


@pytest.mark.parametrize("content,match", [
    ({"task": "x", "summary": 5}, r"is not a bench results.json \('summary' is a int, not a list\)"),
    ({"task": 3, "summary": []}, r"'task' is a int, not a str"),
    ({"summary": []}, r"no 'task'"),
])
def test_load_bench_checks_the_shape(tmp_path, content, match):
    p = tmp_path / "results.json"
    p.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match):
        load_bench(p)
    with pytest.raises(ValueError, match=match.replace("results.json", "results.json")):
        load_bench(content)
    from cmkd_lab.results import load_sweep
    with pytest.raises(ValueError, match=r"is not a sweep.json \('cells' is a str, not a list\)"):
        load_sweep({"cells": "x", "grid": {}})
    with pytest.raises(ValueError, match="does not exist"):
        load_bench(tmp_path / "nope")


def test_shipped_results_still_load():
    from cmkd_lab.results import load_sweep
    docs = Path(__file__).resolve().parents[1] / "docs" / "results"
    for p in sorted(docs.glob("bench_*.json")) + sorted(docs.glob("controls_*.json")):
        assert load_bench(p)["source"] == str(p)
    for p in sorted(docs.glob("regime_*.json")):
        assert load_sweep(p)["source"] == str(p)


def test_names_that_become_paths_are_reduced_or_refused(tmp_path):
    from cmkd_lab.results import cell_dir
    # a variant label → one folder name (letters, digits and =,.+-_ only); a long one is shortened with a hash
    assert cell_dir("fa[lambda_fa=0.5]") == "fa_lambda_fa=0.5_"
    assert cell_dir("../../escaped") == ".._.._escaped" and "/" not in cell_dir("a/b")
    assert cell_dir("..") == "_.." and cell_dir(".") == "_." and cell_dir("") == "_"
    long = "ucmkd-joint[" + ";".join(f"o{i}=1" for i in range(80)) + "]"
    short = cell_dir(long)
    assert len(short) <= 120 and short != cell_dir(long + " ") and short == cell_dir(long)
    # two variants whose labels reduce to one folder are refused, naming both, before anything runs
    from cmkd_lab.experiments.engine import Cell, plan
    cells = [Cell(name, {"x": name}, CFG, {}, cell_dir(name)) for name in ("x y", "x_y")]
    with pytest.raises(ValueError, match=r"cells 'x y' and 'x_y' would share the run folder 'x_y'.*rename one"):
        plan("synthetic", ["ce"], cells, [0], tmp_path, fast=True, baseline="ce", aa=False, diagnostics=None,
             early_epochs=0, threads=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_sweep("synthetic", ["ce"], {"cost": ["l2"]}, [0], tmp_path / "s", CFG, fast=True, aa=False,
                        log=lambda m: None)
    assert [r["dir"] for r in res["runs"]] == ["runs/cost=l2/ce/seed0"]
