"""Torch datasets, a montage-bucketed DDP-aware batch sampler, and the collate to :class:`Batch`.

Every batch holds windows of ONE montage (so no channel padding is needed). The sampler first
builds the epoch's list of *global* batches (``batch_size · world_size`` windows each) from a
``torch.Generator`` seeded by ``(seed, epoch)``, then gives rank ``r`` the ``r``-th slice of
every global batch. The global batch at step ``s`` is therefore the same set of windows whatever
the world size: a 2-process run with per-rank batch ``b`` sees exactly what a 1-process run with
batch ``2b`` sees. Call ``loader.batch_sampler.set_epoch(e)`` at each epoch start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, get_args

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from neuript.batch import Batch
from neuript.config import AugmentConfig, Compression
from neuript.data.augment import augment_windows
from neuript.data.montage import groups_as, pooling_groups
from neuript.data.preprocess import alaw
from neuript.data.store import WindowStore
from neuript.data.tasks.base import SPLITS, TaskWindows
from neuript.errors import NeuriptError, check_option

NO_LABEL = -1


class WindowItem(NamedTuple):
    """One window as a dataset returns it."""

    signals: np.ndarray
    """(C, T) float32, µV (not yet compressed)."""
    montage: int
    """Montage index (into the dataset's ``montages``)."""
    label: int
    """Class index, or ``NO_LABEL``."""
    window_id: int
    """Row of the window in its task or corpus."""


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------
class TaskDataset(Dataset):
    """The windows of one split of a :class:`TaskWindows` (labelled).

    A task whose recordings kept their own channels (:attr:`TaskWindows.present`) has one
    montage per channel set; each window is returned with its own channels only.

    Parameters
    ----------
    task : TaskWindows
        The task.
    split : {"train", "val", "test"}
        Which split.
    """

    def __init__(self, task: TaskWindows, split: str) -> None:
        check_option("split", split, SPLITS)
        self.task = task
        self.indices = task.indices(split)
        sets, montage_of = task.montages()
        names, positions = np.asarray(task.ch_names), np.asarray(task.positions, np.float32)
        self.channels = [np.flatnonzero(row) for row in sets]
        self.montages = [(tuple(names[c].tolist()), positions[c]) for c in self.channels]
        self.montage_of = montage_of[self.indices]
        self.whole = not task.mixed_montage

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> WindowItem:
        i, m = int(self.indices[k]), int(self.montage_of[k])
        signals = self.task.signals[i] if self.whole else self.task.signals[i, self.channels[m]]
        return WindowItem(np.asarray(signals, dtype=np.float32), m, int(self.task.labels[i]), i)


class CorpusDataset(Dataset):
    """Chosen windows of a :class:`WindowStore` (any montages, unlabelled).

    Parameters
    ----------
    store : WindowStore
        The corpus.
    indices : sequence of int, length N
        Corpus rows to use (e.g. from :func:`split_by_subject`).
    """

    def __init__(self, store: WindowStore, indices: Sequence[int] | np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indices) and not (0 <= self.indices.min() and self.indices.max() < len(store)):
            raise NeuriptError(f"{store.root}: indices must lie in [0, {len(store)}), got "
                               f"[{self.indices.min()}, {self.indices.max()}]")
        self.montages = list(store.montages)
        self.montage_of = store.montage_of[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> WindowItem:
        i = int(self.indices[k])
        return WindowItem(self.store.window(i), int(self.store.montage_of[i]), NO_LABEL, i)


# --------------------------------------------------------------------------------------------
# sampler
# --------------------------------------------------------------------------------------------
class MontageBatchSampler(Sampler[list[int]]):
    """Batches of one montage each, seeded per (seed, epoch), sliced across DDP ranks.

    Parameters
    ----------
    montage_of : array-like, shape (N,), int
        Montage index of each dataset item.
    batch_size : int
        Windows per batch per rank (the global batch is ``batch_size · world_size``).
    shuffle : bool
        Shuffle windows within each montage and the order of the batches.
    seed : int
        Base seed; the epoch's generator is seeded with ``seed`` and ``epoch``.
    rank, world_size : int
        This process and the number of processes.
    drop_last : bool
        Drop each montage's last incomplete global batch. When kept, it is split as evenly as
        possible across ranks (repeating windows only if it is smaller than ``world_size``).
    epoch : int
        First epoch (see :meth:`set_epoch`).
    """

    def __init__(self, montage_of: Sequence[int] | np.ndarray, batch_size: int, *,
                 shuffle: bool, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, epoch: int = 0) -> None:
        if batch_size < 1:
            raise NeuriptError(f"batch_size must be >= 1, got {batch_size!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise NeuriptError(f"need 0 <= rank < world_size, got rank={rank}, "
                               f"world_size={world_size}")
        self.montage_of = np.asarray(montage_of, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.drop_last, self.epoch = rank, world_size, drop_last, epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose batches the next iteration yields."""
        self.epoch = epoch

    def global_batches(self) -> list[np.ndarray]:
        """The epoch's global batches (item positions), identical on every rank."""
        gen = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(self.epoch))
        size = self.batch_size * self.world_size
        _, first = np.unique(self.montage_of, return_index=True)
        batches = []
        for m in self.montage_of[np.sort(first)]:  # montages in order of first appearance
            items = np.flatnonzero(self.montage_of == m)
            if self.shuffle:
                items = items[torch.randperm(len(items), generator=gen).numpy()]
            stop = len(items) - len(items) % size if self.drop_last else len(items)
            batches += [items[s:s + size] for s in range(0, stop, size)]
        if self.shuffle:
            batches = [batches[k] for k in torch.randperm(len(batches), generator=gen).tolist()]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            if len(batch) < self.world_size:  # every rank needs a step: repeat windows
                batch = np.resize(batch, self.world_size)
            yield np.array_split(batch, self.world_size)[self.rank].tolist()

    def __len__(self) -> int:
        size = self.batch_size * self.world_size
        counts = np.bincount(self.montage_of) if len(self.montage_of) else np.zeros(0, int)
        return int(sum(c // size if self.drop_last else -(-c // size) for c in counts))


# --------------------------------------------------------------------------------------------
# collate
# --------------------------------------------------------------------------------------------
class MontageCollate:
    """Build a :class:`Batch` from items of one montage; per-montage tensors made once.

    Parameters
    ----------
    montages : list of (ch_names, positions (C, 3))
        The dataset's montages.
    scheme : str
        Pooling scheme for ``group_mask`` (see :func:`neuript.data.montage.pooling_groups`).
    compression : {"alaw", "none"}
        Amplitude compression of the µV signals.
    alaw_a : float
        The A-law's A.
    labelled : bool
        Whether batches carry labels.
    augment : AugmentConfig | None
        Augmentations applied to the µV windows before compression (training batches only).
    sfreq_hz : float
        Sampling rate of the windows (for time shifts).
    augment_seed : int
        Seed of the augmentations' generator (vary it per epoch).
    group_names : sequence of str | None
        Lay every montage's groups on these (:func:`neuript.data.montage.groups_as`: the
        model's groups, when montages differ in the lobes they cover); None: each montage's own.
    """

    def __init__(self, montages: Sequence[tuple[Sequence[str], np.ndarray]], *, scheme: str,
                 compression: str, alaw_a: float, labelled: bool,
                 augment: AugmentConfig | None = None, sfreq_hz: float = 64.0,
                 augment_seed: int = 0, group_names: Sequence[str] | None = None) -> None:
        check_option("compression", compression, get_args(Compression))
        self.compression, self.alaw_a, self.labelled = compression, alaw_a, labelled
        self.augment, self.sfreq_hz = augment, sfreq_hz
        self.generator = torch.Generator().manual_seed(augment_seed)
        self.positions = [torch.as_tensor(np.asarray(p, np.float32)) for _, p in montages]
        if group_names is None:
            self.group_masks = [torch.as_tensor(pooling_groups(list(n), np.asarray(p),
                                                               scheme).mask)
                                for n, p in montages]
        else:
            self.group_masks = [torch.as_tensor(groups_as(list(n), np.asarray(p), scheme,
                                                          group_names))
                                for n, p in montages]

    def __call__(self, items: Sequence[WindowItem]) -> Batch:
        montage = items[0].montage
        if any(it.montage != montage for it in items):
            raise NeuriptError("a batch mixes montages; use MontageBatchSampler")
        signals = torch.from_numpy(np.stack([it.signals for it in items]))  # (B, C, T) µV
        if self.augment is not None:
            signals = augment_windows(signals, self.augment, self.sfreq_hz, self.generator)
        if self.compression == "alaw":
            signals = alaw(signals, self.alaw_a)
        b, c, _ = signals.shape
        return Batch(
            signals=signals.float(),
            positions=self.positions[montage].expand(b, c, 3),
            channel_mask=torch.ones(b, c, dtype=torch.bool),
            group_mask=self.group_masks[montage].expand(b, -1, c),
            labels=torch.tensor([it.label for it in items]) if self.labelled else None,
            window_ids=torch.tensor([it.window_id for it in items], dtype=torch.int64),
        )


def _loader(dataset: TaskDataset | CorpusDataset, sampler: MontageBatchSampler,
            collate: MontageCollate, num_workers: int) -> DataLoader:
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                      num_workers=num_workers, persistent_workers=False)


def make_task_loader(task: TaskWindows, split: str, *, batch_size: int, shuffle: bool, seed: int,
                     scheme: str = "functional", rank: int = 0, world_size: int = 1,
                     drop_last: bool = False, epoch: int = 0, num_workers: int = 0,
                     augment: AugmentConfig | None = None,
                     group_names: Sequence[str] | None = None) -> DataLoader:
    """A DataLoader of labelled :class:`Batch` es over one split of a task.

    Compression follows ``task.preprocess`` (``compression``, ``alaw_a``); ``group_mask`` follows
    ``scheme``, laid on ``group_names`` (a model's groups) when given, else on the groups of all
    the task's channels (a task of one montage: that montage's groups). See
    :class:`MontageBatchSampler` for ``shuffle``/``seed``/``rank``/``world_size``.
    ``augment`` (training only) draws from a generator seeded by ``(seed, epoch, rank)``.
    """
    dataset = TaskDataset(task, split)
    sampler = MontageBatchSampler(dataset.montage_of, batch_size, shuffle=shuffle, seed=seed,
                                  rank=rank, world_size=world_size, drop_last=drop_last,
                                  epoch=epoch)
    groups = group_names
    if groups is None and task.mixed_montage:
        groups = pooling_groups(list(task.ch_names), np.asarray(task.positions), scheme).names
    collate = MontageCollate(dataset.montages, scheme=scheme, labelled=True,
                             compression=task.preprocess.compression,
                             alaw_a=task.preprocess.alaw_a, augment=augment,
                             sfreq_hz=float(task.preprocess.sfreq_hz),
                             augment_seed=(seed * 1_000_003 + epoch) * 101 + rank,
                             group_names=groups)
    return _loader(dataset, sampler, collate, num_workers)


def make_corpus_loader(store: WindowStore, indices: Sequence[int] | np.ndarray, *,
                       batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                       compression: str = "alaw", alaw_a: float = 0.25, epoch: int = 0,
                       drop_last: bool = True, shuffle: bool = True, scheme: str = "mean",
                       num_workers: int = 0) -> DataLoader:
    """A DataLoader of unlabelled :class:`Batch` es (one montage each) over corpus windows."""
    dataset = CorpusDataset(store, indices)
    sampler = MontageBatchSampler(dataset.montage_of, batch_size, shuffle=shuffle, seed=seed,
                                  rank=rank, world_size=world_size, drop_last=drop_last,
                                  epoch=epoch)
    collate = MontageCollate(dataset.montages, scheme=scheme, labelled=False,
                             compression=compression, alaw_a=alaw_a)
    return _loader(dataset, sampler, collate, num_workers)
