"""Positions files: tables in metres or mm, MNE montage files (CapTrak .bvct), and a custom
electrode taken into a corpus by `neuript prepare --positions` (and predict/embed, manifests)."""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pytest

from _cli import run_cli
from neuript.cli import _recording_input, build_parser
from neuript.data.positions import read_positions, with_positions
from neuript.data.recording import Recording
from neuript.data.store import WindowStore
from neuript.data.tasks.manifest import plan_manifest
from neuript.errors import NeuriptError
from neuript.paths import data_root

BVCT = data_root() / "fixtures" / "montage" / "captrak_coords.bvct"
T7_IN_BVCT_MM = (-97.319687234682362, -2.1423686071579624, 50.226741225281344)
"""T7's <X>, <Y>, <Z> in the .bvct (mm; its fiducials already lie on the head frame's axes)."""
XY1_M = (0.031, -0.012, 0.088)
FLAGS = ["--reject_abs_uv", "None", "--window_s", "4"]


@pytest.fixture(scope="module")
def custom_edf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of EEGMAT's 19 electrodes as EDF, with ``EEG C3`` renamed ``XY1`` (a custom name)."""
    src = data_root() / "eegmat" / "Subject00_1.edf"
    if not src.is_file():
        pytest.skip(f"real EEG file missing: {src}")
    raw = mne.io.read_raw_edf(src, preload=True, verbose="error").crop(0, 30)
    raw.pick(raw.ch_names[:19]).rename_channels({"EEG C3": "XY1"})
    out = tmp_path_factory.mktemp("custom") / "rec" / "custom.edf"
    out.parent.mkdir()
    mne.export.export_raw(out, raw, fmt="edf", verbose="error")
    return out


@pytest.fixture(scope="module")
def bvct_with_xy1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CapTrak fixture with its T7 electrode named XY1."""
    if not BVCT.is_file():
        pytest.skip(f"fixture missing: {BVCT}")
    out = tmp_path_factory.mktemp("bvct") / "cap.bvct"
    out.write_text(BVCT.read_text().replace("<Name>T7</Name>", "<Name>XY1</Name>"))
    return out


def _exit_code(argv: list[str], capsys) -> tuple[int, str]:
    run = run_cli(argv, capsys)
    return run.code, run.err


def test_tables_in_metres_mm_cm_and_their_errors(tmp_path) -> None:
    table = tmp_path / "p.csv"
    table.write_text("XY1,0.031,-0.012,0.088\nCz,0,0,0.1\n")  # no header: metres
    got = read_positions(table)
    assert list(got) == ["XY1"]  # Cz has a 10-05 name: the package's position stays
    np.testing.assert_allclose(got["XY1"], XY1_M)
    table.write_text("# digitised\nelectrode,x_mm,y_mm,z_mm,impedance\nXY1,31,-12,88,5\n")
    np.testing.assert_allclose(read_positions(table)["XY1"], XY1_M)
    tsv = tmp_path / "electrodes.tsv"  # BIDS-like: a unit column, n/a rows
    tsv.write_text("name\tx\ty\tz\tunit\nXY1\t3.1\t-1.2\t8.8\tcm\nXY2\tn/a\tn/a\tn/a\tcm\n")
    assert list(read_positions(tsv)) == ["XY1"]
    np.testing.assert_allclose(read_positions(tsv)["XY1"], XY1_M)
    table.write_text("name,x,y,z\nXY1,31,-12,88\n")
    with pytest.raises(NeuriptError, match=r"p.csv line 2: position of 'XY1' is 94.069\d* m from "
                       r"the origin, over 0.5 m; positions are metres: for mm name the columns "
                       r"x_mm,y_mm,z_mm"):
        read_positions(table)
    table.write_text("name,x,y,z\nXY1,0,0,0.1\nXY1,0,0,0.1\n")
    with pytest.raises(NeuriptError, match="line 3: electrode 'XY1' is listed twice"):
        read_positions(table)
    with pytest.raises(NeuriptError, match=r"unknown positions file type '.pos'"):
        read_positions(_touch(tmp_path / "x.pos"))
    with pytest.raises(NeuriptError, match="no such positions file"):
        read_positions(tmp_path / "missing.csv")


def _touch(path: Path) -> Path:
    path.write_text("x\n")
    return path


def test_bvct_positions_are_placed_as_from_mne_places_them(bvct_with_xy1) -> None:
    got = read_positions(bvct_with_xy1)
    assert set(got) == {"XY1", "GND"}  # the 64 other electrodes have 10-05 names
    from neuript.data.mne_bridge import head_to_package

    np.testing.assert_allclose(got["XY1"], head_to_package(np.array(T7_IN_BVCT_MM) / 1000),
                               atol=1e-9)
    # the same montage on a Raw, converted by Recording.from_mne
    info = mne.create_info(["XY1", "Cz"], 100.0, "eeg")
    raw = mne.io.RawArray(np.zeros((2, 100)), info, verbose="error")
    raw.set_montage(mne.channels.read_dig_captrak(bvct_with_xy1), on_missing="ignore")
    np.testing.assert_array_equal(Recording.from_mne(raw).positions["XY1"], got["XY1"])


def test_custom_electrode_needs_positions_then_enters_the_corpus(custom_edf, tmp_path,
                                                                  capsys) -> None:
    out = tmp_path / "no_positions"
    code, err = _exit_code(["prepare", str(custom_edf.parent), "--out", str(out),
                            "--on-unknown", "raise", *FLAGS], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and "--positions FILE" in last and "custom.edf" in last
    (skip,) = json.loads((out / "skipped.json").read_text())
    assert "no known position for 'XY1'" in skip["reason"] and "--positions FILE" in skip[
        "reason"] and "it has" not in skip["reason"]
    table = tmp_path / "positions.csv"
    table.write_text("name,x_mm,y_mm,z_mm\n" + ",".join(["XY1", *(str(v * 1000) for v in XY1_M)]))
    out = tmp_path / "with_positions"
    assert _exit_code(["prepare", str(custom_edf.parent), "--out", str(out), "--on-unknown",
                       "raise", "--positions", str(table), *FLAGS], capsys)[0] == 0
    (montage,) = WindowStore(out).montages
    assert "XY1" in montage.ch_names and len(montage.ch_names) == 19
    np.testing.assert_allclose(montage.positions[montage.ch_names.index("XY1")], XY1_M,
                               rtol=1e-6)
    assert json.loads((out / "config.json").read_text())["positions"] == {"XY1": list(XY1_M)}


def test_prepare_takes_a_captrak_file(custom_edf, bvct_with_xy1, tmp_path, capsys) -> None:
    out = tmp_path / "c"
    assert _exit_code(["prepare", str(custom_edf), "--out", str(out), "--positions",
                       str(bvct_with_xy1), *FLAGS], capsys)[0] == 0
    (montage,) = WindowStore(out).montages
    np.testing.assert_allclose(montage.positions[montage.ch_names.index("XY1")],
                               read_positions(bvct_with_xy1)["XY1"], rtol=1e-6)


def test_predict_and_embed_read_positions(custom_edf, tmp_path) -> None:
    table = tmp_path / "p.tsv"
    table.write_text("name\tx\ty\tz\nxy1\t0.031\t-0.012\t0.088\n")  # any letter case matches
    for command in ("predict", "embed"):
        args = build_parser().parse_args([command, str(custom_edf), "--model", "m",
                                          "--positions", str(table)])
        rec = _recording_input(args)
        assert set(rec.positions) == {"XY1"}
        np.testing.assert_allclose(rec.positions["XY1"], XY1_M)
    assert _recording_input(build_parser().parse_args(["predict", "f.edf", "--model", "m"])) == (
        "f.edf")


def test_positions_win_over_the_files_own_and_match_decorated_names() -> None:
    rec = Recording.from_array(np.zeros((2, 10)), 10.0, ["EEG XY1-REF", "Cz"],
                               positions={"EEG XY1-REF": [0.0, 0.0, 0.09]})
    placed = with_positions(rec, {"XY1": np.array(XY1_M), "Cz": np.zeros(3)})
    np.testing.assert_allclose(placed.positions["EEG XY1-REF"], XY1_M)
    assert "Cz" not in placed.positions and rec.positions["EEG XY1-REF"][2] == 0.09
    assert with_positions(rec, {"Other": np.array(XY1_M)}) is rec


def test_manifest_positions_file_column(custom_edf, tmp_path) -> None:
    (tmp_path / "pos.csv").write_text("XY1,0.031,-0.012,0.088\n")
    manifest = tmp_path / "labels.csv"
    manifest.write_text(f"path,label,subject,positions_file\n{custom_edf},rest,s1,pos.csv\n"
                        f"{custom_edf},task,s1,missing.csv\n")
    plan = plan_manifest(manifest)
    np.testing.assert_allclose(plan.units[0].recording.positions["XY1"], XY1_M)
    (problem,) = plan.problems
    assert problem.where == "labels.csv line 3" and "positions_file" in problem.message
    assert "missing.csv: no such positions file" in problem.message
