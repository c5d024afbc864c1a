"""``DiagnosticsCallback``: the diagnostics attached to training.

At the start of training it fixes two held-out reference sets — the
student's **val** split and the teacher's **val** split, each subsampled
stratified to ``n_ref`` with a fixed seed (test data is never used) — and,
from the teacher's reference features, the MMD bandwidths and the OT ε for
the whole run, so that values are comparable across epochs. At every
diagnostics epoch it writes flat scalars into the epoch's history record
(``mmd2``, ``mmd_p``, ``ot_cost``, ``sinkhorn_div``, ``purity``,
``purity_chance``, ``bound_*``, ``centroid_gap``, ``mean_cos``,
``kappa_mean`` …) and keeps small artefacts (confusion matrices, class-mass
matrices, a pooled transport plan and feature snapshots at a few epochs,
rounded) that end up in ``result["diagnostics"]``.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import numpy as np

from .._validation import check_int, check_positive
from ..data.lazy import take
from ..distill.callbacks import Callback
from ..distill.teacher import batched_features
from ..store import jsonable
from ._common import stratified_indices, to_list
from .core import DiagnosticsSettings, diagnose
from .mmd_test import rbf_bandwidths
from .transport import median_cost

__all__ = ["DiagnosticsCallback", "with_diagnostics"]

_KEPT = ("epochs", "records", "snapshots", "plans", "initial", "errors")


def _ints(v):
    if isinstance(v, np.ndarray) and v.dtype.kind == "b":
        return v.astype(np.int64)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_ints(x) for x in v]
    return v




def _snapshot(z) -> list:
    # float16 precision, rounded: a few characters per number in result.json.
    a = np.asarray(z.detach().cpu().numpy() if hasattr(z, "detach") else z, dtype=np.float16).astype(np.float64)
    return np.round(a, 3).tolist()


class DiagnosticsCallback(Callback):
    """Compute the diagnostics every few epochs on fixed held-out subsets.

    Parameters
    ----------
    every : int, optional
        Epochs between diagnostics; default the trainer's
        ``config.diagnostics_every`` (0 = off). The last epoch is always
        included. The trainer itself calls ``on_epoch_end`` only every
        ``config.diagnostics_every`` epochs, so ``every`` can only thin that
        schedule out.
    n_ref : int
        Size of each reference set (student val, teacher val), stratified.
    seed : int
        Seeds the reference subsets, the permutations and the snapshots.
    snapshot_epochs : "auto" or list of int
        Epochs whose features (and pooled plan) are kept for the UMAP overlay;
        "auto" = epoch 0 (before training) and up to three diagnostics epochs
        spread to the last.
    n_snapshot : int
        Points per modality in each feature snapshot (stratified).
    eps : float
        OT ε relative to the median ``l2`` cost within the teacher reference
        set (the absolute value is then fixed for the run).
    scales : sequence of float
        RBF bandwidths = median teacher distance × each scale.
    initial : bool
        Also diagnose the untrained student (epoch 0) at the start.
    until : int, optional
        Diagnose only up to this epoch (a sweep reads its predictors from the first epochs).
    settings : DiagnosticsSettings, optional
        Permutation counts, OT solver iterations, Lipschitz sampling.

    Attributes
    ----------
    diagnostics : dict
        What is stored as ``result["diagnostics"]`` at the end of training.
    """

    def __init__(self, *, every: Optional[int] = None, n_ref: int = 512, seed: int = 0,
                 snapshot_epochs: Union[str, Sequence[int]] = "auto", n_snapshot: int = 256, eps: float = 0.1,
                 scales: Sequence[float] = (0.5, 1.0, 2.0), initial: bool = True, until: Optional[int] = None,
                 settings: Optional[DiagnosticsSettings] = None):
        if every is not None:
            check_int("every", every, minimum=0)
        if until is not None:
            check_int("until", until, minimum=0)
        check_int("n_ref", n_ref, minimum=4)
        check_int("seed", seed, minimum=0)
        check_int("n_snapshot", n_snapshot, minimum=0)
        check_positive("eps", eps, hint="a fraction of the teacher's median feature distance, e.g. 0.1")
        if not (snapshot_epochs == "auto" or (isinstance(snapshot_epochs, (list, tuple))
                                             and all(isinstance(e, int) and e >= 0 for e in snapshot_epochs))):
            raise ValueError(f"snapshot_epochs must be 'auto' or a list of epochs >= 0; got {snapshot_epochs!r}")
        self.every, self.n_ref, self.seed = every, n_ref, seed
        self.snapshot_epochs, self.n_snapshot, self.eps, self.scales = snapshot_epochs, n_snapshot, eps, tuple(scales)
        self.initial, self.until = initial, until
        self.settings = (settings or DiagnosticsSettings()).validate()
        self.diagnostics: dict = {}

    # ------------------------------------------------------------------ setup
    def _every(self, trainer) -> int:
        return trainer.config.diagnostics_every if self.every is None else self.every

    def _due(self, trainer, epoch: int) -> bool:
        every = self._every(trainer)
        if self.until is not None and epoch > self.until:
            return False
        return bool(every) and (epoch % every == 0 or epoch == trainer.epochs)

    def on_train_begin(self, trainer):
        task = trainer.task
        every = self._every(trainer)
        self._on = bool(every)
        # A later fit() of the same trainer continues the records; a new trainer starts afresh.
        keep = {k: self.diagnostics[k] for k in _KEPT if k in self.diagnostics} \
            if getattr(self, "_trainer_id", None) == id(trainer) and trainer.epoch > 0 else {}
        self._trainer_id = id(trainer)
        self.diagnostics = {"enabled": self._on, "epochs": [], "records": []}
        if not self._on:
            self.diagnostics["reason"] = "diagnostics_every = 0"
            return
        sv, tv = task.student["val"], task.teacher["val"]
        self._is = stratified_indices(sv.y, self.n_ref, self.seed)
        it = stratified_indices(tv.y, self.n_ref, self.seed + 1)
        self._xs, self._ys = take(sv.x, self._is), sv.y[self._is]  # a lazy split stays lazy (decoded per batch)
        self._yt = tv.y[it]
        self._zt = batched_features(trainer.teacher, take(tv.x, it), trainer.device)  # (M, D), fixed for the run
        self._bw = rbf_bandwidths(self._zt, scales=self.scales, seed=self.seed)
        self._cache: dict = {}
        self._eps_abs = self.eps * median_cost(self._zt, cost=self.settings.ot_cost, seed=self.seed)
        diag_epochs = [e for e in range(1, trainer.epochs + 1) if e % every == 0 or e == trainer.epochs]
        if self.snapshot_epochs == "auto":
            pick = np.unique(np.round(np.linspace(0, len(diag_epochs) - 1, min(3, len(diag_epochs)))).astype(int))
            self._snap = {0} | {diag_epochs[i] for i in pick}
        else:
            self._snap = set(self.snapshot_epochs)
        # Feature snapshots: a stratified subset of each reference set.
        self._snap_s = stratified_indices(self._ys, self.n_snapshot, self.seed + 2) if self.n_snapshot else None
        self._snap_t = stratified_indices(self._yt, self.n_snapshot, self.seed + 3) if self.n_snapshot else None
        self.diagnostics.update({
            "settings": dict(self.settings.to_dict(), n_ref=self.n_ref, seed=self.seed, every=every,
                             eps_relative=self.eps, eps_absolute=self._eps_abs, bandwidths=self._bw,
                             scales=list(self.scales), reference="student val + teacher val, stratified",
                             n_student_ref=int(len(self._ys)), n_teacher_ref=int(len(self._yt))),
            "class_names": list(task.class_names),
            "modalities": {"teacher": task.teacher_modality, "student": task.student_modality},
            "snapshots": [],
            "plans": [],
        })
        if self.n_snapshot:
            self.diagnostics["features_teacher"] = _snapshot(self._zt[self._snap_t.tolist()])
            self.diagnostics["labels_teacher"] = self._yt[self._snap_t].tolist()
            self.diagnostics["labels_student"] = self._ys[self._snap_s].tolist()
        self.diagnostics.update(keep)
        if self.initial and trainer.epoch == 0:
            sc = self._run(trainer, 0)
            if sc is not None:
                self.diagnostics["initial"] = sc

    # --------------------------------------------------------------- per epoch
    def _run(self, trainer, epoch: int) -> Optional[dict]:
        try:
            zs = batched_features(trainer.student, self._xs, trainer.device)  # (N, D)
            sc, art = diagnose(zs, self._ys, self._zt, self._yt, teacher_head=trainer.teacher.head,
                               student_head=trainer.student.head, bandwidth=self._bw, eps=self._eps_abs,
                               num_classes=trainer.task.num_classes, settings=self.settings,
                               seed=self.seed + epoch, keep_plan=epoch in self._snap, cache=self._cache)
        except Exception as e:  # a diagnostic must never end a training run
            warnings.warn(f"diagnostics at epoch {epoch} failed ({type(e).__name__}: {e}); training goes on",
                          RuntimeWarning, stacklevel=2)
            self.diagnostics.setdefault("errors", []).append({"epoch": epoch, "error": f"{type(e).__name__}: {e}"})
            return None
        plan = art.pop("plan", None)
        rec = {"epoch": epoch, **{k: jsonable(_ints(v), decimals=5) for k, v in art.items()}}
        self.diagnostics["records"].append(rec)
        self.diagnostics["epochs"].append(epoch)
        if plan is not None:
            # Mass per original cell of each group, relative to the independent coupling (1 = a⊗b).
            rs, cs = np.asarray(plan["row_sizes"], float), np.asarray(plan["col_sizes"], float)
            dens = plan["plan"] / np.outer(rs, cs) * (rs.sum() * cs.sum())  # (R, C)
            self.diagnostics["plans"].append({"epoch": epoch, "plan_x_uniform": to_list(dens, 2),
                                              "row_classes": plan["row_classes"], "col_classes": plan["col_classes"]})
        if epoch in self._snap and self.n_snapshot:
            self.diagnostics["snapshots"].append({"epoch": epoch,
                                                  "features_student": _snapshot(zs[self._snap_s.tolist()])})
        return {k: jsonable(_ints(v), decimals=5) for k, v in sc.items()}

    def on_epoch_end(self, trainer, record: dict):
        if not getattr(self, "_on", False) or not self._due(trainer, trainer.epoch):
            return
        sc = self._run(trainer, trainer.epoch)
        if sc is not None:
            record.update(sc)

    def result_entries(self, trainer) -> dict:
        return {"diagnostics": self.diagnostics}

    # Checkpoints (Trainer.state_dict): the per-epoch artefacts, so a resumed
    # run keeps them; the reference sets are rebuilt identically from the seed.
    def state_dict(self) -> dict:
        return {k: self.diagnostics[k] for k in _KEPT if k in self.diagnostics}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise ValueError(f"DiagnosticsCallback state must be a dict; got {type(state).__name__}")
        self.diagnostics.update({k: state[k] for k in _KEPT if k in state})


def with_diagnostics(callbacks: Sequence = (), **options) -> list:
    """``callbacks`` plus a :class:`DiagnosticsCallback` built with ``options``, unless they hold one
    already: the one place where every door (``distill``, ``run``, ``sweep``, the widgets) attaches the
    diagnostics."""
    callbacks = list(callbacks)
    if any(isinstance(cb, DiagnosticsCallback) for cb in callbacks):
        return callbacks
    return callbacks + [DiagnosticsCallback(**options)]
