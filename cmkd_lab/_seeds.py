"""Named random streams: every place that derives a random generator from a run's seed says which
stream it draws, here, so that two uses never share one by accident.

A stream is a fixed number mixed with the seed (``np.random.SeedSequence([seed, STREAM])`` for NumPy,
``seed + OFFSET`` for torch generators). The values are those the package has always used: changing one
changes every result drawn from it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["STUDENT_SUBSET", "TEACHER_SAMPLER", "HAPT_FAST_SUBSET", "REFERENCE_SUBSET", "DIGITS_SPEECH_TASK",
           "AV_SPLITS", "SYNTHETIC_LAYOUT", "TEACHER_TORCH", "STUDENT_BATCHES", "UNLABELLED_BATCHES",
           "REPLICATE", "CONTROL_STREAM", "CLASS_DRAWS", "numpy_rng", "training_seed"]

# NumPy SeedSequence streams, mixed with the run's seed.
STUDENT_SUBSET = 7919        # the stratified labelled subset of student_fraction
TEACHER_SAMPLER = 104729     # which teacher features each student batch meets (pairing modes)
HAPT_FAST_SUBSET = 4242      # the fast (quarter) subset of HAPT
REFERENCE_SUBSET = 4242      # the diagnostics' stratified reference sets
DIGITS_SPEECH_TASK = 1797    # digits-speech: the image split, the fast subset, the constructed pairs
AV_SPLITS = 0xA11D           # audio-visual tasks: validation and teacher/student splits
SYNTHETIC_LAYOUT = 1234      # the synthetic generator's class layout and view maps (no seed: fixed)
REPLICATE = 0x5EED           # the training replicate (DistillConfig.replicate): another draw of the training noise
CONTROL_STREAM = 0xC0DE      # teacher controls: the class derangement and the label shuffles
CLASS_DRAWS = 0xC1A5         # class-aware methods: which teacher features of a class a student sample meets

# torch generator offsets added to the seed.
TEACHER_TORCH = 1            # teacher initialisation and batch order
STUDENT_BATCHES = 17         # the student's batch order
UNLABELLED_BATCHES = 29      # the unlabelled student batches


def numpy_rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    """A NumPy generator for ``seed`` on ``stream`` (and optional sub-streams ``more``)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream), *map(int, more)]))


def training_seed(seed: int, replicate: int = 0) -> int:
    """The seed of a run's training noise (student initialisation, batch order, teacher draws): ``seed``
    itself for replicate 0, another value per replicate (the data subset and the teacher stay ``seed``'s)."""
    if replicate == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), REPLICATE, int(replicate)]).generate_state(1)[0])
