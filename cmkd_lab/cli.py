"""The command line: ``python -m cmkd_lab demo | run | bench | sweep | report | gap | methods | tasks | options``.

Bad arguments exit with status 2 and one line naming the argument. The help of every config flag is the
option table's (:func:`cmkd_lab.distill.config.option_table`); ``options`` prints the whole table.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ._names import split_names

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (status 2): ``prog: error: what (see prog --help)``.

    Abbreviated flags are refused (``--seed`` vs ``--seeds``, ``--epoch`` for ``--epochs``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    def parse_args(self, args=None, namespace=None):
        """As argparse, but an unknown flag is named by the subcommand it was given to, with the closest
        flag it has, and a list flag (``--methods``; bench's ``--pairing``, ``--teacher-control``) is refused
        when given twice with different values: argparse would keep the last list silently, where the user
        meant both (other flags keep the usual rule, the last one wins)."""
        ns, extras = self.parse_known_args(args, namespace)
        sub = getattr(self, "_subs", {}).get(getattr(ns, "cmd", None), self)
        if extras:
            flags = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
            hints = []
            for x in extras:
                close = _closest(x.split("=", 1)[0], flags) if x.startswith("-") else None
                if close:
                    hints.append(f"{x.split('=', 1)[0]}: did you mean {close}?")
            hint = f" ({'; '.join(hints)})" if hints else ""
            sub.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        _refuse_repeated(sub, sys.argv[1:] if args is None else list(args))
        return ns


def _closest(value: str, choices) -> "str | None":
    """The choice closest to ``value`` (case ignored), or None when none is close."""
    import difflib
    choices = list(choices)
    low = {str(c).lower(): c for c in choices}
    if str(value).lower() in low:
        return low[str(value).lower()]
    close = difflib.get_close_matches(str(value).lower(), list(low), n=1, cutoff=0.6)
    return low[close[0]] if close else None


def _refuse_repeated(parser, argv) -> None:
    """A list flag given twice with different values (``--methods ce,fa --methods la`` would run only la)."""
    lists = {"methods"} | ({"pairing", "teacher_control"} if parser.prog.endswith(" bench") else set())
    single = {o: a for a in parser._actions for o in a.option_strings
              if type(a).__name__ == "_StoreAction" and o.startswith("--") and a.dest in lists}
    seen = {}
    for i, tok in enumerate(argv):
        flag, eq, val = tok.partition("=")
        if flag not in single:
            continue
        if not eq:
            val = argv[i + 1] if i + 1 < len(argv) else ""
        key = single[flag].dest
        if key in seen and seen[key][1] != val:
            (f0, v0) = seen[key]
            parser.error(f"{flag} is given twice ({f0} {v0} and {flag} {val}); give the whole list once, "
                         "comma-separated (the last one would silently win)")
        seen.setdefault(key, (flag, val))


# Errors about paths the user gave (a missing data file, an unwritable --out) are bad input too.
_PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


_DISK_ERRNOS = {28, 122, 30, 5}  # ENOSPC, EDQUOT, EROFS, EIO


def _fmt_acc(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


# The config options that have a flag of their own (their help is the option table's).
_CONFIG_FLAGS = ("epochs", "seed", "pairing", "device", "batch_size", "student_fraction", "student_unlabelled",
                 "teacher_epochs", "lr", "cost", "eps", "teacher_control", "min_steps")


def build_config(args, *, method=None, defaults=None, **fixed):
    """Per-task defaults → a command's own ``defaults`` → preset → config file → --set key=value → explicit
    flags → ``fixed``.

    With ``method`` (a single run), the preset's options of other methods are left out (a preset is a
    recipe for every method: ``paper`` sets ucmkd's inner optimiser); what the user gives is kept, and a
    single run refuses another method's option (:func:`~cmkd_lab.distill.methods.options.check_method_options`).
    Each layer is checked alone first, so an error names the file or ``--set`` that holds the bad option.
    """
    from ._validation import parse_assignments
    from .distill import PRESETS, DistillConfig, load_config_file
    from .distill.config import TASK_DEFAULTS
    from .distill.methods.options import option_owner

    d = dict(TASK_DEFAULTS.get(getattr(args, "task", None) or "", {}))  # per-task defaults come first
    d.update(defaults or {})
    preset = getattr(args, "preset", None)
    preset = "default" if preset is None else preset  # `--preset ""` is a value, refused below: not the defaults
    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(map(repr, PRESETS))}; got {preset!r}")
    d.update({k: v for k, v in PRESETS[preset].items() if method is None or option_owner(k) in (None, method)})
    if getattr(args, "config", None):
        given = load_config_file(args.config)
        _refuse_repeated_keys(args.config)
        DistillConfig.check_options(given, source=f"--config {args.config}")
        d.update(given)
    sets = parse_assignments(getattr(args, "set", None) or [], what="--set")
    DistillConfig.check_options(sets, source="--set")
    d.update(sets)
    flags = {k: getattr(args, k) for k in _CONFIG_FLAGS if getattr(args, k, None) is not None}
    for k in sorted(set(sets) & set(flags)):
        if sets[k] != flags[k]:  # one command line, two values: neither may win silently
            raise ValueError(f"{k} is given twice: --set {k}={sets[k]!r} and --{k.replace('_', '-')} {flags[k]!r}; "
                             "give it once")
    d.update(flags)
    d.update(fixed)
    return DistillConfig.from_dict(d)


def _refuse_repeated_keys(path) -> None:
    """A JSON config file that gives an option twice is refused, as ``--set`` and a variant refuse it (JSON
    keeps the last one silently; TOML refuses a repeated key itself)."""
    import json
    p = Path(path)
    if p.suffix.lower() == ".toml":
        return
    twice = []

    def pairs(items):
        keys = [k for k, _ in items]
        twice.extend(k for k in dict.fromkeys(keys) if keys.count(k) > 1)
        return dict(items)

    json.loads(p.read_text(encoding="utf-8"), object_pairs_hook=pairs)
    if twice:
        raise ValueError(f"config file {str(p)!r} gives {twice[0]!r} twice (JSON would keep the last value "
                         "silently); give each option once")


_MAX_VALUE_CHARS = 1000  # a key=value longer than this is a paste accident, not an option value


def _check_lengths(args) -> None:
    """``--set``, ``--task-option`` and ``--grid`` values of absurd length, named before they are parsed
    (a 5000-digit number would fail deep in Python's int parser, naming none of them)."""
    for flag, dest in (("--set", "set"), ("--task-option", "task_option"), ("--grid", "grid")):
        for item in getattr(args, dest, None) or []:
            if isinstance(item, str) and len(item) > _MAX_VALUE_CHARS:
                raise ValueError(f"{flag} {item[:40]}…: {len(item)} characters, beyond the {_MAX_VALUE_CHARS} of any "
                                 "option value; check the command line (a paste or a shell expansion gone wrong?)")


def _flag_help(name: str, more: str = "") -> str:
    """A config flag's help: the option table's help and rule (and ``more``), escaped for argparse."""
    from .distill.config import option_table
    return (option_table()[name].describe() + more).replace("%", "%%")


def _add_common(p, *, seed=True):
    from .distill import PRESETS
    p.add_argument("--task", default=None, help="built-in task (python -m cmkd_lab tasks)")
    p.add_argument("--epochs", type=int, default=None, help=_flag_help("epochs"))
    if seed:
        p.add_argument("--seed", type=int, default=None, help=_flag_help("seed"))
    p.add_argument("--pairing", default=None, help=_flag_help("pairing"))
    p.add_argument("--teacher-control", dest="teacher_control", default=None,
                   help=_flag_help("teacher_control", " (bench: a comma-separated list, one column each)"))
    p.add_argument("--min-steps", dest="min_steps", type=int, default=None, help=_flag_help("min_steps"))
    p.add_argument("--device", default=None, help=_flag_help("device"))
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None, help=_flag_help("batch_size"))
    p.add_argument("--lr", type=float, default=None, help=_flag_help("lr"))
    p.add_argument("--cost", default=None, help=_flag_help("cost"))
    p.add_argument("--eps", type=float, default=None, help=_flag_help("eps"))
    p.add_argument("--teacher-epochs", dest="teacher_epochs", type=int, default=None, help=_flag_help("teacher_epochs"))
    p.add_argument("--student-fraction", dest="student_fraction", type=float, default=None,
                   help=_flag_help("student_fraction"))
    from .distill.methods import METHODS
    readers = ", ".join(m for m in sorted(METHODS) if METHODS[m].uses_unlabelled)
    p.add_argument("--student-unlabelled", dest="student_unlabelled", action="store_const", const=True, default=None,
                   help=_flag_help("student_unlabelled", f" (the flag sets it true; read by {readers})"))
    p.add_argument("--preset", default=None, help=" | ".join(PRESETS) + " (python -m cmkd_lab options lists them)")
    p.add_argument("--config", default=None, help="JSON or TOML file of DistillConfig options")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="any config option or method option, each once (repeatable; python -m cmkd_lab options "
                        "lists them with their rules)")
    p.add_argument("--fast", action="store_true", help="small data subset (quick checks)")
    p.add_argument("--data-root", dest="data_root", default=None,
                   help="your copy of the data for ave | crema-d | ravdess | vggsound (default: $CMKD_LAB_DATA)")
    p.add_argument("--task-option", dest="task_option", action="append", metavar="KEY=VALUE",
                   help="task option, e.g. direction=V→A, teacher_student_split=disjoint, frames=3 (repeatable)")


def _task_kwargs(args) -> dict:
    """Task options from the flags: --data-root goes only to the tasks that read one."""
    from ._validation import parse_assignments
    from .experiments.engine import check_task_kwargs
    kw = check_task_kwargs(parse_assignments(getattr(args, "task_option", None) or [], what="--task-option"),
                           flag="--task-option")
    root = getattr(args, "data_root", None)
    if root is None:
        return kw
    from .data.av import AV_TASKS
    if (args.task or "synthetic") not in AV_TASKS:
        raise ValueError(f"--data-root is read by the tasks {', '.join(AV_TASKS)}; got --task {args.task or 'synthetic'}")
    return {**kw, "data_root": root}


def out_dir(raw, flag: str = "--out") -> Path:
    """The one check of every command's output folder, before any work starts
    (:func:`cmkd_lab.store.check_out_dir`)."""
    from .store import check_out_dir
    return check_out_dir(raw, what=flag)


def cmd_methods(args):
    from .distill.methods import METHODS
    for name in sorted(METHODS):
        cls = METHODS[name]
        tags = ("[needs pairs] " if cls.needs_pairs else "") + (
            "[needs unlabelled] " if cls.needs_unlabelled else "[uses unlabelled] " if cls.uses_unlabelled else "")
        print(f"{name:12s} {tags}{cls.description}")


def cmd_tasks(args):
    from .data import available_tasks
    for name in available_tasks():
        print(name)


def cmd_options(args):
    """Every option with its default, rule and meaning (the option table), or its Markdown reference."""
    from .distill import PRESETS, get_method
    from .distill.config import CROSS_RULES, option_table, options_reference
    if args.markdown:
        print(options_reference(), end="")
        return 0
    if args.method is not None:
        get_method(args.method)
    for name, row in option_table().items():
        if args.method is None or row.method in (None, args.method):
            print(f"{name}{f' [{row.method}]' if row.method else ''}: {row.describe()}")
    print("\nrules that join options:\n" + "\n".join(f"  {r.text}" for r in CROSS_RULES))
    print("\npresets (--preset):\n" + "\n".join(
        f"  {n}: {', '.join(f'{k}={v}' for k, v in p.items()) or 'the defaults'}" for n, p in PRESETS.items()))
    return 0


def cmd_run(args):
    from .data import load_task
    from .experiments import run_one
    if args.overwrite and args.resume:
        raise ValueError("--overwrite and --resume exclude each other: --resume continues the run in --out, "
                         "--overwrite starts it again")
    from .distill.methods.options import check_method_options
    from .experiments.engine import check_method_name
    if "," in args.method or "[" in args.method:  # bench's forms: a list, a variant
        raise ValueError(f"--method takes one method name (run trains one student); got --method {args.method}: "
                         "give its options with --set key=value, or compare several with bench --methods a,b[k=v]")
    check_method_name(args.method)  # an unknown name fails before the task is loaded
    cfg = build_config(args, method=args.method)
    check_method_options(args.method, cfg)  # another method's option would be stored and never read
    out = out_dir(args.out)
    task = load_task(_task_name(args), seed=cfg.seed, fast=args.fast, **_task_kwargs(args))
    r = run_one(task, args.method, cfg, out, overwrite=args.overwrite, resume=args.resume, progress=not args.quiet)
    print(f"{r['task']} {r['method']} seed {r['seed']} {r['pairing']}: student test acc "
          f"{_fmt_acc(r['student_test_acc'])} (best val epoch {r['best_epoch']}), teacher test acc "
          f"{_fmt_acc(r['teacher_test_acc'])}, {r['s_per_epoch']:.2f} s/epoch, status {r['status']} "
          f"({r['epochs_done']}/{r['epochs']} epochs) → {out / 'result.json'}")
    if r["status"] == "interrupted":
        print("interrupted: continue with the same command and --resume", file=sys.stderr)
        return 130
    if r["status"] == "diverged":
        from .distill.methods.options import divergence_advice
        print(f"diverged: {r.get('error')}; {divergence_advice(args.method)}", file=sys.stderr)
    return 0 if r["status"] == "completed" else 1


def _task_name(args) -> str:
    """``--task`` (default ``synthetic``), checked with the closest name when it is a typo."""
    from .data import available_tasks
    name = args.task or "synthetic"
    if name not in available_tasks():
        close = _closest(name, available_tasks())
        raise ValueError(f"task must be one of {', '.join(map(repr, available_tasks()))}; got task={name!r}"
                         + (f" (did you mean {close!r}?)" if close else ""))
    return name


def _methods(raw: str) -> list:
    """``--methods a,b[x=1;y=2],c``: split on the commas outside a variant's brackets."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth <= 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [x.strip() for x in out + [cur] if x.strip()]


def _seeds(args, cfg) -> list:
    """``--seeds N``: seeds 0..N-1 (1 <= N <= MAX_SEEDS), else the config's one seed."""
    from .experiments.engine import MAX_SEEDS
    if args.seeds is None:
        return [cfg.seed]
    if cfg.seed != 0:  # --seeds N means seeds 0..N-1: a seed given besides it would be ignored
        raise ValueError(f"give --seeds N (seeds 0..N-1) or one seed (--seed S), not both; got --seeds {args.seeds} "
                         f"and seed={cfg.seed} (from --seed, --set or --config)")
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise ValueError(f"--seeds must be between 1 and {MAX_SEEDS} (the number of seeds 0..N-1); "
                         f"got --seeds {args.seeds}")
    return list(range(args.seeds))


def cmd_bench(args):
    from .experiments import run_bench
    # --pairing and --teacher-control list the bench's pairings and controls (comma-separated); each run's
    # config gets one of each.
    from ._validation import check_workers
    check_workers(args.workers, flag="--workers")  # one rule in bench and sweep
    cfg = build_config(argparse.Namespace(**{**vars(args), "pairing": None, "teacher_control": None}))
    if not _methods(args.methods):
        raise ValueError(f"--methods must list at least one method, comma-separated; got {args.methods!r}")
    seeds = _seeds(args, cfg)
    out = out_dir(args.out)
    res = run_bench(_task_name(args), _methods(args.methods), split_names(args.pairing or "unpaired"), seeds,
                    out, cfg, fast=args.fast, progress=not args.quiet, task_kwargs=_task_kwargs(args),
                    controls=split_names(args.teacher_control or "none"), workers=args.workers,
                    overwrite=args.overwrite, ceiling=_ceiling(args))
    from .results import format_bench_markdown as format_markdown
    print(format_markdown(res))
    print(f"→ {out / 'results.md'}")
    return _interrupted(res)


def _ceiling(args):
    """``--ceiling NAME`` (the paired ceiling of scarce-label cells), ``none`` for none."""
    return None if str(args.ceiling).lower() == "none" else args.ceiling  # others: checked by run_bench/run_sweep


def _interrupted(res) -> int:
    """130 with one line when a grid was interrupted (its tables are partial), else 0."""
    if not res.get("interrupted"):
        return 0
    print(f"interrupted: {len(res.get('runs', []))} of {res.get('n_planned')} runs finished and the tables are "
          "partial; run the same command again to complete them", file=sys.stderr)
    return 130


def cmd_sweep(args):
    from ._validation import check_workers
    from .experiments import parse_grid, run_sweep
    check_workers(args.workers, flag="--workers")
    cfg = build_config(args)
    seeds = _seeds(args, cfg)
    if args.dask and args.scheduler:
        raise ValueError(f"give --dask (a local Dask cluster) or --scheduler ADDRESS, not both; got --scheduler {args.scheduler}")
    out = out_dir(args.out)
    try:
        res = run_sweep(_task_name(args), _methods(args.methods), parse_grid(args.grid), seeds, out, cfg,
                        baseline=args.baseline, fast=args.fast, task_kwargs=_task_kwargs(args), workers=args.workers,
                        scheduler="local" if args.dask else args.scheduler, diagnostics=not args.no_diagnostics,
                        diag_epoch=args.diag_epoch, metric=args.metric, ceiling=_ceiling(args),
                        log=(lambda m: None) if args.quiet else print)
    except ImportError as e:
        raise ValueError(str(e)) from None
    print((out / "sweep.md").read_text())
    print(f"→ {out / 'sweep.md'}, sweep.json, cells.csv, predictors.csv")
    return _interrupted(res)


def cmd_demo(args):
    """Teacher + UCMKD and the unpaired baselines on the default task; results table + report."""
    from .experiments import run_bench
    from .results import format_bench_markdown as format_markdown
    from .data import available_tasks
    from .report import write_report
    task = _task_name(args) if args.task else ("hapt" if "hapt" in available_tasks() else "synthetic")
    from ._env import fast_mode
    fast = args.fast or fast_mode()
    # The demo's own budget (3 epochs in the quick pass, else 15) is a default: --epochs, --set, --config or a
    # preset that names the epochs wins (--epochs 0 is refused, not replaced by 15)
    cfg = build_config(args, defaults={"epochs": 3 if fast else 15})
    epochs = cfg.epochs
    out = out_dir(args.out)
    methods = ["ce", "fa", "la", "ucmkd", "ucmkd-joint"]
    print(f"cmkd_lab demo: task {task}, {epochs} epochs, methods {methods} (unpaired), output {out}")
    res = run_bench(task, methods, ["unpaired"], [cfg.seed], out, cfg, fast=fast, progress=not args.quiet,
                    task_kwargs=_task_kwargs(argparse.Namespace(**{**vars(args), "task": task})))
    print(format_markdown(res))
    if _interrupted(res):
        return 130
    ucmkd = next((r for r in res["runs"] if r["method"] == "ucmkd" and r.get("dir")), None)
    if ucmkd is None:
        print("the ucmkd run did not finish (see the table's notes): no report", file=sys.stderr)
        return 1
    from .report import read_result
    ce = next((r for r in res["runs"] if r["method"] == "ce" and r.get("dir") and r.get("seed") == ucmkd.get("seed")),
              None)
    baseline = read_result(out / ce["dir"] / "result.json") if ce is not None else None
    report = write_report(read_result(out / ucmkd["dir"] / "result.json"), out / "report.html", baseline=baseline)
    print(f"report of the ucmkd run (with the ce run of the same seed beside it): {report}\n"
          f"table: {out / 'results.md'}")
    return 0


def cmd_report(args):
    from .report import write_report
    d = Path(args.run_dir)
    if d.is_file():  # the result.json itself: its folder is the run's
        d, rp = d.parent, d
        if rp.name in ("results.json", "sweep.json") or rp.suffix != ".json":
            what = {"results.json": "a bench's results", "sweep.json": "a sweep's results"}.get(rp.name, "not a run's "
                                                                                                 "result.json")
            raise ValueError(f"RUN_DIR must be a run folder or its result.json; {str(rp)!r} is {what}: pass one run, "
                             "e.g. the --out of a `run`, or a grid's runs/<cell>/<method>/seed<S>")
    else:
        rp = d / "result.json"
    if not rp.is_file() and any((d / n).is_file() for n in ("results.json", "sweep.json")):
        raise ValueError(f"RUN_DIR must be a run folder; {str(d)!r} holds a bench or a sweep: pass one of its runs, "
                         f"e.g. {str(d / 'runs' / '<cell>' / '<method>' / 'seed0')!r}")
    if not rp.is_file() and (d / "gap.json").is_file():
        raise ValueError(f"RUN_DIR must be a run folder; {str(d)!r} holds the output of `gap` (gap.json), whose page "
                         f"is already written: open {str(d / 'gap.html')!r} (run `gap` again to remake it)")
    if not rp.is_file():
        raise ValueError(f"RUN_DIR must hold a result.json; {str(rp)!r} does not exist: pass a run folder (the --out "
                         "of a `run`, or a grid's runs/<cell>/<method>/seed<S>) or its result.json")
    from .report import read_result
    result = read_result(rp)  # errors name the file: not UTF-8, not JSON, keys missing
    path = write_report(result, d / "report.html")
    print(path)
    if getattr(args, "png", False):
        from .report import export_pngs
        pngs, why = export_pngs(result, d / "figures")
        print(why if why else f"{len(pngs)} PNG figures → {d / 'figures'}")
    return 0


def cmd_gap(args):
    from .gap_report import export_gap_pngs, gap_command
    if args.out is None:
        raise ValueError("--out DIR is required: where gap.json and gap.html go")
    out = out_dir(args.out)  # an unwritable, missing or too long --out is named before any work
    log = (lambda m: None) if args.quiet else print
    res = gap_command(args.sets, out=out, run=args.run, pairs=args.pairs, names=args.names,
                      max_points=args.max_points, seed=args.seed, permutations=args.permutations,
                      normalize=args.normalize, projection=args.projection, device=args.device, png=False, log=log)
    if args.run is not None:  # e.g. an interrupted run: which epochs are compared, and why
        for note in res.get("notes") or []:
            print(f"note: {note}", file=sys.stderr)
    if args.png:  # a PNG that could not be written is said even with --quiet
        pngs, why = export_gap_pngs(res, out / "figures", projection=split_names(args.projection) or ["none"])
        if why:
            print(f"python -m cmkd_lab gap: warning: --png: {why}", file=sys.stderr)
        else:
            log(f"{len(pngs)} PNG figures → {out / 'figures'}")
    return 0


_CEILING_HELP = ("the paired ceiling added to cells with --student-unlabelled, against which each method's headroom "
                 "recovered is measured: ceiling-kd (default; ceiling-pl stands in if only it ran) | ceiling-pl | none")


def make_parser():
    p = _Parser(prog="python -m cmkd_lab",
                                description="cmkd_lab: cross-modal knowledge distillation without paired data (UCMKD)")
    from . import __version__
    p.add_argument("--version", action="version", version=f"cmkd_lab {__version__}")
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
    s.add_argument("--workers", type=int, default=1, help="local processes, >= 1 (default 1: one run at a time)")
    s.add_argument("--overwrite", action="store_true", help="run again the folders that hold runs made with other "
                                                             "options (refused otherwise)")
    s.add_argument("--ceiling", default="ceiling-kd", help=_CEILING_HELP)
    s.add_argument("--out", required=True)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_bench)
    s = sub.add_parser("sweep", help="regime map: grid cells × methods × seeds, paired differences vs ce")
    _add_common(s, seed=True)
    s.add_argument("--methods", default="ce,fa,ucmkd")
    s.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                   help="a DistillConfig option or a task option and its values (repeatable)")
    s.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    s.add_argument("--baseline", default="ce", help="the method every other is compared with, seed by seed")
    s.add_argument("--workers", type=int, default=None, help="local processes, >= 1 (default: the number of cores)")
    s.add_argument("--dask", action="store_true", help="run on a local Dask cluster (pip install cmkd_lab[cluster])")
    s.add_argument("--scheduler", default=None, help="address of a running Dask scheduler, e.g. tcp://host:8786")
    s.add_argument("--diag-epoch", dest="diag_epoch", type=int, default=2, help="epoch whose diagnostics are predictors")
    s.add_argument("--no-diagnostics", dest="no_diagnostics", action="store_true", help="skip DiagnosticsCallback")
    s.add_argument("--metric", default="student_test_acc", help="student_test_acc | student_test_acc_last")
    s.add_argument("--ceiling", default="ceiling-kd", help=_CEILING_HELP)
    s.add_argument("--out", required=True)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_sweep)
    s = sub.add_parser("report", help="(re)write RUN_DIR/report.html from RUN_DIR/result.json")
    s.add_argument("run_dir", help="a run folder (the --out of `run`, or a grid's runs/<cell>/<method>/seed<S>) or "
                                   "its result.json")
    s.add_argument("--png", action="store_true", help="also write RUN_DIR/figures/*.png (needs kaleido and a Chrome)")
    s.set_defaults(fn=cmd_report)
    s = sub.add_parser("gap", help="explore the gap between two embedding sets (or a run's teacher and student) "
                                   "without training → DIR/gap.json + gap.html")
    s.add_argument("sets", nargs="*", metavar="A B", help="two .npz files (features [+ labels]) or .npy (features)")
    s.add_argument("--run", default=None, metavar="RUN_DIR", help="a finished run: its teacher vs its student "
                                                                  "features, first and last snapshot")
    s.add_argument("--out", default=None, help="output directory (required)")
    s.add_argument("--pairs", default=None, help="'rows' (row i of A is row i of B) or a .npy/.csv of (P, 2) indices")
    s.add_argument("--names", default=None, help="names of the two sets, e.g. image,text (default: the file names)")
    s.add_argument("--max-points", dest="max_points", type=int, default=2000,
                   help="per set, for MMD, OT, purity, retrieval (stratified subsample)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--permutations", type=int, default=200, help="MMD permutation test")
    s.add_argument("--normalize", action="store_true", help="scale each row to unit length first (CLIP-like)")
    s.add_argument("--projection", default="umap,pca", help="overlays: umap,pca | pca | umap | none")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    s.add_argument("--png", action="store_true", help="also write DIR/figures/*.png (needs kaleido and a Chrome)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(fn=cmd_gap)
    s = sub.add_parser("methods", help="list the methods")
    s.set_defaults(fn=cmd_methods)
    s = sub.add_parser("options", help="list every config option and method option: default, rule, meaning")
    s.add_argument("--method", default=None, help="only the shared options and this method's own")
    s.add_argument("--markdown", action="store_true", help="the Markdown reference (docs/config_reference.md)")
    s.set_defaults(fn=cmd_options)
    s = sub.add_parser("tasks", help="list the built-in tasks")
    s.set_defaults(fn=cmd_tasks)
    p._subs = dict(sub.choices)  # unknown flags are named by their subcommand (_Parser.parse_args)
    return p


def main(argv=None) -> int:
    """Run one command; its exit status (0 done, 2 bad arguments, 1 the machine, 130 interrupted, 141 when the
    reader of the output went away, as in ``python -m cmkd_lab options | head``: quietly, like a Unix tool)."""
    try:
        rc = _main(argv)
        if sys.stdout is not None:  # None when the shell closed it (`>&-`): print() then writes nowhere
            sys.stdout.flush()  # here, not at exit, where a closed pipe would print a traceback-like notice
        return rc
    except BrokenPipeError:
        try:  # nothing more can be written there: later writes (and the flush at exit) go nowhere
            import os
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # pragma: no cover - a stdout without a file descriptor
            pass
        return 141


def _main(argv=None) -> int:
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: bad flags (one line, status 2) or --help (status 0)
        return e.code if isinstance(e.code, int) else 2
    from .store import DirectoryInUse
    try:
        from ._env import check_env
        check_env()  # a bad environment variable is refused before any work (not after training)
        _check_lengths(args)
        with warnings.catch_warnings():  # a warning is one line too: `python -m cmkd_lab CMD: warning: ...`
            warnings.showwarning = lambda msg, *_a, **_k: print(f"python -m cmkd_lab {args.cmd}: warning: {msg}",
                                                                file=sys.stderr)
            return args.fn(args) or 0
    except (ValueError, TypeError, DirectoryInUse) + _PATH_ERRORS as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"python -m cmkd_lab {args.cmd}: error: {msg}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine, not the arguments: a full disk (named by cmkd_lab._atomic)
        if e.errno not in _DISK_ERRNOS:
            raise
        print(f"python -m cmkd_lab {args.cmd}: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    except MemoryError as e:  # a size asked for that this machine cannot hold: one line, not a traceback
        print(f"python -m cmkd_lab {args.cmd}: error: out of memory ({str(e).splitlines()[0] if str(e) else 'MemoryError'}"
              "); ask for less: smaller task options (n_teacher, n_student, num_classes), --batch-size, "
              "--max-points or --permutations", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
