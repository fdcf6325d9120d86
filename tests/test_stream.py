"""Online prediction: a real EEGMAT recording replayed on LSL loopback by mne-lsl's PlayerLSL.

The streamed predictions must equal :func:`neuript.online.offline_equivalent` on the same file
for the same windows (matched by sample index), and the online windows must stay close to the
whole-recording windows of ``neuript predict`` away from the recording's ends.
"""

from __future__ import annotations

import json
import threading
import uuid

import numpy as np
import pandas as pd
import pytest

from _finetune_data import eegmat_dir, micro_tcp_model
from neuript.data.io import read_recording
from neuript.errors import NeuriptError
from neuript.model_folder import load_classifier
from neuript.online import OnlineModel, RingBuffer, default_margin_s, offline_equivalent

pytest.importorskip("mne_lsl")

RECORDING = "Subject33_2.edf"  # 62 s, 250 Hz, 19 EEG channels + A2-A1 + ECG
MARGIN_S, STEP_S, N_PREDICTIONS = 2.0, 1.0, 5
"""A short margin and step keep the real-time replay near 12 s (the default margin is 17 s)."""


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A micro NeurIPT classifier (random weights) with the MentalArithmetic contract."""
    return micro_tcp_model(tmp_path_factory.mktemp("stream_model") / "model")


def _player(raw_or_path, name: str):
    from mne_lsl.player import PlayerLSL

    return PlayerLSL(raw_or_path, chunk_size=10, n_repeat=1, name=name, source_id=name,
                     annotations=False).start()


def _offset(file_data: np.ndarray, buffer: RingBuffer, n: int = 200) -> int:
    """File sample number of stream sample 0, found where the buffer's last samples occur."""
    from numpy.lib.stride_tricks import sliding_window_view

    tail = buffer.get(buffer.n_seen - n, buffer.n_seen).data
    hits = np.flatnonzero((sliding_window_view(file_data[0], n) == tail[0]).all(axis=1))
    assert hits.size == 1, hits
    np.testing.assert_array_equal(file_data[:, hits[0]: hits[0] + n], tail)  # lossless transport
    return int(hits[0]) - (buffer.n_seen - n)


def test_ring_buffer_keeps_the_newest_samples_by_absolute_number():
    ring = RingBuffer(2, capacity=5)
    for lo in range(0, 12, 3):  # 4 chunks of 3 samples: wraps twice
        values = np.arange(lo, lo + 3, dtype=float)
        ring.extend(np.stack([values, -values]), values * 0.1, arrival_s=float(lo))
    assert ring.n_seen == 12
    part = ring.get(7, 12)
    np.testing.assert_array_equal(part.data, [[7, 8, 9, 10, 11], [-7, -8, -9, -10, -11]])
    np.testing.assert_allclose(part.timestamps, [0.7, 0.8, 0.9, 1.0, 1.1])
    np.testing.assert_array_equal(part.arrival, [6, 6, 9, 9, 9])
    with pytest.raises(IndexError, match="not held"):
        ring.get(6, 12)
    ring.extend(np.zeros((2, 7)), np.zeros(7), 12.0)  # more than the capacity at once
    assert ring.n_seen == 19 and ring.get(14, 19).data.sum() == 0


def test_online_windows_stay_close_to_whole_recording_windows(model_dir):
    """Default margin (half of MNE's 0.1-30 Hz FIR) and mirrored future vs `neuript predict`."""
    import mne

    from neuript.predict import model_continuous

    loaded = load_classifier(model_dir)
    rec = read_recording(eegmat_dir() / "Subject33_1.edf")  # 180 s of rest
    taps = mne.filter.create_filter(None, 64.0, 0.1, 30.0, fir_design="firwin", verbose="error")
    online = OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, model_dir=model_dir)
    assert online.margin_s == default_margin_s(online.pre) == np.ceil(taps.size // 2 / 64.0)
    whole = model_continuous(rec, loaded, model_dir).data  # (20, T) µV at 64 Hz
    per, window = int(5 * rec.sfreq_hz), online.window
    rel = []
    for k in range(whole.shape[1] // window):
        end = (k + 1) * per
        if end < online.need or (k + 1) * window + taps.size // 2 > whole.shape[1]:
            continue  # no full context yet, or the whole-recording filter's own end effect
        ref = whole[:, k * window: (k + 1) * window]
        got = online.window_uv(rec.data[:, end - online.need: end])
        rel.append(np.sqrt(np.mean((got - ref) ** 2) / np.mean(ref ** 2)))
    assert len(rel) >= 25
    assert np.median(rel) < 0.05 and np.max(rel) < 0.15, (np.median(rel), np.max(rel))


def test_window_quality_names_a_dead_electrode_and_nan(model_dir):
    """The check runs on the incoming electrodes: O1 dead inside the window shows, though the
    model sees it only through bipolar pairs; a dropout before the window does not."""
    rec = read_recording(eegmat_dir() / "Subject33_1.edf")
    online = OnlineModel(load_classifier(model_dir), rec.ch_names, rec.sfreq_hz,
                         model_dir=model_dir)
    context = rec.data[:, 10_000: 10_000 + online.need].copy()
    assert online.window_quality(context) == ""
    o1 = rec.ch_names.index(next(n for n in rec.ch_names if n.endswith("O1")))
    gone = context.copy()
    gone[o1] = 0.0
    assert online.window_quality(gone) == f"flat electrode {rec.ch_names[o1]}"
    before = context.copy()
    before[o1, :10] = 0.0  # in the margin, not in the window
    assert online.window_quality(before) == ""
    gap = context.copy()
    gap[3, -5] = np.nan
    assert online.window_quality(gap) == "nan"


@pytest.fixture(scope="module")
def onnx_model_dir(model_dir):
    """The same folder with its ONNX export (``neuript export``)."""
    pytest.importorskip("onnxruntime")
    from neuript.deploy import export_model_dir

    export_model_dir(model_dir)
    return model_dir


def test_onnx_engine_gives_the_torch_probabilities(onnx_model_dir):
    rec = read_recording(eegmat_dir() / RECORDING)
    kw = {"step_s": 5.0, "margin_s": MARGIN_S}
    torch_rows = offline_equivalent(rec, onnx_model_dir, engine="torch", **kw)
    onnx_rows = offline_equivalent(rec, onnx_model_dir, engine="onnx", **kw)
    assert len(onnx_rows) == len(torch_rows) >= 10
    np.testing.assert_allclose(onnx_rows[["p_rest", "p_task"]].to_numpy(),
                               torch_rows[["p_rest", "p_task"]].to_numpy(), atol=1e-4)


def test_compiled_model_gives_the_eager_probabilities_without_recompiling(model_dir):
    """`stream --compile`: compiled for the contract's one-window shape before any stream is
    there; live windows then hit that graph (a recompilation would raise) with the eager
    model's probabilities."""
    import torch._dynamo

    from neuript.online import compile_for_contract
    from neuript.stream import StreamConfig

    loaded = load_classifier(model_dir)
    rec = read_recording(eegmat_dir() / RECORDING)
    net = compile_for_contract(loaded)
    eager = OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, margin_s=MARGIN_S,
                        model_dir=model_dir)
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled = OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, margin_s=MARGIN_S,
                               model_dir=model_dir, net=net)
        for end in (eager.need, eager.need + 7 * 250, rec.data.shape[1]):
            context = rec.data[:, end - eager.need: end]
            np.testing.assert_allclose(compiled.predict(context), eager.predict(context),
                                       atol=1e-5)
    with pytest.raises(NeuriptError, match="torch engine, not 'onnx'"):
        OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, model_dir=model_dir, engine="onnx",
                    net=net)
    with pytest.raises(NeuriptError, match="--compile .* --engine onnx"):
        StreamConfig(stream_name="x", compile=True, engine="onnx")


def test_a_failed_compile_is_one_line_naming_the_option(model_dir, monkeypatch):
    """No C++ compiler (or any Inductor failure): one NeuriptError naming --compile, before
    any stream is looked for, and PyTorch's thread count restored."""
    import torch

    import neuript.online
    from neuript.stream import StreamConfig, run_stream

    def broken(loaded):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\n(pages more)")

    monkeypatch.setattr(neuript.online, "compile_for_contract", broken)
    before = torch.get_num_threads()
    with pytest.raises(NeuriptError, match=r"torch.compile failed \(RuntimeError: "
                       r"InvalidCxxCompiler: No working C\+\+ compiler found\); drop "
                       r"--compile") as err:
        run_stream(model_dir, StreamConfig(stream_name="never-there", compile=True,
                                           threads=1))
    assert "\n" not in str(err.value) and torch.get_num_threads() == before


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_streamed_predictions_equal_the_offline_equivalent(engine, request, tmp_path):
    """Replay on loopback; same windows → same probabilities; CSV, summary and outlet agree."""
    from mne_lsl.lsl import StreamInlet, resolve_streams

    from neuript.stream import StreamConfig, run_stream

    model_dir = request.getfixturevalue("onnx_model_dir" if engine == "onnx" else "model_dir")
    name = f"neuript-test-{uuid.uuid4().hex[:12]}"
    outlet = f"{name}-proba"
    cfg = StreamConfig(stream_name=name, step_s=STEP_S, margin_s=MARGIN_S,
                       max_predictions=N_PREDICTIONS, duration_s=40.0, timeout_s=10.0,
                       csv=str(tmp_path / "online.csv"), outlet=outlet, threads=1,
                       engine=engine)
    path = eegmat_dir() / RECORDING
    player = _player(path, name)
    results: dict = {}
    worker = threading.Thread(target=lambda: results.update(r=run_stream(model_dir, cfg)))
    try:
        worker.start()
        found = resolve_streams(timeout=10.0, name=outlet)
        assert len(found) == 1 and found[0].stype == "Probabilities"
        inlet = StreamInlet(found[0])
        inlet.open_stream(timeout=5.0)
        pushed, stamps = [], []
        while worker.is_alive() or inlet.samples_available:
            data, ts = inlet.pull_chunk(timeout=0.2)
            pushed.extend(data.tolist())
            stamps.extend(ts.tolist())
        worker.join()
        inlet.close_stream()
    finally:
        worker.join(timeout=30)
        player.stop()
    result = results["r"]
    rows = result.rows
    assert len(rows) == N_PREDICTIONS and result.summary["stopped_by"] == "max_predictions"
    rec = read_recording(path)
    assert result.summary["channels"] == list(rec.ch_names)  # ECG and A2-A1 set aside
    offset = _offset(rec.data, result.buffer)
    offline = offline_equivalent(rec, model_dir, step_s=STEP_S, margin_s=MARGIN_S,
                                 end_samples=offset + rows["end_sample"].to_numpy(),
                                 engine=engine)
    np.testing.assert_allclose(rows[["p_rest", "p_task"]].to_numpy(dtype=float),
                               offline[["p_rest", "p_task"]].to_numpy(), atol=1e-6)
    assert list(rows["predicted"]) == list(offline["predicted"])
    np.testing.assert_array_equal(np.diff(rows["end_sample"].to_numpy()), int(STEP_S * 250))
    # the CSV holds the same rows; the summary sits beside it with the latency statistics
    written = pd.read_csv(tmp_path / "online.csv")
    np.testing.assert_allclose(written["p_task"], rows["p_task"].to_numpy(float), atol=1e-6)
    summary = json.loads((tmp_path / "online.summary.json").read_text())
    assert summary == json.loads(json.dumps(result.summary))
    for key in ("median", "p99"):
        assert 0 < summary["latency_ms"][key] < 2000, summary["latency_ms"]
    assert summary["dropped_samples"] == 0 and summary["n_predictions"] == N_PREDICTIONS
    assert summary["suspect_windows"] == 0 and written["quality"].isna().all()  # clean EEG
    print(result.summary["line"])  # the measured latency, in the pytest -s / -rA output
    # what the outlet published: the probabilities, stamped with each window's last sample
    assert len(pushed) >= N_PREDICTIONS - 1  # the first may precede the inlet's subscription
    by_stamp = {round(t, 6): p for t, p in zip(stamps, pushed)}
    matched = [k for k, t in enumerate(rows["lsl_time"]) if round(t, 6) in by_stamp]
    assert len(matched) == len(pushed)
    for k in matched:
        np.testing.assert_allclose(by_stamp[round(rows["lsl_time"][k], 6)],
                                   rows.loc[k, ["p_rest", "p_task"]].to_numpy(float), atol=1e-6)


def test_missing_electrodes_are_named_in_one_line(model_dir, capsys):
    import mne

    from neuript.cli import main

    name = f"neuript-test-{uuid.uuid4().hex[:12]}"
    raw = mne.io.read_raw_edf(eegmat_dir() / RECORDING, preload=True, verbose="error")
    player = _player(raw.drop_channels(["EEG T3", "EEG O1"]), name)
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["stream", "--model", str(model_dir), "--stream-name", name,
                  "--max-predictions", "1", "--timeout-s", "10"])
    finally:
        player.stop()
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("neuript: error:")]
    assert len(lines) == 1
    assert f"lsl:{name}" in lines[0] and "missing electrode(s): O1, T7" in lines[0]


def test_stream_not_found_names_the_stream_and_the_option(model_dir, capsys):
    from neuript.cli import main

    name = f"neuript-absent-{uuid.uuid4().hex[:12]}"
    with pytest.raises(SystemExit) as exit_info:
        main(["stream", "--model", str(model_dir), "--stream-name", name, "--timeout-s", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("neuript: error: no LSL stream with name")
    assert name in err and "--stream-name" in err


def test_cli_options_reach_the_stream_config(model_dir, monkeypatch, tmp_path, capsys):
    import neuript.stream
    from neuript.cli import main

    seen = {}

    def fake_run(model, cfg):
        seen["cfg"] = cfg
        return neuript.stream.StreamResult(pd.DataFrame(), {"line": "done"}, None, None,
                                           RingBuffer(1, 1))

    monkeypatch.setattr(neuript.stream, "run_stream", fake_run)
    main(["stream", "--model", str(model_dir), "--source-id", "obci-1", "--step-s", "0.5",
          "--margin-s", "4", "--duration-s", "30", "--max-predictions", "7", "--unit", "uV",
          "--channels", "Fp1, Fp2,C3", "--csv", str(tmp_path / "p.csv"), "--outlet", "bci",
          "--threads", "1", "--compile"])
    cfg = seen["cfg"]
    assert cfg.compile and cfg.engine == "torch"
    assert (cfg.source_id, cfg.stream_name, cfg.step_s, cfg.margin_s) == ("obci-1", None, 0.5, 4)
    assert (cfg.duration_s, cfg.max_predictions, cfg.unit, cfg.threads) == (30, 7, "uV", 1)
    assert cfg.ch_names == ("Fp1", "Fp2", "C3") and cfg.outlet == "bci"
    assert capsys.readouterr().out.strip().endswith("done")
    assert (tmp_path / "p.config.json").is_file()
