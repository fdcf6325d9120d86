"""Zero-phase FIR filtering and polyphase resampling of (C, T) arrays, as pure functions.

The band-pass is the firwin FIR that ``mne.filter.filter_data`` designs for the rate at hand,
applied to all channels by one batched FFT convolution (equal to MNE to rounding); resampling is
``scipy.signal.resample_poly`` with its own Kaiser anti-alias filter. Nothing here mutates its
input. :mod:`neuript.data.preprocess` chains these steps into the NEURIPT_SPEC §1 pipeline.
"""

from __future__ import annotations

import functools
import logging
import math
from fractions import Fraction

import numpy as np

from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

MAX_RESAMPLE_DENOMINATOR = 1000
"""Largest denominator of the simple (cached-filter) resampling factors: 250 → 64 Hz is 32/125."""
MAX_RESAMPLE_FACTOR = 100_000
"""Largest up or down factor for rates that are not a simple fraction of the target (173.61 Hz →
64 Hz is 6400/17361); the filter then has 2·10·max(up, down) + 1 taps (at most 16 MB)."""
RESAMPLE_RATE_RTOL = 1e-5
"""Relative error allowed between the rate a large factor implies and the target rate (10 ppm:
36 ms of drift per hour, finer than the clock accuracy of EEG amplifiers); beyond it the closest
factor is used with a warning."""
RESAMPLE_MAX_RATE_ERROR = 1e-3
"""Relative rate error beyond which :func:`resample` refuses (only for ratios far beyond
1/MAX_RESAMPLE_FACTOR..MAX_RESAMPLE_FACTOR, e.g. 10 MHz → 64 Hz)."""


@functools.lru_cache(maxsize=32)
def fir_kernel(sfreq_hz: float, l_freq_hz: float | None, h_freq_hz: float | None) -> np.ndarray:
    """The zero-phase band-pass FIR that MNE designs (firwin, hamming, default transitions).

    Parameters
    ----------
    sfreq_hz : float
        Sampling rate (Hz).
    l_freq_hz, h_freq_hz : float | None
        Pass-band edges (Hz); None skips that side.

    Returns
    -------
    kernel : ndarray, shape (K,), float64
        Odd-length symmetric taps (read-only; cached per arguments: MNE's design is slow).
    """
    import mne

    kernel = mne.filter.create_filter(
        None, sfreq_hz, l_freq_hz, h_freq_hz, method="fir", phase="zero", fir_design="firwin",
        verbose="error",
    )
    kernel = np.asarray(kernel, dtype=np.float64)
    kernel.setflags(write=False)
    return kernel


def fir_zero_phase(data: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Zero-phase FIR filtering as ``mne.filter`` does it, batched over channels in one FFT.

    The signal is extended at both ends by odd reflection (``2·x[0] - x[k]``, MNE's
    ``"reflect_limited"`` pad) of ``min(K, T) - 1`` samples, convolved with the symmetric kernel
    and the group delay removed.

    Parameters
    ----------
    data : ndarray, shape (C, T)
        float32 data is filtered in float32 (twice as fast); anything else in float64.
    kernel : ndarray, shape (K,)
        Odd-length symmetric FIR taps.

    Returns
    -------
    filtered : ndarray, shape (C, T), float32 or float64
        A new array.
    """
    from scipy import fft

    dtype = np.float32 if np.asarray(data).dtype == np.float32 else np.float64
    x = np.asarray(data, dtype=dtype)
    kernel = np.asarray(kernel, dtype=dtype)
    n_taps, n_samples = kernel.size, x.shape[1]
    if n_samples == 0 or x.shape[0] == 0:
        return x.copy()
    n_edge = max(min(n_taps, n_samples) - 1, 0)
    if n_edge:
        x = np.concatenate([
            2.0 * x[:, :1] - x[:, n_edge:0:-1], x, 2.0 * x[:, -1:] - x[:, -2:-n_edge - 2:-1],
        ], axis=1)
    n_fft = fft.next_fast_len(x.shape[1] + n_taps - 1, real=True)
    spectrum = fft.rfft(x, n_fft, axis=1)
    spectrum *= fft.rfft(kernel, n_fft)
    full = fft.irfft(spectrum, n_fft, axis=1)
    shift = (n_taps - 1) // 2 + n_edge
    return np.ascontiguousarray(full[:, shift:shift + n_samples])


def bandpass(
    data: np.ndarray, sfreq_hz: float, l_freq_hz: float | None, h_freq_hz: float | None
) -> np.ndarray:
    """Zero-phase FIR band-pass: MNE ``filter_data``'s filter (firwin, default transition bands).

    The kernel is MNE's own design (:func:`fir_kernel`); it is applied to all channels at once by
    :func:`fir_zero_phase` rather than channel by channel, with the same edge padding, so the
    result equals ``mne.filter.filter_data`` to floating-point rounding.

    Parameters
    ----------
    data : ndarray, shape (C, T)
        Signals (any unit; the unit is kept).
    sfreq_hz : float
        Sampling rate (Hz).
    l_freq_hz, h_freq_hz : float | None
        Pass-band edges (Hz); None skips that side (high-pass only, low-pass only).

    Returns
    -------
    filtered : ndarray, shape (C, T), float64
        A new array.
    """
    if l_freq_hz is None and h_freq_hz is None:
        return np.array(data, dtype=np.float64)
    if h_freq_hz is not None and h_freq_hz >= sfreq_hz / 2:
        raise NeuriptError(
            f"bandpass: h_freq_hz={h_freq_hz} must be below Nyquist ({sfreq_hz / 2} Hz)"
        )
    return fir_zero_phase(data, fir_kernel(float(sfreq_hz), l_freq_hz, h_freq_hz))


def notch(data: np.ndarray, sfreq_hz: float, freq_hz: float) -> np.ndarray:
    """Zero-phase FIR notch at the mains frequency and its harmonics below Nyquist (MNE).

    Parameters
    ----------
    data : ndarray, shape (C, T)
    sfreq_hz : float
        Sampling rate (Hz).
    freq_hz : float
        Mains frequency (50 or 60 Hz). If it is at or above Nyquist nothing is done.

    Returns
    -------
    filtered : ndarray, shape (C, T), float64
        A new array.
    """
    out = np.array(data, dtype=np.float64)
    freqs = np.arange(freq_hz, sfreq_hz / 2, freq_hz)
    if freqs.size == 0:
        log.debug("notch at %s Hz skipped: at or above Nyquist of %s Hz", freq_hz, sfreq_hz)
        return out
    import mne

    return mne.filter.notch_filter(
        out, sfreq_hz, freqs, method="fir", phase="zero", fir_design="firwin", copy=False,
        verbose="error",
    )


def resample(
    data: np.ndarray, sfreq_hz: float, target_hz: float, *, padtype: str = "constant",
    source: str | None = None,
) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``) by a rational factor up/down.

    Any rate works: the factor is :func:`resample_factor`'s fraction, exact for simple ratios
    (250 → 64 Hz: 32/125) and otherwise the closest one with factors up to
    :data:`MAX_RESAMPLE_FACTOR` (173.61 → 64 Hz: 6400/17361). If that fraction is more than
    :data:`RESAMPLE_RATE_RTOL` (10 ppm) off ``target_hz / sfreq_hz``, it is still used and one
    warning names the file and the rate error (the output then drifts by that fraction of its
    duration); beyond :data:`RESAMPLE_MAX_RATE_ERROR` (0.1 %, only for ratios far outside
    1/100000..100000) it is refused, naming the file.

    Parameters
    ----------
    data : ndarray, shape (C, T)
    sfreq_hz : float
        Source rate (Hz), finite and > 0.
    target_hz : float
        Target rate (Hz), finite and > 0.
    padtype : str
        How the signal is extended beyond its ends for the anti-alias filter
        (``resample_poly``'s ``padtype``): ``"constant"`` (zeros) or ``"antireflect"`` (odd
        reflection, no edge step; used by the pipeline).
    source : str | None
        The recording's file, named in errors and warnings.

    Returns
    -------
    resampled : ndarray, shape (C, ceil(T * up / down)), float64
        A new array; ``up / down`` equals ``target_hz / sfreq_hz`` within the tolerance above,
        so the length is ``T * target_hz / sfreq_hz`` rounded up.
    """
    from scipy.signal import resample_poly

    where = f"{source}: " if source else ""
    out = np.asarray(data, dtype=np.float64)
    if not all(math.isfinite(f) and f > 0 for f in (sfreq_hz, target_hz)):
        raise NeuriptError(
            f"{where}resample: rates must be finite and > 0, got {sfreq_hz} Hz → {target_hz} Hz; "
            "check the file's sampling rate or set sfreq_hz"
        )
    if sfreq_hz == target_hz:
        return out.copy()
    up, down = resample_factor(sfreq_hz, target_hz)
    rate_error = abs(up * sfreq_hz / (down * target_hz) - 1)
    if rate_error > RESAMPLE_MAX_RATE_ERROR:
        raise NeuriptError(
            f"{where}resample: {sfreq_hz} Hz → {target_hz} Hz has no factor up/down with "
            f"up, down <= {MAX_RESAMPLE_FACTOR} within {RESAMPLE_MAX_RATE_ERROR:.1%} (best "
            f"{up}/{down}); set sfreq_hz closer to the recording's rate"
        )
    if rate_error > RESAMPLE_RATE_RTOL:
        log.warning("%sresampling %s Hz → %s Hz by %d/%d, %.1f ppm off the target rate "
                    "(%.0f ms of drift per hour)", where, sfreq_hz, target_hz, up, down,
                    rate_error * 1e6, rate_error * 3.6e6)
    if max(up, down) <= MAX_RESAMPLE_DENOMINATOR:
        kernel = _antialias_kernel(up, down)
    else:
        kernel = _design_antialias(up, down)  # long (2·10·max + 1 taps): not cached
    return resample_poly(out, up, down, axis=-1, window=kernel, padtype=padtype)


def resample_factor(sfreq_hz: float, target_hz: float) -> tuple[int, int]:
    """The coprime ``(up, down)`` that :func:`resample` uses.

    Parameters
    ----------
    sfreq_hz, target_hz : float
        Source and target rates (Hz), > 0.

    Returns
    -------
    up, down : int
        The simplest fraction with ``down <= MAX_RESAMPLE_DENOMINATOR`` (1000) within 1e-6 of
        ``target_hz / sfreq_hz`` (its filter is cached); otherwise the closest fraction with
        ``up, down <= MAX_RESAMPLE_FACTOR``; ``(0, 1)`` when the ratio is beyond that range.
    """
    ratio = target_hz / sfreq_hz
    simple = Fraction(ratio).limit_denominator(MAX_RESAMPLE_DENOMINATOR)
    if simple > 0 and abs(float(simple) / ratio - 1) <= 1e-6:
        return simple.numerator, simple.denominator
    # bound the larger of up and down: for upsampling, approximate the inverse ratio
    best = Fraction(min(ratio, 1 / ratio)).limit_denominator(MAX_RESAMPLE_FACTOR)
    if best == 0:
        return 0, 1
    return (best.numerator, best.denominator) if ratio < 1 else (best.denominator, best.numerator)


@functools.lru_cache(maxsize=32)
def _antialias_kernel(up: int, down: int) -> np.ndarray:
    """:func:`_design_antialias`, designed once per (small) factor."""
    return _design_antialias(up, down)


def _design_antialias(up: int, down: int) -> np.ndarray:
    """``resample_poly``'s own default low-pass (Kaiser β = 5, cutoff at the lower Nyquist).

    up, down: coprime factors. Returns (2·10·max(up, down) + 1,), read-only.
    """
    from scipy.signal import firwin

    max_rate = max(up, down)
    kernel = firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    kernel.setflags(write=False)
    return kernel
