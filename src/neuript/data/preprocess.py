"""Pure preprocessing functions: filter, notch, resample, µV, A-law, clipping, the pipeline.

Every function takes arrays and returns new arrays; nothing mutates its input. The pipeline of
NEURIPT_SPEC §1 is :func:`preprocess_continuous` and :func:`prepare_recording` (… → trim edges →
windows → rejection).

Order of operations in :func:`preprocess_continuous` (chosen for speed, checked for equivalence):

1. channel map (a row selection when the montage only renames/keeps channels, else
   ``matrix @ data``); clipping is detected on the raw used channels;
2. resample to ``cfg.sfreq_hz`` from any rate (``scipy.signal.resample_poly`` by the factor of
   :func:`~neuript.data.filters.resample_factor`; its polyphase Kaiser low-pass
   anti-aliases at the new Nyquist, and the signal is extended by odd reflection at both ends,
   as MNE pads before filtering, so no edge step is created);
3. band-pass ``l_freq_hz``-``h_freq_hz`` at the *target* rate: the same zero-phase firwin FIR
   that ``mne.filter.filter_data`` designs for that rate, applied by one batched FFT convolution
   (:func:`bandpass`, equal to MNE to rounding). At 64 Hz there are 4x fewer samples than at
   250 Hz and the 0.1-Hz high-pass kernel (33 s) has 4x fewer taps;
4. mains notch only if ``notch_hz`` lies below the target Nyquist. At 64 Hz (Nyquist 32 Hz) a 50
   or 60 Hz line is already removed by the anti-alias filter of step 2 (stop band from the new
   Nyquist on), so the notch would be a no-op and is skipped;
5. volts → µV, float32.

The historical order (filter and notch at the recording's own rate, then resample) gives the
same windows up to the low-pass transition band just below 32 Hz: ``tests/test_preprocess.py``
compares the two on a real EEGMAT recording (correlation > 0.99, max |difference| a small
fraction of the signal std).

Windows are cut and screened in one place, :mod:`neuript.data.windows` (its docstring states
the rejection rule); :func:`prepare_recording` is the corpus writer's use of it.
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.filters import (  # noqa: F401  (re-exported: the public preprocessing API)
    MAX_RESAMPLE_DENOMINATOR,
    bandpass,
    fir_kernel,
    fir_zero_phase,
    notch,
    resample,
)
from neuript.data.montage import build_channel_map
from neuript.data.recording import Events, Recording
from neuript.data.windows import REJECT_REASONS, cut_windows, sliding_starts
from neuript.errors import ChannelError

log = logging.getLogger(__name__)

CLIP_MIN_RUN = 3
"""Consecutive samples at a channel's exact extreme value that count as clipping."""


# --------------------------------------------------------------------------------------------
# single steps
# --------------------------------------------------------------------------------------------
def to_microvolts(data_v: np.ndarray) -> np.ndarray:
    """Volts → µV. data_v: (C, T) volts → (C, T) µV (a new array, dtype kept)."""
    return np.multiply(data_v, 1e6)


def alaw(x_uv: Any, a: float = 0.25) -> Any:
    """The modified A-law of NEURIPT_SPEC §1 on µV values.

    ``y = sign(x)·A|x|/(e + ln A)`` for ``|x| < 1/A``, else ``sign(x)·(1 + ln(A|x|))/(e + ln A)``;
    continuous at ``|x| = 1/A`` and odd. With A = 0.25, ±100 µV → ±3.167.

    Parameters
    ----------
    x_uv : ndarray or Tensor, any shape
        Values in µV.
    a : float
        The A of the law, in (0, 1).

    Returns
    -------
    y : same type, shape and dtype as ``x_uv``
    """
    denom = math.e + math.log(a)
    if isinstance(x_uv, np.ndarray):
        mag = np.abs(x_uv)
        big = (1.0 + np.log(np.maximum(a * mag, 1.0))) / denom
        y = np.sign(x_uv) * np.where(mag < 1.0 / a, a * mag / denom, big)
        return y.astype(x_uv.dtype, copy=False)
    import torch

    if isinstance(x_uv, torch.Tensor):
        mag = x_uv.abs()
        big = (1.0 + torch.log(torch.clamp(a * mag, min=1.0))) / denom
        return torch.sign(x_uv) * torch.where(mag < 1.0 / a, a * mag / denom, big)
    return alaw(np.asarray(x_uv, dtype=np.float64), a)


def clipped_samples(data: np.ndarray, min_run: int = CLIP_MIN_RUN) -> np.ndarray:
    """Samples where any channel sits at its exact extreme value in a run of ``min_run`` or more.

    Parameters
    ----------
    data : ndarray, shape (C, T)
        Raw signals (before filtering; clipping is only visible there).
    min_run : int
        Shortest run of identical extreme values that counts as clipping.

    Returns
    -------
    clipped : ndarray, shape (T,), bool
        True where some channel is clipped. Constant channels are left to the flat test.
    """
    n_samples = data.shape[1]
    out = np.zeros(n_samples, dtype=bool)
    if n_samples < min_run or data.shape[0] == 0:
        return out
    lo, hi = data.min(axis=1, keepdims=True), data.max(axis=1, keepdims=True)
    at_rail = (data == lo) | (data == hi)  # (C, T)
    at_rail &= hi > lo  # constant channels are left to the flat test
    # only channels with at least min_run rail samples can hold a run (usually none)
    rows = np.flatnonzero(np.count_nonzero(at_rail, axis=1) >= min_run)
    if rows.size == 0:
        return out
    rail = at_rail[rows]
    n_starts = n_samples - min_run + 1
    run_start = rail[:, :n_starts].copy()  # True where min_run rail samples begin
    for shift in range(1, min_run):
        run_start &= rail[:, shift:shift + n_starts]
    starts_any = run_start.any(axis=0)  # (T - min_run + 1,)
    for shift in range(min_run):
        out[shift:shift + n_starts] |= starts_any
    return out


# --------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Continuous:
    """A whole recording after channel map, filters, resampling and conversion to µV.

    Attributes
    ----------
    data : ndarray, shape (C, T), float32
        µV at ``sfreq_hz``.
    ch_names : tuple of str, length C
        Canonical channel names.
    positions : ndarray, shape (C, 3), float32
        Channel positions (metres, fixed head frame).
    sfreq_hz : float
        Sampling rate (the config's target rate).
    source, subject, session : str, str | None, str | None
        As in the recording.
    events : Events
        The recording's events (onsets in seconds, unchanged).
    clipped : ndarray, shape (T,), bool
        Samples (at ``sfreq_hz``) where a used source channel was clipped.
    channel_map : ndarray, shape (C, E) | None
        The montage matrix from the recording's E electrodes (for the flat-electrode test of
        :func:`~neuript.data.windows.cut_windows`).
    """

    data: np.ndarray
    ch_names: tuple[str, ...]
    positions: np.ndarray
    sfreq_hz: float
    source: str = "<array>"
    subject: str | None = None
    session: str | None = None
    events: Events = field(default_factory=Events)
    clipped: np.ndarray | None = None
    channel_map: np.ndarray | None = None


def _clipped_at_target(clipped_src: np.ndarray, sfreq_hz: float, target_hz: float, n_out: int):
    """Map a (T_src,) clipped mask to the (T_out,) samples of the resampled signal."""
    out = np.zeros(n_out, dtype=bool)
    idx = np.flatnonzero(clipped_src)
    if idx.size:
        out[np.clip((idx * target_hz / sfreq_hz).astype(np.int64), 0, n_out - 1)] = True
    return out


@functools.lru_cache(maxsize=256)
def _cached_channel_map(ch_names: tuple[str, ...], target: str | tuple, on_unknown: str) -> Any:
    """:func:`build_channel_map` for recordings without custom positions, memoised.

    Corpora repeat a handful of channel layouts; the map only depends on the names.
    """
    return build_channel_map(ch_names, target, source="<cached>", on_unknown=on_unknown)


def channel_map_for(
    rec: Recording, target: str | Sequence[str], on_unknown: str = "raise"
) -> Any:
    """The :class:`~neuript.data.montage.ChannelMap` of a recording (memoised by channel names).

    Parameters
    ----------
    rec : Recording
    target : {"tcp", "monopolar", "as_is", "auto"} or list of channel names/pairs
    on_unknown : {"raise", "drop"}

    Returns
    -------
    channel_map : ChannelMap
        Shared between recordings with the same names: treat it as read-only.

    Raises
    ------
    ChannelError
        Naming ``rec.source`` (errors are never memoised).
    """
    key = target if isinstance(target, str) else tuple(
        tuple(t) if isinstance(t, list | tuple) else t for t in target
    )
    if not rec.positions:
        try:
            return _cached_channel_map(tuple(rec.ch_names), key, on_unknown)
        except ChannelError:
            pass  # rebuilt below so that the error names this recording's file
    return build_channel_map(
        rec.ch_names, target, source=rec.source, on_unknown=on_unknown,  # type: ignore[arg-type]
        extra_positions=rec.positions,
    )


def flat_electrodes(rec: Recording, flat_std_uv: float) -> tuple[str, ...]:
    """The recorded electrodes whose standard deviation over the whole recording is below
    ``flat_std_uv`` (µV): dead or unconnected, not a window's brief dropout.

    Such an electrode fails the window flat test (:func:`~neuript.data.windows.reject_windows`)
    in every window, so kept, it rejects the whole recording. NaN samples are ignored; an
    electrode that is all NaN is not flat (the NaN test names it).
    """
    flat = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: nanstd warns
        for name, row in zip(rec.ch_names, rec.data):  # row by row: temporaries of (T,) only
            if 1e6 * np.nanstd(row) < flat_std_uv:  # NaN (all-NaN row) compares False
                flat.append(name)
    return tuple(flat)


class _RowPlan(NamedTuple):
    """A channel map as row arithmetic: ``out = data[plus] - data[minus]`` (minus < 0: none)."""

    plus: np.ndarray
    minus: np.ndarray


def _row_plan(matrix: np.ndarray) -> _RowPlan | None:
    """The map as selections/differences of input rows, or None if it needs a matrix product.

    Monopolar and bipolar (TCP) montages have one +1 and at most one -1 per row; gathering rows
    is cheaper than ``matrix @ data`` and exact.
    """
    if matrix.size == 0 or not np.all((matrix == 0) | (matrix == 1) | (matrix == -1)):
        return None
    plus, minus = matrix == 1, matrix == -1
    if not (np.all(plus.sum(axis=1) == 1) and np.all(minus.sum(axis=1) <= 1)):
        return None
    return _RowPlan(np.argmax(plus, axis=1), np.where(minus.any(axis=1), np.argmax(minus, 1), -1))


def _resample_bandpass_uv32(
    data_v: np.ndarray, sfreq_hz: float, cfg: PreprocessConfig, *, scratch: bool = False,
    source: str | None = None,
) -> np.ndarray:
    """Resample, then band-pass at the target rate; volts in, float32 µV out.

    Each channel's mean is taken out in float64 first and its filtered value (mean · Σ taps, ~0
    for a high-pass) added back at the end. This is exact for linear filters, and it matters:
    the polyphase sub-filters of ``resample_poly`` differ in DC gain by ~3e-5, so a 50 mV
    electrode offset would otherwise leave a ~1.5 µV ripple. Once centred, the signal is
    filtered in float32 (FFTs twice as fast) with an error ~1e-7 of its range, far below
    0.001 µV for EEG.

    data_v: (C, T) volts → (C, ceil(T · up / down)) float32 µV (see :func:`resample`).
    ``scratch``: data_v belongs to the caller's temporaries and may be overwritten (saves a
    copy). ``source``: the recording's file, named in errors.
    """
    target_hz = float(cfg.sfreq_hz)
    mean = data_v.mean(axis=1, keepdims=True)  # (C, 1) volts, float64
    centred = np.subtract(data_v, mean, out=data_v if scratch else None)
    centred = resample(centred, sfreq_hz, target_hz, padtype="antireflect", source=source)
    data_uv = np.multiply(centred, 1e6, out=np.empty(centred.shape, np.float32),
                          casting="same_kind")
    dc_gain = 1.0
    if cfg.l_freq_hz is not None or cfg.h_freq_hz is not None:
        kernel = fir_kernel(target_hz, cfg.l_freq_hz, cfg.h_freq_hz)
        data_uv = fir_zero_phase(data_uv, kernel)
        dc_gain = float(kernel.sum())
    data_uv += (mean * (1e6 * dc_gain)).astype(np.float32)
    return data_uv


def preprocess_continuous(
    rec: Recording,
    cfg: PreprocessConfig,
    *,
    target: str | Sequence[str] | None = None,
    on_unknown: str = "raise",
) -> Continuous:
    """Channel map → resample → band-pass → notch (below Nyquist only) → µV, whole recording.

    See the module docstring for why this order (resampling first) is used and how it was
    checked against filtering at the recording's own rate.

    Parameters
    ----------
    rec : Recording
        Signals in volts.
    cfg : PreprocessConfig
        Band, notch, target rate, montage.
    target : {"tcp", "monopolar", "as_is", "auto"} or list of channel names/pairs | None
        Montage; None uses ``cfg.montage``.
    on_unknown : {"raise", "drop"}
        What to do with unknown channel names (see :func:`~neuript.data.montage.build_channel_map`).

    Returns
    -------
    continuous : Continuous
        ``data`` (C, T') float32 µV at ``cfg.sfreq_hz``, ``T' = ceil(T · up / down)`` where
        ``up / down`` is the resampling factor (:func:`~neuript.data.filters.resample`).

    Raises
    ------
    ChannelError
        Unknown or missing channels, or no usable channel at all.
    """
    cmap = channel_map_for(rec, cfg.montage if target is None else target, on_unknown)
    if not cmap.names:
        raise ChannelError(rec.source, f"no usable EEG channel (read {list(rec.ch_names)})")
    used = np.abs(cmap.matrix).sum(axis=0) > 0
    clipped_src = clipped_samples(rec.data if used.all() else rec.data[used])
    plan = _row_plan(cmap.matrix)
    if plan is None:
        data = cmap.matrix @ rec.data  # (C_out, T) volts
    elif (plan.minus < 0).all() and np.array_equal(plan.plus, np.arange(rec.n_channels)):
        data = rec.data  # every channel, in order: read only below, never copied
    else:  # selections and bipolar differences, row by row: one pass, no matrix product
        data = np.empty((len(plan.plus), rec.n_samples), dtype=np.float64)
        for row, (plus, minus) in enumerate(zip(plan.plus, plan.minus)):
            if minus >= 0:
                np.subtract(rec.data[plus], rec.data[minus], out=data[row])
            else:
                data[row] = rec.data[plus]
    fs, target_hz = rec.sfreq_hz, float(cfg.sfreq_hz)
    # (C_out, T') float32 µV; ``data`` may be overwritten unless it is the recording's own array
    data_uv = _resample_bandpass_uv32(data, fs, cfg, scratch=data is not rec.data,
                                      source=rec.source)
    if cfg.notch_hz is not None and cfg.notch_hz < target_hz / 2:
        data_uv = notch(data_uv, target_hz, cfg.notch_hz).astype(np.float32)
    # else: the mains line lies above the new Nyquist and the anti-alias filter removed it
    return Continuous(
        data=data_uv,
        ch_names=cmap.names,
        positions=cmap.positions.astype(np.float32),
        sfreq_hz=target_hz,
        source=rec.source,
        subject=rec.subject,
        session=rec.session,
        events=rec.events,
        clipped=_clipped_at_target(clipped_src, fs, target_hz, data_uv.shape[1]),
        channel_map=np.asarray(cmap.matrix),
    )


@dataclass(frozen=True)
class PreparedRecording:
    """Model-ready windows of one recording (µV, not yet compressed).

    Attributes
    ----------
    windows : ndarray, shape (N, C, W), float32
        Kept windows in µV.
    starts : ndarray, shape (N,), int64
        First sample of each window in the resampled recording (trimmed edges included).
    ch_names : tuple of str, length C
    positions : ndarray, shape (C, 3), float32
    rejected : dict of str to int
        Rejected windows per reason (:data:`REJECT_REASONS`).
    duration_s : float
        Length of the source recording (s).
    source, subject, session : str, str | None, str | None
    skipped : str | None
        Why the whole recording gave no windows (too short), else None.
    """

    windows: np.ndarray
    starts: np.ndarray
    ch_names: tuple[str, ...]
    positions: np.ndarray
    rejected: dict[str, int]
    duration_s: float
    source: str = "<array>"
    subject: str | None = None
    session: str | None = None
    skipped: str | None = None


def prepare_recording(
    rec: Recording,
    cfg: PreprocessConfig,
    *,
    target: str | Sequence[str] | None = None,
    on_unknown: str = "raise",
) -> PreparedRecording:
    """Continuous preprocessing, then trim edges, cut windows and reject bad ones.

    Parameters
    ----------
    rec : Recording
        Signals in volts.
    cfg : PreprocessConfig
        The whole recipe (NEURIPT_SPEC §1).
    target, on_unknown
        As in :func:`preprocess_continuous`.

    Returns
    -------
    prepared : PreparedRecording
        Windows (N, C, W) float32 µV that passed rejection. A recording shorter than
        ``cfg.min_duration_s`` gives zero windows and ``skipped`` says why.
    """
    window, stride = cfg.window_samples, cfg.stride_samples
    if rec.duration_s < cfg.min_duration_s:
        reason = f"shorter than min_duration_s ({rec.duration_s:.1f} s < {cfg.min_duration_s} s)"
        log.info("%s: skipped, %s", rec.source, reason)
        cmap = channel_map_for(rec, cfg.montage if target is None else target, on_unknown)
        return PreparedRecording(
            np.zeros((0, len(cmap.names), window), np.float32), np.zeros(0, np.int64),
            cmap.names, cmap.positions.astype(np.float32), dict.fromkeys(REJECT_REASONS, 0),
            rec.duration_s, rec.source, rec.subject, rec.session, skipped=reason,
        )
    cont = preprocess_continuous(rec, cfg, target=target, on_unknown=on_unknown)
    trim = int(round(cfg.trim_edges_s * cont.sfreq_hz))
    n_samples = cont.data.shape[1]
    starts = sliding_starts(n_samples, window, stride, start=trim, stop=n_samples - trim)
    cut = cut_windows(cont, starts, window, cfg, rec=rec)
    skipped = None if starts.size else "no full window after trimming the edges"
    return PreparedRecording(
        windows=cut.windows,
        starts=cut.starts,
        ch_names=cont.ch_names,
        positions=cont.positions,
        rejected=cut.rejected,
        duration_s=rec.duration_s,
        source=rec.source,
        subject=rec.subject,
        session=rec.session,
        skipped=skipped,
    )
