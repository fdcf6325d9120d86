"""The batch that crosses from the data layer to the model (the contract between them).

Shapes: ``B`` batch, ``C`` channels (padded to the batch maximum), ``T`` samples, ``G`` pooling
groups (lobes).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass
class Batch:
    """One batch of EEG windows, ready for the model.

    Attributes
    ----------
    signals : Tensor, shape (B, C, T), float32
        Model input: µV after the input contract's amplitude compression (A-law by default).
    positions : Tensor, shape (B, C, 3), float32
        Electrode positions in the fixed head frame (metres); bipolar channels at the midpoint.
    channel_mask : Tensor, shape (B, C), bool
        True where a channel is real, False where it is padding.
    group_mask : Tensor, shape (B, G, C), bool
        Channel membership of each pooling group (lobes for IILP); used by classifier heads.
    labels : Tensor, shape (B,), int64 | None
        Class indices; None for unlabelled (pretraining) batches.
    window_ids : Tensor, shape (B,), int64
        Row indices of the windows in their corpus or task, to trace every prediction.
    """

    signals: Tensor
    positions: Tensor
    channel_mask: Tensor
    group_mask: Tensor
    labels: Tensor | None
    window_ids: Tensor

    def __post_init__(self) -> None:
        b, c, _ = self.signals.shape
        assert self.positions.shape == (b, c, 3), self.positions.shape
        assert self.channel_mask.shape == (b, c), self.channel_mask.shape
        assert self.group_mask.shape[0] == b and self.group_mask.shape[2] == c
        assert self.window_ids.shape == (b,)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Return a copy with every tensor moved to ``device``."""
        moved = {
            f.name: (
                getattr(self, f.name).to(device, non_blocking=non_blocking)
                if isinstance(getattr(self, f.name), Tensor)
                else getattr(self, f.name)
            )
            for f in fields(self)
        }
        return replace(self, **moved)

    def __len__(self) -> int:
        return self.signals.shape[0]
