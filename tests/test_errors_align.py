"""Bad inputs to the alignment functions, and their numerics at the edges.

Every bad input names the parameter, the rule and the value (or what was
received) and says what to do; the losses stay finite where the theory says
they are finite.
"""
import math
import re
import warnings

import pytest
import torch

from cmkd_lab.align import (OTLoss, SinkhornConvergenceWarning, cost_matrix, label_alignment_loss, mmd, ot_cost,
                            sinkhorn_plan)

g = torch.Generator().manual_seed(0)
X = torch.randn(8, 3, generator=g)
Y = torch.randn(9, 3, generator=g)
S = torch.randn(4, 3, generator=g)  # student logits (B, K)
T = torch.randn(4, 3, generator=g)  # teacher head on student features (B, K)
LBL = torch.tensor([0, 1, 2, 1])

# (label, call, exception type, regex the message must match)
OT_BAD = [
    ("numpy input", lambda: ot_cost(X.numpy(), Y), TypeError, r"z_s must be a torch.Tensor .*got ndarray.*torch.as_tensor"),
    ("1-D input", lambda: ot_cost(X[0], Y), ValueError, r"z_s must have shape \(n, D\); got shape \(3,\)"),
    ("integer dtype", lambda: ot_cost(X.long(), Y), TypeError, r"z_s must be a floating-point tensor; got dtype torch.int64"),
    ("feature dims differ", lambda: ot_cost(X, torch.randn(5, 4)), ValueError,
     r"share dimension D; got z_s \(8, 3\) and z_t \(5, 4\): give both encoders the same feature_dim"),
    ("one sample", lambda: ot_cost(X[:1], Y), ValueError, r"z_s must hold at least 2 samples .*got 1: use batch_size >= 2"),
    ("NaN features", lambda: ot_cost(X * float("nan"), Y), ValueError, r"z_s or z_t contains NaN or inf"),
    ("inf features", lambda: ot_cost(X, Y * float("inf")), ValueError, r"z_s or z_t contains NaN or inf"),
    ("dtype mismatch", lambda: ot_cost(X.double(), Y), ValueError,
     r"z_s and z_t must share dtype and device; got torch.float64 on cpu and torch.float32"),
    ("eps = 0", lambda: ot_cost(X, Y, eps=0.0), ValueError, r"eps must be > 0; got eps=0.0; use eps around"),
    ("eps < 0", lambda: ot_cost(X, Y, eps=-1.0), ValueError, r"eps must be > 0; got eps=-1.0"),
    ("eps NaN", lambda: ot_cost(X, Y, eps=float("nan")), ValueError, r"eps must be finite; got eps=nan"),
    ("eps string", lambda: ot_cost(X, Y, eps="0.1"), TypeError, r"eps must be a number; got eps='0.1' of type str"),
    ("max_iter = 0", lambda: ot_cost(X, Y, max_iter=0), ValueError, r"max_iter must be >= 1; got max_iter=0"),
    ("max_iter float", lambda: ot_cost(X, Y, max_iter=1.5), TypeError, r"max_iter must be an integer; got max_iter=1.5"),
    ("unknown cost", lambda: ot_cost(X, Y, cost="l3"), ValueError,
     r"cost must be one of 'l2', .*'chordal'; got cost='l3'$"),
    ("unknown eps_units", lambda: ot_cost(X, Y, eps_units="rel"), ValueError,
     r"eps_units must be one of 'absolute', 'median'; got eps_units='rel'"),
    ("unknown grad", lambda: ot_cost(X, Y, grad="x"), ValueError, r"grad must be one of 'envelope', 'autodiff'"),
    ("negative tol", lambda: ot_cost(X, Y, tol=-1.0), ValueError, r"tol must be >= 0; got tol=-1.0"),
    ("weights wrong shape", lambda: ot_cost(X, Y, a=torch.ones(7)), ValueError,
     r"a must have shape \(8,\) to match the features; got \(7,\)"),
    ("negative weights", lambda: ot_cost(X, Y, b=-torch.ones(9)), ValueError, r"b must be finite, non-negative"),
    ("OTLoss eps = 0", lambda: OTLoss(eps=0), ValueError, r"eps must be > 0; got eps=0"),
    ("OTLoss unknown cost", lambda: OTLoss(cost="euclid"), ValueError, r"cost must be one of"),
    ("cost_matrix numpy", lambda: cost_matrix(X.numpy(), Y), TypeError,
     r"x must be a floating-point torch.Tensor of shape \(n, D\).*torch.as_tensor"),
    ("cost_matrix dims differ", lambda: cost_matrix(X, torch.randn(5, 4)), ValueError,
     r"x and y must share feature dimension D, dtype and device; got x \(8, 3\)"),
    ("cost_matrix unknown cost", lambda: cost_matrix(X, Y, "cosinus"), ValueError,
     r"cost must be one of .*got cost='cosinus' \(did you mean 'cosine'\?\)"),
]

LA_BAD = [
    ("label >= K", lambda: label_alignment_loss(S, T, torch.tensor([0, 1, 2, 3])), ValueError,
     r"y must hold class indices in 0..2 \(K=3 logits\); got values \[3\]: re-encode"),
    ("negative label", lambda: label_alignment_loss(S, T, torch.tensor([0, -1, 2, 1])), ValueError,
     r"y must hold class indices in 0..2 .*got values \[-1\]"),
    ("float labels", lambda: label_alignment_loss(S, T, LBL.float()), TypeError,
     r"y must be an integer torch.Tensor .*got Tensor torch.float32.*dtype=torch.long"),
    ("list labels", lambda: label_alignment_loss(S, T, [0, 1, 2, 1]), TypeError, r"y must be an integer torch.Tensor .*got list"),
    ("labels of wrong length", lambda: label_alignment_loss(S, T, LBL[:3]), ValueError, r"y must have shape \(4,\); got \(3,\)"),
    ("class counts differ", lambda: label_alignment_loss(S, torch.randn(4, 5), LBL), ValueError,
     r"must both have shape \(B, K\); got \(4, 3\) and \(4, 5\): teacher and student must share the class count K"),
    ("integer logits", lambda: label_alignment_loss(S.long(), T, LBL), TypeError,
     r"student_logits must be a floating-point torch.Tensor .*torch.int64"),
    ("numpy logits", lambda: label_alignment_loss(S, T.numpy(), LBL), TypeError,
     r"teacher_logits_on_student_features must be a floating-point torch.Tensor"),
    ("empty batch", lambda: label_alignment_loss(S[:0], T[:0], LBL[:0]), ValueError,
     r"needs at least one sample and one class; got logits of shape \(0, 3\)"),
    ("negative kappa", lambda: label_alignment_loss(S, T, LBL, kappa=-1.0), ValueError,
     r"kappa must be a finite number >= 0 \(a density ratio\); got kappa=-1.0"),
    ("NaN kappa", lambda: label_alignment_loss(S, T, LBL, kappa=float("nan")), ValueError, r"got kappa=nan"),
    ("kappa of wrong shape", lambda: label_alignment_loss(S, T, LBL, kappa=torch.ones(3)), ValueError,
     r"kappa must be a scalar or have shape \(4,\); got \(3,\)"),
    ("unknown teacher_grad", lambda: label_alignment_loss(S, T, LBL, teacher_grad="both"), ValueError,
     r"teacher_grad must be one of 'none', 'as-written', 'align'; got teacher_grad='both'"),
    ("unknown reduction", lambda: label_alignment_loss(S, T, LBL, reduction="avg"), ValueError,
     r"reduction must be one of 'mean', 'sum', 'none'"),
]

MMD_BAD = [
    ("numpy input", lambda: mmd(X.numpy(), Y), ValueError, r"x must be a tensor of shape \(n, D\).*torch.as_tensor"),
    ("integer dtype", lambda: mmd(X.long(), Y.long()), TypeError, r"x must be a floating-point tensor; got dtype torch.int64"),
    ("dims differ", lambda: mmd(X, torch.randn(5, 4)), ValueError, r"x and y must share dimension D; got \(8, 3\) and \(5, 4\)"),
    ("dtype mismatch", lambda: mmd(X.double(), Y), ValueError, r"x and y must share dtype and device"),
    ("one sample, unbiased", lambda: mmd(X[:1], Y), ValueError, r"unbiased MMD needs at least 2 samples per set; got n=1"),
    ("no sample, biased", lambda: mmd(X[:0], Y, estimator="biased"), ValueError, r"at least 1 sample per set; got n=0"),
    ("NaN input", lambda: mmd(X * float("nan"), Y), ValueError, r"x or y contains NaN or inf"),
    ("zero bandwidth", lambda: mmd(X, Y, bandwidth=0.0), ValueError, r"bandwidth must be > 0; got \[0.0\]"),
    ("zero in a bandwidth list", lambda: mmd(X, Y, bandwidth=[1.0, 0.0]), ValueError, r"bandwidth must be > 0; got \[1.0, 0.0\]"),
    ("NaN bandwidth", lambda: mmd(X, Y, bandwidth=float("nan")), ValueError, r"bandwidth must be > 0; got \[nan\]"),
    ("bandwidth too small for float32", lambda: mmd(X, Y, bandwidth=1e-30), ValueError,
     r"bandwidth must be finite and > .* \(for torch.float32\); got \[1e-30\]"),
    ("zero scale", lambda: mmd(X, Y, scales=(0.0,)), ValueError, r"bandwidth must be > 0"),
    ("no scales", lambda: mmd(X, Y, scales=()), ValueError, r"scales must list at least one multiplier"),
    ("block = 0", lambda: mmd(X, Y, block=0), ValueError, r"block must be >= 1; got block=0"),
    ("unknown estimator", lambda: mmd(X, Y, estimator="u"), ValueError, r"estimator must be one of 'unbiased', 'biased'"),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("label,call,exc,match", OT_BAD + LA_BAD + MMD_BAD, ids=_ids(OT_BAD + LA_BAD + MMD_BAD))
def test_bad_input_message(label, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_input_count():
    # The report quotes this number; keep it in step with the lists above.
    assert len(OT_BAD) + len(LA_BAD) + len(MMD_BAD) == 54


# ---------------------------------------------------------------- numerics
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [1e-3, 1e-2, 0.1, 1.0, 10.0])
def test_ot_finite_for_small_eps_and_costs_up_to_1e4(dtype, eps):
    # Costs spanning 0 .. 1e4 (l2 between points up to ~1e4 apart): the log domain keeps value and gradient finite.
    gen = torch.Generator().manual_seed(1)
    zs = (torch.rand(24, 4, generator=gen, dtype=dtype) * 5e3).requires_grad_()
    zt = torch.rand(30, 4, generator=gen, dtype=dtype) * 5e3
    M = cost_matrix(zs.detach(), zt)
    assert float(M.max()) > 5e3 and float(M.max()) <= 1.0001e4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SinkhornConvergenceWarning)
        v = ot_cost(zs, zt, eps=eps)
        v.backward()
    assert math.isfinite(float(v)) and bool(torch.isfinite(zs.grad).all())
    # ⟨π, M⟩ with π a coupling of the uniform marginals lies between min M and max M.
    assert float(M.min()) - 1e-3 <= float(v) <= float(M.max()) + 1e-3


def test_sinkhorn_plan_never_overflows_in_float32():
    # Huge cost over a tiny eps used to give inf in float32 (f + g - M cancels); rows are now a_i · softmax.
    M = torch.rand(16, 20, generator=torch.Generator().manual_seed(2)) * 1e9
    a, b = torch.full((16,), 1 / 16), torch.full((20,), 1 / 20)
    P = sinkhorn_plan(M, a, b, 1e-3, 50)
    assert bool(torch.isfinite(P).all())
    torch.testing.assert_close(P.sum(1), a)  # the last update matches the rows exactly


def test_ot_warns_with_advice_when_not_converged():
    zs, zt = torch.randn(20, 3, generator=g) * 100, torch.randn(20, 3, generator=g) * 100
    with pytest.warns(SinkhornConvergenceWarning, match=r"did not converge.*Raise max_iter, or raise eps"):
        v = ot_cost(zs, zt, eps=1e-3, max_iter=3)
    assert math.isfinite(float(v))


def test_ot_with_warn_off_propagates_nan_instead_of_hiding_it():
    # warn=False skips the input check (no host sync); a NaN must still come out as NaN, never as a fake 0.
    assert math.isnan(float(ot_cost(X * float("nan"), Y, warn=False)))
    assert math.isnan(float(cost_matrix(X * float("nan"), Y).sum()))


@pytest.mark.parametrize("mode", ["none", "as-written", "align"])
def test_la_finite_when_teacher_gives_probability_zero(mode):
    s = torch.randn(4, 3, generator=g).requires_grad_()
    t = torch.tensor([[0.0, -float("inf"), 0.0], [0.0, -1e30, 5.0], [1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]).requires_grad_()
    y = torch.tensor([1, 1, 1, 0])  # the first three rows give the true class probability 0 (or ~0)
    loss = label_alignment_loss(s, t, y, teacher_grad=mode, kappa_grad=mode == "as-written")
    loss.backward()
    assert math.isfinite(float(loss))
    assert bool(torch.isfinite(s.grad).all())
    assert t.grad is None or bool(torch.isfinite(t.grad).all())


def test_mmd_guards_degenerate_median_bandwidth():
    z = torch.zeros(6, 3)
    assert float(mmd(z, z.clone())) == 0.0  # all distances 0: median bandwidth falls back to 1, no 0/0
    assert float(mmd(z, z.clone(), estimator="biased")) == 0.0


def test_scaling_solver_under_overflow_names_the_cause_and_falls_back_to_the_log_domain():
    # Costs ~1e4 over eps=1e-4: exp(-M/eps) underflows to 0 and the scaling iteration divides 0 by 0.
    zs, zt = X * 1e4, Y * 1e4
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        v = ot_cost(zs, zt, eps=1e-4, solver="scaling")
    msgs = [str(w.message) for w in rec if issubclass(w.category, SinkhornConvergenceWarning)]
    assert any(re.search(r"solver='scaling' under/overflowed: the cost range over eps is [0-9.e+]+ \(max - min "
                         r"cost [0-9.e+]+, eps=0.0001\), beyond about 40 in torch.float32, where exp\(-M/eps\) "
                         r"underflows to 0; the log-domain plan is returned instead: pass solver='log' \(or "
                         r"'auto'\), a larger eps, or eps_units='median'", m) for m in msgs), msgs
    assert math.isfinite(float(v))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ot_cost(zs, zt, eps=1e-4, solver="log")
    assert float(v) == float(ref)
    # sinkhorn_plan on the CPU checks too (free there); the plan is a coupling, not NaN
    M = cost_matrix(zs, zt)
    with pytest.warns(SinkhornConvergenceWarning, match=r"solver='scaling' under/overflowed"):
        P = sinkhorn_plan(M, torch.full((8,), 1 / 8), torch.full((9,), 1 / 9), 1e-4, 100, solver="scaling")
    assert bool(torch.isfinite(P).all())


def test_ot_cost_on_overflowing_costs_says_so_instead_of_raise_max_iter():
    # Features ~1e30 no longer overflow the l2 cost (cost_matrix rescales: see
    # test_cost_matrix_is_scale_equivariant_and_finite); a squared cost ~1e60 is itself beyond float32.
    with pytest.warns(SinkhornConvergenceWarning, match=r"the cost matrix holds inf or NaN \(the features reach "
                                                        r"[0-9.e+]+, too large for torch.float32 costs\); rescale"):
        v = ot_cost(X * 1e30, Y * 1e30, cost="sqeuclidean")
    assert math.isnan(float(v))  # NaN is kept (never a fake number), but the warning names the cause


@pytest.mark.parametrize("cost", ["l2", "sqeuclidean", "l1", "cosine", "chordal"])
@pytest.mark.parametrize("scale", [1e-19, 1e-6, 1e6, 1e19])
def test_cost_matrix_is_scale_equivariant_and_finite(cost, scale):
    """Features times a give a × (l2, l1), a² × (sqeuclidean) or the same (cosine, chordal) costs, in float32,
    without a warning or an inf, up to 1e19 (whose squares are beyond float32) and down to 1e-19."""
    power = {"l2": 1, "l1": 1, "sqeuclidean": 2}.get(cost, 0)
    if power == 2 and scale == 1e19:
        scale = 1e18  # (1e19)² × D is beyond float32 itself: no frame can return it
    ref = cost_matrix(X.double(), Y.double(), cost)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cost_matrix(X * scale, Y * scale, cost)
    assert got.dtype == torch.float32 and bool(torch.isfinite(got).all())
    torch.testing.assert_close(got.double() / scale ** power, ref, rtol=2e-5, atol=2e-6)


def test_ot_cost_on_large_features_is_the_scaled_cost():
    """ot_cost with a scale-free eps (eps_units='median'): features ×1e30 give 1e30 × the cost, finite."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = ot_cost(X * 1e30, Y * 1e30, eps=0.1, eps_units="median", max_iter=300)
    ref = ot_cost(X, Y, eps=0.1, eps_units="median", max_iter=300)
    assert math.isfinite(float(big)) and float(big) / 1e30 == pytest.approx(float(ref), rel=1e-4)


@pytest.mark.parametrize("cost", ["l2", "sqeuclidean", "l1", "cosine", "chordal"])
def test_cost_matrix_rescales_by_powers_of_two_so_bit_for_bit(cost, monkeypatch):
    """The features are divided by a power of two and the costs multiplied back: exact, so the scaled
    computation (always taken on a GPU, where reading the scale would synchronise) gives the very bits
    of the plain one, and features times 2^40 give exactly 2^40 (or 2^80) times the costs."""
    from cmkd_lab.align import costs
    power = {"l2": 1, "l1": 1, "sqeuclidean": 2}.get(cost, 0)
    plain = cost_matrix(X, Y, cost)  # the CPU computes moderate features as they are
    assert torch.equal(cost_matrix(X * 2.0 ** 40, Y * 2.0 ** 40, cost), plain * 2.0 ** (40 * power))
    monkeypatch.setattr(costs, "_host_scale", costs.pow2_scale)  # the device path: scaled, no host read
    monkeypatch.setattr(costs, "_as_is", lambda p, dtype: False)
    assert torch.equal(cost_matrix(X, Y, cost), plain)


def test_cost_matrix_gradient_is_unchanged_by_the_rescaling():
    for cost in ("l2", "sqeuclidean", "l1", "cosine"):
        a = (X * 1e6).double().requires_grad_()
        cost_matrix(a, (Y * 1e6).double(), cost).sum().backward()
        b = X.double().requires_grad_()
        cost_matrix(b, Y.double(), cost).sum().backward()
        power = {"l2": 1, "l1": 1, "sqeuclidean": 2}.get(cost, 0)
        torch.testing.assert_close(a.grad * 1e6 / 1e6 ** power, b.grad, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("scale", [1e-19, 1e-6, 1e6, 1e19])
def test_mmd_is_scale_free_and_never_nan_on_large_or_tiny_inputs(scale):
    a, b = X, Y + 0.5
    ref = float(mmd(a.double(), b.double()))
    assert float(mmd(a, b)) == pytest.approx(ref, rel=1e-4)
    v = float(mmd(a * scale, b * scale))
    assert math.isfinite(v) and v == pytest.approx(ref, rel=1e-4)
    assert float(mmd(a * scale, b * scale, bandwidth=[scale, 2 * scale])) == pytest.approx(
        float(mmd(a.double(), b.double(), bandwidth=[1.0, 2.0])), rel=1e-4)
    from cmkd_lab.align import median_bandwidth
    assert median_bandwidth(a * scale, b * scale) == pytest.approx(scale * median_bandwidth(a, b), rel=1e-5)


def test_mmd_far_from_the_origin_keeps_its_precision():
    # ||x||^2 + ||y||^2 - 2 x.y cancels catastrophically far from the origin: features are centred first.
    a, b = X.double(), Y.double() + 0.5
    assert float(mmd(a + 1e8, b + 1e8)) == pytest.approx(float(mmd(a, b)), rel=1e-6)


def test_mmd_gradient_is_unchanged_by_the_rescaling():
    a = (X * 1e6).double().requires_grad_()
    mmd(a, (Y * 1e6).double()).backward()
    b = X.double().requires_grad_()
    mmd(b, Y.double()).backward()
    torch.testing.assert_close(a.grad * 1e6, b.grad, rtol=1e-6, atol=1e-12)
