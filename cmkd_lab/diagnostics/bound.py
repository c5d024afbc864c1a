"""The paper's bound, term by term (docs/theory.md):

    err_S(φ) ≤ err_T(θ) + FA(φ, θ) + LA(p_S, p_T),   FA = τ · W1(D^T(z), D^S(z)).

Estimated on held-out reference sets:

* err_T: the teacher's cross-entropy on its own (val) features and labels;
* W1: exact OT (``l2`` cost) between the student's and the teacher's features;
* τ: the Lipschitz constant of ℓ_τ(z) = −Σ_y D^T(y|z) log p_T(y|z). D^T(y|z)
  is unknown off the teacher's samples, so the plug-in D^T(y|z) ≈ p_T(y|z) is
  used: ℓ̂(z) = H(p_T(·|z)), the entropy of the teacher head's prediction.
  τ̂ is the larger of (a) the largest gradient norm ‖∇ℓ̂(z)‖ over teacher,
  student and interpolated features and (b) the largest slope
  |ℓ̂(z) − ℓ̂(z')| / ‖z − z'‖ over sampled pairs. Both are *lower* estimates
  of the true constant (a maximum over samples), so FA is not an upper bound;
* LA_e: the empirical label alignment with the plug-in κ̂ = p_T(y|z_S);
* err_S: the student's cross-entropy on its (val) reference set.

Identity used as a check: err_S − LA_e = mean_i κ̂_i · (−log p_T(y_i | z_i)),
so the bound reads "mean κ̂-weighted teacher loss on student features ≤
err_T + τ·W1". 0-1 errors are reported alongside.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .._validation import check_int, check_nonneg
from ..align.la import label_alignment_loss
from ._common import as_labels, pair_features
from .labels import _logits

__all__ = ["plugin_teacher_loss", "lipschitz_estimate", "bound_terms", "LIPSCHITZ_METHOD"]

LIPSCHITZ_METHOD = ("plug-in l(z) = entropy of p_T(.|z) (D^T(y|z) ~ p_T(y|z)); tau = max of the largest gradient "
                    "norm over teacher, student and interpolated features and the largest |l(z)-l(z')|/||z-z'|| "
                    "over sampled pairs (a lower estimate of the Lipschitz constant)")


def plugin_teacher_loss(head, z: torch.Tensor) -> torch.Tensor:
    """ℓ̂(z) = −Σ_y p_T(y|z) log p_T(y|z) for features ``z`` (N, D); returns (N,)."""
    logp = F.log_softmax(head(z).float(), dim=1)  # (N, K)
    return -(logp.exp() * logp).sum(1)


def _device_of(head) -> torch.device:
    try:
        return next(head.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def lipschitz_estimate(head, z_s, z_t, *, n_pairs: int = 2000, n_segment: int = 1000, seed: int = 0) -> dict:
    """Sampled estimate of the Lipschitz constant of the plug-in teacher loss.

    Parameters
    ----------
    head : callable (B, D) -> (B, K)
        The frozen teacher head.
    z_s : (N, D) student features;  z_t : (M, D) teacher features
    n_pairs : int
        Random pairs from the pooled set for the slope estimate.
    n_segment : int
        Points on segments between random teacher–student pairs where the
        gradient norm is also evaluated.
    seed : int

    Returns
    -------
    dict with ``tau``, ``tau_grad``, ``tau_pairs``, ``method``
    """
    check_int("n_pairs", n_pairs, minimum=0)
    check_int("n_segment", n_segment, minimum=0)
    dev = _device_of(head)
    ts, tt = pair_features("z_s", z_s, "z_t", z_t, device=dev)
    ts, tt = ts.float(), tt.float()
    g = torch.Generator().manual_seed(int(seed))
    pts = [tt, ts]
    if n_segment:
        i = torch.randint(ts.shape[0], (n_segment,), generator=g).to(dev)
        j = torch.randint(tt.shape[0], (n_segment,), generator=g).to(dev)
        t = torch.rand(n_segment, 1, generator=g).to(dev)
        pts.append((1 - t) * tt[j] + t * ts[i])  # (n_segment, D)
    z = torch.cat(pts, 0).detach().requires_grad_(True)  # (P, D)
    with torch.enable_grad():
        loss = plugin_teacher_loss(head, z)
        (grad,) = torch.autograd.grad(loss.sum(), z)
    tau_grad = float(grad.norm(dim=1).max())
    tau_pairs = 0.0
    if n_pairs:
        with torch.no_grad():
            pool = torch.cat([tt, ts], 0)  # (N + M, D)
            lv = plugin_teacher_loss(head, pool)
            a = torch.randint(pool.shape[0], (n_pairs,), generator=g).to(dev)
            b = torch.randint(pool.shape[0], (n_pairs,), generator=g).to(dev)
            d = (pool[a] - pool[b]).norm(dim=1)
            ok = d > 1e-9
            if bool(ok.any()):
                tau_pairs = float(((lv[a] - lv[b]).abs()[ok] / d[ok]).max())
    return {"tau": max(tau_grad, tau_pairs), "tau_grad": tau_grad, "tau_pairs": tau_pairs,
            "method": LIPSCHITZ_METHOD}


def bound_terms(*, teacher_logits_on_teacher, y_teacher, student_logits, teacher_logits_on_student, y_student,
                w1: float, tau: float) -> dict:
    """The bound's estimated terms on reference sets.

    Parameters
    ----------
    teacher_logits_on_teacher : (M, K);  y_teacher : (M,)
    student_logits : (N, K) student head on student features
    teacher_logits_on_student : (N, K) teacher head on the same features
    y_student : (N,)
    w1 : float >= 0
        W1 distance between student and teacher features (``l2`` cost).
    tau : float >= 0
        Lipschitz estimate of the teacher loss (:func:`lipschitz_estimate`).

    Returns
    -------
    dict of flat scalars: ``bound_err_t``, ``bound_w1``, ``bound_tau``,
    ``bound_fa`` (= τ·W1), ``bound_la``, ``bound_sum`` (= err_T + FA + LA),
    ``bound_err_s``, ``bound_transfer`` (= err_S − LA_e), ``bound_slack``
    (= sum − err_S), ``bound_holds`` (bool), 0-1 errors ``bound_err_t01`` and
    ``bound_err_s01``, and ``bound_statement`` (one sentence).
    """
    check_nonneg("w1", w1)
    check_nonneg("tau", tau)
    ltt = _logits("teacher_logits_on_teacher", teacher_logits_on_teacher)
    ls = _logits("student_logits", student_logits)
    lts = _logits("teacher_logits_on_student", teacher_logits_on_student)
    if lts.shape != ls.shape or ltt.shape[1] != ls.shape[1]:
        raise ValueError(f"logits must share K: teacher_logits_on_teacher {tuple(ltt.shape)}, student_logits "
                         f"{tuple(ls.shape)}, teacher_logits_on_student {tuple(lts.shape)}")
    K = ls.shape[1]
    yt = torch.as_tensor(as_labels("y_teacher", y_teacher, ltt.shape[0], K))
    ys = torch.as_tensor(as_labels("y_student", y_student, ls.shape[0], K))
    err_t = float(F.cross_entropy(ltt, yt))
    err_s = float(F.cross_entropy(ls, ys))
    la = float(label_alignment_loss(ls, lts, ys))
    fa = float(tau) * float(w1)
    total = err_t + fa + la
    holds = bool(err_s <= total + 1e-12)
    if holds:
        sentence = (f"The estimated bound holds: err_S = {err_s:.4g} <= err_T + FA + LA_e = {err_t:.4g} + "
                    f"{fa:.4g} + {la:.4g} = {total:.4g}.")
    else:
        sentence = (f"The estimated bound does NOT hold: err_S = {err_s:.4g} > err_T + FA + LA_e = {err_t:.4g} + "
                    f"{fa:.4g} + {la:.4g} = {total:.4g} (tau is a sampled lower estimate and kappa a plug-in, "
                    "so the estimate can fall below err_S).")
    return {
        "bound_err_t": err_t,
        "bound_w1": float(w1),
        "bound_tau": float(tau),
        "bound_fa": fa,
        "bound_la": la,
        "bound_sum": total,
        "bound_err_s": err_s,
        "bound_transfer": err_s - la,
        "bound_slack": total - err_s,
        "bound_holds": holds,
        "bound_err_t01": float((ltt.argmax(1) != yt).double().mean()),
        "bound_err_s01": float((ls.argmax(1) != ys).double().mean()),
        "bound_statement": sentence,
    }
