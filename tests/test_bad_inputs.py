"""Every bad input of the reliability and data issues, one row each, through the real CLI.

A row builds its bad input in a temporary folder (from a real EEGMAT recording and a micro model
folder), runs ``neuript`` in-process, and asserts: the exit code, one message naming the file and
the problem, no traceback, and that nothing written before is lost (side files of a failed run
are not rewritten). The table is the contract: a new bad input is a new row.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from _cli import run_cli
from _finetune_data import MICRO, eegmat_dir
from neuript.cli import main

RECORDING = "Subject33_2.edf"


# ---- builders of bad inputs ---------------------------------------------------------------------
def _edf_bytes() -> bytearray:
    return bytearray((eegmat_dir() / RECORDING).read_bytes())


def _header_ints(b: bytearray) -> tuple[int, int]:
    """(data records, signals) of an EDF header."""
    return int(b[236:244].decode()), int(b[252:256].decode())


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(bytes(data))
    return path


def truncated_edf(tmp: Path) -> Path:
    b = _edf_bytes()
    return _write(tmp, "truncated.edf", b[: len(b) // 2 + 7])


def fewer_records_claimed(tmp: Path) -> Path:
    b = _edf_bytes()
    n_records, _ = _header_ints(b)
    b[236:244] = f"{n_records // 2:<8d}".encode()
    return _write(tmp, "fewer_records.edf", b)


def digital_min_equals_max(tmp: Path) -> Path:
    b = _edf_bytes()
    _, ns = _header_ints(b)
    dmin, dmax = 256 + ns * 120 + 3 * 8, 256 + ns * 128 + 3 * 8  # channel 3's digital min, max
    b[dmax:dmax + 8] = b[dmin:dmin + 8]
    return _write(tmp, "dig_equal.edf", b)


def empty_edf(tmp: Path) -> Path:
    return _write(tmp, "empty.edf", b"")


def flat_electrode_edf(tmp: Path) -> Path:
    """The recording with electrode O1 at exactly 0 V (a dead electrode)."""
    import mne

    raw = mne.io.read_raw_edf(eegmat_dir() / RECORDING, preload=True, verbose="error")
    raw._data[raw.ch_names.index("EEG O1")] = 0.0
    path = tmp / "flat_O1.edf"
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


def unsupported_folder(tmp: Path) -> Path:
    folder = tmp / "unsupported"
    folder.mkdir()
    (folder / "notes.txt").write_text("not EEG")
    (folder / "scan.foo").write_bytes(b"\x00\x01")
    return folder


def manifest(tmp: Path, rows: list[tuple[str, str]], name: str) -> Path:
    """A CSV manifest of EEGMAT files (name, label); subjects from the file names."""
    lines = ["path,label,subject"] + [f"{eegmat_dir() / f},{label},{f[7:9]}" for f, label in rows]
    path = tmp / name
    path.write_text("\n".join(lines) + "\n")
    return path


BASE_ROWS = [("Subject00_1.edf", "rest"), ("Subject00_2.edf", "task"),
             ("Subject01_1.edf", "rest"), ("Subject01_2.edf", "task"),
             ("Subject02_1.edf", "rest"), ("Subject02_2.edf", "task")]


def two_labels_one_file(tmp: Path) -> Path:
    return manifest(tmp, BASE_ROWS + [("Subject02_2.edf", "rest")], "two_labels.csv")


def duplicate_row(tmp: Path) -> Path:
    return manifest(tmp, BASE_ROWS + [BASE_ROWS[-1]], "duplicate.csv")


def one_class(tmp: Path) -> Path:
    return manifest(tmp, [r for r in BASE_ROWS if r[1] == "rest"], "one_class.csv")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A micro NeurIPT classifier (random weights) with the EEGMAT contract."""
    import torch

    from neuript.config import InputContract, PreprocessConfig, override, to_dict
    from neuript.data.io import read_recording
    from neuript.data.montage import pooling_groups
    from neuript.data.preprocess import preprocess_continuous
    from neuript.model.neuript import NeurIPTClassifier
    from neuript.model.presets import preset
    from neuript.model_folder import save_classifier

    cfg = PreprocessConfig(window_s=5.0)
    cont = preprocess_continuous(read_recording(eegmat_dir() / RECORDING), cfg)
    groups = pooling_groups(list(cont.ch_names), cont.positions, "functional")
    torch.manual_seed(0)
    model = NeurIPTClassifier(override(preset("tiny"), MICRO), 2, groups.names)
    extra = {"class_names": ["rest", "task"], "group_names": list(groups.names),
             "scheme": "functional", "preprocess": to_dict(cfg), "ch_names": list(cont.ch_names),
             "task": "eegmat", "model_kind": "neuript"}
    out = tmp_path_factory.mktemp("model") / "model"
    save_classifier(model, out, InputContract.from_preprocess(cfg, cont.ch_names), extra)
    return out


def _copy_model(model_dir: Path, tmp: Path, damage: Callable[[Path], None]) -> Path:
    out = tmp / "damaged_model"
    shutil.copytree(model_dir, out)
    damage(out)
    return out


def non_json_config(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def truncated_weights(folder: Path) -> None:
    w = folder / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])


def missing_tensor(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    state.pop(sorted(state)[0])
    save_file(state, folder / "model.safetensors")


# ---- the table ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One bad input: how to build the command line, and what the user must see."""

    argv: Callable[[Path, Path], list[str]]
    """(tmp folder, good model folder) → arguments of ``neuript``."""
    code: int
    """Exit status: 2 for a refused command, 1 for ``inspect`` finding problems."""
    says: tuple[str, ...]
    """Fragments the output must contain (the file and the problem)."""


def _rec(build: Callable[[Path], Path]) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, model: ["inspect", str(build(tmp))]


def _predict(build: Callable[[Path], Path]) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, model: ["predict", str(build(tmp)), "--model", str(model), "--out",
                               str(tmp / "pred.csv")]


def _damaged(command: str, damage: Callable[[Path], None]) -> Callable[[Path, Path], list[str]]:
    def argv(tmp: Path, model: Path) -> list[str]:
        bad = _copy_model(model, tmp, damage)
        rec = str(eegmat_dir() / RECORDING)
        return {"predict": ["predict", rec, "--model", str(bad), "--out", str(tmp / "pred.csv")],
                "embed": ["embed", rec, "--model", str(bad), "--out", str(tmp / "emb.npz")],
                "export": ["export", str(bad)],
                "inspect": ["inspect", str(bad)],
                "evaluate": ["evaluate", str(bad), "--task", "mental_arithmetic", "--out",
                             str(tmp / "eval.csv")]}[command]
    return argv


ROWS: dict[str, Row] = {
    "truncated EDF (inspect)": Row(_rec(truncated_edf), 1, ("truncated.edf", "truncated")),
    "truncated EDF (predict)": Row(_predict(truncated_edf), 2, ("truncated.edf", "truncated")),
    "EDF header claims fewer records": Row(_rec(fewer_records_claimed), 1,
                                           ("fewer_records.edf", "31 whole records more")),
    "EDF header claims fewer records (predict)": Row(_predict(fewer_records_claimed), 2,
                                                     ("fewer_records.edf", "records more")),
    "EDF digital min = max (inspect)": Row(_rec(digital_min_equals_max), 1,
                                           ("dig_equal.edf", "'EEG F4'", "cannot scale")),
    "EDF digital min = max (predict)": Row(_predict(digital_min_equals_max), 2,
                                           ("dig_equal.edf", "cannot scale")),
    "empty EDF": Row(_rec(empty_edf), 1, ("empty.edf", "empty (0 bytes)")),
    "missing recording": Row(lambda tmp, model: ["predict", str(tmp / "nowhere.edf"), "--model",
                                                 str(model)], 2, ("nowhere.edf",)),
    "folder of unsupported files (prepare)": Row(
        lambda tmp, model: ["prepare", str(unsupported_folder(tmp)), "--out", str(tmp / "c")],
        2, ("unsupported", "all 2 files are of an unsupported format")),
    "flat electrode under the TCP montage (prepare)": Row(
        lambda tmp, model: ["prepare", str(flat_electrode_edf(tmp)), "--out", str(tmp / "c"),
                            "--montage", "tcp"], 2,
        ("flat_O1.edf", "'O1'", "--montage auto", "--flat-channels reject")),
    "flat electrode (inspect warns)": Row(
        lambda tmp, model: ["inspect", str(flat_electrode_edf(tmp))], 0,
        ("[flat_electrode]", "flat_O1.edf: 'EEG O1' flat for the whole recording",
         "`channels` column")),
    "flat electrode, flat channels kept (prepare)": Row(
        lambda tmp, model: ["prepare", str(flat_electrode_edf(tmp)), "--out", str(tmp / "c"),
                            "--montage", "tcp", "--flat-channels", "reject"], 2,
        ("flat_O1.edf", "flat 15")),
    "manifest: one file, two labels": Row(
        lambda tmp, model: ["inspect", "--manifest", str(two_labels_one_file(tmp))], 1,
        ("label_conflict", "Subject02_2.edf", "'task' and 'rest'")),
    "manifest: duplicate row": Row(
        lambda tmp, model: ["inspect", "--manifest", str(duplicate_row(tmp))], 1,
        ("duplicate_row", "Subject02_2.edf")),
    "manifest: one class (inspect refuses, as finetune does)": Row(
        lambda tmp, model: ["inspect", "--manifest", str(one_class(tmp))], 1,
        ("ERROR   [one_class]", "one_class.csv: one class only (['rest'])")),
    "manifest: one class (finetune)": Row(
        lambda tmp, model: ["finetune", "--manifest", str(one_class(tmp)), "--out",
                            str(tmp / "run"), "--max-steps", "1"], 2,
        ("one_class.csv", "one class only", "add rows of another label")),
    "manifest: two labels (finetune)": Row(
        lambda tmp, model: ["finetune", "--manifest", str(two_labels_one_file(tmp)), "--out",
                            str(tmp / "run"), "--max-steps", "1"], 2,
        ("two_labels.csv line 7", "labelled 'task' and 'rest'")),
    **{f"model config not JSON ({c})": Row(_damaged(c, non_json_config), 1 if c == "inspect"
                                           else 2, ("config.json", "not valid JSON"))
       for c in ("predict", "embed", "export", "inspect", "evaluate")},
    **{f"truncated weights ({c})": Row(_damaged(c, truncated_weights), 1 if c == "inspect"
                                       else 2, ("model.safetensors", "cannot read weights"))
       for c in ("predict", "export", "inspect")},
    "weights missing a tensor (predict)": Row(_damaged("predict", missing_tensor), 2,
                                              ("missing [",)),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input(name: str, model_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    row = ROWS[name]
    argv = row.argv(tmp_path, model_dir)
    side = tmp_path / "pred.config.json"  # a good earlier run's settings: must survive
    side.write_text('{"earlier": true}\n')
    out = run_cli(argv, capsys)
    code, text = out.code, out.out + out.err
    assert code == row.code, f"{name}: exit {code}, output tail:\n{text[-1500:]}"
    assert "Traceback" not in text
    for fragment in row.says:
        assert fragment in text, f"{name}: {fragment!r} not in:\n{text[-1500:]}"
    if code == 2:  # one error line, naming the problem
        errors = [line for line in out.err.splitlines() if line.startswith("neuript: error:")]
        assert len(errors) == 1, out.err[-1500:]
    assert json.loads(side.read_text()) == {"earlier": True}


def test_flat_electrode_is_rejected_under_every_montage(tmp_path: Path) -> None:
    """A dead electrode is found before the bipolar derivation hides it (tcp = monopolar)."""
    from neuript.config import PreprocessConfig
    from neuript.data.io import read_recording
    from neuript.data.preprocess import prepare_recording

    dead = read_recording(flat_electrode_edf(tmp_path))
    good = read_recording(eegmat_dir() / RECORDING)
    for montage in ("tcp", "monopolar", "auto"):
        cfg = PreprocessConfig(montage=montage)
        bad = prepare_recording(dead, cfg)
        assert bad.windows.shape[0] == 0 and bad.rejected["flat"] == 15, montage
        ok = prepare_recording(good, cfg)
        assert ok.rejected["flat"] == 0 and ok.windows.shape[0] == 15, montage


def test_flat_test_sees_a_short_dead_stretch_only_in_its_windows(tmp_path: Path) -> None:
    from neuript.config import PreprocessConfig
    from neuript.data.io import read_recording
    from neuript.data.preprocess import prepare_recording

    rec = read_recording(eegmat_dir() / RECORDING)
    data = np.array(rec.data, copy=True)
    k = list(rec.ch_names).index("EEG O1")
    data[k, int(20 * rec.sfreq_hz):int(30 * rec.sfreq_hz)] = 0.0  # 10 s dead in the middle
    from dataclasses import replace

    out = prepare_recording(replace(rec, data=data), PreprocessConfig(montage="tcp"))
    assert 1 <= out.rejected["flat"] <= 3 and out.windows.shape[0] == 15 - out.rejected["flat"]


def test_a_file_that_is_not_eeg_is_named_but_its_text_never_echoed(tmp_path, capsys):
    """A manifest may point at any file: the error names it but does not repeat its contents."""
    secret = tmp_path / "accounts.csv"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice\n")
    rows = [*BASE_ROWS[:4], (str(secret), "rest")]
    lines = ["path,label,subject"] + [
        f"{p if p.startswith('/') else eegmat_dir() / p},{label},{k % 2}"
        for k, (p, label) in enumerate(rows)]
    path = tmp_path / "m.csv"
    path.write_text("\n".join(lines) + "\n")
    for argv in (["inspect", str(secret)], ["inspect", "--manifest", str(path)]):
        try:
            main(argv)
        except SystemExit:
            pass
        out = capsys.readouterr()
        text = out.out + out.err
        assert "accounts.csv" in text and "unknown CSV layout" in text
        assert "root:x" not in text and "alice" not in text


def test_window_s_is_honoured_or_refused_for_registry_tasks(tmp_path, capsys):
    """--window-s was silently ignored for registry tasks."""
    from neuript.train.finetune import FinetuneRunConfig, resolve_task

    run = run_cli(["finetune", "--task", "mental_arithmetic", "--window-s", "4", "--out",
                   str(tmp_path / "r"), "--max-steps", "1"], capsys)
    assert run.code == 2 and "unknown option(s) ['window_s']" in run.err
    assert "Traceback" not in run.err
    task = resolve_task(FinetuneRunConfig(task="adhd", window_s=2.0))
    assert task.preprocess.window_s == 2.0 and task.signals.shape[-1] == 128
