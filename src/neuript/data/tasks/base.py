"""The task interface: labelled windows plus their split protocol, as data.

Every task (the bundled ones, the paper's other benchmarks, a user's manifest) builds a
:class:`TaskWindows`. Training code reads nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from neuript.config import PreprocessConfig
from neuript.data.splits import SPLITS


@dataclass(frozen=True)
class TaskWindows:
    """Labelled, preprocessed windows of one task, with one montage and a split per window.

    Attributes
    ----------
    name : str
        Task name (registry key).
    signals : ndarray, shape (N, C, T), float32
        Preprocessed windows in µV (filtered, re-referenced, resampled; not yet compressed).
    labels : ndarray, shape (N,), int64
        Class index of each window.
    subjects : ndarray, shape (N,), str
        Subject of each window (splits are by subject).
    splits : ndarray, shape (N,), str
        ``"train"``, ``"val"`` or ``"test"``.
    sources : ndarray, shape (N,), str
        Source file of each window.
    starts : ndarray, shape (N,), int64
        First sample of each window in its (resampled) source.
    ch_names : tuple of str, length C
        Canonical channel names (``"Fp1-F7"`` for bipolar pairs).
    positions : ndarray, shape (C, 3), float32
        Channel positions in the fixed head frame (metres).
    class_names : tuple of str
        Name of each class index.
    preprocess : PreprocessConfig
        How the windows were made (the input contract on the data side).
    protocol : str
        One paragraph: the split protocol and any choices made.
    present : ndarray, shape (N, C), bool | None
        None (every task built with one montage): every channel is real in every window.
        Otherwise (``montage="per_recording"``) each recording kept its own channels:
        ``ch_names``/``positions`` are the union in order of first appearance, ``present[i]``
        marks window i's own channels and the others hold zeros. The loader batches windows of
        one montage together and gives the model only their own channels (:attr:`montages`).
    """

    name: str
    signals: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    splits: np.ndarray
    sources: np.ndarray
    starts: np.ndarray
    ch_names: tuple[str, ...]
    positions: np.ndarray
    class_names: tuple[str, ...]
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    protocol: str = ""
    present: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.signals.shape[0]
        for key in ("labels", "subjects", "splits", "sources", "starts"):
            assert getattr(self, key).shape == (n,), (key, getattr(self, key).shape, n)
        assert self.signals.ndim == 3 and self.signals.shape[1] == len(self.ch_names)
        assert self.positions.shape == (len(self.ch_names), 3)
        if self.present is not None:
            assert self.present.shape == self.signals.shape[:2] and self.present.dtype == bool, (
                self.present.shape, self.present.dtype)

    @property
    def mixed_montage(self) -> bool:
        """Whether windows hold different channel sets (:attr:`present` is set)."""
        return self.present is not None

    def montages(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct channel sets and each window's set.

        Returns
        -------
        channel_sets : ndarray, shape (M, C), bool
            Row m marks the channels of montage m (in order of first appearance); one all-True
            row when the task has one montage.
        montage_of : ndarray, shape (N,), int64
            Montage index of every window.
        """
        n, c = self.signals.shape[:2]
        if self.present is None:
            return np.ones((1, c), dtype=bool), np.zeros(n, dtype=np.int64)
        rows, first, inverse = np.unique(self.present, axis=0, return_index=True,
                                         return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rows[order], rank[inverse.reshape(-1)].astype(np.int64)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def take(self, rows: np.ndarray) -> TaskWindows:
        """A new task holding windows ``rows`` (N_rows,) int, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        return replace(self, signals=self.signals[rows], labels=self.labels[rows],
                       subjects=self.subjects[rows], splits=self.splits[rows],
                       sources=self.sources[rows], starts=self.starts[rows],
                       present=None if self.present is None else self.present[rows])

    def indices(self, split: str) -> np.ndarray:
        """Window indices of one split, shape (N_split,)."""
        return np.flatnonzero(self.splits == split)

    def counts(self) -> dict[str, dict[str, int]]:
        """Windows per split and class: ``{"train": {"rest": 500, …}, …}``."""
        out: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            idx = self.indices(split)
            out[split] = {
                name: int(np.sum(self.labels[idx] == k)) for k, name in enumerate(self.class_names)
            }
        return out

    def split_manifest(self) -> dict[str, Any]:
        """Every window's id (source, start), subject, label and split, plus the hash of it all."""
        rows = [
            [str(s), int(t), str(subj), int(y), str(sp)]
            for s, t, subj, y, sp in zip(
                self.sources, self.starts, self.subjects, self.labels, self.splits
            )
        ]
        body = {"task": self.name, "columns": ["source", "start", "subject", "label", "split"],
                "class_names": list(self.class_names), "rows": rows}
        return {**body, "hash": manifest_hash(body)}

    def write_split_manifest(self, path: str | Path) -> str:
        """Write :meth:`split_manifest` as JSON (atomically); return its hash."""
        manifest = self.split_manifest()
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(manifest))
        tmp.replace(path)
        return manifest["hash"]


def manifest_hash(body: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of a manifest body serialised canonically."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TaskSpec:
    """A registry entry: how to build one task.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"mental_arithmetic"``.
    summary : str
        One line for ``neuript tasks``.
    protocol : str
        The split protocol and montage, as the docs state them.
    class_names : tuple of str
        Class names in index order.
    default_dir : str | None
        Sub-folder of the data root holding the data (None: user must pass ``data_dir``).
    build : callable
        ``build(data_dir: Path, preprocess: PreprocessConfig | None, **options) -> TaskWindows``.
    preprocess : PreprocessConfig
        The task's own preprocessing (window length, montage, rejection), used when the caller
        passes none.
    version : str
        Version of the builder's output; bump it when the code changes what it builds (it is
        part of the task cache key).
    """

    name: str
    summary: str
    protocol: str
    class_names: tuple[str, ...]
    default_dir: str | None
    build: Callable[..., TaskWindows]
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    version: str = "1"
