"""Input handling shared by the diagnostics (features, labels, subsets)."""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .._validation import check_finite_array, check_int, check_labels
from .._seeds import REFERENCE_SUBSET, numpy_rng

__all__ = ["as_features", "as_labels", "stratified_indices", "pair_features", "to_list"]


def as_features(name: str, z, *, device=None, dtype=None, min_len: int = 1) -> torch.Tensor:
    """``z`` (numpy or tensor, shape (N, D)) as a detached floating tensor.

    Integers are converted to float32; float64 stays float64 (exact answers in
    tests), everything else keeps its dtype unless ``dtype`` is given.
    """
    if not isinstance(z, (torch.Tensor, np.ndarray)):
        if isinstance(z, (list, tuple)):
            z = np.asarray(z, dtype=np.float64)
        else:
            raise TypeError(f"{name} must be a numpy array or torch tensor of shape (N, D); got {type(z).__name__}")
    check_finite_array(name, z, min_ndim=2, min_len=min_len)
    if z.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D); got shape {tuple(z.shape)}: flatten the features first")
    t = torch.as_tensor(z).detach()
    if not t.dtype.is_floating_point:
        t = t.float()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    return t


def pair_features(name_x: str, x, name_y: str, y, *, device=None, min_len: int = 1):
    """Two feature sets on one device and dtype, with a shared dimension D."""
    tx = as_features(name_x, x, device=device, min_len=min_len)
    ty = as_features(name_y, y, device=tx.device if device is None else device, min_len=min_len)
    if tx.shape[1] != ty.shape[1]:
        raise ValueError(
            f"{name_x} and {name_y} must share the feature dimension D; got {name_x} {tuple(tx.shape)} and "
            f"{name_y} {tuple(ty.shape)}"
        )
    dt = torch.promote_types(tx.dtype, ty.dtype)
    return tx.to(dt), ty.to(dt)


def as_labels(name: str, y, n: int, num_classes: Optional[int] = None) -> np.ndarray:
    """Labels as an int64 numpy array of length ``n`` in ``0..num_classes-1``."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 1
    y = check_labels(name, y, max(1, num_classes))
    if y.shape[0] != n:
        raise ValueError(f"{name} must have one label per sample ({n}); got {y.shape[0]}")
    return y


def stratified_indices(y, n: int, seed: int) -> np.ndarray:
    """Sorted indices of a class-stratified subsample of size ``min(n, len(y))``.

    Each class keeps a share proportional to its frequency (largest
    remainders), so the subset is the same for a given ``seed`` and ``y``.
    """
    check_int("n", n, minimum=1)
    check_int("seed", seed, minimum=0)
    y = np.asarray(y)
    N = y.shape[0]
    if n >= N:
        return np.arange(N)
    rng = numpy_rng(seed, REFERENCE_SUBSET)
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n / N
    take = np.floor(quota).astype(int)
    rest = n - take.sum()
    if rest > 0:  # largest remainders, ties broken by the seeded order
        order = np.lexsort((rng.random(len(classes)), -(quota - take)))
        take[order[:rest]] += 1
    out = [rng.choice(np.flatnonzero(y == c), size=t, replace=False) for c, t in zip(classes, take) if t > 0]
    return np.sort(np.concatenate(out))


def to_list(a, decimals: int = 4):
    """A small array as nested lists of rounded Python floats (for result.json)."""
    a = np.asarray(a, dtype=np.float64)
    return np.round(a, decimals).tolist()
