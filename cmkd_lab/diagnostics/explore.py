"""Explore the gap between two sets of embeddings, without training anything.

:func:`explore_gap` takes two feature sets that live in one space (image vs
text embeddings, a teacher's vs a student's features …), optionally their
labels and pairs, and measures how far apart they are, in what way, and
whether a classifier trained on one reads the other. Every quantity comes
with a one-sentence reading. It builds on the diagnostics of this package:
the MMD permutation test, exact and entropic OT, transport-plan class
purity, the modality-gap summary and the pooled plan.

The **gap vector** is the difference of the two means — the "modality gap"
that Liang et al. (NeurIPS 2022) found between image and text embeddings of
contrastive models. Since W2²(A, B) = ‖mean A − mean B‖² + W2²(A − mean A,
B − mean B), its squared norm over W2² is the share of the gap that a shift
explains; the rest is a change of shape.

:func:`~cmkd_lab.diagnostics.run_gap.explore_run_gap` does the same between a
finished run's teacher features and its student's first and last feature
snapshots (before and after distillation).
"""
from __future__ import annotations

import math
import time
from types import SimpleNamespace
from typing import Optional, Sequence

import numpy as np
import torch

from .._validation import (check_bool, check_class_names, check_float32_range, check_indices, check_int,
                           check_positive)
from ._gap_text import (cka as cka_text, centred as centred_text, centroid as centroid_text, f as fmt,
                        gap_vector as gap_vector_text, mmd as mmd_text, pct, per_class as per_class_text,
                        prior_tv as prior_tv_text, procrustes as procrustes_text, purity as purity_text,
                        retrieval as retrieval_text, sinkhorn as sinkhorn_text, transfer as transfer_text,
                        w1 as w1_text)
from ..store import jsonable
from ._common import as_features, stratified_indices
from .core import pool_plan
from .gap import modality_gap
from .mmd_test import class_conditional_mmd, mmd_permutation_test, rbf_bandwidths
from .paired import paired_measures
from .transfer import linear_transfer
from .transport import exact_ot, median_cost, plan_class_purity, sinkhorn_divergence

__all__ = ["GapResult", "explore_gap"]

KS = (1, 5, 10)


class GapResult(dict):
    """What :func:`explore_gap` returns: a JSON-serialisable dict (``json.dumps(result)``
    works as is) whose attribute ``arrays`` keeps the features and labels it was
    computed on (not serialised), so that :func:`cmkd_lab.viz.gap_figures` can
    project them."""

    arrays: dict

    def __init__(self, *args, arrays: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrays = arrays or {}


# ------------------------------------------------------------------ inputs
def _check_names(names) -> tuple:
    if isinstance(names, str) or not isinstance(names, (list, tuple)) or len(names) != 2:
        raise ValueError(f"names must be two names, one per set, e.g. ('image', 'text'); got names={names!r}")
    a, b = (str(n).strip() for n in names)
    if not a or not b or a == b:
        raise ValueError(f"names must be two distinct non-empty names; got names={tuple(names)!r}")
    return a, b


def _features(name, z, normalize: bool) -> np.ndarray:
    arr = as_features(name, z, min_len=4).cpu().double().numpy()  # (N, D)
    check_float32_range(name, arr)  # squared distances (W2², the gap vector's share) then stay finite
    if normalize:
        big = np.abs(arr).max(1, keepdims=True)  # (N, 1): each row over its largest entry first (no underflow)
        if np.any(big == 0):
            raise ValueError(f"{name} has {int(np.sum(big == 0))} all-zero rows, which normalize=True cannot "
                             "scale to unit length: drop them or pass normalize=False")
        arr = arr / big
        arr = arr / np.linalg.norm(arr, axis=1, keepdims=True)
    return arr


def _labels(y_a, y_b, n_a: int, n_b: int, class_names):
    if (y_a is None) != (y_b is None):
        given, missing = ("y_a", "y_b") if y_b is None else ("y_b", "y_a")
        raise ValueError(f"labels must be given for both sets or neither: got {given} but {missing}=None")
    if y_a is None:
        if class_names is not None:
            raise ValueError("class_names needs labels: pass y_a and y_b too, or drop class_names")
        return None, None, 0, None
    raw = []
    for name, y, n in (("y_a", y_a, n_a), ("y_b", y_b, n_b)):
        y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of labels, one per row; got shape {y.shape}")
        if y.shape[0] != n:
            z = "z_a" if name == "y_a" else "z_b"
            raise ValueError(f"{name} must have one label per row of {z} ({n}); got {y.shape[0]}")
        raw.append(y)
    if any(y.dtype.kind in "USO" for y in raw):  # names, not indices: encode them jointly
        if not all(y.dtype.kind in "USO" for y in raw):
            raise TypeError(f"y_a and y_b must both hold class indices or both hold class names; got dtypes "
                            f"{raw[0].dtype} and {raw[1].dtype}")
        names = sorted({str(v) for y in raw for v in y})
        lookup = {c: k for k, c in enumerate(names)}
        ys = [np.array([lookup[str(v)] for v in y], dtype=np.int64) for y in raw]
        if class_names is not None:
            raise ValueError("class_names is for integer labels; string labels are their own names")
        return ys[0], ys[1], len(names), names
    from .._validation import check_labels
    ys = [check_labels(nm, y, None) for nm, y in zip(("y_a", "y_b"), raw)]
    K = int(max(ys[0].max(), ys[1].max())) + 1
    if class_names is not None:
        class_names = check_class_names(class_names)
        if len(class_names) < K:
            raise ValueError(f"class_names must name every class 0..{K - 1}; got {len(class_names)} names")
        K = len(class_names)
    return ys[0], ys[1], K, class_names or [str(k) for k in range(K)]


def _pairs(pairs, n_a: int, n_b: int):
    if pairs is None or pairs is False:
        return None, None
    if pairs is True:
        if n_a != n_b:
            raise ValueError(f"pairs=True needs as many rows in z_b as in z_a (row i of each is one instance); got "
                             f"{n_a} and {n_b}: pass an array of (row in z_a, row in z_b) pairs instead")
        return np.arange(n_a), "rows"
    if isinstance(pairs, str):
        raise TypeError(f"pairs must be True (row i of z_a and row i of z_b are one instance) or an integer array "
                        f"of shape (P, 2); got pairs={pairs!r}: pass pairs=True for row-aligned sets")
    p = pairs.detach().cpu().numpy() if isinstance(pairs, torch.Tensor) else np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"pairs must be True or an integer array of shape (P, 2) holding (row in z_a, row in z_b); "
                         f"got shape {p.shape}")
    ia = check_indices("pairs[:, 0]", p[:, 0], n_a)
    ib = check_indices("pairs[:, 1]", p[:, 1], n_b)
    if ia.size < 4:
        raise ValueError(f"pairs must hold at least 4 pairs; got {ia.size}")
    return np.stack([ia, ib], 1), "index array"


def _sub(n: int, y, k: int, seed: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    if y is not None:
        return stratified_indices(y, k, seed)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4243]))
    return np.sort(rng.choice(n, size=k, replace=False))


# ------------------------------------------------------------------ the measures
def explore_gap(z_a, z_b, *, y_a=None, y_b=None, pairs=None, names: Sequence[str] = ("A", "B"),
                class_names: Optional[Sequence[str]] = None, max_points: int = 2000, n_permutations: int = 200,
                alpha: float = 0.05, cv: int = 5, normalize: bool = False, eps_relative: float = 0.1,
                sinkhorn_iter: int = 300, seed: int = 0, device: str = "auto") -> GapResult:
    """How far apart two embedding sets are, in what way, and whether a linear
    classifier trained on one reads the other; each quantity with a reading.

    Parameters
    ----------
    z_a : array or Tensor (N, D)
        The first set (numpy or torch, any float or integer dtype), finite
        and within float32's range (as ``CrossModalTask.from_arrays`` asks).
        Every number of the result follows the features' scale: times 1, c
        or c² for features times c.
    z_b : array or Tensor (M, D)
        The second set, in the same D-dimensional space.
    y_a : array (N,), optional
    y_b : array (M,), optional
        Labels of each set (both or neither): integer class indices 0..K−1, or
        class names (strings, encoded jointly in sorted order).
    pairs : True or array (P, 2), optional
        ``True``: row i of ``z_a`` and row i of ``z_b`` are the same instance
        (N == M). An integer array: each row (i, j) pairs ``z_a[i]`` with
        ``z_b[j]``, one-to-one (no row used twice; with several captions per
        image, average them or keep one). Enables retrieval, CKA and Procrustes.
    names : (str, str)
        Names of the two sets in readings and figures.
    class_names : sequence of str, optional
        Names of the integer classes.
    max_points : int >= 10
        Cap per set (and on the pairs) for the quadratic parts: MMD tests,
        exact and entropic OT, transport purity, retrieval, CKA, Procrustes.
        Larger sets are subsampled, stratified by class when there are
        labels, seeded; ``result["subsample"]`` says to how many. Exact OT
        grows as N³ (about 5 s at 2000 on one CPU core). Centroids, the gap
        vector and the linear classifiers use every row.
    n_permutations : int >= 0
        Permutations of the MMD test (p-values >= 1 / (1 + n_permutations)).
    alpha : float in (0, 1)
        Level of the tests (family-wise, Holm, for the per-class tests).
    cv : int >= 2
        Folds of the cross-fitted linear classifiers.
    normalize : bool
        Scale every row to unit length first (as CLIP-like models compare
        embeddings: Euclidean distances then rank like cosine similarities).
    eps_relative : float > 0
        Entropic OT ε as a multiple of the median distance within A ∪ B.
    sinkhorn_iter : int >= 1
    seed : int >= 0
        Subsamples, permutations, folds and the pair halves.

        The test after centring treats the two means as known (they are
        estimated from the same rows), so its p-value is approximate.
    device : str
        ``auto`` (a CUDA GPU when there is one), ``cpu``, ``cuda``: where the
        torch parts run (MMD, entropic OT, retrieval); exact OT and the
        classifiers run on the CPU.

    Returns
    -------
    GapResult
        A dict with ``distance`` (MMD², W1, Sinkhorn divergence, centroids),
        ``gap_vector`` (the shift and what is left once it is removed),
        ``classes`` and ``transfer`` (with labels), ``paired`` (with pairs),
        ``plan`` (the class-sorted pooled plan, for the figure), ``readings``
        (every sentence, in order), ``headline``, ``subsample``, ``settings``,
        ``timings_s`` and ``notes``. Each measure is a dict of numbers plus a
        ``reading``.
    """
    from ..distill.runtime import resolve_device

    a, b = _check_names(names)
    check_int("max_points", max_points, minimum=10)
    check_int("n_permutations", n_permutations, minimum=0)
    check_positive("alpha", alpha)
    if not alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got alpha={alpha!r}")
    check_int("cv", cv, minimum=2)
    check_bool("normalize", normalize)
    check_positive("eps_relative", eps_relative, hint="0.05-0.5 is the usual range")
    check_int("sinkhorn_iter", sinkhorn_iter, minimum=1)
    check_int("seed", seed, minimum=0)
    dev = resolve_device(device)
    t_all = time.perf_counter()
    times, notes = {}, []

    A = _features("z_a", z_a, normalize)
    B = _features("z_b", z_b, normalize)
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"z_b must have the same feature dimension as z_a ({A.shape[1]}); got {B.shape[1]}: "
                         "project both into one space first")
    ya, yb, K, cnames = _labels(y_a, y_b, A.shape[0], B.shape[0], class_names)
    pr, pair_how = _pairs(pairs, A.shape[0], B.shape[0])
    if pair_how == "rows":
        pr = np.stack([pr, pr], 1)

    ia, ib = _sub(A.shape[0], ya, max_points, seed), _sub(B.shape[0], yb, max_points, seed + 1)
    As, Bs = A[ia], B[ib]  # (n, D), (m, D)
    ta, tb = (torch.as_tensor(x, device=dev) for x in (As, Bs))
    pooled = np.concatenate([As, Bs])  # (n + m, D)
    # float32 on a GPU, unless distances between these features would be beyond float32 (features ~1e37)
    if dev.type != "cpu" and 2.0 * math.sqrt(A.shape[1]) * float(np.abs(pooled).max()) < np.finfo(np.float32).max:
        ta, tb = ta.float(), tb.float()
    scale = median_cost(pooled, cost="l2", max_points=2000, seed=seed)
    c = SimpleNamespace(A=A, B=B, As=As, Bs=Bs, ta=ta, tb=tb, ya=ya, yb=yb, ia=ia, ib=ib, K=K, cnames=cnames,
                        a=a, b=b, dev=dev, seed=seed, alpha=alpha, cv=cv, max_points=max_points,
                        n_permutations=n_permutations, sinkhorn_iter=sinkhorn_iter, scale=scale,
                        bws=rbf_bandwidths(pooled, seed=seed), eps=eps_relative * scale,
                        eps_relative=eps_relative, times=times, notes=notes)
    res = GapResult(arrays={"z_a": A, "z_b": B, "y_a": ya, "y_b": yb, "pairs": pr})
    res["distance"], ot_ = _distance(c)
    res["gap_vector"] = _gap_vector(c, ot_)
    res["classes"], res["transfer"], res["plan"] = _classes_and_transfer(c, ot_) if ya is not None else (None, None, None)
    res["paired"] = _paired(c, pr, pair_how) if pr is not None else None
    res["subsample"] = _subsample(c, pr, res["paired"])
    res.update({
        "names": [a, b], "n": {a: int(A.shape[0]), b: int(B.shape[0])}, "dim": int(A.shape[1]),
        "normalized": normalize, "num_classes": int(K) if ya is not None else None, "class_names": cnames,
        "settings": {"max_points": max_points, "n_permutations": n_permutations, "alpha": alpha, "cv": cv,
                     "eps_relative": eps_relative, "eps_absolute": c.eps, "sinkhorn_iter": sinkhorn_iter,
                     "bandwidths": c.bws, "bandwidths_from": f"median distance within {a} ∪ {b} × (0.5, 1, 2)",
                     "seed": seed, "device": str(dev)},
    })
    res["readings"] = _readings(res)
    res["headline"] = _headline(res)
    times["total"] = time.perf_counter() - t_all
    res["timings_s"] = {k: round(v, 4) for k, v in times.items()}
    nonfinite: dict = {}  # Python scalars and lists only; a non-finite float becomes None and a note
    cleaned = jsonable(dict(res), notes=nonfinite)
    notes += [f"{path} was not finite ({v}) and is reported as null" for path, v in nonfinite.items()]
    res.clear()
    res.update(cleaned)
    res["notes"] = notes
    return res


# ------------------------------------------------------------- the sections of explore_gap
def _distance(c):
    """Distribution distance: MMD² with its test, W1 / exact OT, the Sinkhorn divergence, the centroids.
    Returns the section and what later sections reuse (the exact plan, W1, W2², the entropic plan)."""
    a, b, times = c.a, c.b, c.times
    t = time.perf_counter()
    mm = mmd_permutation_test(c.ta, c.tb, bandwidth=c.bws, n_permutations=c.n_permutations, seed=c.seed)
    times["mmd"] = time.perf_counter() - t
    t = time.perf_counter()
    w1, plan_exact = exact_ot(c.As, c.Bs, cost="l2", return_plan=True, max_points=c.max_points)
    w2sq = exact_ot(c.As, c.Bs, cost="sqeuclidean", max_points=c.max_points)
    times["exact_ot"] = time.perf_counter() - t
    t = time.perf_counter()
    sd = sinkhorn_divergence(c.ta, c.tb, eps=c.eps, cost="l2", max_iter=c.sinkhorn_iter, full=True)
    ent, sdiv = sd["xy"], sd["divergence"]  # S_ε, and the entropic plan (kept for the figure)
    times["sinkhorn"] = time.perf_counter() - t
    mg = modality_gap(c.B, c.A)  # ratios over A's RMS radius
    mean_a, mean_b = c.A.mean(0), c.B.mean(0)
    cos = mg["mean_cos"]  # None when a mean lies within its sampling noise of the origin (modality_gap)
    ratio = mg["gap_ratio"] if math.isfinite(mg["gap_ratio"]) else None
    section = {
        "mmd": {"mmd2": mm["mmd2"], "p_value": mm["p_value"], "n_permutations": c.n_permutations,
                "bandwidths": c.bws,
                "reading": mmd_text(mm["mmd2"], mm["p_value"], c.n_permutations, c.alpha, a, b)},
        "w1": {"w1": w1, "w1_relative": w1 / c.scale, "median_distance": c.scale, "w2_squared": w2sq,
               "reading": w1_text(w1, w1 / c.scale, a, b)},
        "sinkhorn": {"divergence": sdiv, "transport_cost": ent["cost"], "eps": c.eps, "eps_relative": c.eps_relative,
                     "marginal_error": ent["marginal_error"],
                     "reading": sinkhorn_text(sdiv, c.eps_relative, ent["marginal_error"])},
        "centroid": {"centroid_gap": mg["centroid_gap"], "gap_ratio": ratio, "mean_cos": cos,
                     "norm_ratio": mg["norm_ratio"], "reading": centroid_text(mg["centroid_gap"], ratio, cos, a, b)},
    }
    return section, SimpleNamespace(w1=w1, w2sq=w2sq, plan_exact=plan_exact, ent=ent, ratio=ratio,
                                    mean_a=mean_a, mean_b=mean_b)


def _gap_vector(c, ot_):
    """The gap vector (the difference of the means) and the distance left once each set is centred:
    whether the gap is a shift or a change of shape."""
    t = time.perf_counter()
    g = ot_.mean_b - ot_.mean_a  # (D,)
    g_sub = c.Bs.mean(0) - c.As.mean(0)
    share = float(np.clip(g_sub @ g_sub / ot_.w2sq, 0.0, 1.0)) if ot_.w2sq > 1e-12 * c.scale ** 2 else None
    Ac, Bc = c.As - ot_.mean_a, c.Bs - ot_.mean_b
    mc = mmd_permutation_test(torch.as_tensor(Ac, device=c.dev, dtype=c.ta.dtype),
                              torch.as_tensor(Bc, device=c.dev, dtype=c.ta.dtype), bandwidth=c.bws,
                              n_permutations=c.n_permutations, seed=c.seed + 1)
    w1c = exact_ot(Ac, Bc, cost="l2", max_points=c.max_points)
    c.times["centred"] = time.perf_counter() - t
    w1 = ot_.w1
    return {
        "gap": {"norm": float(np.linalg.norm(g)), "relative": ot_.ratio, "shift_share_w2": share,
                "vector": [float(f"{v:.5g}") for v in g],  # 5 significant digits, whatever the scale
                "reading": gap_vector_text(float(np.linalg.norm(g)), share, c.a, c.b)},
        "centred": {"mmd2": mc["mmd2"], "p_value": mc["p_value"], "w1": w1c, "w1_relative": w1c / c.scale,
                    "w1_reduction": (1 - w1c / w1) if w1 > 1e-12 * c.scale else None,
                    "reading": centred_text(mc["mmd2"], mc["p_value"], w1c, w1, c.alpha, c.a, c.b)},
    }


def _classes_and_transfer(c, ot_):
    """With labels: per-class MMD (Holm), plan purity against chance and up to a relabelling, the prior TV,
    the class-sorted entropic plan, and the linear transfer between the sets."""
    a, b, K, cnames, ya, yb = c.a, c.b, c.K, c.cnames, c.ya, c.yb
    t = time.perf_counter()
    ya_s, yb_s = ya[c.ia], yb[c.ib]
    n_cls = 0 if not c.n_permutations else max(c.n_permutations, int(math.ceil(2 * K / c.alpha)))
    cc = class_conditional_mmd(c.ta, ya_s, c.tb, yb_s, bandwidth=c.bws, num_classes=K, n_permutations=n_cls,
                               seed=c.seed, alpha=c.alpha)
    rows = []
    for r in cc["per_class"]:
        k = r["class"]
        ma, mb = ya == k, yb == k
        cg = float(np.linalg.norm(c.B[mb].mean(0) - c.A[ma].mean(0))) if ma.any() and mb.any() else None
        rows.append({**r, "name": cnames[k], "centroid_gap": cg})
    tested = [r for r in rows if r["mmd2"] is not None]
    worst = max(tested, key=lambda r: r["mmd2"]) if tested else None
    pur = plan_class_purity(ot_.plan_exact, ya_s, yb_s, K)
    pa, pb = np.bincount(ya, minlength=K) / len(ya), np.bincount(yb, minlength=K) / len(yb)
    tv = 0.5 * float(np.abs(pa - pb).sum())
    pa_s, pb_s = np.bincount(ya_s, minlength=K) / len(ya_s), np.bincount(yb_s, minlength=K) / len(yb_s)
    best = float(np.minimum(pa_s, pb_s).sum())  # the most any coupling of the subsample can keep in-class
    classes = {
        "per_class_mmd": {"classes": rows, "n_rejected": cc["n_rejected"], "n_tested": len(tested),
                          "n_permutations": n_cls, "alpha": c.alpha,
                          "reading": per_class_text(cc["n_rejected"], len(tested), c.alpha,
                                                    worst["name"] if worst else None,
                                                    worst["mmd2"] if worst else None, a, b, tested=n_cls > 0)},
        "purity": {"purity": pur["purity"], "chance": pur["chance"], "purity_matched": pur["purity_matched"],
                   "max_purity": best, "matching": [cnames[int(j)] for j in pur["matching"]],
                   "class_mass": np.round(pur["class_mass"], 5), "plan": "exact (ot.emd, l2 cost)",
                   "reading": purity_text(pur["purity"], pur["chance"], pur["purity_matched"], best, a, b, True)},
        "prior_tv": {"tv": tv, "prior_a": np.round(pa, 5), "prior_b": np.round(pb, 5),
                     "reading": prior_tv_text(tv, a, b)},
    }
    pooled_plan = pool_plan(ot_.ent["plan"], ya_s, yb_s)
    rs, cs = np.asarray(pooled_plan["row_sizes"], float), np.asarray(pooled_plan["col_sizes"], float)
    dens = pooled_plan["plan"] / np.outer(rs, cs) * (rs.sum() * cs.sum())  # 1 = independent coupling
    plan = {"plan_x_uniform": np.round(dens, 3), "row_classes": pooled_plan["row_classes"],
            "col_classes": pooled_plan["col_classes"], "class_mass_exact": np.round(pur["class_mass"], 5)}
    c.times["classes"] = time.perf_counter() - t
    t = time.perf_counter()
    transfer = None
    if np.unique(ya).size >= 2 and np.unique(yb).size >= 2:
        transfer = linear_transfer(c.A, ya, c.B, yb, names=(a, b), cv=c.cv, seed=c.seed)
        for src, dst in ((a, b), (b, a)):
            d = transfer["transfer"][f"{src}→{dst}"]
            d["reading"] = transfer_text(src, dst, d["raw"], d["centred"], transfer["own"][src],
                                         transfer["own"][dst], transfer["chance"][dst])
        transfer["reading"] = " ".join(transfer["transfer"][k]["reading"] for k in transfer["transfer"])
        if transfer["n_not_converged"]:
            c.notes.append(f"{transfer['n_not_converged']} logistic-regression fits stopped at max_iter before "
                           "converging")
    else:
        c.notes.append("the transfer test was skipped: each set needs at least 2 classes")
    c.times["transfer"] = time.perf_counter() - t
    return classes, transfer, plan


def _paired(c, pr, pair_how):
    """With pairs: matched-pair retrieval both ways, linear CKA, the orthogonal Procrustes residual."""
    a, b = c.a, c.b
    t = time.perf_counter()
    keep = _sub(len(pr), c.ya[pr[:, 0]] if c.ya is not None else None, c.max_points, c.seed + 2)
    pk = pr[keep]
    pm = paired_measures(c.A[pk[:, 0]], c.B[pk[:, 1]], ks=KS, seed=c.seed, device=c.dev)
    ret = pm["retrieval"]
    readings = [retrieval_text(w, ret, pm["retrieval_chance"][1], pm["n_candidates"])
                for w in ("x_to_y", "y_to_x")]
    rename = {"x_to_y": f"{a}→{b}", "y_to_x": f"{b}→{a}"}
    section = {
        "n_pairs": int(len(pr)), "n_used": int(len(pk)), "how": pair_how,
        "retrieval": {"recall": {v: {rename[w]: {f"@{k}": r[w][k] for k in KS} for w in r} for v, r in ret.items()},
                      "chance": {f"@{k}": ch for k, ch in pm["retrieval_chance"].items()},
                      "n_candidates": pm["n_candidates"],
                      "reading": " ".join(readings).replace("x→y", f"{a}→{b}").replace("y→x", f"{b}→{a}")},
        "cka": {"cka": pm["cka"], "reading": cka_text(pm["cka"])},
        "procrustes": {"residual": pm["procrustes"], "residual_heldout": pm["procrustes_heldout"],
                       "reading": procrustes_text(pm["procrustes"], pm["procrustes_heldout"], a, b)},
    }
    c.times["paired"] = time.perf_counter() - t
    return section


def _subsample(c, pr, paired):
    """What the quadratic parts were computed on, stated."""
    a, b, A, B = c.a, c.b, c.A, c.B
    n_used = None if pr is None else paired["n_used"]
    note = (f"The quadratic parts (MMD, exact and entropic OT, transport purity) used {len(c.ia)} of {A.shape[0]} "
            f"rows of {a} and {len(c.ib)} of {B.shape[0]} of {b}"
            + (", stratified by class" if c.ya is not None else ", drawn at random")
            + f" (max_points = {c.max_points}, seed {c.seed})"
            + ("" if pr is None else f"; the paired measures {n_used} of {len(pr)} pairs")
            + "; centroids, the gap vector and the classifiers used every row.")
    return {"a": int(len(c.ia)), "b": int(len(c.ib)), "pairs": n_used,
            "applied": bool(len(c.ia) < A.shape[0] or len(c.ib) < B.shape[0] or (pr is not None and n_used < len(pr))),
            "stratified": c.ya is not None, "max_points": c.max_points, "seed": c.seed, "reading": note}


def _readings(r: dict) -> list:
    out = [r["subsample"]["reading"]]
    for sec in ("distance", "gap_vector", "classes", "paired"):
        for m in (r.get(sec) or {}).values():
            if isinstance(m, dict) and "reading" in m:
                out.append(m["reading"])
    if r.get("transfer"):
        out += [d["reading"] for d in r["transfer"]["transfer"].values()]
    return out


def _headline(r: dict) -> str:
    a, b = r["names"]
    p = r["distance"]["mmd"]["p_value"]
    alpha = r["settings"]["alpha"]
    s = (f"{a} and {b} are distinguishable" if p is not None and p < alpha else
         f"{a} and {b} are not distinguishable at this sample size" if p is not None else f"{a} vs {b}")
    share = r["gap_vector"]["gap"]["shift_share_w2"]
    if share is not None:
        s += f"; a shift explains {pct(share)} of W2²"
    if r.get("transfer"):
        t = r["transfer"]["transfer"][f"{a}→{b}"]
        s += (f"; a linear classifier trained on {a} scores {fmt(t['raw'])} on {b} "
              f"({b}'s own: {fmt(r['transfer']['own'][b])}), {fmt(t['centred'])} after centring")
    if r.get("paired") and "orthogonal map" in r["paired"]["retrieval"]["recall"]:
        rec = r["paired"]["retrieval"]["recall"]
        s += (f"; paired recall@1 {a}→{b} {fmt(rec['as is'][f'{a}→{b}']['@1'])} as is, "
              f"{fmt(rec['orthogonal map'][f'{a}→{b}']['@1'])} after an orthogonal map")
    return s + "."
