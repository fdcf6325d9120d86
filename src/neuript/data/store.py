"""The on-disk window corpus: a restartable, parallel writer and a memory-mapped reader.

Layout of a corpus folder ``out_dir``::

    config.json            {"format", "preprocess": PreprocessConfig, "on_unknown"} (+ the
                           "reader_options", "positions", "recording_norm" and
                           "flat_channels" of the run, when not the default)
    parts/<key>.json       one per source file: the commit record (windows, or why it was
                           skipped; the size and sha256 of its shard array)
    shards/<montage>/<key>.npy   float32 (N, C, T) µV windows of that file (memory-mappable)
    manifest.csv           one row per window (rebuilt from the parts at the end of every run)
    columns/               the same manifest as memory-mappable arrays (:data:`COLUMNS_DIR`)
    montages.json          montage id -> channel names + positions (metres, head frame)
    skipped.json           files that failed, with the reason
    summary.json           :class:`CorpusSummary`
    manifest.shard-<i>-of-<n>.json, summary.shard-<i>-of-<n>.json   a shard run's fragment
    .writer.<all|shard-i-of-n>.lock, .corpus.lock   held while a run writes (see data.locks)

The inputs (files, folders, globs) are expanded by :mod:`neuript.data.scan`. Every file is
written to a temporary name and moved into place with :func:`os.replace`; a shard is
in place before its part, and only parts feed the manifest. A run killed at any point (even
``kill -9``) therefore never leaves a half-written shard referenced, and the next run redoes only
the files without a part, giving the same manifest as an uninterrupted run. Its worker processes
die with it (:func:`_die_with_parent`).

Many writers. Each run holds a writer lock for its slice (``all`` without ``shard``; a second
writer of the same slice is refused with one line; the lock of a dead process on this host is
taken over) and checks or creates ``config.json`` under ``.corpus.lock``. A run without
``shard`` writes the corpus files from every part in the folder, as always. A run with
``shard=(i, n)`` writes only its parts and its fragment; the corpus files are assembled by
:func:`neuript.data.merge.merge_corpus` (``neuript prepare --merge DIR [DIR ...] --out OUT``),
which checks every fragment's configuration, input list and hashes first. A shard run that
finds all n fragments in its folder runs that merge itself, so N machines writing into one
shared folder end with the whole corpus; N machines writing one folder each merge at the end.
Nothing else (``neuript_prepare.json`` included) is written before the checks have passed.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import hashlib
import importlib
import io
import json
import logging
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import types
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from neuript.config import OnUnknown, PreprocessConfig, SubjectNorm, from_dict, to_dict
from neuript.data.io import read_recording
from neuript.data.locks import hold_lock
from neuript.data.normalize import normalize_groups
from neuript.data.positions import load_positions, unplaced_channels, with_positions
from neuript.data.preprocess import flat_electrodes, prepare_recording
from neuript.data.recording import Events
from neuript.data.scan import InputScan, scan_inputs, source_stat
from neuript.data.scan import find_inputs as find_inputs  # re-exported: prepare's input list
from neuript.errors import ChannelError, NeuriptError, check_option
from neuript.files import atomic_write, sha256_file

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_COLUMNS: tuple[str, ...] = (
    "window_id", "source", "subject", "session", "start", "montage_id", "label", "hash",
    "shard", "row",
)


COLUMNS_DIR = "columns"
"""Folder of ``manifest.csv``'s columns as ``.npy`` arrays (text columns as int32 codes into
``meta.json``'s value lists), written with every manifest and memory-mapped by the reader, so
opening a corpus neither parses the CSV nor copies its columns into each data-loader process.
``meta.json`` (written last) records the SHA-256 of the ``manifest.csv`` they were made from;
a manifest replaced or edited since is read from the CSV instead."""
INT_COLUMNS: tuple[str, ...] = ("window_id", "start", "row")
"""Manifest columns held as int64; the rest are text."""


SKIP_REASONS: tuple[str, ...] = (
    "unsupported format", "unreadable/corrupt", "annotations only", "no usable channels",
    "too short", "unexpected error",
)
"""Classes of :attr:`InputReport.skipped`, in table order (see :func:`skip_class`)."""


@dataclass(frozen=True)
class InputReport:
    """What one input (or all of them) gave in a run of :func:`prepare_corpus`.

    Attributes
    ----------
    input : str
        The input as given (``"all inputs"`` for the total).
    files_found : int
        Recordings found plus the folder files no reader knows.
    files_read : int
        Files read and cut into windows (some may have had every window rejected).
    skipped : dict of str to list of str
        :data:`SKIP_REASONS` class -> the files skipped for it.
    windows : int
        Windows kept.
    rejected : dict of str to int
        Windows rejected, by reason.
    hours : float
        Hours of EEG in the files read.
    companions : int
        Sidecar and companion files seen in the folders (not counted as found).
    flat_left_out : dict of str to int
        Electrodes left out as flat for a whole recording -> the number of files
        (``flat_channels="drop"``).
    """

    input: str
    files_found: int
    files_read: int
    skipped: dict[str, list[str]]
    windows: int
    rejected: dict[str, int]
    hours: float
    companions: int = 0
    flat_left_out: dict[str, int] = field(default_factory=dict)

    @property
    def n_rejected(self) -> int:
        """Windows rejected, all reasons."""
        return sum(self.rejected.values())


@dataclass(frozen=True)
class CorpusSummary:
    """What a corpus holds (all parts in the folder) and what this run did.

    Attributes
    ----------
    out_dir : str
        The corpus folder.
    files_done, files_skipped : int
        Source files with at least one window in the corpus / files that failed (see
        ``skipped``).
    hours : float
        Hours of EEG read from the files read (``files_done`` and ``files_empty``).
    windows : int
        Windows kept.
    rejected : dict of str to int
        Windows rejected, by reason.
    montages : dict of str to dict
        Montage id -> ``{"ch_names", "n_files", "n_windows"}``.
    skipped : list of dict
        ``{"file", "reason"}`` for every skipped file.
    files_processed, files_reused : int
        Files computed in this run / files found finished from an earlier run.
    hours_processed : float
        Hours of EEG computed in this run.
    elapsed_s : float
        Wall time of this run (s).
    workers : int
        Worker processes used.
    hours_per_core_minute : float
        ``hours_processed / (elapsed_s / 60 · workers)``: hours of EEG per core-minute of wall
        time (falls when other programs share the cores).
    cpu_s : float
        CPU time the workers spent on this run's files (s).
    hours_per_cpu_minute : float
        ``hours_processed / (cpu_s / 60)``: the same throughput measured in CPU time.
    inputs : list of InputReport
        This run's inputs, one each (files of an earlier run with other inputs not included).
    inputs_total : InputReport | None
        All of this run's inputs together (a file found by two inputs counted once).
    files_empty : int
        Files read whose every window was rejected (in neither ``files_done`` nor
        ``files_skipped``).
    """

    out_dir: str
    files_done: int
    files_skipped: int
    hours: float
    windows: int
    rejected: dict[str, int]
    montages: dict[str, dict[str, Any]]
    skipped: list[dict[str, str]]
    files_processed: int
    files_reused: int
    hours_processed: float
    elapsed_s: float
    workers: int
    hours_per_core_minute: float
    cpu_s: float
    hours_per_cpu_minute: float
    inputs: list[InputReport] = field(default_factory=list)
    inputs_total: InputReport | None = None
    files_empty: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


class Montage(NamedTuple):
    """One channel layout of the corpus."""

    ch_names: tuple[str, ...]
    """Canonical channel names, length C."""
    positions: np.ndarray
    """(C, 3) float32 positions in the fixed head frame (metres)."""


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
class WriteError(NeuriptError):
    """The corpus folder cannot be written (disk full, quota, permissions): the run stops."""


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    Raises
    ------
    WriteError
        Any OSError while writing (the temporary file is removed first), naming the file; a
        full disk is not a per-file problem, so it ends the whole run (:func:`_run_files`).
    """
    try:
        atomic_write(path, data)
    except OSError as err:
        hint = ("free some space, or give another --out" if err.errno in
                (errno.ENOSPC, errno.EDQUOT) else "check the folder's permissions, or give "
                "another --out")
        raise WriteError(f"{path}: cannot write ({os.strerror(err.errno) if err.errno else err});"
                         f" {hint}; files already finished are kept and a rerun continues "
                         "from them") from None


def _atomic_json(path: Path, obj: Any) -> None:
    _atomic_write(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def _file_key(path: Path) -> str:
    """A stable, unique, file-system-safe key of a source path."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name)[:60]
    return f"{stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"


def montage_id(ch_names: Sequence[str], positions: np.ndarray) -> str:
    """Deterministic id of a montage: channel count plus a hash of names and positions."""
    body = json.dumps([list(ch_names), np.round(np.asarray(positions, float), 6).tolist()])
    return f"{len(ch_names)}ch-{hashlib.sha1(body.encode()).hexdigest()[:10]}"


def _window_labels(starts: np.ndarray, window: int, sfreq_hz: float, events: Events) -> list[str]:
    """Label of each window: the annotation (duration > 0) that covers it whole, else ''."""
    labels = [""] * len(starts)
    spans = [
        (o, o + d, str(desc))
        for o, d, desc in zip(events.onset_s, events.duration_s, events.description)
        if d > 0
    ]
    for k, start in enumerate(starts):
        t0, t1 = start / sfreq_hz, (start + window) / sfreq_hz
        covering = {desc for o, e, desc in spans if o <= t0 + 1e-9 and t1 <= e + 1e-9}
        if len(covering) == 1:
            labels[k] = covering.pop()
    return labels


def parse_shard(shard: tuple[int, int] | str | None) -> tuple[int, int] | None:
    """``(i, n)`` of ``shard=(i, n)`` or ``"i/n"`` (checked: n >= 1, 0 <= i < n); None stays."""
    if shard is None:
        return None
    if isinstance(shard, str):
        parts = shard.split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise NeuriptError(f"shard must look like 'i/n' (e.g. '0/4'), got {shard!r}")
        shard = (int(parts[0]), int(parts[1]))
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise NeuriptError(f"shard (i, n) needs n >= 1 and 0 <= i < n, got {shard!r}")
    return int(i), int(n)


def select_shard(files: Sequence[Path], shard: tuple[int, int] | str | None) -> list[Path]:
    """Keep every n-th file starting at i (``shard=(i, n)`` or ``"i/n"``); None keeps all."""
    ij = parse_shard(shard)
    return list(files) if ij is None else list(files[ij[0]::ij[1]])


# --------------------------------------------------------------------------------------------
# one file (runs in a worker process)
# --------------------------------------------------------------------------------------------
class Reading(NamedTuple):
    """How every input file of a run is read and stored (the same for all of them)."""

    reader_options: Mapping[str, Any] = types.MappingProxyType({})
    """Keyword arguments of :func:`~neuript.data.io.read_recording`'s reader."""
    positions: Mapping[str, np.ndarray] = types.MappingProxyType({})
    """Positions (metres) of custom electrodes, by name (:mod:`neuript.data.positions`)."""
    recording_norm: str = "none"
    """``channel_std`` or ``spectral``: each recording's kept windows are normalised as one
    group by :func:`neuript.data.normalize.normalize_groups` (the fine-tuning ``subject_norm``
    applied per recording), so a model pretrained on them sees what a ``subject_norm`` task
    gives it; ``none`` stores them as prepared."""
    flat_channels: str = "drop"
    """``drop``: an electrode flat for the whole recording (:func:`~neuript.data.preprocess.
    flat_electrodes`, below the config's ``flat_std_uv``) is left out of that recording, which
    keeps its other channels; ``reject``: it stays, and the window flat test rejects every
    window of the recording."""

    def record(self) -> dict[str, Any]:
        """The entries of ``config.json`` for these settings (none when all are unset)."""
        out: dict[str, Any] = {}
        if self.reader_options:
            out["reader_options"] = dict(self.reader_options)
        if self.positions:
            out["positions"] = {k: np.round(np.asarray(v, float), 9).tolist()
                                for k, v in sorted(self.positions.items())}
        if self.recording_norm != "none":
            out["recording_norm"] = self.recording_norm
        if self.flat_channels != "drop":
            out["flat_channels"] = self.flat_channels
        return out


PLAIN_READING = Reading()
"""No reader options, no positions."""


def _process_file(path: Path, out_dir: Path, cfg: PreprocessConfig, on_unknown: str,
                  reading: Reading = PLAIN_READING) -> dict:
    """Read, prepare and store one file; write its part last; return the part.

    ``reading.reader_options`` go to :func:`read_recording`; ``reading.positions`` are given to
    the recording's channels by :func:`neuript.data.positions.with_positions`;
    ``reading.recording_norm`` normalises the kept windows (:func:`_normalized`);
    ``reading.flat_channels`` says what a dead electrode does (:class:`Reading`).
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    size, mtime_ns = source_stat(path)
    part: dict[str, Any] = {
        "source": str(path), "key": _file_key(path), "size": size,
        "mtime_ns": mtime_ns, "status": "skipped", "reason": "", "duration_s": 0.0,
    }
    rec, dead = None, ()
    try:
        rec = with_positions(read_recording(path, reader_options=reading.reader_options),
                             reading.positions)
        if reading.flat_channels == "drop" and cfg.flat_std_uv is not None:
            dead = flat_electrodes(rec, cfg.flat_std_uv)
            if dead and len(dead) < rec.n_channels:  # all flat: the window test says so
                rec = rec.without(dict.fromkeys(dead, "flat"))
                part["flat_left_out"] = list(dead)
                log.info("%s: left out %s (flat for the whole recording: std < %g µV); "
                         "--flat-channels reject keeps them", path, _names(dead),
                         cfg.flat_std_uv)
        prep = prepare_recording(rec, cfg, on_unknown=on_unknown)
    except ChannelError as err:  # the file's channels: say which lack a position
        part["reason"] = _channel_reason(err, rec, on_unknown)
        if part.get("flat_left_out"):
            part["reason"] += (f"; left out as flat for the whole recording: {_names(dead)} "
                               "(--flat-channels reject keeps them)")
    except NeuriptError as err:  # RecordingError …: reported, the run carries on
        part["reason"] = f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 -- an unexpected reader failure must not end a run
        log.warning("unexpected error on %s", path, exc_info=True)
        part["reason"] = f"unexpected {type(err).__name__}: {err}"
    else:
        unplaced = unplaced_channels(rec)
        if unplaced and not prep.skipped:
            log.info("%s: left out %s (no 10-05 name, no position); --positions FILE places "
                     "them", path, _names(unplaced))
        if prep.skipped:  # too short: no window at all
            part.update(reason=prep.skipped, duration_s=float(prep.duration_s))
        else:
            prep = _normalized(prep, cfg, reading.recording_norm)
            part.update(_store_windows(prep, rec.events, out_dir, part["key"], cfg))
    part["compute_s"] = time.perf_counter() - t0
    part["cpu_s"] = time.process_time() - cpu0
    _atomic_json(out_dir / "parts" / f"{part['key']}.json", part)
    return part


def _normalized(prep: Any, cfg: PreprocessConfig, method: str) -> Any:
    """``prep`` with its windows normalised as one group (``method="none"``: unchanged)."""
    if method == "none" or not len(prep.windows):
        return prep
    windows = normalize_groups(prep.windows, np.zeros(len(prep.windows), np.int64), method,
                               sfreq_hz=float(cfg.sfreq_hz), band_hz=(cfg.l_freq_hz, cfg.h_freq_hz))
    return replace(prep, windows=windows)


def _names(names: Sequence[str], shown: int = 8) -> str:
    """``'A', 'B' and 3 more``."""
    text = ", ".join(repr(n) for n in names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _channel_reason(err: ChannelError, rec: Any, on_unknown: str) -> str:
    """A file's skip reason for a channel problem, naming the channels without a position.

    The montage's own message may list what the recording lacks and "has" (nothing, when its
    channels are all custom); the names without a 10-05 name or a given position, and the
    option that places them, are what helps.
    """
    unplaced = [] if rec is None else unplaced_channels(rec)
    if not unplaced:
        return f"{type(err).__name__}: {err}"
    first = re.sub(r" \(read \[.*\]\)$", "", err.problem.split("; ")[0])
    leave = ", or --on-unknown drop to leave them out" if on_unknown == "raise" else ""
    return (f"ChannelError: {err.path}: {first}; no known position for {_names(unplaced)} "
            "(no 10-05 name, no position given): give their positions with --positions FILE "
            f"(a name,x,y,z table in metres or a montage file MNE reads){leave}")


def _store_windows(prep: Any, events: Events, out_dir: Path, key: str,
                   cfg: PreprocessConfig) -> dict[str, Any]:
    """Write a prepared recording's windows as one shard; return the part's fields."""
    windows = np.ascontiguousarray(prep.windows, dtype=np.float32)  # (N, C, W) µV
    positions = np.asarray(prep.positions, dtype=np.float32)
    mid = montage_id(prep.ch_names, positions)
    shard = ""
    if len(windows):
        shard = f"shards/{mid}/{key}.npy"
        target = out_dir / shard
        target.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, windows)
        data = buf.getvalue()
        _atomic_write(target, data)
        digest = {"shard_bytes": len(data), "shard_sha256": hashlib.sha256(data).hexdigest()}
    else:
        digest = {}
    starts = np.asarray(prep.starts, dtype=np.int64)
    return {
        **digest, "status": "done", "duration_s": float(prep.duration_s),
        "subject": prep.subject or _subject_from_path(prep.source),
        "session": prep.session or "", "montage_id": mid, "ch_names": list(prep.ch_names),
        "positions": positions.tolist(), "shard": shard,
        "rejected": {k: int(v) for k, v in prep.rejected.items()},
        "starts": starts.tolist(),
        "labels": _window_labels(starts, windows.shape[-1], cfg.sfreq_hz, events),
        "hashes": [hashlib.sha256(w.tobytes()).hexdigest()[:16] for w in windows],
    }


def _subject_from_path(source: str) -> str:
    """Fallback subject when the reader knows none: the file name without its suffixes."""
    return Path(source).name.split(".")[0]


# --------------------------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------------------------
def config_record(cfg: PreprocessConfig, on_unknown: str,
                  reading: Reading = PLAIN_READING) -> dict[str, Any]:
    """The body of ``config.json`` (JSON-normalised: tuples as lists).

    Reader options, positions and a recording norm are recorded only when given
    (:meth:`Reading.record`).
    """
    return json.loads(json.dumps(
        {"format": FORMAT_VERSION, "preprocess": to_dict(cfg), "on_unknown": on_unknown,
         **reading.record()}, default=str))


def config_diffs(found: Mapping[str, Any], wanted: Mapping[str, Any],
                 says: tuple[str, str] = ("corpus has", "run asks")) -> list[str]:
    """``"window_s: corpus has 4.0, run asks 2.0"`` for each field two config records differ in.

    ``says`` words the two sides (``found``'s, then ``wanted``'s).
    """
    if found == wanted:
        return []
    have, ask = found.get("preprocess", {}), wanted.get("preprocess", {})
    diffs = [f"{k}: {says[0]} {have.get(k)!r}, {says[1]} {v!r}"
             for k, v in ask.items() if have.get(k) != v]
    for key in ("on_unknown", "reader_options", "positions", "recording_norm", "flat_channels"):
        if found.get(key) != wanted.get(key):
            diffs.append(f"{key}: {says[0]} {found.get(key)!r}, {says[1]} {wanted.get(key)!r}")
    return diffs or ["format version"]


def _check_config(out_dir: Path, wanted: Mapping[str, Any]) -> None:
    """Write config.json (the record ``wanted``), or refuse a folder built with another one."""
    path = out_dir / "config.json"
    if path.exists():
        diffs = config_diffs(json.loads(path.read_text()), wanted)
        if diffs:
            raise NeuriptError(
                f"{path}: this corpus was built with a different configuration "
                f"({'; '.join(diffs)}); use a new output folder"
            )
    else:
        _atomic_json(path, wanted)


def _load_parts(out_dir: Path) -> dict[str, dict]:
    """Every committed part of the corpus, by source path."""
    parts = {}
    for path in (out_dir / "parts").glob("*.json"):
        part = json.loads(path.read_text())
        parts[part["source"]] = part
    return parts


def _is_current(part: dict | None, path: Path) -> bool:
    """True if ``part`` was made from the file as it is now (same size and mtime)."""
    if part is None:
        return False
    return (part["size"], part["mtime_ns"]) == source_stat(path)


def prepare_corpus(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    cfg: PreprocessConfig,
    *,
    workers: int = 1,
    shard: tuple[int, int] | str | None = None,
    on_unknown: Literal["raise", "drop"] = "drop",
    progress: bool = True,
    reader_options: Mapping[str, Any] | None = None,
    positions: str | os.PathLike | Mapping[str, Any] | None = None,
    recording_norm: str = "none",
    flat_channels: Literal["drop", "reject"] = "drop",
) -> CorpusSummary:
    """Turn recordings into a window corpus on disk (the ``neuript prepare`` engine).

    Parameters
    ----------
    inputs : path-like or iterable of path-like
        Files, folders (recursive) and globs; see :func:`find_inputs`.
    out_dir : path-like
        The corpus folder; created if needed. Files already finished there are skipped, so a
        re-run after an interruption only does what is left.
    cfg : PreprocessConfig
        How recordings become windows; must equal the one the folder was started with.
    workers : int
        Processes working on files in parallel (1: in this process).
    shard : (int, int) | str | None
        ``(i, n)`` or ``"i/n"``: process every n-th file of the sorted list, from the i-th, and
        write this shard's fragment instead of the corpus files (see the module docstring);
        the corpus is assembled once all n fragments are in the folder, or by
        :func:`neuript.data.merge.merge_corpus`.
    on_unknown : {"raise", "drop"}
        Unknown channel names skip the file (``"raise"``) or are dropped from it (``"drop"``).
    progress : bool
        Show a progress bar.
    reader_options : mapping | None
        Passed to :func:`~neuript.data.io.read_recording` for every file (``{"data_format":
        "int32"}`` for Neuroscan CNT files MNE cannot size); a file whose reader does not take
        a key is skipped with a line naming it.
    positions : path-like | mapping | None
        Positions of electrodes without a 10-05 name: a file
        :func:`~neuript.data.positions.read_positions` reads (a ``name,x,y,z`` table in metres,
        or a montage file MNE reads) or ``{name: (x, y, z)}`` in metres. Read once, given to
        every recording's matching channels; channels with a 10-05 name keep the package's
        positions.
    recording_norm : {"none", "channel_std", "spectral"}
        Normalise each recording's kept windows as one group
        (:func:`neuript.data.normalize.normalize_groups`, the pass band of ``cfg``): a corpus
        for a model that will be fine-tuned with that ``subject_norm``. ``"none"`` (default)
        stores the windows as prepared.
    flat_channels : {"drop", "reject"}
        An electrode flat for the whole recording (standard deviation below
        ``cfg.flat_std_uv``: dead or unconnected) is left out of that recording, which keeps
        its other channels and is listed in the report (``"drop"``), or kept, so that the
        window flat test rejects every window of the recording (``"reject"``). Under a fixed
        montage (``tcp``) a left-out electrode the montage needs skips the file, saying so.

    All of these are recorded in ``config.json``: a folder started with other ones is refused.

    Returns
    -------
    summary : CorpusSummary
        Also written to ``summary.json`` (``summary.shard-<i>-of-<n>.json`` for a shard: its
        files only).

    Raises
    ------
    NeuriptError
        A folder built with another configuration, or a live writer of the same shard (one
        line each; nothing in the folder is changed).
    """
    from neuript.data.merge import corpus_lock, shard_tag

    check_option("on_unknown", on_unknown, get_args(OnUnknown))
    if workers < 1:
        raise NeuriptError(f"workers must be >= 1, got {workers!r}")
    ij = parse_shard(shard)
    scans = scan_inputs(inputs)  # a missing input is refused before anything is written
    check_option("recording_norm", recording_norm, get_args(SubjectNorm))
    check_option("flat_channels", flat_channels, ("drop", "reject"))
    reading = Reading(dict(reader_options or {}), load_positions(positions), recording_norm,
                      flat_channels)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tag = "all" if ij is None else shard_tag(ij)
    what = "this corpus" if ij is None else f"shard {ij[0]}/{ij[1]} of this corpus"
    with hold_lock(out / f".writer.{tag}.lock", what,
                   "wait for it to finish, or give this run another --out or --shard"):
        with corpus_lock(out, "config.json"):
            _check_config(out, config_record(cfg, on_unknown, reading))
        return _prepare_locked(scans, out, cfg, workers, ij, on_unknown, progress, reading)


def _prepare_locked(scans: list[InputScan], out: Path, cfg: PreprocessConfig, workers: int,
                    shard: tuple[int, int] | None, on_unknown: str, progress: bool,
                    reading: Reading) -> CorpusSummary:
    """:func:`prepare_corpus` once its writer lock is held and config.json checked."""
    from neuript.data.merge import corpus_lock, files_sha256, merge_if_complete, write_fragment

    _preload_modules()
    t0 = time.perf_counter()
    (out / "parts").mkdir(exist_ok=True)
    every = sorted({f for scan in scans for f in scan.files}, key=str)
    files = select_shard(every, shard)
    parts = _load_parts(out)
    todo = [f for f in files if not _is_current(parts.get(str(f)), f)]
    todo.sort(key=lambda f: -f.stat().st_size)  # big files first: better load balance
    n_unsupported = len({f for scan in scans for f in scan.unsupported})
    log.info("prepare: %d files (%d already done, %d of unsupported formats left out), "
             "%d workers", len(files), len(files) - len(todo), n_unsupported, workers)
    try:
        fresh = list(_run_files(todo, out, cfg, on_unknown, workers, progress, reading))
    except WriteError:
        removed = remove_temporaries(out)
        log.info("prepare stopped: removed %d temporary file(s) from %s", len(removed), out)
        raise
    for part in fresh:
        parts[part["source"]] = part
    reports = _input_reports(scans, files, shard, parts)
    reused = len(files) - len(todo)
    if shard is None:
        with corpus_lock(out, "the corpus files"):
            summary = _finish(out, parts, fresh, time.perf_counter() - t0, workers, reused,
                              reports)
    else:
        mine = {str(f): parts[str(f)] for f in files}
        summary = _finish(out, mine, fresh, time.perf_counter() - t0, workers, reused, reports,
                          shard=shard)
        fingerprint = files_sha256(every)
        write_fragment(out, shard, config_record(cfg, on_unknown, reading), fingerprint,
                       len(every), [p["key"] for p in mine.values()])
        if merge_if_complete(out, shard, fingerprint) is not None:
            log.info("prepare: every shard of %d is done; %s assembled", shard[1],
                     out / "manifest.csv")
    log.info("prepare: %d windows, %.2f h of EEG, %.1f h per core-minute", summary.windows,
             summary.hours, summary.hours_per_core_minute)
    from neuript.data.prepare_report import rejection_warnings

    for line in rejection_warnings(summary, cfg):
        log.warning(line)
    return summary


def _preload_modules() -> None:
    """Import the lazily-loaded signal-processing modules once, before workers fork.

    ``scipy.signal`` alone takes seconds to import; forked workers inherit it instead of each
    paying for it on their first file.
    """
    for name in ("scipy.signal", "scipy.fft", "mne.filter", "mne.io", "pandas"):
        importlib.import_module(name)


def _run_files(todo: list[Path], out: Path, cfg: PreprocessConfig, on_unknown: str,
               workers: int, progress: bool, reading: Reading = PLAIN_READING) -> Iterable[dict]:
    """Process files in this process or a pool; yield each part as it finishes."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), unit="file", disable=not progress or not todo, desc="prepare")
    try:
        yield from _files_into(bar, todo, out, cfg, on_unknown, workers, reading)
    finally:  # an error line after it starts on its own line
        bar.close()


def _files_into(bar: Any, todo: list[Path], out: Path, cfg: PreprocessConfig, on_unknown: str,
                workers: int, reading: Reading) -> Iterable[dict]:
    if workers == 1 or len(todo) <= 1:
        for path in todo:
            yield _process_file(path, out, cfg, on_unknown, reading)
            bar.update()
    else:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            sent = reading._replace(reader_options=dict(reading.reader_options),
                                    positions=dict(reading.positions))  # picklable
            futures = [pool.submit(_process_file, p, out, cfg, on_unknown, sent) for p in todo]
            try:
                for future in as_completed(futures):
                    yield future.result()
                    bar.update()
            except BaseException:  # a full disk (WriteError) or Ctrl-C: no worker goes on
                pool.shutdown(wait=True, cancel_futures=True)
                raise


def remove_temporaries(out: Path) -> list[Path]:
    """Delete the ``.*.tmp`` files an interrupted write left in a corpus folder; return them."""
    gone = []
    for tmp in out.rglob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal a process gets when its parent dies."""


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: end this worker when ``parent_pid`` dies, even by ``kill -9``.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (the kernel kills it at once). Elsewhere, or
    if prctl fails, a daemon thread checks ``os.getppid()`` every second.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            armed = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG,
                                                            int(signal.SIGKILL)) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True,
                         name="neuript-parent-watch").start()


def _watch_parent(parent_pid: int) -> None:
    """Exit this process once its parent is no longer ``parent_pid``."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _finish(out: Path, parts: dict[str, dict], fresh: list[dict], elapsed: float,
            workers: int, reused: int, reports: tuple[list[InputReport], InputReport], *,
            shard: tuple[int, int] | None = None) -> CorpusSummary:
    """Write manifest.csv, montages.json, skipped.json and summary.json from the parts.

    With ``shard``, write only ``summary.shard-<i>-of-<n>.json`` (the merge writes the rest).
    """
    ordered = [parts[s] for s in sorted(parts)]
    done = [p for p in ordered if p["status"] == "done"]
    kept = [p for p in done if p["starts"]]
    montages: dict[str, dict[str, Any]] = {}
    rejected: dict[str, int] = {}
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    window_id = 0
    for p in done:
        entry = montages.setdefault(p["montage_id"], {
            "ch_names": p["ch_names"], "positions": p["positions"], "n_files": 0, "n_windows": 0})
        entry["n_files"] += 1
        entry["n_windows"] += len(p["starts"])
        for reason, count in p["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + count
        for row, (start, label, digest) in enumerate(zip(p["starts"], p["labels"], p["hashes"])):
            writer.writerow([window_id, p["source"], p["subject"], p["session"], start,
                             p["montage_id"], label, digest, p["shard"], row])
            window_id += 1
    skipped = [{"file": p["source"], "reason": p["reason"]} for p in ordered
               if p["status"] != "done"]
    if shard is None:
        _atomic_json(out / "montages.json", {k: {"ch_names": v["ch_names"],
                                                 "positions": v["positions"]}
                                             for k, v in montages.items()})
        _atomic_json(out / "skipped.json", skipped)
        manifest = text.getvalue().encode()
        _atomic_write(out / "manifest.csv", manifest)
        _write_columns(out, manifest)
    hours_now = sum(p["duration_s"] for p in fresh) / 3600
    cpu_s = sum(p.get("cpu_s", 0.0) for p in fresh)
    summary = CorpusSummary(
        out_dir=str(out), files_done=len(kept), files_skipped=len(skipped),
        hours=sum(p["duration_s"] for p in done) / 3600, windows=window_id,
        rejected=dict(sorted(rejected.items())),
        montages={k: {"ch_names": v["ch_names"], "n_files": v["n_files"],
                      "n_windows": v["n_windows"]} for k, v in montages.items()},
        skipped=skipped, files_processed=len(fresh), files_reused=reused,
        hours_processed=hours_now, elapsed_s=elapsed, workers=workers,
        hours_per_core_minute=hours_now / max(elapsed / 60 * workers, 1e-9),
        cpu_s=cpu_s, hours_per_cpu_minute=hours_now / max(cpu_s / 60, 1e-9),
        inputs=reports[0], inputs_total=reports[1], files_empty=len(done) - len(kept),
    )
    name = "summary.json" if shard is None else f"summary.shard-{shard[0]}-of-{shard[1]}.json"
    _atomic_json(out / name, summary.to_dict())
    return summary


# --------------------------------------------------------------------------------------------
# what a run gave, per input
# --------------------------------------------------------------------------------------------
TABLE_REJECT_ORDER: tuple[str, ...] = ("amplitude", "flat", "clipped", "nan")
"""Order of the rejection reasons in :func:`prepare_table` (others follow)."""


def skip_class(reason: str) -> str:
    """The :data:`SKIP_REASONS` class of a part's skip ``reason``."""
    if "unsupported file type" in reason:
        return "unsupported format"
    if "no signal channels" in reason:  # a hypnogram or other annotation-only file
        return "annotations only"
    if reason.startswith("ChannelError"):
        return "no usable channels"
    if reason.startswith(("shorter than", "no full window")):
        return "too short"
    if reason.startswith("unexpected"):
        return "unexpected error"
    return "unreadable/corrupt"


def order_keys(keys: Iterable[str], order: Sequence[str]) -> list[str]:
    """``keys`` in the order of ``order``, unknown ones last (sorted)."""
    keys = set(keys)
    return [k for k in order if k in keys] + sorted(keys - set(order))


def _input_report(label: str, files: Sequence[Path], unsupported: Sequence[Path],
                  companions: int, parts: Mapping[str, dict]) -> InputReport:
    """Count what ``files`` (all with a part) and the ``unsupported`` folder files gave."""
    mine = [parts[str(f)] for f in files]
    done = [p for p in mine if p["status"] == "done"]
    skipped: dict[str, list[str]] = {}
    for path in unsupported:
        skipped.setdefault("unsupported format", []).append(str(path))
    for p in mine:
        if p["status"] != "done":
            skipped.setdefault(skip_class(p["reason"]), []).append(p["source"])
    rejected: dict[str, int] = {}
    for p in done:
        for reason, count in p["rejected"].items():
            rejected[reason] = rejected.get(reason, 0) + int(count)
    flat: dict[str, int] = {}
    for p in mine:
        for name in p.get("flat_left_out", ()):
            flat[name] = flat.get(name, 0) + 1
    return InputReport(
        input=label, files_found=len(files) + len(unsupported), files_read=len(done),
        skipped={k: sorted(skipped[k]) for k in order_keys(skipped, SKIP_REASONS)},
        windows=sum(len(p["starts"]) for p in done),
        rejected={k: rejected[k] for k in order_keys(rejected, TABLE_REJECT_ORDER)},
        hours=sum(p["duration_s"] for p in done) / 3600, companions=companions,
        flat_left_out=dict(sorted(flat.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _input_reports(scans: Sequence[InputScan], files: Sequence[Path],
                   shard: tuple[int, int] | str | None,
                   parts: Mapping[str, dict]) -> tuple[list[InputReport], InputReport]:
    """One report per input and one for all of them (shards split the unsupported files too)."""
    chosen = set(files)
    unsupported = select_shard(sorted({f for s in scans for f in s.unsupported}, key=str), shard)
    kept = set(unsupported)
    reports = [
        _input_report(s.input, [f for f in s.files if f in chosen],
                      [f for f in s.unsupported if f in kept], len(s.companions), parts)
        for s in scans
    ]
    companions = len({f for s in scans for f in s.companions})
    return reports, _input_report("all inputs", files, unsupported, companions, parts)


# --------------------------------------------------------------------------------------------
# the reader
# --------------------------------------------------------------------------------------------
def _parse_manifest(source: Path | bytes) -> dict[str, tuple[np.ndarray, list[str] | None]]:
    """manifest.csv (a path or its bytes) as ``{column: (array, values)}``: int64 arrays with
    ``values`` None for :data:`INT_COLUMNS`, int32 codes into the distinct ``values`` for text."""
    import pandas as pd

    name = source if isinstance(source, Path) else "manifest.csv"
    frame = pd.read_csv(source if isinstance(source, Path) else io.BytesIO(source), dtype=str,
                        keep_default_na=False, na_filter=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise NeuriptError(f"{name}: manifest columns {missing} missing; rebuild the corpus "
                           "with `neuript prepare`")
    out: dict[str, tuple[np.ndarray, list[str] | None]] = {}
    for col in MANIFEST_COLUMNS:
        if col in INT_COLUMNS:
            out[col] = (frame[col].to_numpy(dtype=np.int64), None)
        else:
            cat = frame[col].astype("category")
            out[col] = (cat.cat.codes.to_numpy().astype(np.int32),
                        [str(v) for v in cat.cat.categories])
    return out


def _write_columns(out: Path, manifest: bytes) -> None:
    """Write :data:`COLUMNS_DIR` for the ``manifest`` bytes just written to manifest.csv
    (nothing when they already describe it).

    ``meta.json`` goes first out and last in, so a run killed in between leaves no meta (or
    one naming another manifest's hash) and the reader falls back to the CSV.
    """
    folder = out / COLUMNS_DIR
    digest = hashlib.sha256(manifest).hexdigest()
    try:  # a rerun that changed nothing leaves them untouched
        if (json.loads((folder / "meta.json").read_text()).get("manifest_sha256") == digest
                and all((folder / f"{col}.npy").is_file() for col in MANIFEST_COLUMNS)):
            return
    except (OSError, ValueError):
        pass
    (folder / "meta.json").unlink(missing_ok=True)
    values = {}
    for col, (array, names) in _parse_manifest(manifest).items():
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        _atomic_write(folder / f"{col}.npy", buf.getvalue())
        values[col] = names
    _atomic_json(folder / "meta.json", {"manifest_sha256": digest, "rows": int(len(array)),
                                        "values": values})


def _read_manifest_columns(path: Path) -> dict[str, np.ndarray]:
    """manifest.csv as one array per column, memory-mapped from :data:`COLUMNS_DIR` when it
    matches the CSV, else parsed from it.

    ``window_id``, ``start`` and ``row`` are int64 (memory-mapped); text columns are object
    arrays over the column's distinct values (a corpus repeats a few thousand sources and
    subjects across its windows), built from the memory-mapped codes. Measured by
    ``bench_corpus`` (the manifest-open rows).
    """
    folder = path.parent / COLUMNS_DIR
    meta = None
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("manifest_sha256") != sha256_file(path):
            meta = None  # manifest.csv changed since: the CSV is the truth
    except (OSError, ValueError):
        meta = None
    parsed: dict[str, tuple[np.ndarray, list[str] | None]] = {}
    if meta is not None:
        try:
            parsed = {col: (np.load(folder / f"{col}.npy", mmap_mode="r", allow_pickle=False),
                            meta["values"][col]) for col in MANIFEST_COLUMNS}
            if any(len(a) != meta["rows"] for a, _ in parsed.values()):
                parsed = {}
        except (OSError, ValueError, KeyError, TypeError):
            parsed = {}
    if not parsed:
        parsed = _parse_manifest(path)
    return {col: array if names is None else np.asarray(names, dtype=object)[array]
            for col, (array, names) in parsed.items()}


def _codes(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(N,) int64 index of each value in ``names``."""
    lookup = {k: i for i, k in enumerate(names)}
    return np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))


class WindowStore:
    """Read a corpus written by :func:`prepare_corpus`; windows come memory-mapped.

    Parameters
    ----------
    root : path-like
        The corpus folder.

    Attributes
    ----------
    config : PreprocessConfig
        How the windows were made.
    montages : list of Montage
        Each montage's ``(ch_names, positions)``; ``montage_of`` indexes this list.
    montage_ids : list of str
        The montage ids, in the same order.
    montage_of : ndarray, shape (N,), int64
        Montage index of each window.
    subjects, sessions, sources, labels, hashes : ndarray, shape (N,), str
        Per-window manifest columns.
    starts : ndarray, shape (N,), int64
        First sample of each window in its resampled source.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        manifest = self.root / "manifest.csv"
        if not manifest.exists():
            shards = sorted(p.name for p in self.root.glob("manifest.shard-*-of-*.json"))
            if shards:
                raise NeuriptError(f"{self.root}: only shard fragments here ({', '.join(shards)})"
                                   "; finish the other --shard runs or assemble them with "
                                   "`neuript prepare --merge DIR ... --out DIR`")
            raise NeuriptError(f"{self.root}: no corpus here (manifest.csv is missing); "
                               "build one with prepare_corpus / `neuript prepare`")
        cols = _read_manifest_columns(manifest)
        if not len(cols["window_id"]):
            raise NeuriptError(f"{self.root}: the corpus holds no windows (manifest.csv is "
                               "empty; see skipped.json and summary.json for why)")
        self._n = len(cols["window_id"])
        self.config = from_dict(PreprocessConfig,
                                json.loads((self.root / "config.json").read_text())["preprocess"])
        table = json.loads((self.root / "montages.json").read_text())
        self.montage_ids = sorted(table)
        self.montages = [Montage(tuple(table[k]["ch_names"]),
                                 np.asarray(table[k]["positions"], dtype=np.float32))
                         for k in self.montage_ids]
        self.montage_of = _codes(cols["montage_id"], self.montage_ids)
        self.subjects, self.sessions = cols["subject"], cols["session"]
        self.sources, self.labels, self.hashes = cols["source"], cols["label"], cols["hash"]
        self.starts = cols["start"].astype(np.int64)
        self._shard_names = sorted(set(cols["shard"].tolist()))
        self._shard_of = _codes(cols["shard"], self._shard_names)
        self._row_of = cols["row"].astype(np.int64)
        self._window_id = cols["window_id"]
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"WindowStore({str(self.root)!r}, windows={len(self)}, montages={self.montage_ids})"

    @property
    def manifest(self) -> list[dict[str, str]]:
        """The manifest rows (one dict per window, columns :data:`MANIFEST_COLUMNS`).

        Built on each call from the columns (the store itself keeps only arrays: a list of
        dicts costs about 1.4 kB per window); use the column attributes in loops.
        """
        shards = np.asarray(self._shard_names, dtype=object)[self._shard_of]
        ids = np.asarray(self.montage_ids, dtype=object)[self.montage_of]
        cols = {"window_id": self._window_id, "source": self.sources, "subject": self.subjects,
                "session": self.sessions, "start": self.starts, "montage_id": ids,
                "label": self.labels, "hash": self.hashes, "shard": shards, "row": self._row_of}
        return [{k: str(cols[k][i]) for k in MANIFEST_COLUMNS} for i in range(len(self))]

    def _shard(self, k: int) -> np.ndarray:
        if k not in self._maps:
            self._maps[k] = np.load(self.root / self._shard_names[k], mmap_mode="r")
        return self._maps[k]

    def window(self, i: int) -> np.ndarray:
        """Window ``i``: ndarray, shape (C, T), float32, µV (a copy)."""
        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range for a corpus of {len(self)} windows")
        return np.array(self._shard(int(self._shard_of[i]))[self._row_of[i]], dtype=np.float32)

    def windows(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Windows of one montage: ndarray, shape (B, C, T), float32, µV."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(np.unique(self.montage_of[idx])) > 1:
            raise NeuriptError(f"{self.root}: windows() needs indices of one montage; got "
                               f"montages {sorted(set(self.montage_of[idx].tolist()))}")
        return np.stack([self.window(int(i)) for i in idx]) if len(idx) else np.zeros((0, 0, 0),
                                                                                     np.float32)
