"""TUEV: six-class EEG event classification (TUH EEG Events Corpus).

Source
    Harati A. et al. (2015), "Improved EEG event classification using differential energy",
    IEEE SPMB; Obeid I., Picone J. (2016), Front. Neurosci. 10:196. Licence: TUH EEG data use
    agreement (Neural Engineering Data Consortium); users bring their own copy.

Layout
    ``<data_dir>/edf/{train,eval}/<subject>/<name>.edf`` each with ``<name>.rec`` beside it
    (``data_dir`` may also be the ``edf`` folder). A ``.rec`` line is
    ``channel,start_s,end_s,class``: the index (0-21) of the TCP channel the event was marked on,
    the event's start and end (1 s apart), and the class 1-6 = SPSW (spike and sharp wave), GPED
    (generalized periodic epileptiform discharge), PLED (periodic lateralized epileptiform
    discharge), EYEM (eye movement), ARTF (artifact), BCKG (background).

Protocol (NeurIPT, Fang et al. 2025, after BIOT/LaBraM)
    20 TCP bipolar channels, 0.1-30 Hz, notch 60 Hz, 64 Hz; one 5-s window (320 samples) per
    ``.rec`` line, from 2 s before the event's start to 3 s after it, i.e. centred on the 1-s
    event (BIOT takes start - 2 s to end + 2 s). One window per line, as BIOT/LaBraM do, so an
    event marked on several channels gives several (identical) windows; ``unique_events=True``
    keeps one window per distinct (start, end, class). Events whose window leaves the recording
    are dropped (BIOT wraps the signal around instead). No rejection. Classes 0-5 in the order
    above.

Split
    Official ``eval`` = test; the ``train`` folder's subjects split 80/20 into train/validation
    (``numpy.random.default_rng(seed=0)``; options ``val_fraction``, ``seed``, ``before_s``).
    A subject in both folders keeps only its eval files.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.io import read_recording
from neuript.data.splits import tuh_split
from neuript.data.tasks._common import Part, assemble, epochs_part, map_files, rejected_total
from neuript.data.tasks._paper import tuh_root
from neuript.data.tasks.base import TaskSpec, TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

NAME = "tuev"
CLASS_NAMES: tuple[str, ...] = ("spsw", "gped", "pled", "eyem", "artf", "bckg")
N_TCP_CHANNELS = 22
"""TUH's TCP montage (with A1-T3 and T4-A2) that ``.rec`` channel indices refer to."""
BEFORE_S = 2.0
EXPECTED = "TUEV edf/{train,eval}/<subject>/*.edf with .rec files"

PREPROCESS = PreprocessConfig(
    montage="tcp", window_s=5.0, notch_hz=60.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""20 TCP channels, 5-s windows, no rejection."""

PROTOCOL = (
    "TUEV six classes SPSW/GPED/PLED/EYEM/ARTF/BCKG, one 5-s window per .rec line from 2 s "
    "before the 1-s event to 2 s after it; 20 TCP bipolar channels, 0.1-30 Hz, notch 60 Hz, "
    "64 Hz, no rejection; official eval = test, the train folder split 80/20 by subject "
    "(numpy default_rng(seed=0))."
)


class RecEvents(NamedTuple):
    """The events of one ``.rec`` file.

    Attributes
    ----------
    channel : ndarray, shape (N,), int64
        TCP channel index (0-21) the event was marked on.
    start_s, end_s : ndarray, shape (N,), float64
        Event start and end (s).
    labels : ndarray, shape (N,), int64
        Class 0-5 (the file's 1-6 minus one).
    """

    channel: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    labels: np.ndarray


def parse_rec(path: Path) -> RecEvents:
    """Read a ``.rec`` file; a malformed line raises naming the file and line."""
    rows = []
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as err:
        raise NeuriptError(f"{path}: cannot read the .rec event file ({err})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            channel, start, end, label = int(fields[0]), float(fields[1]), float(fields[2]), \
                int(float(fields[3]))
            assert len(fields) == 4
        except (ValueError, IndexError, AssertionError):
            raise NeuriptError(f"{path}:{number}: malformed line {line.strip()!r}; expected "
                               "'channel,start_s,end_s,class'") from None
        if not (0 <= channel < N_TCP_CHANNELS and 1 <= label <= 6 and 0 <= start <= end):
            raise NeuriptError(f"{path}:{number}: {line.strip()!r} out of range; expected "
                               f"channel 0-{N_TCP_CHANNELS - 1}, class 1-6, 0 <= start <= end")
        rows.append((channel, start, end, label - 1))
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return RecEvents(table[:, 0].astype(np.int64), table[:, 1], table[:, 2],
                     table[:, 3].astype(np.int64))


def list_files(root: Path) -> list[tuple[Path, str, str]]:
    """Every (EDF, subject, official split); an EDF without its ``.rec`` raises."""
    jobs = []
    for split in ("train", "eval"):
        files = sorted(p for p in (root / split).rglob("*.edf") if p.is_file())
        if not files:
            raise NeuriptError(f"{root / split}: no .edf file; expected {EXPECTED}")
        for path in files:
            if not path.with_suffix(".rec").is_file():
                raise NeuriptError(f"{path}: event file {path.with_suffix('.rec').name} not "
                                   f"found beside it; expected {EXPECTED}")
            subject = path.relative_to(root / split).parts[0] if path.parent != root / split \
                else path.name.split("_")[0]
            jobs.append((path, subject, split))
    return jobs


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    before_s: float = BEFORE_S,
    unique_events: bool = False,
    montage: str | None = None,
    workers: int = 2,
) -> TaskWindows:
    """Build the TUEV task.

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
    before_s : float
        Seconds of signal before the event start in each window.
    unique_events : bool
        One window per distinct (start, end, class) instead of one per ``.rec`` line.
    montage : {"tcp", "monopolar", "as_is"} | None
        Override ``preprocess.montage``.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 20, 320) float32 µV.
    """
    cfg = PREPROCESS if preprocess is None else preprocess
    if montage is not None:
        cfg = replace(cfg, montage=montage)
    jobs = list_files(tuh_root(Path(data_dir), EXPECTED))
    eval_subjects = {s for _, s, split in jobs if split == "eval"}
    clash = sorted({s for _, s, split in jobs if split == "train"} & eval_subjects)
    if clash:
        log.warning("%s: subjects %s are in both train and eval; their train files are dropped",
                    NAME, clash[:10])
    jobs = [j for j in jobs if j[2] == "eval" or j[1] not in eval_subjects]
    split_of = tuh_split({s: 0 for _, s, split in jobs if split == "train"}, eval_subjects,
                         val_fraction, seed)

    def one(job: tuple[Path, str, str]) -> Part:
        events = parse_rec(job[0].with_suffix(".rec"))
        starts, labels = events.start_s, events.labels
        if unique_events and starts.size:
            table = np.unique(np.stack([starts, events.end_s, labels]), axis=1)
            starts, labels = table[0], table[2].astype(np.int64)
        rec = read_recording(job[0])
        return epochs_part(rec, cfg, starts, labels, subject=job[1], offset_s=-before_s)

    parts = map_files(one, jobs, workers)
    log.info("%s: dropped events %s", NAME, rejected_total(parts))
    return assemble(NAME, parts, split_of, CLASS_NAMES, cfg, PROTOCOL)


SPEC = TaskSpec(
    name=NAME,
    summary="TUH EEG Events 6-class (SPSW/GPED/PLED/EYEM/ARTF/BCKG, NEDC licence), 20 TCP x 5 s",
    protocol=PROTOCOL,
    class_names=CLASS_NAMES,
    default_dir=None,
    build=build,
    preprocess=PREPROCESS,
)
