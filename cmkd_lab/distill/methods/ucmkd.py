"""``ucmkd``: the paper's Algorithm 1 (bilevel, first-order MAML style).

Per batch:

1. temporary parameters φ̃ ← φ (no copy of the module: the temporaries are
   tensors fed to ``torch.func.functional_call``; first-order they alias φ's
   storage until the first update);
2. ``n1`` inner steps on the encoder: φ̃_enc ← φ̃_enc − η·λ1·∇ ℓ_FA;
3. ``n2`` inner steps on encoder and head: φ̃ ← φ̃ − η·λ2·∇ ℓ_LA;
4. outer step: the gradient of the student's cross-entropy **at φ̃** is
   applied to φ by the trainer's optimiser.

``inner_optimizer="adamw"`` reproduces the public code's fresh AdamW per batch
(its state starts at zero every batch) without creating an optimiser object.
``first_order=False`` keeps the inner graph (full second-order MAML).
``inner_lambdas=False`` drops λ1, λ2 from the inner steps (the public code).

Cost and what is shared (exact, ``inner_scope="full"``): with n1 = n2 = 1 the
algorithm needs a forward+backward at φ (FA), one at φ̃1 (LA) and one at φ̃2
(outer CE), against one for ``ce``. When the LA step cannot move the encoder
(``la_detach_features=True``, the public code's choice) φ̃2's encoder is φ̃1's,
so one forward at φ̃1 serves every LA step and the outer CE: two encoder
forward+backward passes in all. Nothing in the step reads a value back from a
GPU (the OT solver picks its form without a host synchronisation).

``inner_scope="last-layer"`` is an **approximation** (off by default), in the
spirit of ANIL (Raghu et al., "Rapid Learning or Feature Reuse?", ICLR 2020):
the inner steps adapt only the encoder's final ``nn.Linear`` and the head,
while the backbone below that layer keeps φ. The backbone then runs once per
batch: its output h (detached) feeds the inner steps, and the outer CE at the
adapted last layer and head back-propagates through h into the backbone. One
encoder forward+backward per batch, like ``fa`` (plus, with unlabelled student
data, one forward without a graph over the unlabelled batch). It needs an encoder whose
output is produced by a final ``nn.Linear`` (the MLP, 1-D and 2-D CNN
encoders, ``ResNet18Encoder`` with ``feature_dim != 8·width``).

Under ``torchrun`` the inner steps are local to each rank (its slice of the
batch, no communication) and the outer gradients are averaged over ranks in
``trainer.clip_gradients()`` (see ``distill/distributed.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..._validation import Bool, Choice, Float, Int, opt
from .base import Batch, Method, register_method
from .la import la_term
from .options import MethodOptions


@dataclass
class UCMKDOptions(MethodOptions):
    """The bilevel step's options, named without a prefix (``n1``, ``inner_lr`` ...)."""

    prefix = ""
    n1: int = opt(1, Int(min=0, max=1000), "inner FA steps (paper: 1)")
    n2: int = opt(1, Int(min=0, max=1000), "inner LA steps (paper: 1)")
    inner_optimizer: str = opt("sgd", Choice(choices=("sgd", "adamw")),
                               "inner optimiser; adamw: a fresh AdamW state per batch, as the public code")
    inner_lr: float = opt(1e-3, Float(gt=0), "η, the inner step size (paper: AdamW 1e-5)")
    inner_weight_decay: float = opt(0.0, Float(ge=0), "inner weight decay (paper: 0.05 with adamw)")
    inner_lambdas: bool = opt(True, Bool(), "scale the inner steps by λ1, λ2 (the public code does not)")
    first_order: bool = opt(True, Bool(), "first-order MAML-style outer gradient (false: full second order)")
    inner_scope: str = opt("full", Choice(choices=("full", "last-layer")),
                           "full: Algorithm 1; last-layer: an approximation, the inner steps adapt only the "
                           "encoder's last linear layer and the head")


class _InnerAdamW:
    """Functional AdamW over a dict of tensors, state fresh per batch."""

    def __init__(self, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
        self.lr, self.wd, self.b1, self.b2, self.eps = lr, weight_decay, betas[0], betas[1], eps
        self.m, self.v, self.t = {}, {}, {}

    def update(self, name, p, g):
        t = self.t.get(name, 0) + 1
        self.t[name] = t
        m = self.b1 * self.m.get(name, torch.zeros_like(g)) + (1 - self.b1) * g
        v = self.b2 * self.v.get(name, torch.zeros_like(g)) + (1 - self.b2) * g * g
        self.m[name], self.v[name] = m, v
        mh, vh = m / (1 - self.b1 ** t), v / (1 - self.b2 ** t)
        return p * (1 - self.lr * self.wd) - self.lr * mh / (vh.sqrt() + self.eps)


class _Temporaries:
    """The temporary parameters φ̃ and their inner updates (SGD or fresh AdamW)."""

    def __init__(self, opts: UCMKDOptions, params: Dict[str, torch.Tensor], names: List[str]):
        self.lr, self.fo = opts.inner_lr, opts.first_order
        self.tmp = {n: (params[n].detach().requires_grad_() if self.fo else params[n]) for n in names}
        self.opt = _InnerAdamW(opts.inner_lr, opts.inner_weight_decay) if opts.inner_optimizer == "adamw" else None

    def __getitem__(self, name):
        return self.tmp[name]

    def update(self, names: List[str], loss: torch.Tensor, scale: float) -> None:
        tmp = self.tmp
        grads = torch.autograd.grad(scale * loss, [tmp[n] for n in names], create_graph=not self.fo,
                                    allow_unused=True)
        for n, g in zip(names, grads):
            if g is None:
                continue
            new = self.opt.update(n, tmp[n], g) if self.opt is not None else tmp[n] - self.lr * g
            tmp[n] = new.detach().requires_grad_() if self.fo else new


def _apply(module: nn.Module, params: Dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``module`` with ``params`` in place of its own; a plain ``nn.Linear`` skips the
    re-parametrisation machinery of ``functional_call`` (a large share of a small model's step)."""
    if type(module) is nn.Linear:
        return F.linear(x, params["weight"], params.get("bias"))
    return functional_call(module, params, (x,))


def _last_linear(encoder: nn.Module):
    """(name, module) of the encoder's last ``nn.Linear`` in registration order, or None."""
    found = None
    for name, m in encoder.named_modules():
        if isinstance(m, nn.Linear):
            found = (name, m)
    return found


@register_method("ucmkd")
class UCMKD(Method):
    uses_unlabelled = True
    description = "UCMKD bilevel: n1 inner OT steps, n2 inner LA steps, outer CE at the adapted parameters"
    terms = {**Method.terms, "fa": "inner OT(student, teacher features)", "la": "inner label alignment LA_e"}
    records = {"inner_shift": "how far the inner steps move the parameters"}
    options = UCMKDOptions
    knobs, knobs_up = ("inner_lr", "lambda_fa", "lambda_la"), ("eps",)

    def __init__(self, trainer):
        super().__init__(trainer)
        self.names = [n for n, p in self.student.named_parameters() if p.requires_grad]
        self.enc_names = [n for n in self.names if n.startswith("encoder.")]
        self.head_names = [n for n in self.names if n.startswith("head.")]
        self.last: Optional[nn.Module] = None
        if self.opts.inner_scope == "last-layer":
            found = _last_linear(self.student.encoder)
            if found is None:
                raise ValueError(
                    "inner_scope='last-layer' needs an encoder whose output comes from a final nn.Linear; "
                    f"{type(self.student.encoder).__name__} has none (ResNet18Encoder has one when feature_dim "
                    "!= 8*width): use inner_scope='full'")
            prefix = f"encoder.{found[0]}." if found[0] else "encoder."
            self.last = found[1]
            self.last_names = {n[len(prefix):]: n for n in self.names if n.startswith(prefix)}
            self.backbone_names = [n for n in self.enc_names if n not in self.last_names.values()]

    # ------------------------------------------------------------ helpers
    def _features(self, params, buffers, x):
        enc = lambda d: {k[len("encoder."):]: v for k, v in d.items() if k.startswith("encoder.")}  # noqa: E731
        return functional_call(self.student.encoder, (enc(params), enc(buffers)), (x,))  # (B, D)

    def _head(self, tmp, z):
        return _apply(self.student.head, {n[5:]: tmp[n] for n in self.head_names}, z)  # (B, K)

    def _scales(self):
        c, scaled = self.cfg, self.opts.inner_lambdas
        return (c.lambda_fa if scaled else 1.0), (c.lambda_la if scaled else 1.0)

    def audit_terms(self, b: Batch) -> Dict[str, torch.Tensor]:
        """At φ: the inner steps' terms (OT, LA) and the cross-entropy — the directions of the first inner
        FA step, of an inner LA step, and of the outer step when the inner steps do not move φ."""
        z = self.student.features(b.x_s)  # (B, D)
        return {"ce": self.ce(self.student.head(z), b.y_s), "fa": self.align_ot(z, b),
                "la": la_term(self.cfg, self.student.head, self.teacher.head, z, b.y_s)}

    def step(self, b: Batch) -> Dict[str, torch.Tensor]:
        if self.last is not None:
            return self._step_last_layer(b)
        c = self.cfg
        params = dict(self.student.named_parameters())
        buffers = dict(self.student.named_buffers())
        inner_buffers = {k: v.clone() for k, v in buffers.items()}  # inner passes leave running stats alone
        tmp = _Temporaries(self.opts, params, self.names)
        tmp_all = tmp.tmp  # live dict: functional_call reads the current temporaries
        l1, l2 = self._scales()
        share = c.la_detach_features  # LA steps cannot move the encoder: one forward at φ̃1 serves LA and CE

        fa = la = None
        with self.autocast(b.x_s.device.type):
            for _ in range(self.opts.n1):
                z = self._features(tmp_all, inner_buffers, b.x_s)  # (B, D)
                fa_k = self.align_ot(z, b, lambda x: self._features(tmp_all, inner_buffers, x))
                fa = fa_k.detach() if fa is None else fa
                tmp.update(self.enc_names, fa_k, l1)
            z_out = self._features(tmp_all, buffers, b.x_s) if share else None  # running stats updated once
            for _ in range(self.opts.n2):
                z = z_out if share else self._features(tmp_all, inner_buffers, b.x_s)
                la_k = la_term(c, lambda h: self._head(tmp_all, h), self.teacher.head, z, b.y_s)
                la = la_k.detach() if la is None else la
                tmp.update(self.head_names if share else self.names, la_k, l2)
            # Outer: cross-entropy at the adapted parameters.
            if z_out is None:
                z_out = self._features(tmp_all, buffers, b.x_s)
            ce = self.ce(self._head(tmp_all, z_out), b.y_s)
        return self._outer(ce, params, tmp, self.names, {n: tmp[n] for n in self.names}, fa, la)

    def _step_last_layer(self, b: Batch) -> Dict[str, torch.Tensor]:
        c = self.cfg
        params = dict(self.student.named_parameters())
        inner = list(self.last_names.values()) + self.head_names
        tmp = _Temporaries(self.opts, params, inner)
        l1, l2 = self._scales()
        seen = {}
        hook = self.last.register_forward_hook(lambda m, i, o: seen.update(h=i[0], z=o))
        try:
            with self.autocast(b.x_s.device.type):
                z_phi = self.student.encoder(b.x_s)  # (B, D): backbone once, graph kept for the outer step
        finally:
            hook.remove()
        if seen.get("z") is not z_phi:
            raise ValueError(
                f"inner_scope='last-layer': the output of {type(self.student.encoder).__name__} is not produced by "
                "its last nn.Linear, so the backbone cannot be run once; use inner_scope='full'")
        h = seen["h"]  # (B, H): the final layer's input
        hu = None
        if b.x_u is not None:
            # Unlabelled inputs: the backbone once, without a graph (inner steps adapt the last layer), on
            # copies of the buffers so that, as in the full scope, they leave BatchNorm's running stats alone.
            buffers = {k: v.clone() for k, v in self.student.named_buffers()}
            hook = self.last.register_forward_hook(lambda m, i, o: seen.update(hu=i[0]))
            try:
                with torch.no_grad(), self.autocast(b.x_s.device.type):
                    self._features(params, buffers, b.x_u)
            finally:
                hook.remove()
            hu = seen["hu"]  # (U, H)

        def last(x):
            return _apply(self.last, {k: tmp[n] for k, n in self.last_names.items()}, x)  # (B, D)

        fa = la = None
        with self.autocast(b.x_s.device.type):
            hd = h.detach()  # inner steps adapt the last layer and head only
            for _ in range(self.opts.n1):
                fa_k = self.align_ot(last(hd), b, None if hu is None else (lambda _x: last(hu)))
                fa = fa_k.detach() if fa is None else fa
                tmp.update(list(self.last_names.values()), fa_k, l1)
            for _ in range(self.opts.n2):
                la_k = la_term(c, lambda zz: self._head(tmp, zz), self.teacher.head, last(hd), b.y_s)
                la = la_k.detach() if la is None else la
                tmp.update(inner, la_k, l2)
            ce = self.ce(self._head(tmp, last(h)), b.y_s)
        targets = {n: params[n] for n in self.backbone_names}
        targets.update({n: tmp[n] for n in inner})
        return self._outer(ce, params, tmp, self.names, targets, fa, la)

    def _outer(self, ce, params, tmp, names, targets, fa, la) -> Dict[str, torch.Tensor]:
        # First-order: the gradient at the temporaries is written onto φ's .grad.
        opt_outer = self.trainer.optimizer
        opt_outer.zero_grad(set_to_none=True)
        if self.opts.first_order:
            grads = torch.autograd.grad(ce, [targets[n] for n in names], allow_unused=True)
            for n, g in zip(names, grads):
                params[n].grad = None if g is None else g.detach()
        else:
            ce.backward()
        with torch.no_grad():  # ‖φ̃ − φ‖ over the adapted tensors, a few fused ops
            moved = list(tmp.tmp)
            diffs = torch._foreach_sub([tmp[n].detach() for n in moved], [params[n].detach() for n in moved])
            shift = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(diffs)))
        self.trainer.clip_gradients()
        opt_outer.step()
        out = {"loss": ce.detach(), "ce": ce.detach(), "inner_shift": shift}
        if fa is not None:
            out["fa"] = fa
        if la is not None:
            out["la"] = la
        return out
