"""Teacher training, the method registry and the trainer."""
from .config import PRESETS, DistillConfig, load_config_file
from .methods import Batch, Method, available_methods, get_method, register_method
from .runtime import resolve_device, seed_everything
from .teacher import evaluate, get_teacher, train_teacher
from .trainer import Callback, PairingError, Trainer, distill

__all__ = ["PRESETS", "DistillConfig", "load_config_file", "Batch", "Method", "available_methods", "get_method",
           "register_method", "resolve_device", "seed_everything", "evaluate", "get_teacher", "train_teacher",
           "Callback", "PairingError", "Trainer", "distill"]
