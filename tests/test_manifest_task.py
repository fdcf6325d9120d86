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
    config = json.loads((result.run_dir / "config.json").read_text())  # the task that ran
    assert (config["task"], config["task_source"]) == ("labels", "python:labels")
    extra = json.loads((result.run_dir / "seed_0" / "model" / "config.json").read_text())["extra"]
    np.testing.assert_allclose(extra["positions"], eegmat_task.positions, atol=1e-6)


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
    config = json.loads((out / "config.json").read_text())
    assert (config["task"], config["task_source"]) == ("cli", f"manifest:{path}")
    assert json.loads((out / "split_manifest.json").read_text())["hash"] == metrics["split_hash"]
    path.write_text(_custom_manifest(folder))  # no positions: the unknown channel is an error
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", str(path)])
    assert exit_info.value.code == 1
    assert "[unknown_channel] cli.csv line 2" in capsys.readouterr().out


def test_a_manifest_run_is_named_after_its_manifest(eegmat_manifest):
    """Issue 13 item 13a: not the default registry task's name."""
    from neuript.train.finetune import FinetuneRunConfig

    assert FinetuneRunConfig(manifest=str(eegmat_manifest)).task == "labels"
    assert FinetuneRunConfig(manifest=str(eegmat_manifest), task_options={"name": "mine"}).task \
        == "mine"
    assert FinetuneRunConfig(bids_root="/data/ds004504").task == "bids-ds004504"
    assert FinetuneRunConfig().task == "mental_arithmetic"


def test_positions_match_channel_names_however_the_file_decorates_them(custom_channel_files):
    """Issue 13 item 13b: a position given for 'EarL' places 'EEG EarL' (and 'EEG X1-Cz')."""
    from neuript.data.montage import build_channel_map, channel_position, pooling_groups
    from neuript.report import plot_lobe_topomap

    given = {"EarL": [-0.08, 0.0, -0.03], "X1": [0.0, -0.05, 0.08]}
    cmap = build_channel_map(["EEG EarL", "EEG X1-Cz", "EEG Cz"], "monopolar",
                             extra_positions=given)
    assert cmap.names == ("EarL", "X1-Cz", "Cz")
    np.testing.assert_allclose(cmap.positions[1], (np.array(given["X1"])
                                                   + channel_position("Cz")) / 2)
    path = custom_channel_files / "spelling.csv"  # the file says 'Xyz9', the cell 'XYZ9'
    path.write_text(_custom_manifest(custom_channel_files, ",positions",
                                     ',"XYZ9:0.0,0.01,0.09"'))
    task = build_manifest_task(path, window_s=4.0)
    k = task.ch_names.index("XYZ9")
    np.testing.assert_allclose(task.positions[k], [0.0, 0.01, 0.09])
    groups = pooling_groups(list(task.ch_names), task.positions, "functional")
    out = plot_lobe_topomap(dict.fromkeys(groups.names, 0.1), list(task.ch_names),
                            "functional", custom_channel_files / "lobes.png",
                            positions=task.positions)  # the report's map: no position error
    assert out.is_file()


def test_contract_check_resolves_aliases_and_bipolar_channels():
    """Issue 13 item 13c: T3 is T7 and a file's T3-T5 is T7-P7; only what is absent is missing."""
    from neuript.data.recording import Recording
    from neuript.predict import missing_channels

    rec = Recording.from_array(np.zeros((4, 512)), 256.0, ["T3", "T5", "EEG FP1-F7", "O1"])
    assert missing_channels(rec, ("T3", "T3-T5", "T7-P7", "Fp1-F7", "O1")) == []
    assert missing_channels(rec, ("Fp1", "T7-P7", "Cz-Pz")) == ["Cz", "Fp1", "Pz"]
    custom = Recording.from_array(np.zeros((2, 512)), 256.0, ["EEG EarL", "Cz"],
                                  positions={"EarL": [-0.08, 0.0, -0.03]})
    assert missing_channels(custom, ("EarL", "EarL-Cz")) == []


def _array_items(unit: str = "uV", junk: bool = False):
    """Three subjects x two labels of 20-s noise at 256 Hz (values of about 20 µV)."""
    from neuript.data.recording import Recording

    rng = np.random.default_rng(0)
    names = ["Fp1", "Cz", "O1"] + (["Junk"] if junk else [])
    return [(Recording.from_array(rng.normal(0.0, 20.0, (len(names), 256 * 20)), 256.0, names,
                                  unit=unit), label, subject)
            for subject in ("s1", "s2", "s3") for label in ("rest", "task")]


def test_build_warnings_are_one_line_per_kind_with_count(caplog):
    """Issue 13 item 13d: six items with an unknown channel log one line, not six."""
    from neuript.data.tasks.arrays import build_array_task

    with caplog.at_level("WARNING"):
        build_array_task(_array_items(junk=True), window_s=4.0, on_unknown="drop")
    lines = [r.getMessage() for r in caplog.records if "[unknown_channel]" in r.getMessage()]
    assert lines == ["task 'arrays': [unknown_channel] 6 times (item 0, item 1, item 2 (+3 "
                     "more)); first: item 0: channel(s) ['Junk'] have no known name or position "
                     "and are not used"]


def test_absurd_amplitudes_warn_with_the_unit_option(caplog, tmp_path):
    """Issue 13 item 13e: µV numbers declared as mV give 20,000-µV windows: one warning."""
    from neuript.data.tasks.arrays import build_array_task
    from neuript.inspect import inspect_manifest

    with caplog.at_level("WARNING"):
        build_array_task(_array_items("uV"), window_s=4.0)
    assert "absurd_amplitude" not in caplog.text
    with caplog.at_level("WARNING"):
        build_array_task(_array_items("mV"), window_s=4.0)
    (line,) = [r.getMessage() for r in caplog.records if "absurd_amplitude" in r.getMessage()]
    assert "[absurd_amplitude] item 0, item 1, item 2, item 3, item 4, item 5: 6 recording(s)" \
        in line and "unit='V'" in line
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(0.0, 20.0, (3, 256 * 20)))
    options = '"{""sfreq"": 256, ""ch_names"": ""Fp1,Cz,O1"", ""unit"": ""mV""}"'
    lines = ["path,label,subject,reader_options"] + [
        f"x.npy,{label},{s},{options}" for s in ("s1", "s2", "s3") for label in ("rest",)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    (problem,) = inspect_manifest(tmp_path / "m.csv").problems_of("absurd_amplitude")
    assert problem.severity == "warning" and problem.where.startswith("m.csv line 2")
    assert "reader_options cell {\"unit\": \"V\"}" in problem.message


def test_nested_preprocess_task_options_from_the_command_line(custom_channel_files):
    """Issue 13 item 13f: --set task_options.preprocess.<field>=… reaches the builder."""
    from neuript.cli import FINETUNE_FLAGS, build_config, build_parser
    from neuript.data.tasks.manifest import build_user_task
    from neuript.train.finetune import FinetuneRunConfig

    path = custom_channel_files / "nested.csv"
    path.write_text(_custom_manifest(custom_channel_files, ",positions",
                                     ',"Xyz9:0.0,0.01,0.09"'))
    args = build_parser().parse_args([
        "finetune", "--manifest", str(path), "--set", "task_options.preprocess.h_freq_hz=20",
        "--set", "task_options.preprocess.notch_hz=null", "--set", "task_options.stride_s=2"])
    cfg = build_config(FinetuneRunConfig, args, FINETUNE_FLAGS)
    task = build_user_task(manifest=cfg.manifest, options=cfg.task_options)
    assert (task.preprocess.h_freq_hz, task.preprocess.notch_hz) == (20.0, None)
    assert (task.preprocess.stride_s, task.preprocess.reject_abs_uv) == (2.0, None)  # recipe
    with pytest.raises(NeuriptError, match=r"nested.csv: task option 'filter.low': only "
                                           "preprocess takes dotted fields"):
        build_user_task(manifest=path, options={"filter.low": 1})
    with pytest.raises(NeuriptError, match=r"unknown field 'h_freq'"):
        build_user_task(manifest=path, options={"preprocess": {"h_freq": 20}})
