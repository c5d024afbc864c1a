"""A second new-user fuzz (issue 25's breadth, after its fixes): each input that still went wrong or read
unclearly, kept as a regression test. The earlier cases stay in test_fuzz_config, test_fuzz_grid and
test_fuzz_gap; these are the ones found beyond them — flags and names (typos, repeats, list flags given twice,
a seed besides --seeds), the grid's own arguments from Python, the gap command's words for its files, the
report and offline doors, distill's arguments, the notebook helpers, and a script without a main guard.

Every refusal is one line that names the flag or parameter, the rule, the value and the remedy."""
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from cmkd_lab import CrossModalTask, DistillConfig, distill, explore_run_gap, load_task
from cmkd_lab.cli import build_config, main, make_parser
from cmkd_lab.experiments import run_bench, run_sweep

FAST = ["--task", "synthetic", "--fast", "--epochs", "1", "--teacher-epochs", "1", "--set", "diagnostics_every=0",
        "--quiet"]
CFG = DistillConfig(epochs=1, teacher_epochs=1, diagnostics_every=0)
QUIET = dict(fast=True, log=lambda m: None)


def _err(capsys, argv, rc=2, cmd=None):
    """The one stderr line of a refused command, without its ``python -m cmkd_lab X: error:`` prefix."""
    assert main([str(a) for a in argv]) == rc
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    m = re.match(r"^python -m cmkd_lab( \w+)?: error: (.*)$", lines[0])
    assert m, lines[0]
    if cmd is not None:
        assert m.group(1) == f" {cmd}", lines[0]
    return m.group(2)


@pytest.fixture(scope="module")
def task():
    return load_task("synthetic", fast=True)


# ------------------------------------------------------------------ flags and names
@pytest.mark.parametrize("argv,said", [
    (["run", "--methd", "ce"], "unrecognized arguments: --methd ce (--methd: did you mean --method?)"),
    (["run", "--epoch", "3"], "unrecognized arguments: --epoch 3 (--epoch: did you mean --epochs?)"),
    (["bench", "--seed-count", "3"], "unrecognized arguments: --seed-count 3"),
])
def test_an_unknown_flag_is_named_by_its_subcommand_with_the_closest_flag(capsys, tmp_path, argv, said):
    cmd = argv[0]
    msg = _err(capsys, argv + ["--out", tmp_path / "o"], cmd=cmd)
    assert msg.startswith(said) and msg.endswith(f"(see python -m cmkd_lab {cmd} --help)"), msg


def test_version(capsys):
    from cmkd_lab import __version__
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cmkd_lab {__version__}"


@pytest.mark.parametrize("argv,flag", [
    (["bench", "--methods", "ce,fa[lambda_fa=0.5]", "--methods", "la"], "--methods"),
    (["sweep", "--methods", "fa", "--methods=la"], "--methods"),
    (["bench", "--pairing", "unpaired", "--pairing", "paired"], "--pairing"),
])
def test_a_list_flag_given_twice_is_refused(capsys, tmp_path, argv, flag):
    msg = _err(capsys, argv + ["--out", tmp_path / "o", *FAST], cmd=argv[0])
    assert msg.startswith(f"{flag} is given twice (") and "give the whole list once, comma-separated" in msg
    assert not (tmp_path / "o").exists()


def test_a_repeated_flag_with_one_value_keeps_the_usual_rule():
    args = make_parser().parse_args(["run", "--out", "o", "--epochs", "3", "--epochs", "2"])
    assert args.epochs == 2  # the last one wins, as everywhere on a command line


def test_set_and_a_flag_that_disagree_are_refused():
    args = make_parser().parse_args(["run", "--out", "o", "--set", "epochs=2", "--epochs", "1"])
    with pytest.raises(ValueError, match=r"^epochs is given twice: --set epochs=2 and --epochs 1; give it once$"):
        build_config(args)
    args = make_parser().parse_args(["run", "--out", "o", "--set", "lr=0.01", "--lr", "0.01"])
    assert build_config(args).lr == 0.01  # the same value twice is no conflict


def test_a_seed_besides_seeds_is_refused(capsys, tmp_path):
    msg = _err(capsys, ["bench", "--methods", "ce", "--seeds", "2", "--seed", "5", "--out", tmp_path / "o", *FAST])
    assert msg == ("give --seeds N (seeds 0..N-1) or one seed (--seed S), not both; got --seeds 2 and seed=5 (from "
                   "--seed, --set or --config)")
    assert not (tmp_path / "o").exists()


def test_demo_refuses_zero_epochs_instead_of_running_its_default(capsys, tmp_path):
    msg = _err(capsys, ["demo", "--task", "synthetic", "--fast", "--epochs", "0", "--quiet", "--out", tmp_path / "d"])
    assert msg == "epochs must be >= 1; got epochs=0"


@pytest.mark.parametrize("argv", [["run", "--method", "UCMKD"], ["run", "--method", "ucmdk"],
                                  ["bench", "--methods", "ce,ucmdk"], ["sweep", "--methods", "fa", "--baseline", "CE"]])
def test_a_method_typo_gets_the_closest_name_at_every_door(capsys, tmp_path, argv, task):
    msg = _err(capsys, argv + ["--out", tmp_path / "o", *FAST])
    assert re.match(r"^(method|baseline) must be one of 'align-pl', .*; got (method|baseline)='\w+' \(did you mean "
                    r"'(ucmkd|ce)'\?\)$", msg), msg
    with pytest.raises(ValueError, match=r"got method='ucmdk' \(did you mean 'ucmkd'\?\)$"):
        distill(task, "ucmdk", CFG)


def test_a_task_typo_gets_the_closest_name(capsys, tmp_path):
    msg = _err(capsys, ["run", "--method", "ce", "--out", tmp_path / "o", *FAST[2:], "--task", "Synthtic"])
    assert msg.endswith("; got task='Synthtic' (did you mean 'synthetic'?)") and msg.startswith("task must be one of")


def test_a_variant_with_commas_says_to_use_semicolons(capsys, tmp_path):
    msg = _err(capsys, ["bench", "--methods", "ce,fa[lambda_fa=0.5,eps=0.2]", "--out", tmp_path / "o", *FAST])
    assert msg == ("method variant 'fa[lambda_fa=0.5,eps=0.2]': separate its options with ';', not ',' (the commas "
                   "separate methods): write fa[lambda_fa=0.5;eps=0.2]")
    from cmkd_lab.cli import _methods
    from cmkd_lab.experiments.engine import parse_method
    assert _methods("ce, fa[lambda_fa=0.5;eps=0.2] ,la") == ["ce", "fa[lambda_fa=0.5;eps=0.2]", "la"]
    assert parse_method("fa[lambda_fa=0.5;eps=0.2]") == ("fa", {"lambda_fa": 0.5, "eps": 0.2})


def test_a_task_option_in_a_variant_is_named_as_such():
    from cmkd_lab.experiments.engine import check_methods
    with pytest.raises(ValueError, match=r"^method variant 'fa\[gap=1\]' sets gap, an option of the task, not of the "
                                         r"method: give it with --task-option \(one value\) or vary it with --grid$"):
        check_methods(["fa[gap=1]"], CFG)


# ------------------------------------------------------------------ the grid's own arguments
@pytest.mark.parametrize("kw,exc,match", [
    (dict(ceiling="nosuch"), ValueError, r"^ceiling must be one of 'ceiling-kd', 'ceiling-pl' or None \(--ceiling none\)"
                                         r": the paired ceiling the headroom recovered is measured against; got "
                                         r"ceiling='nosuch'$"),
    (dict(ceiling="fa"), ValueError, r"got ceiling='fa'$"),
    (dict(out=None), TypeError, r"^out must be the grid's folder \(a str or os.PathLike\); got out=None: pass e.g. "
                                r"out='runs/my-bench'$"),
    (dict(config={"epochs": 1}), TypeError, r"^config must be a DistillConfig \(or None for the defaults\); got dict: "
                                            r"build one with DistillConfig\(...\) or DistillConfig.from_dict\(d\)$"),
    (dict(fast="yes"), TypeError, r"^fast must be true or false"),
    (dict(log="quiet"), TypeError, r"^log must be a function of one string \(e.g. print, or lambda m: None for "
                                   r"silence\); got log='quiet'$"),
])
@pytest.mark.parametrize("grid", ["bench", "sweep"])
def test_a_grid_names_its_bad_argument_before_anything_runs(tmp_path, kw, exc, match, grid):
    args = dict(out=tmp_path / "g", config=CFG, **QUIET)
    args.update(kw)
    out = args.pop("out")
    with pytest.raises(exc, match=match):
        if grid == "bench":
            run_bench("synthetic", ["ce", "fa"], ["unpaired"], [0], out, **args)
        else:
            run_sweep("synthetic", ["fa"], {"gap": [0.0]}, [0], out, workers=1, **args)
    assert not (tmp_path / "g").exists()


def test_sweep_threads_and_cli_ceiling_are_checked(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"^threads must be >= 0; got threads=-1$"):
        run_sweep("synthetic", ["fa"], {"gap": [0.0]}, [0], tmp_path / "s", CFG, workers=1, threads=-1, **QUIET)
    msg = _err(capsys, ["bench", "--methods", "ce,fa", "--ceiling", "fa", "--out", tmp_path / "b", *FAST])
    assert msg.startswith("ceiling must be one of 'ceiling-kd', 'ceiling-pl' or None (--ceiling none)")


def test_a_pairing_given_twice_is_one_cell(tmp_path):
    res = run_bench("synthetic", ["ce"], ["unpaired", "unpaired"], [0], tmp_path / "b", CFG, **QUIET)
    assert res["pairings"] == ["unpaired"] and len(res["runs"]) == 1 and not res["aliases"]
    assert "serves cell unpaired and unpaired" not in (tmp_path / "b" / "results.md").read_text()


def test_a_sweep_says_where_its_predictors_are_read_and_shows_no_spread_at_one_seed(tmp_path):
    res = run_sweep("synthetic", ["fa"], {"gap": [0.0, 2.0]}, [0], tmp_path / "s", CFG, workers=1, diag_epoch=3,
                    **QUIET)
    md = (tmp_path / "s" / "sweep.md").read_text()
    assert "No early-diagnostic predictor (read at epoch 1: the runs are shorter than --diag-epoch 3)" in md
    why = next(line for line in md.splitlines() if line.startswith("No early-diagnostic predictor"))
    assert not re.search(r"(?<![\w-])cells?\b", why), why  # notebook 05 prints it: no 'cell' (notebook plumbing)
    row = next(line for line in md.splitlines() if line.startswith("| 0.0 |"))
    acc = next(r for r in res["cells"] if r["cell"] == "gap=0.0" and r["method"] == "ce")["acc_mean"]
    assert row.startswith(f"| 0.0 | {100 * acc:.2f} |") and "±" not in row  # one seed: no ± 0.00


def test_a_script_without_a_main_guard_is_not_run_again_by_the_workers():
    """The pool's workers start (spawn) with the caller's __main__ hidden: a script that calls run_sweep at
    top level is not re-run in each of them (which ended in BrokenProcessPool). What a spawned child is told
    to import is multiprocessing's preparation data: no main script in it while the workers start, and the
    script back as it was afterwards."""
    from multiprocessing import spawn
    from cmkd_lab.experiments.executors import main_script_hidden
    main_mod = sys.modules["__main__"]
    before = spawn.get_preparation_data("w")
    with main_script_hidden():
        inside = spawn.get_preparation_data("w")
    assert "init_main_from_path" not in inside and "init_main_from_name" not in inside
    assert spawn.get_preparation_data("w") == before and sys.modules["__main__"] is main_mod


# ------------------------------------------------------------------ memory
def test_a_size_the_machine_cannot_hold_is_one_line(capsys, tmp_path):
    msg = _err(capsys, ["run", "--method", "ce", "--task-option", "n_teacher=10000000000000", "--out", tmp_path / "o",
                        *FAST], rc=1)
    assert msg.startswith("out of memory (Unable to allocate ") and msg.endswith(
        "ask for less: smaller task options (n_teacher, n_student, num_classes), --batch-size, --max-points or "
        "--permutations")


# ------------------------------------------------------------------ the gap command
@pytest.fixture()
def sets(tmp_path):
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(40, 4)), rng.normal(size=(30, 4)) + 0.5
    np.savez(tmp_path / "a.npz", features=A, labels=np.arange(40) % 2)
    np.savez(tmp_path / "b.npz", features=B, labels=np.arange(30) % 2)
    np.savez(tmp_path / "nan.npz", features=np.where(rng.random(B.shape) < .1, np.nan, B), labels=np.arange(30) % 2)
    np.savez(tmp_path / "three.npz", features=B[:3], labels=np.arange(3) % 2)
    np.savez(tmp_path / "short.npz", features=B, labels=np.arange(10) % 2)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    (tmp_path / "hdr.csv").write_text("a,b\n" + "\n".join(f"{i},{i}" for i in range(30)))
    return tmp_path


def _gap(d, a, b, *more):
    return ["gap", d / a, d / b, "--out", d / "o", "--projection", "none", "--permutations", "10", "--quiet", *more]


@pytest.mark.parametrize("b,more,said", [
    ("nan.npz", (), "B file '{d}/nan.npz' (its features) contains NaN or inf values"),
    ("three.npz", (), "B file '{d}/three.npz' (its features) must have at least 4 sample(s); got 3"),
    ("short.npz", (), "B file '{d}/short.npz' (its labels) must have one label per row of B file '{d}/short.npz' "
                      "(its features) (30); got 10"),
    ("b.npz", ("--pairs", "rows"), "--pairs rows needs as many rows in B file '{d}/b.npz' (its features) as in A file "
                                   "'{d}/a.npz' (its features)"),
])
def test_gap_names_the_files_not_explore_gaps_parameters(sets, capsys, b, more, said):
    msg = _err(capsys, _gap(sets, "a.npz", b, *more), cmd="gap")
    assert msg.startswith(said.format(d=sets)) and not re.search(r"\b[zy]_[ab]\b", msg), msg


def test_gap_caps_the_permutations_on_the_command_line(sets, capsys):
    msg = _err(capsys, _gap(sets, "a.npz", "b.npz", "--permutations", "100000000"), cmd="gap")
    assert msg == ("--permutations must be at most 10000 (p-values reach 1/(1 + permutations), 1e-4 at 10000; the "
                   "test keeps a (rows of A + rows of B) × permutations matrix in memory); got --permutations "
                   "100000000")


def test_a_file_that_is_no_npz_is_said_so_without_pickle_advice(sets, capsys):
    msg = _err(capsys, _gap(sets, "a.npz", "junk.npz"), cmd="gap")
    assert msg == (f"B file '{sets / 'junk.npz'}' cannot be read as .npz: it is not a zip of arrays (its first bytes "
                   "are b'not a '); save it with numpy.savez(path, features=z, labels=y)")


def test_pairs_files_and_words(sets, capsys):
    msg = _err(capsys, _gap(sets, "a.npz", "b.npz", "--pairs", sets / "hdr.csv"), cmd="gap")
    assert msg.endswith("write two integer columns, row in A and row in B, one pair per line and no header (or a "
                        "(P, 2) integer array with numpy.save)")
    from cmkd_lab.gap_report import load_pairs
    assert load_pairs("Rows") is True and load_pairs(" rows ") is True


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A run with feature snapshots (epochs 0..2) and one without diagnostics, as result.json folders."""
    d = tmp_path_factory.mktemp("runs")
    t = load_task("synthetic", fast=True)
    for name, cfg in (("with", DistillConfig(epochs=2, teacher_epochs=1)), ("without", CFG)):
        (d / name).mkdir()
        (d / name / "result.json").write_text(json.dumps(distill(t, "fa", cfg)))
    return d


def test_gap_run_takes_the_result_file_and_says_how_to_get_snapshots(two_runs, capsys):
    assert main(["gap", "--run", str(two_runs / "with" / "result.json"), "--out", str(two_runs / "g"),
                 "--projection", "none", "--permutations", "0", "--quiet"]) == 0
    assert json.loads((two_runs / "g" / "gap.json").read_text())["epochs"] == [0, 2]
    msg = _err(capsys, ["gap", "--run", two_runs / "without", "--out", two_runs / "g2"], cmd="gap")
    assert msg.endswith("run it again with the diagnostics on (the default; not diagnostics_every=0, not sweep's "
                        "--no-diagnostics) and at least one epoch")
    r = json.loads((two_runs / "with" / "result.json").read_text())
    r["status"], r["diagnostics"]["snapshots"] = "diverged", r["diagnostics"]["snapshots"][:1]
    with pytest.raises(ValueError, match=r"it has 1 snapshot\(s\) \(its status is 'diverged': it stopped before a "
                                         r"second snapshot\): run it again"):
        explore_run_gap(r)
    with pytest.raises(TypeError, match=r"got PosixPath: read the file first, e.g. cmkd_lab.report.read_result\(run_dir "
                                        r"/ 'result.json'\), or use python -m cmkd_lab gap --run RUN_DIR$"):
        explore_run_gap(two_runs / "with")


# ------------------------------------------------------------------ the report door
def test_report_says_what_the_wrong_file_is(two_runs, tmp_path, capsys):
    (tmp_path / "report.html").write_text("<html></html>")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps({"task": "synthetic", "summary": [], "seeds": [0]}))
    msg = _err(capsys, ["report", tmp_path / "report.html"], cmd="report")
    assert msg.startswith(f"RUN_DIR must be a run folder or its result.json; '{tmp_path / 'report.html'}' is not a "
                          "run's result.json: pass one run")
    msg = _err(capsys, ["report", tmp_path / "b" / "results.json"], cmd="report")
    assert "is a bench's results: pass one run" in msg
    msg = _err(capsys, ["report", tmp_path / "b"], cmd="report")
    assert msg.startswith(f"RUN_DIR must be a run folder; '{tmp_path / 'b'}' holds a bench or a sweep: pass one of "
                          "its runs")
    r = json.loads((two_runs / "without" / "result.json").read_text())
    r["student_test_acc"] = "high"
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "result.json").write_text(json.dumps(r))
    msg = _err(capsys, ["report", tmp_path / "r"], cmd="report")
    assert msg == (f"'{tmp_path / 'r' / 'result.json'}' is not a cmkd_lab run result: student_test_acc must be a number "
                   "or null; got 'high'; the file was edited by hand or damaged: run the run again")


# ------------------------------------------------------------------ the offline door
@pytest.mark.parametrize("args,said", [
    (["{d}/bad.ipynb"], "notebook '{d}/bad.ipynb' cannot be read as a Jupyter notebook (NotJSONError: "),
    (["{d}"], "notebook '{d}' is a folder: pass the .ipynb files in it (e.g. DIR/*.ipynb)"),
    (["{d}/bad.ipynb", "--timeout", "0"], "--timeout must be an integer >= 1 (seconds a cell may run); got --timeout 0"),
    (["{d}/bad.ipynb", "--out", "{d}/afile"], "--out must be a directory; '{d}/afile' is a file"),
    (["{d}/bad.ipynb", "--out", "/proc/cmkd_lab_x"], "--out '/proc/cmkd_lab_x' cannot be created"),
])
def test_offline_export_refuses_bad_input_in_one_line(tmp_path, capsys, args, said):
    from cmkd_lab.offline import _main
    (tmp_path / "bad.ipynb").write_text("{not json")
    (tmp_path / "afile").write_text("x")
    argv = [a.format(d=tmp_path) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "pages")]
    with pytest.raises(SystemExit) as e:
        _main(["export", *argv, "--no-execute"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("python -m cmkd_lab.offline export: error: " + said.format(d=tmp_path)), err


# ------------------------------------------------------------------ distill's own arguments
@pytest.mark.parametrize("kw,exc,match", [
    (dict(callbacks=print), TypeError, r"^callbacks must be a list of Callback objects, each with one of on_train_begin"
                                       r", on_step_end, on_epoch_end, on_train_end \(wrap a single one in a list\); got "
                                       r"callbacks=<built-in function print>$"),
    (dict(callbacks=[1]), TypeError, r"got callbacks=\[1\]$"),
    (dict(nosuch=1), TypeError, r"^distill\(\) takes task, method, config, diagnostics, callbacks, teacher, "
                                r"checkpoint, progress; got 'nosuch'; options of the run go in the config"),
    (dict(progres=True), TypeError, r"got 'progres' \(did you mean 'progress'\?\)"),
    (dict(checkpoint="/proc/cmkd_lab_x/ck.pt"), ValueError, r"^checkpoint's folder '/proc/cmkd_lab_x' cannot be "
                                                            r"created \(No such file or directory"),
])
def test_distill_names_its_bad_argument_before_training(task, kw, exc, match):
    with pytest.raises(exc, match=match):
        distill(task, "ce", CFG, **kw)


def test_distill_refuses_a_folder_as_checkpoint(task, tmp_path):
    with pytest.raises(ValueError, match=rf"^checkpoint must be a file path; '{tmp_path}' is a directory: pass e.g. "
                                         rf"'{tmp_path / 'checkpoint.pt'}'$"):
        distill(task, "ce", CFG, checkpoint=tmp_path)


# ------------------------------------------------------------------ the notebook helpers
def test_run_byod_takes_any_config_option(task):
    from cmkd_lab.widgets import run_byod
    results, _ = run_byod(task, method="ce", baseline=None, epochs=1, teacher_epochs=1, progress=False,
                          diagnostics_every=0)
    assert results["ce"]["status"] == "completed" and results["ce"]["config"]["diagnostics_every"] == 0


def test_an_unwritable_out_is_refused_before_training(monkeypatch):
    from cmkd_lab.widgets import quickstart

    class NeverTrains:
        def __init__(self, *a, **k):
            raise AssertionError("trained before out was checked")
    monkeypatch.setattr(quickstart, "RunSession", NeverTrains)
    with pytest.raises(ValueError, match=r"^out '/proc/cmkd_lab_x' cannot be created \(No such file or directory"):
        quickstart.run_with_baseline(task="synthetic", method="fa", baseline="ce", epochs=1, teacher_epochs=1,
                                     progress=False, out="/proc/cmkd_lab_x")


# ------------------------------------------------------------------ readers
def test_load_bench_checks_rows_and_seeds_and_points_to_load_sweep(tmp_path):
    from cmkd_lab.results import load_bench, load_sweep
    with pytest.raises(ValueError, match=r"'summary' holds int entries, not rows \(objects\)"):
        load_bench({"task": "x", "summary": [1, 2], "seeds": [0]})
    with pytest.raises(ValueError, match=r"is not a bench results.json \(no 'seeds'\)"):
        load_bench({"task": "x", "summary": []})
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match=r"list.json' must hold a JSON object; got a list$"):
        load_sweep(tmp_path / "list.json")
    (tmp_path / "sweep.json").write_text(json.dumps({"cells": [], "grid": {}, "seeds": [0]}))
    with pytest.raises(ValueError, match=r"does not exist; that folder holds a sweep result \(sweep.json\): read it "
                                         r"with load_sweep$"):
        load_bench(tmp_path)
    assert load_sweep(tmp_path)["seeds"] == [0]


# ------------------------------------------------------------------ the core's messages (wording only)
def test_data_messages_give_the_remedy_that_fits(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)), np.array(["cat", "dog", "eel"])[np.arange(60) % 3]
    with pytest.raises(TypeError, match=r"teacher_y must hold numbers; got dtype <U3: encode class names as 0..K-1 "
                                        r"\(classes, teacher_y = np.unique\(teacher_y, return_inverse=True\)\) and pass "
                                        r"class_names=list\(classes\)$"):
        CrossModalTask.from_arrays(x, y, x, np.arange(60) % 3)
    with pytest.raises(ValueError, match=r"class_names must list at least 2 classes; got 1 \(\['0'\]: given, or the "
                                         r"labels' distinct values\); a classifier needs two classes or more"):
        CrossModalTask.from_arrays(x, np.zeros(60, int), x, np.zeros(60, int))
    with pytest.warns(RuntimeWarning, match=r"have no sample on either side: .*a generated task: a smaller "
                                            r"prior_skew, label_shift or num_classes"):
        load_task("synthetic", fast=True, prior_skew=50.0)
    from cmkd_lab.data.av import DataLayoutError
    with pytest.raises(DataLayoutError, match=r"data_root '/nope-cmkd' \(from --data-root or \$CMKD_LAB_DATA\) for "
                                              r"task 'ave' does not exist"):
        load_task("ave", data_root="/nope-cmkd")


@pytest.mark.parametrize("method", ["ce,fa", "fa[lambda_fa=0.5]"])
def test_run_takes_one_method_and_says_where_lists_and_variants_go(capsys, tmp_path, method):
    msg = _err(capsys, ["run", "--method", method, "--out", tmp_path / "o", *FAST], cmd="run")
    assert msg == (f"--method takes one method name (run trains one student); got --method {method}: give its "
                   "options with --set key=value, or compare several with bench --methods a,b[k=v]")


@pytest.mark.parametrize("kw,match", [(dict(diagnostics="yes"), r"^diagnostics must be True, False or a dict of "
                                                                  r"DiagnosticsCallback options; got diagnostics='yes'$"),
                                      (dict(progress="yes"), r"^progress must be true or false \(a progress bar\); "
                                                             r"got progress='yes'$")])
def test_distill_flags_are_booleans(task, kw, match):
    with pytest.raises(TypeError, match=match):
        distill(task, "ce", CFG, **kw)


def test_an_absurdly_long_value_is_named_by_its_flag(capsys, tmp_path):
    msg = _err(capsys, ["run", "--method", "ce", "--set", "lr=" + "9" * 5000, "--out", tmp_path / "o", *FAST])
    assert msg == ("--set lr=9999999999999999999999999999999999999…: 5003 characters, beyond the 1000 of any option "
                   "value; check the command line (a paste or a shell expansion gone wrong?)")


# ------------------------------------------------------------------ fourth pass (issue 25's acceptance fuzz)
def test_an_empty_preset_is_refused_not_read_as_the_defaults(capsys, tmp_path):
    msg = _err(capsys, ["run", "--method", "ce", "--preset", "", "--out", tmp_path / "o", *FAST], cmd="run")
    assert msg == "--preset must be one of 'default', 'paper', 'public-code'; got ''"
    assert not (tmp_path / "o").exists()


def test_report_on_a_gap_folder_points_to_its_page(capsys, tmp_path):
    rng = np.random.default_rng(0)
    for n in "ab":
        np.save(tmp_path / f"{n}.npy", rng.normal(size=(30, 4)).astype(np.float32))
    g = tmp_path / "g"
    assert main(["gap", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--out", str(g), "--projection", "none",
                 "--permutations", "0", "--quiet"]) == 0
    msg = _err(capsys, ["report", g], cmd="report")
    assert msg == (f"RUN_DIR must be a run folder; {str(g)!r} holds the output of `gap` (gap.json), whose page is "
                   f"already written: open {str(g / 'gap.html')!r} (run `gap` again to remake it)")


def test_distill_given_a_task_name_says_to_load_it():
    with pytest.raises(TypeError, match=r"^task must be a CrossModalTask \(see cmkd_lab.data.load_task\); got str "
                                        r"'synthtic': load it first, e.g. task = load_task\('synthtic'\) "
                                        r"\(cmkd_lab.available_tasks\(\) lists the names\)$"):
        distill("synthtic", "ce", CFG)


def test_a_bench_baseline_typo_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match=r"^baseline must be one of 'align-pl', .*; got baseline='cee' \(did you "
                                         r"mean 'ce'\?\)$"):
        run_bench("synthetic", ["ce", "fa"], ["unpaired"], [0], tmp_path / "b", CFG, baseline="cee", **QUIET)
    assert not (tmp_path / "b").exists()


_RESULT_HELPERS = [  # (helper, its parameter, what it says it must be)
    ("bench_table", "res", "one task's bench results"), ("bench_figure", "res", "one task's bench results"),
    ("bench_runs_figure", "res", "one task's bench results"), ("bench_note", "res", "one task's bench results"),
    ("bench_markdown", "res", "one task's bench results"), ("bench_delta_figure", "res", "one task's bench results"),
    ("regime_table", "res", "a sweep result"), ("sweep_note", "res", "a sweep result"),
    ("entmin_comparison", "res", "a sweep result"), ("report_figures", "result", "one run's result dict"),
    ("overlay_at_epoch", "result", "one run's result dict"), ("debugger_figures", "result", "a run's result dict"),
    ("result_summary", "result", "a run's result dict"), ("teacher_grad_figures", "results", "a dict"),
    ("variant_figures", "results", "a dict"), ("transfer_figure", "runs", "a dict"), ("transfer_note", "runs", "a dict"),
    ("bound_point_figure", "point", "one bound point"), ("bound_table", "table", "the DataFrame"),
    ("bound_compare", "variants", "a list of dicts"), ("compare_variants", "variants", "a list of dicts"),
    ("figure_output", "fig", "a plotly figure"), ("figure_signature", "fig", "a plotly figure"),
    ("figure_structure", "fig", "a plotly figure"), ("show_figures", "figures", "a dict name -> figure"),
    ("kernel_note", "what", "the words naming the panel"), ("shipped_comparison", "task", "a built-in task's name"),
]


@pytest.mark.parametrize("name,param,must", _RESULT_HELPERS)
def test_a_notebook_helper_given_none_names_its_parameter(name, param, must):
    """Each helper that reads a result, a figure or a name refuses None in one line (not an AttributeError or
    'NoneType is not iterable' from deep inside a figure)."""
    import cmkd_lab.widgets as W
    with pytest.raises(TypeError, match=rf"^{param} must be {re.escape(must)}.*; got NoneType"):
        getattr(W, name)(None)


@pytest.mark.parametrize("name,loader", [("bench_table", "load_bench"), ("bench_markdown", "load_bench"),
                                         ("regime_table", "load_sweep"), ("sweep_note", "load_sweep")])
def test_a_notebook_helper_given_a_path_says_to_load_it(name, loader, tmp_path):
    import cmkd_lab.widgets as W
    p = str(tmp_path / "my-run")
    with pytest.raises(TypeError, match=rf"; got str {re.escape(repr(p))}: load it first, e.g. "
                                        rf"{loader}\({re.escape(repr(p))}\)$"):
        getattr(W, name)(p)


def test_output_piped_into_a_reader_that_leaves_ends_quietly():
    """``python -m cmkd_lab options | head -1``: the reader closes the pipe; no BrokenPipeError traceback, the
    status a Unix tool killed by SIGPIPE gives (141)."""
    import os
    import subprocess
    r, w = os.pipe()
    os.close(r)  # the reader is gone before anything is written
    try:
        p = subprocess.run([sys.executable, "-m", "cmkd_lab", "options", "--markdown"], stdout=w,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr == "", (p.returncode, p.stderr)


def test_a_config_file_giving_an_option_twice_is_refused(capsys, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"epochs": 1, "lr": 0.01, "epochs": 2}')
    msg = _err(capsys, ["run", "--method", "ce", "--config", cfg, "--out", tmp_path / "o", *FAST], cmd="run")
    assert msg == (f"config file {str(cfg)!r} gives 'epochs' twice (JSON would keep the last value silently); give "
                   "each option once")
    assert not (tmp_path / "o").exists()


def test_gap_run_on_a_bench_folder_points_to_its_runs(capsys, tmp_path):
    b = tmp_path / "b"
    b.mkdir()
    (b / "results.json").write_text("{}")
    msg = _err(capsys, ["gap", "--run", b, "--out", tmp_path / "g"], cmd="gap")
    assert msg == (f"--run must be one run's folder; {str(b)!r} holds a bench or a sweep: pass one of its runs, e.g. "
                   f"{str(b / 'runs' / '<cell>' / '<method>' / 'seed0')!r}")


def test_a_closed_stdout_is_no_error():
    """``python -m cmkd_lab tasks >&-``: Python sets sys.stdout to None; the command still ends cleanly."""
    import subprocess
    p = subprocess.run(["bash", "-c", f"{sys.executable} -m cmkd_lab tasks >&-"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)


def test_the_markdown_formatters_check_what_they_are_given():
    from cmkd_lab.results import format_bench_markdown, format_sweep_markdown
    with pytest.raises(ValueError, match=r"^the dict given is not a bench results.json \(no 'task'/'summary'/'seeds'\)"):
        format_bench_markdown({})  # was KeyError: 'seeds'
    with pytest.raises(TypeError, match=r"^res must be a sweep result dict \(from load_sweep\(folder\) or run_sweep\); "
                                        r"got str 'runs/s': load it first with load_sweep\('runs/s'\)$"):
        format_sweep_markdown("runs/s")
    with pytest.raises(TypeError, match=r"^res must be a bench result dict .*; got NoneType$"):
        format_bench_markdown(None)


def test_seed_or_fast_given_as_a_task_option_says_where_it_goes(capsys, tmp_path):
    msg = _err(capsys, ["run", "--method", "ce", "--task-option", "seed=1", "--out", tmp_path / "o", *FAST], cmd="run")
    assert msg == "--task-option seed=1: seed is not a task option; give it with --seed S (bench and sweep: --seeds N)"
    # was: "load_task() got multiple values for keyword argument 'seed'"
    with pytest.raises(ValueError, match=r"^task_kwargs fast=True: fast is not a task option; give it with fast=True$"):
        run_sweep("synthetic", ["fa"], {"gap": [0.0]}, [0], tmp_path / "s", CFG, workers=1, task_kwargs={"fast": True},
                  **QUIET)
    with pytest.raises(ValueError, match=r"^task_kwargs seed=1: seed is not a task option; give it with seeds=\[...\]$"):
        run_bench("synthetic", ["ce"], ["unpaired"], [0], tmp_path / "b", CFG, task_kwargs={"seed": 1}, **QUIET)
    assert not (tmp_path / "s").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("call,exc,match", [
    (lambda W: W.bound_point(lab="fast"), TypeError, r"^lab must be a LabSettings \(e.g. cmkd_lab.widgets.settings\(fast="
                                                     r"True\)\) or None for the notebooks' run sizes; got str 'fast'$"),
    (lambda W: W.gap.explore(np.zeros((5, 2)), np.zeros((5, 2)), lab=1), TypeError, r"^lab must be a LabSettings .*; "
                                                                                     r"got int$"),
    (lambda W: W.run_regime_map(methods="fa", progress=False), TypeError,
     r"^methods must be a list of method names, e.g. methods=\['ce', 'fa'\]; got str 'fa' \(for one, write "
     r"methods=\['fa'\]\)$"),
    (lambda W: W.load_or_run_bench(tasks=["synthetic"], seeds=3, progress=False), TypeError,
     r"^seeds must be a list of seeds, e.g. seeds=\[0, 1, 2\]; got int$"),
    (lambda W: W.gap.synthetic_gap_sweep("0,1"), TypeError, r"^gaps must be a list of numbers >= 0, e.g. gaps=\[0.0, "
                                                            r"4.0\]; got str '0,1'$"),
    (lambda W: W.gap.synthetic_gap_sweep(["x"]), TypeError, r"^gaps must hold numbers >= 0, e.g. gaps=\[0.0, 4.0\]; "
                                                            r"got 'x' in gaps=\['x'\]$"),
    (lambda W: W.transfer_table(["faa"]), ValueError, r"got method='faa' \(did you mean 'fa'\?\)$"),
    (lambda W: W.gap.demo_embeddings(noise=-1), ValueError, r"^noise must be >= 0; got noise=-1$"),
])
def test_notebook_doors_name_a_wrong_lab_list_or_value(call, exc, match):
    """Was: AttributeError ('str' object has no attribute 'fast'), a method run per letter of 'fa', "'int' object
    is not iterable", "Unknown format code 'g' for object of type 'str'", a table silently without 'faa', and a
    noise of -1 drawn as +1."""
    import cmkd_lab.widgets as W
    with pytest.raises(exc, match=match):
        call(W)
