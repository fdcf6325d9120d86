"""A labelled task from ``mne.Epochs``: one recording per epoch, then the in-memory task path.

Each epoch becomes a :class:`~neuript.data.recording.Recording`
(:func:`~neuript.data.mne_bridge.recordings_from_epochs`: EEG channels in volts,
``info["bads"]`` set aside, custom electrodes at their montage positions) and goes through
:func:`~neuript.data.tasks.arrays.build_array_task`, the path of every bring-your-own-data task:
channel map, resampling from ``epochs.info["sfreq"]`` to the preprocessing's rate, band-pass,
µV, windows, subject-wise split.

Each epoch is preprocessed on its own, so the band-pass sees only the epoch: a 0.1 Hz high-pass
on a 4-s epoch has edge effects that filtering the continuous Raw before epoching avoids. The
windows are the same as those of an arrays task built from the same stretches of the Raw
(``tests/test_epochs_task.py`` checks it), and, without filters or resampling, the same as an
event-locked manifest task on the file.

Examples
--------
>>> events, event_id = mne.events_from_annotations(raw)                    # doctest: +SKIP
>>> epochs = mne.Epochs(raw, events, {"left": 2, "right": 3}, tmin=0.0, tmax=4.0 - 1 / 160,
...                     baseline=None, preload=True)                         # doctest: +SKIP
>>> task = task_from_epochs(epochs, subjects="S001")                        # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.mne_bridge import epoch_labels, recordings_from_epochs
from neuript.data.tasks.arrays import build_array_task
from neuript.data.tasks.base import TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

__all__ = ["task_from_epochs"]


def _per_epoch(values: Any, n: int, what: str) -> np.ndarray | None:
    """``values`` as a (n,) str array (a scalar is repeated); None stays None."""
    if values is None:
        return None
    if isinstance(values, str) or np.ndim(values) == 0:
        return np.full(n, str(values), dtype=object).astype(str)
    out = np.asarray([str(v) for v in values], dtype=str)
    if out.shape != (n,):
        raise NeuriptError(f"task_from_epochs: {what} must hold one value per epoch ({n}), got "
                           f"{out.shape[0]}")
    return out


def task_from_epochs(
    epochs: Any,
    *,
    subjects: str | Sequence[Any],
    labels: Sequence[Any] | None = None,
    splits: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    window_s: float | None = None,
    stride_s: float | None = None,
    preprocess: PreprocessConfig | None = None,
    montage: str | Sequence[str] = "auto",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    on_unknown: Literal["raise", "drop"] = "raise",
    name: str = "epochs",
) -> TaskWindows:
    """Build a labelled task from labelled ``mne.Epochs``.

    Parameters
    ----------
    epochs : mne.BaseEpochs
        Epochs in volts (MNE's convention) at any rate; dropped epochs are left out.
    subjects : str | sequence, length n_epochs
        Subject of every epoch (one value for all); the split is by subject.
    labels : sequence, length n_epochs | None
        Class of every epoch; None: ``epochs.events[:, 2]`` mapped through ``epochs.event_id``
        (class names are the event names, ordered by event code).
    splits : sequence of {"train", "val", "test"}, length n_epochs | None
        A given split per epoch; None: seeded subject-wise split
        (:func:`~neuript.data.tasks.arrays.assign_splits`, at least 3 subjects).
    class_names : sequence of str | None
        Class order; None: event names by code, or the sorted labels.
    window_s, stride_s : float | None
        Window length and step (s); ``window_s`` None takes the whole epoch
        (``n_times / sfreq``), one window per epoch.
    preprocess : PreprocessConfig | None
        Band-pass, notch, target rate (the model contract's, 64 Hz by default), rejection;
        None: :func:`~neuript.data.tasks._byod.default_preprocess`.
    montage, seed, val_fraction, test_fraction, on_unknown, name
        As in :func:`~neuript.data.tasks.arrays.build_array_task`.

    Returns
    -------
    task : TaskWindows
        Windows (N, C, W) float32 µV at ``preprocess.sfreq_hz``; ``sources`` name the epoch
        (``"<file>[epoch i]"``), ``starts`` count samples from the epoch's first sample.
    """
    recordings = recordings_from_epochs(epochs)
    n = len(recordings)
    if labels is None:
        epoch_classes, event_names = epoch_labels(epochs)
        class_names = tuple(class_names) if class_names is not None else event_names
    else:
        epoch_classes = _per_epoch(labels, n, "labels")
    subject_of = _per_epoch(subjects, n, "subjects")
    split_of = _per_epoch(splits, n, "splits")
    if window_s is None:
        window_s = recordings[0].n_samples / recordings[0].sfreq_hz
    items = []
    for i, rec in enumerate(recordings):
        item = {"recording": rec, "label": epoch_classes[i], "subject": subject_of[i]}
        if split_of is not None:
            item["split"] = split_of[i]
        items.append(item)
    log.info("%s: %d epochs of %d channels at %g Hz, %.3f s windows", name, n,
             recordings[0].n_channels, recordings[0].sfreq_hz, window_s)
    return build_array_task(
        items, window_s=window_s, stride_s=stride_s,
        split="subject" if split_of is None else "column", seed=seed,
        val_fraction=val_fraction, test_fraction=test_fraction, class_names=class_names,
        montage=montage, preprocess=preprocess, on_unknown=on_unknown, name=name,
    )
