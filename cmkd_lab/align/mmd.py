"""Maximum mean discrepancy with a (multi-bandwidth) RBF kernel."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch

from .._validation import check_choice, check_int
from .costs import feature_frame, sqdist, to_frame

__all__ = ["mmd", "median_bandwidth", "rbf_kernel_sum"]


@torch.no_grad()
def median_bandwidth(x: torch.Tensor, y: Optional[torch.Tensor] = None, *, max_points: int = 2000,
                     seed: int = 0) -> float:
    """Median pairwise Euclidean distance (the median heuristic), on a subsample.

    Scale-free: computed on centred, rescaled points, then scaled back (so
    features of any magnitude give a finite bandwidth). Never returns 0: when
    most pairs coincide it gives the spread of the points, and a set of
    identical points gives 1.0.
    """
    z = x if y is None else torch.cat([x, y], 0)
    if z.shape[0] > max_points:
        g = torch.Generator().manual_seed(seed)
        z = z[torch.randperm(z.shape[0], generator=g)[:max_points].to(z.device)]
    fr = feature_frame(z)
    z = to_frame(z, fr)
    d2 = sqdist(z, z)
    iu = torch.triu_indices(z.shape[0], z.shape[0], 1, device=z.device)
    med = float(d2[iu[0], iu[1]].median().sqrt()) if iu.shape[1] else 0.0
    return (med if med > 1e-12 else 1.0) * float(fr[2]) * float(fr[0])


def rbf_kernel_sum(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float], *, exclude_diag: bool = False,
                   block: int = 4096) -> torch.Tensor:
    """Σ_ij Σ_σ exp(-||x_i - y_j||² / (2σ²)), blockwise over rows of ``x``.

    ``exclude_diag`` drops i == j terms (x and y must be the same set).
    """
    inv = torch.tensor([1.0 / (2.0 * s * s) for s in bandwidths], dtype=x.dtype, device=x.device)  # (S,)
    total = x.new_zeros(())
    for i in range(0, x.shape[0], block):
        d2 = sqdist(x[i:i + block], y)  # (b, M)
        k = torch.exp(-d2[None] * inv[:, None, None]).sum(0)  # (b, M)
        if exclude_diag:
            r = torch.arange(k.shape[0], device=x.device)
            k[r, r + i] = 0.0
        total = total + k.sum()
    return total


def mmd(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    bandwidth: Union[None, float, Sequence[float]] = None,
    scales: Sequence[float] = (0.5, 1.0, 2.0),
    estimator: str = "unbiased",
    block: int = 4096,
) -> torch.Tensor:
    """Squared MMD between samples ``x`` (N, D) and ``y`` (M, D).

    Parameters
    ----------
    x : Tensor (N, D)
    y : Tensor (M, D)
    bandwidth : float or list of float, optional
        RBF bandwidth(s) σ. Default: the median heuristic on the pooled
        samples times each of ``scales``. Fix it from a reference set to make
        values comparable across calls.
    scales : sequence of float
        Multipliers of the median bandwidth when ``bandwidth`` is None.
    estimator : {"unbiased", "biased"}
        Unbiased U-statistic (can be slightly negative) or biased V-statistic.
    block : int
        Rows per block (bounds memory on large sets).

    Returns
    -------
    Tensor ()  (kernel averaged over the bandwidths)
    """
    check_choice("estimator", estimator, ("unbiased", "biased"))
    check_int("block", block, minimum=1)
    for name, z in (("x", x), ("y", y)):
        if not isinstance(z, torch.Tensor) or z.ndim != 2:
            raise ValueError(f"{name} must be a tensor of shape (n, D); got {getattr(z, 'shape', type(z))}: "
                             "convert with torch.as_tensor(a, dtype=torch.float32)")
        if not z.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor; got dtype {z.dtype}: use {name}.float()")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must share dimension D; got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.dtype != y.dtype or x.device != y.device:
        raise ValueError(f"x and y must share dtype and device; got {x.dtype} on {x.device} and {y.dtype} on {y.device}")
    n, m = x.shape[0], y.shape[0]
    if estimator == "unbiased" and (n < 2 or m < 2):
        raise ValueError(f"the unbiased MMD needs at least 2 samples per set; got n={n}, m={m}")
    if n < 1 or m < 1:
        raise ValueError(f"MMD needs at least 1 sample per set; got n={n}, m={m}")
    if not (bool(torch.isfinite(x).all()) and bool(torch.isfinite(y).all())):
        raise ValueError("x or y contains NaN or inf; clean the features before comparing them")
    if bandwidth is None:
        if len(scales) == 0:
            raise ValueError("scales must list at least one multiplier of the median bandwidth; got scales=()")
        base = median_bandwidth(x.detach(), y.detach())
        bws = [base * s for s in scales]
    else:
        bws = [float(b) for b in (bandwidth if isinstance(bandwidth, (list, tuple)) else [bandwidth])]
    # The kernel is computed on centred, rescaled features (a fixed frame, no gradient through it) with the
    # bandwidths rescaled alike: the same MMD, but no overflow for large features (1e19 squared is inf in
    # float32, inf - inf = NaN) and no cancellation far from the origin.
    fr = feature_frame(x, y)
    x, y = to_frame(x, fr), to_frame(y, fr)
    scale = float(fr[2]) * float(fr[0])  # distances of the framed features times scale are those of x, y
    # 1 / (2 sigma^2) must be a finite number in x's dtype, else exp(-0 * inf) = NaN.
    smallest = math.sqrt(0.5 / torch.finfo(x.dtype).max)
    if any(not (b > 0) for b in bws):
        raise ValueError(f"bandwidth must be > 0; got {bws}: pass bandwidth=None for the median heuristic, "
                         "or positive scales")
    if any(not (smallest < b / scale and b < float("inf")) for b in bws):
        raise ValueError(f"bandwidth must be finite and > {smallest * scale:.1e} (for {x.dtype}); got {bws}: pass "
                         "bandwidth=None for the median heuristic")
    bws = [b / scale for b in bws]
    S = len(bws)
    kxy = rbf_kernel_sum(x, y, bws, block=block) / S
    if estimator == "biased":
        kxx = rbf_kernel_sum(x, x, bws, block=block) / S
        kyy = rbf_kernel_sum(y, y, bws, block=block) / S
        return kxx / (n * n) + kyy / (m * m) - 2 * kxy / (n * m)
    kxx = rbf_kernel_sum(x, x, bws, exclude_diag=True, block=block) / S
    kyy = rbf_kernel_sum(y, y, bws, exclude_diag=True, block=block) / S
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2 * kxy / (n * m)
