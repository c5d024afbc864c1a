"""The gap explorer's files: ``gap.json`` and a self-contained ``gap.html``.

* :func:`load_embeddings` reads one set from ``.npz`` (``features`` and
  optionally ``labels`` and ``class_names``) or ``.npy`` (features only).
* :func:`render_gap_report` / :func:`write_gap_report` turn an
  :func:`~cmkd_lab.explore_gap` result — or an
  :func:`~cmkd_lab.explore_run_gap` before/after pair — into HTML with
  plotly.js inlined once (viewable offline; the page is built with :mod:`cmkd_lab.htmlkit`, like
  :mod:`cmkd_lab.report`).
* :func:`gap_report_from_run` does it for a finished run's directory.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ._names import split_names
from .htmlkit import Figures, details, esc, fmt, md_inline, page, pre_json, table

__all__ = ["load_embeddings", "load_pairs", "render_gap_report", "write_gap_report", "gap_report_from_run", "gap_json",
           "export_gap_pngs", "gap_command"]

_EXPLAIN = {
    "Overlay (UMAP)": "A 2-D UMAP fitted on both sets together. UMAP keeps local neighbourhoods: two sets that "
                      "sit apart here may still overlap in shape; distances on the page mean little.",
    "Overlay (PCA)": "The first two principal components of both sets together: a linear view, so shifts and "
                     "spreads show as they are, and the arrow joining the two means is the gap vector's projection.",
    "Distances before and after removing the gap vector": "MMD² and W1 as the sets stand and after centring each "
        "set on its own mean. W2² splits exactly into ‖mean B − mean A‖² plus W2² of the centred sets: the red "
        "part is what a shift explains.",
    "Transport plan sorted by class": "The entropic plan between the two sets (rows: the first set), sorted by "
        "class and pooled within classes (1 = the independent coupling), and the class-to-class mass of the exact "
        "plan: its diagonal is the purity.",
    "Per-class distances": "One MMD permutation test per class (Holm-corrected across classes) and the distance "
                           "between the two sets' class centroids.",
    "Cross-modal transfer": "A standardised logistic regression trained on one set (rows) and tested on each "
        "(columns), cross-fitted so that the diagonal (own accuracy) and the off-diagonal use the same models. "
        "Right: after centring each set, i.e. with the gap vector removed.",
    "Paired retrieval": "Each sample's partner searched among the other set's samples by Euclidean nearest "
        "neighbour, as the spaces stand, after centring, and after an orthogonal map fitted on the other half of "
        "the pairs.",
}
_SECTIONS = (("distance", "Distribution distance"), ("gap_vector", "The gap vector: a shift or a change of shape?"),
             ("classes", "Classes"), ("transfer", "Cross-modal transfer"), ("paired", "Pairs"))


def load_embeddings(path, *, name: str = "the file") -> Tuple[np.ndarray, Optional[np.ndarray], Optional[list]]:
    """One embedding set from ``.npz`` (``features`` [+ ``labels``, ``class_names``]) or ``.npy``.

    Parameters
    ----------
    path : str or Path
    name : str
        How errors name the file's role (e.g. ``"A"``).

    Returns
    -------
    features : ndarray (N, D);  labels : ndarray (N,) or None;  class_names : list or None
    """
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{name} must be a .npz or .npy file; {str(p)!r} is a directory")
    if not p.is_file():
        raise FileNotFoundError(f"{name} file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise ValueError(f"{name} must be a .npz (features, labels) or .npy (features) file; got {str(p)!r}")
    with open(p, "rb") as fh:  # numpy reads a file that is neither a zip nor an .npy as a pickle and says so
        magic = fh.read(6)
    want = (b"PK\x03\x04", b"PK\x05\x06") if suffix == ".npz" else (b"\x93NUMPY",)
    if not any(magic.startswith(m) for m in want):
        kind, how = (("a zip of arrays", "numpy.savez(path, features=z, labels=y)") if suffix == ".npz" else
                     ("numpy's .npy format", "numpy.save(path, z)"))
        raise ValueError(f"{name} file {str(p)!r} cannot be read as {suffix}: it is not {kind} (its first bytes "
                         f"are {magic!r}); save it with {how}")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as e:  # a pickled object array, a truncated zip
        raise ValueError(f"{name} file {str(p)!r} cannot be read as {suffix} ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); save it with numpy.savez / numpy.save") \
            from None
    if suffix == ".npy":
        z, y, cn = np.asarray(data), None, None
    else:
        with data:
            keys = list(data.keys())
            if "features" not in keys:
                raise ValueError(f"{name} file {str(p)!r} must hold an array named 'features' (and optionally "
                                 f"'labels', 'class_names'); it holds {keys}: save it with numpy.savez(path, "
                                 "features=z, labels=y)")
            z, y, cn = (_member(data, k, name, p) for k in ("features", "labels", "class_names"))
        cn = None if cn is None else [str(c) for c in cn.ravel()]
    if z.dtype.kind in "fc":  # the one range rule of every door (CrossModalTask.from_arrays, explore_gap)
        from ._validation import check_float32_range
        check_float32_range(f"{name} file {str(p)!r}: features", z)
    return z, y, cn


def _member(data, key: str, name: str, p: Path):
    """One array of an open .npz (None when absent); an unreadable one (a pickled object array) names the file."""
    if key not in data.files:
        return None
    try:
        return np.asarray(data[key])
    except Exception as e:
        raise ValueError(f"{name} file {str(p)!r}: its array {key!r} cannot be read ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); save plain numeric arrays with "
                         "numpy.savez") from None


def gap_json(result: dict) -> str:
    """The JSON text of a result (``explore_gap`` or ``explore_run_gap``)."""
    return json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False)


def _figures_html(figs, embed: Figures) -> str:
    parts = []
    for title, fig in figs:
        parts.append(f"<h3>{esc(title)}</h3>")
        if title in _EXPLAIN:
            parts.append(f"<p class='note'>{md_inline(_EXPLAIN[title])}</p>")
        parts.append(embed(fig))
    return "".join(parts)


def headline(r: dict) -> str:
    """The result's headline, with the number of candidates a paired recall@1 was measured among (recall
    depends on it: among more candidates it is lower)."""
    text = r["headline"]
    n = ((r.get("paired") or {}).get("retrieval") or {}).get("n_candidates")
    if n and "recall@1" in text:
        text = text.rstrip(".") + f" (recall among {n} candidates)."
    return text


def _one(r: dict, projection, embed: Figures, level: str = "h2") -> str:
    from .diagnostics.run_gap import before_after_table
    from .viz.gap import gap_figures

    out = [f"<p class='headline'>{md_inline(headline(r))}</p>",
           f"<p class='note'>{md_inline(r['subsample']['reading'])}</p>"]
    for key, title in _SECTIONS:
        sec = r.get(key)
        if not sec:
            continue
        if key == "transfer":
            items = list(sec["transfer"].values())
        else:
            items = [m for m in sec.values() if isinstance(m, dict) and "reading" in m]
        out.append(f"<{level}>{esc(title)}</{level}><ul>"
                   + "".join(f"<li>{md_inline(m['reading'])}</li>" for m in items) + "</ul>")
    rows = [(row["quantity"], row["before"]) for row in before_after_table(r, r)]
    out.append(f"<{level}>Numbers</{level}>" + table(rows, ["quantity", "value"]))
    out.append(_figures_html(gap_figures(r, projection=projection), embed))
    if r.get("notes"):
        out.append("<p class='warn'>" + "<br>".join(md_inline(n) for n in r["notes"]) + "</p>")
    out.append(details("Settings and timings", pre_json({"settings": r["settings"], "timings_s": r["timings_s"],
                                                         "n": r["n"], "dim": r["dim"]})))
    return "".join(out)


def render_gap_report(result: dict, *, projection: Union[str, Sequence[str]] = ("umap", "pca")) -> str:
    """The HTML text of a gap report (plotly.js inlined once).

    Parameters
    ----------
    result : dict
        From :func:`~cmkd_lab.explore_gap` (one pair of sets) or
        :func:`~cmkd_lab.explore_run_gap` (``before`` / ``after``).
    projection : "umap", "pca", "none" or a sequence of them
        The overlays to draw (they need the features: a result read back
        from ``gap.json`` has none, and gets every other figure).
    """
    if not isinstance(result, dict):
        raise TypeError(f"result must be what explore_gap or explore_run_gap returns; got {type(result).__name__}")
    embed = Figures()
    if "before" in result and "after" in result:
        e0, e1 = result["epochs"]
        run = result.get("run") or {}
        a, b = result["after"]["names"]
        title = f"cmkd_lab — the gap between {a} and {b}, epoch {e0} vs {e1}"
        mods = run.get("modalities") or {}
        what = " · ".join(f"{k} {fmt(v)}" for k, v in run.items() if v is not None and k != "modalities")
        what += "".join(f" · {k}: {v}" for k, v in mods.items() if v)
        body = (f"<p>{esc(what)}</p><h2>Before and after distillation</h2>"
                + table([(r["quantity"], r["before"], r["after"]) for r in result["table"]],
                        ["quantity", f"epoch {e0}", f"epoch {e1}"])
                + f"<h1>After: epoch {e1}</h1>" + _one(result["after"], projection, embed)
                + f"<h1>Before: epoch {e0}</h1>" + _one(result["before"], projection, embed))
    else:
        a, b = result["names"]
        title = f"cmkd_lab — the gap between {a} and {b}"
        body = _one(result, projection, embed)
    return page(title, body)


def write_gap_report(result: dict, out_dir, *, projection: Union[str, Sequence[str]] = ("umap", "pca")) -> dict:
    """Write ``out_dir/gap.json`` and ``out_dir/gap.html`` (atomic writes).

    Returns
    -------
    dict with the two paths (``json``, ``html``)
    """
    from ._atomic import atomic_write_text

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a directory; {str(out)!r} is a file: choose another --out")
    text = gap_json(result)  # fails before anything is written
    page = render_gap_report(result, projection=projection)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "gap.json", text)
    atomic_write_text(out / "gap.html", page)
    return {"json": out / "gap.json", "html": out / "gap.html"}


def export_gap_pngs(result: dict, out_dir, *, prefix: str = "gap",
                    projection: Union[str, Sequence[str]] = ("umap", "pca")):
    """Each figure of a gap report as ``out_dir/PREFIX_NN_title.png`` (kaleido and a Chrome or Chromium).

    For an :func:`~cmkd_lab.explore_run_gap` result the figures of ``after``
    and ``before`` get the prefixes ``PREFIX_after`` and ``PREFIX_before``.

    Returns
    -------
    paths : list of Path;  message : str or None (why nothing was written)
    """
    from .report import write_pngs
    from .viz.gap import gap_figures

    if "before" in result and "after" in result:
        paths, why = [], None
        for key in ("after", "before"):
            p, w = write_pngs(gap_figures(result[key], projection=projection), out_dir, prefix=f"{prefix}_{key}")
            paths, why = paths + p, why or w
        return paths, why
    return write_pngs(gap_figures(result, projection=projection), out_dir, prefix=prefix)


def gap_report_from_run(run_dir, out_dir=None, *, projection: Union[str, Sequence[str]] = ("umap", "pca"),
                        **options) -> dict:
    """:func:`~cmkd_lab.explore_run_gap` on ``run_dir/result.json``, written to
    ``out_dir`` (default ``run_dir``); returns the result (``paths`` added)."""
    from .diagnostics.run_gap import explore_run_gap

    rp = Path(run_dir)
    if rp.is_file() and rp.suffix == ".json":  # the run's result.json itself
        run_dir = rp.parent
    else:
        rp = rp / "result.json"
    if not rp.is_file() and any((Path(run_dir) / n).is_file() for n in ("results.json", "sweep.json")):
        raise ValueError(f"--run must be one run's folder; {str(run_dir)!r} holds a bench or a sweep: pass one of "
                         f"its runs, e.g. {str(Path(run_dir) / 'runs' / '<cell>' / '<method>' / 'seed0')!r}")
    if not rp.is_file():
        raise ValueError(f"--run must be a run directory holding a result.json; {str(rp)!r} does not exist")
    try:
        result = json.loads(rp.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(rp)!r} is not valid JSON ({e}); was the run interrupted while writing?") from None
    res = explore_run_gap(result, **options)
    paths = write_gap_report(res, Path(run_dir) if out_dir is None else out_dir, projection=projection)
    res["paths"] = {k: str(v) for k, v in paths.items()}
    return res


def load_pairs(spec: str):
    """``--pairs``: ``rows`` (row i of A is row i of B) or a ``.npy`` / ``.csv`` file of (P, 2) row indices."""
    if str(spec).strip().lower() == "rows":
        return True
    p = Path(spec)
    if not p.is_file():
        raise ValueError(f"--pairs must be 'rows' or a .npy / .csv file of (row in A, row in B) pairs; "
                         f"{spec!r} {'is a directory' if p.is_dir() else 'does not exist'}")
    try:
        arr = np.load(p, allow_pickle=False) if p.suffix.lower() == ".npy" else \
            np.loadtxt(p, delimiter=",", ndmin=2)
    except Exception as e:
        raise ValueError(f"--pairs file {spec!r} cannot be read ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); write two integer columns, row in A and row "
                         "in B, one pair per line and no header (or a (P, 2) integer array with numpy.save)") from None
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)  # a CSV reads as floats
    return arr


# The CLI's cap on --permutations (explore_gap itself takes any number; its memory grows with it).
MAX_PERMUTATIONS = 10_000


def cli_words(msg: str, sets: Sequence[str]) -> str:
    """An :func:`~cmkd_lab.explore_gap` message in the ``gap`` command's words: ``z_a`` / ``y_a`` become
    the file A and its labels, ``pairs=True`` becomes ``--pairs rows``, ``pairs[:, 0]`` the column of A."""
    import re
    a, b = (f"{k} file {str(f)!r}" for k, f in zip("AB", sets))
    for old, new in ((r"pass an array of \(row in z_a, row in z_b\) pairs", "pass --pairs with a .npy / .csv file of "
                      "(row in A, row in B) pairs"), (r"\(row in z_a, row in z_b\)", "(row in A, row in B)"),
                     (r"\bpass z_[ab]\.reshape\(-1, 1\)", "save the features reshaped to (N, 1)"),
                     (r"(?<!-)\bpairs must be True or an integer array", "--pairs must be 'rows' or a file of an "
                                                                  "integer array"),
                     (r"(?<!-)\bpairs=True\b", "--pairs rows"), (r"(?<!-)\bpairs\[:, 0\]", "--pairs column 1 (rows of A)"),
                     (r"(?<!-)\bpairs\[:, 1\]", "--pairs column 2 (rows of B)"), (r"(?<!-)\bpairs must\b", "--pairs must"),
                     (r"\bz_a\b", f"{a} (its features)"), (r"\bz_b\b", f"{b} (its features)"),
                     (r"\by_a\b", f"{a} (its labels)"), (r"\by_b\b", f"{b} (its labels)")):
        msg = re.sub(old, lambda _m, n=new: n, msg)
    return msg


def gap_command(sets: Sequence[str], *, out, run=None, pairs: Optional[str] = None, names: Optional[str] = None,
                max_points: int = 2000, seed: int = 0, permutations: int = 200, normalize: bool = False,
                projection: str = "umap,pca", device: str = "auto", png: bool = False, log=print) -> dict:
    """``python -m cmkd_lab gap``: two embedding files, or ``--run RUN_DIR``; writes gap.json + gap.html."""
    from .diagnostics.explore import explore_gap

    if isinstance(permutations, int) and not isinstance(permutations, bool) and permutations > MAX_PERMUTATIONS:
        raise ValueError(f"--permutations must be at most {MAX_PERMUTATIONS} (p-values reach 1/(1 + permutations), "
                         f"1e-4 at {MAX_PERMUTATIONS}; the test keeps a (rows of A + rows of B) × permutations matrix "
                         f"in memory); got --permutations {permutations}")
    proj = split_names(projection) or ["none"]
    opts = dict(max_points=max_points, seed=seed, n_permutations=permutations, normalize=normalize, device=device)
    if run is not None:
        if sets:
            raise ValueError(f"give two embedding files or --run RUN_DIR, not both; got --run {run} and {list(sets)}")
        if pairs is not None or names is not None:
            raise ValueError("--pairs and --names do not apply to --run (the run names its sets and has no pairs)")
        res = gap_report_from_run(run, out, projection=proj, **opts)
        e0, e1 = res["epochs"]
        for r in res["table"]:
            log(f"{r['quantity']:32s} epoch {e0}: {fmt(r['before']):>8s}   epoch {e1}: {fmt(r['after']):>8s}")
        log(f"→ {res['paths']['html']}, {res['paths']['json']}")
        _pngs(res, out, proj, png, log)
        return res
    if len(sets) != 2:
        raise ValueError(f"gap needs two embedding files A B (.npz with 'features' [+ 'labels'] or .npy), or --run "
                         f"RUN_DIR; got {len(sets)} file(s)")
    nm = split_names(names) if names is not None else [Path(s).stem for s in sets]
    if len(nm) != 2:
        raise ValueError(f"--names must be two names separated by a comma, e.g. --names image,text; got {names!r}")
    if nm[0] == nm[1]:
        nm = [f"{nm[0]} (A)", f"{nm[1]} (B)"]
    za, ya, ca = load_embeddings(sets[0], name="A")
    zb, yb, cb = load_embeddings(sets[1], name="B")
    if (ya is None) != (yb is None):
        raise ValueError(f"labels must be in both files or in neither: {sets[0] if ya is None else sets[1]!r} has "
                         "no 'labels' array")
    cn = ca or cb
    if ca and cb and ca != cb:
        raise ValueError(f"the two files name their classes differently ({ca} vs {cb}); store one list")
    if cn is not None and ya is not None and (ya.dtype.kind in "USO"):
        cn = None  # string labels name themselves
    pr = None if pairs is None else load_pairs(pairs)
    try:
        res = explore_gap(za, zb, y_a=ya, y_b=yb, pairs=pr, names=nm, class_names=cn, **opts)
    except (ValueError, TypeError) as e:  # the command line's words for explore_gap's parameters
        raise type(e)(cli_words(str(e), sets)) from None
    paths = write_gap_report(res, out, projection=proj)
    log(headline(res))
    log(f"→ {paths['html']}, {paths['json']} ({res['timings_s']['total']:.1f} s)")
    _pngs(res, out, proj, png, log)
    return res


def _pngs(res, out, proj, png: bool, log) -> None:
    if png:
        pngs, why = export_gap_pngs(res, Path(out) / "figures", projection=proj)
        log(why if why else f"{len(pngs)} PNG figures → {Path(out) / 'figures'}")
