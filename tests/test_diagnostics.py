"""Diagnostics against known answers: MMD tests, OT / Sinkhorn, purity, labels, the bound, the gap."""
import math

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from cmkd_lab.align import label_alignment_loss, mmd
from cmkd_lab.diagnostics import (bound_terms, class_conditional_mmd, class_mass_matrix, confusion_matrix,
                                  entropic_ot, exact_ot, holm_correction, kappa_hat, label_diagnostics,
                                  linear_mmd, lipschitz_estimate, median_cost, mmd2_unbiased, mmd_permutation_test,
                                  modality_gap, permutation_masks, plan_class_purity, pool_plan,
                                  predicted_distribution, rbf_bandwidths, sinkhorn_divergence, stratified_indices)


def _gauss(n, d, seed, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def _rbf_mmd2_gaussians(delta2, s2, d, bws):
    # Closed form for N(μ1, s²I) vs N(μ2, s²I) with k = exp(-||x-y||²/(2σ²)), averaged over σ.
    vals = []
    for sig in bws:
        c = (sig ** 2 / (sig ** 2 + 2 * s2)) ** (d / 2)
        vals.append(2 * c * (1 - math.exp(-delta2 / (2 * (sig ** 2 + 2 * s2)))))
    return float(np.mean(vals))


# ----------------------------------------------------------------------------- MMD
@pytest.mark.parametrize("bws", [[0.7, 1.4, 2.8], [1.0, 1.7], [2.0]])  # powers of 2 use the squaring chain
def test_observed_statistic_equals_align_mmd_and_blocks_do_not_matter(bws):
    x, y = _gauss(70, 5, 0), _gauss(53, 5, 1, shift=0.4)
    ref = float(mmd(x, y, bandwidth=bws, estimator="unbiased"))
    for block in (16, 50, 1000):
        r = mmd_permutation_test(x, y, bandwidth=bws, n_permutations=30, seed=3, block=block, return_null=True)
        assert r["mmd2"] == pytest.approx(ref, rel=1e-10, abs=1e-12)
    assert mmd2_unbiased(x, y, bandwidth=bws) == pytest.approx(ref, rel=1e-10)


def test_null_statistics_match_a_dense_reference_with_the_same_permutations():
    x, y = _gauss(31, 4, 2), _gauss(23, 4, 3, shift=0.2)
    bws = [1.0, 2.0]
    r = mmd_permutation_test(x, y, bandwidth=bws, n_permutations=25, seed=7, block=8, return_null=True)
    z = torch.cat([x, y])
    A = permutation_masks(54, 31, 25, seed=7, dtype=torch.float64)  # (N, P+1)
    assert torch.all(A.sum(0) == 31)
    for p in range(1, 26):
        sel = A[:, p].bool()
        want = float(mmd(z[sel], z[~sel], bandwidth=bws))
        assert r["null"][p - 1] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_identical_distributions_give_mmd_near_zero_and_uniform_p_values():
    bws = [0.75, 1.5, 3.0]
    pvals, stats_ = [], []
    for rep in range(40):
        x, y = _gauss(40, 3, 100 + rep), _gauss(40, 3, 500 + rep)
        r = mmd_permutation_test(x, y, bandwidth=bws, n_permutations=99, seed=rep)
        pvals.append(r["p_value"])
        stats_.append(r["mmd2"])
    pvals = np.array(pvals)
    assert stats.kstest(pvals, "uniform").pvalue > 0.01
    assert 0.0 <= np.mean(pvals < 0.1) <= 0.3
    assert abs(np.mean(stats_)) < 3 * np.std(stats_) / math.sqrt(len(stats_))
    assert np.all(pvals >= 1 / 100)  # the observed statistic counts itself


def test_clear_shift_is_rejected():
    x, y = _gauss(80, 4, 0), _gauss(80, 4, 1, shift=1.0)
    r = mmd_permutation_test(x, y, bandwidth=rbf_bandwidths(y), n_permutations=200, seed=0)
    assert r["p_value"] < 0.01 and r["p_value"] == pytest.approx(1 / 201)
    assert r["mmd2"] > 10 * r["null_std"]


def test_unbiased_and_linear_estimators_average_to_the_closed_form():
    d, bws, shift = 2, [1.0, 2.0], 0.5
    want = _rbf_mmd2_gaussians(d * shift ** 2, 1.0, d, bws)
    quad, lin = [], []
    for rep in range(150):
        x, y = _gauss(60, d, 2 * rep), _gauss(60, d, 2 * rep + 1, shift=shift)
        lin.append(linear_mmd(x, y, bandwidth=bws, seed=rep)["mmd2"])
        if rep < 60:
            quad.append(mmd2_unbiased(x, y, bandwidth=bws))
    for vals in (lin, quad):
        se = np.std(vals) / math.sqrt(len(vals))
        assert abs(np.mean(vals) - want) < 3.5 * se + 1e-4, (np.mean(vals), want, se)


def test_linear_mmd_p_value_rejects_shift_and_reports_pairs():
    x, y = _gauss(400, 3, 0), _gauss(400, 3, 1, shift=1.0)
    r = linear_mmd(x, y, bandwidth=[1.0, 2.0], seed=0)
    assert r["n_pairs"] == 200 and r["p_value"] < 1e-3 and r["mmd2"] > 0


def test_bandwidths_from_reference_are_median_times_scales():
    y = _gauss(50, 3, 0)
    d = torch.cdist(y, y)
    med = float(d[torch.triu_indices(50, 50, 1).unbind()].median())
    assert rbf_bandwidths(y, scales=(0.5, 2.0)) == pytest.approx([0.5 * med, 2 * med], rel=1e-9)


def test_holm_correction_known_values():
    np.testing.assert_allclose(holm_correction([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(holm_correction([0.5, 0.6]), [1.0, 1.0])


def test_class_conditional_mmd_rejects_only_the_shifted_class():
    xs, ys, xt, yt = [], [], [], []
    for k in range(3):
        xs.append(_gauss(60, 3, 10 + k, shift=3.0 * k + (1.5 if k == 2 else 0.0)))
        xt.append(_gauss(60, 3, 20 + k, shift=3.0 * k))
        ys += [k] * 60
        yt += [k] * 60
    r = class_conditional_mmd(torch.cat(xs), ys, torch.cat(xt), yt, bandwidth=[1.0, 2.0], n_permutations=100)
    rej = [row["rejected"] for row in r["per_class"]]
    assert rej == [False, False, True] and r["n_rejected"] == 1
    assert all(row["p_holm"] >= row["p_value"] for row in r["per_class"])


def test_class_with_too_few_samples_is_skipped():
    r = class_conditional_mmd(_gauss(10, 2, 0), [0] * 9 + [1], _gauss(10, 2, 1), [0] * 10, bandwidth=1.0,
                              n_permutations=20)
    assert r["per_class"][1]["mmd2"] is None and r["per_class"][0]["mmd2"] is not None


# ---------------------------------------------------------------------------- OT
def test_exact_ot_equals_pot_emd2():
    x, y = _gauss(40, 3, 0), _gauss(30, 3, 1, shift=0.7)
    M = ot.dist(x.numpy(), y.numpy(), metric="euclidean")
    want = ot.emd2(np.full(40, 1 / 40), np.full(30, 1 / 30), M)
    assert exact_ot(x, y) == pytest.approx(want, rel=1e-9)
    w2 = exact_ot(x, y, cost="sqeuclidean")
    assert w2 == pytest.approx(ot.emd2([], [], ot.dist(x.numpy(), y.numpy())), rel=1e-9)


def test_exact_ot_of_a_translated_cloud_is_the_shift():
    x = _gauss(25, 2, 0)
    v = torch.tensor([3.0, 4.0], dtype=torch.float64)
    # For a pure translation by v, W1 = ||v|| (identity coupling is optimal for l2 when ||v|| dominates).
    w, plan = exact_ot(x, x + v, return_plan=True)
    assert w == pytest.approx(5.0, rel=1e-6)


def test_entropic_cost_matches_pot_sinkhorn():
    x, y = _gauss(30, 3, 0), _gauss(25, 3, 1, shift=0.3)
    eps = 0.5
    M = ot.dist(x.numpy(), y.numpy(), metric="euclidean")
    P = ot.sinkhorn(np.full(30, 1 / 30), np.full(25, 1 / 25), M, eps, numItermax=2000, stopThr=1e-12)
    r = entropic_ot(x, y, eps=eps, max_iter=2000, return_plan=True)
    np.testing.assert_allclose(r["plan"], P, atol=1e-10)
    assert r["cost"] == pytest.approx(float((P * M).sum()), rel=1e-8)
    kl = float((P * np.log(P / (np.full(30, 1 / 30)[:, None] * np.full(25, 1 / 25)[None]))).sum())
    assert r["objective"] == pytest.approx(float((P * M).sum()) + eps * kl, rel=1e-8)


def test_sinkhorn_divergence_zero_on_itself_positive_on_shift():
    x = _gauss(40, 3, 0)
    eps = 0.2 * median_cost(x)
    assert sinkhorn_divergence(x, x, eps=eps) == pytest.approx(0.0, abs=1e-10)
    s1 = sinkhorn_divergence(x, _gauss(40, 3, 1, shift=0.5), eps=eps)
    s2 = sinkhorn_divergence(x, _gauss(40, 3, 1, shift=2.0), eps=eps)
    assert 0 < s1 < s2


def test_purity_is_one_for_class_separated_clouds():
    xs, ys, xt, yt = [], [], [], []
    for k in range(4):
        centre = torch.zeros(3, dtype=torch.float64)
        centre[k % 3] = 20.0 * (1 + k // 3)
        xs.append(_gauss(30 + 5 * k, 3, k, shift=centre))
        xt.append(_gauss(30 + 5 * k, 3, 10 + k, shift=centre + 0.3))
        ys += [k] * (30 + 5 * k)
        yt += [k] * (30 + 5 * k)
    xs, xt = torch.cat(xs), torch.cat(xt)
    _, plan = exact_ot(xs, xt, return_plan=True)
    r = plan_class_purity(plan, ys, yt)
    assert r["purity"] == pytest.approx(1.0, abs=1e-9)
    p = np.bincount(ys) / len(ys)
    assert r["chance"] == pytest.approx(float(p @ p), rel=1e-9)
    ent = entropic_ot(xs, xt, eps=0.05 * median_cost(xt), return_plan=True)
    assert plan_class_purity(ent["plan"], ys, yt)["purity"] > 0.999


def test_purity_of_the_independent_coupling_is_chance():
    ys, yt = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2]
    a, b = np.full(6, 1 / 6), np.full(4, 1 / 4)
    r = plan_class_purity(np.outer(a, b), ys, yt)
    assert r["purity"] == pytest.approx(r["chance"])
    assert r["chance"] == pytest.approx(2 / 6 * 1 / 4 + 1 / 6 * 2 / 4 + 3 / 6 * 1 / 4)
    M = class_mass_matrix(np.outer(a, b), ys, yt, 3)
    assert M.sum() == pytest.approx(1.0) and M.shape == (3, 3)


def test_pool_plan_keeps_mass_and_class_blocks():
    rng = np.random.default_rng(0)
    P = rng.random((130, 90))
    P /= P.sum()
    yr, yc = rng.integers(0, 3, 130), rng.integers(0, 3, 90)
    pooled = pool_plan(P, yr, yc, max_side=20)
    assert pooled["plan"].sum() == pytest.approx(1.0)
    assert sorted(pooled["row_classes"]) == pooled["row_classes"]
    np.testing.assert_allclose(class_mass_matrix(pooled["plan"], pooled["row_classes"], pooled["col_classes"], 3),
                               class_mass_matrix(P, yr, yc, 3), atol=1e-12)


# -------------------------------------------------------------------- labels / κ̂
def test_label_diagnostics_known_answers():
    from sklearn.metrics import confusion_matrix as sk_cm
    g = torch.Generator().manual_seed(0)
    lts, ls, ltt = (torch.randn(50, 4, generator=g, dtype=torch.float64) for _ in range(3))
    ys = torch.randint(0, 4, (50,), generator=g).numpy()
    yt = torch.randint(0, 4, (50,), generator=g).numpy()
    np.testing.assert_array_equal(confusion_matrix(ys, ls.argmax(1).numpy(), 4),
                                  sk_cm(ys, ls.argmax(1).numpy(), labels=range(4)))
    k = kappa_hat(lts, ys)
    np.testing.assert_allclose(k, torch.softmax(lts, 1)[torch.arange(50), ys].numpy())
    pd = predicted_distribution(ls, ys, 4)
    np.testing.assert_allclose(pd.sum(1), np.ones(4))
    r = label_diagnostics(teacher_logits_on_student=lts, student_logits=ls, y_student=ys,
                          teacher_logits_on_teacher=ltt, y_teacher=yt)
    assert r["scalars"]["kappa_mean"] == pytest.approx(k.mean())
    assert r["scalars"]["student_acc_ref"] == pytest.approx(np.mean(ls.argmax(1).numpy() == ys))
    assert r["artefacts"]["conf_teacher"].sum() == 50


# -------------------------------------------------------------------------- bound
def test_bound_terms_add_up_as_defined():
    g = torch.Generator().manual_seed(1)
    ltt, ls, lts = (torch.randn(40, 3, generator=g, dtype=torch.float64) * 2 for _ in range(3))
    yt = torch.randint(0, 3, (40,), generator=g)
    ys = torch.randint(0, 3, (40,), generator=g)
    b = bound_terms(teacher_logits_on_teacher=ltt, y_teacher=yt, student_logits=ls, teacher_logits_on_student=lts,
                    y_student=ys, w1=0.7, tau=1.3)
    assert b["bound_err_t"] == pytest.approx(float(F.cross_entropy(ltt, yt)))
    assert b["bound_err_s"] == pytest.approx(float(F.cross_entropy(ls, ys)))
    assert b["bound_la"] == pytest.approx(float(label_alignment_loss(ls, lts, ys)))
    assert b["bound_fa"] == pytest.approx(0.7 * 1.3)
    assert b["bound_sum"] == pytest.approx(b["bound_err_t"] + b["bound_fa"] + b["bound_la"])
    kap = torch.softmax(lts, 1)[torch.arange(40), ys]
    transfer = float((kap * -torch.log_softmax(lts, 1)[torch.arange(40), ys]).mean())
    assert b["bound_transfer"] == pytest.approx(transfer, rel=1e-9)  # err_S - LA_e = mean κ̂ CE_T
    assert b["bound_holds"] == (b["bound_err_s"] <= b["bound_sum"])
    assert b["bound_err_s01"] == pytest.approx(float((ls.argmax(1) != ys).double().mean()))


def test_bound_statement_says_when_it_does_not_hold():
    # Student confidently wrong, teacher perfect, zero transport: the estimate falls below err_S.
    y = torch.tensor([0, 1, 0, 1])
    good = F.one_hot(y, 2).double() * 10
    bad = F.one_hot(1 - y, 2).double() * 10
    b = bound_terms(teacher_logits_on_teacher=good, y_teacher=y, student_logits=bad, teacher_logits_on_student=bad,
                    y_student=y, w1=0.0, tau=0.0)
    assert b["bound_holds"] is False and "does NOT hold" in b["bound_statement"]


def test_lipschitz_estimate_matches_closed_form_for_two_classes():
    # Head logits (a·u·z, -a·u·z): the entropy is a function of t = 2a·u·z whose steepest slope is
    # max_t t·σ(t)(1-σ(t)) ≈ 0.22392, so the Lipschitz constant is 2a·‖u‖·0.22392.
    a = 1.5
    head = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[a, 0.0], [-a, 0.0]]))
    s = torch.linspace(-3, 3, 400)[:, None] * torch.tensor([[1.0, 0.0]])
    t = torch.linspace(-4, 4, 400)
    want = 2 * a * float((t * torch.sigmoid(t) * (1 - torch.sigmoid(t))).abs().max())
    r = lipschitz_estimate(head, s, s.flip(0) + torch.tensor([0.0, 1.0]), n_pairs=0, n_segment=0)
    assert r["tau"] == pytest.approx(want, rel=1e-3)
    r2 = lipschitz_estimate(head, s, s, n_pairs=5000, n_segment=200, seed=0)
    assert r2["tau_pairs"] <= r2["tau_grad"] * (1 + 1e-6) and "entropy" in r2["method"]


# ---------------------------------------------------------------------------- gap
def test_modality_gap_of_a_translated_cloud():
    x = _gauss(100, 4, 0)
    v = torch.tensor([1.0, 2.0, 2.0, 0.0], dtype=torch.float64)
    r = modality_gap(x + v, x, y_s=[0] * 50 + [1] * 50, y_t=[0] * 50 + [1] * 50)
    assert r["centroid_gap"] == pytest.approx(3.0, rel=1e-9)
    assert r["class_centroid_gap"] == pytest.approx(3.0, rel=1e-9)
    assert r["mean_cos"] is None  # x's mean is within its sampling noise of the origin: no direction
    w = torch.tensor([0.0, 3.0, -1.0, 2.0], dtype=torch.float64)
    r = modality_gap(x + v, x + w)
    m1, m0 = (x + v).mean(0), (x + w).mean(0)
    assert r["mean_cos"] == pytest.approx(float(m1 @ m0 / (m1.norm() * m0.norm())), rel=1e-9)
    assert modality_gap(x, x)["centroid_gap"] == 0.0


# ------------------------------------------------------------------- subsampling
def test_stratified_indices_keep_proportions_and_seed():
    y = np.array([0] * 600 + [1] * 300 + [2] * 100)
    i = stratified_indices(y, 100, seed=3)
    assert len(i) == 100 and np.array_equal(np.bincount(y[i]), [60, 30, 10])
    assert np.array_equal(i, stratified_indices(y, 100, seed=3))
    assert not np.array_equal(i, stratified_indices(y, 100, seed=4))
    assert np.array_equal(stratified_indices(y, 5000, seed=0), np.arange(1000))


# ------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("call,match", [
    (lambda: mmd_permutation_test(np.zeros((5, 2)), np.zeros((5, 3)), bandwidth=1.0), "share the feature dimension"),
    (lambda: mmd_permutation_test(np.zeros((5, 2)), np.zeros((5, 2)), bandwidth=-1.0), "bandwidth must be > 0"),
    (lambda: mmd_permutation_test(np.zeros((5, 2)), np.zeros((5, 2)), bandwidth=1.0, n_permutations=-1),
     "n_permutations must be >= 0"),
    (lambda: mmd_permutation_test(np.zeros((1, 2)), np.zeros((5, 2)), bandwidth=1.0), "at least 2 sample"),
    (lambda: mmd_permutation_test(np.full((3, 2), np.nan), np.zeros((5, 2)), bandwidth=1.0), "NaN"),
    (lambda: mmd_permutation_test(np.zeros(5), np.zeros((5, 2)), bandwidth=1.0), "dimension"),
    (lambda: entropic_ot(np.zeros((3, 2)), np.zeros((3, 2)), eps=0.0), "eps must be > 0"),
    (lambda: exact_ot(np.zeros((30, 2)), np.zeros((3, 2)), max_points=10), "at most max_points=10"),
    (lambda: exact_ot(np.zeros((3, 2)), np.zeros((3, 2)), cost="cos"), "cost must be one of"),
    (lambda: plan_class_purity(np.ones((3, 2)), [0, 1, 0], [0, 5], 2), "y_y must be in 0..1"),
    (lambda: holm_correction([0.1, 2.0]), "probabilities"),
    (lambda: bound_terms(teacher_logits_on_teacher=np.zeros((3, 2)), y_teacher=[0, 1, 0],
                         student_logits=np.zeros((3, 2)), teacher_logits_on_student=np.zeros((3, 2)),
                         y_student=[0, 1, 0], w1=-1.0, tau=1.0), "w1 must be >= 0"),
    (lambda: stratified_indices([0, 1], 0, seed=0), "n must be >= 1"),
    (lambda: rbf_bandwidths(np.zeros((5, 2)), scales=()), "scales must list"),
])
def test_bad_inputs_name_the_parameter(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_diagnose_reuses_the_solvers_consistently():
    from cmkd_lab.diagnostics import diagnose
    torch.manual_seed(0)
    head_t, head_s = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    zs, zt = _gauss(60, 5, 0), _gauss(50, 5, 1, shift=0.5)
    ys, yt = np.arange(60) % 3, np.arange(50) % 3
    bws, eps, cache = rbf_bandwidths(zt), 0.1 * median_cost(zt), {}
    for _ in range(2):  # the second call reads the teacher's Sinkhorn self-term from the cache
        sc, art = diagnose(zs, ys, zt, yt, teacher_head=head_t, student_head=head_s, bandwidth=bws, eps=eps,
                           num_classes=3, keep_plan=True, cache=cache)
        assert sc["sinkhorn_div"] == pytest.approx(sinkhorn_divergence(zs, zt, eps=eps, max_iter=300), rel=1e-9)
    assert sc["w1"] == pytest.approx(exact_ot(zs, zt))
    assert sc["mmd2"] == pytest.approx(mmd2_unbiased(zs, zt, bandwidth=bws))
    assert sc["bound_fa"] == pytest.approx(sc["bound_tau"] * sc["w1"])
    assert art["plan"]["plan"].sum() == pytest.approx(1.0) and len(cache) == 1


def test_diagnose_can_reject_every_class_after_holm():
    # 6 classes each shifted: with P = 100 permutations Holm could never reject (6/101 > 0.05);
    # diagnose raises P to at least 2K/alpha so all six are rejected.
    from cmkd_lab.diagnostics import DiagnosticsSettings, diagnose
    head = torch.nn.Linear(3, 6)
    ys = np.repeat(np.arange(6), 30)
    zt = torch.cat([_gauss(30, 3, k, shift=4.0 * k) for k in range(6)])
    zs = torch.cat([_gauss(30, 3, 10 + k, shift=4.0 * k + 2.0) for k in range(6)])
    sc, art = diagnose(zs, ys, zt, ys, teacher_head=head, student_head=head, bandwidth=rbf_bandwidths(zt),
                       eps=0.5, num_classes=6, settings=DiagnosticsSettings(class_permutations=100))
    assert sc["mmd_class_rejected"] == 6 and all(r["p_holm"] < 0.05 for r in art["class_mmd"])
