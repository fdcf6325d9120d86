"""Tasks from labelled mne.Epochs of a real recording, against the arrays and manifest paths."""

from __future__ import annotations

import logging

import mne
import numpy as np
import pytest

from _mne_data import EVENT_ID, RUNS, mi_epochs, mi_path, mi_raw
from neuript.config import PreprocessConfig
from neuript.data.recording import Recording
from neuript.data.tasks.arrays import build_array_task
from neuript.data.tasks.epochs import task_from_epochs
from neuript.data.tasks.manifest import build_manifest_task
from neuript.errors import NeuriptError

SECONDS = 4.0
PROBE_POS = (0.004, -0.031, 0.087)


@pytest.fixture(scope="module")
def mi():
    return mi_epochs(SECONDS)


def test_epochs_task_equals_arrays_task_of_the_same_stretches(mi):
    """Each epoch is the Raw's [cue, cue + 4 s): the arrays task built from those stretches
    (same resampling 160 → 64 Hz, band-pass and split) holds the same windows."""
    epochs, y, groups = mi
    task = task_from_epochs(epochs, subjects=[f"R{g:02d}" for g in groups])
    items = []
    for run in RUNS:
        raw = mi_raw(run)
        events, _ = mne.events_from_annotations(raw, verbose="error")
        data = raw.get_data()
        n = int(SECONDS * raw.info["sfreq"])
        for sample, _, code in events:
            if code in EVENT_ID.values() and sample + n <= data.shape[1]:
                rec = Recording.from_array(data[:, sample: sample + n], raw.info["sfreq"],
                                           raw.ch_names, unit="V")
                label = "left" if code == EVENT_ID["left"] else "right"
                items.append((rec, label, f"R{run:02d}"))
    reference = build_array_task(items, window_s=SECONDS)
    assert task.signals.shape == reference.signals.shape == (len(epochs), 8, 256)
    assert task.ch_names == reference.ch_names == ("C3", "Cz", "C4", "FC3", "FC4", "CP3",
                                                   "CP4", "Pz")
    np.testing.assert_allclose(task.signals, reference.signals, rtol=1e-5, atol=1e-4)
    assert task.class_names == ("left", "right")
    assert np.array_equal(np.array(task.class_names)[task.labels], y)
    assert np.array_equal(task.splits, reference.splits)
    assert np.array_equal(task.subjects, reference.subjects)
    assert task.preprocess.sfreq_hz == 64.0


def test_epochs_task_equals_event_locked_manifest_task(tmp_path):
    """Without filters or resampling an epoch is the file's samples at the cue: the manifest's
    event-locked windows (TCP from all 64 channels, split column by run) are the same."""
    runs = {4: "train", 8: "val", 12: "test"}
    cfg = PreprocessConfig(sfreq_hz=160.0, l_freq_hz=None, h_freq_hz=None, notch_hz=None,
                           reject_abs_uv=None, flat_std_uv=None, window_s=SECONDS)
    lines = ["path,label,subject,event,split"]
    for run, split in runs.items():
        for event, label in (("T1", "left"), ("T2", "right")):
            lines.append(f"{mi_path(run)},{label},S001,{event},{split}")
    manifest = tmp_path / "mi.csv"
    manifest.write_text("\n".join(lines) + "\n")
    reference = build_manifest_task(manifest, window_s=SECONDS, split="column", preprocess=cfg)

    epochs, y, groups = mi_epochs(SECONDS, picks=None, runs=tuple(runs))
    task = task_from_epochs(epochs, subjects="S001", splits=[runs[g] for g in groups],
                            preprocess=cfg)
    assert task.ch_names == reference.ch_names and len(task.ch_names) == 20
    run_of_source = {str(mi_path(run)): run for run in runs}
    ref_order = np.lexsort((reference.starts, [run_of_source[s] for s in reference.sources]))
    ours_order = np.lexsort((epochs.events[:, 0], groups))  # concatenation shifts later runs
    assert len(ref_order) == len(ours_order) == len(epochs)
    np.testing.assert_allclose(task.signals[ours_order], reference.signals[ref_order],
                               rtol=1e-5, atol=2e-3)
    assert np.array_equal(task.labels[ours_order], reference.labels[ref_order])
    assert np.array_equal(task.splits[ours_order], reference.splits[ref_order])


def test_labels_from_event_id_or_given_array(mi):
    epochs, y, groups = mi
    subjects = [str(g) for g in groups]
    from_events = task_from_epochs(epochs, subjects=subjects)
    given = task_from_epochs(epochs, subjects=subjects, labels=y)
    assert from_events.class_names == given.class_names == ("left", "right")
    assert np.array_equal(from_events.labels, given.labels)
    renamed = task_from_epochs(epochs, subjects=subjects, labels=np.where(y == "left", 7, 9))
    assert renamed.class_names == ("7", "9")
    assert np.array_equal(renamed.labels, from_events.labels)
    with pytest.raises(NeuriptError, match="one value per epoch"):
        task_from_epochs(epochs, subjects=subjects, labels=y[:-1])


def test_bads_set_aside_and_custom_electrode_keeps_its_montage_position(caplog):
    """info['bads'] leave the task (named in a log line); an electrode without a 10-05 name keeps
    the position of the Epochs' montage; standard names keep the package's positions."""
    from neuript.data.montage import channel_position

    raw = mi_raw(RUNS[0]).rename_channels({"Pz..": "Probe"})
    montage = mne.channels.make_dig_montage(ch_pos={"Probe": np.array(PROBE_POS)},
                                            coord_frame="head")
    raw.set_montage(montage, on_missing="ignore")
    raw.info["bads"] = ["Cz.."]
    events, _ = mne.events_from_annotations(raw, verbose="error")
    epochs = mne.Epochs(raw, events, EVENT_ID, tmin=0.0, tmax=2.0 - 1 / 160, baseline=None,
                        preload=True, verbose="error")
    with caplog.at_level(logging.INFO, logger="neuript.data.io"):
        task = task_from_epochs(epochs, subjects=[f"s{i % 3}" for i in range(len(epochs))])
    assert "bad channels ['Cz..']" in caplog.text
    assert task.ch_names == ("C3", "C4", "FC3", "FC4", "CP3", "CP4", "Probe")
    from neuript.data.mne_bridge import head_to_package

    np.testing.assert_allclose(task.positions[-1], head_to_package(np.array(PROBE_POS)),
                               rtol=1e-6)
    np.testing.assert_allclose(task.positions[0], channel_position("C3"), rtol=1e-6)
