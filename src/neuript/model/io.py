"""Checkpoint directories: ``model.safetensors`` + ``config.json``, written atomically.

A checkpoint directory holds exactly two files:

``model.safetensors``
    The state dict (``safetensors.torch.save_file``); never pickle.
``config.json``
    ``kind`` (``"pretrain"`` or ``"classifier"``), ``model`` (the ModelConfig), ``mask`` (the
    MaskConfig, pretraining) or ``head`` (``n_classes``, ``group_names``, ``class_names``,
    classifier), ``contract`` (the InputContract), ``extra`` (free JSON) and
    ``neuript_version``.

Writes go to a hidden temporary directory beside the target, which then replaces the target by
rename, so a crash never leaves a half-written checkpoint and never damages an existing one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

import neuript
from neuript.config import InputContract, MaskConfig, ModelConfig, from_dict, to_dict
from neuript.errors import ContractError, NeuriptError, read_json
from neuript.files import atomic_directory

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


@dataclass(frozen=True)
class LoadReport:
    """Keys that did not line up when loading weights.

    Attributes
    ----------
    missing : tuple of str
        Keys the model has but the file lacks (left at their initial values).
    unexpected : tuple of str
        Keys the file has but the model lacks (ignored).
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every key matched."""
        return not self.missing and not self.unexpected


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything ``config.json`` says about a checkpoint, parsed, plus the load report.

    Attributes
    ----------
    path : Path
        The checkpoint directory.
    kind : str
        ``"pretrain"`` or ``"classifier"``.
    model : ModelConfig
    contract : InputContract
    mask : MaskConfig | None
        Pretraining checkpoints only.
    head : dict
        Classifier checkpoints: ``n_classes``, ``group_names``, ``class_names``.
    extra : dict
        Free JSON stored by the caller (training step, metrics …).
    neuript_version : str
    report : LoadReport
    """

    path: Path
    kind: str
    model: ModelConfig
    contract: InputContract
    mask: MaskConfig | None = None
    head: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    neuript_version: str = ""
    report: LoadReport = LoadReport()


def write_checkpoint(directory: str | os.PathLike, state: dict[str, Tensor],
                     config: dict[str, Any]) -> Path:
    """Write ``state`` and ``config`` into ``directory`` atomically.

    Parameters
    ----------
    directory : path-like
        Target checkpoint directory; an existing one is replaced only once the new one is
        complete.
    state : dict of str to Tensor
        Weights (copied to CPU, contiguous, unshared).
    config : dict
        JSON-serialisable content of ``config.json``.

    Returns
    -------
    path : Path
        The checkpoint directory.
    """
    def write(tmp: Path) -> None:
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        with open(tmp / CONFIG_NAME, "w", encoding="utf-8") as fh:
            json.dump(config, fh, indent=2, sort_keys=False)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_directory(directory, write)


def read_config(directory: str | os.PathLike, expected_kind: str | None = None) -> dict[str, Any]:
    """Read ``config.json`` of a checkpoint, checking its ``kind``.

    Raises
    ------
    ContractError
        If the directory or file is missing, unreadable, or of another kind.
    """
    path = Path(directory)
    cfg_path = path / CONFIG_NAME
    if not cfg_path.is_file() or not (path / WEIGHTS_NAME).is_file():
        raise ContractError(
            f"{path}: not a neuript checkpoint (expected {CONFIG_NAME} and {WEIGHTS_NAME})"
        )
    config = read_json(cfg_path, "checkpoint config", ContractError)
    kind = config.get("kind")
    if expected_kind is not None and kind != expected_kind:
        raise ContractError(
            f"{path}: checkpoint kind is {kind!r}, expected {expected_kind!r}"
        )
    return config


def read_weights(directory: str | os.PathLike) -> dict[str, Tensor]:
    """Load ``model.safetensors`` (no pickle) as a dict of CPU tensors."""
    path = Path(directory) / WEIGHTS_NAME
    try:
        return load_file(str(path), device="cpu")
    except Exception as err:  # safetensors raises its own error types on corrupt files
        raise ContractError(f"{path}: cannot read weights ({err})") from err


def parse_meta(directory: str | os.PathLike, config: dict[str, Any]) -> CheckpointMeta:
    """Turn a ``config.json`` dict into a :class:`CheckpointMeta` (report left empty).

    Raises
    ------
    ContractError
        If a config section does not match the current config classes.
    """
    path = Path(directory)
    try:
        model = from_dict(ModelConfig, config["model"])
        contract = InputContract.from_record(config.get("contract", {}),
                                             (config.get("extra") or {}).get("preprocess"))
        mask = from_dict(MaskConfig, config["mask"]) if config.get("mask") else None
    except (KeyError, TypeError, NeuriptError) as err:
        raise ContractError(
            f"{path}: checkpoint config does not match this neuript ({err})"
        ) from err
    return CheckpointMeta(
        path=path, kind=str(config.get("kind")), model=model, contract=contract, mask=mask,
        head=dict(config.get("head") or {}), extra=dict(config.get("extra") or {}),
        neuript_version=str(config.get("neuript_version", "")),
    )


def build_config(kind: str, model: ModelConfig, contract: InputContract,
                 extra: dict[str, Any] | None, *, mask: MaskConfig | None = None,
                 head: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assemble the ``config.json`` content."""
    config: dict[str, Any] = {"kind": kind, "model": to_dict(model)}
    if mask is not None:
        config["mask"] = to_dict(mask)
    if head is not None:
        config["head"] = head
    config["contract"] = to_dict(contract)
    config["extra"] = dict(extra or {})
    config["neuript_version"] = neuript.__version__
    return config


def load_state(module: nn.Module, state: dict[str, Tensor], *, source: str | os.PathLike,
               strict: bool = True, prefixes: tuple[str, ...] | None = None) -> LoadReport:
    """Copy matching tensors into ``module``; refuse (or, not ``strict``, report) key mismatches.

    Parameters
    ----------
    module : nn.Module
    state : dict of str to Tensor
    source : path-like
        Named in errors and log lines.
    strict : bool
        Raise on any missing or unexpected key (the default: a tensor left at its random
        initial value changes every prediction silently); False logs them and loads the rest.
    prefixes : tuple of str | None
        Only keys (of the model and of the file) starting with one of these take part; None
        means all keys.

    Returns
    -------
    report : LoadReport

    Raises
    ------
    ContractError
        On a shape mismatch (naming the tensor and both shapes), or on any key mismatch when
        ``strict``.
    """
    own = module.state_dict()
    if prefixes is not None:
        own = {k: v for k, v in own.items() if k.startswith(prefixes)}
        state = {k: v for k, v in state.items() if k.startswith(prefixes)}
    for name, tensor in state.items():
        if name in own and own[name].shape != tensor.shape:
            raise ContractError(
                f"{source}: tensor {name!r} has shape {tuple(tensor.shape)} in the checkpoint but "
                f"{tuple(own[name].shape)} in the model"
            )
    report = LoadReport(
        missing=tuple(sorted(set(own) - set(state))),
        unexpected=tuple(sorted(set(state) - set(own))),
    )
    if strict and not report.ok:
        raise ContractError(
            f"{source}: weights do not match the model: missing {list(report.missing)}, "
            f"unexpected {list(report.unexpected)}"
        )
    with torch.no_grad():
        module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    if report.missing:
        log.warning("%s: %d missing key(s) left at init: %s", source, len(report.missing),
                    list(report.missing)[:10])
    if report.unexpected:
        log.warning("%s: %d unexpected key(s) ignored: %s", source, len(report.unexpected),
                    list(report.unexpected)[:10])
    return report

