"""Loaders of the paper's external benchmarks on tiny copies in their official layouts (EDF).

Mumtaz2016, PhysioNet P300 (erpbci), Sleep-EDFx, TUAB and TUEV: each test writes a few short
files (128-256 Hz, seconds to minutes) into ``tmp_path`` and checks labels, window counts and
starts, channel order (a 5-Hz sine on one electrode must show up in exactly the montage rows
holding that electrode), split membership, and one missing or malformed file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mne
import numpy as np
import pytest
import torch

from _paper_files import TEN_TWENTY, power_rank, write_edf, write_hypnogram
from neuript.data.io import read_annotations
from neuript.data.montage import TCP_PAIRS
from neuript.data.tasks import TASKS, build_task, mumtaz, physionet_p300, sleep_edfx, tuab, tuev
from neuript.errors import NeuriptError, RecordingError
from neuript.paths import data_root

torch.set_num_threads(1)
TCP_NAMES = tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
PAPER_TASKS = ("mumtaz", "physionet_p300", "sleep_edfx", "seed_v", "bcic2a", "tuab", "tuev")
HYPNOGRAM = data_root() / "fixtures" / "edf" / "SC4001EC-Hypnogram.edf"


def _rows_with(electrode: str) -> set[int]:
    return {i for i, name in enumerate(TCP_NAMES) if electrode in name.split("-")}


def _loudest(windows: np.ndarray, electrode: str) -> set[int]:
    """The most powerful montage rows, as many as there are rows holding ``electrode``."""
    return set(power_rank(windows)[:len(_rows_with(electrode))].tolist())


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
def test_registry_lists_the_paper_tasks_without_bundled_data(tmp_path: Path) -> None:
    for name in PAPER_TASKS:
        spec = TASKS[name]
        assert spec.default_dir is None and spec.summary and spec.protocol
        assert len(spec.class_names) >= 2
    with pytest.raises(NeuriptError, match="data_dir"):
        build_task("tuab", cache=False)
    with pytest.raises(NeuriptError, match="not found"):
        build_task("mumtaz", data_dir=tmp_path / "absent", cache=False)


# --------------------------------------------------------------------------------------------
# Mumtaz2016
# --------------------------------------------------------------------------------------------
MUMTAZ_CHANNELS = tuple(f"EEG {e}-LE" for e in TEN_TWENTY) + ("EEG A2-A1",)


@pytest.fixture(scope="module")
def mumtaz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mumtaz")
    seed = 0
    for group in ("MDD", "H"):
        for number in (1, 2, 3):
            for cond in ("EO", "EC", "TASK"):
                seed += 1
                prefix = "6921143_" if (group, number, cond) == ("H", 3, "EO") else ""
                write_edf(root / f"{prefix}{group} S{number} {cond}.edf", MUMTAZ_CHANNELS, 128.0,
                          12.0, seed=seed, sine_channel="EEG Fp1-LE")
    (root / "notes.edf").write_bytes(b"")  # not a Mumtaz name: ignored
    return root


def test_mumtaz_labels_windows_channels_and_split(mumtaz_dir: Path) -> None:
    task = build_task("mumtaz", data_dir=mumtaz_dir, cache=False, val_counts=(1, 1),
                      test_counts=(1, 1), workers=1)
    # 6 subjects x (EO + EC) x 2 five-second windows of a 12-s file; TASK files skipped.
    assert task.signals.shape == (24, 20, 320)
    assert task.ch_names == TCP_NAMES
    assert not any("TASK" in s for s in task.sources)
    for subject, label in zip(task.subjects, task.labels):
        assert label == (1 if subject.startswith("MDD") else 0)
    assert "H S3" in set(task.subjects.tolist())  # the prefixed file name was parsed
    for split in ("train", "val", "test"):
        members = set(task.subjects[task.indices(split)].tolist())
        assert sorted(m.split()[0] for m in members) == ["H", "MDD"], (split, members)
    np.testing.assert_array_equal(np.sort(task.starts[:2]), [0, 320])
    assert _loudest(task.signals, "Fp1") == _rows_with("Fp1")
    again = mumtaz.build(mumtaz_dir, val_counts=(1, 1), test_counts=(1, 1), seed=1, workers=1)
    assert again.signals.shape == task.signals.shape


def test_mumtaz_errors(mumtaz_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NeuriptError, match="only 3 subjects"):
        mumtaz.build(mumtaz_dir, workers=1)  # the paper's 5+5 MDD cannot come from 3
    bad = tmp_path / "MDD S1 EO.edf"
    bad.write_bytes((mumtaz_dir / "MDD S1 EO.edf").read_bytes()[:3000])  # truncated copy
    with pytest.raises(RecordingError, match="MDD S1 EO.edf"):
        mumtaz.build(tmp_path, val_counts=(0, 0), test_counts=(0, 0), workers=1)
    with pytest.raises(NeuriptError, match="MDD S1 EC.edf"):
        mumtaz.build(tmp_path / "none", workers=1)


# --------------------------------------------------------------------------------------------
# PhysioNet P300 (erpbci)
# --------------------------------------------------------------------------------------------
P300_CHANNELS = ("Fp1", "F7", "F3", "T7", "C3", "P7", "P3", "O1", "Fz", "Cz", "Pz", "Oz", "Fp2",
                 "F8", "F4", "T8", "C4", "P8", "P4", "O2", "EARL", "EARR", "VEOGL", "HEOGR")
P300_NOTES = (
    (0.4, 0.0, "#TgtK_K"), (0.6, 0.1, "ABCDEF"),  # starts 0.1 s before the file: dropped
    (2.0, 0.1, "ABCDEF"), (2.15, 0.1, "GHIJKL"), (2.3, 0.1, "EKQW39"), (2.45, 0.1, "AGMSY5"),
    (10.0, 0.0, "#TgtA_A"), (10.2, 0.1, "AGMSY5"), (10.35, 0.1, "56789#"),
    (19.5, 0.1, "ABCDEF"),  # window ends after the file: dropped
    (19.9, 0.0, "#end"),
)
P300_LABELS = [0, 1, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def p300_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("erpbci") / "files"
    for k, subject in enumerate(("s01", "s06", "s08", "s09")):
        write_edf(root / subject / "rc01.edf", P300_CHANNELS, 256.0, 20.0, seed=k,
                  annotations=P300_NOTES, sine_channel="C3")
    return root.parent


def test_p300_flash_parsing_is_a_pure_function() -> None:
    onsets, texts = zip(*[(o, t) for o, _, t in P300_NOTES])
    flashes = physionet_p300.parse_flashes(np.array(onsets), np.array(texts), source="x")
    assert flashes.labels.tolist() == [0, 0, 1, 1, 0, 1, 0, 1]
    assert flashes.targets == ("K",) * 5 + ("A",) * 3
    with pytest.raises(NeuriptError, match="before any"):
        physionet_p300.parse_flashes(np.array([1.0]), np.array(["ABCDEF"]), source="run.edf")


def test_p300_windows_labels_and_split(p300_dir: Path) -> None:
    task = physionet_p300.build(p300_dir, train_subjects=(1,), val_subjects=(6,),
                                test_subjects=(9,), workers=1)
    assert task.signals.shape == (18, 20, 128) and task.ch_names == TCP_NAMES
    assert "s08" not in set(task.subjects.tolist())  # excluded by the paper's protocol
    assert dict(zip(task.subjects.tolist(), task.splits.tolist())) == {
        "s01": "train", "s06": "val", "s09": "test"}
    first = task.subjects == "s01"
    assert task.labels[first].tolist() == P300_LABELS
    kept = [2.0, 2.15, 2.3, 2.45, 10.2, 10.35]
    np.testing.assert_array_equal(task.starts[first], np.rint((np.array(kept) - 0.7) * 64))
    assert _loudest(task.signals, "C3") == _rows_with("C3")


def test_p300_missing_run_folder(tmp_path: Path) -> None:
    (tmp_path / "s01").mkdir()
    with pytest.raises(NeuriptError, match="sNN/rcKK.edf"):
        physionet_p300.build(tmp_path, workers=1)


# --------------------------------------------------------------------------------------------
# Sleep-EDFx
# --------------------------------------------------------------------------------------------
STAGES = (
    (0, 120, "Sleep stage W"), (120, 60, "Sleep stage 1"), (180, 90, "Sleep stage 2"),
    (270, 30, "Sleep stage 3"), (300, 30, "Sleep stage 4"), (330, 60, "Sleep stage R"),
    (390, 150, "Sleep stage W"), (540, 30, "Sleep stage ?"), (570, 30, "Movement time"),
    (600, 60, "Sleep stage W"),  # after the 600-s PSG ends: dropped
)
PSG_CHANNELS = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal")


@pytest.fixture(scope="module")
def sleep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sleep-edfx")
    nights = (("sleep-cassette", "SC4001E0", "SC4001EC"), ("sleep-cassette", "SC4002E0",
              "SC4002EC"), ("sleep-cassette", "SC4011E0", "SC4011EH"),
              ("sleep-cassette", "SC4021E0", "SC4021EH"), ("sleep-telemetry", "ST7011J0",
                                                           "ST7011JP"))
    for k, (folder, psg, hyp) in enumerate(nights):
        write_edf(root / folder / f"{psg}-PSG.edf", PSG_CHANNELS, 100.0, 600.0, seed=k,
                  sine_channel="EEG Pz-Oz")
        write_hypnogram(root / folder / f"{hyp}-Hypnogram.edf", STAGES)
    return root


def test_hypnogram_epochs_on_the_real_sleep_edf_scoring() -> None:
    events = read_annotations(HYPNOGRAM)
    everything = sleep_edfx.hypnogram_epochs(events, wake_edge_min=None)
    annotations = mne.read_annotations(HYPNOGRAM)  # independent count: durations / 30 s
    expected = np.zeros(5, dtype=int)
    for text, duration in zip(annotations.description, annotations.duration):
        if text in sleep_edfx.STAGE_LABELS:
            expected[sleep_edfx.STAGE_LABELS[text]] += int(duration // 30)
    np.testing.assert_array_equal(np.bincount(everything.labels, minlength=5), expected)
    # MNE's sleep tutorial (30 min of wake kept either side) reports W 188, N1 58, N2 250,
    # N3 220, REM 125 for this night.
    trimmed = sleep_edfx.hypnogram_epochs(events, wake_edge_min=30.0)
    assert np.bincount(trimmed.labels, minlength=5).tolist() == [188, 58, 250, 220, 125]
    assert np.all(np.diff(trimmed.onset_s) > 0)


def test_sleep_windows_labels_and_split(sleep_dir: Path) -> None:
    task = sleep_edfx.build(sleep_dir, wake_edge_min=None, workers=1)
    assert task.ch_names == ("Fpz-Cz", "Pz-Oz") and task.signals.shape[1:] == (2, 1920)
    assert task.signals.shape[0] == 5 * 18  # W 9 (+2 outside), N1 2, N2 3, N3 2, REM 2
    night = task.sources == str(sleep_dir / "sleep-cassette" / "SC4001E0-PSG.edf")
    assert np.bincount(task.labels[night], minlength=5).tolist() == [9, 2, 3, 2, 2]
    np.testing.assert_array_equal(task.starts[night][:5], np.arange(5) * 1920)
    split_of = dict(zip(task.subjects.tolist(), task.splits.tolist()))
    assert set(split_of) == {"SC400", "SC401", "SC402", "ST701"}
    assert sorted(split_of[s] for s in ("SC400", "SC401", "SC402")) == ["test", "train", "val"]
    assert split_of["ST701"] == "train"
    assert power_rank(task.signals)[0] == 1  # the sine was written on Pz-Oz
    trimmed = sleep_edfx.build(sleep_dir, wake_edge_min=1.0, workers=1)
    night = trimmed.sources == str(sleep_dir / "sleep-cassette" / "SC4001E0-PSG.edf")
    assert np.bincount(trimmed.labels[night], minlength=5).tolist() == [4, 2, 3, 2, 2]


def test_sleep_missing_and_malformed_hypnogram(sleep_dir: Path, tmp_path: Path) -> None:
    shutil.copy(sleep_dir / "sleep-cassette" / "SC4001E0-PSG.edf", tmp_path)
    with pytest.raises(NeuriptError, match="SC4001.*Hypnogram"):
        sleep_edfx.build(tmp_path, workers=1)
    (tmp_path / "SC4001EC-Hypnogram.edf").write_bytes(b"not an edf file at all")
    with pytest.raises(NeuriptError, match="SC4001EC-Hypnogram.edf"):
        sleep_edfx.build(tmp_path, workers=1)


# --------------------------------------------------------------------------------------------
# TUAB
# --------------------------------------------------------------------------------------------
TUH_CHANNELS = tuple(f"EEG {e.upper()}-REF" for e in TEN_TWENTY) + ("EEG EKG1-REF",)


@pytest.fixture(scope="module")
def tuab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tuab")
    files = [("train", "normal", f"aaaaaan{k}_s001_t000.edf") for k in range(3)]
    files += [("train", "abnormal", f"aaaaaab{k}_s001_t000.edf") for k in range(3)]
    files += [("train", "abnormal", "aaaaaab0_s002_t001.edf"),
              ("eval", "normal", "aaaaaae0_s001_t000.edf"),
              ("eval", "abnormal", "aaaaaae1_s003_t002.edf")]
    for k, (split, cls, name) in enumerate(files):
        write_edf(root / "edf" / split / cls / "01_tcp_ar" / name, TUH_CHANNELS, 128.0, 21.0,
                  seed=k, sine_channel="EEG O2-REF")
    return root


def test_tuab_windows_labels_and_split(tuab_dir: Path) -> None:
    task = tuab.build(tuab_dir, workers=1)
    assert task.signals.shape == (9 * 2, 20, 640) and task.ch_names == TCP_NAMES
    for source, label in zip(task.sources, task.labels):
        assert label == (1 if "/abnormal/" in source else 0)
    split_of = dict(zip(task.subjects.tolist(), task.splits.tolist()))
    assert split_of["aaaaaae0"] == split_of["aaaaaae1"] == "test"
    train_folder = [s for s in split_of if s not in ("aaaaaae0", "aaaaaae1")]
    assert len(train_folder) == 6
    assert sorted(split_of[s] for s in train_folder).count("val") == 2  # 20 % of 3 per class
    assert {s[6] for s in train_folder if split_of[s] == "val"} == {"n", "b"}
    assert int(np.sum(task.subjects == "aaaaaab0")) == 4  # two recordings, two windows each
    assert _loudest(task.signals, "O2") == _rows_with("O2")
    assert tuab.build(tuab_dir / "edf", workers=1).signals.shape == task.signals.shape


def test_tuab_missing_folder(tuab_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tuab_dir / "edf" / "train", tmp_path / "edf" / "train")
    (tmp_path / "edf" / "eval" / "normal").mkdir(parents=True)
    with pytest.raises(NeuriptError, match="eval/normal.*no .edf|eval/abnormal.*not found"):
        tuab.build(tmp_path, workers=1)


# --------------------------------------------------------------------------------------------
# TUEV
# --------------------------------------------------------------------------------------------
REC_LINES = ("0,3.0,4.0,6\n1,3.0,4.0,6\n5,10.0,11.0,1\n"
             "2,0.5,1.5,4\n7,18.0,19.0,2\n")  # the last two fall off the 20-s recording


@pytest.fixture(scope="module")
def tuev_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tuev")
    subjects = [("train", "aaaaaaar"), ("train", "aaaaaaas"), ("train", "aaaaaaat"),
                ("train", "aaaaaaau"), ("eval", "000")]
    for k, (split, subject) in enumerate(subjects):
        edf = write_edf(root / "edf" / split / subject / f"{subject}_00000001.edf", TUH_CHANNELS,
                        128.0, 20.0, seed=k, sine_channel="EEG T3-REF")
        edf.with_suffix(".rec").write_text(REC_LINES)
    return root


def test_tuev_rec_parsing(tuev_dir: Path, tmp_path: Path) -> None:
    events = tuev.parse_rec(tuev_dir / "edf" / "eval" / "000" / "000_00000001.rec")
    assert events.labels.tolist() == [5, 5, 0, 3, 1]
    assert events.channel.tolist() == [0, 1, 5, 2, 7]
    np.testing.assert_allclose(events.end_s - events.start_s, 1.0)
    bad = tmp_path / "x.rec"
    bad.write_text("0,3.0,4.0,6\n0,3.0,4.0\n")
    with pytest.raises(NeuriptError, match=r"x.rec:2: malformed"):
        tuev.parse_rec(bad)
    bad.write_text("0,3.0,4.0,9\n")
    with pytest.raises(NeuriptError, match="class 1-6"):
        tuev.parse_rec(bad)


def test_tuev_windows_labels_and_split(tuev_dir: Path) -> None:
    task = tuev.build(tuev_dir, workers=1)
    assert task.signals.shape == (5 * 3, 20, 320) and task.ch_names == TCP_NAMES
    one = task.subjects == "000"
    assert task.labels[one].tolist() == [5, 5, 0]
    np.testing.assert_array_equal(task.starts[one], np.rint((np.array([3.0, 3, 10]) - 2) * 64))
    assert set(task.splits[one].tolist()) == {"test"}
    train_folder = {s: sp for s, sp in zip(task.subjects.tolist(), task.splits.tolist())
                    if s != "000"}
    assert sorted(train_folder.values()).count("val") == 1 and len(train_folder) == 4
    assert _loudest(task.signals, "T7") == _rows_with("T7")
    unique = tuev.build(tuev_dir, unique_events=True, workers=1)
    assert unique.signals.shape[0] == 5 * 2


def test_tuev_missing_rec(tuev_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(tuev_dir / "edf", tmp_path / "edf")
    (tmp_path / "edf" / "train" / "aaaaaaas" / "aaaaaaas_00000001.rec").unlink()
    with pytest.raises(NeuriptError, match=r"aaaaaaas_00000001.edf: event file .*\.rec"):
        tuev.build(tmp_path, workers=1)
