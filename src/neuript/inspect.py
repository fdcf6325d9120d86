"""``neuript inspect``: what a recording, a manifest or a BIDS dataset will give, before training.

Every function returns an :class:`InspectReport` and never raises on a bad row or file: each
problem is listed with the manifest line (or file) it comes from, and ``report.ok`` is False
exactly when one of them would stop ``neuript finetune`` (the task build,
:func:`~neuript.data.tasks.manifest.build_user_task`, then
:func:`~neuript.train.finetune.resolve_task`). The checks are theirs
(:mod:`neuript.data.tasks._byod`, :mod:`neuript.data.tasks._checks`), with the same options
and the same texts, so inspect and finetune agree.

Examples
--------
>>> report = inspect_manifest("labels.csv", window_s=4.0)    # doctest: +SKIP
>>> print(report.to_text())                                   # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from inspect import signature
from pathlib import Path
from typing import Any, Literal, TextIO

from neuript.config import PreprocessConfig
from neuript.data.splits import SPLITS
from neuript.data.tasks._byod import (
    ChannelInfo,
    Cut,
    Problem,
    Unit,
    channel_info,
    check_units,
    class_names_of,
    common_montage,
    cut_starts,
    default_preprocess,
    row_order,
)
from neuript.data.tasks._checks import amplitude_problem, split_class_problems, warning_lines
from neuript.data.tasks.arrays import assign_splits
from neuript.errors import NeuriptError, RecordingError, read_json

WHOLE_FILE = "(whole file)"
"""The label under which a recording inspected alone counts its windows."""


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
            lines += [f"  ERROR   [{p.kind}] {p}" for p in sorted(self.problems, key=row_order)
                      if p.severity == "error"]
            lines += [f"  WARNING {line}" for line in warning_lines(self.problems)]
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
    labels = tuple(dict.fromkeys([c.label for c in unit.cuts if c.label != WHOLE_FILE]
                                 + ([unit.label] if unit.label else [])))
    return RecordingRow(unit.where, rec.source, unit.subject, labels, rec.sfreq_hz,
                        rec.duration_s, rec.n_channels, info.monopolar, info.aliases, dropped,
                        info.tcp, windows, events)


def report_units(
    source: str, kind: str, units: Sequence[Unit], problems: list[Problem], *,
    cfg: PreprocessConfig, where: str = "task", montage: Any = "auto",
    on_unknown: str = "raise", split: str = "subject", seed: int = 0,
    val_fraction: float = 0.15, test_fraction: float = 0.15,
    class_names: Sequence[str] | None = None, subjects_per_split: int | None = None,
) -> InspectReport:
    """Run the builders' and ``finetune``'s checks on ``units`` and tabulate (never raises).

    The checks are those of :func:`~neuript.data.tasks.arrays.build_from_units` and
    :func:`~neuript.train.finetune.resolve_task`, on windows counted without preprocessing;
    only the amplitude warning preprocesses the recordings (as the build does).
    """
    problems = list(problems)
    check = check_units(units, cfg)
    problems += check.problems
    classes = class_names_of(units, class_names, problems)
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
        splits = _split_counts(units, split_of, check.windows, classes, subjects_per_split)
        if not any(p.severity == "error" for p in split_problems):  # else finetune stops there
            problems += split_class_problems(where, splits, training=True)
        amplitude = amplitude_problem(units, _peaks_uv(units, cfg, plan.target if plan else "tcp"))
        problems += [amplitude] if amplitude else []
    rows = [_row(u, plan.infos[i] if plan else None, check.windows[i])
            for i, u in enumerate(units)]
    shown = {s: {c: n for c, n in per.items() if n or c in (class_names or ())}
             for s, per in splits.items()}
    return InspectReport(source, kind, cfg.window_s, rows, problems,
                         plan.text if plan else "", dict(sorted(per_label.items())),
                         {s: shown[s] for s in SPLITS if sum(shown[s].values())})


def _split_counts(
    units: Sequence[Unit], split_of: Sequence[str], windows: Sequence[dict[str, int]],
    classes: Sequence[str], subjects_per_split: int | None,
) -> dict[str, dict[str, int]]:
    """Windows per split and class (every class), as ``TaskWindows.counts()`` of the built task
    (after ``subjects_per_split``: the first n subjects with windows, sorted, of each split)."""
    kept: dict[str, set[str]] = {}
    for split in SPLITS:
        with_windows = sorted({u.subject for u, s, w in zip(units, split_of, windows)
                               if s == split and sum(w.values())})
        kept[split] = set(with_windows[:subjects_per_split] if subjects_per_split
                          else with_windows)
    counts = {split: dict.fromkeys(classes, 0) for split in SPLITS}
    for unit, split, per in zip(units, split_of, windows):
        if split in counts and unit.subject in kept[split]:
            for label, n in per.items():
                counts[split][label] = counts[split].get(label, 0) + n
    return counts


def _peaks_uv(units: Sequence[Unit], cfg: PreprocessConfig, target: Any) -> list[float]:
    """Per unit: the largest |value| (µV) of its windows, preprocessed as the build does."""
    import dataclasses

    import numpy as np

    from neuript.data.preprocess import preprocess_continuous

    cfg = dataclasses.replace(cfg, montage="tcp" if target == "tcp" else "monopolar")
    memo: dict[int, Any] = {}
    peaks = []
    for unit in units:
        key = id(unit.recording)
        if key not in memo:
            try:
                memo[key] = preprocess_continuous(unit.recording, cfg, target=target,
                                                  on_unknown="drop")
            except NeuriptError:  # its channel problem is reported already
                memo[key] = None
        cont, peak = memo[key], 0.0
        for cut in unit.cuts if cont is not None else ():
            starts = cut_starts(cut, cont.data.shape[1], cont.sfreq_hz, cfg.window_samples,
                                cfg.stride_samples)
            if starts.size:
                index = np.unique(starts[:, None] + np.arange(cfg.window_samples)[None, :])
                peak = max(peak, float(np.abs(cont.data[:, index]).max(initial=0.0)))
        peaks.append(peak)
    return peaks


RECORDING_ONLY = ("one_subject_class", "one_class", "empty_split", "empty",
                  "split_missing_class", "bad_split")
"""Task-level problem kinds that mean nothing for one recording inspected alone."""


def inspect_recording(
    path: str | os.PathLike, *, window_s: float = 4.0, on_unknown: str = "raise",
    reader_options: dict[str, Any] | None = None,
) -> InspectReport:
    """Inspect one recording file: channels recognised and dropped, rate, length, windows.

    Unknown channel names are errors with ``on_unknown="raise"`` (the builders' default),
    warnings with ``"drop"``. ``reader_options`` go to
    :func:`~neuript.data.io.read_recording` (``sfreq``/``ch_names``/``unit`` of a numeric
    export …). Windows above :data:`~neuript.data.tasks._checks.ABSURD_UV` are a warning.
    """
    from neuript.data.io import read_recording

    try:
        rec = read_recording(path, reader_options=reader_options)
    except RecordingError as err:
        kind = "missing_file" if not Path(path).exists() else "unreadable"
        return InspectReport(str(path), "recording", window_s,
                             problems=[Problem(str(path), kind, str(err))])
    unit = Unit(rec, rec.subject or Path(path).stem, (Cut(WHOLE_FILE, 0.0, None),), str(path))
    report = report_units(str(path), "recording", [unit], [], on_unknown=on_unknown,
                          cfg=default_preprocess(window_s, None, None))
    problems = [p for p in report.problems if p.kind not in RECORDING_ONLY]
    return InspectReport(report.source, "recording", window_s, report.rows, problems,
                         report.montage)


def inspect_user_task(
    *, manifest: str | os.PathLike | None = None, bids_root: str | os.PathLike | None = None,
    bids_events: str = "trial_type", window_s: float | None = None,
    split: Literal["subject", "column"] = "subject", options: Mapping[str, Any] | None = None,
    subjects_per_split: int | None = None,
) -> InspectReport:
    """Inspect what ``neuript finetune --manifest FILE`` (or ``--bids-root DIR``) would build.

    The arguments are those of :func:`~neuript.data.tasks.manifest.build_user_task` (``options``:
    a fine-tuning config's ``task_options``, checked as it checks them) plus ``finetune``'s
    ``subjects_per_split``; the report is OK exactly when those builds and
    :func:`~neuript.train.finetune.resolve_task` pass, and each of their errors is listed
    with the same text.
    """
    from neuript.data.tasks.bids import build_bids_task, plan_bids
    from neuript.data.tasks.manifest import build_manifest_task, plan_manifest, user_task_options

    kind = "manifest" if manifest is not None else "bids"
    source = str(manifest if manifest is not None else bids_root)
    window = 4.0 if window_s is None else float(window_s)
    builder: Any = build_manifest_task if manifest is not None else build_bids_task
    if (manifest is None) == (bids_root is None):
        raise NeuriptError("inspect: give exactly one of a manifest and a BIDS folder")
    try:
        kwargs = {"split": split, **user_task_options(builder, options or {}, window_s=window,
                                                      where=source)}
    except NeuriptError as err:  # finetune refuses these options the same way
        return InspectReport(source, kind, window,
                             problems=[Problem(source, "bad_option", str(err))])
    try:
        if manifest is not None:
            plan: Any = plan_manifest(manifest, positions=kwargs.pop("positions", None))
            where = plan.path.name
        else:
            own = set(signature(plan_bids).parameters) - {"bids_root", "events"}
            plan = plan_bids(bids_root, events=kwargs.pop("events", bids_events),  # type: ignore[arg-type]
                             **{k: kwargs.pop(k) for k in list(kwargs) if k in own})
            where = plan.root.name
    except NeuriptError as err:
        return InspectReport(source, kind, window,
                             problems=[Problem(source, "bad_manifest", str(err))])
    kwargs.pop("name", None)
    cfg = default_preprocess(window, kwargs.pop("stride_s", None), kwargs.pop("preprocess", None))
    return report_units(source, kind, plan.units, plan.problems, cfg=cfg, where=where,
                        subjects_per_split=subjects_per_split, **kwargs)


def inspect_manifest(path: str | os.PathLike, **options: Any) -> InspectReport:
    """Inspect a manifest with the checks :func:`build_manifest_task` applies (never raises).

    ``options`` are those of :func:`~neuript.data.tasks.manifest.build_manifest_task`
    (``window_s``, ``split``, ``on_unknown``, ``preprocess`` …) and ``subjects_per_split``.
    """
    return inspect_user_task(manifest=path, **_user_task_args(options))


def inspect_bids(root: str | os.PathLike, **options: Any) -> InspectReport:
    """Inspect a BIDS dataset as :func:`~neuript.data.tasks.bids.build_bids_task` reads it
    (``options``: its keyword options, ``events`` included, and ``subjects_per_split``)."""
    return inspect_user_task(bids_root=root, **_user_task_args(options))


def _user_task_args(options: Mapping[str, Any]) -> dict[str, Any]:
    """Builder keywords → :func:`inspect_user_task` arguments (the rest are ``options``)."""
    rest = dict(options)
    own = {k: rest.pop(k) for k in ("window_s", "split", "subjects_per_split") if k in rest}
    if "events" in rest:
        own["bids_events"] = rest.pop("events")
    return {**own, "options": rest}


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
    bids_root: str | os.PathLike | None = None, bids_events: str = "trial_type",
    window_s: float | None = None, split: Literal["subject", "column"] = "subject",
    task_options: Mapping[str, Any] | None = None, subjects_per_split: int | None = None,
    reader_options: dict[str, Any] | None = None, out: TextIO | None = None,
) -> InspectReport:
    """Inspect ``path`` (or ``manifest`` / ``bids_root``) and write the text report to ``out``.

    Dispatch: ``manifest``, or a CSV/TSV whose header has ``path`` and ``label`` → manifest;
    ``bids_root``, or a folder with ``dataset_description.json`` → BIDS; both checked by
    :func:`inspect_user_task` with the settings ``finetune`` takes (``bids_events``,
    ``window_s``, ``split``, ``task_options``, ``subjects_per_split``); a folder with
    ``config.json`` or ``metrics.json`` → checkpoint/run; anything else → one recording
    (``window_s``, ``task_options["on_unknown"]``, ``reader_options``).
    """
    if manifest is None and bids_root is None and path is None:
        raise NeuriptError("inspect: give a recording/folder path, --manifest FILE or "
                           "--bids-root DIR")
    target = Path(next(p for p in (manifest, bids_root, path) if p is not None))
    is_manifest = manifest is not None or (bids_root is None and target.is_file()
                                           and _looks_like_manifest(target))
    is_bids = not is_manifest and (target / "dataset_description.json").is_file()
    if reader_options and (is_manifest or is_bids):
        raise NeuriptError(f"inspect {target}: reader options apply to one recording file; "
                           "give a manifest's rows theirs in its reader_options column")
    if is_manifest or is_bids:
        report = inspect_user_task(
            manifest=target if is_manifest else None, bids_root=None if is_manifest else target,
            bids_events=bids_events, window_s=window_s, split=split, options=task_options,
            subjects_per_split=subjects_per_split)
    elif target.is_dir() and target.suffix.lower() != ".mff":  # an EGI .mff is a recording
        report = inspect_checkpoint(target)
    else:
        report = inspect_recording(target, window_s=4.0 if window_s is None else window_s,
                                   on_unknown=(task_options or {}).get("on_unknown", "raise"),
                                   reader_options=reader_options)
    (out or sys.stdout).write(report.to_text())
    return report
