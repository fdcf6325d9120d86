"""Many writers, one corpus: concurrent shards, per-host folders, merge checks, locks, workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _cli import run_cli
from neuript.config import PreprocessConfig
from neuript.data.store import WindowStore, prepare_corpus
from neuript.errors import NeuriptError
from test_store import CFG, _eegmat_file, _real_files

CFG_FLAGS = ["--montage", "monopolar", "--reject_abs_uv", "1000"]
"""The command-line spelling of ``CFG``."""
SLOW_WRITER = """
import sys, time
import neuript.data.store as store
real = store._process_file
def slow(*args, **kwargs):
    time.sleep(float(sys.argv[1]))
    return real(*args, **kwargs)
store._process_file = slow
from neuript.cli import main
main(sys.argv[2:])
"""
"""A ``neuript`` process whose every file takes ``argv[1]`` extra seconds (a big file)."""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four real recordings of three montages, plus one corrupt EDF."""
    bad = tmp_path_factory.mktemp("bad") / "corrupt.edf"
    bad.write_bytes(b"0       not an EDF header at all" * 10)
    return [*_real_files(), bad]


@pytest.fixture(scope="module")
def reference(inputs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One unsharded run over all inputs."""
    out = tmp_path_factory.mktemp("whole")
    prepare_corpus(inputs, out, CFG, progress=False)
    return out


@pytest.fixture(scope="module")
def host_dirs(inputs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Shards 0/2 and 1/2, each in its own folder (two hosts)."""
    dirs = [tmp_path_factory.mktemp(f"host{i}") for i in range(2)]
    for i, out in enumerate(dirs):
        prepare_corpus(inputs, out, CFG, shard=(i, 2), progress=False)
    return dirs


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Run ``neuript`` here; its exit code and stderr."""
    run = run_cli(argv, capsys)
    return run.code, run.err


def _merge(dirs: list[Path], out: Path):
    from neuript.data.merge import merge_corpus

    return merge_corpus(dirs, out)


def _same_windows(corpus: Path, reference: Path) -> None:
    """``corpus`` holds exactly the reference's windows: same rows and bytes, order aside."""
    got, want = WindowStore(corpus), WindowStore(reference)
    assert len(got) == len(want) > 0
    assert json.loads((corpus / "config.json").read_text()) == json.loads(
        (reference / "config.json").read_text())

    def rows(store: WindowStore) -> dict[tuple, int]:
        return {(r["source"], r["start"], r["montage_id"], r["label"], r["hash"], r["subject"]):
                i for i, r in enumerate(store.manifest)}

    got_rows, want_rows = rows(got), rows(want)
    assert got_rows.keys() == want_rows.keys()
    for key, i in got_rows.items():
        np.testing.assert_array_equal(got.window(i), want.window(want_rows[key]))
    assert json.loads((corpus / "skipped.json").read_text()) == json.loads(
        (reference / "skipped.json").read_text())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_concurrent_shards_into_one_folder_equal_one_run(inputs, reference, tmp_path) -> None:
    out = tmp_path / "shared"
    procs = [subprocess.Popen([sys.executable, "-m", "neuript", "prepare", *map(str, inputs),
                               "--out", str(out), "--shard", f"{i}/2", *CFG_FLAGS],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    _same_windows(out, reference)  # the last shard to finish assembled the whole corpus
    assert (out / "manifest.csv").read_bytes() == (reference / "manifest.csv").read_bytes()
    for i in range(2):
        assert (out / f"manifest.shard-{i}-of-2.json").is_file()
        assert (out / f"neuript_prepare.shard-{i}-of-2.json").is_file()
    assert not list(out.glob(".*.lock"))


def test_one_folder_per_host_then_merge(host_dirs, reference, tmp_path, capsys) -> None:
    assert all(not (d / "manifest.csv").exists() for d in host_dirs)  # each holds half
    with pytest.raises(NeuriptError, match="shard fragments"):
        WindowStore(host_dirs[0])
    out = tmp_path / "merged"
    code, err = _cli(["prepare", "--merge", *map(str, host_dirs), "--out", str(out)], capsys)
    assert code == 0, err
    _same_windows(out, reference)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["windows"] == len(WindowStore(reference))
    assert summary["files_done"] == 4 and summary["files_skipped"] == 1
    assert all(not (d / "manifest.csv").exists() for d in host_dirs)  # sources left as they were
    with pytest.raises(NeuriptError, match=r"shard\(s\) 1/2 missing.*--shard 1/2"):
        _merge([host_dirs[0]], tmp_path / "half")


def test_second_writer_of_a_shard_is_refused(inputs, tmp_path, capsys) -> None:
    out = tmp_path / "c"
    argv = ["prepare", *map(str, inputs), "--out", str(out), "--shard", "0/2", *CFG_FLAGS]
    first = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, "60", *argv],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait_for(lambda: (out / "parts").is_dir(), 60), "the first writer never started"
        before = _snapshot(out)
        code, err = _cli(argv, capsys)
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1, err
        assert lines[0].startswith("neuript: error: ") and "shard 0/2" in lines[0]
        assert f"pid {first.pid}" in lines[0] and "--shard" in lines[0]
        assert _snapshot(out) == before
        (other,) = [p for p in _snapshot(out) if p.startswith(".writer")]
        assert _cli([*argv[:-6], "--shard", "1/2", *CFG_FLAGS], capsys)[0] == 0  # another shard
    finally:
        first.kill()  # kill -9: its lock stays behind, stale
        first.wait()
    assert (out / other).is_file()
    code, err = _cli(argv, capsys)  # the dead writer's lock is taken over
    assert code == 0, err
    assert not (out / other).exists() and (out / "manifest.csv").is_file()


def test_merge_refuses_tampered_part_naming_it(host_dirs, inputs, tmp_path) -> None:
    copies = [tmp_path / f"h{i}" for i in range(2)]
    for src, dst in zip(host_dirs, copies):
        shutil.copytree(src, dst)
    npy = sorted((copies[1] / "shards").rglob("*.npy"))[0]
    data = bytearray(npy.read_bytes())
    data[-3] ^= 0xFF  # one window sample changes; the file keeps its size
    npy.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(NeuriptError, match=str(npy)):
        _merge(copies, out)
    assert not (out / "manifest.csv").exists()
    shutil.copyfile(sorted(host_dirs[1].rglob(npy.name))[0], npy)
    part = sorted((copies[0] / "parts").glob("*.json"))[0]
    record = json.loads(part.read_text())
    record["subject"] = "someone else"
    part.write_text(json.dumps(record))
    with pytest.raises(NeuriptError, match=str(part)):
        _merge(copies, out)
    assert not (out / "manifest.csv").exists()


def test_merge_refuses_shards_of_another_config_naming_the_fragment(host_dirs, inputs,
                                                                     tmp_path) -> None:
    other = tmp_path / "other"
    prepare_corpus(inputs, other, PreprocessConfig(montage="monopolar", reject_abs_uv=500.0),
                   shard=(1, 2), progress=False)
    with pytest.raises(NeuriptError, match=r"manifest\.shard-1-of-2\.json: made with a "
                       r"different preprocessing configuration.*reject_abs_uv"):
        _merge([host_dirs[0], other], tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.csv").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_prepare_leaves_no_live_worker(inputs, tmp_path) -> None:
    script = (
        "import sys, time\n"
        "import neuript.data.store as store\n"
        "real = store._process_file\n"
        "def slow(*args, **kwargs):\n"
        "    time.sleep(60)\n"
        "    return real(*args, **kwargs)\n"
        "store._process_file = slow\n"
        "store.prepare_corpus(sys.argv[2:], sys.argv[1], store.PreprocessConfig("
        "montage='monopolar'), workers=2, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "c"),
                             *map(str, inputs)])
    workers: list[int] = []
    try:
        assert _wait_for(lambda: len(_children(proc.pid)) >= 2, 60), "no worker started"
        workers = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 5), (
            f"workers {[p for p in workers if _alive(p)]} outlived their parent")
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_refused_prepare_writes_nothing(tmp_path, capsys) -> None:
    src = str(_eegmat_file())
    out = tmp_path / "c"
    assert _cli(["prepare", src, "--out", str(out), *CFG_FLAGS], capsys)[0] == 0
    before = _snapshot(out)
    assert "neuript_prepare.json" in before
    for argv in (["prepare", src, "--out", str(out), *CFG_FLAGS, "--window_s", "2"],
                 ["prepare", src, "--out", str(out), "--shard", "0/2", *CFG_FLAGS,
                  "--window_s", "2"],
                 ["prepare", src, str(tmp_path / "missing.edf"), "--out", str(out),
                  *CFG_FLAGS]):
        code, err = _cli(argv, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert _snapshot(out) == before, argv
    fresh = tmp_path / "fresh"  # a refused first run leaves no config.json to trip the next
    code, _ = _cli(["prepare", str(tmp_path / "missing.edf"), "--out", str(fresh), *CFG_FLAGS],
                   capsys)
    assert code == 2 and not (fresh.exists() and any(fresh.iterdir()))


def test_files_done_excludes_files_that_kept_no_window(tmp_path) -> None:
    adhd, eegmat = _real_files()[0], _eegmat_file()  # at 100 µV ADHD keeps no window
    cfg = PreprocessConfig(montage="monopolar", reject_abs_uv=100.0)
    summary = prepare_corpus([adhd, eegmat], tmp_path, cfg, progress=False)
    assert summary.windows == len(WindowStore(tmp_path)) > 0
    assert set(WindowStore(tmp_path).sources) == {str(eegmat.resolve())}
    assert (summary.files_done, summary.files_empty, summary.files_skipped) == (1, 1, 0)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert (saved["files_done"], saved["files_empty"]) == (1, 1)
    assert summary.inputs_total.files_read == 2  # read, but one kept nothing


def _off_reference(x: np.ndarray) -> float:
    """Mean |log| ratio of each channel's average band power (4 bands in 3-26 Hz) in windows
    ``x`` (N, C, T) to the ``spectral`` reference's."""
    from neuript.data.normalize import reference_power

    freqs = np.fft.rfftfreq(x.shape[-1], 1 / CFG.sfreq_hz)
    ref = reference_power(x.shape[-1], CFG.sfreq_hz, 10.0, (CFG.l_freq_hz, CFG.h_freq_hz))
    power = (np.abs(np.fft.rfft(x, axis=-1)) ** 2).mean(0)  # (C, F)
    bands = [(freqs >= lo) & (freqs < hi) for lo, hi in ((3, 8), (8, 13), (13, 20), (20, 26))]
    return float(np.mean([np.abs(np.log(power[:, b].sum(1) / ref[b].sum())) for b in bands]))


def test_recording_norm_equalises_each_recording_and_is_part_of_the_config(
        inputs: list[Path], reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    """``--recording-norm spectral`` stores each recording's windows with their average spectrum
    at the reference (the fine-tuning ``subject_norm`` per recording); the windows match
    ``normalize_groups`` on the plain corpus's windows; a folder built without it refuses it."""
    from neuript.data.normalize import normalize_groups

    out = tmp_path / "norm"
    code, err = _cli(["prepare", *map(str, inputs[:2]), "--out", str(out), *CFG_FLAGS,
                      "--recording-norm", "spectral"], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["recording_norm"] == "spectral"
    plain, normed = WindowStore(reference), WindowStore(out)
    for name in (p.name for p in inputs[:2]):  # by file name: a linked data root resolves
        raw = plain.windows(np.flatnonzero([Path(s).name == name for s in plain.sources]))
        new = normed.windows(np.flatnonzero([Path(s).name == name for s in normed.sources]))
        assert len(new) == len(raw) > 3
        want = normalize_groups(raw, np.zeros(len(raw)), "spectral", sfreq_hz=CFG.sfreq_hz,
                                band_hz=(CFG.l_freq_hz, CFG.h_freq_hz))
        np.testing.assert_allclose(new, want, rtol=1e-4, atol=1e-3)
        assert _off_reference(new) < 0.25 < 2.0 < _off_reference(raw)
    code, err = _cli(["prepare", *map(str, inputs[:2]), "--out", str(out), *CFG_FLAGS], capsys)
    assert code != 0 and "recording_norm: corpus has 'spectral', run asks None" in err, err
