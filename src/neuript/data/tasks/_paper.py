"""Helpers shared by the loaders of the paper's external benchmarks (Mumtaz2016 … TUEV).

These sit on top of :mod:`neuript.data.tasks._common`: event-locked windows from a recording
already read (:func:`epochs_part`), seeded subject splits with fixed counts per class
(:func:`count_split`) or fractions (:func:`fraction_split`), and parsing of integer subject lists
given as task options (:func:`subject_ids`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.recording import Recording
from neuript.data.tasks._common import Part, reject_part
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)


def epochs_part(
    rec: Recording,
    cfg: PreprocessConfig,
    onsets_s: np.ndarray,
    labels: np.ndarray,
    *,
    subject: str,
    offset_s: float = 0.0,
    target: Any = None,
) -> Part:
    """Preprocess a whole recording, then cut one ``cfg.window_s`` window per onset.

    Parameters
    ----------
    rec : Recording
        The recording (volts).
    cfg : PreprocessConfig
        Filtering, resampling, window length and rejection.
    onsets_s : ndarray, shape (N,), float
        Event onsets (s from the first sample).
    labels : ndarray, shape (N,), int
        Class of each event.
    subject : str
        Subject written into the part.
    offset_s : float
        Window start relative to each onset (s); negative starts before it.
    target : str | list of str | None
        Montage target (:func:`~neuript.data.montage.build_channel_map`); None: ``cfg.montage``.

    Returns
    -------
    part : Part
        Windows (N_kept, C, W) float32 µV of the events whose window lies inside the recording
        (``rejected["outside"]`` counts the others) and that survive ``cfg``'s rejection.
    """
    from neuript.data.preprocess import epochs_at, preprocess_continuous

    onsets = np.asarray(onsets_s, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    assert onsets.shape == labels.shape, (onsets.shape, labels.shape)
    cont = preprocess_continuous(rec, cfg, target=target)
    epochs = epochs_at(cont, onsets, cfg.window_s, offset_s)
    valid = np.asarray(epochs.valid, dtype=bool)
    part = Part(
        windows=np.asarray(epochs.windows, dtype=np.float32),
        starts=np.asarray(epochs.starts, dtype=np.int64),
        labels=labels[valid], subject=subject, source=rec.source,
        ch_names=tuple(cont.ch_names), positions=np.asarray(cont.positions, dtype=np.float32),
        rejected={"outside": int((~valid).sum())},
    )
    kept = reject_part(part, cfg)
    return kept._replace(rejected={**part.rejected, **kept.rejected})


def subject_ids(
    option: str, values: Iterable[int | str], fmt: str
) -> tuple[str, ...]:
    """Subject ids from an option of integers (``(1, 2)`` with ``fmt="s{:02d}"`` → s01, s02)."""
    out = []
    for value in values:
        try:
            out.append(fmt.format(int(value)))
        except (TypeError, ValueError):
            raise NeuriptError(f"{option} must hold subject numbers, got {value!r}") from None
    return tuple(out)


def require_dir(path: Path, expected: str) -> Path:
    """Return ``path`` if it is a folder, else raise naming it and what it should hold."""
    if not Path(path).is_dir():
        raise NeuriptError(f"{path}: folder not found; expected {expected}")
    return Path(path)


def tuh_root(data_dir: Path, expected: str) -> Path:
    """The folder holding ``train/`` and ``eval/`` of a TUH corpus (``data_dir/edf`` or itself)."""
    data_dir = require_dir(Path(data_dir), expected)
    root = data_dir / "edf" if (data_dir / "edf").is_dir() else data_dir
    for split in ("train", "eval"):
        if not (root / split).is_dir():
            raise NeuriptError(f"{root / split}: folder not found; expected {expected}")
    return root

