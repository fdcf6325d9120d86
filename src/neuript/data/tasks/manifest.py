"""A labelled task from a CSV/TSV manifest: one row per recording or per labelled segment.

Columns (header names, any order, case-insensitive; ``#`` lines are comments):

``path`` (required)
    Recording file, relative to the manifest's folder or absolute (any format
    :func:`~neuript.data.io.read_recording` reads).
``label`` (required)
    Class name of the row's windows.
``subject`` (required; an empty cell falls back to the subject guessed from the path)
    Splits are by subject.
``session``
    Session/run identifier (kept with the recording).
``start_s``, ``stop_s``
    A segment (s); windows tile it. Empty: the whole recording.
``event``, ``event_offset_s``
    Take one window per annotation whose description equals ``event``, starting
    ``event_offset_s`` after its onset (events lasting at least a window are tiled).
``channels``
    ``;``-separated channel names or ``A-B`` pairs this row may use.
``montage``
    ``tcp``, ``monopolar`` or a ``;``-separated name list (per-row montage).
``positions``
    Positions (metres, head frame) of non-standard channels: ``X1:0.01,0.02,0.08;X2:…``.
    A ``positions.json`` beside the manifest (``{"X1": [x, y, z]}``) applies to every row.
``positions_file``
    A positions file for the row (relative to the manifest's folder, or absolute): a
    ``name,x,y,z`` table, a JSON mapping or a montage file MNE reads
    (:func:`neuript.data.positions.read_positions`); the ``positions`` cell wins over it.
``split``
    ``train``/``val``/``test``: forces the row's subject into that split (``split="subject"``),
    or is the split itself (``split="column"``).
``reader_options``
    A JSON object of reader options for the row's file (:func:`~neuript.data.io.read_recording`),
    e.g. ``{"data_format": "int32"}`` for a Neuroscan CNT or ``{"sfreq": 250, "ch_names":
    ["Fp1", "Fp2"]}`` for a numeric export (in a CSV cell, quotes are doubled).

Every problem names the manifest line (the header is line 1). :func:`plan_manifest` collects
problems without raising (``neuript inspect`` uses it); :func:`build_manifest_task` raises on
any error.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.recording import Recording
from neuript.data.tasks._byod import Problem, Unit, default_preprocess
from neuript.data.tasks.base import SPLITS, TaskWindows
from neuript.errors import NeuriptError, RecordingError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label", "subject")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "session", "start_s", "stop_s", "event", "event_offset_s", "channels", "montage",
    "positions", "positions_file", "split", "reader_options",
)
POSITIONS_SIDECAR = "positions.json"
MONTAGE_WORDS: tuple[str, ...] = ("tcp", "monopolar", "as_is")


class ManifestRow(NamedTuple):
    """One parsed manifest row (values checked, path resolved)."""

    line: int
    where: str
    path: Path
    label: str
    subject: str | None
    session: str | None
    start_s: float | None
    stop_s: float | None
    event: str | None
    event_offset_s: float
    target: str | tuple[str, ...] | None
    positions: dict[str, tuple[float, float, float]]
    split: str | None
    reader_options: dict[str, Any]


class ManifestPlan(NamedTuple):
    """A manifest read and checked, ready to build or to report.

    Attributes
    ----------
    path : Path
        The manifest.
    rows : list of ManifestRow
        Rows that parsed.
    units : list of Unit
        Rows whose recording could be read (one unit per row, in order).
    problems : list of Problem
        Parsing and reading problems (checks of the units come later).
    digest : str
        SHA-256 (16 hex digits) of the manifest file's bytes.
    """

    path: Path
    rows: list[ManifestRow]
    units: list[Unit]
    problems: list[Problem]
    digest: str


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------
def _delimiter(path: Path, header: str) -> str:
    if path.suffix.lower() in (".tsv", ".tab"):
        return "\t"
    if path.suffix.lower() == ".csv":
        return "," if "," in header or "\t" not in header else "\t"
    return "\t" if header.count("\t") > header.count(",") else ","


def parse_positions(text: str, where: str) -> dict[str, tuple[float, float, float]]:
    """``"X1:0.01,0.02,0.08;X2:…"`` → ``{"X1": (0.01, 0.02, 0.08), …}`` (metres)."""
    out: dict[str, tuple[float, float, float]] = {}
    for item in filter(None, (s.strip() for s in text.split(";"))):
        name, _, coords = item.partition(":")
        try:
            xyz = tuple(float(v) for v in coords.split(","))
        except ValueError:
            xyz = ()
        if not name.strip() or len(xyz) != 3:
            raise NeuriptError(f"{where}: position {item!r} must look like 'NAME:x,y,z' (metres)")
        if max(abs(v) for v in xyz) > 0.5:
            raise NeuriptError(f"{where}: position {item!r} is over 0.5 m from the head centre; "
                               "positions are in metres, not mm")
        out[name.strip()] = xyz  # type: ignore[assignment]
    return out


def load_positions(source: str | os.PathLike | Mapping[str, Any] | None) -> dict[str, Any]:
    """Positions (metres) from a mapping ``{"name": [x, y, z]}`` or a positions file.

    A file is read by :func:`neuript.data.positions.read_positions` (a JSON mapping such as
    ``positions.json``, a ``name,x,y,z`` table, a montage file MNE reads; its 10-05 names keep
    the package's positions); a mapping is taken as a ``positions`` cell is.
    """
    if source is None:
        return {}
    if not isinstance(source, Mapping):
        from neuript.data.positions import read_positions

        return {k: tuple(float(v) for v in xyz) for k, xyz in read_positions(source).items()}
    text = ";".join(f"{k}:{','.join(str(float(v)) for v in np.ravel(xyz))}"
                    for k, xyz in source.items())
    return parse_positions(text, "positions")


def _float(cell: str, column: str, where: str) -> float | None:
    if not cell:
        return None
    try:
        return float(cell)
    except ValueError:
        raise NeuriptError(f"{where}: {column}={cell!r} is not a number (seconds)") from None


def _target(cells: Mapping[str, str], where: str) -> str | tuple[str, ...] | None:
    channels, montage = cells.get("channels", ""), cells.get("montage", "")
    if channels and montage:
        raise NeuriptError(f"{where}: give 'channels' or 'montage', not both")
    text = channels or montage
    if not text:
        return None
    if montage and ";" not in montage and montage.lower() in MONTAGE_WORDS:
        return montage.lower()
    names = tuple(n.strip() for n in text.split(";") if n.strip())
    if not names:
        raise NeuriptError(f"{where}: empty channel list {text!r}")
    return names


def parse_reader_options(text: str, where: str) -> dict[str, Any]:
    """A ``reader_options`` cell (JSON object text) → dict; empty → ``{}``."""
    if not text:
        return {}
    try:
        options = json.loads(text)
    except json.JSONDecodeError as err:
        options = err
    if not isinstance(options, dict):
        raise NeuriptError(f"{where}: reader_options {text!r} must be a JSON object such as "
                           '{"data_format": "int32"} (in a CSV cell, double the quotes)')
    return options


def _row_positions(cells: Mapping[str, str], where: str, folder: Path,
                   files: dict[Path, dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """The row's ``positions_file`` (read once per file, kept in ``files``), then its cell."""
    found: dict[str, tuple[float, float, float]] = {}
    if cells.get("positions_file"):
        path = Path(cells["positions_file"]).expanduser()
        path = path if path.is_absolute() else folder / path
        if path not in files:
            try:
                files[path] = load_positions(path)
            except NeuriptError as err:
                raise NeuriptError(f"{where}: positions_file: {err}") from None
        found.update(files[path])
    found.update(parse_positions(cells.get("positions", ""), where))
    return found


def _parse_row(cells: dict[str, str], line: int, where: str, folder: Path,
               position_files: dict[Path, dict[str, Any]]) -> ManifestRow:
    for column in ("path", "label"):
        if not cells.get(column):
            raise NeuriptError(f"{where}: column {column!r} is empty")
    start = _float(cells.get("start_s", ""), "start_s", where)
    stop = _float(cells.get("stop_s", ""), "stop_s", where)
    event = cells.get("event") or None
    if event is not None and (start is not None or stop is not None):
        raise NeuriptError(f"{where}: give either 'event' or 'start_s'/'stop_s', not both")
    if start is not None and stop is not None and stop <= start:
        raise NeuriptError(f"{where}: stop_s={stop:g} must be after start_s={start:g}")
    split = (cells.get("split") or "").lower() or None
    if split is not None and split not in SPLITS:
        raise NeuriptError(f"{where}: split={split!r} must be one of {', '.join(SPLITS)}")
    path = Path(cells["path"]).expanduser()
    return ManifestRow(
        line=line, where=where, path=path if path.is_absolute() else folder / path,
        label=cells["label"], subject=cells.get("subject") or None,
        session=cells.get("session") or None, start_s=start, stop_s=stop, event=event,
        event_offset_s=_float(cells.get("event_offset_s", ""), "event_offset_s", where) or 0.0,
        target=_target(cells, where),
        positions=_row_positions(cells, where, folder, position_files), split=split,
        reader_options=parse_reader_options(cells.get("reader_options", ""), where),
    )


def read_manifest(path: str | os.PathLike) -> tuple[list[ManifestRow], list[Problem], str]:
    """Parse a manifest; bad rows become problems (named by line), never exceptions.

    Returns
    -------
    rows : list of ManifestRow
    problems : list of Problem
    digest : str
        SHA-256 (16 hex digits) of the file's bytes.
    """
    path = Path(path)
    if not path.is_file():
        raise NeuriptError(f"{path}: manifest not found")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    lines = [(i + 1, t) for i, t in enumerate(raw.decode("utf-8-sig").splitlines())
             if t.strip() and not t.lstrip().startswith("#")]
    problems: list[Problem] = []
    if not lines:
        return [], [Problem(f"{path.name}", "empty", "the manifest is empty (no header)")], digest
    header_line, header_text = lines[0]
    delim = _delimiter(path, header_text)
    header = [h.strip().lower() for h in next(csv.reader([header_text], delimiter=delim))]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        problems.append(Problem(f"{path.name} line {header_line}", "bad_manifest",
                                f"missing column(s) {missing}; the header is {header} (columns "
                                f"{list(REQUIRED_COLUMNS)} are required, optional "
                                f"{list(OPTIONAL_COLUMNS)}; delimiter {delim!r})"))
        return [], problems, digest
    unknown = [h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        log.info("%s: columns %s are not used", path, unknown)
    rows = []
    position_files: dict[Path, dict[str, Any]] = {}
    for line, text in lines[1:]:
        where = f"{path.name} line {line}"
        values = next(csv.reader([text], delimiter=delim))
        if len(values) > len(header):
            problems.append(Problem(where, "bad_row", f"{len(values)} cells but the header has "
                                    f"{len(header)} columns (delimiter {delim!r})"))
            continue
        cells = {h: v.strip() for h, v in zip(header, values)}
        try:
            rows.append(_parse_row(cells, line, where, path.parent, position_files))
        except NeuriptError as err:
            problems.append(Problem(where, "bad_row", str(err).removeprefix(f"{where}: ")))
    if not rows and not problems:
        problems.append(Problem(path.name, "empty", "the manifest has a header but no rows"))
    return rows, problems, digest


# --------------------------------------------------------------------------------------------
# reading the recordings
# --------------------------------------------------------------------------------------------
def plan_manifest(
    path: str | os.PathLike,
    *,
    positions: str | os.PathLike | Mapping[str, Any] | None = None,
) -> ManifestPlan:
    """Parse the manifest and read every recording once; collect problems, never raise on rows.

    Parameters
    ----------
    path : path-like
        The manifest (``.csv``, ``.tsv`` or sniffed).
    positions : path-like | mapping | None
        Extra positions for every row (metres), on top of ``positions.json`` beside the
        manifest; a row's ``positions`` cell wins over both.
    """
    from neuript.data.exports import for_manifest_row
    from neuript.data.io import read_recording

    path = Path(path)
    rows, problems, digest = read_manifest(path)
    shared: dict[str, Any] = {}
    sidecar = path.parent / POSITIONS_SIDECAR
    if sidecar.is_file():
        shared.update(load_positions(sidecar))
    shared.update(load_positions(positions))
    cache: dict[tuple[Any, ...], Recording | Problem] = {}
    units: list[Unit] = []
    for row in rows:
        extra = {**shared, **row.positions}
        key = (str(row.path), row.subject, row.session, json.dumps(extra, sort_keys=True),
               json.dumps(row.reader_options, sort_keys=True))
        if key not in cache:
            try:
                rec = read_recording(row.path, subject=row.subject, session=row.session,
                                     reader_options=row.reader_options)
                if extra:
                    rec = dataclasses.replace(rec, positions={
                        **(rec.positions or {}), **{k: np.asarray(v, float)
                                                    for k, v in extra.items()}})
                cache[key] = rec
            except RecordingError as err:
                kind = "missing_file" if not row.path.exists() else "unreadable"
                cache[key] = Problem(row.where, kind, for_manifest_row(str(err)))
        got = cache[key]
        if isinstance(got, Problem):
            problems.append(dataclasses.replace(got, where=row.where))
            continue
        subject = row.subject or got.subject
        if subject is None:
            subject = row.path.stem
            problems.append(Problem(row.where, "bad_row", f"no subject given; using {subject!r} "
                                    "(the file name)", "warning"))
        cuts = Unit.cuts_for(got, row.label, row.start_s, row.stop_s, row.event,
                             row.event_offset_s)
        units.append(Unit(got, subject, cuts, row.where, target=row.target, split=row.split,
                          event=row.event, label=row.label))
    return ManifestPlan(path, rows, units, problems, digest)


def build_manifest_task(
    path: str | os.PathLike,
    *,
    window_s: float = 4.0,
    stride_s: float | None = None,
    split: Literal["subject", "column"] = "subject",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    montage: str | Sequence[str] = "auto",
    preprocess: PreprocessConfig | None = None,
    on_unknown: Literal["raise", "drop"] = "raise",
    class_names: Sequence[str] | None = None,
    positions: str | os.PathLike | Mapping[str, Any] | None = None,
    name: str | None = None,
) -> TaskWindows:
    """Build a labelled task from a manifest (see the module docstring for the columns).

    Parameters
    ----------
    path : path-like
        The manifest.
    window_s, stride_s : float, float | None
        Window length and step (s); stride None = non-overlapping.
    split : {"subject", "column"}
        Seeded subject-wise split stratified by each subject's labels (a ``split`` cell forces
        its subject), or the ``split`` column itself.
    seed, val_fraction, test_fraction : int, float, float
        The subject-wise split.
    montage : {"auto", "tcp", "monopolar", "as_is"} or list of names / ``"A-B"`` pairs
        ``"auto"``: TCP when every recording has its electrodes, else the shared channels.
    preprocess : PreprocessConfig | None
        None: 0.1-30 Hz, notch 50 Hz, 64 Hz, no rejection (``window_s``/``stride_s`` always win).
    on_unknown : {"raise", "drop"}
        Unknown channel names: an error naming the row (with close matches and how to give a
        position), or dropped.
    class_names : sequence of str | None
        Class order; None: sorted labels.
    positions : path-like | mapping | None
        Extra channel positions for every row (metres).
    name : str | None
        Task name; None: the manifest's file stem.

    Returns
    -------
    task : TaskWindows
        Windows (N, C, W) float32 µV; ``task.split_manifest()`` gives the split and its hash.

    Raises
    ------
    NeuriptError
        Listing every problem with its manifest line.
    """
    from neuript.data.tasks.arrays import build_from_units

    plan = plan_manifest(path, positions=positions)
    cfg = default_preprocess(window_s, stride_s, preprocess)
    return build_from_units(
        user_task_name(manifest=plan.path, name=name), plan.units, cfg, montage=montage,
        split=split, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
        class_names=class_names, on_unknown=on_unknown, problems=plan.problems,
        protocol=f"Manifest {plan.path} (sha256 {plan.digest}, {len(plan.rows)} rows).",
        where=plan.path.name,
    )


def user_task_name(
    *, manifest: str | os.PathLike | None = None, bids_root: str | os.PathLike | None = None,
    name: str | None = None,
) -> str:
    """The name of a manifest or BIDS task: ``name``, else the manifest's stem or
    ``bids-<folder>`` (what :func:`build_manifest_task` and ``build_bids_task`` call it)."""
    if name:
        return str(name)
    if manifest is not None:
        return Path(manifest).stem
    return f"bids-{Path(bids_root).expanduser().name}"  # type: ignore[arg-type]


def user_task_options(
    builder: Any, options: Mapping[str, Any], *, window_s: float, where: str
) -> dict[str, Any]:
    """The keyword options of ``builder`` from a task's ``options`` (a ``task_options``).

    Unknown names are refused in one line listing the accepted ones; ``preprocess`` may be
    nested or dotted (:func:`~neuript.data.tasks._checks.task_preprocess`), over the
    downstream recipe with the task's window.
    """
    import inspect

    from neuript.data.tasks._checks import task_preprocess

    accepted = sorted(n for n, p in inspect.signature(builder).parameters.items()
                      if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "window_s")
    base = default_preprocess(window_s, options.get("stride_s"), None)
    preprocess, rest = task_preprocess(base, options, where)
    unknown = sorted(set(rest) - set(accepted))
    if unknown:
        raise NeuriptError(f"{where}: unknown task option(s) {unknown}; accepted: "
                           f"{', '.join(accepted)}")
    return rest if preprocess is None else {**rest, "preprocess": preprocess}


def build_user_task(
    *,
    manifest: str | os.PathLike | None = None,
    bids_root: str | os.PathLike | None = None,
    bids_events: str = "trial_type",
    window_s: float | None = None,
    split: Literal["subject", "column"] = "subject",
    options: Mapping[str, Any] | None = None,
) -> TaskWindows:
    """The task of ``neuript finetune --manifest FILE`` or ``--bids-root DIR`` (exactly one).

    Parameters
    ----------
    manifest, bids_root : path-like | None
        A manifest (:func:`build_manifest_task`) or a BIDS folder
        (:func:`~neuript.data.tasks.bids.build_bids_task`).
    bids_events : str
        The events.tsv column holding the labels (BIDS only).
    window_s : float | None
        Window length (s); None: 4 s.
    split : {"subject", "column"}
        Split mode (``"column"``: the manifest's split column).
    options : mapping | None
        Further keyword options of the builder (``seed``, ``montage``, ``on_unknown``,
        ``val_fraction`` …), e.g. a fine-tuning config's ``task_options``.
    """
    if (manifest is None) == (bids_root is None):
        raise NeuriptError("give exactly one of manifest= (a CSV/TSV file) and bids_root= "
                           f"(a BIDS folder); got manifest={manifest!r}, bids_root={bids_root!r}")
    from neuript.data.tasks.bids import build_bids_task

    builder: Any = build_manifest_task if manifest is not None else build_bids_task
    window = 4.0 if window_s is None else float(window_s)
    where = str(manifest if manifest is not None else bids_root)
    kwargs = {"split": split, **user_task_options(builder, options or {}, window_s=window,
                                                  where=where), "window_s": window}
    if manifest is not None:
        return build_manifest_task(manifest, **kwargs)
    return build_bids_task(bids_root, events=bids_events, **kwargs)
