"""Every declared history key (:mod:`cmkd_lab.keys`), with all producers imported: what the report,
the tables and the predictor ranking read instead of lists of their own."""
from __future__ import annotations

from typing import Dict, Iterable, List

from ..diagnostics import core as _diagnostics  # noqa: F401  (declares the diagnostics' scalars)
from ..distill import methods as _methods, trainer as _trainer  # noqa: F401  (loss terms, trainer records)
from ..keys import KINDS, Key, all_keys, lookup

__all__ = ["describe", "declared", "ordered", "Key"]


def describe(name: str) -> Key:
    """The declaration of ``name`` (kind ``"other"`` when nobody declared it)."""
    return lookup(name)


def declared() -> Dict[str, Key]:
    """Every declared key, in declaration order."""
    return all_keys()


def ordered(names: Iterable[str], kinds: Iterable[str] = KINDS) -> List[str]:
    """``names`` of the given ``kinds`` in declaration order, then the undeclared ones (kind ``other``)."""
    names, kinds = list(dict.fromkeys(names)), tuple(kinds)
    order = {k: i for i, k in enumerate(all_keys())}
    pick = [n for n in names if lookup(n).kind in kinds]
    return sorted(pick, key=lambda n: (order.get(n, len(order)), names.index(n)))
