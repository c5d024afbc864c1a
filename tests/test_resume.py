"""Runs and results: checkpoints, exact resume after SIGKILL / SIGTERM / Ctrl-C /
Stop, divergence, atomic writes, an interrupted bench, and loading that never
runs code from a file."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from cmkd_lab.distill import Callback, DistillConfig, Trainer
from cmkd_lab.distill.checkpoint import read_checkpoint, write_checkpoint
from cmkd_lab.experiments import run_one
from cmkd_lab.store import write_json

VOLATILE = {"wall_s", "s_per_epoch", "versions", "bench_wall_s"}


def canon(r):
    """A result without wall-clock times (``*time_s``, ``wall_s`` ...); everything else must match bit for bit."""
    def drop(o):
        if isinstance(o, dict):
            return {k: drop(v) for k, v in o.items() if k not in VOLATILE and not k.endswith("time_s")}
        if isinstance(o, (list, tuple)):
            return [drop(v) for v in o]
        return o
    return json.loads(json.dumps(drop(r)))  # tuples vs lists, as on disk


def assert_same_state(a: Path, b: Path):
    sa, sb = read_checkpoint(a), read_checkpoint(b)
    for part in ("student", "optimizer"):
        fa, fb = _flat(sa[part]), _flat(sb[part])
        assert fa.keys() == fb.keys()
        for k in fa:
            assert torch.equal(fa[k], fb[k]) if isinstance(fa[k], torch.Tensor) else fa[k] == fb[k], (part, k)
    assert torch.equal(sa["generator"], sb["generator"]) and torch.equal(sa["torch_rng"], sb["torch_rng"])


def _flat(d, prefix=""):
    out = {}
    for k, v in (d.items() if isinstance(d, dict) else enumerate(d)):
        if isinstance(v, (dict, list, tuple)) and not isinstance(v, torch.Tensor):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---------------------------------------------------------------- subprocess runs (the command line)
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # same threads in every process: same sums
EPOCHS = 12
RUN = [sys.executable, "-m", "cmkd_lab", "run", "--task", "synthetic", "--fast", "--epochs", str(EPOCHS),
       "--teacher-epochs", "1", "--method", "ucmkd", "--set", "diagnostics_every=0", "--quiet"]


def _cli(args, timeout=600):
    p = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


def _signal_after_first_checkpoint(args, watch: Path, sig):
    p = subprocess.Popen(args, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not watch.exists():
        if p.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint: {p.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            p.kill()
            pytest.fail("no checkpoint appeared")
        time.sleep(0.005)
    p.send_signal(sig)
    _, err = p.communicate(timeout=600)
    return p.returncode, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    rc, err = _cli(RUN + ["--out", str(out)])
    assert rc == 0, err
    return out


def test_sigkill_then_resume_is_bit_identical(reference, tmp_path):
    out = tmp_path / "run"
    rc, _ = _signal_after_first_checkpoint(RUN + ["--out", str(out)], out / "checkpoint.pt", signal.SIGKILL)
    assert rc == -signal.SIGKILL
    assert not (out / "result.json").exists()  # killed mid-run: nothing but whole checkpoints on disk
    done = json.loads(read_checkpoint(out / "checkpoint.pt")["meta"])["epoch"]
    assert 1 <= done < EPOCHS
    rc, err = _cli(RUN + ["--out", str(out), "--resume"])
    assert rc == 0, err
    a, b = (json.loads((d / "result.json").read_text()) for d in (reference, out))
    assert b["status"] == "completed" and len(b["history"]) == EPOCHS
    assert canon(a) == canon(b)
    assert_same_state(reference / "checkpoint.pt", out / "checkpoint.pt")


def test_sigterm_writes_an_interrupted_result_then_resume_is_bit_identical(reference, tmp_path):
    out = tmp_path / "run"
    rc, err = _signal_after_first_checkpoint(RUN + ["--out", str(out)], out / "checkpoint.pt", signal.SIGTERM)
    assert rc == 130, err
    assert "interrupted: continue with the same command and --resume" in err
    r = json.loads((out / "result.json").read_text())
    assert r["status"] == "interrupted" and r["interrupted"] is True
    assert 1 <= r["epochs_done"] < EPOCHS and len(r["history"]) == r["epochs_done"]
    assert [h["epoch"] for h in r["history"]] == list(range(1, r["epochs_done"] + 1))
    assert json.loads(read_checkpoint(out / "checkpoint.pt")["meta"])["epoch"] == r["epochs_done"]
    rc, err = _cli(RUN + ["--out", str(out), "--resume"])
    assert rc == 0, err
    assert canon(json.loads((reference / "result.json").read_text())) == canon(json.loads((out / "result.json").read_text()))
    assert_same_state(reference / "checkpoint.pt", out / "checkpoint.pt")


def test_interrupted_bench_resumes_to_the_same_results(reference, tmp_path):
    # The bench's first run has the options of RUN, so the uninterrupted `reference` is its answer too.
    bench = [sys.executable, "-m", "cmkd_lab", "bench", "--task", "synthetic", "--fast", "--epochs", str(EPOCHS),
             "--teacher-epochs", "1", "--methods", "ucmkd,ce", "--set", "diagnostics_every=0", "--quiet"]
    out = tmp_path / "b"
    first = out / "runs" / "unpaired" / "ucmkd" / "seed0"
    rc, err = _signal_after_first_checkpoint(bench + ["--out", str(out)], first / "checkpoint.pt", signal.SIGTERM)
    assert rc == 130, err
    assert json.loads((out / "results.json").read_text())["interrupted"] is True
    assert json.loads((first / "result.json").read_text())["status"] == "interrupted"
    assert not (out / "runs" / "unpaired" / "ce").exists()  # the grid stopped; it did not go on to the next run
    rc, err = _cli(bench + ["--out", str(out)])
    assert rc == 0, err
    res = json.loads((out / "results.json").read_text())
    assert res["interrupted"] is False and [r["status"] for r in res["runs"]] == ["completed", "completed"]
    assert canon(json.loads((first / "result.json").read_text())) == canon(json.loads((reference / "result.json").read_text()))
    assert_same_state(reference / "checkpoint.pt", first / "checkpoint.pt")
    assert not list(out.rglob("*.tmp"))
    assert (out / "results.md").read_text().count("| unpaired |") == 2
    # A finished run written with other options is refused, not mixed into the table (or replaced).
    from cmkd_lab.experiments import run_bench
    before = (first / "result.json").read_bytes()
    with pytest.raises(ValueError, match=r"hold runs made with other options .*differs in \['config'\].*choose "
                                         r"another --out, or pass --overwrite"):
        run_bench("synthetic", ["ucmkd"], ["unpaired"], [0], out,
                  DistillConfig(epochs=3, teacher_epochs=1, diagnostics_every=0), fast=True)
    assert (first / "result.json").read_bytes() == before


# ---------------------------------------------------------------- in-process: Stop, Ctrl-C, divergence
CFG = DistillConfig(epochs=4, teacher_epochs=2, batch_size=32, diagnostics_every=0)


@pytest.fixture(scope="module")
def ref_result(small_task):
    return Trainer(small_task, "ucmkd", CFG).fit()


class At(Callback):
    """Do ``what`` at (epoch index, step) of the run: ``stop`` (the notebook's Stop), ``ctrl-c`` or ``nan``."""

    def __init__(self, epoch, step, what):
        self.epoch, self.step, self.what, self.done = epoch, step, what, False

    def on_step_end(self, trainer, step, terms):
        if self.done or trainer.epoch != self.epoch or step != self.step:
            return
        self.done = True
        if self.what == "stop":
            trainer.stop()
        elif self.what == "ctrl-c":
            raise KeyboardInterrupt
        else:
            with torch.no_grad():
                next(trainer.student.parameters()).fill_(float("nan"))


@pytest.mark.parametrize("what", ["stop", "ctrl-c"])
def test_stop_or_ctrl_c_mid_epoch_then_resume(small_task, ref_result, tmp_path, what):
    out = tmp_path / "run"
    r = run_one(small_task, "ucmkd", CFG, out, callbacks=[At(2, 3, what)], report=False, diagnostics=False)
    assert r["status"] == "interrupted" and r["epochs_done"] == 2 and len(r["history"]) == 2
    assert r["dropped_steps"] == 4  # the cut epoch is dropped, never recorded as whole
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["status"] == "interrupted" and len(on_disk["history"]) == 2
    r2 = run_one(small_task, "ucmkd", CFG, out, resume=True, report=False, diagnostics=False)
    assert r2["status"] == "completed"
    assert canon(r2) == canon(ref_result)


def test_stop_during_the_last_step_then_fit_again_continues_exactly(small_task, ref_result):
    # Stop pressed during an epoch's last step: the epoch is whole, so a second fit() is the uninterrupted run.
    last = len(small_task.student["train"]) // CFG.batch_size - 1
    tr = Trainer(small_task, "ucmkd", CFG, callbacks=[At(1, last, "stop")])
    r = tr.fit()
    assert r["status"] == "interrupted" and r["epochs_done"] == 2 and r["dropped_steps"] == 0
    tr.callbacks = []
    r = tr.fit()  # the notebook's Start after Stop
    assert r["status"] == "completed" and canon(r) == canon(ref_result)


def test_non_finite_loss_stops_at_the_step_and_keeps_history(small_task, tmp_path):
    out = tmp_path / "run"
    with pytest.warns(RuntimeWarning, match=r"training stopped at epoch 2, step 3: loss terms .* became NaN/inf; lower lr, "
                                             r"inner_lr, lambda_fa or lambda_la, or raise eps. The history up to here "
                                             r"is kept"):
        r = run_one(small_task, "ucmkd", CFG, out, callbacks=[At(1, 1, "nan")], report=False, diagnostics=False)
    assert r["status"] == "diverged" and "at step 3" in r["error"]
    assert len(r["history"]) == 2 and "val_acc" in r["history"][0]
    assert r["history"][1]["steps"] == 3 < r["history"][0]["steps"]  # detected at the step, not at the epoch's end
    assert json.loads((out / "result.json").read_text())["status"] == "diverged"
    assert json.loads(read_checkpoint(out / "checkpoint.pt")["meta"])["epoch"] == 1  # the last good epoch
    with pytest.warns(RuntimeWarning, match="this run diverged"):
        Trainer(small_task, "ucmkd", CFG).__class__  # noqa: B018 (construction is fine)
        tr = Trainer(small_task, "ucmkd", CFG)
        tr.status = "diverged"
        tr.fit()


def test_an_error_in_training_still_writes_the_result(small_task, tmp_path):
    class Boom(Callback):
        def on_step_end(self, trainer, step, terms):
            if trainer.epoch == 1 and step == 2:
                raise RuntimeError("out of memory (simulated)")

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated"):
        run_one(small_task, "ce", CFG, out, callbacks=[Boom()], report=False, diagnostics=False)
    r = json.loads((out / "result.json").read_text())
    assert r["status"] == "failed" and "out of memory" in r["error"] and len(r["history"]) == 1


def test_resume_keeps_diagnostics_exact(small_task, tmp_path):
    from cmkd_lab.diagnostics import DiagnosticsCallback
    from cmkd_lab.diagnostics.core import DiagnosticsSettings
    cfg = CFG.replace(epochs=2, diagnostics_every=1)
    st = DiagnosticsSettings(n_permutations=10, class_permutations=0, sinkhorn_iter=50, lipschitz_pairs=50,
                             lipschitz_segment=50)
    mk = lambda: DiagnosticsCallback(n_ref=32, n_snapshot=8, settings=st)  # noqa: E731
    ref = run_one(small_task, "fa", cfg, tmp_path / "ref", callbacks=[mk()], report=False)
    out = tmp_path / "run"
    r = run_one(small_task, "fa", cfg, out, callbacks=[mk(), At(1, 2, "stop")], report=False)
    assert r["status"] == "interrupted"
    r = run_one(small_task, "fa", cfg, out, callbacks=[mk()], resume=True, report=False)
    assert canon(r) == canon(ref)


# ---------------------------------------------------------------- checkpoints and writes
def test_checkpoint_loads_with_weights_only_and_refuses_code(small_task, tmp_path):
    tr = Trainer(small_task, "ce", CFG.replace(epochs=1))
    p = tr.save_checkpoint(tmp_path / "c.pt")
    state = read_checkpoint(p)
    assert state["format"] == 2 and isinstance(state["meta"], str)

    target = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {target}",)

    write_checkpoint({"format": 2, "meta": Evil()}, tmp_path / "evil.pt")  # a valid checksum over a hostile payload
    with pytest.raises(ValueError, match=r"checkpoint '.*evil.pt' cannot be loaded safely \(UnpicklingError"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not target.exists()


def test_checkpoint_of_another_format_or_missing(tmp_path):
    write_checkpoint({"format": 1}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"has format 1, this cmkd_lab reads format 2; delete it"):
        read_checkpoint(tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"checkpoint '.*none.pt' does not exist; run without --resume"):
        read_checkpoint(tmp_path / "none.pt")


def test_history_with_numpy_values_survives_a_checkpoint(small_task, tmp_path):
    import numpy as np

    class Np(Callback):
        def on_epoch_end(self, trainer, record):
            record.update(np_float=np.float32(0.25), np_int=np.int64(3), arr=np.arange(3), flag=np.bool_(True))

    tr = Trainer(small_task, "ce", CFG.replace(epochs=1), callbacks=[Np()], checkpoint=tmp_path / "c.pt")
    tr.fit()
    tr2 = Trainer(small_task, "ce", CFG.replace(epochs=1))
    tr2.resume(tmp_path / "c.pt")
    h = tr2.history[0]
    assert (h["np_float"], h["np_int"], h["arr"], h["flag"]) == (0.25, 3, [0, 1, 2], True)


def test_atomic_writes_leave_old_file_and_no_temp(tmp_path, monkeypatch):
    p = tmp_path / "result.json"
    write_json(p, {"a": 1})
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json(p, {"a": object()})
    assert json.loads(p.read_text()) == {"a": 1}

    def interrupted(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C between writing the temp file and renaming it

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_json(p, {"a": 2})
    monkeypatch.undo()
    assert json.loads(p.read_text()) == {"a": 1}
    assert sorted(x.name for x in tmp_path.iterdir()) == ["result.json"]
    mode = p.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not the owner-only mode of a bare temp file


def test_package_never_loads_untrusted_code():
    # No eval/exec, no plain pickle.load, no torch.load without weights_only=True, no allow_pickle=True.
    root = Path(__file__).resolve().parents[1] / "cmkd_lab"
    bad = []
    for f in root.rglob("*.py"):
        text = f.read_text()
        for pat in (r"(?<![\w.])eval\(", r"(?<![\w.])exec\(", r"weights_only\s*=\s*False", r"allow_pickle\s*=\s*True",
                    r"pickle\.loads?\("):
            for m in re.finditer(pat, text):
                if f.name == "_safe_pickle.py" and "pickle" in pat:
                    continue
                bad.append(f"{f.relative_to(root)}: {m.group(0)}")
        for m in re.finditer(r"torch\.load\(", text):
            depth, i = 1, m.end()
            while depth and i < len(text):  # the call's arguments, up to the matching parenthesis
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            if "weights_only=True" not in text[m.end():i]:
                bad.append(f"{f.relative_to(root)}: {text[m.start():i]}")
    assert not bad, bad
