"""Helpers shared by the loaders of the paper's external benchmarks (Mumtaz2016 … TUEV).

These sit on top of :mod:`neuript.data.tasks._common` (whose ``epochs_part`` cuts their
event-locked windows) and :mod:`neuript.data.splits`: parsing of integer subject lists given as
task options (:func:`subject_ids`) and the TUH folder layout (:func:`tuh_root`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from neuript.errors import NeuriptError

log = logging.getLogger(__name__)


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

