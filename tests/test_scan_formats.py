"""Folder scans agree with the readers: companions by name, EGI .mff folders, Nihon Kohden .eeg,
and `neuript prepare` over the fixture folder of every format MNE reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli import run_cli
from neuript.config import PreprocessConfig
from neuript.data.scan import find_inputs, scan_inputs, source_stat
from neuript.data.store import WindowStore, prepare_corpus, skip_class
from neuript.errors import NeuriptError
from neuript.paths import data_root

FIXTURES = data_root() / "fixtures"
RECORDINGS = {  # every recording of the fixture folder (the rest are companions)
    "ant/test_CA_208.cnt", "bdf/test_bdf_stim_channel.bdf", "brainvision/test_NO.vhdr",
    "edf/SC4001EC-Hypnogram.edf", "edf/test_reduced.edf", "edf/test_utf8_annotations.edf",
    "eeglab/test_raw.set", "eximia/test_eximia.nxe", "gdf/test_1ch.gdf", "nedf/testdata.nedf",
    "persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.lay",
}


def _fixtures() -> Path:
    if not (FIXTURES / "persyst").is_dir():
        pytest.skip(f"fixture folder missing: {FIXTURES}")
    return FIXTURES


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"\x00" * 16)
    return folder


def _names(paths, folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder.resolve())) for p in paths)


def _exit_code(argv: list[str], capsys) -> tuple[int, str]:
    run = run_cli(argv, capsys)
    return run.code, run.err


def test_fixture_folder_has_no_unsupported_file() -> None:
    folder = _fixtures().resolve()
    (scan,) = scan_inputs(folder)
    assert _names(scan.files, folder) == sorted(RECORDINGS)
    assert scan.unsupported == ()
    companions = _names(scan.companions, folder)
    assert "persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.dat" in companions
    assert "montage/captrak_coords.bvct" in companions  # an electrode position file
    assert {"brainvision/test_NO.eeg", "brainvision/test_NO.vmrk", "eeglab/test_raw.fdt",
            "ant/test_CA_208.evt"} <= set(companions)


def test_companions_by_name_curry_nihon_kohden_persyst(tmp_path) -> None:
    folder = _touch(tmp_path / "d", "rec.cdt", "rec.cdt.dpa", "rec.cdt.cef", "orphan.cdt.dpo",
                    "NK.EEG", "NK.PNT", "NK.21E", "NK.LOG", "nk2.eeg", "nk2.21e",
                    "lone.eeg", "lone.log", "p.lay", "p.dat", "lone.dat")
    (folder / "bv.vhdr").write_text("DataFile=bv.eeg\n")
    _touch(folder, "bv.eeg", "bv.pnt")  # a .vhdr names it: BrainVision data, whatever sits beside
    (scan,) = scan_inputs(folder)
    assert _names(scan.files, folder) == ["NK.EEG", "bv.vhdr", "nk2.eeg", "p.lay", "rec.cdt"]
    assert _names(scan.companions, folder) == ["NK.21E", "NK.LOG", "NK.PNT", "bv.eeg", "nk2.21e",
                                               "p.dat", "rec.cdt.cef", "rec.cdt.dpa"]
    # lone.log: its lone.eeg is no Nihon Kohden recording; bv.pnt: bv.eeg is BrainVision data
    assert _names(scan.unsupported, folder) == ["bv.pnt", "lone.dat", "lone.eeg", "lone.log",
                                                "orphan.cdt.dpo"]


def test_an_mff_folder_is_one_recording_and_never_searched(tmp_path) -> None:
    folder = _touch(tmp_path / "study", "a/rec.mff/info.xml", "a/rec.mff/signal1.bin",
                    "a/rec.mff/sub/epochs.xml", "b.edf")
    mff = (folder / "a" / "rec.mff").resolve()
    (scan,) = scan_inputs(folder)
    assert scan.files == (mff, (folder / "b.edf").resolve())
    assert scan.unsupported == () and scan.companions == ()
    assert scan_inputs(folder / "a" / "rec.mff")[0].files == (mff,)  # named directly
    assert find_inputs(str(folder / "**")) == [mff, (folder / "b.edf").resolve()]  # a glob too
    assert source_stat(mff)[0] == 48  # its files' bytes, not the folder entry's


def test_prepare_reads_every_fixture_format(tmp_path, capsys) -> None:
    folder = _fixtures()
    code, _ = _exit_code(["prepare", str(folder), "--out", str(tmp_path / "c")], capsys)
    assert code == 0
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    total = summary["inputs_total"]
    assert total["files_found"] == len(RECORDINGS) and "unsupported format" not in total["skipped"]
    assert [Path(f).name for f in total["skipped"]["annotations only"]] == [
        "SC4001EC-Hypnogram.edf"]
    parts = [json.loads(f.read_text()) for f in (tmp_path / "c" / "parts").glob("*.json")]
    read = {Path(p["source"]).name for p in parts if p["status"] == "done"}
    assert read == {"test_CA_208.cnt", "test_bdf_stim_channel.bdf", "test_reduced.edf",
                    "test_eximia.nxe", "testdata.nedf",
                    "sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.lay"}
    assert total["files_read"] == len(read) and total["windows"] == len(WindowStore(
        tmp_path / "c")) > 0


def test_prepare_fails_on_a_folder_of_corrupt_files_naming_them(tmp_path, capsys) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "broken.edf").write_bytes(b"0       not an EDF header" * 20)
    (folder / "broken.vhdr").write_text("not a BrainVision header\n")
    code, err = _exit_code(["prepare", str(folder), "--out", str(tmp_path / "c")], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and "all 2 files are unreadable/corrupt (broken.edf, broken.vhdr;" in last
    assert "Traceback" not in err


def test_reader_options_reach_every_file_and_are_recorded(tmp_path) -> None:
    src = data_root() / "eegmat" / "Subject00_1.edf"
    if not src.is_file():
        pytest.skip(f"real EEG file missing: {src}")
    cfg = PreprocessConfig(montage="auto", reject_abs_uv=None)
    out = tmp_path / "c"
    summary = prepare_corpus(src, out, cfg, progress=False,
                             reader_options={"exclude": ["EEG Fp1"]})
    (montage,) = WindowStore(out).montages
    assert "Fp1" not in montage.ch_names and len(montage.ch_names) == 18  # not TCP without Fp1
    assert json.loads((out / "config.json").read_text())["reader_options"] == {
        "exclude": ["EEG Fp1"]}
    with pytest.raises(NeuriptError, match=r"reader_options: corpus has \{'exclude'"):
        prepare_corpus(src, out, cfg, progress=False)
    bad = prepare_corpus(src, tmp_path / "b", cfg, progress=False, reader_options={"bogus": 1})
    assert summary.files_done == 1 and bad.files_done == 0
    assert "bogus not accepted by mne.io.read_raw_edf" in bad.skipped[0]["reason"]


def test_skip_classes() -> None:
    assert skip_class("RecordingError: x: no signal channels (an annotation-only file …)") == (
        "annotations only")
    assert skip_class("ChannelError: x: no usable EEG channel; no known position for 'XY1'") == (
        "no usable channels")
