"""Helpers shared by the loaders of the paper's external benchmarks (Mumtaz2016 … TUEV).

These sit on top of :mod:`neuript.data.tasks._common`: event-locked windows from a recording
already read (:func:`epochs_part`), seeded subject splits with fixed counts per class
(:func:`count_split`) or fractions (:func:`fraction_split`), and parsing of integer subject lists
given as task options (:func:`subject_ids`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.recording import Recording
from neuript.data.tasks._common import Part, reject_part, stratified_subject_split
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)


def epochs_part(
    rec: Recording,
    cfg: PreprocessConfig,
    onsets_s: np.ndarray,
    labels: np.ndarray,
    *,
    subject: str,
    offset_s: float = 0.0,
    target: Any = None,
) -> Part:
    """Preprocess a whole recording, then cut one ``cfg.window_s`` window per onset.

    Parameters
    ----------
    rec : Recording
        The recording (volts).
    cfg : PreprocessConfig
        Filtering, resampling, window length and rejection.
    onsets_s : ndarray, shape (N,), float
        Event onsets (s from the first sample).
    labels : ndarray, shape (N,), int
        Class of each event.
    subject : str
        Subject written into the part.
    offset_s : float
        Window start relative to each onset (s); negative starts before it.
    target : str | list of str | None
        Montage target (:func:`~neuript.data.montage.build_channel_map`); None: ``cfg.montage``.

    Returns
    -------
    part : Part
        Windows (N_kept, C, W) float32 µV of the events whose window lies inside the recording
        (``rejected["outside"]`` counts the others) and that survive ``cfg``'s rejection.
    """
    from neuript.data.preprocess import epochs_at, preprocess_continuous

    onsets = np.asarray(onsets_s, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    assert onsets.shape == labels.shape, (onsets.shape, labels.shape)
    cont = preprocess_continuous(rec, cfg, target=target)
    epochs = epochs_at(cont, onsets, cfg.window_s, offset_s)
    valid = np.asarray(epochs.valid, dtype=bool)
    part = Part(
        windows=np.asarray(epochs.windows, dtype=np.float32),
        starts=np.asarray(epochs.starts, dtype=np.int64),
        labels=labels[valid], subject=subject, source=rec.source,
        ch_names=tuple(cont.ch_names), positions=np.asarray(cont.positions, dtype=np.float32),
        rejected={"outside": int((~valid).sum())},
    )
    kept = reject_part(part, cfg)
    return kept._replace(rejected={**part.rejected, **kept.rejected})


def count_split(
    subject_class: Mapping[str, int],
    n_val: Mapping[int, int],
    n_test: Mapping[int, int],
    seed: int = 0,
) -> dict[str, str]:
    """Seeded subject split with a fixed number of validation and test subjects per class.

    Within each class the subjects are sorted, shuffled with ``numpy.random.default_rng(seed)``
    (one generator, classes in increasing order); the first ``n_val[c]`` go to validation, the
    next ``n_test[c]`` to test and the rest train.

    Parameters
    ----------
    subject_class : mapping of str to int
        Class of each subject.
    n_val, n_test : mapping of int to int
        Validation / test subjects wanted per class (missing classes: 0).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    split_of : dict of str to str
        Subject → ``"train"``, ``"val"`` or ``"test"``.
    """
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for cls in sorted(set(subject_class.values())):
        members = sorted(s for s, c in subject_class.items() if c == cls)
        k_val, k_test = int(n_val.get(cls, 0)), int(n_test.get(cls, 0))
        if k_val < 0 or k_test < 0 or k_val + k_test > len(members):
            raise NeuriptError(
                f"class {cls}: asked for {k_val} validation + {k_test} test subjects but only "
                f"{len(members)} subjects are present ({members[:6]}…); lower the counts"
            )
        order = [members[i] for i in rng.permutation(len(members))]
        for i, subject in enumerate(order):
            split_of[subject] = "val" if i < k_val else "test" if i < k_val + k_test else "train"
    return split_of


def fraction_split(
    subject_class: Mapping[str, int], fractions: Sequence[float], seed: int = 0
) -> dict[str, str]:
    """Seeded subject split by fractions, stratified by class (see ``stratified_subject_split``).

    Parameters
    ----------
    subject_class : mapping of str to int
        Stratum of each subject (class, cohort, or 0 for all).
    fractions : sequence of float
        Train, validation and test shares summing to 1.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    split_of : dict of str to str
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3:
        raise NeuriptError(f"split fractions must be (train, val, test), got {fractions}")
    return stratified_subject_split(subject_class, fractions, seed)  # type: ignore[arg-type]


def subject_ids(
    option: str, values: Iterable[int | str], fmt: str
) -> tuple[str, ...]:
    """Subject ids from an option of integers (``(1, 2)`` with ``fmt="s{:02d}"`` → s01, s02)."""
    out = []
    for value in values:
        try:
            out.append(fmt.format(int(value)))
        except (TypeError, ValueError):
            raise NeuriptError(f"{option} must hold subject numbers, got {value!r}") from None
    return tuple(out)


def train_val_test(
    train: Iterable[str], val: Iterable[str], test: Iterable[str]
) -> dict[str, str]:
    """Subject → split from three explicit lists; a subject in two lists raises."""
    split_of: dict[str, str] = {}
    for split, members in (("train", train), ("val", val), ("test", test)):
        for subject in members:
            if subject in split_of:
                raise NeuriptError(f"subject {subject!r} is listed in both "
                                   f"{split_of[subject]!r} and {split!r}")
            split_of[subject] = split
    return split_of


def require_dir(path: Path, expected: str) -> Path:
    """Return ``path`` if it is a folder, else raise naming it and what it should hold."""
    if not Path(path).is_dir():
        raise NeuriptError(f"{path}: folder not found; expected {expected}")
    return Path(path)


def tuh_root(data_dir: Path, expected: str) -> Path:
    """The folder holding ``train/`` and ``eval/`` of a TUH corpus (``data_dir/edf`` or itself)."""
    data_dir = require_dir(Path(data_dir), expected)
    root = data_dir / "edf" if (data_dir / "edf").is_dir() else data_dir
    for split in ("train", "eval"):
        if not (root / split).is_dir():
            raise NeuriptError(f"{root / split}: folder not found; expected {expected}")
    return root


def tuh_split(
    train_class: Mapping[str, int], eval_subjects: Iterable[str], val_fraction: float, seed: int
) -> dict[str, str]:
    """Official eval subjects → test; the train folder's subjects → train/val by fraction.

    Parameters
    ----------
    train_class : mapping of str to int
        Subjects of the ``train`` folder and their stratum (class).
    eval_subjects : iterable of str
        Subjects of the ``eval`` folder (must not be in ``train_class``).
    val_fraction : float
        Share of the training subjects that validate, in [0, 1).
    seed : int
        Seed of the shuffle (:func:`fraction_split`).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise NeuriptError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    split_of = fraction_split(train_class, (1.0 - val_fraction, val_fraction, 0.0), seed)
    for subject in eval_subjects:
        assert subject not in split_of, subject
        split_of[subject] = "test"
    return split_of
