"""A labelled task from a BIDS EEG dataset, read through MNE-BIDS.

Each recording (``sub-*/[ses-*/]eeg/*_eeg.<ext>``) is read with ``mne_bids.read_raw_bids``;
its ``*_events.tsv`` gives the labels, from the column named by ``events`` (``trial_type`` by
default; rows whose value is ``n/a`` or empty are skipped). A window starts at each event onset
(plus ``event_offset_s``); events lasting at least one window are tiled instead. With
``participant_label`` the label comes from that column of ``participants.tsv`` and whole
recordings are tiled (patient-vs-control designs). Subjects are the BIDS ``sub-`` labels.

Examples
--------
>>> task = build_bids_task("ds_root", events="trial_type", window_s=4.0)   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.tasks._byod import Cut, Problem, Unit, default_preprocess
from neuript.data.tasks.base import TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = (".edf", ".bdf", ".vhdr", ".set", ".fif")
"""Recording files looked for (BrainVision by its header, EEGLAB by ``.set``)."""


class BidsPlan(NamedTuple):
    """A BIDS dataset read and checked: one unit per recording, plus the problems found."""

    root: Path
    units: list[Unit]
    problems: list[Problem]


def _read_tsv(path: Path) -> Any:
    import pandas as pd

    return pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=True, dtype=str)


def _participants(root: Path, column: str | None) -> tuple[set[str] | None, dict[str, str]]:
    """Subjects listed in participants.tsv (None if absent) and ``column`` per subject."""
    path = root / "participants.tsv"
    if not path.is_file():
        if column is not None:
            raise NeuriptError(f"{path}: not found; participant_label={column!r} needs it")
        return None, {}
    table = _read_tsv(path)
    ids = [str(v).removeprefix("sub-") for v in table["participant_id"]]
    if column is None:
        return set(ids), {}
    if column not in table.columns:
        raise NeuriptError(f"{path}: no column {column!r}; it has {list(table.columns)}")
    values = {i: str(v) for i, v in zip(ids, table[column]) if isinstance(v, str) and v}
    return set(ids), values


def _event_cuts(
    events_path: Path, column: str, offset_s: float, labels: Sequence[str] | None, where: str
) -> tuple[tuple[Cut, ...], Problem | None]:
    if not events_path.is_file():
        return (), Problem(where, "event_not_found", f"no events file {events_path.name}")
    table = _read_tsv(events_path)
    if column not in table.columns:
        return (), Problem(f"{events_path.name} line 1", "bad_row",
                           f"no column {column!r}; columns are {list(table.columns)}")
    cuts = []
    for onset, duration, value in zip(table["onset"], table.get("duration", [None] * len(table)),
                                      table[column]):
        if not isinstance(value, str) or not value or (labels is not None and value not in labels):
            continue
        start = float(onset) + offset_s
        length = float(duration) if isinstance(duration, str) else 0.0
        cuts.append(Cut(value, start, float(onset) + length if np.isfinite(length) and length > 0
                        else None, "event"))
    return tuple(cuts), None


def plan_bids(
    bids_root: str | os.PathLike,
    *,
    events: str = "trial_type",
    event_offset_s: float = 0.0,
    labels: Sequence[str] | None = None,
    participant_label: str | None = None,
    task: str | None = None,
    datatype: str = "eeg",
    subjects: Sequence[str] | None = None,
    sessions: Sequence[str] | None = None,
) -> BidsPlan:
    """Find and read every recording, with its labelled cuts; problems are collected.

    Parameters are those of :func:`build_bids_task`.
    """
    import mne_bids

    from neuript.data.io import recording_from_raw

    root = Path(bids_root).expanduser()
    if not (root / "dataset_description.json").is_file():
        raise NeuriptError(f"{root}: not a BIDS dataset (no dataset_description.json)")
    listed, subject_labels = _participants(root, participant_label)
    paths = mne_bids.find_matching_paths(
        root, subjects=subjects, sessions=sessions, tasks=task, datatypes=datatype,
        suffixes=datatype, extensions=list(EXTENSIONS),
    )
    problems: list[Problem] = []
    units: list[Unit] = []
    if not paths:
        problems.append(Problem(str(root), "empty", f"no {datatype} recording found (task "
                                f"{task!r}, extensions {list(EXTENSIONS)})"))
    for bids_path in sorted(paths, key=lambda p: str(p.fpath)):
        where = bids_path.basename
        subject = f"sub-{bids_path.subject}"
        if listed is not None and bids_path.subject not in listed:
            problems.append(Problem(where, "bad_row", f"{subject} is not in participants.tsv",
                                    "warning"))
        try:
            raw = mne_bids.read_raw_bids(bids_path, verbose="error")
            rec = recording_from_raw(raw, bids_path.fpath, subject=subject,
                                     session=bids_path.session)
        except Exception as err:  # boundary: any reader failure becomes a reported problem
            problems.append(Problem(where, "unreadable", f"{type(err).__name__}: {err}"))
            continue
        if participant_label is not None:
            label = subject_labels.get(str(bids_path.subject))
            if label is None:
                problems.append(Problem(where, "bad_row", f"{subject} has no {participant_label!r}"
                                        " value in participants.tsv (skipped)", "warning"))
                continue
            cuts: tuple[Cut, ...] = (Cut(label, 0.0, None, "span"),)
        else:
            events_path = bids_path.copy().update(suffix="events", extension=".tsv").fpath
            cuts, problem = _event_cuts(Path(events_path), events, event_offset_s, labels,
                                        Path(events_path).name)
            if problem is not None:
                problems.append(problem)
                continue
            if not cuts:
                problems.append(Problem(Path(events_path).name, "event_not_found",
                                        f"no event with a kept value in column {events!r} "
                                        "(recording skipped)", "warning"))
                continue
        units.append(Unit(rec, subject, cuts, where))
    return BidsPlan(root, units, problems)


def build_bids_task(
    bids_root: str | os.PathLike,
    *,
    events: str = "trial_type",
    window_s: float = 4.0,
    stride_s: float | None = None,
    event_offset_s: float = 0.0,
    labels: Sequence[str] | None = None,
    participant_label: str | None = None,
    task: str | None = None,
    datatype: str = "eeg",
    subjects: Sequence[str] | None = None,
    sessions: Sequence[str] | None = None,
    split: Literal["subject"] = "subject",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    montage: str | Sequence[str] = "auto",
    preprocess: PreprocessConfig | None = None,
    on_unknown: Literal["raise", "drop"] = "raise",
    class_names: Sequence[str] | None = None,
    name: str | None = None,
) -> TaskWindows:
    """Build a labelled task from a BIDS EEG dataset.

    Parameters
    ----------
    bids_root : path-like
        The dataset folder (holding ``dataset_description.json``).
    events : str
        Column of ``*_events.tsv`` holding the labels.
    window_s, stride_s : float, float | None
        Window length and step (s) (the step tiles long events and whole recordings).
    event_offset_s : float
        Window start relative to each event onset (s).
    labels : sequence of str | None
        Keep only events with these values; None keeps every non-empty value.
    participant_label : str | None
        Take one label per subject from this ``participants.tsv`` column instead of events.
    task, datatype, subjects, sessions
        BIDS entities to select (``subjects`` without the ``sub-`` prefix).
    split, seed, val_fraction, test_fraction, montage, preprocess, on_unknown, class_names
        As in :func:`neuript.data.tasks.manifest.build_manifest_task` (subject-wise split).
    name : str | None
        Task name; None: ``bids-<folder name>``.

    Returns
    -------
    task : TaskWindows
        Windows (N, C, W) float32 µV.
    """
    from neuript.data.tasks.arrays import build_from_units
    from neuript.data.tasks.manifest import user_task_name

    plan = plan_bids(bids_root, events=events, event_offset_s=event_offset_s, labels=labels,
                     participant_label=participant_label, task=task, datatype=datatype,
                     subjects=subjects, sessions=sessions)
    task_name = user_task_name(bids_root=plan.root, name=name)
    source = f"participants.tsv column {participant_label!r}" if participant_label else (
        f"events.tsv column {events!r}")
    return build_from_units(
        task_name, plan.units, default_preprocess(window_s, stride_s, preprocess),
        montage=montage, split=split, seed=seed, val_fraction=val_fraction,
        test_fraction=test_fraction, class_names=class_names, on_unknown=on_unknown,
        problems=plan.problems,
        protocol=f"BIDS dataset {plan.root} ({len(plan.units)} recordings; labels from the "
                 f"{source}).", where=plan.root.name,
    )
