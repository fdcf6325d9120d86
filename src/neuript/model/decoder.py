"""The pretraining decoder: two-stage self-attention plus cross-attention to one encoder level.

Shapes: ``B`` windows, ``C`` channels, ``T`` samples (tokens per channel at full resolution),
``L`` tokens per channel at a merged level, ``d`` width.

Notes
-----
NEURIPT_SPEC §4. The queries are the embedded input in which every masked position carries the
[mask] embedding (so the decoder never sees a true masked value), plus the temporal and spatial
position codes. Decoder layer ``j`` runs

1. self-attention over time (per channel), pre-LayerNorm, residual;
2. self-attention over channels (per time step; padded channels hidden as keys);
3. cross-attention, per channel over time, to encoder level ``j`` upsampled to ``T`` tokens
   (each merged token repeated ``T / L`` times) with its masked positions replaced by the
   [mask] embedding (a merged token is masked only if all its parts are). Computed on the
   level's own ``L`` tokens: a key repeated ``r`` times gets ``r`` times the weight in both the
   numerator and the denominator of the softmax, and the context LayerNorm and key/value
   projections act per token, so attending the ``L`` unique tokens is the same function at
   ``T / L`` times less cost (:func:`upsample_level` gives the explicit form);
4. a SwiGLU feed-forward;
5. ``Linear(d -> 1)``: this layer's prediction of every sample.

The reconstruction is the sum of the layers' predictions. With more decoder layers than encoder
levels, the extra layers attend to the last level **[ours]**.

Strided decoding **[ours]** (``ModelConfig.decoder_stride = r > 1``; the ``small`` preset): the
full-resolution queries are folded ``r`` consecutive tokens at a time (``Linear(r·d -> d)``), every
layer runs on ``T / r`` query tokens, and step 5 becomes ``Linear(d -> r)``, each query token
predicting its ``r`` samples. The cross-attention keys stay at each level's own resolution. The
fold sees the [mask] embedding at every masked sample, so no true masked value leaks. The time
attention, which grows with the square of the token count, and every per-token projection shrink
by ``r``; the ``paper`` preset keeps ``r = 1``, the decoder above. See docs/pretraining.md.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from neuript.config import ModelConfig
from neuript.model.attention import Attention
from neuript.model.embed import SpatialCode, temporal_code
from neuript.model.moe import SwiGLU


class DecoderOutput(NamedTuple):
    """What :class:`NeurIPTDecoder` returns.

    Attributes
    ----------
    pred : Tensor, shape (B, C, T)
        Reconstruction of the model input: the sum of every layer's prediction.
    layer_preds : Tensor, shape (n_layers, B, C, T)
        Each layer's own prediction (for diagnostics).
    """

    pred: Tensor
    layer_preds: Tensor


def upsample_level(level: Tensor, level_mask: Tensor | None, mask_embedding: Tensor,
                   n_samples: int) -> Tensor:
    """Bring one encoder level back to full time resolution and blank its masked tokens.

    Parameters
    ----------
    level : Tensor, shape (B, C, L, d)
        Encoder level; ``n_samples`` must be a multiple of ``L``.
    level_mask : Tensor, shape (B, C, L), bool | None
        True where the (merged) token is masked; None when nothing is masked.
    mask_embedding : Tensor, shape (d,)
        The learned [mask] embedding that replaces masked tokens.
    n_samples : int
        Full resolution T.

    Returns
    -------
    context : Tensor, shape (B, C, T, d)
    """
    n_tokens = level.shape[2]
    assert n_samples % n_tokens == 0, (n_samples, n_tokens)
    if level_mask is not None:
        level = torch.where(level_mask[..., None], mask_embedding.to(level.dtype), level)
    return level.repeat_interleave(n_samples // n_tokens, dim=2)


class DecoderLayer(nn.Module):
    """One decoder layer (steps 1–5 of the module notes).

    Parameters
    ----------
    d : int
        Token width.
    n_heads : int
        Attention heads.
    d_ff : int
        Hidden width of the SwiGLU feed-forward.
    dropout : float
        Dropout of attention outputs and the feed-forward.
    n_out : int
        Samples each query token predicts (the decoder stride ``r``; 1 = one per sample).
    """

    def __init__(self, d: int, n_heads: int, d_ff: int, dropout: float, n_out: int = 1) -> None:
        super().__init__()
        self.time_norm = nn.LayerNorm(d)
        self.time_attn = Attention(d, n_heads, dropout)
        self.channel_norm = nn.LayerNorm(d)
        self.channel_attn = Attention(d, n_heads, dropout)
        self.cross_norm = nn.LayerNorm(d)
        self.context_norm = nn.LayerNorm(d)
        self.cross_attn = Attention(d, n_heads, dropout)
        self.ff_norm = nn.LayerNorm(d)
        self.ff = SwiGLU(d, d_ff, dropout)
        self.predict = nn.Linear(d, n_out)

    def forward(self, queries: Tensor, context: Tensor,
                channel_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Run the layer.

        Parameters
        ----------
        queries : Tensor, shape (B, C, Q, d)
            ``Q = T / r`` query tokens per channel (``Q = T`` unstrided).
        context : Tensor, shape (B, C, L, d)
            The encoder level this layer attends to, masked tokens blanked, at its own
            resolution (``L`` divides ``T``) or upsampled to ``T`` (the same result).
        channel_mask : Tensor, shape (B, C), bool

        Returns
        -------
        queries : Tensor, shape (B, C, Q, d)
            Updated queries for the next layer.
        pred : Tensor, shape (B, C, Q · r)
            This layer's prediction of every sample.
        """
        b, c, t, _ = queries.shape
        by_channel = rearrange(queries, "b c t d -> (b c) t d")
        by_channel = by_channel + self.time_attn(self.time_norm(by_channel))
        by_time = rearrange(by_channel, "(b c) t d -> (b t) c d", b=b)
        keys = None  # every key visible: let attention run unmasked
        if torch.compiler.is_compiling() or not bool(channel_mask.all()):
            keys = channel_mask.repeat_interleave(t, dim=0)  # (B·T, C)
        by_time = by_time + self.channel_attn(self.channel_norm(by_time), key_mask=keys)
        by_channel = rearrange(by_time, "(b t) c d -> (b c) t d", b=b)
        memory = self.context_norm(rearrange(context, "b c t d -> (b c) t d"))
        by_channel = by_channel + self.cross_attn(self.cross_norm(by_channel), context=memory)
        by_channel = by_channel + self.ff(self.ff_norm(by_channel))
        queries = rearrange(by_channel, "(b c) t d -> b c t d", b=b)
        return queries, self.predict(queries).flatten(2)


class NeurIPTDecoder(nn.Module):
    """Pretraining decoder with ``cfg.decoder_layers`` (default depth + 1) layers.

    Parameters
    ----------
    cfg : ModelConfig
        Uses ``d_model``, ``n_heads``, ``d_ff``, ``dropout``, ``spatial_code``, ``grid_size``,
        ``decoder_layers``, ``decoder_stride`` and ``depth``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        n_layers = cfg.decoder_layers if cfg.decoder_layers is not None else cfg.depth + 1
        self.stride = cfg.decoder_stride
        self.layers = nn.ModuleList(
            DecoderLayer(cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, n_out=self.stride)
            for _ in range(n_layers)
        )
        self.spatial_code = SpatialCode(cfg.d_model, cfg.spatial_code, cfg.grid_size)
        # r consecutive query tokens -> one (strided decoding); absent when r = 1
        self.fold = nn.Linear(self.stride * cfg.d_model, cfg.d_model) if self.stride > 1 else None

    def queries(self, tokens: Tensor, positions: Tensor, channel_mask: Tensor) -> Tensor:
        """Add both position codes to the (already masked) input embedding.

        Parameters
        ----------
        tokens : Tensor, shape (B, C, T, d)
            Embedded input with every masked position set to the [mask] embedding.
        positions : Tensor, shape (B, C, 3), metres
        channel_mask : Tensor, shape (B, C), bool

        Returns
        -------
        queries : Tensor, shape (B, C, T, d)
        """
        t, d = tokens.shape[2], tokens.shape[3]
        time = temporal_code(t, d, device=tokens.device).to(tokens.dtype)  # (T, d)
        space = self.spatial_code(positions, channel_mask).to(tokens.dtype)  # (B, C, d)
        return tokens + time + space[:, :, None, :]

    def forward(self, tokens: Tensor, positions: Tensor, channel_mask: Tensor,
                levels: list[Tensor], level_masks: list[Tensor] | None,
                mask_embedding: Tensor) -> DecoderOutput:
        """Reconstruct every sample.

        Parameters
        ----------
        tokens : Tensor, shape (B, C, T, d)
            Embedded input with every masked position set to the [mask] embedding.
        positions : Tensor, shape (B, C, 3), metres
        channel_mask : Tensor, shape (B, C), bool
        levels : list of Tensor, shape (B, C, L_l, d)
            Encoder levels (level 0 = embedding level).
        level_masks : list of Tensor, shape (B, C, L_l), bool | None
            True where a level's token is masked.
        mask_embedding : Tensor, shape (d,)

        Returns
        -------
        out : DecoderOutput
        """
        n_samples = tokens.shape[2]
        queries = self.queries(tokens, positions, channel_mask)
        if self.fold is not None:
            assert n_samples % self.stride == 0, (n_samples, self.stride)
            queries = self.fold(rearrange(queries, "b c (q r) d -> b c q (r d)", r=self.stride))
        preds = []
        for j, layer in enumerate(self.layers):
            level = min(j, len(levels) - 1)
            mask = None if level_masks is None else level_masks[level]
            context = levels[level]  # (B, C, L, d); see step 3 of the module notes
            assert n_samples % context.shape[2] == 0, (n_samples, context.shape)
            if mask is not None:
                context = torch.where(mask[..., None], mask_embedding.to(context.dtype), context)
            queries, pred = layer(queries, context, channel_mask)
            preds.append(pred)
        layer_preds = torch.stack(preds)  # (n_layers, B, C, T)
        return DecoderOutput(pred=layer_preds.sum(dim=0), layer_preds=layer_preds)
