"""ot_cost against closed forms and POT's solvers."""
import numpy as np
import ot
import pytest
import torch

from cmkd_lab.align import COSTS, SinkhornConvergenceWarning, cost_matrix, ot_cost


def _u(n):
    return torch.full((n,), 1.0 / n, dtype=torch.float64)


@pytest.mark.parametrize("cost", COSTS)
def test_equals_pot_sinkhorn2_every_cost(cost):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    y = torch.randn(50, 6, generator=g, dtype=torch.float64) + 0.3
    M = cost_matrix(x, y, cost)
    for eps in (0.05, 0.5):
        ref = ot.sinkhorn2(_u(40), _u(50), M, reg=eps, numItermax=200, stopThr=0)
        val = ot_cost(x, y, cost=cost, eps=eps, max_iter=200, warn=False)
        assert float(abs(val - ref) / abs(ref)) < 1e-6


def test_cost_matrices_match_pot_dist():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.randn(9, 5, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(cost_matrix(x, y, "l2"), ot.dist(x.numpy(), y.numpy(), metric="euclidean"), atol=1e-10)
    np.testing.assert_allclose(cost_matrix(x, y, "sqeuclidean"), ot.dist(x.numpy(), y.numpy()), atol=1e-10)
    np.testing.assert_allclose(cost_matrix(x, y, "l1"), ot.dist(x.numpy(), y.numpy(), metric="cityblock"), atol=1e-10)
    np.testing.assert_allclose(cost_matrix(x, y, "cosine"), ot.dist(x.numpy(), y.numpy(), metric="cosine"), atol=1e-10)
    xn, yn = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    np.testing.assert_allclose(cost_matrix(x, y, "chordal"), torch.cdist(xn, yn), atol=1e-10)


def test_gradients_equal_pot_gradients():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(30, 4, generator=g, dtype=torch.float64)
    y = torch.randn(25, 4, generator=g, dtype=torch.float64)
    # envelope gradient == POT's ot.solve(grad="envelope") (plan held fixed)
    x1 = x.clone().requires_grad_()
    ot_cost(x1, y, eps=0.2, max_iter=300, warn=False).backward()
    x2 = x.clone().requires_grad_()
    ot.solve(cost_matrix(x2, y, "l2"), _u(30), _u(25), reg=0.2, max_iter=300, tol=0, grad="envelope").value.backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-6, atol=1e-12)
    # autodiff gradient == POT's sinkhorn2 (back-propagation through the iterations)
    x3 = x.clone().requires_grad_()
    ot_cost(x3, y, eps=0.2, max_iter=300, warn=False, grad="autodiff").backward()
    x4 = x.clone().requires_grad_()
    ot.sinkhorn2(_u(30), _u(25), cost_matrix(x4, y, "l2"), reg=0.2, numItermax=300, stopThr=0).backward()
    torch.testing.assert_close(x3.grad, x4.grad, rtol=1e-6, atol=1e-12)


def test_cloud_with_itself_is_entropic_minimum():
    # Identical clouds: as eps -> 0 the plan is the identity and the cost 0.
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    val = ot_cost(x, x, cost="sqeuclidean", eps=1e-3, max_iter=2000, warn=False)
    assert float(val) < 1e-6
    # And at moderate eps it equals POT's entropic value.
    M = cost_matrix(x, x, "sqeuclidean")
    ref = ot.sinkhorn2(_u(32), _u(32), M, reg=1.0, numItermax=500, stopThr=0)
    assert float(abs(ot_cost(x, x, cost="sqeuclidean", eps=1.0, max_iter=500, warn=False) - ref)) < 1e-8


def test_permutation_recovered_as_eps_to_zero():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(20, 3, generator=g, dtype=torch.float64)
    perm = torch.randperm(20, generator=g)
    y = x[perm] + 0.01 * torch.randn(20, 3, generator=g, dtype=torch.float64)
    exact = ot.emd2(_u(20).numpy(), _u(20).numpy(), cost_matrix(x, y, "l2").numpy())
    val, plan = ot_cost(x, y, eps=1e-3, max_iter=3000, warn=False, return_plan=True)
    assert abs(float(val) - exact) < 1e-3
    # The plan is (1/n) times the permutation matrix.
    assert torch.equal(plan.argmax(1), torch.argsort(perm))
    assert float(plan.max(1).values.min()) > 0.9 / 20


def test_finite_at_small_eps_and_large_costs():
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(16, 4, generator=g) * 300).requires_grad_()
    y = torch.randn(16, 4, generator=g) * 300 + 500  # costs ~ 1e3
    with pytest.warns(SinkhornConvergenceWarning):
        val = ot_cost(x, y, eps=1e-3, max_iter=50)
    val.backward()
    assert torch.isfinite(val) and torch.isfinite(x.grad).all()
    for eps in (1e-3, 1e-2, 1.0, 10.0):
        v = ot_cost(x.detach() * 10, y * 10, eps=eps, max_iter=100, warn=False)  # costs ~1e4
        assert torch.isfinite(v)


def test_weights_are_used():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0]], dtype=torch.float64).repeat(2, 1)
    a = torch.tensor([0.75, 0.25], dtype=torch.float64)
    # All mass goes to y=0: the cost is the weighted mean distance = 0.25.
    assert abs(float(ot_cost(x, y, a=a, eps=0.01, max_iter=200, warn=False)) - 0.25) < 1e-9


@pytest.mark.parametrize("kwargs,match", [
    (dict(z_s=torch.randn(4, 3), z_t=torch.randn(4, 5)), "share dimension D"),
    (dict(z_s=torch.randn(1, 3), z_t=torch.randn(4, 3)), "at least 2 samples"),
    (dict(z_s=torch.randn(4, 3), z_t=torch.randn(4, 3), eps=0.0), "eps must be > 0; got eps=0.0"),
    (dict(z_s=torch.randn(4, 3), z_t=torch.randn(4, 3), eps=-1.0), "eps must be > 0; got eps=-1.0"),
    (dict(z_s=torch.randn(4, 3), z_t=torch.randn(4, 3), cost="l3"), "cost must be one of"),
    (dict(z_s=torch.full((4, 3), float("nan")), z_t=torch.randn(4, 3)), "NaN or inf"),
    (dict(z_s=torch.randn(4), z_t=torch.randn(4, 3)), r"shape \(n, D\)"),
])
def test_bad_inputs(kwargs, match):
    z_s, z_t = kwargs.pop("z_s"), kwargs.pop("z_t")
    with pytest.raises((ValueError, TypeError), match=match):
        ot_cost(z_s, z_t, **kwargs)
