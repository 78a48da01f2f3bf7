"""Process-group helpers for torchrun, and the gather used by VCL (over the global batch, gradient
through the local slice only, as the official construct_logits_with_gradient does).

VCL across processes: every process gathers the global z with :func:`gather_with_grad` (only its own rows keep
gradient), computes :func:`hico_bench.losses.vcl_loss` on it, and the trainer multiplies that loss by
:func:`world_size`. DistributedDataParallel averages gradients over processes, so the sum of the per-process local
gradients, times world_size / world_size, equals the single-process gradient of the full-batch loss. TCL stays local.

Everything is a no-op (identity, rank 0, world size 1) when no process group is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from hico_bench.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the world size, its local rank and the device it should use."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def is_initialized() -> bool:
    """True when a default process group exists."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """True on rank 0: the process that logs and writes outputs."""
    return rank() == 0


def is_main_process() -> bool:
    """True on the process that writes a job's outputs: rank 0 of the process group, and, before the group exists or
    after it is destroyed, the process torchrun started with RANK 0 (any process started without torchrun)."""
    if is_initialized():
        return rank() == 0
    return "RANK" not in os.environ or _env_int("RANK") == 0


def gather_with_grad(x: Tensor) -> Tensor:
    """All-gather ``x`` (same shape on every rank) along dim 0, rank order; only this rank's rows keep gradient.

    The other ranks' rows are plain copies (no gradient). Identity when not distributed or world size 1.
    """
    size = world_size()
    if size == 1:
        return x
    shape = torch.tensor(x.shape, dtype=torch.long, device=x.device)
    shapes = [torch.empty_like(shape) for _ in range(size)]
    dist.all_gather(shapes, shape)  # a few bytes; uneven batches would otherwise fail inside the backend
    if any(not torch.equal(s, shape) for s in shapes):
        raise ValueError(f"gather_with_grad needs the same shape on every rank, got {[s.tolist() for s in shapes]}")
    parts = [torch.empty_like(x) for _ in range(size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[rank()] = x
    return torch.cat(parts, dim=0)


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` when not distributed.

    A collective: every rank must call it, or the ones that do wait forever.
    """
    if world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer.") from None


def setup_from_env() -> DistInfo:
    """Initialise the default process group from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK).

    Without WORLD_SIZE, or with WORLD_SIZE 1, nothing is initialised (a single process). Backend: nccl when CUDA is
    available (each process then uses GPU LOCAL_RANK), gloo otherwise. MASTER_ADDR and MASTER_PORT must be set, as
    torchrun does.
    """
    cuda = torch.cuda.is_available()
    if "WORLD_SIZE" not in os.environ or _env_int("WORLD_SIZE") == 1:
        return DistInfo(0, 1, 0, torch.device("cuda", 0) if cuda else torch.device("cpu"))
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise UserError(f"environment variable {name} is not set although WORLD_SIZE is; launch with torchrun.")
    size, rank_, local = _env_int("WORLD_SIZE"), _env_int("RANK"), _env_int("LOCAL_RANK")
    if cuda:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", world_size=size, rank=rank_)
    return DistInfo(rank_, size, local, device)


def cleanup() -> None:
    """Destroy the default process group if there is one."""
    if is_initialized():
        dist.destroy_process_group()
