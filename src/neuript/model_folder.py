"""Fine-tuned model folders: one typed record of what they hold, one writer, one reader.

A model folder (``RUN/seed_<s>/model``, or any folder ``predict`` is pointed at) holds

``model.safetensors``
    The weights (never pickle).
``config.json``
    ``kind`` (``"classifier"`` for NeurIPT, ``"baseline"`` for EEGNet / ShallowConvNet), the
    :class:`~neuript.config.InputContract`, for NeurIPT the ``model`` and ``head`` sections of
    :mod:`neuript.model.io`, and ``extra``: the :class:`ClassifierInfo` fields below plus free
    bookkeeping (seed, best epoch).

Every command that reads a model (``evaluate``, ``predict``, ``embed``, ``stream``, ``export``,
``inspect``, the scikit-learn estimators) goes through :func:`read_model_folder` /
:func:`load_classifier`, so a folder is checked once, in one place, and a damaged one is one
line naming the file. Writes go to a temporary folder that replaces the target by rename.

This module sits above ``neuript.model`` (which knows no tasks or preprocessing) and below the
training code: ``predict`` and ``deploy`` import it, not ``neuript.train``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from neuript import __version__
from neuript.config import InputContract, to_dict
from neuript.errors import ContractError, NeuriptError, read_json
from neuript.files import atomic_directory
from neuript.model.io import CONFIG_NAME, WEIGHTS_NAME

KINDS: tuple[str, ...] = ("classifier", "baseline")
"""``config.json`` kinds of a model folder that can predict (``pretrain`` checkpoints cannot)."""


@dataclass(frozen=True)
class BaselineSpec:
    """Build arguments of a convolutional baseline (``neuript.baselines.build``)."""

    name: str
    n_channels: int
    n_samples: int
    n_classes: int
    sfreq_hz: float


@dataclass(frozen=True)
class ClassifierInfo:
    """What a fine-tuned model folder says about its task, beside the input contract.

    Attributes
    ----------
    class_names : tuple of str
        Output k's name (K entries).
    group_names : tuple of str
        IILP pooling groups, in the model's order (NeurIPT; empty for baselines).
    scheme : str
        The grouping scheme the groups came from (``"functional"``, ``"hemisphere"`` …).
    ch_names : tuple of str
        The channels the model reads, in order.
    task : str
        The task it was fine-tuned on.
    model_kind : str
        ``"neuript"`` or a baseline name.
    init : str
        ``"scratch"`` or the pretrained checkpoint it started from.
    pretraining_provenance : dict | None
        The corpus the init was pretrained on (:mod:`neuript.train.provenance`).
    allow_overlap : bool
        Whether fine-tuning was allowed despite a subject overlap with that corpus.
    baseline : BaselineSpec | None
        Baselines only.
    """

    class_names: tuple[str, ...]
    group_names: tuple[str, ...] = ()
    scheme: str = "functional"
    ch_names: tuple[str, ...] = ()
    task: str = ""
    model_kind: str = "neuript"
    init: str = "scratch"
    pretraining_provenance: dict[str, Any] | None = None
    allow_overlap: bool = False
    baseline: BaselineSpec | None = None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], where: Any = "config.json") -> ClassifierInfo:
        """Parse ``config.json``'s ``extra``; a missing or malformed field names ``where``.

        Raises
        ------
        ContractError
        """
        try:
            names = extra["class_names"]
            if not names or not all(isinstance(n, str) for n in names):
                raise TypeError(f"class_names must be a non-empty list of strings, got {names!r}")
            baseline = extra.get("baseline")
            return cls(
                class_names=tuple(names),
                group_names=tuple(str(g) for g in extra.get("group_names") or ()),
                scheme=str(extra.get("scheme", "functional")),
                ch_names=tuple(str(c) for c in extra.get("ch_names") or ()),
                task=str(extra.get("task", "")),
                model_kind=str(extra.get("model_kind", "neuript")),
                init=str(extra.get("init") or "scratch"),
                pretraining_provenance=extra.get("pretraining_provenance"),
                allow_overlap=bool(extra.get("allow_overlap", False)),
                baseline=None if baseline is None else BaselineSpec(
                    str(baseline["name"]), int(baseline["n_channels"]),
                    int(baseline["n_samples"]), int(baseline["n_classes"]),
                    float(baseline["sfreq_hz"])),
            )
        except (KeyError, TypeError, ValueError, NeuriptError) as err:
            raise ContractError(f"{where}: model folder metadata (extra) is missing or malformed "
                                f"({type(err).__name__}: {err}); rewrite the folder by "
                                "fine-tuning again") from err

    def to_extra(self) -> dict[str, Any]:
        """The JSON form :meth:`from_extra` reads back."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["class_names"], out["group_names"] = list(self.class_names), list(self.group_names)
        out["ch_names"] = list(self.ch_names)
        out["baseline"] = None if self.baseline is None else to_dict(self.baseline)
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class ModelFolder:
    """A model folder's ``config.json``, parsed and checked (weights not read).

    Attributes
    ----------
    path : Path
    kind : {"classifier", "baseline"}
    contract : InputContract
    info : ClassifierInfo
    extra : dict
        The whole ``extra`` block (typed fields and free bookkeeping such as ``seed``).
    config : dict
        The raw ``config.json`` (the ``model`` / ``head`` sections NeurIPT rebuilds from).
    """

    path: Path
    kind: str
    contract: InputContract
    info: ClassifierInfo
    extra: dict[str, Any]
    config: dict[str, Any]


class LoadedClassifier(NamedTuple):
    """A classifier read back from a model folder.

    Attributes
    ----------
    model : nn.Module
        In eval mode, on the CPU; ``forward(signals, positions, channel_mask, group_mask)``.
    contract : InputContract
        What the model expects of its input (channels, rate, band, window, compression).
    info : ClassifierInfo
        Class names, pooling groups, task, init (the preprocessing is in ``contract``).
    kind : str
        ``"classifier"`` (NeurIPT) or ``"baseline"``.
    extra : dict
        The raw ``extra`` block (free bookkeeping beside the typed fields).
    """

    model: nn.Module
    contract: InputContract
    info: ClassifierInfo
    kind: str
    extra: dict[str, Any]


def window_shape(contract: InputContract, info: ClassifierInfo) -> tuple[int, int, int] | None:
    """(C, T, G) of the windows a classifier takes: its channels, the window at the contract's
    rate, its pooling groups (at least 1); None when it lists no channels. The shape of its
    ONNX graph and of its compiled forward."""
    channels = contract.channels or info.ch_names
    if not channels:
        return None
    n_samples = int(round(contract.window_s * contract.sfreq_hz))
    return len(channels), n_samples, max(len(info.group_names), 1)


def read_model_config(model_dir: str | os.PathLike) -> dict[str, Any]:
    """``config.json`` of a model or checkpoint folder as a dict (one line on any damage).

    Raises
    ------
    ContractError
        Not a folder with ``config.json`` and ``model.safetensors``, or invalid JSON.
    """
    path = Path(model_dir) / CONFIG_NAME
    if not path.is_file() or not (Path(model_dir) / WEIGHTS_NAME).is_file():
        raise ContractError(
            f"{model_dir}: not a model directory (expected {CONFIG_NAME} and {WEIGHTS_NAME}; "
            "a fine-tuning run keeps them in RUN/seed_<s>/model)"
        )
    return read_json(path, "model config", ContractError)


def contract_of(config: Mapping[str, Any], where: Any = CONFIG_NAME) -> InputContract:
    """The :class:`InputContract` stored in a ``config.json`` dict."""
    try:
        return InputContract.from_record(config.get("contract", {}),
                                         (config.get("extra") or {}).get("preprocess"))
    except (TypeError, NeuriptError) as err:
        raise ContractError(f"{where}: input contract does not match this neuript ({err})") from err


def read_model_folder(model_dir: str | os.PathLike) -> ModelFolder:
    """Parse and check a fine-tuned model folder's ``config.json`` (weights not read).

    Raises
    ------
    ContractError
        Missing files, invalid JSON, a kind that cannot predict (a pretraining checkpoint), a
        malformed contract or metadata, or a head whose class count disagrees with the names.
    """
    path = Path(model_dir)
    config = read_model_config(path)
    kind = config.get("kind", "")
    if kind not in KINDS:
        raise ContractError(
            f"{path}: config.json kind {kind!r} is not a fine-tuned classifier "
            "(expected 'classifier' or 'baseline'; a pretraining checkpoint cannot predict)"
        )
    where = path / CONFIG_NAME
    extra = dict(config.get("extra") or {})
    info = ClassifierInfo.from_extra(extra, where)
    n_out = (config.get("head") or {}).get("n_classes") if kind == "classifier" else (
        info.baseline.n_classes if info.baseline else None)
    if kind == "baseline" and info.baseline is None:
        raise ContractError(f"{where}: a baseline folder needs extra.baseline (build arguments)")
    if n_out is not None and int(n_out) != len(info.class_names):
        raise ContractError(f"{where}: the head has {n_out} outputs but {len(info.class_names)} "
                            f"class names {list(info.class_names)}")
    return ModelFolder(path, kind, contract_of(config, where), info, extra, config)


def load_classifier(model_dir: str | os.PathLike) -> LoadedClassifier:
    """Read a classifier written by :func:`save_classifier` (NeurIPT or baseline), strictly.

    Returns
    -------
    loaded : LoadedClassifier
        The model in eval mode on the CPU, its contract and its metadata.

    Raises
    ------
    ContractError
        As :func:`read_model_folder`, or unreadable / mismatched weights (keys named).
    """
    folder = read_model_folder(model_dir)
    if folder.kind == "baseline":
        from neuript.baselines import build
        from neuript.model.io import load_state, read_weights

        spec = folder.info.baseline
        assert spec is not None  # checked by read_model_folder
        model = build(spec.name, n_channels=spec.n_channels, n_samples=spec.n_samples,
                      n_classes=spec.n_classes, sfreq_hz=spec.sfreq_hz)
        load_state(model, read_weights(model_dir), source=folder.path / WEIGHTS_NAME)
    else:
        from neuript.model.neuript import NeurIPTClassifier

        model, _ = NeurIPTClassifier.from_pretrained(model_dir)
    model.eval()
    return LoadedClassifier(model, folder.contract, folder.info, folder.kind, folder.extra)


def save_classifier(model: nn.Module, out_dir: str | os.PathLike, contract: InputContract,
                    info: ClassifierInfo | Mapping[str, Any],
                    bookkeeping: Mapping[str, Any] | None = None) -> Path:
    """Write a fine-tuned classifier so :func:`load_classifier` can read it back.

    Parameters
    ----------
    model : nn.Module
        A ``NeurIPTClassifier`` (written by its own ``save_pretrained``) or a baseline built by
        ``neuript.baselines.build`` (then ``info.baseline`` holds its build arguments).
    out_dir : path-like
        Target folder (written atomically).
    contract : InputContract
        The input contract of the training data.
    info : ClassifierInfo | Mapping
        The typed metadata, or its ``extra`` form (checked by :meth:`ClassifierInfo.from_extra`
        before anything is written).
    bookkeeping : Mapping | None
        Free JSON stored beside it in ``extra`` (seed, best epoch …); keys of a Mapping
        ``info`` that are not :class:`ClassifierInfo` fields are kept the same way.

    Returns
    -------
    out_dir : Path
    """
    free = dict(bookkeeping or {})
    if not isinstance(info, ClassifierInfo):
        typed = {f.name for f in fields(ClassifierInfo)}
        free = {**{k: v for k, v in info.items() if k not in typed}, **free}
        info = ClassifierInfo.from_extra(info, out_dir)
    extra = {**free, **info.to_extra()}
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(out_dir, contract, extra)
        return Path(out_dir)
    if info.baseline is None:
        raise NeuriptError("save_classifier: a baseline needs info.baseline (build arguments)")

    def write(tmp: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_NAME))
        body = {"kind": "baseline", "contract": to_dict(contract), "extra": extra,
                "neuript_version": __version__}
        (tmp / CONFIG_NAME).write_text(json.dumps(body, indent=2))

    return atomic_directory(out_dir, write)


def resolve_init_dir(init: str) -> Path:
    """The checkpoint folder of ``init``: a shipped name (``neuript-small``,
    :mod:`neuript.weights`), a run folder with ``pretrained/``, or the folder itself.

    Raises
    ------
    ContractError
        Nothing with ``config.json`` + ``model.safetensors`` there.
    """
    from neuript.weights import NAMES, bundled_checkpoint

    if (shipped := bundled_checkpoint(init)) is not None:
        return shipped
    if init in NAMES and not Path(init).exists():
        raise ContractError(f"init={init!r}: the shipped checkpoint is missing from this "
                            "installation (rebuild it: python -m benchmarks.build_checkpoint)")
    root = Path(init).expanduser()
    for candidate in (root, root / "pretrained"):
        if (candidate / CONFIG_NAME).is_file() and (candidate / WEIGHTS_NAME).is_file():
            return candidate
    raise ContractError(
        f"init={init!r}: no checkpoint found (expected {CONFIG_NAME} + {WEIGHTS_NAME} in it or "
        "in its pretrained/ folder)"
    )
