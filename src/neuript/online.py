"""Online windows: a ring buffer of raw samples and a model applied to its latest stretch.

A live stream cannot be filtered like a whole recording: ``neuript predict`` band-passes each
recording with a zero-phase FIR (33 s long at 0.1-30 Hz and 64 Hz) that reaches 16.5 s into the
past *and* the future of every sample. Online, each prediction uses only samples received so far:

1. the last ``need = round((window_s + margin_s) · sfreq)`` raw samples before the window's end
   (the margin is the past the filters need; by default half the FIR's length,
   :func:`default_margin_s`: 17 s at 0.1-30 Hz and 64 Hz);
2. followed by their mirror image (even reflection of those past samples, as long as half the
   FIR) standing in for the unknown future;
3. go through the same channel mapping and :func:`~neuript.data.preprocess.preprocess_continuous`
   as ``neuript predict`` (:func:`neuript.predict.model_continuous`: resampling to the
   contract's rate, zero-phase FIR band-pass, µV); the ``window_s`` of model samples that end
   where the real samples end are compressed (A-law) and classified.

Why the mirror: the pipeline itself pads a signal's ends by *odd* reflection (``2·x[-1] - x``,
MNE's ``reflect_limited``), which, with a 16.5-s half kernel, shifts the whole window by about
the last sample's deviation from the local mean. On eight real EEGMAT recordings the odd
reflection left online windows 55 % (median relative RMS) away from ``neuript predict``'s
windows; the mirrored future brings that to 2 % (``docs/streaming.md``).

:func:`offline_equivalent` gives, from a file, exactly the predictions a live stream of that
file gives (same window ends, same stretches, same code for one window), with no LSL involved.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from neuript.batch import Batch
from neuript.config import PreprocessConfig
from neuript.data.filters import resample_factor
from neuript.data.recording import Recording
from neuript.errors import NeuriptError
from neuript.model_folder import LoadedClassifier, load_classifier
from neuript.predict import ENGINES, model_continuous, model_groups, preprocess_of
from neuript.train.evaluate import predict_batches


class RingSlice(NamedTuple):
    """Samples ``start:stop`` of a :class:`RingBuffer` (copies).

    Attributes
    ----------
    data : ndarray, shape (C, stop - start), float64
        Volts.
    timestamps : ndarray, shape (stop - start,), float64
        LSL timestamps (s).
    arrival : ndarray, shape (stop - start,), float64
        Local clock when each sample was pulled (s).
    """

    data: np.ndarray
    timestamps: np.ndarray
    arrival: np.ndarray


class RingBuffer:
    """The most recent ``capacity`` samples of a stream, addressed by absolute sample number.

    Parameters
    ----------
    n_channels : int
    capacity : int
        Samples kept; older ones are overwritten.
    """

    def __init__(self, n_channels: int, capacity: int) -> None:
        self.data = np.zeros((n_channels, capacity))  # (C, capacity) volts
        self.timestamps = np.zeros(capacity)
        self.arrival = np.zeros(capacity)
        self.n_seen = 0
        """Samples written since creation (the absolute number of the next sample)."""

    @property
    def capacity(self) -> int:
        """Samples the buffer holds."""
        return self.timestamps.size

    def extend(self, data: np.ndarray, timestamps: np.ndarray, arrival_s: float) -> None:
        """Append samples. data: (C, n) volts; timestamps: (n,) s; arrival_s: local clock (s)."""
        n = timestamps.size
        assert data.shape == (self.data.shape[0], n), (data.shape, n)
        keep = min(n, self.capacity)
        idx = np.arange(self.n_seen + n - keep, self.n_seen + n) % self.capacity
        self.data[:, idx] = data[:, n - keep:]
        self.timestamps[idx] = timestamps[n - keep:]
        self.arrival[idx] = arrival_s
        self.n_seen += n

    def get(self, start: int, stop: int) -> RingSlice:
        """Samples ``start:stop`` (absolute numbers); they must still be held."""
        if not (max(self.n_seen - self.capacity, 0) <= start <= stop <= self.n_seen):
            raise IndexError(f"samples {start}:{stop} are not held (held: "
                             f"{max(self.n_seen - self.capacity, 0)}:{self.n_seen})")
        idx = np.arange(start, stop) % self.capacity
        return RingSlice(self.data[:, idx], self.timestamps[idx], self.arrival[idx])


def default_margin_s(pre: PreprocessConfig) -> float:
    """Past context (s) that lets the band-pass see every past sample it uses offline.

    Half the zero-phase FIR's length at the contract's rate (the kernel reaches that far into
    the past and the future), rounded up to a whole second (which also covers the resampler's
    much shorter anti-alias kernel); at least 1 s.
    """
    from neuript.data.filters import fir_kernel

    if pre.l_freq_hz is None and pre.h_freq_hz is None:
        return 1.0
    half = fir_kernel(float(pre.sfreq_hz), pre.l_freq_hz, pre.h_freq_hz).size // 2
    return float(max(1, math.ceil(half / pre.sfreq_hz)))


def one_window_batch(window: np.ndarray, positions: torch.Tensor,
                     group_mask: torch.Tensor) -> Batch:
    """The batch of one compressed window, as every online call feeds the model.

    Parameters
    ----------
    window : ndarray, shape (C, T), float32
    positions : Tensor, shape (C, 3), float32, metres
    group_mask : Tensor, shape (G, C), bool

    Returns
    -------
    batch : Batch
        Batch size 1; positions and groups broadcast views (no copies).
    """
    signals = torch.from_numpy(np.ascontiguousarray(window, np.float32))[None]  # (1, C, T)
    c = signals.shape[1]
    return Batch(signals=signals, positions=positions.expand(1, c, 3),
                 channel_mask=torch.ones(1, c, dtype=torch.bool),
                 group_mask=group_mask.expand(1, -1, c), labels=None,
                 window_ids=torch.zeros(1, dtype=torch.int64))


def compile_one_window(model: torch.nn.Module, n_channels: int, n_samples: int,
                       n_groups: int) -> torch.nn.Module:
    """``torch.compile`` of a classifier for one (C, T) window at a time, compiled now.

    The graph is specialised to the shape (``dynamic=False``): a live stream feeds exactly one
    shape, and fixed shapes let Inductor fuse the many small operators that dominate a
    one-window forward on the CPU (``benchmarks/results/speed.md`` measures the gain). A dry run
    on zeros triggers the compilation (a minute or more on a 2-core CPU), so the caller pays it
    before the first real window; a call with another shape compiles again.

    Parameters
    ----------
    model : nn.Module
        ``forward(signals, positions, channel_mask, group_mask)``; not modified.
    n_channels, n_samples, n_groups : int
        C, T and G of the windows to come.

    Returns
    -------
    net : nn.Module
        The compiled module (same outputs, within float rounding).
    """
    net = torch.compile(model, dynamic=False)
    zeros = np.zeros((n_channels, n_samples), np.float32)
    batch = one_window_batch(zeros, torch.zeros(n_channels, 3),
                             torch.ones(n_groups, n_channels, dtype=torch.bool))
    predict_batches(net, [batch], torch.device("cpu"))
    return net


def compile_for_contract(loaded: LoadedClassifier) -> torch.nn.Module:
    """:func:`compile_one_window` for the window shape of a model's contract: its channels, the
    window at its rate, its pooling groups. A model without a fixed channel list is compiled
    lazily instead (on its first window)."""
    from neuript.model_folder import window_shape

    shape = window_shape(loaded.contract, loaded.info)
    if shape is None or loaded.contract.any_montage:  # the stream decides its channels
        return torch.compile(loaded.model, dynamic=False)
    return compile_one_window(loaded.model, *shape)


class OnlineModel:
    """A fine-tuned model and its preprocessing, applied to one stretch of raw samples at once.

    The stretch (``need`` samples: margin + window) is extended by ``pad`` samples of its own
    mirror image, preprocessed as ``neuript predict`` preprocesses a recording, and the window
    that ends with the real samples is classified (module docs). Construction checks the
    channels by a dry run on zeros, which also designs the filters and warms the model up, so
    the first live window pays for neither.

    Parameters
    ----------
    loaded : LoadedClassifier
    ch_names : sequence of str, length C
        Names of the incoming EEG channels.
    sfreq_hz : float
        Their sampling rate (resampled to the contract's, as ``neuript predict`` does).
    margin_s : float | None
        Past context before each window (s); None: :func:`default_margin_s`.
    source : str
        Named in errors (a file path or ``lsl:<stream>``).
    model_dir : Any
        The model folder (named in errors; the ONNX engine reads its export there).
    engine : {"torch", "onnx", "onnx-int8"}
        Run the PyTorch model, or the folder's ONNX export (or its int8 copy) with ONNX Runtime
        (as ``neuript predict --engine onnx``; export first with ``neuript export [--int8]``).
    threads : int | None
        ONNX Runtime threads (the torch engine uses PyTorch's setting).
    net : nn.Module | None
        The module the torch engine runs instead of ``loaded.model``: its compiled form
        (:func:`compile_for_contract`, ``neuript stream --compile``). None: the model itself.

    Raises
    ------
    ContractError
        The channels lack electrodes the model needs (named in the message), or the ONNX
        export is missing or stale.
    """

    def __init__(self, loaded: LoadedClassifier, ch_names: tuple[str, ...], sfreq_hz: float, *,
                 margin_s: float | None = None, source: str = "<stream>",
                 model_dir: Any = None, engine: str = "torch",
                 threads: int | None = None, gains: np.ndarray | None = None,
                 net: torch.nn.Module | None = None) -> None:
        from neuript.errors import check_option

        check_option("engine", engine, ENGINES)
        if net is not None and engine != "torch":
            raise NeuriptError(f"a compiled model runs on the torch engine, not {engine!r}; "
                               "drop --compile or use --engine torch")
        self.net = loaded.model if net is None else net
        """What the torch engine runs: the model, or its compiled form."""
        if loaded.contract.subject_norm != "none" and gains is None:
            raise NeuriptError(
                f"{model_dir}: the model was fine-tuned with subject_norm="
                f"{loaded.contract.subject_norm!r}, so live windows need the person's channel "
                "gains; pass recordings of the same person with --calibration")
        if loaded.contract.subject_norm == "none" and gains is not None:
            raise NeuriptError(f"{model_dir}: calibration gains given, but the model was "
                               "trained without subject_norm; drop --calibration")
        self.gains = None if gains is None else np.asarray(gains, np.float64)
        """Gains (C_model, F) of a subject_norm model (:func:`neuript.predict.subject_gains`),
        else None."""
        self.loaded, self.pre = loaded, preprocess_of(loaded)
        self.engine = engine
        self._onnx = None
        if engine != "torch":
            from neuript.deploy import OnnxClassifier

            self._onnx = OnnxClassifier(model_dir, threads=threads, int8=engine == "onnx-int8")
        self.ch_names, self.sfreq_hz = tuple(ch_names), float(sfreq_hz)
        self.source, self.model_dir = source, model_dir
        self.window_s = float(loaded.contract.window_s)
        self.margin_s = default_margin_s(self.pre) if margin_s is None else float(margin_s)
        self.need = int(round((self.window_s + self.margin_s) * self.sfreq_hz))
        """Raw samples of context per prediction (window + margin)."""
        self.pad = int(round(default_margin_s(self.pre) * self.sfreq_hz))
        """Raw samples of mirrored past appended as the filters' future."""
        up, down = resample_factor(self.sfreq_hz, float(self.pre.sfreq_hz))
        self.end = math.ceil(self.need * up / down)
        """Model samples of the context alone: the window is ``[end - window, end)``."""
        self.window = int(round(self.window_s * self.pre.sfreq_hz))
        """Model samples per window."""
        if self.end < self.window:
            raise NeuriptError(f"{source}: {self.need} samples at {self.sfreq_hz:g} Hz are "
                               f"shorter than one {self.window_s:g} s window")
        cont = self._continuous(np.zeros((len(self.ch_names), self.need)))
        self.positions = torch.from_numpy(np.asarray(cont.positions, np.float32))
        self.group_mask = torch.from_numpy(model_groups(cont, loaded))
        self.class_names = list(loaded.info.class_names)
        proba = self.predict(np.zeros((len(self.ch_names), self.need)))
        if not self.class_names:
            self.class_names = [str(k) for k in range(proba.size)]
        if len(self.class_names) != proba.size:
            raise NeuriptError(f"{model_dir}: {len(self.class_names)} class names for "
                               f"{proba.size} outputs")

    def _continuous(self, context_v: np.ndarray) -> Any:
        """The context and its mirrored future through the offline pipeline (C_model, T') µV."""
        extended = np.pad(context_v, ((0, 0), (0, self.pad)), mode="symmetric")  # (C, need+pad)
        rec = Recording(data=extended, sfreq_hz=self.sfreq_hz, ch_names=self.ch_names,
                        source=self.source)
        return model_continuous(rec, self.loaded, self.model_dir)

    def window_uv(self, context_v: np.ndarray) -> np.ndarray:
        """The preprocessed window that ends a stretch of raw samples, before compression.

        Parameters
        ----------
        context_v : ndarray, shape (C, need), float64
            The last ``need`` raw samples (volts) up to the window's end.

        Returns
        -------
        window : ndarray, shape (C_model, T), float32
            µV at the contract's rate, the model's channels in its order.
        """
        assert context_v.shape == (len(self.ch_names), self.need), context_v.shape
        return self._continuous(context_v).data[:, self.end - self.window: self.end]

    def window_quality(self, context_v: np.ndarray) -> str:
        """What is wrong with the raw samples of the window that ends ``context_v``: ``""``,
        or ``"nan"`` and ``"flat electrode <names>"`` (a standard deviation below
        :data:`neuript.data.windows.FLAT_REPORT_UV`), as ``predict``'s ``quality`` column.

        Checked on the incoming electrodes before any derivation, so an electrode that came
        off shows even when a bipolar pair hides it; O(C · window) per call.
        """
        from neuript.data.windows import FLAT_REPORT_UV, window_problems

        raw_uv = 1e6 * context_v[None, :, -int(round(self.window_s * self.sfreq_hz)):]  # (1, C, W)
        flat = np.isfinite(raw_uv).all(axis=2) & (raw_uv.std(axis=2) < FLAT_REPORT_UV)  # (1, C)
        return str(window_problems(raw_uv, self.ch_names, flat_std_uv=None,
                                   electrodes=(self.ch_names, flat)).words()[0])

    def predict(self, context_v: np.ndarray) -> np.ndarray:
        """Class probabilities of the window that ends a stretch of raw samples.

        Parameters
        ----------
        context_v : ndarray, shape (C, need), float64
            The last ``need`` raw samples (volts) up to the window's end.

        Returns
        -------
        proba : ndarray, shape (K,), float64
        """
        from neuript.data.preprocess import alaw

        window = self.window_uv(context_v)  # (C_model, T) µV
        if self.gains is not None:
            from neuript.data.normalize import apply_gains

            window = apply_gains(window[None], self.gains)[0]
        if self.pre.compression == "alaw":
            window = alaw(window, self.pre.alaw_a)
        if self._onnx is not None:
            from scipy.special import softmax

            logits = self._onnx.logits(np.ascontiguousarray(window, np.float32)[None],
                                       self.positions.numpy(), self.group_mask.numpy())
            return softmax(logits[0].astype(np.float64))
        batch = one_window_batch(window, self.positions, self.group_mask)
        return predict_batches(self.net, [batch], torch.device("cpu")).proba[0]


def _rows(model: OnlineModel, ends: list[int], probas: list[np.ndarray]) -> pd.DataFrame:
    """The rows of :func:`offline_equivalent` (the first columns of a stream's rows)."""
    proba = np.array(probas, dtype=np.float64).reshape(len(ends), len(model.class_names))
    return pd.DataFrame({
        "prediction": np.arange(len(ends)),
        "end_sample": np.asarray(ends, dtype=np.int64),
        "end_s": np.asarray(ends, dtype=np.float64) / model.sfreq_hz,
        **{f"p_{name}": proba[:, k] for k, name in enumerate(model.class_names)},
        "predicted": [model.class_names[k] for k in proba.argmax(axis=1)],
    })


def offline_equivalent(
    recording: str | os.PathLike | Recording,
    model_dir: str | os.PathLike,
    *,
    step_s: float | None = None,
    margin_s: float | None = None,
    end_samples: Any = None,
    engine: str = "torch",
    gains: np.ndarray | None = None,
) -> pd.DataFrame:
    """The predictions a live stream of ``recording`` gives, computed from the file.

    Parameters
    ----------
    recording : path-like | Recording
    model_dir : path-like
        A fine-tuned model directory.
    step_s, margin_s : float | None
        As in :class:`neuript.stream.StreamConfig` (step None: the model's window length).
    end_samples : sequence of int | None
        Window ends (exclusive, in samples of the recording); None: ``need + k·step`` up to the
        end of the file, the ends of a stream that starts at the first sample and keeps up.
    engine : {"torch", "onnx", "onnx-int8"}
        As in :class:`OnlineModel`.
    gains : ndarray, shape (C_model, F) | None
        As in :class:`OnlineModel` (a ``subject_norm`` model needs them).

    Returns
    -------
    rows : pandas.DataFrame
        ``prediction``, ``end_sample``, ``end_s``, ``p_<class>`` …, ``predicted``.
    """
    from neuript.data.io import read_recording

    rec = recording if isinstance(recording, Recording) else read_recording(recording)
    loaded = load_classifier(model_dir)
    model = OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, margin_s=margin_s,
                        source=rec.source, model_dir=model_dir, engine=engine, gains=gains)
    step = int(round((step_s or model.window_s) * rec.sfreq_hz))
    ends = (list(range(model.need, rec.n_samples + 1, step)) if end_samples is None
            else [int(e) for e in end_samples])
    for e in ends:
        if not model.need <= e <= rec.n_samples:
            raise NeuriptError(f"end_samples: {e} is outside {model.need}..{rec.n_samples} "
                               f"(window + margin = {model.need} samples of {rec.source})")
    return _rows(model, ends, [model.predict(rec.data[:, e - model.need: e]) for e in ends])
