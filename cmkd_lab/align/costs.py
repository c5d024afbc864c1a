"""Ground costs between two feature sets, (N, D) x (M, D) -> (N, M).

Every cost is computed on the features over one power of two (:func:`pow2_scale`)
and scaled back: exact in floating point, so the costs are bit for bit those of
the features as they are wherever those are representable, and features of any
magnitude the dtype holds give finite costs (1e19 squared is beyond float32;
1e-30 squared is below it). :func:`feature_frame` also centres the features
(for kernels, which need no scale back: see :mod:`cmkd_lab.align.mmd`).
"""
from __future__ import annotations

import math
from typing import Tuple

import torch

from .._validation import check_choice

__all__ = ["COSTS", "COST_RANGE", "cost_matrix", "feature_frame", "to_frame", "sqdist", "pow2_scale"]

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


@torch.no_grad()
def pow2_scale(*zs: torch.Tensor, dim=None) -> torch.Tensor:
    """A power of two ``p`` with ``|z| / p`` in [0.25, 2) for the largest entry of ``zs`` (over all
    entries, or per row with ``dim=1``): dividing by it and multiplying back is exact in floating point.
    A detached device tensor (no host synchronisation); 1 where every entry is 0."""
    big = None
    for z in zs:
        if z.numel() == 0:
            continue
        hi = z.detach().amax(dim=dim, keepdim=dim is not None)
        lo = z.detach().amin(dim=dim, keepdim=dim is not None)
        m = torch.maximum(hi, -lo)
        big = m if big is None else torch.maximum(big, m)
    if big is None:  # no entries at all
        return torch.ones((), dtype=zs[0].dtype, device=zs[0].device)
    _, e = torch.frexp(big)  # big = f · 2^e, f in [0.5, 1); 2^(e-1) stays finite even for the dtype's max
    return torch.pow(torch.tensor(2.0, dtype=big.dtype, device=big.device), (e - 1).to(big.dtype))


def to_frame(z: torch.Tensor, frame) -> torch.Tensor:
    """``z`` in the frame ``(m, c, s)`` of :func:`feature_frame` (differentiable in ``z``)."""
    m, c, s = frame
    return (z / m - c) / s


def sqdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared distances ``||x||² + ||y||² − 2 x·y`` (N, M), clamped at 0 against round-off.
    Use it on features of order 1 (:func:`to_frame`, or over :func:`pow2_scale`), as the callers here do."""
    d2 = (x * x).sum(1, keepdim=True) + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return d2.clamp_min(0.0)


def _safe_sqrt(d2: torch.Tensor) -> torch.Tensor:
    # sqrt with a zero (not NaN/inf) gradient where the distance is 0; a NaN
    # distance stays NaN (``!= 0`` is true for NaN) so bad inputs are not hidden.
    pos = d2 != 0
    return torch.where(pos, torch.sqrt(torch.where(pos, d2, torch.ones_like(d2))), torch.zeros_like(d2))


# Powers of two within which the features' squares and their sums can neither overflow nor underflow:
# there the costs are computed as they are (the scaled computation would give the same bits, only later).
_AS_IS = {torch.float32: 2.0 ** -30, torch.float64: 2.0 ** -250}


def _as_is(p, dtype) -> bool:
    """Whether features over the power(s) of two ``p`` (a float, or a tensor of them) can be used as they
    are; known on the host only: on a GPU they are always scaled, which needs no synchronisation."""
    lim = _AS_IS.get(dtype)
    if lim is None:
        return False
    if isinstance(p, torch.Tensor):
        if p.device.type != "cpu" or not p.numel():
            return False
        return lim <= float(p.min()) and float(p.max()) <= 1 / lim
    return lim <= p <= 1 / lim


def _host_scale(x: torch.Tensor, y: torch.Tensor):
    """:func:`pow2_scale` of two CPU tensors as a Python float (two reductions, no temporaries), else the
    device tensor."""
    if x.device.type != "cpu":
        return pow2_scale(x, y)
    big = 0.0
    for z in (x, y):
        if z.numel():
            lo, hi = torch.aminmax(z.detach())
            big = max(big, -float(lo), float(hi))
    if not math.isfinite(big):
        return 1.0
    return 2.0 ** (math.frexp(big)[1] - 1)


def _normalize(x: torch.Tensor) -> torch.Tensor:
    # Each row over a power of two near its largest entry first (exact: the unit vector is the same),
    # so that the norm of a row of large (or tiny) entries does not overflow (or underflow).
    p = pow2_scale(x, dim=1)  # (N, 1)
    x = x if _as_is(p, x.dtype) else x / p
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
        Bit for bit the unscaled computation where that one neither overflows nor
        underflows; the gradient is the cost's own (the power of two is a constant).
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
    p = _host_scale(x, y)
    if _as_is(p, x.dtype):
        return _cost(x, y, cost)
    if cost == "sqeuclidean":
        return _cost(x / p, y / p, cost) * p * p  # two factors: p² alone can overflow where the cost does not
    return _cost(x / p, y / p, cost) * p


def _cost(x: torch.Tensor, y: torch.Tensor, cost: str) -> torch.Tensor:
    if cost == "l2":
        return _safe_sqrt(sqdist(x, y))
    if cost == "sqeuclidean":
        return sqdist(x, y)
    # l1: (N, 1, D) - (1, M, D) -> (N, M); blockwise to bound memory.
    out = []
    step = max(1, int(2**24 // max(1, y.shape[0] * x.shape[1])))
    for i in range(0, x.shape[0], step):
        out.append((x[i:i + step, None, :] - y[None, :, :]).abs().sum(-1))
    return torch.cat(out, 0)
