"""Data-parallel training across processes (``torchrun``).

``torchrun --nproc_per_node N -m cmkd_lab run ...`` starts N processes; each
finds ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in its environment and the
trainer calls :func:`from_env`, which joins the process group (NCCL on GPUs,
gloo on CPUs) and returns a :class:`DistContext`. What it does:

* **Sharding.** Every rank draws the same global batch of ``batch_size``
  samples (same seeded permutation and teacher draw) and keeps its contiguous
  slice of ``batch_size / world_size`` rows (:meth:`DistContext.shard`).
* **Gradients.** Before each optimiser step the trainer averages the
  gradients over ranks with one all-reduce of a flat buffer — what
  ``DistributedDataParallel`` does; the student is not wrapped in DDP because
  methods call its encoder and head separately and UCMKD takes gradients of
  functional temporaries, which DDP's hooks would not see. Parameters start
  equal (broadcast from rank 0) and stay equal.
* **UCMKD.** The inner steps are local: each rank adapts its temporaries on
  its own shard, with no communication; the outer gradient (the CE gradient
  at each rank's temporaries) is what is averaged. With one rank this is the
  single-process algorithm; with N ranks the inner steps see B/N samples.
* **OT on the global batch** (``ot_all_gather=True``): student and teacher
  features are all-gathered so each rank's OT term is the global batch's; the
  gradient reaching a rank's own rows is scaled by N, so the average over
  ranks is exactly the full-batch gradient.
* **Consistency.** Teacher weights and BatchNorm buffers are broadcast from
  rank 0 (the buffers at the end of every epoch, as DDP's ``broadcast_buffers``
  keeps rank 0's); the epoch's loss terms are averaged over ranks, and so is
  the trainer's NaN/inf check, so every rank stops at the same step; only
  rank 0 writes checkpoints, ``result.json`` and reports (every rank reads the
  checkpoint on ``--resume``). Callbacks run on every rank
  (``trainer.dist.is_main`` tells rank 0).
* **Stopping** is per process: a rank that stops alone leaves the others
  waiting in a collective, so an interrupted run may end without a result;
  continue it from rank 0's checkpoint.

For CE-only training of a model without batch statistics (LayerNorm, no
BatchNorm), two ranks with half of each batch equal one process with the whole
batch up to floating-point summation order (``tests/test_distributed.py``).
"""
from __future__ import annotations

import atexit
import os
from dataclasses import fields
from typing import Dict, Optional

import torch
import torch.distributed as dist

__all__ = ["DistContext", "from_env", "is_main_process", "world_size_from_env"]


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as set by ``torchrun`` (1 when absent)."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer (set by torchrun); got WORLD_SIZE={raw!r}") from None


def is_main_process() -> bool:
    """True on rank 0, or when not running distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0; backward returns this rank's rows × world size."""

    @staticmethod
    def forward(ctx, z, rank: int, world: int):
        z = z.contiguous()
        parts = [torch.empty_like(z) for _ in range(world)]
        dist.all_gather(parts, z)
        ctx.rank, ctx.world, ctx.n = rank, world, z.shape[0]
        return torch.cat(parts, 0)  # (world·n, D)

    @staticmethod
    def backward(ctx, g):
        n = ctx.n
        return g[ctx.rank * n:(ctx.rank + 1) * n] * ctx.world, None, None


class DistContext:
    """This process's place in the group and the collectives the trainer needs.

    Attributes
    ----------
    rank, world_size, local_rank : int
    device : torch.device
        ``cuda:LOCAL_RANK`` on GPUs, the CPU otherwise.
    is_main : bool
        Rank 0: the one that writes files and reports.
    """

    def __init__(self, rank: int, world_size: int, local_rank: int, device: torch.device):
        self.rank, self.world_size, self.local_rank, self.device = rank, world_size, local_rank, device
        self.is_main = rank == 0

    def __repr__(self) -> str:
        return f"DistContext(rank={self.rank}, world_size={self.world_size}, device={self.device})"

    # ----------------------------------------------------------- data
    def shard(self, batch):
        """This rank's contiguous slice of a global :class:`Batch` (every tensor field, each cut by its
        own length: the unlabelled rows may be more or fewer than the labelled ones; None stays None)."""
        def cut(t):
            if t is None:
                return None
            n = t.shape[0] // self.world_size
            return t[self.rank * n:(self.rank + 1) * n]
        return type(batch)(**{f.name: cut(getattr(batch, f.name)) for f in fields(batch)})

    def gather_rows(self, z: torch.Tensor) -> torch.Tensor:
        """(n, D) per rank → (world·n, D) in rank order; gradients reach only this
        rank's rows, scaled by the world size (so their average over ranks is
        the gradient of the global-batch loss)."""
        return _GatherRows.apply(z, self.rank, self.world_size)

    # ------------------------------------------------------ parameters
    @torch.no_grad()
    def broadcast_module(self, module: torch.nn.Module, *, buffers_only: bool = False) -> None:
        """Copy rank 0's parameters (and buffers) into every rank."""
        tensors = list(module.buffers()) if buffers_only else list(module.parameters()) + list(module.buffers())
        for t in tensors:
            dist.broadcast(t.data, src=0)

    @torch.no_grad()
    def average_gradients(self, params) -> None:
        """Average ``.grad`` over ranks in one all-reduce (parameters without a
        gradient on this rank have none on any rank: the code path is the same)."""
        with_grad = [p for p in params if p.grad is not None]
        if not with_grad:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in with_grad])  # (P,)
        dist.all_reduce(flat)
        flat /= self.world_size
        i = 0
        for p in with_grad:
            n = p.grad.numel()
            p.grad.copy_(flat[i:i + n].view_as(p.grad))
            i += n

    def average_terms(self, sums: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Average an epoch's summed loss terms over ranks (same keys everywhere)."""
        if not sums:
            return sums
        keys = sorted(sums)
        flat = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32, device=self.device).reshape(())
                            for k in keys])  # (T,)
        dist.all_reduce(flat)
        flat /= self.world_size
        return {k: flat[i] for i, k in enumerate(keys)}

    def end_epoch(self, model: torch.nn.Module, sums: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Rank 0's BatchNorm buffers everywhere, and the epoch's terms averaged."""
        self.broadcast_module(model, buffers_only=True)
        return self.average_terms(sums)


def from_env(config, device: torch.device) -> Optional[DistContext]:
    """Join the process group ``torchrun`` describes; ``None`` for a single process.

    Parameters
    ----------
    config : DistillConfig
        ``batch_size`` must be a multiple of the world size.
    device : torch.device
        The resolved device: CUDA → NCCL on ``cuda:LOCAL_RANK``; CPU → gloo.
    """
    world = world_size_from_env()
    if world <= 1:
        return None
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run a single process")
    if config.batch_size % world:
        raise ValueError(f"batch_size must be a multiple of the number of processes ({world}) so that every rank "
                         f"gets an equal shard; got batch_size={config.batch_size}")
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    if dist.get_world_size() != world:
        raise RuntimeError(f"the process group has {dist.get_world_size()} ranks but WORLD_SIZE={world}")
    return DistContext(dist.get_rank(), world, local_rank, device)
