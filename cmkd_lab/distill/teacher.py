"""Teacher training on the teacher modality, selected on validation only,
cached per task / seed / recipe so that every method shares it."""
from __future__ import annotations

import copy
import hashlib
import io
import json
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..data.lazy import is_lazy
from ..data.loader import EVAL_BATCH_LAZY, iterate_batches
from .._atomic import atomic_write_bytes
from ..models import Classifier, build_classifier
from .runtime import cache_dir, resolve_device

__all__ = ["train_teacher", "get_teacher", "evaluate", "batched_features"]


@torch.no_grad()
def batched_features(model: Classifier, x, device, batch: int = 1024) -> torch.Tensor:
    """Features (N, D) of ``x`` (numpy, tensor or LazyArray) in eval mode, on ``device``."""
    was = model.training
    model.eval()
    out = []
    if is_lazy(x):  # decoded by DataLoader workers, in order
        bs = min(batch, EVAL_BATCH_LAZY)
        for xb in iterate_batches(x, [np.arange(i, min(i + bs, len(x))) for i in range(0, len(x), bs)], device):
            out.append(model.features(xb).float())
    else:
        for i in range(0, len(x), batch):
            xb = torch.as_tensor(np.asarray(x[i:i + batch]) if not isinstance(x, torch.Tensor) else x[i:i + batch],
                                 dtype=torch.float32, device=device)
            out.append(model.features(xb).float())
    model.train(was)
    return torch.cat(out, 0)


@torch.no_grad()
def evaluate(model: Classifier, x, y, device, batch: int = 1024) -> Tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``x``, ``y``."""
    z = batched_features(model, x, device, batch)
    logits = model.head(z)
    yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y, device=device)
    acc = float((logits.argmax(1) == yt).float().mean())
    loss = float(F.cross_entropy(logits, yt))
    return acc, loss


def _teacher_key(task, cfg) -> str:
    recipe = dict(task=task.name, data=task.fingerprint(sides=("teacher",)), seed=cfg.seed, D=cfg.feature_dim,
                  epochs=cfg.teacher_epochs, lr=cfg.teacher_lr, bs=cfg.batch_size, enc=repr(task.teacher_encoder),
                  v=2)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def train_teacher(task, cfg, device=None, progress=None) -> Tuple[Classifier, dict]:
    """Train a teacher on ``task.teacher`` with Adam; keep the best-validation epoch.

    Returns the model (eval mode, frozen) and a dict with val/test accuracy.
    """
    device = resolve_device(cfg.device) if device is None else device
    g = torch.Generator().manual_seed(cfg.seed + 1)
    torch.manual_seed(cfg.seed + 1)
    model = build_classifier(task.teacher_encoder, cfg.feature_dim, task.num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.teacher_lr)
    tr = task.teacher["train"]
    lazy = is_lazy(tr.x)
    x = tr.x if lazy else torch.as_tensor(tr.x, dtype=torch.float32, device=device)
    y = torch.as_tensor(tr.y, device=device)
    n, B = len(tr), cfg.batch_size
    best, best_state, hist = -1.0, None, []
    for ep in range(cfg.teacher_epochs):
        model.train()
        perm = torch.randperm(n, generator=g).to(device)
        nb = max(1, n // B)
        idxs = [perm[i * B:(i + 1) * B] for i in range(nb)]
        xbs = iterate_batches(x, [i.cpu().numpy() for i in idxs], device) if lazy else (x[i] for i in idxs)
        for idx, xb in zip(idxs, xbs):
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        va, _ = evaluate(model, task.teacher["val"].x, task.teacher["val"].y, device)
        hist.append(va)
        if va > best:
            best, best_state = va, copy.deepcopy(model.state_dict())
        if progress is not None:
            progress(ep + 1, cfg.teacher_epochs)
    model.load_state_dict(best_state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    te, _ = evaluate(model, task.teacher["test"].x, task.teacher["test"].y, device)
    info = {"teacher_val_acc": best, "teacher_test_acc": te, "teacher_best_epoch": int(np.argmax(hist)) + 1,
            "teacher_epochs": cfg.teacher_epochs}
    return model, info


def _atomic_save(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def get_teacher(task, cfg, device=None, *, cache: bool = True, progress=None) -> Tuple[Classifier, dict]:
    """The cached teacher for (task data, seed, teacher recipe), training it if needed."""
    device = resolve_device(cfg.device) if device is None else device
    key = _teacher_key(task, cfg)
    path = cache_dir() / "teachers" / f"{task.name}-{key}.pt"
    if cache and path.is_file():
        try:
            blob = torch.load(path, map_location=device, weights_only=True)
            model = build_classifier(task.teacher_encoder, cfg.feature_dim, task.num_classes).to(device)
            model.load_state_dict(blob["state_dict"])
            model.eval()
            for p in model.parameters():
                p.requires_grad_(False)
            return model, dict(blob["info"], teacher_cached=True)
        except Exception:  # a corrupted cache entry is rebuilt, not trusted
            path.unlink(missing_ok=True)
    model, info = train_teacher(task, cfg, device, progress=progress)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save({"state_dict": model.state_dict(), "info": info}, path)
    return model, dict(info, teacher_cached=False)
