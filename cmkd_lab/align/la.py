"""Label alignment (the paper's LA term, its Eq. 15, empirical form).

    LA_e = -(1/n) Σ_i [ log p_S(y_i | z_i) - κ̂_i · log p_T(y_i | z_i) ]

with ``z_i`` the *student's* feature of sample i, ``p_T`` the frozen teacher
head applied to it, and the plug-in ``κ̂_i = p_T(y_i | z_i)`` (or a given κ).
As κ → 0 the loss is the student's own cross-entropy.

How gradient flows through the teacher term is a named choice
(``teacher_grad``), because it changes what the step does:

* ``"none"`` (default; the paper's public code): the teacher term carries no
  gradient, so the step is a cross-entropy step on the student.
* ``"as-written"``: κ̂ held fixed, the gradient of ``+κ̂ log p_T`` flows into
  the student features. Minimising it *lowers* the teacher head's probability
  of the true class on student features — the opposite of alignment.
* ``"align"``: the aligning variant: the student's cross-entropy plus the
  frozen teacher head's cross-entropy on student features, pulling them into
  the teacher's class regions. The returned value is that surrogate, not LA_e.
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F

from .._validation import check_choice

__all__ = ["label_alignment_loss", "TEACHER_GRAD_MODES"]

TEACHER_GRAD_MODES = ("none", "as-written", "align")
_LOG_FLOOR = -1e4  # keeps 0 · log 0 finite


def label_alignment_loss(
    student_logits: torch.Tensor,
    teacher_logits_on_student_features: torch.Tensor,
    y: torch.Tensor,
    *,
    kappa: Optional[Union[float, torch.Tensor]] = None,
    teacher_grad: str = "none",
    kappa_grad: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """Empirical label-alignment loss.

    Parameters
    ----------
    student_logits : Tensor (B, K)
        Student head on student features.
    teacher_logits_on_student_features : Tensor (B, K)
        Frozen teacher head on the same student features.
    y : Tensor (B,) int64
        True labels in 0..K-1.
    kappa : float or Tensor (B,), optional
        κ(y, z); default the plug-in κ̂ = p_T(y | z). ``0`` gives plain CE.
    teacher_grad : {"none", "as-written", "align"}
        See the module docstring.
    kappa_grad : bool
        Let gradient flow through the plug-in κ̂ (only with "as-written").
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor () or (B,)
    """
    check_choice("teacher_grad", teacher_grad, TEACHER_GRAD_MODES)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    s, t = student_logits, teacher_logits_on_student_features
    for name, v in (("student_logits", s), ("teacher_logits_on_student_features", t)):
        if not isinstance(v, torch.Tensor) or not v.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating-point torch.Tensor of shape (B, K); got "
                            f"{type(v).__name__} {getattr(v, 'dtype', '')}: convert with torch.as_tensor(a, dtype=torch.float32)")
    if not isinstance(y, torch.Tensor) or y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"y must be an integer torch.Tensor of class indices, shape (B,); got {type(y).__name__} "
                        f"{getattr(y, 'dtype', '')}: convert with torch.as_tensor(labels, dtype=torch.long)")
    if s.ndim != 2 or t.shape != s.shape:
        raise ValueError(
            "student_logits and teacher_logits_on_student_features must both have shape (B, K); "
            f"got {tuple(s.shape)} and {tuple(t.shape)}: teacher and student must share the class count K"
        )
    if y.ndim != 1 or y.shape[0] != s.shape[0]:
        raise ValueError(f"y must have shape ({s.shape[0]},); got {tuple(y.shape)}")
    if s.shape[0] == 0 or s.shape[1] < 1:
        raise ValueError(f"label alignment needs at least one sample and one class; got logits of shape {tuple(s.shape)}")
    if y.device.type == "cpu":  # range check without a host sync (GPU labels are checked where tasks are built)
        bad = y[(y < 0) | (y >= s.shape[1])]
        if bad.numel():
            raise ValueError(f"y must hold class indices in 0..{s.shape[1] - 1} (K={s.shape[1]} logits); got values "
                             f"{bad[:5].tolist()}: re-encode the labels as 0..K-1")
    y = y.long()
    logp_s = F.log_softmax(s, dim=1).gather(1, y[:, None]).squeeze(1)  # (B,)
    logp_t = F.log_softmax(t, dim=1).gather(1, y[:, None]).squeeze(1).clamp_min(_LOG_FLOOR)  # (B,)

    if teacher_grad == "align":
        per = -logp_s - logp_t
    else:
        if kappa is None:
            k = logp_t.exp()
            if not (kappa_grad and teacher_grad == "as-written"):
                k = k.detach()
        else:
            if isinstance(kappa, (int, float)) and (isinstance(kappa, bool) or not (0 <= kappa < float("inf"))):
                raise ValueError(f"kappa must be a finite number >= 0 (a density ratio); got kappa={kappa!r}")
            k = torch.as_tensor(kappa, dtype=logp_t.dtype, device=logp_t.device)
            if k.ndim == 0:
                k = k.expand_as(logp_t)
            elif k.shape != logp_t.shape:
                raise ValueError(f"kappa must be a scalar or have shape ({s.shape[0]},); got {tuple(k.shape)}")
        teacher_term = k * logp_t
        if teacher_grad == "none":
            teacher_term = teacher_term.detach()
        per = -logp_s + teacher_term
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    return per
