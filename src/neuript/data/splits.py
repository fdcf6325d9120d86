"""Subject-wise splits: every way neuript assigns subjects (or windows) to train / val / test.

One module for all of them, so a task, the pretraining loader, the benchmarks and a user's own
cross-validation share one implementation of each rule:

* fixed lists: :func:`split_by_ids` (per window), :func:`train_val_test` (per subject);
* seeded, stratified by class: :func:`stratified_subject_split` / :func:`fraction_split`
  (fractions), :func:`count_split` (a number of subjects per class), :func:`tuh_split`
  (the official TUH eval folder as test);
* pretraining: :func:`split_by_subject` (train / validation windows, no subject in both);
* cross-validation: :func:`subject_folds` (contiguous folds of the sorted subjects) and
  :func:`fold_task` (fold k tests, fold k + 1 validates);
* quick runs: :func:`subset_subjects` (the first n subjects of every split).

Every shuffle is ``numpy.random.default_rng(seed)``, so a split depends on the seed and the
subject ids only, never on window order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from neuript.errors import NeuriptError

if TYPE_CHECKING:
    from neuript.data.tasks.base import TaskWindows

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""The split names, in this order everywhere."""


def split_by_ids(subjects: np.ndarray, ids: Mapping[str, Iterable[str]]) -> np.ndarray:
    """Split of every window from a fixed subject list per split.

    Parameters
    ----------
    subjects : ndarray, shape (N,), str
        Subject of each window.
    ids : mapping of split name to subject ids
        ``{"train": [...], "val": [...], "test": [...]}``; a subject may appear once only.

    Returns
    -------
    splits : ndarray, shape (N,), str
        Split of each window. A subject in no list raises :class:`NeuriptError`.
    """
    split_of: dict[str, str] = {}
    for split, members in ids.items():
        if split not in SPLITS:
            raise NeuriptError(f"split name must be one of {SPLITS}, got {split!r}")
        for subject in members:
            if subject in split_of:
                raise NeuriptError(f"subject {subject!r} is listed in both "
                                   f"{split_of[subject]!r} and {split!r}")
            split_of[subject] = split
    missing = sorted(set(subjects.tolist()) - set(split_of))
    if missing:
        raise NeuriptError(f"subjects {missing} have no split; known: {sorted(split_of)}")
    return np.array([split_of[s] for s in subjects.tolist()], dtype=str)


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


def stratified_subject_split(
    subject_class: Mapping[str, int],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, str]:
    """Seeded subject-level split, stratified by each subject's class.

    Within each class the subjects are sorted, shuffled with ``numpy.random.default_rng(seed)``
    and cut into ``round(f·n)`` validation and test subjects (at least one each when the class
    has three or more subjects); the rest train.

    Parameters
    ----------
    subject_class : mapping of str to int
        Class of each subject (one label per subject, e.g. patient vs. control).
    fractions : tuple of float
        Train, validation and test shares; must sum to 1.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    split_of : dict of str to str
        Subject → ``"train"``, ``"val"`` or ``"test"``.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise NeuriptError(f"split fractions must be three shares summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    split_of: dict[str, str] = {}
    for cls in sorted(set(subject_class.values())):
        members = sorted(s for s, c in subject_class.items() if c == cls)
        order = [members[i] for i in rng.permutation(len(members))]
        n = len(order)
        n_val = int(round(fractions[1] * n))
        n_test = int(round(fractions[2] * n))
        if n >= 3:
            n_val = max(n_val, 1) if fractions[1] > 0 else 0
            n_test = max(n_test, 1) if fractions[2] > 0 else 0
        for i, subject in enumerate(order):
            split_of[subject] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
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


class SubjectSplit(NamedTuple):
    """Window indices of a subject-wise train/validation split."""

    train: np.ndarray
    """(N_train,) int64, sorted."""
    val: np.ndarray
    """(N_val,) int64, sorted."""


def split_by_subject(subjects: Sequence[str] | np.ndarray, val_fraction: float,
                     seed: int) -> SubjectSplit:
    """Split windows into train/validation so that no subject is in both.

    Parameters
    ----------
    subjects : array-like, shape (N,), str
        Subject of each window (e.g. ``WindowStore.subjects``).
    val_fraction : float
        Share of subjects (not windows) sent to validation, in [0, 1).
    seed : int
        Seed of the subject shuffle.

    Returns
    -------
    split : SubjectSplit
        With at least one validation subject when ``val_fraction > 0`` and there are two or more.
    """
    if not 0 <= val_fraction < 1:
        raise NeuriptError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    subjects = np.asarray(subjects).astype(str)
    unique = np.unique(subjects)  # sorted: independent of window order
    n_val = int(round(val_fraction * len(unique)))
    if val_fraction > 0 and len(unique) > 1:
        n_val = min(max(n_val, 1), len(unique) - 1)
    order = np.random.default_rng(seed).permutation(len(unique))
    is_val = np.isin(subjects, unique[order[:n_val]])
    return SubjectSplit(np.flatnonzero(~is_val), np.flatnonzero(is_val))


def subject_folds(subjects: np.ndarray, n_folds: int) -> list[list[str]]:
    """Sorted unique subjects cut into ``n_folds`` contiguous folds."""
    unique = sorted(set(np.asarray(subjects).astype(str).tolist()))
    return [list(map(str, f)) for f in np.array_split(np.array(unique), n_folds)]


def fold_task(task: TaskWindows, folds: list[list[str]], k: int) -> TaskWindows:
    """Fold ``k`` as test, fold ``k + 1`` as validation, the rest as training."""
    test, val = folds[k], folds[(k + 1) % len(folds)]
    subjects = task.subjects.astype(str)
    splits = np.where(np.isin(subjects, test), "test",
                      np.where(np.isin(subjects, val), "val", "train"))
    return replace(task, splits=splits)


def subset_subjects(task: TaskWindows, n_per_split: int,
                    splits: Sequence[str] = ("train", "val", "test")) -> TaskWindows:
    """Keep the first ``n_per_split`` subjects (sorted by name) of each of ``splits``.

    Parameters
    ----------
    task : TaskWindows
    n_per_split : int
    splits : sequence of str
        The splits to thin; the others keep every window (``("train",)``: a learning curve
        over training subjects on fixed validation and test subjects).

    Returns
    -------
    subset : TaskWindows
        A new object; windows keep their order.
    """
    keep = ~np.isin(task.splits, list(splits))
    for split in splits:
        idx = task.indices(split)
        chosen = sorted(set(task.subjects[idx].tolist()))[:n_per_split]
        keep[idx[np.isin(task.subjects[idx], chosen)]] = True
    return task.take(np.flatnonzero(keep))
