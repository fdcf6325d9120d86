"""MentalArithmetic: rest vs. serial subtraction on PhysioNet EEGMAT (the paper's first benchmark).

Source
    Zyma I. et al. (2019), "Electroencephalograms during Mental Arithmetic Task Performance",
    *Data* 4(1):14, doi:10.3390/data4010014; Goldberger A. et al. (2000), PhysioNet.
    Licence: Open Data Commons Attribution License v1.0.

Layout
    ``<data_dir>/SubjectNN_1.edf`` (resting baseline, ~182 s) and ``SubjectNN_2.edf`` (serial
    subtraction, 62 s) for NN = 00..35; 19 scalp channels ``EEG Fp1 …`` plus ``EEG A2-A1`` and
    ``ECG ECG``. The bundled copy is stored at 250 Hz (the official files are 500 Hz; both load).

Protocol (NeurIPT, Fang et al. 2025, Table 1)
    20 TCP bipolar channels (:data:`neuript.data.montage.TCP_PAIRS`), band-pass 0.1–30 Hz,
    notch 50 Hz, resampled to 64 Hz, 5-s non-overlapping windows (320 samples) from the start
    of each file, no edge trimming; the A-law is recorded in the preprocessing contract and
    applied by the loader. Label: ``_1`` files = ``rest`` (0), ``_2`` files = ``task`` (1).
    Split by subject with the paper's 1-based numbering: subjects 1–28 (Subject00–Subject27)
    train, 29–32 (Subject28–31) validation, 33–36 (Subject32–35) test.

Rejection
    None. The paper reports 1,707 windows; whole-file 5-s windows without rejection give
    exactly 1,707, while rejecting windows with any |x| > 100 µV leaves 1,677 (30 fewer, see
    ``docs/tasks.md``), so the 100-µV rule of pretraining is not applied downstream.

Counts (default protocol)

    =====  ====  ====  =====
    split  rest  task  total
    =====  ====  ====  =====
    train  1007   336   1343
    val     124    48    172
    test    144    48    192
    total  1275   432   1707
    =====  ====  ====  =====

    Subject04_1 is 170 s (34 windows), Subject10_1 188 s (37), Subject31_1 80 s (16); every
    other rest file gives 36 windows and every task file 12.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.splits import split_by_ids
from neuript.data.tasks._common import (
    Part,
    assemble,
    map_files,
    rejected_total,
    require_files,
    window_file,
)
from neuript.data.tasks.base import TaskSpec, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

NAME = "mental_arithmetic"
CLASS_NAMES: tuple[str, ...] = ("rest", "task")
N_SUBJECTS = 36
SPLIT_IDS: dict[str, tuple[str, ...]] = {
    "train": tuple(f"Subject{i:02d}" for i in range(0, 28)),
    "val": tuple(f"Subject{i:02d}" for i in range(28, 32)),
    "test": tuple(f"Subject{i:02d}" for i in range(32, 36)),
}
"""The paper's subject split (1-based subjects 1–28 / 29–32 / 33–36)."""

PREPROCESS = PreprocessConfig(
    montage="tcp", window_s=5.0, notch_hz=50.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""The task's protocol: 20 TCP channels, 5-s windows, no edge trimming, no rejection."""

PROTOCOL = (
    "EEGMAT rest (_1 files, class 0) vs. serial subtraction (_2 files, class 1); 20 TCP bipolar "
    "channels, 0.1-30 Hz, notch 50 Hz, 64 Hz, 5-s non-overlapping windows, no edge trimming, "
    "no amplitude rejection (1,707 windows as in the paper); split by subject: Subject00-27 "
    "train, Subject28-31 val, Subject32-35 test (the paper's subjects 1-28 / 29-32 / 33-36)."
)

_FILE_RE = re.compile(r"^(Subject\d{2})_([12])\.edf$", re.IGNORECASE)


def parse_name(path: Path) -> tuple[str, int]:
    """Subject and label of an EEGMAT file: ``Subject07_2.edf`` → (``"Subject07"``, 1)."""
    match = _FILE_RE.match(path.name)
    if match is None:
        raise NeuriptError(f"{path}: not an EEGMAT file name (expected SubjectNN_1.edf or _2.edf)")
    return match.group(1)[0].upper() + match.group(1)[1:], int(match.group(2)) - 1


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    montage: str | None = None,
    workers: int = 2,
) -> TaskWindows:
    """Build the MentalArithmetic task from an EEGMAT folder.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``Subject00_1.edf`` … ``Subject35_2.edf``.
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS` (the paper's protocol).
    montage : {"tcp", "monopolar", "as_is"} | None
        Override ``preprocess.montage``.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 20, 320) float32 µV with the paper's subject split.
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if montage is not None:
        cfg = replace(cfg, montage=montage)
    files = require_files(data_dir, "Subject*_[12].edf",
                          expected="SubjectNN_1.edf and SubjectNN_2.edf (EEGMAT)")
    files = [f for f in files if _FILE_RE.match(f.name)]
    if len(files) != 2 * N_SUBJECTS:
        log.warning("%s: %d EEGMAT files found, the full set has %d", data_dir, len(files),
                    2 * N_SUBJECTS)

    def one(path: Path) -> Part:
        subject, label = parse_name(path)
        return window_file(path, cfg, label, subject=subject)

    parts = map_files(one, files, workers)
    part_splits = split_by_ids(np.array([p.subject for p in parts], dtype=str), SPLIT_IDS)
    log.info("%s: rejected windows %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, list(part_splits), CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="EEGMAT rest vs. serial subtraction (PhysioNet), 36 subjects, 20 TCP x 5 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir="eegmat",
    build=build,
    preprocess=PREPROCESS,
)
