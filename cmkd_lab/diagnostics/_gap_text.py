"""One-sentence readings of the quantities :func:`explore_gap` measures.

Each function takes the numbers of one measure and returns what they mean for
the data at hand; thresholds are stated in the sentence, never hidden.
"""
from __future__ import annotations

from typing import Optional


def f(v, digits: int = 3) -> str:
    """A number for a sentence (``n/a`` for None)."""
    if v is None:
        return "n/a"
    if isinstance(v, int):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def pv(p) -> str:
    return "n/a" if p is None else f"{p:.2g}"


def mmd(m2: float, p: Optional[float], n_perm: int, alpha: float, a: str, b: str, *, what: str = "") -> str:
    head = f"MMD² = {f(m2)}{what}"
    if p is None:
        return f"{head} (no permutation test: n_permutations = 0), so no verdict on whether {a} and {b} differ."
    if p < alpha:
        return f"{head}, p = {pv(p)} ({n_perm} permutations): {a} and {b} are distinguishable (p < {alpha})."
    return (f"{head}, p = {pv(p)} ({n_perm} permutations): no evidence that {a} and {b} differ at this sample size "
            f"(p ≥ {alpha}).")


def w1(w: float, rel: Optional[float], a: str, b: str) -> str:
    if rel is not None and rel < 1e-6:
        return f"W1 = {f(w)} ≈ 0: {a} and {b} are the same point cloud."
    return (f"W1 = {f(w)} ({f(rel)} × the median distance between two points of {a} ∪ {b}): moving {a} onto {b} "
            f"costs on average {f(rel)} typical distances per point.")


def sinkhorn(s: float, eps_rel: float, err: Optional[float]) -> str:
    tail = "" if err is None or err < 1e-3 else (f" The solver's marginal error is {f(err)}: raise sinkhorn_iter "
                                                  "or eps_relative.")
    return (f"Sinkhorn divergence S_ε = {f(s)} (ε = {f(eps_rel)} × median cost, debiased: 0 for identical sets)."
            + tail)


def centroid(gap: float, ratio: Optional[float], cos: Optional[float], a: str, b: str) -> str:
    r = "" if ratio is None else f" = {f(ratio)} × {a}'s RMS radius"
    c = (f"the cosine between the two means is {f(cos)}" if cos is not None else
         "the cosine between the means is not shown: a mean lies within its sampling noise of the origin "
         "(centred features, for instance), so its direction is noise")
    return f"The centroids are {f(gap)} apart (‖mean {b} − mean {a}‖{r}); {c}."


def gap_vector(norm: float, share: Optional[float], a: str, b: str) -> str:
    if share is None:
        return f"The gap vector mean {b} − mean {a} has norm {f(norm)}; the two sets coincide (W2 = 0)."
    kind = ("the gap is mostly a shift" if share >= 0.8 else "the gap is mostly a change of shape" if share <= 0.2
            else "the gap is part shift, part change of shape")
    return (f"The gap vector mean {b} − mean {a} has norm {f(norm)} and accounts for {pct(share)} of W2² "
            f"(W2² = ‖Δmean‖² + W2² of the centred sets): {kind} "
            "(a shift from 80%, a change of shape below 20%).")


def centred(m2: float, p: Optional[float], w: float, w_raw: float, alpha: float, a: str, b: str) -> str:
    r = 1 - w / w_raw if w_raw > 0 else None
    drop = ("" if r is None else f" ({pct(r)} less than before)" if r >= 0.005 else
            f" ({pct(-r)} more than before)" if r <= -0.005 else " (about as before: the two means nearly coincide)")
    if p is None:
        verdict = ""
    elif p < alpha:
        verdict = f": the centred sets still differ (p = {pv(p)}), so the gap is not only a shift"
    else:
        verdict = f": the centred sets are not distinguishable (p = {pv(p)}), so the shift is all the test can see"
    return f"After centring each set on its own mean, MMD² = {f(m2)} and W1 = {f(w)}{drop}{verdict}."


def per_class(n_rej: int, n_tested: int, alpha: float, worst: Optional[str], worst_v: Optional[float],
              a: str, b: str, *, tested: bool = True) -> str:
    if n_tested == 0:
        return "No class has 2 samples on both sides: no per-class test."
    w = "" if worst is None else f"; the largest per-class MMD² is class {worst!r} ({f(worst_v)})"
    if not tested:
        return f"Per-class MMD² without a test (n_permutations = 0) over {n_tested} classes{w}."
    return (f"After Holm correction, {n_rej} of {n_tested} classes differ between {a} and {b} "
            f"(family-wise α = {alpha}){w}.")


def purity(p: float, chance: float, matched: float, best: float, a: str, b: str, exact: bool) -> str:
    plan = "exact" if exact else "entropic"
    halfway = chance + 0.5 * (best - chance)
    rel = ("keeps classes apart but sends some of them to another class" if matched - p > 0.1 and matched > 1.5 * chance
           else "ignores the classes" if p < 1.25 * chance else
           "respects the classes (more than halfway from chance to the most the priors allow)" if p >= halfway else
           "joins same-class samples more often than chance but mixes many")
    return (f"The {plan} transport plan from {a} to {b} joins same-class samples with {pct(p)} of its mass "
            f"(chance {pct(chance)}, at most {pct(best)} given the class priors); up to a relabelling of the "
            f"classes {pct(matched)}: it {rel}.")


def prior_tv(tv: float, a: str, b: str) -> str:
    if tv < 1e-9:
        return f"{a} and {b} have the same class priors (total variation 0)."
    return (f"The class priors differ by total variation {f(tv)}: any coupling with uniform weights must carry "
            f"at least {pct(tv)} of the mass across classes.")


def transfer(src: str, dst: str, raw: float, cen: float, own_src: float, own_dst: float, chance: float) -> str:
    def how(v):
        return ("about as well as " + dst + "'s own classifier" if v >= own_dst - 0.03 else
                "worse than chance (it mistakes classes for one another)" if v < chance - 0.05 else
                "at chance" if v <= chance + 0.03 else "only in part")
    gain = cen - raw
    tail = (f"; centring recovers {f(gain, 2)} of accuracy: {how(cen)}" if gain > 0.05 else
            "; centring does not help" if gain < 0.02 else "")
    return (f"A classifier trained on {src} (own accuracy {f(own_src)}) scores {f(raw)} on {dst} "
            f"({dst}'s own {f(own_dst)}, chance {f(chance)}) and {f(cen)} after centring each set: it reads {dst} "
            f"{how(raw)}{tail}.")


def retrieval(way: str, ret: dict, chance1: float, n: int) -> str:
    words = {"as is": "as the spaces stand", "centred": "after centring",
             "orthogonal map": "after an orthogonal map fitted on other pairs"}
    parts = [f"{f(r[way][1])} {words.get(name, name)}" for name, r in ret.items()]
    return (f"Paired retrieval {way.replace('_to_', '→')}: recall@1 is " + ", ".join(parts)
            + f" (among {n} candidates, chance {f(chance1)}).")


def cka(v: Optional[float]) -> str:
    if v is None:
        return "Linear CKA is undefined: a set has no spread."
    word = ("share nearly all" if v >= 0.9 else "share most" if v >= 0.6 else "share some" if v >= 0.3
            else "share little")
    return (f"Linear CKA = {f(v)}: the paired sets {word} of their linear structure "
            "(1 = identical up to a rotation, a scaling and a shift).")


def procrustes(res: Optional[float], held: Optional[float], a: str, b: str) -> str:
    if res is None:
        return f"The Procrustes fit is undefined: {b} has no spread."
    h = "" if held is None else f", {pct(held)} on pairs it was not fitted on"
    return (f"The best orthogonal map from centred {a} onto centred {b} leaves {pct(res)} of {b}'s norm "
            f"unexplained{h}" + (": the sets are a rotation of each other." if res < 0.05 else "."))
