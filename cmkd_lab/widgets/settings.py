"""Run sizes for the notebooks: the fast mode (CI, a quick look) and the full mode.

The switch lives here, not in notebook code: ``CMKD_LAB_FAST=1`` (or ``true``,
``yes``, ``on``) selects the fast mode, which shrinks the data and the epochs
so that each notebook executes in about two minutes on two CPU cores. The full
mode is the default for users.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

from .._env import FAST_ENV, fast_mode

__all__ = ["LabSettings", "settings", "fast_mode", "FAST_ENV"]

@dataclass(frozen=True)
class LabSettings:
    """Sizes used by the notebooks' calls (read them, do not edit them in a notebook).

    Attributes
    ----------
    fast : bool
        Fast mode (small data, few epochs).
    epochs : int
        Student epochs of a single run (quickstart, debugger, bring-your-own-data).
    teacher_epochs : int
        Teacher epochs (teachers are cached per task, seed and recipe).
    theory_epochs : int
        Student epochs of each run behind the bound panel (synthetic task).
    theory_teacher_epochs : int
        Teacher epochs there (each knob setting has its own teacher).
    theory_samples : int
        Samples per modality of the synthetic task in the bound panel.
    sweep_points : int
        Values per knob in a bound sweep.
    bench_epochs : int
        Student epochs of each run of the bench notebook's own run.
    bench_seeds : tuple of int
        Seeds of that run.
    bench_tasks : tuple of str
        Built-in real tasks the bench notebook shows.
    bench_methods : tuple of str or None
        Methods it runs (None: every registered method).
    task_fast : bool
        Load built-in tasks in their small version.
    diagnostics_every : int
        Epochs between diagnostics in the debugger.
    """

    fast: bool
    epochs: int
    teacher_epochs: int
    theory_epochs: int
    theory_teacher_epochs: int
    theory_samples: int
    sweep_points: int
    bench_epochs: int
    bench_seeds: Tuple[int, ...]
    bench_tasks: Tuple[str, ...]
    bench_methods: Optional[Tuple[str, ...]] = None
    task_fast: bool = False
    diagnostics_every: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def settings(fast: Optional[bool] = None) -> LabSettings:
    """The notebooks' run sizes.

    Parameters
    ----------
    fast : bool, optional
        Force a mode; by default read from ``CMKD_LAB_FAST``.

    Returns
    -------
    LabSettings
    """
    if fast is None:
        fast = fast_mode()
    if not isinstance(fast, bool):
        raise TypeError(f"fast must be true, false or None; got fast={fast!r}")
    if fast:
        return LabSettings(fast=True, epochs=2, teacher_epochs=3, theory_epochs=3, theory_teacher_epochs=3,
                           theory_samples=600, sweep_points=3, bench_epochs=1, bench_seeds=(0,),
                           bench_tasks=("hapt", "digits-speech"), bench_methods=("ce", "fa", "ucmkd", "kd"),
                           task_fast=True)
    return LabSettings(fast=False, epochs=10, teacher_epochs=15, theory_epochs=10, theory_teacher_epochs=10,
                       theory_samples=1500, sweep_points=6, bench_epochs=15, bench_seeds=(0, 1, 2),
                       bench_tasks=("hapt", "digits-speech"), bench_methods=None, task_fast=False)
