"""Online prediction from a live Lab Streaming Layer (LSL) stream (``neuript stream``).

The session: resolve one LSL stream by name or source id, connect with
``mne_lsl.stream.StreamLSL`` in manual-acquisition mode (one thread, so every sample is counted),
keep the EEG channels' raw samples (volts) in a :class:`~neuript.online.RingBuffer` numbered
from the first sample received, and every ``step_s`` classify the window that ends on the grid
``need + k·step`` with :class:`~neuript.online.OnlineModel` (see :mod:`neuript.online` for how a
window is preprocessed without future samples). When the client falls behind, the newest due
window is classified and the older ones are counted as skipped.

Each prediction goes to the returned rows, optionally a CSV file (flushed per row) and an LSL
outlet (type ``Probabilities``: one float32 channel ``p_<class>`` per class, irregular rate,
stamped with the LSL time of the window's last sample). Latency is measured from the arrival
of a window's last sample (this machine's ``local_clock`` when it was pulled from the inlet) to
the end of its prediction; ``age`` from the sample's LSL timestamp (the source's clock mapped to
ours by LSL's ``clocksync``), so it also holds the device's and the network's delay. Dropped
samples are counted from gaps in the timestamps.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import pandas as pd
import torch

from neuript.config import Engine, check_literals
from neuript.data.recording import UNIT_SCALE_TO_VOLTS
from neuript.errors import NeuriptError, StreamError
from neuript.model_folder import load_classifier
from neuript.online import OnlineModel, RingBuffer, default_margin_s
from neuript.predict import preprocess_of

log = logging.getLogger(__name__)

Unit = Literal["auto", "V", "mV", "uV"]
UNITS: tuple[str, ...] = get_args(Unit)
_LSL_UNITS = {"v": "V", "volt": "V", "volts": "V", "0": "V", "mv": "mV", "millivolt": "mV",
              "millivolts": "mV", "-3": "mV", "uv": "uV", "µv": "uV", "microvolt": "uV",
              "microvolts": "uV", "-6": "uV"}
"""LSL channel-unit strings (the XDF meta-data names, and MNE's unit exponents) → unit."""
OUTLET_TYPE = "Probabilities"
"""LSL type of the outlet: one float32 channel per class, irregular rate, one sample per window."""


@dataclass(frozen=True)
class StreamConfig:
    """How ``neuript stream`` finds a stream, schedules windows and reports predictions."""

    stream_name: str | None = None
    """LSL name of the EEG stream (``--stream-name``)."""
    source_id: str | None = None
    """LSL source id of the EEG stream (``--source-id``); name or source id is required."""
    step_s: float | None = None
    """Seconds between predictions; None: the model's window length."""
    margin_s: float | None = None
    """Past context before each window for the filters to settle (s); None: half the band-pass
    FIR length (:func:`~neuript.online.default_margin_s`)."""
    duration_s: float | None = None
    """Stop after this many seconds connected; None: no limit."""
    max_predictions: int | None = None
    """Stop after this many predictions; None: no limit."""
    timeout_s: float = 10.0
    """How long to look for the stream on the network (s)."""
    stall_s: float = 10.0
    """Stop when no sample has arrived for this long (s)."""
    unit: Unit = "auto"
    """Unit of the stream's values; ``auto`` reads the LSL channel units (µV when absent)."""
    ch_names: tuple[str, ...] | None = None
    """Channel names replacing the stream's labels (for devices that publish none)."""
    csv: str | None = None
    """CSV file of one row per prediction; its summary goes to ``<stem>.summary.json``."""
    outlet: str | None = None
    """Name of an LSL outlet publishing the probabilities (type ``Probabilities``)."""
    threads: int | None = None
    """PyTorch (or ONNX Runtime) threads during the session (PyTorch's restored after); None
    leaves the library's setting."""
    engine: Engine = "torch"
    """Classify with the PyTorch model, the folder's ONNX export (``neuript export``) or its
    int8 copy (``neuript export --int8``)."""
    compile: bool = False
    """Run ``torch.compile`` of the model, specialised to one window (``engine="torch"``
    only). It compiles before connecting to the stream (a minute or more), so the stream's
    buffer does not overflow meanwhile; :func:`neuript.online.compile_for_contract`."""
    poll_s: float = 0.002
    """Sleep between polls of the inlet when nothing is due (s)."""
    calibration: tuple[str, ...] = ()
    """Recordings of the person on the stream whose windows give the channel gains of a model
    fine-tuned with ``subject_norm`` (:func:`neuript.predict.subject_gains`); required for
    such a model, refused for others."""

    def __post_init__(self) -> None:
        if self.stream_name is None and self.source_id is None:
            raise StreamError("give the LSL stream's name (--stream-name) or source id "
                              "(--source-id)")
        for name in ("step_s", "margin_s", "duration_s", "timeout_s", "stall_s", "poll_s"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 if name == "margin_s" else value > 0):
                raise NeuriptError(f"StreamConfig.{name} must be > 0 (margin_s >= 0), "
                                   f"got {value!r}")
        if self.max_predictions is not None and self.max_predictions < 1:
            raise NeuriptError(f"StreamConfig.max_predictions must be >= 1, "
                               f"got {self.max_predictions!r}")
        if self.threads is not None and self.threads < 1:
            raise NeuriptError(f"StreamConfig.threads must be >= 1, got {self.threads!r}")
        if self.compile and self.engine != "torch":
            raise NeuriptError(f"--compile compiles the PyTorch model; it does not apply to "
                               f"--engine {self.engine} (drop one of them)")
        check_literals(self)


class StreamResult(NamedTuple):
    """What :func:`run_stream` returns.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per prediction: ``prediction``, ``end_sample`` (stream samples since the first
        one received, exclusive end of the window), ``end_s`` (= end_sample / sfreq),
        ``lsl_time`` (LSL timestamp of the window's last sample), ``p_<class>`` …,
        ``predicted``, ``latency_ms``, ``age_ms``.
    summary : dict
        Stream, geometry, counts, ``latency_ms`` and ``age_ms`` (median, p99, max), dropped
        samples, skipped windows, late predictions, ``stopped_by`` and the one-line ``line``.
    csv_path, summary_path : Path | None
        Files written (None without ``csv``).
    buffer : neuript.online.RingBuffer
        The raw samples (volts) held at the end: the last ``need`` samples or more.
    """

    rows: pd.DataFrame
    summary: dict[str, Any]
    csv_path: Path | None
    summary_path: Path | None
    buffer: RingBuffer


# --------------------------------------------------------------------------------------------
# the live session
# --------------------------------------------------------------------------------------------
def _connect(cfg: StreamConfig, bufsize_s: float) -> Any:
    """Resolve the one stream matching ``cfg`` and connect (manual acquisition)."""
    from mne_lsl.lsl import resolve_streams
    from mne_lsl.stream import StreamLSL

    which = (f"name {cfg.stream_name!r} (--stream-name)" if cfg.stream_name is not None
             else f"source id {cfg.source_id!r} (--source-id)")
    found = resolve_streams(cfg.timeout_s, name=cfg.stream_name, source_id=cfg.source_id)
    if not found:
        seen = sorted({s.name for s in resolve_streams(min(cfg.timeout_s, 1.0))})
        raise StreamError(f"no LSL stream with {which} found within {cfg.timeout_s:g} s "
                          f"(streams seen: {seen or 'none'})")
    if len(found) > 1:
        raise StreamError(f"{len(found)} LSL streams match {which}: "
                          f"{[(s.name, s.source_id) for s in found]}; give both --stream-name "
                          "and --source-id")
    if found[0].sfreq <= 0:
        raise StreamError(f"LSL stream {found[0].name!r} has an irregular rate; an EEG stream "
                          "with a nominal sampling rate is needed")
    stream = StreamLSL(bufsize_s, name=found[0].name, source_id=found[0].source_id)
    return stream.connect(acquisition_delay=None, processing_flags=["clocksync"],
                          timeout=cfg.timeout_s)


def _eeg_channels(stream: Any, cfg: StreamConfig) -> tuple[np.ndarray, tuple[str, ...], float]:
    """EEG rows of the stream, their names and the scale of the stream's unit to volts."""
    from neuript.data.montage import channel_kind

    names = list(stream.ch_names)
    if cfg.ch_names is not None:
        if len(cfg.ch_names) != len(names):
            raise StreamError(f"{len(cfg.ch_names)} channel names given for the "
                              f"{len(names)} channels of LSL stream {stream.name!r}")
        names = list(cfg.ch_names)
    types = stream.get_channel_types()
    kinds = [channel_kind(n) if t == "eeg" else t for n, t in zip(names, types)]
    picks = np.array([i for i, k in enumerate(kinds) if k == "eeg"], dtype=np.int64)
    if picks.size == 0:
        raise StreamError(f"LSL stream {stream.name!r} has no EEG channel (read {names})")
    unit = cfg.unit
    if unit == "auto":
        given = {_LSL_UNITS.get(str(u).strip().lower()) for u in
                 [(stream.sinfo.get_channel_units() or [None] * len(names))[i] for i in picks]}
        if None in given:
            log.warning("LSL stream %r: no or unknown channel units; assuming µV (set --unit)",
                        stream.name)
        known = given - {None}
        if len(known) > 1:
            raise StreamError(f"LSL stream {stream.name!r} mixes channel units {sorted(known)}; "
                              "set --unit")
        unit = known.pop() if known else "uV"
    return picks, tuple(names[i] for i in picks), UNIT_SCALE_TO_VOLTS[unit]


class _Sinks:
    """Where predictions go besides the returned rows: the CSV file and the LSL outlet."""

    def __init__(self, cfg: StreamConfig, model: OnlineModel, stream_name: str) -> None:
        self.columns = ["prediction", "end_sample", "end_s", "lsl_time",
                        *[f"p_{c}" for c in model.class_names], "predicted", "latency_ms",
                        "age_ms", "quality"]
        self.csv_path = None if cfg.csv is None else Path(cfg.csv)
        self._file = self._writer = self._outlet = None
        if self.csv_path is not None:
            self.csv_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.csv_path, "w", newline="")  # closed in close()
            self._writer = csv.writer(self._file)
            self._writer.writerow(self.columns)
        if cfg.outlet is not None:
            from mne_lsl.lsl import StreamInfo, StreamOutlet

            info = StreamInfo(cfg.outlet, OUTLET_TYPE, len(model.class_names), 0.0, "float32",
                              f"neuript-{cfg.outlet}")
            info.set_channel_names([f"p_{c}" for c in model.class_names])
            self._outlet = StreamOutlet(info)
            log.info("publishing probabilities on LSL outlet %r (type %s) for stream %r",
                     cfg.outlet, OUTLET_TYPE, stream_name)

    def write(self, row: dict[str, Any], proba: np.ndarray) -> None:
        if self._writer is not None:
            self._writer.writerow([f"{v:.6f}" if isinstance(v, float) else v
                                   for v in (row[c] for c in self.columns)])
            self._file.flush()  # a crash keeps every prediction made so far
        if self._outlet is not None:
            self._outlet.push_sample(proba.astype(np.float32), timestamp=row["lsl_time"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._outlet is not None:
            self._outlet._del()  # destroy now (as mne-lsl's player does): consumers see it end


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p99": None, "max": None}
    arr = np.asarray(values)
    return {"median": float(np.median(arr)), "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max())}


def run_stream(model_dir: str | os.PathLike, cfg: StreamConfig) -> StreamResult:
    """Classify a live LSL EEG stream window by window (see the module docs for the design).

    Parameters
    ----------
    model_dir : path-like
        A fine-tuned model directory (``RUN/seed_<s>/model``).
    cfg : StreamConfig

    Returns
    -------
    result : StreamResult

    Raises
    ------
    StreamError
        No stream (or several) matches within ``cfg.timeout_s``; no EEG channel.
    ContractError
        The stream lacks electrodes the model needs.
    """
    try:
        from mne_lsl.lsl import local_clock
    except ImportError as err:
        raise NeuriptError("streaming needs mne-lsl: pip install 'neuript[stream]'") from err

    loaded = load_classifier(model_dir)
    if loaded.contract.subject_norm != "none" and not cfg.calibration:  # before waiting on LSL
        raise NeuriptError(f"{model_dir}: the model was fine-tuned with subject_norm="
                           f"{loaded.contract.subject_norm!r}; pass recordings of the person on "
                           "the stream with --calibration")
    threads = torch.get_num_threads()
    window_s = float(loaded.contract.window_s)
    margin_s = default_margin_s(preprocess_of(loaded)) if cfg.margin_s is None else cfg.margin_s
    step_s = cfg.step_s or window_s
    net = None
    if cfg.compile:  # before connecting: samples would pile up in the inlet meanwhile
        from neuript.online import compile_for_contract

        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        t0 = time.monotonic()
        log.info("compiling the model for one window (torch.compile; a minute or more)")
        try:
            net = compile_for_contract(loaded)
        except Exception as err:  # Inductor's errors (no C++ compiler …) run to pages
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise NeuriptError(f"{model_dir}: torch.compile failed ({type(err).__name__}: "
                               f"{first}); drop --compile, or use --engine onnx after "
                               "`neuript export`") from err
        finally:
            torch.set_num_threads(threads)
        log.info("compiled in %.0f s", time.monotonic() - t0)
    stream = _connect(cfg, bufsize_s=max(window_s + margin_s + step_s, 10.0))
    sinks = None
    try:
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        picks, names, scale = _eeg_channels(stream, cfg)
        sfreq = float(stream.info["sfreq"])
        gains = None
        if cfg.calibration:
            from neuript.predict import subject_gains

            gains = subject_gains(cfg.calibration, loaded, model_dir)
        model = OnlineModel(loaded, names, sfreq, margin_s=margin_s,
                            source=f"lsl:{stream.name}", model_dir=model_dir,
                            engine=cfg.engine, threads=cfg.threads, gains=gains, net=net)
        step = int(round(step_s * sfreq))
        ring = RingBuffer(len(names), model.need + step + int(sfreq))
        sinks = _Sinks(cfg, model, stream.name)
        log.info("connected to LSL stream %r: %d EEG channels at %g Hz; a prediction every "
                 "%g s after %g s of context", stream.name, len(names), sfreq, step_s,
                 window_s + margin_s)
        state = _serve(stream, model, ring, sinks, cfg, step, picks, scale, local_clock)
    finally:
        if sinks is not None:
            sinks.close()
        stream.disconnect()
        torch.set_num_threads(threads)
    rows = pd.DataFrame(state["rows"], columns=sinks.columns)
    summary = _summary(state, rows, model, cfg, stream_name=str(state["name"]), sfreq=sfreq,
                       step_s=step_s, model_dir=model_dir)
    summary_path = None
    if sinks.csv_path is not None:
        summary_path = sinks.csv_path.with_suffix(".summary.json")
        summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log.info("%s", summary["line"])
    return StreamResult(rows, summary, sinks.csv_path, summary_path, ring)


def _serve(stream: Any, model: OnlineModel, ring: RingBuffer, sinks: _Sinks, cfg: StreamConfig,
           step: int, picks: np.ndarray, scale: float, clock: Any) -> dict[str, Any]:
    """The acquisition and prediction loop; returns the session's rows and counters."""
    state: dict[str, Any] = {"rows": [], "latency": [], "age": [], "dropped": 0, "skipped": 0,
                             "late": 0, "suspect": 0, "stopped_by": "interrupted",
                             "name": stream.name, "last_ts": None}
    next_end = model.need
    started = last_arrival = clock()
    try:
        while True:
            n_new, now = _pull(stream, ring, picks, scale, state, clock)
            last_arrival = now if n_new else last_arrival
            if ring.n_seen >= next_end:  # the newest due end; older due ends are skipped
                k = (ring.n_seen - next_end) // step
                state["skipped"] += k
                end, next_end = next_end + k * step, next_end + (k + 1) * step
                _predict_one(model, ring, end, sinks, state, clock, step / model.sfreq_hz)
            elif not n_new:
                time.sleep(cfg.poll_s)
            if cfg.max_predictions is not None and len(state["rows"]) >= cfg.max_predictions:
                state["stopped_by"] = "max_predictions"
                break
            if cfg.duration_s is not None and now - started >= cfg.duration_s:
                state["stopped_by"] = "duration"
                break
            if now - last_arrival >= cfg.stall_s:
                log.warning("LSL stream %r: no sample for %g s; stopping", stream.name,
                            cfg.stall_s)
                state["stopped_by"] = "stalled"
                break
    except KeyboardInterrupt:
        log.info("interrupted: writing the summary")
    state["connected_s"], state["n_samples"] = clock() - started, ring.n_seen
    return state


def _pull(stream: Any, ring: RingBuffer, picks: np.ndarray, scale: float, state: dict[str, Any],
          clock: Any) -> tuple[int, float]:
    """Move the inlet's new samples (EEG rows, in volts) into ``ring``; count timestamp gaps.

    Returns the number of new samples and the local clock when they were pulled.
    """
    stream.acquire()
    n_new, now = stream.n_new_samples, clock()
    if not n_new:
        return 0, now
    data, ts = stream.get_data()  # the whole inlet buffer (C_all, N), newest last
    n_new = min(n_new, ts.size)
    block = np.asarray(data[picks, -n_new:], dtype=np.float64) * scale  # (C, n) volts
    ts = np.asarray(ts[-n_new:], dtype=np.float64)
    last_ts = state["last_ts"]
    gaps = np.diff(ts if last_ts is None else np.concatenate([[last_ts], ts]))
    state["dropped"] += int(np.sum(np.maximum(np.rint(gaps * float(stream.info["sfreq"])) - 1, 0)))
    state["last_ts"] = float(ts[-1])
    ring.extend(block, ts, now)
    return n_new, now


def _predict_one(model: OnlineModel, ring: RingBuffer, end: int, sinks: _Sinks,
                 state: dict[str, Any], clock: Any, step_s: float) -> None:
    """Classify the window ending at sample ``end`` and record it everywhere."""
    part = ring.get(end - model.need, end)
    proba = model.predict(part.data)
    done = clock()
    latency_ms = (done - float(part.arrival[-1])) * 1e3
    age_ms = (done - float(part.timestamps[-1])) * 1e3
    state["latency"].append(latency_ms)
    state["age"].append(age_ms)
    state["late"] += int(latency_ms > step_s * 1e3)
    quality = model.window_quality(part.data)  # after the latency clock: not on its path
    state["suspect"] += int(bool(quality))
    row = {"prediction": len(state["rows"]), "end_sample": end, "end_s": end / model.sfreq_hz,
           "lsl_time": float(part.timestamps[-1]),
           **{f"p_{c}": float(proba[k]) for k, c in enumerate(model.class_names)},
           "predicted": model.class_names[int(proba.argmax())], "latency_ms": latency_ms,
           "age_ms": age_ms, "quality": quality}
    state["rows"].append([row[c] for c in sinks.columns])
    sinks.write(row, proba)
    log.debug("window ending at sample %d: %s (%.1f ms)", end, row["predicted"], latency_ms)


def _summary(state: dict[str, Any], rows: pd.DataFrame, model: OnlineModel, cfg: StreamConfig,
             *, stream_name: str, sfreq: float, step_s: float, model_dir: Any) -> dict[str, Any]:
    latency, age = _stats(state["latency"]), _stats(state["age"])
    counts = {c: int((rows["predicted"] == c).sum()) for c in model.class_names}
    summary = {
        "stream": stream_name, "sfreq_hz": sfreq, "channels": list(model.ch_names),
        "model_dir": str(model_dir), "window_s": model.window_s, "margin_s": model.margin_s,
        "step_s": step_s, "n_predictions": len(rows), "n_samples": int(state["n_samples"]),
        "connected_s": round(float(state["connected_s"]), 3), "latency_ms": latency,
        "age_ms": age, "dropped_samples": int(state["dropped"]),
        "skipped_windows": int(state["skipped"]), "late_predictions": int(state["late"]),
        "suspect_windows": int(state["suspect"]),
        "class_counts": counts, "stopped_by": state["stopped_by"], "outlet": cfg.outlet,
    }

    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f} ms"

    summary["line"] = (
        f"stream {stream_name!r}: {len(rows)} predictions in {summary['connected_s']:.1f} s "
        f"({summary['n_samples']} samples); latency median {ms(latency['median'])}, p99 "
        f"{ms(latency['p99'])}; {summary['dropped_samples']} dropped samples, "
        f"{summary['skipped_windows']} skipped windows, {summary['late_predictions']} late, "
        f"{summary['suspect_windows']} suspect (the quality column); "
        f"stopped by {summary['stopped_by']}"
    )
    return summary
