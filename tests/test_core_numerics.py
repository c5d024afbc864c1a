"""Issue 23's core items: one Sinkhorn divergence behind diagnose and explore_gap (numbers unchanged), the
run-time MMD diagnostic and the OT diagnostics at any feature scale, one rule for a task's split keys."""
import math

import numpy as np
import pytest
import torch

from cmkd_lab.diagnostics import (diagnose, entropic_ot, exact_ot, explore_gap, median_cost, plan_class_purity,
                                  rbf_bandwidths, sinkhorn_divergence)


def _gauss(n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


def _inline_divergence(x, y, eps, max_iter):
    """What diagnose and explore_gap computed inline before they called sinkhorn_divergence."""
    ent = entropic_ot(x, y, eps=eps, cost="l2", max_iter=max_iter, return_plan=True)
    xx = entropic_ot(x, x, eps=eps, cost="l2", max_iter=max_iter)["objective"]
    yy = entropic_ot(y, y, eps=eps, cost="l2", max_iter=max_iter)["objective"]
    return ent, ent["objective"] - 0.5 * (xx + yy)


def test_diagnose_computes_the_sinkhorn_divergence_as_it_did_inline():
    torch.manual_seed(0)
    head_t, head_s = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    zs, zt = _gauss(60, 5, 0), _gauss(50, 5, 1, shift=0.5)
    ys, yt = np.arange(60) % 3, np.arange(50) % 3
    bws, eps, cache = rbf_bandwidths(zt), 0.1 * median_cost(zt), {}
    ent, div = _inline_divergence(zs, zt, eps, 300)
    for _ in range(2):  # the second call takes the teacher's self-term from the cache
        sc, art = diagnose(zs, ys, zt, yt, teacher_head=head_t, student_head=head_s, bandwidth=bws, eps=eps,
                           num_classes=3, cache=cache)
        assert sc["sinkhorn_div"] == div  # bit for bit
        assert sc["ot_cost"] == ent["cost"] and sc["ot_marginal_err"] == ent["marginal_error"]
        assert sc["purity_entropic"] == plan_class_purity(ent["plan"], ys, yt, 3)["purity"]
    assert list(cache.values()) == [entropic_ot(zt, zt, eps=eps, max_iter=300)["objective"]]


def test_explore_gap_computes_the_sinkhorn_divergence_as_it_did_inline():
    a, b = _gauss(40, 4, 2).numpy(), _gauss(30, 4, 3, shift=1.0).numpy()
    r = explore_gap(a, b, n_permutations=0, eps_relative=0.2, sinkhorn_iter=150)
    eps = r["settings"]["eps_absolute"]
    ent, div = _inline_divergence(torch.as_tensor(a), torch.as_tensor(b), eps, 150)
    assert r["distance"]["sinkhorn"]["divergence"] == div
    assert r["distance"]["sinkhorn"]["transport_cost"] == ent["cost"]


def test_sinkhorn_divergence_full_returns_its_terms_and_takes_a_known_self_term():
    x, y = _gauss(20, 3, 4), _gauss(25, 3, 5, shift=0.3)
    full = sinkhorn_divergence(x, y, eps=0.5, full=True)
    assert full["divergence"] == sinkhorn_divergence(x, y, eps=0.5)
    assert full["xy"]["plan"].shape == (20, 25)
    assert sinkhorn_divergence(x, y, eps=0.5, y_self=full["yy"]) == full["divergence"]


@pytest.mark.parametrize("scale", [1e19, 1e-19])
def test_the_run_time_diagnostics_follow_the_feature_scale_in_float32(scale):
    """diagnose on float32 features ×1e19 (whose squares overflow float32) and ×1e-19: the MMD tests with the
    bandwidths scaled alike give the same numbers, W1, the OT cost and the Sinkhorn divergence (ε scaled alike)
    are c ×, the purities and the gap ratio are the same."""
    torch.manual_seed(0)
    head = torch.nn.Linear(5, 3)
    zs, zt = _gauss(60, 5, 0).float(), _gauss(50, 5, 1, shift=0.5).float()
    ys, yt = np.arange(60) % 3, np.arange(50) % 3
    bws, eps = rbf_bandwidths(zt), 0.1 * median_cost(zt)
    ref, _ = diagnose(zs, ys, zt, yt, teacher_head=head, student_head=head, bandwidth=bws, eps=eps, num_classes=3)
    got, _ = diagnose(zs * scale, ys, zt * scale, yt, teacher_head=head, student_head=head,
                      bandwidth=[b * scale for b in bws], eps=eps * scale, num_classes=3)
    for k in ("mmd2", "mmd2_linear", "mmd_class_mean", "purity", "purity_entropic", "gap_ratio", "mean_cos"):
        if ref[k] is None:  # mean_cos of means within their sampling noise of the origin: None at every scale
            assert got[k] is None, k
            continue
        assert got[k] == pytest.approx(ref[k], rel=2e-3, abs=1e-6), k
    for k in ("mmd_p", "mmd_linear_p", "mmd_class_rejected"):
        assert got[k] == pytest.approx(ref[k], rel=1e-3, abs=1e-6), k
    for k in ("w1", "ot_cost", "sinkhorn_div", "centroid_gap"):
        assert math.isfinite(got[k]) and got[k] / scale == pytest.approx(ref[k], rel=2e-3, abs=1e-6), k


@pytest.mark.parametrize("scale", [1e-30, 1e30, 1e150])
def test_exact_ot_and_median_cost_follow_the_scale(scale):
    x, y = _gauss(30, 4, 6), _gauss(35, 4, 7, shift=0.7)
    w, plan = exact_ot(x, y, return_plan=True)
    ws, plan_s = exact_ot(x * scale, y * scale, return_plan=True)
    assert ws / scale == pytest.approx(w, rel=1e-9) and np.allclose(plan_s, plan)
    assert exact_ot(x * scale, y * scale, cost="sqeuclidean") / scale ** 2 == pytest.approx(
        exact_ot(x, y, cost="sqeuclidean"), rel=1e-9)
    assert median_cost(x * scale) / scale == pytest.approx(median_cost(x), rel=1e-9)


def test_median_cost_when_most_pairs_coincide_is_still_a_scale():
    z = np.zeros((10, 2))
    z[0] = [3e-20, 4e-20]  # one point apart: the median distance is 0, the mean is not
    assert median_cost(z) == pytest.approx(2 * 9 * 5e-20 / 45)
    assert median_cost(np.zeros((4, 2))) == 1.0  # every point equal: no scale at all


def test_one_rule_for_the_split_keys_of_a_task():
    from cmkd_lab.data import CrossModalTask, Split
    rng = np.random.default_rng(0)

    def side(extra=None):
        sp = {s: Split(rng.normal(size=(10, 3)).astype(np.float32), np.arange(10) % 2) for s in ("train", "val",
                                                                                                  "test")}
        return {**sp, **(extra or {})}
    with pytest.raises(ValueError, match=r"student has unknown keys \['dev'\]; the keys are \('train', 'val', "
                                         r"'test'\)"):
        CrossModalTask("t", ["a", "b"], side(), side({"dev": side()["train"]}))
    with pytest.raises(ValueError, match=r"teacher must have keys \('train', 'val', 'test'\); missing \['val'\]"):
        CrossModalTask("t", ["a", "b"], {k: v for k, v in side().items() if k != "val"}, side())
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 2
    with pytest.raises(ValueError, match=r"teacher_splits must have keys \('train', 'val', 'test'\); missing "
                                         r"\['val'\]"):
        CrossModalTask.from_arrays(X, y, X, y, teacher_splits={"train": np.arange(50), "test": np.arange(50, 60)})
