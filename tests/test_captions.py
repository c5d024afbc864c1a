"""Captions are true by construction: every element a caption names — a line, a band, a panel, an axis, a
marker, a slider, a legend entry — exists in the figure it captions, for every figure a run can produce
(every method, with and without diagnostics, weights at 1 and not), and a claim such as "below chance"
comes with the interval behind it."""
from __future__ import annotations

import math
import re

import pytest

from cmkd_lab import viz
from cmkd_lab.diagnostics import DiagnosticsCallback
from cmkd_lab.distill import DistillConfig, Trainer, available_methods, get_method
from cmkd_lab.viz.captions import FIGURE_KINDS, figure_caption, figure_kind
from cmkd_lab.viz.curves import LOSS_TERMS
from cmkd_lab.viz.distances import GAP_AGREEMENT, GAP_DISTANCES, MMD_SIZES, OT_DISTANCES, OT_PURITY
from cmkd_lab.viz.readings import run_readings, wilson


# ------------------------------------------------------------- what a figure holds
def _traces(fig):
    return list(fig.data)


def _dash(obj):
    line = getattr(obj, "line", None)
    return getattr(line, "dash", None) if line is not None else None


def _shapes(fig):
    return list(fig.layout.shapes or [])


def _axes(fig, letter):
    lay = fig.layout.to_plotly_json()
    return {k: v for k, v in lay.items() if re.fullmatch(letter + r"axis\d*", k)}


def _side_by_side(fig):
    xs = [v.get("domain") for v in _axes(fig, "x").values() if v.get("domain")]
    return any(a[1] <= b[0] for a in xs for b in xs)


def _stacked(fig):
    ys = [v.get("domain") for v in _axes(fig, "y").values() if v.get("domain")]
    return any(a[1] <= b[0] for a in ys for b in ys)


def _red(c):
    return str(c).upper() in ("#D62728", "RED")


ELEMENTS = {
    # phrase in the caption -> what the figure must hold
    r"wide grey line": lambda f: any(getattr(t.line, "width", 0) and t.line.width >= 6 for t in _traces(f)
                                     if getattr(t, "line", None) is not None),
    r"Dashed:": lambda f: any(_dash(t) == "dash" for t in _traces(f)),
    r"[Dd]otted, on the right-hand axis": lambda f: any(getattr(t, "yaxis", None) == "y2" and _dash(t) == "dot"
                                                        for t in _traces(f)),
    r"dotted p = 0\.05 line": lambda f: any(s.y0 is not None and abs(s.y0 + math.log10(0.05)) < 1e-9
                                            and _dash(s) == "dot" for s in _shapes(f)),
    r"\bred dashed line": lambda f: any(_dash(s) == "dash" and _red(s.line.color) for s in _shapes(f)),
    r"dotted line is chance": lambda f: any(_dash(s) == "dot" for s in _shapes(f)),
    r"dotted chance level": lambda f: any(_dash(t) == "dot" and "chance" in (t.name or "") for t in _traces(f)),
    r"Left panel|Right panel": _side_by_side,
    r"Top panel|Bottom panel|Top row|bottom row": _stacked,
    r"Stacked bars": lambda f: f.layout.barmode in ("relative", "stack") and any(t.type == "bar" for t in _traces(f)),
    r"\bblack tick": lambda f: any(getattr(t.marker, "symbol", None) == "line-ew-open" for t in _traces(f)
                                 if getattr(t, "marker", None) is not None),
    r"\bblack line": lambda f: any(t.type == "scatter" and "lines" in (t.mode or "") and
                                 getattr(t.line, "color", None) == "black" for t in _traces(f)),
    r"\bred cross": lambda f: any(getattr(t.marker, "symbol", None) == "x" and _red(t.marker.color) for t in _traces(f)
                                if getattr(t, "marker", None) is not None),
    r"\bslider": lambda f: bool(f.layout.sliders),
    r"\(diamonds\)": lambda f: any(getattr(t.marker, "symbol", None) == "diamond" for t in _traces(f)
                                  if getattr(t, "marker", None) is not None),
    r"middle panel": lambda f: len([v for v in _axes(f, "x").values() if v.get("domain")]) >= 3,
    r"\bwhite lines": lambda f: any(str(getattr(s.line, "color", "")) == "white" for s in _shapes(f)),
    r"drawn wide and light underneath": lambda f: (_traces(f)[0].line.width or 0) > 2 and _traces(f)[0].opacity < 1,
    r"Teacher \(●\) and student \(✕\)": lambda f: {"circle", "x"} <= {getattr(t.marker, "symbol", None)
                                                                       for t in _traces(f)},
    r"CE term's lines are drawn wide and light": lambda f: any(
        t.name == "CE term" and (t.line.width or 0) > 2 and (t.opacity or 1) < 1 for t in _traces(f)),
    r"cosine lies in \[−1, 1\]": lambda f: any(t.name == "cos(mean z_S, mean z_T)" for t in _traces(f)),
}
# Legend entries a caption may name: each must be a trace of the figure when the caption names it.
LEGEND_NAMES = ([v for v in LOSS_TERMS.values()] + [n for _, n, *_ in MMD_SIZES + OT_DISTANCES + OT_PURITY
                                                    + GAP_DISTANCES + GAP_AGREEMENT])


def check_caption(caption: str, fig) -> list:
    """The elements ``caption`` names that ``fig`` lacks (empty: the caption is true of the figure)."""
    missing = [pat for pat, holds in ELEMENTS.items() if re.search(pat, caption) and not holds(fig)]
    names = {t.name for t in _traces(fig)}
    base = caption.split(". ")[0] if "loss term" in caption else caption
    for n in LEGEND_NAMES:
        if re.search(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", base) and n not in names:
            # a loss term named in a reading ("the FA term rises") is a curve of the figure too
            missing.append(f"legend entry {n!r}")
    return missing


# ------------------------------------------------------------------ the runs
def _history(method: str, epochs: int = 3, *, diagnostics: bool = False, fail: bool = False) -> list:
    terms = [k for k in get_method(method).terms if k != "loss"]
    h = []
    for e in range(1, epochs + 1):
        r = {"epoch": e, "val_acc": 0.5 + 0.05 * e, "test_acc": 0.5 + 0.04 * e}
        for i, k in enumerate(terms):
            r[k] = (1.5 - 0.1 * e) / (i + 1) if k != "la" else -0.05 * e
        r["loss"] = r.get("ce", 1.0) if method == "ucmkd" else sum(r[k] for k in terms)
        if method == "ucmkd":
            r["inner_shift"] = 0.004 + 0.001 * e
        if diagnostics:
            r.update(mmd2=0.1, mmd_p=1 / 51, mmd2_linear=0.09, ot_cost=5.0, w1=5.0 + e, sinkhorn_div=3.0,
                     purity=0.10, purity_entropic=0.12, purity_matched=0.6, purity_chance=0.2,
                     teacher_head_on_student_acc=0.02, centroid_gap=2.0, mean_cos=0.3, kappa_mean=0.2,
                     bound_err_t=0.1, bound_fa=0.1, bound_la=-0.1, bound_sum=0.1, bound_err_s=0.3,
                     bound_holds=not (fail and e == epochs))
        h.append(r)
    return h


def _result(method: str, **cfg) -> dict:
    diag = cfg.pop("diagnostics", False)
    fail = cfg.pop("fail", False)
    out = {"method": method, "history": _history(method, diagnostics=diag, fail=fail), "student_test_acc": 0.7,
           "config": dict({"inner_lr": 1e-3, "n1": 1, "n2": 1, "lambda_fa": 1.0, "lambda_la": 1.0,
                           "lambda_ent": 1.0, "fitnet_weight": 1.0}, **cfg)}
    if diag:
        out["diagnostics"] = {"class_names": list("ABCDE"), "settings": {"n_permutations": 50, "n_student_ref": 512,
                                                                          "n_teacher_ref": 512}}
    return out


FABRICATED = ([(m, {}) for m in available_methods()] + [(m, {"lambda_fa": 0.1, "lambda_la": 10.0})
                                                        for m in ("fa", "la", "ucmkd", "ucmkd-joint")]
              + [("entmin", {"lambda_ent": 0.5}), ("fitnet", {"fitnet_weight": 2.0}),
                 ("fa", {"diagnostics": True}), ("ucmkd", {"diagnostics": True}),
                 ("ce", {"diagnostics": True, "fail": True})])


@pytest.fixture(scope="module")
def real_runs(small_task):
    """Real runs with full diagnostics: their figures carry every panel, plan and snapshot."""
    out = {}
    for method, cfg in (("ucmkd", {}), ("fa", {"lambda_fa": 0.1}), ("ce", {})):
        cb = DiagnosticsCallback(n_ref=64, n_snapshot=30, seed=0, snapshot_epochs=[0, 1, 2])
        out[method] = Trainer(small_task, method, DistillConfig(epochs=2, teacher_epochs=2, **cfg),
                              callbacks=[cb]).fit()
    return out


def _check_all(result, figures):
    bad = {}
    for name, fig in figures:
        if figure_kind(name) is None:
            continue
        for given in (fig, None):  # with the figure (notebooks) and without it (the run report)
            cap = figure_caption(name, result, figure=given)
            assert cap, name
            missing = check_caption(cap, fig)
            if missing:
                bad[(name, given is None)] = (missing, cap)
    return bad


@pytest.mark.parametrize("method,cfg", FABRICATED, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={x}" for k, x in v.items()) or "defaults")
def test_every_caption_names_only_what_its_figure_draws(method, cfg):
    result = _result(method, **dict(cfg))
    figs = viz.run_figures(result, projection="none")
    assert figs
    bad = _check_all(result, figs)
    assert not bad, bad


def test_captions_of_real_runs_and_the_debugger(real_runs):
    from cmkd_lab.widgets.debugger import debugger_figures
    for method, result in real_runs.items():
        figs = viz.run_figures(result, projection="pca") + list(debugger_figures(result).items())
        assert {figure_kind(n) for n, _ in figs} >= set(FIGURE_KINDS.values()) - {None}
        bad = _check_all(result, figs)
        assert not bad, (method, bad)


def test_the_check_catches_a_caption_that_names_a_missing_element():
    """The former ucmkd loss caption named a grey band and dashed lines its figure never drew."""
    result = _result("ucmkd")
    fig = viz.loss_curves(result["history"], config=result["config"])
    old = ("Each loss term, averaged over the epoch's steps. The wide grey line is the total the optimiser "
           "minimises; Dashed: terms as weighted in it (λ·term).")
    assert set(check_caption(old, fig)) == {r"wide grey line", r"Dashed:"}
    assert "wide grey line" not in figure_caption("Loss terms", result, figure=fig)
    assert "Dashed" not in figure_caption("Loss terms", result, figure=fig)
    weighted = _result("fa", lambda_fa=0.1)
    cap = figure_caption("Loss terms", weighted, figure=viz.loss_curves(weighted["history"], config=weighted["config"]))
    assert "wide grey line" in cap and "Dashed: 0.1 × FA term" in cap


def test_the_mmd_caption_points_at_the_bottom_panel_not_a_right_axis():
    result = _result("fa", diagnostics=True)
    cap = figure_caption("mmd", result)
    assert "right axis" not in cap and "Bottom panel" in cap


def test_the_mmd_caption_says_what_a_triangle_at_the_top_edge_is():
    """The linear-time test's p-value reaches 1e-16 while the axis stops near 1e-4: the figure draws it at the
    edge as a triangle, and the caption says so (only then)."""
    result = _result("fa", diagnostics=True)
    plain = figure_caption("mmd", result, figure=viz.mmd_curves(result["history"], n_permutations=50))
    assert "▲" not in plain
    for r in result["history"]:
        r["mmd_linear_p"] = 1e-16
    fig = viz.mmd_curves(result["history"], n_permutations=50)
    assert any("triangle-up" in (t.marker.symbol or ()) for t in fig.data if t.marker is not None)
    assert "▲" in figure_caption("mmd", result, figure=fig)


# ------------------------------------------------- claims come with their interval
def test_wilson_interval_matches_its_closed_form():
    lo, hi = wilson(0.5, 100)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson(0.0, 10)[0] == 0.0 and wilson(1.0, 10)[1] == 1.0
    with pytest.raises(ValueError, match="n must be a positive"):
        wilson(0.5, 0)


def _ot_result(purity, chance, n, method="ucmkd", head=0.19):
    r = _result(method, diagnostics=True)
    for rec in r["history"]:
        rec.update(purity=purity, purity_chance=chance, teacher_head_on_student_acc=head)
    if n is None:
        r["diagnostics"]["settings"] = {"n_permutations": 50}
    else:
        r["diagnostics"]["settings"].update(n_student_ref=n, n_teacher_ref=n)
    return r


def test_below_chance_needs_the_interval_to_exclude_chance():
    # 16.7 % against 19.9 % over 512 pairs: the interval reaches chance -> no "below chance" claim
    ot = " ".join(run_readings(_ot_result(0.167, 0.199, 512))["ot"])
    assert "**below chance**" not in ot and "no evidence of a systematic mismatch" in ot
    assert "systematically" not in ot
    # 3 % against 16.9 % over 512 pairs: far outside -> claimed, with the interval stated
    ot = " ".join(run_readings(_ot_result(0.03, 0.169, 512))["ot"])
    assert "**below chance**" in ot and "95 % interval over the 512 matched pairs" in ot
    # no sample size recorded: no interval, no claim
    ot = " ".join(run_readings(_ot_result(0.03, 0.169, None))["ot"])
    assert "**below chance**" not in ot and "no interval" in ot


def test_the_entropic_plan_is_stated_not_compared():
    ot = " ".join(run_readings(_ot_result(0.03, 0.169, 512))["ot"])
    assert "stays nearer to chance" not in ot and "The entropic plan's purity: 12.0 %" in ot


def test_what_ties_the_coordinates_follows_the_method():
    acc = " ".join(run_readings(_ot_result(0.1, 0.2, 512, method="fa", head=0.02))["accuracy"])
    assert "Nothing" not in acc and "OT term in the loss pulls" in acc and "W1 6 → 8" in acc
    acc = " ".join(run_readings(_ot_result(0.1, 0.2, 512, method="ce", head=0.02))["accuracy"])
    assert "Nothing in `ce`'s loss ties" in acc
    acc = " ".join(run_readings(_ot_result(0.1, 0.2, 512, method="ucmkd", head=0.02))["accuracy"])
    assert "temporary parameters" in acc


def test_ucmkd_behaves_like_ce_only_when_its_inner_shift_is_small():
    small = _result("ucmkd")
    txt = run_readings(small, reference={"student_test_acc": 0.7})["losses"][0]
    assert "at this toolkit's defaults (inner lr 1e-3), `ucmkd` behaves like cross-entropy" in txt
    assert "**is**" not in txt and "docs/" not in txt and "+0.00 points" in txt
    big = _result("ucmkd", inner_lr=0.1)
    for r in big["history"]:
        r["inner_shift"] = 1.5
    txt = run_readings(big)["losses"][0]
    assert "behaves like cross-entropy" not in txt and "far from φ" in txt


def test_the_bound_reading_compares_with_ln_k_and_explains_a_negative_la():
    r = _result("ce", diagnostics=True)
    for rec in r["history"]:
        rec.update(bound_err_t=0.4, bound_fa=4.0, bound_la=0.3, bound_sum=4.7, bound_err_s=0.5, bound_holds=True)
    b = run_readings(r)["bound"]
    assert "holds by construction" in b[0]
    assert any("ln K = 1.61" in s and "**vacuous**" in s for s in b)
    for rec in r["history"]:
        rec.update(bound_err_t=0.05, bound_fa=0.1, bound_la=-0.2, bound_sum=-0.05, bound_err_s=0.01)
    b = run_readings(r)["bound"]
    assert "not automatic" in b[0] and not any("vacuous" in s for s in b)
    assert any("**negative**" in s and "surer of the right class" in s for s in b)


def test_no_caption_cites_a_file_a_student_lacks():
    for method, cfg in FABRICATED:
        result = _result(method, **dict(cfg))
        for name, fig in viz.run_figures(result, projection="none"):
            cap = figure_caption(name, result, figure=fig)
            assert "docs/" not in cap and ".md" not in cap and "README" not in cap, cap


# ------------------------------------------------------------ nothing hides a line
def _audit_history(la_equals_ce: bool) -> list:
    h = []
    for e in (1, 2, 3):
        r = {"epoch": e, "val_acc": 0.5, "grad_enc_ce": 1.4 / e, "grad_head_ce": 0.8 / e, "grad_enc_fa": 3.0,
             "grad_head_fa": 0.0, "cos_ce_fa": 0.1 * (-1) ** e}
        r.update(grad_enc_la=r["grad_enc_ce"] if la_equals_ce else 0.5, grad_head_la=r["grad_head_ce"] if
                 la_equals_ce else 0.2, cos_ce_la=1.0 if la_equals_ce else 0.3)
        h.append(r)
    return h


def test_a_term_equal_to_cross_entropy_does_not_hide_the_ce_lines():
    """Under la_teacher_grad="none" the LA gradient is the CE gradient: the CE lines are drawn first, wide and
    light, so that both stay visible, and the caption says so (checked against the figure)."""
    h = _audit_history(la_equals_ce=True)
    fig = viz.audit_figure(h)
    first = _traces(fig)[0]
    assert first.name == "CE term" and first.line.width > 2 and first.opacity < 1
    assert all((t.line.width or 2) <= 2 for t in _traces(fig) if t.name != "CE term")
    result = {"method": "ucmkd", "history": h, "config": {}}
    cap = figure_caption("Gradient audit", result, figure=fig)
    assert "CE term's lines are drawn wide and light underneath" in cap and check_caption(cap, fig) == []
    assert "each of the 3 audited epochs" in cap and "epoch(s)" not in cap


def test_the_gap_caption_gives_the_cosine_its_own_range():
    """The right panel holds a cosine (which can be negative) next to a probability and an accuracy: the
    caption and the panel's title say 'at most 1', not 'a 0–1 scale'."""
    result = _result("ce", diagnostics=True)
    for r in result["history"]:
        r["mean_cos"] = -0.2
    fig = dict(viz.run_figures(result, projection="none"))["Modality gap"]
    cap = figure_caption("Modality gap", result, figure=fig)
    assert "0–1" not in cap and "the cosine lies in [−1, 1], the others in [0, 1]" in cap
    assert check_caption(cap, fig) == []
    assert "0-1" not in " ".join(a.text for a in fig.layout.annotations)
