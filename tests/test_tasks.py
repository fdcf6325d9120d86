"""Tests of the labelled tasks on the bundled recordings (neuript.data.tasks)."""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import time
from pathlib import Path

import mne
import numpy as np
import pytest
from scipy.signal import resample_poly

from neuript.data.montage import TCP_PAIRS
from neuript.data.splits import stratified_subject_split
from neuript.data.tasks import TASKS, build_task, describe_task, get_task, task_data_dir
from neuript.data.tasks._common import cache_key
from neuript.data.tasks.base import SPLITS, TaskSpec
from neuript.errors import NeuriptError
from neuript.paths import data_root

ROOT = data_root()
EEGMAT = ROOT / "eegmat"
MUSE = ROOT / "muse" / "visual" / "P300"

# The documented protocol numbers (module docstring of mental_arithmetic and docs/tasks.md).
MA_COUNTS = {"train": {"rest": 1007, "task": 336}, "val": {"rest": 124, "task": 48},
             "test": {"rest": 144, "task": 48}}

pytestmark = pytest.mark.skipif(not EEGMAT.is_dir(), reason="bundled data root not found")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory):
    """A private task cache for this module."""
    path = tmp_path_factory.mktemp("neuript_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEURIPT_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def ma_build(cache_root: Path):
    """MentalArithmetic built from the EDFs (timed), then loaded from the cache (timed)."""
    tic = time.perf_counter()
    built = build_task("mental_arithmetic")
    t_build = time.perf_counter() - tic
    tic = time.perf_counter()
    cached = build_task("mental_arithmetic")
    t_cached = time.perf_counter() - tic
    return built, cached, t_build, t_cached


def _edf_seconds(path: Path) -> float:
    """Recording length from the EDF header bytes (independent of MNE and neuript.io)."""
    head = path.read_bytes()[:256]
    return int(head[236:244]) * float(head[244:252])


# --------------------------------------------------------------------------------------------
# MentalArithmetic
# --------------------------------------------------------------------------------------------
def test_mental_arithmetic_counts_match_documentation_and_headers(ma_build):
    task = ma_build[0]
    assert task.counts() == MA_COUNTS
    assert len(task.labels) == 1707  # the paper's number
    # independent reference: floor(duration / 5 s) windows per file, from the EDF headers
    for path in sorted(EEGMAT.glob("Subject*_[12].edf")):
        n_expected = int(_edf_seconds(path) // 5)
        assert np.sum(task.sources == str(path)) == n_expected, path.name
    assert task.signals.shape == (1707, 20, 320)
    assert task.signals.dtype == np.float32


def test_mental_arithmetic_split_labels_and_channels(ma_build):
    task = ma_build[0]
    number = np.array([int(s.removeprefix("Subject")) + 1 for s in task.subjects])  # 1-based
    expected = np.where(number <= 28, "train", np.where(number <= 32, "val", "test"))
    np.testing.assert_array_equal(task.splits, expected)
    for split in SPLITS:
        assert len(set(task.subjects[task.indices(split)])) == {"train": 28}.get(split, 4)
    suffix_label = np.array([int(Path(s).stem[-1]) - 1 for s in task.sources])
    np.testing.assert_array_equal(task.labels, suffix_label)
    assert all(Path(src).stem.startswith(subj) for src, subj in zip(task.sources, task.subjects))
    assert task.ch_names == tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
    assert task.positions.shape == (20, 3) and np.isfinite(task.positions).all()
    assert task.preprocess.compression == "alaw" and task.preprocess.window_s == 5.0
    # consecutive non-overlapping windows from the start of each file
    first = task.sources == str(EEGMAT / "Subject00_2.edf")
    np.testing.assert_array_equal(task.starts[first], np.arange(12) * 320)


def test_mental_arithmetic_signal_matches_mne_reference(ma_build):
    """One bipolar channel, filtered by MNE and resampled by scipy directly, equals the windows."""
    task = ma_build[0]
    raw = mne.io.read_raw_edf(EEGMAT / "Subject03_1.edf", preload=True, verbose="error")
    names = [c.removeprefix("EEG ") for c in raw.ch_names]
    data_uv = raw.get_data() * 1e6
    pair = data_uv[names.index("C3")] - data_uv[names.index("P3")]
    ref = mne.filter.filter_data(pair, 250.0, 0.1, 30.0, verbose="error")
    ref = resample_poly(ref, 32, 125)  # 250 Hz -> 64 Hz
    idx = np.flatnonzero(task.sources == str(EEGMAT / "Subject03_1.edf"))
    ch = task.ch_names.index("C3-P3")
    ours = np.concatenate([task.signals[i, ch] for i in idx[2:30]])
    theirs = ref[task.starts[idx[2]]:task.starts[idx[2]] + len(ours)]
    assert np.corrcoef(ours, theirs)[0, 1] > 0.999
    assert np.std(ours) == pytest.approx(np.std(theirs), rel=0.1)  # µV, not volts


def test_mental_arithmetic_cache_speed_and_manifest_hash(ma_build, cache_root: Path):
    built, cached, t_build, t_cached = ma_build
    # a ratio within this run (no wall-clock limit: the machine may be busy)
    assert t_cached < t_build / 10, f"cached load {t_cached:.2f} s vs build {t_build:.1f} s"
    assert list((cache_root / "tasks").glob("mental_arithmetic-*.npz"))
    np.testing.assert_array_equal(built.signals, cached.signals)
    assert cached.preprocess == built.preprocess and cached.ch_names == built.ch_names
    h = built.split_manifest()["hash"]
    assert cached.split_manifest()["hash"] == h
    labels = built.labels.copy()
    labels[5] = 1 - labels[5]
    assert dataclasses.replace(built, labels=labels).split_manifest()["hash"] != h


def test_cache_key_tracks_options_config_and_files(tmp_path: Path):
    src = EEGMAT / "Subject00_1.edf"
    (tmp_path / src.name).write_bytes(src.read_bytes())
    spec = get_task("mental_arithmetic")
    key = cache_key("mental_arithmetic", spec.version, {}, spec.preprocess, tmp_path)
    assert key == cache_key("mental_arithmetic", spec.version, {}, spec.preprocess, tmp_path)
    assert key != cache_key("mental_arithmetic", spec.version, {"montage": "monopolar"},
                            spec.preprocess, tmp_path)
    other = dataclasses.replace(spec.preprocess, reject_abs_uv=100.0)
    assert key != cache_key("mental_arithmetic", spec.version, {}, other, tmp_path)
    stat = (tmp_path / src.name).stat()
    os.utime(tmp_path / src.name, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert key != cache_key("mental_arithmetic", spec.version, {}, spec.preprocess, tmp_path)


# --------------------------------------------------------------------------------------------
# ADHD
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adhd_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 10 children of each group, linked into a private folder (keeps the test fast)."""
    root = tmp_path_factory.mktemp("adhd")
    for group in ("adhd", "control"):
        (root / group).mkdir()
        for path in sorted((ROOT / "adhd" / group).glob("*.csv.gz"))[:10]:
            (root / group / path.name).symlink_to(path)
    return root


def test_adhd_subject_split(adhd_subset: Path, cache_root: Path):
    task = build_task("adhd", data_dir=adhd_subset)
    assert task.ch_names == tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
    assert task.signals.shape[1:] == (20, 256)
    split_of: dict[str, set[str]] = {}
    label_of: dict[str, set[int]] = {}
    for subj, split, label in zip(task.subjects, task.splits, task.labels):
        split_of.setdefault(subj, set()).add(split)
        label_of.setdefault(subj, set()).add(int(label))
    assert all(len(v) == 1 for v in split_of.values()), "a subject is in two splits"
    assert all(len(v) == 1 for v in label_of.values()), "a subject has two classes"
    for split in SPLITS:
        assert set(task.labels[task.indices(split)]) == {0, 1}, split
    # the group folder gives the label
    folder = np.array([Path(s).parent.name for s in task.sources])
    np.testing.assert_array_equal(task.labels, (folder == "adhd").astype(int))
    assert len(split_of) == 20
    n_per_split = {sp: sum(sp in v for v in split_of.values()) for sp in SPLITS}
    assert n_per_split == {"train": 12, "val": 4, "test": 4}  # round(0.15 * 10) = 2 per class


def test_stratified_subject_split_is_seeded_and_stratified():
    subjects = {f"s{i:03d}": i % 2 for i in range(40)}
    a = stratified_subject_split(subjects, (0.7, 0.15, 0.15), seed=0)
    assert a == stratified_subject_split(subjects, (0.7, 0.15, 0.15), seed=0)
    assert a != stratified_subject_split(subjects, (0.7, 0.15, 0.15), seed=1)
    for cls in (0, 1):
        members = [s for s, c in subjects.items() if c == cls]
        got = [a[s] for s in members]
        assert (got.count("train"), got.count("val"), got.count("test")) == (14, 3, 3)
    with pytest.raises(NeuriptError, match="sum"):
        stratified_subject_split(subjects, (0.5, 0.2, 0.2))


# --------------------------------------------------------------------------------------------
# Muse P300
# --------------------------------------------------------------------------------------------
def _muse_markers(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Marker sample indices, marker values and row count, read with plain gzip + numpy."""
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", skiprows=1)
    marker = table[:, 6].astype(int)
    idx = np.flatnonzero(marker)
    return idx, marker[idx], table.shape[0]


@pytest.fixture(scope="module")
def muse_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first two files of each Muse subject, linked into the same layout."""
    root = tmp_path_factory.mktemp("muse")
    for subject in sorted(MUSE.glob("subject*")):
        for path in sorted(subject.glob("session*/*.csv.gz"))[:2]:
            (root / subject.name / path.parent.name).mkdir(parents=True, exist_ok=True)
            (root / subject.name / path.parent.name / path.name).symlink_to(path)
    return root


def test_muse_p300_epochs_equal_markers_that_fit(muse_subset: Path, cache_root: Path):
    task = build_task("muse_p300", data_dir=muse_subset)
    assert task.ch_names == ("TP9", "AF7", "AF8", "TP10")
    assert task.signals.shape[1:] == (4, 128)
    files = sorted(muse_subset.glob("subject*/session*/*.csv.gz"))
    assert len(files) == 9 and set(task.sources) == {str(p) for p in files}
    for path in files:
        idx, values, n_rows = _muse_markers(path)
        onset_s = idx / 256.0
        fits = (onset_s - 0.7 >= 0) & (onset_s + 1.3 <= n_rows / 256.0)
        mine = task.sources == str(path)
        assert mine.sum() == fits.sum(), path
        np.testing.assert_array_equal(task.labels[mine], (values[fits] == 2).astype(int))
        np.testing.assert_allclose(task.starts[mine] / 64.0, onset_s[fits] - 0.7, atol=1 / 64)
    splits = {s: set(task.subjects[task.indices(s)]) for s in SPLITS}
    assert splits == {"train": {"subject1", "subject2", "subject3"}, "val": {"subject4"},
                      "test": {"subject5"}}


# --------------------------------------------------------------------------------------------
# EEGMMIDB
# --------------------------------------------------------------------------------------------
def test_eegmmidb_labels_match_annotations(cache_root: Path):
    task = build_task("eegmmidb")
    assert task.class_names == ("left", "right")
    assert task.signals.shape[1:] == (64, 256)
    for run, split in (("04", "train"), ("08", "val"), ("12", "test")):
        path = ROOT / "eegmmidb" / "S001" / f"S001R{run}.edf"
        ann = mne.read_annotations(path, encoding="latin1")
        keep = np.isin(ann.description, ["T1", "T2"])
        mine = task.sources == str(path)
        np.testing.assert_array_equal(task.labels[mine], (ann.description[keep] == "T2"))
        np.testing.assert_allclose(task.starts[mine] / 64.0, ann.onset[keep], atol=1 / 64)
        assert set(task.splits[mine]) == {split}
    assert not any("R06" in s for s in task.sources)
    again = build_task("eegmmidb", cache=False)  # a second, uncached build
    assert again.split_manifest()["hash"] == task.split_manifest()["hash"]
    np.testing.assert_array_equal(again.signals, task.signals)
    feet = build_task("eegmmidb", paradigm="fists_feet")
    assert feet.class_names == ("fists", "feet") and all("R06" in s or "R10" in s or "R14" in s
                                                         for s in feet.sources)
    assert feet.split_manifest()["hash"] != task.split_manifest()["hash"]


# --------------------------------------------------------------------------------------------
# registry and errors
# --------------------------------------------------------------------------------------------
def test_registry_entries_are_consistent():
    for name, spec in TASKS.items():
        assert spec.name == name and spec.class_names and spec.protocol
        if spec.default_dir is not None:
            assert (ROOT / spec.default_dir).is_dir(), spec.default_dir
    with pytest.raises(NeuriptError, match="known tasks: .*mental_arithmetic"):
        get_task("mental_arithmetics")
    fake = dataclasses.replace(TASKS["adhd"], name="tuab", default_dir=None)
    with pytest.raises(NeuriptError, match="pass data_dir"):
        task_data_dir(fake, None, None)
    assert task_data_dir(fake, "/x/y", None) == Path("/x/y")


def test_missing_data_errors(tmp_path: Path):
    missing = tmp_path / "nowhere"
    with pytest.raises(NeuriptError, match=re.escape(str(missing))):
        build_task("mental_arithmetic", data_dir=missing, cache=False)
    with pytest.raises(NeuriptError, match=r"SubjectNN_1\.edf"):
        build_task("mental_arithmetic", data_dir=tmp_path, cache=False)
    with pytest.raises(NeuriptError, match="control"):
        build_task("adhd", data_dir=tmp_path, cache=False)
    with pytest.raises(NeuriptError, match="unknown option.*accepted"):
        build_task("adhd", data_dir=tmp_path, colour="red")


def test_describe_task(ma_build):
    text = describe_task(ma_build[0])
    assert re.search(r"train\s+1007\s+336\s+28\s+1343", text)
    assert re.search(r"total\s+1275\s+432\s+36\s+1707", text)
    assert "Fp1-F7" in text


def test_spec_summary_is_one_line():
    for spec in TASKS.values():
        assert isinstance(spec, TaskSpec) and "\n" not in spec.summary
