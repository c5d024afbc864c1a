"""Declared keys of a run's history: what each recorded number is.

Every producer of per-epoch numbers declares them where it writes them — the trainer its bookkeeping
and outcomes, each method the loss terms it returns (``Method.terms``), the diagnostics the scalars
``diagnose`` records — and every reader (the report's tables, the sweep's predictor ranking, the
figures' labels) asks :func:`describe` instead of keeping a list of its own. A key nobody declared is
still shown (kind ``"other"``), so nothing a run records is dropped.

Kinds
-----
``bookkeeping``  epoch, steps, learning rate, timings
``outcome``      accuracies and losses on the evaluation splits (the result itself: never a predictor)
``loss``         a loss term a method optimises (per-epoch mean)
``diagnostic``   a measurement of the two feature distributions or of the heads
``reference``    a measurement that restates an outcome or a constant (teacher error, solver residual)
``audit``        the gradient audit: a loss term's gradient norm on the encoder / head, its cosine with CE

This module is a leaf: producers import it to declare. Readers use :mod:`cmkd_lab.results.keys`, which
imports the producers first so that every declaration is in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

__all__ = ["Key", "declare", "lookup", "all_keys", "KINDS", "PREDICTOR_KINDS"]

KINDS = ("bookkeeping", "outcome", "loss", "diagnostic", "reference", "audit", "other")
PREDICTOR_KINDS = ("loss", "diagnostic")  # may be read as early predictors of a final difference


@dataclass(frozen=True)
class Key:
    """One recorded number: its name, a label for people, its kind and unit, and who declared it."""

    name: str
    label: str
    kind: str = "diagnostic"
    unit: str = ""
    source: str = ""

    @property
    def predictor(self) -> bool:
        """Whether the key may serve as an early predictor (loss terms and diagnostics, not the total)."""
        return self.kind in PREDICTOR_KINDS and self.name != "loss"


_KEYS: Dict[str, Key] = {}


def declare(source: str, kind: str, keys: Dict[str, str], *, units: Dict[str, str] = None) -> None:
    """Declare ``keys`` (name → label) of ``kind`` for ``source``; a second declaration of a name must agree
    on its kind (a loss term shared by several methods is declared by each)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got kind={kind!r}")
    for name, label in keys.items():
        old = _KEYS.get(name)
        if old is not None and old.kind != kind:
            raise ValueError(f"key {name!r} is declared as {old.kind!r} by {old.source} and as {kind!r} by {source}")
        if old is None:
            _KEYS[name] = Key(name, label, kind, (units or {}).get(name, ""), source)


def lookup(name: str) -> Key:
    """The declaration of ``name`` among those made so far (kind ``"other"`` when none)."""
    return _KEYS.get(name) or Key(name, name, "other", "", "undeclared")


def all_keys() -> Dict[str, Key]:
    """The declarations made so far, in declaration order."""
    return dict(_KEYS)
