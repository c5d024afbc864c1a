"""What can run: the one rule that the trainer enforces and that ``bench``, ``sweep`` and the widgets
use to skip a combination (with the same reason) instead of failing on it.

A method declares what it needs (class attributes of :class:`~cmkd_lab.distill.methods.Method`):
``needs_pairs`` (a teacher sample tied to each student sample), ``needs_unlabelled`` (unlabelled student
data), ``uses_teacher_samples`` (whether it reads the teacher batch at all).
"""
from __future__ import annotations

from typing import Optional, Tuple, Type

from .methods import get_method
from .methods.options import check_method_options

__all__ = ["PairingError", "why_not", "check_runnable", "same_as_unpaired", "same_under_controls"]


class PairingError(ValueError):
    """A method or pairing the task cannot provide."""


def why_not(method: str, *, pairing: str, task_name: str, task_has_pairs: bool,
            student_unlabelled: bool, teacher_control: str = "none") -> Optional[Tuple[Type[Exception], str]]:
    """Why ``method`` cannot run with ``pairing`` on a task, as (exception type, message); None if it can.

    Parameters
    ----------
    method : str
        A registered method.
    pairing : {"unpaired", "class-matched", "paired"}
    task_name : str
        For the message.
    task_has_pairs : bool
        Whether the task carries ``paired_teacher_x``.
    student_unlabelled : bool
        Whether the run has unlabelled student data (``DistillConfig.student_unlabelled``).
    teacher_control : str
        ``DistillConfig.teacher_control``: the paired ceiling is the real teacher's reference and runs only
        with ``"none"``.
    """
    cls = get_method(method)
    if pairing == "paired" and not task_has_pairs:
        return PairingError, (f"pairing='paired' needs a task with paired samples, and task {task_name!r} has none; "
                              "use pairing='unpaired' or 'class-matched'")
    if cls.needs_pairs and pairing == "unpaired":
        return PairingError, (f"method {method!r} needs a teacher sample tied to each student sample; it cannot run "
                              "with pairing='unpaired'. Use pairing='paired' (or 'class-matched' for class-level "
                              "pseudo-pairs)")
    if cls.needs_unlabelled_pairs and not task_has_pairs:
        return PairingError, (f"method {method!r} is the paired ceiling: it reads the teacher's view of each "
                              f"unlabelled student sample, and task {task_name!r} has no paired views; it runs on "
                              "tasks with pairs (synthetic, hapt, digits-speech, or from_arrays(..., "
                              "paired_teacher_x=...))")
    if cls.needs_unlabelled and not student_unlabelled:
        return ValueError, (f"method {method!r} needs unlabelled student data: set student_unlabelled=True "
                            "(--student-unlabelled) with student_fraction < 1")
    if cls.needs_unlabelled_pairs and teacher_control != "none":
        return ValueError, (f"method {method!r} is the paired ceiling, the reference of what the real teacher gives "
                            f"through pairs; under teacher_control={teacher_control!r} it measures nothing the "
                            "controls do not: run it with teacher_control='none'")
    return None


def check_runnable(method: str, config, task) -> None:
    """Raise the reason of :func:`why_not` for this run, if any."""
    why = why_not(method, pairing=config.pairing, task_name=task.name, task_has_pairs=task.has_pairs,
                  student_unlabelled=config.student_unlabelled, teacher_control=config.teacher_control)
    if why is not None:
        raise why[0](why[1])
    check_method_options(method, config)  # another method's option would be stored and never read


def same_as_unpaired(method: str, pairing: str) -> bool:
    """True when ``method`` never reads a teacher sample, so its run under ``pairing`` is its unpaired
    run (a grid over pairings runs it once)."""
    return pairing != "unpaired" and not get_method(method).uses_teacher_samples


def same_under_controls(method: str, control: str) -> bool:
    """True when ``method`` never reads the teacher (``ce``, ``entmin``), so its run under a teacher
    ``control`` is its run with the real teacher."""
    return control != "none" and not get_method(method).uses_teacher
