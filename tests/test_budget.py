"""The training budget with few labels: an epoch of one step is named in a warning, and min_steps raises
the epochs so that the student takes at least that many optimiser steps (the schedule follows)."""
import math
import warnings

import pytest

from cmkd_lab import DistillConfig
from cmkd_lab.distill import Trainer


def test_a_handful_of_steps_is_named_and_min_steps_raises_the_epochs(small_task):
    cfg = DistillConfig(epochs=3, teacher_epochs=1, batch_size=32, student_fraction=0.1)
    with pytest.warns(RuntimeWarning, match=r"student_fraction=0.1 leaves \d+ labelled training samples: 1 optimiser "
                                            r"step\(s\) per epoch at batch_size=32, 3 steps in 3 epochs; .*min_steps"):
        tr = Trainer(small_task, "ce", cfg)
    assert tr.steps_per_epoch == 1 and tr.epochs == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough steps: no warning
        tr = Trainer(small_task, "ce", cfg.replace(min_steps=250))
    assert tr.epochs == 250
    r = tr.fit()
    assert r["epochs"] == 250 and r["epochs_requested"] == 3 and r["steps_total"] == 250
    assert len(r["history"]) == 250 and sum(h["steps"] for h in r["history"]) == 250
    # The cosine schedule spans the raised budget: it reaches ~0 at the last epoch, not at epoch 3.
    lrs = [h["lr"] for h in r["history"]]
    assert lrs[0] == pytest.approx(cfg.lr) and lrs[2] > 0.99 * cfg.lr and lrs[-1] < 0.001 * cfg.lr
    assert lrs[-1] == pytest.approx(cfg.lr * 0.5 * (1 + math.cos(math.pi * 249 / 250)))


def test_min_steps_leaves_long_epochs_alone(small_task):
    cfg = DistillConfig(epochs=2, teacher_epochs=1, batch_size=32, min_steps=5)
    tr = Trainer(small_task, "ce", cfg)
    assert tr.steps_per_epoch >= 5 and tr.epochs == 2
    with pytest.raises(ValueError, match="min_steps must be >= 0"):
        DistillConfig(min_steps=-1)
