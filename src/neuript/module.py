"""NeurIPT as a plain PyTorch module for your own training loop: ``(B, C, T)`` in, logits out.

:func:`build_module` takes braindecode-style arguments (``n_chans``, ``n_outputs``, ``n_times``,
``sfreq``, ``chs_info`` = MNE's ``info["chs"]``) and returns a :class:`NeurIPTModule` whose
channel positions and pooling groups are fixed at construction, so ``forward`` needs only the
signals. The MoE auxiliary loss of the last forward is ``module.aux_loss``; add
``module.aux_weight * module.aux_loss`` to your task loss, as the package's own fine-tuning does.

**Input.** By default ``x`` is what the package's models see: µV after the package's
preprocessing (band-pass to the contract's band, resampling to its rate) and its A-law
compression (``neuript.data.preprocess.alaw``). With ``raw_input=True`` ``x`` is in volts and the
module applies the µV scaling and the A-law itself. Band-pass filtering and resampling are the
caller's job in both cases (e.g. ``raw.filter(0.1, 30).resample(64)`` before epoching); a
pretrained ``init`` refuses an ``sfreq`` other than its contract's.

**Positions** (metres, fixed head frame): a channel with a 10-05 name (``"Fp1"``, ``"EEG Fp1"``,
bipolar ``"Fp1-F7"`` at the midpoint) takes the package's ``colin27_1005`` position, the frame
every model was trained in; any other channel takes ``loc[:3]`` of its ``chs_info`` entry
(:func:`neuript.data.mne_bridge.custom_positions`, the same rule as ``Recording.from_mne``).
``chs_info`` is read as plain dicts: this module does not import MNE, and ``neuript.model``
imports nothing from MNE or ``neuript.data``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neuript.errors import ContractError, NeuriptError
from neuript.model.neuript import NeurIPTClassifier
from neuript.model.outputs import ClassifierOutput

log = logging.getLogger(__name__)

__all__ = ["NeurIPTModule", "build_module"]


class NeurIPTModule(nn.Module):
    """A NeurIPT classifier over one fixed channel set.

    Parameters
    ----------
    classifier : neuript.model.neuript.NeurIPTClassifier
        The network (its weights are this module's, under ``classifier.``).
    ch_names : sequence of str, length C
        Channel names (canonical names for 10-05 electrodes).
    positions : ndarray, shape (C, 3)
        Channel positions (metres, fixed head frame).
    group_mask : ndarray, shape (G, C), bool
        Pooling groups, in the order of ``classifier.group_names``.
    sfreq_hz : float
        Sampling rate the input must have (Hz).
    n_times : int
        Samples per window the module was built for (any length the encoder accepts works).
    raw_input : bool
        Input in volts (scaled to µV and A-law compressed inside) instead of compressed µV.
    alaw_a : float | None
        The A-law's A for ``raw_input``; None: no compression (a model trained without it).
    """

    def __init__(self, classifier: NeurIPTClassifier, ch_names: Sequence[str],
                 positions: np.ndarray, group_mask: np.ndarray, *, sfreq_hz: float,
                 n_times: int, raw_input: bool = False, alaw_a: float | None = 0.25) -> None:
        super().__init__()
        self.classifier = classifier
        self.ch_names = tuple(ch_names)
        self.sfreq_hz, self.n_times = float(sfreq_hz), int(n_times)
        self.raw_input, self.alaw_a = bool(raw_input), alaw_a
        positions_t = torch.as_tensor(np.asarray(positions, np.float32))
        group_mask_t = torch.as_tensor(np.asarray(group_mask, bool))
        assert positions_t.shape == (len(self.ch_names), 3), positions_t.shape
        assert group_mask_t.shape == (len(classifier.group_names), len(self.ch_names))
        self.register_buffer("positions", positions_t, persistent=False)  # (C, 3)
        self.register_buffer("group_mask", group_mask_t, persistent=False)  # (G, C)
        self.aux_loss: Tensor | None = None

    @property
    def aux_weight(self) -> float:
        """Weight of :attr:`aux_loss` in the training loss (0.8, the paper's)."""
        return float(self.classifier.aux_weight)

    def model_input(self, x: Tensor) -> Tensor:
        """(B, C, T) input → the network's compressed µV (identity unless ``raw_input``)."""
        if not self.raw_input:
            return x
        from neuript.data.preprocess import alaw

        x_uv = x * 1e6
        return alaw(x_uv, self.alaw_a) if self.alaw_a is not None else x_uv

    def forward_output(self, x: Tensor) -> ClassifierOutput:
        """Logits, MoE auxiliary loss and pooled features of ``x`` (B, C, T)."""
        if x.ndim != 3 or x.shape[1] != len(self.ch_names):
            raise NeuriptError(f"NeurIPTModule expects (B, {len(self.ch_names)}, T) input, got "
                               f"shape {tuple(x.shape)}")
        b, c, _ = x.shape
        signals = self.model_input(x.float())
        return self.classifier(signals, self.positions.expand(b, c, 3),
                               torch.ones(b, c, dtype=torch.bool, device=x.device),
                               self.group_mask.expand(b, -1, c))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, K) of ``x`` (B, C, T); sets :attr:`aux_loss` (a scalar tensor)."""
        out = self.forward_output(x)
        self.aux_loss = out.aux_loss
        return out.logits


def channel_layout(
    n_chans: int, chs_info: Sequence[Mapping[str, Any]] | None, ch_names: Sequence[str] | None,
) -> tuple[tuple[str, ...], np.ndarray]:
    """Canonical names and positions (C, 3) of the channels (module docstring rules).

    Raises
    ------
    ChannelError
        A channel has neither a 10-05 name nor a location in ``chs_info``.
    """
    from neuript.data.mne_bridge import custom_positions
    from neuript.data.montage import canonical_name, channel_position

    if chs_info is not None:
        names = [str(ch["ch_name"]) for ch in chs_info]
        if ch_names is not None and list(ch_names) != names:
            raise NeuriptError(f"ch_names {list(ch_names)} differ from chs_info's {names}")
    elif ch_names is not None:
        names = [str(n) for n in ch_names]
    else:
        raise NeuriptError("build_module needs chs_info= (MNE info['chs']) or ch_names=")
    if len(names) != n_chans:
        raise NeuriptError(f"n_chans={n_chans} but {len(names)} channels are named")
    extra = custom_positions(chs_info or [], names, "chs_info") or {}
    canonical = tuple(canonical_name(n) or n for n in names)
    positions = np.array([channel_position(n, extra) for n in names]).reshape(len(names), 3)
    return canonical, positions


def build_module(
    n_chans: int,
    n_outputs: int,
    n_times: int,
    sfreq: float,
    *,
    chs_info: Sequence[Mapping[str, Any]] | None = None,
    ch_names: Sequence[str] | None = None,
    init: str | None = None,
    preset: str = "small",
    raw_input: bool = False,
    scheme: str = "functional",
    model_overrides: dict[str, Any] | None = None,
) -> NeurIPTModule:
    """Build a :class:`NeurIPTModule`, optionally with pretrained or fine-tuned weights.

    Parameters
    ----------
    n_chans : int
        Channels C of the input.
    n_outputs : int
        Logits K.
    n_times : int
        Samples per window T (must be divisible by the model's merge product, 16 for ``small``).
    sfreq : float
        Sampling rate of the input (Hz); must equal a pretrained ``init``'s contract (64 Hz).
    chs_info : list of dict | None
        MNE ``info["chs"]``: names from ``"ch_name"``, custom positions from ``"loc"[:3]``.
    ch_names : list of str | None
        Channel names when there is no ``chs_info`` (10-05 names only).
    init : str | None
        None or ``"scratch"``: random weights. ``"neuript-small"`` or a pretraining checkpoint:
        its encoder and a fresh head. A fine-tuned model folder: every weight (its ``n_outputs``
        and pooling groups must match).
    preset : str
        Model preset from scratch.
    raw_input : bool
        Take volts and apply µV scaling + A-law inside (see the module docstring).
    scheme : str
        Pooling groups: ``"functional"`` (IILP lobes), ``"hemisphere"``, ``"sagittal"``,
        ``"coronal"``, ``"mean"``.
    model_overrides : dict | None
        Dotted ModelConfig overrides (from scratch, or matching the checkpoint's shapes).

    Returns
    -------
    module : NeurIPTModule
        In training mode; ``module(x)`` with ``x`` (B, C, T) returns logits (B, K).
    """
    from neuript.data.montage import pooling_groups
    from neuript.model_folder import contract_of, read_model_config, resolve_init_dir
    from neuript.train.finetune import FinetuneRunConfig
    from neuript.train.finetune_seed import neuript_model_config

    names, positions = channel_layout(n_chans, chs_info, ch_names)
    groups = pooling_groups(list(names), positions, scheme)
    init = init or "scratch"
    run = FinetuneRunConfig(init=init, preset=preset, scheme=scheme,  # type: ignore[arg-type]
                            model_overrides=dict(model_overrides or {}))
    model_cfg = neuript_model_config(run)
    if n_times % model_cfg.total_merge:
        raise NeuriptError(f"n_times={n_times} must be divisible by the model's merge product "
                           f"{model_cfg.total_merge} (merge_factors {model_cfg.merge_factors})")
    alaw_a: float | None = 0.25
    classifier = NeurIPTClassifier(model_cfg, n_outputs, groups.names)
    if init != "scratch":
        init_dir = resolve_init_dir(init)
        config = read_model_config(init_dir)
        contract = contract_of(config)
        if float(sfreq) != contract.sfreq_hz:
            raise ContractError(f"{init}: the model expects input at {contract.sfreq_hz:g} Hz, "
                                f"got sfreq={sfreq!r}; resample before the module")
        alaw_a = contract.alaw_a if contract.compression == "alaw" else None
        if config.get("kind") == NeurIPTClassifier.kind:
            classifier = _fine_tuned(init_dir, n_outputs, groups.names)
        else:
            report = classifier.load_encoder(init_dir)
            log.info("encoder loaded from %s: %d missing, %d unexpected keys", init,
                     len(report.missing), len(report.unexpected))
        log.info("%s expects %s µV band-passed %s-%s Hz at %g Hz (the caller's job)", init,
                 contract.compression, contract.l_freq_hz, contract.h_freq_hz, contract.sfreq_hz)
    return NeurIPTModule(classifier.train(), names, positions, groups.mask, sfreq_hz=sfreq,
                         n_times=n_times, raw_input=raw_input, alaw_a=alaw_a)


def _fine_tuned(init_dir: Any, n_outputs: int, group_names: tuple[str, ...]) -> NeurIPTClassifier:
    """Every weight of a fine-tuned classifier, checked against the requested head."""
    model, _ = NeurIPTClassifier.from_pretrained(init_dir)
    if model.n_classes != n_outputs or tuple(model.group_names) != tuple(group_names):
        raise ContractError(
            f"{init_dir}: a fine-tuned model with {model.n_classes} outputs over groups "
            f"{list(model.group_names)}; requested {n_outputs} over {list(group_names)}"
        )
    return model
