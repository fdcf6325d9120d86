"""Tasks from in-memory recordings, down to one custom channel with an explicit position."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from _byod_data import eegmat, micro_config, n_windows, read_raw
from neuript.config import PreprocessConfig
from neuript.data.io import read_recording
from neuript.data.preprocess import preprocess_continuous
from neuript.data.recording import Recording
from neuript.data.tasks.arrays import build_array_task
from neuript.errors import NeuriptError

SUBJECTS = ("Subject00", "Subject01", "Subject02", "Subject03")
SECONDS = 24.0
PROBE_POS = (0.001, -0.002, 0.098)


def _cz(subject: str, run: int) -> tuple[np.ndarray, float]:
    """Cz of a real EEGMAT run (volts), first SECONDS s, read by MNE directly."""
    raw = read_raw(eegmat(f"{subject}_{run}.edf"))
    sfreq = raw.info["sfreq"]
    return raw.get_data(picks=["EEG Cz"])[0, : int(SECONDS * sfreq)], sfreq


@pytest.fixture(scope="module")
def probe_items():
    items = []
    for subject in SUBJECTS:
        for run, label in ((1, "rest"), (2, "task")):
            data, sfreq = _cz(subject, run)
            rec = Recording.from_array(data * 1e6, sfreq, ["Probe"], unit="uV",
                                       positions={"Probe": PROBE_POS}, subject=subject)
            items.append((rec, label, subject))
    return items


@pytest.fixture(scope="module")
def probe_task(probe_items):
    return build_array_task(probe_items, window_s=4.0, montage="as_is")


def test_single_custom_channel_keeps_name_position_and_values(probe_task):
    task = probe_task
    assert task.ch_names == ("Probe",)
    np.testing.assert_allclose(task.positions, [PROBE_POS], rtol=1e-6)
    assert task.signals.shape == (len(SUBJECTS) * 2 * n_windows(SECONDS, 4.0), 1, 256)
    # the same samples read from the EDF and preprocessed as a 19-channel monopolar file
    rec = read_recording(eegmat("Subject00_1.edf"))
    rec = dataclasses.replace(rec, data=rec.data[:, : int(SECONDS * rec.sfreq_hz)])
    cont = preprocess_continuous(rec, task.preprocess, target="monopolar")
    cz = cont.data[cont.ch_names.index("Cz")]
    first = (task.subjects == "Subject00") & (task.labels == 0)
    np.testing.assert_allclose(task.signals[first][1, 0], cz[256:512], rtol=1e-5, atol=1e-4)
    assert task.preprocess.window_s == 4.0 and task.preprocess.reject_abs_uv is None


def test_single_channel_task_fine_tunes_end_to_end(probe_task, tmp_path):
    from neuript.train.finetune import run_finetune

    torch.set_num_threads(1)
    result = run_finetune(micro_config(tmp_path / "run"), task=probe_task)
    config = json.loads((result.run_dir / "seed_0" / "model" / "config.json").read_text())
    assert config["extra"]["ch_names"] == ["Probe"]
    assert np.isfinite(result.per_seed[0]["test"]["balanced_accuracy"])


def test_dict_items_segments_splits_and_class_order(probe_items):
    items = [{"recording": rec, "label": label, "subject": subject, "start_s": 4.0,
              "stop_s": 16.0, "split": {"Subject00": "val", "Subject01": "test"}.get(subject,
                                                                                    "train")}
             for rec, label, subject in probe_items]
    task = build_array_task(items, window_s=4.0, split="column", class_names=("task", "rest"),
                            preprocess=PreprocessConfig(notch_hz=None))
    assert task.class_names == ("task", "rest")
    assert task.signals.shape[0] == len(items) * 3
    assert np.array_equal(np.unique(task.starts), [256, 512, 768])
    assert set(task.subjects[task.splits == "val"]) == {"Subject00"}
    assert sorted(set(task.sources)) == sorted(f"<array item {i}>" for i in range(len(items)))
    assert task.labels[(task.subjects == "Subject02")].tolist() == [1, 1, 1, 0, 0, 0]


def test_bad_items_are_named(probe_items):
    rec = probe_items[0][0]
    with pytest.raises(NeuriptError, match="item 1"):
        build_array_task([probe_items[0], (rec.data, "rest", "x")])
    with pytest.raises(NeuriptError, match="item 2.*not in class_names"):
        build_array_task(probe_items[:2] + [(rec, "sleep", "S9")], class_names=("rest", "task"))
    unknown = Recording.from_array(rec.data[0], rec.sfreq_hz, ["Probe"], unit="V")
    with pytest.raises(NeuriptError, match="item 0.*'Probe'.*position"):
        build_array_task([(unknown, "rest", "a"), *probe_items[1:]])
