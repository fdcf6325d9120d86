"""Tasks from a BIDS copy of real EEGMAT recordings, written with mne-bids in a tmp folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _byod_data import eegmat, micro_config, n_windows, read_raw
from neuript.data.montage import TCP_PAIRS
from neuript.data.tasks.bids import build_bids_task, plan_bids
from neuript.errors import NeuriptError

mne_bids = pytest.importorskip("mne_bids")

SUBJECTS = ("Subject00", "Subject01", "Subject02", "Subject03")
REST_S = 40.0
"""Rest recordings are cropped to 40 s to keep the test fast."""
PROBES_S = (3.0, 11.5, 20.25)
"""Point events ('probe', zero duration) added to every rest run."""


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory):
    """sub-00..03, task 'arithmetic', run 1 = rest (one event over the whole run plus three
    point 'probe' events), run 2 = task (one event over the whole run), EDF."""
    import mne

    root = tmp_path_factory.mktemp("bids")
    for subject in SUBJECTS:
        for run, label in ((1, "rest"), (2, "task")):
            raw = read_raw(eegmat(f"{subject}_{run}.edf"))
            raw.set_channel_types({"ECG ECG": "ecg"})
            if run == 1:
                raw.crop(0.0, REST_S, include_tmax=False)
            duration = raw.n_times / raw.info["sfreq"]
            onsets, durations, names = [0.0], [duration], [label]
            if run == 1:
                onsets += list(PROBES_S)
                durations += [0.0] * len(PROBES_S)
                names += ["probe"] * len(PROBES_S)
            raw.set_annotations(mne.Annotations(onsets, durations, names))
            path = mne_bids.BIDSPath(subject=subject[-2:], task="arithmetic", run=run,
                                     datatype="eeg", root=root)
            mne_bids.write_raw_bids(raw, path, allow_preload=True, format="EDF",
                                    overwrite=True, verbose="error")
    return root


@pytest.fixture(scope="module")
def bids_task(bids_root):
    return build_bids_task(bids_root, events="trial_type", labels=("rest", "task"),
                           window_s=4.0)


def test_long_events_are_tiled_per_recording(bids_task, bids_root):
    task = bids_task
    assert task.ch_names == tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
    assert task.class_names == ("rest", "task")
    assert set(task.subjects.tolist()) == {f"sub-{s[-2:]}" for s in SUBJECTS}
    for subject in SUBJECTS:
        rest = (task.subjects == f"sub-{subject[-2:]}") & (task.labels == 0)
        work = (task.subjects == f"sub-{subject[-2:]}") & (task.labels == 1)
        raw = read_raw(eegmat(f"{subject}_2.edf"))
        assert rest.sum() == n_windows(REST_S, 4.0)
        assert work.sum() == n_windows(raw.n_times / raw.info["sfreq"], 4.0)
        assert np.array_equal(task.starts[rest], np.arange(rest.sum()) * 256)


def test_split_is_by_subject_with_every_split_filled(bids_task):
    for subject in set(bids_task.subjects.tolist()):
        assert len(set(bids_task.splits[bids_task.subjects == subject].tolist())) == 1
    assert all(len(bids_task.indices(s)) for s in ("train", "val", "test"))
    assert "BIDS dataset" in bids_task.protocol and "trial_type" in bids_task.protocol


def test_point_events_give_one_window_at_onset_plus_offset(bids_root):
    task = build_bids_task(bids_root, labels=("probe",), window_s=2.0, event_offset_s=-0.5)
    assert task.class_names == ("probe",)
    per_subject = [task.starts[task.subjects == s] for s in sorted(set(task.subjects))]
    expected = np.rint((np.array(PROBES_S) - 0.5) * 64).astype(int)
    for starts in per_subject:
        assert np.array_equal(starts, expected)


def test_missing_events_column_is_named(bids_root):
    plan = plan_bids(bids_root, events="condition")
    assert plan.units == []
    assert all("condition" in p.message and p.where.endswith("_events.tsv line 1")
               for p in plan.problems)
    with pytest.raises(NeuriptError, match="condition"):
        build_bids_task(bids_root, events="condition")


def test_bids_task_fine_tunes_end_to_end(bids_task, tmp_path):
    from neuript.train.finetune import run_finetune

    torch.set_num_threads(1)
    result = run_finetune(micro_config(tmp_path / "run"), task=bids_task)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["task"] == bids_task.name
    assert set(metrics["per_seed"][0]["test"]) >= {"balanced_accuracy", "auroc"}
    assert np.isfinite(metrics["per_seed"][0]["test"]["balanced_accuracy"])
