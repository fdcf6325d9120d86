"""`neuript inspect` on real recordings and crafted bad manifests: each problem names its row."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from _byod_data import cropped_copy, eegmat, eegmmidb, n_windows, read_raw
from neuript.inspect import inspect_manifest, inspect_recording, run_inspect
from test_bids_task import bids_root  # noqa: F401 (the BIDS fixture)

SUBJECTS = ("Subject00", "Subject01", "Subject02")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Cropped real EEGMAT copies: rest 40 s, task 16 s; 'odd' (Cz renamed Xyz9), 'extra'
    (A2-A1 renamed Xyz8: all TCP electrodes plus an unknown one), 'short' (2 s)."""
    out = tmp_path_factory.mktemp("inspect")
    for subject in SUBJECTS:
        cropped_copy(eegmat(f"{subject}_1.edf"), out / f"{subject}_1.edf", tmax_s=40.0)
        cropped_copy(eegmat(f"{subject}_2.edf"), out / f"{subject}_2.edf", tmax_s=16.0)
    cropped_copy(eegmat("Subject03_1.edf"), out / "odd.edf", tmax_s=20.0,
                 rename={"EEG Cz": "Xyz9"})
    cropped_copy(eegmat("Subject03_2.edf"), out / "short.edf", tmax_s=2.0)
    cropped_copy(eegmat("Subject03_1.edf"), out / "extra.edf", tmax_s=20.0,
                 rename={"EEG A2-A1": "Xyz8"})
    return out


def _write(folder, name, rows):
    path = folder / name
    path.write_text("\n".join(["path,label,subject,start_s,stop_s", *rows]) + "\n")
    return path


def _good_rows():
    rows = []
    for s in SUBJECTS:
        rows += [f"{s}_1.edf,rest,{s},,", f"{s}_2.edf,task,{s},,"]
    return rows


def test_good_manifest_is_ok_with_counts_per_label_subject_and_split(folder):
    report = inspect_manifest(_write(folder, "good.csv", _good_rows()))
    assert report.ok, report.to_text()
    assert report.windows == {"rest": {s: 10 for s in SUBJECTS},
                              "task": {s: 4 for s in SUBJECTS}}
    assert {k: sum(v.values()) for k, v in report.splits.items()} == {
        "train": 14, "val": 14, "test": 14}
    assert "TCP" in report.montage
    row = report.rows[0]
    assert row.where == "good.csv line 2" and row.aliases["EEG T3"] == "T7"
    assert row.dropped["ECG ECG"] == "ecg"


def test_unknown_channel_row_is_named_with_close_matches_and_position_hint(folder):
    rows = _good_rows() + ["odd.edf,rest,Subject03,,"]
    report = inspect_manifest(_write(folder, "unknown.csv", rows))
    assert not report.ok
    (problem,) = report.problems_of("unknown_channel")
    assert problem.where == "unknown.csv line 8" and problem.severity == "error"
    assert "'Xyz9'" in problem.message and "positions" in problem.message
    assert report.rows[-1].dropped["Xyz9"] == "unknown channel name"
    tolerant = inspect_manifest(folder / "unknown.csv", on_unknown="drop")
    assert [p.severity for p in tolerant.problems_of("unknown_channel")] == ["warning"]
    assert tolerant.ok and "Cz" not in tolerant.montage and "Fp1" in tolerant.montage


def test_unknown_extra_channel_is_only_a_warning_when_tcp_is_used(folder):
    rows = _good_rows() + ["extra.edf,rest,Subject03,,"]
    report = inspect_manifest(_write(folder, "extra.csv", rows))
    (problem,) = report.problems_of("unknown_channel")
    assert problem.severity == "warning" and problem.where == "extra.csv line 8"
    assert report.ok and "TCP" in report.montage


def test_short_recording_and_segment_rows_are_named(folder):
    rows = _good_rows() + ["short.edf,task,Subject03,,", "Subject00_2.edf,task,Subject00,10,30"]
    report = inspect_manifest(_write(folder, "short.csv", rows))
    assert not report.ok
    assert [p.where for p in report.problems_of("short_recording")] == ["short.csv line 8"]
    assert "2.00 s" in report.problems_of("short_recording")[0].message
    assert [p.where for p in report.problems_of("segment_outside")] == ["short.csv line 9"]


def test_class_imbalance_names_the_rows_of_the_rare_class(folder):
    rows = []
    for s in SUBJECTS:
        rows += [f"{s}_1.edf,rest,{s},,", f"{s}_2.edf,task,{s},0,8"]
    report = inspect_manifest(_write(folder, "imbalance.csv", rows))
    (problem,) = report.problems_of("class_imbalance")
    assert problem.severity == "warning" and report.ok
    assert problem.where == "imbalance.csv line 3, imbalance.csv line 5, imbalance.csv line 7"
    assert "5.0:1" in problem.message  # 30 rest windows vs 6 task windows


def test_bad_rows_never_raise_and_text_names_them(folder):
    rows = _good_rows() + ["missing.edf,rest,S9,,", "Subject00_1.edf,rest,Subject00,x,"]
    out = io.StringIO()
    report = run_inspect(manifest=_write(folder, "bad.csv", rows), out=out)
    text = out.getvalue()
    assert not report.ok and text == report.to_text()
    assert "[missing_file] bad.csv line 8" in text and "[bad_row] bad.csv line 9" in text
    assert text.rstrip().endswith("NOT OK (2 error(s))")


def test_one_subject_class_and_rate_mix_warnings(folder):
    rows = _good_rows() + [f"{eegmmidb(4)},imagery,S001,,"]
    report = inspect_manifest(_write(folder, "mix.csv", rows), montage="tcp")
    assert [p.where for p in report.problems_of("one_subject_class")] == ["mix.csv line 8"]
    assert report.problems_of("sfreq_mix")[0].severity == "warning"


def test_inspect_recording_reports_channels_windows_and_events():
    path = eegmmidb(4)
    report = inspect_recording(path)
    raw = read_raw(path)
    assert report.ok
    (row,) = report.rows
    assert row.n_channels == 64 and len(row.mapped) == 64 and row.tcp
    assert row.aliases["Fc5."] == "FC5" and row.sfreq_hz == 160.0
    assert row.windows == {"(whole file)": n_windows(raw.n_times / 160.0, 4.0)}
    desc, counts = np.unique(raw.annotations.description, return_counts=True)
    assert row.events == dict(zip(desc.tolist(), counts.tolist()))


def test_run_inspect_dispatches_recording_and_checkpoint(tmp_path):
    out = io.StringIO()
    report = run_inspect(eegmat("Subject00_2.edf"), out=out)
    assert report.kind == "recording" and "62.0 s" in out.getvalue()
    (tmp_path / "config.json").write_text(json.dumps({"kind": "classifier",
                                                      "extra": {"class_names": ["a", "b"]}}))
    report = run_inspect(tmp_path, out=io.StringIO())
    assert report.kind == "checkpoint" and "config.json: kind = classifier" in report.notes


def _column_manifest(folder, name, test_task_label="task"):
    """Subject00/01/02 forced into train/val/test by a split column."""
    lines = ["path,label,subject,split"]
    for subject, split in zip(SUBJECTS, ("train", "val", "test")):
        label = test_task_label if split == "test" else "task"
        lines += [f"{subject}_1.edf,rest,{subject},{split}", f"{subject}_2.edf,{label},{subject},"
                  f"{split}"]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_inspect_is_ok_exactly_when_finetune_builds_the_task(folder, capsys):
    """Issue 13 item 11: the same settings give the same verdict and the same problem text."""
    from neuript.cli import main
    from neuript.errors import NeuriptError
    from neuript.inspect import inspect_user_task
    from neuript.train.finetune import FinetuneRunConfig, resolve_task

    options = {"stride_s": 4.0, "on_unknown": "drop", "seed": 1}
    good = _column_manifest(folder, "column_ok.csv")
    bad = _column_manifest(folder, "column_bad.csv", test_task_label="sleep")  # no training one
    for path in (good, bad):
        cfg = FinetuneRunConfig(manifest=str(path), split="column", window_s=4.0,
                                task_options=options)
        report = inspect_user_task(manifest=cfg.manifest, window_s=cfg.window_s,
                                   split=cfg.split, options=cfg.task_options)
        if path is good:
            assert report.ok, report.to_text()
            assert report.splits == resolve_task(cfg).counts()  # the estimate is the build
            continue
        errors = [p for p in report.problems if p.severity == "error"]
        assert [p.kind for p in errors] == ["split_missing_class"] and not report.ok
        with pytest.raises(NeuriptError) as err:
            resolve_task(cfg)
        assert str(errors[0]) in str(err.value)
        assert str(errors[0]) == "column_bad.csv: split 'train' has no window of ['sleep']"
    with pytest.raises(SystemExit) as exit_info:  # the same flags on the command line
        main(["inspect", "--manifest", str(bad), "--split", "column", "--window-s", "4",
              "--stride-s", "4", "--on-unknown", "drop", "--set", "task_options.seed=1"])
    assert exit_info.value.code == 1
    assert "ERROR   [split_missing_class] column_bad.csv: split 'train'" in capsys.readouterr().out
    main(["inspect", "--manifest", str(good), "--split", "column", "--montage", "tcp"])
    assert "result: OK" in capsys.readouterr().out


def test_a_split_column_is_not_advised_to_a_manifest_that_has_one(folder):
    path = _column_manifest(folder, "two_splits.csv")
    path.write_text(path.read_text().replace(",test", ",val"))
    (problem,) = inspect_manifest(path).problems_of("empty_split")  # split="subject"
    assert "split column forces 3" in problem.message and "--split column" in problem.message
    assert "force splits with a split column" not in problem.message
    without = inspect_manifest(_write(folder, "no_column.csv", _good_rows()), val_fraction=0.0)
    (problem,) = without.problems_of("empty_split")  # no split column: one may be added
    assert "val_fraction" in problem.message
    assert "a split column (train/val/test)" in problem.message


def test_repeated_warnings_are_one_line_per_kind(folder):
    """Issue 13 item 13d: six rows with the same warning make one line with the count."""
    rows = _good_rows() + ["odd.edf,rest,Subject03,,"]  # no Cz there: every other row loses it
    report = inspect_manifest(_write(folder, "warns.csv", rows), on_unknown="drop")
    assert len(report.problems_of("channels_dropped")) == 6
    lines = [line for line in report.to_text().splitlines() if "[channels_dropped]" in line]
    assert lines == ["  WARNING [channels_dropped] 6 times (warns.csv line 2, warns.csv line 3, "
                     "warns.csv line 4 (+3 more)); first: warns.csv line 2: channels ['Cz'] are "
                     "not in every recording and are dropped"]


def test_inspect_of_a_bids_folder_counts_what_finetune_builds(bids_root):  # noqa: F811
    """The BIDS path of inspect takes finetune's settings too (labels is a task option)."""
    from neuript.train.finetune import FinetuneRunConfig, resolve_task

    cfg = FinetuneRunConfig(bids_root=str(bids_root), window_s=4.0,
                            task_options={"labels": ["rest", "task"], "seed": 2})
    report = run_inspect(bids_root, window_s=cfg.window_s, task_options=cfg.task_options,
                         out=io.StringIO())
    assert report.kind == "bids" and report.ok, report.to_text()
    assert report.splits == resolve_task(cfg).counts()
    bad = run_inspect(bids_root, task_options={"labels": ["rest"]}, out=io.StringIO())
    assert [p.kind for p in bad.problems if p.severity == "error"] == ["one_class"]
