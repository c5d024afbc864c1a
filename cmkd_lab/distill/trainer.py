"""The trainer: task → teacher → feature bank → method steps → history.

Short on purpose: ``Trainer.__init__`` and :meth:`Trainer.fit` read as a
sequence of named steps. Everything a callback or a diagnostic needs is an
attribute: ``task``, ``config``, ``device``, ``teacher``, ``student``,
``method``, ``bank`` (teacher features (M, D)), ``bank_y``, ``history``.
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .._seeds import STUDENT_BATCHES, UNLABELLED_BATCHES, training_seed as _training_seed
from .._validation import check_path
from ..data.lazy import is_lazy
from ..data.loader import iterate_batches
from ..data.sampling import TeacherBatchSampler
from ..keys import declare
from ..models import build_classifier, check_compatible
from ..store import code_version
from .callbacks import Callback
from .checkpoint import (CHECKPOINT_FORMAT, from_json, global_rng_state, read_checkpoint, set_global_rng_state,
                         to_json, write_checkpoint)
from .audit import audit_gradients
from .config import DistillConfig, planned_epochs
from .distributed import from_env
from .methods import Batch, get_method
from .rules import PairingError, check_runnable
from .runtime import resolve_device, seed_everything, versions
from .teacher import bank_labels, batched_features, evaluate, get_teacher

__all__ = ["Trainer", "Callback", "PairingError", "StaleCheckpointError"]


# What the trainer writes into each epoch's history record (cmkd_lab.keys).
declare("trainer", "bookkeeping", {"epoch": "epoch", "steps": "optimiser steps", "lr": "learning rate",
                                   "time_s": "epoch time", "error": "why the run stopped"}, units={"time_s": "s"})
declare("trainer", "outcome", {"val_acc": "student validation accuracy", "val_loss": "student validation loss",
                               "test_acc": "student test accuracy", "test_loss": "student test loss"})
declare("trainer", "diagnostic", {"teacher_head_on_student_acc": "teacher head on student val features"})
# The fields of result() beside its history (read by the report's tables).
declare("trainer", "outcome", {
    "student_test_acc": "student test accuracy at the best-validation epoch",
    "student_val_acc": "student validation accuracy at the best-validation epoch",
    "student_test_acc_last": "student test accuracy at the last epoch",
    "student_val_acc_last": "student validation accuracy at the last epoch",
    "teacher_test_acc": "teacher test accuracy (its own modality)",
    "teacher_val_acc": "teacher validation accuracy (its own modality)"})
declare("trainer", "bookkeeping", {
    "best_epoch": "best-validation epoch", "epochs": "epochs", "epochs_done": "epochs trained",
    "steps_per_epoch": "optimiser steps per epoch", "steps_total": "optimiser steps in all",
    "student_fraction": "share of the student's labels used", "n_student_unlabelled": "unlabelled student samples",
    "wall_s": "training time", "s_per_epoch": "time per epoch"},
    units={"wall_s": "s", "s_per_epoch": "s"})


UNDER_TRAINED_STEPS = 200  # a run with few steps per epoch and fewer steps than this in all gets a warning


class StaleCheckpointError(ValueError):
    """A checkpoint written by another version of the code (it cannot continue this run exactly)."""


def _unlabelled_inputs(task, cfg: DistillConfig):
    """With ``cfg.student_unlabelled``: (inputs, indices into the student train split) of the student
    training samples that ``cfg.student_fraction`` leaves out (their labels are never read); else None."""
    if not cfg.student_unlabelled:
        return None
    tr = task.student["train"]
    if is_lazy(tr.x):
        raise ValueError(f"student_unlabelled=True needs a task held in memory; task {task.name!r} decodes "
                         "its student inputs from disk per batch: use student_unlabelled=False")
    rest = np.setdiff1d(np.arange(len(tr.y)), task.student_fraction_indices(cfg.student_fraction, cfg.seed))
    if rest.size < 2:
        raise ValueError(f"student_unlabelled=True: student_fraction={cfg.student_fraction!r} leaves "
                         f"{rest.size} unlabelled training sample(s) of task {task.name!r}; the OT term needs "
                         "at least 2: lower student_fraction")
    return np.asarray(tr.x)[rest], rest


def _lr_factor(cfg: DistillConfig, epoch: int, epochs: int) -> float:
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / cfg.warmup_epochs
    if cfg.schedule == "cosine":
        span = max(1, epochs - cfg.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return 1.0


def training_seed(cfg: DistillConfig) -> int:
    """The seed of the training noise (:func:`cmkd_lab._seeds.training_seed` of ``cfg.seed``, ``cfg.replicate``)."""
    return _training_seed(cfg.seed, cfg.replicate)


def _check_arguments(task, method, config, callbacks, teacher) -> None:
    from ..data.task import CrossModalTask

    if not isinstance(task, CrossModalTask):
        raise TypeError(f"task must be a CrossModalTask (see cmkd_lab.data.load_task); got {type(task).__name__}"
                        + (f" {task!r}: load it first, e.g. task = load_task({task!r}) (cmkd_lab.available_tasks() "
                           "lists the names)" if isinstance(task, str) else ""))
    if config is not None and not isinstance(config, DistillConfig):
        raise TypeError(f"config must be a DistillConfig; got {type(config).__name__}"
                        + (": build one with DistillConfig.from_dict(d)" if isinstance(config, dict) else ""))
    if not isinstance(method, str):
        raise TypeError(f"method must be a method name (str, see available_methods()); got {type(method).__name__}")
    if isinstance(callbacks, Callback) or not all(
            any(hasattr(cb, h) for h in ("on_train_begin", "on_step_end", "on_epoch_end", "on_train_end"))
            for cb in callbacks):
        raise TypeError("callbacks must be a sequence of Callback objects (wrap a single one in a list); "
                        f"got {callbacks!r}")
    if teacher is not None and not (isinstance(teacher, tuple) and len(teacher) == 2
                                    and isinstance(teacher[0], torch.nn.Module) and isinstance(teacher[1], dict)):
        raise TypeError("teacher must be a (model, info dict) pair as returned by get_teacher; "
                        f"got {type(teacher).__name__}")


def _make_optimizer(cfg: DistillConfig, params):
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


class Trainer:
    """Distil a student on ``task`` with ``method``.

    Parameters
    ----------
    task : CrossModalTask
    method : str
        A registered method name (``python -m cmkd_lab methods``).
    config : DistillConfig, optional
    callbacks : sequence of Callback
    teacher : (Classifier, dict), optional
        A ready teacher and its info; otherwise the cached teacher is used.
    checkpoint : path, optional
        Save a checkpoint there after every epoch (atomic write).
    progress : bool
        Text progress bar (tqdm) over epochs.
    """

    def __init__(self, task, method: str = "ucmkd", config: Optional[DistillConfig] = None, *,
                 callbacks: Sequence[Callback] = (), teacher=None, checkpoint=None, progress: bool = False):
        _check_arguments(task, method, config, callbacks, teacher)
        check_path("checkpoint", checkpoint, hint="pass a file path such as 'runs/x/checkpoint.pt', or None for none")
        self.config = cfg = (config or DistillConfig()).validate()
        self.method_name = method
        method_cls = get_method(method)
        check_runnable(method, cfg, task)
        unl = self._select_data(task)
        self._place(callbacks, checkpoint, progress)
        self._load_teacher(teacher)
        self._open_streams(unl, task, method_cls)
        self._plan_budget()
        self._build_student(method_cls)
        self.history: List[dict] = []
        self.epoch = 0
        self.wall_s = 0.0
        self.status = "running"
        self.error: Optional[str] = None
        self.dropped_steps = 0  # steps of an epoch cut short by stop()/Ctrl-C (not in the history)
        self._best_state: Optional[dict] = None  # the student's weights at the best validation accuracy so far
        self._best_epoch: Optional[int] = None
        self._tested: set = set()  # epochs whose test accuracy _finish_test filled in
        self.finite_check_every = 50  # steps between NaN/inf checks on a GPU (on the CPU: every step)

    # ------------------------------------------------------------ set-up steps
    def _select_data(self, task):
        """The labelled student subset (``student_fraction``) and the unlabelled (inputs, indices), if any."""
        cfg = self.config
        self.task = task.with_student_fraction(cfg.student_fraction, cfg.seed)
        unl = _unlabelled_inputs(task, cfg)
        if cfg.pairing == "class-matched":
            missing = sorted(set(self.task.student["train"].y.tolist()) - set(self.task.teacher["train"].y.tolist()))
            if missing:
                raise PairingError(
                    f"pairing='class-matched' needs teacher training samples of every student class; classes "
                    f"{[self.task.class_names[k] for k in missing]} have none: use pairing='unpaired'")
        return unl

    def _place(self, callbacks, checkpoint, progress) -> None:
        """Device, torchrun rank, mixed precision; what only rank 0 does (checkpoints, progress)."""
        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.dist = from_env(cfg, self.device)  # under torchrun: this rank's place (distill/distributed.py)
        if self.dist is not None:
            self.device = self.dist.device
        main = self.dist is None or self.dist.is_main  # only rank 0 writes checkpoints and shows progress
        self.amp = bool(cfg.amp and self.device.type == "cuda")
        self.callbacks = list(callbacks)
        self.progress = progress and main
        self.checkpoint = Path(checkpoint) if checkpoint and main else None
        self._stop = False

    def _load_teacher(self, teacher) -> None:
        """The frozen teacher (eval mode) and its feature bank, computed once, with the teacher sampler."""
        cfg = self.config
        self.teacher, self.teacher_info = teacher if teacher is not None else get_teacher(self.task, cfg, self.device)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        if self.dist is not None:
            self.dist.broadcast_module(self.teacher)
        if cfg.pairing == "paired":
            self._bank_x, self.bank_y_np = self.task.paired_teacher_x["train"], self.task.student["train"].y
        else:
            self._bank_x, self.bank_y_np = self.task.teacher["train"].x, self.task.teacher["train"].y
        # A teacher control renames what the teacher says about its own data (distill/teacher.py).
        self.bank_y_np = bank_labels(self.bank_y_np, self.teacher_info, cfg.seed)
        self.bank = batched_features(self.teacher, self._bank_x, self.device)  # (M, D)
        self.bank_y = torch.as_tensor(self.bank_y_np, device=self.device)
        self.sampler = TeacherBatchSampler(cfg.pairing, self.bank_y_np, self.task.num_classes, seed=training_seed(cfg))

    def _build_student(self, method_cls) -> None:
        """The student (seeded), the method, the optimiser and the schedule."""
        cfg = self.config
        seed_everything(training_seed(cfg))
        self.student = build_classifier(self.task.student_encoder, cfg.feature_dim, self.task.num_classes).to(self.device)
        if self.dist is not None:
            self.dist.broadcast_module(self.student)
        xs = torch.as_tensor(self.task.student["train"].x[:2], dtype=torch.float32, device=self.device)
        xt = torch.as_tensor(self._bank_x[:2], dtype=torch.float32, device=self.device)
        check_compatible(self.teacher, self.student, xt, xs)
        self.method = method_cls(self)
        self.params = list(self.student.parameters()) + [p for m in self.method.extra_modules() for p in m.parameters()]
        self.optimizer = _make_optimizer(cfg, self.params)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: _lr_factor(cfg, e, self.epochs))

    def _open_streams(self, unl, task, method_cls) -> None:
        """The student's training data on the device and the random streams that draw its batches; for the
        paired ceiling, the teacher features of the paired view of each unlabelled sample."""
        cfg = self.config
        unl_x = None if unl is None else unl[0]
        self.bank_up = None  # (U, D): teacher features of the unlabelled samples' paired views
        if unl is not None and getattr(method_cls, "needs_unlabelled_pairs", False):
            self.bank_up = batched_features(self.teacher, task.paired_teacher_x["train"][unl[1]], self.device)
        seed = training_seed(cfg)
        self.generator = torch.Generator().manual_seed(seed + STUDENT_BATCHES)
        tr = self.task.student["train"]
        # In-memory inputs live on the device; a LazyArray stays on disk and is decoded per batch.
        self.x_train = tr.x if is_lazy(tr.x) else torch.as_tensor(tr.x, dtype=torch.float32, device=self.device)
        self.y_train = torch.as_tensor(tr.y, device=self.device)
        # Unlabelled student inputs (config.student_unlabelled): one batch of them per step, drawn with
        # replacement from a stream of their own, so the labelled student batches are the same as without them.
        self.x_unl = None if unl_x is None else torch.as_tensor(unl_x, dtype=torch.float32, device=self.device)
        self.generator_u = torch.Generator().manual_seed(seed + UNLABELLED_BATCHES)
        # Their teacher features come from a stream of their own too: the labelled batches' teacher draws
        # are the same with and without unlabelled data.
        self.sampler_u = TeacherBatchSampler("unpaired", self.bank_y_np, self.task.num_classes, seed=seed, stream=1)
        if self.dist is not None and unl_x is not None and min(cfg.batch_size, len(unl_x)) < 2 * self.dist.world_size:
            raise ValueError(f"student_unlabelled=True under torchrun: each of the {self.dist.world_size} ranks needs at "
                             f"least 2 unlabelled samples per step, and min(batch_size, unlabelled samples) = "
                             f"{min(cfg.batch_size, len(unl_x))}: raise batch_size or lower student_fraction")

    def _plan_budget(self) -> None:
        """The epochs to run: ``config.epochs``, raised so that the student takes at least
        ``config.min_steps`` optimiser steps; a warning when the budget is a handful of steps."""
        cfg, spe = self.config, self.steps_per_epoch
        self.epochs = planned_epochs(cfg, spe)  # refuses a budget over MAX_EPOCHS
        if spe <= 2 and self.epochs * spe < UNDER_TRAINED_STEPS:
            n = self.x_train.shape[0]
            why = (f"student_fraction={cfg.student_fraction!r} leaves {n} labelled training samples"
                   if cfg.student_fraction < 1 else f"the student has {n} training samples")
            warnings.warn(f"{why}: {spe} optimiser step(s) per epoch at batch_size={cfg.batch_size}, "
                          f"{self.epochs * spe} steps in {self.epochs} epochs; the student may be under-trained "
                          f"and comparisons at this budget say little: set min_steps (e.g. min_steps=300) to "
                          "raise the epochs", RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------------ helpers
    def clip_gradients(self) -> None:
        """Average gradients over ranks (under torchrun), then clip; every step calls it before its update."""
        if getattr(self, "dist", None) is not None:
            self.dist.average_gradients(self.params)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)

    def stop(self) -> None:
        """Ask the loop to stop after the current step (the notebook's Stop)."""
        self._stop = True

    def student_features(self, split: str = "val") -> torch.Tensor:
        return batched_features(self.student, self.task.student[split].x, self.device)

    def teacher_features(self, split: str = "val") -> torch.Tensor:
        return batched_features(self.teacher, self.task.teacher[split].x, self.device)

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch (the ragged last batch is dropped)."""
        return max(1, self.x_train.shape[0] // self.config.batch_size)

    def batches(self):
        n, B = self.x_train.shape[0], self.config.batch_size
        perm = torch.randperm(n, generator=self.generator)
        nb = max(1, n // B)  # drop the ragged last batch (OT needs >= 2 points)
        idxs = [perm[i * B:(i + 1) * B] for i in range(nb)]
        lazy = is_lazy(self.x_train)  # lazy: DataLoader workers decode the batches, in this order
        xbs = iterate_batches(self.x_train, [i.numpy() for i in idxs], self.device) if lazy else iter(idxs)
        for idx, xb in zip(idxs, xbs):
            idx_np = idx.numpy()
            idx_t = torch.as_tensor(self.sampler.draw(idx_np, self.task.student["train"].y[idx_np]))
            idx_d, idx_t_d = idx.to(self.device), idx_t.to(self.device)
            batch = Batch(x_s=xb if lazy else self.x_train[idx_d], y_s=self.y_train[idx_d], z_t=self.bank[idx_t_d],
                          y_t=self.bank_y[idx_t_d], idx_s=idx_d, idx_t=idx_t_d)
            if self.x_unl is not None:
                iu = torch.randint(self.x_unl.shape[0], (min(B, self.x_unl.shape[0]),), generator=self.generator_u)
                tu = torch.as_tensor(self.sampler_u.unpaired(iu.numel())).to(self.device)
                iu_d = iu.to(self.device)
                batch.x_u, batch.z_tu = self.x_unl[iu_d], self.bank[tu]
                if self.bank_up is not None:
                    batch.zp_u = self.bank_up[iu_d]
            yield batch if self.dist is None else self.dist.shard(batch)  # this rank's slice of the global batch

    # ------------------------------------------------------------- state
    def _fingerprint(self) -> str:
        if getattr(self, "_fp", None) is None:
            self._fp = self.task.fingerprint()
            if getattr(self, "x_unl", None) is not None:  # the unlabelled inputs are training data too
                import hashlib
                h = hashlib.sha256(self._fp.encode())
                h.update(np.ascontiguousarray(self.x_unl.cpu().numpy()).tobytes())
                self._fp = h.hexdigest()[:16]
        return self._fp

    def state_dict(self) -> dict:
        """Everything needed to continue this run exactly.

        Tensors and plain values only, so ``torch.load(weights_only=True)``
        reads it: model, optimiser, schedule and torch RNG states, plus a JSON
        string ``meta`` (history, config, task identity, sampler and
        Python/NumPy RNG states, and the state of callbacks or a method that
        define ``state_dict``/``load_state_dict``).
        """
        s, su = self.sampler.state_dict(), self.sampler_u.state_dict()
        meta = {
            "task": self.task.name, "task_fingerprint": self._fingerprint(), "method": self.method_name,
            "code_version": code_version(),
            "config": self.config.to_dict(), "epoch": self.epoch, "wall_s": self.wall_s, "history": self.history,
            "sampler": {"rng": s["rng"], "stream": np.asarray(s["stream"]).tolist()},
            "sampler_u": {"rng": su["rng"], "stream": np.asarray(su["stream"]).tolist()},
            "global_rng": global_rng_state(),
            "method_state": self.method.state_dict() if hasattr(self.method, "state_dict") else None,
            "callbacks": {f"{i}:{type(cb).__name__}": cb.state_dict() for i, cb in enumerate(self.callbacks)
                          if hasattr(cb, "state_dict") and hasattr(cb, "load_state_dict")},
            "best_epoch": self._best_epoch,
        }
        return {
            "format": CHECKPOINT_FORMAT,
            "student": self.student.state_dict(),
            "best_student": self._best_state or {},  # the weights of the best-validation epoch (eval_test="best")
            "extra": [m.state_dict() for m in self.method.extra_modules()],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "generator_u": self.generator_u.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "meta": to_json(meta),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; a checkpoint of another task, data,
        method or config is refused with what differs, before anything changes."""
        try:
            meta = from_json(state["meta"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("checkpoint state has no readable 'meta' entry; it was not written by "
                             "Trainer.save_checkpoint of this cmkd_lab version") from None
        if meta.get("task") != self.task.name or meta.get("method") != self.method_name:
            raise ValueError(
                f"checkpoint is for task={meta.get('task')!r}, method={meta.get('method')!r}; this run is "
                f"task={self.task.name!r}, method={self.method_name!r}: resume with the same task and method"
            )
        if meta.get("code_version", "unknown") != code_version():
            raise StaleCheckpointError(
                f"checkpoint was written by another version of cmkd_lab's code (code version "
                f"{meta.get('code_version', 'unknown')}, now {code_version()}), so it cannot continue this run "
                "exactly: start the run again (--overwrite)")
        if meta.get("task_fingerprint") != self._fingerprint():
            raise ValueError(
                f"checkpoint was written for other data of task {self.task.name!r} (fingerprint "
                f"{meta.get('task_fingerprint')} vs {self._fingerprint()}): resume with the same task options "
                "(--fast, --data-root, task seed) or start a new run")
        ours = self.config.to_dict()
        theirs = DistillConfig.with_defaults(meta.get("config") or {})  # options added since: their defaults
        if theirs != ours:
            diff = sorted(k for k in set(ours) | set(theirs) if theirs.get(k) != ours.get(k))
            shown = ", ".join(f"{k}: {theirs.get(k)!r} -> {ours.get(k)!r}" for k in diff[:6])
            raise ValueError(f"checkpoint was written with a different config ({shown}); "
                             "resume with the same options or start a new run")
        extra = list(self.method.extra_modules())
        if len(state.get("extra", [])) != len(extra):
            raise ValueError(f"checkpoint holds {len(state.get('extra', []))} extra module(s), method "
                             f"{self.method_name!r} has {len(extra)}: it was written by another version of the method")
        try:
            self.student.load_state_dict(state["student"])
            for m, s in zip(extra, state["extra"]):
                m.load_state_dict(s)
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            rng = {k: state[k] for k in ("generator", "torch_rng")}
            rng["generator_u"] = state.get("generator_u")
            rng.update(cuda_rng=state.get("cuda_rng"), global_rng=meta["global_rng"], sampler=meta["sampler"],
                       sampler_u=meta.get("sampler_u"))
            self._set_rng(rng)
            if meta.get("method_state") is not None and hasattr(self.method, "load_state_dict"):
                self.method.load_state_dict(meta["method_state"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ValueError(f"checkpoint does not fit this run's model or optimiser ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}); start a new run") from None
        # fit() re-applies these after on_train_begin, which may draw random numbers or reset a callback.
        self._pending = {"rng": rng, "callbacks": meta.get("callbacks") or {}}
        self.history = list(meta["history"])
        self._best_state, self._best_epoch = (state.get("best_student") or None), meta.get("best_epoch")
        self.epoch = int(meta["epoch"])
        self.wall_s = float(meta["wall_s"])

    def save_checkpoint(self, path=None) -> Path:
        """Write :meth:`state_dict` atomically (temp file + rename) with a checksum."""
        path = path or self.checkpoint
        if path is None:
            raise ValueError("save_checkpoint needs a path: pass one or give Trainer(checkpoint=...)")
        return write_checkpoint(self.state_dict(), path)

    def resume(self, path=None) -> None:
        """Continue from a checkpoint file (verified, loaded with ``weights_only=True``)."""
        path = path or self.checkpoint
        if path is None:
            raise ValueError("resume needs a path: pass one or give Trainer(checkpoint=...)")
        self.load_state_dict(read_checkpoint(path, map_location=self.device))

    def _set_rng(self, rng: dict) -> None:
        self.generator.set_state(rng["generator"])
        if rng.get("generator_u") is not None:
            self.generator_u.set_state(rng["generator_u"])
        torch.set_rng_state(rng["torch_rng"])
        if self.device.type == "cuda" and rng.get("cuda_rng"):
            torch.cuda.set_rng_state_all(rng["cuda_rng"])
        set_global_rng_state(rng["global_rng"])
        self.sampler.load_state_dict(rng["sampler"])
        if rng.get("sampler_u") is not None:
            self.sampler_u.load_state_dict(rng["sampler_u"])

    def _apply_pending_state(self) -> None:
        # Called by fit() after on_train_begin: resumed RNG streams and callback states win.
        pending, self._pending = getattr(self, "_pending", None), None
        if not pending:
            return
        self._set_rng(pending["rng"])
        for i, cb in enumerate(self.callbacks):
            key = f"{i}:{type(cb).__name__}"
            if key in pending["callbacks"] and hasattr(cb, "load_state_dict"):
                cb.load_state_dict(pending["callbacks"][key])

    # -------------------------------------------------------------- loop
    def _evaluate(self, record: dict) -> None:
        """Validation every epoch (the student's features once: its head's accuracy and loss, and the teacher
        head on them). The test split is evaluated every epoch only with ``config.eval_test="every"`` (a
        per-epoch test curve); by default (``"best"``) only where a result reads it — the best-validation
        epoch and the last epoch — once, when training ends (:meth:`_finish_test`): a new best validation
        accuracy keeps a copy of the student's weights for it."""
        s, dev = self.task.student, self.device
        with torch.no_grad():
            z = self.student_features("val")  # (N_val, D), eval mode
            yv = torch.as_tensor(s["val"].y, device=dev)
            logits = self.student.head(z)
            record["val_acc"] = float((logits.argmax(1) == yv).float().mean())
            record["val_loss"] = float(torch.nn.functional.cross_entropy(logits, yv))
            record["teacher_head_on_student_acc"] = float((self.teacher.head(z).argmax(1) == yv).float().mean())
        if self.config.eval_test == "every":
            record["test_acc"], record["test_loss"] = evaluate(self.student, s["test"].x, s["test"].y, dev)
            return
        best = max((r["val_acc"] for r in self.history if "val_acc" in r), default=-1.0)
        if record["val_acc"] > best:  # the earliest epoch of the best validation accuracy, as result() reads it
            self._best_state = {k: v.detach().clone() for k, v in self.student.state_dict().items()}
            self._best_epoch = record["epoch"]

    def _test_into(self, record: dict) -> None:
        s = self.task.student
        record["test_acc"], record["test_loss"] = evaluate(self.student, s["test"].x, s["test"].y, self.device)
        self._tested.add(record["epoch"])

    def _finish_test(self) -> None:
        """With ``eval_test="best"``: the test split at the best-validation epoch (its kept weights) and at the
        last whole epoch (the current weights, unless a partial epoch or a divergence moved them since)."""
        if self.config.eval_test == "every":
            return
        evaluated = [r for r in self.history if "val_acc" in r]
        if not evaluated:
            return
        last = evaluated[-1]
        if last is self.history[-1] and "test_acc" not in last and self.dropped_steps == 0 \
                and self.status != "diverged":
            self._test_into(last)
        best = max(evaluated, key=lambda r: (r["val_acc"], -r["epoch"]))
        if "test_acc" not in best and self._best_state is not None and self._best_epoch == best["epoch"]:
            current = {k: v.detach().clone() for k, v in self.student.state_dict().items()}
            self.student.load_state_dict(self._best_state)
            try:
                self._test_into(best)
            finally:
                self.student.load_state_dict(current)

    def _reopen_history(self) -> None:
        """A run that goes on (fit() again after a stop): the test accuracies read when it stopped (its last
        epoch then, its best so far) are read again when it ends, where they are still the last or the best."""
        if not self._tested or self.config.eval_test == "every":
            return
        for r in self.history:
            if r.get("epoch") in self._tested:
                r.pop("test_acc", None)
                r.pop("test_loss", None)
        self._tested = set()

    def _audit_due(self) -> bool:
        """Whether this epoch's first step is audited: every ``config.audit_every`` epochs from the first,
        and the last epoch (0: never)."""
        n = self.config.audit_every
        return bool(n) and (self.epoch % n == 0 or self.epoch == self.epochs - 1)

    def _audit(self, batch) -> dict:
        """:func:`~cmkd_lab.distill.audit.audit_gradients` on ``batch`` with every state it could touch
        restored after it (random generators, BatchNorm statistics, the method's own state): the run goes
        on exactly as without the audit."""
        rng = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
               global_rng_state())
        modules = [self.student, *self.method.extra_modules()]
        buffers = [[v.clone() for v in m.buffers()] for m in modules]
        mstate = self.method.state_dict() if hasattr(self.method, "state_dict") else None
        try:
            return audit_gradients(self.method, batch)
        finally:
            torch.set_rng_state(rng[0])
            if rng[1] is not None:
                torch.cuda.set_rng_state_all(rng[1])
            set_global_rng_state(rng[2])
            with torch.no_grad():
                for m, saved in zip(modules, buffers):
                    for v, old in zip(m.buffers(), saved):
                        v.copy_(old)
            if mstate is not None:
                self.method.load_state_dict(mstate)

    def _train_epoch(self, check_every: int):
        """One pass over the batches: (sums of the loss terms, steps, whole epoch?, step of a non-finite term,
        the gradient audit of its first step or {})."""
        self.student.train()
        sums: Dict[str, torch.Tensor] = {}
        nsteps, whole, nonfinite_at, audit = 0, False, None, {}
        for step, batch in enumerate(self.batches()):
            if self._stop:  # checked before a step: a stop during the last step keeps the epoch whole
                break
            if step == 0 and self._audit_due():
                audit = self._audit(batch)
            terms = self.method.step(batch)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.float()
            nsteps += 1
            self.dropped_steps = nsteps  # steps an interrupt now would drop (0 once the epoch is recorded)
            for cb in self.callbacks:
                cb.on_step_end(self, step, terms)
            if sums and (step + 1) % check_every == 0:
                # Under torchrun the check is all-reduced, so every rank stops at the same step.
                vals = self.dist.average_terms(sums) if self.dist is not None else sums
                if not bool(torch.isfinite(torch.stack(list(vals.values()))).all()):
                    nonfinite_at = step + 1
                    break
        else:
            whole = True
        return sums, nsteps, whole, nonfinite_at, audit

    def _diverged(self, record: dict, bad, at: int) -> None:
        record["error"] = f"non-finite loss terms {bad} at step {at}"
        self.history.append(record)
        self.dropped_steps = 0
        self.status, self.error = "diverged", record["error"]
        from .methods.options import divergence_advice
        warnings.warn(f"training stopped at epoch {self.epoch}, step {at}: loss terms {bad} became NaN/inf; "
                      f"{divergence_advice(self.method_name)}. The history up to here is kept (status 'diverged').",
                      RuntimeWarning, stacklevel=3)

    def _run_epoch(self, check_every: int, bar) -> bool:
        """Train, record, evaluate, call back and checkpoint one epoch; False when the loop must end."""
        t0 = time.perf_counter()
        sums, nsteps, whole, nonfinite_at, audit = self._train_epoch(check_every)
        if not whole and nonfinite_at is None:  # stopped mid-epoch: drop the partial epoch
            return False
        if self.dist is not None:  # rank 0's BatchNorm buffers everywhere, terms averaged over ranks
            sums = self.dist.end_epoch(self.student, sums)
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
        self.scheduler.step()
        record = {"epoch": self.epoch + 1, "steps": nsteps, "lr": lr}
        record.update({k: float(v) / max(1, nsteps) for k, v in sums.items()})
        bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
        record.update(audit)  # after the finiteness check of the loss terms: an audit number never ends a run
        self.epoch += 1
        self.wall_s += time.perf_counter() - t0
        if bad or nonfinite_at is not None:
            self._diverged(record, bad, nonfinite_at or nsteps)
            return False
        self._evaluate(record)
        record["time_s"] = time.perf_counter() - t0
        for cb in self.callbacks:  # every epoch; diagnostics keep their own interval
            cb.on_epoch_end(self, record)
        self.history.append(record)
        self.dropped_steps = 0
        if self.checkpoint:
            self.save_checkpoint()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val=f"{record['val_acc']:.3f}")
        return True

    def fit(self) -> dict:
        """Train for the remaining epochs; returns the result dict (also on interrupt).

        Ctrl-C (``KeyboardInterrupt``) and :meth:`stop` (the notebook's Stop;
        SIGTERM under ``run_one``) end the run with status ``"interrupted"``;
        an epoch cut short is dropped, never recorded as whole, so the
        checkpoint of the last whole epoch continues exactly. A loss term that
        becomes NaN/inf ends it with status ``"diverged"`` and a
        ``RuntimeWarning`` (checked every step on the CPU, every
        ``finite_check_every`` steps on a GPU); the history is kept. Any other
        error sets status ``"failed"`` and ``error``, then propagates.
        """
        if self.status == "diverged":
            warnings.warn("this run diverged; fit() does not continue it: build a new Trainer with other options",
                          RuntimeWarning, stacklevel=2)
            return self.result()
        self.status, self.dropped_steps, self.error = "running", 0, None
        self._reopen_history()
        check_every = 1 if self.device.type == "cpu" else self.finite_check_every  # each check is a host sync
        for cb in self.callbacks:
            cb.on_train_begin(self)
        self._apply_pending_state()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=self.epochs, initial=self.epoch, desc=f"{self.method_name}", leave=False)
        try:
            while self.epoch < self.epochs and not self._stop:
                if not self._run_epoch(check_every, bar):
                    break
        except KeyboardInterrupt:
            self.status = "interrupted"
        except Exception as e:
            self.status, self.error = "failed", f"{type(e).__name__}: {e}"
            try:  # the epochs trained so far keep their test accuracy
                self._finish_test()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            raise
        finally:
            if bar is not None:
                bar.close()
        if self.status == "running":
            self.status = "completed" if self.epoch >= self.epochs else "interrupted"
        self._stop = False  # a later fit() continues
        try:
            self._finish_test()
        except KeyboardInterrupt:  # a second Ctrl-C while testing: the test accuracies stay unread
            self.status = "interrupted"
        result = self.result()
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def result(self) -> dict:
        """The run's result (schema of ``result.json``), with what the callbacks contribute
        (:meth:`Callback.result_entries`)."""
        out = self._own_result()
        for cb in self.callbacks:
            entries = cb.result_entries(self) if hasattr(cb, "result_entries") else {}
            clash = sorted(set(entries) & set(out))
            if clash:
                raise ValueError(f"callback {type(cb).__name__} contributes result entries {clash} that the run "
                                 "already holds: give them other names")
            out.update(entries)
        return out

    def _own_result(self) -> dict:
        h = [r for r in self.history if "val_acc" in r]
        best = max(h, key=lambda r: (r["val_acc"], -r["epoch"])) if h else None
        last = h[-1] if h else None
        cfg = self.config
        return {
            "task": self.task.name,
            "method": self.method_name,
            "seed": cfg.seed,
            "pairing": cfg.pairing,
            "epochs": self.epochs,
            "epochs_requested": cfg.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "steps_total": self.epochs * self.steps_per_epoch,
            "epochs_done": self.epoch,
            "status": self.status,
            "interrupted": self.status == "interrupted",
            "error": getattr(self, "error", None),
            "dropped_steps": getattr(self, "dropped_steps", 0),
            "student_test_acc": best["test_acc"] if best else None,
            "student_val_acc": best["val_acc"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "student_test_acc_last": last.get("test_acc") if last else None,  # None where no test was read
            # (a run stopped inside an epoch, or that diverged: its weights are not those of its last record)
            "student_val_acc_last": last["val_acc"] if last else None,
            "teacher_test_acc": self.teacher_info.get("teacher_test_acc"),
            "teacher_val_acc": self.teacher_info.get("teacher_val_acc"),
            "student_fraction": cfg.student_fraction,
            "n_student_unlabelled": int(self.x_unl.shape[0]) if self.x_unl is not None else 0,
            "history": self.history,
            "config": cfg.to_dict(),
            "task_summary": self.task.summary(),
            "task_info": self.task.info,
            "identity": self.identity(),
            "versions": versions(),
            "device": str(self.device),
            "wall_s": self.wall_s,
            "s_per_epoch": self.wall_s / max(1, self.epoch),
        }


    def identity(self) -> dict:
        """What this run's result depends on: task data and encoders, method, config and code version
        (:func:`cmkd_lab.store.compare_identity` tells a stored run made by other code from a current one)."""
        return {"task": self.task.name, "task_fingerprint": self._fingerprint(),
                "encoders": [repr(self.task.teacher_encoder), repr(self.task.student_encoder)],
                "method": self.method_name, "config": self.config.to_dict(), "code_version": code_version()}
