"""Reading recordings from files: the only module that calls MNE's readers.

:func:`read_recording` dispatches on the file suffix through :data:`READERS` and returns a
:class:`~neuript.data.recording.Recording` in **volts** holding only EEG channels. Channels that are
not EEG (ECG, EOG, EMG, respiration, stim/status, AUX, ear-reference differences such as
``"EEG A2-A1"``) are set aside in ``Recording.excluded`` with their type and logged. MNE's type is
used where the format records one; otherwise the type is guessed from the name
(:func:`neuript.data.montage.channel_kind`). Channels MNE marks bad (``info["bads"]``) are set
aside the same way (type ``"bad"``), and custom electrodes keep the positions their file records
(:mod:`neuript.data.mne_bridge` states both rules; it also converts Raw and Epochs objects).

Every failure (empty, truncated or wrongly sized file, random bytes, unknown suffix or CSV
layout, NaN/inf, zero samples, broken timestamps) raises :class:`~neuript.errors.RecordingError`
naming the file and the problem; the underlying exception is logged at DEBUG level, not chained.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import logging
import os
import re
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuript.data.mne_bridge import custom_positions
from neuript.data.montage import channel_kind
from neuript.data.recording import UNIT_SCALE_TO_VOLTS, Events, Recording
from neuript.errors import RecordingError

log = logging.getLogger(__name__)

MUSE_COLUMNS: tuple[str, ...] = ("timestamps", "TP9", "AF7", "AF8", "TP10", "Right AUX")
MUSE_SFREQ_HZ = 256.0
MUSE_RATE_TOL = 0.02
"""Muse: the rate over the whole file (rows / time span) must be within 2 % of 256 Hz (the nominal
rate is used)."""
MUSE_MAX_GAP_S = 1.0
"""Muse: a step between two timestamps longer than this, forward or back, is a broken recording;
shorter backward or repeated steps (LSL jitter) are accepted with a warning."""
ADHD_CHANNELS: tuple[str, ...] = (
    "Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
    "F7", "F8", "T7", "T8", "P7", "P8", "Fz", "Cz", "Pz",
)
ADHD_SFREQ_HZ = 128.0

SUBJECT_PATTERNS: tuple[tuple[str, str], ...] = (
    # (regex on the path relative to nothing, "what the groups mean")
    (r"(?P<subject>Subject\d+)_(?P<session>\d+)\.edf$", "EEGMAT SubjectNN_k.edf"),
    (r"(?P<subject>S\d{3})(?P<session>R\d{2})\.edf$", "EEGMMIDB S001R04.edf"),
    (r"(?P<subject>subject\d+)/(?P<session>session\d+)/[^/]+$", "Muse subjectN/sessionM/file"),
    (r"(?:^|/)(?:adhd|control)/(?P<subject>v\w+?)\.csv(?:\.gz)?$", "ADHD/control vNNN.csv.gz"),
    (r"sub-(?P<subject>[A-Za-z0-9]+)(?:_ses-(?P<session>[A-Za-z0-9]+))?", "BIDS sub-X_ses-Y"),
)


def guess_subject_session(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """Subject and session from a known file layout (:data:`SUBJECT_PATTERNS`).

    Parameters
    ----------
    path : path-like
        The recording's path.

    Returns
    -------
    subject, session : str | None
        ``("Subject07", "1")`` for ``Subject07_1.edf``, ``("S001", "R04")`` for ``S001R04.edf``,
        ``("subject1", "session2")`` for Muse, ``("v10p", None)`` for ADHD files; None if unknown.
    """
    text = Path(path).as_posix()
    for pattern, _ in SUBJECT_PATTERNS:
        match = re.search(pattern, text)
        if match:
            groups = match.groupdict()
            return groups.get("subject"), groups.get("session")
    return None, None


# --------------------------------------------------------------------------------------------
# EDF/BDF header check (MNE only warns on truncation and infers from the file size)
# --------------------------------------------------------------------------------------------
def _check_edf_header(path: Path, bytes_per_sample: int) -> None:
    """Raise unless an EDF/BDF file's size is exactly what its header implies.

    The fixed header gives the header size (offset 184, 8 characters), the number of data
    records (offset 236, 8 characters; -1 means unknown) and of signals (offset 252, 4
    characters); the signal headers give each signal's samples per record. The file must hold
    ``header bytes + n_records × record bytes`` (2 bytes per sample in EDF, 3 in BDF); with an
    unknown record count, a whole number of records. MNE itself only warns on a short file and
    silently reads a long one (e.g. after a text-mode copy turned LF into CR LF) as garbage.
    """
    size = path.stat().st_size
    if size == 0:
        raise RecordingError(path, "file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(256)
        try:
            header_bytes = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            n_signals = int(head[252:256].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            problem = "not an EDF/BDF file: the fixed header is unreadable"
            raise RecordingError(path, problem) from None
        if len(head) < 256 or n_signals < 1 or header_bytes != 256 * (n_signals + 1):
            raise RecordingError(
                path,
                f"not a valid EDF/BDF header: {n_signals} signals but header size {header_bytes} "
                f"(expected 256 * (signals + 1)), file size {size}",
            )
        labels = fh.read(n_signals * 16)
        fh.seek(256 + n_signals * 104)
        ranges = fh.read(n_signals * 32)  # physical min, max, digital min, max (8 chars each)
        fh.seek(256 + n_signals * 216)
        spr_field = fh.read(n_signals * 8)
    _check_edf_ranges(path, labels, ranges, n_signals)
    try:
        fields = [spr_field[i * 8:(i + 1) * 8] for i in range(n_signals)]
        per_record = sum(int(f.decode("ascii")) for f in fields)
    except (UnicodeDecodeError, ValueError):
        raise RecordingError(path, "header truncated or corrupt (samples per record)") from None
    if size < header_bytes:
        raise RecordingError(path, f"truncated: header is {header_bytes} bytes, file is {size}")
    if n_records == 0:
        raise RecordingError(path, "zero data records: the recording has no samples")
    if n_records < -1 or per_record < 1:
        raise RecordingError(
            path, f"corrupt header: {n_records} data records of {per_record} samples"
        )
    record_bytes = per_record * bytes_per_sample
    if n_records == -1:  # unknown count: the data must be whole records
        if (size - header_bytes) % record_bytes:
            raise RecordingError(
                path,
                f"file size {size} bytes is not the {header_bytes}-byte header plus whole "
                f"{record_bytes}-byte records (record count unknown): a truncated download or "
                "a text-mode copy (LF → CR LF)? Re-download it or copy it in binary mode",
            )
        return
    expected = header_bytes + n_records * record_bytes
    if size != expected:
        extra = size - expected
        cause = (
            "truncated (an interrupted download or copy?)" if extra < 0 else
            f"{extra} extra bytes, {extra // record_bytes} whole records more than the header's "
            "record count (a writer that did not update the header?)" if extra % record_bytes == 0
            else f"{extra} extra bytes (a text-mode copy that turned LF into CR LF?)"
        )
        raise RecordingError(
            path,
            f"file size {size} bytes but the header says {expected} ({header_bytes} header + "
            f"{n_records} records × {record_bytes} bytes): {cause}; re-download it or copy it "
            "in binary mode",
        )


def _check_edf_ranges(path: Path, labels: bytes, ranges: bytes, n_signals: int) -> None:
    """Raise if a signal's physical or digital range is empty or unreadable.

    Samples become physical values by ``phys_min + (d - dig_min) * (phys_max - phys_min) /
    (dig_max - dig_min)``: equal digital limits divide by zero (MNE warns and reads about 1 V),
    equal physical limits make the channel a constant. Neither is a recording.
    """
    def field(block: bytes, k: int) -> str:
        return block[k * 8:(k + 1) * 8].decode("ascii", "replace").strip()

    for k in range(n_signals):
        label = labels[k * 16:(k + 1) * 16].decode("ascii", "replace").strip()
        if label == "EDF Annotations" or label == "BDF Annotations":
            continue
        try:
            pmin, pmax, dmin, dmax = (float(field(ranges, k + j * n_signals)) for j in range(4))
        except ValueError:
            raise RecordingError(path, f"channel {label!r}: physical/digital range fields are "
                                 "not numbers (corrupt header)") from None
        if dmin >= dmax or pmin == pmax:
            raise RecordingError(
                path, f"channel {label!r}: header range digital [{dmin:g}, {dmax:g}], physical "
                f"[{pmin:g}, {pmax:g}] cannot scale samples to volts (an empty range); fix the "
                "header, or read the file with MNE, drop the channel and pass the Raw to "
                "neuript (Recording.from_mne)")


# --------------------------------------------------------------------------------------------
# MNE readers
# --------------------------------------------------------------------------------------------
def _read_with_mne(path: Path, reader: str, fmt: str) -> Recording:
    """Read ``path`` with ``mne.io.<reader>`` and convert it to a Recording."""
    if path.stat().st_size == 0:
        raise RecordingError(path, "file is empty (0 bytes)")
    if fmt in ("EDF", "BDF"):
        _check_edf_header(path, 2 if fmt == "EDF" else 3)
    import mne

    kwargs: dict[str, Any] = {"preload": True, "verbose": "error"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            try:
                raw = getattr(mne.io, reader)(path, **kwargs)
            except Exception as err:
                # EDF+ annotations that are not UTF-8 (seen in EEGMMIDB R01/R02): MNE asks for
                # latin-1; that one documented case is read again, nothing else is retried.
                if fmt not in ("EDF", "BDF") or "latin1" not in str(err):
                    raise
                log.warning("%s: annotations are not UTF-8; decoding them as latin-1", path)
                raw = getattr(mne.io, reader)(path, encoding="latin1", **kwargs)
        except Exception as err:  # boundary: every MNE failure becomes one RecordingError
            log.debug("MNE %s failed on %s", reader, path, exc_info=True)
            raise RecordingError(
                path, f"could not be read as {fmt} by MNE ({type(err).__name__}: {err})"
            ) from None
    for warning in caught:
        log.warning("%s: %s", path, warning.message)
    return _from_raw(raw, path)


def _stim_events(codes: np.ndarray, sfreq_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Onsets (s) and codes where a stim channel steps to a new non-zero value."""
    codes = np.rint(codes).astype(np.int64)
    previous = np.concatenate([[0], codes[:-1]])
    idx = np.flatnonzero((codes != 0) & (codes != previous))
    return idx / sfreq_hz, codes[idx]


def _from_raw(raw: Any, path: Path) -> Recording:
    """Split an MNE Raw into EEG data (volts), excluded channels and events."""
    sfreq = float(raw.info["sfreq"])
    if len(raw.ch_names) == 0:
        raise RecordingError(
            path, "no signal channels (an annotation-only file such as a hypnogram?); "
            "use read_annotations for such files",
        )
    kinds = []
    for name, mne_type in zip(raw.ch_names, raw.get_channel_types()):
        kinds.append(channel_kind(name) if mne_type == "eeg" else mne_type)
    excluded = {raw.ch_names[i]: k for i, k in enumerate(kinds) if k != "eeg"}
    if excluded:
        log.info("%s: set aside non-EEG channels %s", path, excluded)
    marked = set(raw.info["bads"])
    bads = [name for name, kind in zip(raw.ch_names, kinds) if kind == "eeg" and name in marked]
    if bads:
        log.info("%s: set aside bad channels %s (info['bads'])", path, bads)
        excluded.update(dict.fromkeys(bads, "bad"))
    eeg_idx = [i for i, kind in enumerate(kinds) if kind == "eeg" and raw.ch_names[i] not in bads]
    if raw.n_times == 0:
        raise RecordingError(path, "zero-length recording (0 samples)")
    data = raw.get_data(picks=eeg_idx) if eeg_idx else np.zeros((0, raw.n_times))
    onsets, durations, labels = [], [], []
    annotations = raw.annotations
    if len(annotations):
        shift = raw.first_time if annotations.orig_time is not None else 0.0
        onsets.append(annotations.onset - shift)
        durations.append(annotations.duration)
        labels.append(_as_str(annotations.description))
    orig_units = getattr(raw, "_orig_units", None) or {}
    for i, (kind, mne_type) in enumerate(zip(kinds, raw.get_channel_types())):
        if kind == "stim":
            values = raw.get_data(picks=[i])[0]
            if mne_type == "eeg":  # typed by name: MNE scaled it to volts from the file's unit
                values = values / UNIT_SCALE_TO_VOLTS.get(orig_units.get(raw.ch_names[i]), 1.0)
            on, codes = _stim_events(values, sfreq)
            onsets.append(on)
            durations.append(np.zeros_like(on))
            labels.append(codes.astype(str))
    events = _merge_events(onsets, durations, labels)
    names = [raw.ch_names[i] for i in eeg_idx]
    positions = custom_positions(raw.info["chs"], names, path)
    return _finish(path, data, sfreq, names, events, excluded, positions)


def recording_from_raw(
    raw: Any, source: str | os.PathLike, subject: str | None = None, session: str | None = None
) -> Recording:
    """Convert an MNE ``Raw`` already in memory (e.g. from ``mne_bids.read_raw_bids``).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        A preloaded (or loadable) recording; channel types and annotations are used as
        :func:`read_recording` uses them.
    source : path-like
        Name of the recording in errors and in ``Recording.source``.
    subject, session : str | None
        Identifiers to store.

    Returns
    -------
    recording : Recording
        EEG channels in volts; non-EEG channels and ``info["bads"]`` in ``excluded``
        (``"bad"``); annotations as events; ``positions`` from ``info["chs"]`` for channels
        without a 10-05 name (:func:`neuript.data.mne_bridge.custom_positions`).
    """
    return _replace_ids(_from_raw(raw, Path(source)), subject, session)


def _as_str(values: Any) -> np.ndarray:
    """A plain ``<U`` string array (MNE may hand out NumPy's variable-width StringDType)."""
    return np.array([str(v) for v in values], dtype=str).reshape(-1)


def _merge_events(onsets: list, durations: list, labels: list) -> Events:
    if not onsets:
        return Events()
    onset = np.concatenate(onsets).astype(np.float64)
    order = np.argsort(onset, kind="stable")
    return Events(
        onset_s=onset[order],
        duration_s=np.concatenate(durations).astype(np.float64)[order],
        description=_as_str(np.concatenate(labels))[order],
    )


def _finish(
    path: Path,
    data_v: np.ndarray,
    sfreq_hz: float,
    ch_names: list[str],
    events: Events,
    excluded: dict[str, str],
    positions: dict[str, np.ndarray] | None = None,
) -> Recording:
    """Final checks shared by every reader, then the Recording."""
    if data_v.shape[1] == 0:
        raise RecordingError(path, "zero-length recording (0 samples)")
    bad = ~np.isfinite(data_v)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        names = [ch_names[i] for i in rows[:5]]
        raise RecordingError(
            path,
            f"{int(bad.sum())} non-finite (NaN/inf) samples in channel(s) {names}; "
            "expected finite values",
        )
    if not ch_names:
        log.warning("%s: no EEG channels (only %s)", path, sorted(excluded))
    return Recording(
        data=np.ascontiguousarray(data_v, dtype=np.float64),
        sfreq_hz=sfreq_hz,
        ch_names=tuple(ch_names),
        source=str(path),
        events=events,
        excluded=excluded,
        positions=positions,
    )


# --------------------------------------------------------------------------------------------
# CSV layouts
# --------------------------------------------------------------------------------------------
def _gunzip(blob: bytes) -> bytes:
    """Every member of a gzip stream, each inflated by one C call (no chunked Python reads)."""
    parts = []
    while blob:
        inflater = zlib.decompressobj(wbits=31)
        parts.append(inflater.decompress(blob))
        if not inflater.eof:
            raise EOFError("compressed file ended before the end-of-stream marker")
        blob = inflater.unused_data
    return b"".join(parts)


def _csv_text(path: Path) -> tuple[list[str], bytes]:
    """The header fields and the whole CSV text (bytes, decompressed when ``.gz``)."""
    try:
        blob = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            blob = _gunzip(blob)
        end = blob.find(b"\n")
        line = (blob if end < 0 else blob[:end]).decode("utf-8", errors="strict")
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as err:
        raise RecordingError(path, f"cannot read as (gzipped) CSV text: {err}") from None
    return ([c.strip() for c in line.strip().split(",")] if line.strip() else []), blob


def _read_table(path: Path, text: bytes) -> np.ndarray:
    """The numeric body of a CSV (pandas' C parser), shape (rows, columns), float64.

    Column types are inferred with the NA filter off (the fast path: numbers only); when a
    column is not numeric the text is parsed again with NA handling so that empty or ``nan``
    cells become NaN (reported by :func:`_finish`) and only true text is refused here.
    """
    import pandas as pd

    def parse(**kwargs: Any) -> Any:
        try:
            return pd.read_csv(io.BytesIO(text), engine="c", low_memory=False, **kwargs)
        except (ValueError, OSError, EOFError, pd.errors.ParserError) as err:
            problem = f"CSV body is not numeric or is corrupt ({err})"
            raise RecordingError(path, problem) from None

    frame = parse(na_filter=False)
    if len(frame) == 0:
        raise RecordingError(path, "zero-length recording (header only, no rows)")
    if not all(kind in "iuf" for kind in frame.dtypes.map(lambda d: d.kind)):
        frame = parse(dtype=np.float64)
    return frame.to_numpy(dtype=np.float64)


def _muse_rate(path: Path, stamps: np.ndarray) -> float:
    """Check Muse (LSL) timestamps and return the sampling rate: the nominal 256 Hz.

    LSL stamps jitter: they may repeat or step back by tens of ms. Such steps (up to
    :data:`MUSE_MAX_GAP_S`) are accepted with one warning giving their count and the largest;
    samples are taken at the nominal rate. Refused: non-finite stamps, a jump forward or back
    longer than :data:`MUSE_MAX_GAP_S`, or an overall rate more than :data:`MUSE_RATE_TOL` off
    256 Hz (rows over time span: the stamps of the bundled files are rounded to 1 ms, so the
    median step, 4 ms, would say 250 Hz). Rows are counted from 0, the header not included (file
    line = row + 2).
    """
    bad = np.flatnonzero(~np.isfinite(stamps))
    if bad.size:
        raise RecordingError(
            path, f"{bad.size} non-finite (NaN/inf) timestamp(s), the first at row {bad[0]}; "
            "drop those rows or fill in their timestamps",
        )
    steps = np.diff(stamps)  # steps[i]: from row i to row i + 1
    jumps = np.flatnonzero(np.abs(steps) > MUSE_MAX_GAP_S)
    if jumps.size:
        first = int(jumps[0])
        raise RecordingError(
            path, f"inconsistent sampling: {jumps.size} timestamp jump(s) longer than "
            f"{MUSE_MAX_GAP_S:g} s, the first {steps[first]:+.2f} s at row {first + 1} "
            f"({stamps[first] - stamps[0]:.1f} s into the file); split the file there or leave "
            "it out of the inputs",
        )
    span = stamps[-1] - stamps[0]
    rate = (len(stamps) - 1) / span if span > 0 else 0.0
    if abs(rate / MUSE_SFREQ_HZ - 1) > MUSE_RATE_TOL:
        raise RecordingError(
            path, f"inconsistent sampling: timestamps give {rate:.2f} Hz, expected the Muse "
            f"{MUSE_SFREQ_HZ:g} Hz within {MUSE_RATE_TOL:.0%}",
        )
    irregular = np.flatnonzero(steps <= 0)
    if irregular.size:
        log.warning(
            "%s: %d timestamp(s) repeat or step backwards (largest step back %.3f s, first at "
            "row %d); samples are taken at the nominal %g Hz", path, irregular.size,
            -float(steps[irregular].min()), irregular[0] + 1, MUSE_SFREQ_HZ,
        )
    return MUSE_SFREQ_HZ


def _read_muse(path: Path, header: list[str], text: bytes) -> Recording:
    table = _read_table(path, text)
    if table.shape[0] < 2:
        raise RecordingError(path, "too few rows to derive a sampling rate (need >= 2)")
    sfreq = _muse_rate(path, table[:, 0])
    eeg = np.ascontiguousarray(table[:, 1:5].T)
    eeg *= 1e-6  # µV → V
    onset, codes = _stim_events(table[:, 6], sfreq)
    events = Events(onset, np.zeros_like(onset), codes.astype(str))
    excluded = {header[5]: "misc", header[6]: "stim"}
    return _finish(path, eeg, sfreq, list(header[1:5]), events, excluded)


def _read_adhd(path: Path, header: list[str], text: bytes) -> Recording:
    table = _read_table(path, text)
    data = np.ascontiguousarray(table.T)
    data *= 1e-6  # µV → V
    return _finish(path, data, ADHD_SFREQ_HZ, list(ADHD_CHANNELS), Events(), {})


def _read_csv(path: Path) -> Recording:
    """Dispatch on the CSV header: the Muse layout or the ADHD layout."""
    if path.stat().st_size == 0:
        raise RecordingError(path, "file is empty (0 bytes)")
    header, text = _csv_text(path)
    if tuple(header[:6]) == MUSE_COLUMNS and len(header) == 7 and header[6].startswith("Marker"):
        return _read_muse(path, header, text)
    if header == [str(i) for i in range(len(ADHD_CHANNELS))]:
        return _read_adhd(path, header, text)
    raise RecordingError(
        path,
        f"unknown CSV layout (header {header[:8]}); expected the Muse header "
        f"{','.join(MUSE_COLUMNS)},Marker or the ADHD header 0..18",
    )


READERS: dict[str, Callable[[Path], Recording]] = {
    ".edf": functools.partial(_read_with_mne, reader="read_raw_edf", fmt="EDF"),
    ".bdf": functools.partial(_read_with_mne, reader="read_raw_bdf", fmt="BDF"),
    ".gdf": functools.partial(_read_with_mne, reader="read_raw_gdf", fmt="GDF"),
    ".fif": functools.partial(_read_with_mne, reader="read_raw_fif", fmt="FIF"),
    ".vhdr": functools.partial(_read_with_mne, reader="read_raw_brainvision", fmt="BrainVision"),
    ".set": functools.partial(_read_with_mne, reader="read_raw_eeglab", fmt="EEGLAB"),
    ".cnt": functools.partial(_read_with_mne, reader="read_raw_cnt", fmt="Neuroscan CNT"),
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
}
"""File suffix (lower case) → reader returning a Recording without subject/session."""


def file_suffix(path: str | os.PathLike) -> str:
    """The dispatch key of a path: ``".csv.gz"`` for gzipped CSV, else the lower-case suffix."""
    name = Path(path).name.lower()
    if name.endswith(".fif.gz"):
        return ".fif"
    return ".csv.gz" if name.endswith(".csv.gz") else Path(name).suffix


def read_recording(
    path: str | os.PathLike, *, subject: str | None = None, session: str | None = None
) -> Recording:
    """Read one recording file.

    Parameters
    ----------
    path : path-like
        An EDF/EDF+, BDF, GDF, FIF, BrainVision ``.vhdr``, EEGLAB ``.set``, Neuroscan ``.cnt``,
        or a Muse / ADHD ``.csv(.gz)`` file.
    subject, session : str | None
        Override the identifiers guessed from the path (:func:`guess_subject_session`).

    Returns
    -------
    recording : Recording
        ``data`` (C, T) float64 in volts, EEG channels only; events from annotations, stim
        channels or markers (onsets in seconds from the first sample); non-EEG channels in
        ``excluded``.

    Raises
    ------
    RecordingError
        Missing, empty, truncated or corrupt file, unsupported suffix, NaN/inf, zero samples,
        inconsistent sampling.
    """
    path = Path(path)
    suffix = file_suffix(path)
    reader = READERS.get(suffix)
    if reader is None:
        raise RecordingError(
            path, f"unsupported file type {suffix or '(none)'!r}; supported: {sorted(READERS)}"
        )
    if not path.is_file():
        raise RecordingError(path, "no such file")
    recording = reader(path)
    guessed_subject, guessed_session = guess_subject_session(path)
    return _replace_ids(
        recording,
        subject if subject is not None else guessed_subject,
        session if session is not None else guessed_session,
    )


def _replace_ids(recording: Recording, subject: str | None, session: str | None) -> Recording:
    return dataclasses.replace(recording, subject=subject, session=session)


def read_annotations(path: str | os.PathLike) -> Events:
    """Read only the annotations of a file (e.g. a Sleep-EDF hypnogram, which has no signals).

    Parameters
    ----------
    path : path-like
        An EDF+/BDF/FIF/BrainVision/EEGLAB file or annotation file MNE can read.

    Returns
    -------
    events : Events
        Onsets (s, relative to the file's start), durations (s), descriptions.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise RecordingError(path, "no such file, or empty")
    import mne

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            annotations = mne.read_annotations(path)
    except Exception as err:  # boundary: MNE failure → RecordingError
        log.debug("mne.read_annotations failed on %s", path, exc_info=True)
        problem = f"cannot read annotations ({type(err).__name__}: {err})"
        raise RecordingError(path, problem) from None
    return Events(
        onset_s=np.asarray(annotations.onset, dtype=np.float64),
        duration_s=np.asarray(annotations.duration, dtype=np.float64),
        description=_as_str(annotations.description),
    )
