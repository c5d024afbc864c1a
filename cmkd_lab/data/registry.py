"""Registry of built-in tasks: ``@register_task("name")`` and ``load_task``.

The task modules register themselves when :mod:`cmkd_lab.data` is imported (its ``__init__`` imports
them), which always happens before this module is used.
"""
from __future__ import annotations

from typing import Callable, Dict

__all__ = ["register_task", "load_task", "available_tasks", "task_options"]

_TASKS: Dict[str, Callable] = {}


def register_task(name: str):
    """Decorator registering ``fn(*, seed=0, fast=False, **kw) -> CrossModalTask``."""

    def deco(fn):
        if name in _TASKS:
            raise ValueError(f"task {name!r} is registered twice")
        _TASKS[name] = fn
        return fn

    return deco


def available_tasks():
    """Names of the built-in tasks, sorted."""
    return sorted(_TASKS)


def load_task(name: str, *, seed: int = 0, fast: bool = False, **kwargs):
    """Load built-in task ``name``.

    Parameters
    ----------
    name : str
        One of :func:`available_tasks`.
    seed : int
        Seed for any random split or generation.
    fast : bool
        A smaller version for quick runs (tests, notebooks' fast mode).
    **kwargs
        Task-specific options (e.g. the synthetic generator's knobs).
    """
    if not isinstance(name, str) or name not in _TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, sorted(_TASKS)))}; got task={name!r}")
    from .._validation import check_bool, check_int
    check_int("seed", seed)  # the two options every task takes, checked once for all of them
    fast = check_bool("fast", fast)
    fn = _TASKS[name]
    accepted = task_options(name)
    unknown = [k for k in kwargs if accepted is not None and k not in accepted]
    if unknown:
        raise ValueError(f"task {name!r} has no option {', '.join(map(repr, unknown))}; its options are "
                         f"{', '.join(sorted(accepted)) or '(none)'}")
    return fn(seed=seed, fast=fast, **kwargs)


def task_options(name: str):
    """The option names task ``name`` accepts (besides ``seed`` and ``fast``), or None when its loader
    takes arbitrary keywords. A loader that forwards ``**kwargs`` to a builder names it in
    ``loader.options_from``."""
    import inspect

    fn = _TASKS[name]
    params = inspect.signature(getattr(fn, "options_from", fn)).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind is not p.VAR_POSITIONAL} - {"seed", "fast"}
