"""Captions for a run's figures, true by construction: each names only what its figure draws — the
same predicates that decide a line, a panel or a marker decide the words — and then what this run's
numbers say (:func:`cmkd_lab.viz.readings.run_readings`).

:func:`figure_caption` returns Markdown for one figure (by its name in :func:`cmkd_lab.viz.run_figures`
or in the debugger's figure dict). Nothing here draws; the widgets display the text next to the figure.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from .curves import loss_layout, term_label
from .distances import (GAP_AGREEMENT, GAP_DISTANCES, MMD_SIZES, OT_DISTANCES, OT_PURITY, diagnostic_history,
                        lines_present)
from .readings import INV_E, run_readings

__all__ = ["figure_caption", "base_caption", "run_readings", "figure_kind", "FIGURE_KINDS", "INV_E"]

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
    "Gradient audit": "audit", "audit": "audit",
}
_COMPARISON = "Validation accuracy: "  # run_with_baseline's figure "Validation accuracy: <method> vs <baseline>"


def figure_kind(name: str) -> Optional[str]:
    """The kind of figure ``name`` (a key of :data:`FIGURE_KINDS`, or ``comparison``), or None."""
    if name in FIGURE_KINDS:
        return FIGURE_KINDS[name]
    return "comparison" if str(name).startswith(_COMPARISON) else None


def _listing(names: List[str]) -> str:
    names = [n for n in names if n]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


def _losses(result, h, figure) -> str:
    spec = loss_layout(h, (result or {}).get("config"))
    terms = _listing([term_label(k) for k in spec["terms"]])
    txt = f"Each loss term per epoch, averaged over the epoch's steps: {terms}."
    if spec["total"]:
        txt += " The wide grey line behind them is the total the optimiser minimises."
    elif spec["total_is_ce"]:
        txt += f" The total the optimiser minimises is the {term_label('ce')} itself, so it is not drawn apart."
    if spec["weighted"]:
        txt += (" Dashed: " + _listing([f"{w:g} × {term_label(k)}" for k, w in spec["weighted"]])
                + ", as weighted in the loss.")
    if spec["inner_shift"]:
        txt += " Dotted, on the right-hand axis: the inner shift ‖φ̃ − φ‖, a parameter distance, not a loss."
    return txt + (" Logarithmic scale." if spec["log"] else "")


def _accuracy(result, h, figure) -> str:
    from .curves import test_is_sparse
    drawn = [name for key, name in (("val_acc", "validation"), ("test_acc", "test")) if any(key in r for r in h)]
    if test_is_sparse(h):
        txt = ("The student's validation accuracy per epoch, and its test accuracy (diamonds) where a result reads "
               "it: at the best *validation* epoch, the one reported, and at the last epoch (eval_test='every' "
               "draws a test curve)")
    else:
        txt = f"The student's {_listing(drawn)} accuracy per epoch (the reported test accuracy is taken at the " \
              "best *validation* epoch)"
    if any("teacher_head_on_student_acc" in r for r in h):
        txt += ", and the frozen teacher head applied to the student's features"
    txt += "."
    chance = bool(figure.layout.shapes) if figure is not None else \
        bool(((result or {}).get("diagnostics") or {}).get("class_names"))
    if chance:
        txt += " The dotted line is chance, 1/K."
    return txt


def _mmd(result, hd, figure) -> str:
    sizes = [n for _, n, *_ in lines_present(hd, MMD_SIZES)]
    txt = (f"Top panel: {_listing(sizes)} between the two feature clouds on fixed held-out sets (epoch 0: the "
           "untrained student). Bottom panel: −log10 of the test's p-value; above the dotted p = 0.05 line the clouds "
           "differ detectably.")
    settings = ((result or {}).get("diagnostics") or {}).get("settings") or {}
    floor = (any(getattr(s.line, "dash", None) == "dash" for s in figure.layout.shapes or ()) if figure is not None
             else bool(settings.get("n_permutations")))
    if floor:
        txt += " The red dashed line is the floor of the permutation test, 1/(1+P): no p-value can go lower."
    clipped = figure is not None and any("triangle-up" in (getattr(t.marker, "symbol", None) or ())
                                         for t in figure.data if getattr(t, "marker", None) is not None)
    if clipped:
        txt += (" A triangle (▲) at the top edge is a p-value smaller than the axis reaches, drawn at the edge; "
                "hover over it for its value.")
    return txt


def _ot(result, hd, figure) -> str:
    dist = [n for _, n, *_ in lines_present(hd, OT_DISTANCES)]
    pur = [n for k, n, *_ in lines_present(hd, OT_PURITY) if k != "purity_chance"]
    txt = f"Left panel: {_listing(dist)} between the two feature sets. Right panel: {_listing(pur)} — the share of " \
          "transported mass that joins two samples of the same class"
    if lines_present(hd, OT_PURITY[3:]):
        txt += ", against the dotted chance level Σₖ p_S(k)·p_T(k) (what a plan blind to classes gives)"
    return txt + "."


def _has_failure(hd, figure) -> bool:
    if figure is not None:
        return any(getattr(t, "name", None) == "bound does not hold" for t in figure.data)
    return any(r.get("bound_holds") is False for r in hd)


def _bound(result, hd, figure) -> str:
    txt = ("Stacked bars per epoch: err_T, FA = τ̂·W1 and LA_e (LA_e can be negative: the bars stack from zero); "
           "the black tick is their sum, the black line the student's measured cross-entropy err_S.")
    if _has_failure(hd, figure):
        txt += " A red cross marks an epoch where the estimated bound fails."
    return txt


def _gap(result, hd, figure) -> str:
    right = lines_present(hd, GAP_AGREEMENT)
    txt = (f"Left panel: {_listing([n for _, n, *_ in lines_present(hd, GAP_DISTANCES)])}. Right panel, each at "
           f"most 1: {_listing([n for _, n, *_ in right])} (reference sets)")
    if any(k == "mean_cos" for k, *_ in right):
        txt += "; the cosine lies in [−1, 1]" + (", the others in [0, 1]" if len(right) > 1 else "")
    return txt + "."


def _labels(result, h, figure) -> str:
    return ("Top row: the mean predicted distribution per true class; bottom row: the confusion matrices (rows: true "
            "class, columns: predicted class). Left to right: the teacher head on the teacher's features, the teacher "
            "head on the student's features — what κ̂, and so LA, relies on — and the student's own head.")


def _transport_plan(result, h, figure) -> str:
    recs = ((result or {}).get("diagnostics") or {}).get("records") or []
    which = "exact" if recs and recs[-1].get("class_mass_exact") else "entropic"
    return ("Left panel: the entropic plan between student (rows) and teacher (columns) features, sorted by class and "
            "pooled within classes; colour = mass relative to the independent coupling (1); white lines separate the "
            f"classes, and mass in the diagonal blocks joins same-class samples. Right panel: class-to-class mass of "
            f"the {which} plan; its diagonal sums to the purity.")


def _overlay(result, h, figure) -> str:
    txt = "Teacher (●) and student (✕) features in 2-D, one colour per class"
    if figure is not None and figure.layout.sliders:
        return txt + ", fitted once on every stored epoch; the slider moves across the epochs."
    return txt + "."


def _comparison(result, h, figure) -> str:
    txt = ("Validation accuracy per epoch of the two runs (same seed, data and teacher); the first run's line is "
           "drawn wide and light underneath, so that a run that follows it exactly stays visible.")
    if figure is not None and figure.layout.shapes:
        txt += " The dotted line is chance, 1/K."
    return txt


def _audit(result, h, figure) -> str:
    from .audit import audit_summary
    summ = {t: v for t, v in audit_summary(h).items() if t != "loss"}
    if not summ:
        return "This run recorded no gradient audit (audit_every=0)."
    n = max(v["n"] for v in summ.values())
    when = "the first step of the audited epoch" if n == 1 else f"the first step of each of the {n} audited epochs"
    txt = (f"What each loss term does to the student's parameters, measured at {when} before the optimiser "
           "moves them: the norm of the term's own gradient (before its weight) on the encoder (left panel) and "
           "on the head (middle panel), on a log axis, and the cosine between its gradient and the CE term's "
           "(right panel; the dotted line is 0: orthogonal, below it: against cross-entropy).")
    if "ce" in summ and (summ["ce"]["enc"] or summ["ce"]["head"]):
        txt += (f" The {term_label('ce')}'s lines are drawn wide and light underneath, so that a term whose "
                "gradient equals cross-entropy's does not hide them.")
    zero = [f"{term_label(t)} on the {where}" for t, v in summ.items() for where, key in (("encoder", "enc"),
                                                                                       ("head", "head"))
            if v[key] == 0]
    if zero:
        txt += f" No gradient at all (no point on the log axis): {_listing(zero)}."
    return txt


_BASE = {"losses": _losses, "accuracy": _accuracy, "labels": _labels, "transport_plan": _transport_plan,
         "overlay": _overlay, "comparison": _comparison, "audit": _audit}
# Figures of the per-epoch diagnostics: (what the run must have recorded, the caption).
_DIAGNOSED = {"mmd": ("MMD", _mmd), "ot": ("OT", _ot), "gap": ("gap", _gap), "bound": ("bound", _bound)}


def base_caption(kind: str, result: Optional[dict] = None, figure=None) -> str:
    """What a figure of ``kind`` draws for ``result`` (the figure itself, when given, settles what is drawn)."""
    if kind in _DIAGNOSED:
        what, caption = _DIAGNOSED[kind]
        hd = [r for r in diagnostic_history(result or {}) if kind != "bound" or "bound_sum" in r]
        return caption(result, hd, figure) if hd else f"This run recorded no {what} diagnostics."
    h = [r for r in (result or {}).get("history", []) if isinstance(r, dict) and "epoch" in r]
    return _BASE[kind](result, h, figure)


def figure_caption(name: str, result: Optional[dict] = None, *, reference: Optional[dict] = None,
                   readings: Optional[Dict[str, List[str]]] = None, figure=None) -> str:
    """Markdown caption of figure ``name`` (a run-report title or a debugger key): what it draws, then what
    this run's numbers say where a curve needs explaining. Empty for an unknown name.

    Parameters
    ----------
    name : str
    result : dict, optional
        The run (``result.json``) the figure was drawn from.
    reference : dict, optional
        A ``ce`` run of the same task and seed.
    readings : dict, optional
        :func:`run_readings` of the run, when already computed.
    figure : go.Figure, optional
        The figure itself: structural details (a slider, a failure marker) are read off it.
    """
    kind = figure_kind(name)
    if kind is None:
        return ""
    if readings is None:
        readings = run_readings(result, reference=reference) if result else {}
    return " ".join([base_caption(kind, result, figure)] + list(readings.get(kind, [])))
