"""The gradient audit: what each loss term does to the student's parameters.

A loss term that never moves the parameters, or that pulls against the student's cross-entropy, explains
a transfer or its absence better than any accuracy. At an audited step, before the optimiser moves
anything, the audit takes each loss term a method returns (:meth:`Method.audit_terms`, raw, before its
weight), computes its gradient with respect to the student's encoder and head, and records

* ``grad_enc_<term>``, ``grad_head_<term>``: the L2 norm of that gradient on the encoder's and on the
  head's parameters;
* ``cos_ce_<term>``: the cosine between that gradient and the cross-entropy's (``ce``) over all the
  student's parameters — 1: the term pushes where cross-entropy pushes, 0: elsewhere, negative: against
  it. Absent when either gradient is zero (a cosine is not defined there).

A term computed without gradient (e.g. the label-alignment teacher term with
``la_teacher_grad="none"``, the choice of the paper's public code) shows a zero norm. The audit leaves no
trace on training: random states, BatchNorm statistics and the method's own state are restored after it
(:meth:`cmkd_lab.distill.Trainer` runs it), so a run with the audit is the same run as without it.
"""
from __future__ import annotations

import math
from typing import Dict, List

import torch

from ..keys import declare

__all__ = ["audit_gradients", "audit_keys", "declare_audit_keys"]


def audit_keys(term: str) -> List[str]:
    """The history keys the audit records for ``term``."""
    return [f"grad_enc_{term}", f"grad_head_{term}", f"cos_ce_{term}"]


def declare_audit_keys(source: str, terms: Dict[str, str]) -> None:
    """Declare the audit's keys for a method's loss terms (``terms``: name → label)."""
    for t, label in terms.items():
        enc, head, cos = audit_keys(t)
        declare(source, "audit", {enc: f"|∇ {label}| on the encoder", head: f"|∇ {label}| on the head",
                                  **({} if t == "ce" else {cos: f"cos(∇ {label}, ∇ CE)"})})


def _flat(grads, params) -> torch.Tensor:
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1).float() for g, p in zip(grads, params)])


def audit_gradients(method, batch) -> Dict[str, float]:
    """Gradient norms (encoder, head) of each of ``method``'s loss terms on ``batch`` and their cosine with
    the cross-entropy's gradient, at the student's current parameters; nothing is updated.

    Parameters
    ----------
    method : Method
        A method bound to a trainer (its ``student`` and :meth:`audit_terms`).
    batch : Batch

    Returns
    -------
    dict
        ``grad_enc_<t>``, ``grad_head_<t>`` for every term t, ``cos_ce_<t>`` where defined.
    """
    named = [(n, p) for n, p in method.student.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    is_enc = torch.tensor([n.startswith("encoder.") for n, p in named for _ in range(p.numel())])
    with method.autocast(batch.y_s.device.type):
        terms = method.audit_terms(batch)
    flat = {}
    for k, v in terms.items():
        if not isinstance(v, torch.Tensor) or v.ndim != 0:
            continue
        if v.requires_grad:
            g = torch.autograd.grad(v.float(), params, retain_graph=True, allow_unused=True)
        else:
            g = [None] * len(params)
        flat[k] = _flat(g, params).cpu()
    out: Dict[str, float] = {}
    ce = flat.get("ce")
    for k, g in flat.items():
        enc, head, cos = audit_keys(k)
        out[enc] = float(g[is_enc].norm())
        out[head] = float(g[~is_enc].norm())
        if ce is not None and k != "ce":
            den = float(g.norm()) * float(ce.norm())
            if den > 0 and math.isfinite(den):
                out[cos] = float(torch.dot(g.double(), ce.double()) / den)
    return out
