"""Small input checks shared by every public entry point.

Each check raises ``ValueError`` or ``TypeError`` with a message that names the
parameter, the rule and the value received, and says what to do, in the style
of scikit-learn ("eps must be > 0; got eps=-1.0").
"""
from __future__ import annotations

import copy
import json
import math
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

__all__ = [
    "check_choice",
    "check_number",
    "check_positive",
    "check_nonneg",
    "check_int",
    "check_bool",
    "check_fraction",
    "check_finite_array",
    "check_float32_range",
    "check_labels",
    "check_indices",
    "check_class_names",
    "check_rectangular",
    "check_path",
    "check_workers",
    "Rule",
    "Int",
    "Float",
    "Bool",
    "Choice",
    "Pattern",
    "Mapping",
    "opt",
    "rule_of",
    "apply_rules",
    "parse_value",
    "parse_assignments",
]


def _fmt(v):
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return repr(v)
    return str(v)


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise list the choices
    (and the closest one when the value looks like a typo)."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        hint = ""
        if isinstance(value, str):
            import difflib
            close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {name}={_fmt(value)}{hint}"
        )
    return value


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {name}={_fmt(value)} of type {type(value).__name__}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite; got {name}={_fmt(value)}")
    return value


def check_number(name: str, value) -> float:
    """``value`` must be a finite number (any sign; bools refused)."""
    return _number(name, value)


def check_path(name: str, value, *, hint: str = ""):
    """``value`` must be a path (``str`` or ``os.PathLike``), or None."""
    import os
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike); got {_fmt(value)} of type {type(value).__name__}"
                        + (f"; {hint}" if hint else ""))
    return value


def check_workers(workers, *, flag: str = "workers"):
    """The one rule of a number of local worker processes (bench and sweep, CLI and Python): None (the
    caller's default) or an integer >= 1."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 1):
        got = f"{flag} {workers}" if flag.startswith("--") else f"{flag}={workers!r}"
        raise ValueError(f"{flag} must be an integer >= 1 (the local processes that run at once); got {got}: "
                         "pass 1 to run one at a time, or leave it out for the default")
    return None if workers is None else int(workers)


def check_positive(name: str, value, *, hint: str = "") -> float:
    """``value`` must be a finite number > 0."""
    _number(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {name}={_fmt(value)}" + (f"; {hint}" if hint else ""))
    return value


def check_nonneg(name: str, value, *, hint: str = "") -> float:
    """``value`` must be a finite number >= 0."""
    _number(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0; got {name}={_fmt(value)}" + (f"; {hint}" if hint else ""))
    return value


def check_int(name: str, value, *, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """``value`` must be an int in ``minimum..maximum`` (the :class:`Int` rule)."""
    rule = Int(min=minimum, max=maximum)
    value = rule.coerce(name, value)
    rule.check(name, value)
    return value


def check_bool(name: str, value) -> bool:
    """``value`` must be a real ``bool`` (``np.bool_`` included); returns a Python bool.

    Refused on purpose, not coerced: 0/1 and words such as ``"false"`` (a
    non-empty string is true in Python, so ``"false"`` would silently count
    as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be true or false (True/False in Python; true/false unquoted in JSON, TOML "
                        f"and --set); got {name}={_fmt(value)} of type {type(value).__name__}")
    return bool(value)


def check_fraction(name: str, value) -> float:
    """``value`` must be in (0, 1]."""
    _number(name, value)
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1]; got {name}={_fmt(value)}")
    return float(value)


def check_finite_array(name: str, x, *, min_ndim: int = 1, min_len: int = 1) -> None:
    """Array-like ``x`` must be numeric, have ``ndim >= min_ndim``, at least
    ``min_len`` rows and no NaN/inf."""
    torch = sys.modules.get("torch")  # never import torch just to check a numpy array

    if torch is not None and isinstance(x, torch.Tensor):
        arr_dtype_ok = x.dtype.is_floating_point or not x.dtype.is_complex
        ndim, n = x.ndim, (x.shape[0] if x.ndim else 0)
        finite = bool(torch.isfinite(x).all()) if x.dtype.is_floating_point else True
        shape = tuple(x.shape)
    else:
        arr = np.asarray(x)
        arr_dtype_ok = arr.dtype.kind in "fiub"
        ndim, n = arr.ndim, (arr.shape[0] if arr.ndim else 0)
        finite = bool(np.isfinite(arr).all()) if arr.dtype.kind == "f" else True
        shape = arr.shape
    if not arr_dtype_ok:
        raise TypeError(f"{name} must hold numbers; got dtype {getattr(x, 'dtype', type(x))}")
    if ndim < min_ndim:
        hint = f"; for one feature per sample pass {name}.reshape(-1, 1)" if ndim == 1 and min_ndim == 2 else ""
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s) (samples first); got shape {shape}{hint}")
    if n < min_len:
        raise ValueError(
            f"{name} must have at least {min_len} sample(s); got {n} (shape {shape}); "
            "check the split or the subset you passed"
        )
    if not finite:
        if torch is not None and isinstance(x, torch.Tensor):
            bad = int((~torch.isfinite(x)).sum())
        else:
            bad = int((~np.isfinite(np.asarray(x))).sum())
        raise ValueError(f"{name} contains NaN or inf values ({bad} of {int(np.prod(shape))} entries); "
                         "clean or impute them before passing them in")


def check_float32_range(name: str, x) -> None:
    """Finite values must stay finite once cast to float32 (1e300 would become inf), and an array whose
    largest value is below float32's smallest normal number would become zeros: every quantity cmkd_lab
    computes from features (distances, kernels, squared norms) is then representable."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        big = float(x.detach().abs().max()) if x.dtype.is_floating_point and x.numel() else 0.0
        wide = x.dtype.is_floating_point and torch.finfo(x.dtype).bits > 32
    else:
        x = np.asarray(x)
        big = float(np.abs(x).max()) if x.dtype.kind == "f" and x.size else 0.0
        wide = x.dtype.kind == "f" and x.dtype.itemsize > 4
    info = np.finfo(np.float32)
    if wide and big > float(info.max):
        raise ValueError(f"{name} holds values up to {big:.3g}, beyond float32 (max {float(info.max):.2g}), the "
                         "precision cmkd_lab trains in; rescale (standardise) the inputs")
    if 0 < big < float(info.tiny):
        raise ValueError(f"{name} holds values no larger than {big:.3g}, below float32's smallest normal number "
                         f"({float(info.tiny):.2g}): in float32, the precision cmkd_lab trains in, they are zeros; "
                         "rescale (standardise) the inputs")


def check_labels(name: str, y, num_classes: Optional[int]) -> np.ndarray:
    """Labels must be integers in ``0..num_classes-1`` (only ``>= 0`` when
    ``num_classes`` is None); returns an int64 array."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices; got shape {y.shape}")
    if y.dtype.kind == "f":
        ok = np.isfinite(y) & (y == np.round(np.where(np.isfinite(y), y, 0)))
        if not ok.all():
            raise TypeError(f"{name} must hold integer class indices; got non-integer values "
                            f"{y[~ok][:5].tolist()} (dtype {y.dtype}); re-encode labels as 0..K-1 integers")
    elif y.dtype.kind not in "iub":
        raise TypeError(f"{name} must hold integer class indices; got dtype {y.dtype}")
    y = y.astype(np.int64)
    if num_classes is None:
        if y.size and y.min() < 0:
            raise ValueError(f"{name} must hold class indices >= 0; got values {y[y < 0][:5].tolist()}; "
                             "re-encode labels as 0..K-1 (e.g. sklearn.preprocessing.LabelEncoder)")
        return y
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)][:5].tolist()
        raise ValueError(
            f"{name} must be in 0..{num_classes - 1} (num_classes={num_classes}); got values {bad}; "
            "re-encode labels as 0..K-1 (e.g. sklearn.preprocessing.LabelEncoder)"
        )
    return y


def check_indices(name: str, idx, n: int) -> np.ndarray:
    """Sample indices: a 1-D array of integers in ``0..n-1`` without repeats
    (a boolean mask is refused: pass ``np.flatnonzero(mask)``); returns int64."""
    a = np.asarray(idx)
    if a.dtype.kind == "b":
        raise TypeError(f"{name} must hold sample indices, not a boolean mask; pass np.flatnonzero(mask)")
    if a.size == 0:
        a = a.astype(np.int64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of sample indices; got shape {a.shape}")
    if a.dtype.kind == "f":
        ok = np.isfinite(a) & (a == np.round(np.where(np.isfinite(a), a, 0)))
        if not ok.all():
            raise TypeError(f"{name} must hold integer sample indices; got {a[~ok][:5].tolist()}")
    elif a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer sample indices; got dtype {a.dtype}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = a[(a < 0) | (a >= n)][:5].tolist()
        raise ValueError(f"{name} has indices outside 0..{n - 1}: {bad}")
    if np.unique(a).size != a.size:
        raise ValueError(f"{name} repeats sample indices ({a.size - np.unique(a).size} duplicates); list each sample once")
    return a


def check_class_names(class_names) -> list:
    """A list of >= 2 distinct class names (a bare string is refused); returns them as str."""
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, Iterable):
        raise TypeError(f"class_names must be a list of names, one per class; got {class_names!r}")
    names = [str(c) for c in class_names]
    if len(names) < 2:
        raise ValueError(f"class_names must list at least 2 classes; got {len(names)} ({names}: given, or the "
                         "labels' distinct values); a classifier needs two classes or more")
    from collections import Counter  # one pass (names.count per name was quadratic: 46 s for 40,000 classes)

    dup = sorted(c for c, n in Counter(names).items() if n > 1)
    if dup:
        raise ValueError(f"class_names must be distinct; {dup} appear more than once")
    return names


class _Ragged(Exception):
    pass


def _where(path: str, i: int) -> str:
    return f"row {i}" if not path else f"{path}[{i}]"


def _describe_shape(shape) -> str:
    if len(shape) == 0:
        return "is a scalar"
    if len(shape) == 1:
        return f"has length {shape[0]}"
    return f"has shape {tuple(shape)}"


def _nested_shape(v, path: str = ""):
    """Shape of nested lists/tuples (numpy arrays and scalars as leaves); raises _Ragged at the first row
    whose shape differs from its first sibling's."""
    if isinstance(v, (list, tuple)):
        shapes = [_nested_shape(e, _where(path, i)) for i, e in enumerate(v)]
        for i, sh in enumerate(shapes[1:], start=1):
            if sh != shapes[0]:
                raise _Ragged(f"{_where(path, 0)} {_describe_shape(shapes[0])} but {_where(path, i)} "
                              f"{_describe_shape(sh)}")
        return (len(v),) + (shapes[0] if shapes else ())
    return tuple(np.shape(v))


def check_rectangular(name: str, v) -> None:
    """Nested lists of numbers must have rows of one shape; a ragged list names the first row that
    differs (numpy only says "inhomogeneous shape"). Call it after ``np.asarray`` failed."""
    try:
        _nested_shape(v)
    except _Ragged as e:
        raise ValueError(f"{name} must have rows of one shape; {e}: pad or crop the samples to one shape") from None



# ---------------------------------------------------------------- declared option rules
# One rule per option (DistillConfig's fields and each method's options, declared with :func:`opt`):
# the rule checks the type first (with the one coercion: NumPy scalars become Python values, an int
# given for a float becomes a float), then the allowed values, and describes itself for the CLI help
# and the generated reference (:func:`cmkd_lab.distill.config.options_reference`).
def _plain(v):
    """NumPy scalars as Python values (strings and bytes unchanged)."""
    if isinstance(v, np.generic) and not isinstance(v, (np.str_, np.bytes_)):
        return v.item()
    return v


def _num(b) -> str:
    return f"{b:g}" if isinstance(b, float) else str(b)


@dataclass(frozen=True)
class Rule:
    """Base of the option rules.

    Parameters
    ----------
    why : str
        A reason shown in parentheses after the rule (``"kd_alpha must be in [0, 1] (why); got ..."``).
    hint : str
        What to do, appended after the value (``"...; got eps=0.0; typical: 0.05-0.5"``).
    max_hint : str
        Replaces ``hint`` when the value is above the rule's upper bound.
    """

    why: str = ""
    hint: str = ""
    max_hint: str = ""
    py_type = object

    def coerce(self, name: str, v):
        """``v`` in the option's type (TypeError naming ``name`` otherwise)."""
        return v

    def check(self, name: str, v) -> None:
        """Raise ValueError naming ``name`` when ``v`` (already of the right type) is not allowed."""

    def describe(self) -> str:
        """The rule in words, for the help and the reference."""
        raise NotImplementedError

    def _fail(self, name, v, rule, *, shown=None, hint=None):
        why = f" ({self.why})" if self.why else ""
        hint = self.hint if hint is None else hint
        hint = f"; {hint}" if hint else ""
        raise ValueError(f"{name} must be {rule}{why}; got {name}={_fmt(v) if shown is None else shown}{hint}")

    def _type_error(self, name, v, what):
        raise TypeError(f"{name} must be {what}; got {name}={_fmt(v)} of type {type(v).__name__}")


@dataclass(frozen=True)
class Int(Rule):
    """An integer (bools refused) in ``min..max``."""

    min: Optional[int] = None
    max: Optional[int] = None
    py_type = int

    def coerce(self, name, v):
        v = _plain(v)
        if isinstance(v, bool) or not isinstance(v, int):
            self._type_error(name, v, "an integer")
        return v

    def check(self, name, v):
        if self.min is not None and v < self.min:
            self._fail(name, v, f">= {self.min}", shown=str(v))
        if self.max is not None and v > self.max:
            self._fail(name, v, f"<= {self.max}", shown=str(v), hint=self.max_hint or None)

    def describe(self):
        if self.min is not None and self.max is not None:
            return f"integer in {self.min}..{self.max}"
        if self.min is not None:
            return f"integer >= {self.min}"
        return "integer" if self.max is None else f"integer <= {self.max}"


@dataclass(frozen=True)
class Float(Rule):
    """A finite number (an int is taken as a float; bools refused), with optional bounds: ``gt``/``ge`` below,
    ``lt``/``le`` above."""

    gt: Optional[float] = None
    ge: Optional[float] = None
    lt: Optional[float] = None
    le: Optional[float] = None
    py_type = float

    def coerce(self, name, v):
        v = _plain(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self._type_error(name, v, "a number")
        try:
            return float(v)
        except OverflowError:  # an int beyond any float
            raise ValueError(f"{name} must be finite; got an integer of {len(str(abs(v)))} digits") from None

    def _bounds(self) -> str:
        lo = f"({_num(self.gt)}" if self.gt is not None else f"[{_num(self.ge)}" if self.ge is not None else None
        hi = f"{_num(self.lt)})" if self.lt is not None else f"{_num(self.le)}]" if self.le is not None else None
        if lo and hi:
            return f"in {lo}, {hi}"
        if lo:
            return ("> " if lo[0] == "(" else ">= ") + lo[1:]
        if hi:
            return ("< " if hi[-1] == ")" else "<= ") + hi[:-1]
        return ""

    def check(self, name, v):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite; got {name}={_fmt(v)}")
        ok = ((self.gt is None or v > self.gt) and (self.ge is None or v >= self.ge)
              and (self.lt is None or v < self.lt) and (self.le is None or v <= self.le))
        if not ok:
            high = (self.lt is not None and v >= self.lt) or (self.le is not None and v > self.le)
            self._fail(name, v, self._bounds(), hint=self.max_hint or None if high else None)

    def describe(self):
        b = self._bounds()
        return f"number {b}" if b else "finite number"


@dataclass(frozen=True)
class Bool(Rule):
    """A real boolean: ``0``/``1`` and words such as ``"false"`` are refused, not coerced (:func:`check_bool`)."""

    py_type = bool

    def coerce(self, name, v):
        return check_bool(name, v)

    def describe(self):
        return "true or false"


@dataclass(frozen=True)
class Choice(Rule):
    """One of ``choices`` (strings)."""

    choices: Tuple[str, ...] = ()
    py_type = str

    def coerce(self, name, v):
        if not isinstance(v, str):
            self._type_error(name, v, f"a string, one of {', '.join(map(repr, self.choices))}")
        return str(v)

    def check(self, name, v):
        check_choice(name, v, self.choices)

    def describe(self):
        return "one of " + ", ".join(map(repr, self.choices))


@dataclass(frozen=True)
class Pattern(Rule):
    """A string matching ``regex`` (its availability checked elsewhere), described by ``spelled``."""

    regex: str = ""
    spelled: str = ""
    like: str = ""
    py_type = str

    def coerce(self, name, v):
        if not isinstance(v, str):
            self._type_error(name, v, f"a string like {self.like}")
        return str(v)

    def check(self, name, v):
        if not re.fullmatch(self.regex, v):
            self._fail(name, v, self.spelled)

    def describe(self):
        return self.spelled


@dataclass(frozen=True)
class Mapping(Rule):
    """A dict of string keys to plain JSON values (numbers, strings, booleans, lists, dicts)."""

    py_type = dict

    def coerce(self, name, v):
        if not isinstance(v, dict):
            raise TypeError(f"{name} must be a dict; got {type(v).__name__}")
        bad = [k for k in v if not isinstance(k, str)]
        if bad:
            raise TypeError(f"{name} must have string keys; got keys {bad!r}")
        return {k: _plain(x) for k, x in v.items()}

    def check(self, name, v):
        try:  # travels into result.json and checkpoints
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must hold plain JSON values (numbers, strings, booleans, lists, dicts); "
                            f"{e}") from None

    def describe(self):
        return "dict of method options"


def opt(default, rule: Rule, help: str, **meta):
    """A dataclass field declared with its rule and its help (the option table's one entry for it).

    ``meta`` adds entries to the field's metadata (e.g. ``group`` for the reference's sections)."""
    metadata = {"rule": rule, "help": help, **meta}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def rule_of(f) -> Rule:
    """The rule declared on a dataclass field ``f`` (by :func:`opt`)."""
    return f.metadata["rule"]


def apply_rules(values: Dict[str, Any], rules: Dict[str, Rule]) -> Dict[str, Any]:
    """``values`` checked by their ``rules``: every entry's type first (and coerced), then every entry's
    allowed values; the coerced values are returned in the same order."""
    out = {k: rules[k].coerce(k, v) for k, v in values.items()}
    for k, v in out.items():
        rules[k].check(k, v)
    return out


# ---------------------------------------------------------------- key=value
def parse_value(raw: str):
    """A value written on a command line: JSON where it parses (numbers, ``true``/``false``, ``null``,
    lists, quoted strings), else the text itself (stripped)."""
    raw = raw.strip()
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_assignments(items: Iterable[str], *, what: str, form: str = "key=value") -> Dict[str, Any]:
    """``["k=v", ...]`` → ``{k: parse_value(v)}``: the one key=value parser of ``--set``, ``--task-option``
    and method variants (``name[k=v;k2=v2]``).

    Raises
    ------
    ValueError
        An item without ``=`` or without a key, or a key given twice (the last one would silently win);
        the message starts with ``what`` (e.g. ``"--set"``) and shows the expected ``form``.
    """
    out: Dict[str, Any] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise ValueError(f"{what} takes {form}; got {item!r}")
        k, v = item.split("=", 1)
        k = k.strip()
        if not k:
            raise ValueError(f"{what} takes {form}, a key before each '='; got {item!r}")
        v = parse_value(v)
        if k in out:
            raise ValueError(f"{what} gives {k} twice ({k}={out[k]!r} and {k}={v!r}); give each key once "
                             "(the last one would silently win)")
        out[k] = v
    return out
