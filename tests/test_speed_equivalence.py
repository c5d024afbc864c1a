"""The speed paths compute what the plain paths compute.

Solvers (scaling / log / compiled / early stop / device-side ε) against POT;
UCMKD's shared forward and its last-layer approximation against independent
deep-copy computations of what they are defined to be; bf16 autocast and
torch.compile against float32 eager.
"""
import copy

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F

from cmkd_lab.align import cost_matrix, label_alignment_loss, ot_cost, sinkhorn_plan
from cmkd_lab.distill import DistillConfig, Trainer


def _u(n):
    return torch.full((n,), 1.0 / n, dtype=torch.float64)


def _clouds(seed=0, n=40, m=50, d=6):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64),
            torch.randn(m, d, generator=g, dtype=torch.float64) + 0.3)


# ----------------------------------------------------------------- solvers
@pytest.mark.parametrize("solver", ["scaling", "log", "auto"])
@pytest.mark.parametrize("cost", ["l2", "cosine"])
def test_every_solver_equals_pot(solver, cost):
    x, y = _clouds()
    M = cost_matrix(x, y, cost)
    for eps in (0.1, 0.5):
        ref = ot.sinkhorn2(_u(40), _u(50), M, reg=eps, numItermax=150, stopThr=0)
        val = ot_cost(x, y, cost=cost, eps=eps, max_iter=150, warn=False, solver=solver)
        assert float(abs(val - ref) / abs(ref)) < 1e-9


def test_early_stop_equals_pot_default_stopping():
    # POT's sinkhorn2 stops at stopThr=1e-9 by default, checking after iterations 1, 11, 21, ...
    x, y = _clouds(1)
    M = cost_matrix(x, y, "l2")
    for eps in (0.2, 1.0):
        _, log = ot.sinkhorn(_u(40), _u(50), M, reg=eps, numItermax=500, log=True)
        assert log["niter"] < 499  # POT did stop early here
        ref = ot.sinkhorn2(_u(40), _u(50), M, reg=eps, numItermax=500)
        for solver in ("scaling", "log"):
            val = ot_cost(x, y, eps=eps, max_iter=500, warn=False, solver=solver, stop_thr=1e-9)
            assert float(abs(val - ref) / ref) < 1e-9
    # The stopped plan's column marginals are within the threshold.
    P = sinkhorn_plan(M, _u(40), _u(50), 0.2, 500, stop_thr=1e-6)
    assert float(torch.linalg.vector_norm(P.sum(0) - _u(50))) < 1e-6


def test_device_side_eps_and_known_cost_range_equal_pot():
    # A 0-d tensor ε (how a median ε stays on a GPU) and the host-known cosine
    # range (how a GPU picks the scaling form without reading M) change nothing.
    x, y = _clouds(2)
    M = cost_matrix(x, y, "cosine")
    ref = ot.sinkhorn(_u(40), _u(50), M, reg=0.1, numItermax=100, stopThr=0)
    for solver in ("auto", "log"):
        P = sinkhorn_plan(M, _u(40), _u(50), torch.tensor(0.1, dtype=torch.float64), 100, solver=solver)
        torch.testing.assert_close(P, ref, rtol=1e-9, atol=1e-15)
    P = sinkhorn_plan(M, _u(40), _u(50), 0.1, 100, cost_range=2.0)
    torch.testing.assert_close(P, ref, rtol=1e-9, atol=1e-15)


def test_float32_agrees_with_float64_pot_at_paper_sizes():
    # 256 points in 512 dimensions, float32 in, POT in float64: 1e-5 relative.
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(256, 512, generator=g), torch.randn(256, 512, generator=g) + 0.1
    for eps_units, eps in (("median", 0.1), ("absolute", 3.0)):
        val = ot_cost(x, y, eps=eps, eps_units=eps_units, warn=False)
        M = cost_matrix(x.double(), y.double(), "l2")
        reg = eps * float(M.median()) if eps_units == "median" else eps
        ref = ot.sinkhorn2(_u(256), _u(256), M, reg=reg, numItermax=100, stopThr=0)
        assert float(abs(val.double() - ref) / ref) < 1e-5


def test_compiled_iterations_equal_eager():
    x, y = _clouds(4, 24, 20, 5)
    for solver in ("log",):
        a = ot_cost(x, y, eps=0.3, max_iter=10, warn=False, solver=solver)
        b = ot_cost(x, y, eps=0.3, max_iter=10, warn=False, solver=solver, compile=True)
        assert float(abs(a - b) / a) < 1e-10


def test_solver_and_stop_thr_are_validated():
    x, y = _clouds()
    with pytest.raises(ValueError, match="solver must be one of"):
        ot_cost(x, y, solver="fast")
    with pytest.raises(ValueError, match="stop_thr must be >= 0"):
        ot_cost(x, y, stop_thr=-1.0)
    with pytest.raises(ValueError, match="inner_scope must be one of"):
        DistillConfig(inner_scope="head")
    with pytest.raises(ValueError, match="ot_solver must be one of"):
        DistillConfig(ot_solver="exp")
    with pytest.raises(ValueError, match="compile must be one of 'none', 'ot', 'all'"):
        DistillConfig(compile="yes")


# ------------------------------------------------------------------ UCMKD
def _bn_task():
    # A 1-D CNN student (BatchNorm): checks that running statistics are updated once per step.
    from cmkd_lab.data import CrossModalTask
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    xt = rng.normal(size=(300, 8)) + y[:, None]
    xs = rng.normal(size=(300, 2, 16)) + 0.5 * y[:, None, None]
    return CrossModalTask.from_arrays(xt, y, xs, y, student_encoder={"kind": "cnn1d", "in_channels": 2, "length": 16})


def _sgd_trainer(task, **kw):
    cfg = DistillConfig(**{"epochs": 1, "teacher_epochs": 2, "batch_size": 32, "optimizer": "sgd", "lr": 0.1,
                           "momentum": 0.0, "grad_clip": 0.0, "inner_lr": 0.05, "lambda_fa": 0.7,
                           "lambda_la": 1.3, **kw})
    return Trainer(task, "ucmkd", cfg)


def _sgd(params, grads, lr):
    with torch.no_grad():
        for p, g in zip(params, grads):
            if g is not None:
                p -= lr * g


def test_shared_forward_equals_the_three_pass_computation():
    # la_detach_features: one forward at φ̃1 serves the LA step and the outer CE.
    tr = _sgd_trainer(_bn_task(), la_detach_features=True, la_teacher_grad="none", n1=1, n2=2)
    batch = next(iter(tr.batches()))
    before = copy.deepcopy(tr.student)
    tr.method.step(batch)

    cfg, tmp = tr.config, copy.deepcopy(before)
    tmp.train()
    z = tmp.features(batch.x_s)
    fa = cfg.lambda_fa * ot_cost(z, batch.z_t, eps=cfg.eps, eps_units=cfg.eps_units, warn=False)
    _sgd(list(tmp.encoder.parameters()), torch.autograd.grad(fa, list(tmp.encoder.parameters())), cfg.inner_lr)
    for _ in range(cfg.n2):
        z = tmp.features(batch.x_s).detach()
        la = cfg.lambda_la * label_alignment_loss(tmp.head(z), tr.teacher.head(z), batch.y_s)
        _sgd(list(tmp.head.parameters()), torch.autograd.grad(la, list(tmp.head.parameters())), cfg.inner_lr)
    # the outer forward starts from the original running statistics
    tmp.load_state_dict({**tmp.state_dict(), **{k: v for k, v in before.state_dict().items()
                                                if "running" in k or "num_batches" in k}})
    ce = F.cross_entropy(tmp(batch.x_s), batch.y_s)
    g_outer = torch.autograd.grad(ce, list(tmp.parameters()))
    for (n, p_new), p_old, g in zip(tr.student.named_parameters(), before.parameters(), g_outer):
        torch.testing.assert_close(p_new, p_old - 0.1 * g, rtol=1e-4, atol=1e-6, msg=n)
    for (n, b_new), b_ref in zip(tr.student.named_buffers(), tmp.buffers()):
        torch.testing.assert_close(b_new, b_ref, rtol=1e-5, atol=1e-6, msg=n)


@pytest.mark.parametrize("detach", [False, True])
def test_last_layer_approximation_is_what_it_says(small_task, detach):
    # inner_scope="last-layer": inner steps adapt only the encoder's final Linear and the
    # head on the backbone output h (run once); the outer CE at the adapted layers
    # back-propagates through h into the backbone at φ.
    tr = _sgd_trainer(small_task, inner_scope="last-layer", la_detach_features=detach, la_teacher_grad="align")
    batch = next(iter(tr.batches()))
    before = copy.deepcopy(tr.student)
    terms = tr.method.step(batch)

    cfg, ref = tr.config, copy.deepcopy(before)
    last = ref.encoder.net[-1]  # the MLP encoder's final Linear
    seen = {}
    hook = last.register_forward_hook(lambda m, i, o: seen.update(h=i[0]))
    ref.encoder(batch.x_s)
    hook.remove()
    h = seen["h"]
    W, bias = last.weight.detach().clone().requires_grad_(), last.bias.detach().clone().requires_grad_()
    hw, hb = ref.head.weight.detach().clone().requires_grad_(), ref.head.bias.detach().clone().requires_grad_()
    fa = cfg.lambda_fa * ot_cost(F.linear(h.detach(), W, bias), batch.z_t, eps=cfg.eps, eps_units=cfg.eps_units,
                                 warn=False)
    W, bias = [t - cfg.inner_lr * g for t, g in zip((W, bias), torch.autograd.grad(fa, [W, bias]))]
    W, bias = W.detach().requires_grad_(), bias.detach().requires_grad_()
    z = F.linear(h.detach(), W, bias)
    la = cfg.lambda_la * label_alignment_loss(F.linear(z.detach() if detach else z, hw, hb),
                                              tr.teacher.head(z.detach() if detach else z), batch.y_s,
                                              teacher_grad="align")
    gs = torch.autograd.grad(la, [W, bias, hw, hb], allow_unused=True)
    W, bias, hw, hb = [(t - cfg.inner_lr * g if g is not None else t).detach().requires_grad_()
                       for t, g in zip((W, bias, hw, hb), gs)]
    ce = F.cross_entropy(F.linear(F.linear(h, W, bias), hw, hb), batch.y_s)
    backbone = [p for n, p in ref.encoder.named_parameters() if not n.startswith("net.6.")]
    grads = torch.autograd.grad(ce, backbone + [W, bias, hw, hb])
    expect = {}
    names = [n for n, _ in ref.encoder.named_parameters() if not n.startswith("net.6.")]
    for n, p, g in zip(names, backbone, grads[:len(backbone)]):
        expect[f"encoder.{n}"] = p - 0.1 * g
    for n, g in zip(("encoder.net.6.weight", "encoder.net.6.bias", "head.weight", "head.bias"), grads[len(backbone):]):
        expect[n] = dict(before.named_parameters())[n] - 0.1 * g
    for n, p in tr.student.named_parameters():
        torch.testing.assert_close(p, expect[n], rtol=1e-4, atol=1e-6, msg=n)
    assert float(terms["inner_shift"]) > 0 and {"fa", "la", "ce"} <= set(terms)


def test_last_layer_needs_a_final_linear():
    from cmkd_lab.data import CrossModalTask
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    x = rng.normal(size=(60, 1, 16, 16)).astype(np.float32)
    spec = {"kind": "resnet18", "in_channels": 1, "width": 4}  # 8·width = 32 = D: no projection layer
    task = CrossModalTask.from_arrays(x, y, x, y, teacher_encoder=spec, student_encoder=spec)
    with pytest.raises(ValueError, match="inner_scope='last-layer' needs an encoder whose output comes from a final"):
        Trainer(task, "ucmkd", DistillConfig(feature_dim=32, teacher_epochs=1, batch_size=16,
                                             inner_scope="last-layer"))


# ------------------------------------------------------ precision, compile
@pytest.mark.parametrize("method", ["fa", "ucmkd"])
def test_bf16_autocast_matches_float32(small_task, method):
    # Mixed precision on the CPU (the same code path as config.amp on CUDA).
    trs, updates, terms, dtypes = [], [], [], []
    for amp in (False, True):
        cfg = DistillConfig(epochs=1, teacher_epochs=2, batch_size=64, optimizer="sgd", lr=0.1, momentum=0.0,
                            grad_clip=0.0, **({"inner_lr": 0.01} if method == "ucmkd" else {}))  # ucmkd's option
        tr = Trainer(small_task, method, cfg)
        tr.amp = amp
        seen = []
        hook = tr.student.encoder.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        before = [p.detach().clone() for p in tr.student.parameters()]
        t = tr.method.step(next(iter(tr.batches())))
        hook.remove()
        updates.append(torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(tr.student.parameters(), before)]))
        terms.append(t)
        dtypes.append(seen)
    assert all(d == torch.float32 for d in dtypes[0]) and all(d == torch.bfloat16 for d in dtypes[1])
    assert terms[1]["fa"].dtype == torch.float32  # OT stays in float32
    for k in terms[0]:
        assert float(abs(terms[1][k] - terms[0][k])) <= 2e-2 * max(1.0, float(abs(terms[0][k]))), k
    rel = float(torch.linalg.vector_norm(updates[1] - updates[0]) / torch.linalg.vector_norm(updates[0]))
    assert rel < 5e-2


def test_compile_option_matches_eager(small_task):
    res = []
    for comp in (False, True):
        cfg = DistillConfig(epochs=1, teacher_epochs=2, batch_size=64, compile="all" if comp else "none")
        tr = Trainer(small_task, "ce", cfg)
        batches = list(tr.batches())[:2]
        for b in batches:
            tr.method.step(b)
        res.append([p.detach().clone() for p in tr.student.parameters()])
        assert (tr.student.encoder._compiled_call_impl is not None) == comp
    for a, b in zip(*res):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
