"""PhysioNet P300: target vs. non-target flashes of a 6x6 matrix speller (erpbci).

Source
    Citi L., Poli R., Cinel C. (2010), "Documenting, modelling and exploiting P300 amplitude
    changes due to variable target delays in Donchin's speller", J. Neural Eng. 7:056006;
    PhysioNet "ERP-based Brain-Computer Interface recordings" (erpbci 1.0.0), Goldberger A. et
    al. (2000). Licence: Open Data Commons Attribution License v1.0.

Layout
    ``<data_dir>/sNN/rcKK.edf`` (the PhysioNet ``files/`` folder; any depth above ``sNN`` is
    accepted): 12 subjects, one EDF+ per spelled character (run), BioSemi 64 channels with 10-20
    names plus ``EARL``/``EARR`` and four EOG channels, 2048 Hz.

Annotations (what is parsed)
    Each run's EDF+ annotations hold a target marker ``#Tgt<c>_…`` (the character ``c`` the
    subject attends; the characters after ``_`` are not used), other ``#``-prefixed control
    markers (ignored), and one annotation per flash whose text lists the six characters of the
    intensified row or column (``ABCDEF``, ``AGMSY5`` …). A flash is a **target** (class 1) when
    the current target character is among them, else non-target (class 0). ``#`` inside a flash
    string is read as ``_`` (the matrix's space symbol). A flash before any ``#Tgt`` marker
    raises :class:`~neuript.errors.NeuriptError`.

Protocol (NeurIPT, Fang et al. 2025, following EEGPT)
    Subjects 8, 10 and 12 removed; 20 TCP bipolar channels, 0.1-30 Hz, notch 50 Hz (UK), 64 Hz;
    one 2-s window (128 samples) per flash starting 0.7 s before its onset; no rejection.

Split (ours; the paper does not give one)
    By subject: s01-s05 train, s06-s07 validation, s09 and s11 test (options
    ``train_subjects``, ``val_subjects``, ``test_subjects``, ``exclude``, ``offset_s``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

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

NAME = "physionet_p300"
CLASS_NAMES: tuple[str, ...] = ("nontarget", "target")
OFFSET_S = -0.7
"""Window start relative to the flash onset (s)."""

PREPROCESS = PreprocessConfig(
    montage="tcp", window_s=2.0, notch_hz=50.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""20 TCP channels, 2-s windows, no rejection."""

PROTOCOL = (
    "PhysioNet erpbci P300 speller, target (1) vs. non-target (0) flash; subjects 8, 10, 12 "
    "removed; 20 TCP bipolar channels, 0.1-30 Hz, notch 50 Hz, 64 Hz, one 2-s window per flash "
    "from 0.7 s before its onset, no rejection; split by subject: s01-s05 train, s06-s07 val, "
    "s09 and s11 test."
)

_SUBJECT_RE = re.compile(r"^s(\d{2})$", re.IGNORECASE)
_TARGET_RE = re.compile(r"^#Tgt(.)_")


class Flashes(NamedTuple):
    """Flash events of one run.

    Attributes
    ----------
    onset_s : ndarray, shape (N,), float64
        Flash onsets (s).
    labels : ndarray, shape (N,), int64
        1 if the flashed row/column holds the target character, else 0.
    targets : tuple of str, length N
        The target character in force at each flash.
    """

    onset_s: np.ndarray
    labels: np.ndarray
    targets: tuple[str, ...]


def parse_flashes(onsets_s: np.ndarray, descriptions: np.ndarray, *, source: str) -> Flashes:
    """Label the flash annotations of one erpbci run (see the module docstring).

    Parameters
    ----------
    onsets_s : ndarray, shape (M,)
        Annotation onsets (s).
    descriptions : ndarray, shape (M,), str
        Annotation texts.
    source : str
        File named in errors.

    Returns
    -------
    flashes : Flashes
    """
    target: str | None = None
    onsets, labels, targets = [], [], []
    for onset, text in sorted(zip(np.asarray(onsets_s, float).tolist(),
                                  [str(d).strip() for d in descriptions]), key=lambda p: p[0]):
        match = _TARGET_RE.match(text)
        if match:
            target = match.group(1)
            continue
        if not text or text.startswith("#"):
            continue
        if target is None:
            raise NeuriptError(f"{source}: flash annotation {text!r} at {onset:.3f} s comes "
                               "before any '#Tgt<c>_' target marker; expected an erpbci run")
        flashed = text.replace("#", "_")
        onsets.append(onset)
        labels.append(int(target in flashed))
        targets.append(target)
    if not onsets:
        raise NeuriptError(f"{source}: no flash annotations found (expected a '#Tgt<c>_' marker "
                           "followed by one annotation per flashed row/column)")
    return Flashes(np.array(onsets, np.float64), np.array(labels, np.int64), tuple(targets))


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    exclude: tuple[int, ...] = (8, 10, 12),
    train_subjects: tuple[int, ...] = (1, 2, 3, 4, 5),
    val_subjects: tuple[int, ...] = (6, 7),
    test_subjects: tuple[int, ...] = (9, 11),
    offset_s: float = OFFSET_S,
    montage: str | None = None,
    workers: int = 2,
) -> TaskWindows:
    """Build the PhysioNet P300 task from the erpbci ``files/`` folder.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``s01/rc01.edf`` … (at any depth).
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`.
    exclude : tuple of int
        Subjects left out (the paper: 8, 10, 12).
    train_subjects, val_subjects, test_subjects : tuple of int
        Subject numbers of each split; subjects found in none of them are skipped (logged).
    offset_s : float
        Window start relative to each flash (s).
    montage : {"tcp", "monopolar", "as_is"} | None
        Override ``preprocess.montage``.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 20, 128) float32 µV; subjects ``"s01"`` ….
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if montage is not None:
        cfg = replace(cfg, montage=montage)
    fmt = "s{:02d}"
    split_of = train_val_test(subject_ids("train_subjects", train_subjects, fmt),
                              subject_ids("val_subjects", val_subjects, fmt),
                              subject_ids("test_subjects", test_subjects, fmt))
    excluded = set(subject_ids("exclude", exclude, fmt))
    files = require_files(data_dir, "**/*.edf", expected="erpbci runs sNN/rcKK.edf")
    jobs = []
    for path in files:
        match = _SUBJECT_RE.match(path.parent.name)
        if match is None:
            continue
        subject = f"s{int(match.group(1)):02d}"
        if subject in excluded or subject not in split_of:
            log.info("%s: subject %s skipped (excluded or in no split)", path, subject)
            continue
        jobs.append((path, subject))
    if not jobs:
        raise NeuriptError(f"{data_dir}: no run of the selected subjects found; expected "
                           "sNN/rcKK.edf (PhysioNet erpbci 'files' folder)")

    def one(job: tuple[Path, str]) -> Part:
        rec = read_recording(job[0])
        flashes = parse_flashes(rec.events.onset_s, rec.events.description, source=str(job[0]))
        return epochs_part(rec, cfg, flashes.onset_s, flashes.labels, subject=job[1],
                           offset_s=offset_s)

    parts = map_files(one, jobs, workers)
    log.info("%s: dropped or rejected flashes %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="PhysioNet erpbci P300 speller target vs. non-target, 9 subjects, 20 TCP x 2 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir=None,
    build=build,
    preprocess=PREPROCESS,
)
