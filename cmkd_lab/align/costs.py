"""Ground costs between two feature sets, (N, D) x (M, D) -> (N, M).

Every cost is computed in a frame where the features lie in [-1, 1] and scaled
back (see :func:`feature_frame`): features of any magnitude the dtype holds
give finite costs (1e19 squared is beyond float32), and features far from the
origin keep their digits (``||x||² + ||y||² − 2x·y`` cancels there).
"""
from __future__ import annotations

from typing import Tuple

import torch

from .._validation import check_choice

__all__ = ["COSTS", "COST_RANGE", "cost_matrix", "feature_frame", "to_frame", "sqdist"]

COSTS = ("l2", "sqeuclidean", "cosine", "l1", "chordal")
# Costs whose range max - min is bounded whatever the features: lets the OT
# solver choose its fast form without reading the cost matrix back.
COST_RANGE = {"cosine": 2.0, "chordal": 2.0}


@torch.no_grad()
def feature_frame(*zs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A frame for the rows of ``zs`` together: ``(m, c, s)`` such that
    ``u = (z / m − c) / s`` lies in [-1, 1] for every row.

    Distances computed on ``u`` times ``m·s`` are the distances of ``z`` (translation and
    scale are exact there), so nothing overflows (features ~1e19 squared exceed float32)
    and nothing cancels far from the origin. ``m`` = max |z| (1 if all zero), ``c`` (D,)
    the mean of ``z / m``, ``s`` = max |z / m − c| (1 if all points coincide); all three are
    detached device tensors (no host synchronisation).
    """
    z = torch.cat([t.detach() for t in zs], 0) if len(zs) > 1 else zs[0].detach()
    one = torch.ones((), dtype=z.dtype, device=z.device)
    if z.numel() == 0:
        return one, torch.zeros(z.shape[1:], dtype=z.dtype, device=z.device), one
    m = z.abs().amax()
    m = torch.where(m > 0, m, one)
    c = (z / m).mean(0)  # (D,), no overflow in the sum
    s = (z / m - c).abs().amax()
    return m, c, torch.where(s > 0, s, one)


def to_frame(z: torch.Tensor, frame) -> torch.Tensor:
    """``z`` in the frame ``(m, c, s)`` of :func:`feature_frame` (differentiable in ``z``)."""
    m, c, s = frame
    return (z / m - c) / s


def sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared distances ``||x||² + ||y||² − 2 x·y`` (N, M), clamped at 0 against round-off.
    Use it on framed features (:func:`to_frame`); :func:`cost_matrix` does."""
    d2 = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d2.clamp_min(0.0)


def _safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    # sqrt with a zero (not NaN/inf) gradient where the distance is 0; a NaN
    # distance stays NaN (``!= 0`` is true for NaN) so bad inputs are not hidden.
    pos = d2 != 0
    return torch.where(pos, torch.sqrt(torch.where(pos, d2, torch.ones_like(d2))), torch.zeros_like(d2))


def _normalize(x: torch.Tensor) -> torch.Tensor:
    # Each row over its largest entry first (a positive constant: the unit vector is the same), so
    # that the norm of a row of large entries does not overflow.
    big = x.detach().abs().amax(1, keepdim=True)
    x = x / torch.where(big > 0, big, torch.ones_like(big))
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
        Scale-equivariant: features times ``a > 0`` give ``a`` × the ``l2`` and
        ``l1`` costs and ``a²`` × the ``sqeuclidean`` cost (inf only where that
        value itself is beyond the dtype); ``cosine`` and ``chordal`` do not change.
        The gradient is the cost's own (the frame is a constant).
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
    if cost == "cosine":
        return 1.0 - _normalize(x) @ _normalize(y).T
    if cost == "chordal":
        return _safe_sqrt(sqdist(_normalize(x), _normalize(y)))
    fr = feature_frame(x, y)
    m, _, s = fr
    u, v = to_frame(x, fr), to_frame(y, fr)
    if cost == "l2":
        return _safe_sqrt(sqdist(u, v)) * s * m
    if cost == "sqeuclidean":
        return sqdist(u, v) * (s * s) * m * m
    # l1: (N, 1, D) - (1, M, D) -> (N, M); blockwise to bound memory.
    out = []
    step = max(1, int(2**24 // max(1, y.shape[0] * x.shape[1])))
    for i in range(0, x.shape[0], step):
        out.append((u[i:i + step, None, :] - v[None, :, :]).abs().sum(-1))
    return torch.cat(out, 0) * s * m
