"""The two top-level models: AAMP pretraining (encoder + decoder) and the IILP classifier.

Shapes: ``B`` windows, ``C`` channels (padded; ``channel_mask``), ``T`` samples, ``G`` pooling
groups, ``K`` classes, ``d`` width.

Both models share the parameter names ``embedding.*`` (:class:`TokenEmbedding`) and
``encoder.*`` (:class:`NeurIPTEncoder`), so a classifier loads a pretrained encoder by name
(:meth:`NeurIPTClassifier.load_encoder`). Checkpoints are directories of ``model.safetensors``
and ``config.json`` (:mod:`neuript.model.io`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from neuript.config import InputContract, MaskConfig, ModelConfig
from neuript.errors import ContractError, NeuriptError
from neuript.model.decoder import DecoderOutput, NeurIPTDecoder
from neuript.model.embed import TokenEmbedding
from neuript.model.encoder import EncoderOutput, NeurIPTEncoder
from neuript.model.heads import PoolingHead
from neuript.model.io import (
    CheckpointMeta,
    LoadReport,
    build_config,
    load_state,
    parse_meta,
    read_config,
    read_weights,
    write_checkpoint,
)
from neuript.model.masking import REPLACE_MASK, REPLACE_RANDOM, MaskSpec, draw_donors, make_mask
from neuript.model.outputs import ClassifierOutput

log = logging.getLogger(__name__)

ENCODER_PREFIXES: tuple[str, ...] = ("embedding.", "encoder.")
"""State-dict prefixes of the weights shared by pretraining and fine-tuning."""


class PretrainOutput(NamedTuple):
    """What :meth:`NeurIPTPretrain.forward` returns.

    Attributes
    ----------
    loss : Tensor, scalar
        ``recon_loss + aux_weight · aux_loss``: the quantity to minimise.
    recon_loss : Tensor, scalar
        Mean of |pred − target|^p over masked samples of real channels.
    aux_loss : Tensor, scalar
        The encoder's MoE auxiliary loss, before ``aux_weight``.
    pred : Tensor, shape (B, C, T)
        Reconstruction of the model input (compressed µV).
    mask : Tensor, shape (B, C, T), bool
        True where a sample was masked.
    """

    loss: Tensor
    recon_loss: Tensor
    aux_loss: Tensor
    pred: Tensor
    mask: Tensor


def no_decay_names(module: nn.Module) -> set[str]:
    """Names of parameters exempt from weight decay.

    Every parameter with fewer than 2 dimensions (biases, norm scales, the [mask] token) and
    every parameter of a LayerNorm or a learned position table (``nn.Embedding``).
    """
    exempt = {name for name, p in module.named_parameters() if p.ndim < 2}
    for mod_name, sub in module.named_modules():
        if isinstance(sub, (nn.LayerNorm, nn.Embedding)):
            exempt |= {f"{mod_name}.{n}" for n, _ in sub.named_parameters()}
    return exempt


def _check_inputs(signals: Tensor, positions: Tensor, channel_mask: Tensor) -> None:
    """Assert the (B, C, T) / (B, C, 3) / (B, C) shapes every model forward expects."""
    assert signals.ndim == 3, signals.shape
    b, c, _ = signals.shape
    assert positions.shape == (b, c, 3), (signals.shape, positions.shape)
    assert channel_mask.shape == (b, c) and channel_mask.dtype == torch.bool, channel_mask.shape


class NeurIPTPretrain(nn.Module):
    """Encoder + decoder trained by amplitude-aware masked reconstruction (NEURIPT_SPEC §4).

    Parameters
    ----------
    cfg : ModelConfig
    mask_cfg : MaskConfig
        Masking strategy, ratios, BERT replacement shares and the loss exponent p.
    aux_weight : float
        Weight of the MoE auxiliary loss in ``loss`` (0.8 in the paper).
    """

    kind = "pretrain"

    def __init__(self, cfg: ModelConfig, mask_cfg: MaskConfig | None = None,
                 aux_weight: float = 0.8) -> None:
        super().__init__()
        self.cfg, self.mask_cfg, self.aux_weight = cfg, mask_cfg or MaskConfig(), aux_weight
        self.embedding = TokenEmbedding(cfg.d_model)
        self.mask_token = nn.Parameter(torch.randn(cfg.d_model) * 0.02)
        self.encoder = NeurIPTEncoder(cfg)
        self.decoder = NeurIPTDecoder(cfg)

    # ---- the recipe -------------------------------------------------------------------------
    def forward(self, signals: Tensor, positions: Tensor, channel_mask: Tensor,
                generator: torch.Generator | None = None,
                mask: MaskSpec | None = None) -> PretrainOutput:
        """Mask, encode, decode and score one batch.

        Parameters
        ----------
        signals : Tensor, shape (B, C, T), float
            Model input: A-law compressed µV (``Batch.signals``); also the target.
        positions : Tensor, shape (B, C, 3), metres
        channel_mask : Tensor, shape (B, C), bool
        generator : torch.Generator | None
            Drives every random draw (mask, replacement, donors) when given; it must live on
            the device of ``signals``. None uses torch's global generator.
        mask : MaskSpec | None
            A precomputed mask (tests, evaluation); drawn from ``mask_cfg`` when None.

        Returns
        -------
        out : PretrainOutput
        """
        _check_inputs(signals, positions, channel_mask)
        spec = mask if mask is not None else self.draw_mask(signals, channel_mask, generator)
        tokens = self.embed(signals)
        encoded = self.encode(self.apply_mask(tokens, spec, channel_mask, generator), positions,
                              channel_mask, spec)
        decoded = self.decode(tokens, spec, positions, channel_mask, encoded)
        recon = self.reconstruction_loss(decoded.pred, signals, spec.mask, channel_mask)
        loss = recon + self.aux_weight * encoded.aux_loss
        return PretrainOutput(loss, recon, encoded.aux_loss, decoded.pred, spec.mask)

    # ---- the steps --------------------------------------------------------------------------
    def embed(self, signals: Tensor) -> Tensor:
        """One token per sample: (B, C, T) → (B, C, T, d)."""
        return self.embedding(signals)

    def draw_mask(self, signals: Tensor, channel_mask: Tensor,
                  generator: torch.Generator | None = None) -> MaskSpec:
        """Draw a :class:`MaskSpec` per ``mask_cfg`` (padded channels are never masked)."""
        return make_mask(signals, self.mask_cfg, generator, channel_mask)

    def apply_mask(self, tokens: Tensor, spec: MaskSpec, channel_mask: Tensor,
                   generator: torch.Generator | None = None) -> Tensor:
        """Replace masked tokens by [mask], a random visible token's embedding, or themselves.

        Parameters
        ----------
        tokens : Tensor, shape (B, C, T, d)
        spec : MaskSpec
        channel_mask : Tensor, shape (B, C), bool
        generator : torch.Generator | None

        Returns
        -------
        tokens : Tensor, shape (B, C, T, d)
            A new tensor: the encoder's input.
        """
        masked = spec.mask & (spec.replace == REPLACE_MASK)
        out = torch.where(masked[..., None], self.mask_token.to(tokens.dtype), tokens)
        swap = spec.mask & (spec.replace == REPLACE_RANDOM)
        if bool(swap.any()):
            donor = draw_donors(spec, channel_mask, generator)  # (B, C, T) flat token indices
            donors = tokens.flatten(0, 2)[donor.flatten()].view_as(tokens)
            out = torch.where(swap[..., None], donors, out)
        return out

    def encode(self, tokens: Tensor, positions: Tensor, channel_mask: Tensor,
               spec: MaskSpec) -> EncoderOutput:
        """Run the encoder with masked tokens hidden as keys."""
        return self.encoder(tokens, positions, channel_mask, spec.mask)

    def decode(self, tokens: Tensor, spec: MaskSpec, positions: Tensor, channel_mask: Tensor,
               encoded: EncoderOutput) -> DecoderOutput:
        """Reconstruct from queries that carry [mask] at every masked position."""
        queries = torch.where(spec.mask[..., None], self.mask_token.to(tokens.dtype), tokens)
        return self.decoder(queries, positions, channel_mask, encoded.levels, encoded.masks,
                            self.mask_token)

    def reconstruction_loss(self, pred: Tensor, target: Tensor, mask: Tensor,
                            channel_mask: Tensor) -> Tensor:
        """Mean of |pred − target|^p over masked samples of real channels.

        Parameters
        ----------
        pred, target : Tensor, shape (B, C, T)
        mask : Tensor, shape (B, C, T), bool
        channel_mask : Tensor, shape (B, C), bool

        Returns
        -------
        loss : Tensor, scalar
        """
        scored = (mask & channel_mask[..., None]).to(pred.dtype)
        error = (pred - target).abs().pow(self.mask_cfg.loss_p)
        return (error * scored).sum() / scored.sum().clamp(min=1.0)

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay: [mask] token, biases, norms, tables."""
        return no_decay_names(self)

    # ---- checkpoints ------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, contract: InputContract,
                        extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` atomically into ``directory``."""
        config = build_config(self.kind, self.cfg, contract, extra, mask=self.mask_cfg)
        config["aux_weight"] = self.aux_weight
        return write_checkpoint(directory, self.state_dict(), config)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike,
                        strict: bool = True) -> tuple[NeurIPTPretrain, CheckpointMeta]:
        """Rebuild a pretraining model from a checkpoint directory or shipped name (eval mode).

        Raises
        ------
        ContractError
            Wrong ``kind``, unreadable config or weights, shape mismatches, or (``strict``)
            missing / unexpected keys.
        """
        from neuript.weights import bundled_checkpoint

        directory = bundled_checkpoint(str(directory)) or directory  # "neuript-small"
        config = read_config(directory, cls.kind)
        meta = parse_meta(directory, config)
        model = cls(meta.model, meta.mask, aux_weight=float(config.get("aux_weight", 0.8)))
        report = load_state(model, read_weights(directory), source=directory, strict=strict)
        return model.eval(), _with_report(meta, report)


class NeurIPTClassifier(nn.Module):
    """Encoder + Intra-Inter Lobe Pooling head (NEURIPT_SPEC §5).

    Parameters
    ----------
    cfg : ModelConfig
    n_classes : int
        Logits K (use 2 for a binary task; probabilities are a softmax).
    group_names : tuple of str
        Names of the pooling groups (lobes), in the order of ``group_mask``'s G axis.
    aux_weight : float
        Weight the training loop gives ``ClassifierOutput.aux_loss`` (0.8–1 in the paper);
        stored here and in checkpoints, not applied inside ``forward``.
    """

    kind = "classifier"

    def __init__(self, cfg: ModelConfig, n_classes: int, group_names: tuple[str, ...],
                 aux_weight: float = 0.8) -> None:
        super().__init__()
        if not group_names:
            raise NeuriptError("NeurIPTClassifier.group_names must name at least one group")
        self.cfg, self.group_names, self.aux_weight = cfg, tuple(group_names), aux_weight
        self.n_classes = n_classes
        self.embedding = TokenEmbedding(cfg.d_model)
        self.encoder = NeurIPTEncoder(cfg)
        self.head = PoolingHead(cfg.d_model, cfg.n_levels, len(self.group_names), n_classes,
                                cfg.head, cfg.head_hidden, cfg.dropout, cfg.head_norm,
                                cfg.pool_stats)

    def forward(self, signals: Tensor, positions: Tensor, channel_mask: Tensor,
                group_mask: Tensor) -> ClassifierOutput:
        """Encode, pool and classify.

        Parameters
        ----------
        signals : Tensor, shape (B, C, T), float
            A-law compressed µV.
        positions : Tensor, shape (B, C, 3), metres
        channel_mask : Tensor, shape (B, C), bool
        group_mask : Tensor, shape (B, G, C), bool

        Returns
        -------
        out : ClassifierOutput
            ``logits`` (B, K), ``aux_loss`` (MoE, before ``aux_weight``), ``features`` (B, F).
        """
        encoded = self.forward_features(signals, positions, channel_mask)
        features = self.pool(encoded.levels, channel_mask, group_mask)
        return ClassifierOutput(self.forward_head(features), encoded.aux_loss, features)

    def forward_features(self, signals: Tensor, positions: Tensor,
                         channel_mask: Tensor) -> EncoderOutput:
        """Embed and encode (no token mask): every level for pooling."""
        _check_inputs(signals, positions, channel_mask)
        return self.encoder(self.embedding(signals), positions, channel_mask, None)

    def pool(self, levels: list[Tensor], channel_mask: Tensor, group_mask: Tensor) -> Tensor:
        """IILP over every level: (B, n_levels · G · d)."""
        return self.head.pool(levels, channel_mask, group_mask)

    def forward_head(self, features: Tensor) -> Tensor:
        """Classify pooled features: (B, F) → logits (B, K)."""
        return self.head.forward_head(features)

    # ---- fine-tuning helpers ----------------------------------------------------------------
    def reset_head(self, n_classes: int) -> None:
        """Replace the classifier with a fresh one of ``n_classes`` outputs (pooling unchanged)."""
        self.head.reset_classifier(n_classes)
        self.n_classes = n_classes

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay: biases, norms, position tables."""
        return no_decay_names(self)

    def layer_groups(self) -> list[list[str]]:
        """Parameter names from input to output: embedding, each encoder block, head.

        Group 0 also holds encoder parameters outside the blocks. Use with layer-wise LR decay
        (group i gets ``lr · decay^(n_groups − 1 − i)``).
        """
        groups: list[list[str]] = [[] for _ in range(self.cfg.depth + 2)]
        for name, _ in self.named_parameters():
            if name.startswith("head."):
                groups[-1].append(name)
            elif name.startswith("encoder.blocks."):
                groups[1 + int(name.split(".")[2])].append(name)
            else:
                groups[0].append(name)
        return groups

    @classmethod
    def _from_encoder(cls, directory: str | os.PathLike, strict: bool, n_classes: int | None,
                      group_names: tuple[str, ...] | None,
                      ) -> tuple[NeurIPTClassifier, CheckpointMeta]:
        """A classifier with a pretraining checkpoint's encoder and a fresh head."""
        from neuript.data.montage import FUNCTIONAL_LOBES

        if n_classes is None:
            raise ContractError(f"{directory}: a pretraining checkpoint has no classifier head; "
                                "pass n_classes= (and group_names=) to build one on its encoder")
        meta = parse_meta(directory, read_config(directory, NeurIPTPretrain.kind))
        model = cls(meta.model, n_classes, tuple(group_names or FUNCTIONAL_LOBES))
        report = model.load_encoder(directory, strict=strict)
        return model.eval(), _with_report(meta, report)

    def freeze_encoder(self, flag: bool = True) -> None:
        """Freeze (``flag=True``) or unfreeze the embedding and encoder weights."""
        for name, param in self.named_parameters():
            if name.startswith(ENCODER_PREFIXES):
                param.requires_grad_(not flag)

    def load_encoder(self, pretrain_dir: str | os.PathLike, strict: bool = True) -> LoadReport:
        """Load the embedding and encoder weights of a :class:`NeurIPTPretrain` checkpoint.

        Raises
        ------
        ContractError
            Not a pretraining checkpoint, a shape mismatch (naming the tensor and both shapes),
            or (``strict``) missing / unexpected encoder keys.
        """
        read_config(pretrain_dir, NeurIPTPretrain.kind)
        return load_state(self, read_weights(pretrain_dir), source=pretrain_dir, strict=strict,
                          prefixes=ENCODER_PREFIXES)

    # ---- checkpoints ------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, contract: InputContract,
                        extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.safetensors`` + ``config.json`` atomically into ``directory``.

        ``extra["class_names"]``, when given, is also stored in the ``head`` section.
        """
        extra = dict(extra or {})
        head = {
            "n_classes": self.n_classes,
            "group_names": list(self.group_names),
            "class_names": list(extra.get("class_names", [])),
            "aux_weight": self.aux_weight,
        }
        config = build_config(self.kind, self.cfg, contract, extra, head=head)
        return write_checkpoint(directory, self.state_dict(), config)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, strict: bool = True,
                        n_classes: int | None = None,
                        group_names: tuple[str, ...] | None = None,
                        ) -> tuple[NeurIPTClassifier, CheckpointMeta]:
        """Rebuild a classifier from a checkpoint directory or a shipped name (in eval mode).

        ``directory`` may name a shipped checkpoint (``"neuript-small"``, :mod:`neuript.weights`)
        or be a pretraining checkpoint: then the classifier gets its embedding and encoder and a
        fresh head of ``n_classes`` (required) over ``group_names`` (default: the functional
        lobes), ready to fine-tune.

        Raises
        ------
        ContractError
            Wrong ``kind``, unreadable config or weights, shape mismatches, or (``strict``)
            missing / unexpected keys.
        """
        from neuript.weights import bundled_checkpoint

        directory = bundled_checkpoint(str(directory)) or directory
        if read_config(directory).get("kind") == NeurIPTPretrain.kind:
            return cls._from_encoder(directory, strict, n_classes, group_names)
        config = read_config(directory, cls.kind)
        meta = parse_meta(directory, config)
        try:
            n_classes = int(meta.head["n_classes"])
            groups = tuple(str(g) for g in meta.head["group_names"])
        except (KeyError, TypeError, ValueError) as err:
            raise ContractError(f"{directory}: classifier config lacks head info ({err})") from err
        model = cls(meta.model, n_classes, groups,
                    aux_weight=float(meta.head.get("aux_weight", 0.8)))
        report = load_state(model, read_weights(directory), source=directory, strict=strict)
        return model.eval(), _with_report(meta, report)


def _with_report(meta: CheckpointMeta, report: LoadReport) -> CheckpointMeta:
    """Return ``meta`` carrying ``report``."""
    return replace(meta, report=report)
