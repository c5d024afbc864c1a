"""Wall time of a scarce-label run, this checkout against an earlier revision, side by side in one run.

The run: HAPT with 5 % of the student's labels and the rest unlabelled, ``min_steps=300`` (3 optimiser
steps per epoch, 100 epochs), one torch thread — the recipe of the scarce-label control benches. Each
revision runs in a subprocess of its own (a temporary ``git worktree`` for the earlier one); its teacher is
trained (or read from a cache kept per revision) before the clock starts, so the time is the student's
``fit()`` alone: training steps, the per-epoch evaluation and whatever else a run does per epoch.

It prints one JSON object per line — per revision and method: fit seconds (the median of ``--repeat``
runs), the test accuracy at the best-validation epoch, that epoch and the last epoch's accuracy — and a
last line with the time ratio (this checkout / earlier) and whether the accuracies are identical (the
same seed on the CPU gives the same training with either revision: only the work around it differs).

Usage::

    python benchmarks/bench_scarce.py                       # against bd33d92 (before the evaluation fix)
    python benchmarks/bench_scarce.py --before HEAD~5 --methods ce --repeat 1
    python benchmarks/bench_scarce.py --quick               # the fast HAPT subset (a smoke run)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the subprocess: the revision under test is first on sys.path.
_CHILD = r"""
import json, sys, time, warnings
import torch
torch.set_num_threads(1)
warnings.simplefilter("ignore")
from cmkd_lab.data import load_task
from cmkd_lab.distill import DistillConfig, Trainer
method, fast, repeat = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
task = load_task("hapt", seed=0, fast=fast)
cfg = DistillConfig.from_dict(dict(epochs=15, min_steps=300, student_fraction=0.05, student_unlabelled=True,
                                   diagnostics_every=0, seed=0))
times = []
for _ in range(repeat):
    tr = Trainer(task, method, cfg)  # the teacher is trained or read from the cache here, before the clock
    t0 = time.perf_counter()
    r = tr.fit()
    times.append(time.perf_counter() - t0)
print(json.dumps({"fit_s": times, "student_test_acc": r["student_test_acc"], "best_epoch": r["best_epoch"],
                  "student_val_acc": r["student_val_acc"], "epochs": r["epochs"],
                  "student_test_acc_last": r["student_test_acc_last"]}))
"""


def _child(src: Path, method: str, fast: bool, repeat: int, cache: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), CMKD_LAB_CACHE=str(cache), CMKD_LAB_FAST="1" if fast else "0",
               OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _CHILD, method, "1" if fast else "0", str(repeat)], cwd=str(src),
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the run with {src} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default="bd33d92", help="the earlier git revision (default: bd33d92)")
    ap.add_argument("--methods", default="ce,ucmkd-joint", help="comma-separated methods")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per revision and method (median)")
    ap.add_argument("--quick", action="store_true", help="the fast HAPT subset")
    ap.add_argument("--cache", default=None, help="teacher cache folder (default: a temporary one)")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error(f"--repeat must be >= 1; got {a.repeat}")
    with tempfile.TemporaryDirectory(prefix="cmkd_bench_scarce_") as tmp:
        tmp = Path(tmp)
        old = tmp / "before"
        r = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), a.before],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"--before {a.before!r}: git worktree add failed: {r.stderr.strip()}")
        try:
            cache = Path(a.cache) if a.cache else tmp / "cache"
            rows = {}
            for method in [m.strip() for m in a.methods.split(",") if m.strip()]:
                for label, src in (("before", old), ("now", ROOT)):
                    res = _child(src, method, a.quick, a.repeat, cache / label)
                    res.update(method=method, revision=a.before if label == "before" else "this checkout",
                               fit_s_median=statistics.median(res["fit_s"]))
                    rows[(method, label)] = res
                    print(json.dumps(res), flush=True)
                b, n = rows[(method, "before")], rows[(method, "now")]
                print(json.dumps({"method": method, "time_ratio_now_over_before":
                                  round(n["fit_s_median"] / b["fit_s_median"], 3),
                                  "same_accuracy_at_best_val_epoch": (b["student_test_acc"], b["best_epoch"]) ==
                                  (n["student_test_acc"], n["best_epoch"])}), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)


if __name__ == "__main__":
    main()
