"""The command line: every bad input exits with status 2 and one line on stderr
that names the argument, the rule and the value."""
import json
import shutil

import pytest

from cmkd_lab.cli import main

FAST = ["--task", "synthetic", "--fast", "--epochs", "1", "--teacher-epochs", "1", "--quiet"]

# (label, argv, regex the single stderr line must match); "OUT" is replaced by a fresh folder.
BAD = [
    # argparse
    ("no subcommand", [], r"the following arguments are required: cmd"),
    ("unknown subcommand", ["fly"], r"argument cmd: invalid choice: 'fly'"),
    ("run without --out", ["run"], r"the following arguments are required: --out \(see python -m cmkd_lab run --help\)"),
    ("epochs not an int", ["run", "--epochs", "ten", "--out", "OUT"], r"argument --epochs: invalid int value: 'ten'"),
    ("lr not a number", ["run", "--lr", "fast", "--out", "OUT"], r"argument --lr: invalid float value: 'fast'"),
    ("abbreviated flag", ["run", "--epoch", "3", "--out", "OUT"], r"unrecognized arguments: --epoch 3"),
    ("unknown flag", ["run", "--lambda", "3", "--out", "OUT"], r"unrecognized arguments: --lambda 3"),
    # config values
    ("epochs = 0", ["run", "--epochs", "0", "--out", "OUT"], r"epochs must be >= 1; got epochs=0"),
    ("negative lr", ["run", "--lr", "-0.1", "--out", "OUT"], r"lr must be > 0; got lr=-0.1"),
    ("eps = 0", ["run", "--eps", "0", "--out", "OUT"], r"eps must be > 0; got eps=0.0"),
    ("negative seed", ["run", "--seed", "-1", "--out", "OUT"], r"seed must be >= 0; got seed=-1"),
    ("batch size 1", ["run", "--batch-size", "1", "--out", "OUT"], r"batch_size must be >= 2; got batch_size=1"),
    ("student fraction 0", ["run", "--student-fraction", "0", "--out", "OUT"], r"student_fraction must be in \(0, 1\]"),
    ("unknown pairing", ["run", "--pairing", "nope", "--out", "OUT"], r"pairing must be one of 'unpaired'"),
    ("unknown cost", ["run", "--cost", "cosin", "--out", "OUT"], r"cost must be one of .*got cost='cosin' \(did you mean 'cosine'\?\)"),
    ("unknown device", ["run", "--device", "tpu", "--out", "OUT"], r"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got device='tpu'"),
    ("unknown preset", ["run", "--preset", "papers", "--out", "OUT"], r"--preset must be one of 'default', 'paper'.*; got 'papers'"),
    ("--set without =", ["run", "--set", "eps", "--out", "OUT"], r"--set takes key=value; got 'eps'"),
    # the message names the flag that holds the bad option (and one type message per rule, at every door)
    ("--set unknown key", ["run", "--set", "epoch=3", "--out", "OUT"], r"--set has unknown keys \['epoch'\] \('epoch': did you mean 'epochs'\?\)"),
    ("--set wrong type", ["run", "--set", "epochs=many", "--out", "OUT"], r"--set: epochs must be an integer; got epochs='many' of type str"),
    ("--set bad value", ["run", "--set", "eps=-1", "--out", "OUT"], r"eps must be > 0; got eps=-1.0"),
    # config files
    ("missing config file", ["run", "--config", "nope.json", "--out", "OUT"], r"config file 'nope.json' does not exist"),
    ("config file, unknown key", ["run", "--config", "CFG:{\"lamda_fa\": 1}", "--out", "OUT"],
     r"--config .*cfg.json has unknown keys \['lamda_fa'\] \('lamda_fa': did you mean 'lambda_fa'\?\)"),
    ("config file, wrong type", ["run", "--config", "CFG:{\"epochs\": \"3\"}", "--out", "OUT"],
     r"--config .*cfg.json: epochs must be an integer; got epochs='3' of type str"),
    ("config file, invalid JSON", ["run", "--config", "CFG:{epochs: 3}", "--out", "OUT"], r"config file '.*cfg.json' is not valid JSON"),
    # names
    ("unknown task", ["run", "--task", "nope", "--out", "OUT"], r"task must be one of .*'synthetic'.*; got task='nope'"),
    ("unknown method", ["run", "--method", "ucmdk", "--out", "OUT"], r"method must be one of .*'ucmkd'.*; got method='ucmdk'"),
    ("paired method, unpaired run", ["run", "--method", "kd", *FAST, "--out", "OUT"], r"method 'kd' needs a teacher sample "
     r"tied to each student sample; it cannot run with pairing='unpaired'"),
    ("--data-root for a built-in task", ["run", "--data-root", "/tmp", "--out", "OUT"], r"--data-root is read by the tasks"),
    ("--overwrite with --resume", ["run", "--overwrite", "--resume", "--out", "OUT"], r"--overwrite and --resume exclude each other"),
    ("--out is a file", ["run", *FAST, "--out", "FILE"], r"--out must be a directory; '.*' is a file"),
    ("--out empty", ["run", *FAST, "--out", ""], r"--out must name a folder; got --out '': pass e.g. --out runs/"),
    ("--out blank, bench", ["bench", "--fast", "--out", "  "], r"--out must name a folder; got --out '  '"),
    ("--out empty, sweep", ["sweep", "--fast", "--out", ""], r"--out must name a folder; got --out ''"),
    ("--out empty, demo", ["demo", "--fast", "--out", ""], r"--out must name a folder; got --out ''"),
    ("--out cannot be created", ["run", *FAST, "--out", "/proc/x/run"],
     r"--out '/proc/x/run' cannot be created \(No such file or directory: '/proc/x'\); choose a folder you can "
     r"write to"),
    ("--out under a file", ["bench", "--fast", "--out", "FILE/sub"],
     r"--out '.*afile/sub' cannot be created \(Not a directory: '.*afile/sub'\); choose a folder"),
    ("--config is not a regular file", ["run", "--config", "/dev/null", "--out", "OUT"],
     r"config file '/dev/null' exists but is not a regular file \(a character device\); pass a .json or .toml file"),
    ("--config is empty", ["run", "--config", "CFG:  \n", "--out", "OUT"],
     r"config file '.*cfg.json' is empty; write the options in it \(a JSON object such as \{\"epochs\": 3\}\) or "
     r"leave --config out"),
    # bench
    ("bench: --seeds 0", ["bench", "--seeds", "0", "--out", "OUT"], r"--seeds must be between 1 and 1000 .*got --seeds 0"),
    ("bench: no methods", ["bench", "--methods", ",", "--out", "OUT"], r"--methods must list at least one method"),
    ("bench: unknown method", ["bench", "--methods", "ce,nope", "--fast", "--out", "OUT"], r"method must be one of .*got method='nope'"),
    ("bench: unknown pairing", ["bench", "--methods", "ce", "--pairing", "unpaired,pared", "--fast", "--out", "OUT"],
     r"pairing must be one of .*got pairing='pared' \(did you mean 'paired'\?\)"),
    # report
    ("report: no result", ["report", "/nonexistent"], r"RUN_DIR must hold a result.json; '/nonexistent/result.json' does not exist"),
    ("report: broken result", ["report", "BROKEN"], r"run result '.*result.json' is not valid JSON .*was it cut short "
     r"while being written"),
    ("report: empty object", ["report", "RESULT:{}"], r"'.*result.json' is not a cmkd_lab run result: it lacks the "
     r"required key\(s\) \['history', 'method', 'task'\]; pass the folder of a run written by python -m cmkd_lab run"),
    ("report: some keys missing", ["report", 'RESULT:{"task": "t", "history": []}'],
     r"lacks the required key\(s\) \['method'\]"),
    ("report: not an object", ["report", "RESULT:[1, 2]"],
     r"'.*result.json' is not a cmkd_lab run result: it must hold a JSON object; got a list"),
    ("report: history not a list", ["report", 'RESULT:{"task": "t", "method": "ce", "history": {"1": 2}}'],
     r"'.*result.json' is not a cmkd_lab run result: history must be a list of per-epoch records; got dict"),
    ("report: binary file", ["report", "RESULTB:"], r"run result '.*result.json' is not UTF-8 text \(invalid start "
     r"byte at byte 0\): it is not a file cmkd_lab wrote"),
]


def _prepare(argv, tmp_path):
    out = []
    for a in argv:
        if a == "OUT":
            a = str(tmp_path / "out")
        elif a.startswith("FILE"):
            (tmp_path / "afile").write_text("x")
            a = str(tmp_path / "afile") + a[4:]
        elif a == "BROKEN":
            (tmp_path / "broken").mkdir()
            (tmp_path / "broken" / "result.json").write_text('{"task": "synth')
            a = str(tmp_path / "broken")
        elif a.startswith("RESULT"):
            (tmp_path / "res").mkdir()
            data = a[7:].encode() if a.startswith("RESULT:") else b"\x89PNG\r\n\x1a\n\x00\xff\xfe"
            (tmp_path / "res" / "result.json").write_bytes(data)
            a = str(tmp_path / "res")
        elif a.startswith("CFG:"):
            (tmp_path / "cfg.json").write_text(a[4:])
            a = str(tmp_path / "cfg.json")
        out.append(a)
    return out


def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("label,argv,match", BAD, ids=[b[0] for b in BAD])
def test_bad_argument_exits_2_with_one_line(label, argv, match, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(_prepare(argv, tmp_path)) == 2
    line = _one_line(capsys)
    assert line.startswith("python -m cmkd_lab")
    import re
    assert re.search(match, line), line
    assert not (tmp_path / "out" / "result.json").exists()
    assert not any(p.name.startswith(".cmkd_lab") for p in tmp_path.rglob("*"))  # the --out probe leaves nothing
    if label.startswith("--out"):
        assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["afile"])  # nothing written where --out fails


def test_out_is_checked_before_the_task_is_loaded_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    import cmkd_lab.data as data
    monkeypatch.setattr(data, "load_task", lambda *a, **k: pytest.fail("the task was loaded before --out was checked"))
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        import os
        if os.access(tmp_path / "ro", os.W_OK):  # root ignores permissions: use a path under a file instead
            (tmp_path / "f").write_text("x")
            target = tmp_path / "f" / "run"
        else:
            target = tmp_path / "ro" / "a" / "run"
        assert main(["run", *FAST, "--out", str(target)]) == 2
        assert "--out" in (line := _one_line(capsys)) and str(target) in line and "cannot be created" in line
        assert not (tmp_path / "ro" / "a").exists()
        ok = tmp_path / "new" / "deep" / "run"
        monkeypatch.setattr(data, "load_task", lambda *a, **k: (_ for _ in ()).throw(ValueError("stop here")))
        assert main(["run", *FAST, "--out", str(ok)]) == 2
        assert "stop here" in _one_line(capsys)
        assert not (tmp_path / "new").exists()  # the check created nothing it left behind
    finally:
        (tmp_path / "ro").chmod(0o700)


def test_device_without_gpu_exits_2(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["run", *FAST, "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    assert "device='cuda' was asked for but no CUDA GPU is available here; use device='cpu' or 'auto'" in _one_line(capsys)


# ------------------------------------------------------------- existing outputs
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One completed 1-epoch run (result.json + checkpoint.pt)."""
    d = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", *FAST, "--method", "ce", "--out", str(d)]) == 0
    return d


def _copy(finished, tmp_path, drop=()):
    d = tmp_path / "run"
    shutil.copytree(finished, d)
    for name in drop:
        (d / name).unlink()
    return d


def _run(d, *extra):
    return main(["run", *FAST, "--method", "ce", "--out", str(d), *extra])


def test_existing_result_is_never_replaced_silently(finished, tmp_path, capsys):
    d = _copy(finished, tmp_path)
    before = (d / "result.json").read_bytes()
    assert _run(d) == 2
    assert "result.json' already exists; pass --overwrite to replace it or --resume to continue" in _one_line(capsys)
    assert (d / "result.json").read_bytes() == before


def test_checkpoint_of_an_unfinished_run_is_not_overwritten(finished, tmp_path, capsys):
    d = _copy(finished, tmp_path, drop=["result.json"])  # as after a SIGKILL: a checkpoint and no result
    before = (d / "checkpoint.pt").read_bytes()
    assert _run(d) == 2
    assert "holds the checkpoint of an unfinished run (checkpoint.pt); pass --resume to continue it or --overwrite" \
        in _one_line(capsys)
    assert (d / "checkpoint.pt").read_bytes() == before


def test_resume_without_checkpoint_but_with_a_result(finished, tmp_path, capsys):
    d = _copy(finished, tmp_path, drop=["checkpoint.pt"])
    assert _run(d, "--resume") == 2
    assert "cannot resume: " in (line := _one_line(capsys)) and "no checkpoint.pt to continue from; pass --overwrite" in line


@pytest.mark.parametrize("damage,match", [
    ("truncate", r"checkpoint '.*checkpoint.pt' failed its checksum .*: it is truncated or damaged; delete it"),
    ("flip", r"failed its checksum"),
    ("foreign", r"is not a cmkd_lab checkpoint \(no checksum header; \d+ bytes\)"),
])
def test_resume_from_a_damaged_checkpoint(finished, tmp_path, capsys, damage, match):
    import re
    d = _copy(finished, tmp_path)
    p = d / "checkpoint.pt"
    data = bytearray(p.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 100]
    elif damage == "flip":
        data[-50] ^= 0x01
    else:
        import torch
        torch.save({"student": {}}, p)
        data = bytearray(p.read_bytes())
    p.write_bytes(bytes(data))
    assert _run(d, "--resume") == 2
    assert re.search(match, _one_line(capsys))


@pytest.mark.parametrize("extra,match", [
    (["--method", "la"], r"checkpoint is for task='synthetic', method='ce'; this run is task='synthetic', method='la': "
                         r"resume with the same task and method"),
    (["--lr", "0.01"], r"checkpoint was written with a different config \(lr: 0.001 -> 0.01\); resume with the same options"),
    (["--seed", "1"], r"checkpoint was written for other data of task 'synthetic'|different config \(seed: 0 -> 1\)"),
])
def test_resume_with_another_method_or_config(finished, tmp_path, capsys, extra, match):
    import re
    d = _copy(finished, tmp_path)
    assert main(["run", *FAST, "--method", "ce", "--out", str(d), "--resume", *extra]) == 2
    assert re.search(match, _one_line(capsys))


def test_resume_of_a_completed_run_is_idempotent(finished, tmp_path):
    d = _copy(finished, tmp_path)
    before = json.loads((d / "result.json").read_text())
    assert _run(d, "--resume") == 0
    after = json.loads((d / "result.json").read_text())
    strip = lambda r: {k: v for k, v in r.items() if k not in ("versions",)}  # noqa: E731
    assert strip(after) == strip(before)


def test_bad_input_count():
    assert len(BAD) + 1 + 3 + 3 + 3 == 60


def test_seed_counts_are_capped_before_anything_is_allocated(tmp_path, capsys):
    # --seeds 10**9 used to build a billion-element plan and exhaust memory; now refused at once, by name.
    import time
    from cmkd_lab.experiments import run_bench, run_sweep
    from cmkd_lab.experiments.engine import MAX_SEEDS
    t0 = time.perf_counter()
    for cmd in ("bench", "sweep"):
        assert main([cmd, "--seeds", str(10 ** 9), "--fast", "--out", str(tmp_path / cmd)]) == 2
        assert f"--seeds must be between 1 and {MAX_SEEDS}" in capsys.readouterr().err
        assert main([cmd, "--seeds", "0", "--fast", "--out", str(tmp_path / cmd)]) == 2
        assert "got --seeds 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match=rf"seeds must hold at most {MAX_SEEDS} seeds .* got 1000000000"):
        run_bench("synthetic", ["ce"], ["unpaired"], range(10 ** 9), tmp_path / "b", fast=True)
    with pytest.raises(ValueError, match=r"seeds must hold at most"):
        run_sweep("synthetic", ["ce"], {"gap": [1.0]}, range(10 ** 9), tmp_path / "s", fast=True)
    with pytest.raises(TypeError, match=r"seeds\[i\] must be an integer; got seeds\[i\]='a'"):
        run_bench("synthetic", ["ce"], ["unpaired"], ["a"], tmp_path / "b2", fast=True)
    assert time.perf_counter() - t0 < 30
