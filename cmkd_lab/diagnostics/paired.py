"""Measures that need pairs: the same instance seen in both sets.

* :func:`retrieval_recall`: find each sample's partner among the other set's
  samples by Euclidean nearest neighbour (recall@k, both ways).
* :func:`linear_cka`: linear centred kernel alignment (Kornblith et al.,
  ICML 2019) of two paired sets: 1 when one is the other up to a rotation,
  an isotropic scaling and a shift.
* :func:`procrustes_residual`: what an orthogonal map (``scipy.linalg.
  orthogonal_procrustes``) from one centred set onto the other leaves
  unexplained, relative to the target's norm.
* :func:`paired_measures`: all three with a two-fold cross-fit, so that the
  orthogonal map used for retrieval is fitted on pairs it is not tested on.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .._validation import check_int
from ._common import pair_features

__all__ = ["retrieval_recall", "linear_cka", "procrustes_residual", "paired_measures"]


@torch.no_grad()
def retrieval_recall(x, y, *, ks: Sequence[int] = (1, 5, 10), block: int = 4096) -> dict:
    """Recall@k of paired retrieval: row i of ``x`` is the partner of row i of ``y``.

    Parameters
    ----------
    x : array or Tensor (P, D)
    y : array or Tensor (P, D)
        Row i of ``y`` is the same instance as row i of ``x``.
    ks : sequence of int >= 1
    block : int
        Query rows per distance block.

    Returns
    -------
    dict
        ``x_to_y`` and ``y_to_x``: {k: share of queries whose partner is
        among the k nearest candidates}, ``chance`` {k: k / P}, ``n`` = P.
        Ties count in the query's favour (a partner at the same distance as
        another candidate is found).
    """
    tx, ty = pair_features("x", x, "y", y, min_len=1)
    if tx.shape[0] != ty.shape[0]:
        raise ValueError(f"x and y must hold the same number of paired rows; got {tx.shape[0]} and {ty.shape[0]}")
    ks = [check_int("ks[i]", k, minimum=1) for k in ks]
    P = tx.shape[0]

    def ranks(q, c):  # rank of each query's partner among the candidates  # (P,)
        out = []
        for i in range(0, P, block):
            d = torch.cdist(q[i:i + block], c)  # (b, P)
            rows = torch.arange(d.shape[0], device=d.device)
            own = d[rows, rows + i]  # (b,)
            out.append((d < own[:, None]).sum(1))
        return torch.cat(out).cpu().numpy()

    rx, ry = ranks(tx, ty), ranks(ty, tx)
    return {"x_to_y": {k: float(np.mean(rx < k)) for k in ks}, "y_to_x": {k: float(np.mean(ry < k)) for k in ks},
            "chance": {k: min(1.0, k / P) for k in ks}, "n": int(P)}


def linear_cka(x, y) -> Optional[float]:
    """Linear CKA ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) of the centred paired sets.

    Parameters
    ----------
    x : array or Tensor (P, D)
    y : array or Tensor (P, D')
        Paired rows; the dimensions may differ.

    Returns
    -------
    float in [0, 1], or None when a set has no spread (CKA undefined)
    """
    tx = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).double().cpu()
    ty = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).double().cpu()
    if tx.ndim != 2 or ty.ndim != 2 or tx.shape[0] != ty.shape[0]:
        raise ValueError(f"x and y must be paired matrices (P, D); got shapes {tuple(tx.shape)} and {tuple(ty.shape)}")
    tx, ty = tx - tx.mean(0), ty - ty.mean(0)
    # CKA is the same for each set times any factor: each over its largest entry first (no under/overflow)
    bx, by = float(tx.abs().max()) if tx.numel() else 0.0, float(ty.abs().max()) if ty.numel() else 0.0
    if not (bx > 0 and by > 0):
        return None
    tx, ty = tx / bx, ty / by
    den = float((tx.T @ tx).norm() * (ty.T @ ty).norm())
    if den <= 1e-24:
        return None
    return float((ty.T @ tx).norm() ** 2 / den)


def procrustes_residual(x, y, *, fit=None) -> Optional[dict]:
    """Residual of the orthogonal map R minimising ‖X R − Y‖_F (X, Y centred).

    Parameters
    ----------
    x : array (P, D);  y : array (P, D)
        Paired rows, evaluated (each centred by its own mean).
    fit : (array (Q, D), array (Q, D)), optional
        Pairs to fit R on (default: ``x``, ``y`` themselves).

    Returns
    -------
    dict with ``residual`` ‖X R − Y‖_F / ‖Y‖_F and ``rotation`` R (D, D), or
    None when Y has no spread
    """
    from scipy.linalg import orthogonal_procrustes

    X = np.asarray(x, dtype=np.float64)
    Y = np.asarray(y, dtype=np.float64)
    X, Y = X - X.mean(0), Y - Y.mean(0)
    if fit is None:
        FX, FY = X, Y
    else:
        FX, FY = (np.asarray(a, dtype=np.float64) for a in fit)
        FX, FY = FX - FX.mean(0), FY - FY.mean(0)
    # the residual is the same for both sets times one factor: over their largest entry first
    big = max(float(np.abs(v).max()) if v.size else 0.0 for v in (X, Y, FX, FY))
    if not big > 0:
        return None
    X, Y, FX, FY = X / big, Y / big, FX / big, FY / big
    ny = float(np.linalg.norm(Y))
    if ny <= 1e-12:
        return None
    R, _ = orthogonal_procrustes(FX, FY)  # (D, D)
    return {"residual": float(np.linalg.norm(X @ R - Y) / ny), "rotation": R}


def _halves(P: int, seed: int):
    rng = np.random.default_rng(np.random.SeedSequence([seed, 77]))
    perm = rng.permutation(P)
    return np.sort(perm[:P // 2]), np.sort(perm[P // 2:])


def paired_measures(x, y, *, ks: Sequence[int] = (1, 5, 10), seed: int = 0, device=None) -> dict:
    """Retrieval (as the spaces stand, after centring, after an orthogonal map),
    linear CKA and the Procrustes residual of paired sets.

    The pairs are split in two halves (seeded). Retrieval runs within each
    half (its P/2 samples are the candidates) and is averaged over the two;
    the orthogonal map used in the third variant is fitted on the *other*
    half. CKA and the in-sample Procrustes residual use all P pairs; the
    held-out residual is the cross-fitted one.

    Parameters
    ----------
    x : array (P, D);  y : array (P, D)
    ks : sequence of int
    seed : int
    device : torch device for the distance blocks (default: CPU)

    Returns
    -------
    dict with ``retrieval`` {variant: {"x_to_y": {k: r}, "y_to_x": {k: r}}},
    ``retrieval_chance`` {k: k / (P/2)}, ``n_candidates``, ``cka``,
    ``procrustes`` (in-sample), ``procrustes_heldout``, ``n_pairs``
    """
    X = np.asarray(x, dtype=np.float64)
    Y = np.asarray(y, dtype=np.float64)
    if X.shape != Y.shape or X.ndim != 2:
        raise ValueError(f"x and y must be paired (P, D) arrays of one shape; got {X.shape} and {Y.shape}")
    P = X.shape[0]
    if P < 4:
        raise ValueError(f"paired measures need at least 4 pairs; got {P}")
    mx, my = X.mean(0), Y.mean(0)
    h1, h2 = _halves(P, seed)
    dev = torch.device("cpu") if device is None else torch.device(device)
    variants = {"as is": [], "centred": [], "orthogonal map": []}
    held = []
    for test, train in ((h1, h2), (h2, h1)):
        xt, yt = X[test], Y[test]
        pr = procrustes_residual(xt, yt, fit=(X[train], Y[train]))
        variants["as is"].append(retrieval_recall(torch.as_tensor(xt, device=dev), torch.as_tensor(yt, device=dev),
                                                  ks=ks))
        xc, yc = xt - mx, yt - my
        variants["centred"].append(retrieval_recall(torch.as_tensor(xc, device=dev), torch.as_tensor(yc, device=dev),
                                                    ks=ks))
        if pr is not None:
            held.append(pr["residual"])
            xr = (xt - X[train].mean(0)) @ pr["rotation"]  # (P/2, D) in y's centred frame
            yr = yt - Y[train].mean(0)
            variants["orthogonal map"].append(retrieval_recall(torch.as_tensor(xr, device=dev),
                                                               torch.as_tensor(yr, device=dev), ks=ks))
    ret = {}
    for name, parts in variants.items():
        if parts:
            ret[name] = {way: {k: float(np.mean([p[way][k] for p in parts])) for k in ks}
                         for way in ("x_to_y", "y_to_x")}
    n_cand = min(len(h1), len(h2))
    full = procrustes_residual(X, Y)
    return {"retrieval": ret, "retrieval_chance": {k: min(1.0, k / n_cand) for k in ks}, "n_candidates": int(n_cand),
            "cka": linear_cka(X, Y), "procrustes": None if full is None else full["residual"],
            "procrustes_heldout": float(np.mean(held)) if held else None, "n_pairs": int(P)}
