"""The in-memory form of one EEG recording, whatever file or array it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from neuript.errors import RecordingError

UNIT_SCALE_TO_VOLTS: dict[str, float] = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "µV": 1e-6, "nV": 1e-9}


@dataclass(frozen=True)
class Events:
    """Annotations of a recording, as MNE keeps them.

    Attributes
    ----------
    onset_s : ndarray, shape (N,), float64
        Onsets in seconds from the first sample.
    duration_s : ndarray, shape (N,), float64
        Durations in seconds (0 for point events).
    description : ndarray, shape (N,), str
        Labels, e.g. ``"T1"`` or ``"2"`` (Muse marker value as text).
    """

    onset_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    duration_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    description: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))

    def __len__(self) -> int:
        return int(self.onset_s.shape[0])


@dataclass(frozen=True)
class Recording:
    """One recording: EEG signals in volts plus what is known about them.

    Attributes
    ----------
    data : ndarray, shape (C, T), float64
        EEG signals in **volts** (MNE's convention). Non-EEG channels are not here.
    sfreq_hz : float
        Sampling rate (Hz).
    ch_names : tuple of str, length C
        Channel names as written in the source (normalised later by :mod:`neuript.data.montage`).
    source : str
        Path of the file (or ``"<array>"``); named in every error about this recording.
    subject : str | None
        Subject identifier, when the layout or header tells it.
    session : str | None
        Session or run identifier.
    events : Events
        Annotations / markers.
    excluded : dict of str to str
        Non-EEG channels set aside: name → type (``"ecg"``, ``"eog"``, ``"stim"``, ``"misc"``…).
    positions : dict of str to ndarray (3,) | None
        Explicit electrode positions (metres, head frame) for channels without a 10-05 name.
    """

    data: np.ndarray
    sfreq_hz: float
    ch_names: tuple[str, ...]
    source: str = "<array>"
    subject: str | None = None
    session: str | None = None
    events: Events = field(default_factory=Events)
    excluded: dict[str, str] = field(default_factory=dict)
    positions: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 2:
            raise RecordingError(
                self.source, f"data must be 2-D (channels, samples), got shape {self.data.shape}"
            )
        if self.data.shape[0] != len(self.ch_names):
            raise RecordingError(
                self.source,
                f"{self.data.shape[0]} signal rows but {len(self.ch_names)} channel names",
            )
        if not np.isfinite(self.sfreq_hz) or self.sfreq_hz <= 0:
            raise RecordingError(
                self.source, f"sampling rate must be > 0 Hz, got {self.sfreq_hz!r}"
            )

    @property
    def n_channels(self) -> int:
        """Number of EEG channels C."""
        return int(self.data.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples T."""
        return int(self.data.shape[1])

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sfreq_hz

    def without(self, reasons: dict[str, str]) -> Recording:
        """A copy with the channels named in ``reasons`` set aside in ``excluded`` (name →
        why, e.g. ``"flat"``), as MNE's bads are; signals of the others unchanged."""
        keep = [i for i, name in enumerate(self.ch_names) if name not in reasons]
        names = tuple(self.ch_names[i] for i in keep)
        positions = None if self.positions is None else {
            k: v for k, v in self.positions.items() if k not in reasons}
        return Recording(data=self.data[keep], sfreq_hz=self.sfreq_hz, ch_names=names,
                         source=self.source, subject=self.subject, session=self.session,
                         events=self.events, excluded={**self.excluded, **reasons},
                         positions=positions)

    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        sfreq: float,
        ch_names: list[str] | tuple[str, ...],
        unit: Literal["V", "mV", "uV", "µV", "nV"] = "uV",
        *,
        positions: dict[str, np.ndarray] | None = None,
        subject: str | None = None,
        session: str | None = None,
        events: Events | None = None,
        source: str = "<array>",
    ) -> Recording:
        """Wrap an in-memory array (for notebooks); converts ``unit`` to volts.

        Parameters
        ----------
        data : array-like, shape (C, T) or (T,) for one channel
            Signals in ``unit``.
        sfreq : float
            Sampling rate (Hz).
        ch_names : list of str, length C
            Channel names (10-05 names, ``A-B`` bipolar pairs, or names given in ``positions``).
        unit : {"V", "mV", "uV", "µV", "nV"}
            Unit of ``data``.
        positions : dict of str to array (3,) | None
            Positions (metres, head frame) for channels without a standard name.
        """
        if unit not in UNIT_SCALE_TO_VOLTS:
            raise RecordingError(
                source, f"unit must be one of {sorted(UNIT_SCALE_TO_VOLTS)}, got {unit!r}"
            )
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        pos = None if positions is None else {k: np.asarray(v, float) for k, v in positions.items()}
        return cls(
            data=arr * UNIT_SCALE_TO_VOLTS[unit],
            sfreq_hz=float(sfreq),
            ch_names=tuple(ch_names),
            source=source,
            subject=subject,
            session=session,
            events=events if events is not None else Events(),
            positions=pos,
        )

    @classmethod
    def from_mne(
        cls,
        raw: Any,
        *,
        subject: str | None = None,
        session: str | None = None,
        source: str | None = None,
    ) -> Recording:
        """Convert an ``mne.io.Raw`` held in memory, as :func:`~neuript.data.io.read_recording`
        would have read its file.

        Delegates to :func:`neuript.data.io.recording_from_raw`: EEG channels in volts, non-EEG
        channels and ``raw.info["bads"]`` set aside in ``excluded`` (logged), annotations as
        events (onsets from the first sample), and, for electrodes without a 10-05 name, the
        positions of the Raw's montage (``info["chs"][i]["loc"][:3]``, metres). Channels with a
        10-05 name keep the package's positions (:mod:`neuript.data.mne_bridge`).

        Parameters
        ----------
        raw : mne.io.BaseRaw
            Preloaded or loadable; it is not modified.
        subject, session : str | None
            Identifiers; None guesses them from the file name, as ``read_recording`` does.
        source : str | None
            Name in errors and ``Recording.source``; None: ``raw.filenames[0]``, or ``"<mne.Raw>"``
            for a Raw built in memory.

        Returns
        -------
        recording : Recording

        Examples
        --------
        >>> raw = mne.io.read_raw_edf("Subject33_2.edf", preload=True)     # doctest: +SKIP
        >>> raw.info["bads"] = ["EEG Fp1"]                                  # doctest: +SKIP
        >>> rec = Recording.from_mne(raw)                                   # doctest: +SKIP
        >>> rec.excluded["EEG Fp1"]                                         # doctest: +SKIP
        'bad'
        """
        from neuript.data.io import guess_subject_session, recording_from_raw
        from neuript.data.mne_bridge import is_mne_raw

        if not is_mne_raw(raw):
            raise RecordingError(source, f"Recording.from_mne expects an mne.io.BaseRaw, got "
                                 f"{type(raw).__name__} (mne.Epochs: see task_from_epochs)")
        if source is None:
            files = [f for f in (getattr(raw, "filenames", None) or ()) if f is not None]
            source = str(files[0]) if files else "<mne.Raw>"
        guessed_subject, guessed_session = guess_subject_session(source)
        return recording_from_raw(
            raw, source,
            subject if subject is not None else guessed_subject,
            session if session is not None else guessed_session,
        )
