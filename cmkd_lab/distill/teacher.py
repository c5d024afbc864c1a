"""Teacher training on the teacher modality, selected on validation only,
cached per task / seed / recipe so that every method shares it."""
from __future__ import annotations

import copy
import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..data.lazy import is_lazy
from ..data.loader import EVAL_BATCH_LAZY, iterate_batches
from .._atomic import atomic_write_bytes
from .._seeds import TEACHER_TORCH
from ..models import Classifier, build_classifier
from ..store import cache_dir, code_version, locked
from .runtime import resolve_device

__all__ = ["train_teacher", "get_teacher", "teacher_key", "evaluate", "batched_features"]


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


def teacher_key(task, cfg) -> str:
    """The teacher cache key: the teacher side's data, its encoder, the seed, the teacher recipe and
    :func:`cmkd_lab.store.code_version` (a teacher trained by other code is never read back)."""
    recipe = dict(task=task.name, data=task.fingerprint(sides=("teacher",)), seed=cfg.seed, D=cfg.feature_dim,
                  epochs=cfg.teacher_epochs, lr=cfg.teacher_lr, bs=cfg.batch_size, enc=repr(task.teacher_encoder),
                  code=code_version(), v=3)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def train_teacher(task, cfg, device=None, progress=None) -> Tuple[Classifier, dict]:
    """Train a teacher on ``task.teacher`` with Adam; keep the best-validation epoch.

    Returns the model (eval mode, frozen) and a dict with val/test accuracy.
    """
    device = resolve_device(cfg.device) if device is None else device
    g = torch.Generator().manual_seed(cfg.seed + TEACHER_TORCH)
    torch.manual_seed(cfg.seed + TEACHER_TORCH)
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


def _save(obj, path: Path) -> bool:
    """Write a cache entry atomically; a cache that cannot be written is a warning, not an error."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        warnings.warn(f"the teacher cache {str(path.parent)!r} cannot be written ({e.strerror or e}); this teacher "
                      "is not cached and will be trained again next time: point CMKD_LAB_CACHE at a writable "
                      "folder", RuntimeWarning, stacklevel=3)
        return False
    return True


def _load(path: Path, task, cfg, device):
    """The cached teacher at ``path``, or None (absent or unreadable: a damaged entry is rebuilt)."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
        model = build_classifier(task.teacher_encoder, cfg.feature_dim, task.num_classes).to(device)
        model.load_state_dict(blob["state_dict"])
    except Exception:  # a corrupted cache entry is rebuilt, not trusted
        try:
            path.unlink()
        except OSError:
            pass
        return None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, dict(blob["info"], teacher_cached=True)


def get_teacher(task, cfg, device=None, *, cache: bool = True, progress=None) -> Tuple[Classifier, dict]:
    """The cached teacher for (task data, seed, teacher recipe, code version), training it if needed.

    Two processes asking for the same teacher at once train it once: the second waits for the first
    (a lock on the cache entry) and reads what it wrote. A cache folder that cannot be written gives a
    warning and the teacher is used without being cached.
    """
    device = resolve_device(cfg.device) if device is None else device
    if not cache:
        model, info = train_teacher(task, cfg, device, progress=progress)
        return model, dict(info, teacher_cached=False)
    path = cache_dir() / "teachers" / f"{task.name}-{teacher_key(task, cfg)}.pt"
    with locked(path):
        found = _load(path, task, cfg, device)
        if found is not None:
            return found
        model, info = train_teacher(task, cfg, device, progress=progress)
        _save({"state_dict": model.state_dict(), "info": info}, path)
    return model, dict(info, teacher_cached=False)
