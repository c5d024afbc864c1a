"""Device resolution, seeding and version info."""
from __future__ import annotations

import platform
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "versions"]


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; a device that does not exist is an error."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string like 'auto', 'cpu', 'cuda' or 'cuda:0'; got {device!r}")
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got device={device!r}") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for but no CUDA GPU is available here; use device='cpu' or 'auto'")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} does not exist: {torch.cuda.device_count()} GPU(s) visible")
    elif d.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was asked for but Apple's MPS backend is not available here; "
                         "use device='cpu' or 'auto'")
    elif d.type not in ("cpu", "mps"):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got device={device!r}")
    return d


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("cmkd_lab", "torch", "numpy", "pot", "scikit-learn", "plotly", "umap-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
