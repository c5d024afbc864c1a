"""Ground costs between two feature sets, (N, D) x (M, D) -> (N, M)."""
from __future__ import annotations

import torch

from .._validation import check_choice

__all__ = ["COSTS", "COST_RANGE", "cost_matrix"]

COSTS = ("l2", "sqeuclidean", "cosine", "l1", "chordal")
# Costs whose range max - min is bounded whatever the features: lets the OT
# solver choose its fast form without reading the cost matrix back.
COST_RANGE = {"cosine": 2.0, "chordal": 2.0}


def _sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # ||x||^2 + ||y||^2 - 2 x.y, clamped at 0 against round-off.  # (N, M)
    d2 = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d2.clamp_min(0.0)


def _safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    # sqrt with a zero (not NaN/inf) gradient where the distance is 0; a NaN
    # distance stays NaN (``!= 0`` is true for NaN) so bad inputs are not hidden.
    pos = d2 != 0
    return torch.where(pos, torch.sqrt(torch.where(pos, d2, torch.ones_like(d2))), torch.zeros_like(d2))


def _normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def cost_matrix(x: torch.Tensor, y: torch.Tensor, cost: str = "l2") -> torch.Tensor:
    """Pairwise cost between rows of ``x`` and rows of ``y``.

    Parameters
    ----------
    x : Tensor (N, D)
    y : Tensor (M, D)
    cost : {"l2", "sqeuclidean", "cosine", "l1", "chordal"}
        ``l2`` Euclidean distance (the paper's choice); ``sqeuclidean`` its
        square; ``cosine`` 1 - cosine similarity (the public code's default);
        ``l1`` city-block; ``chordal`` Euclidean distance between the
        L2-normalised vectors (= sqrt(2 - 2 cos)).

    Returns
    -------
    Tensor (N, M)
    """
    check_choice("cost", cost, COSTS)
    for name, z in (("x", x), ("y", y)):
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or not z.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point torch.Tensor of shape (n, D); got "
                            f"{type(z).__name__} {getattr(z, 'dtype', '')} of shape {tuple(getattr(z, 'shape', ()))}: "
                            "convert with torch.as_tensor(a, dtype=torch.float32)")
    if x.shape[1] != y.shape[1] or x.dtype != y.dtype or x.device != y.device:
        raise ValueError(f"x and y must share feature dimension D, dtype and device; got x {tuple(x.shape)} "
                         f"{x.dtype} on {x.device} and y {tuple(y.shape)} {y.dtype} on {y.device}")
    if cost == "l2":
        return _safe_sqrt(_sqdist(x, y))
    if cost == "sqeuclidean":
        return _sqdist(x, y)
    if cost == "cosine":
        return 1.0 - _normalize(x) @ _normalize(y).T
    if cost == "chordal":
        return _safe_sqrt(_sqdist(_normalize(x), _normalize(y)))
    # l1: (N, 1, D) - (1, M, D) -> (N, M); blockwise to bound memory.
    out = []
    step = max(1, int(2**24 // max(1, y.shape[0] * x.shape[1])))
    for i in range(0, x.shape[0], step):
        out.append((x[i:i + step, None, :] - y[None, :, :]).abs().sum(-1))
    return torch.cat(out, 0)
