"""The store's promises: one process per directory (a second is refused, naming the first), one
builder per cache entry (a second waits, then reads), nothing stale read back (identities keyed on
options, data and code), a SIGTERM during the report loses nothing, an unwritable cache is a warning."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cmkd_lab import DistillConfig
from cmkd_lab.store import (DirectoryInUse, check_out_dir, claim, compare_identity, code_version, read_json,
                            write_json)

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path):
    return dict(os.environ, PYTHONPATH=str(ROOT), CMKD_LAB_CACHE=str(tmp_path / "cache"))


def test_a_second_process_is_refused_a_held_directory_naming_the_first(tmp_path):
    d = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from cmkd_lab.store import claim\n"
        f"with claim({str(d)!r}):\n    print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True, env=_env(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryInUse, match=rf"run directory '{d}' is in use by pid {holder.pid} on .*, since "
                                                 r".*; wait for it to finish or choose another --out"):
            with claim(d):
                pass
        # The command line: exit 2, one line naming the holder.
        r = subprocess.run([sys.executable, "-m", "cmkd_lab", "run", "--task", "synthetic", "--fast", "--epochs", "1",
                            "--teacher-epochs", "1", "--quiet", "--out", str(d)], capture_output=True, text=True,
                           env=_env(tmp_path), cwd=tmp_path)
        assert r.returncode == 2 and f"is in use by pid {holder.pid}" in r.stderr
        assert not (d / "result.json").exists()
    finally:
        holder.kill()
        holder.wait()
    with claim(d):  # the kernel released the dead holder's lock: no stale lock file to clean by hand
        pass


def test_two_runs_into_one_directory_one_finishes_and_one_is_refused(tmp_path):
    out = tmp_path / "same"
    cmd = [sys.executable, "-m", "cmkd_lab", "run", "--task", "synthetic", "--fast", "--epochs", "3",
           "--teacher-epochs", "2", "--quiet", "--out", str(out)]
    a = subprocess.Popen(cmd + ["--method", "ce"], stderr=subprocess.PIPE, text=True, env=_env(tmp_path), cwd=tmp_path)
    t0 = time.monotonic()
    while not (out / ".lock").exists() and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    b = subprocess.run(cmd + ["--method", "fa"], capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path)
    a.wait(timeout=300)
    results = json.loads((out / "result.json").read_text())
    if b.returncode == 2:  # refused while ce held the folder
        assert "is in use by pid" in b.stderr and a.returncode == 0 and results["method"] == "ce"
    else:  # ce had finished already: fa is refused by the result that exists, not mixed in
        assert b.returncode == 2 and "already exists" in b.stderr and results["method"] == "ce"


def test_one_teacher_is_trained_once_when_two_processes_ask_for_it(tmp_path):
    code = ("import json, sys; from cmkd_lab import DistillConfig, make_synthetic_task\n"
            "from cmkd_lab.distill.teacher import get_teacher\n"
            "t = make_synthetic_task(n_teacher=400, n_student=200, seed=0)\n"
            "print(json.dumps(get_teacher(t, DistillConfig(teacher_epochs=8))[1]['teacher_cached']))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env(tmp_path))
             for _ in range(2)]
    cached = sorted(json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs)
    assert cached == [False, True]  # one trained it; the other waited for the lock and read it
    assert len(list((tmp_path / "cache" / "teachers").glob("*.pt"))) == 1


def test_an_unwritable_cache_is_a_warning_and_the_run_goes_on(tmp_path, monkeypatch, small_task):
    from cmkd_lab.distill.teacher import get_teacher
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CMKD_LAB_CACHE", str(blocker / "cache"))  # nothing can be created under a file
    with pytest.warns(RuntimeWarning, match=r"the teacher cache .* cannot be written .*CMKD_LAB_CACHE"):
        model, info = get_teacher(small_task, DistillConfig(teacher_epochs=1))
    assert info["teacher_cached"] is False and model is not None


def test_a_teacher_made_by_other_code_is_not_read_back(tmp_path, monkeypatch, small_task):
    from cmkd_lab.distill import teacher  # (cmkd_lab.distill as an attribute is the distill() function)
    monkeypatch.setenv("CMKD_LAB_CACHE", str(tmp_path / "c"))
    cfg = DistillConfig(teacher_epochs=1)
    assert teacher.get_teacher(small_task, cfg)[1]["teacher_cached"] is False
    assert teacher.get_teacher(small_task, cfg)[1]["teacher_cached"] is True
    monkeypatch.setattr(teacher, "code_version", lambda: "other-code")
    assert teacher.get_teacher(small_task, cfg)[1]["teacher_cached"] is False  # another key: trained again


def test_sigterm_while_the_report_is_written_loses_nothing(tmp_path, monkeypatch, small_task):
    import cmkd_lab.report as report
    from cmkd_lab.experiments import run_one
    real = report.write_report

    def slow(result, path, **kw):
        os.kill(os.getpid(), signal.SIGTERM)  # the signal arrives mid-report
        time.sleep(0.2)
        return real(result, path, **kw)
    monkeypatch.setattr(report, "write_report", slow)
    r = run_one(small_task, "ce", DistillConfig(epochs=1, teacher_epochs=1, diagnostics_every=0), tmp_path / "r")
    assert r["status"] == "completed"
    assert (tmp_path / "r" / "report.html").stat().st_size > 0
    assert json.loads((tmp_path / "r" / "result.json").read_text())["status"] == "completed"


def test_compare_identity_tells_stale_from_other_options():
    cur = {"task": "t", "config": {"epochs": 2}, "code_version": "v2", "data": "d"}
    assert compare_identity(dict(cur), cur) == ("same", [])
    assert compare_identity(dict(cur, code_version="v1"), cur) == ("stale", ["code_version"])
    assert compare_identity(dict(cur, data="other"), cur) == ("stale", ["data"])
    assert compare_identity(dict(cur, config={"epochs": 3}), cur) == ("different", ["config"])
    assert compare_identity(dict(cur, config={"epochs": 3}, code_version="v1"), cur) == ("different", ["config"])
    assert compare_identity(None, cur) == ("stale", ["identity"])


def test_code_version_ignores_comments_docstrings_and_messages_but_not_code():
    import ast
    from cmkd_lab.store import _strip_docstrings

    def dump(src):
        return ast.dump(_strip_docstrings(ast.parse(src)), annotate_fields=False)
    a = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    b = 'def f(x):\n    """Another doc."""\n\n    # a comment\n    return x + 1\n'
    c = 'def f(x):\n    return x + 2\n'
    assert dump(a) == dump(b) != dump(c)
    # the wording of an error or a warning is not code; its type, its condition and its category are
    e1 = 'def f(x):\n    if x < 0:\n        raise ValueError(f"x must be >= 0; got {x}")\n    warnings.warn("old", UserWarning)\n'
    e2 = 'def f(x):\n    if x < 0:\n        raise ValueError("x must be non-negative")\n    warnings.warn("new words", UserWarning)\n'
    e3 = 'def f(x):\n    if x < 0:\n        raise TypeError("x must be >= 0")\n    warnings.warn("old", UserWarning)\n'
    e4 = 'def f(x):\n    if x <= 0:\n        raise ValueError("x must be >= 0")\n    warnings.warn("old", UserWarning)\n'
    e5 = 'def f(x):\n    if x < 0:\n        raise ValueError("x must be >= 0")\n    warnings.warn("old", RuntimeWarning)\n'
    assert dump(e1) == dump(e2)
    assert len({dump(e1), dump(e3), dump(e4), dump(e5)}) == 4
    assert code_version() == code_version() and len(code_version()) == 16


def test_json_files_are_named_in_their_errors(tmp_path):
    p = tmp_path / "x.json"
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=r"run result '.*x.json' is not UTF-8 text"):
        read_json(p, what="run result")
    p.write_text('{"a": 1,')
    with pytest.raises(ValueError, match=r"is not valid JSON .*cut short while being written"):
        read_json(p)
    write_json(p, {"a": 1})
    assert read_json(p) == {"a": 1}
    with pytest.raises(ValueError, match=r"--out must name a folder; got --out ''"):
        check_out_dir("")


def _die_on_odd(job):
    if job % 2:
        os._exit(3)  # the worker process dies (as when the kernel kills it for memory)
    return {"value": job}


def test_a_worker_that_dies_is_a_failed_job_not_a_lost_grid():
    from cmkd_lab.experiments.executors import Pool
    pool = Pool(2)
    try:
        out = dict(pool.map_unordered(_die_on_odd, [0, 1, 2]))
    finally:
        pool.close()
    assert len(out) == 3 and any("error" in r for r in out.values())
    assert all("ran out of memory or crashed" in r["error"] for r in out.values() if "error" in r)
