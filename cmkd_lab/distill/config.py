"""The distillation config: one dataclass whose fields are declared with their rules.

The paper's experiments (ResNet-18 on audio-visual data) use: SGD lr 1e-2,
momentum 0.9, batch 64, 100 epochs, λ1 = λ2 = 1, n1 = n2 = 1, ε = 0.1 with
Euclidean cost, 100 Sinkhorn iterations, clip 5, inner AdamW lr 1e-5 / wd
0.05, 5 warm-up epochs then cosine. Those live in the ``paper`` preset; the
defaults below suit the small built-in tasks on a CPU.

**One table of option rules.** Every field is declared with :func:`~cmkd_lab._validation.opt` (default,
rule, help), and so is every method's own option (:mod:`.methods.options`: ``n1``, ``kd_temperature``,
``c2kd_tau`` ... live in their method's typed class and travel in ``extra``). That one table
(:func:`option_table`) drives validation, the CLI help and the reference (:func:`options_reference`,
``docs/config_reference.md``). Validation checks every option's type first, then every range or choice,
then the rules that join several options (:data:`CROSS_RULES`).

Every door (the constructor, ``from_dict``, ``replace``, a config file, ``--set``) applies one coercion
rule: NumPy scalars become Python values and an int given for a float option becomes a float. Nothing
else is converted: a bool option takes only a real boolean, and ``"false"``, ``"no"`` or ``0`` are refused
on purpose rather than coerced (``"false"`` is a true value in Python; in JSON, TOML and ``--set`` write
``true`` / ``false`` unquoted).

A config is the same whether a method option is left at its default or given at its default (``extra``
keeps the options away from their default; :meth:`DistillConfig.to_dict` writes every option).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from .._validation import Bool, Choice, Float, Int, Mapping, Pattern, Rule, apply_rules, opt, rule_of
from ..align import COSTS, TEACHER_GRAD_MODES
from ..data.sampling import PAIRINGS
from .methods.options import canonical_extra, extra_rules, option_fields, option_specs

__all__ = ["DistillConfig", "PRESETS", "TASK_DEFAULTS", "TEACHER_CONTROLS", "CROSS_RULES", "MAX_EPOCHS",
           "MAX_STEPS", "load_config_file", "option_table", "options_reference", "planned_epochs"]

TEACHER_CONTROLS = ("none", "random", "shuffled-labels", "permuted-classes")  # distill/teacher.py trains them
MAX_EPOCHS = 100_000     # a budget beyond these is a typo, not a plan (refused before anything runs)
MAX_STEPS = 1_000_000
_SCHEDULES = ("constant", "cosine")
_BUDGET = "a budget beyond this is a typo, not a plan (the paper trains 100 epochs); lower it"


def _group(name: str):
    return functools.partial(opt, group=name)


_train, _ot, _la, _data, _teacher, _run, _speed = map(_group, (
    "student optimisation", "feature alignment (OT)", "label alignment", "data", "teacher", "run",
    "speed and scale"))


@dataclass(init=False)
class DistillConfig:
    """The options of a run (see the module docstring; the reference lists every one with its rule).

    Construct with keywords: the fields below and any method option by its name
    (``DistillConfig(epochs=10, n1=2, c2kd_tau=0.5)``); a method option is read back as an attribute
    (``cfg.n1``) and lives in ``extra``.
    """

    epochs: int = _train(30, Int(min=1, max=MAX_EPOCHS, max_hint=_BUDGET), "student epochs (paper: 100)")
    min_steps: int = _train(0, Int(min=0, max=MAX_STEPS, max_hint="counted in optimiser steps; " + _BUDGET),
                            "at least this many optimiser steps: epochs are raised when few labels make epochs "
                            "short (0 = off)")
    batch_size: int = _train(64, Int(min=2), "student batch size (paper: 64)")
    optimizer: str = _train("adam", Choice(choices=("adam", "adamw", "sgd")), "student optimiser (paper: sgd, "
                                                                                  "momentum 0.9)")
    lr: float = _train(1e-3, Float(gt=0), "student learning rate (paper: 1e-2 with sgd)")
    momentum: float = _train(0.9, Float(ge=0, lt=1, max_hint="SGD diverges at >= 1; the paper uses 0.9"), "sgd only")
    weight_decay: float = _train(0.0, Float(ge=0), "student weight decay")
    schedule: str = _train("cosine", Choice(choices=_SCHEDULES),
                           "learning-rate schedule: cosine decays to 0 at the last epoch (a stable last epoch)")
    warmup_epochs: int = _train(0, Int(min=0, max=MAX_EPOCHS), "linear warm-up epochs, fewer than epochs (paper: 5)")
    grad_clip: float = _train(5.0, Float(ge=0), "max gradient norm, 0 = off (paper: 5)")
    feature_dim: int = _train(64, Int(min=1, max=65_536), "D, shared by teacher and student (paper: 512)")
    cost: str = _ot("l2", Choice(choices=COSTS), "OT ground cost (paper: l2; public code: cosine)")
    eps: float = _ot(0.1, Float(gt=0, hint="typical: 0.05-0.5 with eps_units='median'"),
                     "entropic regularisation (paper: 0.1)")
    eps_units: str = _ot("median", Choice(choices=("absolute", "median")),
                         "median: eps × the median batch cost (scale-free); absolute: as POT")
    sinkhorn_iter: int = _ot(100, Int(min=1, max=1_000_000), "Sinkhorn iterations (paper: 100)")
    lambda_fa: float = _ot(1.0, Float(ge=0), "λ1, weight of the feature-alignment (OT) term (paper: 1)")
    lambda_la: float = _la(1.0, Float(ge=0), "λ2, weight of the label-alignment term (paper: 1)")
    la_teacher_grad: str = _la("none", Choice(choices=TEACHER_GRAD_MODES),
                               "how the LA term's gradient reaches the teacher head (public code: none; see align.la)")
    la_detach_features: bool = _la(False, Bool(), "the LA step updates the head only (public code: true)")
    pairing: str = _data("unpaired", Choice(choices=PAIRINGS), "how teacher samples meet student samples")
    student_fraction: float = _data(1.0, Float(gt=0, le=1), "stratified share of the student's labelled "
                                                              "training data")
    student_unlabelled: bool = _data(False, Bool(), "the rest of that split, labels withheld, feeds the OT "
                                                    "term (unpaired only)")
    teacher_epochs: int = _teacher(30, Int(min=1, max=MAX_EPOCHS, max_hint=_BUDGET), "teacher epochs")
    teacher_lr: float = _teacher(1e-3, Float(gt=0), "teacher learning rate")
    teacher_schedule: str = _teacher("cosine", Choice(choices=_SCHEDULES), "the teacher's learning-rate schedule")
    teacher_control: str = _teacher("none", Choice(choices=TEACHER_CONTROLS),
                                    "the real teacher or a control: untrained, trained on shuffled labels, or "
                                    "with its classes renamed")
    seed: int = _run(0, Int(min=0, max=2**32 - 1), "the seed of the data split, the teacher and the training")
    replicate: int = _run(0, Int(min=0, max=2**32 - 1), "another draw of the training noise (init, batch order) on the same "
                                         "data and teacher")
    device: str = _run("auto", Pattern(regex=r"auto|cpu|mps|cuda(:\d+)?", like="'auto', 'cpu' or 'cuda'",
                                       spelled="'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
                       "where to train (availability is checked when the run starts)")
    diagnostics_every: int = _run(1, Int(min=0), "epochs between diagnostics (0 = off)")
    eval_test: str = _run("best", Choice(choices=("best", "every")),
                          "when the test split is evaluated: best = at every new best validation accuracy and "
                          "the last epoch (what a result reads); every = every epoch (a per-epoch test curve)")
    audit_every: int = _run(5, Int(min=0), "gradient audit (per-loss-term gradient norms on encoder and head, "
                                           "cosine with CE) at the first step of every N-th epoch from the first "
                                           "and of the last epoch; 0 = off")
    amp: bool = _run(False, Bool(), "bf16 autocast for the encoders on CUDA (OT stays fp32)")
    compile: str = _speed("none", Choice(choices=("none", "ot", "all")),
                          "torch.compile: ot = the Sinkhorn loop, all = also encoder and head")
    ot_solver: str = _speed("auto", Choice(choices=("auto", "scaling", "log")),
                            "Sinkhorn form (align.sinkhorn_plan; auto never syncs a GPU)")
    ot_stop_thr: float = _speed(0.0, Float(ge=0, hint="0 runs sinkhorn_iter iterations; POT's default is 1e-9"),
                                "> 0: stop Sinkhorn early like POT's stopThr (a sync per check on GPUs)")
    ot_all_gather: bool = _speed(False, Bool(), "under torchrun: OT between the global batches")
    extra: Dict[str, Any] = opt({}, Mapping(), "methods' own options by name (listed per method below)",
                                group="method options")

    def __init__(self, **options):
        known = _fields()
        moved = {k: options.pop(k) for k in list(options) if k not in known and k in option_fields()}
        unknown = {k: v for k, v in options.items() if k not in known}
        if unknown:
            raise TypeError(_unknown(unknown, "DistillConfig got unknown option(s)"))
        for name, f in known.items():
            object.__setattr__(self, name, options[name] if name in options else _default(f))
        if moved and isinstance(self.extra, dict):  # (an extra that is not a dict is refused by validate())
            object.__setattr__(self, "extra", {**self.extra, **moved})
        self.validate()

    def __getattr__(self, name):  # a method option read as an attribute: cfg.n1
        spec = option_specs().get(name) if not name.startswith("__") else None
        extra = self.__dict__.get("extra")
        if spec is None or not isinstance(extra, dict):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return extra.get(name, spec[1].default)

    def __setattr__(self, name, value):  # cfg.n1 = 2 goes to extra (checked again by validate())
        if name not in _fields() and name in option_fields() and isinstance(self.__dict__.get("extra"), dict):
            self.extra[name] = value
        else:
            object.__setattr__(self, name, value)

    def validate(self) -> "DistillConfig":
        """Check every option: all types first, then all ranges and choices, then :data:`CROSS_RULES`;
        the config is left in its canonical form (numbers coerced, ``extra`` without defaults)."""
        rules = {n: rule_of(f) for n, f in _fields().items()}
        typed = {n: r.coerce(n, getattr(self, n)) for n, r in rules.items()}
        opt_rules = extra_rules(typed["extra"])
        opts = {k: opt_rules[k].coerce(k, v) for k, v in typed["extra"].items()}
        for n, v in typed.items():
            if n != "extra":
                rules[n].check(n, v)
        for k, v in opts.items():  # each method option by its own rule (the name in the message) ...
            opt_rules[k].check(k, v)
        rules["extra"].check("extra", opts)  # ... so this guard (plain JSON) only speaks for a new rule kind
        for n, v in typed.items():
            object.__setattr__(self, n, v)
        object.__setattr__(self, "extra", canonical_extra(opts))
        for rule in CROSS_RULES:
            rule.check(self)
        return self

    def replace(self, **changes) -> "DistillConfig":
        """A validated copy with ``changes`` applied (unknown keys are an error; a method's option, e.g.
        ``c2kd_tau``, goes into ``extra``)."""
        d = {n: getattr(self, n) for n in _fields()}
        d["extra"] = dict(self.extra)
        return DistillConfig.from_dict({**d, **changes})

    def to_dict(self) -> dict:
        """Every option by name, method options included at their value (defaults too): what a run records
        (``result.json``, checkpoints, a grid job's identity)."""
        d = {n: getattr(self, n) for n in _fields() if n != "extra"}
        d.update({k: self.extra.get(k, f.default) for k, (_, f) in option_specs().items()})
        return json.loads(json.dumps(d))

    def options_of(self, method: str):
        """``method``'s typed options (its :class:`~cmkd_lab.distill.methods.options.MethodOptions`), or None."""
        from .methods import get_method
        cls = get_method(method).options
        return None if cls is None else cls.from_extra(self.extra)

    @classmethod
    def with_defaults(cls, d) -> dict:
        """``d`` (a stored ``to_dict()``, of this version or an older one) in today's layout, with every
        option it lacks set to its default: a run, checkpoint or cache entry written before an option
        existed (or when method options were kept in ``extra``) compares equal to one written now with the
        default. Unknown keys stay (and still differ); anything that is not a dict is returned unchanged."""
        if not isinstance(d, dict):
            return d
        flat = {k: v for k, v in d.items() if k != "extra"}
        if isinstance(d.get("extra"), dict):
            flat.update(d["extra"])
        elif "extra" in d:
            flat["extra"] = d["extra"]
        out = {n: flat.get(n, _default(f)) for n, f in _fields().items() if n != "extra"}
        out.update({k: flat.get(k, f.default) for k, (_, f) in option_specs().items()})
        out.update({k: v for k, v in flat.items() if k not in out})
        return out

    @classmethod
    def from_dict(cls, d: dict, *, source: Optional[str] = None) -> "DistillConfig":
        """A config from a dict of options (a method option by its name or inside ``extra``). ``source``
        (e.g. ``"--config c.toml"``) starts every error message; unknown keys are refused with the closest
        known name."""
        _check_keys(d, source)
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            if source:
                raise type(e)(f"{source}: {e}") from None
            raise

    @staticmethod
    def check_options(d: dict, *, source: Optional[str] = None) -> dict:
        """Check the options in ``d`` alone, each by its rule (keys, then types, then values; not the rules
        that join options, which need the whole config): how the CLI tells which of its layers (a config
        file, ``--set``) holds a bad option. Returns the coerced values."""
        _check_keys(d, source)
        table, d = option_table(), dict(d)
        try:
            if "extra" in d:
                extra = rule_of(_fields()["extra"]).coerce("extra", d.pop("extra"))
                extra_rules(extra)
                d.update(extra)
            return apply_rules(d, {k: table[k].rule for k in d})
        except (TypeError, ValueError) as e:
            if source:
                raise type(e)(f"{source}: {e}") from None
            raise


def _fields() -> Dict[str, dataclasses.Field]:
    return _FIELDS


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def _check_keys(d, source: Optional[str]) -> None:
    if not isinstance(d, dict):
        raise TypeError(f"{source or 'config'} must be a mapping of option names to values; got {type(d).__name__}")
    unknown = {k: v for k, v in d.items() if k not in _fields() and k not in option_fields()}
    if unknown:
        raise ValueError(_unknown(unknown, f"{source or 'config'} has unknown keys"))


def _unknown(d: dict, what: str) -> str:
    """The unknown-key message of every door: the keys, the closest known name of each, the known names."""
    import difflib
    known, opts = list(_fields()), list(option_fields())
    keys = sorted(d, key=repr)
    close = {k: difflib.get_close_matches(k, known + opts, n=1, cutoff=0.75) for k in keys if isinstance(k, str)}
    hint = "".join(f" ({k!r}: did you mean {c[0]!r}?)" for k, c in close.items() if c)
    return (f"{what} {keys}{hint}; known keys: {', '.join(sorted(known))}"
            + (f"; method options: {', '.join(sorted(opts))}" if opts else ""))


_FIELDS = {f.name: f for f in fields(DistillConfig)}


# ---------------------------------------------------------------- rules that join several options
@dataclass(frozen=True)
class CrossRule:
    """A rule on several options, checked after every option's type and range; ``text`` for the reference."""

    names: Tuple[str, ...]
    text: str
    broken: Callable[[DistillConfig], bool]
    message: Callable[[DistillConfig], str]

    def check(self, cfg: DistillConfig) -> None:
        if self.broken(cfg):
            raise ValueError(self.message(cfg))


CROSS_RULES: Tuple[CrossRule, ...] = (
    CrossRule(("student_unlabelled", "student_fraction"),
              "student_unlabelled=true needs student_fraction < 1 (the unlabelled samples are the rest)",
              lambda c: c.student_unlabelled and c.student_fraction >= 1,
              lambda c: ("student_unlabelled=True uses the student training samples left out by student_fraction, "
                         f"and student_fraction={c.student_fraction!r} leaves none: set student_fraction below 1 "
                         "(e.g. 0.05) or student_unlabelled=False")),
    CrossRule(("student_unlabelled", "pairing"), "student_unlabelled=true needs pairing='unpaired'",
              lambda c: c.student_unlabelled and c.pairing != "unpaired",
              lambda c: ("student_unlabelled=True needs pairing='unpaired' (an unlabelled sample has no class to "
                         f"match and no recorded pair); got pairing={c.pairing!r}")),
    CrossRule(("warmup_epochs", "epochs"), "warmup_epochs < epochs (the warm-up ends inside the run)",
              lambda c: c.warmup_epochs > 0 and c.warmup_epochs >= c.epochs,
              lambda c: (f"warmup_epochs must be < epochs (the learning rate would never reach lr); got "
                         f"warmup_epochs={c.warmup_epochs}, epochs={c.epochs}: lower warmup_epochs (e.g. --set "
                         f"warmup_epochs=0 with --preset paper on a short run) or raise epochs")),
)


def planned_epochs(cfg: DistillConfig, steps_per_epoch: int) -> int:
    """The epochs a run trains: ``cfg.epochs``, raised so that the student takes at least ``cfg.min_steps``
    optimiser steps of ``steps_per_epoch`` each.

    Raises
    ------
    ValueError
        When that is more than :data:`MAX_EPOCHS` (``min_steps`` over a handful of steps per epoch).
    """
    epochs = max(cfg.epochs, -(-cfg.min_steps // max(1, steps_per_epoch)))
    if epochs > MAX_EPOCHS:
        raise ValueError(f"min_steps={cfg.min_steps} at {steps_per_epoch} optimiser step(s) per epoch means "
                         f"{epochs} epochs, and a run takes at most {MAX_EPOCHS}: lower min_steps or raise "
                         "batch_size / student_fraction")
    return epochs


# ---------------------------------------------------------------- the table, for people
@dataclass(frozen=True)
class OptionSpec:
    """One row of the option table: an option's name, default, rule and help, the method it belongs to
    (None: every method's) and its group."""

    name: str
    default: Any
    rule: Rule
    help: str
    method: Optional[str]
    group: str

    def describe(self) -> str:
        """``"<help>; <rule>, default <default>"``: the CLI help of the option."""
        return f"{self.help}; {self.rule.describe()}, default {_shown(self.default)}"


def option_table() -> Dict[str, OptionSpec]:
    """Every option by name, in the reference's order: the config's fields (``extra`` is their container,
    not an option), then each method's own options."""
    rows = {n: OptionSpec(n, _default(f), rule_of(f), f.metadata["help"], None, f.metadata["group"])
            for n, f in _fields().items() if n != "extra"}
    for k, (m, f) in option_specs().items():
        rows[k] = OptionSpec(k, f.default, rule_of(f), f.metadata["help"], m, f"method options: {m}")
    return rows


def _shown(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def options_reference() -> str:
    """The Markdown reference of every option (``docs/config_reference.md`` is this text), generated from the
    option table: name, default, rule and meaning, then the rules that join options and the presets."""
    esc = lambda t: str(t).replace("|", "\\|")  # noqa: E731
    out = ["# Config reference", "",
           "<!-- generated by cmkd_lab.distill.config.options_reference(); edit the declarations, not this file -->",
           "", "Every option of a run, by the name it has everywhere: `DistillConfig(name=value)`, "
           "`DistillConfig.from_dict`, `cfg.replace(name=value)`, a JSON or TOML config file (`--config`), "
           "`--set name=value` on the command line and a sweep's `--grid name=v1,v2`. A method's own options "
           "(below the shared ones; in Python they live in `DistillConfig.extra`) are read by that method only: a "
           "single run refuses another method's option, and `bench`/`sweep` apply it to that method's runs."]
    group = None
    for row in option_table().values():
        if row.group != group:
            group = row.group
            out += ["", f"## {group}", "", "| option | default | rule | meaning |", "| --- | --- | --- | --- |"]
        out.append(f"| `{row.name}` | `{_shown(row.default)}` | {esc(row.rule.describe())} | {esc(row.help)} |")
    out += ["", "## Rules that join several options", "", "Checked after every option's type and range:", ""]
    out += [f"* {r.text}" for r in CROSS_RULES]
    out += ["", "## Presets", "", "`--preset NAME` applies these before a config file, `--set` and the flags "
            "(the audio-visual tasks first set `feature_dim` = 512); a preset's method options go to that "
            "method's runs only:", ""]
    out += [f"* `{name}`: " + (", ".join(f"`{k}={_shown(v)}`" for k, v in p.items()) or "the defaults above")
            for name, p in PRESETS.items()]
    return "\n".join(out) + "\n"


# Named presets: partial configs applied before user overrides.
PRESETS: Dict[str, Dict[str, Any]] = {
    "default": {},
    # The paper's training recipe (its Section 5 / appendix).
    "paper": dict(optimizer="sgd", lr=1e-2, momentum=0.9, batch_size=64, epochs=100, warmup_epochs=5,
                  schedule="cosine", grad_clip=5.0, cost="l2", eps=0.1, eps_units="absolute",
                  sinkhorn_iter=100, lambda_fa=1.0, lambda_la=1.0, n1=1, n2=1, inner_optimizer="adamw",
                  inner_lr=1e-5, inner_weight_decay=0.05),
    # What the paper's public code does (docs/theory.md): cosine cost, class-matched
    # pairs, LA step on the head alone, no λ in the bilevel steps.
    "public-code": dict(optimizer="sgd", lr=1e-2, momentum=0.9, cost="cosine", eps=0.1, eps_units="absolute",
                        pairing="class-matched", la_teacher_grad="none", la_detach_features=True,
                        inner_lambdas=False, inner_optimizer="adamw", inner_lr=1e-5, inner_weight_decay=0.05),
}

# Per-task defaults, applied before any preset (so `--preset paper` on an
# audio-visual task trains with the paper's D = 512, ResNet-18's pooled width).
TASK_DEFAULTS: Dict[str, Dict[str, Any]] = {name: {"feature_dim": 512}
                                            for name in ("ave", "crema-d", "ravdess", "vggsound")}


def load_config_file(path) -> dict:
    """Read a JSON (or TOML, by the ``.toml`` suffix) config file into a dict
    of options; errors name the file. Other suffixes are read as JSON."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"config file path must be a str or Path; got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"config file {str(p)!r} is a directory; pass a .json or .toml file")
    if not p.exists():
        raise ValueError(f"config file {str(p)!r} does not exist; check the path")
    if not p.is_file():  # /dev/null, a FIFO (reading one would block), a socket ...
        import stat
        mode = p.stat().st_mode
        kind = ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else
                "a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a plain file")
        raise ValueError(f"config file {str(p)!r} exists but is not a regular file ({kind}); pass a .json or .toml file")
    fmt = "TOML" if p.suffix.lower() == ".toml" else "JSON"
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"config file {str(p)!r} is not UTF-8 text ({e.reason} at byte {e.start}); "
                         f"save it as UTF-8 {fmt}") from None
    except OSError as e:
        raise ValueError(f"config file {str(p)!r} cannot be read ({e.strerror or e})") from None
    if not text.strip():  # refused on purpose for TOML too, where it would parse as no options at all
        example = "a TOML table such as epochs = 3" if fmt == "TOML" else 'a JSON object such as {"epochs": 3}'
        raise ValueError(f"config file {str(p)!r} is empty; write the options in it ({example}) or leave --config out")
    try:
        if fmt == "TOML":
            import tomllib
            d = tomllib.loads(text)
        else:
            d = json.loads(text)
    except Exception as e:
        raise ValueError(f"config file {str(p)!r} is not valid {fmt}: {e}"
                         + ("" if fmt == "TOML" or p.suffix.lower() == ".json" else
                            " (files not ending in .toml are read as JSON)")) from None
    if not isinstance(d, dict):
        raise ValueError(f"config file {str(p)!r} must hold an object of option names to values; "
                         f"got a {type(d).__name__}")
    return d
