"""What the class-aware methods share: the teacher's feature bank grouped by class (the classes the
teacher gives its samples — a teacher control renames them), draws of same-class teacher features for
a batch of student labels on a stream of their own, the teacher's class centroids, and the student's
confident pseudo-labels for unlabelled data.

No pair is used: a student sample of class k meets teacher features of class k drawn at random among
the teacher's own samples, never the teacher view of the same instance.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from ..._seeds import CLASS_DRAWS, numpy_rng, training_seed

__all__ = ["ClassBank", "pseudo_labels"]


class ClassBank:
    """The trainer's feature bank (M, D) with its labels (M,), grouped by class.

    Parameters
    ----------
    trainer : Trainer
        Reads ``bank``, ``bank_y_np``, ``task.num_classes`` and the training seed.
    stream : int
        Which of the method's random streams draws the teacher features (0: labelled batch, 1: unlabelled).
    """

    def __init__(self, trainer, stream: int = 0):
        self.z, self.y = trainer.bank, np.asarray(trainer.bank_y_np)
        self.K = trainer.task.num_classes
        self.members = [np.flatnonzero(self.y == k) for k in range(self.K)]
        cfg = trainer.config
        self.rng = numpy_rng(training_seed(cfg.seed, cfg.replicate), CLASS_DRAWS, stream)

    def has(self, labels: np.ndarray) -> np.ndarray:
        """(B,) whether the bank holds a teacher sample of each label."""
        sizes = np.array([m.size for m in self.members])
        return sizes[np.asarray(labels)] > 0

    def draw(self, labels: np.ndarray) -> torch.Tensor:
        """Teacher features (B, D): for each label, a bank sample of that class drawn at random (labels the
        bank lacks must be filtered out with :meth:`has` first)."""
        idx = np.array([self.members[k][self.rng.integers(self.members[k].size)] for k in np.asarray(labels)],
                       dtype=np.int64)
        return self.z[torch.as_tensor(idx, device=self.z.device)]

    def centroids(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(K, D) class means of the bank and a (K,) mask of the classes it holds."""
        D = self.z.shape[1]
        mu = torch.zeros(self.K, D, device=self.z.device)
        have = torch.zeros(self.K, dtype=torch.bool, device=self.z.device)
        for k, m in enumerate(self.members):
            if m.size:
                mu[k] = self.z[torch.as_tensor(m, device=self.z.device)].mean(0)
                have[k] = True
        return mu, have

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def pseudo_labels(logits: torch.Tensor, threshold: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """(labels (U,), mask (U,)): the student's predicted classes and which are at least ``threshold``
    confident (no gradient)."""
    with torch.no_grad():
        p = torch.softmax(logits.float(), dim=1)
        conf, lab = p.max(1)
    return lab, conf >= threshold


def take(mask: torch.Tensor, *tensors: Optional[torch.Tensor]):
    """``tensors`` restricted to the rows where ``mask`` is True."""
    return [None if t is None else t[mask] for t in tensors]
