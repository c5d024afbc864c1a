"""MMD two-sample tests between teacher and student features.

* :func:`mmd_permutation_test`: the unbiased MMD² with a multi-bandwidth RBF
  kernel and a permutation p-value. The pooled kernel matrix is computed once,
  block by block (upper triangle only), and every permutation reuses each
  block through one matrix product with a (N, P) matrix of group indicators:
  distances are never recomputed per permutation and the (N, N) kernel never
  exists in memory at once. Runs on the features' device (GPU when there).
* :func:`linear_mmd`: the linear-time estimator (Gretton et al., JMLR 2012,
  §6) with its normal-approximation p-value, for large sets.
* :func:`class_conditional_mmd`: one test per class with a Holm correction.

Bandwidths should be fixed from a reference set (:func:`rbf_bandwidths` on
the teacher's features) so that values are comparable across epochs.

Every kernel is computed on features moved into a frame where they lie in
[-1, 1] (:func:`cmkd_lab.align.costs.feature_frame`), with the bandwidths
rescaled alike: the same statistics, whatever the features' magnitude
(features ~1e19 squared overflow float32; ~1e200 overflow float64).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch

from .._validation import check_int, check_positive
from ..align.costs import feature_frame, sqdist, to_frame
from ..align.mmd import median_bandwidth
from ._common import as_features, as_labels, pair_features

__all__ = ["rbf_bandwidths", "mmd2_unbiased", "mmd_permutation_test", "permutation_masks", "linear_mmd",
           "class_conditional_mmd", "holm_correction"]


def rbf_bandwidths(reference, *, scales: Sequence[float] = (0.5, 1.0, 2.0), max_points: int = 2000,
                   seed: int = 0) -> list:
    """RBF bandwidths σ = median pairwise distance of ``reference`` × each scale.

    Parameters
    ----------
    reference : array or Tensor (M, D)
        Usually the teacher's reference features (fixed for a whole run).
    scales : sequence of float > 0
    max_points : int
        Subsample size for the median.
    seed : int

    Returns
    -------
    list of float
    """
    z = as_features("reference", reference, min_len=2)
    if not scales:
        raise ValueError("scales must list at least one multiplier; got an empty sequence")
    for s in scales:
        check_positive("scales[i]", s)
    base = median_bandwidth(z, max_points=max_points, seed=seed)
    return [float(base * s) for s in scales]


def _framed(tx: torch.Tensor, ty: torch.Tensor, bws: list):
    """``tx``, ``ty`` in their joint frame, and the γ = 1 / (2 σ²) of the bandwidths rescaled alike.

    A bandwidth so narrow that γ is not a finite number in the features' dtype is refused (exp(-0·inf)
    would be NaN); one so wide that γ underflows to 0 gives the constant kernel (MMD² 0), its limit."""
    fr = feature_frame(tx, ty)
    scale = float(fr[2]) * float(fr[0]) or float(fr[0])  # framed distances × scale = distances of tx, ty
    gammas = [1.0 / (2.0 * (b / scale) * (b / scale)) if b / scale > 0 else math.inf for b in bws]
    big = torch.finfo(tx.dtype).max
    if any(not g < big for g in gammas):
        raise ValueError(f"bandwidth must be wider than {scale * math.sqrt(0.5 / big):.1e} for these features "
                         f"(they span {scale:.3g}; {tx.dtype}); got bandwidth={bws}: take it from "
                         "rbf_bandwidths(reference features)")
    return to_frame(tx, fr), to_frame(ty, fr), gammas


def _check_bandwidths(bandwidth) -> list:
    bws = list(bandwidth) if isinstance(bandwidth, (list, tuple, np.ndarray)) else [bandwidth]
    if not bws:
        raise ValueError("bandwidth must be a positive float or a non-empty list of them; got []")
    for b in bws:
        check_positive("bandwidth", b, hint="get one from rbf_bandwidths(teacher_features)")
    return [float(b) for b in bws]


def _squaring_chain(gammas) -> Optional[list]:
    """If every γ is γ_min · 2^j, the exponents j (sorted γ); else None.

    Then exp(-d² γ_min·2^j) is exp(-d² γ_min) squared j times: one exp per
    entry instead of one per bandwidth (the default scales 0.5, 1, 2 qualify).
    """
    g = sorted(float(v) for v in gammas)
    if not g[0] > 0:  # a bandwidth so wide that γ underflows to 0: the kernel is 1 (no chain)
        return None
    js = [math.log2(v / g[0]) for v in g]
    if all(abs(j - round(j)) < 1e-9 for j in js) and max(js) <= 8:
        return [int(round(j)) for j in js]
    return None


def _kernel(x: torch.Tensor, y: torch.Tensor, gammas: Sequence[float]) -> torch.Tensor:
    # Mean over bandwidths of exp(-||x_i - y_j||² γ_s), γ_s = 1 / (2 σ_s²).  # (b, c)
    d2 = sqdist(x, y)
    chain = _squaring_chain(gammas)
    if chain is None:
        k = torch.exp(-d2 * gammas[0])
        for g in gammas[1:]:
            k += torch.exp(-d2 * g)
        return k / len(gammas)
    e = torch.exp(d2.mul_(-min(gammas)))  # d2 is not needed any more; reuse its memory
    k = torch.zeros_like(e)
    j = 0
    for target in chain:  # ascending powers of two
        while j < target:
            e.mul_(e)
            j += 1
        k += e
    return k.div_(len(chain))


def permutation_masks(N: int, n: int, n_permutations: int, *, seed: int = 0, device=None,
                      dtype=torch.float32) -> torch.Tensor:
    """Group indicators (N, P+1): column 0 is the observed split (first ``n``
    rows = group X), columns 1..P random relabellings with ``n`` rows in X."""
    g = torch.Generator().manual_seed(int(seed))
    A = torch.zeros(n_permutations + 1, N, dtype=dtype)  # (P+1, N)
    A[0, :n] = 1.0
    for p in range(1, n_permutations + 1):  # one randperm each: O(P·N) time, no (P, N) sort
        A[p].index_fill_(0, torch.randperm(N, generator=g)[:n], 1.0)
    return A.T.contiguous().to(device)  # (N, P+1)


def _block_size(N: int, device: torch.device, block: Optional[int]) -> int:
    if block is not None:
        return check_int("block", block, minimum=1)
    return 8192 if device.type == "cuda" else 2048


@torch.no_grad()
def _split_sums(z: torch.Tensor, A: torch.Tensor, gammas: Sequence[float], block: int):
    """For each column a of ``A``: (aᵀK₀a, aᵀK₀1) and 1ᵀK₀1, with K₀ the pooled
    kernel matrix without its diagonal, visiting each upper-triangle block once."""
    N, Q = A.shape
    W = torch.cat([A, torch.ones(N, 1, dtype=A.dtype, device=A.device)], 1)  # (N, Q+1)
    sxx = torch.zeros(Q, dtype=torch.float64, device=z.device)
    sx1 = torch.zeros(Q, dtype=torch.float64, device=z.device)
    s11 = torch.zeros((), dtype=torch.float64, device=z.device)
    for i in range(0, N, block):
        zi, Ai = z[i:i + block], A[i:i + block]  # (b, D), (b, Q)
        for j in range(i, N, block):
            K = _kernel(zi, z[j:j + block], gammas)  # (b, c)
            if i == j:
                K.fill_diagonal_(0.0)
            M = (K @ W[j:j + block]).double()  # (b, Q+1)
            xx = (Ai.double() * M[:, :Q]).sum(0)  # a_iᵀ K a_j  (Q,)
            x1 = (Ai.double() * M[:, Q:]).sum(0)  # a_iᵀ K 1_j  (Q,)
            t = M[:, Q].sum()
            if i == j:
                sxx += xx
                sx1 += x1
                s11 += t
            else:  # the mirrored block K_ji = K_ijᵀ
                sxx += 2.0 * xx
                sx1 += x1 + (K.sum(0).double() @ A[j:j + block].double())
                s11 += 2.0 * t
    return sxx, sx1, s11


def _stats(sxx, sx1, s11, n: int, m: int) -> torch.Tensor:
    sxy = sx1 - sxx  # aᵀK₀(1 - a)
    syy = s11 - 2.0 * sx1 + sxx  # (1 - a)ᵀK₀(1 - a)
    return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2.0 * sxy / (n * m)


def mmd2_unbiased(x, y, *, bandwidth, block: Optional[int] = None) -> float:
    """Unbiased MMD² (U-statistic) with the mean of RBF kernels over ``bandwidth``.

    Parameters
    ----------
    x : array or Tensor (N, D)
    y : array or Tensor (M, D)
    bandwidth : float or list of float
    block : int, optional
        Rows per kernel block (default 2048 on CPU, 8192 on CUDA).

    Returns
    -------
    float (can be slightly negative when the distributions are equal)
    """
    return mmd_permutation_test(x, y, bandwidth=bandwidth, n_permutations=0, block=block)["mmd2"]


def mmd_permutation_test(x, y, *, bandwidth, n_permutations: int = 500, seed: int = 0,
                         block: Optional[int] = None, device=None, return_null: bool = False) -> dict:
    """Permutation test of D_x = D_y with the unbiased MMD² statistic.

    Parameters
    ----------
    x : array or Tensor (N, D)
        e.g. student features.
    y : array or Tensor (M, D)
        e.g. teacher features.
    bandwidth : float or list of float
        RBF bandwidth(s) σ, fixed by the caller (see :func:`rbf_bandwidths`).
    n_permutations : int >= 0
        P random relabellings of the pooled sample.
    seed : int
    block : int, optional
        Rows per kernel block (bounds memory: block × block entries at once).
    device : str or torch.device, optional
        Where to compute (default: the device of ``x``).
    return_null : bool
        Include the P null statistics.

    Returns
    -------
    dict
        ``mmd2`` (observed), ``p_value`` = (1 + #{null >= observed}) / (1 + P)
        (None when P = 0), ``n_permutations``, ``null_mean``, ``null_std``,
        optionally ``null`` (list).
    """
    bws = _check_bandwidths(bandwidth)
    check_int("n_permutations", n_permutations, minimum=0)
    check_int("seed", seed, minimum=0)
    tx, ty = pair_features("x", x, "y", y, device=device, min_len=2)
    n, m = tx.shape[0], ty.shape[0]
    tx, ty, gammas = _framed(tx, ty, bws)  # (S,) γ of the framed features
    z = torch.cat([tx, ty], 0)  # (N, D), N = n + m
    A = permutation_masks(n + m, n, n_permutations, seed=seed, device=z.device, dtype=z.dtype)  # (N, P+1)
    sxx, sx1, s11 = _split_sums(z, A, gammas, _block_size(n + m, z.device, block))
    stats = _stats(sxx, sx1, s11, n, m).cpu().numpy()  # (P+1,)
    obs, null = float(stats[0]), stats[1:]
    out = {"mmd2": obs, "n_permutations": int(n_permutations), "bandwidths": bws,
           "p_value": float((1 + np.sum(null >= obs)) / (1 + n_permutations)) if n_permutations else None,
           "null_mean": float(null.mean()) if n_permutations else None,
           "null_std": float(null.std()) if n_permutations else None}
    if return_null:
        out["null"] = null.tolist()
    return out


@torch.no_grad()
def linear_mmd(x, y, *, bandwidth, seed: int = 0, device=None) -> dict:
    """Linear-time unbiased MMD² estimate with a normal-approximation p-value.

    Pairs disjoint samples: h = k(x₁,x₂) + k(y₁,y₂) − k(x₁,y₂) − k(x₂,y₁),
    averaged over ⌊min(N, M)/2⌋ pairs after a seeded shuffle; E[h] = MMD².

    Parameters
    ----------
    x : array or Tensor (N, D)
    y : array or Tensor (M, D)
    bandwidth : float or list of float
    seed : int
    device : optional

    Returns
    -------
    dict
        ``mmd2``, ``std_error``, ``z``, ``p_value`` (one-sided, H1: MMD² > 0),
        ``n_pairs``.
    """
    bws = _check_bandwidths(bandwidth)
    check_int("seed", seed, minimum=0)
    tx, ty = pair_features("x", x, "y", y, device=device, min_len=4)
    tx, ty, gam = _framed(tx, ty, bws)
    g = torch.Generator().manual_seed(int(seed))
    px = torch.randperm(tx.shape[0], generator=g).to(tx.device)
    py = torch.randperm(ty.shape[0], generator=g).to(ty.device)
    h2 = min(tx.shape[0], ty.shape[0]) // 2
    x1, x2 = tx[px[:h2]], tx[px[h2:2 * h2]]  # (h2, D) each
    y1, y2 = ty[py[:h2]], ty[py[h2:2 * h2]]

    def k(a, b):  # row-wise kernel  # (h2,)
        d2 = ((a - b) ** 2).sum(1)
        return sum(torch.exp(-d2 * gm) for gm in gam) / len(gam)

    h = (k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)).double()  # (h2,)
    mean = float(h.mean())
    se = float(h.std() / math.sqrt(h2)) if h2 > 1 else float("inf")
    zval = mean / se if se > 0 else (math.inf if mean > 0 else 0.0)
    p = 0.5 * math.erfc(zval / math.sqrt(2.0))
    return {"mmd2": mean, "std_error": se, "z": zval, "p_value": p, "n_pairs": int(h2), "bandwidths": bws}


def holm_correction(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (same order as given).

    p_adj(i) = max over j ≤ rank(i) of min(1, (m − j + 1) · p_(j)).
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p_values must be a 1-D list of probabilities in [0, 1]; got {p_values!r}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adj = np.maximum.accumulate(adj)
    out = np.empty(m)
    out[order] = adj
    return out


def class_conditional_mmd(x, y_x, y, y_y, *, bandwidth, num_classes: Optional[int] = None,
                          n_permutations: int = 200, seed: int = 0, alpha: float = 0.05) -> dict:
    """One MMD permutation test per class, Holm-corrected across classes.

    Parameters
    ----------
    x : (N, D) with labels ``y_x`` (N,)
    y : (M, D) with labels ``y_y`` (M,)
    bandwidth : float or list of float
    num_classes : int, optional
    n_permutations, seed : int
    alpha : float
        Family-wise level for ``rejected``.

    Returns
    -------
    dict
        ``per_class``: list of {class, n_x, n_y, mmd2, p_value, p_holm,
        rejected} (None where a class has < 2 samples on a side);
        ``mean_mmd2`` over tested classes; ``n_rejected``.
    """
    tx, ty = pair_features("x", x, "y", y, min_len=1)
    K = num_classes if num_classes is not None else int(max(np.max(np.asarray(y_x)), np.max(np.asarray(y_y)))) + 1
    lx = as_labels("y_x", y_x, tx.shape[0], K)
    ly = as_labels("y_y", y_y, ty.shape[0], K)
    check_positive("alpha", alpha)
    rows, tested = [], []
    for k in range(K):
        ix, iy = np.flatnonzero(lx == k), np.flatnonzero(ly == k)
        row = {"class": k, "n_x": int(ix.size), "n_y": int(iy.size), "mmd2": None, "p_value": None,
               "p_holm": None, "rejected": None}
        if ix.size >= 2 and iy.size >= 2:
            r = mmd_permutation_test(tx[torch.as_tensor(ix, device=tx.device)],
                                     ty[torch.as_tensor(iy, device=ty.device)], bandwidth=bandwidth,
                                     n_permutations=n_permutations, seed=seed + k)
            row["mmd2"], row["p_value"] = r["mmd2"], r["p_value"]
            tested.append(k)
        rows.append(row)
    if tested and n_permutations:
        adj = holm_correction([rows[k]["p_value"] for k in tested])
        for k, pa in zip(tested, adj):
            rows[k]["p_holm"] = float(pa)
            rows[k]["rejected"] = bool(pa < alpha)
    vals = [rows[k]["mmd2"] for k in tested]
    return {"per_class": rows, "mean_mmd2": float(np.mean(vals)) if vals else None,
            "n_rejected": int(sum(bool(r["rejected"]) for r in rows)), "alpha": alpha}
