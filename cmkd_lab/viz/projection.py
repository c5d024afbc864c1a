"""2-D overlays of teacher and student features (UMAP, or PCA for speed).

Colour = class, marker = modality (circle: teacher, cross: student). With
several student snapshots (epochs) the figure has a slider (and a play
button) across them, on **one** embedding so that frames are comparable:
``fit_on="teacher"`` fits on the teacher's features (frozen, identical at
every epoch) and projects each student snapshot into it; ``fit_on="both"``
fits once on the teacher's features and all snapshots pooled.

UMAP (umap-learn) compiles its numba kernels on the first call in a process
(≈ 10–15 s); later calls in the same process do not pay it again.
"""
from __future__ import annotations

import warnings
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .._validation import check_choice, check_int
from .curves import PALETTE, _go

__all__ = ["project_features", "feature_overlay", "run_feature_overlay", "PROJECTIONS"]

PROJECTIONS = ("umap", "pca")


def _umap():
    try:
        import umap
    except ImportError as e:  # pragma: no cover
        raise ImportError("the UMAP projection needs umap-learn: pip install umap-learn "
                          "(or pass method='pca')") from e
    return umap


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
    fit = zt if fit_on == "teacher" else np.concatenate([zt, *zs], 0)  # (F, D)
    if fit.shape[0] < 3:
        raise ValueError(f"the projection needs at least 3 points to fit on; got {fit.shape[0]}")
    if method == "pca":
        from sklearn.decomposition import PCA
        model = PCA(n_components=2, svd_solver="full", random_state=seed).fit(fit)
        emb_fit = model.transform(fit)
    else:
        umap = _umap()
        model = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, fit.shape[0] - 1), min_dist=min_dist,
                          random_state=seed, init="spectral" if fit.shape[0] > 50 else "random", n_jobs=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs/random_state and small-graph notices
            emb_fit = model.fit_transform(fit)
    if fit_on == "both":
        cuts = np.cumsum([zt.shape[0]] + [s.shape[0] for s in zs])[:-1]
        parts = np.split(emb_fit, cuts)
        return parts[0], parts[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = [model.transform(s) for s in zs]
    return emb_fit, out


def _subsample(y, n, seed):
    from ..diagnostics import stratified_indices
    return stratified_indices(np.asarray(y), n, seed)


def feature_overlay(teacher, y_teacher, students: Union[Mapping, Sequence, np.ndarray], y_student, *,
                    class_names: Optional[Sequence[str]] = None,
                    modality_names: Tuple[str, str] = ("teacher", "student"),
                    method: str = "umap", fit_on: str = "both", seed: int = 0, max_points: int = 1000,
                    title: Optional[str] = None):
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

    Returns
    -------
    plotly.graph_objects.Figure (with a slider when there are several snapshots)
    """
    go = _go()
    check_int("max_points", max_points, minimum=3)
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
    it = _subsample(yt, max_points, seed)
    is_ = _subsample(ys, max_points, seed + 1)
    e_t, e_s = project_features(zt[it], [np.asarray(z)[is_] for _, z in items], method=method, fit_on=fit_on,
                                seed=seed)
    yt, ys = yt[it], ys[is_]
    K = int(max(yt.max(), ys.max())) + 1
    names = list(class_names or [str(k) for k in range(K)])
    tm, sm = modality_names

    def traces(es):
        out = []
        for k in range(K):
            c = PALETTE[k % len(PALETTE)]
            mt, ms = yt == k, ys == k
            out.append(go.Scatter(x=e_t[mt, 0], y=e_t[mt, 1], mode="markers", name=f"{names[k]} · {tm}",
                                  legendgroup=str(k), marker=dict(color=c, symbol="circle", size=6, opacity=0.55)))
            out.append(go.Scatter(x=es[ms, 0], y=es[ms, 1], mode="markers", name=f"{names[k]} · {sm}",
                                  legendgroup=str(k), marker=dict(color=c, symbol="x", size=7, opacity=0.9,
                                                                  line=dict(width=0))))
        return out

    allpts = np.concatenate([e_t, *e_s], 0)
    lo, hi = allpts.min(0), allpts.max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-9)
    fig = go.Figure(data=traces(e_s[-1]))
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
                        max_points: int = 1000, title: Optional[str] = None):
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
                           method=method, fit_on=fit_on, seed=seed, max_points=max_points, title=title)
