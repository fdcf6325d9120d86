"""EDF/BDF size and range checks, run before MNE reads the file.

MNE only warns on a truncated EDF/BDF and silently reads a long one (e.g. after a text-mode copy
turned LF into CR LF) as garbage, and it reads a signal whose digital range is empty as about
1 V. :func:`check_edf_header` refuses both with a :class:`~neuript.errors.RecordingError`
naming the file, before :mod:`neuript.data.io` hands it to MNE.
"""

from __future__ import annotations

from pathlib import Path

from neuript.errors import RecordingError


def check_edf_header(path: Path, bytes_per_sample: int) -> None:
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
