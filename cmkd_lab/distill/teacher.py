"""Teacher training on the teacher modality, selected on validation only,
cached per task / seed / recipe / code version so that every method shares it — and the teacher
**controls** that tell whose knowledge a gain is (``DistillConfig.teacher_control``):

* ``none`` — the real teacher;
* ``random`` — the same architecture, initialised and never trained: features and head that know nothing;
* ``shuffled-labels`` — trained with its recipe on its data with the labels shuffled across samples (val
  labels too): a trained network that knows nothing about the classes;
* ``permuted-classes`` — the real teacher with its class indices renamed by a fixed derangement σ of
  the classes (its head's output k is the real head's output σ⁻¹(k)): all of its knowledge, under the
  wrong class names.

A control also renames what the teacher says about its own data: under ``random`` and
``shuffled-labels`` the teacher-side labels that methods read (the feature bank's labels, used by
class-matched pairing and by class-aware methods) are the shuffled ones; under ``permuted-classes`` they
are σ(y). ``info["bank_labels"]`` says which, and the trainer applies it (:func:`bank_labels`).
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import warnings
from pathlib import Path
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..data.lazy import is_lazy
from ..data.loader import EVAL_BATCH_LAZY, iterate_batches
from .._atomic import atomic_write_bytes
from .._seeds import CONTROL_STREAM, TEACHER_TORCH, numpy_rng
from ..models import Classifier, build_classifier
from .._names import safe_name
from ..store import cache_dir, code_version, locked
from .config import TEACHER_CONTROLS  # declared once, with the option's rule
from .runtime import resolve_device

__all__ = ["train_teacher", "get_teacher", "teacher_key", "evaluate", "batched_features", "TEACHER_CONTROLS",
           "bank_labels", "class_derangement", "shuffled_labels"]


def class_derangement(num_classes: int, seed: int) -> np.ndarray:
    """σ: a permutation of ``0..K-1`` with no fixed point, fixed by ``seed`` (``σ[k]`` is class k's new name)."""
    rng = numpy_rng(seed, CONTROL_STREAM, 1)
    while True:
        sigma = rng.permutation(num_classes)
        if not np.any(sigma == np.arange(num_classes)):
            return sigma


def shuffled_labels(y: np.ndarray, seed: int, split: str) -> np.ndarray:
    """``y`` shuffled across samples by a permutation fixed by ``seed`` and the split's name."""
    rng = numpy_rng(seed, CONTROL_STREAM, 2, ("train", "val", "test", "bank").index(split))
    return np.asarray(y)[rng.permutation(len(y))]


def bank_labels(y: np.ndarray, info: dict, seed: int) -> np.ndarray:
    """The teacher-side labels a control's teacher gives the samples ``y`` (the bank's labels)."""
    how = info.get("bank_labels", "true")
    if how == "permuted":
        return np.asarray(info["class_permutation"])[np.asarray(y)]
    if how == "shuffled":
        return shuffled_labels(y, seed, "bank")
    return np.asarray(y)


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
                  epochs=cfg.teacher_epochs, lr=cfg.teacher_lr, schedule=cfg.teacher_schedule, bs=cfg.batch_size,
                  enc=repr(task.teacher_encoder), control=cfg.teacher_control, code=code_version(), v=3)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:20]


def train_teacher(task, cfg, device=None, progress=None) -> Tuple[Classifier, dict]:
    """Train a teacher on ``task.teacher`` with Adam (``teacher_lr``, ``teacher_schedule``: cosine decay to
    zero by default); keep the best-validation epoch.

    ``cfg.teacher_control`` ``random`` returns the initialised network untrained, ``shuffled-labels``
    trains and selects it on shuffled labels (``permuted-classes`` is built from the real teacher by
    :func:`get_teacher`). Returns the model (eval mode, frozen) and a dict with val/test accuracy on the
    true labels.
    """
    device = resolve_device(cfg.device) if device is None else device
    g = torch.Generator().manual_seed(cfg.seed + TEACHER_TORCH)
    torch.manual_seed(cfg.seed + TEACHER_TORCH)
    model = build_classifier(task.teacher_encoder, cfg.feature_dim, task.num_classes).to(device)
    control = cfg.teacher_control
    if control == "random":
        return _frozen(model, task, device, {"teacher_control": control, "bank_labels": "shuffled",
                                             "teacher_epochs": 0, "teacher_best_epoch": 0})
    opt = torch.optim.Adam(model.parameters(), lr=cfg.teacher_lr)
    E = cfg.teacher_epochs
    decay = (lambda ep: 0.5 * (1 + math.cos(math.pi * ep / E))) if cfg.teacher_schedule == "cosine" else (lambda ep: 1.0)
    tr = task.teacher["train"]
    lazy = is_lazy(tr.x)
    x = tr.x if lazy else torch.as_tensor(tr.x, dtype=torch.float32, device=device)
    shuffle = control == "shuffled-labels"
    y = torch.as_tensor(shuffled_labels(tr.y, cfg.seed, "bank") if shuffle else tr.y, device=device)
    y_val = shuffled_labels(task.teacher["val"].y, cfg.seed, "val") if shuffle else task.teacher["val"].y
    n, B = len(tr), cfg.batch_size
    best, best_state, hist = -1.0, None, []
    for ep in range(cfg.teacher_epochs):
        for group in opt.param_groups:
            group["lr"] = cfg.teacher_lr * decay(ep)
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
        va, _ = evaluate(model, task.teacher["val"].x, y_val, device)
        hist.append(va)
        if va > best:
            best, best_state = va, copy.deepcopy(model.state_dict())
        if progress is not None:
            progress(ep + 1, cfg.teacher_epochs)
    model.load_state_dict(best_state)
    return _frozen(model, task, device, {"teacher_control": control, "teacher_best_epoch": int(np.argmax(hist)) + 1,
                                         "teacher_epochs": cfg.teacher_epochs,
                                         "bank_labels": "shuffled" if shuffle else "true",
                                         **({"teacher_val_acc_shuffled": best} if shuffle else {})})


def _frozen(model, task, device, info: dict):
    """``model`` in eval mode, frozen, with its accuracy on the true val and test labels added to ``info``."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    va, _ = evaluate(model, task.teacher["val"].x, task.teacher["val"].y, device)
    te, _ = evaluate(model, task.teacher["test"].x, task.teacher["test"].y, device)
    return model, {"teacher_val_acc": va, "teacher_test_acc": te, **info}


def _permuted(model, info: dict, task, cfg, device):
    """The real teacher under the wrong class names: a copy whose head gives class σ(k) the real class k's
    logit (σ = :func:`class_derangement`)."""
    sigma = class_derangement(task.num_classes, cfg.seed)
    model = copy.deepcopy(model)
    with torch.no_grad():
        inv = torch.as_tensor(np.argsort(sigma), device=model.head.weight.device)
        model.head.weight.copy_(model.head.weight[inv])  # new row σ(k) = old row k
        model.head.bias.copy_(model.head.bias[inv])
    keep = {k: v for k, v in info.items() if k not in ("teacher_val_acc", "teacher_test_acc")}
    return _frozen(model, task, device, dict(keep, teacher_control="permuted-classes", bank_labels="permuted",
                                             class_permutation=sigma.tolist(),
                                             real_teacher_test_acc=info.get("teacher_test_acc")))


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
    if cfg.teacher_control == "permuted-classes":  # the real teacher (cached as such), renamed
        model, info = get_teacher(task, cfg.replace(teacher_control="none"), device, cache=cache, progress=progress)
        return _permuted(model, info, task, cfg, device)
    if not cache:
        model, info = train_teacher(task, cfg, device, progress=progress)
        return model, dict(info, teacher_cached=False)
    path = cache_dir() / "teachers" / f"{safe_name(task.name)}-{teacher_key(task, cfg)}.pt"  # inside the cache
    with locked(path):
        found = _load(path, task, cfg, device)
        if found is not None:
            return found
        model, info = train_teacher(task, cfg, device, progress=progress)
        _save({"state_dict": model.state_dict(), "info": info}, path)
    return model, dict(info, teacher_cached=False)
