"""The command line: schema of result.json and clean errors."""
import json
import os
import subprocess
import sys

import pytest

from cmkd_lab.cli import main

REQUIRED = {"task", "method", "seed", "pairing", "epochs", "student_test_acc", "student_val_acc",
            "teacher_test_acc", "history", "config", "versions", "wall_s"}


def test_run_writes_schema(tmp_path):
    out = tmp_path / "r"
    rc = main(["run", "--task", "synthetic", "--method", "ucmkd", "--seed", "0", "--epochs", "2", "--fast",
               "--teacher-epochs", "2", "--out", str(out), "--quiet"])
    assert rc == 0
    r = json.loads((out / "result.json").read_text())
    assert REQUIRED <= set(r)
    assert len(r["history"]) == 2 and {"epoch", "ce", "fa", "la", "val_acc"} <= set(r["history"][0])
    # the test split where a result reads it: the best-validation epoch and the last (eval_test="best")
    assert {h["epoch"] for h in r["history"] if "test_acc" in h} == {r["best_epoch"], 2}
    assert (out / "report.html").stat().st_size > 10_000


def test_run_refuses_existing_result(tmp_path, capsys):
    out = tmp_path / "r"
    args = ["run", "--task", "synthetic", "--method", "ce", "--epochs", "1", "--fast", "--teacher-epochs", "1",
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists; pass --overwrite" in err[0]
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize("args,match", [
    (["run", "--task", "nope", "--out", "X"], "task must be one of"),
    (["run", "--method", "nope", "--fast", "--out", "X"], "method must be one of"),
    (["run", "--pairing", "nope", "--out", "X"], "pairing must be one of"),
    (["run", "--method", "kd", "--fast", "--teacher-epochs", "1", "--out", "X"], "cannot run with pairing='unpaired'"),
    (["run", "--set", "eps=-1", "--out", "X"], "eps must be > 0"),
    (["run", "--set", "epoch=3", "--out", "X"], "unknown keys"),
    (["run", "--device", "tpu", "--out", "X"], "device must be"),
    (["report", "/nonexistent"], "must hold a result.json"),
])
def test_bad_arguments_exit_2_with_one_line(args, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


def test_methods_and_module_entry_point():
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-m", "cmkd_lab", "methods"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "ucmkd" in p.stdout and "[needs pairs]" in p.stdout
    p = subprocess.run([sys.executable, "-m", "cmkd_lab", "run"], capture_output=True, text=True, env=env)
    assert p.returncode == 2 and "--out" in p.stderr
