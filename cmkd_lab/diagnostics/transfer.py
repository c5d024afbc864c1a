"""Cross-modal transfer of a linear classifier: trained on one set, read on the other.

:func:`linear_transfer` fits a standardised logistic regression
(scikit-learn ``StandardScaler`` + ``LogisticRegression``) on one set and
tests it on the other, both ways, as the sets stand and after centring each
set on its own mean (removing the gap vector), against each side's own
cross-validated accuracy and the best constant guess.

Cross-fitting makes the numbers comparable: each side is cut into the same
number of stratified folds (seeded); the model fitted without fold j of A is
tested on fold j of A (own accuracy) and on fold j of B (transfer). So a
transfer accuracy uses the same models, trained on the same amount of data,
as the own accuracy it is compared with, and two identical sets give equal
numbers.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from .._validation import check_int, check_positive

__all__ = ["linear_transfer"]


def _folds(y: np.ndarray, n_splits: int, seed: int):
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y)
    counts = counts[counts > 0]
    if counts.min() >= n_splits:
        return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)), True
    return list(KFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)))), False


def linear_transfer(z_a, y_a, z_b, y_b, *, names: Sequence[str] = ("A", "B"), cv: int = 5, seed: int = 0,
                    C: float = 1.0, max_iter: int = 1000) -> dict:
    """A linear classifier trained on each set, read on both.

    Parameters
    ----------
    z_a : ndarray (N, D);  y_a : ndarray (N,) int labels
    z_b : ndarray (M, D);  y_b : ndarray (M,) int labels
    names : (name of A, name of B)
    cv : int >= 2
        Folds per side (lowered to the smallest class count when a class is
        rarer; plain folds when a class has a single sample).
    seed : int
    C : float > 0
        Inverse regularisation of the logistic regression.
    max_iter : int

    Returns
    -------
    dict
        ``matrix_raw`` and ``matrix_centred`` (2, 2): row = training side,
        column = test side, diagonal = own cross-validated accuracy;
        ``own`` {name: acc}, ``transfer`` {"A→B": {"raw", "centred"}, ...},
        ``chance`` {name: share of the most frequent class}, ``cv``,
        ``stratified``, ``n_not_converged`` (fits that hit ``max_iter``).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_int("cv", cv, minimum=2)
    check_int("seed", seed, minimum=0)
    check_positive("C", C)
    check_int("max_iter", max_iter, minimum=1)
    Z = [np.asarray(z_a, dtype=np.float64), np.asarray(z_b, dtype=np.float64)]
    Y = [np.asarray(y_a, dtype=np.int64), np.asarray(y_b, dtype=np.int64)]
    for s, name in enumerate(names):
        if np.unique(Y[s]).size < 2:
            raise ValueError(f"the transfer test needs at least 2 classes in {name}; got {np.unique(Y[s]).size}")
    smallest = min(int(np.bincount(y)[np.bincount(y) > 0].min()) for y in Y)
    n_splits = max(2, min(cv, smallest, min(len(Y[0]), len(Y[1]))))
    folds = [_folds(Y[s], n_splits, seed) for s in (0, 1)]
    means = [z.mean(0) for z in Z]  # (D,) each
    correct = np.zeros((2, 2, 2))  # (train side, test side, raw / centred)
    tested = np.zeros((2, 2))
    not_conv = 0
    for s in (0, 1):
        o = 1 - s
        for (tr, te), (_, te_o) in zip(folds[s][0], folds[o][0]):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always", ConvergenceWarning)
                model.fit(Z[s][tr], Y[s][tr])
            not_conv += sum(issubclass(x.category, ConvergenceWarning) for x in w)
            own = int((model.predict(Z[s][te]) == Y[s][te]).sum())
            correct[s, s] += own  # centring a set does not change a standardised model's own accuracy
            tested[s, s] += len(te)
            correct[s, o, 0] += int((model.predict(Z[o][te_o]) == Y[o][te_o]).sum())
            # Centred: the other set moved onto this set's mean (the standardised model is unchanged by
            # centring its own training data, so this equals training and testing on centred sets).
            shifted = Z[o][te_o] - means[o] + means[s]
            correct[s, o, 1] += int((model.predict(shifted) == Y[o][te_o]).sum())
            tested[s, o] += len(te_o)
    acc = correct / tested[:, :, None]  # (2, 2, 2)
    a, b = names
    chance = {n: float(np.bincount(y).max() / len(y)) for n, y in zip(names, Y)}
    return {"matrix_raw": acc[:, :, 0].tolist(), "matrix_centred": acc[:, :, 1].tolist(),
            "own": {a: float(acc[0, 0, 0]), b: float(acc[1, 1, 0])},
            "transfer": {f"{a}→{b}": {"raw": float(acc[0, 1, 0]), "centred": float(acc[0, 1, 1])},
                         f"{b}→{a}": {"raw": float(acc[1, 0, 0]), "centred": float(acc[1, 0, 1])}},
            "chance": chance, "cv": int(n_splits), "stratified": bool(folds[0][1] and folds[1][1]),
            "n_not_converged": int(not_conv), "model": f"StandardScaler + LogisticRegression(C={C})"}
