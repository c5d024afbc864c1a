"""c2kd pieces against known answers, and a short run."""
import pytest
import torch
from scipy.stats import kendalltau

from cmkd_lab import distill
from cmkd_lab.distill import DistillConfig, PairingError, Trainer
from cmkd_lab.distill.methods.c2kd import kendall_tau, non_target_kl


def test_kendall_tau_matches_scipy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 7, generator=g), torch.randn(6, 7, generator=g)
    ours = kendall_tau(a, b)
    for i in range(6):
        assert abs(float(ours[i]) - kendalltau(a[i].numpy(), b[i].numpy()).statistic) < 1e-6


def test_non_target_kl_ignores_target_and_is_zero_for_equal_non_targets():
    s = torch.tensor([[5.0, 1.0, 2.0]])
    t = torch.tensor([[-3.0, 1.0, 2.0]])  # only the target logit differs
    assert float(non_target_kl(s, t, torch.tensor([0]), 2.0)) < 1e-7
    assert float(non_target_kl(s, t, torch.tensor([1]), 2.0)) > 0


def test_c2kd_runs_paired_and_refuses_unpaired(small_task):
    r = distill(small_task, "c2kd", DistillConfig(epochs=1, teacher_epochs=2, pairing="paired"))
    assert r["status"] == "completed" and "selected" in r["history"][0]
    with pytest.raises(PairingError):
        Trainer(small_task, "c2kd", DistillConfig(epochs=1))
    with pytest.raises(ValueError, match="c2kd_tau"):
        Trainer(small_task, "c2kd", DistillConfig(epochs=1, pairing="paired", extra={"c2kd_tau": 3}))
