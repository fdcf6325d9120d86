"""EEGMMIDB motor imagery (one subject): imagined left vs. right fist — a loader check.

Source
    Schalk G. et al. (2004), "BCI2000: a general-purpose brain-computer interface system",
    IEEE TBME 51(6):1034–1043; Goldberger A. et al. (2000), PhysioNet, "EEG Motor
    Movement/Imagery Dataset". Licence: Open Data Commons Attribution License v1.0.

Layout
    ``<data_dir>/S001/S001Rkk.edf`` (the bundled root holds subject S001 only; any ``SNNN``
    folders found are used): 64 channels (10-10 names written ``Fc5.``), 160 Hz, EDF+
    annotations T0 (rest), T1, T2 of ~4.1 s each. Imagery runs: R04/R08/R12 (T1 = left fist,
    T2 = right fist) and R06/R10/R14 (T1 = both fists, T2 = both feet).

Protocol (ours)
    64 monopolar channels (``montage="tcp"`` for the 20 TCP pairs), band-pass 0.1–30 Hz,
    notch 60 Hz (recorded in the USA), 64 Hz; one 4-s window (256 samples) from each T1/T2
    onset; T0 rest is not a class. ``paradigm="left_right"`` (default): runs 4, 8, 12,
    classes left (T1) = 0, right (T2) = 1; ``paradigm="fists_feet"``: runs 6, 10, 14, classes
    fists (T1) = 0, feet (T2) = 1. With one subject the split is by run: the first imagery
    run trains, the second validates, the third tests. No amplitude rejection.

Counts (default protocol, S001)

    =====  ====  =====  =====  ====
    split  left  right  total  run
    =====  ====  =====  =====  ====
    train     8      7     15   R04
    val       8      7     15   R08
    test      7      8     15   R12
    total    23     22     45
    =====  ====  =====  =====  ====

    ``fists_feet``: R06 7/8, R10 7/8, R14 7/8 (fists/feet).
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
from neuript.errors import NeuriptError, check_option

log = logging.getLogger(__name__)

NAME = "eegmmidb"
PARADIGMS: dict[str, tuple[tuple[int, int, int], tuple[str, str]]] = {
    "left_right": ((4, 8, 12), ("left", "right")),
    "fists_feet": ((6, 10, 14), ("fists", "feet")),
}
"""Paradigm → (imagery runs in train/val/test order, class names of T1 and T2)."""
EVENT_LABELS: dict[str, int] = {"T1": 0, "T2": 1}

PREPROCESS = PreprocessConfig(
    montage="monopolar", window_s=4.0, notch_hz=60.0, trim_edges_s=0.0, min_duration_s=0.0,
    reject_abs_uv=None, flat_std_uv=None,
)
"""The task's protocol: the 64 recorded channels, 4-s windows from each cue, no rejection."""

def _protocol(paradigm: str, cfg: PreprocessConfig) -> str:
    """The protocol paragraph for a paradigm and montage."""
    runs, class_names = PARADIGMS[paradigm]
    split_text = ", ".join(f"R{r:02d} {sp}" for r, sp in zip(runs, SPLITS))
    channels = "64 monopolar channels" if cfg.montage in ("monopolar", "as_is") else (
        f"montage {cfg.montage}")
    return (
        f"EEGMMIDB motor imagery, imagined {class_names[0]} (T1, class 0) vs. "
        f"{class_names[1]} (T2, class 1) in runs {'/'.join(str(r) for r in runs)}; {channels}, "
        "0.1-30 Hz, notch 60 Hz, 64 Hz, one 4-s window from each T1/T2 onset, no amplitude "
        f"rejection; split by run: {split_text}."
    )


PROTOCOL = _protocol("left_right", PREPROCESS)
"""The default paradigm's protocol paragraph."""

_RUN_RE = re.compile(r"^(S\d{3})R(\d{2})\.edf$", re.IGNORECASE)


def build(
    data_dir: Path,
    preprocess: PreprocessConfig | None = None,
    *,
    paradigm: str = "left_right",
    montage: str | None = None,
    workers: int = 2,
) -> TaskWindows:
    """Build the EEGMMIDB imagery task, split by run.

    Parameters
    ----------
    data_dir : Path
        Folder holding ``SNNN/SNNNRkk.edf`` (bundled: ``eegmmidb``).
    preprocess : PreprocessConfig | None
        None: :data:`PREPROCESS`.
    paradigm : {"left_right", "fists_feet"}
        Which imagery runs and classes.
    montage : {"tcp", "monopolar", "as_is"} | None
        Override ``preprocess.montage``.
    workers : int
        Files read in parallel (threads).

    Returns
    -------
    task : TaskWindows
        Windows (N, 64, 256) float32 µV by default; ``subjects`` holds ``"S001"``.
    """
    check_option("eegmmidb paradigm", paradigm, tuple(PARADIGMS))
    runs, class_names = PARADIGMS[paradigm]
    cfg = PREPROCESS if preprocess is None else preprocess
    if montage is not None:
        cfg = replace(cfg, montage=montage)
    files = require_files(data_dir, "S*/S*R*.edf", expected="SNNN/SNNNRkk.edf EEGMMIDB runs")
    split_of_run = dict(zip(runs, SPLITS))
    jobs = []
    for path in files:
        match = _RUN_RE.match(path.name)
        if match and int(match.group(2)) in split_of_run:
            jobs.append((path, match.group(1).upper(), int(match.group(2))))
    found = sorted({run for _, _, run in jobs})
    if found != sorted(runs):
        raise NeuriptError(f"{data_dir}: paradigm {paradigm!r} needs runs {list(runs)} "
                           f"(SNNNR04.edf …), found runs {found}")

    def one(job: tuple[Path, str, int]) -> Part:
        return epoch_file(job[0], cfg, EVENT_LABELS, subject=job[1])

    parts = map_files(one, jobs, workers)
    log.info("%s: dropped or rejected epochs %s", NAME, rejected_total(parts))
    part_splits = [split_of_run[run] for _, _, run in jobs]
    return assemble(NAME, parts, part_splits, class_names, cfg, _protocol(paradigm, cfg))


SPEC = TaskSpec(
    name=NAME,
    summary="EEGMMIDB S001 imagined left vs. right fist (PhysioNet), split by run, 64 ch x 4 s",
    protocol=PROTOCOL,
    class_names=PARADIGMS["left_right"][1],
    default_dir="eegmmidb",
    build=build,
    preprocess=PREPROCESS,
)
