"""What ``--resume`` may change: the checks between a run folder's checkpoint and a new config.

A resume continues the run a checkpoint recorded, so the model, masking, optimiser and schedule
settings, the batch layout, the seed and the corpus itself (identified by the SHA-256 of its
``manifest.csv`` and its window count, so a moved corpus still resumes) must be those the
checkpoint was trained with; a resume that changes any of them is refused, naming the fields,
before anything in the run folder is written. The step budget (:data:`RESUME_BUDGET`) may change:
such an override is returned, logged and written to ``log.jsonl``, and the one-cycle schedule is
laid out again over the new budget from the resumed step. Settings that do not change what is
computed (:data:`RESUME_FREE`: devices, threads, logging and checkpoint cadence …) may differ
freely.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

from neuript.errors import NeuriptError
from neuript.train.checkpoint import CheckpointContents, read_latest_intact

log = logging.getLogger(__name__)

RESUME_BUDGET: tuple[str, ...] = ("train.max_steps", "train.epochs", "train.max_minutes")
"""Config fields a resume may change (recorded as an override; the schedule is re-planned)."""
RESUME_FREE: tuple[str, ...] = (
    "out", "resume", "preset", "corpus", "strategy", "val_every", "val_batches",
    "train.device", "train.threads", "train.num_workers", "train.compile", "train.log_every",
    "train.ckpt_every", "train.keep_last",
)
"""Config fields (and sections) a resume may change silently: they do not change the run's
arithmetic (``preset`` is compared through the resolved ``model``, ``corpus`` through its
identity)."""
MAX_LISTED = 6
"""Differences named in a refusal (the rest are counted)."""


class ResumePoint(NamedTuple):
    """Where an accepted resume continues from."""

    checkpoint: CheckpointContents
    """The newest intact checkpoint, already read and verified."""
    overrides: dict[str, list[Any]]
    """Budget fields that differ from the checkpoint's config: ``{field: [recorded, new]}``."""


def corpus_identity(root: str | os.PathLike, n_windows: int) -> dict[str, Any]:
    """``{"manifest_sha256", "windows"}`` of a corpus folder (what a resume must match)."""
    manifest = Path(root) / "manifest.csv"
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else ""
    return {"manifest_sha256": digest, "windows": int(n_windows)}


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_free(key: str) -> bool:
    return any(key == f or key.startswith(f"{f}.") for f in RESUME_FREE)


def config_differences(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, list[Any]]:
    """``{dotted field: [recorded, current]}`` for every field both configs hold that differs.

    Fields one side lacks (a config written by another version of neuript) are not compared.
    """
    old = _flatten(json.loads(json.dumps(recorded, default=str)))
    new = _flatten(json.loads(json.dumps(current, default=str)))
    return {k: [old[k], new[k]] for k in sorted(old.keys() & new.keys()) if old[k] != new[k]}


def _listing(diffs: dict[str, Any]) -> str:
    items = [f"{k} {v[0]!r} -> {v[1]!r}" for k, v in list(diffs.items())[:MAX_LISTED]]
    more = len(diffs) - MAX_LISTED
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def _corpus_mismatch(recorded: dict[str, Any], corpus: dict[str, Any],
                     config: dict[str, Any], current: dict[str, Any]) -> dict[str, list[Any]]:
    """Differences of the corpus identity (or, when none was recorded, of the corpus path)."""
    if recorded:
        return {f"corpus.{k}": [recorded.get(k), v] for k, v in corpus.items()
                if recorded.get(k) != v}
    if config.get("corpus") != current.get("corpus"):  # a checkpoint older than identities
        return {"corpus": [config.get("corpus"), current.get("corpus")]}
    return {}


def check_resume(run_dir: str | os.PathLike, current: dict[str, Any],
                 corpus: dict[str, Any]) -> ResumePoint | None:
    """Find the checkpoint a resume continues from and check the new config against it.

    Parameters
    ----------
    run_dir : path-like
        The run folder.
    current : dict
        The new run's resolved config (``to_dict`` of it).
    corpus : dict
        :func:`corpus_identity` of the new run's corpus.

    Returns
    -------
    point : ResumePoint | None
        None when the folder holds no checkpoint (the run starts fresh).

    Raises
    ------
    NeuriptError
        The corpus or a config field outside :data:`RESUME_BUDGET` and :data:`RESUME_FREE`
        differs from what the checkpoint recorded (the fields are named), or no checkpoint of
        the run is intact (:class:`~neuript.train.checkpoint.CheckpointError`).
    """
    read = read_latest_intact(run_dir)
    if read is None:
        return None
    config = read.info.get("config")
    if not isinstance(config, dict):  # train_state.json missing: fall back on the folder's
        path = Path(run_dir) / "config.json"
        config = json.loads(path.read_text()) if path.is_file() else {}
    diffs = config_differences(config, current)
    refused = {**_corpus_mismatch(read.info.get("corpus") or {}, corpus, config, current),
               **{k: v for k, v in diffs.items() if k not in RESUME_BUDGET and not _is_free(k)}}
    if refused:
        raise NeuriptError(
            f"{read.path}: --resume refused, the run was trained with other settings: "
            f"{_listing(refused)}; resume with the recorded values (its train_state.json, "
            "config.json) or start a new run with another --out"
        )
    overrides = {k: v for k, v in diffs.items() if k in RESUME_BUDGET}
    if overrides:
        log.warning("resume overrides the recorded step budget: %s", _listing(overrides))
    return ResumePoint(read, overrides)
