"""Wasserstein distances between two feature sets, and how the transport plan
treats the classes.

* :func:`exact_ot`: exact OT (POT's network simplex, ``ot.emd``) for small
  sets; with the ``l2`` cost its value is the Wasserstein-1 distance W1.
* :func:`entropic_ot`: the entropic plan (the FA loss's solver,
  :func:`cmkd_lab.align.sinkhorn_plan`) and its transport cost ⟨π, C⟩ and
  regularised objective ⟨π, C⟩ + ε·KL(π | a⊗b).
* :func:`sinkhorn_divergence`: S_ε(x, y) = OT_ε(x, y) − ½OT_ε(x, x) −
  ½OT_ε(y, y) on the regularised objective (Feydy et al., AISTATS 2019):
  zero for a set with itself, positive otherwise.
* :func:`plan_class_purity`: the share of transported mass joining samples of
  the same class, and the chance level Σ_k p_S(k)·p_T(k) that an
  independent coupling would give.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from .._validation import check_choice, check_int, check_positive
from ..align.costs import COSTS, cost_matrix
from ..align.ot import sinkhorn_plan
from ._common import as_labels, pair_features

__all__ = ["exact_ot", "entropic_ot", "sinkhorn_divergence", "plan_class_purity", "class_mass_matrix",
           "median_cost"]


def _marginals(a, b, n: int, m: int):
    def one(w, k, name):
        if w is None:
            return np.full(k, 1.0 / k)
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (k,) or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise ValueError(f"{name} must be {k} finite non-negative weights with a positive sum; got shape "
                             f"{w.shape}")
        return w / w.sum()
    return one(a, n, "a"), one(b, m, "b")


def median_cost(z, *, cost: str = "l2", max_points: int = 1000, seed: int = 0) -> float:
    """Median of the off-diagonal costs within ``z`` (N, D) (a scale for ε)."""
    check_choice("cost", cost, COSTS)
    t, _ = pair_features("z", z, "z", z, min_len=2)
    if t.shape[0] > max_points:
        g = torch.Generator().manual_seed(int(seed))
        t = t[torch.randperm(t.shape[0], generator=g)[:max_points].to(t.device)]
    C = cost_matrix(t, t, cost)  # (n, n)
    iu = torch.triu_indices(t.shape[0], t.shape[0], 1, device=t.device)
    off = C[iu[0], iu[1]]
    med = float(off.median())
    if not med > 0:  # most pairs coincide: their mean cost (scale-free); all points equal: 1
        med = float(off.mean())
    return med if med > 0 else 1.0


def exact_ot(x, y, *, cost: str = "l2", a=None, b=None, max_points: int = 5000, return_plan: bool = False,
             num_iter_max: int = 1_000_000):
    """Exact OT cost min_π ⟨π, C⟩ with POT's ``ot.emd`` (float64).

    Parameters
    ----------
    x : array or Tensor (N, D)
    y : array or Tensor (M, D)
    cost : {"l2", "sqeuclidean", "cosine", "l1", "chordal"}
        ``l2`` gives W1, ``sqeuclidean`` gives W2².
    a : array (N,), optional
    b : array (M,), optional
        Sample weights (uniform by default).
    max_points : int
        Refuse larger sets (the solver is O(N³)); use :func:`entropic_ot`.
    return_plan : bool
        Also return the plan π (N, M) as numpy.

    Returns
    -------
    float, or (float, ndarray (N, M))
    """
    import ot

    check_choice("cost", cost, COSTS)
    tx, ty = pair_features("x", x, "y", y, min_len=1)
    n, m = tx.shape[0], ty.shape[0]
    if max(n, m) > max_points:
        raise ValueError(f"exact OT is O(N^3): x and y must have at most max_points={max_points} samples; got "
                         f"{n} and {m}. Subsample them or use entropic_ot")
    wa, wb = _marginals(a, b, n, m)
    C = cost_matrix(tx.double().cpu(), ty.double().cpu(), cost).numpy()  # (N, M)
    # The network simplex compares costs with absolute tolerances: it solves C over its largest entry, a power
    # of two (exact), and the cost is scaled back, so that costs of any magnitude get the same plan.
    top = float(C.max()) if C.size else 0.0
    unit = 2.0 ** math.floor(math.log2(top)) if top > 0 else 1.0
    P = ot.emd(wa, wb, C / unit, numItermax=num_iter_max)
    value = float((P * (C / unit)).sum()) * unit
    return (value, P) if return_plan else value


@torch.no_grad()
def entropic_ot(x, y, *, eps: float, cost: str = "l2", a=None, b=None, max_iter: int = 500,
                return_plan: bool = False) -> dict:
    """Entropic OT between two sets (absolute ε, the FA loss's Sinkhorn solver).

    Parameters
    ----------
    x : array or Tensor (N, D)
    y : array or Tensor (M, D)
    eps : float > 0
        Absolute regularisation (fix it from a reference scale, e.g.
        0.1 × :func:`median_cost` of the teacher's features).
    cost : str
    a, b : array, optional
        Sample weights.
    max_iter : int
    return_plan : bool

    Returns
    -------
    dict
        ``cost`` ⟨π, C⟩, ``objective`` ⟨π, C⟩ + ε KL(π | a⊗b),
        ``marginal_error`` (L1, both marginals), optionally ``plan`` (N, M) numpy.
    """
    check_choice("cost", cost, COSTS)
    check_positive("eps", eps, hint="use 0.05-0.5 × median_cost(teacher features)")
    check_int("max_iter", max_iter, minimum=1)
    tx, ty = pair_features("x", x, "y", y, min_len=1)
    if tx.device.type == "cpu":  # float64 keeps the exp-domain iteration exact on the CPU
        tx, ty = tx.double(), ty.double()
    n, m = tx.shape[0], ty.shape[0]
    wa, wb = _marginals(a, b, n, m)
    ta = torch.as_tensor(wa, dtype=tx.dtype, device=tx.device)
    tb = torch.as_tensor(wb, dtype=tx.dtype, device=tx.device)
    C = cost_matrix(tx, ty, cost)  # (N, M)
    P = sinkhorn_plan(C, ta, tb, float(eps), max_iter)  # (N, M)
    transport = float((P * C).sum())
    ab = ta[:, None] * tb[None, :]  # (N, M)
    pos = P > 0
    kl = float((P[pos] * torch.log(P[pos] / ab[pos])).sum() - P.sum() + ab.sum())
    err = float((P.sum(1) - ta).abs().sum() + (P.sum(0) - tb).abs().sum())
    out = {"cost": transport, "objective": transport + float(eps) * kl, "marginal_error": err,
           "eps": float(eps)}
    if not math.isfinite(err):
        out["marginal_error"] = None
    if return_plan:
        out["plan"] = P.cpu().numpy()
    return out


def sinkhorn_divergence(x, y, *, eps: float, cost: str = "l2", max_iter: int = 500, y_self: Optional[float] = None,
                        full: bool = False):
    """Debiased Sinkhorn divergence on the regularised objective.

    S_ε(x, y) = OT_ε(x, y) − ½·OT_ε(x, x) − ½·OT_ε(y, y), uniform weights.

    Parameters
    ----------
    x : (N, D)
    y : (M, D)
    eps : float > 0 (absolute)
    cost : str
    max_iter : int
    y_self : float, optional
        OT_ε(y, y) when already known (a fixed reference set ``y`` compared
        with many ``x``: pass ``result["yy"]`` of an earlier ``full=True`` call).
    full : bool
        Return the terms too.

    Returns
    -------
    float (0 for a set with itself), or with ``full=True`` a dict with
    ``divergence``, ``xy`` (:func:`entropic_ot` of x and y, its plan included),
    ``xx`` and ``yy`` (the two self-terms)
    """
    tx, ty = pair_features("x", x, "y", y, min_len=1)
    xy = entropic_ot(tx, ty, eps=eps, cost=cost, max_iter=max_iter, return_plan=full)
    if y_self is None:
        y_self = entropic_ot(ty, ty, eps=eps, cost=cost, max_iter=max_iter)["objective"]
    xx = entropic_ot(tx, tx, eps=eps, cost=cost, max_iter=max_iter)["objective"]
    div = float(xy["objective"] - 0.5 * (xx + y_self))
    return {"divergence": div, "xy": xy, "xx": xx, "yy": float(y_self)} if full else div


def class_mass_matrix(plan, y_x, y_y, num_classes: int) -> np.ndarray:
    """Transported mass between classes: M[k, l] = Σ π_ij over y_x[i]=k, y_y[j]=l.

    Parameters
    ----------
    plan : array (N, M)
    y_x : (N,) labels of the plan's rows;  y_y : (M,) of its columns
    num_classes : int

    Returns
    -------
    ndarray (K, K), normalised to total mass 1
    """
    check_int("num_classes", num_classes, minimum=1)
    P = plan.detach().cpu().numpy() if isinstance(plan, torch.Tensor) else np.asarray(plan, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"plan must be a matrix (N, M); got shape {P.shape}")
    lx = as_labels("y_x", y_x, P.shape[0], num_classes)
    ly = as_labels("y_y", y_y, P.shape[1], num_classes)
    if np.any(P < -1e-12) or not np.all(np.isfinite(P)) or P.sum() <= 0:
        raise ValueError("plan must be finite, non-negative and carry positive mass")
    Ex = np.eye(num_classes)[lx]  # (N, K) one-hot
    Ey = np.eye(num_classes)[ly]  # (M, K)
    Mk = Ex.T @ P @ Ey  # (K, K)
    return Mk / Mk.sum()


def plan_class_purity(plan, y_x, y_y, num_classes: Optional[int] = None) -> dict:
    """Share of transported mass joining same-class samples, its chance level, and
    the same share up to a relabelling of the classes.

    ``purity`` = Σ_ij π_ij·[y_x(i) = y_y(j)] / Σ π; ``chance`` = Σ_k p_x(k)·p_y(k)
    with p_x, p_y the class masses of the plan's two marginals (what the
    independent coupling a⊗b would give). ``purity_matched`` = max over
    one-to-one maps σ of Σ_k M[k, σ(k)] (the Hungarian assignment on the class
    mass matrix M, ``scipy.optimize.linear_sum_assignment``): the plan keeps the
    classes apart, even if it sends class k to the teacher's class σ(k) ≠ k.
    A student with its own head can use such a plan; one read by the teacher's
    head (LA) cannot. ``matching[k]`` = σ(k).

    Returns
    -------
    dict with ``purity``, ``chance``, ``purity_matched``, ``matching`` (K,) and
    ``class_mass`` (K, K) ndarray
    """
    from scipy.optimize import linear_sum_assignment

    K = num_classes if num_classes is not None else int(max(np.max(np.asarray(y_x)), np.max(np.asarray(y_y)))) + 1
    Mk = class_mass_matrix(plan, y_x, y_y, K)
    rows, cols = linear_sum_assignment(Mk, maximize=True)
    return {"purity": float(np.trace(Mk)), "chance": float(Mk.sum(1) @ Mk.sum(0)),
            "purity_matched": float(Mk[rows, cols].sum()), "matching": cols[np.argsort(rows)], "class_mass": Mk}
