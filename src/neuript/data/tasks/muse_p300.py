"""MuseP300: visual oddball target vs. non-target on a 4-channel consumer headband.

Source
    NeuroTechX eeg-notebooks v0.1 (commit 5ee39e4), visual P300 recordings with a Muse 2016
    headband. Licence: BSD-3-Clause (``muse/LICENSE`` in the data root).

Layout
    ``<data_dir>/subjectN/sessionM/data_<date>.csv.gz`` for N = 1..5 (the bundled root is
    ``muse/visual/P300``); columns ``timestamps, TP9, AF7, AF8, TP10, Right AUX, Marker``
    (some files name the last ``Marker0``), 256 Hz, µV. Marker 1 = non-target flash,
    2 = target flash, 0 = no event. 45 files of ~120 s (subject 4: one 60-s file).

Protocol (ours, after the NeurIPT paper's PhysioNet-P300 windows)
    The 4 monopolar channels TP9 AF7 AF8 TP10, band-pass 0.1–30 Hz, notch 60 Hz (irrelevant
    after the 30-Hz low-pass), 64 Hz; one 2-s window (128 samples) per flash starting 0.7 s
    before it (``offset_s=-0.7``); flashes whose window does not fit inside the recording are
    dropped (49 of 8,654: the first flash of some files comes < 0.7 s after the start, the
    last < 1.3 s before the end). No baseline
    correction (the 0.1-Hz high-pass removes drift). Label: target = 1, non-target = 0.
    Split by subject: subjects 1–3 train, 4 val, 5 test (``split`` option to change it).

Rejection
    None by default. The Muse saturates at about ±1000 µV when an electrode lifts (10 of the
    45 files reach it) and subject 5, the test subject, is noisy: a 100-µV rule keeps 6,918 of
    the 8,605 epochs but only 277 of subject 5's 978 (counts in ``docs/tasks.md``). Pass a
    ``PreprocessConfig`` with ``reject_abs_uv`` to apply one (epochs overlapping clipped
    samples are then dropped too).

Counts (default protocol): 8,654 flashes, 49 of them too close to a file edge

    =====  ==========  ======  =====  ========
    split  non-target  target  total  subjects
    =====  ==========  ======  =====  ========
    train        6348    1188   7536         3
    val            81      10     91         1
    test          811     167    978         1
    total        7240    1365   8605         5
    =====  ==========  ======  =====  ========
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

from neuript.config import PreprocessConfig
from neuript.data.tasks._common import (
    Part,
    assemble,
    epoch_file,
    map_files,
    rejected_total,
    require_files,
)
from neuript.data.tasks.base import SPLITS, TaskSpec, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

NAME = "muse_p300"
CLASS_NAMES: tuple[str, ...] = ("non-target", "target")
EVENT_LABELS: dict[str, int] = {"1": 0, "2": 1}
"""Marker value (as text) → class index."""
OFFSET_S = -0.7
"""Window start relative to the flash (s)."""
SPLIT_SUBJECTS: dict[str, tuple[str, ...]] = {
    "train": ("subject1", "subject2", "subject3"),
    "val": ("subject4",),
    "test": ("subject5",),
}

PREPROCESS = PreprocessConfig(
    montage="monopolar", window_s=2.0, notch_hz=60.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""The task's protocol: the 4 Muse channels, 2-s event-locked windows, no rejection."""

PROTOCOL = (
    "Muse visual P300 oddball, target (marker 2, class 1) vs. non-target (marker 1, class 0); "
    "4 monopolar channels TP9 AF7 AF8 TP10, 0.1-30 Hz, 64 Hz, one 2-s window per flash from "
    "0.7 s before it (windows that do not fit are dropped), no amplitude rejection; split by "
    "subject: subjects 1-3 train, 4 val, 5 test."
)

_SUBJECT_RE = re.compile(r"^subject\d+$", re.IGNORECASE)


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    offset_s: float = OFFSET_S,
    split: dict[str, tuple[str, ...]] | None = None,
    workers: int = 2,
) -> TaskWindows:
    """Build the Muse P300 task.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``subjectN/sessionM/*.csv.gz`` (bundled: ``muse/visual/P300``).
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS` (``window_s`` sets the epoch length).
    offset_s : float
        Window start relative to each flash (s).
    split : dict of split name to subject folder names | None
        None: :data:`SPLIT_SUBJECTS`.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 4, 128) float32 µV.
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if cfg.montage == "tcp":
        log.warning("the Muse has no TCP electrodes; using its monopolar channels")
        cfg = replace(cfg, montage="monopolar")
    files = require_files(data_dir, "subject*/session*/*.csv*",
                          expected="subjectN/sessionM/data_<date>.csv.gz Muse recordings")
    files = [f for f in files if _SUBJECT_RE.match(f.parent.parent.name)]
    ids = SPLIT_SUBJECTS if split is None else split
    split_of = {s: sp for sp, members in ids.items() for s in members}
    if set(split_of.values()) - set(SPLITS):
        raise NeuriptError(f"split keys must be among {SPLITS}, got {sorted(ids)}")
    unknown = sorted({f.parent.parent.name for f in files} - set(split_of))
    if unknown:
        raise NeuriptError(f"{data_dir}: subjects {unknown} have no split in {dict(ids)}")

    def one(path: Path) -> Part:
        return epoch_file(path, cfg, EVENT_LABELS, subject=path.parent.parent.name,
                          offset_s=offset_s)

    parts = map_files(one, files, workers)
    log.info("%s: dropped or rejected epochs %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="Muse visual P300 oddball (eeg-notebooks), 5 subjects, 4 channels x 2 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir="muse/visual/P300",
    build=build,
    preprocess=PREPROCESS,
)
