"""Argument checks shared by the notebook helpers: a wrong argument (None, a path where a loaded result is
due, a list where a dict is) is refused in one line naming the parameter, what it must be, what it got and
where the right value comes from — not an AttributeError from deep inside a figure."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["got", "lab_or_default", "need_list", "need_bench", "need_sweep", "need_run", "need_runs", "need_mapping", "need_sequence",
           "need_figure", "need_str"]


def got(value) -> str:
    """``got str '…'`` for a string or a path (whose text says what it is), ``got NoneType`` otherwise."""
    if isinstance(value, str) or type(value).__name__.endswith("Path"):
        return f"got {type(value).__name__} {str(value)[:80]!r}"
    return f"got {type(value).__name__}"


def _path_hint(value, loader: str) -> str:
    return (f": load it first, e.g. {loader}({str(value)[:80]!r})" if isinstance(value, str)
            or type(value).__name__.endswith("Path") else "")


def need_bench(res, name: str = "res") -> None:
    """A bench result: a dict with ``summary`` (from load_bench / load_or_run_bench()[task] / run_bench)."""
    if not isinstance(res, Mapping) or "summary" not in res:
        raise TypeError(f"{name} must be one task's bench results (a dict with 'summary', from load_bench(folder), "
                        f"run_bench or load_or_run_bench()[task]); {got(res)}{_path_hint(res, 'load_bench')}")


def need_sweep(res, name: str = "res") -> None:
    """A sweep result: a dict with ``cells`` (from load_sweep / run_sweep / run_regime_map / shipped_result)."""
    if not isinstance(res, Mapping) or "cells" not in res:
        raise TypeError(f"{name} must be a sweep result (a dict with 'cells', from load_sweep(folder), run_sweep, "
                        f"run_regime_map or shipped_result); {got(res)}{_path_hint(res, 'load_sweep')}")


def need_run(result, name: str = "result") -> None:
    """One run's result dict (with ``history``), as distill / run_quickstart / run_debugger return."""
    if not isinstance(result, Mapping) or "history" not in result:
        raise TypeError(f"{name} must be one run's result dict (with 'history'), as distill, run_quickstart or "
                        f"run_debugger return; {got(result)}")


def need_runs(results, name: str = "results", what: str = "name -> one run's result dict") -> None:
    """A dict of run results (each with ``history``)."""
    if not isinstance(results, Mapping) or not all(isinstance(r, Mapping) for r in results.values()):
        raise TypeError(f"{name} must be a dict {what}; {got(results)}")


def need_mapping(value, name: str, what: str) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be {what}; {got(value)}")


def need_sequence(value, name: str, what: str) -> None:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) \
            or not all(isinstance(v, Mapping) for v in value):
        raise TypeError(f"{name} must be {what}; {got(value)}")


def need_figure(fig, name: str = "fig") -> None:
    if not hasattr(fig, "data") or not hasattr(fig, "layout"):
        raise TypeError(f"{name} must be a plotly figure (a go.Figure or FigureWidget, e.g. one of the dicts of "
                        f"figures the helpers return); {got(fig)}")


def need_str(value, name: str, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {what}; {got(value)}")


def lab_or_default(lab):
    """``lab`` (a :class:`~cmkd_lab.widgets.LabSettings`), or the notebooks' run sizes when None."""
    from .settings import LabSettings, settings
    if lab is None:
        return settings()
    if not isinstance(lab, LabSettings):
        raise TypeError(f"lab must be a LabSettings (e.g. cmkd_lab.widgets.settings(fast=True)) or None for the "
                        f"notebooks' run sizes; {got(lab)}")
    return lab


def need_list(value, name: str, what: str, example: str, *, one: bool = True) -> list:
    """``value`` as a list when it is a list-like of items (a str, a number or None is refused: ``"fa"`` would
    be read letter by letter, ``3`` is not three seeds)."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of {what}, e.g. {name}={example}; {got(value)}"
                        + (f" (for one, write {name}=[{value!r}])" if one and isinstance(value, str) else ""))
    return list(value)
