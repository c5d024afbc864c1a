"""Issue 25, the gap door and the core: every input a new user tried that went wrong or read unclearly,
kept as a regression test (faults 3 and 4, the ``gap`` command's messages, two widget doors).

Each message names the parameter (or flag, or file), the rule, the value and the remedy, in one line."""
import html
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cmkd_lab import CrossModalTask, DistillConfig, distill, explore_gap, explore_run_gap, make_synthetic_task
from cmkd_lab.cli import main
from cmkd_lab.diagnostics import linear_mmd, mmd_permutation_test, rbf_bandwidths

FLOAT32 = r"beyond float32 \(max 3.4e\+38\), the precision cmkd_lab trains in; rescale \(standardise\) the inputs"


def _sets(n=60, m=50, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 0.8 + 0.5, rng.integers(0, 3, n),
            rng.integers(0, 3, m))


def _one_error_line(capsys, rc, expect_rc=2) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == expect_rc and len(err) == 1 and err[0].startswith("python -m cmkd_lab gap: error: "), (rc, err)
    return err[0]


@pytest.fixture()
def files(tmp_path):
    A, B, ya, yb = _sets()
    np.savez(tmp_path / "a.npz", features=A, labels=ya)
    np.savez(tmp_path / "b.npz", features=B, labels=yb)
    np.savez(tmp_path / "big_a.npz", features=A * 1e200, labels=ya)
    np.savez(tmp_path / "big_b.npz", features=B * 1e200, labels=yb)
    np.savez(tmp_path / "obj.npz", features=np.array([[1, "x"]] * 10, dtype=object), labels=ya[:10])
    (tmp_path / "folder.npz").mkdir()
    return tmp_path


# ------------------------------------------------------------------ fault 3: features of any scale
def test_gap_on_huge_features_is_refused_like_from_arrays(files, capsys):
    rc = main(["gap", str(files / "big_a.npz"), str(files / "big_b.npz"), "--out", str(files / "o"),
               "--projection", "none", "--permutations", "10"])
    line = _one_error_line(capsys, rc)
    assert f"A file '{files / 'big_a.npz'}': features holds values up to 3.11e+200, " in line
    import re
    assert re.search(FLOAT32, line)
    A, B, _, _ = _sets()
    with pytest.raises(ValueError, match=r"z_a holds values up to 3.11e\+200, " + FLOAT32):
        explore_gap(A * 1e200, B, n_permutations=0)
    with pytest.raises(ValueError, match=r"teacher_x holds values up to 3.11e\+200, " + FLOAT32):
        CrossModalTask.from_arrays(A * 1e200, np.arange(60) % 3, B, np.arange(50) % 3)
    with pytest.raises(ValueError, match=r"z_b holds values no larger than 2.62e-41, below float32.s smallest normal "
                                         r"number \(1.2e-38\): in float32, the precision cmkd_lab trains in, they are "
                                         r"zeros"):
        explore_gap(A, B * 1e-41, n_permutations=0)


@pytest.mark.parametrize("scale,dtype", [(1e200, torch.float64), (1e-200, torch.float64), (1e19, torch.float32),
                                         (1e-19, torch.float32)])
def test_the_mmd_tests_are_scale_free(scale, dtype):
    """The statistic with bandwidths scaled alike is the same (no ZeroDivisionError in the bandwidth chain,
    no overflow of the squared distances), and so is its p-value."""
    A, B, _, _ = _sets()
    x, y = torch.as_tensor(A), torch.as_tensor(B)
    bw = rbf_bandwidths(y)
    ref = mmd_permutation_test(x, y, bandwidth=bw, n_permutations=50, seed=1)
    got = mmd_permutation_test((x * scale).to(dtype), (y * scale).to(dtype), bandwidth=[b * scale for b in bw],
                               n_permutations=50, seed=1)
    assert got["mmd2"] == pytest.approx(ref["mmd2"], rel=1e-4, abs=1e-7) and got["p_value"] == ref["p_value"]
    assert rbf_bandwidths((y * scale).to(dtype)) == pytest.approx([b * scale for b in bw], rel=1e-5)
    lin, lin_ref = (linear_mmd(u, v, bandwidth=w) for u, v, w in
                    (((x * scale).to(dtype), (y * scale).to(dtype), [b * scale for b in bw]), (x, y, bw)))
    assert lin["mmd2"] == pytest.approx(lin_ref["mmd2"], rel=1e-4, abs=1e-7)


def test_a_bandwidth_beyond_the_dtype_is_refused_by_name():
    A, B, _, _ = _sets()
    with pytest.raises(ValueError, match=r"bandwidth must be wider than .* for these features \(they span .*; "
                                         r"torch.float32\); got bandwidth=\[1e-30\]: take it from rbf_bandwidths"):
        mmd_permutation_test(torch.as_tensor(A).float(), torch.as_tensor(B).float(), bandwidth=1e-30,
                             n_permutations=0)


def _leaves(d, p=""):
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, f"{p}.{k}")
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield from _leaves(v, f"{p}[{i}]")
    else:
        yield p, d


@pytest.mark.parametrize("scale", [1e-30, 1e19, 1e37])
def test_every_number_of_explore_gap_follows_the_scale(scale):
    """Each number of the result is the unscaled one times 1, c or c² (a distance, a squared distance), and
    nothing is lost (a threshold absolute in the features' units made None of tiny features' quantities)."""
    A, B, ya, yb = _sets()
    kw = dict(y_a=ya, y_b=yb, pairs=np.stack([np.arange(40), np.arange(40)], 1), n_permutations=20, cv=3)
    ref = dict(_leaves(explore_gap(A, B, **kw)))
    got = dict(_leaves(explore_gap(A * scale, B * scale, **kw)))
    bad = []
    for k, v in ref.items():
        if "timings_s" in k or isinstance(v, str):
            continue
        g = got.get(k, "missing")
        if v is None or isinstance(v, bool) or isinstance(g, bool) or g is None:
            bad += [(k, v, g)] if g != v else []
        elif not any(math.isclose(g, v * scale ** p, rel_tol=1e-4, abs_tol=1e-9 * scale ** p) for p in (0, 1, 2)):
            bad.append((k, v, g))
    assert not bad, bad[:10]


# ------------------------------------------------------------------ fault 4: a task name leaves the cache
@pytest.mark.parametrize("name", ["../../escaped", "a/b", "..", ".hidden", "a\\b", "x" * 300])
def test_a_task_name_never_writes_outside_the_teacher_cache(tmp_path, monkeypatch, name):
    from cmkd_lab.distill.teacher import get_teacher
    cache = tmp_path / "cache" / "inner"
    monkeypatch.setenv("CMKD_LAB_CACHE", str(cache))
    rng = np.random.default_rng(0)
    task = CrossModalTask.from_arrays(rng.normal(size=(60, 4)), np.arange(60) % 2, rng.normal(size=(60, 4)),
                                      np.arange(60) % 2, name=name)
    get_teacher(task, DistillConfig(teacher_epochs=1, batch_size=32))
    written = sorted((tmp_path / "cache").rglob("*"))
    assert written and all(p == cache or p.is_relative_to(cache) for p in written), written
    files = [p for p in written if not p.is_dir()]
    dirs = [p for p in written if p.is_dir()]
    # the entry and its lock, side by side in teachers/: nothing else, nowhere else
    assert dirs == [cache, cache / "teachers"] and {p.parent for p in files} == {cache / "teachers"}, written
    assert sorted(p.suffix for p in files) == [".lock", ".pt"], written


def test_safe_name():
    from cmkd_lab._names import safe_name
    assert safe_name("hapt") == "hapt" and safe_name("digits-speech") == "digits-speech"
    for bad in ("../../escaped", "a/b", "..", ".", "", "a b", "x" * 300, "é"):
        s = safe_name(bad)
        assert s and len(s) <= 64 and "/" not in s and "\\" not in s and not s.startswith("."), (bad, s)
    assert safe_name("a/b") != safe_name("a_b") == "a_b"  # a name that had to change keeps its own identity
    with pytest.raises(TypeError, match="name must be a string; got int"):
        safe_name(3)


# ------------------------------------------------------------------ the gap door's messages
def test_an_object_array_names_its_file(files, capsys):
    rc = main(["gap", str(files / "obj.npz"), str(files / "b.npz"), "--out", str(files / "o")])
    line = _one_error_line(capsys, rc)
    assert (f"A file '{files / 'obj.npz'}': its array 'features' cannot be read (ValueError: Object arrays cannot "
            "be loaded when allow_pickle=False); save plain numeric arrays with numpy.savez") in line


def test_a_missing_pairs_file_does_not_exist(files, capsys):
    rc = main(["gap", str(files / "a.npz"), str(files / "b.npz"), "--out", str(files / "o"), "--pairs",
               str(files / "missing.npy")])
    line = _one_error_line(capsys, rc)
    assert line.endswith(f"--pairs must be 'rows' or a .npy / .csv file of (row in A, row in B) pairs; "
                         f"'{files / 'missing.npy'}' does not exist")
    rc = main(["gap", str(files / "a.npz"), str(files / "b.npz"), "--out", str(files / "o"), "--pairs", str(files)])
    assert _one_error_line(capsys, rc).endswith(f"'{files}' is a directory")


def test_a_directory_given_as_an_array_file(files, capsys):
    rc = main(["gap", str(files / "folder.npz"), str(files / "b.npz"), "--out", str(files / "o")])
    assert _one_error_line(capsys, rc).endswith(f"A must be a .npz or .npy file; '{files / 'folder.npz'}' is a "
                                                "directory")


def test_an_unusable_out_is_named_with_the_flag(files, capsys):
    rc = main(["gap", str(files / "a.npz"), str(files / "b.npz"), "--out", "/proc/cmkd_lab_x"])
    line = _one_error_line(capsys, rc)
    assert "--out '/proc/cmkd_lab_x' cannot be created (No such file or directory" in line \
        and line.endswith("choose a folder you can write to")


def test_a_too_long_out_is_named_with_the_flag_and_the_limit(files, capsys):
    # store.check_out_dir (every door's --out) names the flag, the length, the file system's limit, the remedy
    rc = main(["gap", str(files / "a.npz"), str(files / "b.npz"), "--out", "x" * 300])
    line = _one_error_line(capsys, rc)
    assert "--out names a folder of 300 bytes" in line and "at most 255" in line and line.endswith(
        "choose a shorter --out")


def test_a_read_only_out_is_named_with_the_flag(files, capsys):
    probe = Path("/sys/cmkd_lab_probe")
    try:
        probe.mkdir()
    except OSError:
        pass
    else:  # pragma: no cover - a writable /sys
        probe.rmdir()
        pytest.skip("/sys is writable here")
    rc = main(["gap", str(files / "a.npz"), str(files / "b.npz"), "--out", str(probe / "x")])
    line = _one_error_line(capsys, rc)
    assert f"--out '{probe / 'x'}' cannot be created (" in line and line.endswith("choose a folder you can write to")


def test_png_with_quiet_says_why_nothing_was_written(files, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "kaleido", None)  # makes `import kaleido` fail
    assert main(["gap", str(files / "a.npz"), str(files / "b.npz"), "--out", str(files / "o"), "--projection",
                 "none", "--permutations", "10", "--png", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.strip() == ("python -m cmkd_lab gap: warning: --png: PNG export skipped: "
                                                 "kaleido is not installed (pip install kaleido; it also needs a "
                                                 "Chrome or Chromium, e.g. apt-get install chromium)")


def test_explore_gap_pairs_as_a_word_points_to_pairs_true():
    A, B, _, _ = _sets(n=50)
    with pytest.raises(TypeError, match=r"pairs must be True \(row i of z_a and row i of z_b are one instance\) or "
                                        r"an integer array of shape \(P, 2\); got pairs='rows': pass pairs=True"):
        explore_gap(A, B, pairs="rows")


class _StopAfter:
    """Stops the run at the end of an epoch, as Ctrl-C does."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_begin(self, trainer): ...

    def on_step_end(self, trainer, step, terms): ...

    def on_epoch_end(self, trainer, record):
        if record.get("epoch") == self.epoch:
            trainer.stop()

    def on_train_end(self, trainer, result): ...


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    task = make_synthetic_task(n_teacher=300, n_student=300, seed=0)
    r = distill(task, "fa", DistillConfig(epochs=4, teacher_epochs=1, batch_size=64), callbacks=[_StopAfter(1)])
    assert r["status"] == "interrupted" and r["epochs_done"] == 1
    d = tmp_path_factory.mktemp("interrupted")
    (d / "result.json").write_text(json.dumps(r))
    return d, r


def test_gap_of_an_interrupted_run_says_which_epochs_and_why(interrupted, capsys):
    d, r = interrupted
    res = explore_run_gap(r, n_permutations=0)
    assert res["epochs"] == [0, 1] and res["run"]["status"] == "interrupted"
    note = ("the run is interrupted after 1 of 4 epochs: 'after' is its last snapshot, epoch 1 (compared with "
            "epoch 0), not the end of a finished run")
    assert res["notes"] == [note] and note in res["after"]["notes"]
    assert main(["gap", "--run", str(d), "--out", str(d / "g"), "--projection", "none", "--permutations", "0"]) == 0
    cap = capsys.readouterr()
    assert "epoch 0:" in cap.out and "epoch 1:" in cap.out and cap.err.strip() == f"note: {note}"
    assert html.escape(note) in (d / "g" / "gap.html").read_text()


def test_a_damaged_snapshot_is_named_where_it_sits(interrupted, tmp_path, capsys):
    _, r = interrupted
    bad = json.loads(json.dumps(r))
    bad["diagnostics"]["snapshots"][-1]["features_student"] = bad["diagnostics"]["snapshots"][-1][
        "features_student"][:2]
    (tmp_path / "result.json").write_text(json.dumps(bad))
    rc = main(["gap", "--run", str(tmp_path), "--out", str(tmp_path / "g"), "--projection", "none"])
    line = _one_error_line(capsys, rc)
    assert line.endswith("the run's result.json holds 2 row(s) in diagnostics.snapshots[1].features_student (epoch "
                         "1); the gap needs a finite (N >= 4, D) feature matrix there: re-run with n_snapshot >= 4 "
                         "(DiagnosticsCallback), or pass another run (this file may be damaged)")
    bad["diagnostics"]["snapshots"][0]["features_student"] = "garbage"
    with pytest.raises(ValueError, match=r"holds no numeric matrix in diagnostics.snapshots\[0\].features_student"):
        explore_run_gap(bad)


# ------------------------------------------------------------------ two widget doors
@pytest.mark.parametrize("kw,match", [
    (dict(epochs=2.7, teacher_epochs=1), r"epochs must be an integer; got epochs=2.7 of type float"),
    (dict(epochs=2, teacher_epochs=True), r"teacher_epochs must be an integer; got teacher_epochs=True of type bool"),
    (dict(epochs=2, teacher_epochs=1, seed=0.9), r"seed must be an integer; got seed=0.9 of type float"),
    (dict(epochs=None, teacher_epochs=1), r"epochs must be an integer; got epochs=None of type NoneType"),
])
def test_debugger_config_refuses_what_it_used_to_round(kw, match):
    from cmkd_lab.widgets.debugger import debugger_config
    with pytest.raises(TypeError, match=match):
        debugger_config(**kw)
    cfg = debugger_config(epochs=np.int64(3), teacher_epochs=1, eps=np.float32(0.5))  # widget values still work
    assert cfg.epochs == 3 and type(cfg.epochs) is int and cfg.eps == 0.5


def test_run_byod_refuses_an_unknown_baseline_before_training(monkeypatch):
    from cmkd_lab.widgets import byod, quickstart
    task = make_synthetic_task(n_teacher=100, n_student=100, seed=0)

    def never(**kw):
        raise AssertionError("trained before the names were checked")
    monkeypatch.setattr(quickstart, "run_quickstart", never)
    monkeypatch.setattr(quickstart, "run_with_baseline", never)
    with pytest.raises(ValueError, match=r"baseline must be one of .*'ce'.*; got baseline='nosuch'"):
        byod.run_byod(task, baseline="nosuch")
    with pytest.raises(ValueError, match=r"method must be one of .*; got method='ucmdk' \(did you mean 'ucmkd'\?\)"):
        byod.run_byod(task, method="ucmdk")
