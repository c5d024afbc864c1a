"""Batches for the trainer: a fast path for in-memory arrays, a DataLoader for lazy ones.

:func:`iterate_batches` takes the index arrays of the batches, in the order
the caller chose them (so the trainer's seeded shuffling and the teacher
sampler stay in the main process and results do not depend on the number of
workers), and yields each batch as a float32 tensor on the device.

* In-memory arrays (numpy / torch): sliced directly, as before.
* :class:`~cmkd_lab.data.lazy.LazyArray`: decoded by a torch ``DataLoader``
  whose worker processes each build a whole batch; pinned host memory and
  non-blocking copies on CUDA, ``prefetch_factor`` batches ready per worker,
  so the GPU is not left waiting on JPEG decoding. The workers persist: each
  lazy array keeps one loader whose batch list is replaced for every pass
  (epochs, evaluations), so processes are not started again each time.

Workers: ``$CMKD_LAB_WORKERS`` if set, else ``min(8, cpu_count - 1)`` on CUDA
and 0 (decode in the main process) on CPU.
"""
from __future__ import annotations

import os
from typing import Iterable, Iterator, Optional

import numpy as np
import torch

from .lazy import is_lazy

__all__ = ["iterate_batches", "resolve_workers", "EVAL_BATCH_LAZY"]

EVAL_BATCH_LAZY = 128  # batch size for feature extraction over lazy (image-sized) samples


def resolve_workers(num_workers: Optional[int], device) -> int:
    """Number of DataLoader workers: explicit, ``$CMKD_LAB_WORKERS``, or a device-based default."""
    if num_workers is None:
        env = os.environ.get("CMKD_LAB_WORKERS")
        if env not in (None, ""):
            try:
                num_workers = int(env)
            except ValueError:
                num_workers = -1
            if num_workers < 0:
                raise ValueError(f"CMKD_LAB_WORKERS must be an integer >= 0; got CMKD_LAB_WORKERS={env!r}")
        else:
            cuda = torch.device(device).type == "cuda"
            num_workers = min(8, max(0, (os.cpu_count() or 1) - 1)) if cuda else 0
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ValueError(f"num_workers must be an integer >= 0; got num_workers={num_workers!r}")
    return int(num_workers)


class _BatchDataset(torch.utils.data.Dataset):
    """``dataset[index_array]`` → one decoded batch (B, ...) as a float32 tensor."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        return torch.from_numpy(np.ascontiguousarray(self.x[np.asarray(idx)], dtype=np.float32))


def _worker_init(_):
    torch.set_num_threads(1)  # decoding is per-process; avoid oversubscribing the cores


class _Batches(torch.utils.data.Sampler):
    """The batch list of the current pass (replaced before each pass; lives in the main process)."""

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def _new_loader(x, workers, pin, prefetch_factor, persistent):
    sampler = _Batches()
    loader = torch.utils.data.DataLoader(
        _BatchDataset(x), sampler=sampler, batch_size=None, num_workers=workers, pin_memory=pin,
        prefetch_factor=prefetch_factor if workers else None, worker_init_fn=_worker_init if workers else None,
        persistent_workers=persistent)
    return {"loader": loader, "sampler": sampler, "busy": False}


def iterate_batches(x, batches: Iterable, device, *, num_workers: Optional[int] = None,
                    pin_memory: Optional[bool] = None, prefetch_factor: int = 4) -> Iterator[torch.Tensor]:
    """Yield ``x[b]`` for each index array ``b`` of ``batches``, in order, on ``device``.

    Parameters
    ----------
    x : array (N, ...) | torch.Tensor | LazyArray
    batches : iterable of int arrays (B_i,)
        Positions into ``x``, one array per batch.
    device : torch.device or str
    num_workers : int, optional
        DataLoader workers for lazy ``x`` (see :func:`resolve_workers`).
    pin_memory : bool, optional
        Pin host batches (default: on for CUDA).
    prefetch_factor : int
        Batches each worker keeps ready.

    Yields
    ------
    torch.Tensor (B_i, ...) float32 on ``device``
    """
    device = torch.device(device)
    if not is_lazy(x):
        for b in batches:
            if isinstance(x, torch.Tensor):
                yield x[torch.as_tensor(b, device=x.device)].to(device, torch.float32)
            else:
                yield torch.as_tensor(np.asarray(x[np.asarray(b)]), dtype=torch.float32, device=device)
        return
    workers = resolve_workers(num_workers, device)
    pin = device.type == "cuda" if pin_memory is None else bool(pin_memory)
    key = (workers, pin, prefetch_factor)
    cache = x.__dict__.setdefault("_loaders", {})  # dropped when x is pickled (LazyArray.__getstate__)
    entry = cache.get(key) if workers else None
    if entry is None or entry["busy"]:  # none yet, or an outer pass over the same array is still running
        entry = _new_loader(x, workers, pin, prefetch_factor, persistent=bool(workers) and key not in cache)
        if workers and key not in cache:
            cache[key] = entry
    entry["sampler"].batches = [np.asarray(b) for b in batches]
    entry["busy"] = True
    try:
        for xb in entry["loader"]:
            yield xb.to(device, non_blocking=pin)
    except Exception as e:
        if workers and cache.get(key) is entry:
            cache.pop(key, None)  # a failed pass may leave its workers unusable: the next pass starts new ones
        lines = str(e).strip().splitlines()
        if workers and isinstance(e, RuntimeError) and lines and "DataLoader worker" in lines[0] and \
                ("exited unexpectedly" in lines[0] or "killed by signal" in lines[0]):
            raise RuntimeError(f"{lines[0]} while decoding {x!r}: a decoder crashed or ran out of memory in a worker "
                               "process; run again with CMKD_LAB_WORKERS=0 to decode in the main process, where the "
                               "failing sample is named") from e
        if workers and lines and lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
            # The worker's message sits at the end of torch's wrapped traceback: bring it to the front.
            last = lines[-1][len("ValueError: "):] if lines[-1].startswith("ValueError: ") else lines[-1]
            raise ValueError(f"{last} (raised in a DataLoader worker; CMKD_LAB_WORKERS=0 decodes in the "
                             "main process)") from e
        raise
    finally:
        entry["busy"] = False
