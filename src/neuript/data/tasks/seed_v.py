"""SEED-V: five-class emotion recognition (disgust, fear, sad, neutral, happy) from film clips.

Source
    Liu W., Qiu J.-L., Zheng W.-L., Lu B.-L. (2021), "Comparing recognition performance and
    robustness of multimodal deep learning models for multimodal emotion recognition", IEEE
    TCDS 14(2):715-729; BCMI laboratory, Shanghai Jiao Tong University. Licence: research-only
    licence agreement signed with the BCMI lab; users bring their own copy.

Layout
    ``<data_dir>/**/<subject>_<session>_<yyyymmdd>.cnt`` (official ``EEG_raw/1_1_20180804.cnt``):
    16 subjects x 3 sessions, Neuroscan CNT, 62 channels (``FP1``, ``FPZ`` … ``CB1``, ``CB2``)
    plus reference/EOG channels, 1000 Hz.

Trial table (:data:`TRIAL_START_S`, :data:`TRIAL_END_S`, :data:`TRIAL_LABELS`)
    Each session shows 15 clips; their start and end seconds (from the start of the recording)
    and emotion labels 0 disgust, 1 fear, 2 sad, 3 neutral, 4 happy are those published with the
    dataset (its README / ``trial_start_end_timestamp`` description). Sessions 2 and 3 share one
    label order.

Protocol (NeurIPT, Fang et al. 2025)
    17 monopolar channels (Fp1, Fp2, F7, F3, F4, F8, T7, C3, Cz, C4, T8, P7, P3, P4, P8, O1,
    O2), 0.1-30 Hz, notch 50 Hz, 64 Hz; non-overlapping 1-s windows (64 samples) tiling each
    clip from its start second (``floor(end - start)`` windows per clip), labelled by the clip's
    emotion; no rejection.

Split
    The paper: subjects 1-10 train, 11-15 test. Ours: subjects 1-8 train, 9-10 validation
    (taken from the paper's training subjects), 11-15 test; subject 16 is not used (outside the
    paper's split). Options ``train_subjects``, ``val_subjects``, ``test_subjects``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.io import read_recording
from neuript.data.splits import train_val_test
from neuript.data.tasks._common import (
    Part,
    assemble,
    epochs_part,
    map_files,
    rejected_total,
    require_files,
)
from neuript.data.tasks._paper import subject_ids
from neuript.data.tasks.base import TaskSpec, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

NAME = "seed_v"
CLASS_NAMES: tuple[str, ...] = ("disgust", "fear", "sad", "neutral", "happy")
CHANNELS: tuple[str, ...] = (
    "Fp1", "Fp2", "F7", "F3", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "P4", "P8",
    "O1", "O2",
)
TRIAL_START_S: dict[int, tuple[int, ...]] = {
    1: (30, 132, 287, 555, 773, 982, 1271, 1628, 1730, 2025, 2227, 2435, 2667, 2932, 3204),
    2: (30, 299, 548, 646, 836, 1000, 1091, 1392, 1657, 1809, 1966, 2186, 2333, 2490, 2741),
    3: (30, 353, 478, 674, 825, 908, 1200, 1346, 1451, 1711, 2055, 2307, 2457, 2726, 2888),
}
"""Session → start second of each of the 15 clips (SEED-V README)."""
TRIAL_END_S: dict[int, tuple[int, ...]] = {
    1: (102, 228, 524, 742, 920, 1240, 1568, 1697, 1994, 2166, 2401, 2607, 2901, 3172, 3359),
    2: (267, 488, 614, 773, 967, 1059, 1331, 1622, 1777, 1908, 2153, 2302, 2428, 2709, 2817),
    3: (321, 418, 643, 764, 877, 1147, 1284, 1418, 1679, 1996, 2275, 2425, 2664, 2857, 3066),
}
"""Session → end second of each clip (SEED-V README)."""
TRIAL_LABELS: dict[int, tuple[int, ...]] = {
    1: (4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0),
    2: (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
    3: (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
}
"""Session → emotion of each clip (0 disgust, 1 fear, 2 sad, 3 neutral, 4 happy)."""

PREPROCESS = PreprocessConfig(
    montage="monopolar", window_s=1.0, notch_hz=50.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""17 monopolar channels (passed as an explicit target), 1-s windows, no rejection."""

PROTOCOL = (
    "SEED-V five emotions (disgust, fear, sad, neutral, happy) from the published clip "
    "start/end seconds; 17 monopolar 10-20 channels, 0.1-30 Hz, notch 50 Hz, 64 Hz, "
    "non-overlapping 1-s windows inside each clip; split by subject: 1-8 train, 9-10 val, "
    "11-15 test (the paper's 1-10 train / 11-15 test), subject 16 unused."
)

_FILE_RE = re.compile(r"^(\d+)_(\d)_\d{8}\.cnt$", re.IGNORECASE)


def clip_windows(session: int, window_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Window starts and labels tiling the 15 clips of one session.

    Parameters
    ----------
    session : int
        1, 2 or 3.
    window_s : float
        Window length and step (s).

    Returns
    -------
    onsets_s : ndarray, shape (N,), float64
        Window starts (s from the recording start).
    labels : ndarray, shape (N,), int64
        Emotion of the clip each window lies in.
    """
    if session not in TRIAL_LABELS:
        raise NeuriptError(f"SEED-V session must be 1, 2 or 3, got {session!r}")
    onsets, labels = [], []
    for start, end, label in zip(TRIAL_START_S[session], TRIAL_END_S[session],
                                 TRIAL_LABELS[session]):
        n = int(np.floor((end - start) / window_s + 1e-9))
        onsets.append(start + window_s * np.arange(n))
        labels.append(np.full(n, label, dtype=np.int64))
    return np.concatenate(onsets), np.concatenate(labels)


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    train_subjects: tuple[int, ...] = tuple(range(1, 9)),
    val_subjects: tuple[int, ...] = (9, 10),
    test_subjects: tuple[int, ...] = (11, 12, 13, 14, 15),
    channels: tuple[str, ...] = CHANNELS,
    workers: int = 1,
) -> TaskWindows:
    """Build the SEED-V emotion task from the raw CNT files.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``<subject>_<session>_<date>.cnt`` (searched recursively).
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`; ``window_s`` sets the window length and step.
    train_subjects, val_subjects, test_subjects : tuple of int
        Subject numbers per split; files of other subjects are skipped (logged).
    channels : tuple of str
        Channels kept, in this order.
    workers : int
        Files read in parallel (a CNT file is about 2 GB in memory once read).

    Returns
    -------
    task : TaskWindows
        Windows (N, 17, 64) float32 µV; subjects ``"1"`` … ``"15"``.
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if cfg.montage == "tcp":
        cfg = replace(cfg, montage="monopolar")
    fmt = "{:d}"
    split_of = train_val_test(subject_ids("train_subjects", train_subjects, fmt),
                              subject_ids("val_subjects", val_subjects, fmt),
                              subject_ids("test_subjects", test_subjects, fmt))
    files = require_files(data_dir, "**/*.cnt",
                          expected="SEED-V raw files <subject>_<session>_<yyyymmdd>.cnt")
    jobs = []
    for path in files:
        match = _FILE_RE.match(path.name)
        if match is None:
            log.info("%s: not a SEED-V file name, ignored", path)
            continue
        subject, session = str(int(match.group(1))), int(match.group(2))
        if session not in TRIAL_LABELS:
            raise NeuriptError(f"{path}: session {session} in the file name; SEED-V has 1-3")
        if subject in split_of:
            jobs.append((path, subject, session))
        else:
            log.info("%s: subject %s is in no split, skipped", path, subject)
    if not jobs:
        raise NeuriptError(f"{data_dir}: no .cnt file of the selected subjects; expected "
                           "names like 1_1_20180804.cnt")

    def one(job: tuple[Path, str, int]) -> Part:
        rec = read_recording(job[0], subject=job[1], session=str(job[2]))
        onsets, labels = clip_windows(job[2], cfg.window_s)
        if rec.duration_s < TRIAL_END_S[job[2]][-1]:
            log.warning("%s: %.0f s long, shorter than the last clip end (%d s)", job[0],
                        rec.duration_s, TRIAL_END_S[job[2]][-1])
        return epochs_part(rec, cfg, onsets, labels, subject=job[1], target=list(channels))

    parts = map_files(one, jobs, workers)
    log.info("%s: dropped windows %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="SEED-V 5-class emotion (BCMI, licence), 15 subjects, 17 monopolar ch x 1 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir=None,
    build=build,
    preprocess=PREPROCESS,
)
