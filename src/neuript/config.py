"""Typed, frozen configuration dataclasses: one per concern, serialisable to JSON/YAML.

Every field carries a one-line docstring. ``__post_init__`` validates. The resolved config is
written into every run directory and checkpoint (:func:`to_dict`), and read back with
:func:`from_dict`. Dotted overrides (``model.moe.expert_hidden=64``) go through :func:`override`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
import textwrap
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from neuript.errors import NeuriptError, check_option

SpatialCode = Literal["3d", "grid", "index", "none"]
PoolingScheme = Literal["functional", "hemisphere", "sagittal", "coronal", "mean"]
POOLING_SCHEMES: tuple[str, ...] = typing.get_args(PoolingScheme)
MontageName = Literal["tcp", "monopolar", "as_is", "auto"]
"""The named montages of :class:`PreprocessConfig` (a task may also take a channel list)."""
Compression = Literal["alaw", "none"]
"""Amplitude compression at the model input."""
Engine = Literal["torch", "onnx", "onnx-int8"]
"""Run a model folder with PyTorch, its ONNX export with ONNX Runtime, or the int8 export
(``predict``, ``stream``, ``neuript.online``)."""


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PreprocessConfig:
    """How a raw recording becomes model-ready windows (NEURIPT_SPEC §1). Part of the contract."""

    sfreq_hz: float = 64.0
    """Target sampling rate after resampling (Hz)."""
    l_freq_hz: float | None = 0.1
    """Band-pass low edge (Hz); None for no high-pass."""
    h_freq_hz: float | None = 30.0
    """Band-pass high edge (Hz); None for no low-pass."""
    notch_hz: float | None = 50.0
    """Mains frequency to notch (50 or 60 Hz) at the target rate; skipped (a no-op: the resampling
    anti-alias filter already removed it) when at or above the target Nyquist; None to skip."""
    montage: MontageName = "tcp"
    """Re-reference to the 20-channel TCP double banana, keep monopolar channels, keep as read, or
    ``"auto"``: TCP when the recording has every TCP electrode, else its recognised monopolar
    channels (per recording, so a mixed corpus holds several montages)."""
    window_s: float = 4.0
    """Window length (s); 4 s = 256 samples at 64 Hz for pretraining."""
    stride_s: float | None = None
    """Window stride (s); None means non-overlapping (stride = window)."""
    trim_edges_s: float = 0.0
    """Seconds dropped at the start and the end of each recording (the paper drops 60 s)."""
    min_duration_s: float = 0.0
    """Recordings shorter than this (after reading) are skipped (the paper uses 300 s)."""
    reject_abs_uv: float | None = 100.0
    """Reject a window if any |x| exceeds this (µV); None disables."""
    flat_std_uv: float | None = 0.1
    """Reject a window if any channel's standard deviation is below this (µV); None disables."""
    compression: Compression = "alaw"
    """Amplitude compression applied to µV values at the model input."""
    alaw_a: float = 0.25
    """The modified A-law's A (NEURIPT_SPEC §1)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if self.sfreq_hz <= 0:
            raise NeuriptError(f"PreprocessConfig.sfreq_hz must be > 0, got {self.sfreq_hz!r}")
        if self.window_s <= 0:
            raise NeuriptError(f"PreprocessConfig.window_s must be > 0, got {self.window_s!r}")
        if self.stride_s is not None and self.stride_s <= 0:
            raise NeuriptError(f"PreprocessConfig.stride_s must be > 0, got {self.stride_s!r}")
        if self.l_freq_hz is not None and self.h_freq_hz is not None:
            if not 0 < self.l_freq_hz < self.h_freq_hz:
                raise NeuriptError(
                    "PreprocessConfig band must satisfy 0 < l_freq_hz < h_freq_hz, got "
                    f"({self.l_freq_hz}, {self.h_freq_hz})"
                )
        if self.h_freq_hz is not None and self.h_freq_hz >= self.sfreq_hz / 2:
            raise NeuriptError(
                f"PreprocessConfig.h_freq_hz={self.h_freq_hz} must be below Nyquist "
                f"({self.sfreq_hz / 2} Hz at sfreq_hz={self.sfreq_hz})"
            )
        if not 0 < self.alaw_a < 1:
            raise NeuriptError(f"PreprocessConfig.alaw_a must be in (0, 1), got {self.alaw_a!r}")

    @property
    def window_samples(self) -> int:
        """Samples per window at the target rate."""
        return int(round(self.window_s * self.sfreq_hz))

    @property
    def stride_samples(self) -> int:
        """Samples between window starts at the target rate."""
        stride = self.window_s if self.stride_s is None else self.stride_s
        return int(round(stride * self.sfreq_hz))


OnUnknown = Literal["raise", "drop"]
"""What a channel without a known name or position does: skip the file (``raise``) or drop the
channel (``drop``)."""

SubjectNorm = Literal["none", "channel_std", "spectral"]
"""Subject-wise normalisation (:mod:`neuript.data.normalize`): ``none`` feeds windows as
recorded; ``channel_std`` applies one gain per (subject, channel); ``spectral`` equalises each
(subject, channel)'s average spectrum to a fixed 1/f shape, then scales as ``channel_std``."""


@dataclass(frozen=True)
class InputContract:
    """What a checkpoint expects of its input; stored with every checkpoint (NEURIPT_SPEC §1).

    It holds the whole :class:`PreprocessConfig` the model was trained on (rate, band, notch,
    window, montage, compression, rejection) plus what preprocessing does not say: units, the
    head frame of positions, the channels, subject normalisation. Fine-tuning and inference
    compare the data pipeline with it and refuse a mismatch; ``predict`` preprocesses a new
    recording with ``preprocess``.
    """

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    """The preprocessing of the training data (the task's, or the pretraining corpus's)."""
    units: Literal["uV"] = "uV"
    """Signal units before compression."""
    coord_frame: str = "colin27_1005_head_m"
    """The fixed head frame of electrode positions (metres)."""
    channels: tuple[str, ...] = ()
    """Canonical channel names the model was trained on (empty: any channel with a position)."""
    subject_norm: SubjectNorm = "none"
    """Not ``none``: the model was trained on windows normalised per subject
    (:mod:`neuript.data.normalize`, median window standard deviation ``subject_norm_uv``);
    inference normalises the same way, with gains from the recording itself or from
    calibration recordings of the same person."""
    subject_norm_uv: float = 10.0
    """The target of ``subject_norm`` (µV)."""
    any_montage: bool = False
    """True: trained on recordings that each kept their own channels (a task built with
    ``montage="per_recording"``; ``channels`` is then empty). Inference takes any recording's
    channels that have a position; a pooling group (lobe) its channels do not reach is pooled
    to zeros, as for the training montages that lacked it. False: every recording must map to
    ``channels`` (or the montage) and cover the training lobes."""

    # the preprocessing fields the checks and the model input read, by their old names
    sfreq_hz = property(lambda self: self.preprocess.sfreq_hz, doc="Sampling rate (Hz).")
    l_freq_hz = property(lambda self: self.preprocess.l_freq_hz, doc="Band-pass low edge (Hz).")
    h_freq_hz = property(lambda self: self.preprocess.h_freq_hz, doc="Band-pass high edge (Hz).")
    window_s = property(lambda self: self.preprocess.window_s,
                        doc="Window length (s) used in training (inference may use others).")
    montage = property(lambda self: self.preprocess.montage, doc="Montage used in training.")
    compression = property(lambda self: self.preprocess.compression,
                           doc="Amplitude compression applied to µV values.")
    alaw_a = property(lambda self: self.preprocess.alaw_a, doc="The A-law's A.")

    @classmethod
    def from_preprocess(
        cls, cfg: PreprocessConfig, channels: tuple[str, ...] = ()
    ) -> InputContract:
        """Build the contract that data prepared with ``cfg`` satisfies."""
        return cls(preprocess=cfg, channels=tuple(channels))

    @classmethod
    def from_record(cls, data: dict[str, Any],
                    preprocess: dict[str, Any] | None = None) -> InputContract:
        """Read a ``config.json`` ``contract`` block, of this layout or of the flat one before it.

        Folders written before the contract held a ``preprocess`` section kept seven of its
        fields at the top level (``sfreq_hz`` … ``alaw_a``); ``preprocess`` (the folder's old
        ``extra.preprocess``, when it has one) then gives the whole preprocessing, else those
        fields and the defaults do (a montage other than ``tcp``/``monopolar`` read as
        ``as_is``, as inference always treated it).

        Raises
        ------
        NeuriptError
            An unknown field, or values no config accepts.
        """
        if "preprocess" in data:
            return from_dict(cls, data)
        flat = ("sfreq_hz", "l_freq_hz", "h_freq_hz", "window_s", "montage", "compression",
                "alaw_a")
        rest = {k: v for k, v in data.items() if k not in flat}
        pre = dict(preprocess) if preprocess else {
            k: v for k, v in data.items() if k in flat and k != "montage"}
        if not preprocess:
            pre["montage"] = data["montage"] if data.get("montage") in ("tcp", "monopolar") \
                else "as_is"
        return from_dict(cls, {**rest, "preprocess": pre})

    def mismatches(self, other: InputContract, *, check_window: bool = False) -> list[str]:
        """List every field where ``other`` breaks this contract, as readable sentences."""
        keys = ["units", "sfreq_hz", "l_freq_hz", "h_freq_hz", "compression", "alaw_a"]
        keys += ["coord_frame", "window_s"] if check_window else ["coord_frame"]
        out = []
        for key in keys:
            mine, theirs = getattr(self, key), getattr(other, key)
            if mine != theirs:
                out.append(f"{key}: model expects {mine!r}, data has {theirs!r}")
        return out


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MoEConfig:
    """Progressive Mixture-of-Experts (NEURIPT_SPEC §3)."""

    experts_per_block: tuple[int, ...] = (0, 0, 2, 4, 4, 6)
    """Routed experts in each block's feed-forwards (0 = dense SwiGLU)."""
    expert_hidden: int = 512
    """Hidden width of each routed SwiGLU expert."""
    shared_hidden: int = 768
    """Hidden width of the always-on shared expert."""
    top_k: int | None = None
    """Experts per token; None means ceil(E / 2) per layer (the paper)."""
    gate: Literal["renorm", "softmax"] = "renorm"
    """Gates renormalised over the chosen k (paper) or full-softmax probabilities (authors')."""
    capacity: Literal["none", "n_over_e"] = "none"
    """No token dropping (paper) or a hard capacity of N/E tokens per expert (authors' code)."""
    noise_std: float = 0.001
    """Std of the Gaussian noise added to router logits in training."""
    importance_weight: float = 0.008
    """Weight of the importance loss (squared CV of summed router probabilities)."""
    balance_weight: float = 1.0
    """Weight of the load-balance loss E·Σ f_e·P_e."""

    def __post_init__(self) -> None:
        check_literals(self)
        if any(e < 0 for e in self.experts_per_block):
            raise NeuriptError(
                f"MoEConfig.experts_per_block must be >= 0: {self.experts_per_block}"
            )

    def k_for(self, n_experts: int) -> int:
        """Experts per token for a layer with ``n_experts`` routed experts."""
        k = math.ceil(n_experts / 2) if self.top_k is None else self.top_k
        return max(1, min(k, n_experts))


@dataclass(frozen=True)
class ModelConfig:
    """The NeurIPT encoder, decoder and head shapes (NEURIPT_SPEC §2–5)."""

    d_model: int = 768
    """Token width d."""
    n_heads: int = 8
    """Attention heads in both stages."""
    d_ff: int = 768
    """Hidden width of the dense SwiGLU feed-forwards."""
    merge_factors: tuple[int, ...] = (1, 4, 1, 2, 1, 2)
    """Segment-merge factor at the start of each block (1 = none); its length is the depth."""
    moe: MoEConfig = field(default_factory=MoEConfig)
    """Progressive MoE settings."""
    dropout: float = 0.1
    """Dropout in attention outputs and feed-forwards."""
    spatial_code: SpatialCode = "3d"
    """Spatial position code: 3D sinusoids, the authors' 0..49 grid, 1D channel index, or none."""
    grid_size: int = 50
    """Integer grid size per axis for ``spatial_code='grid'``."""
    decoder_layers: int | None = None
    """Pretraining decoder layers; None means depth + 1 (one per encoder level)."""
    decoder_stride: int = 1
    """Samples per decoder query token: 1 is the paper's decoder (one token per sample); r > 1
    folds r query tokens into one that predicts its r samples (docs/pretraining.md)."""
    head: Literal["linear", "mlp"] = "linear"
    """Classifier after pooling: a linear layer or a one-hidden-layer MLP."""
    head_hidden: int = 256
    """Hidden width of the MLP head."""
    head_norm: Literal["none", "batch", "layer"] = "layer"
    """Normalisation of the pooled features before the classifier: LayerNorm (default), none
    (the paper's text), or per-feature standardisation (BatchNorm without affine)."""

    merge_norm: Literal["layer", "none"] = "layer"
    """LayerNorm(m·d) inside segment merging (the paper), or none, which keeps each segment's
    amplitude in the residual stream (see docs/recipe.md)."""
    pool_stats: Literal["mean", "mean_logstd"] = "mean"
    """Statistics over time that IILP pools per channel: the time mean (the paper), or the mean
    and the log standard deviation (a log-power feature; see docs/recipe.md)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if self.d_model % self.n_heads:
            raise NeuriptError(
                f"ModelConfig.d_model={self.d_model} must be divisible by n_heads={self.n_heads}"
            )
        if len(self.moe.experts_per_block) != len(self.merge_factors):
            raise NeuriptError(
                "ModelConfig: moe.experts_per_block and merge_factors need one entry per block, "
                f"got {len(self.moe.experts_per_block)} and {len(self.merge_factors)}"
            )
        if self.decoder_stride < 1:
            raise NeuriptError(f"ModelConfig.decoder_stride must be >= 1: {self.decoder_stride}")
        if math.prod(self.merge_factors) % self.decoder_stride:
            raise NeuriptError(f"ModelConfig.decoder_stride={self.decoder_stride} must divide the "
                               f"total segment merge {math.prod(self.merge_factors)}")
        if any(m < 1 for m in self.merge_factors):
            raise NeuriptError(f"ModelConfig.merge_factors must be >= 1: {self.merge_factors}")

    @property
    def depth(self) -> int:
        """Number of encoder blocks."""
        return len(self.merge_factors)

    @property
    def n_levels(self) -> int:
        """Encoder levels: the embedding plus every block's output."""
        return self.depth + 1

    @property
    def total_merge(self) -> int:
        """Product of merge factors: window lengths must be divisible by it."""
        return math.prod(self.merge_factors)


@dataclass(frozen=True)
class MaskConfig:
    """Masked pretraining (NEURIPT_SPEC §4)."""

    strategy: Literal["aamp", "random"] = "aamp"
    """Amplitude-aware masking (paper) or BERT-style random masking (baseline)."""
    ratios: tuple[float, ...] = (0.20, 0.35, 0.50)
    """Mask ratio drawn per window from these values (one value = fixed ratio)."""
    replace_mask: float = 0.8
    """Share of masked tokens replaced by the learned [mask] embedding."""
    replace_random: float = 0.1
    """Share of masked tokens replaced by the embedding of a random token of the batch."""
    loss_p: float = 2.0
    """Exponent p of the ℓp reconstruction loss on masked positions."""

    def __post_init__(self) -> None:
        check_literals(self)
        if not self.ratios or any(not 0.0 < r < 1.0 for r in self.ratios):
            raise NeuriptError(f"MaskConfig.ratios must be in (0, 1), got {self.ratios!r}")
        if self.replace_mask < 0 or self.replace_random < 0 or (
            self.replace_mask + self.replace_random > 1.0 + 1e-9
        ):
            raise NeuriptError(
                "MaskConfig.replace_mask + replace_random must be within [0, 1], got "
                f"{self.replace_mask} + {self.replace_random}"
            )
        if self.loss_p <= 0:
            raise NeuriptError(f"MaskConfig.loss_p must be > 0, got {self.loss_p!r}")


@dataclass(frozen=True)
class AugmentConfig:
    """Label-preserving augmentations of training windows, applied in µV before compression.

    All off (0) by default in this class; the fine-tuning defaults switch some on (docs/recipe.md).
    """

    scale_range: float = 0.0
    """Each window is multiplied by a factor drawn from U(1 − r, 1 + r); 0 disables."""
    noise_uv: float = 0.0
    """Standard deviation (µV) of white Gaussian noise added to every sample; 0 disables."""
    channel_dropout: float = 0.0
    """Probability that a channel of a window is zeroed; 0 disables."""
    time_shift_s: float = 0.0
    """Each window is rolled in time by up to ± this many seconds (circular); 0 disables."""

    def __post_init__(self) -> None:
        check_literals(self)
        if not 0.0 <= self.scale_range < 1.0:
            raise NeuriptError(
                f"AugmentConfig.scale_range must be in [0, 1), got {self.scale_range!r}"
            )
        if not 0.0 <= self.channel_dropout < 1.0:
            raise NeuriptError(
                f"AugmentConfig.channel_dropout must be in [0, 1), got {self.channel_dropout!r}"
            )
        if self.noise_uv < 0 or self.time_shift_s < 0:
            raise NeuriptError("AugmentConfig.noise_uv and time_shift_s must be >= 0, got "
                               f"{self.noise_uv!r} and {self.time_shift_s!r}")

    @property
    def active(self) -> bool:
        """True when any augmentation is switched on."""
        return any((self.scale_range, self.noise_uv, self.channel_dropout, self.time_shift_s))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a one-cycle schedule (NEURIPT_SPEC §6)."""

    lr: float = 3e-4
    """Peak learning rate of the one-cycle schedule."""
    betas: tuple[float, float] = (0.9, 0.98)
    """AdamW betas."""
    weight_decay: float = 5e-3
    """AdamW weight decay (matrices only; norms, biases and embeddings are exempt)."""
    grad_clip: float | None = 100.0
    """Global gradient-norm clip; None disables."""
    div_factor: float = 25.0
    """One-cycle: initial LR = lr / div_factor."""
    final_div_factor: float = 1e4
    """One-cycle: final LR = initial LR / final_div_factor."""
    pct_start: float = 0.15
    """One-cycle: share of steps spent warming up."""

    def __post_init__(self) -> None:
        check_literals(self)
        if self.lr <= 0:
            raise NeuriptError(f"OptimConfig.lr must be > 0, got {self.lr!r}")
        if not 0 < self.pct_start < 1:
            raise NeuriptError(f"OptimConfig.pct_start must be in (0, 1), got {self.pct_start!r}")


@dataclass(frozen=True)
class TrainConfig:
    """What every training run shares (pretraining and fine-tuning)."""

    batch_size: int = 32
    """Windows per optimiser step per process, before accumulation."""
    grad_accum: int = 1
    """Micro-batches accumulated per optimiser step."""
    epochs: int | None = 10
    """Stop after this many epochs (None: use max_steps or max_minutes)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps."""
    max_minutes: float | None = None
    """Stop after this many minutes of wall time."""
    seed: int = 520
    """Base seed; each process uses seed + rank."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16 autocast (GPU, or CPU where supported) or plain fp32."""
    compile: bool = False
    """Wrap the model in torch.compile."""
    num_workers: int = 0
    """DataLoader worker processes."""
    log_every: int = 10
    """Optimiser steps between log lines."""
    ckpt_every: int = 200
    """Optimiser steps between checkpoints (0: only at the end)."""
    keep_last: int = 3
    """Checkpoints kept on disk."""
    device: str = "auto"
    """'auto' (CUDA if available), 'cpu', or 'cuda[:i]'."""
    threads: int | None = None
    """torch CPU threads; None leaves torch's default."""

    def __post_init__(self) -> None:
        check_literals(self)
        if self.batch_size < 1 or self.grad_accum < 1:
            raise NeuriptError("TrainConfig.batch_size and grad_accum must be >= 1")
        if self.epochs is None and self.max_steps is None and self.max_minutes is None:
            raise NeuriptError("TrainConfig needs one of epochs, max_steps or max_minutes")


# --------------------------------------------------------------------------------------------
# (de)serialisation and dotted overrides
# --------------------------------------------------------------------------------------------
T = TypeVar("T")


@functools.cache
def _literal_values(tp: Any) -> tuple[Any, ...]:
    """The allowed values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation; else ()."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        values = tuple(v for a in args for v in _literal_values(a))
        return values + ((None,) if type(None) in args and values else ())
    return ()


@functools.cache
def _literal_fields(cls: type) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, allowed) for f in dataclasses.fields(cls)
                 if (allowed := _literal_values(hints[f.name])))


def check_literals(cfg: Any) -> None:
    """Refuse any field of dataclass ``cfg`` whose value is not one its ``Literal`` type allows.

    The option sets live once, in the type hints; the error names ``Class.field``, the value and
    every allowed one (:func:`~neuript.errors.check_option`).
    """
    for name, allowed in _literal_fields(type(cfg)):
        check_option(f"{type(cfg).__name__}.{name}", getattr(cfg, name), allowed)


def field_docs(cls: type) -> dict[str, str]:
    """The one-line attribute docstring of every field of config class ``cls`` (by name).

    Read from the class source with :mod:`ast`, so the docs live once, beside the fields, and
    the CLI help and the YAML presets quote them instead of copying them.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (e.g. a frozen app): no docs, not an error
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def to_dict(cfg: Any) -> dict[str, Any]:
    """Return a JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    return dataclasses.asdict(cfg)


def _coerce(tp: Any, value: Any) -> Any:
    """Convert a JSON/YAML value to the annotated field type ``tp``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value)
            except (TypeError, ValueError):
                continue
        return value
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value))
    if tp is float and isinstance(value, int | float | str):
        return float(value)
    if tp is int and isinstance(value, int | str) and not isinstance(value, bool):
        return int(value)
    if tp is bool and isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {value!r}")
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build config class ``cls`` from a dict, refusing unknown keys by name."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise NeuriptError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def override(cfg: T, dotted: dict[str, Any]) -> T:
    """Return ``cfg`` with dotted-path overrides applied (``{"moe.expert_hidden": 64}``)."""
    data = to_dict(cfg)
    for path, value in dotted.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise NeuriptError(f"override {path!r}: {part!r} is not a config section")
            node = node[part]
        if leaf not in node:
            raise NeuriptError(f"override {path!r}: unknown field {leaf!r}; known: {sorted(node)}")
        node[leaf] = value
    return from_dict(type(cfg), data)
