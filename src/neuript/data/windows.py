"""Window cutting and screening: the one path from a preprocessed recording to windows.

Every caller that turns a :class:`~neuript.data.preprocess.Continuous` into windows (the corpus
writer's :func:`~neuript.data.preprocess.prepare_recording`, the registry tasks, the manifest /
array / BIDS / ``mne.Epochs`` tasks, ``predict``) chooses *where* windows start with
:func:`sliding_starts` or :func:`event_starts`, then calls :func:`cut_windows`, which gathers
them and applies the one rejection rule.

The rule (:func:`cut_windows`): a window with a non-finite value is always dropped (counted as
``"nan"``); when the config sets ``reject_abs_uv`` or ``flat_std_uv`` (the pretraining corpus;
the downstream protocols set neither and keep every window), windows are also dropped for
clipping, for a flat channel (derived, or a recorded electrode the montage uses) and for
amplitude. Each rejected window is counted under the **first** reason that applies, in the
order of :data:`REJECT_REASONS`: ``"nan"``, ``"clipped"`` (the window overlaps samples where a
used channel sat at its recording's exact minimum or maximum for
:data:`~neuript.data.preprocess.CLIP_MIN_RUN` or more consecutive samples), ``"flat"`` (a
channel's std below ``flat_std_uv``), ``"amplitude"`` (any |x| above ``reject_abs_uv``). The
counts therefore add up to the number of rejected windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from neuript.errors import NeuriptError

if TYPE_CHECKING:
    from neuript.config import PreprocessConfig
    from neuript.data.preprocess import Continuous
    from neuript.data.recording import Recording

REJECT_REASONS: tuple[str, ...] = ("nan", "clipped", "flat", "amplitude")


# --------------------------------------------------------------------------------------------
# where windows start
# --------------------------------------------------------------------------------------------
def sliding_starts(n_samples: int, window: int, stride: int, *, start: int = 0,
                   stop: int | None = None) -> np.ndarray:
    """First samples of back-to-back (or ``stride``-spaced) windows inside ``[start, stop)``.

    Parameters
    ----------
    n_samples : int
        Length of the signal (samples).
    window, stride : int
        Window length and step (samples, both >= 1).
    start, stop : int, int | None
        The span to cut (samples); ``stop`` None: the end. Clipped to the signal; a negative
        ``start`` keeps its grid (the first window starts at the first grid point >= 0).

    Returns
    -------
    starts : ndarray, shape (N,), int64
        ``start, start + stride, …`` for every window that ends at or before ``stop``.
    """
    if window < 1 or stride < 1:
        raise NeuriptError(f"windows: window and stride must be >= 1 sample, got {window}, "
                           f"{stride}")
    lo = int(start)
    if lo < 0:  # the grid stays anchored at ``start``: its first point inside the signal
        lo += -(lo // stride) * stride
    hi = n_samples if stop is None else min(int(stop), n_samples)
    return np.arange(lo, hi - window + 1, stride, dtype=np.int64)


def event_starts(onsets_s: np.ndarray, offset_s: float, sfreq_hz: float, n_samples: int,
                 window: int) -> tuple[np.ndarray, np.ndarray]:
    """First samples of one window per event, ``offset_s`` after (before, if < 0) each onset.

    Parameters
    ----------
    onsets_s : ndarray, shape (N,)
        Event onsets (s from the first sample).
    offset_s : float
        Window start relative to the onset (s).
    sfreq_hz : float
        Rate of the signal the windows are cut from.
    n_samples, window : int
        Signal and window length (samples).

    Returns
    -------
    starts : ndarray, shape (N_valid,), int64
        Starts of the events whose window lies inside the signal.
    valid : ndarray, shape (N,), bool
        Which events gave a window.
    """
    onsets = np.asarray(onsets_s, dtype=np.float64).reshape(-1)
    starts = np.rint((onsets + offset_s) * sfreq_hz).astype(np.int64)
    valid = (starts >= 0) & (starts + window <= n_samples)
    return starts[valid], valid


# --------------------------------------------------------------------------------------------
# gathering and screening
# --------------------------------------------------------------------------------------------
def gather_windows(data: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Copy the windows ``data[:, s:s + window]`` for every start.

    Parameters
    ----------
    data : ndarray, shape (C, T)
    starts : ndarray, shape (N,), int
        Each in ``[0, T - window]``.
    window : int
        Window length (samples).

    Returns
    -------
    windows : ndarray, shape (N, C, window)
        A new contiguous array of ``data``'s dtype.
    """
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    n_channels, n_samples = data.shape
    if starts.size == 0:
        return np.zeros((0, n_channels, window), dtype=data.dtype)
    if starts.min() < 0 or starts.max() + window > n_samples:
        raise NeuriptError(f"windows: starts {int(starts.min())}..{int(starts.max())} with "
                           f"{window}-sample windows leave a {n_samples}-sample signal")
    first = int(starts[0])
    if np.array_equal(starts, first + window * np.arange(starts.size)):  # back to back: reshape
        block = data[:, first:first + starts.size * window]
        return np.ascontiguousarray(
            block.reshape(n_channels, starts.size, window).transpose(1, 0, 2))
    view = np.lib.stride_tricks.sliding_window_view(data, window, axis=1)  # (C, T-W+1, W)
    return np.ascontiguousarray(view[:, starts].transpose(1, 0, 2))


def window_flags(mask: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(N,) True where a (T,) sample mask has any True inside ``[start, start + window)``."""
    cum = np.concatenate([[0], np.cumsum(np.asarray(mask, dtype=bool), dtype=np.int64)])
    return (cum[starts + window] - cum[starts]) > 0


FLAT_REPORT_UV: float = 0.1
"""Where runs that keep every window (predict, stream, the task checks) call a channel or an
electrode flat: a standard deviation below this (µV), the corpus's default ``flat_std_uv``."""


class WindowProblems(NamedTuple):
    """What is wrong with each window of a run that keeps every window (predict, stream).

    Attributes
    ----------
    nan : ndarray, shape (N,), bool
        A sample is not finite.
    flat : ndarray, shape (N, C), bool
        The model channels whose standard deviation in the window is below the flat level.
    flat_electrodes : ndarray, shape (N, E), bool
        The recorded electrodes flat inside the window (before the montage derivation).
    clipped : ndarray, shape (N,), bool
        The window holds clipped samples.
    ch_names, electrode_names : tuple of str, lengths C and E
    """

    nan: np.ndarray
    flat: np.ndarray
    flat_electrodes: np.ndarray
    clipped: np.ndarray
    ch_names: tuple[str, ...]
    electrode_names: tuple[str, ...]

    def suspect(self) -> np.ndarray:
        """shape (N,), bool: the windows with any problem."""
        return self.nan | self.flat.any(axis=1) | self.flat_electrodes.any(axis=1) | self.clipped

    def words(self) -> np.ndarray:
        """shape (N,), str: ``""`` for a clean window, else ``"; "``-joined parts among
        ``"nan"``, ``"flat O1, T7"`` (the flat channels), ``"flat electrode EEG O1"`` and
        ``"clipped"``."""
        names = np.asarray(self.ch_names, dtype=object)
        e_names = np.asarray(self.electrode_names, dtype=object)
        out = np.full(len(self.nan), "", dtype=object)
        for i in np.flatnonzero(self.suspect()):
            parts = ["nan"] if self.nan[i] else []
            if self.flat[i].any():
                parts.append("flat " + ", ".join(names[self.flat[i]]))
            if self.flat_electrodes[i].any():
                parts.append("flat electrode " + ", ".join(e_names[self.flat_electrodes[i]]))
            if self.clipped[i]:
                parts.append("clipped")
            out[i] = "; ".join(parts)
        return out.astype(str)

    def counts(self) -> dict[str, Any]:
        """``windows_with_problems``, ``nan`` and ``clipped`` window counts, and
        ``flat_channels``: windows per flat channel or electrode name, most first."""
        flat = dict(zip(self.ch_names, self.flat.sum(axis=0).tolist()))
        for name, k in zip(self.electrode_names, self.flat_electrodes.sum(axis=0).tolist()):
            flat[name] = flat.get(name, 0) + k
        return {"windows_with_problems": int(self.suspect().sum()),
                "nan": int(self.nan.sum()), "clipped": int(self.clipped.sum()),
                "flat_channels": dict(sorted(((n, int(k)) for n, k in flat.items() if k),
                                             key=lambda kv: (-kv[1], kv[0])))}


def window_problems(windows_uv: np.ndarray, ch_names: Sequence[str], *,
                    clipped: np.ndarray | None = None, flat_std_uv: float | None = FLAT_REPORT_UV,
                    electrodes: tuple[Sequence[str], np.ndarray] | None = None) -> WindowProblems:
    """What is wrong with each window, for runs that keep every window (predict, stream).

    Parameters
    ----------
    windows_uv : ndarray, shape (N, C, T)
        µV windows, before any compression.
    ch_names : sequence of str, length C
    clipped : ndarray, shape (N,), bool | None
        Windows holding clipped samples (:func:`window_flags` of ``Continuous.clipped``).
    flat_std_uv : float | None
        A channel whose standard deviation in the window is below this (µV) is flat; None
        skips the channel test (the electrodes are the channels, as in ``stream``).
    electrodes : (names (E,), flat (N, E) bool) | None
        Recorded electrodes flat inside each window before the montage derivation
        (:func:`flat_electrodes_by_window`): a dead electrode of a bipolar pair leaves the
        pair carrying the other electrode, which the channel test cannot see.

    Returns
    -------
    problems : WindowProblems
        ``.words()`` is the ``quality`` column, ``.counts()`` its summary.
    """
    windows_uv = np.asarray(windows_uv)
    n = len(windows_uv)
    finite = np.isfinite(windows_uv).all(axis=2)  # (N, C)
    flat = (np.zeros(finite.shape, bool) if flat_std_uv is None else
            (np.nan_to_num(windows_uv).std(axis=2) < flat_std_uv) & finite)  # (N, C)
    return WindowProblems(
        nan=~finite.all(axis=1), flat=flat,
        flat_electrodes=(np.asarray(electrodes[1], bool) if electrodes
                         else np.zeros((n, 0), bool)),
        clipped=np.zeros(n, bool) if clipped is None else np.asarray(clipped, bool),
        ch_names=tuple(ch_names), electrode_names=tuple(electrodes[0]) if electrodes else ())


class Rejection(NamedTuple):
    """Which windows survive, and why the others did not.

    Attributes
    ----------
    keep : ndarray, shape (N,), bool
    counts : dict of str to int
        Rejected windows per reason (:data:`REJECT_REASONS`, every key present).
    """

    keep: np.ndarray
    counts: dict[str, int]


def reject_windows(
    windows_uv: np.ndarray,
    reject_abs_uv: float | None,
    flat_std_uv: float | None,
    *,
    clipped: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> Rejection:
    """Flag windows with NaN, clipping, a flat channel or an excessive amplitude.

    Parameters
    ----------
    windows_uv : ndarray, shape (N, C, W)
        Windows in µV.
    reject_abs_uv : float | None
        Reject if any |x| exceeds this (µV); None disables.
    flat_std_uv : float | None
        Reject if any channel's std is below this (µV); None disables.
    clipped : ndarray, shape (N,), bool | None
        Windows already known to overlap clipped samples (see :func:`clipped_samples`).
    flat : ndarray, shape (N,), bool | None
        Windows where a recorded electrode is flat before the montage derivation (see
        :func:`flat_electrode_windows`); counted as ``"flat"``.

    Returns
    -------
    rejection : Rejection
        ``keep`` (N,) and per-reason counts; each window counted once, under its first reason.
    """
    n = windows_uv.shape[0]
    reasons = {reason: np.zeros(n, dtype=bool) for reason in REJECT_REASONS}
    finite = np.isfinite(windows_uv).all(axis=(1, 2))
    reasons["nan"] = ~finite
    if clipped is not None:
        reasons["clipped"] = np.asarray(clipped, dtype=bool).reshape(n)
    safe = np.where(np.isfinite(windows_uv), windows_uv, 0.0) if not finite.all() else windows_uv
    if flat_std_uv is not None:
        reasons["flat"] = (safe.std(axis=2) < flat_std_uv).any(axis=1)
    if flat is not None:
        reasons["flat"] |= np.asarray(flat, dtype=bool).reshape(n)
    if reject_abs_uv is not None:
        reasons["amplitude"] = (np.abs(safe) > reject_abs_uv).any(axis=(1, 2))
    keep = np.ones(n, dtype=bool)
    counts = {}
    for reason in REJECT_REASONS:
        hit = reasons[reason] & keep
        counts[reason] = int(hit.sum())
        keep &= ~hit
    return Rejection(keep, counts)


def flat_electrode_windows(rec: Recording, matrix: np.ndarray, starts: np.ndarray, window: int,
                           sfreq_hz: float, flat_std_uv: float) -> np.ndarray:
    """(N,) True where an electrode the montage uses is flat inside a window, before derivation
    (:func:`flat_electrodes_by_window`, any electrode)."""
    return flat_electrodes_by_window(rec, matrix, starts, window, sfreq_hz,
                                     flat_std_uv).any(axis=1)


def flat_electrodes_by_window(rec: Recording, matrix: np.ndarray, starts: np.ndarray,
                              window: int, sfreq_hz: float, flat_std_uv: float) -> np.ndarray:
    """(N, E) True where electrode e, used by the montage, is flat inside window n.

    A bipolar pair with one dead electrode is the other electrode's signal, so the flat test on
    derived channels never sees it. This test runs on the recorded electrodes at their own
    rate, unfiltered (centred, µV): a band-pass only removes power, so an electrode flat here
    is flat after filtering too.

    Parameters
    ----------
    rec : Recording
        Source electrodes (E, T_src) in volts.
    matrix : ndarray, shape (C, E)
        The channel map; electrodes with a non-zero column are checked.
    starts : ndarray, shape (N,), int64
        Window starts at ``sfreq_hz`` (the preprocessed rate).
    window : int
        Window length in samples at ``sfreq_hz``.
    sfreq_hz : float
        The preprocessed rate.
    flat_std_uv : float
        Threshold on each electrode's std within the window (µV).
    """
    used = np.flatnonzero(np.abs(matrix).sum(axis=0) > 0)
    flat = np.zeros((starts.size, rec.n_channels), dtype=bool)
    if used.size == 0 or starts.size == 0:
        return flat
    ratio = rec.sfreq_hz / sfreq_hz
    n_src = rec.data.shape[1]
    lo = np.clip(np.floor(starts * ratio).astype(np.int64), 0, n_src)
    hi = np.clip(np.ceil((starts + window) * ratio).astype(np.int64), 0, n_src)
    n = np.maximum(hi - lo, 1)  # (N,)
    for e in used:  # one electrode at a time: memory O(T_src), not O(E · T_src)
        x = np.nan_to_num(rec.data[e] * 1e6)  # (T_src,) µV; NaN windows fail the NaN test
        x -= x.mean()
        c1 = np.concatenate([[0.0], np.cumsum(x)])
        c2 = np.concatenate([[0.0], np.cumsum(x * x)])
        mean = (c1[hi] - c1[lo]) / n
        var = np.maximum((c2[hi] - c2[lo]) / n - mean * mean, 0.0)
        flat[:, e] = np.sqrt(var) < flat_std_uv
    return flat


class Windows(NamedTuple):
    """The windows :func:`cut_windows` kept.

    Attributes
    ----------
    windows : ndarray, shape (N_kept, C, W), float32
        µV.
    starts : ndarray, shape (N_kept,), int64
        First sample of each kept window.
    keep : ndarray, shape (N,), bool
        Which of the requested starts were kept (to select their labels).
    rejected : dict of str to int
        Dropped windows per reason (:data:`REJECT_REASONS`, every key present).
    """

    windows: np.ndarray
    starts: np.ndarray
    keep: np.ndarray
    rejected: dict[str, int]


def screens(cfg: PreprocessConfig) -> bool:
    """Whether ``cfg`` asks for rejection beyond non-finite values (either threshold set)."""
    return cfg.reject_abs_uv is not None or cfg.flat_std_uv is not None


def cut_windows(
    cont: Continuous,
    starts: np.ndarray,
    window: int,
    cfg: PreprocessConfig | None,
    *,
    rec: Recording | None = None,
) -> Windows:
    """Gather the windows at ``starts`` and drop those the one rejection rule flags.

    Parameters
    ----------
    cont : Continuous
        The preprocessed recording (its ``clipped`` mask and ``channel_map`` are used).
    starts : ndarray, shape (N,), int
        Window starts in ``cont``'s samples (:func:`sliding_starts`, :func:`event_starts`).
    window : int
        Window length (samples at ``cont.sfreq_hz``).
    cfg : PreprocessConfig | None
        The rejection thresholds (module docstring). None: nothing is screened, every window
        is kept (``predict``, whose rows must match the requested windows).
    rec : Recording | None
        The source recording, for the flat test on recorded electrodes before the montage
        derivation (:func:`flat_electrode_windows`); None skips that test.

    Returns
    -------
    windows : Windows
    """
    starts = np.asarray(starts, dtype=np.int64).reshape(-1)
    windows = gather_windows(cont.data, starts, window).astype(np.float32, copy=False)
    if cfg is None or starts.size == 0:
        return Windows(windows, starts, np.ones(starts.size, dtype=bool),
                       dict.fromkeys(REJECT_REASONS, 0))
    full = screens(cfg)
    clipped = (window_flags(cont.clipped, starts, window)
               if full and cont.clipped is not None else None)
    flat = None
    if full and cfg.flat_std_uv is not None and rec is not None and cont.channel_map is not None:
        flat = flat_electrode_windows(rec, cont.channel_map, starts, window, cont.sfreq_hz,
                                      cfg.flat_std_uv)
    rejection = reject_windows(windows, cfg.reject_abs_uv, cfg.flat_std_uv, clipped=clipped,
                               flat=flat)
    keep = np.asarray(rejection.keep, dtype=bool)
    return Windows(windows[keep], starts[keep], keep, rejection.counts)
