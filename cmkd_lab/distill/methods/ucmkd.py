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
"""
from __future__ import annotations

from typing import Dict

import torch
from torch.func import functional_call

from .base import Batch, Method, register_method
from .la import la_term


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


@register_method("ucmkd")
class UCMKD(Method):
    description = "UCMKD bilevel: n1 inner OT steps, n2 inner LA steps, outer CE at the adapted parameters"

    def __init__(self, trainer):
        super().__init__(trainer)
        self.names = [n for n, p in self.student.named_parameters() if p.requires_grad]
        self.enc_names = [n for n in self.names if n.startswith("encoder.")]

    def _features(self, params, buffers, x):
        enc = lambda d: {k[len("encoder."):]: v for k, v in d.items() if k.startswith("encoder.")}  # noqa: E731
        return functional_call(self.student.encoder, (enc(params), enc(buffers)), (x,))  # (B, D)

    def _head(self, params, z):
        return functional_call(self.student.head, {k[5:]: v for k, v in params.items() if k.startswith("head.")}, (z,))

    def step(self, b: Batch) -> Dict[str, torch.Tensor]:
        c = self.cfg
        model = self.student
        params = dict(model.named_parameters())
        buffers = dict(model.named_buffers())
        inner_buffers = {k: v.clone() for k, v in buffers.items()}  # inner passes leave running stats alone
        fo = c.first_order
        tmp = {n: (params[n].detach().requires_grad_() if fo else params[n]) for n in self.names}
        opt = _InnerAdamW(c.inner_lr, c.inner_weight_decay) if c.inner_optimizer == "adamw" else None
        l1 = c.lambda_fa if c.inner_lambdas else 1.0
        l2 = c.lambda_la if c.inner_lambdas else 1.0

        def update(names, loss, scale):
            grads = torch.autograd.grad(scale * loss, [tmp[n] for n in names], create_graph=not fo,
                                        allow_unused=True)
            for n, g in zip(names, grads):
                if g is None:
                    continue
                if opt is not None:
                    new = opt.update(n, tmp[n], g)
                else:
                    new = tmp[n] - c.inner_lr * g
                tmp[n] = new.detach().requires_grad_() if fo else new

        fa = la = None
        with torch.autocast(device_type=b.x_s.device.type, dtype=torch.bfloat16, enabled=self.trainer.amp):
            for _ in range(c.n1):
                z = self._features(tmp, inner_buffers, b.x_s)
                fa_k = self.ot(z, b.z_t)
                fa = fa_k.detach() if fa is None else fa
                update(self.enc_names, fa_k, l1)
            for _ in range(c.n2):
                z = self._features(tmp, inner_buffers, b.x_s)
                la_k = la_term(c, lambda h: self._head(tmp, h), self.teacher.head, z, b.y_s)
                la = la_k.detach() if la is None else la
                update(self.names, la_k, l2)
            # Outer: cross-entropy at the adapted parameters, running stats updated once.
            logits = self._head(tmp, self._features(tmp, buffers, b.x_s))
            ce = self.ce(logits.float(), b.y_s)

        opt_outer = self.trainer.optimizer
        opt_outer.zero_grad(set_to_none=True)
        if fo:
            grads = torch.autograd.grad(ce, [tmp[n] for n in self.names], allow_unused=True)
            for n, g in zip(self.names, grads):
                params[n].grad = None if g is None else g.detach()
        else:
            ce.backward()
        with torch.no_grad():
            shift = torch.sqrt(sum(((tmp[n].detach() - params[n].detach()) ** 2).sum() for n in self.names))
        self.trainer.clip_gradients()
        opt_outer.step()
        out = {"loss": ce.detach(), "ce": ce.detach(), "inner_shift": shift}
        if fa is not None:
            out["fa"] = fa
        if la is not None:
            out["la"] = la
        return out
