"""Label alignment and MMD: closed forms and invariants."""
import math

import pytest
import torch
import torch.nn.functional as F

from cmkd_lab.align import label_alignment_loss, mmd


def test_la_reduces_to_ce_when_kappa_zero():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    y = torch.randint(0, 4, (8,), generator=g)
    assert torch.allclose(label_alignment_loss(s, t, y, kappa=0.0), F.cross_entropy(s, y))


def test_la_hand_computed():
    # One sample, K=2: p_S(y)=0.5 (equal logits), p_T(y)=sigmoid(1)=e/(1+e).
    s = torch.zeros(1, 2)
    t = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([0])
    pt = math.e / (1 + math.e)
    expected = -math.log(0.5) + pt * math.log(pt)
    assert abs(float(label_alignment_loss(s, t, y)) - expected) < 1e-6


def test_la_teacher_grad_modes():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 3, generator=g, requires_grad=True)
    Ws, Wt = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    y = torch.randint(0, 4, (6,), generator=g)

    def grad(mode):
        z.grad = None
        label_alignment_loss(z @ Ws, z @ Wt, y, teacher_grad=mode).backward()
        return z.grad.clone()

    g_none, g_written, g_align = grad("none"), grad("as-written"), grad("align")
    z.grad = None
    F.cross_entropy(z @ Ws, y, reduction="mean").backward()
    assert torch.allclose(g_none, z.grad, atol=1e-6)  # "none": a pure CE gradient
    # "as-written": the extra gradient is +κ ∇log p_T, whose descent direction
    # lowers p_T(y|z); "align" adds -∇log p_T, which raises it.
    logpt = lambda zz: F.log_softmax(zz @ Wt, 1).gather(1, y[:, None]).sum()  # noqa: E731
    zz = z.detach().clone().requires_grad_()
    logpt(zz).backward()
    d_written = (g_written - g_none)
    d_align = (g_align - g_none)
    assert float((d_written * zz.grad).sum()) > 0   # descent (-grad) decreases log p_T
    assert float((d_align * zz.grad).sum()) < 0     # descent increases log p_T


def test_la_finite_when_teacher_prob_zero():
    s = torch.zeros(2, 3, requires_grad=True)
    t = torch.tensor([[-1e30, 0.0, 0.0], [0.0, -float("inf"), 0.0]], requires_grad=True)
    y = torch.tensor([0, 1])
    for mode in ("none", "as-written", "align"):
        v = label_alignment_loss(s, t, y, teacher_grad=mode)
        v.backward()
        assert torch.isfinite(v) and torch.isfinite(s.grad).all()


def test_la_bad_inputs():
    with pytest.raises(ValueError, match="same|shape"):
        label_alignment_loss(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="teacher_grad must be one of"):
        label_alignment_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1]), teacher_grad="x")


def test_mmd_identical_and_shifted():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 4, generator=g)
    x2 = torch.randn(300, 4, generator=g)
    y = torch.randn(300, 4, generator=g) + 1.0
    assert abs(float(mmd(x, x2))) < 0.01
    assert float(mmd(x, y)) > 0.1
    assert float(mmd(x, x, estimator="biased")) < 1e-6
    assert float(mmd(x, y, estimator="biased")) >= float(mmd(x, x2, estimator="biased"))


def test_mmd_guards_zero_bandwidth():
    x = torch.zeros(10, 3)
    assert torch.isfinite(mmd(x, x + 0.0))
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        mmd(x, x, bandwidth=0.0)
