"""Property-based tests (hypothesis) of the alignment functions, and fuzzing
of the config parser. Example counts stay modest (the suite runs on 2 cores) and
the examples are derandomized, so CI sees the same cases every time."""
import json
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cmkd_lab.align import COSTS, cost_matrix, label_alignment_loss, mmd, ot_cost
from cmkd_lab.distill import DistillConfig, load_config_file

FAST = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

_vals = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=32)


@st.composite
def clouds(draw, min_n=2, max_n=8):
    """Two point clouds (N, D), (M, D) in float64, plus a permutation of each."""
    d = draw(st.integers(1, 4))
    n, m = draw(st.integers(min_n, max_n)), draw(st.integers(min_n, max_n))
    x = draw(arrays(np.float64, (n, d), elements=_vals))
    y = draw(arrays(np.float64, (m, d), elements=_vals))
    px = draw(st.permutations(range(n)))
    py = draw(st.permutations(range(m)))
    return torch.as_tensor(x), torch.as_tensor(y), list(px), list(py)


# ---------------------------------------------------------------- costs
@FAST
@given(clouds(), st.sampled_from(COSTS))
def test_cost_matrix_nonneg_symmetric_equivariant(c, cost):
    x, y, px, py = c
    M = cost_matrix(x, y, cost)
    assert M.shape == (x.shape[0], y.shape[0])
    assert float(M.min()) >= -1e-9
    torch.testing.assert_close(cost_matrix(y, x, cost), M.T, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(cost_matrix(x[px], y[py], cost), M[px][:, py], rtol=1e-9, atol=1e-9)


@FAST
@given(clouds(), st.sampled_from(["l2", "sqeuclidean", "l1"]))
def test_cost_matrix_zero_on_identical_points(c, cost):
    x = c[0]
    d = torch.diagonal(cost_matrix(x, x.clone(), cost))
    assert float(d.abs().max()) <= 1e-6 * (1 + float(x.abs().max()) ** 2)


# ---------------------------------------------------------------- OT
def _ot(x, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(ot_cost(x, y, **kw))


@FAST
@given(clouds(), st.sampled_from(["l2", "sqeuclidean", "cosine"]), st.sampled_from([0.05, 0.5, 2.0]))
def test_ot_nonneg_finite_and_invariant_to_sample_order(c, cost, eps):
    x, y, px, py = c
    v = _ot(x, y, cost=cost, eps=eps, eps_units="median", max_iter=200)
    assert math.isfinite(v) and v >= -1e-9
    # Reordering either cloud permutes rows/columns of M: the transport cost is unchanged.
    assert _ot(x[px], y[py], cost=cost, eps=eps, eps_units="median", max_iter=200) == pytest.approx(v, rel=1e-6, abs=1e-9)


@FAST
@given(clouds(min_n=3))
def test_ot_symmetric_when_converged(c):
    # Entropic OT between uniform clouds is symmetric in its two arguments (M -> M^T), once Sinkhorn has converged.
    x, y, _, _ = c
    M = cost_matrix(x, y, "sqeuclidean")
    eps = 0.5 * float(M.max()) + 1e-3  # large enough to converge in a few hundred iterations
    assert _ot(x, y, cost="sqeuclidean", eps=eps, max_iter=500) == \
        pytest.approx(_ot(y, x, cost="sqeuclidean", eps=eps, max_iter=500), rel=1e-5, abs=1e-8)


@FAST
@given(clouds(), st.sampled_from([0.01, 0.1, 1.0]))
def test_ot_of_a_cloud_with_itself_is_at_most_eps_log_n(c, eps):
    # The identity coupling costs 0 and has entropy log n; the entropic optimum trades at most
    # eps · (log n² − log n) = eps · log n of cost for entropy.
    x = c[0]
    n = x.shape[0]
    v = _ot(x, x.clone(), cost="sqeuclidean", eps=eps, max_iter=1000)
    assert -1e-9 <= v <= eps * math.log(n) * (1 + 1e-3) + 1e-6


# ---------------------------------------------------------------- LA
@st.composite
def logits(draw):
    b, k = draw(st.integers(1, 6)), draw(st.integers(2, 5))
    s = draw(arrays(np.float64, (b, k), elements=st.floats(-30, 30, width=32)))
    t = draw(arrays(np.float64, (b, k), elements=st.floats(-30, 30, width=32)))
    y = draw(arrays(np.int64, (b,), elements=st.integers(0, k - 1)))
    perm = draw(st.permutations(range(b)))
    return torch.as_tensor(s), torch.as_tensor(t), torch.as_tensor(y), list(perm)


@FAST
@given(logits())
def test_la_between_ce_minus_1_over_e_and_ce(d):
    # With the plug-in κ̂ = p_T(y|z): LA = CE + p log p per sample, and -1/e <= p log p <= 0.
    s, t, y, perm = d
    la = float(label_alignment_loss(s, t, y))
    ce = float(torch.nn.functional.cross_entropy(s, y))
    assert ce - 1 / math.e - 1e-9 <= la <= ce + 1e-9
    assert float(label_alignment_loss(s, t, y, kappa=0.0)) == pytest.approx(ce, rel=1e-12, abs=1e-12)
    # The mean over the batch does not depend on the order of its samples.
    assert float(label_alignment_loss(s[perm], t[perm], y[perm])) == pytest.approx(la, rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------- MMD
@FAST
@given(clouds(), st.sampled_from([0.3, 1.0, 5.0]))
def test_mmd_biased_nonneg_symmetric_zero_on_identical_and_order_free(c, bw):
    x, y, px, py = c
    v = float(mmd(x, y, bandwidth=bw, estimator="biased"))
    assert v >= -1e-12
    assert float(mmd(y, x, bandwidth=bw, estimator="biased")) == pytest.approx(v, rel=1e-9, abs=1e-12)
    assert float(mmd(x[px], y[py], bandwidth=bw, estimator="biased")) == pytest.approx(v, rel=1e-9, abs=1e-12)
    assert abs(float(mmd(x, x.clone(), bandwidth=bw, estimator="biased"))) <= 1e-12


@FAST
@given(clouds(), st.sampled_from([0.3, 1.0, 5.0]))
def test_mmd_unbiased_symmetric_and_order_free(c, bw):
    x, y, px, py = c
    v = float(mmd(x, y, bandwidth=bw))
    assert float(mmd(y, x, bandwidth=bw)) == pytest.approx(v, rel=1e-9, abs=1e-12)
    assert float(mmd(x[px], y[py], bandwidth=bw)) == pytest.approx(v, rel=1e-9, abs=1e-12)


# ---------------------------------------------------------------- config fuzzing
_FIELDS = sorted(DistillConfig().to_dict())
_json = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True)
                     | st.text(max_size=8), lambda kids: st.lists(kids, max_size=3)
                     | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=6)
_keys = st.sampled_from(_FIELDS) | st.text(max_size=10)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.dictionaries(_keys, _json, max_size=5))
def test_from_dict_fuzz_only_clean_errors_and_roundtrip(d):
    try:
        cfg = DistillConfig.from_dict(d)
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert msg and "\n" not in msg and len(msg) < 2000
        unknown = [k for k in d if k not in _FIELDS]
        if unknown:
            assert "unknown keys" in msg
        return
    assert not [k for k in d if k not in _FIELDS]
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg
    assert DistillConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), st.sampled_from([".json", ".toml", ".cfg"]))
def test_config_file_fuzz_only_clean_errors(tmp_path, blob, suffix):
    p = tmp_path / f"c{suffix}"
    p.write_bytes(blob)
    try:
        d = load_config_file(p)
        DistillConfig.from_dict(d, source=f"--config {p}")
    except (ValueError, TypeError) as e:
        assert str(e) and "\n" not in str(e).strip()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(_FIELDS) | st.text(max_size=6),
                          st.text(max_size=10) | _json.map(json.dumps)), max_size=4))
def test_cli_set_fuzz_only_clean_errors(pairs):
    import argparse

    from cmkd_lab.cli import build_config
    args = argparse.Namespace(preset=None, config=None, set=[f"{k}={v}" for k, v in pairs], task=None)
    try:
        build_config(args)
    except (ValueError, TypeError) as e:
        assert str(e)
