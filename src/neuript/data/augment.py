"""Label-preserving augmentations of EEG training windows (pure functions of a generator).

Applied to µV windows before the amplitude compression, so a scaled window is what a
recording with a different gain would give. Each transform draws its randomness from the
``torch.Generator`` passed in, so a run is a pure function of its seed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neuript.config import AugmentConfig


def augment_windows(signals_uv: Tensor, cfg: AugmentConfig, sfreq_hz: float,
                    generator: torch.Generator) -> Tensor:
    """Apply the augmentations of ``cfg`` to a batch of windows.

    Parameters
    ----------
    signals_uv : Tensor, shape (B, C, T), float, µV
        Not modified.
    cfg : AugmentConfig
        Which transforms, how strong.
    sfreq_hz : float
        Sampling rate of the windows (for ``time_shift_s``).
    generator : torch.Generator
        Source of every random draw.

    Returns
    -------
    augmented : Tensor, shape (B, C, T), µV
        A new tensor; ``signals_uv`` itself when ``cfg`` is inactive.
    """
    if not cfg.active:
        return signals_uv
    b, c, t = signals_uv.shape
    out = signals_uv.clone()
    if cfg.time_shift_s > 0:
        max_shift = min(int(round(cfg.time_shift_s * sfreq_hz)), t - 1)
        shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
        index = (torch.arange(t)[None, :] - shifts[:, None]) % t  # (B, T)
        out = torch.gather(out, 2, index[:, None, :].expand(b, c, t))
    if cfg.scale_range > 0:
        scale = 1.0 + cfg.scale_range * (2 * torch.rand(b, 1, 1, generator=generator) - 1)
        out = out * scale.to(out.dtype)
    if cfg.noise_uv > 0:
        out = out + cfg.noise_uv * torch.randn(out.shape, generator=generator).to(out.dtype)
    if cfg.channel_dropout > 0:
        keep = torch.rand(b, c, 1, generator=generator) >= cfg.channel_dropout
        out = out * keep.to(out.dtype)
    return out
