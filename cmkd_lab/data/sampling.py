"""Pairing modes: which teacher samples a student batch is aligned with.

* ``unpaired`` (default): teacher batches are drawn from their own shuffled
  stream, independently of the student batch. The sampler never sees the
  student indices, so no index correspondence can reach a loss.
* ``class-matched``: for each student sample, a random teacher sample of the
  same class (what the paper's public code effectively does).
* ``paired``: the teacher-modality view of the same instance (the task must
  carry ``paired_teacher_x``).
"""
from __future__ import annotations

import numpy as np

from .._validation import check_choice
from .._seeds import TEACHER_SAMPLER, numpy_rng

__all__ = ["PAIRINGS", "TeacherBatchSampler"]

PAIRINGS = ("unpaired", "class-matched", "paired")


class TeacherBatchSampler:
    """Draws indices into the teacher feature bank for each student batch.

    Parameters
    ----------
    pairing : {"unpaired", "class-matched", "paired"}
    bank_labels : array (M,)
        Labels of the bank's samples (the paired bank for ``paired``).
    num_classes : int
    seed : int
        Seeds an RNG stream of its own, separate from the student's.
    stream : int
        0 (default) or a number that selects another independent stream for the same seed.
    """

    def __init__(self, pairing: str, bank_labels: np.ndarray, num_classes: int, *, seed: int = 0, stream: int = 0):
        self.pairing = check_choice("pairing", pairing, PAIRINGS)
        self.bank_labels = np.asarray(bank_labels, dtype=np.int64)
        # stream > 0: an independent sequence for the same seed (the unlabelled student batches' teacher draws)
        self.rng = numpy_rng(seed, TEACHER_SAMPLER, *([stream] if stream else []))
        self._stream = np.empty(0, dtype=np.int64)
        if pairing == "class-matched":
            self.by_class = [np.flatnonzero(self.bank_labels == k) for k in range(num_classes)]

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "stream": self._stream.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self._stream = np.asarray(state["stream"], dtype=np.int64)

    def unpaired(self, batch_size: int) -> np.ndarray:
        """``batch_size`` teacher indices from the independent shuffled stream."""
        out = []
        need = batch_size
        while need > 0:
            if self._stream.size == 0:
                self._stream = self.rng.permutation(self.bank_labels.size)
            take = self._stream[:need]
            self._stream = self._stream[need:]
            out.append(take)
            need -= take.size
        return np.concatenate(out)

    def class_matched(self, student_labels: np.ndarray) -> np.ndarray:
        """One random same-class teacher index per student label."""
        out = np.empty(student_labels.shape[0], dtype=np.int64)
        for k in np.unique(student_labels):
            pool = self.by_class[k]
            if pool.size == 0:
                raise ValueError(
                    f"pairing='class-matched' needs teacher samples of every student class; "
                    f"class {k} has none in the teacher's training split"
                )
            where = student_labels == k
            out[where] = pool[self.rng.integers(0, pool.size, size=int(where.sum()))]
        return out

    def draw(self, student_idx: np.ndarray, student_labels: np.ndarray) -> np.ndarray:
        """Teacher bank indices for a student batch."""
        if self.pairing == "unpaired":
            return self.unpaired(len(student_idx))
        if self.pairing == "class-matched":
            return self.class_matched(np.asarray(student_labels))
        return np.asarray(student_idx, dtype=np.int64)
