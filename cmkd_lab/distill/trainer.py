"""The trainer: task → teacher → feature bank → method steps → history.

Short on purpose. Everything a callback or a diagnostic needs is an
attribute: ``task``, ``config``, ``device``, ``teacher``, ``student``,
``method``, ``bank`` (teacher features (M, D)), ``bank_y``, ``history``.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.sampling import TeacherBatchSampler
from ..models import build_classifier, check_compatible
from .config import DistillConfig
from .methods import Batch, get_method
from .runtime import resolve_device, seed_everything, versions
from .teacher import batched_features, evaluate, get_teacher

__all__ = ["Trainer", "Callback", "distill", "PairingError"]


class PairingError(ValueError):
    """A method or pairing the task cannot provide."""


class Callback:
    """Hooks; override what you need. ``record`` may be extended in place."""

    def on_train_begin(self, trainer): ...

    def on_step_end(self, trainer, step: int, terms: Dict[str, torch.Tensor]): ...

    def on_epoch_end(self, trainer, record: dict): ...

    def on_train_end(self, trainer, result: dict): ...


def _lr_factor(cfg: DistillConfig, epoch: int) -> float:
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / cfg.warmup_epochs
    if cfg.schedule == "cosine":
        span = max(1, cfg.epochs - cfg.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))
    return 1.0


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
        from ..data.task import CrossModalTask

        if not isinstance(task, CrossModalTask):
            raise TypeError(f"task must be a CrossModalTask (see cmkd_lab.data.load_task); got {type(task).__name__}")
        self.config = cfg = (config or DistillConfig()).validate()
        method_cls = get_method(method)
        self.method_name = method
        if cfg.pairing == "paired" and not task.has_pairs:
            raise PairingError(
                f"pairing='paired' needs a task with paired samples, and task {task.name!r} has none; "
                "use pairing='unpaired' or 'class-matched'"
            )
        if method_cls.needs_pairs and cfg.pairing == "unpaired":
            raise PairingError(
                f"method {method!r} needs a teacher sample tied to each student sample; it cannot run with "
                "pairing='unpaired'. Use pairing='paired' (or 'class-matched' for class-level pseudo-pairs)"
            )
        self.task = task.with_student_fraction(cfg.student_fraction, cfg.seed)
        self.device = resolve_device(cfg.device)
        self.amp = bool(cfg.amp and self.device.type == "cuda")
        self.callbacks = list(callbacks)
        self.progress = progress
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self._stop = False

        # Teacher (frozen, eval) and its feature bank, computed once.
        self.teacher, self.teacher_info = teacher if teacher is not None else get_teacher(self.task, cfg, self.device)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        if cfg.pairing == "paired":
            bank_x, self.bank_y_np = self.task.paired_teacher_x["train"], self.task.student["train"].y
        else:
            bank_x, self.bank_y_np = self.task.teacher["train"].x, self.task.teacher["train"].y
        self.bank = batched_features(self.teacher, bank_x, self.device)  # (M, D)
        self.bank_y = torch.as_tensor(self.bank_y_np, device=self.device)
        self.sampler = TeacherBatchSampler(cfg.pairing, self.bank_y_np, self.task.num_classes, seed=cfg.seed)

        # Student.
        seed_everything(cfg.seed)
        self.student = build_classifier(self.task.student_encoder, cfg.feature_dim, self.task.num_classes).to(self.device)
        xs = torch.as_tensor(self.task.student["train"].x[:2], dtype=torch.float32, device=self.device)
        xt = torch.as_tensor(bank_x[:2], dtype=torch.float32, device=self.device)
        check_compatible(self.teacher, self.student, xt, xs)
        self.method = method_cls(self)
        params = list(self.student.parameters()) + [p for m in self.method.extra_modules() for p in m.parameters()]
        self.params = params
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: _lr_factor(cfg, e))
        self.generator = torch.Generator().manual_seed(cfg.seed + 17)

        tr = self.task.student["train"]
        self.x_train = torch.as_tensor(tr.x, dtype=torch.float32, device=self.device)
        self.y_train = torch.as_tensor(tr.y, device=self.device)
        self.history: List[dict] = []
        self.epoch = 0
        self.wall_s = 0.0
        self.status = "running"

    # ------------------------------------------------------------ helpers
    def clip_gradients(self) -> None:
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)

    def stop(self) -> None:
        """Ask the loop to stop after the current step (the notebook's Stop)."""
        self._stop = True

    def student_features(self, split: str = "val") -> torch.Tensor:
        return batched_features(self.student, self.task.student[split].x, self.device)

    def teacher_features(self, split: str = "val") -> torch.Tensor:
        return batched_features(self.teacher, self.task.teacher[split].x, self.device)

    def batches(self):
        n, B = self.x_train.shape[0], self.config.batch_size
        perm = torch.randperm(n, generator=self.generator)
        nb = max(1, n // B)  # drop the ragged last batch (OT needs >= 2 points)
        for i in range(nb):
            idx = perm[i * B:(i + 1) * B]
            idx_np = idx.numpy()
            idx_t = torch.as_tensor(self.sampler.draw(idx_np, self.task.student["train"].y[idx_np]))
            idx_d, idx_t_d = idx.to(self.device), idx_t.to(self.device)
            yield Batch(x_s=self.x_train[idx_d], y_s=self.y_train[idx_d], z_t=self.bank[idx_t_d],
                        y_t=self.bank_y[idx_t_d], idx_s=idx_d, idx_t=idx_t_d)

    # ------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            "student": self.student.state_dict(),
            "extra": [m.state_dict() for m in self.method.extra_modules()],
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "sampler": self.sampler.state_dict(),
            "history": self.history,
            "epoch": self.epoch,
            "wall_s": self.wall_s,
            "task": self.task.name,
            "method": self.method_name,
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("task") != self.task.name or state.get("method") != self.method_name:
            raise ValueError(
                f"checkpoint is for task={state.get('task')!r}, method={state.get('method')!r}; this run is "
                f"task={self.task.name!r}, method={self.method_name!r}: resume with the same task and method"
            )
        if state.get("config") != self.config.to_dict():
            diff = sorted(k for k, v in self.config.to_dict().items() if state.get("config", {}).get(k) != v)
            raise ValueError(f"checkpoint was written with a different config (differs in {diff}); "
                             "resume with the same options or start a new run")
        self.student.load_state_dict(state["student"])
        for m, s in zip(self.method.extra_modules(), state["extra"]):
            m.load_state_dict(s)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.sampler.load_state_dict(state["sampler"])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        self.wall_s = float(state["wall_s"])

    def save_checkpoint(self, path=None) -> None:
        path = Path(path or self.checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def resume(self, path=None) -> None:
        path = Path(path or self.checkpoint)
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as e:
            raise ValueError(f"checkpoint {str(path)!r} cannot be read ({type(e).__name__}: {e}); "
                             "it may be truncated or corrupted: delete it and start again") from None
        self.load_state_dict(state)

    # -------------------------------------------------------------- loop
    def _evaluate(self, record: dict) -> None:
        s = self.task.student
        for split in ("train", "val", "test"):
            if split == "train":
                continue
            acc, loss = evaluate(self.student, s[split].x, s[split].y, self.device)
            record[f"{split}_acc"], record[f"{split}_loss"] = acc, loss
        with torch.no_grad():
            z = self.student_features("val")
            pt = self.teacher.head(z)
            yv = torch.as_tensor(s["val"].y, device=self.device)
            record["teacher_head_on_student_acc"] = float((pt.argmax(1) == yv).float().mean())

    def fit(self) -> dict:
        """Train for the remaining epochs; returns the result dict (also on interrupt)."""
        cfg = self.config
        for cb in self.callbacks:
            cb.on_train_begin(self)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=cfg.epochs, initial=self.epoch, desc=f"{self.method_name}", leave=False)
        try:
            while self.epoch < cfg.epochs and not self._stop:
                t0 = time.perf_counter()
                self.student.train()
                sums: Dict[str, torch.Tensor] = {}
                nsteps = 0
                for step, batch in enumerate(self.batches()):
                    terms = self.method.step(batch)
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + v.float()
                    nsteps += 1
                    for cb in self.callbacks:
                        cb.on_step_end(self, step, terms)
                    if self._stop:
                        break
                self.scheduler.step()
                record = {"epoch": self.epoch + 1, "steps": nsteps,
                          "lr": self.optimizer.param_groups[0]["lr"]}
                record.update({k: float(v) / max(1, nsteps) for k, v in sums.items()})
                bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
                self.epoch += 1
                self.wall_s += time.perf_counter() - t0
                if bad:
                    record["error"] = f"non-finite loss terms {bad}"
                    self.history.append(record)
                    self.status = "diverged"
                    warnings.warn(
                        f"training stopped at epoch {self.epoch}: loss terms {bad} became NaN/inf; lower lr or "
                        "lambda_fa, or raise eps. The history up to here is kept.", RuntimeWarning, stacklevel=2)
                    break
                self._evaluate(record)
                record["time_s"] = time.perf_counter() - t0
                if cfg.diagnostics_every and self.epoch % cfg.diagnostics_every == 0 or self.epoch == cfg.epochs:
                    for cb in self.callbacks:
                        cb.on_epoch_end(self, record)
                self.history.append(record)
                if self.checkpoint:
                    self.save_checkpoint()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(val=f"{record['val_acc']:.3f}")
        except KeyboardInterrupt:
            self.status = "interrupted"
        finally:
            if bar is not None:
                bar.close()
        if self.status == "running":
            self.status = "interrupted" if self._stop and self.epoch < cfg.epochs else "completed"
        result = self.result()
        for cb in self.callbacks:
            cb.on_train_end(self, result)
        return result

    def result(self) -> dict:
        """The run's result (schema of ``result.json``)."""
        h = [r for r in self.history if "val_acc" in r]
        best = max(h, key=lambda r: (r["val_acc"], -r["epoch"])) if h else None
        last = h[-1] if h else None
        cfg = self.config
        return {
            "task": self.task.name,
            "method": self.method_name,
            "seed": cfg.seed,
            "pairing": cfg.pairing,
            "epochs": cfg.epochs,
            "epochs_done": self.epoch,
            "status": self.status,
            "interrupted": self.status == "interrupted",
            "student_test_acc": best["test_acc"] if best else None,
            "student_val_acc": best["val_acc"] if best else None,
            "best_epoch": best["epoch"] if best else None,
            "student_test_acc_last": last["test_acc"] if last else None,
            "student_val_acc_last": last["val_acc"] if last else None,
            "teacher_test_acc": self.teacher_info.get("teacher_test_acc"),
            "teacher_val_acc": self.teacher_info.get("teacher_val_acc"),
            "student_fraction": cfg.student_fraction,
            "history": self.history,
            "config": cfg.to_dict(),
            "task_summary": self.task.summary(),
            "task_info": self.task.info,
            "versions": versions(),
            "device": str(self.device),
            "wall_s": self.wall_s,
            "s_per_epoch": self.wall_s / max(1, self.epoch),
        }


def distill(task, method: str = "ucmkd", config: Optional[DistillConfig] = None, **kwargs) -> dict:
    """One-call API: ``distill(load_task("hapt"), "ucmkd", DistillConfig(epochs=10))`` → result dict."""
    return Trainer(task, method, config, **kwargs).fit()
