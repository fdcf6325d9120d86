"""Helpers shared by the task builders: finding files, splits, windowing, assembly, caching.

Every task module is a small recipe on top of these: list its files (:func:`require_files`),
turn each file into a :class:`Part` (:func:`window_file` for whole-file windows,
:func:`epochs_part` / :func:`epoch_file` for event-locked ones; both cut and screen through
:func:`neuript.data.windows.cut_windows`), decide each subject's split (:func:`split_by_ids` or
:func:`stratified_subject_split`), and :func:`assemble` the parts into one
:class:`~neuript.data.tasks.base.TaskWindows`. :func:`load_cached` / :func:`save_cached` keep
built tasks on disk, keyed by :func:`cache_key`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np

from neuript.config import PreprocessConfig, from_dict, to_dict
from neuript.data.tasks.base import SPLITS, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

CACHE_ENV_VAR = "NEURIPT_CACHE"
CACHE_FORMAT = 1
"""Bump when the on-disk layout of cached tasks changes."""

T = TypeVar("T")
R = TypeVar("R")


class Part(NamedTuple):
    """The labelled windows cut from one source file.

    Attributes
    ----------
    windows : ndarray, shape (N, C, T), float32
        Windows in µV.
    starts : ndarray, shape (N,), int64
        First sample of each window in the resampled source.
    labels : ndarray, shape (N,), int64
        Class index of each window.
    subject : str
        Subject of the file.
    source : str
        Path of the file.
    ch_names : tuple of str, length C
        Canonical channel names.
    positions : ndarray, shape (C, 3)
        Channel positions (metres, head frame).
    rejected : dict of str to int
        Windows dropped and why (e.g. ``{"abs": 3}``).
    """

    windows: np.ndarray
    starts: np.ndarray
    labels: np.ndarray
    subject: str
    source: str
    ch_names: tuple[str, ...]
    positions: np.ndarray
    rejected: dict[str, int]


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def require_files(
    data_dir: Path, pattern: str, *, expected: str, min_count: int = 1
) -> list[Path]:
    """Return the files under ``data_dir`` matching ``pattern``, sorted; raise if too few.

    Parameters
    ----------
    data_dir : Path
        The task's folder.
    pattern : str
        A ``Path.glob`` pattern relative to ``data_dir`` (``"Subject*_[12].edf"``).
    expected : str
        What the folder should hold, for the error message.
    min_count : int
        Fewest files accepted.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise NeuriptError(f"{data_dir}: task data folder not found; expected {expected}")
    files = sorted(p for p in data_dir.glob(pattern) if p.is_file())
    if len(files) < min_count:
        raise NeuriptError(
            f"{data_dir}: found {len(files)} file(s) matching {pattern!r}, expected at least "
            f"{min_count} ({expected})"
        )
    return files


def map_files(fn: Callable[[T], R], items: Sequence[T], workers: int = 2) -> list[R]:
    """Apply ``fn`` to every item, in order, on up to ``workers`` threads (1: serially)."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


# --------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------
def window_file(
    path: Path,
    cfg: PreprocessConfig,
    label: int,
    *,
    subject: str,
    target: Any = None,
) -> Part:
    """Read one file and cut it into non-overlapping (or ``cfg.stride_s``) windows of one class.

    Windows start at ``cfg.trim_edges_s`` and are cut back to back; rejection is the one rule
    of :func:`~neuript.data.windows.cut_windows` (non-finite windows only, unless the config
    sets ``reject_abs_uv`` or ``flat_std_uv``). A file shorter than ``cfg.min_duration_s``
    gives no window.

    Parameters
    ----------
    path : Path
        The recording.
    cfg : PreprocessConfig
        Filtering, resampling, window length, edge trimming and rejection.
    label : int
        Class of every window of the file.
    subject : str
        Subject identifier written into the part.
    target : str | list of str | None
        Montage target for :func:`neuript.data.montage.build_channel_map`; None: ``cfg.montage``.

    Returns
    -------
    part : Part
        Windows (N, C, W) in µV, all labelled ``label``.
    """
    from neuript.data.io import read_recording
    from neuript.data.preprocess import preprocess_continuous
    from neuript.data.windows import cut_windows, sliding_starts

    rec = read_recording(path)
    cont = preprocess_continuous(rec, cfg, target=target)
    window, n_samples = cfg.window_samples, cont.data.shape[1]
    trim = int(round(cfg.trim_edges_s * cont.sfreq_hz))
    starts = (np.zeros(0, np.int64) if rec.duration_s < cfg.min_duration_s else
              sliding_starts(n_samples, window, cfg.stride_samples, start=trim,
                             stop=n_samples - trim))
    return _part(cont, cut_windows(cont, starts, window, cfg, rec=rec),
                 np.full(starts.size, label, dtype=np.int64), subject, str(path))


def _part(cont: Any, cut: Any, labels: np.ndarray, subject: str, source: str,
          rejected: Mapping[str, int] | None = None) -> Part:
    """A :class:`Part` from a Continuous, its :class:`~neuript.data.windows.Windows` and the
    labels of every requested start (the kept ones are selected here)."""
    counts = {k: v for k, v in cut.rejected.items() if v}
    return Part(
        windows=cut.windows, starts=cut.starts, labels=np.asarray(labels, np.int64)[cut.keep],
        subject=subject, source=source, ch_names=tuple(cont.ch_names),
        positions=np.asarray(cont.positions, dtype=np.float32),
        rejected={**(rejected or {}), **counts},
    )


# --------------------------------------------------------------------------------------------
# assembly
# --------------------------------------------------------------------------------------------
def assemble(
    name: str,
    parts: Sequence[Part],
    split_of: Mapping[str, str] | Sequence[str],
    class_names: tuple[str, ...],
    cfg: PreprocessConfig,
    protocol: str,
) -> TaskWindows:
    """Concatenate parts into one :class:`TaskWindows`; every part must share one montage.

    Parameters
    ----------
    name : str
        Task name.
    parts : sequence of Part
        One per source file (parts with zero windows are allowed).
    split_of : mapping of str to str, or sequence of str
        Subject → split (``"train"``, ``"val"`` or ``"test"``), or the split of each part in
        order (e.g. by run for one-subject data).
    class_names : tuple of str
        Class names in index order.
    cfg : PreprocessConfig
        The configuration the windows were made with.
    protocol : str
        The split protocol, for ``TaskWindows.protocol``.
    """
    if not parts:
        raise NeuriptError(f"task {name!r}: no source files gave windows")
    if isinstance(split_of, Mapping):
        unknown = sorted({p.subject for p in parts} - set(split_of))
        if unknown:
            raise NeuriptError(f"task {name!r}: subjects {unknown} have no split")
        part_splits = [split_of[p.subject] for p in parts]
    else:
        part_splits = list(split_of)
    assert len(part_splits) == len(parts), (len(part_splits), len(parts))
    bad = sorted(set(part_splits) - set(SPLITS))
    if bad:
        raise NeuriptError(f"task {name!r}: split names {bad} are not among {SPLITS}")
    ch_names = parts[0].ch_names
    for part in parts[1:]:
        if part.ch_names != ch_names:
            raise NeuriptError(
                f"{part.source}: channels {list(part.ch_names)} differ from {list(ch_names)} "
                f"({parts[0].source}); a task needs one montage"
            )
    counts = [p.windows.shape[0] for p in parts]
    empty = np.zeros((0, len(ch_names), cfg.window_samples), np.float32)
    return TaskWindows(
        name=name,
        signals=np.concatenate([empty, *(p.windows for p in parts)]).astype(np.float32),
        labels=np.concatenate([p.labels for p in parts]).astype(np.int64),
        subjects=np.repeat(np.array([p.subject for p in parts], dtype=str), counts),
        splits=np.repeat(np.array(part_splits, dtype=str), counts),
        sources=np.repeat(np.array([p.source for p in parts], dtype=str), counts),
        starts=np.concatenate([p.starts for p in parts]).astype(np.int64),
        ch_names=tuple(ch_names),
        positions=np.asarray(parts[0].positions, dtype=np.float32),
        class_names=tuple(class_names),
        preprocess=cfg,
        protocol=protocol,
    )


def rejected_total(parts: Sequence[Part]) -> dict[str, int]:
    """Sum of the parts' rejection counts."""
    total: dict[str, int] = {}
    for part in parts:
        for key, value in part.rejected.items():
            total[key] = total.get(key, 0) + int(value)
    return total


# --------------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$NEURIPT_CACHE`` if set, else ``~/.cache/neuript`` (read at call time)."""
    env = os.environ.get(CACHE_ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "neuript"


def file_listing(data_dir: Path) -> list[tuple[str, int, int]]:
    """Every file under ``data_dir`` as (relative path, size in bytes, mtime in ns), sorted."""
    data_dir = Path(data_dir)
    rows = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        rows.append((path.relative_to(data_dir).as_posix(), stat.st_size, stat.st_mtime_ns))
    return rows


def cache_key(
    task: str, version: str, options: Mapping[str, Any], cfg: PreprocessConfig, data_dir: Path
) -> str:
    """SHA-256 (24 hex digits) of the task, its code version, options, config and file list."""
    body = {
        "format": CACHE_FORMAT,
        "task": task,
        "version": version,
        "options": {k: options[k] for k in sorted(options)},
        "preprocess": to_dict(cfg),
        "data_dir": str(Path(data_dir).resolve()),
        "files": file_listing(data_dir),
    }
    text = json.dumps(body, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _cache_path(task: str, key: str) -> Path:
    return cache_dir() / "tasks" / f"{task}-{key}.npz"


def save_cached(task: TaskWindows, key: str) -> Path:
    """Write ``task`` to the cache as ``.npz`` atomically (temp file, then rename)."""
    path = _cache_path(task.name, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"name": task.name, "ch_names": list(task.ch_names),
            "class_names": list(task.class_names), "protocol": task.protocol,
            "preprocess": to_dict(task.preprocess)}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            mixed = {} if task.present is None else {"present": task.present}
            np.savez(fh, signals=task.signals, labels=task.labels, subjects=task.subjects,
                     splits=task.splits, sources=task.sources, starts=task.starts,
                     positions=task.positions, meta=np.array(json.dumps(meta)), **mixed)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("cached task %s at %s", task.name, path)
    return path


def load_cached(task: str, key: str) -> TaskWindows | None:
    """Return the cached task for ``key``, or None if absent or unreadable."""
    path = _cache_path(task, key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("meta")))
        return TaskWindows(
            name=meta["name"], ch_names=tuple(meta["ch_names"]),
            class_names=tuple(meta["class_names"]), protocol=meta["protocol"],
            preprocess=from_dict(PreprocessConfig, meta["preprocess"]), **arrays,
        )
    except (OSError, ValueError, KeyError, AssertionError) as err:
        log.warning("ignoring unreadable task cache %s (%s)", path, err)
        return None


def epochs_part(
    rec: Any,
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
        Filtering, resampling, window length and rejection (edge trimming is not applied).
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
        (``rejected["outside"]`` counts the others) and that survive the rejection rule of
        :func:`~neuript.data.windows.cut_windows`.
    """
    from neuript.data.preprocess import preprocess_continuous
    from neuript.data.windows import cut_windows, event_starts

    onsets = np.asarray(onsets_s, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    assert onsets.shape == labels.shape, (onsets.shape, labels.shape)
    cont = preprocess_continuous(rec, cfg, target=target)
    window = cfg.window_samples
    starts, valid = event_starts(onsets, offset_s, cont.sfreq_hz, cont.data.shape[1], window)
    cut = cut_windows(cont, starts, window, cfg, rec=rec)
    return _part(cont, cut, labels[valid], subject, rec.source,
                 {"outside": int((~valid).sum())})


def epoch_file(
    path: Path,
    cfg: PreprocessConfig,
    event_labels: Mapping[str, int],
    *,
    subject: str,
    offset_s: float = 0.0,
    target: Any = None,
) -> Part:
    """Read one file and cut event-locked windows at its labelled events (:func:`epochs_part`).

    Parameters
    ----------
    path : Path
        The recording (its :class:`~neuript.data.recording.Events` carry the markers).
    cfg, subject, offset_s, target
        As in :func:`epochs_part`.
    event_labels : mapping of str to int
        Event description → class index; other events are ignored.
    """
    from neuript.data.io import read_recording

    rec = read_recording(path)
    desc = np.asarray(rec.events.description, dtype=str)
    chosen = np.flatnonzero(np.isin(desc, list(event_labels)))
    onsets = np.asarray(rec.events.onset_s, dtype=np.float64)[chosen]
    labels = np.array([event_labels[d] for d in desc[chosen]], dtype=np.int64)
    part = epochs_part(rec, cfg, onsets, labels, subject=subject, offset_s=offset_s,
                       target=target)
    return part._replace(source=str(path))
