"""The command line: ``python -m cmkd_lab demo | run | bench | report | methods | tasks``.

Bad arguments exit with status 2 and one line naming the argument.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["main"]


class CLIError(Exception):
    pass


def _parse_value(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def build_config(args, **fixed):
    """Preset → config file → --set key=value → explicit flags."""
    from .distill import PRESETS, DistillConfig, load_config_file

    d = {}
    preset = getattr(args, "preset", None) or "default"
    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(map(repr, PRESETS))}; got {preset!r}")
    d.update(PRESETS[preset])
    if getattr(args, "config", None):
        d.update(load_config_file(args.config))
    for item in getattr(args, "set", None) or []:
        if "=" not in item:
            raise ValueError(f"--set takes key=value; got {item!r}")
        k, v = item.split("=", 1)
        d[k.strip()] = _parse_value(v)
    for k in ("epochs", "seed", "pairing", "device", "batch_size", "student_fraction", "teacher_epochs", "lr",
              "cost", "eps"):
        v = getattr(args, k, None)
        if v is not None:
            d[k] = v
    d.update(fixed)
    return DistillConfig.from_dict(d, source=f"--config {args.config}" if getattr(args, "config", None) else "options")


def _add_common(p, *, seed=True):
    p.add_argument("--task", default=None, help="built-in task (python -m cmkd_lab tasks)")
    p.add_argument("--epochs", type=int, default=None, help="student epochs")
    if seed:
        p.add_argument("--seed", type=int, default=None)
    p.add_argument("--pairing", default=None, help="unpaired | class-matched | paired")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--cost", default=None, help="l2 | sqeuclidean | cosine | l1 | chordal")
    p.add_argument("--eps", type=float, default=None)
    p.add_argument("--teacher-epochs", dest="teacher_epochs", type=int, default=None)
    p.add_argument("--student-fraction", dest="student_fraction", type=float, default=None,
                   help="train the student on this stratified fraction of its labelled data")
    p.add_argument("--preset", default=None, help="default | paper | public-code")
    p.add_argument("--config", default=None, help="JSON or TOML file of DistillConfig options")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any config option (repeatable)")
    p.add_argument("--fast", action="store_true", help="small data subset (quick checks)")


def _csv(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def cmd_methods(args):
    from .distill.methods import METHODS
    for name in sorted(METHODS):
        cls = METHODS[name]
        print(f"{name:12s} {'[needs pairs] ' if cls.needs_pairs else ''}{cls.description}")


def cmd_tasks(args):
    from .data import available_tasks, load_task
    for name in available_tasks():
        print(name)


def cmd_run(args):
    from .data import load_task
    from .runs import run_one
    cfg = build_config(args)
    task = load_task(args.task or "synthetic", seed=cfg.seed, fast=args.fast)
    out = Path(args.out)
    r = run_one(task, args.method, cfg, out, overwrite=args.overwrite, resume=args.resume, progress=not args.quiet)
    print(f"{r['task']} {r['method']} seed {r['seed']} {r['pairing']}: student test acc {r['student_test_acc']:.4f} "
          f"(best val epoch {r['best_epoch']}), teacher test acc {r['teacher_test_acc']:.4f}, "
          f"{r['s_per_epoch']:.2f} s/epoch, status {r['status']} → {out / 'result.json'}")
    return 0 if r["status"] in ("completed",) else 1


def cmd_bench(args):
    from .bench import run_bench
    cfg = build_config(args)
    seeds = list(range(args.seeds)) if args.seeds is not None else [cfg.seed]
    res = run_bench(args.task or "synthetic", _csv(args.methods), _csv(args.pairing or "unpaired"), seeds,
                    Path(args.out), cfg, fast=args.fast, progress=not args.quiet)
    from .bench import format_markdown
    print(format_markdown(res))
    print(f"→ {Path(args.out) / 'results.md'}")
    return 0


def cmd_demo(args):
    """Teacher + every unpaired method (and paired KD for reference) on the default task; table + report."""
    from .bench import format_markdown, run_bench
    from .data import available_tasks
    from .report import write_report
    task = args.task or ("hapt" if "hapt" in available_tasks() else "synthetic")
    fast = args.fast or os.environ.get("CMKD_LAB_FAST") == "1"
    epochs = args.epochs or (3 if fast else 15)
    cfg = build_config(args, epochs=epochs)
    out = Path(args.out)
    methods = ["ce", "fa", "la", "ucmkd", "ucmkd-joint"]
    print(f"cmkd_lab demo: task {task}, {epochs} epochs, methods {methods} (unpaired), output {out}")
    res = run_bench(task, methods, ["unpaired"], [cfg.seed], out, cfg, fast=fast, progress=not args.quiet)
    print(format_markdown(res))
    ucmkd_run = out / "runs" / "unpaired" / "ucmkd" / f"seed{cfg.seed}" / "result.json"
    report = write_report(json.loads(ucmkd_run.read_text()), out / "report.html")
    print(f"report of the ucmkd run: {report}\ntable: {out / 'results.md'}")
    return 0


def cmd_report(args):
    from .report import write_report
    d = Path(args.run_dir)
    rp = d / "result.json"
    if not rp.is_file():
        raise ValueError(f"RUN_DIR must hold a result.json; {str(rp)!r} does not exist")
    try:
        result = json.loads(rp.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(rp)!r} is not valid JSON ({e}); was the run interrupted while writing?") from None
    path = write_report(result, d / "report.html")
    print(path)
    return 0


def make_parser():
    p = argparse.ArgumentParser(prog="python -m cmkd_lab",
                                description="cmkd_lab: cross-modal knowledge distillation without paired data (UCMKD)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("demo", help="teacher + UCMKD and baselines on a built-in task; table and report")
    _add_common(s)
    s.add_argument("--out", default="runs/demo")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_demo)
    s = sub.add_parser("run", help="one method on one task and seed → DIR/result.json + report.html")
    _add_common(s)
    s.add_argument("--method", default="ucmkd")
    s.add_argument("--out", required=True)
    s.add_argument("--overwrite", action="store_true", help="replace an existing result in --out")
    s.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("bench", help="methods × pairings × seeds; results.json/csv/md")
    _add_common(s, seed=True)
    s.add_argument("--methods", default="ce,fa,la,ucmkd,ucmkd-joint")
    s.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    s.add_argument("--out", required=True)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_bench)
    s = sub.add_parser("report", help="(re)write RUN_DIR/report.html from RUN_DIR/result.json")
    s.add_argument("run_dir")
    s.set_defaults(fn=cmd_report)
    s = sub.add_parser("methods", help="list the methods")
    s.set_defaults(fn=cmd_methods)
    s = sub.add_parser("tasks", help="list the built-in tasks")
    s.set_defaults(fn=cmd_tasks)
    return p


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.fn(args) or 0
    except (ValueError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"python -m cmkd_lab {args.cmd}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
