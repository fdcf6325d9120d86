"""Checks of a task's windows that the builders, ``finetune`` and ``inspect`` share.

Each check returns :class:`~neuript.data.tasks._byod.Problem` s instead of raising, so
:func:`~neuript.data.tasks.arrays.build_from_units` and
:func:`~neuript.train.finetune.resolve_task` raise them
(:func:`~neuript.data.tasks._byod.raise_errors`) while
``neuript inspect`` lists the very same problems, counted on its estimated windows:

- :func:`split_class_problems`: windows per split and class (every split holds windows, the
  training split every class; fine-tuning needs two classes);
- :func:`amplitude_problem`: windows whose peak no EEG in µV reaches (a unit mistake);
- :func:`warning_lines` / :func:`log_warnings`: one line per kind of warning, with its count and
  first rows, not one line per trial;
- :func:`task_preprocess`: the ``preprocess`` task option, nested or dotted
  (``task_options.preprocess.h_freq_hz=20``), over the task's own recipe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neuript.config import PreprocessConfig, override
from neuript.data.splits import SPLITS
from neuript.data.tasks._byod import Problem, Unit, row_order, rows_text
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

__all__ = ["ABSURD_UV", "amplitude_problem", "log_warnings", "split_class_problems",
           "task_preprocess", "warning_lines"]

ABSURD_UV = 10_000.0
"""Window peak (µV) above which the data cannot be EEG in µV: the unit is wrong (V or mV data
read as µV, or a header declaring the wrong unit). Scalp EEG stays below a few hundred µV."""
EXPORT_SUFFIXES: tuple[str, ...] = (".npy", ".txt", ".tsv", ".mat", ".csv")
"""Numeric exports, whose unit is the ``unit`` reader option (:mod:`neuript.data.exports`)."""
ROWS_SHOWN = 3
"""Rows named in an aggregated warning line before ``(+n more)``."""


def split_class_problems(
    where: str, counts: Mapping[str, Mapping[str, int]], *, training: bool = False
) -> list[Problem]:
    """What the windows per split and class allow.

    Parameters
    ----------
    where : str
        Named in every problem (the manifest's file name, the BIDS folder or the task).
    counts : mapping of split to mapping of class to int
        Windows per split and class, every class of the task included (zeros too), as
        :meth:`TaskWindows.counts` gives them (or ``inspect`` estimates them).
    training : bool
        Fine-tuning (``finetune``, ``inspect``): a task with one class is an error; a built
        task may have one (a warning).

    Returns
    -------
    problems : list of Problem
        ``one_class``, ``empty_split`` and ``split_missing_class`` (an error for the training
        split, a warning for validation and test).
    """
    problems = []
    classes = list(next(iter(counts.values()), {}))
    filled = [c for c in classes if any(per.get(c, 0) for per in counts.values())]
    if len(filled) < 2:
        problems.append(Problem(where, "one_class", f"one class only ({filled or classes}); "
                                "fine-tuning needs two or more (add rows of another label)",
                                "error" if training else "warning"))
    for split in SPLITS:
        per = counts.get(split, {})
        missing = [c for c in classes if per.get(c, 0) == 0]
        if sum(per.values()) == 0:
            problems.append(Problem(where, "empty_split", f"split {split!r} holds no window; "
                                    "give it subjects (more subjects, other val_fraction / "
                                    "test_fraction task options, or rows whose split column "
                                    f"says {split})"))
        elif missing:
            problems.append(Problem(where, "split_missing_class",
                                    f"split {split!r} has no window of {missing}",
                                    "error" if split == "train" else "warning"))
    return problems


def unit_hint(source: str) -> str:
    """Where the unit of ``source`` is set: an export's reader option, the array's, the file's."""
    if source.startswith("<"):
        return "pass the array's unit: Recording.from_array(data, sfreq, ch_names, unit='V')"
    if Path(source).suffix.lower() in EXPORT_SUFFIXES:
        return ("set the export's unit with the 'unit' reader option: a manifest's "
                "reader_options cell {\"unit\": \"V\"} (or \"mV\"), or neuript inspect FILE "
                "--reader-option unit=V for one file")
    return "check the physical unit the file's header declares for each channel"


def amplitude_problem(units: Sequence[Unit], peaks_uv: Sequence[float]) -> Problem | None:
    """One warning naming the units whose windows peak above :data:`ABSURD_UV` (µV).

    Parameters
    ----------
    units : sequence of Unit
    peaks_uv : sequence of float
        Per unit: the largest |value| of its windows after preprocessing (µV; 0 without one).
    """
    high = [(unit, peak) for unit, peak in zip(units, peaks_uv) if peak > ABSURD_UV]
    if not high:
        return None
    worst, peak = max(high, key=lambda item: item[1])
    return Problem(rows_text([u.where for u, _ in high]), "absurd_amplitude",
                   f"{len(high)} recording(s) give windows above {ABSURD_UV:,.0f} µV peak (up to "
                   f"{peak:,.0f} µV in {worst.recording.source}), far beyond EEG: the unit is "
                   f"probably wrong; {unit_hint(worst.recording.source)}", "warning")


def warning_lines(problems: Sequence[Problem]) -> list[str]:
    """The warnings among ``problems`` as lines ``[kind] text``, one line per kind.

    A kind met more than :data:`ROWS_SHOWN` times becomes one line ``[kind] n times (row a,
    row b, row c (+n more)); first: <the first warning>``, so 600 trials with the same warning
    give one line; rarer kinds keep a line per warning.
    """
    groups: dict[str, list[Problem]] = {}
    for problem in sorted((p for p in problems if p.severity == "warning"), key=row_order):
        groups.setdefault(problem.kind, []).append(problem)
    lines = []
    for kind, group in groups.items():
        if len(group) <= ROWS_SHOWN:
            lines += [f"[{kind}] {problem}" for problem in group]
            continue
        rows = list(dict.fromkeys(p.where for p in group))
        shown = ", ".join(rows[:ROWS_SHOWN]) + (
            f" (+{len(rows) - ROWS_SHOWN} more)" if len(rows) > ROWS_SHOWN else "")
        lines.append(f"[{kind}] {len(group)} times ({shown}); first: {group[0]}")
    return lines


def log_warnings(name: str, problems: Sequence[Problem]) -> None:
    """Log :func:`warning_lines` of ``problems`` (errors are raised, not logged)."""
    for line in warning_lines(problems):
        log.warning("task %r: %s", name, line)


def task_preprocess(
    base: PreprocessConfig, options: Mapping[str, Any], where: str
) -> tuple[PreprocessConfig | None, dict[str, Any]]:
    """Split a task's ``preprocess`` out of its options, applied over ``base``.

    ``preprocess`` may be a :class:`PreprocessConfig`, a mapping of some of its fields (a YAML
    ``task_options: {preprocess: {h_freq_hz: 40}}``), or given field by field as dotted keys
    (``--set task_options.preprocess.h_freq_hz=20`` gives the key ``"preprocess.h_freq_hz"``).

    Returns
    -------
    preprocess : PreprocessConfig | None
        None when the options give none.
    rest : dict
        The other options.

    Raises
    ------
    NeuriptError
        Another dotted key, a preprocess of another type, or an unknown field.
    """
    rest: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    given: Any = None
    for key, value in options.items():
        head, dot, tail = key.partition(".")
        if key == "preprocess":
            given = value
        elif head == "preprocess" and dot:
            fields[tail] = value
        elif dot:
            raise NeuriptError(f"{where}: task option {key!r}: only preprocess takes dotted "
                               "fields (preprocess.h_freq_hz=20; task_options.preprocess."
                               "h_freq_hz=20 for finetune); the other task options are plain "
                               "names")
        else:
            rest[key] = value
    if given is None and not fields:
        return None, rest
    if isinstance(given, Mapping):
        fields = {**dict(given), **fields}
    elif given is not None and not isinstance(given, PreprocessConfig):
        raise NeuriptError(f"{where}: task option preprocess must be a mapping of "
                           f"PreprocessConfig fields, got {type(given).__name__}")
    start = given if isinstance(given, PreprocessConfig) else base
    try:
        return (override(start, fields) if fields else start), rest
    except NeuriptError as err:
        raise NeuriptError(f"{where}: task option preprocess: {err}") from None
