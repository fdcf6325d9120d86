"""Real motor-imagery epochs for the MNE / scikit-learn / module tests.

EEGMMIDB S001, runs R04, R08 and R12 (imagined left / right fist: annotations T1 / T2, about 15
each per run), read with MNE itself and cut into epochs from each cue. Eight sensorimotor
channels and 2-s epochs keep CPU fits to seconds; the run is the group (there is one subject).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuript.paths import data_root

RUNS = (4, 8, 12)
PICKS = ("C3..", "Cz..", "C4..", "Fc3.", "Fc4.", "Cp3.", "Cp4.", "Pz..")
"""EEGMMIDB names (dots pad them to four characters); canonical C3, Cz, C4, FC3 …"""
EVENT_ID = {"left": 2, "right": 3}
"""T1 / T2 codes of ``mne.events_from_annotations`` on these runs."""


def mi_path(run: int) -> Path:
    """One bundled EEGMMIDB S001 run (skips when missing)."""
    path = data_root() / "eegmmidb" / "S001" / f"S001R{run:02d}.edf"
    if not path.is_file():
        pytest.skip(f"EEGMMIDB file missing: {path}")
    return path


def mi_raw(run: int, picks=PICKS):
    """The run through MNE directly (picks: channel names, or None for all 64)."""
    import mne

    raw = mne.io.read_raw_edf(mi_path(run), preload=True, verbose="error")
    return raw.pick(list(picks)) if picks is not None else raw


def mi_epochs(seconds: float = 2.0, picks=PICKS, runs=RUNS):
    """Epochs of every T1/T2 cue of ``runs``: [0, seconds) after the cue, no baseline.

    Returns
    -------
    epochs : mne.Epochs
    y : ndarray, shape (n_epochs,), str
        ``"left"`` / ``"right"``.
    groups : ndarray, shape (n_epochs,), int
        The run of each epoch.
    """
    import mne

    parts = []
    for run in runs:
        raw = mi_raw(run, picks)
        events, _ = mne.events_from_annotations(raw, verbose="error")
        parts.append(mne.Epochs(raw, events, EVENT_ID, tmin=0.0,
                                tmax=seconds - 1 / raw.info["sfreq"], baseline=None,
                                preload=True, verbose="error"))
    epochs = mne.concatenate_epochs(parts, verbose="error") if len(parts) > 1 else parts[0]
    names = {code: name for name, code in EVENT_ID.items()}
    y = np.array([names[c] for c in epochs.events[:, 2]])
    groups = np.repeat(np.array(runs), [len(p) for p in parts])
    return epochs, y, groups
