"""Tables of a bench or a sweep as Markdown and CSV text (the files are written by the orchestrators).

Every Δ is printed with its interval and the minimum detectable effect (MDE) of the comparison, and every
cell with its noise floor: the baseline's seed-to-seed spread and the A/A row (the baseline against itself
with other training randomness).
"""
from __future__ import annotations

import csv
import io
from typing import Iterable, List

from .summary import CONTROLS, aa_name, control_table, is_aa, is_ceiling

__all__ = ["csv_text", "format_sweep_markdown", "format_bench_markdown", "format_control_markdown", "fmt_delta",
           "bench_csv", "headroom_text", "interrupted_banner"]


def csv_text(rows: List[dict], *, drop: Iterable[str] = ()) -> str:
    """``rows`` as CSV: every key of any row is a column (in order of first appearance), less ``drop``."""
    f = io.StringIO(newline="")
    if rows:
        keys = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in set(drop)]
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return f.getvalue()


# The fields of a comparison a bench's results.csv adds to its accuracy rows.
_COMPARISON_CSV = ("delta_mean", "delta_std", "ci_low", "ci_high", "p_value", "wins", "losses", "mde", "significant",
                   "verdict", "cannot_tell", "is_ceiling", "ceiling", "headroom", "headroom_ci_low", "headroom_ci_high",
                   "headroom_note")


def bench_csv(res: dict) -> str:
    """A bench's ``results.csv``: per (cell, method) the accuracy over seeds and, where it was compared with
    the baseline, the paired difference, its verdict and the headroom recovered."""
    comp = {(r["cell"], r["method"]): r for r in res.get("comparisons", [])}
    rows = [{**r, **{k: comp.get((r["cell"], r["method"]), {}).get(k) for k in _COMPARISON_CSV}}
            for r in res["summary"]]
    return csv_text(rows, drop=("values",))


def headroom_text(r: dict) -> str:
    """A row's headroom recovered as ``42 % [10 %, 80 %]`` of the paired ceiling's gain, its reason in words
    when there is no number, "—" where no ceiling ran."""
    if r is None or "ceiling" not in r:
        return "—"
    if r.get("headroom") is None:
        return r.get("headroom_note") or "—"
    ci = (f" [{100 * r['headroom_ci_low']:.0f} %, {100 * r['headroom_ci_high']:.0f} %]"
          if r.get("headroom_ci_low") is not None else "")
    return f"{100 * r['headroom']:.0f} %{ci}"


def interrupted_banner(res: dict) -> List[str]:
    """The first lines of the tables of an interrupted grid: they are partial."""
    if not res.get("interrupted"):
        return []
    return [f"**Interrupted: {len(res.get('runs', []))} of {res.get('n_planned', '?')} runs finished — these tables "
            "are partial. Run the same command again to complete them.**", ""]


def _pct(v, signed=False):
    return "—" if v is None else (f"{100 * v:+.2f}" if signed else f"{100 * v:.2f}")


def fmt_delta(r: dict, *, mde: bool = True, bold: bool = True) -> str:
    """A summary row's Δ as ``+1.23 [-0.40, +2.86] 4/1 · MDE 2.1`` (points; **bold** when the interval
    excludes zero; ``· cannot tell`` and no interval when the seeds are too few or the spread is at float
    resolution)."""
    if r is None or r.get("delta_mean") is None:
        return "—"
    ci = f" [{_pct(r['ci_low'], True)}, {_pct(r['ci_high'], True)}]" if r.get("ci_low") is not None else ""
    txt = f"{_pct(r['delta_mean'], True)}{ci} {r['wins']}/{r['losses']}"
    if mde and r.get("mde") is not None:
        txt += f" · MDE {100 * r['mde']:.1f}"
    if r.get("cannot_tell"):
        txt += " · cannot tell"
    return f"**{txt}**" if bold and r.get("significant") else txt


def _floor(b: dict) -> str:
    if b is None:
        return "—"
    if (b.get("n_seeds") or 0) < 2 or b.get("acc_std") is None:  # one seed has no spread to show (not ± 0.00)
        return _pct(b["acc_mean"])
    return f"{_pct(b['acc_mean'])} ± {_pct(b['acc_std'])}"


def _aa(r: dict) -> str:
    if not r or r.get("noise_aa_mean") is None:
        return "—"
    ci = (f" [{_pct(r['noise_aa_ci_low'], True)}, {_pct(r['noise_aa_ci_high'], True)}]"
          if r.get("noise_aa_ci_low") is not None else "")
    mde = f" · MDE {100 * r['noise_aa_mde']:.1f}" if r.get("noise_aa_mde") is not None else ""
    return f"{_pct(r['noise_aa_mean'], True)}{ci}{mde}"


_HOW = ("Δ = method − `{base}` in points of accuracy (%), paired by seed: mean [t-based 95 % interval] "
        "wins/losses · MDE, the minimum detectable effect of that comparison at these seeds (two-sided 95 %, "
        "80 % power, from the spread of its paired differences). **Bold**: the interval excludes zero (only "
        "then does a method help or hurt); *cannot tell*: fewer than 3 seeds, or differences that do not spread "
        "beyond float resolution — no interval, no verdict. Noise floor: `{base}`'s seed-to-seed spread (±) and the A/A row, "
        "`{base}` against `{base}` trained with other random draws (initialisation and batch order) on the same "
        "data: what a method that changes nothing shows.")


def _seeds_table(rows: List[dict], keys: List[str], base: str) -> List[str]:
    comp = [r for r in rows if r["method"] != base and r.get("seeds_for_target") is not None]
    if not comp:
        return []
    target = comp[0].get("target", 0.01)
    out = ["", f"Seeds a comparison would need to detect {100 * target:g} point(s) at its measured spread "
               "(same test and power):", "",
           "| " + " | ".join(keys + ["method", "std of Δ (points)", "MDE now", "seeds for "
                                      f"{100 * target:g} point"]) + " |",
           "|" + "---|" * (len(keys) + 4)]
    for r in comp:
        vals = [str(r.get("values", {}).get(k, "")) for k in keys]
        out.append("| " + " | ".join(vals + [f"`{r['method']}`", f"{100 * r['delta_std']:.2f}",
                                               "—" if r.get("mde") is None else f"{100 * r['mde']:.2f}",
                                               str(r["seeds_for_target"])]) + " |")
    return out


def _check_grid(res, kind: str) -> None:
    """A bench or sweep result dict of the right shape (:func:`cmkd_lab.results.load_bench` / ``load_sweep``'s
    check), else one line that says what was given and where the right one comes from."""
    if not isinstance(res, dict):
        raise TypeError(f"res must be a {kind} result dict (from load_{kind}(folder) or run_{kind}); got "
                        f"{type(res).__name__}" + (f" {str(res)!r}: load it first with load_{kind}({str(res)!r})"
                                                  if isinstance(res, str) else ""))
    from .readers import load_bench, load_sweep
    (load_bench if kind == "bench" else load_sweep)(res)


def format_sweep_markdown(res: dict, *, top: int = 6) -> str:
    """The regime map as Markdown: per cell the baseline's accuracy, the A/A row and each method's paired
    difference (points of %) with its interval, wins/losses and MDE; the seeds each comparison would need
    for one point; then the best early predictors."""
    _check_grid(res, "sweep")
    base, cells = res["baseline"], res["cells"]
    methods = [m for m in res["methods"] if m != base and not is_aa(m)]
    ceilings = list(dict.fromkeys(r["method"] for r in cells if is_ceiling(r["method"]) and r["method"] not in methods))
    has_aa = any(r["method"] == aa_name(base) for r in cells)
    keys = list(res.get("grid_kinds") or res["grid"])
    lines = interrupted_banner(res) + [
        f"Task `{res['task']}`{' (fast subset)' if res.get('fast') else ''}, seeds {res['seeds']}, metric "
        f"`{res['metric']}`. " + _HOW.format(base=base), ""]
    head = keys + [f"`{base}` acc"] + (["A/A Δ (noise floor)"] if has_aa else []) + \
        [f"Δ `{m}` (paired ceiling)" for m in ceilings] + [f"Δ `{m}`" for m in methods]
    methods = ceilings + methods
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    by = {(r["cell"], r["method"]): r for r in cells}
    for cid in res.get("cells_order") or list(dict.fromkeys(r["cell"] for r in cells)):
        b = by.get((cid, base))
        vals = next((r["values"] for r in cells if r["cell"] == cid), {})
        row = [str(vals.get(k, "")) for k in keys] + [_floor(b)]
        if has_aa:
            row.append(_aa(b))
        row += [fmt_delta(by.get((cid, m))) for m in methods]
        lines.append("| " + " | ".join(row) + " |")
    lines += _headroom_table(cells, keys, base)
    lines += _seeds_table([r for r in cells if not is_aa(r["method"])], keys, base)
    preds = [p for p in res.get("predictors", []) if p["rho"] is not None]
    de, read = res.get("diag_epoch"), _epochs_read(res)
    at = (f"epoch {de}" if not read or read == [de] else
          f"read at epoch {', '.join(map(str, read))}: the runs are shorter than --diag-epoch {de}")
    if not preds and res.get("diag_epoch") is not None:
        lines += ["", f"No early-diagnostic predictor ({at}): " + (
            "no run recorded its early epochs" if not read else
            "each needs at least 4 points (setting × seed) per method whose diagnostic and Δ both vary (more "
            "settings or seeds)") + "."]
    if preds:
        lines += ["", f"Early diagnostics ({at}) against the final Δ: Spearman ρ, its "
                  f"p-value, the p-value after a Bonferroni correction over the diagnostics tried for that method, "
                  f"and the number of points (setting × seed); the {top} strongest per method. `all` pools the methods.",
                  "", "| method | diagnostic | ρ | p | p (Bonferroni) | n |", "|---|---|---|---|---|---|"]
        for m in dict.fromkeys(p["method"] for p in preds):
            for p in [p for p in preds if p["method"] == m][:top]:
                pb = p.get("p_bonferroni")
                lines.append(f"| {m} | `{p['diagnostic']}` | {p['rho']:+.2f} | {p['p_value']:.2g} | "
                             f"{'—' if pb is None else f'{pb:.2g}'} | {p['n']} |")
    lines += _notes(res)
    cached = f" ({res['n_cached']} read from the store)" if res.get("n_cached") else ""
    lines.append(f"\n{len(res.get('runs', []))} runs{cached}, {res.get('sweep_wall_s', 0):.0f} s "
                 f"({executor_words(res.get('executor'))}).")
    return "\n".join(lines) + "\n"


def _epochs_read(res: dict) -> list:
    """The epochs at which the sweep's runs' early diagnostics were read (the last recorded one at or before
    ``diag_epoch``): [diag_epoch] normally; fewer epochs when the runs are shorter; [] when none recorded any."""
    de = res.get("diag_epoch")
    if de is None:
        return []
    got = set()
    for r in res.get("runs", []):
        eps = [int(e) for e in (r.get("early") or {}) if str(e).lstrip("-").isdigit() and int(e) <= de]
        if eps:
            got.add(max(eps))
    return sorted(got)


_HEADROOM = ("Headroom recovered = (method − `{base}`) / (ceiling − `{base}`), paired by seed, with Fieller's 95 % "
             "interval (which accounts for the spread of both differences and their covariance): the share of what "
             "the paired ceiling — the teacher's knowledge delivered through pairs on the unlabelled student "
             "samples — gains over `{base}` that the method gets without pairs. Undefined, and said so, when the "
             "ceiling is not shown to be above `{base}`.")


def _headroom_table(rows: List[dict], keys: List[str], base: str) -> List[str]:
    """The headroom recovered of every method in the cells where the paired ceiling ran."""
    rows = [r for r in rows if "ceiling" in r]
    if not rows:
        return []
    out = ["", _HEADROOM.format(base=base), "", "| " + " | ".join(keys + ["method", "ceiling",
                                                                       "headroom recovered [95 % CI]"]) + " |",
           "|" + "---|" * (len(keys) + 3)]
    for r in rows:
        vals = [str(r.get("values", {}).get(k, "")) for k in keys]
        out.append("| " + " | ".join(vals + [f"`{r['method']}`", f"`{r['ceiling']}`", headroom_text(r)]) + " |")
    return out


def executor_words(executor) -> str:
    """How the runs were run, in a reader's words (``"process pool (2 workers)"`` -> ``"2 worker processes"``)."""
    import re
    text = str(executor or "")
    m = re.search(r"(\d+) workers?", text)
    if text.startswith("process pool") and m:
        return f"{m.group(1)} worker processes"
    if text.startswith("serial") or not text:
        return "one run at a time"
    return text


def _notes(res: dict) -> List[str]:
    out = []
    skipped: dict = {}  # one line per (method, reason)
    for s in res.get("skipped", []):
        skipped.setdefault((s["method"], s["reason"]), []).append(s["cell"])
    for (m, why), cells in skipped.items():
        out.append(f"\nNot run: {m} (setting{'s' if len(cells) > 1 else ''} {', '.join(cells)}): {why}.")
    shared: dict = {}  # one line per (method, source setting, reason)
    for a in res.get("aliases", []):
        shared.setdefault((a["method"], a["same_as"], a["reason"]), []).append(a["cell"])
    for (m, src, why), cells in shared.items():
        out.append(f"\n{m}: one run serves the settings {src} and {', '.join(cells)} ({why}).")
    for f in res.get("failed", []):
        out.append(f"\nFailed: {f['method']} (setting {f['cell']}), seed {f['seed']}: {f['error']} "
                   "(run the same command again to retry).")
    return out


def format_bench_markdown(res: dict) -> str:
    """A bench as Markdown: accuracy per (pairing, method) over seeds, then the paired differences with
    `ce` with their intervals, MDEs and the noise floor."""
    _check_grid(res, "bench")
    seeds = res["seeds"]
    one = len(seeds) == 1
    spread = "" if one else ", mean ± std over seeds"
    epochs = (res.get("config") or {}).get("epochs")
    quick = (f" (fast subset: a quick pass on part of the data{f', {epochs} epochs' if epochs else ''}; its accuracies "
             "sit below a full run's and are not comparable with the published tables)") if res.get("fast") else ""
    lines = interrupted_banner(res) + [
             f"Task `{res['task']}`, seeds {seeds}{quick}. Test accuracy (%) "
             f"at the best-validation epoch and at the last epoch{spread}."
             + (" One seed: no spread, no interval — differences between methods cannot be read from it "
                "(run `--seeds 5`)." if one else ""), ""]
    keys = list(res.get("axes") or ["pairing"])
    head = keys + ["method", "test acc (best val)", "test acc (last)", "teacher", "s / run"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def pm(m, s):
        return "—" if m is None else (f"{100 * m:.2f}" if one else f"{100 * m:.2f} ± {100 * s:.2f}")
    for r in res["summary"]:
        if r.get("aliased"):
            continue
        teacher = "—" if r.get("teacher_test_acc_mean") is None else f"{100 * r['teacher_test_acc_mean']:.2f}"
        vals = [str(r.get("values", {}).get(k, r.get(k, ""))) for k in keys]
        lines.append("| " + " | ".join(vals + [r["method"], pm(r["test_acc_best_val_mean"], r["test_acc_best_val_std"]),
                                               pm(r["test_acc_last_mean"], r["test_acc_last_std"]), teacher,
                                               f"{r['wall_s_mean']:.1f}"]) + " |")
    comp = [r for r in res.get("comparisons", []) if r["method"] != res.get("baseline", "ce")
            and r.get("delta_mean") is not None and not (is_aa(r["method"]) and r.get("aliased"))]
    if comp and not one:
        base = res.get("baseline", "ce")
        room = any("ceiling" in r for r in comp)
        lines += ["", "Paired differences against `" + base + "` (same seed, same student data, same teacher). "
                  + _HOW.format(base=base) + (" " + _HEADROOM.format(base=base) if room else ""), ""]
        head = keys + ["method", "Δ vs " + base + " [95 % CI] w/l · MDE", "verdict"] + (["headroom recovered"] if room
                                                                                       else [])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in comp:
            vals = [str(r.get("values", {}).get(k, "")) for k in keys]
            aa, ceil = is_aa(r["method"]), is_ceiling(r["method"])
            name = (f"*{r['method']}* (noise floor)" if aa else f"*{r['method']}* (paired ceiling)" if ceil
                    else f"`{r['method']}`")
            lines.append("| " + " | ".join(vals + [name, fmt_delta(r, bold=not aa),
                                                   "what a null method shows" if aa else r["verdict"]]
                                           + ([("reference" if ceil else headroom_text(r))] if room else [])) + " |")
        floors = {r["cell"]: r for r in res.get("comparisons", []) if r["method"] == base and not r.get("aliased")}
        for cell, r in floors.items():
            if r.get("noise_baseline_std") is not None:
                lines.append(f"\nNoise floor ({cell}): `{base}` spreads ±{100 * r['noise_baseline_std']:.2f} points "
                             "over seeds" + (f"; the A/A row reads {_aa(r)}" if r.get("noise_aa_mean") is not None
                                             else "") + ".")
        lines += _seeds_table([r for r in comp if not is_aa(r["method"])], keys, base)
    if res.get("control_table"):
        lines += ["", format_control_markdown(res, rows=res["control_table"])]
    lines += _notes(res)
    return "\n".join(lines) + "\n"


def _pd(pd, *, bold: bool = True) -> str:
    if not pd:
        return "—"
    r = {"delta_mean": pd["mean"], "ci_low": pd["ci_low"], "ci_high": pd["ci_high"], "wins": pd["wins"],
         "losses": pd["losses"], "mde": pd["mde"], "significant": pd["significant"]}
    return fmt_delta(r, mde=False, bold=bold)


def format_control_markdown(res: dict, *, rows=None, headroom=None) -> str:
    """The teacher-control table of a bench or sweep whose cells vary ``teacher_control``: per method, Δ vs
    the baseline with the real teacher and under each control, and the real teacher against each control.

    ``headroom``: the comparison rows of the real teacher's cell (one per method); where the paired ceiling ran
    among them, the table ends with a column, the headroom recovered by each method with the real teacher
    (:func:`headroom_text`; "reference" on the ceiling's own rows)."""
    base = res.get("baseline", "ce")
    rows = rows if rows is not None else control_table(res["runs"], baseline=base)
    if not rows:
        return ""
    present = [c for c in CONTROLS if any(c in r["delta"] for r in rows)]
    others = [c for c in present if c != "none"]
    keys = [k for k in rows[0]["values"] if k != "pairing" or len({r["values"].get("pairing") for r in rows}) > 1]
    room = None
    if headroom and any(h.get("is_ceiling") for h in headroom):
        room = {h["method"]: ("reference" if h.get("is_ceiling") else headroom_text(h)) for h in headroom}
    head = keys + ["method"] + [f"Δ vs `{base}`, {'real teacher' if c == 'none' else c}" for c in present] + \
        [f"real − {c}" for c in others] + ["verdict"] + (["headroom recovered, real teacher [95 % CI]"] if room else [])
    lines = ["Whose knowledge is it? Δ = method − `" + base + "` (points, paired by seed, [95 % interval] "
             "wins/losses; **bold**: beyond the noise) with the real teacher and under each teacher control; "
             "real − control = the same method with the real teacher against the control teacher, seed by seed "
             "(above zero: the teacher's knowledge, not any trained network or the regularisation, makes the "
             "difference). `random`: an untrained teacher; `shuffled-labels`: a teacher trained on shuffled "
             "labels; `permuted-classes`: the real teacher under the wrong class names.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [str(r["values"].get(k, "")) for k in keys]
        lines.append("| " + " | ".join(vals + [f"`{r['method']}`"] + [_pd(r["delta"].get(c)) for c in present]
                                       + [_pd(r["contrast"].get(c)) for c in others]
                                       + [r["verdict"] + ("; uses the class names" if r.get("names_matter") else "")]
                                       + ([room.get(r["method"], "—")] if room else []))
                     + " |")
    return "\n".join(lines) + "\n"
