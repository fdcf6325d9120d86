"""Tiny synthetic copies of the paper's external datasets, written in their official formats.

EDF/EDF+ files come from ``mne.export.export_raw`` (edfio), annotation-only hypnograms from
edfio directly. Signals are seeded white noise (about 20 µV) plus, where a test asks for it, a
5-Hz sine on one electrode so that the montage rows can be checked by their power.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mne
import numpy as np

TEN_TWENTY = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T3", "C3", "Cz", "C4", "T4", "T5", "P3",
              "Pz", "P4", "T6", "O1", "O2")
"""The 19 electrodes of the 10-20 system with the old temporal names (as TUH and Mumtaz write)."""


def signals(n_channels: int, n_samples: int, sfreq: float, *, seed: int = 0,
            sine_row: int | None = None, sine_uv: float = 60.0) -> np.ndarray:
    """Seeded noise in volts, shape (C, T), with an optional 5-Hz sine on one row."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_channels, n_samples)) * 20e-6
    if sine_row is not None:
        t = np.arange(n_samples) / sfreq
        data[sine_row] += sine_uv * 1e-6 * np.sin(2 * np.pi * 5.0 * t)
    return data


def write_edf(
    path: Path,
    ch_names: Sequence[str],
    sfreq: float,
    seconds: float,
    *,
    annotations: Sequence[tuple[float, float, str]] = (),
    seed: int = 0,
    sine_channel: str | None = None,
) -> Path:
    """Write an EDF(+) file with the given channel names, rate, length and annotations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(round(seconds * sfreq))
    row = list(ch_names).index(sine_channel) if sine_channel is not None else None
    data = signals(len(ch_names), n, sfreq, seed=seed, sine_row=row)
    raw = mne.io.RawArray(data, mne.create_info(list(ch_names), sfreq, "eeg"), verbose="error")
    if annotations:
        onset, duration, text = zip(*annotations)
        raw.set_annotations(mne.Annotations(list(onset), list(duration), list(text)))
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


def write_hypnogram(path: Path, stages: Sequence[tuple[float, float, str]]) -> Path:
    """Write an annotation-only EDF+ (no signals), like a Sleep-EDF ``*-Hypnogram.edf``."""
    import edfio

    path.parent.mkdir(parents=True, exist_ok=True)
    notes = [edfio.EdfAnnotation(onset, duration, text) for onset, duration, text in stages]
    edfio.Edf(signals=[], annotations=notes).write(path)
    return path


def power_rank(windows: np.ndarray) -> np.ndarray:
    """Channels ordered by decreasing mean variance over windows (N, C, W)."""
    return np.argsort(-windows.var(axis=2).mean(axis=0))
