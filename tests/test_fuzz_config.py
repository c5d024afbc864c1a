"""Issue 25, the config and command-line cases: each bad or odd input once more, with the one-line message
that names the parameter, the rule, the value and the remedy — the same from the CLI and from Python."""
import re

import pytest

from cmkd_lab.cli import main
from cmkd_lab import distill
from cmkd_lab.distill import DistillConfig
from cmkd_lab.experiments.engine import parse_method

FAST = ["--task", "synthetic", "--fast", "--epochs", "1", "--teacher-epochs", "1", "--quiet"]


def _cli_error(argv, capsys, tmp_path):
    """The one stderr line of a refused command (status 2), without its ``python -m cmkd_lab X: error:``."""
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert not (tmp_path / "out" / "result.json").exists()  # refused before anything ran
    return re.sub(r"^python -m cmkd_lab \w+: error: ", "", err[0])


def _py_error(fn, exc=ValueError):
    with pytest.raises(exc) as e:
        fn()
    return str(e.value)


# ------------------------------------------------------------------ an option of another method
FOREIGN = (r"^ccfa_threshold=0.8 is an option of method 'cc-fa', and this run is method 'ce', which never reads it: "
           r"leave it out, or run method 'cc-fa'$")


def test_an_option_of_another_method_is_refused_in_a_single_run(capsys, tmp_path, small_task):
    cli = _cli_error(["run", "--method", "ce", "--set", "ccfa_threshold=0.8", *FAST, "--out", "OUT"], capsys, tmp_path)
    py = _py_error(lambda: distill(small_task, "ce", DistillConfig(epochs=1, teacher_epochs=1, ccfa_threshold=0.8)))
    assert re.match(FOREIGN, cli) and cli == py
    # the method's own option is fine, and a preset's options of other methods are left out of a single run
    assert main(["run", "--method", "fa", "--preset", "paper", "--set", "warmup_epochs=0", *FAST,
                 "--out", str(tmp_path / "fa")]) == 0
    import json
    stored = json.loads((tmp_path / "fa" / "result.json").read_text())["config"]
    assert stored["inner_optimizer"] == "sgd" and stored["optimizer"] == "sgd"  # ucmkd's options stay default


def test_a_variant_refuses_another_methods_option():
    msg = _py_error(lambda: parse_method("ce[ccfa_threshold=0.8]"))
    assert msg == ("method variant 'ce[ccfa_threshold=0.8]': ccfa_threshold=0.8 is an option of method 'cc-fa', "
                   "which 'ce' never reads: leave it out, or make it a variant of 'cc-fa'")


# ------------------------------------------------------------------ a key given twice
def test_a_repeated_key_is_refused_in_a_variant_in_set_and_in_task_options(capsys, tmp_path):
    py = _py_error(lambda: parse_method("fa[lambda_fa=1;lambda_fa=2]"))
    assert py == ("method variant 'fa[lambda_fa=1;lambda_fa=2]' gives lambda_fa twice (lambda_fa=1 and lambda_fa=2); "
                  "give each key once (the last one would silently win)")
    cli = _cli_error(["bench", "--methods", "ce,fa[lambda_fa=1;lambda_fa=2]", *FAST, "--out", "OUT"], capsys, tmp_path)
    assert cli.endswith(py)
    cli = _cli_error(["run", "--set", "eps=0.1", "--set", "eps=0.2", *FAST, "--out", "OUT"], capsys, tmp_path)
    assert cli == ("--set gives eps twice (eps=0.1 and eps=0.2); give each key once (the last one would silently "
                   "win)")
    cli = _cli_error(["run", "--task-option", "n=1", "--task-option", "n=2", *FAST, "--out", "OUT"], capsys, tmp_path)
    assert cli.startswith("--task-option gives n twice (n=1 and n=2)")


# ------------------------------------------------------------------ absurd budgets
def test_an_absurd_budget_is_refused_with_its_bound(capsys, tmp_path):
    cli = _cli_error(["run", *FAST, "--min-steps", "1000000000", "--out", "OUT"], capsys, tmp_path)
    py = _py_error(lambda: DistillConfig(min_steps=1_000_000_000))
    assert cli == py == ("min_steps must be <= 1000000; got min_steps=1000000000; counted in optimiser steps; a budget "
                         "beyond this is a typo, not a plan (the paper trains 100 epochs); lower it")
    assert _py_error(lambda: DistillConfig(epochs=10**6)).startswith("epochs must be <= 100000; got epochs=1000000")
    from cmkd_lab.distill.config import MAX_EPOCHS, planned_epochs
    cfg = DistillConfig(epochs=1, min_steps=1_000_000)
    assert planned_epochs(cfg, 100) == 10_000
    msg = _py_error(lambda: planned_epochs(cfg, 1))
    assert msg == (f"min_steps=1000000 at 1 optimiser step(s) per epoch means 1000000 epochs, and a run takes at most "
                   f"{MAX_EPOCHS}: lower min_steps or raise batch_size / student_fraction")


def test_a_warm_up_longer_than_the_run_is_refused(capsys, tmp_path):
    cli = _cli_error(["run", "--preset", "paper", *FAST, "--out", "OUT"], capsys, tmp_path)
    py = _py_error(lambda: DistillConfig(warmup_epochs=5, epochs=1))
    assert cli == py == ("warmup_epochs must be < epochs (the learning rate would never reach lr); got warmup_epochs=5, "
                         "epochs=1: lower warmup_epochs (e.g. --set warmup_epochs=0 with --preset paper on a short run) "
                         "or raise epochs")
    assert DistillConfig(warmup_epochs=5, epochs=6).warmup_epochs == 5


# ------------------------------------------------------------------ the type before the cross rule
def test_a_bad_type_is_reported_before_the_rule_joining_options(capsys, tmp_path):
    py = _py_error(lambda: DistillConfig(student_unlabelled="false"), TypeError)
    assert py == ("student_unlabelled must be true or false (True/False in Python; true/false unquoted in JSON, TOML "
                  "and --set); got student_unlabelled='false' of type str")
    cli = _cli_error(["run", "--set", "student_unlabelled='false'", *FAST, "--out", "OUT"], capsys, tmp_path)
    assert cli.startswith("--set: student_unlabelled must be true or false")


# ------------------------------------------------------------------ the environment
def test_a_bad_fast_mode_variable_is_refused_before_any_work(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CMKD_LAB_FAST", "maybe")
    expected = ("CMKD_LAB_FAST must be one of '1', 'true', 'yes', 'on', '0', 'false', 'no', 'off' (or unset); got "
                "CMKD_LAB_FAST='maybe': set it to 1 for the fast mode or unset it for the full mode")
    for argv in (["run", *FAST, "--out", "OUT"], ["run", "--epochs", "1", "--out", "OUT"]):
        assert _cli_error(argv, capsys, tmp_path) == expected
    assert not (tmp_path / "out").exists()
    from cmkd_lab._env import check_env
    assert _py_error(check_env) == expected


# ------------------------------------------------------------------ Trainer arguments
def test_checkpoint_must_be_a_path(small_task):
    msg = _py_error(lambda: distill(small_task, "ce", DistillConfig(epochs=1, teacher_epochs=1), checkpoint=123),
                    TypeError)
    assert msg == ("checkpoint must be a path (str or os.PathLike); got 123 of type int; pass a file path such as "
                   "'runs/x/checkpoint.pt', or None for none")


# ------------------------------------------------------------------ a temperature that overflows
def test_a_temperature_has_a_sane_range_and_the_advice_names_the_methods_knobs(capsys, tmp_path):
    py = _py_error(lambda: DistillConfig(classkd_temperature=1e30))
    assert py == ("classkd_temperature must be in (0, 100] (a softmax temperature; KD uses 1-20); got "
                  "classkd_temperature=1e+30")
    cli = _cli_error(["run", "--method", "class-kd", "--set", "classkd_temperature=1e30", *FAST, "--out", "OUT"],
                     capsys, tmp_path)
    assert cli == "--set: " + py
    from cmkd_lab.distill.methods.options import divergence_advice
    assert divergence_advice("class-kd") == "lower lr, classkd_weight or classkd_temperature"
    assert divergence_advice("fa") == "lower lr or lambda_fa, or raise eps"
    assert divergence_advice("ucmkd") == "lower lr, inner_lr, lambda_fa or lambda_la, or raise eps"
    assert divergence_advice("ce") == "lower lr"
    from cmkd_lab.distill.config import option_table
    from cmkd_lab.distill.methods import METHODS
    for name, cls in METHODS.items():  # every knob is an option of the table, and the method's own or shared
        for k in (*cls.knobs, *cls.knobs_up):
            assert k in option_table() and option_table()[k].method in (None, name), (name, k)


# ------------------------------------------------------------------ --workers, one rule
@pytest.mark.parametrize("cmd,n", [("bench", "-1"), ("bench", "0"), ("sweep", "0"), ("sweep", "-1")])
def test_workers_follow_one_rule_in_bench_and_sweep(cmd, n, capsys, tmp_path):
    msg = _cli_error([cmd, "--workers", n, *FAST, "--out", "OUT"], capsys, tmp_path)
    assert msg == (f"--workers must be an integer >= 1 (the local processes that run at once); got --workers {n}: "
                   "pass 1 to run one at a time, or leave it out for the default")


def test_workers_rule_is_the_same_in_python():
    from cmkd_lab._validation import check_workers
    assert check_workers(None) is None and check_workers(3) == 3
    from cmkd_lab.experiments.runner import check_workers as grid_workers  # run_bench's and run_sweep's
    for bad in (0, -1, True, 1.5):
        for check in (check_workers, grid_workers):
            with pytest.raises(ValueError, match=r"^workers must be an integer >= 1 \(the local processes that run "
                                                 r"at once\); got workers="):
                check(bad)
    assert grid_workers(None) >= 1 and grid_workers(2) == 2 and grid_workers(1) == 1


# ------------------------------------------------------------------ every option, odd values, every door
ODD = ["abc", "", "null", "[]", "{}", "-1", "0", "1e30", "true", '"1e-3"', "NaN", "-Infinity", "1" + "0" * 400]


def test_every_option_refuses_an_odd_value_by_name_and_alike_at_every_door():
    """Each option of the table, given each odd value as --set writes it: accepted, or refused with one line
    that starts with the option's name — the same text from the constructor and from --set."""
    from cmkd_lab._validation import parse_value
    from cmkd_lab.cli import build_config, make_parser
    from cmkd_lab.distill.config import option_table
    refused = 0
    for name in option_table():
        for raw in ODD:
            v = parse_value(raw)
            try:
                DistillConfig(**{name: v, "epochs": 100})
            except (TypeError, ValueError) as e:
                refused += 1
                assert str(e).startswith(name) and "\n" not in str(e), (name, raw, str(e))
                with pytest.raises(type(e)) as cli:
                    build_config(make_parser().parse_args(["bench", "--out", "o", "--epochs", "100",
                                                           "--set", f"{name}={raw}"]))
                assert str(cli.value) in (f"--set: {e}", str(e))  # a rule joining options: no one layer to name
    assert refused > 8 * len(option_table())
