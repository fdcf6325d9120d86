"""The window corpus: real files end to end, restarts, interruptions, shards, errors."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neuript.config import PreprocessConfig
from neuript.data import prepare_report as report_mod
from neuript.data import store as store_mod
from neuript.data.io import read_recording
from neuript.data.preprocess import prepare_recording
from neuript.data.store import WindowStore, find_inputs, prepare_corpus, select_shard
from neuript.errors import NeuriptError
from neuript.paths import data_root

CFG = PreprocessConfig(montage="monopolar", reject_abs_uv=1000.0)  # ADHD peaks near 1 mV


def _real_files() -> list[Path]:
    root = data_root()
    files = [
        root / "adhd" / "control" / "v51p.csv.gz",
        root / "adhd" / "adhd" / "v37p.csv.gz",
        root / "eegmmidb" / "S001" / "S001R04.edf",
        root / "muse" / "visual" / "P300" / "subject4" / "session1"
        / "data_2018-04-22-21.41.19.csv.gz",
    ]
    missing = [f for f in files if not f.exists()]
    if missing:
        pytest.skip(f"real data missing: {missing}")
    return files


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four real recordings of three montages, plus one corrupt EDF."""
    bad = tmp_path_factory.mktemp("bad") / "corrupt.edf"
    bad.write_bytes(b"0       not an EDF header at all" * 10)
    return [*_real_files(), bad]


@pytest.fixture(scope="module")
def built(inputs: list[Path], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("corpus")
    summary = prepare_corpus(inputs, out, CFG, workers=2, progress=False)
    return out, summary


def test_summary_matches_manifest_and_shards(built, inputs) -> None:
    out, summary = built
    store = WindowStore(out)
    assert summary.files_done == 4 and summary.files_skipped == 1
    assert summary.windows == len(store) == len(store.manifest) > 0
    assert len(summary.montages) == 3 == len(store.montages)
    assert sum(m["n_windows"] for m in summary.montages.values()) == len(store)
    n_ch = sorted(len(m.ch_names) for m in store.montages)
    assert n_ch == [4, 19, 64]
    # hours come from the recordings themselves
    hours = sum(read_recording(f).duration_s for f in inputs[:4]) / 3600
    assert summary.hours == pytest.approx(hours, rel=1e-3)
    assert json.loads((out / "summary.json").read_text())["windows"] == len(store)
    assert json.loads((out / "config.json").read_text())["preprocess"]["montage"] == "monopolar"
    # every window's bytes hash to its manifest hash; shapes follow the montage
    for i in range(0, len(store), 7):
        w = store.window(i)
        assert w.dtype == np.float32 and w.shape == (len(store.montages[store.montage_of[i]][0]),
                                                     CFG.window_samples)
        assert hashlib.sha256(w.tobytes()).hexdigest()[:16] == store.hashes[i]
    # each montage's windows live in their own shard folder
    for mid in store.montage_ids:
        assert all(p.parent.name == mid for p in (out / "shards" / mid).glob("*.npy"))


def test_windows_equal_the_direct_pipeline(built, inputs) -> None:
    out, _ = built
    store = WindowStore(out)
    path = inputs[2]  # the EEGMMIDB run
    prep = prepare_recording(read_recording(path), CFG, on_unknown="drop")
    idx = np.flatnonzero(store.sources == str(path.resolve()))
    np.testing.assert_array_equal(store.windows(idx), prep.windows)
    np.testing.assert_array_equal(store.starts[idx], prep.starts)
    rejected = json.loads((out / "summary.json").read_text())["rejected"]
    for reason, count in prep.rejected.items():
        assert rejected.get(reason, 0) >= count
    # EEGMMIDB R04 alternates T0/T1/T2 annotations of about 4.1 s: windows inside one get it
    assert set(store.labels[idx]) <= {"T0", "T1", "T2", ""} and (store.labels[idx] != "").any()


def test_corrupt_file_is_skipped_and_reported(built, inputs) -> None:
    out, summary = built
    skipped = json.loads((out / "skipped.json").read_text())
    assert [s["file"] for s in skipped] == [str(inputs[-1].resolve())]
    assert summary.skipped == skipped and skipped[0]["reason"]
    assert str(inputs[-1].resolve()) not in set(WindowStore(out).sources)


def test_rerun_is_a_noop(built, inputs) -> None:
    out, _ = built
    manifest = (out / "manifest.csv").read_bytes()
    shard_times = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    again = prepare_corpus(inputs, out, CFG, workers=1, progress=False)
    assert again.files_processed == 0 and again.files_reused == len(inputs)
    assert (out / "manifest.csv").read_bytes() == manifest
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")} == shard_times


def test_other_config_is_refused(built, inputs) -> None:
    out, _ = built
    with pytest.raises(NeuriptError, match="window_s"):
        prepare_corpus(inputs, out, PreprocessConfig(montage="monopolar", window_s=2.0,
                                                         reject_abs_uv=1000.0),
                       progress=False)


def test_interrupted_run_then_rerun_gives_same_manifest(built, inputs, tmp_path,
                                                        monkeypatch) -> None:
    out_full, _ = built
    real = store_mod._process_file
    calls = []

    def dying(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("simulated interruption")
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(store_mod, "_process_file", dying)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(inputs, tmp_path, CFG, workers=1, progress=False)
    monkeypatch.setattr(store_mod, "_process_file", real)
    assert len(list((tmp_path / "parts").glob("*.json"))) == 1
    # a half-written leftover from a killed writer must not matter
    (tmp_path / "shards" / "junk").mkdir(parents=True)
    (tmp_path / "shards" / "junk" / ".x.npy.123.tmp").write_bytes(b"\x93NUMPY partial")
    summary = prepare_corpus(inputs, tmp_path, CFG, workers=1, progress=False)
    assert summary.files_processed == len(inputs) - 1
    assert (tmp_path / "manifest.csv").read_bytes() == (out_full / "manifest.csv").read_bytes()


def test_kill_9_then_rerun_gives_same_manifest(built, inputs, tmp_path) -> None:
    out_full, _ = built
    script = (
        "import sys; from neuript.config import PreprocessConfig;"
        "from neuript.data.store import prepare_corpus;"
        "prepare_corpus(sys.argv[2:], sys.argv[1], PreprocessConfig(montage='monopolar',"
        " reject_abs_uv=1000.0), workers=1, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), *map(str, inputs)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if list((tmp_path / "parts").glob("*.json")):
            break
        time.sleep(0.01)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    prepare_corpus(inputs, tmp_path, CFG, workers=1, progress=False)
    assert (tmp_path / "manifest.csv").read_bytes() == (out_full / "manifest.csv").read_bytes()


def test_shards_partition_the_sorted_list_and_build_the_same_corpus(built, inputs,
                                                                     tmp_path) -> None:
    files = find_inputs([data_root() / "adhd", data_root() / "muse"])
    assert files == sorted(files, key=str) and len(files) == 120 + 45
    parts = [select_shard(files, f"{i}/3") for i in range(3)]
    assert sorted(sum(parts, []), key=str) == files
    assert all(set(a).isdisjoint(b) for a in parts for b in parts if a is not b)
    assert parts[1] == files[1::3]
    with pytest.raises(NeuriptError, match="shard"):
        select_shard(files, (3, 3))
    out_full, _ = built
    for i in range(2):  # two "machines" sharing one folder
        prepare_corpus(inputs, tmp_path, CFG, shard=(i, 2), progress=False)
    assert (tmp_path / "manifest.csv").read_bytes() == (out_full / "manifest.csv").read_bytes()


def test_globs_and_missing_inputs(tmp_path) -> None:
    root = data_root() / "eegmmidb"
    assert find_inputs(str(root / "S001" / "S001R0[12].edf")) == [
        (root / "S001" / f"S001R0{k}.edf").resolve() for k in (1, 2)]
    with pytest.raises(NeuriptError, match="no such file"):
        find_inputs(tmp_path / "nothing*.edf")


def test_empty_corpus_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(NeuriptError, match=str(tmp_path)):
        WindowStore(tmp_path)
    summary = prepare_corpus([], tmp_path, CFG, progress=False)
    assert summary.windows == 0
    with pytest.raises(NeuriptError, match="no windows"):
        WindowStore(tmp_path)


def _eegmat_file() -> Path:
    src = data_root() / "eegmat" / "Subject00_1.edf"
    if not src.is_file():
        pytest.skip(f"real EEG file missing: {src}")
    return src


def _odd_folder(root: Path, *, with_edf: bool) -> Path:
    """A folder of unsupported files (a.txt, sub/b.foo), sidecars, and maybe one real EDF."""
    root.mkdir()
    (root / "a.txt").write_text("not EEG\n")
    (root / "sub").mkdir()
    (root / "sub" / "b.foo").write_bytes(b"\x00\x01")
    (root / "README").write_text("about this folder\n")
    (root / "sub" / "channels.tsv").write_text("name\ttype\n")
    (root / ".DS_Store").write_bytes(b"\x00")
    if with_edf:
        (root / "rec.edf").symlink_to(_eegmat_file())
    return root


def test_scan_inputs_keeps_unsupported_and_sidecar_files(tmp_path) -> None:
    folder = _odd_folder(tmp_path / "odd", with_edf=False)
    (folder / "x.vhdr").write_text("")
    (folder / "x.vmrk").write_text("")
    (folder / "lone.eeg").write_text("")  # no .vhdr beside it: not a BrainVision companion
    (scan,) = store_mod.scan_inputs(folder)
    assert scan.input == str(folder) and scan.files == ((folder / "x.vhdr").resolve(),)
    assert [p.name for p in scan.unsupported] == ["a.txt", "lone.eeg", "b.foo"]
    assert sorted(p.name for p in scan.companions) == [".DS_Store", "README", "channels.tsv",
                                                       "x.vmrk"]
    assert find_inputs(folder) == list(scan.files)


def test_only_unsupported_files_is_an_error_naming_them(tmp_path) -> None:
    folder = _odd_folder(tmp_path / "odd", with_edf=False)
    summary = prepare_corpus(folder, tmp_path / "out", CFG, progress=False)
    (report,) = summary.inputs
    assert (report.files_found, report.files_read, report.windows) == (2, 0, 0)
    assert [Path(f).name for f in report.skipped["unsupported format"]] == ["a.txt", "b.foo"]
    assert report.companions == 3 and summary.inputs_total.files_found == 2
    with pytest.raises(NeuriptError, match=r"all 2 files are of an unsupported format "
                       r"\(a.txt, b.foo\)") as info:
        report_mod.check_usable(summary)
    assert str(folder) in str(info.value) and "\n" not in str(info.value)
    table = report_mod.prepare_table(summary)
    assert "| skipped: unsupported format |" in table and "a.txt, sub/b.foo" in table
    assert (tmp_path / "out" / "summary.json").is_file()  # the corpus folder is kept


def test_mixed_folder_reports_unsupported_files_as_skipped(tmp_path) -> None:
    folder = _odd_folder(tmp_path / "mixed", with_edf=True)
    summary = prepare_corpus([folder], tmp_path / "out", CFG, progress=False)
    (report,) = summary.inputs
    assert (report.files_found, report.files_read) == (3, 1) and report.windows > 0
    assert report.windows == summary.windows and report.hours == pytest.approx(summary.hours)
    report_mod.check_usable(summary)  # one usable file is enough
    assert report_mod.rejection_warnings(summary) == []
    table = report_mod.prepare_table(summary).splitlines()
    row = next(line for line in table if line.startswith(f"| {folder} |"))
    assert row.split(" | ")[1:4] == ["3", "1", "2"]  # found, read, skipped: unsupported format
    assert any("unsupported format (2): a.txt, sub/b.foo" in line for line in table)
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["inputs"][0]["skipped"]["unsupported format"] == report.skipped[
        "unsupported format"]


def test_every_window_rejected_warns_and_is_an_error(tmp_path) -> None:
    cfg = PreprocessConfig(montage="monopolar", reject_abs_uv=0.001)
    summary = prepare_corpus(_eegmat_file(), tmp_path, cfg, progress=False)
    (report,) = summary.inputs
    assert report.files_read == 1 and report.windows == 0 and report.rejected["amplitude"] > 0
    (warning,) = report_mod.rejection_warnings(summary, cfg)
    assert "100%" in warning and "--reject_abs_uv None" in warning and "0.001" in warning
    with pytest.raises(NeuriptError, match=r"every window was rejected \(amplitude \d+\).*"
                       r"--reject_abs_uv None"):
        report_mod.check_usable(summary, cfg)


@pytest.fixture(scope="module")
def dead_cz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real EEGMAT recording rewritten as EDF with its Cz electrode dead (all zeros)."""
    import mne

    raw = mne.io.read_raw_edf(_eegmat_file(), preload=True, verbose="error")
    cz = next(n for n in raw.ch_names if n.upper().endswith("CZ"))
    raw._data[raw.ch_names.index(cz)] = 0.0
    out = tmp_path_factory.mktemp("dead") / "dead_cz.edf"
    mne.export.export_raw(out, raw, fmt="edf", overwrite=True, verbose="error")
    return out


def test_a_dead_electrode_is_left_out_and_the_rest_kept(dead_cz, tmp_path) -> None:
    from neuript.data.preprocess import flat_electrodes

    rec = read_recording(dead_cz)
    assert flat_electrodes(rec, 0.1) == tuple(n for n in rec.ch_names if n.endswith("Cz"))
    summary = prepare_corpus(dead_cz, tmp_path / "drop", CFG, progress=False)
    (report,) = summary.inputs
    ((name, files),) = report.flat_left_out.items()
    assert name.endswith("Cz") and files == 1 and report.rejected.get("flat", 0) == 0
    store = WindowStore(tmp_path / "drop")
    (montage,) = store.montages
    names = montage.ch_names
    assert "Cz" not in names and len(names) == 18 and len(store) == report.windows > 0
    # the other 18 channels are exactly what the same recording gives without Cz
    direct = prepare_recording(rec.without({name: "flat"}), CFG)
    np.testing.assert_array_equal(store.window(0), direct.windows[0])
    table = report_mod.prepare_table(summary)
    assert f"left out of it: {name!r} (1 file) (--flat-channels reject keeps them)" in table
    # kept (reject), it fails the flat test in every window, and the run says how to keep them
    kept = prepare_corpus(dead_cz, tmp_path / "reject", CFG, progress=False,
                          flat_channels="reject")
    assert kept.windows == 0 and kept.inputs[0].rejected["flat"] == report.windows
    with pytest.raises(NeuriptError, match="flat"):
        prepare_corpus(dead_cz, tmp_path / "drop", CFG, progress=False, flat_channels="reject")
    # TCP needs Cz: the file is skipped, and its reason says Cz was dead
    tcp = prepare_corpus(dead_cz, tmp_path / "tcp", PreprocessConfig(montage="tcp",
                         reject_abs_uv=1000.0), progress=False)
    reason = json.loads((tmp_path / "tcp" / "skipped.json").read_text())[0]["reason"]
    assert tcp.windows == 0 and "left out as flat for the whole recording" in reason


def test_flat_electrodes_ignore_nan_and_brief_dropouts() -> None:
    from neuript.data.preprocess import flat_electrodes
    from neuript.data.recording import Recording

    rng = np.random.default_rng(0)
    data = rng.normal(0, 20, (4, 1000))
    data[0] = 3.0  # a constant offset: dead
    data[1, :500] = 0.0  # dead for half the recording: the window test's job, not this one
    data[2] = np.nan  # all NaN: the NaN test names it
    data[3, ::7] = np.nan  # live, with gaps
    rec = Recording.from_array(data, 100.0, ["Fz", "Cz", "Pz", "Oz"])
    assert flat_electrodes(rec, 0.1) == ("Fz",)
    assert rec.without({"Fz": "flat"}).ch_names == ("Cz", "Pz", "Oz")
    assert rec.without({"Fz": "flat"}).excluded == {"Fz": "flat"}


def test_corrupt_and_short_files_are_classified(built, inputs) -> None:
    _, summary = built
    total = summary.inputs_total
    assert total.skipped == {"unreadable/corrupt": [str(inputs[-1].resolve())]}
    assert total.files_found == len(inputs) and total.files_read == len(inputs) - 1
    assert store_mod.skip_class("shorter than min_duration_s (2.0 s < 5 s)") == "too short"
    assert store_mod.skip_class("ChannelError: x: no usable EEG channel") == "no usable channels"
    assert store_mod.skip_class("RecordingError: x: unsupported file type '.foo'; …") == (
        "unsupported format")


@pytest.mark.parametrize("workers", [1, 2])
def test_full_disk_stops_every_worker_names_the_file_and_leaves_no_temporaries(
        tmp_path, monkeypatch, capsys, workers):
    """Defect: an OSError traceback naming no file, and workers writing zero-byte .tmp files."""
    import errno as errno_mod

    from neuript.cli import main

    real = Path.write_bytes

    def full(self, data):  # the disk fills up at the first window array (workers: forked)
        if ".npy." in self.name and self.name.endswith(".tmp"):
            real(self, data[: len(data) // 3])
            raise OSError(errno_mod.ENOSPC, os.strerror(errno_mod.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "c"
    inputs = [str(p) for p in _real_files()[:3]]
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", *inputs, "--out", str(out), "--workers", str(workers),
              "--montage", "monopolar", "--reject_abs_uv", "1000"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("neuript: error: ") and ".npy: cannot write (No space left" in last
    assert "another --out" in last
    assert not list(out.rglob(".*.tmp"))  # nothing half-written is left behind
    assert not (out / "manifest.csv").exists()


def _decoded(parsed) -> dict[str, list]:
    return {c: (a.tolist() if v is None else [v[i] for i in a]) for c, (a, v) in parsed.items()}


def test_manifest_columns_are_memory_mapped_and_equal_the_csv(built, tmp_path) -> None:
    """The reader maps columns/ (written with manifest.csv); they hold the CSV's values, and a
    manifest.csv edited after the build is read from the CSV instead (the CSV is the truth)."""
    import shutil

    out, _ = built
    meta = json.loads((out / store_mod.COLUMNS_DIR / "meta.json").read_text())
    assert meta["manifest_sha256"] == hashlib.sha256((out / "manifest.csv").read_bytes()
                                                     ).hexdigest()
    csv_cols = _decoded(store_mod._parse_manifest(out / "manifest.csv"))
    mapped = store_mod._read_manifest_columns(out / "manifest.csv")
    assert {c: a.tolist() for c, a in mapped.items()} == csv_cols
    assert isinstance(mapped["start"], np.memmap) and isinstance(mapped["row"], np.memmap)
    store = WindowStore(out)
    assert store.starts.tolist() == [int(v) for v in csv_cols["start"]]

    copy = tmp_path / "corpus"
    shutil.copytree(out, copy)
    lines = (copy / "manifest.csv").read_text().splitlines()
    header = lines[0].split(",")
    first = lines[1].split(",")
    first[header.index("label")] = "edited"
    (copy / "manifest.csv").write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    assert WindowStore(copy).labels[0] == "edited"  # the stale columns are not used
    assert not isinstance(store_mod._read_manifest_columns(copy / "manifest.csv")["start"],
                          np.memmap)
    (copy / store_mod.COLUMNS_DIR / "meta.json").write_text("{not json")
    assert WindowStore(copy).labels[0] == "edited"
