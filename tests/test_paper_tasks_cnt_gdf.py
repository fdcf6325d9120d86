"""SEED-V (Neuroscan CNT) and BCIC IV 2a (GDF) loaders: formats no Python library writes.

Their event and label logic are pure functions tested on arrays; the builders are run with
``read_recording`` monkeypatched to return synthetic :class:`Recording` objects in the files'
channel layout, and the real GDF reader path is exercised on the MNE GDF fixture.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from _paper_files import power_rank, signals
from neuript.data.recording import Events, Recording
from neuript.data.tasks import bcic2a, seed_v
from neuript.errors import NeuriptError, RecordingError
from neuript.paths import data_root

GDF_FIXTURE = data_root() / "fixtures" / "gdf" / "test_1ch.gdf"


# --------------------------------------------------------------------------------------------
# SEED-V
# --------------------------------------------------------------------------------------------
SEED_CHANNELS = ("FP1", "FP2", "F7", "F3", "F4", "F8", "T7", "C3", "CZ", "C4", "T8", "P7", "P3",
                 "P4", "P8", "O1", "CB1", "O2")
"""The 17 channels the task keeps plus CB1, in SEED-V's spelling (the real files hold 62)."""
SEED_SFREQ = 64.0
"""The real files are 1000 Hz; 64 Hz keeps the 3,400-s synthetic sessions fast."""


def _seed_recording(path: Path, session: int) -> Recording:
    """A 3,400-s recording whose FP1 carries a 5-Hz sine of (label + 1) x 10 µV inside each clip."""
    n = int(3400 * SEED_SFREQ)
    data = signals(len(SEED_CHANNELS), n, SEED_SFREQ, seed=session) * 0.1
    t = np.arange(n) / SEED_SFREQ
    amp = np.zeros(n)
    for start, end, label in zip(seed_v.TRIAL_START_S[session], seed_v.TRIAL_END_S[session],
                                 seed_v.TRIAL_LABELS[session]):
        amp[(t >= start) & (t < end)] = (label + 1) * 10e-6
    data[0] += amp * np.sin(2 * np.pi * 5.0 * t)
    return Recording(data=data, sfreq_hz=SEED_SFREQ, ch_names=SEED_CHANNELS, source=str(path))


def test_seed_v_tables_and_clip_windows() -> None:
    for session in (1, 2, 3):
        assert len(seed_v.TRIAL_START_S[session]) == len(seed_v.TRIAL_END_S[session]) == 15
        assert np.bincount(seed_v.TRIAL_LABELS[session]).tolist() == [3, 3, 3, 3, 3]
        assert all(np.diff(seed_v.TRIAL_START_S[session]) > 0)
    onsets, labels = seed_v.clip_windows(1)
    assert onsets.size == sum(e - s for s, e in zip(seed_v.TRIAL_START_S[1],
                                                    seed_v.TRIAL_END_S[1]))
    assert onsets[:2].tolist() == [30.0, 31.0] and labels[:72].tolist() == [4] * 72
    assert onsets[72] == 132.0 and labels[72] == 1  # the second clip, fear
    with pytest.raises(NeuriptError, match="session"):
        seed_v.clip_windows(4)


def test_seed_v_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = {"1_1_20180804.cnt": 1, "9_2_20180805.cnt": 2, "11_3_20180806.cnt": 3,
                "16_1_20180807.cnt": 1}
    for name in sessions:
        (tmp_path / "EEG_raw").mkdir(exist_ok=True)
        (tmp_path / "EEG_raw" / name).write_bytes(b"placeholder")
    (tmp_path / "EEG_raw" / "readme.cnt").write_bytes(b"")  # not a SEED-V name: ignored
    read = []

    def fake_read(path: Path, **ids: str) -> Recording:
        read.append(Path(path).name)
        return _seed_recording(Path(path), sessions[Path(path).name])

    monkeypatch.setattr(seed_v, "read_recording", fake_read)
    task = seed_v.build(tmp_path)
    assert "16_1_20180807.cnt" not in read  # subject 16 is in no split
    assert task.ch_names == seed_v.CHANNELS and task.signals.shape[1:] == (17, 64)
    per_subject = {s: int(np.sum(task.subjects == s)) for s in ("1", "9", "11")}
    expected = {s: seed_v.clip_windows(k)[0].size for s, k in (("1", 1), ("9", 2), ("11", 3))}
    assert per_subject == expected
    assert dict(zip(task.subjects.tolist(), task.splits.tolist())) == {
        "1": "train", "9": "val", "11": "test"}
    first = task.subjects == "1"
    np.testing.assert_array_equal(task.labels[first], seed_v.clip_windows(1)[1])
    assert task.starts[first][0] == 30 * 64
    # FP1 (row 0) amplitude follows the clip's label: the table is aligned with the signal
    rms = np.sqrt((task.signals[:, 0] ** 2).mean(axis=1))
    by_label = [np.median(rms[task.labels == k]) for k in range(5)]
    assert np.all(np.diff(by_label) > 4.0), by_label
    np.testing.assert_allclose(by_label, (np.arange(5) + 1) * 10 / np.sqrt(2), rtol=0.1)


def test_seed_v_errors(tmp_path: Path) -> None:
    with pytest.raises(NeuriptError, match="<subject>_<session>_<yyyymmdd>.cnt"):
        seed_v.build(tmp_path)
    (tmp_path / "1_1_20180804.cnt").write_bytes(b"\x00" * 10)  # real reader: not a CNT file
    with pytest.raises(RecordingError, match="1_1_20180804.cnt"):
        seed_v.build(tmp_path)


# --------------------------------------------------------------------------------------------
# BCIC IV 2a
# --------------------------------------------------------------------------------------------
def _events(codes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Six trials, one every 8 s from 5 s: 768 at the start, the cue 2 s later; 1023 on trial 3."""
    onsets, texts = [], []
    for i, code in enumerate(codes):
        start = 5.0 + 8.0 * i
        onsets += [start, start + 2.0]
        texts += ["768", code]
        if i == 2:
            onsets.append(start)
            texts.append("1023")
    onsets.append(0.5)
    texts.append("32766")  # new-run marker, ignored
    return np.array(onsets), np.array(texts)


T_CODES = ["769", "770", "771", "772", "769", "770"]
E_TRUTH = np.array([[4], [3], [2], [1], [1], [2]])


def test_cue_trials_training_and_evaluation_sessions() -> None:
    trials = bcic2a.cue_trials(*_events(T_CODES))
    assert trials.labels.tolist() == [0, 1, 2, 3, 0, 1]
    np.testing.assert_allclose(trials.onset_s, 7.0 + 8.0 * np.arange(6))
    assert trials.rejected.tolist() == [False, False, True, False, False, False]
    unknown = bcic2a.cue_trials(*_events(["783"] * 6), true_labels=E_TRUTH)
    assert unknown.labels.tolist() == [3, 2, 1, 0, 0, 1]
    with pytest.raises(NeuriptError, match="A0sE.mat"):
        bcic2a.cue_trials(*_events(["783"] * 6), source="A01E.gdf")
    with pytest.raises(NeuriptError, match="5 true labels .* 6 cues"):
        bcic2a.cue_trials(*_events(["783"] * 6), true_labels=E_TRUTH[:5])
    with pytest.raises(NeuriptError, match="disagree"):
        bcic2a.cue_trials(*_events(T_CODES), true_labels=E_TRUTH)


def _bcic_recording(path: Path) -> Recording:
    codes = T_CODES if path.stem.endswith("T") else ["783"] * 6
    onsets, texts = _events(codes)
    n = int(60 * 250.0)
    data = signals(22, n, 250.0, seed=int(path.stem[2]), sine_row=bcic2a.ELECTRODES.index("C3"))
    events = Events(onsets, np.zeros_like(onsets), texts)
    return Recording(data=data, sfreq_hz=250.0, ch_names=bcic2a.GDF_NAMES, source=str(path),
                     events=events, excluded={"EOG-left": "eog"})


def test_bcic2a_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("A01T.gdf", "A01E.gdf", "A06T.gdf", "A08E.gdf", "A09T.gdf"):
        (tmp_path / name).write_bytes(b"placeholder")
    (tmp_path / "true_labels").mkdir()
    for stem in ("A01E", "A08E"):
        scipy.io.savemat(tmp_path / "true_labels" / f"{stem}.mat", {"classlabel": E_TRUTH})
    monkeypatch.setattr(bcic2a, "read_recording", lambda path, **ids: _bcic_recording(Path(path)))
    task = bcic2a.build(tmp_path, test_subjects=(8,))  # A09 is then in no split
    assert task.ch_names == bcic2a.PAIRS and task.signals.shape == (4 * 6, 16, 256)
    split_of = dict(zip(task.subjects.tolist(), task.splits.tolist()))
    assert split_of == {"A01": "train", "A06": "val", "A08": "test"}
    e_file = task.sources == str(tmp_path / "A01E.gdf")
    assert task.labels[e_file].tolist() == [3, 2, 1, 0, 0, 1]
    np.testing.assert_array_equal(task.starts[e_file], np.rint((7.0 + 8 * np.arange(6)) * 64))
    assert power_rank(task.signals)[0] == bcic2a.PAIRS.index("C3-Cz")  # the only C3 pair
    dropped = bcic2a.build(tmp_path, test_subjects=(8,), drop_rejected=True)
    assert dropped.signals.shape[0] == 4 * 5
    (tmp_path / "true_labels" / "A08E.mat").unlink()
    with pytest.raises(NeuriptError, match="A08E.mat not found"):
        bcic2a.build(tmp_path)


def test_bcic2a_real_gdf_reader_path(tmp_path: Path) -> None:
    """The MNE GDF fixture (one ECG channel) read for real: a clear channel error, no traceback."""
    shutil.copy(GDF_FIXTURE, tmp_path / "A01T.gdf")
    with pytest.raises(NeuriptError, match=r"A01T.gdf: EEG channels .* 22 BCIC IV 2a"):
        bcic2a.build(tmp_path, val_subjects=(), test_subjects=())
