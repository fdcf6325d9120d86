"""The shared core of bring-your-own-data tasks: units, cuts, problems and the montage.

A :class:`Unit` is one recording with its subject and the labelled :class:`Cut` s to window.
Manifest rows, BIDS recordings and in-memory items all become units; the functions here check
them (:func:`check_units` — the same checks ``neuript inspect`` prints) and choose the one
channel set of the task (:func:`common_montage`); the split is
:func:`neuript.data.tasks.arrays.assign_splits`. Each problem is a :class:`Problem` naming
where it comes from (``"labels.csv line 4"``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Literal, NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.montage import (
    build_channel_map,
    close_matches,
    resolve_name,
    split_pair,
)
from neuript.data.preprocess import flat_electrodes
from neuript.data.recording import Recording
from neuript.data.windows import FLAT_REPORT_UV
from neuript.errors import ChannelError, NeuriptError

log = logging.getLogger(__name__)

Severity = Literal["error", "warning"]
IMBALANCE_LIMIT = 3.0
"""Largest/smallest class window ratio above which a warning is raised."""
POSITION_HINT = ("give its position in metres (a manifest's 'positions' column 'NAME:x,y,z;…' or "
                 "a positions.json beside it; Recording.from_array(positions=…) in Python), or "
                 "drop unknown channels: --set task_options.on_unknown=drop (on_unknown='drop' "
                 "in Python)")
"""How to resolve an unknown channel of a task; the flag works in ``finetune`` and ``inspect``."""


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a task's inputs.

    Attributes
    ----------
    where : str
        The manifest row (``"labels.csv line 4"``), item (``"item 2"``) or ``"task"``.
    kind : str
        Short key: ``missing_file``, ``unreadable``, ``unknown_channel``, ``short_recording``,
        ``segment_outside``, ``short_segment``, ``event_not_found``, ``event_outside``,
        ``flat_electrode`` (warning),
        ``one_subject_class``, ``class_imbalance``, ``sfreq_mix``, ``channels_dropped``,
        ``no_common_channels``, ``bad_split``, ``split_conflict``, ``subject_in_splits``,
        ``empty_split``, ``label_conflict``, ``duplicate_row``, ``unknown_label``, ``bad_row``,
        ``empty``; on the windows (:mod:`neuript.data.tasks._checks`): ``one_class``,
        ``split_missing_class``, ``absurd_amplitude``.
    message : str
        What is wrong and what to do.
    severity : {"error", "warning"}
        Errors stop a build; warnings are logged.
    """

    where: str
    kind: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:  # messages of NeuriptErrors already start with the file
        if self.message.startswith(f"{self.where}:"):
            return self.message
        return f"{self.where}: {self.message}"


class Cut(NamedTuple):
    """A labelled stretch of a recording to window.

    Attributes
    ----------
    label : str
        Class name.
    start_s : float
        Start (s from the first sample).
    stop_s : float | None
        End (s); for a ``"span"`` None means the end of the recording.
    kind : {"span", "event"}
        ``"span"``: tile [start, stop) with windows (must hold one). ``"event"``: one window at
        ``start_s``, or tiles when the event lasts at least one window.
    """

    label: str
    start_s: float
    stop_s: float | None
    kind: Literal["span", "event"] = "span"


@dataclasses.dataclass(frozen=True)
class Unit:
    """One recording of a task with its subject and labelled cuts.

    Attributes
    ----------
    recording : Recording
        Signals (several units may share one object: it is preprocessed once).
    subject : str
        Subject identifier (splits are by subject).
    cuts : tuple of Cut
        What to window.
    where : str
        Manifest row or item, named in every problem.
    target : str | tuple of str | None
        Per-row montage (``"tcp"``, ``"monopolar"`` or channel names / ``"A-B"`` pairs).
    split : str | None
        Forced split (``"train"``, ``"val"``, ``"test"``).
    event : str | None
        Annotation description asked for (for the "not found" message).
    label : str | None
        The unit's label when it has one (for messages about units without cuts).
    """

    recording: Recording
    subject: str
    cuts: tuple[Cut, ...]
    where: str
    target: str | tuple[str, ...] | None = None
    split: str | None = None
    event: str | None = None
    label: str | None = None

    @staticmethod
    def cuts_for(
        rec: Recording, label: str, start_s: float | None, stop_s: float | None,
        event: str | None, offset_s: float = 0.0,
    ) -> tuple[Cut, ...]:
        """Cuts of one labelled row: a segment, every matching event, or the whole recording."""
        if event is not None:
            desc = np.asarray(rec.events.description, dtype=str)
            chosen = np.flatnonzero(desc == str(event))
            return tuple(
                Cut(label, float(rec.events.onset_s[i]) + offset_s,
                    float(rec.events.onset_s[i] + rec.events.duration_s[i]), "event")
                for i in chosen
            )
        start = 0.0 if start_s is None else float(start_s)
        return (Cut(label, start, None if stop_s is None else float(stop_s), "span"),)


def default_preprocess(
    window_s: float, stride_s: float | None, preprocess: PreprocessConfig | None
) -> PreprocessConfig:
    """The downstream recipe (0.1-30 Hz, notch 50 Hz, 64 Hz, no rejection, no trimming)."""
    if preprocess is None:
        return PreprocessConfig(window_s=window_s, stride_s=stride_s, trim_edges_s=0.0,
                                min_duration_s=0.0, reject_abs_uv=None, flat_std_uv=None)
    return dataclasses.replace(preprocess, window_s=window_s, stride_s=stride_s)


def target_samples(n_samples: int, sfreq_hz: float, target_hz: float) -> int:
    """Length after polyphase resampling (as :func:`neuript.data.preprocess.resample`)."""
    if sfreq_hz == target_hz:
        return int(n_samples)
    ratio = Fraction(target_hz / sfreq_hz).limit_denominator(1000)
    return -(-n_samples * ratio.numerator // ratio.denominator)


def cut_starts(cut: Cut, n_samples: int, sfreq_hz: float, window: int, stride: int) -> np.ndarray:
    """First samples of the windows of one cut inside a (resampled) signal of ``n_samples``.

    Returns
    -------
    starts : ndarray, shape (N,), int64
        Windows that fit entirely inside both the cut and the signal.
    """
    a = int(round(cut.start_s * sfreq_hz))
    single = cut.kind == "event" and (
        cut.stop_s is None or (cut.stop_s - cut.start_s) * sfreq_hz < window)
    if single:
        ok = a >= 0 and a + window <= n_samples
        return np.array([a] if ok else [], dtype=np.int64)
    from neuript.data.windows import sliding_starts

    stop = None if cut.stop_s is None else int(round(cut.stop_s * sfreq_hz))
    return sliding_starts(n_samples, window, stride, start=a, stop=stop)


class UnitCheck(NamedTuple):
    """What :func:`check_units` found.

    Attributes
    ----------
    problems : list of Problem
    windows : list of dict of str to int
        Per unit: windows per label (estimated at the target rate).
    """

    problems: list[Problem]
    windows: list[dict[str, int]]


def check_units(units: Sequence[Unit], cfg: PreprocessConfig) -> UnitCheck:
    """Every problem of the units that can be seen without preprocessing them.

    Checks each unit (recording shorter than one window, segments outside the recording or
    shorter than a window, events not found or falling off the edge; a warning for an
    electrode flat for the whole recording), then the task (no unit,
    a class with one subject, class imbalance above :data:`IMBALANCE_LIMIT`, mixed rates).
    """
    problems: list[Problem] = []
    windows: list[dict[str, int]] = []
    if not units:
        problems.append(Problem("task", "empty", "no labelled recording (empty manifest?)"))
        return UnitCheck(problems, windows)
    window, stride = cfg.window_samples, cfg.stride_samples
    seen: set[int] = set()
    for unit in units:
        rec = unit.recording
        n_out = target_samples(rec.n_samples, rec.sfreq_hz, cfg.sfreq_hz)
        counts: dict[str, int] = {}
        windows.append(counts)
        if rec.duration_s < cfg.window_s:
            problems.append(Problem(unit.where, "short_recording",
                                    f"{rec.source} is {rec.duration_s:.2f} s long, shorter than "
                                    f"one {cfg.window_s:g}-s window"))
            continue
        if unit.event is not None and not unit.cuts:
            have = sorted(set(np.asarray(rec.events.description, dtype=str).tolist()))
            problems.append(Problem(unit.where, "event_not_found",
                                    f"no annotation {unit.event!r} in {rec.source}; it has "
                                    f"{have[:20] or 'no annotations'}"))
        outside = 0
        for cut in unit.cuts:
            n = len(cut_starts(cut, n_out, cfg.sfreq_hz, window, stride))
            counts[cut.label] = counts.get(cut.label, 0) + n
            if cut.kind == "event":
                outside += n == 0
                continue
            stop = rec.duration_s if cut.stop_s is None else cut.stop_s
            if cut.start_s < 0 or cut.start_s >= rec.duration_s or stop > rec.duration_s + (
                    1.0 / rec.sfreq_hz) or stop <= cut.start_s:
                problems.append(Problem(unit.where, "segment_outside",
                                        f"segment [{cut.start_s:g}, {stop:g}] s is not inside "
                                        f"{rec.source} (0 to {rec.duration_s:.2f} s)"))
            elif n == 0:
                problems.append(Problem(unit.where, "short_segment",
                                        f"segment [{cut.start_s:g}, {stop:g}] s is shorter than "
                                        f"one {cfg.window_s:g}-s window"))
        if outside:
            problems.append(Problem(unit.where, "event_outside",
                                    f"{outside} of {len(unit.cuts)} events give no full window "
                                    "inside the recording (dropped)", "warning"))
        if id(rec) not in seen:  # units cut from one recording share it: check it once
            seen.add(id(rec))
            dead = flat_electrodes(rec, FLAT_REPORT_UV)
            if dead:
                problems.append(Problem(
                    unit.where, "flat_electrode",
                    f"{rec.source}: {', '.join(map(repr, dead))} flat for the whole recording "
                    f"(std < {FLAT_REPORT_UV:g} µV: dead or unconnected); a task keeps it, "
                    "so these windows carry a dead channel: a manifest row's `channels` column "
                    "can leave it out (`neuript prepare` leaves it out by itself)", "warning"))
    problems += _task_problems(units, windows)
    return UnitCheck(problems, windows)


def _task_problems(units: Sequence[Unit], windows: list[dict[str, int]]) -> list[Problem]:
    problems = []
    per_label: dict[str, int] = {}
    subjects: dict[str, set[str]] = {}
    rows: dict[str, list[str]] = {}
    for unit, counts in zip(units, windows):
        for label, n in counts.items():
            per_label[label] = per_label.get(label, 0) + n
            if n:
                subjects.setdefault(label, set()).add(unit.subject)
            rows.setdefault(label, []).append(unit.where)
    for label in sorted(per_label):
        if len(subjects.get(label, ())) == 1:
            problems.append(Problem(
                rows_text(rows[label]), "one_subject_class",
                f"class {label!r} has windows from one subject only "
                f"({next(iter(subjects[label]))}); a subject-wise split cannot test it", "warning"))
    filled = {k: v for k, v in per_label.items() if v}
    problems += _overlap_problems(units)
    if len(filled) >= 2 and max(filled.values()) > IMBALANCE_LIMIT * min(filled.values()):
        big, small = max(filled, key=filled.get), min(filled, key=filled.get)
        problems.append(Problem(
            rows_text(rows[small]), "class_imbalance",
            f"class imbalance {filled[big] / filled[small]:.1f}:1 ({big!r} {filled[big]} windows, "
            f"{small!r} {filled[small]}); above {IMBALANCE_LIMIT:g}:1", "warning"))
    rates = sorted({u.recording.sfreq_hz for u in units})
    if len(rates) > 1:
        problems.append(Problem("task", "sfreq_mix",
                                f"sampling rates differ ({', '.join(f'{r:g}' for r in rates)} Hz); "
                                "all are resampled to the target rate", "warning"))
    return problems


def _spans(unit: Unit) -> list[tuple[float, float]]:
    """[start, stop) seconds each cut of a unit covers (an event: its duration, or its onset)."""
    end = unit.recording.duration_s
    return [(cut.start_s, max(end if cut.stop_s is None else cut.stop_s, cut.start_s + 1e-9))
            for cut in unit.cuts]


def _overlap_problems(units: Sequence[Unit]) -> list[Problem]:
    """Rows that give the same samples of one file: a duplicate, or one stretch with two labels.

    Either leaks: a duplicate doubles its windows (and may put copies in two splits when the
    row carries another subject or split); two labels on one stretch train on contradictions.
    """
    by_file: dict[str, list[Unit]] = {}
    for unit in units:  # items built from arrays or Epochs have names, not files: not compared
        if os.path.isfile(unit.recording.source):
            by_file.setdefault(unit.recording.source, []).append(unit)
    problems = []
    for source, group in by_file.items():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                hit = [(ca.label, cb.label) for ca, sa in zip(a.cuts, _spans(a))
                       for cb, sb in zip(b.cuts, _spans(b))
                       if sa[0] < sb[1] and sb[0] < sa[1]]
                if not hit:
                    continue
                la, lb = hit[0]
                if la != lb:
                    problems.append(Problem(
                        f"{a.where}, {b.where}", "label_conflict",
                        f"{source}: the same samples are labelled {la!r} and {lb!r}; keep one "
                        "row per stretch of a recording (or give the rows disjoint start_s / "
                        "stop_s)"))
                else:
                    problems.append(Problem(
                        f"{a.where}, {b.where}", "duplicate_row",
                        f"{source}: both rows give the same samples (label {la!r}), which "
                        "would count those windows twice; remove the duplicate row"))
    return problems


def rows_text(rows: list[str]) -> str:
    unique = list(dict.fromkeys(rows))
    return ", ".join(unique[:6]) + (f" (+{len(unique) - 6} more)" if len(unique) > 6 else "")


def class_names_of(
    units: Sequence[Unit], class_names: Sequence[str] | None, problems: list[Problem]
) -> tuple[str, ...]:
    """The class order (given, or sorted labels); labels outside ``class_names`` add problems."""
    labels = {c.label for u in units for c in u.cuts} | {u.label for u in units if u.label}
    if class_names is None:
        return tuple(sorted(labels))
    for unit in units:
        for label in {c.label for c in unit.cuts} - set(class_names):
            problems.append(Problem(unit.where, "unknown_label",
                                    f"label {label!r} is not in class_names {list(class_names)}"))
    return tuple(class_names)


def row_order(problem: Problem) -> tuple[str, int]:
    """Sort key: file name, then line number (``"labels.csv line 12"`` after line 9)."""
    head, _, line = problem.where.partition(" line ")
    number = line.split(",")[0].split(" ")[0]
    return head, int(number) if number.isdigit() else 0


def raise_errors(name: str, problems: Sequence[Problem]) -> None:
    """Raise one :class:`NeuriptError` listing every error problem (warnings pass)."""
    errors = sorted((p for p in problems if p.severity == "error"), key=row_order)
    if errors:
        body = "\n  ".join(str(p) for p in errors)
        raise NeuriptError(f"task {name!r}: {len(errors)} problem(s):\n  {body}")


# --------------------------------------------------------------------------------------------
# one channel set for the task
# --------------------------------------------------------------------------------------------
class ChannelInfo(NamedTuple):
    """Channels of one recording.

    Attributes
    ----------
    available : tuple of str
        Channels under the recording's own target (its row's montage, or all recognised).
    monopolar : tuple of str
        Every recognised channel (canonical names, or custom names with a position).
    aliases : dict of str to str
        Raw name → canonical name.
    dropped : dict of str to str
        Raw name → why it is not used.
    unknown : tuple of str
        Raw names with no known name and no given position.
    tcp : bool
        Whether the 20 TCP pairs can be derived.
    """

    available: tuple[str, ...]
    monopolar: tuple[str, ...]
    aliases: dict[str, str]
    dropped: dict[str, str]
    unknown: tuple[str, ...]
    tcp: bool


class MontagePlan(NamedTuple):
    """The task's channel set.

    Attributes
    ----------
    target : str | tuple of str
        ``"tcp"`` or the common channel names (for ``build_channel_map``).
    problems : list of Problem
    infos : list of ChannelInfo | None
        Per unit (None where its channels could not be mapped).
    text : str
        One sentence for the protocol.
    """

    target: str | tuple[str, ...]
    problems: list[Problem]
    infos: list[ChannelInfo | None]
    text: str


def _try_map(rec: Recording, target: Any, on_unknown: str) -> Any:
    return build_channel_map(rec.ch_names, target, source=rec.source, on_unknown=on_unknown,
                             extra_positions=rec.positions)


def channel_info(rec: Recording, target: Any = None) -> ChannelInfo:
    """Map one recording (unknown names are listed, not raised).

    Raises
    ------
    ChannelError
        When an explicit ``target`` needs channels the recording lacks.
    """
    mono = _try_map(rec, "monopolar", "drop")
    own = mono if target in (None, "monopolar", "as_is") else _try_map(rec, target, "drop")
    try:
        tcp = bool(_try_map(rec, "tcp", "drop").names)
    except ChannelError:
        tcp = False
    unknown = tuple(n for n in rec.ch_names if resolve_name(n, rec.positions or {}) is None)
    return ChannelInfo(own.names, mono.names, dict(mono.aliases), dict(mono.dropped), unknown,
                       tcp)


def _unknown_problem(unit: Unit, info: ChannelInfo, used: bool, on_unknown: str) -> Problem:
    """An error (the channels would matter and ``on_unknown="raise"``) or a warning."""
    if used and on_unknown == "raise":
        close = "; ".join(f"{name!r}: {close_matches(name)}" for name in info.unknown[:5])
        return Problem(unit.where, "unknown_channel",
                       f"{unit.recording.source}: unknown channel(s) {list(info.unknown)} "
                       f"({close}); {POSITION_HINT}")
    return Problem(unit.where, "unknown_channel",
                   f"channel(s) {list(info.unknown)} have no known name or position and are "
                   "not used", "warning")


def common_montage(
    units: Sequence[Unit], montage: str | Sequence[str] = "auto", *, on_unknown: str = "raise"
) -> MontagePlan:
    """Choose the one channel set every unit is mapped to.

    ``"auto"``: the 20 TCP pairs when every recording has their electrodes, else the channels
    all recordings share (a warning lists what each loses). ``"tcp"`` or a list: exactly those
    (a recording lacking one is an error). ``"monopolar"``: the shared channels.
    ``"as_is"``: every recording must have the same channels. ``"per_recording"``: no shared
    set; each recording keeps its recognised channels (or its row's own ``channels``), and the
    task holds their union with a per-window mask (:attr:`TaskWindows.present`). Per-unit
    targets (a manifest's
    ``channels``/``montage`` column) restrict the shared set. Unknown channel names are an
    error (``on_unknown="raise"``) only where the shared set is built from them; with TCP or
    an explicit list they are simply not used (a warning).
    """
    if isinstance(montage, str) and montage == "per_recording":
        return _per_recording(units, on_unknown)
    explicit = None if isinstance(montage, str) else tuple(montage)
    global_target: Any = explicit if explicit is not None else (
        None if montage == "auto" else montage)
    problems: list[Problem] = []
    infos: list[ChannelInfo | None] = []
    cache: dict[tuple[int, Any], ChannelInfo] = {}
    for unit in units:
        target = unit.target if unit.target is not None else global_target
        key = (id(unit.recording), target)
        try:
            if key not in cache:
                cache[key] = channel_info(unit.recording, target)
            infos.append(cache[key])
        except ChannelError as err:
            problems.append(Problem(unit.where, "missing_channel", str(err)))
            infos.append(None)
    ok = [(u, i) for u, i in zip(units, infos) if i is not None]
    if not ok:
        return MontagePlan("tcp", problems, infos, "")
    targets = {u.target if u.target is not None else global_target for u, _ in ok}
    if targets == {"tcp"} or (targets == {None} and all(i.tcp for _, i in ok)):
        target, text = "tcp", "Montage: the 20 TCP bipolar channels."
    elif explicit is not None and targets == {explicit}:
        target, text = explicit, f"Montage: {', '.join(explicit)}."
    else:
        target, text = _shared(ok, montage, global_target, problems)
    shared = target != "tcp" and target != explicit
    for unit, info in ok:
        if info.unknown:
            own = unit.target if unit.target is not None else global_target
            used = shared and own in (None, "monopolar", "as_is")
            problems.append(_unknown_problem(unit, info, used, on_unknown))
    return MontagePlan(target, problems, infos, text)


def _per_recording(units: Sequence[Unit], on_unknown: str) -> MontagePlan:
    """Every unit mapped to its own channels; unknown names are errors under ``"raise"``."""
    problems: list[Problem] = []
    infos: list[ChannelInfo | None] = []
    cache: dict[tuple[int, Any], ChannelInfo] = {}
    for unit in units:
        key = (id(unit.recording), unit.target)
        try:
            if key not in cache:
                cache[key] = channel_info(unit.recording, unit.target)
        except ChannelError as err:
            problems.append(Problem(unit.where, "missing_channel", str(err)))
            infos.append(None)
            continue
        info = cache[key]
        infos.append(info)
        if info.unknown:
            used = unit.target in (None, "monopolar", "as_is")
            problems.append(_unknown_problem(unit, info, used, on_unknown))
        if not info.available:
            problems.append(Problem(unit.where, "no_channels",
                                    f"{unit.recording.source}: no channel has a known name or a "
                                    f"position; {POSITION_HINT}"))
    sets = {i.available for i in infos if i is not None and i.available}
    union = {n for channels in sets for n in channels}
    text = (f"Montage: each recording keeps its own channels ({len(sets)} channel set(s), "
            f"{len(union)} channels in all); windows are batched by channel set and pooled by "
            "the lobes their positions fall in.")
    return MontagePlan("per_recording", problems, infos, text)


def _shared(
    ok: list[tuple[Unit, ChannelInfo]], montage: Any, global_target: Any, problems: list[Problem]
) -> tuple[tuple[str, ...], str]:
    """The channels every unit has (or can derive), with warnings for what each loses."""
    fixed = [i for u, i in ok if (u.target or global_target) not in (None, "monopolar", "as_is")]
    candidates = (fixed[0] if fixed else ok[0][1]).available
    common = tuple(n for n in candidates if all(_producible(n, u, i, global_target) for u, i in ok))
    if montage == "as_is" and any(set(i.available) != set(common) for _, i in ok):
        problems.append(Problem(rows_text([u.where for u, _ in ok]), "montage_mismatch",
                                "montage 'as_is' needs identical channels in every recording; "
                                "use montage='auto' (--set task_options.montage=auto) to keep "
                                "the shared ones"))
    if not common:
        problems.append(Problem("task", "no_common_channels",
                                "the recordings share no channel; let each keep its own "
                                "(montage='per_recording': --set "
                                "task_options.montage=per_recording), or give channels per row"))
        return common, ""
    for unit, info in ok:
        lost = [n for n in info.available if n not in common]
        if lost:
            problems.append(Problem(unit.where, "channels_dropped",
                                    f"channels {lost} are not in every recording and are "
                                    "dropped", "warning"))
    return common, (f"Montage: {len(common)} channels shared by every recording "
                    f"({', '.join(common)}).")


def _producible(name: str, unit: Unit, info: ChannelInfo, global_target: Any) -> bool:
    target = unit.target if unit.target is not None else global_target
    if target not in (None, "monopolar", "as_is"):
        return name in info.available
    parts = split_pair(name)
    return name in info.monopolar or (len(parts) == 2 and all(p in info.monopolar for p in parts))
