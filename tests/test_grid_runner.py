"""The one grid runner under bench and sweep: one interrupt behaviour (what finished is written, marked
interrupted, and the CLI exits 130), jobs as dataclasses, records that carry their folder, no identity written
before a run has finished, the paired ceiling added to scarce cells, one rule for workers, and JSON outputs
that are valid JSON (null with a reason for a diverged run's NaN, read back as NaN)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cmkd_lab import DistillConfig
from cmkd_lab.cli import main
from cmkd_lab.distill import Callback
from cmkd_lab.experiments import run_bench, run_sweep
from cmkd_lab.store import jsonable, read_json, write_json

CFG = DistillConfig(epochs=2, teacher_epochs=1, diagnostics_every=0)
FAST = ["--task", "synthetic", "--fast", "--epochs", "2", "--teacher-epochs", "1", "--set", "diagnostics_every=0",
        "--quiet"]


class StopAt(Callback):
    """The notebook's Stop (what SIGTERM does to a run of a grid) at the first step of epoch 2."""

    def on_step_end(self, trainer, step, terms):
        if trainer.epoch == 1 and step == 0:
            trainer.stop()


@pytest.fixture
def stop_second_run(monkeypatch):
    """The grid's second run is stopped mid-training: it saves a resumable checkpoint and an interrupted
    result, and the grid stops (as on Ctrl-C or SIGTERM)."""
    import cmkd_lab.experiments.job as job
    real, calls = job.run_one, []

    def run_one(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            k["callbacks"] = [StopAt()]
        return real(*a, **k)
    monkeypatch.setattr(job, "run_one", run_one)
    return monkeypatch


def _check_interrupted(out: Path, res: dict, table: str):
    assert res["interrupted"] is True and len(res["runs"]) == 1 and res["n_planned"] > 1
    assert json.loads((out / ("results.json" if table == "results.md" else "sweep.json")).read_text())["interrupted"]
    md = (out / table).read_text()
    assert md.startswith(f"**Interrupted: 1 of {res['n_planned']} runs finished — these tables are partial. Run the "
                         "same command again to complete them.**")
    stopped = [d for d in out.glob("runs/**/seed*") if (d / "result.json").exists()
               and json.loads((d / "result.json").read_text())["status"] == "interrupted"]
    assert len(stopped) == 1 and (stopped[0] / "checkpoint.pt").exists()
    assert not (stopped[0] / "job.json").exists()  # no identity for a run that has not finished
    done = out / res["runs"][0]["dir"]
    assert read_json(done / "job.json")["result_sha256"]  # the finished one's, bound to its result


def test_an_interrupted_bench_writes_what_finished_then_completes(tmp_path, stop_second_run):
    res = run_bench("synthetic", ["ce", "fa"], ["unpaired"], [0], tmp_path, CFG, fast=True, log=lambda m: None)
    _check_interrupted(tmp_path, res, "results.md")
    stop_second_run.undo()
    logs = []
    again = run_bench("synthetic", ["ce", "fa"], ["unpaired"], [0], tmp_path, CFG, fast=True, log=logs.append)
    assert not again["interrupted"] and [r["status"] for r in again["runs"]] == ["completed", "completed"]
    assert any("2 runs: 1 read from the store, 1 to run" in m for m in logs)
    assert not (tmp_path / "results.md").read_text().startswith("**Interrupted")


def test_an_interrupted_sweep_writes_what_finished_instead_of_raising(tmp_path, stop_second_run):
    res = run_sweep("synthetic", ["fa"], {"gap": [0.0]}, [0], tmp_path, CFG, fast=True, aa=False, workers=1,
                    log=lambda m: None)
    _check_interrupted(tmp_path, res, "sweep.md")


@pytest.mark.parametrize("cmd", [["bench", "--methods", "ce,fa"], ["sweep", "--methods", "fa", "--grid", "gap=0",
                                                                     "--workers", "1"]])
def test_the_cli_exits_130_and_says_to_rerun(tmp_path, capsys, stop_second_run, cmd):
    assert main(cmd + ["--out", str(tmp_path)] + FAST) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted: 1 of ") and err[-1].endswith(
        "runs finished and the tables are partial; run the same command again to complete them")


def test_jobs_are_dataclasses_and_records_carry_their_folder(tmp_path):
    from cmkd_lab.experiments.engine import Job, Plan
    from cmkd_lab.experiments.bench import _cells
    from cmkd_lab.experiments.engine import plan
    p = plan("synthetic", ["ce", "fa[lambda_fa=0.5]"], _cells(["unpaired", "paired"], ["none"], CFG, {}), [0],
             tmp_path, fast=True, baseline="ce", aa=False, diagnostics=None, early_epochs=0, threads=0)
    assert isinstance(p, Plan) and all(isinstance(j, Job) for j in p.jobs)
    assert [j.rel for j in p.jobs] == ["runs/unpaired/ce/seed0", "runs/unpaired/fa_lambda_fa=0.5_/seed0",
                                       "runs/paired/fa_lambda_fa=0.5_/seed0"]
    assert [(a.cell, a.method, a.rel) for a in p.aliases] == [("paired", "ce", "runs/unpaired/ce/seed0")]
    res = run_bench("synthetic", ["ce"], ["unpaired", "paired"], [0], tmp_path / "b", CFG, fast=True,
                    log=lambda m: None)
    assert [(r["cell"], r["dir"]) for r in res["runs"]] == [("unpaired", "runs/unpaired/ce/seed0"),
                                                           ("paired", "runs/unpaired/ce/seed0")]  # the alias: that run
    assert (tmp_path / "b" / res["runs"][1]["dir"] / "result.json").exists()


def test_the_paired_ceiling_is_planned_in_cells_with_unlabelled_data(tmp_path, monkeypatch):
    from cmkd_lab.distill import methods
    from cmkd_lab.experiments.engine import Cell, plan
    # A stand-in registration until the ceiling methods land: the plan only reads the name and the rule.
    monkeypatch.setitem(methods.METHODS, "ceiling-kd", methods.METHODS["ce"])
    cells = [Cell("scarce", {"u": 1}, CFG.replace(student_fraction=0.2, student_unlabelled=True), {}, "scarce"),
             Cell("full", {"u": 0}, CFG, {}, "full")]
    p = plan("synthetic", ["ce", "fa"], cells, [0], tmp_path, fast=True, baseline="ce", aa=False,
             diagnostics=None, early_epochs=0, threads=0, ceiling="ceiling-kd")
    assert [(j.cell, j.label) for j in p.jobs] == [("scarce", "ce"), ("scarce", "fa"), ("scarce", "ceiling-kd"),
                                                   ("full", "ce"), ("full", "fa")]
    p = plan("synthetic", ["ce"], cells, [0], tmp_path, fast=True, baseline="ce", aa=False, diagnostics=None,
             early_epochs=0, threads=0, ceiling=None)
    assert [j.label for j in p.jobs] == ["ce", "ce"]


def test_job_config_is_the_one_call_point(tmp_path, monkeypatch):
    import cmkd_lab.experiments.engine as engine
    from cmkd_lab.experiments.bench import _cells
    seen = []
    monkeypatch.setattr(engine, "_job_config", lambda method, cfg: seen.append(method) or cfg.replace(eps=0.5))
    p = engine.plan("synthetic", ["ce", "fa"], _cells(["unpaired"], ["none"], CFG, {}), [0], tmp_path, fast=True,
                    baseline="ce", aa=True, diagnostics=None, early_epochs=0, threads=0)
    assert seen == ["ce", "fa", "ce"] and {j.config["eps"] for j in p.jobs} == {0.5}
    assert {j.identity["config"]["eps"] for j in p.jobs} == {0.5}


@pytest.mark.parametrize("fn", ["bench", "sweep"])
@pytest.mark.parametrize("workers", [0, -1, 1.5])
def test_one_rule_for_workers(tmp_path, fn, workers):
    with pytest.raises((ValueError, TypeError), match="workers must be"):
        if fn == "bench":
            run_bench("synthetic", ["ce"], ["unpaired"], [0], tmp_path, CFG, fast=True, workers=workers)
        else:
            run_sweep("synthetic", ["ce"], {"gap": [0.0]}, [0], tmp_path, CFG, fast=True, workers=workers)


# ------------------------------------------------------------------ JSON: one cleaner, valid output
def _strict(text):
    def refuse(c):
        raise ValueError(f"not JSON: {c}")
    return json.loads(text, parse_constant=refuse)


def test_one_cleaner_for_numpy_torch_paths_and_sets():
    v = {"a": np.float32(0.5), "b": np.arange(3), "c": torch.tensor([1.0, float("nan")]), "d": Path("/x"),
         "e": {3, 1, 2}, "f": np.bool_(True), "g": [np.float64(np.inf)], 7: (np.int8(2),)}
    notes = {}
    out = jsonable(v, notes=notes)
    assert out == {"a": 0.5, "b": [0, 1, 2], "c": [1.0, None], "d": "/x", "e": [1, 2, 3], "f": True, "g": [None],
                   "7": [2]}
    assert notes == {"/c/1": "nan", "/g/0": "inf"}
    kept = jsonable(v, nonfinite="keep")
    assert math.isnan(kept["c"][1]) and kept["g"] == [math.inf]
    assert jsonable([np.array([0.123456789])], decimals=3) == [[0.123]]
    from cmkd_lab.distill.checkpoint import from_json, to_json
    back = from_json(to_json({"x": np.float32(np.nan), "y": np.arange(2)}))
    assert math.isnan(back["x"]) and back["y"] == [0, 1]  # a checkpoint keeps NaN (read back by this code only)
    with pytest.raises(TypeError, match="a checkpoint can hold only plain values; got object"):
        to_json({"x": object()})


def test_write_json_writes_null_with_a_reason_and_read_json_restores_it(tmp_path):
    p = tmp_path / "r.json"
    obj = {"history": [{"epoch": 1, "ce": 0.5}, {"epoch": 2, "ce": float("nan"), "a/b": -math.inf}], "acc": None}
    write_json(p, obj)
    raw = _strict(p.read_text())  # valid JSON: no bare NaN
    assert raw["history"][1]["ce"] is None and raw["acc"] is None
    assert raw["nonfinite"] == {"/history/1/ce": "nan", "/history/1/a~1b": "-inf"}
    back = read_json(p)
    assert "nonfinite" not in back and math.isnan(back["history"][1]["ce"]) and back["history"][1]["a/b"] == -math.inf
    assert back["acc"] is None and back["history"][0] == {"epoch": 1, "ce": 0.5}


def test_a_diverged_run_writes_valid_json_that_still_reads_and_reports(tmp_path, small_task):
    from cmkd_lab.experiments import run_one
    from cmkd_lab.report import read_result, write_report

    class Nan(Callback):
        def on_step_end(self, trainer, step, terms):
            if trainer.epoch == 1 and step == 1:
                with torch.no_grad():
                    next(trainer.student.parameters()).fill_(float("nan"))
    with pytest.warns(RuntimeWarning, match="training stopped"):
        r = run_one(small_task, "ucmkd", DistillConfig(epochs=3, teacher_epochs=1, batch_size=32, diagnostics_every=0),
                    tmp_path, callbacks=[Nan()], report=False, diagnostics=False)
    assert r["status"] == "diverged"
    raw = _strict((tmp_path / "result.json").read_text())
    assert raw["nonfinite"] and all(v in ("nan", "inf", "-inf") for v in raw["nonfinite"].values())
    back = read_result(tmp_path / "result.json")
    assert back["status"] == "diverged" and "nonfinite" not in back
    assert write_report(back, tmp_path / "report.html").stat().st_size > 0


def test_demo_reports_the_ucmkd_run_from_its_record(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--task", "synthetic", "--fast", "--epochs", "1", "--teacher-epochs", "1", "--set",
                 "diagnostics_every=0", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    ucmkd = next(r for r in res["runs"] if r["method"] == "ucmkd")
    assert (out / ucmkd["dir"] / "result.json").exists() and (out / "report.html").stat().st_size > 0
    assert f"(with the ce run of the same seed beside it): {out / 'report.html'}" in capsys.readouterr().out


def test_demo_keeps_the_epochs_the_user_gives(tmp_path, capsys):
    # --set epochs=… and --config are the user's choice: the demo's own budget (3 in the quick pass) only
    # fills in when nothing names the epochs
    cfg = tmp_path / "c.json"
    cfg.write_text('{"epochs": 1}')
    for given, want in ((["--set", "epochs=2"], 2), (["--config", str(cfg)], 1), ([], 3)):
        out = tmp_path / f"demo{want}"
        assert main(["demo", "--task", "synthetic", "--fast", "--teacher-epochs", "1", "--set", "diagnostics_every=0",
                     *given, "--out", str(out), "--quiet"]) == 0
        assert f"{want} epochs" in capsys.readouterr().out.splitlines()[0]
        assert {r["epochs_done"] for r in json.loads((out / "results.json").read_text())["runs"]} == {want}


def test_cli_workers_are_checked_the_same_way(tmp_path, capsys):
    for cmd in (["bench", "--methods", "ce", "--workers", "-1"], ["sweep", "--methods", "fa", "--workers", "0"]):
        assert main(cmd + ["--out", str(tmp_path)] + FAST) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "workers must be" in err[0] and ">= 1" in err[0], err


def test_python_runs_get_the_task_defaults_the_command_line_gives():
    # the audio-visual tasks' ResNet-18 features are 512 wide: distill(), run_bench and run_sweep without a
    # config use what `python -m cmkd_lab run --task ave` uses, and nothing changes for the other tasks
    import numpy as np
    from cmkd_lab.data import CrossModalTask
    from cmkd_lab.distill import DistillConfig
    from cmkd_lab.experiments.job import distill
    from cmkd_lab.experiments.engine import check_grid_args, default_config
    assert default_config("ave").feature_dim == 512 and default_config("hapt") == DistillConfig() == default_config()
    _, cfg, _ = check_grid_args(out="x", config=None, fast=False, log=print, ceiling=None, task="vggsound")
    assert cfg.feature_dim == 512
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 4)).astype("float32"), np.arange(60) % 3
    task = CrossModalTask.from_arrays(x, y, x, y, name="ave")
    assert distill(task, "ce", diagnostics=False)["config"]["feature_dim"] == 512
