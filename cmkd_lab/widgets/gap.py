"""``06_explore_gap``: explore a modality gap without training anything new.

* :func:`task_features` — a built-in task's teacher features and a trained
  student's features (the teacher is cached; a ``ce`` student takes seconds),
  with the teacher's features of the student's own instances when the task
  has pairs.
* :func:`explore` — :func:`cmkd_lab.explore_gap` with the notebook's sizes,
  returning ``(result, figures)``; :func:`readings` shows the sentences.
* :func:`synthetic_gap_sweep` — the synthetic generator's ``gap`` knob seen
  through the explorer: in the student's input space, and between trained
  encoders.
* :func:`demo_embeddings` — two embeddings of the same images (scikit-learn's
  digits) standing in for a user's own.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .._validation import check_int
from .settings import LabSettings
from ._checks import lab_or_default

__all__ = ["task_features", "explore", "figures", "readings", "gap_table", "synthetic_gap_sweep", "demo_embeddings",
           "explore_sizes", "GAP_LEGEND"]


def explore_sizes(lab: Optional[LabSettings] = None) -> dict:
    """The sizes :func:`explore` passes to :func:`cmkd_lab.explore_gap` (``max_points``: the subsample of
    each set for MMD, OT, purity and retrieval; ``n_permutations``): pass the same to the command line
    (``--max-points``) to get the same numbers — paired recall@1, for one, falls as the candidates grow."""
    lab = lab_or_default(lab)
    return dict(max_points=400, n_permutations=100) if lab.fast else dict(max_points=1000, n_permutations=200)


def task_features(task="hapt", *, method: str = "ce", split: str = "test", epochs: Optional[int] = None,
                  teacher_epochs: Optional[int] = None, seed: int = 0, lab: Optional[LabSettings] = None,
                  **options) -> dict:
    """Train a student on a task (the teacher comes from the cache) and return both sides' features.

    Parameters
    ----------
    task : str or CrossModalTask
        A built-in name (``hapt``, ``synthetic`` …) or a task.
    method : str
        How the student is trained (``ce``: its own labels only, never tied
        to the teacher; ``fa``, ``ucmkd`` …: with alignment).
    split : {"test", "val", "train"}
        Whose features are returned.
    epochs, teacher_epochs : int, optional
        Default: the lab settings (fast or full mode).
    seed : int
    lab : LabSettings, optional
    **options
        Task options for a built-in name (e.g. ``gap=2.0`` for ``synthetic``)
        go to the task; anything else to :class:`~cmkd_lab.DistillConfig`.

    Returns
    -------
    dict with ``teacher`` (M, D) and ``teacher_y`` (M,) — the teacher on its
    own split; ``student`` (N, D) and ``student_y`` (N,); ``teacher_on_student``
    (N, D) or None — the teacher encoder on the teacher-modality view of the
    student's own instances (row i pairs with ``student`` row i); ``names``,
    ``class_names``, ``student_test_acc``, ``teacher_test_acc``
    """
    from ..data import CrossModalTask, load_task
    from ..distill import DistillConfig, Trainer
    from ..distill.config import DistillConfig as _DC
    from ..distill.teacher import batched_features

    lab = lab_or_default(lab)
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be one of 'train', 'val', 'test'; got split={split!r}")
    fields = set(_DC.__dataclass_fields__)
    cfg_opts = {k: v for k, v in options.items() if k in fields}
    task_opts = {k: v for k, v in options.items() if k not in fields}
    if isinstance(task, CrossModalTask):
        if task_opts:
            raise ValueError(f"task options {sorted(task_opts)} need a built-in task name, not a CrossModalTask")
        the_task = task
    else:
        the_task = load_task(task, seed=seed, fast=lab.task_fast, **task_opts)
    cfg = DistillConfig.from_dict(dict(epochs=lab.epochs if epochs is None else epochs,
                                       teacher_epochs=lab.teacher_epochs if teacher_epochs is None else teacher_epochs,
                                       seed=seed, diagnostics_every=0, **cfg_opts), source="task_features options")
    tr = Trainer(the_task, method, cfg)
    result = tr.fit()
    paired = None
    if the_task.has_pairs:
        paired = batched_features(tr.teacher, the_task.paired_teacher_x[split], tr.device).cpu().numpy()
    return {"teacher": tr.teacher_features(split).cpu().numpy(), "teacher_y": np.asarray(the_task.teacher[split].y),
            "student": tr.student_features(split).cpu().numpy(), "student_y": np.asarray(the_task.student[split].y),
            "teacher_on_student": paired, "class_names": list(the_task.class_names),
            "names": (f"{the_task.teacher_modality} (teacher)", f"{the_task.student_modality} ({method} student)"),
            "student_test_acc": result["student_test_acc"], "teacher_test_acc": result["teacher_test_acc"]}


def explore(z_a, z_b, *, lab: Optional[LabSettings] = None, projection=None, **kwargs):
    """:func:`cmkd_lab.explore_gap` with the notebook's sizes; returns ``(result, figures)``.

    ``projection`` defaults to PCA in fast mode and UMAP + PCA otherwise; other
    keywords go to :func:`~cmkd_lab.explore_gap` (they override the sizes).
    """
    from ..diagnostics.explore import explore_gap

    lab = lab_or_default(lab)
    result = explore_gap(z_a, z_b, **{**explore_sizes(lab), **kwargs})
    return result, figures(result, lab=lab, projection=projection)


def figures(result, *, lab: Optional[LabSettings] = None, projection=None) -> dict:
    """:func:`cmkd_lab.viz.gap_figures` as a dict title -> figure (PCA only in fast mode)."""
    from ..viz.gap import gap_figures

    lab = lab_or_default(lab)
    proj = projection or (("pca",) if lab.fast else ("umap", "pca"))
    return dict(gap_figures(result, projection=proj))


def readings(result):
    """The headline and every reading of an :func:`~cmkd_lab.explore_gap` result, as Markdown."""
    from IPython.display import Markdown

    if not isinstance(result, dict) or "readings" not in result:
        raise TypeError(f"result must be what explore_gap returns; got {type(result).__name__}")
    return Markdown(f"**{result['headline']}**\n\n" + "\n".join(f"* {s}" for s in result["readings"]))


_TABLE = (("MMD²", ("distance", "mmd", "mmd2")), ("p", ("distance", "mmd", "p_value")),
          ("W1/median", ("distance", "w1", "w1_relative")), ("shift share", ("gap_vector", "gap", "shift_share_w2")),
          ("MMD² centred", ("gap_vector", "centred", "mmd2")), ("purity", ("classes", "purity", "purity")),
          ("chance", ("classes", "purity", "chance")), ("purity matched", ("classes", "purity", "purity_matched")))


GAP_LEGEND = {
    "MMD²": "unbiased MMD² between the two sets (about 0: the same distribution)",
    "p": "p-value of the MMD² permutation test",
    "W1/median": "exact optimal-transport distance W1, in units of the median distance between two points",
    "shift share": "share of W2² that the gap vector (the difference of the means) explains; a dash (—) when "
                   "the two means coincide, so there is no gap vector",
    "MMD² centred": "MMD² after centring each set on its own mean (what is left once the shift is removed)",
    "purity": "share of the exact transport plan's mass that joins two samples of the same class",
    "chance": "the purity a plan blind to classes gives, Σ_k p_A(k)·p_B(k)",
    "purity matched": "purity after the best relabelling of the classes",
    "own A": "accuracy of a linear classifier on A's own data (cross-fitted)",
    "A→B": "the classifier trained on A, tested on B",
    "A→B centred": "the same after centring each set on its own mean",
    "R@1 as is": "paired retrieval: share of A's samples whose nearest B sample is its own pair, in the raw spaces",
    "R@1 orth. map": "the same after an orthogonal map fitted on other pairs",
    "CKA": "linear CKA of the paired sets (1: identical up to a rotation, a scaling and a shift)",
}


def gap_table(results: Dict[str, dict]):
    """One row per result: the headline numbers, formatted, with a legend of the columns (a
    :class:`~cmkd_lab.widgets.tables.Table`).

    Parameters
    ----------
    results : dict label -> explore_gap result
    """
    import pandas as pd

    from .tables import make_table

    rows = []
    for label, r in results.items():
        row = {"comparison": label}
        for col, path in _TABLE:
            v = r
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            row[col] = v
        a, b = r["names"]
        if r.get("transfer"):
            row["own A"], row["A→B"] = r["transfer"]["own"][a], r["transfer"]["transfer"][f"{a}→{b}"]["raw"]
            row["A→B centred"] = r["transfer"]["transfer"][f"{a}→{b}"]["centred"]
        if r.get("paired"):
            rec = r["paired"]["retrieval"]["recall"]
            row["R@1 as is"] = rec["as is"][f"{a}→{b}"]["@1"]
            row["R@1 orth. map"] = rec.get("orthogonal map", {}).get(f"{a}→{b}", {}).get("@1")
            row["CKA"] = r["paired"]["cka"]["cka"]
        rows.append(row)
    df = pd.DataFrame(rows).set_index("comparison")
    fmt = {c: "{:.3f}" for c in df.columns}
    fmt["p"] = "{:.2g}"
    return make_table(df, formats=fmt, notes=[f"{k}: {v}." for k, v in GAP_LEGEND.items() if k in df.columns])


def synthetic_gap_sweep(gaps: Optional[Sequence[float]] = None, *, methods: Sequence[str] = ("ce", "fa"),
                        seed: int = 0, lab: Optional[LabSettings] = None) -> Tuple[Dict[str, dict], object]:
    """The synthetic generator's ``gap`` knob through the explorer.

    Two honest comparisons (the teacher's and the student's raw views have
    different dimensions, so no distance between them means anything):

    * **inputs**: the student's view at ``gap=g`` against the same view at
      ``gap=0`` — same latents, same noise (the generator draws them
      identically for one seed), so row i pairs with row i: what the knob
      itself does, in the 24-dimensional input space;
    * **features**: the teacher's features of the student's own instances
      (their teacher-modality view, through the cached teacher) against the
      features of a student trained with each of ``methods``: pairs again.

    Parameters
    ----------
    gaps : sequence of float >= 0, optional
        Default (0, 4) in fast mode, (0, 2, 4) otherwise.
    methods : sequence of str
        How the students are trained (one per gap and method; the teacher is
        the same at every gap: the knob only moves the student's view).
    seed : int
    lab : LabSettings, optional

    Returns
    -------
    results : dict label -> explore_gap result
    table : pandas DataFrame (:func:`gap_table`)
    """
    from ..data import make_synthetic_task
    from ..diagnostics.explore import explore_gap

    lab = lab_or_default(lab)
    check_int("seed", seed, minimum=0)
    from ._checks import need_list
    gaps = ((0.0, 4.0) if lab.fast else (0.0, 2.0, 4.0)) if gaps is None else need_list(gaps, "gaps", "numbers >= 0",
                                                                                           "[0.0, 4.0]", one=False)
    for g in gaps:  # make_synthetic_task checks each gap; a word is named here, not as a format error
        if isinstance(g, (str, bytes)) or not isinstance(g, (int, float, np.integer, np.floating)):
            raise TypeError(f"gaps must hold numbers >= 0, e.g. gaps=[0.0, 4.0]; got {g!r} in gaps={gaps!r}")
    n = 800 if lab.fast else 2000
    kw = dict(max_points=300 if lab.fast else 600, n_permutations=50 if lab.fast else 100, seed=seed)
    base = make_synthetic_task(gap=0.0, n_teacher=n, n_student=n, seed=seed).student["test"]
    results = {}
    for g in gaps:
        task = make_synthetic_task(gap=float(g), n_teacher=n, n_student=n, seed=seed)
        x = task.student["test"]
        results[f"inputs: view B at gap {g:g} vs gap 0"] = explore_gap(
            base.x, x.x, y_a=base.y, y_b=x.y, pairs=True,
            names=("gap 0", f"gap {g:g}" if g else "gap 0, again"), **kw)
        for m in methods:
            f = task_features(task, method=m, seed=seed, lab=lab)
            results[f"features: teacher vs {m} student, gap {g:g}"] = explore_gap(
                f["teacher_on_student"], f["student"], y_a=f["student_y"], y_b=f["student_y"], pairs=True,
                names=("teacher", f"{m} student"), **kw)
    return results, gap_table(results)


def demo_embeddings(*, noise: float = 4.0, seed: int = 0) -> dict:
    """Two embeddings of the same images, standing in for a user's own.

    scikit-learn's bundled digits (1,797 images of 8 × 8): ``z_a`` is a
    16-dimensional PCA of the clean images; ``z_b`` a 16-dimensional PCA,
    fitted separately, of the same images with added pixel noise and shifted
    one pixel to the right. Row i of each is the same image (``pairs=True``).

    Returns
    -------
    dict with ``z_a``, ``z_b`` (1797, 16), ``y`` (1797,), ``class_names``
    """
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    from .._validation import check_nonneg
    check_nonneg("noise", noise)  # the pixel noise's standard deviation

    d = load_digits()
    rng = np.random.default_rng(seed)
    imgs = d.images  # (N, 8, 8)
    moved = np.roll(imgs, 1, axis=2)
    moved[:, :, 0] = 0.0
    noisy = moved + noise * rng.normal(size=imgs.shape)
    z_a = PCA(16, random_state=seed).fit_transform(imgs.reshape(len(imgs), -1))
    z_b = PCA(16, random_state=seed).fit_transform(noisy.reshape(len(imgs), -1))
    return {"z_a": z_a.astype(np.float32), "z_b": z_b.astype(np.float32), "y": d.target,
            "class_names": [str(k) for k in range(10)]}
