"""ShallowConvNet (Schirrmeister et al. 2017, Human Brain Mapping 38:5391), from the paper.

Layer recipe (paper, section 2.4.3 and the architecture figure), input one window (C, T):

1. temporal convolution: 40 filters of 25 samples (at 250 Hz), no bias;
2. spatial convolution: 40 filters over all C channels, no bias. Steps 1 and 2 are one linear
   map split in two (no nonlinearity between them), as the paper describes;
3. batch normalisation → square → average pooling (75 samples, stride 15) → log
   (a "log-variance" band-power feature, like filter-bank CSP) → dropout 0.5;
4. dense layer from the flattened 40 × n_pooled maps to the classes (the paper's final
   convolution spans the whole remaining time axis, which is the same map).

The authors' code puts a bias on the temporal convolution; it is exactly cancelled by the batch
normalisation after the (linear) spatial convolution, so we leave it out.

Sampling-rate rule **[ours]**: the three lengths are durations at the paper's 250 Hz (100 ms
kernel, 300 ms pool, 60 ms stride) and are rescaled as ``max(1, round(n · sfreq_hz / 250))``:
25/75/15 at 250 Hz, 13/38/8 at 128 Hz, and 6/19/4 at our 64 Hz.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuript.baselines.common import BaselineClassifier, check_positive, check_probability

PAPER_SFREQ_HZ = 250.0
"""Sampling rate at which the paper's kernel, pool and stride lengths are given."""


def scaled_length(n_at_250hz: int, sfreq_hz: float) -> int:
    """Rescale a length given in samples at 250 Hz to ``sfreq_hz``, keeping its duration."""
    return max(1, round(n_at_250hz * sfreq_hz / PAPER_SFREQ_HZ))


class ShallowConvNet(BaselineClassifier):
    """Shallow ConvNet: temporal + spatial convolution, square, mean pool, log, dense.

    Parameters
    ----------
    n_channels : int
        Channels C.
    n_samples : int
        Samples T per window (must cover one kernel plus one pool).
    n_classes : int
        Number of classes.
    sfreq_hz : float
        Sampling rate; scales kernel, pool and stride from the paper's 250 Hz values.
    n_filters : int
        Temporal and spatial filters (paper: 40).
    kernel_length, pool_length, pool_stride : int | None
        Lengths in samples; None derives them from 25, 75, 15 at 250 Hz.
    dropout : float
        Dropout probability before the classifier (paper: 0.5).
    log_floor : float
        Values below this are clamped before the log (numerical safety).

    Notes
    -----
    Features are the flattened log-power maps, shape (B, n_filters · n_pooled) with
    ``n_pooled = (T − kernel + 1 − pool) // stride + 1``.
    """

    def __init__(
        self,
        n_channels: int,
        n_samples: int,
        n_classes: int,
        sfreq_hz: float,
        *,
        n_filters: int = 40,
        kernel_length: int | None = None,
        pool_length: int | None = None,
        pool_stride: int | None = None,
        dropout: float = 0.5,
        log_floor: float = 1e-6,
    ) -> None:
        super().__init__(n_channels, n_samples, n_classes, sfreq_hz)
        kernel_length = scaled_length(25, sfreq_hz) if kernel_length is None else kernel_length
        pool_length = scaled_length(75, sfreq_hz) if pool_length is None else pool_length
        pool_stride = scaled_length(15, sfreq_hz) if pool_stride is None else pool_stride
        for name, value in (("n_filters", n_filters), ("kernel_length", kernel_length),
                            ("pool_length", pool_length), ("pool_stride", pool_stride),
                            ("log_floor", log_floor)):
            check_positive(name, value)
        check_probability("dropout", dropout)
        n_valid = n_samples - kernel_length + 1 - pool_length
        if n_valid < 0:
            check_positive(
                f"n_samples - kernel_length + 1 - pool_length (n_samples={n_samples}, "
                f"kernel_length={kernel_length}, pool_length={pool_length})", n_valid,
            )
        n_pooled = n_valid // pool_stride + 1
        self.log_floor = log_floor
        self.temporal = nn.Conv2d(1, n_filters, (1, kernel_length), bias=False)
        self.spatial = nn.Conv2d(n_filters, n_filters, (n_channels, 1), bias=False)
        self.norm = nn.BatchNorm2d(n_filters)
        self.pool = nn.AvgPool2d((1, pool_length), stride=(1, pool_stride))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(n_filters * n_pooled, n_classes)

    def forward_features(self, signals: Tensor) -> Tensor:
        """Map signals (B, C, T) to flattened log mean-power maps (B, n_filters · n_pooled)."""
        maps = self.temporal(signals.unsqueeze(1))  # (B, K, C, T - kernel + 1)
        maps = self.norm(self.spatial(maps))  # (B, K, 1, T - kernel + 1)
        power = self.pool(maps.square())  # (B, K, 1, n_pooled)
        log_power = torch.log(torch.clamp(power, min=self.log_floor))
        return self.dropout(log_power).flatten(1)
