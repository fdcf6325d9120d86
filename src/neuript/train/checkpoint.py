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
    The step, epoch and loader position, the run's resolved config and corpus identity (what a
    resume is checked against) and the SHA-256 of the two files above (what :func:`read_checkpoint`
    verifies, so a truncated or corrupt checkpoint is found before anything is loaded).

The data order is a pure function of ``(seed, epoch)``; resuming restores the counters and the
RNG states, and the loop skips the micro-batches the interrupted epoch had consumed. Under FSDP
the shards are gathered into full (unsharded) state dicts on rank 0 for saving, and every rank
reads the full files back, so a checkpoint does not depend on the strategy or world size.
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
from neuript.files import atomic_directory, sha256_file
from neuript.train.distributed import DistEnv, barrier, is_fsdp, unwrap
from neuript.train.loop import TrainState

log = logging.getLogger(__name__)

CKPT_DIR = "checkpoints"
PREFIX = "step_"
TMP_PREFIX = ".tmp-"
FILES = ("model.safetensors", "state.pt")
"""The files a checkpoint cannot resume without (checksummed in ``train_state.json``)."""


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
def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The unwrapped model's full state dict; collective under FSDP.

    Under FSDP the shards are gathered to rank 0 on the CPU: rank 0 receives every tensor, the
    other ranks an empty dict. Otherwise every rank gets the plain ``state_dict()``.
    """
    if is_fsdp(model):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(unwrap(model), options=opts)
    return unwrap(model).state_dict()


def full_optim_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimiser's full state dict; collective under FSDP.

    Under FSDP it is keyed by parameter name and gathered to rank 0 on the CPU (the other ranks
    get an empty dict); otherwise it is ``optimizer.state_dict()`` (keyed by index).
    """
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
    corpus: dict[str, Any] | None = None,
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
        The run's resolved config (JSON-ready): a resume is checked against it.
    corpus : dict | None
        Identity of the training corpus (e.g. ``{"manifest_sha256": ..., "windows": ...}``).
    keep_last : int
        Checkpoints to keep; older ones are deleted (0 or less keeps all).

    Returns
    -------
    path : Path | None
        The checkpoint folder on rank 0, None on other ranks.
    """
    rng = _gather(capture_rng(generators), env)  # one entry per rank
    weights = full_model_state(model)
    optim = full_optim_state(model, optimizer)
    if not env.is_main:
        barrier()
        return None
    root = Path(run_dir) / CKPT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(state.step)

    def write(tmp: Path) -> None:
        save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()},
                  str(tmp / "model.safetensors"))
        torch.save({"train_state": asdict(state), "optimizer": optim,
                    "scheduler": None if scheduler is None else scheduler.state_dict(),
                    "rng": rng, "world_size": env.world_size}, tmp / "state.pt")
        info = {"train_state": asdict(state), "world_size": env.world_size, "config": config,
                "corpus": corpus, "sha256": {name: sha256_file(tmp / name) for name in FILES}}
        (tmp / "train_state.json").write_text(json.dumps(info, indent=2, default=str))

    atomic_directory(final, write, tmp_name=f"{TMP_PREFIX}{final.name}-{os.getpid()}")
    _prune(root, keep_last)
    log.info("checkpoint written: %s", final)
    barrier()
    return final


def _prune(root: Path, keep_last: int) -> None:
    if keep_last <= 0:
        return
    for old in list_checkpoints(root.parent)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)



def remove_stale_temporaries(run_dir: str | os.PathLike) -> list[Path]:
    """Delete ``checkpoints/.tmp-step_*`` folders a killed save left behind; return them.

    Call it on rank 0 before training starts (no save of this run can be in flight then).
    """
    root = Path(run_dir) / CKPT_DIR
    stale = sorted(root.glob(f"{TMP_PREFIX}{PREFIX}*")) if root.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed %s, left by an interrupted checkpoint save", path)
    return stale


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.glob(f"{PREFIX}*")
             if p.is_dir() and all((p / name).exists() for name in FILES)]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


class CheckpointError(NeuriptError):
    """A training checkpoint is missing a file, truncated or corrupt (the message names it)."""


class CheckpointContents(NamedTuple):
    """The verified contents of a checkpoint folder (:func:`read_checkpoint`)."""

    path: Path
    """The checkpoint folder."""
    saved: dict[str, Any]
    """``state.pt``: optimiser, scheduler, train state, RNG states, world size."""
    weights: dict[str, torch.Tensor]
    """``model.safetensors``: the unwrapped model's full state dict."""
    info: dict[str, Any]
    """``train_state.json``: the run's config and corpus identity when recorded (else ``{}``)."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def read_checkpoint(ckpt_dir: str | os.PathLike) -> CheckpointContents:
    """Read and verify a checkpoint folder (checksums, then both files) without loading it.

    Raises
    ------
    CheckpointError
        One line naming the file that is missing, fails its recorded SHA-256 (truncated or
        altered) or cannot be parsed.
    """
    path = Path(ckpt_dir)
    for name in FILES:
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name}: missing; not a complete training checkpoint")
    info: dict[str, Any] = {}
    if (path / "train_state.json").is_file():
        try:
            info = json.loads((path / "train_state.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{path / 'train_state.json'}: unreadable "
                                  f"({_first_line(err)})") from err
    for name, digest in (info.get("sha256") or {}).items():
        if (path / name).is_file() and sha256_file(path / name) != digest:
            raise CheckpointError(f"{path / name}: truncated or corrupt (SHA-256 differs from "
                                  "the one recorded when it was saved)")
    try:
        saved = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
        missing = {"train_state", "optimizer", "scheduler", "rng"} - set(saved)
    except Exception as err:  # any failure to parse is a corrupt file, named in one line
        raise CheckpointError(f"{path / 'state.pt'}: cannot be read ({_first_line(err)})") from err
    if missing:
        raise CheckpointError(f"{path / 'state.pt'}: lacks {sorted(missing)}; not a training "
                              "checkpoint")
    try:
        weights = load_file(str(path / "model.safetensors"))
    except Exception as err:  # safetensors raises its own error type for a torn file
        raise CheckpointError(f"{path / 'model.safetensors'}: cannot be read "
                              f"({_first_line(err)})") from err
    return CheckpointContents(path, saved, weights, info)


def read_latest_intact(run_dir: str | os.PathLike) -> CheckpointContents | None:
    """The newest checkpoint of ``run_dir`` that reads back intact (None if it has none).

    A corrupt one is named in a warning and the next older one is tried.

    Raises
    ------
    CheckpointError
        Every checkpoint of the run is corrupt (the message names each bad file).
    """
    problems = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            found = read_checkpoint(path)
        except CheckpointError as err:
            log.warning("%s; trying the previous checkpoint", err)
            problems.append(str(err))
            continue
        if problems:
            log.warning("resuming from %s, the newest intact checkpoint", path)
        return found
    if problems:
        raise CheckpointError(f"{Path(run_dir) / CKPT_DIR}: no intact checkpoint to resume from: "
                              f"{'; '.join(problems)}; delete the folder or choose another --out")
    return None


class LoadedState(NamedTuple):
    """What :func:`load_train_state` restored."""

    state: TrainState
    """Step and loader position to continue from."""
    path: Path
    """The checkpoint folder read."""


def load_train_state(
    ckpt: str | os.PathLike | CheckpointContents,
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

    Parameters
    ----------
    ckpt : path-like | CheckpointContents
        A checkpoint folder, or its contents already read by :func:`read_checkpoint`.

    Raises
    ------
    NeuriptError
        The folder is not an intact checkpoint (:class:`CheckpointError`), or the weights do not
        fit the model.
    """
    read = ckpt if isinstance(ckpt, CheckpointContents) else read_checkpoint(ckpt)
    path, saved = read.path, read.saved
    _load_weights(path, model, read.weights)
    _load_optimizer(model, optimizer, saved["optimizer"])
    if scheduler is not None and saved["scheduler"] is not None:
        scheduler.load_state_dict(saved["scheduler"])
    if env.rank < len(saved["rng"]):
        restore_rng(saved["rng"][env.rank], generators)
    else:
        log.warning("%s was saved with world size %d; rank %d starts fresh RNG states",
                    path, saved["world_size"], env.rank)
    return LoadedState(TrainState(**saved["train_state"]), path)


def _load_weights(path: Path, model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    inner = unwrap(model)
    expected = set(inner.state_dict())  # the same names sharded or not
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise NeuriptError(f"{path / 'model.safetensors'}: weights do not fit the model; missing "
                           f"{missing[:5]}, unexpected {unexpected[:5]}")
    try:
        if is_fsdp(model):
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
            )

            set_model_state_dict(inner, weights, options=StateDictOptions(full_state_dict=True))
        else:
            inner.load_state_dict(weights)
    except RuntimeError as err:  # shapes differ: another model config
        raise NeuriptError(f"{path / 'model.safetensors'}: weights do not fit the model "
                           f"({_first_line(err)})") from err


def _load_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any]) -> None:
    """Load an optimiser state saved plain (keyed by index) or gathered (keyed by name).

    Saves under FSDP key the state by parameter name, plain saves by index; either loads into
    either kind of model, so a run may switch between ``ddp`` and ``fsdp`` when it resumes.
    """
    by_name = any(isinstance(k, str) for k in state.get("state", {}))
    if not by_name and not is_fsdp(model):
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    if not by_name:  # index-keyed state into a sharded model: name the indices first
        state = _index_to_names(model, optimizer, state)
    opts = StateDictOptions(full_state_dict=True)
    set_optimizer_state_dict(unwrap(model), optimizer, state, options=opts)


def _index_to_names(model: nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any]) -> dict[str, Any]:
    """Re-key an index-keyed optimiser state by parameter name (the current groups' order)."""
    names = {id(p): n for n, p in unwrap(model).named_parameters()}
    index: dict[int, str] = {}
    groups = []
    for saved_group, group in zip(state["param_groups"], optimizer.param_groups, strict=True):
        fqns = [names[id(p)] for p in group["params"]]
        index.update(zip(saved_group["params"], fqns, strict=True))
        groups.append({**saved_group, "params": fqns})
    return {"state": {index[i]: v for i, v in state["state"].items()}, "param_groups": groups}
