"""A labelled task from recordings held in memory (notebooks, custom readers, simulations).

Manifests (:mod:`neuript.data.tasks.manifest`), BIDS datasets (:mod:`neuript.data.tasks.bids`)
and Python lists of recordings (:func:`build_array_task`) all become a list of
:class:`~neuript.data.tasks._byod.Unit` — one recording, its subject and the labelled cuts to
take from it — and then follow one path, :func:`build_from_units`: check every unit, put every
recording on one channel set, split by subject, cut the windows.

Examples
--------
>>> rec = Recording.from_array(x, 256.0, ["Probe"], positions={"Probe": [0.0, 0.02, 0.09]})
>>> task = build_array_task([(rec, "rest", "s1"), ...], window_s=4.0)   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.recording import Recording
from neuript.data.splits import stratified_subject_split
from neuript.data.tasks._byod import (
    Cut,
    Problem,
    Unit,
    check_units,
    class_names_of,
    common_montage,
    cut_starts,
    default_preprocess,
    raise_errors,
    rows_text,
)
from neuript.data.tasks._checks import amplitude_problem, log_warnings, split_class_problems
from neuript.data.tasks.base import SPLITS, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

__all__ = ["Cut", "Problem", "Unit", "build_array_task", "build_from_units"]


class SplitPlan(NamedTuple):
    """The split of a task's units.

    Attributes
    ----------
    splits : list of str
        Per unit: ``"train"``, ``"val"`` or ``"test"``.
    problems : list of Problem
    text : str
        The split protocol sentence.
    """

    splits: list[str]
    problems: list[Problem]
    text: str


def assign_splits(
    units: Sequence[Unit], *, mode: str = "subject", seed: int = 0, val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> SplitPlan:
    """Split of every unit.

    ``"subject"``: subjects with a forced split (a unit's ``split``) keep it; the others are
    split with :func:`~neuript.data.tasks._common.stratified_subject_split`, stratified by the
    set of labels each subject has. ``"column"``: every unit's own ``split``.

    Returns
    -------
    plan : SplitPlan
    """
    if mode not in ("subject", "column"):
        raise NeuriptError(f"split must be 'subject' or 'column', got {mode!r}")
    problems: list[Problem] = []
    for unit in units:
        if unit.split is not None and unit.split not in SPLITS:
            problems.append(Problem(unit.where, "bad_split",
                                    f"split {unit.split!r} must be one of {SPLITS}"))
    if mode == "column":
        missing = [u.where for u in units if u.split is None]
        if missing:
            problems.append(Problem(rows_text(missing), "bad_split",
                                    "split='column' needs a train/val/test value in every row"))
        seen: dict[str, set[str]] = {}
        for unit in units:
            seen.setdefault(unit.subject, set()).add(str(unit.split))
        mixed = sorted(s for s, v in seen.items() if len(v) > 1)
        if mixed:
            problems.append(Problem("task", "subject_in_splits",
                                    f"subjects {mixed} are in several splits (the split is not "
                                    "subject-wise)", "warning"))
        return SplitPlan([str(u.split) for u in units], problems,
                         "Split: as given by the manifest's split column.")
    forced: dict[str, str] = {}
    for unit in units:
        if unit.split is not None:
            if forced.get(unit.subject, unit.split) != unit.split:
                problems.append(Problem(unit.where, "split_conflict",
                                        f"subject {unit.subject!r} is forced into both "
                                        f"{forced[unit.subject]!r} and {unit.split!r}"))
            forced.setdefault(unit.subject, unit.split)
    label_sets: dict[str, set[str]] = {}
    for unit in units:
        label_sets.setdefault(unit.subject, set()).update(c.label for c in unit.cuts)
    strata = {key: k for k, key in enumerate(sorted({tuple(sorted(v)) for v in
                                                     label_sets.values()}))}
    free = {s: strata[tuple(sorted(v))] for s, v in label_sets.items() if s not in forced}
    fractions = (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)
    split_of = {**stratified_subject_split(free, fractions, seed), **forced}
    stratified = True
    if set(split_of.values()) != set(SPLITS) and len(free) >= 3:
        # label sets too rare to stratify (each under three subjects): one seeded shuffle
        split_of = {**stratified_subject_split(dict.fromkeys(free, 0), fractions, seed),
                    **forced}
        stratified = False
    n = {sp: sum(v == sp for v in split_of.values()) for sp in SPLITS}
    empty = [sp for sp in SPLITS if n[sp] == 0]
    if empty:
        if forced:  # the rows already carry splits: say how to use (or complete) them
            way = (f"the split column forces {len(forced)} of them; put subjects in {empty} "
                   "there too, or take the column itself as the split: split='column' "
                   "(--split column)")
        else:
            way = ("add subjects, raise the val_fraction / test_fraction task options, or force "
                   "subjects into splits with a split column (train/val/test)")
        problems.append(Problem("task", "empty_split",
                                f"{len(split_of)} subjects leave split(s) {empty} without a "
                                f"subject; a subject-wise split needs at least 3 subjects: {way}"))
    text = (f"Split: by subject, seeded (seed {seed}; val {val_fraction:g}, test "
            f"{test_fraction:g} of the subjects, "
            f"{'stratified by' if stratified else 'too few subjects to stratify by'} each "
            "subject's set of labels"
            f"{'; ' + str(len(forced)) + ' subjects forced by the split column' if forced else ''}"
            f"): {n['train']}/{n['val']}/{n['test']} subjects train/val/test.")
    return SplitPlan([split_of[u.subject] for u in units], problems, text)


def build_from_units(
    name: str,
    units: Sequence[Unit],
    cfg: PreprocessConfig,
    *,
    montage: str | Sequence[str] = "auto",
    split: Literal["subject", "column"] = "subject",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    class_names: Sequence[str] | None = None,
    on_unknown: Literal["raise", "drop"] = "raise",
    protocol: str = "",
    problems: Sequence[Problem] = (),
    where: str = "task",
) -> TaskWindows:
    """Check, map, split and window the units into one task (raises on any error problem).

    Parameters
    ----------
    name : str
        Task name.
    units : sequence of Unit
        The recordings with their labelled cuts.
    cfg : PreprocessConfig
        Filters, target rate, window length and stride (rejection too, if set).
    montage : {"auto", "tcp", "monopolar", "as_is", "per_recording"} or list of names / "A-B"
        See :func:`~neuript.data.tasks._byod.common_montage`; ``"per_recording"`` keeps each
        recording's own channels (:attr:`TaskWindows.present`).
    split : {"subject", "column"}
        Seeded subject-wise split (units with a ``split`` force their subject's split), or the
        units' own ``split`` values (every unit must have one).
    seed, val_fraction, test_fraction
        Seed and shares of the subject-wise split.
    class_names : sequence of str | None
        Class order; None: sorted labels.
    on_unknown : {"raise", "drop"}
        Unknown channel names: an error naming the row, or dropped with a warning.
    protocol : str
        Text placed before the generated protocol paragraph.
    problems : sequence of Problem
        Problems found earlier (reading a manifest); reported together with the new ones.
    where : str
        Named in the problems of the whole task (the manifest's file name, the BIDS folder).

    Returns
    -------
    task : TaskWindows
        Windows (N, C, W) float32 µV, W = ``cfg.window_samples``.

    Raises
    ------
    NeuriptError
        Listing every error problem, each naming its manifest row / item.
    """
    from neuript.data.preprocess import preprocess_continuous
    from neuript.data.windows import cut_windows

    problems = list(problems) + check_units(units, cfg).problems
    classes = class_names_of(units, class_names, problems)
    plan = common_montage(units, montage, on_unknown=on_unknown)
    problems += plan.problems
    raise_errors(name, problems)
    split_of_unit, split_problems, split_text = assign_splits(
        units, mode=split, seed=seed, val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    raise_errors(name, split_problems)
    log_warnings(name, problems + split_problems)
    cfg = dataclasses.replace(cfg, montage="tcp" if plan.target == "tcp" else "monopolar")
    per_recording = plan.target == "per_recording"

    window, stride = cfg.window_samples, cfg.stride_samples
    label_index = {c: k for k, c in enumerate(classes)}
    continuous: dict[int, Any] = {}
    blocks, labels, subjects, splits, sources, starts_all = [], [], [], [], [], []
    montages: list[tuple[tuple[str, ...], np.ndarray, str]] = []  # per block, with its source
    rejected: dict[str, int] = {}
    peaks_uv = np.zeros(len(units))
    for i, (unit, unit_split) in enumerate(zip(units, split_of_unit)):
        key = id(unit.recording)
        if key not in continuous:
            own = (unit.target if unit.target is not None else "monopolar") \
                if per_recording else plan.target
            continuous[key] = preprocess_continuous(
                unit.recording, cfg, target=own, on_unknown="drop")
        cont = continuous[key]
        for cut in unit.cuts:
            starts = cut_starts(cut, cont.data.shape[1], cont.sfreq_hz, window, stride)
            if starts.size == 0:
                continue
            kept = cut_windows(cont, starts, window, cfg, rec=unit.recording)
            peaks_uv[i] = max(peaks_uv[i], float(np.abs(kept.windows).max(initial=0.0)))
            for reason, count in kept.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + count
            windows, starts = kept.windows, kept.starts
            n = len(starts)
            blocks.append(windows)
            montages.append((tuple(cont.ch_names), np.asarray(cont.positions, np.float32),
                             unit.recording.source))
            labels.append(np.full(n, label_index[cut.label], np.int64))
            subjects.append(np.full(n, unit.subject, dtype=object))
            splits.append(np.full(n, unit_split, dtype=object))
            sources.append(np.full(n, unit.recording.source, dtype=object))
            starts_all.append(starts.astype(np.int64))
    amplitude = amplitude_problem(units, peaks_uv.tolist())
    log_warnings(name, [amplitude] if amplitude else [])
    if not blocks or sum(len(b) for b in blocks) == 0:
        raise NeuriptError(f"task {name!r}: no window could be cut (window {cfg.window_s} s)")
    if sum(rejected.values()):
        log.info("%s: %d windows rejected (%s)", name, sum(rejected.values()),
                 ", ".join(f"{k} {v}" for k, v in rejected.items() if v))
    if per_recording:
        ch_names, positions, signals, present = union_montage(blocks, montages, name)
    else:
        (ch_names, positions, _), signals, present = montages[0], np.concatenate(blocks), None
    task = TaskWindows(
        name=name,
        signals=signals,
        labels=np.concatenate(labels),
        subjects=np.concatenate(subjects).astype(str),
        splits=np.concatenate(splits).astype(str),
        sources=np.concatenate(sources).astype(str),
        starts=np.concatenate(starts_all),
        ch_names=tuple(ch_names),
        positions=np.asarray(positions, np.float32),
        class_names=tuple(classes),
        preprocess=cfg,
        protocol=" ".join(p for p in (protocol, split_text, plan.text) if p),
        present=present,
    )
    window_problems = split_class_problems(where, task.counts())
    raise_errors(name, window_problems)
    log_warnings(name, window_problems)
    return task


def union_montage(
    blocks: Sequence[np.ndarray], montages: Sequence[tuple[tuple[str, ...], np.ndarray, str]],
    name: str,
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Lay windows of different channel sets on the union of their channels.

    Parameters
    ----------
    blocks : sequence of ndarray, shape (N_b, C_b, W), µV
    montages : sequence of (ch_names (C_b,), positions (C_b, 3) metres, source)
        The channels of each block, and the recording it came from (named in errors).
    name : str
        Task name, for errors.

    Returns
    -------
    ch_names : tuple of str, length C
        Every channel, in order of first appearance.
    positions : ndarray, shape (C, 3), float32
    signals : ndarray, shape (N, C, W), float32
        Zeros where a window lacks a channel.
    present : ndarray, shape (N, C), bool

    Raises
    ------
    NeuriptError
        One channel name at two positions more than 1 cm apart (two recordings disagree).
    """
    index: dict[str, int] = {}
    where: list[np.ndarray] = []
    first: list[str] = []  # the recording that placed each channel
    for ch_names, pos, source in montages:
        for ch, p in zip(ch_names, pos):
            if ch not in index:
                index[ch] = len(index)
                where.append(p)
                first.append(source)
            elif float(np.linalg.norm(where[index[ch]] - p)) > 0.01:
                k = index[ch]
                raise NeuriptError(
                    f"task {name!r}: channel {ch!r} is at {_metres(where[k])} m in "
                    f"{first[k]} and at {_metres(p)} m in {source}; give one "
                    "position per name (or rename one of them)")
    n = sum(len(b) for b in blocks)
    window = blocks[0].shape[-1]
    signals = np.zeros((n, len(index), window), np.float32)
    present = np.zeros((n, len(index)), bool)
    row = 0
    for block, (ch_names, _, _) in zip(blocks, montages):
        cols = [index[ch] for ch in ch_names]
        signals[row:row + len(block), cols] = block
        present[row:row + len(block), cols] = True
        row += len(block)
    return tuple(index), np.asarray(where, np.float32).reshape(-1, 3), signals, present


def _metres(position: np.ndarray) -> list[float]:
    """A position (3,) as a short list of metres for messages."""
    return [round(float(v), 4) for v in position]


def _as_unit(item: Any, index: int, memo: dict[tuple[int, str], Recording]) -> Unit:
    """A tuple ``(recording, label, subject)`` or a dict (see :func:`build_array_task`)."""
    where = f"item {index}"
    if isinstance(item, Unit):
        return item
    if isinstance(item, Mapping):
        data = dict(item)
        rec = data.pop("recording", None)
        label, subject = data.pop("label", None), data.pop("subject", None)
        start, stop = data.pop("start_s", None), data.pop("stop_s", None)
        event = data.pop("event", None)
        offset = float(data.pop("event_offset_s", 0.0))
        unit_split, channels = data.pop("split", None), data.pop("channels", None)
        if data:
            raise NeuriptError(f"{where}: unknown key(s) {sorted(data)}; accepted: recording, "
                               "label, subject, start_s, stop_s, event, event_offset_s, split, "
                               "channels")
    elif isinstance(item, tuple | list) and len(item) == 3:
        rec, label, subject = item
        start = stop = event = unit_split = channels = None
        offset = 0.0
    else:
        raise NeuriptError(f"{where}: expected (Recording, label, subject) or a dict, got "
                           f"{type(item).__name__}")
    if not isinstance(rec, Recording):
        raise NeuriptError(f"{where}: 'recording' must be a Recording (Recording.from_array), "
                           f"got {type(rec).__name__}")
    if label is None or subject is None:
        raise NeuriptError(f"{where}: 'label' and 'subject' are required")
    if rec.subject != str(subject) or rec.source == "<array>":
        key = (id(rec), str(subject))  # one copy per recording and subject: preprocessed once
        if key not in memo:
            source = f"<array item {index}>" if rec.source == "<array>" else rec.source
            memo[key] = dataclasses.replace(rec, subject=str(subject), source=source)
        rec = memo[key]
    cuts = Unit.cuts_for(rec, str(label), start, stop, event, offset)
    target = tuple(channels) if channels is not None else None
    return Unit(rec, str(subject), cuts, where, target=target, split=unit_split,
                event=None if event is None else str(event), label=str(label))


def build_array_task(
    items: Sequence[Any],
    *,
    window_s: float = 4.0,
    stride_s: float | None = None,
    split: Literal["subject", "column"] = "subject",
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    class_names: Sequence[str] | None = None,
    montage: str | Sequence[str] = "auto",
    preprocess: PreprocessConfig | None = None,
    on_unknown: Literal["raise", "drop"] = "raise",
    name: str = "arrays",
) -> TaskWindows:
    """Build a labelled task from recordings held in memory.

    Parameters
    ----------
    items : sequence
        Each either ``(recording, label, subject)`` or a dict with keys ``recording``,
        ``label``, ``subject`` and optionally ``start_s``/``stop_s`` (a segment, s),
        ``event`` (annotation description to lock windows to) with ``event_offset_s``,
        ``split`` (``"train"``/``"val"``/``"test"``) and ``channels`` (names or ``"A-B"``).
        Recordings come from :meth:`Recording.from_array` or
        :func:`~neuript.data.io.read_recording`; custom channels need ``positions``.
    window_s, stride_s : float, float | None
        Window length and step (s); stride None = non-overlapping.
    split, seed, val_fraction, test_fraction, class_names, montage, on_unknown
        As in :func:`build_from_units`.
    preprocess : PreprocessConfig | None
        None: :func:`~neuript.data.tasks._byod.default_preprocess` (0.1-30 Hz, notch 50 Hz,
        64 Hz, no rejection) with ``window_s``/``stride_s``.
    name : str
        Task name.

    Returns
    -------
    task : TaskWindows
        Windows (N, C, W) float32 µV.
    """
    if not items:
        raise NeuriptError("build_array_task: items is empty; give (recording, label, subject)")
    cfg = default_preprocess(window_s, stride_s, preprocess)
    memo: dict[tuple[int, str], Recording] = {}
    units = [_as_unit(item, i, memo) for i, item in enumerate(items)]
    return build_from_units(
        name, units, cfg, montage=montage, split=split, seed=seed, val_fraction=val_fraction,
        test_fraction=test_fraction, class_names=class_names, on_unknown=on_unknown,
        protocol=f"In-memory task of {len(units)} recordings.",
    )

