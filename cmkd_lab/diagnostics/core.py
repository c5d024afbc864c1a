"""All diagnostics of one (student features, teacher features) pair at once."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from .._validation import check_int, check_positive
from ..keys import declare
from ._common import as_labels, pair_features
from .bound import bound_terms, lipschitz_estimate
from .gap import modality_gap
from .labels import label_diagnostics
from .mmd_test import class_conditional_mmd, linear_mmd, mmd_permutation_test
from .transport import exact_ot, plan_class_purity, sinkhorn_divergence

__all__ = ["DiagnosticsSettings", "diagnose", "pool_plan"]

# The scalars diagnose() records in a history record (cmkd_lab.keys; readers never keep their own list).
declare("diagnostics", "diagnostic", {
    "mmd2": "MMD² (unbiased, RBF)", "mmd_p": "MMD permutation p-value", "mmd2_linear": "linear-time MMD²",
    "mmd_linear_p": "linear-time MMD p-value", "mmd_class_mean": "mean per-class MMD²",
    "mmd_class_rejected": "classes whose MMD test rejects (Holm)", "ot_cost": "entropic OT cost",
    "sinkhorn_div": "Sinkhorn divergence", "w1": "W1 (exact OT)", "purity": "plan class purity (exact plan)",
    "purity_entropic": "plan class purity (entropic plan)", "purity_chance": "plan purity at chance",
    "purity_matched": "plan purity up to a relabelling", "kappa_mean": "mean κ̂ = p_T(y|z_S)",
    "kappa_median": "median κ̂", "kappa_min_class": "lowest per-class mean κ̂",
    "label_tv_teacher_vs_student": "TV between teacher-head label marginals on each side",
    "label_prior_tv": "TV between the two sides' class priors",
    "teacher_head_on_student_ce": "teacher head's cross-entropy on student features",
    "bound_w1": "W1 used by the bound", "bound_tau": "τ̂ (Lipschitz estimate)", "bound_tau_grad": "τ̂ from gradients",
    "bound_tau_pairs": "τ̂ from pairs", "bound_fa": "bound: FA term", "bound_la": "bound: LA_e term",
    "bound_sum": "bound: err_T + FA + LA_e", "bound_transfer": "err_S − LA_e", "bound_slack": "bound − err_S",
    "bound_holds": "the estimated bound holds", "centroid_gap": "centroid gap", "mean_cos": "cosine between means",
    "gap_ratio": "centroid gap / teacher radius", "norm_ratio": "mean norm ratio (student / teacher)",
    "class_centroid_gap": "mean per-class centroid gap"})
declare("diagnostics", "reference", {
    "ot_marginal_err": "Sinkhorn marginal error", "bound_err_t": "err_T (teacher CE on its reference set)",
    "bound_err_t01": "teacher 0-1 error (reference set)", "teacher_acc_ref": "teacher accuracy (reference set)",
    "teacher_head_on_student_acc_ref": "teacher head on student features (reference set)"})
declare("diagnostics", "outcome", {
    "bound_err_s": "err_S (student CE on its reference set)", "bound_err_s01": "student 0-1 error (reference set)",
    "student_acc_ref": "student accuracy (reference set)"})
declare("diagnostics", "bookkeeping", {"diag_time_s": "diagnostics time"}, units={"diag_time_s": "s"})


@dataclass
class DiagnosticsSettings:
    """What :func:`diagnose` computes and how (stored in ``result["diagnostics"]``)."""

    n_permutations: int = 200      # MMD permutation test
    class_permutations: int = 100  # per-class MMD tests (Holm-corrected; raised to >= 2K/alpha)
    alpha: float = 0.05            # family-wise level of the per-class tests
    ot_cost: str = "l2"            # ground cost of the OT diagnostics (l2: W1)
    sinkhorn_iter: int = 300      # converges to ~1e-15 marginal error at eps = 0.1 x median cost
    n_exact: int = 2000            # exact OT (ot.emd2) when both sets are at most this large
    lipschitz_pairs: int = 2000
    lipschitz_segment: int = 1000

    def validate(self) -> "DiagnosticsSettings":
        check_int("n_permutations", self.n_permutations, minimum=0)
        check_int("class_permutations", self.class_permutations, minimum=0)
        check_positive("alpha", self.alpha)
        check_int("sinkhorn_iter", self.sinkhorn_iter, minimum=1)
        check_int("n_exact", self.n_exact, minimum=0)
        check_int("lipschitz_pairs", self.lipschitz_pairs, minimum=0)
        check_int("lipschitz_segment", self.lipschitz_segment, minimum=0)
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def pool_plan(plan, y_rows, y_cols, *, max_side: int = 64) -> dict:
    """A plan sorted by class and sum-pooled to at most ~``max_side`` per side,
    never pooling across a class boundary.

    Returns
    -------
    dict with ``plan`` (R, C) ndarray (total mass 1), ``row_classes`` (R,),
    ``col_classes`` (C,), ``row_sizes`` (R,) and ``col_sizes`` (C,): how many
    rows / columns of the original plan each group holds
    """
    check_int("max_side", max_side, minimum=1)
    P = np.asarray(plan, dtype=np.float64)
    yr, yc = np.asarray(y_rows), np.asarray(y_cols)

    def groups(y, n):
        f = max(1, int(np.ceil(n / max_side)))
        out, cls = [], []
        for k in np.unique(y):
            idx = np.flatnonzero(y == k)
            for s in range(0, idx.size, f):
                out.append(idx[s:s + f])
                cls.append(int(k))
        return out, cls

    gr, cr = groups(yr, P.shape[0])
    gc, cc = groups(yc, P.shape[1])
    rows = np.stack([P[g].sum(0) for g in gr])  # (R, M)
    pooled = np.stack([rows[:, g].sum(1) for g in gc], 1)  # (R, C)
    return {"plan": pooled / pooled.sum(), "row_classes": cr, "col_classes": cc,
            "row_sizes": [len(g) for g in gr], "col_sizes": [len(g) for g in gc]}


@torch.no_grad()
def diagnose(z_s, y_s, z_t, y_t, *, teacher_head, student_head, bandwidth: Sequence[float], eps: float,
             num_classes: int, settings: Optional[DiagnosticsSettings] = None, seed: int = 0,
             keep_plan: bool = False, cache: Optional[dict] = None) -> Tuple[dict, dict]:
    """Every diagnostic between student features ``z_s`` and teacher features ``z_t``.

    Parameters
    ----------
    z_s : Tensor (N, D) student features (reference set);  y_s : (N,)
    z_t : Tensor (M, D) teacher features (reference set);  y_t : (M,)
    teacher_head, student_head : callable (B, D) -> (B, K)
    bandwidth : list of float
        RBF bandwidths, fixed for the run (from the teacher reference set).
    eps : float
        Absolute entropic regularisation for the OT diagnostics.
    num_classes : int
    settings : DiagnosticsSettings, optional
    seed : int
        Seeds the permutations and the Lipschitz sampling.
    keep_plan : bool
        Return the class-sorted pooled entropic plan among the artefacts.
    cache : dict, optional
        Reused across calls with the same teacher set (holds the teacher's
        Sinkhorn self-term); pass the same dict every epoch.

    Returns
    -------
    scalars : dict of flat floats / bools (history record keys)
    artefacts : dict of small arrays and lists
    """
    st = (settings or DiagnosticsSettings()).validate()
    t0 = time.perf_counter()
    ts, tt = pair_features("z_s", z_s, "z_t", z_t, min_len=2)
    ys = as_labels("y_s", y_s, ts.shape[0], num_classes)
    yt = as_labels("y_t", y_t, tt.shape[0], num_classes)
    dev = next(teacher_head.parameters()).device if hasattr(teacher_head, "parameters") else ts.device
    ls = student_head(ts.float().to(dev)).cpu()  # (N, K)
    lts = teacher_head(ts.float().to(dev)).cpu()  # (N, K)
    ltt = teacher_head(tt.float().to(dev)).cpu()  # (M, K)
    sc, art = {}, {}

    r = mmd_permutation_test(ts, tt, bandwidth=bandwidth, n_permutations=st.n_permutations, seed=seed)
    sc["mmd2"], sc["mmd_p"] = r["mmd2"], r["p_value"]
    if min(ts.shape[0], tt.shape[0]) >= 4:
        lin = linear_mmd(ts, tt, bandwidth=bandwidth, seed=seed)
        sc["mmd2_linear"], sc["mmd_linear_p"] = lin["mmd2"], lin["p_value"]
    # Holm multiplies the smallest p-value by K and a permutation p-value is >= 1/(1+P): below
    # P = K/alpha no class could ever be rejected, so P is raised to at least 2K/alpha.
    n_cls = 0 if not st.class_permutations else max(st.class_permutations, int(math.ceil(2 * num_classes / st.alpha)))
    cc = class_conditional_mmd(ts, ys, tt, yt, bandwidth=bandwidth, num_classes=num_classes,
                               n_permutations=n_cls, seed=seed, alpha=st.alpha)
    sc["mmd_class_mean"], sc["mmd_class_rejected"] = cc["mean_mmd2"], cc["n_rejected"]
    art["class_mmd"] = cc["per_class"]

    # S_ε = OT_ε(s, t) − ½OT_ε(s, s) − ½OT_ε(t, t); the teacher's self-term is cached (frozen teacher).
    key = ("tt_objective", float(eps), st.ot_cost, st.sinkhorn_iter, tt.shape[0])
    sd = sinkhorn_divergence(ts, tt, eps=eps, cost=st.ot_cost, max_iter=st.sinkhorn_iter, full=True,
                             y_self=None if cache is None else cache.get(key))
    if cache is not None:
        cache[key] = sd["yy"]
    ent = sd["xy"]
    sc["ot_cost"], sc["ot_marginal_err"] = ent["cost"], ent["marginal_error"]
    sc["sinkhorn_div"] = sd["divergence"]
    pe = plan_class_purity(ent["plan"], ys, yt, num_classes)
    sc["purity_entropic"], sc["purity_chance"] = pe["purity"], pe["chance"]
    art["class_mass_entropic"] = pe["class_mass"]
    if max(ts.shape[0], tt.shape[0]) <= st.n_exact:
        w, plan = exact_ot(ts, tt, cost=st.ot_cost, return_plan=True, max_points=max(st.n_exact, 1))
        px = plan_class_purity(plan, ys, yt, num_classes)
        sc["w1"], sc["purity"], sc["purity_matched"] = w, px["purity"], px["purity_matched"]
        art["class_mass_exact"] = px["class_mass"]
        w1_for_bound, w1_how = w, "exact OT (ot.emd2)"
    else:
        sc["purity"], sc["purity_matched"] = pe["purity"], pe["purity_matched"]
        w1_for_bound, w1_how = ent["cost"], "entropic OT transport cost (an upper estimate of W1)"
    if keep_plan:
        art["plan"] = pool_plan(ent["plan"], ys, yt)

    lab = label_diagnostics(teacher_logits_on_student=lts, student_logits=ls, y_student=ys,
                            teacher_logits_on_teacher=ltt, y_teacher=yt)
    sc.update(lab["scalars"])
    art.update(lab["artefacts"])

    lip = lipschitz_estimate(teacher_head, ts, tt, n_pairs=st.lipschitz_pairs, n_segment=st.lipschitz_segment,
                             seed=seed)
    b = bound_terms(teacher_logits_on_teacher=ltt, y_teacher=yt, student_logits=ls, teacher_logits_on_student=lts,
                    y_student=ys, w1=w1_for_bound, tau=lip["tau"])
    art["bound_statement"] = b.pop("bound_statement")
    art["bound_method"] = {"lipschitz": lip["method"], "w1": w1_how if st.ot_cost == "l2" else
                           f"{w1_how} with cost {st.ot_cost!r} (W1 needs cost='l2')"}
    sc.update(b)
    sc["bound_tau_grad"], sc["bound_tau_pairs"] = lip["tau_grad"], lip["tau_pairs"]

    sc.update(modality_gap(ts, tt, y_s=ys, y_t=yt, num_classes=num_classes))
    sc["diag_time_s"] = time.perf_counter() - t0
    return sc, art
