"""``bench``: every method × pairing × seed on one task, cached and resumable.

Each run is written to ``OUT/runs/<pairing>/<method>/seed<S>/result.json``; a
run whose result exists (completed or diverged, with the same options) is not
repeated, and an unfinished one resumes from its checkpoint, so an interrupted
bench continues where it stopped. Ctrl-C or SIGTERM stops the whole grid (the
run in progress writes a result marked interrupted); a finished run written
with other options is refused rather than mixed in. Every file is written
atomically. Teachers are shared per seed through the teacher cache.
Paired-only methods under ``unpaired`` are skipped with the reason.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .data import load_task
from .distill import DistillConfig, get_method
from ._atomic import atomic_write_text
from ._validation import check_choice
from .data.sampling import PAIRINGS
from .runs import run_one, write_json_atomic

__all__ = ["run_bench", "summarize", "format_markdown"]


def _mean_std(v: List[float]):
    if not v:
        return None, None
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def run_bench(task: str, methods: Sequence[str], pairings: Sequence[str], seeds: Sequence[int], out,
              config: Optional[DistillConfig] = None, *, fast: bool = False, task_kwargs: Optional[dict] = None,
              log: Callable[[str], None] = print, progress: bool = False) -> dict:
    """Run the grid and write ``results.json``, ``results.csv``, ``results.md`` in ``out``."""
    out = Path(out)
    config = config or DistillConfig()
    for name, v in (("methods", methods), ("pairings", pairings), ("seeds", seeds)):
        if isinstance(v, str) or not len(v):
            raise ValueError(f"{name} must be a non-empty list; got {name}={v!r}")
    for m in methods:
        get_method(m)  # unknown names fail before any training
    for p in pairings:
        check_choice("pairing", p, PAIRINGS)
    if config.student_unlabelled and any(p != "unpaired" for p in pairings):
        raise ValueError(f"student_unlabelled=True runs only with pairing 'unpaired'; got pairings={list(pairings)!r}: "
                         "use --pairing unpaired")
    runs, skipped = [], []
    interrupted = False
    t_start = time.perf_counter()
    for seed in seeds:
        if interrupted:
            break
        t = load_task(task, seed=seed, fast=fast, **(task_kwargs or {}))
        for pairing in pairings:
            if interrupted:
                break
            for m in methods:
                cls = get_method(m)
                if cls.needs_pairs and pairing == "unpaired":
                    skipped.append({"method": m, "pairing": pairing, "seed": seed,
                                    "reason": f"{m} needs a teacher sample tied to each student sample"})
                    continue
                if not cls.uses_teacher_samples and pairing != "unpaired" and "unpaired" in pairings:
                    skipped.append({"method": m, "pairing": pairing, "seed": seed,
                                    "reason": f"{m} never reads a teacher sample, so its run is identical "
                                              "to the unpaired one"})
                    continue
                if cls.needs_unlabelled and not config.student_unlabelled:
                    skipped.append({"method": m, "pairing": pairing, "seed": seed,
                                    "reason": f"{m} needs unlabelled student data (--student-unlabelled)"})
                    continue
                if pairing == "paired" and not t.has_pairs:
                    skipped.append({"method": m, "pairing": pairing, "seed": seed,
                                    "reason": f"task {task!r} has no pairs"})
                    continue
                d = out / "runs" / pairing / m / f"seed{seed}"
                rp = d / "result.json"
                cfg = config.replace(seed=seed, pairing=pairing)
                r = _read_result(rp)
                if r is not None and r.get("status") in _FINAL:
                    theirs = DistillConfig.with_defaults(r.get("config") or {})  # options added since: defaults
                    if theirs != cfg.to_dict():  # never mix in (or silently replace) another grid's run
                        diff = sorted(k for k, v in cfg.to_dict().items() if theirs.get(k) != v)
                        raise ValueError(f"{str(rp)!r} holds a finished run with other options (differs in {diff}); "
                                         f"choose another --out, or delete {str(d)!r} to run it again")
                    runs.append(_slim(r))
                    continue
                log(f"[bench] {task} {pairing:13s} {m:12s} seed {seed}")
                # resume=True continues an interrupted run from its checkpoint (unfinished or unreadable result).
                r = run_one(t, m, cfg, d, overwrite=True, resume=True, progress=progress, report=False)
                runs.append(_slim(r))
                if r["status"] == "interrupted":  # Ctrl-C / SIGTERM stops the whole grid, not one run
                    log(f"[bench] interrupted; run the same command again to continue from {str(d)!r}")
                    interrupted = True
                    break
    summary = summarize(runs)
    res = {"task": task, "task_kwargs": dict(task_kwargs or {}), "methods": list(methods), "pairings": list(pairings),
           "seeds": list(seeds),
           "fast": fast, "config": config.to_dict(), "summary": summary, "skipped": _dedupe(skipped),
           "runs": runs, "bench_wall_s": time.perf_counter() - t_start, "interrupted": interrupted}
    write_json_atomic(res, out / "results.json")
    _write_csv(summary, out / "results.csv")
    atomic_write_text(out / "results.md", format_markdown(res))
    return res


_FINAL = ("completed", "diverged")  # a rerun would give the same answer


def _read_result(path: Path) -> Optional[dict]:
    """A run's result.json, or None if absent or unreadable (it is then run again / resumed)."""
    try:
        r = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return r if isinstance(r, dict) else None


def _slim(r: dict) -> dict:
    keep = ("task", "method", "seed", "pairing", "status", "student_test_acc", "student_val_acc",
            "student_test_acc_last", "teacher_test_acc", "best_epoch", "wall_s", "s_per_epoch", "student_fraction")
    return {k: r.get(k) for k in keep}


def _dedupe(skipped):
    seen, out = set(), []
    for s in skipped:
        key = (s["method"], s["pairing"])
        if key not in seen:
            seen.add(key)
            out.append({k: v for k, v in s.items() if k != "seed"})
    return out


def summarize(runs: List[dict]) -> List[dict]:
    """Mean ± std over seeds per (pairing, method)."""
    groups: Dict[tuple, List[dict]] = {}
    for r in runs:
        groups.setdefault((r["pairing"], r["method"]), []).append(r)
    rows = []
    for (pairing, method), rs in groups.items():
        best = [r["student_test_acc"] for r in rs if r["student_test_acc"] is not None]
        last = [r["student_test_acc_last"] for r in rs if r["student_test_acc_last"] is not None]
        teach = [r["teacher_test_acc"] for r in rs if r["teacher_test_acc"] is not None]
        mb, sb = _mean_std(best)
        ml, sl = _mean_std(last)
        mt, _ = _mean_std(teach)
        rows.append({"pairing": pairing, "method": method, "n_seeds": len(rs), "test_acc_best_val_mean": mb,
                     "test_acc_best_val_std": sb, "test_acc_last_mean": ml, "test_acc_last_std": sl,
                     "teacher_test_acc_mean": mt, "wall_s_mean": statistics.fmean(r["wall_s"] for r in rs)})
    return rows


def _write_csv(rows, path):
    f = io.StringIO(newline="")
    if rows:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write_text(path, f.getvalue())


def format_markdown(res: dict) -> str:
    """The results table as Markdown."""
    def pm(m, s):
        return "—" if m is None else f"{100 * m:.2f} ± {100 * s:.2f}"
    lines = [f"Task `{res['task']}`, seeds {res['seeds']}{' (fast subset)' if res.get('fast') else ''}. "
             "Test accuracy (%) at the best-validation epoch and at the last epoch, mean ± std over seeds.", "",
             "| pairing | method | test acc (best val) | test acc (last) | teacher | s / run |",
             "|---|---|---|---|---|---|"]
    for r in res["summary"]:
        teacher = "—" if r["teacher_test_acc_mean"] is None else f"{100 * r['teacher_test_acc_mean']:.2f}"
        lines.append(f"| {r['pairing']} | {r['method']} | {pm(r['test_acc_best_val_mean'], r['test_acc_best_val_std'])} "
                     f"| {pm(r['test_acc_last_mean'], r['test_acc_last_std'])} | "
                     f"{teacher} "
                     f"| {r['wall_s_mean']:.1f} |")
    for s in res.get("skipped", []):
        lines.append(f"\nSkipped {s['method']} under {s['pairing']}: {s['reason']}.")
    return "\n".join(lines) + "\n"
