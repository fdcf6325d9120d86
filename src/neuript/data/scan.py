"""What ``neuript prepare`` inputs expand to: folder scans that agree with the readers.

A folder is searched recursively for the suffixes of :data:`neuript.data.io.READERS` and for
Nihon Kohden ``.eeg`` files (:data:`NIHON_KOHDEN_MARKERS`); an EGI ``.mff`` folder is one
recording, named or found, and never searched inside. Files that belong to a recording beside
them (:data:`COMPANION_OF`) or describe recordings (:data:`SIDECAR_SUFFIXES`, README, hidden
files) are companions, counted only; every other file is reported as unsupported.
"""

from __future__ import annotations

import glob
import os
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from neuript.data.io import READERS, brainvision_header_of
from neuript.data.positions import MONTAGE_SUFFIXES
from neuript.errors import NeuriptError


class InputScan(NamedTuple):
    """What one input (file, folder or glob) expands to."""

    input: str
    """The input as given."""
    files: tuple[Path, ...]
    """Files to read: resolved and sorted."""
    unsupported: tuple[Path, ...]
    """Files inside a folder that no reader knows: reported as skipped ("unsupported format")."""
    companions: tuple[Path, ...]
    """Files inside a folder that belong to or describe a recording (a BrainVision ``.vmrk``, an
    EEGLAB ``.fdt``, BIDS ``.json``/``.tsv`` sidecars, README, hidden files): counted only."""


COMPANION_OF: Mapping[str, str] = types.MappingProxyType({
    ".vmrk": ".vhdr", ".eeg": ".vhdr",  # BrainVision (a .eeg also if a .vhdr's DataFile= names it)
    ".fdt": ".set",  # EEGLAB
    ".evt": ".cnt",  # ANT Neuro
    ".dat": ".lay",  # Persyst
    ".cdt.dpa": ".cdt", ".cdt.dpo": ".cdt", ".cdt.cef": ".cdt", ".cdt.ceo": ".cdt",  # Curry 8
    ".pnt": ".eeg", ".21e": ".eeg", ".log": ".eeg",  # Nihon Kohden
})
"""End of a data/marker file's name (lower case) -> the suffix of the recording it belongs to,
which sits beside it under the same name: ``rec.dat`` -> ``rec.lay``, ``rec.cdt.dpa`` ->
``rec.cdt``, ``REC.PNT`` -> ``REC.EEG`` (either letter case)."""
NIHON_KOHDEN_MARKERS: tuple[str, ...] = (".pnt", ".21e")
"""A ``.eeg`` is a Nihon Kohden recording in a folder scan when one of these sits beside it (and
no BrainVision header names it); alone, its suffix is read only when the file is named."""
SIDECAR_SUFFIXES: tuple[str, ...] = (
    ".json", ".tsv", ".tsv.gz", ".md", ".rst",
    *(s for s in MONTAGE_SUFFIXES if s != ".txt"),
)
"""Suffixes of files that describe recordings (BIDS sidecars, documentation, electrode position
files MNE reads such as a CapTrak ``.bvct``)."""
DOC_NAMES: frozenset[str] = frozenset({"readme", "license", "licence", "changes", "copying"})
"""File names (before any suffix, any case) of documentation files."""


def _beside(path: Path, stem: str, suffix: str) -> Path | None:
    """``stem + suffix`` beside ``path`` (the suffix in lower or upper case), if it exists."""
    found = [path.parent / f"{stem}{s}" for s in (suffix, suffix.upper())]
    return next((f for f in found if f.exists()), None)


def _is_nihon_kohden(path: Path) -> bool:
    """True for a ``.eeg`` with a Nihon Kohden ``.PNT``/``.21E`` beside it, no .vhdr naming it."""
    return (path.suffix.lower() == ".eeg"
            and any(_beside(path, path.stem, s) for s in NIHON_KOHDEN_MARKERS)
            and brainvision_header_of(path) is None)


def _is_companion(path: Path, folder: Path) -> bool:
    """True if ``path`` (inside ``folder``, not a recording) belongs to or describes one."""
    name = path.name.lower()
    if any(part.startswith(".") for part in path.relative_to(folder).parts):
        return True
    if name.endswith(SIDECAR_SUFFIXES) or name.split(".")[0] in DOC_NAMES:
        return True
    if name.endswith(".eeg") and brainvision_header_of(path) is not None:
        return True
    for ending in sorted(COMPANION_OF, key=len, reverse=True):
        if name.endswith(ending) and len(name) > len(ending):
            header = _beside(path, path.name[:-len(ending)], COMPANION_OF[ending])
            # a Nihon Kohden companion needs a .eeg that is a Nihon Kohden recording
            return header is not None and (COMPANION_OF[ending] != ".eeg"
                                           or _is_nihon_kohden(header))
    return False


def _walk(folder: Path) -> Iterable[Path]:
    """Every file under ``folder`` and every EGI ``.mff`` folder (whose insides are not walked)."""
    for root, dirs, names in os.walk(folder):
        here = Path(root)
        for name in [d for d in dirs if d.lower().endswith(".mff")]:
            dirs.remove(name)
            yield here / name
        yield from (here / name for name in names)


def _is_mff(path: Path) -> bool:
    return path.is_dir() and path.name.lower().endswith(".mff")


def scan_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[InputScan]:
    """Expand each input, keeping the files of a folder that no reader knows.

    A folder is searched recursively for the suffixes of :data:`neuript.data.io.READERS` and
    for Nihon Kohden ``.eeg`` files (:data:`NIHON_KOHDEN_MARKERS`); an EGI ``.mff`` folder is
    one recording, named or found, and never searched. Files that belong to a recording
    (:data:`COMPANION_OF`) or describe recordings (:data:`SIDECAR_SUFFIXES`, README, hidden
    files) are companions; the rest are unsupported.

    Parameters
    ----------
    inputs : path-like or iterable of path-like
        As in :func:`find_inputs`.

    Returns
    -------
    scans : list of InputScan
        One per input, in the order given.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    suffixes = tuple(READERS)
    scans = []
    for item in inputs:
        path = Path(item).expanduser()
        files: set[Path] = set()
        unsupported: set[Path] = set()
        companions: set[Path] = set()
        if path.is_file() or _is_mff(path):
            files.add(path.resolve())
        elif path.is_dir():
            for p in _walk(path):
                if _is_mff(p) or (p.is_file() and (p.name.lower().endswith(suffixes)
                                                   or _is_nihon_kohden(p))):
                    files.add(p.resolve())
                elif p.is_file():
                    (companions if _is_companion(p, path) else unsupported).add(p.resolve())
        else:
            matches = [Path(m) for m in glob.glob(str(path), recursive=True)]
            if not matches:
                raise NeuriptError(f"input {str(item)!r}: no such file, folder or glob match")
            files.update(m.resolve() for m in matches
                         if (m.is_file() or _is_mff(m))
                         and not any(p.name.lower().endswith(".mff") for p in m.parents))
        scans.append(InputScan(str(item), *(tuple(sorted(s, key=str))
                                             for s in (files, unsupported, companions))))
    return scans


def find_inputs(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (recursive, known suffixes) and globs into a sorted list of files.

    Parameters
    ----------
    inputs : path-like or iterable of path-like
        Files (kept whatever their suffix), EGI ``.mff`` folders, folders (searched recursively
        as :func:`scan_inputs` says) or glob patterns (``**`` allowed).

    Returns
    -------
    files : list of Path
        Resolved, de-duplicated and sorted by their text. :func:`scan_inputs` also returns the
        files of the folders that were left out.
    """
    return sorted({f for scan in scan_inputs(inputs) for f in scan.files}, key=str)


def source_stat(path: Path) -> tuple[int, int]:
    """(size in bytes, newest mtime in ns) of a file, or of the files in an EGI .mff folder."""
    if not path.is_dir():
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns
    stats = [p.stat() for p in path.rglob("*") if p.is_file()] or [path.stat()]
    return sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)
