"""Entropic optimal transport between feature sets (the FA loss).

The solver is a Sinkhorn loop in PyTorch (scaling form when the cost range
allows it, log domain otherwise). Two gradients are offered:

* ``grad="envelope"`` (default): the loop runs without autograd and the cost
  ⟨π*, M⟩ is formed from the final plan held fixed, so ∂/∂M = π*: the
  envelope-theorem gradient of the entropic OT objective, identical to POT's
  ``ot.solve(..., grad="envelope")``. Forward+backward costs one solve plus
  one cost-matrix backward.
* ``grad="autodiff"``: back-propagates through every iteration, like POT's
  ``ot.sinkhorn2`` (the exact gradient of ⟨π*(M), M⟩; slower, more memory).
"""
from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from torch import nn

from .._validation import check_choice, check_int, check_positive
from .costs import COSTS, cost_matrix

__all__ = ["ot_cost", "sinkhorn_plan", "OTLoss", "SinkhornConvergenceWarning"]


class SinkhornConvergenceWarning(UserWarning):
    """Sinkhorn stopped at ``max_iter`` with its marginals still off."""


def _check_features(z_s: torch.Tensor, z_t: torch.Tensor, check_finite: bool) -> None:
    for name, z in (("z_s", z_s), ("z_t", z_t)):
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (n, D); got {type(z).__name__}")
        if z.ndim != 2:
            raise ValueError(f"{name} must have shape (n, D); got shape {tuple(z.shape)}")
        if not z.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point tensor; got dtype {z.dtype}")
        if z.shape[0] < 2:
            raise ValueError(
                f"{name} must hold at least 2 samples for OT (one point has no distribution to align); "
                f"got {z.shape[0]}: use batch_size >= 2"
            )
    if z_s.shape[1] != z_t.shape[1]:
        raise ValueError(
            f"student and teacher features must share dimension D; got z_s {tuple(z_s.shape)} and "
            f"z_t {tuple(z_t.shape)}: give both encoders the same feature_dim"
        )
    if check_finite and not (torch.isfinite(z_s).all() and torch.isfinite(z_t).all()):
        raise ValueError("z_s or z_t contains NaN or inf; check the encoders' outputs and the learning rate")


def _weights(w: Optional[torch.Tensor], n: int, name: str, like: torch.Tensor) -> torch.Tensor:
    if w is None:
        return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(w, dtype=like.dtype, device=like.device)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the features; got {tuple(w.shape)}")
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()) or float(w.sum()) <= 0:
        raise ValueError(f"{name} must be finite, non-negative and sum to > 0")
    return w / w.sum()


def _sinkhorn_potentials(M: torch.Tensor, log_a: torch.Tensor, log_b: torch.Tensor, eps: float, max_iter: int):
    # Same update order as POT's sinkhorn_knopp (u starts at 1/n, v is updated
    # first), on the log scale: F = log u, G = log v; returns eps*F, eps*G.
    n = M.shape[0]
    Mt = -M / eps  # (N, M)
    F = torch.full_like(log_a, -math.log(n))  # (N,)
    G = torch.zeros_like(log_b)  # (M,)
    for _ in range(max_iter):
        G = log_b - torch.logsumexp(Mt + F[:, None], dim=0)
        F = log_a - torch.logsumexp(Mt + G[None, :], dim=1)
    return eps * F, eps * G


# Largest cost range (max - min) / eps for which the exp-domain iteration is
# safe from under/overflow in each precision; beyond it, the log domain.
_EXP_RANGE = {torch.float32: 40.0, torch.float64: 300.0}


def _sinkhorn_exp(M: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float, max_iter: int):
    # POT's sinkhorn_knopp iteration (u starts at 1/n, v updated first). The
    # kernel is shifted by the global minimum cost, which rescales v by a
    # constant and leaves every iterate's plan unchanged.
    K = torch.exp(-(M - M.min()) / eps)  # (N, M)
    Kt = K.T.contiguous()
    u = torch.full_like(a, 1.0 / a.shape[0])
    for _ in range(max_iter):
        v = b / (Kt @ u)
        u = a / (K @ v)
    return u[:, None] * K * v[None, :]


def sinkhorn_plan(M: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float, max_iter: int, *,
                  differentiable: bool = False) -> torch.Tensor:
    """Entropic OT plan (N, M) for cost ``M`` and marginals ``a``, ``b``.

    Runs the plain scaling iteration (two matrix-vector products per
    iteration) when the cost range over ``eps`` is small enough for it to be
    exact in float32 or float64, and the log-domain iteration otherwise, so
    small ε or large costs never give NaN/inf. ``differentiable=True`` keeps
    the autograd graph through the iterations.
    """
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        return _plan(M if differentiable else M.detach(), a, b, eps, max_iter)


def _plan(M, a, b, eps, max_iter):
    rng = float((M.max() - M.min()).detach() / eps) if M.numel() else 0.0
    for dt in (M.dtype, torch.float64):
        if dt in _EXP_RANGE and rng < _EXP_RANGE[dt] and (dt == M.dtype or M.device.type == "cpu"):
            P = _sinkhorn_exp(M.to(dt), a.to(dt), b.to(dt), eps, max_iter)
            if bool(torch.isfinite(P.detach()).all()):
                return P.to(M.dtype)
    log_a, log_b = torch.log(a.clamp_min(1e-300)), torch.log(b.clamp_min(1e-300))
    f, g = _sinkhorn_potentials(M, log_a, log_b, eps, max_iter)
    return torch.exp((f[:, None] + g[None, :] - M) / eps)  # (N, M)


def ot_cost(
    z_s: torch.Tensor,
    z_t: torch.Tensor,
    *,
    cost: str = "l2",
    eps: float = 0.1,
    max_iter: int = 100,
    a: Optional[torch.Tensor] = None,
    b: Optional[torch.Tensor] = None,
    eps_units: str = "absolute",
    tol: float = 1e-3,
    warn: bool = True,
    return_plan: bool = False,
    grad: str = "envelope",
):
    """Differentiable entropic OT cost ⟨π*, M⟩ between two feature sets.

    Equal to POT's ``ot.sinkhorn2(a, b, M, reg=eps, numItermax=max_iter)`` on
    the same cost matrix (tested), with the same gradient (π* held fixed).

    Parameters
    ----------
    z_s : Tensor (N, D)
        Student features (receives the gradient).
    z_t : Tensor (M, D)
        Teacher features (usually a detached bank batch).
    cost : {"l2", "sqeuclidean", "cosine", "l1", "chordal"}
        Ground cost; the paper uses ``l2``, its public code ``cosine``.
    eps : float > 0
        Entropic regularisation. With ``eps_units="median"`` it is relative to
        the median of the cost matrix (scale-free).
    max_iter : int >= 1
        Sinkhorn iterations (fixed count: no host synchronisation inside).
    a : Tensor (N,), optional
        Student sample weights (uniform by default; normalised to sum 1).
    b : Tensor (M,), optional
        Teacher sample weights.
    eps_units : {"absolute", "median"}
    tol : float
        Marginal error (L1) above which a :class:`SinkhornConvergenceWarning`
        is issued.
    warn : bool
        Check inputs for NaN/inf and convergence (one host sync each).
    return_plan : bool
        Also return the plan π* (N, M), detached.
    grad : {"envelope", "autodiff"}
        Envelope-theorem gradient (π* held fixed; fast) or back-propagation
        through the iterations (as POT's ``sinkhorn2``).

    Returns
    -------
    cost : Tensor ()
    plan : Tensor (N, M), only if ``return_plan``
    """
    _check_features(z_s, z_t, check_finite=warn)
    check_choice("cost", cost, COSTS)
    check_positive("eps", eps, hint="use eps around 0.01-1 (absolute) or 0.05-0.5 with eps_units='median'")
    check_int("max_iter", max_iter, minimum=1)
    check_choice("eps_units", eps_units, ("absolute", "median"))
    check_choice("grad", grad, ("envelope", "autodiff"))
    M = cost_matrix(z_s, z_t, cost)  # (N, M)
    eps_eff = float(eps)
    if eps_units == "median":
        med = float(M.detach().median())
        eps_eff = eps * (med if med > 0 else 1.0)
    wa = _weights(a, z_s.shape[0], "a", M)
    wb = _weights(b, z_t.shape[0], "b", M)
    plan = sinkhorn_plan(M, wa, wb, eps_eff, max_iter, differentiable=grad == "autodiff")  # (N, M)
    if warn:
        err = float((plan.detach().sum(0) - wb).abs().sum())
        if not math.isfinite(err) or err > tol:
            warnings.warn(
                f"Sinkhorn did not converge: marginal error {err:.2e} > tol={tol} after max_iter={max_iter} "
                f"iterations with eps={eps_eff:.3g} (cost scale: median {float(M.detach().median()):.3g}). "
                "Raise max_iter, or raise eps (eps_units='median' makes eps scale-free).",
                SinkhornConvergenceWarning,
                stacklevel=2,
            )
    value = (plan * M).sum()
    return (value, plan.detach()) if return_plan else value


class OTLoss(nn.Module):
    """``nn.Module`` front over :func:`ot_cost` (hyperparameters stored as given)."""

    def __init__(self, *, cost: str = "l2", eps: float = 0.1, max_iter: int = 100, eps_units: str = "absolute",
                 warn: bool = True):
        super().__init__()
        check_choice("cost", cost, COSTS)
        check_positive("eps", eps)
        check_int("max_iter", max_iter, minimum=1)
        check_choice("eps_units", eps_units, ("absolute", "median"))
        self.cost, self.eps, self.max_iter, self.eps_units, self.warn = cost, eps, max_iter, eps_units, warn

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        return ot_cost(z_s, z_t, cost=self.cost, eps=self.eps, max_iter=self.max_iter,
                       eps_units=self.eps_units, warn=self.warn)

    def extra_repr(self) -> str:
        return f"cost={self.cost!r}, eps={self.eps}, max_iter={self.max_iter}, eps_units={self.eps_units!r}"
