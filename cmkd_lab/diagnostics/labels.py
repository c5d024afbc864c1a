"""Label distributions: which class each head predicts on which features.

The question behind LA (docs/theory.md): does the frozen teacher head, applied to
the *student's* features, still read the right class? κ̂_i = p_T(y_i | z_i)
is its probability of the true class there (the plug-in of the paper's κ).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_int
from ._common import as_labels

__all__ = ["confusion_matrix", "predicted_distribution", "kappa_hat", "label_diagnostics"]


def _logits(name: str, logits) -> torch.Tensor:
    t = torch.as_tensor(logits.detach().cpu() if isinstance(logits, torch.Tensor) else np.asarray(logits))
    if t.ndim != 2 or t.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, K) with K >= 2 classes; got {tuple(t.shape)}")
    if not t.dtype.is_floating_point:
        t = t.double()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; check the model's outputs")
    return t.double()


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts C[k, l] = #{i : y_true = k, y_pred = l}, shape (K, K)."""
    check_int("num_classes", num_classes, minimum=2)
    yt = as_labels("y_true", y_true, len(y_true), num_classes)
    yp = as_labels("y_pred", y_pred, yt.shape[0], num_classes)
    return np.bincount(yt * num_classes + yp, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def predicted_distribution(logits, y, num_classes: Optional[int] = None) -> np.ndarray:
    """Mean predicted class distribution per true class, shape (K, K).

    Row k is the average of softmax(logits_i) over samples with y_i = k (a row
    of zeros where class k is absent).
    """
    t = _logits("logits", logits)
    K = num_classes or t.shape[1]
    yy = as_labels("y", y, t.shape[0], K)
    p = torch.softmax(t, 1).numpy()  # (N, K)
    out = np.zeros((K, t.shape[1]))
    for k in range(K):
        sel = yy == k
        if sel.any():
            out[k] = p[sel].mean(0)
    return out


def kappa_hat(teacher_logits_on_student, y) -> np.ndarray:
    """κ̂_i = p_T(y_i | z_i): the teacher head's probability of the true class
    on the student's features, shape (N,)."""
    t = _logits("teacher_logits_on_student", teacher_logits_on_student)
    yy = as_labels("y", y, t.shape[0], t.shape[1])
    return torch.softmax(t, 1)[torch.arange(t.shape[0]), torch.as_tensor(yy)].numpy()


def label_diagnostics(*, teacher_logits_on_student, student_logits, y_student, teacher_logits_on_teacher,
                      y_teacher) -> dict:
    """Confusion matrices, per-class predicted distributions and κ̂ statistics.

    Parameters
    ----------
    teacher_logits_on_student : (N, K) frozen teacher head on student features
    student_logits : (N, K) student head on student features
    y_student : (N,)
    teacher_logits_on_teacher : (M, K) teacher head on teacher features
    y_teacher : (M,)

    Returns
    -------
    dict
        ``scalars`` (flat floats: ``teacher_head_on_student_acc_ref``,
        ``student_acc_ref``, ``teacher_acc_ref``, ``kappa_mean``,
        ``kappa_median``, ``kappa_min_class``, ``label_tv_teacher_vs_student``,
        ``label_prior_tv`` — the total variation between the two sides' class
        priors, a lower bound on the mass any transport plan between them moves
        across classes)
        and ``artefacts`` (matrices as ndarrays).
    """
    lts = _logits("teacher_logits_on_student", teacher_logits_on_student)
    ls = _logits("student_logits", student_logits)
    ltt = _logits("teacher_logits_on_teacher", teacher_logits_on_teacher)
    K = ls.shape[1]
    if lts.shape != ls.shape or ltt.shape[1] != K:
        raise ValueError(f"logits must share K: teacher_logits_on_student {tuple(lts.shape)}, student_logits "
                         f"{tuple(ls.shape)}, teacher_logits_on_teacher {tuple(ltt.shape)}")
    ys = as_labels("y_student", y_student, ls.shape[0], K)
    yt = as_labels("y_teacher", y_teacher, ltt.shape[0], K)
    pred_ts, pred_s, pred_tt = lts.argmax(1).numpy(), ls.argmax(1).numpy(), ltt.argmax(1).numpy()
    kap = kappa_hat(lts, ys)  # (N,)
    kap_class = np.array([kap[ys == k].mean() if np.any(ys == k) else np.nan for k in range(K)])
    prior_s = np.bincount(ys, minlength=K) / ys.size
    prior_t = np.bincount(yt, minlength=K) / yt.size
    pd_ts = predicted_distribution(lts, ys, K)
    pd_s = predicted_distribution(ls, ys, K)
    pd_tt = predicted_distribution(ltt, yt, K)
    # Marginal predicted-label distributions on each side, and how far apart they are.
    marg_ts = torch.softmax(lts, 1).mean(0).numpy()
    marg_tt = torch.softmax(ltt, 1).mean(0).numpy()
    scalars = {
        "teacher_head_on_student_acc_ref": float((pred_ts == ys).mean()),
        "student_acc_ref": float((pred_s == ys).mean()),
        "teacher_acc_ref": float((pred_tt == yt).mean()),
        "kappa_mean": float(kap.mean()),
        "kappa_median": float(np.median(kap)),
        "kappa_min_class": float(np.nanmin(kap_class)),
        "label_tv_teacher_vs_student": float(0.5 * np.abs(marg_ts - marg_tt).sum()),
        # The class priors' total variation: a plan with uniform marginals over these samples must carry at
        # least this much mass between different classes (purity <= 1 - label_prior_tv) whatever the features;
        # the entropic plan's marginals are uniform only up to its marginal error.
        "label_prior_tv": float(0.5 * np.abs(prior_s - prior_t).sum()),
        "teacher_head_on_student_ce": float(F.cross_entropy(lts, torch.as_tensor(ys))),
    }
    artefacts = {
        "conf_teacher_head_on_student": confusion_matrix(ys, pred_ts, K),
        "conf_student": confusion_matrix(ys, pred_s, K),
        "conf_teacher": confusion_matrix(yt, pred_tt, K),
        "pred_dist_teacher": pd_tt,
        "pred_dist_teacher_on_student": pd_ts,
        "pred_dist_student": pd_s,
        "kappa_per_class": kap_class,
        "kappa_hist": np.histogram(kap, bins=10, range=(0.0, 1.0))[0],
        "prior_student": prior_s,
        "prior_teacher": prior_t,
    }
    return {"scalars": scalars, "artefacts": artefacts}
