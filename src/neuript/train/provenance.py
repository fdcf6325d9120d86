"""What data a pretrained checkpoint saw, and the guard that keeps it away from test subjects.

Every pretraining checkpoint records its corpus (:func:`corpus_provenance`): the manifest hash
and, per source recording, a path key and the subject. ``finetune`` and ``evaluate`` call
:func:`check_overlap` before any work: a test-split recording or subject of the task that is
also in the pretraining corpus is a leak (the encoder has seen the test data, unlabelled), and
the run stops unless the user passes ``--allow-overlap``, which is then recorded in
``metrics.json`` and printed in every report.

Matching rules (documented in docs/pretraining.md):

* recording: the last three components of the source path (``adhd/adhd/v34p.csv.gz``,
  ``P300/subject2/session1/…``), so a data root moved to another machine still matches;
* subject: the subject id string. Ids are dataset-specific (``v34p``, ``S001``,
  ``Subject00``, ``subject2``); two datasets that both number subjects ``subject1`` will be
  refused as a possible overlap, which the override settles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any, NamedTuple

import numpy as np

from neuript.errors import NeuriptError, read_json

PATH_KEY_PARTS = 3
"""Trailing path components that identify a recording across machines."""


def recording_key(source: str) -> str:
    """The last :data:`PATH_KEY_PARTS` components of a source path, '/'-joined."""
    parts = PurePath(str(source).replace("\\", "/")).parts
    return "/".join(parts[-PATH_KEY_PARTS:])


def corpus_provenance(root: str | Path, sources: Iterable[str],
                      subjects: Iterable[str]) -> dict[str, Any]:
    """The provenance block a pretraining checkpoint stores under ``config["provenance"]``.

    Parameters
    ----------
    root : path-like
        Corpus folder (its ``manifest.csv`` is hashed).
    sources, subjects : iterable of str, one per window
        The manifest's source and subject columns.

    Returns
    -------
    provenance : dict
        ``manifest_sha256`` (first 16 hex digits of the manifest file), ``windows``,
        ``recordings`` (sorted ``[key, subject]`` pairs, one per source) and ``subjects``.
    """
    sources, subjects = [str(s) for s in sources], [str(u) for u in subjects]
    pairs = sorted({(recording_key(s), u) for s, u in zip(sources, subjects, strict=True)})
    manifest = Path(root) / "manifest.csv"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()[:16] if manifest.exists() else ""
    return {
        "manifest_sha256": digest,
        "windows": len(sources),
        "recordings": [list(p) for p in pairs],
        "subjects": sorted({u for _, u in pairs}),
    }


def checkpoint_provenance(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    """The provenance block a checkpoint folder records (None if it records none)."""
    path = Path(checkpoint_dir) / "config.json"
    config = read_json(path, "checkpoint config")
    return config.get("extra", {}).get("provenance")


def merge_provenance(first: Mapping[str, Any], then: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance of a model pretrained on ``first``'s corpus, then on ``then``'s.

    Recordings and subjects are the union; ``manifest_sha256`` lists both hashes, in order.
    """
    pairs = sorted({tuple(p) for p in [*first.get("recordings", []),
                                        *then.get("recordings", [])]})
    hashes = [h for prov in (first, then) for h in str(prov.get("manifest_sha256", "")).split("+")
              if h]
    return {"manifest_sha256": "+".join(hashes),
            "windows": int(first.get("windows", 0)) + int(then.get("windows", 0)),
            "recordings": [list(p) for p in pairs], "subjects": sorted({u for _, u in pairs})}


class Overlap(NamedTuple):
    """What :func:`find_overlap` found between a corpus and a task's test split."""

    recordings: list[str]
    """Recording keys in both."""
    subjects: list[str]
    """Subject ids in both."""

    @property
    def any(self) -> bool:
        """True when anything overlaps."""
        return bool(self.recordings or self.subjects)

    def describe(self, limit: int = 5) -> str:
        """One phrase: counts and the first few names."""
        bits = []
        for what, names in (("subjects", self.subjects), ("recordings", self.recordings)):
            if names:
                more = f" and {len(names) - limit} more" if len(names) > limit else ""
                bits.append(f"{len(names)} {what} ({', '.join(names[:limit])}{more})")
        return " and ".join(bits) if bits else "nothing"


def find_overlap(provenance: Mapping[str, Any], sources: np.ndarray, subjects: np.ndarray,
                 splits: np.ndarray, split: str = "test") -> Overlap:
    """Recordings and subjects of the task's ``split`` windows that the corpus also holds.

    Parameters
    ----------
    provenance : mapping
        A checkpoint's provenance block (:func:`corpus_provenance`).
    sources, subjects, splits : ndarray, shape (N,), str
        The task's per-window columns (``TaskWindows``).
    split : str
        Which split must stay unseen ("test"; the subject-CV folds pass their own test rows).
    """
    pick = np.asarray(splits) == split
    corpus_keys = {str(k) for k, _ in provenance.get("recordings", [])}
    corpus_subjects = {str(s) for s in provenance.get("subjects", [])}
    task_keys = {recording_key(s) for s in np.asarray(sources)[pick].tolist()}
    task_subjects = {str(s) for s in np.asarray(subjects)[pick].tolist()}
    return Overlap(sorted(task_keys & corpus_keys), sorted(task_subjects & corpus_subjects))


def check_overlap(provenance: Mapping[str, Any] | None, task: Any, init: str, *,
                  allow: bool, split: str = "test") -> dict[str, Any]:
    """Refuse (or, with ``allow``, record) a pretraining corpus that holds test data.

    Parameters
    ----------
    provenance : mapping | None
        The init checkpoint's provenance; None for checkpoints written before it existed.
    task : TaskWindows
        Uses ``name``, ``sources``, ``subjects`` and ``splits``.
    init : str
        The ``--init`` value, for the message.
    allow : bool
        ``--allow-overlap``: record the overlap instead of refusing.

    Returns
    -------
    record : dict
        ``status`` ("clean", "overlap_allowed" or "unknown": no provenance in the checkpoint),
        and the overlapping ``subjects`` and ``recordings``. Stored in metrics.json.

    Raises
    ------
    NeuriptError
        An overlap without ``allow``.
    """
    if provenance is None:
        return {"status": "unknown", "subjects": [], "recordings": [],
                "note": "the checkpoint records no corpus provenance (written before it existed)"}
    found = find_overlap(provenance, task.sources, task.subjects, task.splits, split)
    record = {"status": "clean", "subjects": found.subjects, "recordings": found.recordings}
    if not found.any:
        return record
    if not allow:
        raise NeuriptError(
            f"init={init!r}: its pretraining corpus holds {found.describe()} of task "
            f"{task.name!r}'s {split} split, so those windows are not unseen; use a checkpoint "
            "pretrained without them, or pass --allow-overlap to run anyway (recorded in "
            "metrics.json and every report)"
        )
    return {**record, "status": "overlap_allowed"}
