"""Tasks, splits, pairing modes and the built-in datasets."""
from .registry import available_tasks, load_task, register_task
from .task import CrossModalTask, Split, infer_encoder_spec
from .synthetic import make_synthetic_task
from .sampling import PAIRINGS, TeacherBatchSampler

__all__ = [
    "CrossModalTask", "Split", "infer_encoder_spec", "available_tasks", "load_task",
    "register_task", "make_synthetic_task", "PAIRINGS", "TeacherBatchSampler",
]
