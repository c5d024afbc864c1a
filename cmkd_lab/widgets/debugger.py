"""The alignment debugger, as plain functions (``03_alignment_debugger``).

:func:`run_debugger` trains one student with the chosen alignment options and
returns ``(result, figures)``; :class:`DebugSession` is the same run held as
an object so that another thread can stop it; :class:`DebuggerPanel` (in
:mod:`.debugger_panel`) is the widget front built on both.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

from .runner import RunSession, load_named_task, make_sink
from .settings import LabSettings
from ._checks import lab_or_default

__all__ = ["DEBUGGER_DEFAULTS", "LIVE_FIGURES", "debugger_config", "DebugSession", "run_debugger",
           "live_figures", "debugger_figures", "overlay_at_epoch"]

# The panel's controls and their starting values (the paper's defaults where it has one).
DEBUGGER_DEFAULTS = dict(task="synthetic", method="ucmkd", cost="l2", eps=0.1, batch_size=64, lambda_fa=1.0,
                         lambda_la=1.0, n1=1, n2=1, inner_lr=1e-3, pairing="unpaired", la_teacher_grad="none",
                         seed=0, student_fraction=1.0, student_unlabelled=False, teacher_control="none")

# Figures redrawn after every epoch while training runs.
LIVE_FIGURES = ("losses", "mmd", "ot")


def debugger_config(*, epochs: int, teacher_epochs: int, cost: str = "l2", eps: float = 0.1, batch_size: int = 64,
                    lambda_fa: float = 1.0, lambda_la: float = 1.0, n1: int = 1, n2: int = 1,
                    pairing: str = "unpaired", la_teacher_grad: str = "none", seed: int = 0,
                    diagnostics_every: int = 1, **more):
    """The :class:`~cmkd_lab.distill.DistillConfig` behind the debugger's controls.

    Every option is validated by the config (errors name the option, the rule
    and the value). ``more`` passes any other config option.
    """
    from ..distill import DistillConfig

    # Passed as given (a widget's numpy scalar as its Python value): the config checks each type and range,
    # so 2.7 epochs or seed=True are refused by name, never rounded.
    opts = dict(epochs=epochs, teacher_epochs=teacher_epochs, cost=cost, eps=eps, batch_size=batch_size,
                lambda_fa=lambda_fa, lambda_la=lambda_la, n1=n1, n2=n2, pairing=pairing,
                la_teacher_grad=la_teacher_grad, seed=seed, diagnostics_every=diagnostics_every, **more)
    return DistillConfig.from_dict({k: v.item() if isinstance(v, np.generic) else v for k, v in opts.items()},
                                   source="debugger options")


def live_figures(history, initial: Optional[dict] = None, config: Optional[dict] = None, *,
                 n_permutations: Optional[int] = None) -> Dict[str, object]:
    """The figures redrawn each epoch: loss terms, MMD² and OT distances.

    Parameters
    ----------
    history : list of dict
        Records so far (``result["history"]``).
    initial : dict, optional
        Diagnostics of the untrained student (drawn as epoch 0).
    config : dict, optional
        ``result["config"]`` (draws the weighted terms λ·term too).
    n_permutations : int, optional
        Permutations of the MMD test (draws the floor of its p-value).
    """
    from ..viz import loss_curves, mmd_curves, ot_curves

    figs = {"losses": loss_curves(history, config=config),
            "mmd": mmd_curves(history, initial=initial, n_permutations=n_permutations),
            "ot": ot_curves(history, initial=initial)}
    for f in figs.values():
        f.update_layout(height=330, margin=dict(l=50, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.25))
    return figs


def overlay_at_epoch(result: dict, epoch: Optional[int] = None, *, projection: str = "pca", seed: int = 0):
    """Teacher and student features at one snapshot epoch, in 2-D.

    Parameters
    ----------
    result : dict
        A run's result with ``diagnostics`` snapshots.
    epoch : int, optional
        One of the snapshot epochs (default: the last).
    projection : {"umap", "pca"}
    """
    from ..viz import feature_overlay

    from ._checks import need_run
    need_run(result)
    d = (result or {}).get("diagnostics") or {}
    snaps = d.get("snapshots") or []
    if not snaps:
        raise ValueError("this result holds no feature snapshots; run with diagnostics on")
    epochs = [s["epoch"] for s in snaps]
    if epoch is None:
        epoch = epochs[-1]
    if epoch not in epochs:
        raise ValueError(f"epoch must be one of the snapshot epochs {epochs}; got epoch={epoch!r}")
    snap = snaps[epochs.index(epoch)]
    mods = d.get("modalities") or {}
    return feature_overlay(d["features_teacher"], d["labels_teacher"], {f"epoch {epoch}": snap["features_student"]},
                           d["labels_student"], class_names=d.get("class_names"),
                           modality_names=(mods.get("teacher", "teacher"), mods.get("student", "student")),
                           method=projection, seed=seed)


def debugger_figures(result: dict, *, overlay_epoch: Optional[int] = None,
                     projection: str = "pca") -> Dict[str, object]:
    """Every debugger figure of a finished (or stopped) run.

    Returns
    -------
    dict name -> go.Figure with ``losses``, ``mmd``, ``ot`` (the live
    curves), ``accuracy``, ``audit`` (the gradient audit, when the run recorded one), ``gap``, ``bound``,
    ``transport_plan``, ``overlay`` (features at ``overlay_epoch``) and ``labels`` (heatmaps);
    the artefact figures are left out when the run recorded none.
    """
    from ..viz import accuracy_curves, audit_figure, bound_bars, gap_curves, label_heatmaps, transport_plan_figure

    if not isinstance(result, dict) or "history" not in result:
        from ._checks import got
        raise TypeError(f"result must be a run's result dict (with 'history'), as returned by run_debugger; "
                        f"{got(result)}")
    h = [r for r in result["history"] if "epoch" in r]
    d = result.get("diagnostics") or {}
    figs = live_figures(h, d.get("initial"), result.get("config"),
                        n_permutations=(d.get("settings") or {}).get("n_permutations"))
    figs["accuracy"] = accuracy_curves(h, num_classes=len(d.get("class_names") or []) or None)
    if any(k.startswith("grad_enc_") for r in h for k in r):
        figs["audit"] = audit_figure(h)
    figs["gap"] = gap_curves(result)
    figs["bound"] = bound_bars(result)
    if d.get("plans"):
        figs["transport_plan"] = transport_plan_figure(d)
    if d.get("snapshots"):
        figs["overlay"] = overlay_at_epoch(result, overlay_epoch, projection=projection)
    if d.get("records"):
        figs["labels"] = label_heatmaps(d)
    return figs


class DebugSession:
    """One debugger run, stoppable from another thread.

    Parameters
    ----------
    task : str or CrossModalTask
        A built-in task name (``synthetic``, ``hapt``, ``digits-speech`` …) or a task.
    method : str
        A registered method (``cmkd_lab.available_methods()``).
    cost, eps, batch_size, lambda_fa, lambda_la, n1, n2, pairing, la_teacher_grad, seed
        The alignment options (see :class:`~cmkd_lab.distill.DistillConfig`).
    epochs, teacher_epochs : int, optional
        Default: the lab settings (fast or full mode).
    lab : LabSettings, optional
        Default :func:`cmkd_lab.widgets.settings`.
    sink : None, True or callable
        Progress: True shows bars; a callable is a sink ``sink(phase, done, total, text)``.
    on_epoch : callable, optional
        ``on_epoch(history, initial)`` after each epoch, from the training thread.
    snapshot_epochs : "all", "auto" or list of int
        Epochs whose features are kept for the overlay (default every epoch; ``[]``: none).
    n_ref, permutations : int, optional
        Reference-set size and MMD permutations of the diagnostics (default: 256 and 50 in fast mode,
        512 and 200 otherwise); a comparison that reads a few curves needs less.
    """

    def __init__(self, *, task="synthetic", method: str = "ucmkd", cost: str = "l2", eps: float = 0.1,
                 batch_size: int = 64, lambda_fa: float = 1.0, lambda_la: float = 1.0, n1: int = 1, n2: int = 1,
                 pairing: str = "unpaired", la_teacher_grad: str = "none", seed: int = 0,
                 epochs: Optional[int] = None, teacher_epochs: Optional[int] = None,
                 lab: Optional[LabSettings] = None, sink=None, on_epoch: Optional[Callable] = None,
                 snapshot_epochs="all", n_ref: Optional[int] = None, permutations: Optional[int] = None, **more):
        self.lab = lab_or_default(lab)
        epochs = self.lab.epochs if epochs is None else epochs
        teacher_epochs = self.lab.teacher_epochs if teacher_epochs is None else teacher_epochs
        self.config = debugger_config(epochs=epochs, teacher_epochs=teacher_epochs, cost=cost, eps=eps,
                                      batch_size=batch_size, lambda_fa=lambda_fa, lambda_la=lambda_la, n1=n1, n2=n2,
                                      pairing=pairing, la_teacher_grad=la_teacher_grad, seed=seed,
                                      diagnostics_every=self.lab.diagnostics_every, **more)
        from ..distill.rules import why_not
        why = why_not(method, pairing=self.config.pairing, task_name=str(task),  # before any training
                      task_has_pairs=True, student_unlabelled=self.config.student_unlabelled)
        if why is not None:
            raise why[0](why[1])
        from ..distill.methods.options import check_method_options
        check_method_options(method, self.config)  # n1, n2 are ucmkd's: refused for another method, before training
        sink = make_sink(sink, label=str(method))
        self.task_spec, self.method = task, method
        self.projection = "pca" if self.lab.fast else "umap"
        self._session = None
        self._sink, self._on_epoch, self._snapshots = sink, on_epoch, snapshot_epochs
        self._n_ref = n_ref if n_ref is not None else (256 if self.lab.fast else 512)
        self.permutations = permutations if permutations is not None else (50 if self.lab.fast else 200)
        self._stopped = False
        self.result: Optional[dict] = None

    def stop(self) -> None:
        """Stop after the current training step; the history so far is kept."""
        self._stopped = True
        if self._session is not None:
            self._session.stop()

    @property
    def trainer(self):
        return None if self._session is None else self._session.trainer

    def run(self, *, figures: bool = True):
        """Train and return ``(result, figures)`` (figures ``{}`` when ``figures=False``)."""
        task = load_named_task(self.task_spec, seed=self.config.seed, fast=self.lab.task_fast)
        self._session = RunSession(task, self.method, self.config, sink=self._sink, on_epoch=self._on_epoch,
                                   snapshot_epochs=self._snapshots, n_ref=self._n_ref,
                                   permutations=self.permutations, n_snapshot=0 if self._snapshots == [] else 200)
        if self._stopped:
            self._session.stop()
        self.result = self._session.run()
        figs = {}
        if figures:
            if self._sink is not None:
                self._sink("figures", 0, 1, "drawing figures")
            figs = debugger_figures(self.result, projection=self.projection)
        if self._sink is not None:
            self._sink("done", 1, 1, self.result.get("status", ""))
        return self.result, figs


def run_debugger(*, progress=None, **options):
    """Train one student with the debugger's options; returns ``(result, figures)``.

    Parameters
    ----------
    progress : None, True or callable
        True shows progress bars (widgets in a notebook, text elsewhere); a
        callable is a sink ``sink(phase, done, total, text)``.
    **options
        Those of :class:`DebugSession` (task, method, cost, eps, batch_size,
        lambda_fa, lambda_la, n1, n2, inner_lr, pairing, la_teacher_grad, seed, epochs …).

    Returns
    -------
    result : dict
        As ``result.json``, with ``diagnostics``.
    figures : dict name -> go.Figure
        See :func:`debugger_figures`.
    """
    return DebugSession(sink=progress, **options).run()
