"""A method's own options: a small typed dataclass per method, validated like the rest of the config.

A method that has options of its own (beyond the shared fields of
:class:`~cmkd_lab.distill.DistillConfig`) declares them as a subclass of :class:`MethodOptions` with a
``prefix``; the values travel in ``DistillConfig.extra`` under ``<prefix><field>`` (``c2kd_tau``) and can
be given by that name everywhere an option can (``DistillConfig(extra={"c2kd_tau": 0.5})``,
``DistillConfig.from_dict({"c2kd_tau": 0.5})``, ``--set c2kd_tau=0.5``, a config file, a sweep's grid).
An unknown name, or a value of the wrong type or outside its range, is an error that names the option,
the rule and the value.
"""
from __future__ import annotations

import difflib
import math
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Dict, Tuple, Type

__all__ = ["MethodOptions", "option_fields", "check_extra"]


@dataclass
class MethodOptions:
    """Base class; subclasses set ``prefix`` and declare fields with defaults, and may override
    :meth:`validate` for range rules (raise ``ValueError`` naming ``<prefix><field>``)."""

    prefix: ClassVar[str] = ""

    def validate(self) -> "MethodOptions":
        return self

    @classmethod
    def from_extra(cls, extra: Dict[str, Any]) -> "MethodOptions":
        """The options found in ``extra`` (the others at their defaults), type-checked and validated."""
        kw = {}
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            key = cls.prefix + f.name
            if key in extra:
                kw[f.name] = _coerce(key, extra[key], hints[f.name])
        return cls(**kw).validate()


def _coerce(key: str, v, hint):
    """``v`` checked against the annotation ``hint`` (float accepts ints; Optional accepts None)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and type(None) in args:
        if v is None:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise TypeError(f"{key} must be a finite number; got {key}={v!r} ({type(v).__name__})")
        return float(v)
    if hint is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{key} must be an integer; got {key}={v!r} ({type(v).__name__})")
        return v
    if hint is bool:
        if not isinstance(v, bool):
            raise TypeError(f"{key} must be true or false; got {key}={v!r} ({type(v).__name__})")
        return v
    if hint is str:
        if not isinstance(v, str):
            raise TypeError(f"{key} must be a string; got {key}={v!r} ({type(v).__name__})")
        return v
    return v


def option_fields() -> Dict[str, Tuple[str, Type[MethodOptions]]]:
    """Every registered method option: ``"<prefix><field>"`` → (method name, its options class)."""
    from .base import METHODS
    out = {}
    for name, cls in METHODS.items():
        opts = getattr(cls, "options", None)
        if opts is None:
            continue
        for f in fields(opts):
            out[opts.prefix + f.name] = (name, opts)
    return out


def check_extra(extra: Dict[str, Any]) -> None:
    """Refuse unknown keys in ``extra`` (with the closest known name) and validate every method's options."""
    known = option_fields()
    unknown = [k for k in extra if k not in known]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(k, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"extra has an unknown method option {k!r}{hint}; the method options are "
                         f"{', '.join(sorted(known)) or '(none)'}")
    for opts in {cls for _, cls in known.values()}:
        if any(k.startswith(opts.prefix) for k in extra):
            opts.from_extra(extra)
