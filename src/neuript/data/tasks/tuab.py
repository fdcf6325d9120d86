"""TUAB: normal vs. abnormal clinical EEG (TUH Abnormal EEG Corpus).

Source
    Obeid I., Picone J. (2016), "The Temple University Hospital EEG Data Corpus", Front.
    Neurosci. 10:196; López S. et al. (2015), "Automated identification of abnormal adult
    EEGs", IEEE SPMB. Licence: TUH EEG data use agreement (registration with the Neural
    Engineering Data Consortium); users bring their own copy.

Layout
    ``<data_dir>/edf/{train,eval}/{normal,abnormal}/01_tcp_ar/**/*.edf`` (``data_dir`` may also
    be the ``edf`` folder itself; v2 sub-folders below ``01_tcp_ar`` are searched). Channels
    ``EEG FP1-REF`` … (averaged-reference montage), 250-512 Hz. The subject is the first part
    of the file name: ``aaaaaaav_s004_t000.edf`` → ``aaaaaaav``.

Protocol (NeurIPT, Fang et al. 2025, after BIOT/LaBraM)
    20 TCP bipolar channels, 0.1-30 Hz, notch 60 Hz (USA), 64 Hz, non-overlapping 10-s windows
    (640 samples) over each whole recording, no edge trimming, no rejection. Labels: normal = 0,
    abnormal = 1 (from the folder).

Split
    The official ``eval`` folder is the test set. The ``train`` folder's subjects are split
    80/20 into train/validation, stratified by the subject's class (abnormal if any of its
    files is), shuffled with ``numpy.random.default_rng(seed=0)``. A subject found in both
    folders keeps its eval files (test) and its train-folder files are dropped (logged), so no
    subject spans two splits. Options ``val_fraction``, ``seed``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from neuript.config import PreprocessConfig
from neuript.data.splits import tuh_split
from neuript.data.tasks._common import Part, assemble, map_files, rejected_total, window_file
from neuript.data.tasks._paper import tuh_root
from neuript.data.tasks.base import TaskSpec, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

NAME = "tuab"
CLASS_NAMES: tuple[str, ...] = ("normal", "abnormal")
MONTAGE_DIR = "01_tcp_ar"
EXPECTED = "TUAB edf/{train,eval}/{normal,abnormal}/01_tcp_ar/*.edf"

PREPROCESS = PreprocessConfig(
    montage="tcp", window_s=10.0, notch_hz=60.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""20 TCP channels, 10-s windows, no trimming, no rejection."""

PROTOCOL = (
    "TUAB normal (0) vs. abnormal (1) recordings; 20 TCP bipolar channels, 0.1-30 Hz, notch "
    "60 Hz, 64 Hz, non-overlapping 10-s windows, no rejection; official eval = test, the train "
    "folder split 80/20 by subject (stratified by class, numpy default_rng(seed=0))."
)


def subject_of(path: Path) -> str:
    """TUH subject id: the file name up to its first underscore."""
    return path.name.split("_")[0]


def list_files(root: Path) -> list[tuple[Path, str, int, str]]:
    """Every (file, subject, label, official split) of a TUAB tree; a missing folder raises."""
    jobs = []
    for split in ("train", "eval"):
        for label, cls in enumerate(CLASS_NAMES):
            folder = root / split / cls
            if not folder.is_dir():
                raise NeuriptError(f"{folder}: folder not found; expected {EXPECTED}")
            sub = folder / MONTAGE_DIR if (folder / MONTAGE_DIR).is_dir() else folder
            files = sorted(p for p in sub.rglob("*.edf") if p.is_file())
            if not files:
                raise NeuriptError(f"{sub}: no .edf file; expected {EXPECTED}")
            jobs.extend((path, subject_of(path), label, split) for path in files)
    return jobs


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    montage: str | None = None,
    workers: int = 2,
) -> TaskWindows:
    """Build the TUAB task.

    Parameters
    ----------
    data_dir : Path
        The corpus folder (holding ``edf/``) or its ``edf`` folder.
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`.
    val_fraction : float
        Share of the training subjects used for validation.
    seed : int
        Seed of the train/validation split.
    montage : {"tcp", "monopolar", "as_is"} | None
        Override ``preprocess.montage``.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 20, 640) float32 µV.
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if montage is not None:
        cfg = replace(cfg, montage=montage)
    jobs = list_files(tuh_root(Path(data_dir), EXPECTED))
    eval_subjects = {s for _, s, _, split in jobs if split == "eval"}
    clash = sorted({s for _, s, _, split in jobs if split == "train"} & eval_subjects)
    if clash:
        log.warning("%s: subjects %s are in both train and eval; their train files are dropped",
                    NAME, clash[:10])
    jobs = [j for j in jobs if j[3] == "eval" or j[1] not in eval_subjects]
    train_class: dict[str, int] = {}
    for _, subject, label, split in jobs:
        if split == "train":
            train_class[subject] = max(label, train_class.get(subject, 0))
    split_of = tuh_split(train_class, eval_subjects, val_fraction, seed)

    def one(job: tuple[Path, str, int, str]) -> Part:
        return window_file(job[0], cfg, job[2], subject=job[1])

    parts = map_files(one, jobs, workers)
    log.info("%s: rejected windows %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="TUH Abnormal EEG normal vs. abnormal (NEDC, licence), 20 TCP x 10 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir=None,
    build=build,
    preprocess=PREPROCESS,
)
