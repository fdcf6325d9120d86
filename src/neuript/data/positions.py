"""Electrode positions from a file, for channels without a 10-05 name (custom electrodes).

One loader, :func:`read_positions`, serves ``neuript prepare --positions``, ``neuript
predict/embed --positions``, the manifest's ``positions_file`` column and ``positions=`` of
:func:`~neuript.data.store.prepare_corpus` and the manifest builder. It reads:

- ``.csv`` / ``.tsv``: a table ``name,x,y,z`` (a header row is optional; ``label``, ``channel``
  or ``electrode`` may name the name column; other columns are ignored; ``n/a`` rows, as in a
  BIDS ``electrodes.tsv``, are skipped). Values are **metres in the package's frame**, the frame
  of its 10-05 table (:func:`neuript.data.montage.electrode_positions`, MNE's ``colin27_1005``
  template: x to the right ear, y to the nose, z up; Cz ≈ (0.000, -0.009, 0.100)). Other units
  are read when the header says so: columns ``x_mm,y_mm,z_mm`` (or ``x (mm)``, ``x [cm]``), or
  a ``unit`` column of ``m``/``cm``/``mm``.
- ``.json``: ``{"name": [x, y, z]}`` in metres (the manifest's ``positions.json``).
- any montage file MNE reads (:data:`MONTAGE_SUFFIXES`: ``mne.channels.read_custom_montage``,
  and ``read_dig_captrak`` for BrainVision CapTrak ``.bvct``). The montage is set on an
  ``mne.Info`` and the positions taken from ``info["chs"]`` by
  :func:`neuript.data.mne_bridge.custom_positions`, exactly as :meth:`Recording.from_mne` takes
  a Raw's montage: MNE's head frame, placed by the file's fiducials.

Channels with a 10-05 name keep the package's positions whatever a file says (the rule of
:mod:`neuript.data.mne_bridge`), so only the file's other names are returned; a cap file of
standard electrodes therefore changes nothing. Every failure is one :class:`NeuriptError`
naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from neuript.data.montage import _clean, canonical_name
from neuript.data.recording import Recording
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

POSITION_UNITS: Mapping[str, float] = {"m": 1.0, "cm": 1e-2, "mm": 1e-3}
"""Units a positions table may declare → metres per unit."""
MAX_RADIUS_M = 0.5
"""Positions farther than this from the origin are refused (a unit mistake, usually mm)."""
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".tsv")
"""Suffixes read as a ``name,x,y,z`` table (comma for ``.csv``, tab for ``.tsv``)."""
MONTAGE_SUFFIXES: tuple[str, ...] = (
    ".bvct", ".bvef", ".csd", ".elc", ".elp", ".eloc", ".loc", ".locs", ".sfp", ".txt", ".xyz",
)
"""Suffixes read by MNE (``.bvct``: ``read_dig_captrak``; the rest: ``read_custom_montage``)."""
NAME_COLUMNS: tuple[str, ...] = ("name", "label", "channel", "electrode", "ch_name")
"""Header names accepted for the electrode-name column (any case)."""
_AXIS_RE = re.compile(r"^([xyz])\s*(?:[_\s]\s*|[(\[]\s*)?(m|cm|mm)?\s*[)\]]?$")


def read_positions(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Positions of the custom electrodes (no 10-05 name) that a positions file lists.

    Parameters
    ----------
    path : path-like
        A ``.csv``/``.tsv`` table, a ``.json`` mapping, or a montage file MNE reads (see the
        module docstring for the frame and units of each).

    Returns
    -------
    positions : dict of str to ndarray, shape (3,), float64
        Name as written in the file → position (metres). Names with a 10-05 name are left out
        (logged): they keep the package's positions.

    Raises
    ------
    NeuriptError
        Missing or unreadable file, unknown suffix, a bad row, a duplicate name, or a position
        over :data:`MAX_RADIUS_M` from the origin (with the way to declare mm).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise NeuriptError(f"{path}: no such positions file")
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        found = _read_table(path)
    elif suffix == ".json":
        found = _read_json(path)
    elif suffix in MONTAGE_SUFFIXES:
        return _read_montage_file(path)  # MNE's rule already left out the 10-05 names
    else:
        raise NeuriptError(f"{path}: unknown positions file type {suffix or '(none)'!r}; "
                           f"give a {'/'.join(TABLE_SUFFIXES + ('.json',))} table or a montage "
                           f"file MNE reads ({', '.join(MONTAGE_SUFFIXES)})")
    return custom_only(found, path)


def load_positions(
    source: str | os.PathLike | Mapping[str, Any] | None, where: str = "positions"
) -> dict[str, np.ndarray]:
    """Positions from a file (:func:`read_positions`), a mapping ``{name: (x, y, z)}`` or None.

    A mapping is checked as a file's rows are (metres, three finite values) and its 10-05
    names are left out the same way; None gives ``{}``.
    """
    if source is None:
        return {}
    if not isinstance(source, Mapping):
        return read_positions(source)
    checked = {str(name): _checked(str(name), xyz, where) for name, xyz in source.items()}
    return custom_only(checked, where)


def custom_only(positions: Mapping[str, np.ndarray], where: Any) -> dict[str, np.ndarray]:
    """``positions`` without the names that have a 10-05 position (logged)."""
    custom = {n: p for n, p in positions.items() if canonical_name(n) is None}
    _log_left_out(list(positions), custom, where)
    return custom


def _log_left_out(names: list[str], custom: Mapping[str, Any], where: Any) -> None:
    """Name the standard electrodes a positions source lists (they keep the package's table)."""
    standard = sorted(n for n in names if canonical_name(n) is not None)
    if standard:
        shown = ", ".join(standard[:8]) + (" …" if len(standard) > 8 else "")
        log.info("%s: %d electrode(s) with a 10-05 name keep the package's positions (%s)",
                 where, len(standard), shown)
    if not custom:
        log.warning("%s: no electrode without a 10-05 name; these positions change nothing",
                    where)


def with_positions(rec: Recording, positions: Mapping[str, np.ndarray]) -> Recording:
    """``rec`` with the given positions for its channels that have no 10-05 name.

    A name matches a channel exactly, else without the recording system's decorations, in any
    case (``XY1`` places ``"EEG XY1-REF"``); the position is stored under the channel's own
    name. Given positions win over the ones the recording's file recorded.

    Parameters
    ----------
    rec : Recording
    positions : mapping of str to array-like (3,)
        Metres (from :func:`load_positions`).

    Returns
    -------
    recording : Recording
        A new recording when some channel matched, else ``rec`` itself.
    """
    by_clean = {_clean(name).upper(): name for name in positions}
    found: dict[str, np.ndarray] = {}
    for raw in rec.ch_names if positions else ():
        if canonical_name(raw) is not None:
            continue
        key = raw if raw in positions else by_clean.get(_clean(raw).upper())
        if key is not None:
            found[raw] = np.asarray(positions[key], dtype=np.float64).reshape(3).copy()
    if not found:
        return rec
    return dataclasses.replace(rec, positions={**(rec.positions or {}), **found})


def unplaced_channels(rec: Recording) -> list[str]:
    """The channels of ``rec`` with neither a 10-05 name nor a position (in file order)."""
    known = rec.positions or {}
    return [name for name in rec.ch_names if canonical_name(name) is None
            and name not in known and not _is_placed_pair(name, known)]


def _is_placed_pair(name: str, known: Mapping[str, Any]) -> bool:
    """True for ``"A-B"`` whose two sides each have a 10-05 name or a given position."""
    parts = _clean(name).split("-")
    return len(parts) == 2 and all(p in known or canonical_name(p) is not None for p in parts)


# --------------------------------------------------------------------------------------------
# the formats
# --------------------------------------------------------------------------------------------
def _checked(name: str, xyz: Any, where: Any, scale: float = 1.0,
             unit_hint: bool = True) -> np.ndarray:
    """``xyz`` as a (3,) float64 array in metres (``scale``: metres per unit), or one error."""
    try:
        arr = np.asarray(xyz, dtype=np.float64).reshape(-1) * scale
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if not name or arr.shape != (3,) or not np.isfinite(arr).all():
        raise NeuriptError(f"{where}: position of {name!r} must be three finite numbers "
                           f"x, y, z, got {xyz!r}")
    radius = float(np.linalg.norm(arr))
    if radius > MAX_RADIUS_M:
        hint = ("; positions are metres: for mm name the columns x_mm,y_mm,z_mm or add a "
                "unit column (mm)") if unit_hint and scale == 1.0 else ""
        raise NeuriptError(f"{where}: position of {name!r} is {radius:g} m from the origin, "
                           f"over {MAX_RADIUS_M} m{hint}")
    return arr


class _Layout(NamedTuple):
    """Where a positions table keeps what (column indices) and its unit."""

    name: int
    xyz: tuple[int, int, int]
    scale: float
    """Metres per unit of the x, y, z columns."""
    unit: int | None
    """The ``unit`` column, if any (it wins over ``scale`` row by row)."""


HEADERLESS = _Layout(0, (1, 2, 3), 1.0, None)
"""A table without a header row: name, x, y, z in metres."""


def _header_layout(cells: list[str], path: Path) -> _Layout | None:
    """The layout a header row gives, or None when the row is data (a headerless table)."""
    lowered = [c.strip().lower() for c in cells]
    name_col = next((i for i, c in enumerate(lowered) if c in NAME_COLUMNS), None)
    if name_col is None:
        try:
            [float(c) for c in cells[1:4]]
        except ValueError:
            raise NeuriptError(f"{path}: the header {cells} needs a name column (one of "
                               f"{', '.join(NAME_COLUMNS)}) and x, y, z columns") from None
        return None
    axes: dict[str, tuple[int, str | None]] = {}
    for i, cell in enumerate(lowered):
        match = _AXIS_RE.match(cell)
        if match:
            axes.setdefault(match.group(1), (i, match.group(2)))
    if set(axes) != {"x", "y", "z"}:
        raise NeuriptError(f"{path}: the header {cells} needs columns x, y, z (metres; x_mm, "
                           "y_mm, z_mm for mm) beside the name column")
    units = {axes[a][1] for a in "xyz"}
    if len(units) > 1:
        raise NeuriptError(f"{path}: the x, y, z columns of {cells} declare different units")
    unit_col = next((i for i, c in enumerate(lowered) if c in ("unit", "units")), None)
    return _Layout(name_col, (axes["x"][0], axes["y"][0], axes["z"][0]),
                   POSITION_UNITS[units.pop() or "m"], unit_col)


def _read_table(path: Path) -> dict[str, np.ndarray]:
    """A ``name,x,y,z`` table (see the module docstring)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise NeuriptError(f"{path}: cannot read the positions table ({type(err).__name__})"
                           ) from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    rows = [(i + 1, [c.strip() for c in next(csv.reader([line], delimiter=delimiter))])
            for i, line in enumerate(text.splitlines())
            if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise NeuriptError(f"{path}: the positions table is empty; expected rows name,x,y,z")
    layout = _header_layout(rows[0][1], path)
    if layout is None:
        layout = HEADERLESS
    else:
        rows = rows[1:]
    out: dict[str, np.ndarray] = {}
    for line, cells in rows:
        name, xyz = _table_row(cells, layout, f"{path} line {line}")
        if name in out:
            raise NeuriptError(f"{path} line {line}: electrode {name!r} is listed twice")
        if xyz is not None:
            out[name] = xyz
    return out


def _table_row(cells: list[str], layout: _Layout, where: str) -> tuple[str, np.ndarray | None]:
    """(name, position in metres) of one table row; None for an ``n/a`` position."""
    if len(cells) <= max(layout.name, *layout.xyz):
        raise NeuriptError(f"{where}: {len(cells)} cells; expected name,x,y,z")
    name, values = cells[layout.name], [cells[i] for i in layout.xyz]
    if any(v.lower() in ("n/a", "nan", "") for v in values):
        log.info("%s: no position for %r (n/a); left out", where, name)
        return name, None
    scale = layout.scale
    if layout.unit is not None and layout.unit < len(cells) and cells[layout.unit]:
        unit = cells[layout.unit].lower()
        if unit not in POSITION_UNITS:
            raise NeuriptError(f"{where}: unit {cells[layout.unit]!r} must be one of "
                               f"{', '.join(POSITION_UNITS)}")
        scale = POSITION_UNITS[unit]
    try:
        xyz = [float(v) for v in values]
    except ValueError:
        raise NeuriptError(f"{where}: x, y, z {values} are not numbers") from None
    return name, _checked(name, xyz, where, scale, unit_hint=layout.unit is None)


def _read_json(path: Path) -> dict[str, np.ndarray]:
    """``{"name": [x, y, z]}`` in metres."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NeuriptError(f"{path}: cannot read positions JSON ({type(err).__name__})") from None
    if not isinstance(items, dict):
        raise NeuriptError(f"{path}: positions JSON must be an object {{\"name\": [x, y, z]}}")
    return {str(k): _checked(str(k), v, path) for k, v in items.items()}


def _read_montage_file(path: Path) -> dict[str, np.ndarray]:
    """A montage file MNE reads, placed as :meth:`Recording.from_mne` places a Raw's montage."""
    import mne

    from neuript.data.mne_bridge import custom_positions

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            if path.suffix.lower() == ".bvct":
                with contextlib.suppress(ImportError):  # MNE uses the submodule unimported
                    import defusedxml.ElementTree  # noqa: F401
                montage = mne.channels.read_dig_captrak(path)
            else:
                montage = mne.channels.read_custom_montage(path)
            names = list(montage.get_positions()["ch_pos"])
            info = mne.create_info(names, 1000.0, "eeg")
            info.set_montage(montage, on_missing="ignore")  # to MNE's head frame (fiducials)
        except Exception as err:  # boundary: every MNE failure becomes one line
            log.debug("reading montage %s failed", path, exc_info=True)
            detail = " ".join(str(err).split())[:300]
            raise NeuriptError(f"{path}: MNE could not read it as a montage "
                               f"({type(err).__name__}: {detail})") from None
    custom = custom_positions(info["chs"], names, path) or {}
    _log_left_out(names, custom, path)
    return custom
