"""Live-stream latency of ``neuript stream``: a real recording replayed on LSL loopback.

One EEGMAT recording (19 EEG channels at 250 Hz) is replayed by mne-lsl's ``PlayerLSL`` in real
time; ``run_stream`` classifies the newest window every ``STEP_S`` seconds with a `small`-preset
model folder (random weights: the latency does not depend on them) for ``N_PREDICTIONS``
predictions, once per engine (PyTorch, ONNX Runtime, and PyTorch with ``--compile``), one after
the other in this process, on one thread. Latency is measured by ``run_stream`` itself: from
the arrival of the window's last sample (the pull that delivered it) to the prediction being
emitted. The ONNX / PyTorch ratio and the compiled / eager one are taken within this run.
Bounded by predictions, not time; the load average is recorded. The replay is the file
``REPLAY_COPIES`` times end to end (one continuous stream, no player loop), so a compile that
takes longer than the recording still finds the stream; a first version looped the player
instead, and the compiled session, which spanned a loop boundary, counted 5,063 dropped samples
and 81 skipped windows that the two eager sessions (inside the first pass) did not.

Run: ``python -m benchmarks.run --only stream``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import BenchOptions, fmt, md_table, provenance, stamp, write_part

log = logging.getLogger(__name__)

RECORDING = "eegmat/Subject33_2.edf"
"""62 s of 19-channel EEG at 250 Hz, under the data root."""
STEP_S, MARGIN_S = 0.5, 17.0
"""A prediction every half second after the default 17-s filter margin."""
N_PREDICTIONS = 60
RUNS: tuple[tuple[str, bool], ...] = (("torch", False), ("onnx", False), ("torch", True))
"""(engine, compile) of each session, in order."""
REPLAY_COPIES = 5
"""Copies of the 62-s file joined into the replayed stream (310 s: compile + a session)."""
COMPILE_WAIT_S = 900.0
"""Extra time a ``--compile`` session may take to compile before it connects (s)."""


def small_model_dir(out: Path) -> Path:
    """A `small`-preset classifier with the MentalArithmetic contract (random weights)."""
    import numpy as np
    import torch

    from neuript.config import InputContract
    from neuript.data.montage import TCP_PAIRS, channel_position, pooling_groups
    from neuript.data.tasks.mental_arithmetic import PREPROCESS
    from neuript.model.neuript import NeurIPTClassifier
    from neuript.model.presets import preset
    from neuript.model_folder import ClassifierInfo, save_classifier

    torch.manual_seed(0)
    names = [f"{a}-{b}" for a, b in TCP_PAIRS]
    groups = pooling_groups(names, np.stack([channel_position(n) for n in names]), "functional")
    model = NeurIPTClassifier(preset("small"), 2, groups.names)
    info = ClassifierInfo(class_names=("rest", "task"), group_names=tuple(groups.names),
                          ch_names=tuple(names), task="mental_arithmetic")
    return save_classifier(model, out, InputContract.from_preprocess(PREPROCESS, tuple(names)),
                           info)


def label(engine: str, compile: bool) -> str:
    """The row name of a session: the engine, with `` --compile`` when compiled."""
    return f"{engine} --compile" if compile else engine


def stream_once(model_dir: Path, recording: Path, engine: str,
                compile: bool = False) -> dict[str, Any]:
    """Replay ``recording`` and classify it live with ``engine``; the run's summary."""
    from mne_lsl.player import PlayerLSL

    from neuript.stream import StreamConfig, run_stream

    name = f"neuript-bench-{uuid.uuid4().hex[:10]}"
    cfg = StreamConfig(stream_name=name, step_s=STEP_S, margin_s=MARGIN_S,
                       max_predictions=N_PREDICTIONS, timeout_s=10.0, threads=1, engine=engine,
                       compile=compile)
    import mne

    raw = mne.io.read_raw(recording, preload=True, verbose="error")
    raw = mne.concatenate_raws([raw.copy() for _ in range(REPLAY_COPIES)], verbose="error")
    player = PlayerLSL(raw, chunk_size=10, n_repeat=1, name=name, source_id=name,
                       annotations=False).start()
    out: dict[str, Any] = {}
    try:
        worker = threading.Thread(target=lambda: out.update(r=run_stream(model_dir, cfg)))
        worker.start()
        worker.join(timeout=MARGIN_S + STEP_S * N_PREDICTIONS + 60
                    + (COMPILE_WAIT_S if compile else 0.0))
    finally:
        player.stop()
    if "r" not in out:
        raise RuntimeError(f"stream {label(engine, compile)} did not finish")
    return out["r"].summary


def run(opts: BenchOptions) -> dict[str, Any]:
    """Every session of :data:`RUNS`, one after the other; writes stream.json / stream.md."""
    from neuript.deploy import export_model_dir
    from neuript.paths import data_root

    t0 = time.perf_counter()
    model_dir = small_model_dir(opts.work_dir / "stream" / "model")
    export_model_dir(model_dir)
    recording = data_root() / RECORDING
    rows = []
    for engine, compile in RUNS:
        t1 = time.perf_counter()
        summary = stream_once(model_dir, recording, engine, compile)
        rows.append({"engine": label(engine, compile), "predictions": summary["n_predictions"],
                     "session_s": time.perf_counter() - t1,
                     "latency_ms": summary["latency_ms"], "age_ms": summary["age_ms"],
                     "dropped": summary["dropped_samples"],
                     "skipped": summary["skipped_windows"],
                     "late": summary["late_predictions"], "stopped_by": summary["stopped_by"]})
        log.info("stream %s: %s", label(engine, compile), summary.get("latency_ms"))
    body = {"rows": rows, "onnx_over_torch_median": median_ratio(rows, "onnx"),
            "compiled_over_torch_median": median_ratio(rows, "torch --compile"),
            "recording": RECORDING,
            "step_s": STEP_S, "margin_s": MARGIN_S, "preset": "small",
            "meta": stamp(opts.command, time.perf_counter() - t0)}
    write_part(opts.out_dir, "stream", body, markdown(body))
    return body


def median_ratio(rows: list[dict[str, Any]], name: str) -> float | None:
    """Median latency of row ``name`` over the eager ``torch`` row's; None if either lacks one."""
    by = {r["engine"]: r["latency_ms"] or {} for r in rows}
    num, den = by.get(name, {}).get("median"), by.get("torch", {}).get("median")
    return num / den if num and den else None


def markdown(r: dict[str, Any]) -> str:
    """Render stream.json."""
    rows = [[f"`{x['engine']}`", x["predictions"], fmt((x["latency_ms"] or {}).get("median")),
             fmt((x["latency_ms"] or {}).get("p99")), x["dropped"], x["skipped"], x["late"],
             x["stopped_by"], fmt(x.get("session_s"), 0)] for x in r["rows"]]
    ratio, compiled = r.get("onnx_over_torch_median"), r.get("compiled_over_torch_median")
    return "\n".join([
        "# Live-stream latency (benchmarks/bench_stream.py)", "", provenance(r.get("meta")), "",
        f"`neuript stream` on `{r['recording']}` replayed in real time by mne-lsl's PlayerLSL on "
        f"loopback: the `{r['preset']}` preset, a prediction every {r['step_s']} s after "
        f"{r['margin_s']} s of filter margin, 1 thread. Latency = from the arrival of a "
        "window's last sample to its prediction.", "",
        md_table(["engine", "predictions", "latency median (ms)", "latency p99 (ms)",
                  "dropped samples", "skipped windows", "late (> one step)", "stopped by",
                  "session (s), compile included"], rows), "",
        f"ONNX Runtime / PyTorch median latency in this run: **{fmt(ratio)}**." if ratio
        else "",
        f"Compiled (`--compile`) / eager PyTorch median latency in this run: "
        f"**{fmt(compiled)}**." if compiled else "", ""])
