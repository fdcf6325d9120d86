"""Run a fine-tuned model on a new recording: class probabilities or embeddings per window.

The recording goes through the model's input contract: its channels are mapped to the channels
the model was trained on (the montage in the checkpoint; a recording lacking any needed electrode
is refused with :class:`~neuript.errors.ContractError` naming them and the file), preprocessed
exactly as the training data were (band-pass, notch, resampling, µV), cut into non-overlapping
windows of the contract's length (a trailing partial window is dropped, nothing is rejected, so
``floor(duration / window)`` windows come out) and compressed with the contract's A-law.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

import numpy as np
import pandas as pd
import torch

from neuript.batch import Batch
from neuript.config import Engine, InputContract, PreprocessConfig
from neuript.data.recording import Recording
from neuript.data.windows import (
    FLAT_REPORT_UV,
    WindowProblems,
    cut_windows,
    event_starts,
    flat_electrodes_by_window,
    sliding_starts,
    window_flags,
    window_problems,
)
from neuript.errors import ChannelError, ContractError, NeuriptError, RecordingError, check_option
from neuript.files import atomic_write
from neuript.model_folder import LoadedClassifier, load_classifier
from neuript.train.evaluate import predict_batches
from neuript.train.evaluate import resolve_device as _resolve_device

if TYPE_CHECKING:
    from neuript.data.preprocess import Continuous

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = get_args(Engine)
Format = Literal["csv", "json"]
"""``run_predict``'s output formats."""


class PreparedInput(NamedTuple):
    """Model-ready windows of one recording.

    Attributes
    ----------
    signals : ndarray, shape (N, C, T), float32
        Windows after the contract's compression (the model input).
    starts_s : ndarray, shape (N,), float64
        Start of each window in seconds from the first sample of the recording.
    ch_names : tuple of str, length C
        The model's channels, in its order.
    positions : ndarray, shape (C, 3), float32
        Channel positions (metres, head frame).
    group_mask : ndarray, shape (G, C), bool
        Pooling groups of the model.
    window_s : float
        Window length (s).
    source : str
        The recording's path.
    events : ndarray, shape (N,), str | None
        Per-event windows: the description of each window's event; None for consecutive ones.
    events_skipped : int
        Events whose window would leave the recording (not in ``signals``).
    quality : WindowProblems | None
        What is wrong with each window before compression (:func:`~neuript.data.windows.
        window_problems`: NaN, flat channels or electrodes, clipping); None when not computed.
    """

    signals: np.ndarray
    starts_s: np.ndarray
    ch_names: tuple[str, ...]
    positions: np.ndarray
    group_mask: np.ndarray
    window_s: float
    source: str
    events: np.ndarray | None = None
    events_skipped: int = 0
    quality: WindowProblems | None = None


class PredictionResult(NamedTuple):
    """What :func:`run_predict` returns.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per window: ``window``, ``start_s``, ``end_s``, ``p_<class>`` …, ``predicted``.
    summary : dict
        ``recording``, ``model_dir``, ``n_windows``, ``window_s``, ``class_counts``,
        ``mean_probabilities``, ``majority``.
    out_path : Path | None
        The file written (None when ``out`` was None).
    """

    rows: pd.DataFrame
    summary: dict[str, Any]
    out_path: Path | None

    def to_annotations(self, *, probability_in_description: bool = False) -> Any:
        """One ``mne.Annotations`` entry per window, for ``raw.set_annotations(...)``.

        Parameters
        ----------
        probability_in_description : bool
            Write ``"<class> (p=0.87)"`` instead of the bare class name (which keeps one
            colour per class in ``raw.plot()``).

        Returns
        -------
        annotations : mne.Annotations
            Onset = window start (s from the recording's first sample, ``orig_time=None``),
            duration = window length, description = predicted class; ``extras`` (MNE >= 1.10)
            hold ``probability`` (of the predicted class) and every ``p_<class>``.
        """
        from neuript.data.mne_bridge import make_annotations

        p_cols = [c for c in self.rows.columns if c.startswith("p_")]
        proba = self.rows[p_cols].to_numpy(dtype=np.float64)
        p_max = proba.max(axis=1) if len(proba) else np.zeros(0)
        predicted = [str(c) for c in self.rows["predicted"]]
        description = ([f"{c} (p={p:.2f})" for c, p in zip(predicted, p_max)]
                       if probability_in_description else predicted)
        extras = [{"probability": float(p), **{c: float(v) for c, v in zip(p_cols, row)}}
                  for p, row in zip(p_max, proba)]
        duration = (self.rows["end_s"] - self.rows["start_s"]).to_numpy(dtype=np.float64)
        return make_annotations(self.rows["start_s"].to_numpy(dtype=np.float64), duration,
                                description, extras)


class EmbeddingResult(NamedTuple):
    """What :func:`run_embed` returns.

    Attributes
    ----------
    features : ndarray, shape (N, F), float32
        Pooled features (IILP for NeurIPT) of every window.
    starts_s : ndarray, shape (N,), float64
        Window starts (s).
    out_path : Path | None
        The ``.npy`` / ``.npz`` written (None when ``out`` was None).
    """

    features: np.ndarray
    starts_s: np.ndarray
    out_path: Path | None


# --------------------------------------------------------------------------------------------
# recording → model input
# --------------------------------------------------------------------------------------------
def preprocess_of(loaded: LoadedClassifier) -> PreprocessConfig:
    """The training preprocessing, from the model's contract."""
    return loaded.contract.preprocess


def missing_channels(rec: Recording, channels: tuple[str, ...]) -> list[str]:
    """Electrodes (or bipolar pairs) the model needs that ``rec`` cannot provide.

    Parameters
    ----------
    rec : Recording
    channels : tuple of str
        The model's canonical channels (``"Fp1"`` or bipolar ``"Fp1-F7"``).

    Returns
    -------
    missing : list of str
        Missing electrode names, sorted; empty when every channel can be built (names resolved
        as the channel map resolves them: ``T3`` is ``T7``, a file's ``T3-T5`` is ``T7-P7``).
    """
    from neuript.data.montage import missing_electrodes

    return missing_electrodes(rec.ch_names, channels, rec.positions)


def model_continuous(rec: Recording, loaded: LoadedClassifier, model_dir: Any = None) -> Continuous:
    """Check a recording against the model's contract, then map and preprocess it whole.

    The part of :func:`prepare_input` before windowing; :mod:`neuript.online` runs it on each
    buffered stretch of a live stream.

    Parameters
    ----------
    rec : Recording
        Signals in volts, at any rate (resampled to the contract's).
    loaded : LoadedClassifier
    model_dir : Any
        Named in errors.

    Returns
    -------
    continuous : neuript.data.preprocess.Continuous
        ``data`` (C, T') float32 µV at the contract's rate, channels in the model's order.

    Raises
    ------
    ContractError
        The recording lacks channels.
    """
    from neuript.data.preprocess import preprocess_continuous

    pre = preprocess_of(loaded)
    channels = tuple(loaded.contract.channels)
    if channels:
        missing = missing_channels(rec, channels)
        if missing:
            raise ContractError(
                f"{rec.source}: the model ({model_dir}) needs channels {list(channels)}; "
                f"missing electrode(s): {', '.join(missing)} (the recording has "
                f"{list(rec.ch_names)})"
            )
    target = list(channels) if channels else pre.montage
    cont = preprocess_continuous(rec, pre, target=target, on_unknown="drop")
    if channels and tuple(cont.ch_names) != channels:
        raise ContractError(
            f"{rec.source}: channels after mapping {list(cont.ch_names)} differ from the model's "
            f"{list(channels)}"
        )
    return cont


def model_groups(cont: Continuous, loaded: LoadedClassifier) -> np.ndarray:
    """The pooling-group mask (G, C), bool, of the mapped channels, checked against the model.

    A model trained on recordings that kept their own channels (``contract.any_montage``)
    takes any subset of its groups (:func:`neuript.data.montage.groups_as`).

    Raises
    ------
    ContractError
        The groups differ from the ones the model was trained with.
    """
    from neuript.data.montage import groups_as, pooling_groups

    if loaded.contract.any_montage:  # trained on many montages: lobes it lacks pool to zeros
        try:
            return groups_as(list(cont.ch_names), np.asarray(cont.positions),
                             loaded.info.scheme, loaded.info.group_names)
        except ChannelError as err:
            raise ContractError(f"{cont.source}: {err}") from None
    groups = pooling_groups(list(cont.ch_names), np.asarray(cont.positions),
                            loaded.info.scheme)
    expected = loaded.info.group_names or tuple(groups.names)
    if tuple(groups.names) != expected:
        raise ContractError(
            f"{cont.source}: pooling groups {list(groups.names)} differ from the model's "
            f"{list(expected)}"
        )
    return groups.mask


def _uv_windows(rec: Recording, loaded: LoadedClassifier, model_dir: Any):
    """Non-overlapping µV windows (N, C, T) of the contract's length and their Continuous."""
    cont = model_continuous(rec, loaded, model_dir)
    window = int(round(loaded.contract.window_s * cont.sfreq_hz))
    if cont.data.shape[1] < window:
        raise RecordingError(
            rec.source, f"{rec.duration_s:.2f} s is shorter than one {loaded.contract.window_s} s "
            "window of the model"
        )
    starts = sliding_starts(cont.data.shape[1], window, window)
    return cut_windows(cont, starts, window, None).windows, cont


def subject_gains(recordings: Sequence[str | os.PathLike | Recording | Any],
                  loaded: LoadedClassifier, model_dir: Any = None) -> np.ndarray:
    """The gains (C, F) of a ``subject_norm`` model, from one person's recordings.

    Every window of every recording counts (:func:`neuript.data.normalize.group_gains` with one
    group; F = 1 for ``channel_std``, one per rfft bin of the model's window for ``spectral``);
    the recordings should hold that person's ordinary EEG in the states the model tells apart,
    as a calibration session would.
    """
    from neuript.data.mne_bridge import as_recording

    if not recordings:
        raise NeuriptError("subject_gains: no calibration recordings given")
    if loaded.contract.subject_norm == "none":
        raise NeuriptError(f"{model_dir}: calibration recordings given, but the model was "
                           "trained without subject_norm; drop --calibration")
    windows = np.concatenate([_uv_windows(as_recording(r), loaded, model_dir)[0]
                              for r in recordings])
    return _one_group_gains(windows, loaded.contract)


def _one_group_gains(windows_uv: np.ndarray, contract: InputContract) -> np.ndarray:
    """(C, F) gains of the contract's ``subject_norm`` with every window in one group."""
    from neuript.data.normalize import group_gains

    return group_gains(windows_uv, np.zeros(len(windows_uv)), contract.subject_norm,
                       contract.subject_norm_uv, sfreq_hz=float(contract.sfreq_hz),
                       band_hz=(contract.l_freq_hz, contract.h_freq_hz)).gains[0]


def prepare_input(
    recording: str | os.PathLike | Recording | Any, loaded: LoadedClassifier,
    model_dir: Any = None, *, gains: np.ndarray | None = None,
    events: Sequence[str] | None = None, event_offset_s: float = 0.0,
) -> PreparedInput:
    """Map, preprocess, window and compress one recording for ``loaded`` (see module docs).

    ``recording`` is a path, a :class:`Recording` or an ``mne.io.BaseRaw``
    (:func:`neuript.data.mne_bridge.as_recording`). For a model trained with ``subject_norm``
    the windows get ``gains`` (shape (C, F), from :func:`subject_gains` on calibration
    recordings of the same person) or, when None, gains from this recording's consecutive
    windows.

    ``events`` None cuts consecutive windows; a sequence cuts one window per annotation of the
    recording whose description is in it (empty: every annotation), starting
    ``event_offset_s`` after its onset (the offset the event task was built with); events
    whose window leaves the recording are dropped and counted in ``events_skipped``.

    Raises
    ------
    ContractError
        The recording lacks channels the model needs.
    RecordingError
        The file cannot be read, is shorter than one window, or has no matching event.
    """
    from neuript.data.mne_bridge import as_recording
    from neuript.data.normalize import apply_gains
    from neuript.data.preprocess import alaw

    rec = as_recording(recording)
    pre = preprocess_of(loaded)
    windows, cont = _uv_windows(rec, loaded, model_dir)
    contract = loaded.contract
    if contract.subject_norm != "none" and gains is None:  # this recording's own windows
        gains = _one_group_gains(windows, contract)
    elif contract.subject_norm == "none" and gains is not None:
        raise NeuriptError(f"{model_dir}: calibration gains given, but the model was trained "
                           "without subject_norm; drop --calibration")
    starts_s = np.arange(len(windows)) * windows.shape[-1] / cont.sfreq_hz
    labels, skipped = None, 0
    if events is not None:
        wanted = np.isin(rec.events.description, list(events)) if events else \
            np.ones(len(rec.events), dtype=bool)
        onsets = np.asarray(rec.events.onset_s, np.float64)[wanted]
        if not len(onsets):
            found = sorted(set(np.asarray(rec.events.description).tolist()))
            raise RecordingError(rec.source, f"no annotation {list(events) or ''} to predict "
                                 f"at (the recording has {found or 'none'}); drop --events or "
                                 "name one of those")
        window = windows.shape[-1]
        starts, valid = event_starts(onsets, event_offset_s, cont.sfreq_hz, cont.data.shape[1],
                                     window)
        windows, skipped = cut_windows(cont, starts, window, None).windows, int((~valid).sum())
        labels = np.asarray(rec.events.description)[wanted][valid].astype(str)
        starts_s = starts / cont.sfreq_hz
        if not len(windows):
            raise RecordingError(rec.source, f"every one of {len(onsets)} event windows leaves "
                                 "the recording; check --event-offset-s")
    window = windows.shape[-1]
    at = np.round(np.asarray(starts_s) * cont.sfreq_hz).astype(np.int64)
    electrodes = None if cont.channel_map is None else (rec.ch_names, flat_electrodes_by_window(
        rec, cont.channel_map, at, window, cont.sfreq_hz, FLAT_REPORT_UV))
    quality = window_problems(
        windows, cont.ch_names, flat_std_uv=FLAT_REPORT_UV, electrodes=electrodes,
        clipped=None if cont.clipped is None else window_flags(cont.clipped, at, window))
    if gains is not None:
        windows = apply_gains(windows, gains)
    if pre.compression == "alaw":
        windows = alaw(windows, pre.alaw_a)
    group_mask = model_groups(cont, loaded)
    return PreparedInput(np.ascontiguousarray(windows, dtype=np.float32), starts_s,
                         tuple(cont.ch_names), np.asarray(cont.positions, np.float32),
                         group_mask, float(contract.window_s), rec.source, labels, skipped,
                         quality)


def _prepare_with_calibration(recording, loaded: LoadedClassifier, model_dir: Any,
                              calibration, **windowing: Any,
                              ) -> tuple[PreparedInput, dict[str, Any] | None]:
    """:func:`prepare_input` with the gains of ``calibration``; the second value says where a
    ``subject_norm`` model's gains came from (None for other models)."""
    gains = subject_gains(calibration, loaded, model_dir) if calibration else None
    prepared = prepare_input(recording, loaded, model_dir, gains=gains, **windowing)
    if loaded.contract.subject_norm == "none":
        return prepared, None
    if calibration:
        sources = [getattr(r, "source", None) or str(r) for r in calibration]
    else:
        sources = [prepared.source]
        log.info("%s: subject_norm gains taken from the recording itself; when it holds only "
                 "one state, pass the person's other recordings with --calibration",
                 prepared.source)
    return prepared, {"method": loaded.contract.subject_norm,
                      "target_std_uv": loaded.contract.subject_norm_uv, "gains_from": sources}


def _batches(prepared: PreparedInput, batch_size: int):
    """Yield :class:`Batch` es of ``batch_size`` windows (no labels)."""
    n, c, _ = prepared.signals.shape
    positions = torch.from_numpy(prepared.positions)
    groups = torch.from_numpy(prepared.group_mask)
    for lo in range(0, n, batch_size):
        signals = torch.from_numpy(prepared.signals[lo: lo + batch_size])
        b = signals.shape[0]
        yield Batch(signals=signals, positions=positions.expand(b, c, 3),
                    channel_mask=torch.ones(b, c, dtype=torch.bool),
                    group_mask=groups.expand(b, -1, c), labels=None,
                    window_ids=torch.arange(lo, lo + b, dtype=torch.int64))


# --------------------------------------------------------------------------------------------
# predict and embed
# --------------------------------------------------------------------------------------------
def run_predict(
    recording_path: str | os.PathLike | Recording | Any,
    model_dir: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    fmt: Format = "csv",
    batch_size: int = 128,
    device: str = "auto",
    engine: Engine = "torch",
    threads: int | None = None,
    calibration: Sequence[str | os.PathLike | Recording | Any] | None = None,
    events: Sequence[str] | None = None,
    event_offset_s: float = 0.0,
) -> PredictionResult:
    """Classify every window of a recording with a fine-tuned model.

    Parameters
    ----------
    recording_path : path-like | Recording | mne.io.BaseRaw
        Any format :func:`neuript.data.io.read_recording` reads, a Recording, or an MNE Raw
        in memory (:meth:`Recording.from_mne`: ``info["bads"]`` set aside, montage positions of
        custom electrodes kept).
    model_dir : path-like
        A fine-tuned model directory (``RUN/seed_<s>/model``).
    out : path-like | None
        File to write (atomically); None writes nothing.
    fmt : {"csv", "json"}
        CSV holds the rows; JSON holds ``{"summary": …, "windows": [rows]}``.
    batch_size : int
    device : str
        PyTorch device (``engine="torch"`` only).
    engine : {"torch", "onnx", "onnx-int8"}
        ``"onnx"`` runs the folder's ONNX export (``neuript export``) with ONNX Runtime on the
        CPU; preprocessing and outputs are the same. ``"onnx-int8"`` runs its quantised copy
        (``neuript export --int8``), whose probabilities differ slightly (``deploy``).
    threads : int | None
        ONNX Runtime threads (None: every core); ignored by ``engine="torch"``.
    calibration : sequence of recordings | None
        For a model trained with ``subject_norm``: recordings of the same person whose windows
        give the channel gains (:func:`subject_gains`); None takes them from the recording
        itself (logged). Refused for other models.
    events : sequence of str | None
        Predict one window per annotation with one of these descriptions (empty: every
        annotation) instead of consecutive windows: the use of a model fine-tuned on
        event-locked epochs (ERP tasks). Rows then carry ``event`` and ``onset_s``.
    event_offset_s : float
        Window start relative to each event's onset (s), as the task was built.

    Returns
    -------
    result : PredictionResult
        ``result.to_annotations()`` gives them as ``mne.Annotations``.
    """
    check_option("fmt", fmt, get_args(Format))
    check_option("engine", engine, ENGINES)
    loaded = load_classifier(model_dir)
    prepared, norm = _prepare_with_calibration(recording_path, loaded, model_dir, calibration,
                                               events=events, event_offset_s=event_offset_s)
    if engine != "torch":
        proba = _onnx_proba(model_dir, prepared, batch_size, threads, int8=engine == "onnx-int8")
    else:
        dev = _resolve_device(device)
        proba = predict_batches(loaded.model.to(dev), _batches(prepared, batch_size), dev).proba
    class_names = list(loaded.info.class_names)
    if len(class_names) != proba.shape[1]:
        raise NeuriptError(f"{model_dir}: {len(class_names)} class names for "
                           f"{proba.shape[1]} outputs")
    predicted = proba.argmax(axis=1)
    per_event = {} if prepared.events is None else {
        "event": prepared.events, "onset_s": prepared.starts_s - event_offset_s}
    rows = pd.DataFrame({
        "window": np.arange(len(predicted)),
        **per_event,
        "start_s": prepared.starts_s,
        "end_s": prepared.starts_s + prepared.window_s,
        **{f"p_{name}": proba[:, k] for k, name in enumerate(class_names)},
        "predicted": [class_names[k] for k in predicted],
        "quality": prepared.quality.words() if prepared.quality is not None else "",
    })
    counts = np.bincount(predicted, minlength=len(class_names))
    summary = {
        "recording": prepared.source,
        "model_dir": str(model_dir),
        "n_windows": int(len(predicted)),
        "window_s": prepared.window_s,
        "class_counts": {name: int(counts[k]) for k, name in enumerate(class_names)},
        "mean_probabilities": {name: float(proba[:, k].mean())
                               for k, name in enumerate(class_names)},
        "majority": class_names[int(counts.argmax())],
    }
    summary["quality"] = quality_summary(prepared)
    if norm is not None:
        summary["subject_norm"] = norm
    if prepared.events is not None:
        summary["events"] = {"n": int(len(predicted)), "skipped": prepared.events_skipped,
                             "offset_s": float(event_offset_s)}
        if prepared.events_skipped:
            log.warning("%s: %d event window(s) leave the recording and were skipped",
                        prepared.source, prepared.events_skipped)
    out_path = None
    if out is not None:
        out_path = Path(out)
        if fmt == "csv":
            atomic_write(out_path, rows.to_csv(index=False, float_format="%.6f"))
        else:
            body = {"summary": summary, "windows": rows.to_dict(orient="records")}
            atomic_write(out_path, json.dumps(body, indent=2))
    log.info("predicted %d windows of %s: %s", len(predicted), prepared.source,
             summary["class_counts"])
    return PredictionResult(rows, summary, out_path)


def quality_summary(prepared: PreparedInput) -> dict[str, Any]:
    """Counts of :attr:`PreparedInput.quality` (:meth:`WindowProblems.counts`), logged as one
    warning when a window has a problem."""
    out = (prepared.quality.counts() if prepared.quality is not None else
           {"windows_with_problems": 0, "nan": 0, "clipped": 0, "flat_channels": {}})
    n_windows = len(prepared.signals)
    if out["windows_with_problems"]:
        what = [f"flat {name} in {k}" for name, k in list(out["flat_channels"].items())[:4]]
        what += [f"{key} in {out[key]}" for key in ("clipped", "nan") if out[key]]
        log.warning("%s: %d of %d windows are suspect (%s): their predictions may be "
                    "meaningless; the `quality` column names the problem of each", prepared.source,
                    out["windows_with_problems"], n_windows, ", ".join(what))
    return out


def _onnx_proba(model_dir: str | os.PathLike, prepared: PreparedInput, batch_size: int,
                threads: int | None, int8: bool = False) -> np.ndarray:
    """Softmax probabilities (N, K), float64, from the folder's ONNX export (or int8 copy)."""
    from scipy.special import softmax

    from neuript.deploy import OnnxClassifier

    model = OnnxClassifier(model_dir, threads=threads, int8=int8)
    logits = [model.logits(prepared.signals[lo: lo + batch_size], prepared.positions,
                           prepared.group_mask)
              for lo in range(0, len(prepared.signals), batch_size)]
    return softmax(np.concatenate(logits).astype(np.float64), axis=1)


def run_embed(
    recording_path: str | os.PathLike | Recording | Any,
    model_dir: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    batch_size: int = 128,
    device: str = "auto",
    calibration: Sequence[str | os.PathLike | Recording | Any] | None = None,
) -> EmbeddingResult:
    """Pooled features (the IILP vector the head reads) of every window of a recording.

    Parameters
    ----------
    recording_path : path-like | Recording | mne.io.BaseRaw
    model_dir : path-like
        A fine-tuned model directory.
    out : path-like | None
        ``*.npy``: the features array (N, F); ``*.npz``: ``features``, ``starts_s``,
        ``ch_names``; None writes nothing.
    batch_size : int
    device : str
    calibration : sequence of recordings | None
        As in :func:`run_predict`.

    Returns
    -------
    result : EmbeddingResult
    """
    loaded = load_classifier(model_dir)
    prepared, _ = _prepare_with_calibration(recording_path, loaded, model_dir, calibration)
    dev = _resolve_device(device)
    preds = predict_batches(loaded.model.to(dev), _batches(prepared, batch_size), dev,
                            keep_features=True)
    assert preds.features is not None
    out_path = None
    if out is not None:
        out_path = Path(out)
        if out_path.suffix not in (".npy", ".npz"):
            raise NeuriptError(f"out={str(out)!r}: embeddings are written as .npy or .npz")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_name(f".{out_path.stem}.tmp{out_path.suffix}")
        if out_path.suffix == ".npy":
            np.save(tmp, preds.features)
        else:
            np.savez(tmp, features=preds.features, starts_s=prepared.starts_s,
                     ch_names=np.array(prepared.ch_names))
        tmp.replace(out_path)
    return EmbeddingResult(preds.features, prepared.starts_s, out_path)


class _CallableModule(types.ModuleType):
    """``neuript.predict`` is both this module and the API function :func:`run_predict`.

    Importing the submodule makes ``neuript.predict`` refer to the module, hiding the lazy API
    attribute of ``neuript/__init__.py``; making the module callable keeps
    ``neuript.predict(recording, model_dir, ...)`` working either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> PredictionResult:
        return run_predict(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
