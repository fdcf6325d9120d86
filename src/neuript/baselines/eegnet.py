"""EEGNet (Lawhern et al. 2018, J. Neural Eng. 15:056013), written from the paper's description.

Layer recipe (paper, section 2.2 and its architecture table), for one window (C, T):

1. temporal convolution: F1 filters of ``sfreq/2`` samples, 'same' padding, no bias → BN;
2. depthwise convolution across all C channels: D spatial filters per temporal filter, no bias,
   each filter's weights constrained to an L2 norm ≤ 1 → BN → ELU → AvgPool(1, 4) → Dropout;
3. separable convolution: depthwise (1, 16) per feature map, then pointwise to F2 maps,
   no bias → BN → ELU → AvgPool(1, 8) → Dropout;
4. flatten (F2 · ⌊⌊T/4⌋/8⌋ features) → dense layer to the classes, each class's weights
   constrained to an L2 norm ≤ 0.25.

Defaults are EEGNet-8,2 (F1 = 8, D = 2, F2 = F1·D = 16) with dropout 0.5 (the paper's
within-subject value; it used 0.25 for cross-subject training). The paper works at 128 Hz with a
64-sample temporal kernel; we keep its duration, ``kernel = round(sfreq_hz / 2)`` (32 at 64 Hz).
The separable kernel (16) and the pool sizes (4, 8) are the paper's sample counts, unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn

from neuript.baselines.common import (
    BaselineClassifier,
    check_positive,
    check_probability,
    max_norm_,
)


def same_padding(kernel_length: int) -> nn.ZeroPad2d:
    """Zero-pad the time axis so a stride-1 convolution keeps the length ('same' padding).

    For an even kernel the extra sample goes on the right, as in Keras' ``padding='same'``.
    """
    total = kernel_length - 1
    return nn.ZeroPad2d((total // 2, total - total // 2, 0, 0))


def temporal_kernel_length(sfreq_hz: float) -> int:
    """Half a second of samples: EEGNet's temporal kernel (64 at the paper's 128 Hz)."""
    return max(1, round(sfreq_hz / 2))


class EEGNet(BaselineClassifier):
    """EEGNet-F1,D: compact CNN with temporal, depthwise-spatial and separable convolutions.

    Parameters
    ----------
    n_channels : int
        Channels C.
    n_samples : int
        Samples T per window; at least 32 (the two pools divide time by 32).
    n_classes : int
        Number of classes.
    sfreq_hz : float
        Sampling rate; sets the temporal kernel to ``round(sfreq_hz / 2)`` samples unless
        ``kernel_length`` is given.
    f1 : int
        Temporal filters F1 (paper: 4 or 8).
    depth : int
        Spatial filters per temporal filter D (paper: 2).
    f2 : int | None
        Pointwise filters F2; None means F1·D as in the paper.
    dropout : float
        Dropout probability (paper: 0.5 within-subject, 0.25 cross-subject).
    kernel_length : int | None
        Temporal kernel in samples; None derives it from ``sfreq_hz``.
    separable_kernel : int
        Kernel of the separable convolution's depthwise part (paper: 16).
    pool1, pool2 : int
        Average-pooling factors after blocks 1 and 2 (paper: 4 and 8).
    spatial_max_norm, dense_max_norm : float
        Max-norm bounds of the depthwise spatial filters (1.0) and the dense layer (0.25).

    Notes
    -----
    Features are the flattened output of block 2, shape (B, F2 · ⌊⌊T/pool1⌋/pool2⌋).
    Call :meth:`apply_constraints` after every optimizer step to enforce the max-norm bounds.
    """

    def __init__(
        self,
        n_channels: int,
        n_samples: int,
        n_classes: int,
        sfreq_hz: float,
        *,
        f1: int = 8,
        depth: int = 2,
        f2: int | None = None,
        dropout: float = 0.5,
        kernel_length: int | None = None,
        separable_kernel: int = 16,
        pool1: int = 4,
        pool2: int = 8,
        spatial_max_norm: float = 1.0,
        dense_max_norm: float = 0.25,
    ) -> None:
        super().__init__(n_channels, n_samples, n_classes, sfreq_hz)
        f2 = f1 * depth if f2 is None else f2
        kernel_length = temporal_kernel_length(sfreq_hz) if kernel_length is None else kernel_length
        for name, value in (("f1", f1), ("depth", depth), ("f2", f2),
                            ("kernel_length", kernel_length), ("pool1", pool1), ("pool2", pool2)):
            check_positive(name, value)
        check_probability("dropout", dropout)
        n_pooled = n_samples // pool1 // pool2
        check_positive(f"n_samples // {pool1} // {pool2} (n_samples={n_samples})", n_pooled)
        n_maps = f1 * depth
        self.spatial_max_norm = spatial_max_norm
        self.dense_max_norm = dense_max_norm
        self.temporal = nn.Sequential(
            same_padding(kernel_length),
            nn.Conv2d(1, f1, (1, kernel_length), bias=False),
            nn.BatchNorm2d(f1),
        )
        self.spatial = nn.Conv2d(f1, n_maps, (n_channels, 1), groups=f1, bias=False)
        self.block1 = nn.Sequential(
            nn.BatchNorm2d(n_maps), nn.ELU(), nn.AvgPool2d((1, pool1)), nn.Dropout(dropout)
        )
        self.block2 = nn.Sequential(
            same_padding(separable_kernel),
            nn.Conv2d(n_maps, n_maps, (1, separable_kernel), groups=n_maps, bias=False),
            nn.Conv2d(n_maps, f2, 1, bias=False),
            nn.BatchNorm2d(f2),
            nn.ELU(),
            nn.AvgPool2d((1, pool2)),
            nn.Dropout(dropout),
        )
        self.head = nn.Linear(f2 * n_pooled, n_classes)
        self.apply_constraints()

    def forward_features(self, signals: Tensor) -> Tensor:
        """Map signals (B, C, T) to the flattened block-2 output (B, F2 · T // 32)."""
        maps = self.temporal(signals.unsqueeze(1))  # (B, F1, C, T)
        maps = self.block1(self.spatial(maps))  # (B, F1·D, 1, T // pool1)
        maps = self.block2(maps)  # (B, F2, 1, T // pool1 // pool2)
        return maps.flatten(1)

    def apply_constraints(self) -> None:
        """Renormalise each spatial filter to norm ≤ 1 and each class's weights to ≤ 0.25."""
        max_norm_(self.spatial.weight, self.spatial_max_norm)
        max_norm_(self.head.weight, self.dense_max_norm)
