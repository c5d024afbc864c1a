"""2-D overlays of teacher and student features (UMAP, or PCA for speed).

Colour = class, marker = modality (circle: teacher, cross: student). With
several student snapshots (epochs) the figure has a slider (and a play
button) across them, on **one** embedding so that frames are comparable:
``fit_on="teacher"`` fits on the teacher's features (frozen, identical at
every epoch) and projects each student snapshot into it; ``fit_on="both"``
fits once on the teacher's features and all snapshots pooled.

UMAP (umap-learn) compiles numba kernels the first time it runs. Two things keep that cost to
once per machine (:func:`umap_cache_dir`, :func:`warm_umap`):

* the kernels UMAP runs here are compiled with numba's on-disk cache switched on (umap-learn does not
  ask for it): a fresh kernel or process loads them in a fraction of a second;
* a joint fit (``fit_on="both"``) is given its exact nearest neighbours (scikit-learn, a BLAS product),
  so that neither pynndescent's NN-descent — whose compiled code numba cannot cache — nor umap-learn's
  small-data path — which calls a Python distance function once per pair of points — runs.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .._validation import check_choice, check_int
from .curves import PALETTE, _go

__all__ = ["project_features", "feature_overlay", "run_feature_overlay", "PROJECTIONS", "umap_cache_dir",
           "warm_umap", "umap_is_warm"]

PROJECTIONS = ("umap", "pca")
_CACHED = {"done": False, "n": 0}
_WARM = {"process": None}


def umap_cache_dir():
    """Where the compiled UMAP kernels are kept: ``$NUMBA_CACHE_DIR`` when set (numba's own rule),
    otherwise ``numba/`` in the teacher cache (``$CMKD_LAB_CACHE`` or ``~/.cache/cmkd_lab``)."""
    import os
    from pathlib import Path

    from ..store import cache_dir
    return Path(os.environ["NUMBA_CACHE_DIR"]) if os.environ.get("NUMBA_CACHE_DIR") else cache_dir() / "numba"


def _enable_numba_cache(umap) -> int:
    """Switch numba's on-disk cache on for umap-learn's compiled functions (once per process).

    umap-learn declares its kernels without ``cache=True``, so every process compiles them again
    (tens of seconds). A dispatcher that has not compiled yet can still be given a cache; its location
    is fixed when the cache is made, so ``numba.config.CACHE_DIR`` is pointed at :func:`umap_cache_dir`
    only while that happens and put back after (nothing else in the process changes). Functions numba
    cannot cache (they use dynamic globals) keep compiling in memory, as before.

    Returns the number of functions given a cache.
    """
    if _CACHED["done"]:
        return _CACHED["n"]
    _CACHED["done"] = True
    try:
        import importlib
        import pkgutil

        from numba.core import config
        from numba.core.caching import NullCache
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba comes with umap-learn
        return 0
    where = umap_cache_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError:
        return 0  # no writable place: numba compiles in memory as it always did
    old, n = config.CACHE_DIR, 0
    config.CACHE_DIR = str(where)
    try:
        for info in pkgutil.iter_modules(umap.__path__, umap.__name__ + "."):
            if info.name.rsplit(".", 1)[-1] not in ("umap_", "layouts", "spectral", "utils", "distances", "sparse"):
                continue  # the modules a fit and a transform run (not the plotting or parametric ones)
            try:
                mod = importlib.import_module(info.name)
            except Exception:  # an optional module that does not import here
                continue
            for obj in vars(mod).values():
                if isinstance(obj, CPUDispatcher) and isinstance(obj._cache, NullCache) and not obj.overloads:
                    obj.enable_caching()
                    n += 1
    finally:
        config.CACHE_DIR = old
    _CACHED["n"] = n
    return n


def _quiet_numba_threads() -> None:
    """Give numba's parallel code the ``workqueue`` threading layer, unless a layer already runs or the
    user chose one (``NUMBA_THREADING_LAYER``).

    umap-learn runs a few ``parallel=True`` kernels even single-threaded (``n_jobs=1``, which a seed
    imposes). Under numba's default OpenMP layer the team's worker thread then keeps spinning, and every
    later step of the process — a torch training in the same notebook — runs several times slower on a
    busy machine (measured: 0.3 s → 4 s for five epochs of a small ``ce`` run after one UMAP). The
    workqueue layer's threads sleep when idle; UMAP, seeded, does not use them anyway.
    """
    import os
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return
    try:
        from numba.core import config
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - numba comes with umap-learn
        return
    if not parallel._is_initialized:
        config.THREADING_LAYER = "workqueue"


def _umap():
    try:
        import umap
    except ImportError as e:  # pragma: no cover
        raise ImportError("the UMAP projection needs umap-learn: pip install umap-learn "
                          "(or pass method='pca')") from e
    _quiet_numba_threads()
    _enable_numba_cache(umap)
    return umap


def _marker():
    import importlib.metadata as md
    try:
        v = f"umap-{md.version('umap-learn')}-numba-{md.version('numba')}"
    except md.PackageNotFoundError:
        return None
    return umap_cache_dir() / f"warm-{v}.ok"


def umap_is_warm() -> bool:
    """Whether a warm-up has already compiled and cached UMAP's kernels on this machine."""
    m = _marker()
    return bool(m is not None and m.is_file())


def warm_umap(*, background: bool = True):
    """Compile and cache UMAP's kernels now, so that the first projection in any later process only loads them.

    With ``background`` a low-priority child process does it (the caller goes on; :func:`project_features`
    waits for it before its own first UMAP, so the work is never done twice) and the process is returned;
    otherwise it runs here. Nothing happens when the cache is already warm or umap-learn is missing
    (returns None).
    """
    if umap_is_warm():
        return None
    try:
        import umap  # noqa: F401
    except ImportError:
        return None
    if not background:
        import numpy as _np
        rng = _np.random.default_rng(0)
        z = rng.normal(size=(300, 16)).astype(np.float32)
        project_features(z[:150], [z[150:]], method="umap", fit_on="both", seed=0)
        project_features(z[:150], [z[150:]], method="umap", fit_on="teacher", seed=0)
        m = _marker()
        if m is not None:
            try:
                m.write_text("compiled kernels cached here\n")
            except OSError:
                pass
        return None
    if _WARM["process"] is not None and _WARM["process"].poll() is None:
        return _WARM["process"]
    import os
    import subprocess
    import sys

    code = "from cmkd_lab.viz.projection import warm_umap; warm_umap(background=False)"
    kw = {"preexec_fn": lambda: os.nice(19)} if hasattr(os, "nice") else {}
    _WARM["process"] = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env=dict(os.environ), **kw)
    return _WARM["process"]


def _wait_for_warm(timeout: float = 120.0) -> None:
    p = _WARM["process"]
    if p is not None and p.poll() is None:
        try:
            p.wait(timeout)
        except Exception:  # a warm-up that hangs must not block a figure
            pass


def _exact_knn(x: np.ndarray, k: int):
    """Exact k nearest neighbours of every row of ``x`` among the rows (itself first), as UMAP's
    ``precomputed_knn``: indices (F, k) int32 and Euclidean distances (F, k) float32."""
    from sklearn.neighbors import NearestNeighbors
    d, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    return idx.astype(np.int32), d.astype(np.float32)


def _as2d(name, z) -> np.ndarray:
    a = np.asarray(z, dtype=np.float32)
    if a.ndim != 2 or a.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, D) with N >= 1; got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def project_features(teacher, students: Sequence, *, method: str = "umap", fit_on: str = "both", seed: int = 0,
                     n_neighbors: int = 15, min_dist: float = 0.1) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Project teacher features and student snapshots into one 2-D embedding.

    Parameters
    ----------
    teacher : array (M, D)
    students : sequence of arrays (N_e, D)
    method : {"umap", "pca"}
    fit_on : {"both", "teacher"}
        Fit on the teacher and all snapshots pooled, or on the teacher only
        (student points are then placed by ``transform``).
    seed : int
        Makes the embedding reproducible (UMAP then runs single-threaded).
    n_neighbors, min_dist : UMAP parameters (capped to the sample size).

    Returns
    -------
    teacher_2d : ndarray (M, 2)
    students_2d : list of ndarray (N_e, 2)
    """
    check_choice("method", method, PROJECTIONS)
    check_choice("fit_on", fit_on, ("both", "teacher"))
    check_int("seed", seed, minimum=0)
    check_int("n_neighbors", n_neighbors, minimum=2)
    zt = _as2d("teacher", teacher)
    zs = [_as2d(f"students[{i}]", s) for i, s in enumerate(students)]
    for i, s in enumerate(zs):
        if s.shape[1] != zt.shape[1]:
            raise ValueError(f"students[{i}] must have the teacher's dimension D={zt.shape[1]}; got {s.shape}")
    # One power of two for every set (exact in floating point): PCA and UMAP fit features of order 1 whatever
    # their magnitude (features ~1e19 squared overflow float32); PCA's coordinates are scaled back.
    big = max(float(np.abs(z).max()) if z.size else 0.0 for z in [zt, *zs])
    unit = 2.0 ** round(math.log2(big)) if big > 0 else 1.0
    zt, zs = zt / np.float32(unit), [s / np.float32(unit) for s in zs]
    back = unit if method == "pca" else 1.0
    fit = zt if fit_on == "teacher" else np.concatenate([zt, *zs], 0)  # (F, D)
    if fit.shape[0] < 3:
        raise ValueError(f"the projection needs at least 3 points to fit on; got {fit.shape[0]}")
    if method == "pca":
        from sklearn.decomposition import PCA
        model = PCA(n_components=2, svd_solver="full", random_state=seed).fit(fit)
        emb_fit = model.transform(fit)
    else:
        umap = _umap()
        _wait_for_warm()
        k = min(n_neighbors, fit.shape[0] - 1)
        # A joint fit needs no transform afterwards: give UMAP its exact neighbours (see the module docstring).
        knn = _exact_knn(fit, k) if fit_on == "both" else (None, None, None)
        # 200 optimisation epochs: umap-learn's own choice above 10,000 points (it takes 500 below, which
        # costs more than it shows in a 2-D picture of a few thousand points).
        model = umap.UMAP(n_components=2, n_neighbors=k, min_dist=min_dist, random_state=seed,
                          init="spectral" if fit.shape[0] > 50 else "random", n_jobs=1, precomputed_knn=knn,
                          n_epochs=200)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs/random_state and small-graph notices
            emb_fit = model.fit_transform(fit)
    if fit_on == "both":
        cuts = np.cumsum([zt.shape[0]] + [s.shape[0] for s in zs])[:-1]
        parts = np.split(emb_fit * back, cuts)
        return parts[0], parts[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = [model.transform(s) * back for s in zs]
    return emb_fit * back, out


def _subsample(y, n, seed):
    from ..diagnostics import stratified_indices
    return stratified_indices(np.asarray(y), n, seed)


def _overlay_inputs(teacher, y_teacher, students, y_student):
    """``(items, zt, yt, ys)`` of :func:`feature_overlay`: the snapshots as (label, array) pairs and the
    teacher's features and both label arrays, checked against each other."""
    if isinstance(students, np.ndarray) or (isinstance(students, list) and students and
                                            not isinstance(students[0], (tuple, list))):
        items = [("student", students)]
    elif isinstance(students, Mapping):
        items = list(students.items())
    else:
        items = [(str(k), v) for k, v in students]
    if not items:
        raise ValueError("students must hold at least one feature snapshot")
    zt, yt = _as2d("teacher", teacher), np.asarray(y_teacher)
    ys = np.asarray(y_student)
    if yt.shape[0] != zt.shape[0]:
        raise ValueError(f"y_teacher must have one label per teacher row ({zt.shape[0]}); got {yt.shape[0]}")
    for lab, z in items:
        if np.asarray(z).shape[0] != ys.shape[0]:
            raise ValueError(f"snapshot {lab!r} has {np.asarray(z).shape[0]} rows but y_student has {ys.shape[0]}")
    return items, zt, yt, ys


def feature_overlay(teacher, y_teacher, students: Union[Mapping, Sequence, np.ndarray], y_student, *,
                    class_names: Optional[Sequence[str]] = None,
                    modality_names: Tuple[str, str] = ("teacher", "student"),
                    method: str = "umap", fit_on: str = "both", seed: int = 0, max_points: int = 1000,
                    max_total: Optional[int] = 6000, title: Optional[str] = None):
    """Overlay of teacher and student features in 2-D, one frame per snapshot.

    Parameters
    ----------
    teacher : array (M, D);  y_teacher : (M,)
    students : array (N, D), or a mapping label -> array (N, D) (e.g.
        ``{"epoch 0": z0, "epoch 10": z10}``), or a sequence of (label, array).
        All snapshots share ``y_student`` (N,).
    class_names : list of str, optional
    modality_names : (teacher name, student name)
    method, fit_on, seed : see :func:`project_features`
    max_points : int
        Stratified subsample per set (teacher, each snapshot) for speed.
    max_total : int or None
        At most this many points in all (teacher and every snapshot): with many snapshots each set is
        subsampled further, to ``max_total // (1 + snapshots)`` (at least 100), which keeps a UMAP of
        every epoch of a run to a few seconds. None: no such cap.

    Returns
    -------
    plotly.graph_objects.Figure (with a slider when there are several snapshots)
    """
    go = _go()
    check_int("max_points", max_points, minimum=3)
    items, zt, yt, ys = _overlay_inputs(teacher, y_teacher, students, y_student)
    per_set = max_points if max_total is None else min(max_points, max(100, int(max_total) // (1 + len(items))))
    it = _subsample(yt, per_set, seed)
    is_ = _subsample(ys, per_set, seed + 1)
    e_t, e_s = project_features(zt[it], [np.asarray(z)[is_] for _, z in items], method=method, fit_on=fit_on,
                                seed=seed)
    yt, ys = yt[it], ys[is_]
    K = int(max(yt.max(), ys.max())) + 1
    names = list(class_names or [str(k) for k in range(K)])
    tm, sm = modality_names

    def traces(es):
        # Two traces per class (teacher ●, student ✕) without legend entries of their own: the legend
        # names each class once (its colour) and each modality once (its marker), see ``keys`` below.
        out = []
        for k in range(K):
            c = PALETTE[k % len(PALETTE)]
            mt, ms = yt == k, ys == k
            out.append(go.Scatter(x=e_t[mt, 0], y=e_t[mt, 1], mode="markers", name=f"{names[k]} · {tm}",
                                  legendgroup=str(k), showlegend=False,
                                  marker=dict(color=c, symbol="circle", size=6, opacity=0.55)))
            out.append(go.Scatter(x=es[ms, 0], y=es[ms, 1], mode="markers", name=f"{names[k]} · {sm}",
                                  legendgroup=str(k), showlegend=False,
                                  marker=dict(color=c, symbol="x", size=7, opacity=0.9, line=dict(width=0))))
        return out

    # Legend entries only (no points): one per class, then one per modality; clicking a class hides both
    # of its clouds.
    keys = [go.Scatter(x=[None], y=[None], mode="markers", name=str(names[k]), legendgroup=str(k),
                       marker=dict(color=PALETTE[k % len(PALETTE)], symbol="square", size=10),
                       legendgrouptitle_text="class" if k == 0 else None) for k in range(K)]
    keys += [go.Scatter(x=[None], y=[None], mode="markers", name=f"{name} features", legendgroup=f"modality {i}",
                        marker=dict(color="#555", symbol=sym, size=9), legendgrouptitle_text="modality" if i == 0 else None)
             for i, (name, sym) in enumerate(((tm, "circle"), (sm, "x")))]

    allpts = np.concatenate([e_t, *e_s], 0)
    lo, hi = allpts.min(0), allpts.max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    fig = go.Figure(data=traces(e_s[-1]) + keys)
    label = items[-1][0]  # the last snapshot is shown first
    if len(items) > 1:
        fig.frames = [go.Frame(data=traces(es), name=str(lab)) for (lab, _), es in zip(items, e_s)]
        steps = [dict(method="animate", label=str(lab),
                      args=[[str(lab)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                             transition=dict(duration=0))]) for lab, _ in items]
        fig.update_layout(
            sliders=[dict(active=len(items) - 1, steps=steps, x=0.12, len=0.88, pad=dict(t=45),
                          currentvalue=dict(prefix="student features at ", xanchor="right"))],
            updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.13, xanchor="left", yanchor="top",
                              buttons=[dict(label="▶ play", method="animate",
                                            args=[None, dict(frame=dict(duration=800, redraw=True),
                                                             fromcurrent=False)])])])
    what = {"umap": "UMAP", "pca": "PCA"}[method]
    fit_txt = "fit on the teacher, students projected" if fit_on == "teacher" else "fit on teacher + all snapshots"
    fig.update_layout(
        title=title or f"{tm} (●) and {sm} (✕) features, {what} ({fit_txt}, seed {seed})"
                       + ("" if len(items) > 1 else f" — {label}"),
        xaxis=dict(range=[lo[0] - pad[0], hi[0] + pad[0]], title=f"{what} 1"),
        yaxis=dict(range=[lo[1] - pad[1], hi[1] + pad[1]], title=f"{what} 2"),
        template="plotly_white", height=620)
    return fig


def run_feature_overlay(result_or_diag: dict, *, method: str = "umap", fit_on: str = "both", seed: int = 0,
                        max_points: int = 1000, max_total: Optional[int] = 6000, title: Optional[str] = None):
    """:func:`feature_overlay` of the snapshots a run stored in ``result["diagnostics"]``."""
    if not isinstance(result_or_diag, dict):
        raise TypeError(f"expected a result dict or result['diagnostics']; got {type(result_or_diag).__name__}")
    d = result_or_diag.get("diagnostics", result_or_diag)
    snaps = (d or {}).get("snapshots") or []
    if not snaps or "features_teacher" not in d:
        raise ValueError("this result holds no feature snapshots (run with DiagnosticsCallback(n_snapshot > 0))")
    students: Dict[str, list] = {f"epoch {s['epoch']}": s["features_student"] for s in snaps}
    mods = d.get("modalities") or {}
    return feature_overlay(d["features_teacher"], d["labels_teacher"], students, d["labels_student"],
                           class_names=d.get("class_names"),
                           modality_names=(mods.get("teacher", "teacher"), mods.get("student", "student")),
                           method=method, fit_on=fit_on, seed=seed, max_points=max_points, max_total=max_total,
                           title=title)
