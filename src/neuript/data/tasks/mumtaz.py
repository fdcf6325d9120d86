"""Mumtaz2016: major depressive disorder (MDD) vs. healthy controls, resting EEG.

Source
    Mumtaz W. et al. (2017), "A wavelet-based technique to predict treatment outcome for Major
    Depressive Disorder", PLoS ONE 12(2):e0171409; data: Mumtaz W. (2016), "MDD Patients and
    Healthy Controls EEG Data (New)", figshare, doi:10.6084/m9.figshare.4244171.v2.
    Licence: CC BY 4.0 (figshare). Users download their own copy.

Layout
    ``<data_dir>/`` holding one EDF per subject and condition, named ``MDD S1 EC.edf``,
    ``H S1 EO.edf``, ``MDD S12 TASK.edf`` … (a prefix such as ``6921143_`` before the group is
    tolerated; files may sit in sub-folders). 19 scalp channels ``EEG Fp1-LE`` … (linked-ear
    reference), ``EEG A2-A1`` and sometimes ``EEG 23A-23R``/``EEG 24A-24R``, 256 Hz.

Protocol (NeurIPT, Fang et al. 2025)
    Eyes-open (EO) and eyes-closed (EC) files only (TASK files are skipped); 20 TCP bipolar
    channels, 0.1-30 Hz, notch 50 Hz (Malaysia), 64 Hz, 5-s non-overlapping windows from the
    start of each file, no edge trimming and no amplitude rejection (as for MentalArithmetic).
    Labels: healthy (``H``) = 0, MDD = 1.

Split (ours; the paper gives the counts only)
    By subject, per class: 5 MDD + 4 healthy subjects validate, 5 MDD + 5 healthy test, the rest
    train (24 MDD + 19 healthy on the 34 MDD / 28 healthy subjects with EO or EC files). Within
    each class the sorted subject ids are shuffled by ``numpy.random.default_rng(seed)`` with
    ``seed=0`` (:func:`neuript.data.tasks._paper.count_split`). Options: ``seed``,
    ``val_counts=(n_mdd, n_healthy)``, ``test_counts=(n_mdd, n_healthy)``, ``conditions``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

from neuript.config import PreprocessConfig
from neuript.data.splits import count_split
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

NAME = "mumtaz"
CLASS_NAMES: tuple[str, ...] = ("healthy", "mdd")
GROUP_LABELS: dict[str, int] = {"H": 0, "MDD": 1}
CONDITIONS: tuple[str, ...] = ("EO", "EC", "TASK")

PREPROCESS = PreprocessConfig(
    montage="tcp", window_s=5.0, notch_hz=50.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""20 TCP channels, 5-s windows, no trimming, no rejection."""

PROTOCOL = (
    "Mumtaz2016 MDD (1) vs. healthy (0), eyes-open and eyes-closed files (TASK skipped); 20 TCP "
    "bipolar channels, 0.1-30 Hz, notch 50 Hz, 64 Hz, 5-s non-overlapping windows, no "
    "rejection; split by subject per class with numpy default_rng(seed=0): val 5 MDD + 4 H, "
    "test 5 MDD + 5 H, the rest train (24 MDD + 19 H on the full set)."
)

_FILE_RE = re.compile(r"(?:^|_)(MDD|H)\s*S(\d+)\s*(EO|EC|TASK)\.edf$", re.IGNORECASE)


def parse_name(path: Path) -> tuple[str, int, str] | None:
    """Subject, label and condition of a Mumtaz file; None if the name does not fit.

    ``"MDD S3 EC.edf"`` → (``"MDD S3"``, 1, ``"EC"``); ``"6921143_H S15 EO.edf"`` →
    (``"H S15"``, 0, ``"EO"``).
    """
    match = _FILE_RE.search(path.name)
    if match is None:
        return None
    group = match.group(1).upper()
    return f"{group} S{int(match.group(2))}", GROUP_LABELS[group], match.group(3).upper()


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    conditions: tuple[str, ...] = ("EO", "EC"),
    seed: int = 0,
    val_counts: tuple[int, int] = (5, 4),
    test_counts: tuple[int, int] = (5, 5),
    montage: str | None = None,
    workers: int = 2,
) -> TaskWindows:
    """Build the Mumtaz2016 task from the official EDF folder.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``MDD S1 EC.edf``, ``H S1 EO.edf`` … (searched recursively).
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`.
    conditions : tuple of {"EO", "EC", "TASK"}
        Conditions kept (the paper: EO and EC).
    seed : int
        Seed of the subject split.
    val_counts, test_counts : tuple of int
        (MDD, healthy) subjects in validation / test.
    montage : {"tcp", "monopolar", "as_is"} | None
        Override ``preprocess.montage``.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 20, 320) float32 µV; subjects ``"MDD S1"``, ``"H S1"`` ….
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if montage is not None:
        cfg = replace(cfg, montage=montage)
    wanted = {c.upper() for c in conditions}
    if not wanted or not wanted <= set(CONDITIONS):
        raise NeuriptError(f"mumtaz conditions must be a non-empty subset of {CONDITIONS}, "
                           f"got {conditions!r}")
    expected = "Mumtaz2016 EDFs named like 'MDD S1 EC.edf' / 'H S1 EO.edf'"
    files = require_files(data_dir, "**/*.edf", expected=expected)
    jobs = []
    for path in files:
        parsed = parse_name(path)
        if parsed is None:
            log.info("%s: not a Mumtaz2016 file name, ignored", path)
        elif parsed[2] in wanted:
            jobs.append((path, parsed[0], parsed[1]))
    if not jobs:
        raise NeuriptError(f"{data_dir}: no {'/'.join(sorted(wanted))} file found; expected "
                           f"{expected}")

    def one(job: tuple[Path, str, int]) -> Part:
        return window_file(job[0], cfg, job[2], subject=job[1])

    parts = map_files(one, jobs, workers)
    subject_class = {subject: label for _, subject, label in jobs}
    split_of = count_split(
        subject_class,
        n_val={1: val_counts[0], 0: val_counts[1]},
        n_test={1: test_counts[0], 0: test_counts[1]},
        seed=seed,
    )
    log.info("%s: rejected windows %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="Mumtaz2016 MDD vs. healthy, EO+EC resting EEG (figshare), 20 TCP x 5 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir=None,
    build=build,
    preprocess=PREPROCESS,
)
