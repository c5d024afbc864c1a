"""Captions for a run's figures: what each figure shows, and the reading of *this* run's numbers where a
curve does something counter-intuitive (each reading is checked against the code that made the number).

:func:`figure_caption` returns Markdown for one figure (by its name in :func:`cmkd_lab.viz.run_figures`
or in the debugger's figure dict); :func:`run_readings` returns the data-driven sentences alone, keyed
by figure kind. Nothing here draws; the widgets display the text next to the figure.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

__all__ = ["figure_caption", "run_readings", "FIGURE_KINDS", "BASE_CAPTIONS", "INV_E"]

INV_E = 1 / math.e

# Figure names (the run report's titles and the debugger's keys) -> kind.
FIGURE_KINDS = {
    "Loss terms": "losses", "losses": "losses",
    "Accuracy": "accuracy", "accuracy": "accuracy",
    "MMD between student and teacher features": "mmd", "mmd": "mmd",
    "Optimal transport and transport-plan class purity": "ot", "ot": "ot",
    "The bound, term by term": "bound", "bound": "bound",
    "Modality gap": "gap", "gap": "gap",
    "Label distributions": "labels", "labels": "labels",
    "Transport plan": "transport_plan", "transport_plan": "transport_plan",
    "Teacher and student features (UMAP)": "overlay", "Teacher and student features (PCA)": "overlay",
    "overlay": "overlay",
}

BASE_CAPTIONS = {
    "losses": "Each loss term, averaged over the epoch's steps. The wide grey band is the total the optimiser "
              "minimises; dashed lines are terms as weighted in it (λ·term).",
    "accuracy": "The student's accuracy on its validation and test splits (the reported test accuracy is taken "
                "at the best *validation* epoch), and the frozen teacher head applied to the student's features.",
    "mmd": "MMD² between the two feature clouds on fixed held-out sets, and −log10 of its p-value (right axis): "
           "above the p = 0.05 line the clouds differ detectably.",
    "ot": "Left: distances between the feature sets — entropic OT cost (fixed ε), exact W1, Sinkhorn "
          "divergence. Right: the share of transported mass that joins two samples of the same class, "
          "against its chance level Σₖ p_S(k)·p_T(k) (what a plan that ignores classes gives).",
    "bound": "The bound err_S ≤ err_T + FA + LA_e, term by term (stacked bars), against the student's measured "
             "cross-entropy err_S (line); a red cross marks an epoch where the estimate fails.",
    "gap": "Distances between the two clouds' centroids, the cosine between their means, mean κ̂ = p_T(y | z_S) "
           "and the teacher head's accuracy on the student's features (reference sets).",
    "labels": "Rows: true class; columns: predicted class. The middle column is what the frozen teacher head "
              "reads from the student's features — the κ̂ that LA relies on.",
    "transport_plan": "The entropic plan between student (rows) and teacher (columns) features, sorted by class; "
                      "colour = mass relative to the independent coupling (1). Mass in the diagonal blocks joins "
                      "same-class samples. Right: class-to-class mass of the exact plan; its diagonal is the purity.",
    "overlay": "Teacher (●) and student (✕) features in 2-D, one colour per class, fitted once on every stored "
               "epoch (the slider moves across them).",
}


def _h(result) -> List[dict]:
    return [r for r in (result or {}).get("history", []) if isinstance(r, dict) and "epoch" in r]


def _series(h, key) -> List[float]:
    return [r[key] for r in h if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]


def _k(result) -> Optional[int]:
    names = ((result or {}).get("diagnostics") or {}).get("class_names")
    return len(names) if names else None


def _pct(v) -> str:
    return f"{100 * v:.1f} %"


def _losses(result, h, reference) -> List[str]:
    out = []
    cfg = (result or {}).get("config") or {}
    method = str((result or {}).get("method", ""))
    shift = _series(h, "inner_shift")
    if shift:
        lr, n1, n2 = cfg.get("inner_lr"), cfg.get("n1"), cfg.get("n2")
        txt = (f"**Inner shift** ‖φ̃ − φ‖ (dotted, right axis) is how far the {n1}+{n2} inner steps move the "
               f"student's parameters before the outer cross-entropy gradient is taken: here "
               f"{min(shift):.2g}–{max(shift):.2g} at `inner_lr` = {lr:g}. Algorithm 1 with a first-order outer "
               "step only changes *where* that gradient is evaluated, so with a shift this small the update is "
               "the `ce` update to first order: at these settings `ucmkd` **is** cross-entropy "
               "(the book's Theory page, §3). The knob that changes it is `inner_lr` (or `n1`, `n2`).") if lr is not None else ""
        if txt:
            acc, ref = (result or {}).get("student_test_acc"), (reference or {}).get("student_test_acc")
            if acc is not None and ref is not None:
                d = 100 * (acc - ref)
                txt += (f" This run: {_pct(acc)} against {_pct(ref)} for `ce` with the same seed "
                        f"(Δ = {d:+.2f} points" + (", the very same run)." if abs(d) < 1e-6 else
                                                   "): a nudge of a few thousandths at every step lets the two "
                                                   "trajectories drift apart, by about what another seed would "
                                                   "change.") )
            out.append(txt)
        fa = _series(h, "fa")
        if len(fa) >= 2 and fa[-1] > fa[0] and method.startswith("ucmkd") and method != "ucmkd-joint":
            out.append("The `fa` term **rises** although UCMKD has an OT step: that step moves only the temporary "
                       "parameters φ̃, which are discarded after the outer step; φ itself follows the "
                       "cross-entropy, and nothing pulls the student's features towards the teacher's.")
    elif method in ("fa", "ucmkd-joint") and _series(h, "fa"):
        lam = cfg.get("lambda_fa")
        fa, ce = _series(h, "fa"), _series(h, "ce")
        if fa and ce and lam is not None:
            out.append(f"At the last epoch λ1·fa = {lam * fa[-1]:.3g} against ce = {ce[-1]:.3g}: "
                       + ("the OT term dominates the gradient, so it decides where the features go."
                          if lam * fa[-1] > 2 * ce[-1] else "the two terms are of the same order."))
    return out


def _accuracy(result, h, reference) -> List[str]:
    out = []
    K = _k(result)
    head = _series(h, "teacher_head_on_student_acc")
    if head and K:
        last = head[-1]
        pm = _series(h, "purity_matched")
        if last < 1 / K:
            out.append(f"The teacher head reads the student's features at {_pct(last)}, **below chance** "
                       f"(1/K = {_pct(1 / K)}). Nothing ties the student's coordinates to the teacher's, so each "
                       "student class lands in some teacher class region; when most land in a *wrong* one — a "
                       "systematic permutation of the classes — the head is consistently wrong, which scores "
                       "below chance (a random assignment of K regions has no class in its own place with "
                       f"probability ≈ 1/e ≈ 37 %)." + (f" The transport plan agrees: up to a relabelling of the "
                                                       f"classes {_pct(pm[-1])} of its mass stays within classes."
                                                       if pm else ""))
        elif last < 2 / K:
            out.append(f"The teacher head reads the student's features at {_pct(last)}, near chance "
                       f"(1/K = {_pct(1 / K)}): the two encoders' feature spaces are not yet one space.")
    ref = (reference or {}).get("student_test_acc")
    acc = (result or {}).get("student_test_acc")
    if ref is not None and acc is not None:
        out.append(f"Reference: `ce` (no teacher) reaches {_pct(ref)} on the same split and seed; this run "
                   f"{_pct(acc)}. One seed: a difference of a point or two is within the seed-to-seed noise "
                   "(notebook 02 gives it over five seeds).")
    return out


def _mmd(result, h) -> List[str]:
    st = ((result or {}).get("diagnostics") or {}).get("settings") or {}
    P = st.get("n_permutations")
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


def _ot(result, h) -> List[str]:
    out = []
    method = str((result or {}).get("method", ""))
    w1, fa = _series(h, "w1"), _series(h, "fa")
    if len(w1) >= 2 and w1[-1] > w1[0]:
        if method.startswith("ucmkd") and method != "ucmkd-joint":
            out.append(f"W1 **rises** ({w1[0]:.3g} → {w1[-1]:.3g}) although UCMKD has an OT term: in Algorithm 1 "
                       "that term only moves the temporary parameters (see the inner shift); the parameters kept "
                       "are trained by the cross-entropy, which moves the features wherever the labels need them"
                       + _norms(h) + ".")
        elif len(fa) >= 2 and fa[-1] < fa[0]:
            out.append(f"W1 **rises** ({w1[0]:.3g} → {w1[-1]:.3g}) while the training OT term falls "
                       f"({fa[0]:.3g} → {fa[-1]:.3g}). They are different quantities: the training term is an "
                       "entropic OT cost between two batches of 64 training features, with ε = 0.1 × *that "
                       "batch's* median cost (it blurs the plan over many neighbours at any scale); W1 is the "
                       "exact, unblurred distance between 512-point held-out sets. A blurred plan can get cheaper "
                       "by pulling the student's cloud towards the teacher's dense regions without matching it "
                       "point for point, and the cross-entropy keeps moving the features as well.")
        elif method == "ce":
            out.append(f"W1 rises ({w1[0]:.3g} → {w1[-1]:.3g}): `ce` never looks at the teacher, and training "
                       "moves the student's features wherever its own head needs them" + _norms(h) + ".")
    pur, ch, pm = _series(h, "purity"), _series(h, "purity_chance"), _series(h, "purity_matched")
    if pur and ch and pur[-1] < ch[-1]:
        out.append(f"Exact-plan purity {_pct(pur[-1])} is **below chance** ({_pct(ch[-1])}): the exact plan sends "
                   "each student point to nearby teacher points, and when the student's class clusters sit next "
                   "to the teacher's clusters of *other* classes (the two encoders' layouts differ by a class "
                   "permutation), it joins mostly different classes — systematically, hence below chance"
                   + (f"; up to a relabelling of the classes {_pct(pm[-1])} of the mass stays within classes"
                      if pm else "") + ". The entropic plan, blurrier, stays nearer to chance.")
    return out


def _bound(result, h) -> List[str]:
    out = []
    rows = [r for r in h if r.get("bound_sum") is not None]
    if not rows:
        return out
    last = rows[-1]
    et, fa, la, es = (last.get(k) for k in ("bound_err_t", "bound_fa", "bound_la", "bound_err_s"))
    if None not in (et, fa, la, es):
        held = all(r.get("bound_holds") for r in rows)
        out.append(f"Why it {'holds' if held else 'mostly holds'}: with the plug-in κ̂ = p_T(y | z_S) each sample adds "
                   "κ̂·log p_T = p·log p ∈ [−1/e, 0] to the student's cross-entropy, so LA_e ≥ err_S − 1/e and the "
                   f"estimate can only fail when err_T + FA_e < 1/e ≈ 0.37 nats. Here err_T + FA_e = {et + fa:.3g} "
                   "nats: the check holds by construction, and says nothing about distillation.")
        if la < 0:
            out.append(f"LA_e is **negative** ({la:.3g}): LA_e = err_S − mean κ̂·(−log p_T(y | z_S)), and "
                       f"the student's own cross-entropy ({es:.3g}) is below the κ̂-weighted teacher loss on its "
                       "features; the bars stack from zero, so the total (black tick) is err_T + FA_e minus that.")
    return out


def run_readings(result: dict, *, reference: Optional[dict] = None) -> Dict[str, List[str]]:
    """The data-driven sentences for a run's figures, keyed by figure kind (``losses``, ``accuracy``,
    ``mmd``, ``ot``, ``bound``); ``reference`` is a ``ce`` run of the same task and seed, when there is one."""
    h = _h(result)
    d = (result or {}).get("diagnostics") or {}
    hd = ([dict(d["initial"], epoch=0)] if d.get("initial") else []) + [r for r in h if "mmd2" in r]
    return {"losses": _losses(result, h, reference), "accuracy": _accuracy(result, hd or h, reference),
            "mmd": _mmd(result, hd), "ot": _ot(result, hd), "bound": _bound(result, hd)}


def figure_caption(name: str, result: Optional[dict] = None, *, reference: Optional[dict] = None,
                   readings: Optional[Dict[str, List[str]]] = None) -> str:
    """Markdown caption of figure ``name`` (a run-report title or a debugger key): what it shows, then what
    this run's numbers say where a curve needs explaining. Empty for an unknown name."""
    kind = FIGURE_KINDS.get(name)
    if kind is None:
        return ""
    if readings is None:
        readings = run_readings(result, reference=reference) if result else {}
    return " ".join([BASE_CAPTIONS[kind]] + list(readings.get(kind, [])))
