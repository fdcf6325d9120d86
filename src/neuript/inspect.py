"""``neuript inspect``: what a recording, a manifest or a BIDS dataset will give, before training.

Every function returns an :class:`InspectReport` and never raises on a bad row or file: each
problem is listed with the manifest line (or file) it comes from, and ``report.ok`` is False
when any of them would stop :func:`~neuript.data.tasks.manifest.build_manifest_task`. The
checks are the builders' own (:mod:`neuript.data.tasks._byod`), so inspect and build agree.

Examples
--------
>>> report = inspect_manifest("labels.csv", window_s=4.0)    # doctest: +SKIP
>>> print(report.to_text())                                   # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from neuript.data.tasks._byod import (
    ChannelInfo,
    Problem,
    Unit,
    channel_info,
    check_units,
    class_names_of,
    common_montage,
    default_preprocess,
    row_order,
)
from neuript.data.tasks.arrays import assign_splits
from neuript.errors import NeuriptError, RecordingError, read_json


@dataclass(frozen=True)
class RecordingRow:
    """One recording (or manifest row) as the task would see it.

    Attributes
    ----------
    where : str
        Manifest line / BIDS file / path.
    path : str
        The recording file.
    subject : str | None
    labels : tuple of str
        Labels this row gives.
    sfreq_hz, duration_s : float
        Sampling rate (Hz) and length (s) as read.
    n_channels : int
        EEG channels read.
    mapped : tuple of str
        Canonical channels recognised (their positions are known).
    aliases : dict of str to str
        Raw name → canonical name for every renamed channel.
    dropped : dict of str to str
        Raw name → why it is not used (unknown name, duplicate, non-EEG type …).
    tcp : bool
        Whether the 20 TCP pairs can be derived.
    windows : dict of str to int
        Windows per label.
    events : dict of str to int
        Annotation descriptions and their counts.
    """

    where: str
    path: str
    subject: str | None
    labels: tuple[str, ...]
    sfreq_hz: float
    duration_s: float
    n_channels: int
    mapped: tuple[str, ...]
    aliases: dict[str, str]
    dropped: dict[str, str]
    tcp: bool
    windows: dict[str, int]
    events: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class InspectReport:
    """Everything ``neuript inspect`` found.

    Attributes
    ----------
    source : str
        The inspected path.
    kind : {"recording", "manifest", "bids", "checkpoint"}
    window_s : float
        Window length the counts assume (s).
    rows : list of RecordingRow
    problems : list of Problem
        Each naming its manifest line / file; ``severity`` "error" or "warning".
    montage : str
        The channel set the task would use.
    windows : dict of str to dict of str to int
        Label → subject → windows.
    splits : dict of str to dict of str to int
        Split → label → windows (empty when the split cannot be made).
    notes : list of str
        Free lines (checkpoint summaries).
    """

    source: str
    kind: str
    window_s: float
    rows: list[RecordingRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    montage: str = ""
    windows: dict[str, dict[str, int]] = field(default_factory=dict)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem is an error."""
        return not any(p.severity == "error" for p in self.problems)

    def problems_of(self, kind: str) -> list[Problem]:
        """The problems of one kind (e.g. ``"unknown_channel"``)."""
        return [p for p in self.problems if p.kind == kind]

    def to_text(self) -> str:
        """A plain-text report (what the CLI prints)."""
        lines = [f"neuript inspect: {self.source} ({self.kind}; {len(self.rows)} recording "
                 f"row(s); windows of {self.window_s:g} s)"]
        if self.montage:
            lines.append(self.montage)
        lines += self.notes
        for row in self.rows:
            lines.append(f"- {row.where}: {row.path}")
            lines.append(f"    subject {row.subject}, labels {list(row.labels)}, "
                         f"{row.sfreq_hz:g} Hz, {row.duration_s:.1f} s, {row.n_channels} EEG "
                         f"channels, {len(row.mapped)} recognised"
                         f"{' (TCP possible)' if row.tcp else ''}; windows {row.windows}")
            if row.aliases:
                lines.append("    aliases: " + ", ".join(f"{k}->{v}" for k, v in
                                                         row.aliases.items()))
            if row.dropped:
                lines.append("    dropped: " + ", ".join(f"{k} ({v})" for k, v in
                                                         row.dropped.items()))
            if row.events:
                lines.append(f"    events: {row.events}")
        lines += _table("windows per label and subject", self.windows)
        lines += _table("windows per split and label", self.splits)
        n_err = sum(p.severity == "error" for p in self.problems)
        if self.problems:
            lines.append(f"problems ({n_err} error(s), {len(self.problems) - n_err} "
                         "warning(s)):")
            lines += [f"  {p.severity.upper():7s} [{p.kind}] {p}"
                      for p in sorted(self.problems, key=row_order)]
        lines.append("result: OK" if self.ok else f"result: NOT OK ({n_err} error(s))")
        return "\n".join(lines) + "\n"


def _table(title: str, body: dict[str, dict[str, int]]) -> list[str]:
    if not body:
        return []
    lines = [f"{title}:"]
    for key, counts in body.items():
        total = sum(counts.values())
        lines.append(f"  {key}: {total} (" + ", ".join(f"{k} {v}" for k, v in
                                                      counts.items()) + ")")
    return lines


def _row(unit: Unit, info: ChannelInfo | None, windows: dict[str, int]) -> RecordingRow:
    rec = unit.recording
    if info is None:
        try:
            info = channel_info(rec, unit.target)
        except NeuriptError:
            info = ChannelInfo((), (), {}, {}, (), False)
    events: dict[str, int] = {}
    for desc in rec.events.description.tolist():
        events[str(desc)] = events.get(str(desc), 0) + 1
    dropped = {**info.dropped, **rec.excluded}
    labels = tuple(dict.fromkeys([c.label for c in unit.cuts] + ([unit.label] if unit.label
                                                                 else [])))
    return RecordingRow(unit.where, rec.source, unit.subject, labels, rec.sfreq_hz,
                        rec.duration_s, rec.n_channels, info.monopolar, info.aliases, dropped,
                        info.tcp, windows, events)


def report_units(
    source: str, kind: str, units: Sequence[Unit], problems: list[Problem], *,
    window_s: float = 4.0, stride_s: float | None = None, montage: Any = "auto",
    on_unknown: str = "raise", split: str = "subject", seed: int = 0,
    val_fraction: float = 0.15, test_fraction: float = 0.15,
) -> InspectReport:
    """Run the task builders' checks on ``units`` and tabulate the result (never raises)."""
    cfg = default_preprocess(window_s, stride_s, None)
    problems = list(problems)
    check = check_units(units, cfg)
    problems += check.problems
    class_names_of(units, None, problems)
    plan = common_montage(units, montage, on_unknown=on_unknown) if units else None
    if plan is not None:
        problems += plan.problems
    per_label: dict[str, dict[str, int]] = {}
    for unit, counts in zip(units, check.windows):
        for label, n in counts.items():
            per_label.setdefault(label, {})
            per_label[label][unit.subject] = per_label[label].get(unit.subject, 0) + n
    splits: dict[str, dict[str, int]] = {}
    if units:
        try:
            split_of, split_problems, _ = assign_splits(
                units, mode=split, seed=seed, val_fraction=val_fraction,
                test_fraction=test_fraction)
        except NeuriptError as err:
            split_of, split_problems = [], [Problem("task", "bad_split", str(err))]
        problems += split_problems
        for unit_split, counts in zip(split_of, check.windows):
            for label, n in counts.items():
                splits.setdefault(unit_split, {})
                splits[unit_split][label] = splits[unit_split].get(label, 0) + n
    rows = [_row(u, plan.infos[i] if plan else None, check.windows[i])
            for i, u in enumerate(units)]
    return InspectReport(source, kind, window_s, rows, problems,
                         plan.text if plan else "", dict(sorted(per_label.items())),
                         {k: splits[k] for k in ("train", "val", "test") if k in splits})


def inspect_recording(
    path: str | os.PathLike, *, window_s: float = 4.0, on_unknown: str = "raise",
    reader_options: dict[str, Any] | None = None,
) -> InspectReport:
    """Inspect one recording file: channels recognised and dropped, rate, length, windows.

    Unknown channel names are errors with ``on_unknown="raise"`` (the builders' default),
    warnings with ``"drop"``. ``reader_options`` go to
    :func:`~neuript.data.io.read_recording` (``sfreq``/``ch_names`` of a numeric export …).
    """
    from neuript.data.io import read_recording

    try:
        rec = read_recording(path, reader_options=reader_options)
    except RecordingError as err:
        kind = "missing_file" if not Path(path).exists() else "unreadable"
        return InspectReport(str(path), "recording", window_s,
                             problems=[Problem(str(path), kind, str(err))])
    unit = Unit(rec, rec.subject or Path(path).stem, (), str(path), label=None)
    report = report_units(str(path), "recording", [unit], [], window_s=window_s,
                          montage="auto", on_unknown=on_unknown)
    cfg = default_preprocess(window_s, None, None)
    from neuript.data.tasks._byod import Cut, cut_starts, target_samples

    n = len(cut_starts(Cut("-", 0.0, None), target_samples(rec.n_samples, rec.sfreq_hz,
                       cfg.sfreq_hz), cfg.sfreq_hz, cfg.window_samples, cfg.stride_samples))
    rows = [_with_windows(r, {"(whole file)": n}) for r in report.rows]
    problems = [p for p in report.problems if p.kind not in ("empty_split", "empty")]
    return InspectReport(report.source, "recording", window_s, rows, problems, report.montage)


def _with_windows(row: RecordingRow, windows: dict[str, int]) -> RecordingRow:
    from dataclasses import replace

    return replace(row, windows=windows)


def inspect_manifest(
    path: str | os.PathLike, *, window_s: float = 4.0, stride_s: float | None = None,
    montage: Any = "auto", on_unknown: str = "raise", split: str = "subject", seed: int = 0,
    val_fraction: float = 0.15, test_fraction: float = 0.15, positions: Any = None,
) -> InspectReport:
    """Inspect a manifest with the checks :func:`build_manifest_task` applies (never raises).

    Parameters are those of :func:`~neuript.data.tasks.manifest.build_manifest_task`.
    """
    from neuript.data.tasks.manifest import plan_manifest

    try:
        plan = plan_manifest(path, positions=positions)
    except NeuriptError as err:
        return InspectReport(str(path), "manifest", window_s,
                             problems=[Problem(str(path), "bad_manifest", str(err))])
    return report_units(str(path), "manifest", plan.units, plan.problems, window_s=window_s,
                        stride_s=stride_s, montage=montage, on_unknown=on_unknown, split=split,
                        seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)


def inspect_bids(
    root: str | os.PathLike, *, events: str = "trial_type", window_s: float = 4.0,
    montage: Any = "auto", on_unknown: str = "raise", **options: Any,
) -> InspectReport:
    """Inspect a BIDS dataset as :func:`~neuript.data.tasks.bids.build_bids_task` reads it."""
    from neuript.data.tasks.bids import plan_bids

    try:
        plan = plan_bids(root, events=events, **options)
    except NeuriptError as err:
        return InspectReport(str(root), "bids", window_s,
                             problems=[Problem(str(root), "bad_manifest", str(err))])
    return report_units(str(root), "bids", plan.units, plan.problems, window_s=window_s,
                        montage=montage, on_unknown=on_unknown)


def inspect_checkpoint(path: str | os.PathLike) -> InspectReport:
    """Summarise a checkpoint folder (``config.json``) or a run folder (``metrics.json``)."""
    folder = Path(path)
    notes: list[str] = []
    problems: list[Problem] = []
    for name in ("config.json", "metrics.json"):
        file = folder / name
        if file.is_file():
            try:
                body = read_json(file, name)
            except NeuriptError as err:
                problems.append(Problem(str(file), "bad_checkpoint", str(err)))
                continue
            keys = ("kind", "task", "model", "init", "split_hash", "neuript_version")
            notes += [f"{name}: {k} = {body[k]}" for k in keys if k in body]
            extra = body.get("extra") or {}
            notes += [f"{name}: extra.{k} = {extra[k]}" for k in ("class_names", "ch_names",
                                                                   "task") if k in extra]
    if (folder / "config.json").is_file() and not problems:
        problems += _weights_problems(folder)
    if not notes and not problems:
        problems.append(Problem(str(folder), "bad_manifest", "no config.json or metrics.json "
                                "here"))
    return InspectReport(str(folder), "checkpoint", 0.0, problems=problems, notes=notes)


def _weights_problems(folder: Path) -> list[Problem]:
    """A model folder's weights must load into the model its config describes."""
    from neuript.model.io import WEIGHTS_NAME, read_config
    from neuript.model_folder import load_classifier

    if not (folder / WEIGHTS_NAME).is_file():
        return [Problem(str(folder), "bad_checkpoint", f"config.json without {WEIGHTS_NAME}")]
    try:
        if read_config(folder).get("kind") in ("classifier", "baseline"):
            load_classifier(folder)
        else:
            from neuript.model.neuript import NeurIPTPretrain

            NeurIPTPretrain.from_pretrained(folder)
    except NeuriptError as err:
        return [Problem(str(folder), "bad_checkpoint", str(err))]
    return []


def _looks_like_manifest(path: Path) -> bool:
    if path.suffix.lower() not in (".csv", ".tsv", ".tab", ".txt"):
        return False
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip() and not line.lstrip().startswith("#"):
                cells = {c.strip().lower() for c in line.replace("\t", ",").split(",")}
                return {"path", "label"} <= cells
    return False


def run_inspect(
    path: str | os.PathLike | None = None, *, manifest: str | os.PathLike | None = None,
    out: TextIO | None = None, **options: Any,
) -> InspectReport:
    """Inspect ``path`` (or ``manifest``) and write the text report to ``out`` (stdout).

    Dispatch: ``manifest`` or a CSV/TSV whose header has ``path`` and ``label`` → manifest;
    a folder with ``dataset_description.json`` → BIDS; a folder with ``config.json`` or
    ``metrics.json`` → checkpoint/run; anything else → one recording. ``options`` go to the
    chosen function (``window_s``, ``montage``, ``on_unknown``, ``events`` …).
    """
    if manifest is None and path is None:
        raise NeuriptError("inspect: give a recording/folder path or --manifest FILE")
    target = Path(manifest if manifest is not None else path)  # type: ignore[arg-type]
    if manifest is not None or (target.is_file() and _looks_like_manifest(target)):
        func: Any = inspect_manifest
    elif (target / "dataset_description.json").is_file():
        func = inspect_bids
    elif target.is_dir() and target.suffix.lower() != ".mff":  # an EGI .mff is a recording
        func = inspect_checkpoint
    else:
        func = inspect_recording
    if options.get("reader_options") and func is not inspect_recording:
        raise NeuriptError(f"inspect {target}: reader options apply to one recording file; "
                           "give a manifest's rows theirs in its reader_options column")
    report = func(target, **_accepted(func, options))
    (out or sys.stdout).write(report.to_text())
    return report


def _accepted(func: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The options ``func`` takes (BIDS-only options are ignored for a manifest, etc.)."""
    import inspect as pyinspect

    from neuript.data.tasks.bids import plan_bids

    params = set(pyinspect.signature(func).parameters)
    if func is inspect_bids:
        params |= set(pyinspect.signature(plan_bids).parameters)
    return {k: v for k, v in options.items() if k in params and v is not None}
