"""BCI Competition IV 2a: four-class motor imagery (left hand, right hand, feet, tongue).

Source
    Brunner C., Leeb R., Müller-Putz G. R., Schlögl A., Pfurtscheller G. (2008), "BCI
    Competition 2008 - Graz data set A" (desc_2a.pdf); Tangermann M. et al. (2012), "Review of
    the BCI Competition IV", Front. Neurosci. 6:55. Licence: free for research with citation
    (BCI Competition terms); users bring their own copy.

Layout
    ``<data_dir>/A0sT.gdf`` (training session, cues 769-772 labelled) and ``A0sE.gdf``
    (evaluation session, cues 783 "unknown") for s = 1..9, plus the true labels ``A0sE.mat``
    (and optionally ``A0sT.mat``) published after the competition, each with a ``classlabel``
    vector (288, 1) of 1..4; files may sit in sub-folders. 22 EEG channels named ``EEG-Fz``,
    ``EEG-0`` … ``EEG-16`` plus ``EOG-left/central/right``, 250 Hz. The 22 EEG channels are, in
    file order, Fz, FC3, FC1, FCz, FC2, FC4, C5, C3, C1, Cz, C2, C4, C6, CP3, CP1, CPz, CP2, CP4,
    P1, Pz, P2, POz (desc_2a.pdf, Figure 3); :func:`standard_names` renames them.

Events (:func:`cue_trials`, a pure function)
    768 trial start, 769/770/771/772 cue left/right/feet/tongue (classes 0-3), 783 cue of unknown
    class, 1023 rejected trial (marked at its trial start). A cue's class is its code, or, in E
    files, the next entry of the ``.mat`` labels (cues in time order); when both exist they must
    agree. A trial is "rejected" when a 1023 marker lies between its trial start (the last 768
    before the cue, else the cue minus 2.5 s) and its cue.

Protocol (NeurIPT, Fang et al. 2025)
    16 bipolar pairs (:data:`PAIRS`), 0.1-30 Hz, notch 50 Hz, 64 Hz, one 4-s window (256
    samples) from each cue, no amplitude rejection; expert-rejected trials are **kept** by
    default as in MOABB/braindecode (``drop_rejected=True`` drops them). Both sessions (T and E)
    of every subject are used. Split by subject: 1-5 train, 6-7 validation, 8-9 test.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.io import read_recording
from neuript.data.recording import Recording
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

NAME = "bcic2a"
CLASS_NAMES: tuple[str, ...] = ("left", "right", "feet", "tongue")
CUE_CODES: dict[str, int] = {"769": 0, "770": 1, "771": 2, "772": 3}
UNKNOWN_CUE = "783"
TRIAL_START = "768"
REJECTED = "1023"
GDF_NAMES: tuple[str, ...] = (
    "EEG-Fz", "EEG-0", "EEG-1", "EEG-2", "EEG-3", "EEG-4", "EEG-5", "EEG-C3", "EEG-6", "EEG-Cz",
    "EEG-7", "EEG-C4", "EEG-8", "EEG-9", "EEG-10", "EEG-11", "EEG-12", "EEG-13", "EEG-14",
    "EEG-Pz", "EEG-15", "EEG-16",
)
"""The EEG channel names as written in the GDF files, in file order."""
ELECTRODES: tuple[str, ...] = (
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "CP3",
    "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz",
)
"""The 10-10 electrode of each GDF channel (desc_2a.pdf)."""
PAIRS: tuple[str, ...] = (
    "C5-C1", "C3-Cz", "Cz-C4", "C2-C6", "Fz-C5", "C5-P1", "CP3-POz", "Fz-C1", "C1-Pz", "CP1-POz",
    "Fz-C2", "C2-Pz", "CP2-POz", "Fz-C6", "C6-P2", "CP4-POz",
)
"""The paper's 16 bipolar channels."""

PREPROCESS = PreprocessConfig(
    montage="monopolar", window_s=4.0, notch_hz=50.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""4-s windows, no rejection; the 16 pairs are passed as an explicit montage target."""

PROTOCOL = (
    "BCI Competition IV 2a, left/right/feet/tongue imagery, T and E sessions (E labels from "
    "A0sE.mat); 16 bipolar pairs, 0.1-30 Hz, notch 50 Hz, 64 Hz, one 4-s window from each cue, "
    "expert-rejected trials kept; split by subject: 1-5 train, 6-7 val, 8-9 test."
)

_FILE_RE = re.compile(r"^A0(\d)([TE])\.gdf$", re.IGNORECASE)


class Trials(NamedTuple):
    """The cued trials of one session file.

    Attributes
    ----------
    onset_s : ndarray, shape (N,), float64
        Cue onsets (s).
    labels : ndarray, shape (N,), int64
        Class 0-3 (:data:`CLASS_NAMES`).
    rejected : ndarray, shape (N,), bool
        Trials the experts marked with event 1023.
    """

    onset_s: np.ndarray
    labels: np.ndarray
    rejected: np.ndarray


def cue_trials(
    onsets_s: np.ndarray,
    descriptions: np.ndarray,
    *,
    true_labels: np.ndarray | None = None,
    source: str = "<events>",
) -> Trials:
    """Cue onsets, classes and rejection flags from a session's events (module docstring).

    Parameters
    ----------
    onsets_s : ndarray, shape (M,)
        Event onsets (s).
    descriptions : ndarray, shape (M,), str
        Event codes as text (``"768"``, ``"769"`` …).
    true_labels : ndarray, shape (N,), int in 1..4 | None
        The session's ``classlabel`` vector; required when there are 783 cues.
    source : str
        File named in errors.

    Returns
    -------
    trials : Trials
    """
    onsets = np.asarray(onsets_s, dtype=np.float64).reshape(-1)
    codes = np.array([str(d).strip() for d in descriptions], dtype=str).reshape(-1)
    order = np.argsort(onsets, kind="stable")
    onsets, codes = onsets[order], codes[order]
    is_cue = np.isin(codes, [*CUE_CODES, UNKNOWN_CUE])
    cue_on, cue_code = onsets[is_cue], codes[is_cue]
    if cue_on.size == 0:
        raise NeuriptError(f"{source}: no cue event (769-772 or 783) found; expected a BCI "
                           "Competition IV 2a session")
    known = np.array([CUE_CODES.get(c, -1) for c in cue_code], dtype=np.int64)
    if true_labels is not None:
        truth = np.asarray(true_labels).reshape(-1).astype(np.int64) - 1
        if truth.size != cue_on.size or truth.min() < 0 or truth.max() > 3:
            raise NeuriptError(f"{source}: {truth.size} true labels (values "
                               f"{sorted(set((truth + 1).tolist()))[:6]}) for {cue_on.size} "
                               "cues; expected one label in 1..4 per cue")
        clash = (known >= 0) & (known != truth)
        if clash.any():
            raise NeuriptError(f"{source}: true labels disagree with the cue codes at "
                               f"{int(clash.sum())} trial(s), first at {cue_on[clash][0]:.2f} s")
        labels = truth
    elif (known < 0).any():
        raise NeuriptError(f"{source}: {int((known < 0).sum())} cues of unknown class (783); "
                           "the true labels file A0sE.mat is needed")
    else:
        labels = known
    starts = onsets[codes == TRIAL_START]
    marks = onsets[codes == REJECTED]
    rejected = np.zeros(cue_on.size, dtype=bool)
    for i, cue in enumerate(cue_on):
        before = starts[starts <= cue]
        begin = before[-1] if before.size else cue - 2.5
        rejected[i] = bool(np.any((marks >= begin - 1e-6) & (marks <= cue)))
    return Trials(cue_on, labels, rejected)


def load_true_labels(path: Path) -> np.ndarray:
    """The ``classlabel`` vector (N,) of a true-labels ``.mat`` file."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path)
    except Exception as err:  # boundary: any SciPy failure becomes one clear error
        raise NeuriptError(f"{path}: cannot read as a MATLAB file ({type(err).__name__}: "
                           f"{err}); expected the BCIC IV 2a true labels") from None
    if "classlabel" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise NeuriptError(f"{path}: no 'classlabel' variable (found {keys})")
    return np.asarray(mat["classlabel"]).reshape(-1)


def standard_names(rec: Recording) -> Recording:
    """Rename the 22 GDF EEG channels to their 10-10 names (already standard names pass)."""
    names = tuple(rec.ch_names)
    if names == GDF_NAMES:
        return dataclasses.replace(rec, ch_names=ELECTRODES)
    if len(names) == len(ELECTRODES) and {n.removeprefix("EEG-") for n in names} >= set(
            ELECTRODES):
        return rec
    raise NeuriptError(f"{rec.source}: EEG channels {list(names)[:8]}… ({len(names)}); expected "
                       f"the 22 BCIC IV 2a channels {list(GDF_NAMES[:4])}… (EOG set aside)")


def _find_labels(data_dir: Path, stem: str) -> Path | None:
    found = sorted(data_dir.rglob(f"{stem}.mat"))
    return found[0] if found else None


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    train_subjects: tuple[int, ...] = (1, 2, 3, 4, 5),
    val_subjects: tuple[int, ...] = (6, 7),
    test_subjects: tuple[int, ...] = (8, 9),
    sessions: tuple[str, ...] = ("T", "E"),
    drop_rejected: bool = False,
    offset_s: float = 0.0,
    workers: int = 2,
) -> TaskWindows:
    """Build the BCIC IV 2a task from the GDF files and true-label ``.mat`` files.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``A0sT.gdf``, ``A0sE.gdf`` and ``A0sE.mat`` (searched recursively).
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`.
    train_subjects, val_subjects, test_subjects : tuple of int
        Subject numbers per split; files of other subjects are skipped.
    sessions : tuple of {"T", "E"}
        Sessions used.
    drop_rejected : bool
        Drop trials marked 1023.
    offset_s : float
        Window start relative to the cue (s).
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 16, 256) float32 µV; subjects ``"A01"`` ….
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if cfg.montage == "tcp":
        cfg = replace(cfg, montage="monopolar")
    fmt = "A{:02d}"
    split_of = train_val_test(subject_ids("train_subjects", train_subjects, fmt),
                              subject_ids("val_subjects", val_subjects, fmt),
                              subject_ids("test_subjects", test_subjects, fmt))
    wanted = {s.upper() for s in sessions}
    files = require_files(data_dir, "**/*.gdf", expected="BCIC IV 2a A0sT.gdf / A0sE.gdf")
    jobs = []
    for path in files:
        match = _FILE_RE.match(path.name)
        if match is None or match.group(2).upper() not in wanted:
            continue
        subject = f"A{int(match.group(1)):02d}"
        if subject not in split_of:
            continue
        labels_path = _find_labels(Path(data_dir), path.stem)
        if match.group(2).upper() == "E" and labels_path is None:
            raise NeuriptError(f"{path}: true labels {path.stem}.mat not found under {data_dir}; "
                               "the E sessions need the published classlabel files")
        jobs.append((path, subject, labels_path))
    if not jobs:
        raise NeuriptError(f"{data_dir}: no A0sT.gdf / A0sE.gdf file of the selected subjects")

    def one(job: tuple[Path, str, Path | None]) -> Part:
        rec = standard_names(read_recording(job[0], subject=job[1]))
        truth = load_true_labels(job[2]) if job[2] is not None else None
        trials = cue_trials(rec.events.onset_s, rec.events.description, true_labels=truth,
                            source=str(job[0]))
        keep = ~trials.rejected if drop_rejected else np.ones(trials.labels.size, dtype=bool)
        part = epochs_part(rec, cfg, trials.onset_s[keep], trials.labels[keep],
                           subject=job[1], offset_s=offset_s, target=list(PAIRS))
        return part._replace(rejected={**part.rejected, "expert": int((~keep).sum())})

    parts = map_files(one, jobs, workers)
    log.info("%s: dropped trials %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="BCI Competition IV 2a 4-class motor imagery, 9 subjects, 16 bipolar ch x 4 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir=None,
    build=build,
    preprocess=PREPROCESS,
)
