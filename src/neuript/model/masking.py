"""Masks for masked pretraining: amplitude-aware (AAMP) and random, plus the BERT replacement rule.

Every function here is pure: it reads ``signals`` (only their shape, or their values for AAMP)
and a ``torch.Generator``, and returns new tensors. Nothing is learned here; the model applies a
:class:`MaskSpec` to its token embeddings (``NeurIPTPretrain.mask``).

Shapes: ``B`` windows, ``C`` channels, ``T`` samples (one token per sample per channel).

Notes
-----
AAMP (NEURIPT_SPEC §4): per window a ratio P is drawn from ``MaskConfig.ratios``; per channel the
T values are ranked, ξ ~ U(0, 1) is drawn, and the k = round(P·T) consecutive ranks centred on
rank ⌊ξT⌋ (shifted to stay inside [0, T)) are masked. The masked samples form one amplitude band:
the peaks, the troughs, or the values near zero, scattered in time.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from neuript.config import MaskConfig
from neuript.errors import NeuriptError

REPLACE_MASK = 0
"""``MaskSpec.replace`` code: the token becomes the learned [mask] embedding."""
REPLACE_RANDOM = 1
"""``MaskSpec.replace`` code: the token becomes the embedding of a random visible token."""
REPLACE_KEEP = 2
"""``MaskSpec.replace`` code: the token is left as it is (also used for every unmasked token)."""


class MaskSpec(NamedTuple):
    """Which tokens are masked and what replaces them.

    Attributes
    ----------
    mask : Tensor, shape (B, C, T), bool
        True where a token is masked (hidden from the encoder as a key, and in the loss).
    replace : Tensor, shape (B, C, T), int8
        What replaces each masked token: 0 the [mask] embedding, 1 the embedding of a random
        visible token of the batch, 2 nothing (kept). Unmasked tokens carry 2.
    ratio : Tensor, shape (B,), float32
        The mask ratio P drawn for each window.
    """

    mask: Tensor
    replace: Tensor
    ratio: Tensor


def draw_ratios(batch_size: int, ratios: tuple[float, ...], generator: torch.Generator | None,
                device: torch.device | str = "cpu") -> Tensor:
    """Draw one mask ratio per window, uniformly from ``ratios``.

    Returns
    -------
    ratio : Tensor, shape (B,), float32
    """
    table = torch.tensor(ratios, dtype=torch.float32, device=device)
    pick = torch.randint(len(ratios), (batch_size,), generator=generator, device=device)
    return table[pick]


def _band_of_ranks(order: Tensor, start: Tensor, n_masked: Tensor) -> Tensor:
    """Mask the time points whose rank lies in ``[start, start + n_masked)``.

    Parameters
    ----------
    order : Tensor, shape (B, C, T), int64
        ``order[..., r]`` is the time index of the sample with rank r.
    start : Tensor, shape (B, C), int64
        First masked rank per channel.
    n_masked : Tensor, shape (B,), int64
        Masked samples per channel of each window.

    Returns
    -------
    mask : Tensor, shape (B, C, T), bool
    """
    n_samples = order.shape[-1]
    rank = torch.arange(n_samples, device=order.device)  # (T,)
    end = start + n_masked[:, None]  # (B, C)
    in_band = (rank >= start[..., None]) & (rank < end[..., None])  # (B, C, T) over ranks
    return torch.zeros_like(in_band).scatter(-1, order, in_band)  # back to time order


def _n_masked(ratio: Tensor, n_samples: int) -> Tensor:
    """k = round(P·T), at least 1 and at most T - 1 (so every channel keeps a visible token)."""
    return torch.round(ratio * n_samples).long().clamp(1, n_samples - 1)


def aamp_mask(signals: Tensor, ratio: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Amplitude-aware mask: one band of k = round(P·T) consecutive amplitude ranks per channel.

    Parameters
    ----------
    signals : Tensor, shape (B, C, T)
        Model input (A-law compressed µV); only the order of values within a channel matters.
    ratio : Tensor, shape (B,)
        Mask ratio P of each window.
    generator : torch.Generator | None
        Source of ξ ~ U(0, 1) (one per channel).

    Returns
    -------
    mask : Tensor, shape (B, C, T), bool
        Exactly k masked samples per channel; every masked value lies in [L, U] (the band's
        smallest and largest value) and no unmasked value lies strictly inside (L, U).
    """
    b, c, t = signals.shape
    order = torch.argsort(signals, dim=-1, stable=True)  # (B, C, T) time index per rank
    n_masked = _n_masked(ratio.to(signals.device), t)  # (B,)
    xi = torch.rand(b, c, generator=generator, device=signals.device)
    centre = torch.floor(xi * t).long()  # (B, C)
    start = centre - n_masked[:, None] // 2
    start = torch.minimum(start.clamp(min=0), (t - n_masked)[:, None])
    return _band_of_ranks(order, start, n_masked)


def random_mask(signals: Tensor, ratio: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """BERT-style baseline: exactly k = round(P·T) time points per channel, uniformly at random.

    Parameters
    ----------
    signals : Tensor, shape (B, C, T)
        Only the shape and device are used.
    ratio : Tensor, shape (B,)
        Mask ratio P of each window.
    generator : torch.Generator | None
        Source of the random order.

    Returns
    -------
    mask : Tensor, shape (B, C, T), bool
    """
    b, c, t = signals.shape
    noise = torch.rand(b, c, t, generator=generator, device=signals.device)
    order = torch.argsort(noise, dim=-1)  # a uniformly random permutation per channel
    n_masked = _n_masked(ratio.to(signals.device), t)
    return _band_of_ranks(order, torch.zeros(b, c, dtype=torch.long, device=signals.device),
                          n_masked)


def replacement_codes(mask: Tensor, cfg: MaskConfig,
                      generator: torch.Generator | None = None) -> Tensor:
    """Apply the BERT 80/10/10 rule to masked tokens, independently per token.

    Parameters
    ----------
    mask : Tensor, shape (B, C, T), bool
    cfg : MaskConfig
        ``replace_mask`` and ``replace_random`` shares (the rest is kept).
    generator : torch.Generator | None

    Returns
    -------
    replace : Tensor, shape (B, C, T), int8
        0 [mask], 1 random visible token, 2 keep; 2 wherever ``mask`` is False.
    """
    u = torch.rand(mask.shape, generator=generator, device=mask.device)
    replace = torch.full(mask.shape, REPLACE_KEEP, dtype=torch.int8, device=mask.device)
    replace[u < cfg.replace_mask + cfg.replace_random] = REPLACE_RANDOM
    replace[u < cfg.replace_mask] = REPLACE_MASK
    return torch.where(mask, replace, torch.full_like(replace, REPLACE_KEEP))


def make_mask(signals: Tensor, cfg: MaskConfig, generator: torch.Generator | None = None,
              channel_mask: Tensor | None = None) -> MaskSpec:
    """Draw ratios, a mask (AAMP or random, per ``cfg.strategy``) and the replacement codes.

    Parameters
    ----------
    signals : Tensor, shape (B, C, T)
        Model input (A-law compressed µV).
    cfg : MaskConfig
    generator : torch.Generator | None
        One generator drives every draw, so a seeded generator reproduces the spec exactly.
    channel_mask : Tensor, shape (B, C), bool | None
        Real channels; padded channels (False) are never masked.

    Returns
    -------
    spec : MaskSpec
    """
    if signals.ndim != 3:
        raise NeuriptError(
            f"make_mask: signals must have shape (B, C, T), got {tuple(signals.shape)}"
        )
    if signals.shape[-1] < 2:
        raise NeuriptError(
            f"make_mask: need at least 2 samples per window, got {signals.shape[-1]}"
        )
    ratio = draw_ratios(signals.shape[0], cfg.ratios, generator, signals.device)
    draw = aamp_mask if cfg.strategy == "aamp" else random_mask
    mask = draw(signals, ratio, generator)
    if channel_mask is not None:
        mask = mask & channel_mask[..., None]
    return MaskSpec(mask=mask, replace=replacement_codes(mask, cfg, generator), ratio=ratio)


def draw_donors(spec: MaskSpec, channel_mask: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """Pick, for every token, a random visible token of the batch to copy from (the BERT 10%).

    Donors are drawn uniformly among the tokens that are unmasked and on real channels, so the
    true value of a masked sample never reaches the encoder through a replacement.

    Parameters
    ----------
    spec : MaskSpec
    channel_mask : Tensor, shape (B, C), bool | None
    generator : torch.Generator | None

    Returns
    -------
    donor : Tensor, shape (B, C, T), int64
        Flat index into ``tokens.reshape(B·C·T, …)``; meaningful where ``spec.replace == 1``.
    """
    visible = ~spec.mask
    if channel_mask is not None:
        visible = visible & channel_mask[..., None]
    pool = visible.flatten().nonzero().squeeze(-1)  # (N_visible,)
    if pool.numel() == 0:
        raise NeuriptError("draw_donors: the batch has no visible token to copy from")
    pick = torch.randint(pool.numel(), spec.mask.shape, generator=generator,
                         device=spec.mask.device)
    return pool[pick]
