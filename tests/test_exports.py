"""Numeric exports (.npy, .txt/.tsv/.csv, .mat) and reader options in manifests and the CLI."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

from neuript.cli import main
from neuript.data.io import read_recording
from neuript.data.tasks.manifest import plan_manifest
from neuript.errors import RecordingError
from neuript.inspect import inspect_recording

NAMES = ["Fp1", "Fp2", "Cz", "ECG"]
VALUES = np.random.default_rng(0).normal(0, 30, (4, 640)).round(3)  # (C, T) µV


def _raises(path: Path, match: str, **options: object) -> str:
    with pytest.raises(RecordingError, match=match) as err:
        read_recording(path, reader_options=options)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    return str(err.value)


def _check(rec, scale: float = 1e-6) -> None:
    assert rec.ch_names == ("Fp1", "Fp2", "Cz") and rec.sfreq_hz == 128.0
    assert rec.excluded == {"ECG": "ecg"}  # typed by name, as in the other readers
    np.testing.assert_array_equal(rec.data, VALUES[:3] * scale)


@pytest.mark.parametrize("layout", ["channels_by_samples", "samples_by_channels"])
def test_npy_with_sfreq_and_names(tmp_path: Path, layout: str) -> None:
    path = tmp_path / "rec.npy"
    np.save(path, VALUES if layout == "channels_by_samples" else VALUES.T)
    _check(read_recording(path, reader_options={"sfreq": 128, "ch_names": NAMES}))  # µV
    volts = read_recording(path, reader_options={"sfreq": "128", "ch_names": ",".join(NAMES),
                                                 "unit": "V"})
    _check(volts, scale=1.0)


def test_npy_refusals_name_the_option(tmp_path: Path) -> None:
    path = tmp_path / "rec.npy"
    np.save(path, VALUES)
    _raises(path, r"a .npy export carries no sampling rate: pass the reader option sfreq "
                  r"\(Hz, e.g. sfreq=250; --reader-option sfreq=")
    _raises(path, r"carries no channel names: pass the reader option ch_names", sfreq=128)
    _raises(path, r"shape \(4, 640\) has no axis of length 3", sfreq=128, ch_names="a,b,c")
    _raises(path, r"reader option\(s\) data_format not accepted for a .npy export; accepted: "
                  r"sfreq, ch_names, unit", sfreq=128, ch_names=NAMES, data_format="int16")
    _raises(path, r"unit='uv' must be one of V, mV, uV, µV, nV", sfreq=128, ch_names=NAMES,
            unit="uv")
    _raises(path, r"sfreq=-1 must be a positive number", sfreq=-1, ch_names=NAMES)
    _raises(path, r"must be non-empty and distinct .*repeated \['a'\]", sfreq=128,
            ch_names="a,a,b,c")
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _raises(pickled, r"not a NumPy .npy array of numbers", sfreq=128, ch_names=["x"])


def test_text_tables(tmp_path: Path) -> None:
    options = {"sfreq": 128, "ch_names": NAMES}
    tsv = tmp_path / "rec.tsv"
    pd.DataFrame(VALUES.T).to_csv(tsv, sep="\t", header=False, index=False)
    _check(read_recording(tsv, reader_options=options))
    txt = tmp_path / "rec.txt"  # whitespace-separated, a comment and a header giving the names
    lines = ["# exported by some amplifier", " ".join(NAMES)]
    lines += [" ".join(repr(float(v)) for v in row) for row in VALUES.T]
    txt.write_text("\n".join(lines) + "\n")
    _check(read_recording(txt, reader_options={"sfreq": 128}))
    csv = tmp_path / "plain.csv"  # a CSV of another layout reads as a table with options
    pd.DataFrame(VALUES.T, columns=NAMES).to_csv(csv, index=False)
    _raises(csv, r"unknown CSV layout .* or pass the reader options sfreq and ch_names")
    _check(read_recording(csv, reader_options={"sfreq": 128}))
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2\n3 x\n")
    _raises(bad, r"is not numbers only", sfreq=128, ch_names="a,b")


def test_mat_file(tmp_path: Path) -> None:
    path = tmp_path / "rec.mat"
    scipy.io.savemat(path, {"eeg": VALUES})
    _check(read_recording(path, reader_options={"sfreq": 128, "ch_names": NAMES}))
    scipy.io.savemat(path, {"eeg": VALUES, "other": VALUES[:2]})
    _raises(path, r"expected exactly one 2-D numeric array, found \['eeg', 'other'\]: pass the "
                  r"reader option variable", sfreq=128, ch_names=NAMES)
    _check(read_recording(path, reader_options={"sfreq": 128, "ch_names": NAMES,
                                                "variable": "eeg"}))
    _raises(path, r"variable='nope': no such variable", sfreq=128, ch_names=NAMES,
            variable="nope")


def test_manifest_reader_options_column(tmp_path: Path) -> None:
    for i in range(2):
        np.save(tmp_path / f"s{i}.npy", VALUES)
    options = json.dumps({"sfreq": 128, "ch_names": NAMES}).replace('"', '""')
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label,subject,reader_options\n"
                        f's0.npy,rest,s0,"{options}"\n'
                        "s1.npy,task,s1,\n"
                        's1.npy,task,s1,"{""sfreq"": 128"\n')
    plan = plan_manifest(manifest)
    assert len(plan.units) == 1
    _check(plan.units[0].recording)
    problems = {p.where: p.message for p in plan.problems}
    assert len(problems) == 2
    assert "pass the reader option sfreq" in problems["labels.csv line 3"]
    assert "must be a JSON object" in problems["labels.csv line 4"]


def test_cli_reader_option_on_inspect_and_predict(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "rec.npy"
    np.save(path, VALUES)
    flags = ["--reader-option", "sfreq=128", "--reader-option", "ch_names=Fp1,Fp2,Cz,ECG"]
    report = inspect_recording(path, reader_options={"sfreq": 128, "ch_names": NAMES})
    assert report.rows[0].sfreq_hz == 128.0 and report.rows[0].n_channels == 3
    with pytest.raises(SystemExit):  # inspect exits 1 on problems, 0 (no exit) when fine
        main(["inspect", str(path)])
    assert "pass the reader option sfreq" in capsys.readouterr().out
    main(["inspect", str(path), *flags, "--window-s", "2"])
    assert "128" in capsys.readouterr().out
    seen = {}

    def fake_run_predict(recording, model_dir, **kwargs):
        seen["recording"] = recording
        return types.SimpleNamespace(rows=pd.DataFrame({"p": [0.5]}), summary={})

    import importlib

    monkeypatch.setattr(importlib.import_module("neuript.predict"), "run_predict",
                        fake_run_predict)
    main(["predict", str(path), "--model", str(tmp_path), *flags])
    _check(seen["recording"])
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(path), "--model", str(tmp_path), "--reader-option", "sfreq"])
    assert exit_info.value.code == 2
    assert "--reader-option 'sfreq' must look like KEY=VALUE" in capsys.readouterr().err
