"""A tiny real pretraining corpus shared by the training tests (built once per session).

Two EEGMAT task recordings (Subject00, Subject01; 62 s each, PhysioNet) → the TCP montage at
64 Hz → 1-s windows (64 samples, so the tiny model trains fast on CPU) via
``neuript.data.store.prepare_corpus``. Two subjects give a subject-wise train/validation split.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neuript.config import PreprocessConfig
from neuript.paths import data_root

FILES = ("eegmat/Subject00_2.edf", "eegmat/Subject01_2.edf")
WINDOW_S = 1.0


def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build (or reuse within the session) the corpus; skip if the data root is missing."""
    from neuript.data.store import prepare_corpus

    out = tmp_path_factory.getbasetemp() / "train_corpus"
    if (out / "manifest.csv").exists():
        return out
    files = [data_root() / f for f in FILES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        pytest.skip(f"real EEG files missing: {missing}")
    prepare_corpus(files, out, PreprocessConfig(window_s=WINDOW_S), progress=False)
    return out
