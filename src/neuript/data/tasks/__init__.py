"""Labelled downstream tasks: a registry of :class:`TaskSpec` and the functions that build them.

``TASKS`` maps a task name to its :class:`~neuript.data.tasks.base.TaskSpec`. Adding a task is
one import and one entry in the tuple below: write ``neuript/data/tasks/<name>.py`` with a
module-level ``SPEC = TaskSpec(...)`` whose ``build(data_dir, preprocess, **options)`` returns
:class:`~neuript.data.tasks.base.TaskWindows`; tasks whose data is not bundled set
``default_dir=None`` and are built with an explicit ``data_dir``.

Examples
--------
>>> from neuript.data.tasks import build_task, describe_task
>>> task = build_task("mental_arithmetic")          # doctest: +SKIP
>>> print(describe_task(task))                       # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from neuript.config import PreprocessConfig
from neuript.data.tasks import (
    adhd,
    bcic2a,
    eegmmidb,
    mental_arithmetic,
    mumtaz,
    muse_p300,
    physionet_p300,
    seed_v,
    sleep_edfx,
    tuab,
    tuev,
)
from neuript.data.tasks._common import cache_key, load_cached, save_cached
from neuript.data.tasks.base import SPLITS, TaskSpec, TaskWindows
from neuript.errors import NeuriptError
from neuript.paths import data_root as default_data_root

log = logging.getLogger(__name__)

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        mental_arithmetic.SPEC,
        adhd.SPEC,
        muse_p300.SPEC,
        eegmmidb.SPEC,
        mumtaz.SPEC,
        physionet_p300.SPEC,
        sleep_edfx.SPEC,
        seed_v.SPEC,
        bcic2a.SPEC,
        tuab.SPEC,
        tuev.SPEC,
    )
}
"""Every known task, by name (read-only; built from the literal tuple above)."""

__all__ = ["TASKS", "TaskSpec", "TaskWindows", "build_task", "describe_task", "get_task",
           "task_data_dir"]


def get_task(name: str) -> TaskSpec:
    """Return the registry entry of ``name``; an unknown name raises, listing the known ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise NeuriptError(
            f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}"
        ) from None


def task_data_dir(
    spec: TaskSpec, data_dir: str | os.PathLike | None, data_root: str | os.PathLike | None
) -> Path:
    """The folder a task reads: ``data_dir`` if given, else ``data_root / spec.default_dir``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if spec.default_dir is None:
        raise NeuriptError(
            f"task {spec.name!r} has no bundled data: pass data_dir= (--data-dir), the folder "
            f"holding the official distribution; {spec.summary}"
        )
    return default_data_root(data_root) / spec.default_dir


def _check_options(spec: TaskSpec, options: dict[str, Any]) -> None:
    params = inspect.signature(spec.build).parameters
    accepted = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise NeuriptError(
            f"task {spec.name!r}: unknown option(s) {unknown}; accepted: {accepted or 'none'}"
        )


def build_task(
    name: str,
    data_dir: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    preprocess: PreprocessConfig | Mapping[str, Any] | None = None,
    cache: bool = True,
    **options: Any,
) -> TaskWindows:
    """Build (or load from the cache) the labelled windows of one task.

    Parameters
    ----------
    name : str
        Registry key (see :data:`TASKS`).
    data_dir : path-like | None
        The task's folder; None: ``data_root / spec.default_dir``.
    data_root : path-like | None
        Data root override (else ``$NEURIPT_DATA``, else ``../shared/data``).
    preprocess : PreprocessConfig | mapping | None
        Preprocessing and windowing; None: the task's protocol (``spec.preprocess``); a mapping
        changes some of its fields (``{"h_freq_hz": 40}``, also given as the option
        ``"preprocess.h_freq_hz"``, as ``--set task_options.preprocess.h_freq_hz=20`` does).
    cache : bool
        Read and write ``$NEURIPT_CACHE`` (default ``~/.cache/neuript``)``/tasks``. The key
        hashes the task, its version, the options, the preprocessing and every file's path, size
        and modification time under ``data_dir``, so any change rebuilds.
    **options
        Task-specific keyword options (see each task module), e.g. ``montage="monopolar"``.

    Returns
    -------
    task : TaskWindows
        Windows (N, C, T) float32 µV with labels, subjects, splits, sources and starts.
    """
    from neuript.data.tasks._checks import task_preprocess

    spec = get_task(name)
    given = options if preprocess is None else {**options, "preprocess": preprocess}
    chosen, options = task_preprocess(spec.preprocess, given, f"task {name!r}")
    _check_options(spec, options)
    folder = task_data_dir(spec, data_dir, data_root)
    cfg = spec.preprocess if chosen is None else chosen
    if not folder.is_dir():
        raise NeuriptError(
            f"{folder}: data folder of task {name!r} not found; expected the data of "
            f"{spec.summary} (pass data_dir= or data_root=: --data-dir or --data-root)"
        )
    key = cache_key(name, spec.version, options, cfg, folder) if cache else ""
    if cache and (hit := load_cached(name, key)) is not None:
        log.info("task %s loaded from cache (%d windows)", name, len(hit.labels))
        return hit
    tic = time.perf_counter()
    task = spec.build(folder, cfg, **options)
    log.info("built task %s: %d windows in %.1f s", name, len(task.labels),
             time.perf_counter() - tic)
    if cache:
        try:
            save_cached(task, key)
        except OSError as err:
            log.warning("could not cache task %s (%s); continuing without the cache", name, err)
    return task


def describe_task(task: TaskWindows) -> str:
    """A plain-text table of windows per split and class, with totals and the montage.

    Parameters
    ----------
    task : TaskWindows
        A built task.

    Returns
    -------
    table : str
        Rows ``train``/``val``/``test``/``total``; one column per class, then subjects and total.
    """
    counts = task.counts()
    classes = list(task.class_names)
    header = ["split", *classes, "subjects", "total"]
    rows = []
    for split in SPLITS:
        idx = task.indices(split)
        per_class = [counts[split][c] for c in classes]
        rows.append([split, *map(str, per_class), str(len(set(task.subjects[idx].tolist()))),
                     str(len(idx))])
    totals = [sum(counts[s][c] for s in SPLITS) for c in classes]
    rows.append(["total", *map(str, totals), str(len(set(task.subjects.tolist()))),
                 str(len(task.labels))])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(cell.rjust(w) if i else cell.ljust(w)
                         for i, (cell, w) in enumerate(zip(row, widths)))

    n, c, t = task.signals.shape
    lines = [
        f"task {task.name}: {n} windows of {c} channels x {t} samples "
        f"({t / task.preprocess.sfreq_hz:g} s at {task.preprocess.sfreq_hz:g} Hz)",
        f"channels: {', '.join(task.ch_names)}",
        fmt(header),
        fmt(["-" * w for w in widths]),
        *(fmt(r) for r in rows),
    ]
    return "\n".join(lines)
