"""Where the examples find the bundled recordings (``NEURIPT_DATA`` or ``../shared/data``)."""

from pathlib import Path

import mne

from neuript.paths import data_root


def eegmat(subject: int, run: int) -> Path:
    """PhysioNet EEGMAT file: run 1 = rest, run 2 = mental arithmetic."""
    return data_root() / "eegmat" / f"Subject{subject:02d}_{run}.edf"


def eegmat_epochs(subjects, length_s: float = 5.0):
    """Fixed-length epochs of rest (label "rest") and arithmetic ("task") per subject.

    Returns a list of (mne.Epochs, labels, subject ids), one entry per recording.
    """
    out = []
    for subject in subjects:
        for run, label in ((1, "rest"), (2, "task")):
            raw = mne.io.read_raw_edf(eegmat(subject, run), preload=True, verbose="error")
            raw.pick([c for c in raw.ch_names if c.startswith("EEG")])
            epochs = mne.make_fixed_length_epochs(raw, duration=length_s, preload=True,
                                                  verbose="error")
            out.append((epochs, [label] * len(epochs), [subject] * len(epochs)))
    return out
