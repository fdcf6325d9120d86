"""Real EEG windows for model tests, read with MNE directly (tests may use MNE; the model may not).

One EEGMAT recording (PhysioNet, resting baseline of Subject00) → 19 monopolar 10-20 channels →
band-pass 0.5–30 Hz → 64 Hz → µV → the modified A-law (A = 0.25, NEURIPT_SPEC §1, written here
independently of ``neuript.data``) → non-overlapping 256-sample windows.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from neuript.paths import data_root

EEGMAT_FILE = "eegmat/Subject00_1.edf"
ALAW_A = 0.25


def alaw(x_uv: np.ndarray, a: float = ALAW_A) -> np.ndarray:
    """The modified A-law of NEURIPT_SPEC §1 on µV values."""
    denom = math.e + math.log(a)
    mag = np.abs(x_uv)
    small = a * mag / denom
    large = (1.0 + np.log(np.maximum(a * mag, 1.0))) / denom
    return np.sign(x_uv) * np.where(mag < 1.0 / a, small, large)


@functools.cache
def _eegmat_windows() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    mne = pytest.importorskip("mne")
    path = data_root() / EEGMAT_FILE
    if not path.is_file():
        pytest.skip(f"real EEG file missing: {path}")
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    eeg = [n for n in raw.ch_names if n.startswith("EEG ") and "-" not in n]
    raw.pick(eeg)
    raw.rename_channels({n: n.removeprefix("EEG ") for n in eeg})
    raw.filter(0.5, 30.0, verbose="error")
    raw.resample(64.0, verbose="error")
    montage = mne.channels.make_standard_montage("colin27_1005")
    ch_pos = montage.get_positions()["ch_pos"]
    positions = np.stack([ch_pos[n] for n in raw.ch_names]).astype(np.float32)  # (C, 3) m
    data_uv = raw.get_data() * 1e6  # (C, T) µV
    start = 10 * 64  # skip the first 10 s
    n_windows = 8
    windows = np.stack(
        [data_uv[:, start + i * 256: start + (i + 1) * 256] for i in range(n_windows)]
    )
    return alaw(windows).astype(np.float32), positions, tuple(raw.ch_names)


def eegmat_batch(n_windows: int = 4, n_channels: int = 19) -> tuple[torch.Tensor, ...]:
    """Return (signals (B, C, 256) A-law µV, positions (B, C, 3) m, channel_mask (B, C))."""
    windows, positions, _ = _eegmat_windows()
    signals = torch.from_numpy(windows[:n_windows, :n_channels].copy())
    pos = torch.from_numpy(positions[:n_channels]).expand(n_windows, -1, -1).contiguous()
    mask = torch.ones(n_windows, n_channels, dtype=torch.bool)
    return signals, pos, mask


def eegmat_channel_names() -> tuple[str, ...]:
    """The 19 channel names of :func:`eegmat_batch`, in order."""
    return _eegmat_windows()[2]
