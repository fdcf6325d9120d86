"""Subject-wise normalisation: gains per (subject, channel[, frequency]) from unlabelled windows.

Between people the same electrode records very different amplitudes (skull thickness, electrode
impedance, the amplifier), and a classifier trained on some subjects then reads a new subject's
overall power as evidence for a class. On MentalArithmetic this shift, not the features, is most
of the error of every model here (docs/recipe.md, "Fifth pass"). The remedy used across the
cross-subject EEG literature is to normalise each subject by statistics of its own recordings;
this module offers two (:data:`SubjectNorm`):

``channel_std``
    every channel of a group is multiplied by one gain so that the median over the group's
    windows of that channel's standard deviation becomes ``target_std_uv``; spectra keep their
    shape.
``spectral``
    every channel of a group is filtered so that its average power spectrum over the group's
    windows (log periodogram, smoothed over ``SMOOTH_HZ``) becomes the fixed reference
    :func:`reference_power` (shape ``1 / max(f, REFERENCE_FLOOR_HZ)``, level such that a
    window with that spectrum has standard deviation ``target_std_uv``): per-person differences
    in each band's power go, within-person changes between windows stay. It is the input-side
    version of centring each subject's log band powers. (A further per-channel
    ``channel_std`` step after it cost band power + LR 4 points on MentalArithmetic's CV,
    79.8 → 75.8 in an ad-hoc run: the median window std and the mean spectrum weigh a
    subject's states differently, so it was left out.) Windows are filtered one at a time in
    the frequency domain (``rfft`` × gain, ``irfft``): a gain per rfft bin of the window length.

It is **transductive** for the subjects it is applied to: the gains come from their unlabelled
windows (all of them, every class), as a calibration recording would in a BCI session. The gains
never depend on labels; :func:`check_within_subject` reads them only to refuse a task whose
label is the person.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from neuript.config import InputContract, SubjectNorm
from neuript.errors import NeuriptError

__all__ = ["DEFAULT_TARGET_STD_UV", "REFERENCE_FLOOR_HZ", "SMOOTH_HZ", "GroupGains",
           "SubjectNorm", "apply_gains", "check_within_subject", "group_gains",
           "normalize_groups", "normalize_task", "reference_power"]

DEFAULT_TARGET_STD_UV: float = InputContract.subject_norm_uv
"""10 µV: the median per-window channel standard deviation after normalisation, the size of
ordinary scalp EEG, so the A-law (linear below 4 µV) sees amplitudes like a raw recording's."""

REFERENCE_FLOOR_HZ = 1.0
"""``spectral``: the reference spectrum is ``1 / max(f, REFERENCE_FLOOR_HZ)`` (flat below it)."""

SMOOTH_HZ = 2.0
"""``spectral``: width (Hz) of the moving average over a group's log periodogram."""


class GroupGains(NamedTuple):
    """What :func:`group_gains` returns."""

    groups: np.ndarray
    """shape (G,), the distinct group names, sorted."""
    gains: np.ndarray
    """shape (G, C, F), float64: the factor of each group's channel, one per channel (F = 1,
    ``channel_std``) or one per rfft bin of the window (F = T // 2 + 1, ``spectral``)."""


def _check(signals_uv: np.ndarray, groups: np.ndarray, target_std_uv: float) -> None:
    if signals_uv.ndim != 3 or len(groups) != len(signals_uv):
        raise NeuriptError(f"signals_uv must be (N, C, T) with one group per window; got "
                           f"{signals_uv.shape} and {len(groups)} groups")
    if not target_std_uv > 0:
        raise NeuriptError(f"target_std_uv must be > 0, got {target_std_uv!r}")


def _std_gains(stds: np.ndarray, target_std_uv: float) -> np.ndarray:
    """(C,) ``target / median std`` over windows (N, C); 1 where the median is 0 (flat)."""
    median = np.median(stds, axis=0)
    out = np.ones_like(median)
    ok = median > 0
    out[ok] = target_std_uv / median[ok]
    return out


def _band_bins(freqs: np.ndarray, band_hz: tuple[float | None, float | None]) -> np.ndarray:
    """Boolean (F,): the bins inside the recording's pass band (never the DC bin)."""
    low, high = band_hz
    inside = freqs > 0
    if low is not None:
        inside &= freqs >= low
    if high is not None:
        inside &= freqs <= high
    if not inside.any():
        raise NeuriptError(f"no frequency bin of a {len(freqs)}-bin window spectrum lies in "
                           f"the pass band {band_hz} Hz")
    return inside


def reference_power(n_times: int, sfreq_hz: float, target_std_uv: float,
                    band_hz: tuple[float | None, float | None] = (None, None)) -> np.ndarray:
    """The ``spectral`` reference: ``|rfft|²`` (µV², shape (T // 2 + 1,)) ∝ 1/max(f, floor).

    Its level makes a window with exactly this periodogram inside ``band_hz`` (and nothing
    outside) have standard deviation ``target_std_uv`` (Parseval).
    """
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq_hz)
    shape = 1.0 / np.maximum(freqs, REFERENCE_FLOOR_HZ)
    weight = np.where(_band_bins(freqs, band_hz), 2.0, 0.0)
    if n_times % 2 == 0:
        weight[-1] /= 2
    variance = float((weight * shape).sum()) / n_times**2
    return shape * target_std_uv**2 / variance


def _spectral_gains(signals_uv: np.ndarray, sfreq_hz: float, target_std_uv: float,
                    band_hz: tuple[float | None, float | None]) -> np.ndarray:
    """(C, F) gains taking the windows' mean smoothed log periodogram to the reference inside
    the pass band; outside it every bin keeps the gain of the nearest in-band bin (the stop
    band is not lifted to 1/f)."""
    from scipy.ndimage import uniform_filter1d

    n_times = signals_uv.shape[-1]
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq_hz)
    power = np.abs(np.fft.rfft(signals_uv.astype(np.float64), axis=-1)) ** 2  # (N, C, F)
    mean = power.mean(axis=0)  # (C, F)
    floor = max(float(mean.max()) * 1e-12, 1e-30)
    width = max(1, int(round(SMOOTH_HZ / freqs[1]))) if len(freqs) > 1 else 1
    smooth = uniform_filter1d(np.log(np.maximum(mean, floor)), width, axis=-1, mode="nearest")
    reference = np.log(reference_power(n_times, sfreq_hz, target_std_uv, band_hz))
    gains = np.exp(0.5 * (reference[None, :] - smooth))
    inside = np.flatnonzero(_band_bins(freqs, band_hz))
    nearest = inside[np.clip(np.searchsorted(inside, np.arange(len(freqs))), 0, len(inside) - 1)]
    below = np.arange(len(freqs)) < inside[0]
    nearest[below] = inside[0]
    gains = gains[:, nearest]
    gains[mean.max(axis=1) <= floor] = 1.0  # a flat channel stays flat
    return gains


def apply_gains(signals_uv: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Multiply windows by gains (see :class:`GroupGains`).

    Parameters
    ----------
    signals_uv : ndarray, shape (N, C, T), µV
    gains : ndarray, shape (N, C, F) or (C, F)
        F = 1 scales in time; F = T // 2 + 1 multiplies each window's rfft.

    Returns
    -------
    out : ndarray, shape (N, C, T), the dtype of ``signals_uv`` (a new array)
    """
    gains = np.asarray(gains, dtype=np.float64)
    n_bins = gains.shape[-1]
    if n_bins == 1:
        return (signals_uv * gains).astype(signals_uv.dtype, copy=False)
    n_times = signals_uv.shape[-1]
    if n_bins != n_times // 2 + 1:
        raise NeuriptError(f"gains have {n_bins} frequency bins; windows of {n_times} samples "
                           f"need {n_times // 2 + 1} (gains are computed for the window length)")
    spectrum = np.fft.rfft(signals_uv.astype(np.float64), axis=-1) * gains
    return np.fft.irfft(spectrum, n=n_times, axis=-1).astype(signals_uv.dtype, copy=False)


def group_gains(signals_uv: np.ndarray, groups: np.ndarray, method: SubjectNorm = "channel_std",
                target_std_uv: float = DEFAULT_TARGET_STD_UV, *, sfreq_hz: float | None = None,
                band_hz: tuple[float | None, float | None] = (None, None)) -> GroupGains:
    """The gains of every group (see the module docs for the two methods).

    Parameters
    ----------
    signals_uv : ndarray, shape (N, C, T), µV
    groups : ndarray, shape (N,)
        The group of every window (a subject, a recording).
    method : {"channel_std", "spectral"}
    target_std_uv : float
        The median channel standard deviation after normalisation.
    sfreq_hz : float | None
        Sampling rate (``spectral`` only).
    band_hz : (float | None, float | None)
        The recordings' pass band (``spectral`` only; None: DC / Nyquist): the spectrum is
        equalised inside it only.

    Returns
    -------
    GroupGains
        A channel flat in most of its group's windows gets gain 1: it stays flat rather than
        being blown up.
    """
    signals_uv = np.asarray(signals_uv)
    _check(signals_uv, groups, target_std_uv)
    if method not in ("channel_std", "spectral"):
        raise NeuriptError(f"subject_norm must be one of ('none', 'channel_std', 'spectral'), "
                           f"got {method!r}")
    if method == "spectral" and not (sfreq_hz or 0) > 0:
        raise NeuriptError(f"subject_norm='spectral' needs sfreq_hz > 0, got {sfreq_hz!r}")
    groups = np.asarray(groups).astype(str)
    names = np.unique(groups)
    n_bins = 1 if method == "channel_std" else signals_uv.shape[-1] // 2 + 1
    gains = np.ones((len(names), signals_uv.shape[1], n_bins))
    for g, name in enumerate(names):
        rows = signals_uv[groups == name]
        if method == "spectral":
            assert sfreq_hz is not None
            gains[g] = _spectral_gains(rows, sfreq_hz, target_std_uv, band_hz)
        else:
            gains[g, :, 0] = _std_gains(rows.std(axis=-1, dtype=np.float64), target_std_uv)
    return GroupGains(names, gains)


def normalize_groups(signals_uv: np.ndarray, groups: np.ndarray,
                     method: SubjectNorm = "channel_std",
                     target_std_uv: float = DEFAULT_TARGET_STD_UV, *,
                     sfreq_hz: float | None = None,
                     band_hz: tuple[float | None, float | None] = (None, None)) -> np.ndarray:
    """Apply every group's :func:`group_gains` to its windows.

    Parameters
    ----------
    signals_uv : ndarray, shape (N, C, T), µV
    groups : ndarray, shape (N,)
    method, target_std_uv, sfreq_hz, band_hz
        As in :func:`group_gains`.

    Returns
    -------
    normalized : ndarray, shape (N, C, T), the dtype of ``signals_uv``
        A new array; the input is not modified.
    """
    names, gains = group_gains(signals_uv, groups, method, target_std_uv, sfreq_hz=sfreq_hz,
                               band_hz=band_hz)
    row = np.searchsorted(names, np.asarray(groups).astype(str))
    return apply_gains(signals_uv, gains[row])


MIN_MIXED_SHARE = 0.5
"""``check_within_subject`` refuses when fewer training subjects than this share hold two or
more classes."""


def check_within_subject(labels: np.ndarray, subjects: np.ndarray, where: str = "task") -> None:
    """Refuse subject-wise normalisation on a task whose label is a property of the subject.

    Normalising a subject removes that subject's average spectrum; when every subject holds one
    class (patients vs controls, ADHD, abnormal EEG) that average *is* the label. On the ADHD
    task band power + LR fell from 66.2 to 59.0 balanced accuracy with ``spectral``.

    Parameters
    ----------
    labels, subjects : ndarray, shape (N,)
        The training windows' labels and subjects.
    where : str
        Named in the message.

    Raises
    ------
    NeuriptError
        When fewer than :data:`MIN_MIXED_SHARE` of the subjects hold two or more classes.
    """
    subjects = np.asarray(subjects).astype(str)
    names = np.unique(subjects)
    mixed = sum(len(np.unique(labels[subjects == name])) > 1 for name in names)
    if len(names) and mixed < MIN_MIXED_SHARE * len(names):
        raise NeuriptError(
            f"{where}: subject_norm needs subjects recorded in more than one class, but only "
            f"{mixed} of {len(names)} training subjects are; normalising each subject would "
            "remove the between-subject differences that carry this label; use "
            "--subject_norm none")


def normalize_task(task, method: SubjectNorm, target_std_uv: float = DEFAULT_TARGET_STD_UV):
    """Return ``task`` with every subject's windows normalised (``method="none"``: unchanged).

    Parameters
    ----------
    task : TaskWindows
    method : SubjectNorm
    target_std_uv : float

    Returns
    -------
    task : TaskWindows
        A new object (signals replaced) unless ``method == "none"``.

    Raises
    ------
    NeuriptError
        The task's label is a property of its subjects (:func:`check_within_subject`).
    """
    if method == "none":
        return task
    train = task.indices("train")
    check_within_subject(task.labels[train], task.subjects[train], task.name)
    pre = task.preprocess
    return replace(task, signals=normalize_groups(
        task.signals, task.subjects, method, target_std_uv, sfreq_hz=float(pre.sfreq_hz),
        band_hz=(pre.l_freq_hz, pre.h_freq_hz)))
