"""Prediction and embedding on real EEGMAT recordings through a saved model's input contract."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from _finetune_data import MICRO, eegmat_dir, n_windows, reduced_task
from neuript.config import InputContract, override
from neuript.data.io import read_recording
from neuript.data.montage import pooling_groups
from neuript.errors import ContractError
from neuript.model_folder import load_classifier, save_classifier
from neuript.predict import run_embed, run_predict
from neuript.train.evaluate import predict_batches

RECORDING = "Subject33_2.edf"


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return reduced_task(tmp_path_factory.mktemp("eegmat"))


@pytest.fixture(scope="module")
def model_dir(task, tmp_path_factory):
    """A micro NeurIPT classifier (random weights) saved with the task's contract."""
    from neuript.model.neuript import NeurIPTClassifier
    from neuript.model.presets import preset

    torch.manual_seed(0)
    groups = pooling_groups(list(task.ch_names), task.positions, "functional")
    model = NeurIPTClassifier(override(preset("tiny"), MICRO), 2, groups.names)
    extra = {"class_names": list(task.class_names), "group_names": list(groups.names),
             "scheme": "functional",
             "ch_names": list(task.ch_names), "task": task.name, "model_kind": "neuript"}
    out = tmp_path_factory.mktemp("model") / "model"
    save_classifier(model, out, InputContract.from_preprocess(task.preprocess, task.ch_names),
                    extra)
    return out


def test_one_row_per_window_csv(model_dir, tmp_path):
    path = eegmat_dir() / RECORDING
    rec = read_recording(path)
    result = run_predict(path, model_dir, out=tmp_path / "pred.csv", device="cpu")
    expected = n_windows(rec.duration_s, 5.0)
    assert len(result.rows) == expected == result.summary["n_windows"]
    assert np.allclose(result.rows["start_s"], 5.0 * np.arange(expected))
    proba = result.rows[["p_rest", "p_task"]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert list(result.rows["predicted"]) == [("rest", "task")[k] for k in proba.argmax(1)]
    assert sum(result.summary["class_counts"].values()) == expected
    written = pd.read_csv(tmp_path / "pred.csv")
    assert list(written.columns) == ["window", "start_s", "end_s", "p_rest", "p_task",
                                     "predicted", "quality"]
    assert len(written) == expected
    assert (result.rows["quality"] == "").all()  # a clean recording: nothing suspect
    assert result.summary["quality"] == {"windows_with_problems": 0, "nan": 0, "clipped": 0,
                                         "flat_channels": {}}


def test_a_dead_electrode_marks_every_window_and_warns(model_dir, tmp_path, caplog):
    """Predict keeps every window (rows match the recording), but names the dead electrode."""
    import mne

    raw = mne.io.read_raw_edf(eegmat_dir() / RECORDING, preload=True, verbose="error")
    raw._data[raw.ch_names.index("EEG O1")] = 0.0
    path = tmp_path / "dead_o1.edf"
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    with caplog.at_level("WARNING"):
        result = run_predict(path, model_dir, out=tmp_path / "p.csv", device="cpu")
    expected = n_windows(read_recording(path).duration_s, 5.0)
    # O1 enters the model's channels only through bipolar pairs, which then carry the other
    # electrode: the test runs on the recorded electrodes, before the derivation
    assert len(result.rows) == expected
    assert (result.rows["quality"] == "flat electrode EEG O1").all()
    assert result.summary["quality"]["flat_channels"] == {"EEG O1": expected}
    assert f"{expected} of {expected} windows are suspect (flat EEG O1 in {expected})" in \
        caplog.text
    assert (pd.read_csv(tmp_path / "p.csv")["quality"] == "flat electrode EEG O1").all()


def test_window_problems_name_nan_flat_and_clipped_windows():
    from neuript.data.windows import window_problems

    rng = np.random.default_rng(0)
    w = rng.normal(0, 20, (4, 2, 100)).astype(np.float32)
    w[1, 0] = 7.0  # a constant channel
    w[2, 1, 5] = np.nan
    problems = window_problems(w, ["Fz", "Cz"], clipped=np.array([0, 0, 0, 1], bool))
    assert list(problems.words()) == ["", "flat Fz", "nan", "clipped"]
    assert problems.counts() == {"windows_with_problems": 3, "nan": 1, "clipped": 1,
                                 "flat_channels": {"Fz": 1}}


def test_predictions_equal_model_on_task_windows(model_dir, task):
    """The new-recording path (read → contract → windows) matches the task builder's windows."""
    path = eegmat_dir() / RECORDING
    result = run_predict(path, model_dir, device="cpu")
    rows = np.flatnonzero([s.endswith(RECORDING) for s in task.sources])
    rows = rows[np.argsort(task.starts[rows])]
    assert len(rows) == len(result.rows)
    from neuript.data.loader import make_task_loader

    sub = dataclasses.replace(
        task, signals=task.signals[rows], labels=task.labels[rows], subjects=task.subjects[rows],
        splits=np.full(len(rows), "test"), sources=task.sources[rows], starts=task.starts[rows])
    loaded = load_classifier(model_dir)
    preds = predict_batches(loaded.model, make_task_loader(sub, "test", batch_size=64,
                                                          shuffle=False, seed=0),
                            torch.device("cpu"))
    order = np.argsort(preds.window_ids)
    np.testing.assert_allclose(result.rows[["p_rest", "p_task"]].to_numpy(),
                               preds.proba[order], atol=1e-4)


def test_json_output_and_embeddings(model_dir, tmp_path):
    path = eegmat_dir() / RECORDING
    result = run_predict(path, model_dir, out=tmp_path / "p.json", fmt="json", device="cpu")
    body = json.loads((tmp_path / "p.json").read_text())
    assert body["summary"]["n_windows"] == len(body["windows"]) == len(result.rows)
    emb = run_embed(path, model_dir, out=tmp_path / "e.npz", device="cpu")
    cfg = load_classifier(model_dir).model.cfg
    n_features = (cfg.depth + 1) * 5 * cfg.d_model  # levels x 5 functional lobes x width
    assert emb.features.shape == (len(result.rows), n_features)
    saved = np.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(saved["features"], emb.features)
    np.testing.assert_array_equal(saved["starts_s"], result.rows["start_s"].to_numpy())
    run_embed(path, model_dir, out=tmp_path / "e.npy", device="cpu")
    assert np.load(tmp_path / "e.npy").shape == emb.features.shape


def test_missing_channels_are_named(model_dir):
    path = eegmat_dir() / RECORDING
    rec = read_recording(path)
    keep = [i for i, n in enumerate(rec.ch_names) if n not in ("EEG T3", "EEG O1")]
    partial = dataclasses.replace(rec, data=rec.data[keep],
                                  ch_names=tuple(rec.ch_names[i] for i in keep))
    with pytest.raises(ContractError) as err:
        run_predict(partial, model_dir, device="cpu")
    message = str(err.value)
    assert "missing electrode(s): O1, T7" in message
    assert str(path) in message


def test_the_contract_holds_the_preprocessing_and_older_flat_folders_still_read(
        model_dir, task, tmp_path):
    """The contract carries the task's whole PreprocessConfig (notch, rejection …). A folder of
    the layout before (seven preprocessing fields flat in the contract, the rest in
    ``extra.preprocess``) reads back to the same contract; without ``extra.preprocess`` the
    flat fields are kept and the rest defaults."""
    from neuript.config import PreprocessConfig
    from neuript.model_folder import read_model_folder

    folder = read_model_folder(model_dir)
    assert folder.contract.preprocess == task.preprocess
    assert (folder.contract.sfreq_hz, folder.contract.window_s) == (task.preprocess.sfreq_hz,
                                                                    task.preprocess.window_s)
    config = json.loads((model_dir / "config.json").read_text())
    pre = config["contract"].pop("preprocess")
    flat = {k: pre[k] for k in ("sfreq_hz", "l_freq_hz", "h_freq_hz", "window_s", "montage",
                                "compression", "alaw_a")}
    for name, extra in (("with", {"preprocess": pre}), ("without", {})):
        old = tmp_path / name
        old.mkdir()
        body = {**config, "contract": {**config["contract"], **flat},
                "extra": {**config["extra"], **extra}}
        (old / "config.json").write_text(json.dumps(body))
        (old / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
        contract = read_model_folder(old).contract
        if extra:
            assert contract == folder.contract
        else:
            assert contract.preprocess == PreprocessConfig(**{**flat, "montage": pre["montage"]})
            assert contract.channels == folder.contract.channels
    assert load_classifier(tmp_path / "with").contract == folder.contract


def test_contract_mismatch_refused(model_dir, task, tmp_path):
    """A task at another rate than the model's contract. (``predict`` prepares a recording with
    the contract's own preprocessing, so the two cannot disagree there.)"""
    from neuript.train.evaluate import run_evaluate

    config = json.loads((model_dir / "config.json").read_text())
    config["contract"]["preprocess"]["sfreq_hz"] = 128.0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(config))
    (bad / "model.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    with pytest.raises(ContractError, match="sfreq_hz: model expects 128.0, data has 64.0"):
        run_evaluate(bad, task, device="cpu")


def test_onnx_engine_matches_torch_and_refuses_stale_exports(model_dir, tmp_path, capsys):
    """`neuript export` then `predict --engine onnx`: same probabilities; stale graph refused."""
    pytest.importorskip("onnxruntime")
    from neuript.cli import main
    from neuript.deploy import SIDECAR_NAME

    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    path = eegmat_dir() / RECORDING
    with pytest.raises(ContractError, match="no ONNX export here; run `neuript export"):
        run_predict(path, folder, engine="onnx")
    main(["export", str(folder)])
    report = json.loads(capsys.readouterr().out)
    assert (report["channels"], report["samples"]) == (20, 320)  # TCP, 5 s at 64 Hz
    assert report["max_abs_logit_diff"] < 1e-3
    torch_rows = run_predict(path, folder, device="cpu").rows
    onnx_rows = run_predict(path, folder, engine="onnx", threads=1, batch_size=7).rows
    np.testing.assert_allclose(onnx_rows[["p_rest", "p_task"]].to_numpy(),
                               torch_rows[["p_rest", "p_task"]].to_numpy(), atol=1e-4)
    assert list(onnx_rows["predicted"]) == list(torch_rows["predicted"])
    # one window (a live stream's call) goes through a batch-1 session with its shapes folded:
    # the same logits as inside a batch, and that session takes nothing but one window
    from neuript.deploy import OnnxClassifier, check_batch

    clf = OnnxClassifier(folder, threads=1)
    feed = check_batch(folder, 20, 320, 5, seed=3)
    pos, groups = feed["positions"][0], feed["group_mask"][0]
    batch = clf.logits(feed["signals"], pos, groups)
    assert clf._single is None
    one = clf.logits(feed["signals"][1:], pos, groups)
    np.testing.assert_allclose(one, batch[1:], atol=1e-5)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        clf._single.run(["logits"], feed)
    # the int8 copy: written beside it, close to PyTorch, refused when missing or stale
    with pytest.raises(ContractError, match="no int8 ONNX export here.*--int8"):
        run_predict(path, folder, engine="onnx-int8")
    main(["export", str(folder), "--int8"])
    report = json.loads(capsys.readouterr().out)
    assert report["onnx_int8"].endswith("model.int8.onnx") and report["int8_max_abs_logit_diff"] > 0
    int8_rows = run_predict(path, folder, engine="onnx-int8", threads=1).rows
    int8_proba = int8_rows[["p_rest", "p_task"]].to_numpy()
    np.testing.assert_allclose(int8_proba, torch_rows[["p_rest", "p_task"]].to_numpy(), atol=0.05)
    assert not np.allclose(int8_proba, onnx_rows[["p_rest", "p_task"]].to_numpy(), atol=1e-6)
    # new weights in the folder: the export no longer describes them
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ContractError, match="exported from other weights"):
        run_predict(path, folder, engine="onnx")
    with pytest.raises(ContractError, match="int8.onnx: exported from other weights"):
        run_predict(path, folder, engine="onnx-int8")
    assert json.loads((folder / SIDECAR_NAME).read_text())["n_groups"] == 5


def test_onnx_engine_runs_a_baseline_whose_graph_drops_unused_inputs(task, tmp_path):
    """EEGNet never reads positions or masks, so its exported graph has only `signals`."""
    pytest.importorskip("onnxruntime")
    from neuript.baselines import build
    from neuript.deploy import export_model_dir

    torch.manual_seed(0)
    model = build("eegnet", n_channels=len(task.ch_names), n_samples=int(task.signals.shape[2]),
                  n_classes=2, sfreq_hz=float(task.preprocess.sfreq_hz))
    groups = pooling_groups(list(task.ch_names), task.positions, "functional")
    extra = {"class_names": list(task.class_names), "group_names": list(groups.names),
             "scheme": "functional",
             "ch_names": list(task.ch_names), "task": task.name, "model_kind": "eegnet",
             "baseline": {"name": "eegnet", "n_channels": len(task.ch_names),
                          "n_samples": int(task.signals.shape[2]), "n_classes": 2,
                          "sfreq_hz": float(task.preprocess.sfreq_hz)}}
    folder = tmp_path / "eegnet"
    save_classifier(model, folder, InputContract.from_preprocess(task.preprocess, task.ch_names),
                    extra)
    assert export_model_dir(folder).max_abs_diff < 1e-4
    path = eegmat_dir() / RECORDING
    onnx_rows = run_predict(path, folder, engine="onnx", threads=1).rows
    torch_rows = run_predict(path, folder, device="cpu").rows
    np.testing.assert_allclose(onnx_rows[["p_rest", "p_task"]].to_numpy(),
                               torch_rows[["p_rest", "p_task"]].to_numpy(), atol=1e-4)


def test_predict_per_event_cuts_one_window_at_each_annotation(model_dir, tmp_path):
    """ERP-style use: one window per annotation, at onset + offset; off-edge events skipped."""
    from neuript.data.recording import Events
    from neuript.errors import RecordingError
    from neuript.predict import prepare_input

    rec = read_recording(eegmat_dir() / "Subject33_2.edf")  # 62 s
    rec = dataclasses.replace(rec, events=Events(
        onset_s=np.array([0.0, 10.0, 20.0, 60.0]), duration_s=np.zeros(4),
        description=np.array(["a", "b", "a", "a"])))
    loaded = load_classifier(model_dir)
    every = prepare_input(rec, loaded, model_dir)
    at = prepare_input(rec, loaded, model_dir, events=[], event_offset_s=0.0)
    assert at.events.tolist() == ["a", "b", "a"] and at.events_skipped == 1  # 60 s + 5 s > 62 s
    np.testing.assert_array_equal(at.signals[0], every.signals[0])  # onset 0 = window 0
    np.testing.assert_array_equal(at.signals[2], every.signals[4])  # 20 s = window 4 (5-s)
    result = run_predict(rec, model_dir, events=["a"], event_offset_s=0.5,
                         out=tmp_path / "ev.csv")
    rows = pd.read_csv(tmp_path / "ev.csv")
    assert rows["event"].tolist() == ["a", "a"] and rows["onset_s"].tolist() == [0.0, 20.0]
    assert rows["start_s"].tolist() == [0.5, 20.5]
    assert result.summary["events"] == {"n": 2, "skipped": 1, "offset_s": 0.5}
    with pytest.raises(RecordingError, match="drop --events"):
        prepare_input(rec, loaded, model_dir, events=["zzz"])
