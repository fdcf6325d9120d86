"""ADHD: children with ADHD vs. typically developing controls (patient-vs-control, by subject).

Source
    Nasrabadi A. M., Allahverdy A., Samavati M., Mohammadi M. R. (2020), "EEG data for ADHD /
    Control children", IEEE DataPort, doi:10.21227/rzfh-zn36. Open access (attribution).

Layout
    ``<data_dir>/adhd/vNNN.csv.gz`` and ``<data_dir>/control/vNNN.csv.gz``: one recording per
    child (7–12 years, visual counting task), 62–338 s, 128 Hz, ear reference, header ``0..18``,
    columns Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 Fz Cz Pz (read by
    :mod:`neuript.data.io`). The file stem is the subject id.

Protocol (ours; not a benchmark of the NeurIPT paper)
    Every TCP electrode is among the 19 recorded, so by default the windows use the paper's 20
    TCP bipolar channels (a model fine-tuned on MentalArithmetic's montage transfers);
    ``montage="monopolar"`` keeps the 19 referential channels instead. Band-pass 0.1–30 Hz,
    notch 50 Hz (recorded in Iran), 64 Hz, 4-s non-overlapping whole-file windows
    (``window_s`` option; 5 s also common), no edge trimming. Label: ``control`` = 0,
    ``adhd`` = 1. Split by subject, seeded and stratified by class
    (:func:`~neuript.data.tasks._common.stratified_subject_split`, seed 0, 70/15/15): within
    each class the sorted subject ids are shuffled with ``numpy.random.default_rng(seed)``;
    the first round(0.15·n) go to validation, the next round(0.15·n) to test.

Rejection
    None by default. The signals are large (per-channel std ≈ 120–220 in the file's units):
    after filtering, the 100-µV rule of pretraining (and even a 200-µV rule) rejects all 4,097
    windows; 53 of them also touch a clipped (railed) run of samples. Pass a
    ``PreprocessConfig`` with ``reject_abs_uv`` to apply a rule anyway (clipped windows are then
    dropped too).

Counts (default protocol, seed 0): 120 subjects (60 ADHD, 60 control)

    =====  =======  ====  =====  ========
    split  control  adhd  total  subjects
    =====  =======  ====  =====  ========
    train     1307  1664   2971        84
    val        270   315    585        18
    test       266   275    541        18
    total     1843  2254   4097       120
    =====  =======  ====  =====  ========

    Each class has 60 subjects: 42 train, 9 val, 9 test.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from neuript.config import PreprocessConfig
from neuript.data.splits import stratified_subject_split
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

NAME = "adhd"
CLASS_NAMES: tuple[str, ...] = ("control", "adhd")
GROUP_DIRS: tuple[str, ...] = ("control", "adhd")
"""Sub-folder of each class, in class-index order."""

PREPROCESS = PreprocessConfig(
    montage="tcp", window_s=4.0, notch_hz=50.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""The task's protocol: 20 TCP channels, 4-s windows, no edge trimming, no rejection."""

PROTOCOL = (
    "ADHD (class 1) vs. control (class 0) children, one recording each; 20 TCP bipolar "
    "channels by default (montage='monopolar' for the 19 recorded channels), 0.1-30 Hz, notch "
    "50 Hz, 64 Hz, 4-s non-overlapping windows, no amplitude rejection; subject-level split "
    "stratified by class, seeded (seed 0): 70% train, 15% val, 15% test of each class."
)


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    montage: str | None = None,
    window_s: float | None = None,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    workers: int = 2,
) -> TaskWindows:
    """Build the ADHD vs. control task.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``adhd/*.csv.gz`` and ``control/*.csv.gz``.
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`.
    montage : {"tcp", "monopolar", "as_is"} | None
        Override ``preprocess.montage``.
    window_s : float | None
        Override ``preprocess.window_s`` (s).
    seed : int
        Seed of the subject split.
    fractions : tuple of float
        Train / validation / test shares of each class's subjects.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 20, 256) float32 µV by default.
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if montage is not None:
        cfg = replace(cfg, montage=montage)
    if window_s is not None:
        cfg = replace(cfg, window_s=float(window_s))
    jobs: list[tuple[Path, int]] = []
    for label, group in enumerate(GROUP_DIRS):
        files = require_files(Path(data_dir) / group, "*.csv*",
                              expected=f"gzipped CSV recordings of the {group} group (vNNN.csv.gz)")
        jobs += [(f, label) for f in files]
    subject_class: dict[str, int] = {}
    for path, label in jobs:
        subject = _subject(path)
        if subject in subject_class:
            raise NeuriptError(f"{path}: subject id {subject!r} appears twice in {data_dir}")
        subject_class[subject] = label

    def one(job: tuple[Path, int]) -> Part:
        return window_file(job[0], cfg, job[1], subject=_subject(job[0]))

    parts = map_files(one, jobs, workers)
    split_of = stratified_subject_split(subject_class, tuple(fractions), seed)
    log.info("%s: rejected windows %s", NAME, rejected_total(parts))
    protocol = PROTOCOL.replace("seed 0", f"seed {seed}") if seed != 0 else PROTOCOL
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, protocol)


def _subject(path: Path) -> str:
    """Subject id of a file: the name without ``.csv`` / ``.csv.gz``."""
    return path.name.split(".")[0]


SPEC = TaskSpec(
    name=NAME,
    summary="ADHD vs. control children (IEEE DataPort), 120 subjects, 20 TCP x 4 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir="adhd",
    build=build,
    preprocess=PREPROCESS,
)
