"""What a run's numbers say where a curve does something counter-intuitive: one list of sentences per
figure kind (:func:`run_readings`). Each sentence is conditioned on the numbers it states; a word such as
"below chance" comes with the 95 % interval that supports it (:func:`wilson`), or is not said.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

from .curves import term_label

__all__ = ["run_readings", "wilson", "INV_E", "SMALL_SHIFT"]

INV_E = 1 / math.e
# An inner shift below this leaves the outer gradient where `ce` takes it, to first order (see _losses).
SMALL_SHIFT = 0.05


def wilson(p: float, n: int, z: float = 1.96) -> Tuple[float, float]:
    """The Wilson score interval (95 % by default) of a proportion ``p`` measured on ``n`` samples."""
    if n <= 0:
        raise ValueError(f"n must be a positive number of samples; got n={n!r}")
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


def _h(result) -> List[dict]:
    return [r for r in (result or {}).get("history", []) if isinstance(r, dict) and "epoch" in r]


def _series(h, key) -> List[float]:
    return [r[key] for r in h if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]


def _k(result) -> Optional[int]:
    names = ((result or {}).get("diagnostics") or {}).get("class_names")
    return len(names) if names else None


def _settings(result) -> dict:
    return ((result or {}).get("diagnostics") or {}).get("settings") or {}


def _pct(v) -> str:
    return f"{100 * v:.1f} %"


def _below(value: float, chance: float, n: Optional[int], what: str) -> Tuple[str, bool]:
    """How ``value`` (a proportion over ``n`` samples) stands against ``chance``: the sentence part and
    whether the 95 % interval lies wholly below chance."""
    if not n:
        return f"lower than chance ({_pct(chance)}; no sample size recorded, so no interval)", False
    lo, hi = wilson(value, int(n))
    ci = f"95 % interval over the {n} {what} [{_pct(lo)}, {_pct(hi)}]"
    if hi < chance:
        return f"**below chance** ({_pct(chance)}; {ci})", True
    return (f"lower than chance ({_pct(chance)}) but within what {n} {what} give by chance ({ci}): no evidence "
            "of a systematic mismatch in this run"), False


def _losses(result, h, reference) -> List[str]:
    out = []
    cfg = (result or {}).get("config") or {}
    method = str((result or {}).get("method", ""))
    shift = _series(h, "inner_shift")
    lr = cfg.get("inner_lr")
    if shift and lr is not None:
        txt = (f"**Inner shift** ‖φ̃ − φ‖ is how far the {cfg.get('n1')}+{cfg.get('n2')} inner steps move the "
               f"student's parameters before the outer cross-entropy gradient is taken: here "
               f"{min(shift):.2g}–{max(shift):.2g} at `inner_lr` = {lr:g}. ")
        if max(shift) < SMALL_SHIFT:
            txt += ("With a first-order outer step the inner steps only change *where* that gradient is evaluated; "
                    "with a shift this small it is the `ce` gradient to first order: "
                    + ("at this toolkit's defaults (inner lr 1e-3)" if lr == 1e-3 else "at this inner learning rate")
                    + ", `ucmkd` behaves like cross-entropy. The knob that changes it is `inner_lr` (or `n1`, `n2`).")
        else:
            txt += ("A shift of this size evaluates the cross-entropy gradient far from φ: the run can leave "
                    "`ce`'s path, and a gradient taken that far away need not lower the loss at φ.")
        acc, ref = (result or {}).get("student_test_acc"), (reference or {}).get("student_test_acc")
        if acc is not None and ref is not None:
            d = 100 * (acc - ref)
            txt += (f" This run: {_pct(acc)} against {_pct(ref)} for `ce` with the same seed (Δ = {d:+.2f} points"
                    + (", the very same result)." if abs(d) < 1e-6 else "; one seed: another seed moves a run by "
                                                                         "about as much)."))
        out.append(txt)
        fa = _series(h, "fa")
        if len(fa) >= 2 and fa[-1] > fa[0] and method == "ucmkd":
            out.append(f"The {term_label('fa')} **rises** ({fa[0]:.3g} → {fa[-1]:.3g}) although UCMKD has an OT "
                       "step: that step moves only the temporary parameters φ̃, which are discarded after the outer "
                       "step; φ itself follows the cross-entropy, and nothing pulls the student's features towards "
                       "the teacher's.")
    elif method in ("fa", "ucmkd-joint") and _series(h, "fa"):
        lam = cfg.get("lambda_fa")
        fa, ce = _series(h, "fa"), _series(h, "ce")
        if fa and ce and lam is not None:
            out.append(f"At the last epoch λ1 × {term_label('fa')} = {lam * fa[-1]:.3g} against the "
                       f"{term_label('ce')} = {ce[-1]:.3g}: "
                       + ("the OT term dominates the gradient, so it decides where the features go."
                          if lam * fa[-1] > 2 * ce[-1] else "the two terms are of the same order."))
    return out


def _what_ties(result, h) -> str:
    """What, in this run's loss, ties the student's coordinates to the teacher's."""
    method = str((result or {}).get("method", ""))
    cfg = (result or {}).get("config") or {}
    w1 = _series(h, "w1")
    if method in ("fa", "ucmkd-joint"):
        moved = f" (W1 {w1[0]:.3g} → {w1[-1]:.3g})" if len(w1) >= 2 else ""
        return ("The OT term in the loss pulls the student's cloud towards the teacher's as a whole" + moved
                + ", but it does not know the classes: it can lay a student class over a teacher region of another "
                  "class")
    if method == "ucmkd":
        return ("In `ucmkd` the OT and LA steps move only temporary parameters, so nothing ties the student's "
                "coordinates to the teacher's")
    if cfg.get("la_teacher_grad") == "align" and method == "la":
        return "The LA term (`align`) pulls the student's features into the teacher head's class regions"
    return f"Nothing in `{method}`'s loss ties the student's coordinates to the teacher's"


def _accuracy(result, h, reference) -> List[str]:
    out = []
    K = _k(result)
    head = _series(h, "teacher_head_on_student_acc")
    if head and K:
        last = head[-1]
        pm = _series(h, "purity_matched")
        n = _settings(result).get("n_student_ref")
        if last < 1 / K:
            where, sure = _below(last, 1 / K, n, "reference samples")
            txt = f"The teacher head reads the student's features at {_pct(last)}, {where}."
            if sure:
                txt += (f" {_what_ties(result, h)}; each student class lands in some teacher class region, and when "
                        "most land in a *wrong* one the head is consistently wrong, which scores below chance (a "
                        "random assignment of K regions puts no class in its own place with probability ≈ 1/e ≈ "
                        "37 %)." + (f" The transport plan agrees: up to a relabelling of the classes "
                                    f"{_pct(pm[-1])} of its mass stays within classes." if pm else ""))
            out.append(txt)
        elif last < 2 / K:
            out.append(f"The teacher head reads the student's features at {_pct(last)}, near chance "
                       f"(1/K = {_pct(1 / K)}): the two encoders' feature spaces are not yet one space.")
    ref = (reference or {}).get("student_test_acc")
    acc = (result or {}).get("student_test_acc")
    if ref is not None and acc is not None:
        out.append(f"Reference: `ce` (no teacher) reaches {_pct(ref)} on the same split and seed; this run "
                   f"{_pct(acc)}. One seed: a difference of a point or two is within the seed-to-seed noise (the "
                   "five-seed bench of notebook 02 measures it).")
    return out


def _mmd(result, h) -> List[str]:
    P = _settings(result).get("n_permutations")
    ps = _series(h, "mmd_p")
    if P and ps and all(abs(p - 1 / (1 + P)) < 1e-12 for p in ps):
        return [f"The permutation p-value sits at its **floor** 1/(1+P) = {1 / (1 + P):.2g} (P = {P} "
                "permutations) at every epoch: no shuffle of the pooled features produced an MMD² as large as the "
                "observed one, so the two clouds differ at every epoch and the test cannot say by how much more "
                "(more permutations lower the floor; the MMD² itself is the size of the difference)."]
    return []


def _norms(h) -> str:
    nr = _series(h, "norm_ratio")
    if len(nr) >= 2 and nr[-1] > nr[0]:
        return f" (mean ‖z_S‖ / mean ‖z_T‖ went from {nr[0]:.2f} to {nr[-1]:.2f})"
    return ""


def _w1_rises(method, h) -> List[str]:
    w1, fa = _series(h, "w1"), _series(h, "fa")
    if not (len(w1) >= 2 and w1[-1] > w1[0]):
        return []
    if method == "ucmkd":
        return [f"W1 **rises** ({w1[0]:.3g} → {w1[-1]:.3g}) although UCMKD has an OT term: in Algorithm 1 that "
                "term only moves the temporary parameters (see the inner shift); the parameters kept are trained by "
                "the cross-entropy, which moves the features wherever the labels need them" + _norms(h) + "."]
    if len(fa) >= 2 and fa[-1] < fa[0]:
        return [f"W1 **rises** ({w1[0]:.3g} → {w1[-1]:.3g}) while the training OT term falls ({fa[0]:.3g} → "
                f"{fa[-1]:.3g}). They are different quantities: the training term is an entropic OT cost between "
                "two batches of training features, with ε = 0.1 × *that batch's* median cost (it blurs the plan over "
                "many neighbours at any scale); W1 is the exact, unblurred distance between the held-out reference "
                "sets. A blurred plan can get cheaper by pulling the student's cloud towards the teacher's dense "
                "regions without matching it point for point, and the cross-entropy keeps moving the features too."]
    if method == "ce":
        return [f"W1 rises ({w1[0]:.3g} → {w1[-1]:.3g}): `ce` never looks at the teacher, and training moves the "
                "student's features wherever its own head needs them" + _norms(h) + "."]
    return []


def _ot(result, h) -> List[str]:
    out = _w1_rises(str((result or {}).get("method", "")), h)
    pur, ch, pm = _series(h, "purity"), _series(h, "purity_chance"), _series(h, "purity_matched")
    if pur and ch and pur[-1] < ch[-1]:
        st = _settings(result)
        sizes = [v for v in (st.get("n_student_ref"), st.get("n_teacher_ref")) if v]
        where, sure = _below(pur[-1], ch[-1], min(sizes) if sizes else None, "matched pairs")
        txt = f"Exact-plan purity {_pct(pur[-1])} is {where}."
        if sure:
            txt += (" The exact plan sends each student point to nearby teacher points; when the student's class "
                    "clusters sit next to the teacher's clusters of *other* classes, it joins different classes more "
                    "often than a plan blind to classes would"
                    + (f"; up to a relabelling of the classes {_pct(pm[-1])} of the mass stays within classes"
                       if pm else "") + ".")
        pe = _series(h, "purity_entropic")
        if pe:
            txt += f" The entropic plan's purity: {_pct(pe[-1])}."
        out.append(txt)
    return out


def _bound(result, h) -> List[str]:
    out = []
    rows = [r for r in h if r.get("bound_sum") is not None]
    if not rows:
        return out
    last = rows[-1]
    et, fa, la, es, total = (last.get(k) for k in ("bound_err_t", "bound_fa", "bound_la", "bound_err_s", "bound_sum"))
    if None in (et, fa, la, es):
        return out
    held = all(r.get("bound_holds") for r in rows)
    cap = ("with the plug-in κ̂ = p_T(y | z_S) each sample adds κ̂·log p_T = p·log p ∈ [−1/e, 0] to the student's "
           "cross-entropy, so LA_e ≥ err_S − 1/e and the estimate can only fail when err_T + FA_e < 1/e ≈ 0.37 nats")
    if et + fa >= INV_E:
        out.append(f"Why it {'holds' if held else 'mostly holds'}: {cap}. Here err_T + FA_e = {et + fa:.3g} nats: the "
                   "check holds by construction, and says nothing about distillation.")
    else:
        verdict = "holds" if last.get("bound_holds") else "fails"
        out.append(f"Could it fail? {cap}. Here err_T + FA_e = {et + fa:.3g} nats, below 1/e: the check is not "
                   f"automatic at this setting, and at the last epoch it {verdict}.")
    K = _k(result)
    if K and total is not None and total > math.log(K):
        out.append(f"A uniform guess over the K = {K} classes has cross-entropy ln K = {math.log(K):.2f} nats; the "
                   f"bound's sum ({total:.3g}) is above it, so the bound is **vacuous** here: it allows a student "
                   "worse than guessing.")
    if la < 0:
        out.append(f"LA_e is **negative** ({la:.3g}): LA_e = err_S − mean κ̂·(−log p_T(y | z_S)), and the student's "
                   f"own cross-entropy ({es:.3g}) is below the κ̂-weighted teacher loss on its features — the student "
                   "is surer of the right class than the teacher head is when it reads the student's features. The "
                   "bars stack from zero, so the black tick (the sum) sits below err_T + FA_e.")
    return out


def _audit(h) -> List[str]:
    """What the gradient audit says, term by term: a term that pulls against cross-entropy on average, one
    nearly orthogonal to it, one that is cross-entropy (cosine 1)."""
    from .audit import audit_summary
    from .curves import term_label
    out = []
    for t, v in audit_summary(h).items():
        c = v["cos_ce"]
        if t in ("loss", "ce") or c is None:
            continue
        name = term_label(t)
        if c >= 0.999:
            out.append(f"The {name} pushes exactly where cross-entropy does (mean cosine {c:.3f}): at these "
                       "settings it is cross-entropy again.")
        elif c <= -0.1:
            out.append(f"The {name} pulls against cross-entropy on average (mean cosine {c:+.2f} over {v['n']} "
                       "audited epochs).")
        elif abs(c) < 0.1:
            out.append(f"The {name} moves the parameters in directions nearly orthogonal to cross-entropy's (mean "
                       f"cosine {c:+.2f}): it changes what cross-entropy alone would not.")
    return out


def run_readings(result: dict, *, reference: Optional[dict] = None) -> Dict[str, List[str]]:
    """The data-driven sentences for a run's figures, keyed by figure kind (``losses``, ``accuracy``,
    ``mmd``, ``ot``, ``bound``); ``reference`` is a ``ce`` run of the same task and seed, when there is one."""
    h = _h(result)
    d = (result or {}).get("diagnostics") or {}
    hd = ([dict(d["initial"], epoch=0)] if d.get("initial") else []) + [r for r in h if "mmd2" in r]
    return {"losses": _losses(result, h, reference), "accuracy": _accuracy(result, hd or h, reference),
            "mmd": _mmd(result, hd), "ot": _ot(result, hd), "bound": _bound(result, hd), "audit": _audit(h)}
