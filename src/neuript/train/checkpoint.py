"""Training-state checkpoints for exact resume (not the shareable model checkpoint).

Layout of ``run_dir/checkpoints/step_XXXXXXXX/`` (written in a temporary folder, then moved into
place with ``os.replace``, so a kill at any moment leaves either the old or the new checkpoint):

``model.safetensors``
    Weights of the unwrapped model (no ``module.`` / ``_orig_mod.`` prefixes).
``state.pt``
    ``torch.save`` of plain containers of tensors and numbers: optimiser and scheduler state,
    the :class:`~neuript.train.loop.TrainState` counters, and every rank's RNG states (torch CPU
    and CUDA, numpy, python ``random`` and named ``torch.Generator`` s such as the masking
    generator). It is read back with ``torch.load(weights_only=True)``: no pickled code runs,
    even though this is our own file.
``train_state.json``
    The step, epoch and loader position plus the run's resolved config, for humans.

The data order is a pure function of ``(seed, epoch)``; resuming restores the counters and the
RNG states, and the loop skips the micro-batches the interrupted epoch had consumed.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as tdist
from safetensors.torch import load_file, save_file
from torch import nn

from neuript.errors import NeuriptError
from neuript.train.distributed import DistEnv, barrier, is_fsdp, unwrap
from neuript.train.loop import TrainState

log = logging.getLogger(__name__)

CKPT_DIR = "checkpoints"
PREFIX = "step_"


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint taken after ``step`` optimiser steps."""
    return f"{PREFIX}{step:08d}"


# --------------------------------------------------------------------------------------------
# RNG states
# --------------------------------------------------------------------------------------------
def capture_rng(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """This process's RNG states as tensors and numbers (``weights_only``-loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(
    state: dict[str, Any], generators: dict[str, torch.Generator] | None = None
) -> None:
    """Set this process's RNG states (and the named generators') from :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in (generators or {}).items():
        if name not in state["generators"]:
            raise NeuriptError(f"checkpoint holds no state for generator {name!r}; "
                               f"it has {sorted(state['generators'])}")
        gen.set_state(state["generators"][name])


def _gather(obj: Any, env: DistEnv) -> list[Any]:
    if not env.is_distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    tdist.all_gather_object(out, obj)
    return out


# --------------------------------------------------------------------------------------------
# save / find / load
# --------------------------------------------------------------------------------------------
def _model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    if is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(unwrap(model), options=opts)
    return unwrap(model).state_dict()


def _optim_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    if is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_optimizer_state_dict(unwrap(model), optimizer, options=opts)
    return optimizer.state_dict()


def save_train_state(
    run_dir: str | os.PathLike,
    state: TrainState,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    env: DistEnv,
    generators: dict[str, torch.Generator] | None = None,
    config: dict[str, Any] | None = None,
    keep_last: int = 3,
) -> Path | None:
    """Write a resumable checkpoint of the run; collective (every rank must call it).

    Parameters
    ----------
    run_dir : path-like
        The run folder; the checkpoint goes to ``run_dir/checkpoints/step_XXXXXXXX``.
    state : TrainState
        Step and loader position (epoch, micro-batches consumed).
    model : nn.Module
        Plain or wrapped model; the unwrapped weights are saved.
    optimizer, scheduler
        Their state dicts are saved.
    env : DistEnv
        Rank 0 writes; every rank contributes its RNG states.
    generators : dict of str to torch.Generator | None
        Extra generators to restore exactly (e.g. ``{"mask": masking_generator}``).
    config : dict | None
        The run's resolved config (JSON-ready), stored for humans.
    keep_last : int
        Checkpoints to keep; older ones are deleted (0 or less keeps all).

    Returns
    -------
    path : Path | None
        The checkpoint folder on rank 0, None on other ranks.
    """
    rng = _gather(capture_rng(generators), env)  # one entry per rank
    weights = _model_state(model)
    optim = _optim_state(model, optimizer)
    if not env.is_main:
        barrier()
        return None
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(state.step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()},
              str(tmp / "model.safetensors"))
    torch.save({"train_state": asdict(state), "optimizer": optim,
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "rng": rng, "world_size": env.world_size}, tmp / "state.pt")
    info = {"train_state": asdict(state), "world_size": env.world_size, "config": config}
    (tmp / "train_state.json").write_text(json.dumps(info, indent=2, default=str))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _prune(root, keep_last)
    log.info("checkpoint written: %s", final)
    barrier()
    return final


def _prune(root: Path, keep_last: int) -> None:
    if keep_last <= 0:
        return
    for old in list_checkpoints(root.parent)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{PREFIX}*")
             if p.is_dir() and (p / "state.pt").exists() and (p / "model.safetensors").exists()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


class LoadedState(NamedTuple):
    """What :func:`load_train_state` restored."""

    state: TrainState
    """Step and loader position to continue from."""
    path: Path
    """The checkpoint folder read."""


def load_train_state(
    ckpt_dir: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    env: DistEnv,
    generators: dict[str, torch.Generator] | None = None,
) -> LoadedState:
    """Restore model, optimiser, scheduler and this rank's RNG states from a checkpoint.

    Call it after wrapping the model and building the optimiser (every rank reads the files).
    With a different world size than at save time, ranks without saved RNG states are seeded
    fresh and a warning is logged (the run continues, but not bit-exactly).

    Raises
    ------
    NeuriptError
        The folder is not a complete checkpoint, or the weights do not fit the model.
    """
    path = Path(ckpt_dir)
    if not (path / "state.pt").exists() or not (path / "model.safetensors").exists():
        raise NeuriptError(f"{path}: not a training checkpoint (state.pt / model.safetensors "
                           "missing)")
    saved = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    weights = load_file(str(path / "model.safetensors"))
    if is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True)
        set_model_state_dict(unwrap(model), weights, options=opts)
        set_optimizer_state_dict(unwrap(model), optimizer, saved["optimizer"], options=opts)
    else:
        report = unwrap(model).load_state_dict(weights, strict=False)
        if report.missing_keys or report.unexpected_keys:
            raise NeuriptError(
                f"{path}: weights do not fit the model; missing {report.missing_keys[:5]}, "
                f"unexpected {report.unexpected_keys[:5]}"
            )
        optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None and saved["scheduler"] is not None:
        scheduler.load_state_dict(saved["scheduler"])
    if env.rank < len(saved["rng"]):
        restore_rng(saved["rng"][env.rank], generators)
    else:
        log.warning("%s was saved with world size %d; rank %d starts fresh RNG states",
                    path, saved["world_size"], env.rank)
    return LoadedState(TrainState(**saved["train_state"]), path)
