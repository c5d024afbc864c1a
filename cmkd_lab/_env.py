"""The environment variables cmkd_lab reads, each parsed in one place.

* ``CMKD_LAB_FAST``: the fast mode (small data, few epochs: tests, notebooks' quick pass); one of
  1/true/yes/on or 0/false/no/off (or unset).
* ``CMKD_LAB_CACHE``: where teachers are cached (:func:`cmkd_lab.store.cache_dir`).
* ``CMKD_LAB_DATA``: the audio-visual datasets' root (:mod:`cmkd_lab.data.av`).
* ``CMKD_LAB_WORKERS``: DataLoader workers for lazily decoded tasks (:mod:`cmkd_lab.data.loader`).
"""
from __future__ import annotations

import os

__all__ = ["FAST_ENV", "fast_mode", "check_env"]

FAST_ENV = "CMKD_LAB_FAST"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def fast_mode() -> bool:
    """Whether ``CMKD_LAB_FAST`` asks for the fast mode.

    Raises
    ------
    ValueError
        If the variable holds something other than a yes/no word.
    """
    raw = os.environ.get(FAST_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ValueError(f"{FAST_ENV} must be one of {', '.join(map(repr, _TRUE + _FALSE[1:]))} (or unset); "
                     f"got {FAST_ENV}={raw!r}: set it to 1 for the fast mode or unset it for the full mode")


def check_env() -> None:
    """Check the environment variables cmkd_lab parses here, before any work starts (the command line
    calls it first: a bad value is refused at once, not after a run when a report reads it).

    Raises
    ------
    ValueError
        Naming the variable, the values it takes and the value found.
    """
    fast_mode()
