"""Sleep-EDFx: five-class sleep staging (W, N1, N2, N3, REM) on Sleep Cassette + Telemetry.

Source
    Kemp B. et al. (2000), "Analysis of a sleep-dependent neuronal feedback loop: the
    slow-wave microcontinuity of the EEG", IEEE TBME 47(9):1185-1194; PhysioNet "Sleep-EDF
    Database Expanded" (sleep-edfx 1.0.0), Goldberger A. et al. (2000). Licence: Open Data
    Commons Attribution License v1.0.

Layout
    ``<data_dir>/**/<ID>-PSG.edf`` with its scorer file ``<ID'>-Hypnogram.edf`` in the same
    folder, where both names share their first six characters (``SC4001E0-PSG.edf`` +
    ``SC4001EC-Hypnogram.edf``; ``ST7011J0-PSG.edf`` + ``ST7011JP-Hypnogram.edf``). The
    official tree has ``sleep-cassette/`` (SC, 78 subjects, 1-2 nights) and
    ``sleep-telemetry/`` (ST, 22 subjects, 2 nights). EEG ``EEG Fpz-Cz`` and ``EEG Pz-Oz`` at
    100 Hz. The hypnogram's annotations (``Sleep stage W/1/2/3/4/R/?``, ``Movement time``) are
    taken relative to the PSG start: both files of a night start at the same time.

Protocol (NeurIPT, Fang et al. 2025; the exact protocol is not given, choices are ours)
    The two bipolar channels Fpz-Cz and Pz-Oz as recorded, 0.1-30 Hz, no notch (50 Hz is the
    Nyquist rate of the 100-Hz EEG), 64 Hz, 30-s epochs (1920 samples) on the scorer's grid.
    Classes W = 0, N1 = 1, N2 = 2, N3 = 3 (stages 3 and 4), REM = 4; ``Sleep stage ?`` and
    ``Movement time`` epochs dropped. Wake is kept only from 30 min before the first sleep epoch
    to 30 min after the last (``wake_edge_min=30``; None keeps all wake), the usual practice
    since Supratak et al. (2017) and the one of MNE's sleep tutorial.

Split (ours)
    By subject (``SC4ss``/``ST7ss``: both nights of a subject stay together), 60/20/20 train /
    validation / test, stratified by cohort (SC, ST), shuffled with
    ``numpy.random.default_rng(seed=0)``. Options ``fractions``, ``seed``, ``wake_edge_min``,
    ``channels``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.io import read_annotations, read_recording
from neuript.data.recording import Events
from neuript.data.splits import fraction_split
from neuript.data.tasks._common import (
    Part,
    assemble,
    epochs_part,
    map_files,
    rejected_total,
    require_files,
)
from neuript.data.tasks.base import TaskSpec, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

NAME = "sleep_edfx"
CLASS_NAMES: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")
STAGE_LABELS: dict[str, int] = {
    "Sleep stage W": 0, "Sleep stage 1": 1, "Sleep stage 2": 2, "Sleep stage 3": 3,
    "Sleep stage 4": 3, "Sleep stage R": 4,
}
"""Hypnogram text → class; every other text (``Sleep stage ?``, ``Movement time``) is dropped."""
EPOCH_S = 30.0
CHANNELS: tuple[str, ...] = ("Fpz-Cz", "Pz-Oz")

PREPROCESS = PreprocessConfig(
    montage="as_is", window_s=EPOCH_S, notch_hz=None, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""Fpz-Cz and Pz-Oz, 30-s epochs, no notch, no rejection."""

PROTOCOL = (
    "Sleep-EDFx SC+ST five-stage scoring W/N1/N2/N3(S3+S4)/REM, '?' and movement epochs "
    "dropped, wake kept from 30 min before the first to 30 min after the last sleep epoch; "
    "channels Fpz-Cz and Pz-Oz, 0.1-30 Hz, 64 Hz, 30-s epochs; split by subject 60/20/20 "
    "stratified by cohort, numpy default_rng(seed=0) (our choice: the paper's is not given)."
)

_PSG_RE = re.compile(r"^((?:SC4|ST7)\d{3})\w*-PSG\.edf$", re.IGNORECASE)


class Staging(NamedTuple):
    """Scored 30-s epochs of one night.

    Attributes
    ----------
    onset_s : ndarray, shape (N,), float64
        Epoch starts (s from the recording start).
    labels : ndarray, shape (N,), int64
        Class of each epoch (:data:`CLASS_NAMES`).
    """

    onset_s: np.ndarray
    labels: np.ndarray


def hypnogram_epochs(
    events: Events, *, epoch_s: float = EPOCH_S, wake_edge_min: float | None = 30.0
) -> Staging:
    """Expand hypnogram annotations into labelled epochs.

    Parameters
    ----------
    events : Events
        Hypnogram annotations (onset, duration in s, text).
    epoch_s : float
        Epoch length (s); an annotation of duration d gives ``floor(d / epoch_s)`` epochs.
    wake_edge_min : float | None
        Keep wake epochs starting no earlier than this many minutes before the first sleep
        epoch and ending no later than this many minutes after the last one; None keeps all.

    Returns
    -------
    staging : Staging
        Epochs in time order.
    """
    onsets, labels = [], []
    for onset, duration, text in zip(events.onset_s, events.duration_s, events.description):
        label = STAGE_LABELS.get(str(text).strip())
        if label is None:
            continue
        n = int(np.floor(float(duration) / epoch_s + 1e-9))
        onsets.extend(float(onset) + epoch_s * np.arange(n))
        labels.extend([label] * n)
    onset = np.array(onsets, dtype=np.float64)
    label = np.array(labels, dtype=np.int64)
    order = np.argsort(onset, kind="stable")
    onset, label = onset[order], label[order]
    sleep = label != STAGE_LABELS["Sleep stage W"]
    if wake_edge_min is not None and sleep.any():
        first, last = onset[sleep].min(), onset[sleep].max() + epoch_s
        edge = 60.0 * wake_edge_min
        keep = sleep | ((onset >= first - edge) & (onset + epoch_s <= last + edge))
        onset, label = onset[keep], label[keep]
    return Staging(onset, label)


def find_pairs(data_dir: Path) -> list[tuple[Path, Path, str]]:
    """Every (PSG, hypnogram, subject) under ``data_dir``; a PSG without hypnogram raises."""
    psgs = require_files(data_dir, "**/*-PSG.edf",
                         expected="Sleep-EDFx nights SC4ssNE0-PSG.edf + SC4ssNEC-Hypnogram.edf")
    pairs = []
    for psg in psgs:
        match = _PSG_RE.match(psg.name)
        if match is None:
            log.info("%s: not a Sleep-EDFx SC/ST name, ignored", psg)
            continue
        hyps = sorted(psg.parent.glob(f"{psg.name[:6]}*-Hypnogram.edf"))
        if len(hyps) != 1:
            raise NeuriptError(
                f"{psg}: expected exactly one hypnogram {psg.name[:6]}??-Hypnogram.edf in "
                f"{psg.parent}, found {[h.name for h in hyps]}"
            )
        pairs.append((psg, hyps[0], match.group(1).upper()[:5]))
    if not pairs:
        raise NeuriptError(f"{data_dir}: no SC4*/ST7* -PSG.edf file found (Sleep-EDFx layout)")
    return pairs


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    wake_edge_min: float | None = 30.0,
    channels: tuple[str, ...] = CHANNELS,
    workers: int = 2,
) -> TaskWindows:
    """Build the Sleep-EDFx staging task.

    Parameters
    ----------
    data_dir : Path
        Folder holding the ``*-PSG.edf`` / ``*-Hypnogram.edf`` pairs (searched recursively).
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`; its ``window_s`` sets the epoch length.
    fractions : tuple of float
        Train, validation and test shares of subjects.
    seed : int
        Seed of the subject split.
    wake_edge_min : float | None
        Wake kept around the sleep period (minutes); None keeps all.
    channels : tuple of str
        Channels (or ``A-B`` pairs) taken from the PSG.
    workers : int
        Nights read in parallel (threads; a night is about 0.5 GB while read).

    Returns
    -------
    task : TaskWindows
        Windows (N, 2, 1920) float32 µV; subjects ``"SC400"``, ``"ST701"`` ….
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    pairs = find_pairs(Path(data_dir))

    def one(job: tuple[Path, Path, str]) -> Part:
        staging = hypnogram_epochs(read_annotations(job[1]), epoch_s=cfg.window_s,
                                   wake_edge_min=wake_edge_min)
        if staging.onset_s.size == 0:
            raise NeuriptError(f"{job[1]}: no scored sleep stage (expected 'Sleep stage W/1/2/"
                               "3/4/R' annotations)")
        rec = read_recording(job[0])
        return epochs_part(rec, cfg, staging.onset_s, staging.labels, subject=job[2],
                           target=list(channels))

    parts = map_files(one, pairs, workers)
    cohorts = {subject: int(subject.startswith("ST")) for _, _, subject in pairs}
    split_of = fraction_split(cohorts, fractions, seed)
    log.info("%s: dropped epochs %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="Sleep-EDFx SC+ST 5-stage sleep scoring (PhysioNet), Fpz-Cz + Pz-Oz x 30 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir=None,
    build=build,
    preprocess=PREPROCESS,
)
