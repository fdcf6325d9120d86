"""Readers: every bundled format against MNE, real recordings in volts, and broken files."""

from __future__ import annotations

import gzip
import shutil
import struct
import sys
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from neuript.data.csv_layouts import ADHD_CHANNELS
from neuript.data.io import (
    NAMED_READERS,
    READERS,
    guess_subject_session,
    read_annotations,
    read_recording,
)
from neuript.errors import RecordingError
from neuript.paths import data_root

ROOT = data_root()
FIXTURES = ROOT / "fixtures"
MNE_READERS = {
    ".edf": mne.io.read_raw_edf, ".bdf": mne.io.read_raw_bdf, ".gdf": mne.io.read_raw_gdf,
    ".vhdr": mne.io.read_raw_brainvision, ".set": mne.io.read_raw_eeglab,
    ".cnt": mne.io.read_raw_ant,  # the fixture is ANT Neuro (RIFF); Neuroscan: see below
    ".nxe": mne.io.read_raw_eximia, ".nedf": mne.io.read_raw_nedf,
    ".lay": mne.io.read_raw_persyst,
}
NEEDS_PACKAGE = {".cnt": "antio", ".nedf": "defusedxml"}
"""Formats whose MNE reader imports an optional package (pyproject's ``formats`` extra)."""
NO_FIXTURE = {".fif", ".mff", ".eeg", ".cdt"}
"""MNE formats without a real fixture here: their dispatch and refusals are tested."""
NEURIPT_ONLY = {".csv", ".csv.gz", ".npy", ".txt", ".tsv", ".mat"}
"""Read by neuript itself (Muse/ADHD layouts, numeric exports: tests/test_exports.py)."""
FIXTURE_FILES = sorted(
    p for p in FIXTURES.rglob("*") if p.suffix in MNE_READERS and "Hypnogram" not in p.name
)
EEGMAT = ROOT / "eegmat" / "Subject00_1.edf"
EEGMMIDB = ROOT / "eegmmidb" / "S001" / "S001R04.edf"
ADHD = ROOT / "adhd" / "adhd" / "v10p.csv.gz"
MUSE = ROOT / "muse" / "visual" / "P300" / "subject1" / "session1"


def _mne_raw(path: Path) -> mne.io.BaseRaw:
    return MNE_READERS[path.suffix](path, preload=True, verbose="error")


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_matches_mne(path: Path) -> None:
    if path.suffix in NEEDS_PACKAGE:
        pytest.importorskip(NEEDS_PACKAGE[path.suffix])
    rec = read_recording(path)
    raw = _mne_raw(path)
    assert rec.n_channels + len(rec.excluded) == len(raw.ch_names)
    assert rec.sfreq_hz == raw.info["sfreq"]
    assert rec.n_samples == raw.n_times
    assert rec.duration_s == pytest.approx(raw.n_times / raw.info["sfreq"])
    assert set(rec.ch_names).isdisjoint(rec.excluded)
    if rec.n_channels:
        np.testing.assert_array_equal(rec.data, raw.get_data(picks=list(rec.ch_names)))
    assert len(rec.events) >= len(raw.annotations)


def test_fixture_count_covers_every_format() -> None:
    assert {p.suffix for p in FIXTURE_FILES} == set(MNE_READERS)
    assert set(MNE_READERS) | NO_FIXTURE | NEURIPT_ONLY == set(READERS) | set(NAMED_READERS)
    assert not set(READERS) & set(NAMED_READERS)


def test_bdf_status_channel_becomes_events() -> None:
    path = FIXTURES / "bdf" / "test_bdf_stim_channel.bdf"
    rec = read_recording(path)
    raw = _mne_raw(path)
    assert rec.excluded == {"Status": "stim"}
    found = mne.find_events(raw, stim_channel="Status", shortest_event=1, verbose="error")
    np.testing.assert_allclose(rec.events.onset_s, found[:, 0] / raw.info["sfreq"])
    assert rec.events.description.tolist() == [str(v) for v in found[:, 2]]


def test_hypnogram_is_refused_as_a_recording_but_reads_as_annotations() -> None:
    path = FIXTURES / "edf" / "SC4001EC-Hypnogram.edf"
    with pytest.raises(RecordingError, match="annotation-only"):
        read_recording(path)
    events = read_annotations(path)
    reference = mne.read_annotations(path)
    assert len(events) == len(reference) > 0
    assert events.description[0] == "Sleep stage W"


def test_eegmat_volts_names_and_ids() -> None:
    rec = read_recording(EEGMAT)
    assert rec.n_channels == 19 and rec.sfreq_hz == 250.0
    assert rec.excluded == {"EEG A2-A1": "ref", "ECG ECG": "ecg"}
    assert (rec.subject, rec.session) == ("Subject00", "1")
    std = rec.data.std(axis=1)
    assert ((std > 1e-7) & (std < 1e-3)).all()


def test_eegmmidb_annotations() -> None:
    rec = read_recording(EEGMMIDB)
    raw = _mne_raw(EEGMMIDB)
    assert rec.n_channels == 64 and rec.sfreq_hz == 160.0
    assert (rec.subject, rec.session) == ("S001", "R04")
    assert set(rec.events.description) == {"T0", "T1", "T2"}
    np.testing.assert_allclose(rec.events.onset_s, raw.annotations.onset)
    std = rec.data.std(axis=1)
    assert ((std > 1e-7) & (std < 1e-3)).all()


@pytest.mark.parametrize("path", sorted((ROOT / "eegmmidb" / "S001").glob("*.edf")),
                         ids=lambda p: p.name)
def test_every_eegmmidb_run_reads(path: Path) -> None:
    rec = read_recording(path)  # R01/R02 carry non-UTF-8 annotation bytes (latin-1 fallback)
    raw = mne.io.read_raw_edf(path, preload=False, encoding="latin1", verbose="error")
    assert rec.n_channels == 64 and rec.n_samples == raw.n_times
    assert rec.events.description[0] == "T0"
    assert rec.session == path.stem[4:]


def test_adhd_layout() -> None:
    rec = read_recording(ADHD)
    table = pd.read_csv(ADHD).to_numpy()
    assert rec.ch_names == ADHD_CHANNELS and rec.sfreq_hz == 128.0
    np.testing.assert_allclose(rec.data, table.T * 1e-6)
    assert rec.subject == "v10p"
    std = rec.data.std(axis=1)
    assert ((std > 1e-7) & (std < 1e-3)).all()


MUSE_MARKER0 = ROOT / "muse/visual/P300/subject2/session2/data_2018-05-04-01.50.45.csv.gz"


@pytest.mark.parametrize("path", [*sorted(MUSE.glob("*.csv.gz")), MUSE_MARKER0],
                         ids=lambda p: p.name)
def test_muse_layout(path: Path) -> None:
    rec = read_recording(path)
    table = pd.read_csv(path)
    assert rec.ch_names == ("TP9", "AF7", "AF8", "TP10") and rec.sfreq_hz == 256.0
    assert rec.excluded["Right AUX"] == "misc"
    np.testing.assert_allclose(rec.data, table[["TP9", "AF7", "AF8", "TP10"]].to_numpy().T * 1e-6)
    marker = table.iloc[:, 6].to_numpy()
    starts = np.flatnonzero((marker != 0) & (np.r_[0, marker[:-1]] != marker))
    np.testing.assert_allclose(rec.events.onset_s, starts / 256.0)
    assert set(rec.events.description) == {"1", "2"}
    assert (rec.subject, rec.session) == (path.parent.parent.name, path.parent.name)
    std = rec.data.std(axis=1)
    assert ((std > 1e-7) & (std < 1e-3)).all()


def test_name_based_types_and_edf_plus_annotations(tmp_path: Path) -> None:
    edfio = pytest.importorskip("edfio")
    rng = np.random.default_rng(0)
    labels = ["EEG Fp1", "EEG Cz", "EOG left", "ECG", "STI 014"]
    stim = np.zeros(1000)
    stim[200:210], stim[600:620] = 3, 5
    signals = [rng.normal(0, 20, 1000) for _ in labels[:4]] + [stim]
    edf = edfio.Edf(
        [edfio.EdfSignal(s, 100.0, label=lab, physical_dimension="uV") for s, lab in
         zip(signals, labels)],
        annotations=[edfio.EdfAnnotation(1.5, None, "T1")],
    )
    path = tmp_path / "made.edf"
    edf.write(path)
    rec = read_recording(path)
    assert rec.ch_names == ("EEG Fp1", "EEG Cz")
    assert rec.excluded == {"EOG left": "eog", "ECG": "ecg", "STI 014": "stim"}
    np.testing.assert_allclose(rec.data[0], signals[0] * 1e-6, atol=2e-8)
    assert rec.events.description.tolist() == ["T1", "3", "5"]
    np.testing.assert_allclose(rec.events.onset_s, [1.5, 2.0, 6.0])


# ------------------------------------------------------------------------------------------
# broken files: every one a RecordingError naming the file
# ------------------------------------------------------------------------------------------
def _raises(path: Path, match: str, **options: object) -> str:
    with pytest.raises(RecordingError, match=match) as err:
        read_recording(path, reader_options=options)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("suffix", [".edf", ".bdf", ".gdf", ".vhdr", ".set", ".csv", ".csv.gz",
                                    ".cnt", ".nedf", ".lay", ".cdt", ".eeg"])
def test_empty_and_random_files(tmp_path: Path, suffix: str) -> None:
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    _raises(empty, "empty")
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(np.random.default_rng(1).bytes(4096))
    _raises(junk, ".")


def test_truncated_edf_and_bdf(tmp_path: Path) -> None:
    for source in (EEGMAT, FIXTURES / "bdf" / "test_bdf_stim_channel.bdf"):
        blob = source.read_bytes()
        cut = tmp_path / f"cut{source.suffix}"
        cut.write_bytes(blob[: len(blob) // 3])
        _raises(cut, rf"file size {len(blob) // 3} bytes but the header says {len(blob)} .*"
                     r"truncated .*binary mode$")
        header_only = tmp_path / f"head{source.suffix}"
        header_only.write_bytes(blob[:100])
        _raises(header_only, "EDF")


def _edf_sizes(blob: bytes, bytes_per_sample: int) -> tuple[int, int, int]:
    """Header bytes, data records and bytes per record, parsed independently of neuript."""
    n_signals = int(blob[252:256])
    spr = blob[256 + 216 * n_signals:256 + 224 * n_signals]
    per_record = sum(int(spr[i * 8:(i + 1) * 8]) for i in range(n_signals))
    return int(blob[184:192]), int(blob[236:244]), per_record * bytes_per_sample


@pytest.mark.parametrize("source", [EEGMAT, FIXTURES / "bdf" / "test_bdf_stim_channel.bdf"],
                         ids=lambda p: p.suffix)
def test_edf_whose_size_disagrees_with_its_header_is_refused(tmp_path: Path, source: Path) -> None:
    """Issue 13: a text-mode copy (LF → CR LF) or appended bytes was read as garbage."""
    blob = source.read_bytes()
    header_bytes, n_records, record_bytes = _edf_sizes(blob, 3 if source.suffix == ".bdf" else 2)
    assert len(blob) == header_bytes + n_records * record_bytes  # the bundled file is intact
    crlf = tmp_path / f"crlf{source.suffix}"
    damaged = blob[:header_bytes] + blob[header_bytes:].replace(b"\n", b"\r\n")
    assert len(damaged) > len(blob)
    crlf.write_bytes(damaged)
    _raises(crlf, rf"^{crlf}: file size {len(damaged)} bytes but the header says {len(blob)} "
                  rf"\({header_bytes} header \+ {n_records} records × {record_bytes} bytes\): "
                  rf"{len(damaged) - len(blob)} extra bytes \(a text-mode copy.*CR LF")
    padded = tmp_path / f"padded{source.suffix}"
    padded.write_bytes(blob + b"\0" * record_bytes)  # a whole record too many: still refused
    _raises(padded, f"{record_bytes} extra bytes")
    unknown = bytearray(blob)
    unknown[236:244] = b"-1      "  # number of data records unknown: whole records only
    whole = tmp_path / f"unknown{source.suffix}"
    whole.write_bytes(bytes(unknown))
    assert read_recording(whole).n_samples == read_recording(source).n_samples
    partial = tmp_path / f"partial{source.suffix}"
    partial.write_bytes(bytes(unknown[:-7]))
    _raises(partial, rf"file size {len(blob) - 7} bytes is not the {header_bytes}-byte header "
                     rf"plus whole {record_bytes}-byte records \(record count unknown\)")


def test_size_check_reaches_inspect(tmp_path: Path) -> None:
    """inspect (like prepare and predict) reads through read_recording and reports the refusal."""
    from neuript.inspect import inspect_recording

    damaged = tmp_path / "Subject00_1.edf"
    damaged.write_bytes(EEGMAT.read_bytes().replace(b"\n", b"\r\n"))
    report = inspect_recording(damaged)
    assert [p.kind for p in report.problems] == ["unreadable"] and not report.ok
    assert "text-mode copy" in report.problems[0].message


def test_latin1_annotation_fallback_warning_names_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = tmp_path / "S001R01.edf"  # its EDF+ annotations are not UTF-8
    shutil.copyfile(ROOT / "eegmmidb" / "S001" / "S001R01.edf", copy)
    with caplog.at_level("WARNING", logger="neuript.data.io"):
        read_recording(copy)
    warned = [r.getMessage() for r in caplog.records if "latin-1" in r.getMessage()]
    assert warned == [f"{copy}: annotations are not UTF-8; decoding them as latin-1"]


def test_unsupported_missing_and_unknown_layout(tmp_path: Path) -> None:
    other = tmp_path / "rec.xyz"
    other.write_text("1,2,3\n")
    _raises(other, "unsupported file type '.xyz'")
    _raises(tmp_path / "missing.edf", "no such file")
    csv = tmp_path / "other.csv"
    csv.write_text("a,b\n1,2\n")
    _raises(csv, "unknown CSV layout")


def _adhd_like(path: Path, values: np.ndarray) -> Path:
    pd.DataFrame(values, columns=[str(i) for i in range(19)]).to_csv(path, index=False)
    return path


def test_csv_nan_zero_rows_and_text(tmp_path: Path) -> None:
    values = np.random.default_rng(2).normal(0, 50, (300, 19))
    values[10, 4] = np.nan
    _raises(_adhd_like(tmp_path / "nan.csv", values), r"non-finite.*C3")
    values[10, 4] = np.inf
    _raises(_adhd_like(tmp_path / "inf.csv", values), "non-finite")
    _raises(_adhd_like(tmp_path / "zero.csv", np.zeros((0, 19))), "zero-length")
    text = tmp_path / "text.csv"
    text.write_text(",".join(map(str, range(19))) + "\n" + ",".join(["a"] * 19) + "\n")
    _raises(text, "not numeric")


def _muse_like(path: Path, stamps: np.ndarray) -> Path:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"timestamps": stamps})
    for name in ("TP9", "AF7", "AF8", "TP10", "Right AUX"):
        frame[name] = rng.normal(0, 20, stamps.size)
    frame["Marker"] = 0
    with gzip.open(path, "wt") as fh:
        frame.to_csv(fh, index=False)
    return path


def test_muse_inconsistent_timestamps(tmp_path: Path) -> None:
    good = 1000 + np.arange(2560) / 256.0
    assert read_recording(_muse_like(tmp_path / "ok.csv.gz", good)).sfreq_hz == 256.0
    slow = 1000 + np.arange(2560) / 200.0
    _raises(_muse_like(tmp_path / "slow.csv.gz", slow), "inconsistent sampling.*200")
    gap = good.copy()
    gap[1000:] += 5.0
    _raises(_muse_like(tmp_path / "gap.csv.gz", gap), r"1 timestamp jump\(s\) longer than 1 s, "
            r"the first \+5\.00 s at row 1000 \(3\.9 s into the file\); split the file")
    far_back = good.copy()
    far_back[700:] -= 2.0
    _raises(_muse_like(tmp_path / "far_back.csv.gz", far_back), r"the first -2\.00 s at row 700")
    nan = good.copy()
    nan[[30, 31, 90]] = np.nan
    _raises(_muse_like(tmp_path / "nan.csv.gz", nan), r"3 non-finite .*timestamp\(s\), the first "
            "at row 30; drop those rows")


def test_muse_lsl_jitter_is_accepted_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 13: LSL stamps that step back by tens of ms were refused."""
    jitter = 1000 + np.arange(2560) / 256.0
    jitter[[100, 900, 1700]] -= 0.045  # three stamps 45 ms early: each steps back ~41 ms
    jitter[2000] = jitter[1999]  # a repeated stamp
    path = _muse_like(tmp_path / "jitter.csv.gz", jitter)
    with caplog.at_level("WARNING", logger="neuript.data.io"):
        rec = read_recording(path)
    assert rec.sfreq_hz == 256.0 and rec.n_samples == 2560
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [f"{path}: 4 timestamp(s) repeat or step backwards (largest step back "
                      "0.041 s, first at row 100); samples are taken at the nominal 256 Hz"]


def test_subject_session_layouts(tmp_path: Path) -> None:
    assert guess_subject_session("/x/eegmat/Subject07_2.edf") == ("Subject07", "2")
    assert guess_subject_session("/x/S012/S012R11.edf") == ("S012", "R11")
    assert guess_subject_session("/m/subject3/session2/data_1.csv.gz") == ("subject3", "session2")
    assert guess_subject_session("/a/control/v107.csv.gz") == ("v107", None)
    assert guess_subject_session("/b/sub-01_ses-02_task-rest_eeg.edf") == ("01", "02")
    assert guess_subject_session("/c/whatever.edf") == (None, None)
    copy = tmp_path / "Subject31_2.edf"
    shutil.copy(EEGMAT, copy)
    rec = read_recording(copy, session="override")
    assert (rec.subject, rec.session) == ("Subject31", "override")


# ------------------------------------------------------------------------------------------
# formats that share a suffix, optional packages, reader options
# ------------------------------------------------------------------------------------------
ANT = FIXTURES / "ant" / "test_CA_208.cnt"


def _neuroscan_cnt(path: Path, counts: np.ndarray, header_samples: int = 0) -> Path:
    """A Neuroscan CNT (SETUP header, 75-byte channel blocks, int16 samples, empty event table).

    ``header_samples=0`` is the case MNE cannot size by itself: it needs ``data_format``.
    """
    n_channels, n_samples = counts.shape
    head = bytearray(900 + 75 * n_channels)
    struct.pack_into("<H", head, 370, n_channels)
    struct.pack_into("<H", head, 376, 250)  # Hz
    struct.pack_into("<i", head, 864, header_samples)
    struct.pack_into("<i", head, 886, len(head) + counts.size * 2)  # event table offset
    for i, name in enumerate(["Fz", "Cz", "Pz"][:n_channels]):
        block = 900 + 75 * i
        head[block:block + len(name)] = name.encode()
        struct.pack_into("<ff", head, block + 19, 0.1 * (i + 1), 0.1)  # 2-D position
        struct.pack_into("<f", head, block + 59, 204.8)  # sensitivity: 1 count = 1 µV
        struct.pack_into("<f", head, block + 71, 1.0)
    samples = np.ascontiguousarray(counts.T, dtype="<i2").tobytes()
    path.write_bytes(bytes(head) + samples + b"\x01" + bytes(8))
    return path


def test_neuroscan_cnt_needs_data_format_and_reads_with_it(tmp_path: Path) -> None:
    """Issue 13 item 7: a CNT MNE cannot size was a multi-line dump with no way to pass it."""
    counts = np.random.default_rng(4).integers(-500, 500, (3, 1000))
    path = _neuroscan_cnt(tmp_path / "scan.cnt", counts)
    message = _raises(path, r"could not be read as Neuroscan CNT by MNE \(RuntimeError: Could "
                      r"not automatically compute .*\); pass the reader option data_format=")
    assert "--reader-option data_format=int32" in message and "read_raw_ant" not in message
    rec = read_recording(path, reader_options={"data_format": "int16"})
    raw = mne.io.read_raw_cnt(path, data_format="int16", preload=True, verbose="error")
    assert rec.ch_names == ("Fz", "Cz", "Pz") and rec.sfreq_hz == 250.0
    np.testing.assert_array_equal(rec.data, raw.get_data())
    np.testing.assert_allclose(rec.data, counts * 1e-6, rtol=1e-6)
    _raises(path, r"ValueError: Invalid value for the 'data_format' parameter", data_format="x")


def test_cnt_flavour_is_told_by_its_first_bytes(tmp_path: Path) -> None:
    assert ANT.read_bytes()[:4] in (b"RIFF", b"RF64")
    _raises(ANT, r"reader option\(s\) data_format not accepted by mne.io.read_raw_ant \(ANT "
                 r"Neuro CNT\); accepted: eog, misc, bipolars", data_format="int16")
    neuroscan = _neuroscan_cnt(tmp_path / "n.cnt", np.zeros((2, 10), int))
    _raises(neuroscan, r"reader option\(s\) bipolars not accepted by mne.io.read_raw_cnt",
            bipolars=["Fz-Cz"])


def test_missing_optional_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "antio", None)  # import antio now fails
    _raises(ANT, r"^.*: reading ANT Neuro CNT files needs the Python package 'antio', which is "
                 r"not installed: pip install antio \(or pip install 'neuript\[formats\]'\)$")


def test_unknown_reader_option_lists_the_accepted_ones() -> None:
    _raises(EEGMAT, r"reader option\(s\) bogus, data_format not accepted by mne.io.read_raw_edf "
                    r"\(EDF\); accepted: eog, misc, stim_channel, exclude, .*encoding",
            bogus=1, data_format="int16")
    rec = read_recording(EEGMAT, reader_options={"exclude": ["ECG ECG"]})  # reaches MNE
    assert rec.excluded == {"EEG A2-A1": "ref"} and rec.n_channels == 19


def test_brainvision_data_file_is_not_read_as_nihon_kohden(tmp_path: Path) -> None:
    _raises(FIXTURES / "brainvision" / "test_NO.eeg",
            r"the data file of the BrainVision recording test_NO.vhdr: read .*test_NO.vhdr instead")
    for name in ("test_NO.vhdr", "test_NO.vmrk"):
        shutil.copy(FIXTURES / "brainvision" / name, tmp_path / name.replace("test_NO", "other"))
    shutil.copy(FIXTURES / "brainvision" / "test_NO.eeg", tmp_path / "TEST_NO.EEG")
    _raises(tmp_path / "TEST_NO.EEG", "BrainVision recording other.vhdr")  # DataFile= names it
    lone = tmp_path / "lone.EEG"
    lone.write_bytes(np.random.default_rng(5).bytes(512))
    _raises(lone, r"neither a Nihon Kohden .EEG file .* nor the data file of a BrainVision")
    fake = tmp_path / "fake.EEG"
    fake.write_bytes(b"EEG-9999Z V09.00" + bytes(600))
    _raises(fake, r"could not be read as Nihon Kohden by MNE \(ValueError: Not a valid Nihon")


def test_formats_without_fixture_dispatch(tmp_path: Path) -> None:
    _raises(tmp_path / "missing.mff", r"no such folder \(an EGI .mff recording is a folder\)")
    (tmp_path / "empty.mff").mkdir()
    _raises(tmp_path / "empty.mff", r"could not be read as EGI MFF by MNE")
    curry = tmp_path / "rec.cdt"
    curry.write_bytes(b"\x00" * 64)
    _raises(curry, r"could not be read as Curry by MNE \(FileNotFoundError: no corresponding "
                   r"header file")
    _raises(tmp_path / "missing.EEG", "no such file")


def test_eximia_size_must_be_whole_samples(tmp_path: Path) -> None:
    blob = (FIXTURES / "eximia" / "test_eximia.nxe").read_bytes()
    cut = tmp_path / "cut.nxe"
    cut.write_bytes(blob[:-3])
    _raises(cut, rf"file size {len(blob) - 3} bytes is not whole 128-byte samples")


def test_reader_prints_do_not_reach_stdout(capsys: pytest.CaptureFixture) -> None:
    read_recording(next((FIXTURES / "persyst").glob("*.lay")))  # MNE prints a birth-date note
    assert capsys.readouterr().out == ""


def test_reading_in_threads_leaves_stdout_alone() -> None:
    """Task builders read files in a thread pool; sys.stdout must be the same object after."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    before = sys.stdout
    paths = sorted((ROOT / "eegmat").glob("Subject0[0-3]_*.edf"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        recs = list(pool.map(read_recording, paths))
    assert len(recs) == len(paths) == 8 and sys.stdout is before
