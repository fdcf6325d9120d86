"""Shared helpers for the bring-your-own-data tests (manifest, BIDS, arrays, inspect).

Real recordings from the data root: EEGMAT (rest ``_1`` / task ``_2``) and EEGMMIDB S001. Small
variants (cropped, a channel renamed) are written with MNE into the test's tmp folder; the
expected window counts are computed here from MNE's own reading of the files.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from neuript.config import OptimConfig, TrainConfig
from neuript.paths import data_root

MICRO = {
    "d_model": 16, "n_heads": 2, "d_ff": 16, "merge_factors": [1, 4],
    "moe.experts_per_block": [0, 2], "moe.expert_hidden": 16, "moe.shared_hidden": 16,
    "head_hidden": 16, "dropout": 0.0,
}
"""A micro NeurIPT (same as the fine-tuning tests) for one fast CPU epoch."""


def eegmat(name: str) -> Path:
    """A bundled EEGMAT file (skips when the data root lacks it)."""
    path = data_root() / "eegmat" / name
    if not path.is_file():
        pytest.skip(f"EEGMAT file missing: {path}")
    return path


def eegmmidb(run: int) -> Path:
    """A bundled EEGMMIDB S001 run (skips when missing)."""
    path = data_root() / "eegmmidb" / "S001" / f"S001R{run:02d}.edf"
    if not path.is_file():
        pytest.skip(f"EEGMMIDB file missing: {path}")
    return path


def read_raw(path: Path):
    """The file through MNE directly (the independent reference)."""
    import mne

    return mne.io.read_raw_edf(path, preload=True, verbose="error")


def cropped_copy(src: Path, dst: Path, tmax_s: float | None = None,
                 rename: dict[str, str] | None = None) -> Path:
    """Write a cropped (and optionally renamed) EDF copy of a real recording."""
    raw = read_raw(src)
    if "ECG ECG" in raw.ch_names:
        raw.set_channel_types({"ECG ECG": "ecg"})
    if tmax_s is not None:
        raw.crop(0.0, tmax_s, include_tmax=False)
    if rename:
        raw.rename_channels(rename)
    raw.export(dst, fmt="edf", overwrite=True, verbose="error")
    return dst


def n_windows(duration_s: float, window_s: float) -> int:
    """floor(duration / window) (non-overlapping windows of a whole span)."""
    return int(math.floor(duration_s / window_s + 1e-9))


def micro_config(out_dir: Path, **changes):
    """Micro fine-tuning config: one epoch of at most 3 steps, threads=1, no report."""
    from neuript.train.finetune import FinetuneRunConfig

    base = dict(
        preset="tiny", model_overrides=MICRO, seeds=(0,), out_dir=str(out_dir), report=False,
        optim=OptimConfig(lr=3e-3, weight_decay=0.0, pct_start=0.3),  # 0.3·N is never 1
        train=TrainConfig(batch_size=32, epochs=1, max_steps=3, threads=1),
    )
    return FinetuneRunConfig(**{**base, **changes})
