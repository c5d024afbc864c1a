"""Teacher training, the method registry and the trainer.

The one-call API ``distill(task, method, config)`` lives with the jobs (:mod:`cmkd_lab.experiments.job`,
next to ``run_one``), because it attaches the diagnostics, which sit above this package; import it from
``cmkd_lab`` (``from cmkd_lab import distill``)."""
from .config import PRESETS, DistillConfig, load_config_file
from .methods import Batch, Method, available_methods, get_method, register_method
from .runtime import resolve_device, seed_everything
from .teacher import evaluate, get_teacher, train_teacher
from .trainer import Callback, PairingError, Trainer

__all__ = ["PRESETS", "DistillConfig", "load_config_file", "Batch", "Method", "available_methods", "get_method",
           "register_method", "resolve_device", "seed_everything", "evaluate", "get_teacher", "train_teacher",
           "Callback", "PairingError", "Trainer"]
