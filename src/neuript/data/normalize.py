"""Subject-wise amplitude normalisation: one gain per (group, channel), from unlabelled windows.

Between people the same electrode records very different amplitudes (skull thickness, electrode
impedance, the amplifier), and a classifier trained on some subjects then reads a new subject's
overall power as evidence for a class. On MentalArithmetic this shift, not the features, is most
of the error of every model here (docs/recipe.md, "Fifth pass"). The remedy used across the
cross-subject EEG literature is to normalise each subject by statistics of its own recordings;
this module does the simplest version that keeps spectra intact: every channel of a group is
multiplied by one gain so that the median over the group's windows of that channel's standard
deviation becomes ``target_std_uv``.

It is **transductive** for the subjects it is applied to: the gains come from their unlabelled
windows (all of them, every class), as a calibration recording would in a BCI session. It never
reads labels. Options are named by :data:`SubjectNorm`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np

from neuript.config import InputContract, SubjectNorm
from neuript.errors import NeuriptError

__all__ = ["DEFAULT_TARGET_STD_UV", "GroupGains", "SubjectNorm", "group_channel_gains",
           "normalize_groups", "normalize_task"]

DEFAULT_TARGET_STD_UV: float = InputContract.subject_norm_uv
"""10 µV: the median per-window channel standard deviation after normalisation, the size of
ordinary scalp EEG, so the A-law (linear below 4 µV) sees amplitudes like a raw recording's."""


class GroupGains(NamedTuple):
    """What :func:`group_channel_gains` returns."""

    groups: np.ndarray
    """shape (G,), the distinct group names, sorted."""
    gains: np.ndarray
    """shape (G, C), float64, the factor each group's channel is multiplied by."""


def group_channel_gains(signals_uv: np.ndarray, groups: np.ndarray,
                        target_std_uv: float = DEFAULT_TARGET_STD_UV) -> GroupGains:
    """One gain per (group, channel): ``target_std_uv / median over the group's windows of std``.

    Parameters
    ----------
    signals_uv : ndarray, shape (N, C, T), µV
    groups : ndarray, shape (N,)
        The group of every window (a subject, a recording).
    target_std_uv : float
        The median channel standard deviation after normalisation.

    Returns
    -------
    GroupGains
        A channel whose median standard deviation is 0 (flat in most of its group's windows)
        gets gain 1: it stays flat rather than being blown up.
    """
    signals_uv = np.asarray(signals_uv)
    if signals_uv.ndim != 3 or len(groups) != len(signals_uv):
        raise NeuriptError(f"signals_uv must be (N, C, T) with one group per window; got "
                           f"{signals_uv.shape} and {len(groups)} groups")
    if not target_std_uv > 0:
        raise NeuriptError(f"target_std_uv must be > 0, got {target_std_uv!r}")
    groups = np.asarray(groups).astype(str)
    names = np.unique(groups)
    stds = signals_uv.std(axis=-1, dtype=np.float64)  # (N, C)
    gains = np.ones((len(names), signals_uv.shape[1]))
    for g, name in enumerate(names):
        median = np.median(stds[groups == name], axis=0)
        ok = median > 0
        gains[g, ok] = target_std_uv / median[ok]
    return GroupGains(names, gains)


def normalize_groups(signals_uv: np.ndarray, groups: np.ndarray,
                     target_std_uv: float = DEFAULT_TARGET_STD_UV) -> np.ndarray:
    """Scale every (group, channel) by its :func:`group_channel_gains` gain.

    Parameters
    ----------
    signals_uv : ndarray, shape (N, C, T), µV
    groups : ndarray, shape (N,)
    target_std_uv : float

    Returns
    -------
    normalized : ndarray, shape (N, C, T), the dtype of ``signals_uv``
        A new array; the input is not modified.
    """
    names, gains = group_channel_gains(signals_uv, groups, target_std_uv)
    row = np.searchsorted(names, np.asarray(groups).astype(str))
    return (signals_uv * gains[row][:, :, None]).astype(signals_uv.dtype, copy=False)


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
    """
    if method == "none":
        return task
    if method != "channel_std":
        raise NeuriptError(f"subject_norm must be one of ('none', 'channel_std'), got {method!r}")
    return replace(task, signals=normalize_groups(task.signals, task.subjects, target_std_uv))
