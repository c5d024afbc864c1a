"""Tasks, splits, pairing modes and the built-in datasets."""
from .registry import available_tasks, load_task, register_task, task_options
from .task import CrossModalTask, Split, infer_encoder_spec
from .synthetic import make_synthetic_task
from .sampling import PAIRINGS, TeacherBatchSampler
from . import av, digits_speech, hapt  # noqa: F401,E402  (register the built-in tasks)

__all__ = [
    "CrossModalTask", "Split", "infer_encoder_spec", "available_tasks", "load_task",
    "register_task", "task_options", "make_synthetic_task", "PAIRINGS", "TeacherBatchSampler",
]
