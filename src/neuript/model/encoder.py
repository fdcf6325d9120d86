"""The NeurIPT encoder: two-stage attention blocks, segment merging, Progressive MoE (§3).

Legend: ``B`` batch, ``C`` channels (padded; ``channel_mask``), ``T`` samples = tokens per channel
at level 0, ``L`` tokens per channel at a level, ``d`` width, ``E`` routed experts.

Block ``i`` = (segment merge if ``merge_factors[i] > 1``) → **time stage** (pre-LN self-attention
over the ``L`` tokens of each channel, on ``(B·C, L, d)``; residual; pre-LN feed-forward;
residual) → **channel stage** (the same over the ``C`` channels at each time step, on
``(B·L, C, d)``). Feed-forwards are dense :class:`SwiGLU` where ``experts_per_block[i] == 0``
and :class:`MoEFeedForward` otherwise (both stages of the block).

Position codes: block 0 adds the temporal code before its time attention and the spatial code
before its channel attention. If block 0 itself merges (``merge_factors[0] > 1``, the small
preset), the temporal code is added per sample *before* that merge, so each merged token's
projection sees the positions of its parts. ``levels[0]`` (the "embedding level") is the input
tokens plus both codes, i.e. what block 0 has seen once both are added.

Masks: a masked token (pretraining) is hidden as a key in both stages (it still attends to
itself, and it still attends to visible tokens); padded channels are hidden as keys in the
channel stage. After merging, a merged token is masked only if all of its parts were.

Window length: ``T`` must be divisible by ``cfg.total_merge`` (16 for the paper); anything
else raises :class:`~neuript.errors.NeuriptError` rather than silently padding, because padding
would change what the last merged token means.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from neuript.config import ModelConfig
from neuript.errors import NeuriptError
from neuript.model.attention import Attention
from neuript.model.embed import SpatialCode, temporal_code
from neuript.model.moe import MoEFeedForward, MoEOutput, SwiGLU


class EncoderOutput(NamedTuple):
    """What :class:`NeurIPTEncoder` returns."""

    levels: list[Tensor]
    """``depth + 1`` tensors (B, C, L_l, d): level 0 = embedding (+codes), level i = block i."""
    masks: list[Tensor] | None
    """Token masks (B, C, L_l) bool per level (True = masked); None without a token mask."""
    aux_loss: Tensor
    """Scalar: sum of the MoE layers' weighted aux losses (before the caller's 0.8 weight)."""
    load: list[Tensor]
    """Per MoE layer (time then channel stage, block order): (E,) share of assignments."""


class SegmentMerge(nn.Module):
    """Concatenate ``factor`` neighbouring tokens of a channel → LayerNorm(m·d) → Linear(m·d → d).

    Parameters
    ----------
    d : int
        Token width.
    factor : int
        Tokens merged into one (m >= 2).
    norm : {"layer", "none"}
        LayerNorm before the projection (the paper), or none: the merge is then a learned
        strided filter of the residual stream that keeps each segment's amplitude (the
        LayerNorm divides it out); see ``ModelConfig.merge_norm``.
    """

    def __init__(self, d: int, factor: int, norm: str = "layer") -> None:
        super().__init__()
        self.factor = factor
        self.norm = nn.LayerNorm(factor * d) if norm == "layer" else nn.Identity()
        self.proj = nn.Linear(factor * d, d)

    def forward(self, x: Tensor) -> Tensor:
        """x : Tensor, shape (B, C, L, d) -> Tensor, shape (B, C, L / m, d)."""
        grouped = rearrange(x, "b c (l m) d -> b c l (m d)", m=self.factor)
        return self.proj(self.norm(grouped))


def merge_token_mask(token_mask: Tensor, factor: int) -> Tensor:
    """(B, C, L) bool -> (B, C, L / factor) bool: a merged token is masked if all parts are."""
    return rearrange(token_mask, "b c (l m) -> b c l m", m=factor).all(dim=-1)


def make_feed_forward(cfg: ModelConfig, n_experts: int) -> nn.Module:
    """Dense SwiGLU (``n_experts == 0``) or an MoE layer."""
    if n_experts == 0:
        return SwiGLU(cfg.d_model, cfg.d_ff, cfg.dropout)
    return MoEFeedForward(cfg.d_model, n_experts, cfg.moe, cfg.dropout)


class BlockOutput(NamedTuple):
    """What one :class:`EncoderBlock` returns."""

    x: Tensor
    """Shape (B, C, L, d): the block output."""
    token_mask: Tensor | None
    """Shape (B, C, L) bool after merging, or None."""
    aux_losses: list[Tensor]
    """Weighted aux loss of each MoE layer of the block (empty for a dense block)."""
    loads: list[Tensor]
    """Load (E,) of each MoE layer of the block."""


class EncoderBlock(nn.Module):
    """Segment merge (optional) + time stage + channel stage.

    Parameters
    ----------
    cfg : ModelConfig
    index : int
        Block index: picks ``merge_factors[index]`` and ``moe.experts_per_block[index]``.
    """

    def __init__(self, cfg: ModelConfig, index: int) -> None:
        super().__init__()
        d, factor = cfg.d_model, cfg.merge_factors[index]
        n_experts = cfg.moe.experts_per_block[index]
        self.merge = SegmentMerge(d, factor, cfg.merge_norm) if factor > 1 else None
        self.time_norm = nn.LayerNorm(d)
        self.time_attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.time_ffn_norm = nn.LayerNorm(d)
        self.time_ffn = make_feed_forward(cfg, n_experts)
        self.channel_norm = nn.LayerNorm(d)
        self.channel_attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.channel_ffn_norm = nn.LayerNorm(d)
        self.channel_ffn = make_feed_forward(cfg, n_experts)

    @staticmethod
    def _feed_forward(ffn: nn.Module, norm: nn.Module, h: Tensor, aux: list, loads: list) -> Tensor:
        """Pre-LN feed-forward with residual; MoE losses and loads are appended to the lists."""
        out = ffn(norm(h))
        if isinstance(out, MoEOutput):
            aux.append(out.aux_loss)
            loads.append(out.load)
            return h + out.y
        return h + out

    @staticmethod
    def _channel_keys(
        channel_mask: Tensor, token_mask: Tensor | None, length: int
    ) -> Tensor | None:
        """Key mask (B·L, C) of the channel stage; None when every key is visible.

        Skipping the mask lets SDPA run unmasked (faster); the check reads the mask's values, so
        it is done only in eager mode (under ``torch.compile`` the mask is always passed).
        """
        if token_mask is None:
            if not torch.compiler.is_compiling() and bool(channel_mask.all()):
                return None
            keys = channel_mask.unsqueeze(1).expand(-1, length, -1)  # (B, L, C)
            return rearrange(keys, "b l c -> (b l) c")
        keys = channel_mask.unsqueeze(-1) & ~token_mask  # (B, C, L)
        return rearrange(keys, "b c l -> (b l) c")

    def forward(
        self,
        x: Tensor,
        channel_mask: Tensor,
        token_mask: Tensor | None = None,
        time_code: Tensor | None = None,
        space_code: Tensor | None = None,
    ) -> BlockOutput:
        """Run the block.

        Parameters
        ----------
        x : Tensor, shape (B, C, L_in, d)
        channel_mask : Tensor, shape (B, C), bool (True = real channel)
        token_mask : Tensor, shape (B, C, L_in), bool (True = masked) | None
        time_code : Tensor, shape (L, d) | None
            Added before the time attention (block 0 only).
        space_code : Tensor, shape (B, C, d) | None
            Added before the channel attention (block 0 only).

        Returns
        -------
        BlockOutput
        """
        if self.merge is not None:
            x = self.merge(x)
            if token_mask is not None:
                token_mask = merge_token_mask(token_mask, self.merge.factor)
        b, c, length, _ = x.shape
        if time_code is not None:
            x = x + time_code
        aux: list[Tensor] = []
        loads: list[Tensor] = []
        time_keys = None if token_mask is None else rearrange(~token_mask, "b c l -> (b c) l")
        h = rearrange(x, "b c l d -> (b c) l d")
        h = h + self.time_attn(self.time_norm(h), key_mask=time_keys)
        h = self._feed_forward(self.time_ffn, self.time_ffn_norm, h, aux, loads)
        x = rearrange(h, "(b c) l d -> b c l d", b=b)
        if space_code is not None:
            x = x + space_code.unsqueeze(2)
        h = rearrange(x, "b c l d -> (b l) c d")
        channel_keys = self._channel_keys(channel_mask, token_mask, length)
        h = h + self.channel_attn(self.channel_norm(h), key_mask=channel_keys)
        h = self._feed_forward(self.channel_ffn, self.channel_ffn_norm, h, aux, loads)
        return BlockOutput(rearrange(h, "(b l) c d -> b c l d", b=b), token_mask, aux, loads)


def _same(a: Tensor, b: Tensor) -> bool:
    """Same shape, dtype and values."""
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)


class NeurIPTEncoder(nn.Module):
    """The NeurIPT encoder stack (embedding codes + ``cfg.depth`` blocks).

    Parameters
    ----------
    cfg : ModelConfig
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.spatial = SpatialCode(cfg.d_model, cfg.spatial_code, cfg.grid_size)
        self.blocks = nn.ModuleList(EncoderBlock(cfg, i) for i in range(cfg.depth))
        self.fast_paths = True
        """Reuse position codes: the temporal code per window length, and the spatial code while
        the montage (positions and channel mask) repeats from one call to the next (CPU)."""
        self._time_codes: dict[tuple[int, torch.device], Tensor] = {}
        self._last_space: tuple[Tensor, Tensor, Tensor] | None = None

    def _reuse_codes(self) -> bool:
        return self.fast_paths and not torch.compiler.is_compiling() and not torch.jit.is_tracing()

    def time_code(self, n_samples: int, device: torch.device) -> Tensor:
        """The temporal code (T, d) of ``n_samples`` samples (cached per length and device)."""
        if not self._reuse_codes():
            return temporal_code(n_samples, self.cfg.d_model, device)
        key = (n_samples, device)
        if key not in self._time_codes:
            with torch.inference_mode(False):  # a normal tensor, usable later with autograd
                self._time_codes[key] = temporal_code(n_samples, self.cfg.d_model, device)
        return self._time_codes[key]

    def space_code(self, positions: Tensor, channel_mask: Tensor) -> Tensor:
        """The spatial code (B, C, d); the last one again if the montage has not changed."""
        if not self._reuse_codes() or positions.device.type != "cpu":
            return self.spatial(positions, channel_mask)
        last = self._last_space
        if last is not None and _same(last[0], positions) and _same(last[1], channel_mask):
            return last[2]
        with torch.inference_mode(False):
            code = self.spatial(positions, channel_mask)
            self._last_space = (positions.clone(), channel_mask.clone(), code)
        return code

    def check_length(self, n_samples: int) -> None:
        """Raise if a window of ``n_samples`` cannot be merged down evenly."""
        if n_samples % self.cfg.total_merge:
            raise NeuriptError(
                f"NeurIPTEncoder: window length T={n_samples} samples must be divisible by the "
                f"product of merge_factors {self.cfg.merge_factors} = {self.cfg.total_merge}; "
                "crop or resample the window"
            )

    def forward(
        self,
        tokens: Tensor,
        positions: Tensor,
        channel_mask: Tensor,
        token_mask: Tensor | None = None,
    ) -> EncoderOutput:
        """Encode embedded tokens.

        Parameters
        ----------
        tokens : Tensor, shape (B, C, T, d)
            Output of :class:`~neuript.model.embed.TokenEmbedding` (masked tokens already
            replaced by the caller).
        positions : Tensor, shape (B, C, 3), float, metres in the fixed head frame
        channel_mask : Tensor, shape (B, C), bool (True = real channel)
        token_mask : Tensor, shape (B, C, T), bool (True = masked) | None

        Returns
        -------
        EncoderOutput
        """
        b, c, n_samples, d = tokens.shape
        assert d == self.cfg.d_model, (tokens.shape, self.cfg.d_model)
        assert positions.shape == (b, c, 3), positions.shape
        assert channel_mask.shape == (b, c), channel_mask.shape
        self.check_length(n_samples)
        time_code = self.time_code(n_samples, tokens.device)  # (T, d)
        space_code = self.space_code(positions, channel_mask)  # (B, C, d)
        timed = tokens + time_code
        levels = [timed + space_code.unsqueeze(2)]
        masks = None if token_mask is None else [token_mask]
        aux: list[Tensor] = []
        loads: list[Tensor] = []
        # Block 0 gets the tokens with the temporal code already added (the same sum as adding
        # it inside the block; one full-resolution pass fewer), before its merge if it merges.
        x = timed
        for i, block in enumerate(self.blocks):
            out = block(x, channel_mask, token_mask, None, space_code if i == 0 else None)
            x, token_mask = out.x, out.token_mask
            levels.append(x)
            aux += out.aux_losses
            loads += out.loads
            if masks is not None:
                masks.append(token_mask)
        aux_loss = torch.stack(aux).sum() if aux else tokens.new_zeros((), dtype=torch.float32)
        return EncoderOutput(levels, masks, aux_loss, loads)
