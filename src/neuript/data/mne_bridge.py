"""MNE objects in memory, both ways: Raw, Epochs and ``info["chs"]`` in, Annotations out.

:mod:`neuript.data.io` reads files (the only module that calls MNE's readers); this module turns
the objects an MNE user already holds into the package's :class:`~neuript.data.recording.Recording`
through the same converter (:func:`neuript.data.io.recording_from_raw`), and turns per-window
predictions back into :class:`mne.Annotations`.

Two rules apply to every MNE object, here and in :mod:`neuript.data.io`:

- **Bad channels** (``info["bads"]``) are set aside like non-EEG channels
  (``Recording.excluded[name] == "bad"``) and named in a log line.
- **Electrode positions**: a channel with a 10-05 name (after alias normalisation) keeps the
  package's ``colin27_1005`` position, the frame every model was trained in, whatever the
  object's montage says. A channel without one (a custom electrode) takes ``loc[:3]`` of its
  ``info["chs"]`` entry (metres), i.e. the montage set with ``raw.set_montage``, moved from
  MNE's head frame (nasion / preauricular fiducials) into the package's frame with the
  transform colin27's own fiducials define (:func:`head_to_package`), so a custom electrode
  lands where the standard electrodes beside it are; without a finite, non-zero location it
  stays unknown (and is refused or dropped later, as for any unknown name).

MNE is imported lazily; nothing here imports it at module import time.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from neuript.data.montage import canonical_name
from neuript.data.recording import Events, Recording
from neuript.errors import NeuriptError, RecordingError

log = logging.getLogger(__name__)

FIFFV_COORD_HEAD = 4
"""MNE's code for the head coordinate frame (``mne.io.constants.FIFF.FIFFV_COORD_HEAD``)."""


def is_mne_raw(obj: Any) -> bool:
    """True for an ``mne.io.BaseRaw`` (False without importing MNE when it is not loaded)."""
    mne = sys.modules.get("mne")
    return mne is not None and isinstance(obj, mne.io.BaseRaw)


def is_mne_epochs(obj: Any) -> bool:
    """True for an ``mne.BaseEpochs`` (``mne.Epochs``, ``mne.EpochsArray`` …)."""
    mne = sys.modules.get("mne")
    return mne is not None and isinstance(obj, mne.BaseEpochs)


@functools.cache
def _package_from_head() -> np.ndarray:
    """(4, 4) affine: MNE head frame → the package's colin27_1005 frame (metres)."""
    import mne
    from mne.channels.montage import compute_native_head_t

    from neuript.data.montage import MONTAGE_NAME

    mri_to_head = compute_native_head_t(mne.channels.make_standard_montage(MONTAGE_NAME))
    return np.asarray(mne.transforms.invert_transform(mri_to_head)["trans"], dtype=np.float64)


def head_to_package(points_m: np.ndarray) -> np.ndarray:
    """Positions in MNE's head frame (…, 3) metres → the package's frame (…, 3) metres.

    The package's 10-05 table is colin27_1005 as MNE stores it (its "mri" frame); MNE moves any
    montage into a head frame built from the fiducials. The inverse of colin27's own
    mri → head transform maps head-frame points back: a standard electrode set by
    ``raw.set_montage`` returns exactly to its table position (tested), and a custom electrode
    of another montage lands beside its neighbours instead of 4–6 cm off.
    """
    t = _package_from_head()
    p = np.asarray(points_m, dtype=np.float64)
    return p @ t[:3, :3].T + t[:3, 3]


def custom_positions(
    chs: Sequence[Mapping[str, Any]], names: Iterable[str], source: str | os.PathLike = "<mne>"
) -> dict[str, np.ndarray] | None:
    """Positions of the named channels that have no 10-05 name, from ``info["chs"]``.

    Parameters
    ----------
    chs : sequence of dict
        MNE's ``info["chs"]`` (each with ``"ch_name"``, ``"loc"`` (12,) and ``"coord_frame"``).
    names : iterable of str
        The channels to look at (e.g. the EEG channels kept).
    source : path-like
        Named in the log line about a non-head coordinate frame.

    Returns
    -------
    positions : dict of str to ndarray, shape (3,) | None
        Raw name → ``loc[:3]`` (metres, moved from MNE's head frame into the package's with
        :func:`head_to_package`) for custom channels with a finite, non-zero location; None
        when there is none. Channels with a 10-05 name are never included: they keep the
        package's positions (see the module docstring).
    """
    wanted = set(names)
    out: dict[str, np.ndarray] = {}
    frames = set()
    for ch in chs:
        name = str(ch["ch_name"])
        if name not in wanted or canonical_name(name) is not None:
            continue
        loc = np.asarray(ch.get("loc", np.full(12, np.nan)), dtype=np.float64)[:3]
        if loc.shape == (3,) and np.isfinite(loc).all() and np.abs(loc).sum() > 0:
            out[name] = head_to_package(loc)
            frames.add(int(ch.get("coord_frame", FIFFV_COORD_HEAD)))
    if frames - {FIFFV_COORD_HEAD}:
        log.warning("%s: custom electrode positions in coordinate frame(s) %s, used as MNE's "
                    "head frame (%d)", source, sorted(frames), FIFFV_COORD_HEAD)
    return out or None


def as_recording(recording: Any) -> Recording:
    """What every entry point accepts as one recording, as a :class:`Recording`.

    Parameters
    ----------
    recording : path-like | Recording | mne.io.BaseRaw
        A file :func:`~neuript.data.io.read_recording` reads, a Recording, or an MNE Raw
        (:meth:`Recording.from_mne`).

    Returns
    -------
    recording : Recording
    """
    from neuript.data.io import read_recording

    if isinstance(recording, Recording):
        return recording
    if is_mne_raw(recording):
        return Recording.from_mne(recording)
    if is_mne_epochs(recording):
        raise NeuriptError("a recording must be continuous (a path, Recording or mne.io.Raw), "
                           "got mne.Epochs; use neuript.data.tasks.epochs.task_from_epochs or "
                           "neuript.sklearn.NeurIPTClassifier for epochs")
    if isinstance(recording, str | os.PathLike):
        return read_recording(recording)
    raise NeuriptError(f"a recording must be a path, a Recording or an mne.io.BaseRaw, got "
                       f"{type(recording).__name__}")


def recordings_from_epochs(epochs: Any, source: str | None = None) -> list[Recording]:
    """One :class:`Recording` per epoch of an ``mne.Epochs`` (volts, EEG channels only).

    The first epoch goes through :func:`~neuript.data.io.recording_from_raw` (as an
    ``mne.io.RawArray`` sharing the epochs' ``info``), so channel types, ``info["bads"]`` and
    montage positions are handled exactly as for a Raw; the other epochs reuse its channel
    selection. Events inside epochs are not kept.

    Parameters
    ----------
    epochs : mne.BaseEpochs
        Loaded or loadable epochs (dropped epochs are not returned).
    source : str | None
        Prefix of each recording's ``source`` (``"<source>[epoch i]"``); None: the epochs'
        file name, or ``"<mne.Epochs>"``.

    Returns
    -------
    recordings : list of Recording, length n_epochs
        ``data`` (C, n_times) float64 volts, ``sfreq_hz`` = ``epochs.info["sfreq"]``.
    """
    import mne

    if not is_mne_epochs(epochs):
        raise NeuriptError(f"epochs must be an mne.BaseEpochs, got {type(epochs).__name__}")
    from neuript.data.io import recording_from_raw

    data = epochs.get_data(copy=False)  # (n_epochs, C_all, n_times) volts
    if source is None:
        source = str(getattr(epochs, "filename", None) or "<mne.Epochs>")
    if data.shape[0] == 0:
        raise RecordingError(source, "no epochs (all dropped?)")
    if not np.isfinite(data).all():
        raise RecordingError(source, "non-finite (NaN/inf) samples in the epochs")
    first_raw = mne.io.RawArray(data[0], epochs.info, verbose="error")
    first = recording_from_raw(first_raw, f"{source}[epoch 0]")
    picks = [epochs.ch_names.index(name) for name in first.ch_names]
    first = dataclasses.replace(first, events=Events())
    return [first] + [
        dataclasses.replace(first, data=np.ascontiguousarray(data[i, picks], dtype=np.float64),
                            source=f"{source}[epoch {i}]")
        for i in range(1, data.shape[0])
    ]


def epoch_labels(epochs: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels of the epochs from ``epochs.events[:, 2]`` through ``epochs.event_id``.

    Returns
    -------
    labels : ndarray, shape (n_epochs,), str
        The event name of each epoch.
    class_names : tuple of str
        The event names present, in the order of their codes.
    """
    codes = np.asarray(epochs.events[:, 2])
    name_of = {int(code): str(name) for name, code in epochs.event_id.items()}
    unknown = sorted(set(codes.tolist()) - set(name_of))
    if unknown:
        raise NeuriptError(f"epochs have event codes {unknown} missing from event_id "
                           f"{dict(epochs.event_id)}")
    present = sorted(set(codes.tolist()))
    return np.array([name_of[int(c)] for c in codes], dtype=str), tuple(name_of[c] for c in present)


def make_annotations(
    onset_s: np.ndarray, duration_s: np.ndarray | float, description: Sequence[str],
    extras: Sequence[dict[str, Any]] | None = None,
) -> Any:
    """An ``mne.Annotations`` relative to the first sample (``orig_time=None``).

    Parameters
    ----------
    onset_s : ndarray, shape (N,)
        Onsets (s from the first sample of the recording).
    duration_s : ndarray, shape (N,) | float
        Durations (s).
    description : sequence of str, length N
    extras : sequence of dict | None
        Per-annotation extra fields (``mne.Annotations(extras=...)``, MNE >= 1.10); dropped
        with a log line on older MNE.

    Returns
    -------
    annotations : mne.Annotations
        Ready for ``raw.set_annotations(...)`` (MNE shifts onsets by ``raw.first_time``).
    """
    import inspect

    import mne

    onset = np.asarray(onset_s, dtype=np.float64)
    duration = np.broadcast_to(np.asarray(duration_s, dtype=np.float64), onset.shape)
    kwargs: dict[str, Any] = {}
    if extras is not None:
        if "extras" in inspect.signature(mne.Annotations).parameters:
            kwargs["extras"] = [dict(e) for e in extras]
        else:
            log.info("mne %s has no Annotations extras; probabilities left out", mne.__version__)
    return mne.Annotations(onset, duration.copy(), [str(d) for d in description],
                           orig_time=None, **kwargs)
