"""Method protocol and registry.

A method turns one :class:`Batch` into an optimiser step on the student and
returns its loss terms as a dict of detached scalar tensors (no host sync).
Register one with ``@register_method("name")``.

Speed options every method honours through this base class:

* ``config.amp`` (CUDA): the loss terms run under bf16 autocast; the OT term
  (:meth:`Method.ot`) is always computed in float32.
* ``config.compile``: ``"ot"`` runs the Sinkhorn loop compiled (fused
  kernels, cheap to compile); ``"all"`` also compiles the student's encoder
  and head in place (``nn.Module.compile``: state-dict keys unchanged).
* Under ``torchrun`` (``trainer.dist``) :meth:`Method.ot` can see the global
  batch (``config.ot_all_gather``); gradients are averaged across ranks in
  ``trainer.clip_gradients()``, which a method overriding :meth:`step` must
  call before its optimiser step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn

from ...keys import declare
from ..audit import declare_audit_keys

__all__ = ["Batch", "Method", "register_method", "get_method", "available_methods", "METHODS"]

METHODS: Dict[str, Type["Method"]] = {}


@dataclass
class Batch:
    """One training step's data (all on the trainer's device).

    Attributes
    ----------
    x_s, y_s : (B, ...) and (B,) tensors
        Student inputs and labels.
    z_t, y_t : (B, D) and (B,) tensors
        Teacher features from the frozen bank and their labels.
    idx_s, idx_t : (B,) tensors
        Indices into the student train split and the bank.
    x_u : (U, ...) tensor or None
        Unlabelled student inputs (``config.student_unlabelled``).
    z_tu : (U, D) tensor or None
        Teacher features drawn (unpaired) for them.
    zp_u : (U, D) tensor or None
        Teacher features of the *paired* teacher view of each unlabelled sample, only for the methods that
        declare ``needs_unlabelled_pairs`` (the paired ceiling).
    """

    x_s: torch.Tensor
    y_s: torch.Tensor
    z_t: torch.Tensor
    y_t: torch.Tensor
    idx_s: torch.Tensor
    idx_t: torch.Tensor
    x_u: Optional[torch.Tensor] = None
    z_tu: Optional[torch.Tensor] = None
    zp_u: Optional[torch.Tensor] = None


def register_method(name: str):
    """Register a :class:`Method` subclass under ``name`` and declare the numbers it records
    (``terms``: loss terms; ``records``: other per-step measurements) in :mod:`cmkd_lab.keys`."""
    def deco(cls):
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        METHODS[name] = cls
        declare(f"method {name}", "loss", dict(cls.terms))
        declare_audit_keys(f"method {name}", dict(cls.terms))
        if cls.records:
            declare(f"method {name}", "diagnostic", dict(cls.records))
        return cls
    return deco


def available_methods() -> List[str]:
    return sorted(METHODS)


def get_method(name: str) -> Type["Method"]:
    if name not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, available_methods()))}; got method={name!r}")
    return METHODS[name]


class Method:
    """Base class. Subclasses implement :meth:`loss_terms` (single-level) or
    override :meth:`step` (bilevel).

    Class attributes
    ----------------
    needs_pairs : bool
        Needs a teacher sample tied to each student sample (``paired`` or
        ``class-matched``); refused under ``unpaired`` with the reason.
    uses_teacher_samples : bool
        Reads the teacher batch (``z_t``); methods that don't (``ce``,
        ``la``) behave the same under every pairing.
    uses_teacher : bool
        Reads the teacher at all (its features, its head or its labels); methods that don't (``ce``,
        ``entmin``) behave the same under every teacher control.
    uses_unlabelled : bool
        Its OT term also sees unlabelled student samples when the run has
        them (``config.student_unlabelled``, through :meth:`align_ot`); the
        others ignore them.
    needs_unlabelled : bool
        Cannot run without unlabelled student data (``entmin``); refused
        with the reason otherwise, skipped by ``bench`` and ``sweep``.
    needs_unlabelled_pairs : bool
        Reads the paired teacher view of each unlabelled student sample (``Batch.zp_u``: the paired
        ceiling); refused on tasks without pairs.
    description : str
        One line for ``python -m cmkd_lab methods``.
    terms : dict name -> label
        The loss terms :meth:`loss_terms` / :meth:`step` return (per-step scalars, averaged per epoch).
    records : dict name -> label
        Other per-step numbers it returns that are not losses (e.g. ``inner_shift``).
    options : MethodOptions subclass or None
        The method's own options (:mod:`.options`), given as ``<prefix><field>`` config options; the
        method reads them from ``self.opts`` (an instance, checked).
    knobs, knobs_up : tuple of str
        The options to lower (``knobs``) or raise (``knobs_up``) besides the learning rate when a run
        diverges (``fa``: ``("lambda_fa",)``, ``("eps",)``), for
        :func:`~cmkd_lab.distill.methods.options.divergence_advice`.
    """

    name = "base"
    terms: Dict[str, str] = {"loss": "total loss", "ce": "student cross-entropy"}
    records: Dict[str, str] = {}
    options = None
    knobs: Tuple[str, ...] = ()
    knobs_up: Tuple[str, ...] = ()
    needs_pairs = False
    uses_teacher_samples = True
    uses_teacher = True
    uses_unlabelled = False
    needs_unlabelled = False
    needs_unlabelled_pairs = False
    description = ""

    def __init__(self, trainer):
        self.trainer = trainer
        self.cfg = trainer.config
        self.student = trainer.student
        self.teacher = trainer.teacher
        self.opts = self.options.from_extra(self.cfg.extra) if self.options is not None else None
        if getattr(self.cfg, "compile", "none") == "all" and not getattr(self.student, "_cmkd_compiled", False):
            self.student.encoder.compile()
            self.student.head.compile()
            self.student._cmkd_compiled = True

    def autocast(self, device_type: str):
        """bf16 autocast when the trainer runs with mixed precision (``trainer.amp``), else a no-op."""
        return torch.autocast(device_type=device_type, dtype=torch.bfloat16,
                              enabled=bool(getattr(self.trainer, "amp", False)))

    # Extra trainable modules (e.g. a FitNet regressor), added to the optimiser.
    def extra_modules(self) -> List[nn.Module]:
        return []

    def loss_terms(self, batch: Batch) -> Dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def audit_terms(self, batch: Batch) -> Dict[str, torch.Tensor]:
        """The loss terms (with their graph, at the current parameters) that the gradient audit measures
        (:mod:`cmkd_lab.distill.audit`): by default the declared ``terms`` of :meth:`loss_terms`. A method
        that overrides :meth:`step` (bilevel) overrides this too."""
        return {k: v for k, v in self.loss_terms(batch).items() if k in self.terms}

    def ot(self, z_s, z_t, *, warn: bool = False):
        """Entropic OT between student features (B, D) and teacher features (B, D), in float32.

        Under ``torchrun`` with ``config.ot_all_gather`` both sides are
        all-gathered first, so the OT is the global batch's (gradient reaching
        this rank's rows scaled by the world size; see ``distill.distributed``).
        """
        from ...align import ot_cost
        c = self.cfg
        d = getattr(self.trainer, "dist", None)
        with torch.autocast(device_type=z_s.device.type, enabled=False):
            z_s, z_t = z_s.float(), z_t.float()
            if d is not None and getattr(c, "ot_all_gather", False):
                z_s, z_t = d.gather_rows(z_s), d.gather_rows(z_t.detach())  # (world·B, D)
            return ot_cost(z_s, z_t, cost=c.cost, eps=c.eps, max_iter=c.sinkhorn_iter, eps_units=c.eps_units,
                           warn=warn, solver=getattr(c, "ot_solver", "auto"),
                           compile=getattr(c, "compile", "none") in ("ot", "all"),
                           stop_thr=getattr(c, "ot_stop_thr", 0.0))

    def align_ot(self, z, b: Batch, features: Optional[Callable] = None):
        """The step's OT term: the labelled batch's student features ``z`` (B, D) against ``b.z_t``.

        With unlabelled student data (``b.x_u``) their features, computed by ``features`` (default the
        student's encoder; the bilevel method passes its temporaries), join the student side and the
        teacher features drawn for them (``b.z_tu``) the teacher side: OT between B + U points on each side.
        """
        if b.x_u is None:
            return self.ot(z, b.z_t)
        zu = (features or self.student.features)(b.x_u)  # (U, D)
        return self.ot(torch.cat([z, zu]), torch.cat([b.z_t, b.z_tu]))

    def step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        opt = self.trainer.optimizer
        opt.zero_grad(set_to_none=True)
        with self.autocast(batch.y_s.device.type):
            terms = self.loss_terms(batch)
        terms["loss"].backward()
        self.trainer.clip_gradients()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    @staticmethod
    def ce(logits, y):
        return F.cross_entropy(logits.float(), y)
