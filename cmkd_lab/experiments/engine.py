"""The engine under ``bench`` and ``sweep``: check what a grid asks for and plan its jobs.

**Planning** (:func:`plan`): every cell × method × seed becomes a :class:`Job`, unless the rule of what can
run (:mod:`cmkd_lab.distill.rules`) says it cannot — it is then *skipped* with the reason — or it would give
the same run as an earlier job (a method that never reads a teacher sample gives one run under every
pairing) — it is then an *alias* of that job and runs once. With ``aa=True`` each cell also gets the
**A/A control**: the baseline trained again with another draw of its training randomness
(``replicate=1``), the noise floor of every comparison in the cell; a cell with unlabelled student data
gets the **paired ceiling** (``ceiling``), the reference of the headroom a method recovers.

The jobs run in :mod:`.worker` (the store's policy: what is read back, resumed, run again or refused) under
:mod:`cmkd_lab.experiments.runner` (claim → plan → run → summarise → write, one interrupt behaviour).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from ..results.grid import cell_dir
from ..results.summary import aa_name
from ..store import code_version

__all__ = ["plan", "parse_method", "check_method_name", "check_grid_args", "check_methods", "check_variants", "check_seeds", "MAX_SEEDS", "Cell", "Job",
           "Skip", "Alias", "Plan", "canonical", "dedupe", "IDENTITY_OPTIONS"]

# More seeds than this is a typo (every seed is a training per method and cell), not a plan: refused before
# anything is allocated.
MAX_SEEDS = 1000


def check_seeds(seeds, *, flag: str = "seeds") -> list:
    """``seeds`` as a list of distinct ints: non-empty, at most :data:`MAX_SEEDS` of them (checked on its length
    before it is materialised, so ``range(10**9)`` is refused at once)."""
    from .._validation import check_int
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__"):
        raise ValueError(f"{flag} must be a list of seeds (ints); got {seeds!r}")
    if not len(seeds):
        raise ValueError(f"{flag} must hold at least one seed; got an empty list")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"{flag} must hold at most {MAX_SEEDS} seeds (each is a training per method and cell); "
                         f"got {len(seeds)}: use fewer seeds")
    out = list(dict.fromkeys(check_int(f"{flag}[i]", s) for s in seeds))
    return out


def check_method_name(name, *, what: str = "method") -> str:
    """``name`` if it is a registered method; else the error that lists them, with the closest name when it
    looks like a typo (``ucmdk``, ``UCMKD``) — the one check of a method's name at every door."""
    import difflib
    from ..distill.methods import available_methods
    names = list(available_methods())
    if isinstance(name, str) and name in names:
        return name
    hint = ""
    if isinstance(name, str) and name.strip():
        low = {n.lower(): n for n in names}
        close = ([low[name.strip().lower()]] if name.strip().lower() in low else
                 [low[c] for c in difflib.get_close_matches(name.strip().lower(), list(low), n=1, cutoff=0.6)])
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"{what} must be one of {', '.join(map(repr, names))}; got {what}={name!r}{hint}")


def parse_method(spec: str):
    """``"ucmkd-joint[la_teacher_grad=align;lambda_fa=0.1]"`` → (``"ucmkd-joint"``, its option overrides):
    a method variant, compared like any method (values read as JSON where they parse; the one key=value
    parser, :func:`cmkd_lab._validation.parse_assignments`).

    Raises
    ------
    ValueError
        A malformed spec, an option given twice, or an option of another method (the variant would never
        read it).
    """
    from .._validation import parse_assignments
    from ..distill.methods.options import option_owner
    m = re.fullmatch(r"\s*([A-Za-z0-9_-]+)\s*(?:\[(.*)\])?\s*", str(spec))
    if not m:
        raise ValueError(f"a method is a name, or name[option=value;...] for a variant; got {spec!r}")
    comma = r",(?=\s*[A-Za-z_]\w*\s*=)"  # a comma before another key=value inside the brackets
    if m.group(2) and re.search(comma, m.group(2)):
        fixed = f"{m.group(1)}[{re.sub(comma, ';', m.group(2))}]"
        raise ValueError(f"method variant {spec!r}: separate its options with ';', not ',' (the commas separate "
                         f"methods): write {fixed}")
    items = [x.strip() for x in (m.group(2) or "").split(";") if x.strip()]
    over = parse_assignments(items, what=f"method variant {spec!r}", form="key=value options separated by ';'")
    for k, v in over.items():
        owner = option_owner(k)
        if owner not in (None, m.group(1)):
            raise ValueError(f"method variant {spec!r}: {k}={v!r} is an option of method {owner!r}, which "
                             f"{m.group(1)!r} never reads: leave it out, or make it a variant of {owner!r}")
    return m.group(1), over


def check_methods(specs, config) -> None:
    """Every method (variant) names a registered method and valid option overrides."""
    from ..data import available_tasks, task_options
    for spec in specs:
        name, over = parse_method(spec)
        check_method_name(name)
        if over:
            task_keys = sorted({k for t in available_tasks() for k in (task_options(t) or ())} & set(over))
            if task_keys:  # a data option: the variant's runs would share the grid's data and teacher
                raise ValueError(f"method variant {spec!r} sets {', '.join(task_keys)}, an option of the task, not "
                                 "of the method: give it with --task-option (one value) or vary it with --grid")
            try:
                config.replace(**over)
            except (ValueError, TypeError) as e:
                raise type(e)(f"method variant {spec!r}: {e}") from None

# A variant option that names the run — its seed, its draw of the training noise, or an axis of the grid
# whose value names the cell — would run under another run's name: refused like such grid keys are.
IDENTITY_OPTIONS = {"seed": "every method already runs every seed (use --seeds N)",
                    "replicate": "it draws the A/A control's training noise, which the grid sets itself"}


def check_variants(methods, *, axes=(), where: str = "methods") -> None:
    """Refuse a method variant that sets an option naming its run: ``seed``, ``replicate`` (see
    :data:`IDENTITY_OPTIONS`) or one of the grid's ``axes`` (a bench's pairing and teacher control, a sweep's
    grid keys), whose value names the cell the run is filed and compared under."""
    for spec in methods:
        _, over = parse_method(spec)
        for k in over:
            why = IDENTITY_OPTIONS.get(k) or (f"{k!r} is an axis of this grid, so its value names the cell the run "
                                              "is filed under; vary it on the grid instead" if k in axes else None)
            if why:
                raise ValueError(f"{where}: method variant {spec!r} sets {k!r}, which names the run ({why}); "
                                 f"remove {k}= from the variant")


def default_config(task=None):
    """The configuration a run gets when none is given: the defaults, with the task's own
    (:data:`~cmkd_lab.distill.config.TASK_DEFAULTS`: ``feature_dim=512`` on the audio-visual tasks, the width
    of their ResNet-18 features) — the same from Python (``cmkd_lab.distill()``, ``run_bench``,
    ``run_sweep``) as from the command line. ``task``: a task name, a Task or None."""
    from ..distill import DistillConfig
    from ..distill.config import TASK_DEFAULTS
    name = task if isinstance(task, str) else getattr(task, "name", None)
    return DistillConfig.from_dict(dict(TASK_DEFAULTS.get(name or "", {})))


def check_grid_args(*, out, config, fast, log, ceiling, task=None) -> tuple:
    """The arguments every grid (bench, sweep) takes besides its own, checked before anything runs, each
    error naming the argument: ``(out as a Path, config, fast)``; no ``config``: :func:`default_config` of
    ``task``."""
    import os
    from .._validation import check_bool
    from ..distill import DistillConfig
    from ..results.summary import CEILINGS
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise TypeError(f"out must be the grid's folder (a str or os.PathLike); got out={out!r}: pass e.g. "
                        "out='runs/my-bench'")
    config = default_config(task) if config is None else config
    if not isinstance(config, DistillConfig):
        raise TypeError(f"config must be a DistillConfig (or None for the defaults); got {type(config).__name__}: "
                        "build one with DistillConfig(...) or DistillConfig.from_dict(d)")
    fast = check_bool("fast", fast)
    if not callable(log):
        raise TypeError(f"log must be a function of one string (e.g. print, or lambda m: None for silence); got "
                        f"log={log!r}")
    if ceiling is not None and ceiling not in CEILINGS:
        raise ValueError(f"ceiling must be one of {', '.join(map(repr, CEILINGS))} or None (--ceiling none): the paired "
                         f"ceiling the headroom recovered is measured against; got ceiling={ceiling!r}")
    return Path(out), config, fast


_FINAL = ("completed", "diverged")  # a rerun would give the same answer


# ------------------------------------------------------------------ the plan
@dataclass
class Cell:
    """One cell of a grid: its name, the values of its axes, the config and task options of its runs, and
    its folder under ``OUT/runs`` (a safe name, :func:`cmkd_lab.results.grid.cell_dir`)."""
    name: str
    values: dict
    config: Any
    task_kwargs: dict
    dir: str


@dataclass
class Job:
    """One run of a grid (cell × method × seed), as the workers receive it. ``identity`` is what its stored
    run must match to be read back; ``rel`` its folder under the grid's ``out``."""
    task: str
    fast: bool
    task_kwargs: dict
    method: str
    label: str
    config: dict
    cell: str
    values: dict
    seed: int
    identity: dict
    teacher_key: str
    out: str
    rel: str
    diagnostics: Any = True
    early_epochs: int = 0
    threads: int = 0
    report: bool = False
    progress: bool = False
    overwrite: bool = False
    resume: bool = False

    @property
    def path(self) -> Path:
        return Path(self.out) / self.rel


@dataclass
class Skip:
    """A combination the rule of what can run (:mod:`cmkd_lab.distill.rules`) refuses, with its reason."""
    cell: str
    values: dict
    method: str
    seed: int
    reason: str


@dataclass
class Alias:
    """A combination that would give the same run as an earlier job (``same_as``: that job's cell; ``rel``
    its folder)."""
    cell: str
    values: dict
    method: str
    seed: int
    same_as: str
    rel: str
    reason: str


@dataclass
class Plan:
    jobs: List[Job] = field(default_factory=list)
    skipped: List[Skip] = field(default_factory=list)
    aliases: List[Alias] = field(default_factory=list)


def _job_config(method: str, cfg):
    """The one place where a job's config is made for its method: ``cfg`` without the options of other
    methods (a run's identity holds only what it reads)."""
    from ..distill.methods.options import config_for
    return config_for(method, cfg)


_NOT_TASK_OPTIONS = {"seed": ("--seed S (bench and sweep: --seeds N)", "seeds=[...]"),
                     "fast": ("--fast", "fast=True")}


def check_task_kwargs(task_kwargs, *, flag: str = "task_kwargs") -> dict:
    """Task options without the two arguments every task takes from elsewhere (``seed``, ``fast``): one of
    them here is refused by name with where it goes (``load_task`` would raise 'got multiple
    values for keyword argument')."""
    kw = dict(task_kwargs or {})
    for k, (cli, py) in _NOT_TASK_OPTIONS.items():
        if k in kw:
            where = cli if flag.startswith("--") else py
            raise ValueError(f"{flag} {k}={kw[k]!r}: {k} is not a task option; give it with {where}")
    return kw


def _task_facts(task_name, seed, fast, task_kwargs, cache: dict):
    """(task, full fingerprint, has_pairs), loading each (seed, options) once."""
    from ..data import load_task
    check_task_kwargs(task_kwargs)
    key = (seed, fast, json.dumps(task_kwargs, sort_keys=True))
    if key not in cache:
        try:
            t = load_task(task_name, seed=seed, fast=fast, **task_kwargs)
        except TypeError as e:
            raise ValueError(f"task {task_name!r} options {sorted(task_kwargs)}: {e}") from None
        cache[key] = (t, t.fingerprint(), t.has_pairs)
    return cache[key]


def canonical(method: str, cfg) -> dict:
    """The config of the run ``method`` would really do: options it provably ignores set to their
    default (a method that never reads a teacher sample runs the same under every pairing)."""
    from ..distill.rules import same_as_unpaired, same_under_controls
    d = cfg.to_dict()
    if same_as_unpaired(method, cfg.pairing):
        d["pairing"] = "unpaired"
    if same_under_controls(method, cfg.teacher_control):
        d["teacher_control"] = "none"
    return d


def _variants(methods, cell: Cell, *, baseline: str, aa: bool, ceiling: Optional[str]):
    """(label, method, option overrides, replicate, folder) of every run of a cell: the methods, the A/A
    control of the baseline, and — in a scarce-label cell with unlabelled student data — the paired ceiling."""
    from ..distill.methods import METHODS
    out = [(m, *parse_method(m), 0, cell_dir(m)) for m in methods]
    if aa:
        out.append((aa_name(baseline), baseline, {}, 1, f"{cell_dir(baseline)}-aa"))
    if ceiling and ceiling in METHODS and cell.config.student_unlabelled and ceiling not in methods:
        out.append((ceiling, ceiling, {}, 0, cell_dir(ceiling)))
    return out


def _check_folders(cells: List[Cell], variants) -> None:
    """Two names reduced to one safe folder name would share runs: refused, naming both."""
    for kind, pairs in (("cells", [(c.dir, c.name) for c in cells]), ("methods", [(v[4], v[0]) for v in variants])):
        seen: dict = {}
        for folder, name in pairs:
            if seen.setdefault(folder, name) != name:
                raise ValueError(f"{kind} {seen[folder]!r} and {name!r} would share the run folder {folder!r} (names "
                                 "are reduced to letters, digits and =,.+-_ on disk); rename one of them")


def _why_same(method: str, cfg) -> str:
    from ..distill.rules import same_as_unpaired, same_under_controls
    return (f"{method} never reads a teacher sample, so its run is identical to the unpaired one"
            if same_as_unpaired(method, cfg.pairing) else
            f"{method} never reads the teacher, so its run is the one with the real teacher"
            if same_under_controls(method, cfg.teacher_control) else "the same run")


def plan(task: str, methods: List[str], cells: List[Cell], seeds: List[int], out: Path, *, fast: bool,
         baseline: str, aa: bool, diagnostics, early_epochs: int, threads: int, report: bool = False,
         progress: bool = False, ceiling: Optional[str] = None) -> Plan:
    """The jobs, skipped combinations and aliases of ``cells`` × methods (and references) × ``seeds``.

    ``diagnostics``: the diagnostics of each run — True (the default callback, every
    ``config.diagnostics_every`` epochs), a dict of its options, or None (none). ``ceiling``: the paired
    ceiling added to every cell with ``student_unlabelled`` (when that method exists; None: not added).
    """
    from ..distill.rules import why_not
    from ..distill.teacher import teacher_key
    facts: dict = {}
    p, first = Plan(), {}
    all_variants = {c.name: _variants(methods, c, baseline=baseline, aa=aa, ceiling=ceiling) for c in cells}
    _check_folders(cells, [v for vs in all_variants.values() for v in vs])
    for seed in seeds:
        for c in cells:
            t, fp, has_pairs = _task_facts(task, seed, fast, c.task_kwargs, facts)
            base_cfg = c.config.replace(seed=seed)
            tkey = teacher_key(t, base_cfg)
            for label, method, over, replicate, folder in all_variants[c.name]:
                cfg = base_cfg.replace(**over, **({"replicate": replicate} if replicate else {})) \
                    if (over or replicate) else base_cfg
                cfg = _job_config(method, cfg)
                why = why_not(method, pairing=cfg.pairing, task_name=task, task_has_pairs=has_pairs,
                              student_unlabelled=cfg.student_unlabelled, teacher_control=cfg.teacher_control)
                if why is not None:
                    p.skipped.append(Skip(c.name, c.values, label, seed, why[1]))
                    continue
                identity = {"task": task, "task_kwargs": c.task_kwargs, "fast": fast, "method": method,
                            "config": canonical(method, cfg), "data": fp, "code_version": code_version()}
                key = json.dumps(identity, sort_keys=True, default=str)
                rel = f"runs/{c.dir}/{folder}/seed{seed}"
                if key in first:
                    src = first[key]
                    p.aliases.append(Alias(c.name, c.values, label, seed, src.cell, src.rel, _why_same(method, cfg)))
                    continue
                first[key] = Job(task, fast, c.task_kwargs, method, label, cfg.to_dict(), c.name, c.values, seed,
                                 identity, tkey, str(out), rel, diagnostics=diagnostics, early_epochs=early_epochs,
                                 threads=threads, report=report, progress=progress)
                p.jobs.append(first[key])
    return p


def dedupe(items, keys=("cell", "method")) -> List[dict]:
    """One entry per ``keys`` (the first), without its seed and folder: the ``skipped`` and ``aliases``
    of a result file."""
    seen, out = set(), []
    for s in items:
        d = asdict(s) if not isinstance(s, dict) else s
        k = tuple(d.get(x) for x in keys)
        if k not in seen:
            seen.add(k)
            out.append({x: v for x, v in d.items() if x not in ("seed", "dir", "rel")})
    return out
