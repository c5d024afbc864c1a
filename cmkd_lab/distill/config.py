"""The distillation config: one dataclass, defaults commented.

The paper's experiments (ResNet-18 on audio-visual data) use: SGD lr 1e-2,
momentum 0.9, batch 64, 100 epochs, λ1 = λ2 = 1, n1 = n2 = 1, ε = 0.1 with
Euclidean cost, 100 Sinkhorn iterations, clip 5, inner AdamW lr 1e-5 / wd
0.05, 5 warm-up epochs then cosine. Those live in the ``paper`` preset; the
defaults below suit the small built-in tasks on a CPU.

Every door (the constructor, ``from_dict``, ``replace``, a config file,
``--set``) applies one coercion rule: NumPy scalars become Python values and
an int given for a float option becomes a float. Nothing else is converted:
a bool option (every field annotated ``bool``) takes only a real boolean, and
``"false"``, ``"no"`` or ``0`` are refused on purpose rather than coerced
(``"false"`` is a true value in Python; in JSON, TOML and ``--set`` write
``true`` / ``false`` unquoted).
"""
from __future__ import annotations

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from .._validation import (check_bool, check_choice, check_fraction, check_int, check_nonneg, check_positive)

__all__ = ["DistillConfig", "PRESETS", "TASK_DEFAULTS", "load_config_file"]

_DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")  # availability is checked when the run starts


@dataclass
class DistillConfig:
    # --- student optimisation
    epochs: int = 30              # paper: 100
    min_steps: int = 0            # at least this many optimiser steps: epochs are raised when few labels make epochs short
    batch_size: int = 64          # paper: 64
    optimizer: str = "adam"       # "adam" | "adamw" | "sgd" (paper: sgd, momentum 0.9)
    lr: float = 1e-3              # paper: 1e-2 with sgd
    momentum: float = 0.9         # sgd only
    weight_decay: float = 0.0
    schedule: str = "cosine"      # "cosine" (decays to 0 at the last epoch: a stable last epoch) | "constant"
    warmup_epochs: int = 0        # paper: 5 (linear warm-up)
    grad_clip: float = 5.0        # max gradient norm, 0 = off (paper: 5)
    feature_dim: int = 64         # D, shared by teacher and student (paper: 512)
    # --- feature alignment (OT)
    cost: str = "l2"              # "l2" (paper) | "sqeuclidean" | "cosine" (public code) | "l1" | "chordal"
    eps: float = 0.1              # entropic regularisation (paper: 0.1)
    eps_units: str = "median"     # "median": eps × median batch cost (scale-free); "absolute": as POT
    sinkhorn_iter: int = 100      # paper: 100
    lambda_fa: float = 1.0        # λ1 (paper: 1)
    # --- label alignment
    lambda_la: float = 1.0        # λ2 (paper: 1)
    lambda_ent: float = 1.0       # entmin: weight of the prediction entropy on unlabelled student data
    la_teacher_grad: str = "none"  # "none" (public code) | "as-written" | "align"; see align.la
    la_detach_features: bool = False  # public code: True (LA step updates the head only)
    # --- bilevel (ucmkd)
    n1: int = 1                   # inner FA steps (paper: 1)
    n2: int = 1                   # inner LA steps (paper: 1)
    inner_optimizer: str = "sgd"  # "sgd" | "adamw" (a fresh AdamW state per batch, as the public code)
    inner_lr: float = 1e-3        # η (paper: AdamW 1e-5)
    inner_weight_decay: float = 0.0  # paper: 0.05 with adamw
    inner_lambdas: bool = True    # scale inner steps by λ1, λ2 (the public code does not)
    first_order: bool = True      # first-order MAML-style outer gradient
    # --- paired baselines
    kd_temperature: float = 4.0
    kd_alpha: float = 0.5         # weight of the soft-target term
    fitnet_weight: float = 1.0
    # --- data
    pairing: str = "unpaired"     # "unpaired" | "class-matched" | "paired"
    student_fraction: float = 1.0  # stratified share of the student's labelled training data
    student_unlabelled: bool = False  # the rest of that split, labels withheld, feeds the OT term (unpaired only)
    # --- teacher
    teacher_epochs: int = 30
    teacher_lr: float = 1e-3
    teacher_schedule: str = "cosine"  # "cosine" | "constant": the teacher's learning-rate schedule
    teacher_control: str = "none"  # "none" | "random" | "shuffled-labels" | "permuted-classes" (distill/teacher.py)
    # --- run
    seed: int = 0
    replicate: int = 0            # another draw of the training noise (init, batch order) on the same data and teacher
    device: str = "auto"          # "auto" | "cpu" | "cuda" | "cuda:N"
    diagnostics_every: int = 1    # epochs between diagnostics (0 = off)
    audit_every: int = 5          # epochs between gradient audits (distill/audit.py; 0 = off)
    eval_test: str = "best"       # "best": test split at each new best validation epoch and the last | "every"
    amp: bool = False             # bf16 autocast for the encoders on CUDA (OT stays fp32)
    # --- speed and scale (see benchmarks/ and distill/distributed.py)
    compile: str = "none"         # torch.compile: "none" | "ot" (the Sinkhorn loop) | "all" (also encoder and head)
    ot_solver: str = "auto"       # "auto" | "scaling" | "log" (align.sinkhorn_plan; auto never syncs a GPU)
    ot_stop_thr: float = 0.0      # > 0: stop Sinkhorn early like POT's stopThr (1e-9 there); a sync per check on GPUs
    ot_all_gather: bool = False   # under torchrun: OT between the global batches (features all-gathered)
    inner_scope: str = "full"     # ucmkd: "full" (Algorithm 1) | "last-layer" (approximation, methods/ucmkd.py)
    extra: Dict[str, Any] = field(default_factory=dict)  # methods' own options by name (c2kd_tau ...): methods/options.py

    def __post_init__(self):
        for f in fields(self):  # one coercion rule for every door (constructor, from_dict, replace, files, --set)
            setattr(self, f.name, _coerce(f.name, getattr(self, f.name)))
        self.validate()

    def validate(self) -> "DistillConfig":
        check_int("epochs", self.epochs, minimum=1)
        check_int("min_steps", self.min_steps, minimum=0)
        check_int("batch_size", self.batch_size, minimum=2)
        check_choice("optimizer", self.optimizer, ("adam", "adamw", "sgd"))
        check_positive("lr", self.lr)
        check_nonneg("momentum", self.momentum)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be in [0, 1); got momentum={self.momentum!r} (SGD diverges at >= 1); "
                             "the paper uses 0.9")
        check_nonneg("weight_decay", self.weight_decay)
        check_choice("schedule", self.schedule, ("constant", "cosine"))
        check_int("warmup_epochs", self.warmup_epochs, minimum=0)
        check_nonneg("grad_clip", self.grad_clip)
        check_int("feature_dim", self.feature_dim, minimum=1)
        from ..align import COSTS, TEACHER_GRAD_MODES
        check_choice("cost", self.cost, COSTS)
        check_positive("eps", self.eps, hint="typical: 0.05-0.5 with eps_units='median'")
        check_choice("eps_units", self.eps_units, ("absolute", "median"))
        check_int("sinkhorn_iter", self.sinkhorn_iter, minimum=1)
        check_nonneg("lambda_fa", self.lambda_fa)
        check_nonneg("lambda_la", self.lambda_la)
        check_nonneg("lambda_ent", self.lambda_ent)
        check_choice("la_teacher_grad", self.la_teacher_grad, TEACHER_GRAD_MODES)
        check_int("n1", self.n1, minimum=0)
        check_int("n2", self.n2, minimum=0)
        check_choice("inner_optimizer", self.inner_optimizer, ("sgd", "adamw"))
        check_positive("inner_lr", self.inner_lr)
        check_nonneg("inner_weight_decay", self.inner_weight_decay)
        check_positive("kd_temperature", self.kd_temperature)
        check_nonneg("kd_alpha", self.kd_alpha)
        if self.kd_alpha > 1:
            raise ValueError(f"kd_alpha must be in [0, 1] (the weight of the soft-target term, CE gets 1 - kd_alpha); "
                             f"got kd_alpha={self.kd_alpha!r}")
        check_nonneg("fitnet_weight", self.fitnet_weight)
        from ..data.sampling import PAIRINGS
        check_choice("pairing", self.pairing, PAIRINGS)
        check_fraction("student_fraction", self.student_fraction)
        if self.student_unlabelled and self.student_fraction >= 1:
            raise ValueError("student_unlabelled=True uses the student training samples left out by student_fraction, "
                             f"and student_fraction={self.student_fraction!r} leaves none: set student_fraction below 1 "
                             "(e.g. 0.05) or student_unlabelled=False")
        if self.student_unlabelled and self.pairing != "unpaired":
            raise ValueError(f"student_unlabelled=True needs pairing='unpaired' (an unlabelled sample has no class to "
                             f"match and no recorded pair); got pairing={self.pairing!r}")
        check_int("teacher_epochs", self.teacher_epochs, minimum=1)
        check_positive("teacher_lr", self.teacher_lr)
        check_choice("teacher_schedule", self.teacher_schedule, ("constant", "cosine"))
        check_choice("teacher_control", self.teacher_control, ("none", "random", "shuffled-labels", "permuted-classes"))
        check_int("seed", self.seed, minimum=0, maximum=2**32 - 1)
        check_int("replicate", self.replicate, minimum=0)
        check_int("diagnostics_every", self.diagnostics_every, minimum=0)
        check_int("audit_every", self.audit_every, minimum=0)
        check_choice("eval_test", self.eval_test, ("best", "every"))
        check_choice("compile", self.compile, ("none", "ot", "all"))
        check_choice("ot_solver", self.ot_solver, ("auto", "scaling", "log"))
        check_nonneg("ot_stop_thr", self.ot_stop_thr, hint="0 runs sinkhorn_iter iterations; POT's default is 1e-9")
        check_choice("inner_scope", self.inner_scope, ("full", "last-layer"))
        for b in _bool_fields():  # every bool option, read from the field types (no hand-kept list)
            check_bool(b, getattr(self, b))
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a string like 'auto', 'cpu' or 'cuda'; got {self.device!r}")
        if not _DEVICE_RE.fullmatch(self.device):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got device={self.device!r}")
        if not isinstance(self.extra, dict):
            raise TypeError(f"extra must be a dict; got {type(self.extra).__name__}")
        bad = [k for k in self.extra if not isinstance(k, str)]
        if bad:
            raise TypeError(f"extra must have string keys; got keys {bad!r}")
        try:  # extra travels into result.json and checkpoints: plain JSON values only
            json.dumps(self.extra, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"extra must hold plain JSON values (numbers, strings, booleans, lists, dicts); {e}") from None
        from .methods.options import check_extra
        check_extra(self.extra)  # every key a known method option, every value of its type and range
        return self

    def replace(self, **changes) -> "DistillConfig":
        """A validated copy with ``changes`` applied (unknown keys are an error; a method's option, e.g.
        ``c2kd_tau``, goes into ``extra``)."""
        return DistillConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def with_defaults(cls, d) -> dict:
        """``d`` (a stored ``to_dict()``) with every option it lacks set to its default: a run, checkpoint
        or cache entry written before an option existed compares equal to one written now with the
        default. Anything that is not a dict is returned unchanged."""
        if not isinstance(d, dict):
            return d
        out = {}
        for f in fields(cls):
            if f.name in d:
                out[f.name] = d[f.name]
            elif f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                out[f.name] = f.default_factory()  # type: ignore[misc]
        out.update({k: v for k, v in d.items() if k not in out})  # unknown keys stay (and still differ)
        return out

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "config") -> "DistillConfig":
        if not isinstance(d, dict):
            raise TypeError(f"{source} must be a mapping of option names to values; got {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        from .methods.options import option_fields
        opts = option_fields()
        moved = {k: d[k] for k in d if k not in known and k in opts}  # a method's option, given by its name
        if moved:
            d = {k: v for k, v in d.items() if k not in moved}
            d["extra"] = {**(d.get("extra") or {}), **moved}
        unknown = sorted((k for k in d if k not in known), key=repr)
        if unknown:
            import difflib
            close = {k: difflib.get_close_matches(k, [*known, *opts], n=1, cutoff=0.75) for k in unknown
                     if isinstance(k, str)}
            hint = "".join(f" ({k!r}: did you mean {c[0]!r}?)" for k, c in close.items() if c)
            raise ValueError(f"{source} has unknown keys {unknown}{hint}; known keys: {', '.join(sorted(known))}"
                             + (f"; method options: {', '.join(sorted(opts))}" if opts else ""))
        clean = {}
        for k, v in d.items():
            default = known[k].default
            v = _coerce(k, v)
            if _field_types()[k] is bool:
                try:
                    check_bool(k, v)
                except TypeError as e:
                    raise TypeError(f"{source}: {e}") from None
            elif default is not dataclasses.MISSING and default is not None and not isinstance(default, dict):
                if type(v) is not type(default):
                    raise TypeError(
                        f"{source}: {k} must be of type {type(default).__name__}; got {k}={v!r} "
                        f"({type(v).__name__})"
                    )
            clean[k] = v
        return cls(**clean)


def _field_types() -> Dict[str, Any]:
    """Option name -> its annotated type (``int``, ``float``, ``bool``, ``str``, ``Dict[str, Any]``)."""
    global _TYPES
    if _TYPES is None:
        _TYPES = typing.get_type_hints(DistillConfig)
    return _TYPES


_TYPES: Optional[Dict[str, Any]] = None


def _bool_fields():
    return [n for n, t in _field_types().items() if t is bool]


def _coerce(name: str, v):
    """The one coercion rule, whatever the door: NumPy scalars become Python values, and an int given for a
    float option becomes a float (``lr=1``). Nothing else is converted: a bool option given ``"false"`` or
    ``0`` is refused by :func:`check_bool` (on purpose: ``"false"`` is a true value in Python)."""
    if isinstance(v, np.generic) and not isinstance(v, (np.str_, np.bytes_)):
        v = v.item()
    if _field_types().get(name) is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    return v


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
