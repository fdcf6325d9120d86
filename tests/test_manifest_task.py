"""Tasks from CSV/TSV manifests over real recordings: windows, montage, split, errors, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _byod_data import MICRO, cropped_copy, eegmat, eegmmidb, micro_config, n_windows, read_raw
from neuript.data.montage import TCP_PAIRS
from neuript.data.tasks.base import manifest_hash
from neuript.data.tasks.manifest import build_manifest_task, plan_manifest
from neuript.errors import NeuriptError

SUBJECTS = ("Subject00", "Subject01", "Subject02", "Subject03")
TCP_NAMES = tuple(f"{a}-{b}" for a, b in TCP_PAIRS)


@pytest.fixture(scope="module")
def eegmat_manifest(tmp_path_factory):
    """labels.csv with relative paths (symlinks) to 4 EEGMAT subjects, rest and task."""
    folder = tmp_path_factory.mktemp("byod")
    (folder / "edf").mkdir()
    lines = ["path,label,subject"]
    for subject in SUBJECTS:
        for run, label in ((1, "rest"), (2, "task")):
            link = folder / "edf" / f"{subject}_{run}.edf"
            link.symlink_to(eegmat(link.name))
            lines.append(f"edf/{link.name},{label},{subject}")
    path = folder / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def eegmat_task(eegmat_manifest):
    return build_manifest_task(eegmat_manifest, window_s=5.0, seed=0)


def test_whole_file_rows_give_floor_duration_windows_on_tcp(eegmat_task, eegmat_manifest):
    task = eegmat_task
    assert task.ch_names == TCP_NAMES
    assert task.signals.shape[1:] == (20, 320)
    assert task.class_names == ("rest", "task")
    for subject in SUBJECTS:
        for run, label in ((1, 0), (2, 1)):
            raw = read_raw(eegmat(f"{subject}_{run}.edf"))
            expected = n_windows(raw.n_times / raw.info["sfreq"], 5.0)
            source = str(eegmat_manifest.parent / "edf" / f"{subject}_{run}.edf")
            rows = task.sources == source
            assert rows.sum() == expected, (subject, run)
            assert set(task.labels[rows].tolist()) == {label}
            assert np.array_equal(task.starts[rows], np.arange(expected) * 320)


def test_windows_equal_the_registry_mental_arithmetic_pipeline(eegmat_task, tmp_path):
    from neuript.data.tasks import build_task

    folder = tmp_path / "eegmat"
    folder.mkdir()
    for run in (1, 2):
        (folder / f"Subject00_{run}.edf").symlink_to(eegmat(f"Subject00_{run}.edf"))
    reference = build_task("mental_arithmetic", data_dir=folder, cache=False)
    ours = eegmat_task.signals[eegmat_task.subjects == "Subject00"]
    assert ours.shape == reference.signals.shape
    np.testing.assert_allclose(ours, reference.signals, atol=1e-3)


def test_subject_split_is_seeded_subject_wise_and_hashed(eegmat_task, eegmat_manifest):
    task = eegmat_task
    for subject in SUBJECTS:
        assert len(set(task.splits[task.subjects == subject].tolist())) == 1
    assert {s: len(set(task.subjects[task.splits == s])) for s in ("train", "val", "test")} == {
        "train": 2, "val": 1, "test": 1}
    manifest = task.split_manifest()
    body = {k: v for k, v in manifest.items() if k != "hash"}
    assert manifest["hash"] == manifest_hash(body)
    assert "sha256" in task.protocol and "labels.csv" in task.protocol
    plan = plan_manifest(eegmat_manifest)
    assert [u.where for u in plan.units][:2] == ["labels.csv line 2", "labels.csv line 3"]


def test_manifest_task_fine_tunes_end_to_end(eegmat_task, tmp_path):
    from neuript.train.finetune import run_finetune

    torch.set_num_threads(1)
    result = run_finetune(micro_config(tmp_path / "run"), task=eegmat_task)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["per_seed"][0]["test"]["balanced_accuracy"] <= 1.0
    assert result.split_hash == eegmat_task.split_manifest()["hash"]
    assert (result.run_dir / "seed_0" / "model" / "model.safetensors").is_file()


def test_event_rows_lock_windows_to_annotations_with_split_column(tmp_path):
    runs = {4: "train", 8: "val", 12: "test"}
    lines = ["path\tlabel\tsubject\tevent\tevent_offset_s\tsplit"]
    for run, split in runs.items():
        for event, label in (("T1", "left"), ("T2", "right")):
            lines.append(f"{eegmmidb(run)}\t{label}\tS001\t{event}\t0.5\t{split}")
    path = tmp_path / "mi.tsv"
    path.write_text("\n".join(lines) + "\n")
    task = build_manifest_task(path, window_s=1.5, split="column")
    assert task.class_names == ("left", "right")
    for run, split in runs.items():
        raw = read_raw(eegmmidb(run))
        ann = raw.annotations
        for event, label in (("T1", 0), ("T2", 1)):
            onsets = np.array([o for o, d in zip(ann.onset, ann.description) if d == event])
            rows = (task.sources == str(eegmmidb(run))) & (task.labels == label)
            expected = np.rint((onsets + 0.5) * 64).astype(int)
            # events last 4.1-4.2 s: [onset + 0.5, onset + 4.1) holds two tiled 1.5-s windows
            got = task.starts[rows]
            assert np.array_equal(got[::2], expected), (run, event)
            assert np.array_equal(got[1::2], expected + 96), (run, event)
            assert set(task.splits[rows].tolist()) == {split}


def test_errors_name_every_bad_row(tmp_path):
    task_file = eegmat("Subject00_2.edf")
    lines = [
        "path,label,subject,start_s,stop_s,event,split",
        f"{task_file},task,S0,100,200,,",
        f"{tmp_path / 'nope.edf'},rest,S1,,,,",
        f"{task_file},task,S2,,,T9,",
        f"{task_file},task,S3,abc,,,",
        f"{task_file},task,S4,,,,holdout",
        f"{task_file},task,S5,10,12,,",
    ]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(NeuriptError) as err:
        build_manifest_task(path)
    text = str(err.value)
    assert "bad.csv line 3" in text and "no such file" in text
    assert "bad.csv line 5" in text and "start_s='abc'" in text
    assert "bad.csv line 6" in text and "holdout" in text
    plan = plan_manifest(path)
    from neuript.data.tasks._byod import check_units, default_preprocess

    problems = check_units(plan.units, default_preprocess(4.0, None, None)).problems
    by_kind = {p.kind: p.where for p in problems}
    assert by_kind["segment_outside"] == "bad.csv line 2"
    assert by_kind["event_not_found"] == "bad.csv line 4"
    assert by_kind["short_segment"] == "bad.csv line 7"


def test_empty_manifest_raises(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("path,label,subject\n")
    with pytest.raises(NeuriptError, match="no rows"):
        build_manifest_task(path)


@pytest.fixture(scope="module")
def custom_channel_files(tmp_path_factory):
    """Three subjects' cropped EEGMAT copies (20 s) with Cz renamed to the unknown 'Xyz9'."""
    folder = tmp_path_factory.mktemp("custom")
    for subject in SUBJECTS[:3]:
        for run in (1, 2):
            cropped_copy(eegmat(f"{subject}_{run}.edf"), folder / f"{subject}_{run}.edf",
                         tmax_s=20.0, rename={"EEG Cz": "Xyz9"})
    return folder


def _custom_manifest(folder, extra_header="", extra_cell=""):
    lines = [f"path,label,subject{extra_header}"]
    for subject in SUBJECTS[:3]:
        lines += [f"{subject}_1.edf,rest,{subject}{extra_cell}",
                  f"{subject}_2.edf,task,{subject}{extra_cell}"]
    return "\n".join(lines) + "\n"


def test_unknown_channel_names_row_then_positions_make_it_usable(custom_channel_files):
    folder = custom_channel_files
    path = folder / "custom.csv"
    path.write_text(_custom_manifest(folder))
    with pytest.raises(NeuriptError) as err:
        build_manifest_task(path)
    assert "custom.csv line 2" in str(err.value) and "'Xyz9'" in str(err.value)
    assert "positions" in str(err.value)
    path.write_text(_custom_manifest(folder, ",positions", ',"Xyz9:0.0,0.01,0.09"'))
    task = build_manifest_task(path, window_s=4.0)
    assert "Xyz9" in task.ch_names and "C3" in task.ch_names  # no TCP without Cz: shared set
    np.testing.assert_allclose(task.positions[task.ch_names.index("Xyz9")], [0.0, 0.01, 0.09])
    assert task.signals.shape == (3 * 2 * 5, 19, 256)  # 18 scalp (no Cz) + Xyz9; 20 s = 5 windows


def test_sidecar_positions_and_per_row_channels(custom_channel_files):
    folder = custom_channel_files
    (folder / "positions.json").write_text(json.dumps({"Xyz9": [0.0, 0.01, 0.09]}))
    path = folder / "rows.csv"
    path.write_text(_custom_manifest(folder, ",channels", ",Fp1-F7;Xyz9;O2"))
    try:
        task = build_manifest_task(path, window_s=4.0)
    finally:
        (folder / "positions.json").unlink()
    assert task.ch_names == ("Fp1-F7", "Xyz9", "O2")
    raw = read_raw(folder / "Subject00_1.edf")
    assert task.signals.shape[0] == 6 * n_windows(raw.n_times / raw.info["sfreq"], 4.0)


def test_motor_imagery_event_manifest_fine_tunes(tmp_path):
    from neuript.train.finetune import run_finetune

    lines = ["path,label,subject,event,split"]
    for run, split in ((4, "train"), (8, "val"), (12, "test")):
        lines += [f"{eegmmidb(run)},left,S001,T1,{split}", f"{eegmmidb(run)},right,S001,T2,{split}"]
    path = tmp_path / "mi.csv"
    path.write_text("\n".join(lines) + "\n")
    task = build_manifest_task(path, window_s=4.0, split="column")
    counts = task.counts()
    for split, run in (("train", 4), ("val", 8), ("test", 12)):
        desc = read_raw(eegmmidb(run)).annotations.description.tolist()
        assert counts[split] == {"left": desc.count("T1"), "right": desc.count("T2")}
    torch.set_num_threads(1)
    result = run_finetune(micro_config(tmp_path / "run"), task=task)
    assert np.isfinite(result.per_seed[0]["test"]["balanced_accuracy"])


def test_build_user_task_dispatches_and_explicit_montage(custom_channel_files, tmp_path):
    from neuript.data.tasks.manifest import build_user_task

    path = custom_channel_files / "explicit.csv"
    path.write_text(_custom_manifest(custom_channel_files))
    task = build_user_task(manifest=path, window_s=5.0,
                           options={"montage": ["O1", "Fp2-F8"], "seed": 3})
    assert task.ch_names == ("O1", "Fp2-F8") and task.signals.shape == (6 * 4, 2, 320)
    again = build_user_task(manifest=path, window_s=5.0,
                            options={"montage": ["O1", "Fp2-F8"], "seed": 3})
    assert again.split_manifest()["hash"] == task.split_manifest()["hash"]
    with pytest.raises(NeuriptError, match="exactly one"):
        build_user_task(manifest=path, bids_root=tmp_path)
    with pytest.raises(NeuriptError, match=r"explicit.csv line 2.*lacks"):
        build_manifest_task(path, montage=["Cz", "O1"])


def test_cli_finetune_from_manifest_and_inspect_exit_codes(custom_channel_files, tmp_path,
                                                           capsys):
    from neuript.cli import main

    folder = custom_channel_files
    path = folder / "cli.csv"
    path.write_text(_custom_manifest(folder, ",positions", ',"Xyz9:0.0,0.01,0.09"'))
    main(["inspect", "--manifest", str(path), "--window-s", "4"])  # ok: returns normally
    assert "result: OK" in capsys.readouterr().out
    out = tmp_path / "run"
    config = tmp_path / "micro.yaml"
    config.write_text(json.dumps({"model_overrides": MICRO, "report": False}))  # JSON is YAML
    main(["finetune", "--manifest", str(path), "--window-s", "4", "--split", "subject",
          "--seeds", "0", "1", "--preset", "tiny", "--epochs", "1", "--max-steps", "1",
          "--out", str(out), "--train.threads", "1", "--config", str(config)])
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["seed"] for row in metrics["per_seed"]] == [0, 1]
    assert json.loads((out / "split_manifest.json").read_text())["hash"] == metrics["split_hash"]
    path.write_text(_custom_manifest(folder))  # no positions: the unknown channel is an error
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(path)])
    assert exit_info.value.code == 1
    assert "[unknown_channel] cli.csv line 2" in capsys.readouterr().out
