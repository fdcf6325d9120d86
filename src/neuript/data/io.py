"""Reading recordings from files: the only module that calls MNE's readers.

:func:`read_recording` dispatches on the file suffix through :data:`READERS` (suffixes that make
a file a recording) and :data:`NAMED_READERS` (suffixes read only when the file is named: Nihon
Kohden ``.eeg``, numeric exports of :mod:`neuript.data.exports`), passes its ``reader_options``
to the chosen reader (refusing keys it does not take), and returns a
:class:`~neuript.data.recording.Recording` in **volts** holding only EEG channels. Channels that are
not EEG (ECG, EOG, EMG, respiration, stim/status, AUX, ear-reference differences such as
``"EEG A2-A1"``) are set aside in ``Recording.excluded`` with their type and logged. MNE's type is
used where the format records one; otherwise the type is guessed from the name
(:func:`neuript.data.montage.channel_kind`). Channels MNE marks bad (``info["bads"]``) are set
aside the same way (type ``"bad"``), and custom electrodes keep the positions their file records
(:mod:`neuript.data.mne_bridge` states both rules; it also converts Raw and Epochs objects).

Every failure (empty, truncated or wrongly sized file, random bytes, unknown suffix or CSV
layout, NaN/inf, zero samples, broken timestamps, a missing optional package, a reader option
missing or not accepted) raises one line, a :class:`~neuript.errors.RecordingError` naming the
file and the problem; the underlying exception is logged at DEBUG level, not chained.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import logging
import os
import re
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neuript.data.csv_layouts import read_csv_layout
from neuript.data.edf_header import check_edf_header
from neuript.data.exports import ExportKind, read_export
from neuript.data.mne_bridge import custom_positions
from neuript.data.montage import channel_kind
from neuript.data.recording import UNIT_SCALE_TO_VOLTS, Events, Recording
from neuript.errors import RecordingError

log = logging.getLogger(__name__)

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
# MNE readers and their options
# --------------------------------------------------------------------------------------------
FIXED_MNE_ARGUMENTS: frozenset[str] = frozenset({"preload", "verbose"})
"""Arguments of the ``mne.io.read_raw_*`` readers that neuript sets itself (besides the file)."""
EXTRAS_HINT = "pip install 'neuript[formats]'"
"""How to install every optional package a reader may need (pyproject's ``formats`` extra)."""
EXIMIA_FRAME_BYTES = 64 * 2
"""eXimia ``.nxe`` files have no header: 64 channels of int16 per sample, 1450 Hz."""


def mne_reader_options(reader: str) -> tuple[str, ...]:
    """The reader options ``mne.io.<reader>`` accepts, read from its signature.

    The file argument and :data:`FIXED_MNE_ARGUMENTS` are left out: for ``read_raw_cnt``,
    ``eog, misc, ecg, emg, data_format, date_format, recompute_n_samples, header``.
    """
    import inspect

    import mne

    params = list(inspect.signature(getattr(mne.io, reader)).parameters)
    return tuple(p for p in params[1:] if p not in FIXED_MNE_ARGUMENTS)


def _check_mne_options(path: Path, reader: str, fmt: str, options: Mapping[str, Any]) -> None:
    accepted = mne_reader_options(reader)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise RecordingError(path, f"reader option(s) {', '.join(unknown)} not accepted by "
                             f"mne.io.{reader} ({fmt}); accepted: {', '.join(accepted)}")


def _mne_failure(err: Exception, fmt: str) -> str:
    """One line for an MNE reader's exception (some embed a traceback or install advice)."""
    text = str(err)
    package = re.search(r"the module ([A-Za-z_][\w.]*)\S* is needed", text)
    if package:
        name = package.group(1)
        return (f"reading {fmt} files needs the Python package {name!r}, which is not "
                f"installed: pip install {name} (or {EXTRAS_HINT})")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    inner = [line for line in lines if re.match(r"\w+(Error|Exception): ", line)]
    detail = inner[-1] if inner else f"{type(err).__name__}: {' '.join(lines)}"
    if len(detail) > 400:
        detail = detail[:400] + " …"
    problem = f"could not be read as {fmt} by MNE ({detail})"
    if fmt == "Neuroscan CNT" and "data_format" in detail:
        problem += ("; pass the reader option data_format='int16' or 'int32' (the amplifier's "
                    "sample width): --reader-option data_format=int32 on the command line, "
                    "reader_options {\"data_format\": \"int32\"} in a manifest")
    return problem


def _call_reader(path: Path, reader: str, fmt: str, kwargs: dict[str, Any]) -> Any:
    import mne

    func = getattr(mne.io, reader)
    try:
        return func(path, **kwargs)
    except Exception as err:
        # EDF+ annotations that are not UTF-8 (seen in EEGMMIDB R01/R02): MNE asks for
        # latin-1; that one documented case is read again, nothing else is retried.
        if fmt not in ("EDF", "BDF") or "latin1" not in str(err) or "encoding" in kwargs:
            raise
        log.warning("%s: annotations are not UTF-8; decoding them as latin-1", path)
        return func(path, encoding="latin1", **kwargs)


def _read_with_mne(
    path: Path, options: Mapping[str, Any], *, reader: str, fmt: str
) -> Recording:
    """Read ``path`` with ``mne.io.<reader>`` (``options`` as keyword arguments)."""
    if fmt in ("EDF", "BDF"):
        check_edf_header(path, 2 if fmt == "EDF" else 3)
    if fmt == "eXimia" and path.stat().st_size % EXIMIA_FRAME_BYTES:
        raise RecordingError(path, f"file size {path.stat().st_size} bytes is not whole "
                             f"{EXIMIA_FRAME_BYTES}-byte samples (64 channels × int16): "
                             "truncated, or not an eXimia .nxe file")
    _check_mne_options(path, reader, fmt, options)
    kwargs: dict[str, Any] = {**options, "preload": True, "verbose": "error"}
    printed = io.StringIO()  # a few readers print (Persyst: birth dates); stdout stays clean
    # sys.stdout is process-wide: swapping it from worker threads (task builders read files in
    # a thread pool) can leave it pointing at a finished buffer, and every later print is lost.
    # Only the main thread captures; a worker's reader output goes to stdout as MNE prints it.
    capture = (contextlib.redirect_stdout(printed)
               if threading.current_thread() is threading.main_thread()
               else contextlib.nullcontext())
    with warnings.catch_warnings(record=True) as caught, capture:
        warnings.simplefilter("always")
        try:
            raw = _call_reader(path, reader, fmt, kwargs)
        except Exception as err:  # boundary: every MNE failure becomes one RecordingError
            log.debug("MNE %s failed on %s", reader, path, exc_info=True)
            raise RecordingError(path, _mne_failure(err, fmt)) from None
    for line in filter(None, map(str.strip, printed.getvalue().splitlines())):
        log.info("%s: mne.io.%s printed: %s", path, reader, line)
    for warning in caught:
        log.warning("%s: %s", path, warning.message)
    return _from_raw(raw, path)


def _read_cnt(path: Path, options: Mapping[str, Any]) -> Recording:
    """``.cnt``: ANT Neuro (a RIFF/RF64 container) or Neuroscan, told apart by the first bytes."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic in (b"RIFF", b"RF64"):
        return _read_with_mne(path, options, reader="read_raw_ant", fmt="ANT Neuro CNT")
    return _read_with_mne(path, options, reader="read_raw_cnt", fmt="Neuroscan CNT")


def brainvision_header_of(path: Path) -> Path | None:
    """The BrainVision header (``.vhdr``) whose data file ``path`` is, or None.

    A ``.vhdr`` beside it with the same stem, or one in its folder whose ``DataFile=`` line
    names it (any letter case).
    """
    for suffix in (".vhdr", ".VHDR"):
        if path.with_suffix(suffix).is_file():
            return path.with_suffix(suffix)
    for header in sorted(path.parent.glob("*.[vV][hH][dD][rR]")):
        try:
            with open(header, encoding="utf-8", errors="replace") as fh:
                text = fh.read(8192)
        except OSError:
            continue
        found = re.search(r"^\s*DataFile\s*=\s*(.+?)\s*$", text, re.MULTILINE | re.IGNORECASE)
        if found and Path(found.group(1)).name.lower() == path.name.lower():
            return header
    return None


def _read_nihon_or_refuse(path: Path, options: Mapping[str, Any]) -> Recording:
    """``.eeg``: Nihon Kohden, unless it is the data file of a BrainVision header."""
    header = brainvision_header_of(path)
    if header is not None:
        raise RecordingError(path, f"the data file of the BrainVision recording {header.name}: "
                             f"read {header} instead")
    with open(path, "rb") as fh:
        device = fh.read(16)  # e.g. b"EEG-1200A V01.00"
    if not (device.isascii() and device.decode("ascii").isprintable()):
        raise RecordingError(path, "neither a Nihon Kohden .EEG file (which starts with a device "
                             "name such as 'EEG-1200A V01.00') nor the data file of a "
                             "BrainVision recording (no .vhdr beside it names it)")
    return _read_with_mne(path, options, reader="read_raw_nihon", fmt="Nihon Kohden")


def _read_export(path: Path, options: Mapping[str, Any], *, kind: ExportKind) -> Recording:
    """A numeric export (:mod:`neuript.data.exports`): names typed as :func:`_from_raw` does."""
    export = read_export(path, kind, options)
    kinds = [channel_kind(name) for name in export.ch_names]
    keep = [i for i, kind_ in enumerate(kinds) if kind_ == "eeg"]
    excluded = {export.ch_names[i]: k for i, k in enumerate(kinds) if k != "eeg"}
    if excluded:
        log.info("%s: set aside non-EEG channels %s", path, excluded)
    return _finish(path, export.data_v[keep], export.sfreq_hz,
                   [export.ch_names[i] for i in keep], Events(), excluded)


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
# registry and entry point
# --------------------------------------------------------------------------------------------
def _read_csv(path: Path, options: Mapping[str, Any]) -> Recording:
    """The Muse or ADHD layout by header; with reader options, a plain numeric table."""
    if options:
        return _read_export(path, options, kind="text")
    layout = read_csv_layout(path)
    events = Events()
    if layout.markers is not None:
        onset, codes = _stim_events(layout.markers, layout.sfreq_hz)
        events = Events(onset, np.zeros_like(onset), codes.astype(str))
    return _finish(path, layout.data_v, layout.sfreq_hz, list(layout.ch_names), events,
                   layout.excluded)


Reader = Callable[[Path, Mapping[str, Any]], Recording]


def _mne(reader: str, fmt: str) -> Reader:
    return functools.partial(_read_with_mne, reader=reader, fmt=fmt)


READERS: dict[str, Reader] = {
    ".edf": _mne("read_raw_edf", "EDF"),
    ".bdf": _mne("read_raw_bdf", "BDF"),
    ".gdf": _mne("read_raw_gdf", "GDF"),
    ".fif": _mne("read_raw_fif", "FIF"),
    ".vhdr": _mne("read_raw_brainvision", "BrainVision"),
    ".set": _mne("read_raw_eeglab", "EEGLAB"),
    ".cnt": _read_cnt,  # ANT Neuro or Neuroscan, by the first bytes
    ".nxe": _mne("read_raw_eximia", "eXimia"),
    ".nedf": _mne("read_raw_nedf", "NEDF"),
    ".lay": _mne("read_raw_persyst", "Persyst"),
    ".mff": _mne("read_raw_egi", "EGI MFF"),  # a folder
    ".cdt": _mne("read_raw_curry", "Curry"),
    ".csv": _read_csv,
    ".csv.gz": _read_csv,
}
"""Suffix (lower case) → reader, for suffixes that alone make a file a recording: a folder scan
(:func:`neuript.data.scan.scan_inputs`) takes every file with one of them."""

NAMED_READERS: dict[str, Reader] = {
    ".eeg": _read_nihon_or_refuse,  # Nihon Kohden, unless a BrainVision .vhdr names the file
    ".npy": functools.partial(_read_export, kind="npy"),
    ".txt": functools.partial(_read_export, kind="text"),
    ".tsv": functools.partial(_read_export, kind="text"),
    ".mat": functools.partial(_read_export, kind="mat"),
}
"""Suffix → reader, for files read only when named: the suffix alone does not make a recording
(a ``.eeg`` may be BrainVision data, a ``.txt``/``.tsv``/``.npy``/``.mat`` anything; numeric
exports also need the reader options ``sfreq`` and ``ch_names``, :mod:`neuript.data.exports`).
Folder scans take a ``.eeg`` only with a Nihon Kohden ``.PNT``/``.21E`` beside it
(:data:`neuript.data.scan.NIHON_KOHDEN_MARKERS`)."""


def file_suffix(path: str | os.PathLike) -> str:
    """The dispatch key of a path: ``".csv.gz"`` for gzipped CSV, else the lower-case suffix."""
    name = Path(path).name.lower()
    if name.endswith(".fif.gz"):
        return ".fif"
    return ".csv.gz" if name.endswith(".csv.gz") else Path(name).suffix


def read_recording(
    path: str | os.PathLike,
    *,
    subject: str | None = None,
    session: str | None = None,
    reader_options: Mapping[str, Any] | None = None,
) -> Recording:
    """Read one recording file.

    Parameters
    ----------
    path : path-like
        Any suffix of :data:`READERS` or :data:`NAMED_READERS` (docs/byod.md has the table):
        EDF/EDF+, BDF, GDF, FIF, BrainVision ``.vhdr``, EEGLAB ``.set``, ANT Neuro or Neuroscan
        ``.cnt``, eXimia ``.nxe``, NEDF, Persyst ``.lay``, EGI ``.mff`` (a folder), Curry
        ``.cdt``, Nihon Kohden ``.eeg``, Muse / ADHD ``.csv(.gz)``, and numeric exports
        ``.npy``/``.txt``/``.tsv``/``.csv``/``.mat``.
    subject, session : str | None
        Override the identifiers guessed from the path (:func:`guess_subject_session`).
    reader_options : mapping | None
        Keyword arguments for the format's MNE reader (:func:`mne_reader_options`, e.g.
        ``{"data_format": "int32"}`` for a Neuroscan CNT MNE cannot size), or ``sfreq``
        (Hz), ``ch_names``, ``unit`` (default µV) for a numeric export. Unknown keys are refused.

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
        inconsistent sampling, reader options missing or not accepted.
    """
    path = Path(path)
    suffix = file_suffix(path)
    reader = READERS.get(suffix) or NAMED_READERS.get(suffix)
    if reader is None:
        raise RecordingError(path, f"unsupported file type {suffix or '(none)'!r}; supported: "
                             f"{sorted({**READERS, **NAMED_READERS})}")
    if suffix == ".mff" and not path.is_dir():
        raise RecordingError(path, "no such folder (an EGI .mff recording is a folder)")
    if suffix != ".mff" and not path.is_file():
        raise RecordingError(path, "no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise RecordingError(path, "file is empty (0 bytes)")
    recording = reader(path, dict(reader_options or {}))
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
