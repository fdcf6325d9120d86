"""MNE Raw objects wherever a recording is accepted, and predictions back as mne.Annotations."""

from __future__ import annotations

import logging

import mne
import numpy as np
import pytest
import torch

from _finetune_data import MICRO, eegmat_dir
from neuript.config import InputContract, override, to_dict
from neuript.data.io import read_recording
from neuript.data.mne_bridge import as_recording, head_to_package
from neuript.data.recording import Recording
from neuript.errors import ContractError, NeuriptError
from neuript.predict import run_embed, run_predict

RECORDING = "Subject33_2.edf"
PROBE_POS = (0.012, 0.054, 0.071)


def _raw(name: str = RECORDING) -> mne.io.BaseRaw:
    return mne.io.read_raw_edf(eegmat_dir() / name, preload=True, verbose="error")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A micro NeurIPT classifier (random weights) with the MentalArithmetic contract."""
    from neuript.data.montage import pooling_groups
    from neuript.data.preprocess import preprocess_continuous
    from neuript.data.tasks import TASKS
    from neuript.model.neuript import NeurIPTClassifier
    from neuript.model.presets import preset
    from neuript.model_folder import save_classifier

    pre = TASKS["mental_arithmetic"].preprocess
    cont = preprocess_continuous(read_recording(eegmat_dir() / RECORDING), pre)
    torch.manual_seed(0)
    groups = pooling_groups(list(cont.ch_names), cont.positions, "functional")
    model = NeurIPTClassifier(override(preset("tiny"), MICRO), 2, groups.names)
    extra = {"class_names": ["rest", "task"], "group_names": list(groups.names),
             "scheme": "functional", "preprocess": to_dict(pre), "ch_names": list(cont.ch_names),
             "task": "mental_arithmetic", "model_kind": "neuript"}
    out = tmp_path_factory.mktemp("model") / "model"
    save_classifier(model, out, InputContract.from_preprocess(pre, cont.ch_names), extra)
    return out


def test_from_mne_equals_reading_the_file():
    path = eegmat_dir() / RECORDING
    from_file, from_raw = read_recording(path), Recording.from_mne(_raw())
    assert from_raw.source == str(path)
    assert (from_raw.subject, from_raw.session) == (from_file.subject, from_file.session)
    assert from_raw.ch_names == from_file.ch_names
    assert from_raw.excluded == from_file.excluded == {"EEG A2-A1": "ref", "ECG ECG": "ecg"}
    np.testing.assert_array_equal(from_raw.data, from_file.data)
    assert from_raw.sfreq_hz == from_file.sfreq_hz and from_raw.positions is None
    memory = Recording.from_mne(mne.io.RawArray(_raw().get_data(), _raw().info, verbose="error"),
                                subject="s1")
    assert (memory.source, memory.subject) == ("<mne.Raw>", "s1")


def test_bads_are_set_aside_and_named_in_a_log_line(caplog):
    raw = _raw()
    raw.info["bads"] = ["EEG Fp1", "ECG ECG"]
    with caplog.at_level(logging.INFO, logger="neuript.data.io"):
        rec = Recording.from_mne(raw)
    assert "bad channels ['EEG Fp1']" in caplog.text
    assert "EEG Fp1" not in rec.ch_names and rec.excluded["EEG Fp1"] == "bad"
    assert rec.excluded["ECG ECG"] == "ecg"  # already non-EEG: keeps its type
    assert raw.info["bads"] == ["EEG Fp1", "ECG ECG"]  # the caller's object is not changed


def test_montage_positions_kept_for_custom_electrodes_only():
    raw = _raw().rename_channels({"EEG Pz": "Probe"})
    ch_pos = {"Probe": np.array(PROBE_POS), "EEG Fp1": np.array([-0.04, 0.09, 0.03])}
    raw.set_montage(mne.channels.make_dig_montage(ch_pos=ch_pos, coord_frame="head"),
                    on_missing="ignore")
    rec = Recording.from_mne(raw)
    assert set(rec.positions) == {"Probe"}  # "EEG Fp1" has a 10-05 name: the package's table
    np.testing.assert_allclose(rec.positions["Probe"], head_to_package(np.array(PROBE_POS)))


def test_montage_positions_land_in_the_package_frame():
    """A standard electrode renamed to a custom name keeps exactly its table position."""
    from neuript.data.montage import channel_position

    names = ["Cz", "T7", "Fp1", "O2"]
    raw = mne.io.RawArray(np.zeros((4, 100)), mne.create_info(names, 100.0, "eeg"),
                          verbose="error")
    raw.set_montage(mne.channels.make_standard_montage("colin27_1005"))
    raw.rename_channels({n: f"X_{n}" for n in names})
    rec = Recording.from_mne(raw)
    for n in names:  # MNE's head frame sits 4-6 cm away from the table's frame
        assert np.linalg.norm(raw.info["chs"][names.index(n)]["loc"][:3]
                              - channel_position(n)) > 0.03
        np.testing.assert_allclose(rec.positions[f"X_{n}"], channel_position(n), atol=1e-6)


def test_predict_on_raw_equals_predict_on_its_file(model_dir):
    path = eegmat_dir() / RECORDING
    on_file = run_predict(path, model_dir, device="cpu")
    on_raw = run_predict(_raw(), model_dir, device="cpu")
    assert on_raw.summary == on_file.summary
    np.testing.assert_array_equal(on_raw.rows.to_numpy(), on_file.rows.to_numpy())
    import neuript

    api = neuript.embed(_raw(), model_dir, device="cpu")
    np.testing.assert_array_equal(api.features, run_embed(path, model_dir, device="cpu").features)


def test_a_bad_channel_the_model_needs_is_refused(model_dir):
    raw = _raw()
    raw.info["bads"] = ["EEG Fp1"]
    with pytest.raises(ContractError, match="missing electrode.*Fp1"):
        run_predict(raw, model_dir, device="cpu")


def test_predictions_as_annotations_on_the_raw(model_dir):
    raw = _raw().crop(tmin=2.0)  # first_time 2 s: onsets stay relative to the first sample
    result = run_predict(raw, model_dir, device="cpu")
    annotations = result.to_annotations()
    assert len(annotations) == len(result.rows) and annotations.orig_time is None
    np.testing.assert_allclose(annotations.onset, result.rows["start_s"])
    np.testing.assert_allclose(annotations.duration, 5.0)
    assert list(annotations.description) == list(result.rows["predicted"])
    p = result.rows[["p_rest", "p_task"]].to_numpy().max(axis=1)
    np.testing.assert_allclose([e["probability"] for e in annotations.extras], p)
    raw.set_annotations(annotations)
    np.testing.assert_allclose(raw.annotations.onset - raw.first_time, result.rows["start_s"])
    labelled = result.to_annotations(probability_in_description=True)
    assert labelled.description[0] == f"{result.rows['predicted'][0]} (p={p[0]:.2f})"


def test_as_recording_refuses_epochs_and_other_objects():
    raw = _raw()
    epochs = mne.make_fixed_length_epochs(raw, duration=2.0, preload=True, verbose="error")
    with pytest.raises(NeuriptError, match="task_from_epochs"):
        as_recording(epochs)
    with pytest.raises(NeuriptError, match="got list"):
        as_recording([1, 2, 3])
