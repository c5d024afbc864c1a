"""Entropic optimal transport between feature sets (the FA loss).

The solver is a Sinkhorn loop in PyTorch (scaling form when the cost range
allows it, log domain otherwise) with a fixed iteration count, so nothing in
the loop waits on the device (``stop_thr > 0`` asks instead for POT's early
stop, one check every ten iterations); on a GPU the choice of form is made
from what the host already knows (see :func:`sinkhorn_plan`), and
``compile=True`` fuses each log-domain half-step into one pass over the cost
matrix. Two gradients are offered:

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

from .._validation import check_choice, check_int, check_nonneg, check_positive
from .costs import COST_RANGE, COSTS, cost_matrix

__all__ = ["ot_cost", "sinkhorn_plan", "OTLoss", "SinkhornConvergenceWarning", "SOLVERS"]


class SinkhornConvergenceWarning(UserWarning):
    """Sinkhorn stopped at ``max_iter`` with its marginals still off."""


def _check_features(z_s: torch.Tensor, z_t: torch.Tensor, check_finite: bool) -> None:
    for name, z in (("z_s", z_s), ("z_t", z_t)):
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (n, D); got {type(z).__name__}: "
                            "convert with torch.as_tensor(a, dtype=torch.float32)")
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
    if z_s.dtype != z_t.dtype or z_s.device != z_t.device:
        raise ValueError(f"z_s and z_t must share dtype and device; got {z_s.dtype} on {z_s.device} and "
                         f"{z_t.dtype} on {z_t.device}: cast one with .to(other)")
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


# Largest cost range (max - min) / eps for which the exp-domain iteration is
# safe from under/overflow in each precision; beyond it, the log domain.
_EXP_RANGE = {torch.float32: 40.0, torch.float64: 300.0}
SOLVERS = ("auto", "scaling", "log")
# Iterations per call of a chunk function: a compiled chunk is unrolled this
# many times once, so compilation stays short (max_iter=100 is ten calls).
_CHUNK = 10


def _exp_chunk(K, Kt, a, b, u, n: int):
    # POT's sinkhorn_knopp update order: v first, then u.
    v = u
    for _ in range(n):
        v = b / (Kt @ u)  # (M,)
        u = a / (K @ v)  # (N,)
    return u, v


def _log_chunk(Mt, MtT, log_a, log_b, F, n: int):
    # The same iteration on the log scale (F = log u, G = log v, Mt = -M/eps).
    # Both half-steps reduce over contiguous rows (Mt (N, M) and its transpose
    # (M, N)), so a compiler fuses each into one pass over memory.
    G = F
    for _ in range(n):
        G = log_b - torch.logsumexp(MtT + F[None, :], dim=1)  # (M,)
        F = log_a - torch.logsumexp(Mt + G[None, :], dim=1)  # (N,)
    return F, G


def _marginal_error(kind, consts, x, y) -> torch.Tensor:
    # POT's stopping criterion: L2 norm of the column-marginal error.
    if kind == "exp":
        K, Kt, a, b = consts
        return torch.linalg.vector_norm(y * (Kt @ x) - b)
    Mt, MtT, log_a, log_b = consts
    return torch.linalg.vector_norm(torch.exp(y + torch.logsumexp(MtT + x[None, :], dim=1)) - torch.exp(log_b))


_COMPILED = {}


def _compiled(kind: str):
    """``torch.compile``d chunk of Sinkhorn iterations (built once per kind)."""
    if kind not in _COMPILED:
        _COMPILED[kind] = torch.compile(_exp_chunk if kind == "exp" else _log_chunk, dynamic=None)
    return _COMPILED[kind]


def _run(kind: str, consts, x, max_iter: int, compile: bool, stop_thr: float):
    """``max_iter`` iterations in chunks; with ``stop_thr > 0`` stop, as POT does,
    at the first check (after iterations 1, 11, 21, ...) whose marginal error
    is below it — each check reads one number back from the device."""
    fn = _compiled(kind) if compile else (_exp_chunk if kind == "exp" else _log_chunk)
    done, y = 0, None
    while done < max_iter:
        n = min(1 if (stop_thr > 0 and done == 0) else _CHUNK, max_iter - done)
        x, y = fn(*consts, x, n)
        done += n
        if stop_thr > 0 and float(_marginal_error(kind, consts, x, y)) < stop_thr:
            break
    return x, y


def _sinkhorn_exp(M, a, b, eps, max_iter: int, compile: bool = False, stop_thr: float = 0.0):
    # The kernel is shifted by the global minimum cost, which rescales v by a
    # constant and leaves every iterate's plan unchanged.
    K = torch.exp(-(M - M.min()) / eps)  # (N, M)
    u0 = torch.full_like(a, 1.0 / a.shape[0])  # (N,)
    u, v = _run("exp", (K, K.T.contiguous(), a, b), u0, max_iter, compile, stop_thr)
    return u[:, None] * K * v[None, :]  # (N, M)


def _sinkhorn_log(M, a, b, eps, max_iter: int, compile: bool = False, stop_thr: float = 0.0):
    log_a, log_b = torch.log(a.clamp_min(1e-300)), torch.log(b.clamp_min(1e-300))
    Mt = -M / eps  # (N, M)
    F0 = torch.full_like(log_a, -math.log(M.shape[0]))  # (N,)
    _, G = _run("log", (Mt, Mt.T.contiguous(), log_a, log_b), F0, max_iter, compile, stop_thr)
    # The last F-update in closed form: row i is a_i · softmax_j((g_j - M_ij) / eps), so no
    # entry can overflow even where f + g - M cancels badly in float32.
    return torch.exp(log_a[:, None] + torch.log_softmax(Mt + G[None, :], dim=1))  # (N, M)


def _overflow_message(M, eps) -> str:
    lim = _EXP_RANGE.get(M.dtype, 40.0)
    spread = float((M.max() - M.min()).detach()) if M.numel() else 0.0
    return (f"solver='scaling' under/overflowed: the cost range over eps is {spread / float(eps):.3g} (max - min cost "
            f"{spread:.3g}, eps={float(eps):.3g}), beyond about {lim:g} in {M.dtype}, where exp(-M/eps) underflows to "
            "0; the log-domain plan is returned instead: pass solver='log' (or 'auto'), a larger eps, or "
            "eps_units='median'")


def sinkhorn_plan(M: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps, max_iter: int, *,
                  differentiable: bool = False, solver: str = "auto", cost_range: Optional[float] = None,
                  compile: bool = False, stop_thr: float = 0.0, check_finite: Optional[bool] = None) -> torch.Tensor:
    """Entropic OT plan (N, M) for cost ``M`` and marginals ``a``, ``b``.

    Parameters
    ----------
    M : Tensor (N, M)
        Cost matrix.
    a : Tensor (N,), b : Tensor (M,)
        Marginals (non-negative, each summing to 1).
    eps : float or Tensor ()
        Entropic regularisation (a 0-d tensor keeps a data-dependent ε on the
        device: no host synchronisation).
    max_iter : int
        Number of iterations (POT's update order).
    differentiable : bool
        Keep the autograd graph through the iterations.
    solver : {"auto", "scaling", "log"}
        ``scaling``: the plain iteration, two matrix-vector products per
        step; fastest, but it under/overflows when the cost range over ε is
        large (about > 40 in float32, > 300 in float64): then (see
        ``check_finite``) a :class:`SinkhornConvergenceWarning` names the range
        and the remedies and the log-domain plan is returned instead of NaN.
        ``log``: the log-domain iteration,
        safe for any ε. ``auto``: on the CPU, the scaling form when the range
        allows it (in float64 if float32 is not enough; checked on the host,
        which costs nothing there) and the log domain otherwise. On a GPU,
        ``auto`` never reads the device: the scaling form when ``cost_range``
        and a float ``eps`` prove it safe, the log domain otherwise.
    cost_range : float, optional
        An upper bound on ``max(M) - min(M)`` known without looking at ``M``
        (2 for the cosine and chordal costs).
    compile : bool
        Run the iterations through ``torch.compile`` (fused log-domain
        kernels on a GPU; the first call per shape compiles).
    stop_thr : float >= 0
        0 (default): exactly ``max_iter`` iterations, no host synchronisation.
        > 0: stop like POT's ``stopThr`` when the L2 error of the column
        marginal falls below it, checked after iterations 1, 11, 21, ... (each
        check is one host synchronisation on a GPU; free on the CPU).
    check_finite : bool, optional
        With ``solver="scaling"``: look for under/overflow in the plan and
        fall back to the log domain (with a warning). None (default): on the
        CPU only, where it is free; True also on a GPU (one synchronisation).
    """
    check_choice("solver", solver, SOLVERS)
    if check_finite is None:
        check_finite = M.device.type == "cpu"
    with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
        return _plan(M if differentiable else M.detach(), a, b, eps, max_iter, solver, cost_range, compile,
                     float(stop_thr), bool(check_finite))


def _plan(M, a, b, eps, max_iter, solver="auto", cost_range=None, compile=False, stop_thr=0.0, check=False):
    if solver == "scaling":
        P = _sinkhorn_exp(M, a, b, eps, max_iter, compile, stop_thr)
        if check and bool(torch.isfinite(M.detach()).all()) and not bool(torch.isfinite(P.detach()).all()):
            warnings.warn(_overflow_message(M, eps), SinkhornConvergenceWarning, stacklevel=4)
            return _sinkhorn_log(M, a, b, eps, max_iter, compile, stop_thr)
        return P
    if solver == "log":
        return _sinkhorn_log(M, a, b, eps, max_iter, compile, stop_thr)
    host_eps = not isinstance(eps, torch.Tensor)
    if host_eps and cost_range is not None and cost_range / eps < _EXP_RANGE.get(M.dtype, 0.0):
        return _sinkhorn_exp(M, a, b, eps, max_iter, compile, stop_thr)  # proven safe without reading M
    if M.device.type != "cpu":
        return _sinkhorn_log(M, a, b, eps, max_iter, compile, stop_thr)  # sync-free and always safe
    eps = float(eps)
    rng = float((M.max() - M.min()).detach() / eps) if M.numel() else 0.0
    for dt in (M.dtype, torch.float64):
        if dt in _EXP_RANGE and rng < _EXP_RANGE[dt]:
            P = _sinkhorn_exp(M.to(dt), a.to(dt), b.to(dt), eps, max_iter, compile and dt == M.dtype, stop_thr)
            if bool(torch.isfinite(P.detach()).all()):
                return P.to(M.dtype)
    return _sinkhorn_log(M, a, b, eps, max_iter, compile, stop_thr)


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
    solver: str = "auto",
    compile: bool = False,
    stop_thr: float = 0.0,
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
        Sinkhorn iterations (a fixed count, no host synchronisation inside,
        unless ``stop_thr > 0``).
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
    solver : {"auto", "scaling", "log"}
        Sinkhorn form (see :func:`sinkhorn_plan`). ``auto`` picks the fast
        scaling form whenever it is exact and reads nothing back from a GPU.
    compile : bool
        Run the iterations through ``torch.compile`` (worth it on a GPU).
    stop_thr : float >= 0
        Stop early like POT's ``stopThr`` (``ot.sinkhorn2``'s default is
        1e-9); 0 runs exactly ``max_iter`` iterations (see ``sinkhorn_plan``).

    Notes
    -----
    With ``warn=False`` and no ``a``/``b`` the call makes no host-device
    synchronisation on a GPU: a median ε stays a device tensor and the solver
    choice uses only what the host knows (see ``sinkhorn_plan``).

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
    check_nonneg("tol", tol)
    check_choice("solver", solver, SOLVERS)
    check_nonneg("stop_thr", stop_thr)
    M = cost_matrix(z_s, z_t, cost)  # (N, M)
    eps_eff = float(eps)
    if eps_units == "median":
        med = M.detach().median()
        if M.device.type == "cpu":
            eps_eff = eps * (float(med) if float(med) > 0 else 1.0)
        else:  # stays on the device: no synchronisation
            eps_eff = eps * torch.where(med > 0, med, torch.ones_like(med))
    wa = _weights(a, z_s.shape[0], "a", M)
    wb = _weights(b, z_t.shape[0], "b", M)
    plan = sinkhorn_plan(M, wa, wb, eps_eff, max_iter, differentiable=grad == "autodiff", solver=solver,
                         cost_range=COST_RANGE.get(cost), compile=compile, stop_thr=stop_thr,
                         check_finite=True if warn else None)  # (N, M)
    if warn:
        err = float((plan.detach().sum(0) - wb).abs().sum())
        if not bool(torch.isfinite(M.detach()).all()):
            big = max(float(z_s.detach().abs().max()), float(z_t.detach().abs().max()))
            warnings.warn(f"the cost matrix holds inf or NaN (the features reach {big:.3g}, too large for {M.dtype} "
                          f"costs); rescale the features (or pass them in float64): the OT cost is NaN",
                          SinkhornConvergenceWarning, stacklevel=2)
        elif not math.isfinite(err) or err > tol:
            warnings.warn(
                f"Sinkhorn did not converge: marginal error {err:.2e} > tol={tol} after max_iter={max_iter} "
                f"iterations with eps={float(eps_eff):.3g} (cost scale: median {float(M.detach().median()):.3g}). "
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
