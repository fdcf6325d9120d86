"""Process groups, devices and model wrapping for single-process and DDP/FSDP training.

Nothing here is global: :func:`setup` reads the torchrun environment variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``) when it is called and returns a frozen :class:`DistEnv` that the
training code passes around explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.distributed as tdist
from torch import Tensor, nn

from neuript.errors import NeuriptError, check_option

Strategy = Literal["none", "ddp", "fsdp"]
STRATEGIES: tuple[str, ...] = ("none", "ddp", "fsdp")


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job.

    Attributes
    ----------
    rank : int
        Global rank (0 … world_size − 1).
    local_rank : int
        Rank on this node (selects the CUDA device).
    world_size : int
        Number of processes.
    device : torch.device
        The device this process computes on.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes logs and checkpoints."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when a process group with more than one process is active."""
        return self.world_size > 1


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """Turn ``auto | cpu | cuda | cuda:i`` into a device (``cuda`` means ``cuda:local_rank``)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NeuriptError(f"TrainConfig.device={device!r} but CUDA is not available")
        return torch.device(device if ":" in device else f"cuda:{local_rank}")
    raise NeuriptError(f"TrainConfig.device must be 'auto', 'cpu' or 'cuda[:i]'; got {device!r}")


def setup(device: str = "auto") -> DistEnv:
    """Read the torchrun environment and join the process group when ``WORLD_SIZE > 1``.

    Parameters
    ----------
    device : str
        ``'auto'`` (CUDA if available), ``'cpu'`` or ``'cuda[:i]'``.

    Returns
    -------
    env : DistEnv
        This process's rank, world size and device. The backend is gloo on CPU, nccl on CUDA.
    """
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world_size > 1 and not tdist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        tdist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistEnv(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def teardown() -> None:
    """Leave the process group, if one is active."""
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def _active() -> bool:
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def all_reduce_mean(t: Tensor) -> Tensor:
    """Mean of ``t`` over all ranks (a new tensor; ``t`` itself is unchanged)."""
    out = t.detach().clone()
    if _active():
        tdist.all_reduce(out, op=tdist.ReduceOp.SUM)
        out /= tdist.get_world_size()
    return out


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum of ``t`` over all ranks (a new tensor)."""
    out = t.detach().clone()
    if _active():
        tdist.all_reduce(out, op=tdist.ReduceOp.SUM)
    return out


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's value of ``flag`` on every rank (so all ranks stop together)."""
    if not _active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    tdist.broadcast(t, src=0)
    return bool(t.item() > 0.5)


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if _active():
        tdist.barrier()


class RankZeroFilter(logging.Filter):
    """A logging filter that lets records through on rank 0 only."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return self.rank == 0


def rank_seed(base_seed: int, env: DistEnv) -> int:
    """Per-rank seed ``base_seed + rank`` (different dropout and masks on every rank)."""
    return base_seed + env.rank


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def is_fsdp(model: nn.Module) -> bool:
    """True if ``model`` (or its unwrapped module) is sharded with FSDP (either API)."""
    inner = unwrap(model)
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:  # pragma: no cover - very old torch
        return False
    return isinstance(inner, FSDPModule | FullyShardedDataParallel)


def wrap_model(
    model: nn.Module, env: DistEnv, *, strategy: Strategy = "ddp", compile: bool = False
) -> nn.Module:
    """Move ``model`` to ``env.device`` and wrap it for data-parallel training.

    Parameters
    ----------
    model : nn.Module
        The plain model (keep a reference to it: checkpoints save the unwrapped module).
    env : DistEnv
        The process's place in the job.
    strategy : {'none', 'ddp', 'fsdp'}
        ``'ddp'`` replicates the model (the default; a no-op with one process); ``'fsdp'``
        shards parameters with ``torch.distributed.fsdp.fully_shard``, one unit per encoder
        block and decoder layer (meant for the paper size on GPUs; it also runs on CPU with
        gloo; with one process it falls back to no wrapping).
    compile : bool
        Apply ``torch.compile`` to the (wrapped) model.

    Returns
    -------
    wrapped : nn.Module
        The module to call in training; :func:`unwrap` recovers the plain one.
    """
    check_option("strategy", strategy, STRATEGIES)
    model = model.to(env.device)
    if env.is_distributed and strategy == "ddp":
        ids = [env.device.index] if env.device.type == "cuda" else None
        # MoE layers may leave an expert unused in a step: let DDP tolerate unused parameters.
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=True
        )
    elif env.is_distributed and strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in _shard_units(model):
            fully_shard(block)  # one all-gather per block; the rest goes with the root
        fully_shard(model)
    if compile:
        model = torch.compile(model)
    return model


def _shard_units(model: nn.Module) -> list[nn.Module]:
    """The encoder blocks and decoder layers: FSDP's units of all-gather and resharding."""
    units: list[nn.Module] = []
    for owner, name in (("encoder", "blocks"), ("decoder", "layers")):
        units += list(getattr(getattr(model, owner, None), name, []))
    return units


@contextlib.contextmanager
def gradient_sync(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Reduce gradients across ranks in this backward only if ``enabled``.

    Gradient accumulation calls it with ``enabled=False`` on all but the last micro-batch:
    DDP's ``no_sync()``, FSDP's ``set_requires_gradient_sync(False)``; a no-op with one process.
    """
    inner = unwrap(model)
    if enabled or not (is_fsdp(inner) or hasattr(model, "no_sync")):
        yield
    elif is_fsdp(inner):
        inner.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            inner.set_requires_gradient_sync(True)
    else:
        with model.no_sync():
            yield


def clip_grad_norm(model: nn.Module, max_norm: float) -> float:
    """Clip the global gradient norm to ``max_norm``; return the norm before clipping.

    Under FSDP the parameters are sharded ``DTensor`` s: the norm of the local shards is reduced
    over ranks first (``full_tensor``), so every rank clips by, and returns, the global norm.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    total = torch.nn.utils.get_total_norm([p.grad for p in params])
    if hasattr(total, "full_tensor"):  # a DTensor: partial norms per rank
        total = total.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return float(total)
