"""The two CSV layouts :func:`neuript.data.io.read_recording` knows by their header.

Muse (NeuroTechX eeg-notebooks): header ``timestamps,TP9,AF7,AF8,TP10,Right AUX,Marker…``, µV,
LSL timestamps checked against the nominal 256 Hz, the marker column a stim channel. ADHD
(IEEE DataPort): header ``0,…,18``, 128 Hz, µV, channels :data:`ADHD_CHANNELS`. Either file may
be gzipped (``.csv.gz``). Any other CSV is a plain numeric table read with reader options
(:mod:`neuript.data.exports`).
"""

from __future__ import annotations

import io
import logging
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

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


def gunzip(blob: bytes) -> bytes:
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
            blob = gunzip(blob)
        end = blob.find(b"\n")
        line = (blob if end < 0 else blob[:end]).decode("utf-8", errors="strict")
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as err:
        raise RecordingError(path, f"cannot read as (gzipped) CSV text: {err}") from None
    return ([c.strip() for c in line.strip().split(",")] if line.strip() else []), blob


def _read_table(path: Path, text: bytes) -> np.ndarray:
    """The numeric body of a CSV (pandas' C parser), shape (rows, columns), float64.

    Column types are inferred with the NA filter off (the fast path: numbers only); when a
    column is not numeric the text is parsed again with NA handling so that empty or ``nan``
    cells become NaN (reported by the caller's finite check) and only true text is refused here.
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


def _read_muse(path: Path, header: list[str], text: bytes) -> CsvLayout:
    table = _read_table(path, text)
    if table.shape[0] < 2:
        raise RecordingError(path, "too few rows to derive a sampling rate (need >= 2)")
    sfreq = _muse_rate(path, table[:, 0])
    eeg = np.ascontiguousarray(table[:, 1:5].T)
    eeg *= 1e-6  # µV → V
    excluded = {header[5]: "misc", header[6]: "stim"}
    return CsvLayout(eeg, sfreq, tuple(header[1:5]), excluded, table[:, 6])


def _read_adhd(path: Path, header: list[str], text: bytes) -> CsvLayout:
    table = _read_table(path, text)
    data = np.ascontiguousarray(table.T)
    data *= 1e-6  # µV → V
    return CsvLayout(data, ADHD_SFREQ_HZ, ADHD_CHANNELS, {}, None)


class CsvLayout(NamedTuple):
    """A CSV recording of a known layout, before the checks every reader shares."""

    data_v: np.ndarray
    """EEG signals, shape (C, T), float64, volts."""
    sfreq_hz: float
    """Sampling rate (Hz)."""
    ch_names: tuple[str, ...]
    """EEG channel names, length C."""
    excluded: dict[str, str]
    """Columns that are not EEG → their type."""
    markers: np.ndarray | None
    """The stim (marker) column, shape (T,), or None."""


def _layout_of(header: list[str]) -> Any:
    if tuple(header[:6]) == MUSE_COLUMNS and len(header) == 7 and header[6].startswith("Marker"):
        return _read_muse
    if header == [str(i) for i in range(len(ADHD_CHANNELS))]:
        return _read_adhd
    return None


def read_csv_layout(path: Path) -> CsvLayout:
    """Read a Muse or ADHD CSV (``.gz`` or not); any other header is a RecordingError."""
    header, text = _csv_text(path)
    reader = _layout_of(header)
    if reader is None:
        raise RecordingError(
            path,
            f"unknown CSV layout (a first line of {len(header)} field(s); its text is not "
            "repeated here, a manifest may point at any file); expected the Muse header "
            f"{','.join(MUSE_COLUMNS)},Marker or the ADHD header 0..18, or pass the reader "
            "options sfreq and ch_names to read it as a plain numeric table",
        )
    return reader(path, header, text)
