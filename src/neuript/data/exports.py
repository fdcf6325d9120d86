"""Plain numeric exports: ``.npy`` arrays, ``.txt``/``.tsv``/``.csv`` tables, MATLAB ``.mat``.

Such files hold numbers only: the sampling rate, the channel names and the unit come from the
reader options of :func:`neuript.data.io.read_recording` (:data:`EXPORT_OPTIONS`):

``sfreq`` (required)
    Sampling rate (Hz).
``ch_names`` (required; a text table's header row may give them instead)
    Channel names, a list or one comma-separated string (``"Fp1,Fp2,Cz"``).
``unit`` (default ``"uV"``, as :meth:`~neuript.data.recording.Recording.from_array`)
    ``"V"``, ``"mV"``, ``"uV"``/``"µV"`` or ``"nV"``: the unit of the numbers in the file.
``variable`` (``.mat`` only)
    The array to read when the file holds more than one 2-D numeric array.

The channel axis is the one whose length is the number of names (rows when both are): a
``(C, T)`` array and a ``(T, C)`` table (one row per sample, the usual text export) both read.
A text table may start with one header line (cells that are not all numbers); ``#`` lines are
comments. Every failure is a :class:`~neuript.errors.RecordingError` naming the file and, when
an option is missing, the option to pass.
"""

from __future__ import annotations

import io
import math
import re
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from neuript.data.csv_layouts import gunzip
from neuript.data.recording import UNIT_SCALE_TO_VOLTS
from neuript.errors import RecordingError

ExportKind = Literal["npy", "text", "mat"]
EXPORT_OPTIONS: dict[str, tuple[str, ...]] = {
    "npy": ("sfreq", "ch_names", "unit"),
    "text": ("sfreq", "ch_names", "unit"),
    "mat": ("sfreq", "ch_names", "unit", "variable"),
}
"""Reader options each kind of export accepts."""
DEFAULT_UNIT = "uV"
"""Unit of an export when ``unit`` is not given (µV, as ``Recording.from_array``)."""
HOW_TO_PASS = "--reader-option {key}=… on the command line, a reader_options column in a manifest"
"""How a reader option is given; :func:`for_manifest_row` drops the command-line way."""
_COMMAND_LINE_WAY = re.compile(r"--reader-option \S+ on the command line, ")


def for_manifest_row(message: str) -> str:
    """A reader's message for a manifest row: the row's reader_options cell is its only way
    (``finetune`` has no ``--reader-option``), so the command-line way is left out."""
    return _COMMAND_LINE_WAY.sub("", message)


class NumericExport(NamedTuple):
    """An export read and checked."""

    data_v: np.ndarray
    """Signals, shape (C, T), float64, volts."""
    sfreq_hz: float
    """Sampling rate (Hz), from the ``sfreq`` option."""
    ch_names: tuple[str, ...]
    """Channel names, length C."""


def read_export(path: Path, kind: ExportKind, options: Mapping[str, Any]) -> NumericExport:
    """Read a numeric export with its reader options (see the module docstring).

    Parameters
    ----------
    path : Path
        The file.
    kind : {"npy", "text", "mat"}
        ``.npy``; ``.txt``/``.tsv``/``.csv`` table; MATLAB ``.mat`` (v4 to v7.2, scipy).
    options : mapping
        ``sfreq``, ``ch_names``, ``unit`` and, for ``.mat``, ``variable``.

    Returns
    -------
    export : NumericExport
        ``data_v`` (C, T) in volts.
    """
    check_export_options(path, kind, options)
    sfreq_hz = _sfreq(path, options.get("sfreq"))
    header: list[str] | None = None
    if kind == "npy":
        array = _load_npy(path)
    elif kind == "mat":
        array = _load_mat(path, options.get("variable"))
    else:
        array, header = _load_text(path)
    names = _names(path, options.get("ch_names"), header)
    unit = str(options.get("unit", DEFAULT_UNIT))
    data = _orient(path, array, names)
    return NumericExport(data * UNIT_SCALE_TO_VOLTS[unit], sfreq_hz, names)


def check_export_options(path: Path, kind: ExportKind, options: Mapping[str, Any]) -> None:
    """Refuse options the kind does not take, and a unit that does not exist."""
    accepted = EXPORT_OPTIONS[kind]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise RecordingError(path, f"reader option(s) {', '.join(unknown)} not accepted for a "
                             f"{path.suffix} export; accepted: {', '.join(accepted)}")
    unit = options.get("unit", DEFAULT_UNIT)
    if unit not in UNIT_SCALE_TO_VOLTS:
        raise RecordingError(path, f"reader option unit={unit!r} must be one of "
                             f"{', '.join(UNIT_SCALE_TO_VOLTS)}")


def _missing(path: Path, key: str, what: str, example: str) -> RecordingError:
    return RecordingError(path, f"a {path.suffix} export carries no {what}: pass the reader "
                          f"option {key} ({example}; {HOW_TO_PASS.format(key=key)})")


def _sfreq(path: Path, value: Any) -> float:
    if value is None:
        raise _missing(path, "sfreq", "sampling rate", "Hz, e.g. sfreq=250")
    try:
        sfreq_hz = float(value)
    except (TypeError, ValueError):
        sfreq_hz = math.nan
    if not (math.isfinite(sfreq_hz) and sfreq_hz > 0):
        raise RecordingError(path, f"reader option sfreq={value!r} must be a positive number "
                             "(Hz)")
    return sfreq_hz


def _names(path: Path, value: Any, header: list[str] | None) -> tuple[str, ...]:
    if value is None and header is None:
        raise _missing(path, "ch_names", "channel names", "e.g. ch_names=Fp1,Fp2,Cz")
    if value is None:
        names = tuple(header or ())
    elif isinstance(value, str):
        names = tuple(n.strip() for n in value.split(","))
    elif isinstance(value, list | tuple):
        names = tuple(str(n).strip() for n in value)
    else:
        raise RecordingError(path, "reader option ch_names must be a list of names or one "
                             f"comma-separated string, got {type(value).__name__}")
    empty = [i for i, n in enumerate(names) if not n]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if not names or empty or duplicates:
        raise RecordingError(path, f"channel names {list(names)} must be non-empty and "
                             f"distinct (empty at {empty}, repeated {duplicates})")
    return names


def _orient(path: Path, array: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(C, T) float64 from a (C, T) or (T, C) array: the axis of length C is channels."""
    if array.ndim == 1 and len(names) == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise RecordingError(path, f"expected a 2-D array (channels × samples), got shape "
                             f"{array.shape}")
    n = len(names)
    if array.shape[0] == n:
        return np.array(array, dtype=np.float64)
    if array.shape[1] == n:
        return np.array(array.T, dtype=np.float64)
    raise RecordingError(path, f"array of shape {array.shape} has no axis of length {n}, the "
                         f"number of channel names given ({', '.join(names[:4])}"
                         f"{', …' if n > 4 else ''}); check ch_names")


def _numeric(path: Path, array: Any, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "iuf" or array.size == 0:
        raise RecordingError(path, f"{what} holds {array.dtype} values of shape {array.shape}; "
                             "expected a non-empty array of real numbers")
    return array


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise RecordingError(path, f"not a NumPy .npy array of numbers ({type(err).__name__}: "
                             f"{' '.join(str(err).split())})") from None
    if not isinstance(array, np.ndarray):
        raise RecordingError(path, "an .npz archive, not one .npy array: save one array with "
                             "numpy.save")
    return _numeric(path, array, "the .npy file")


def _load_mat(path: Path, variable: Any) -> np.ndarray:
    import scipy.io

    try:
        body = scipy.io.loadmat(path)
    except NotImplementedError:
        raise RecordingError(path, "a MATLAB v7.3 (HDF5) file, which scipy cannot read; save it "
                             "with save(file, var, '-v7') or export the array to .npy") from None
    except (OSError, ValueError, TypeError) as err:
        raise RecordingError(path, f"not a MATLAB .mat file ({type(err).__name__}: "
                             f"{' '.join(str(err).split())})") from None
    arrays = {k: v for k, v in body.items() if not k.startswith("__")
              and isinstance(v, np.ndarray) and v.dtype.kind in "iuf" and v.ndim == 2
              and v.size > 1}
    if variable is not None:
        if variable not in body:
            raise RecordingError(path, f"reader option variable={variable!r}: no such variable; "
                                 f"the file holds {sorted(k for k in body if k[:2] != '__')}")
        return _numeric(path, body[variable], f"variable {variable!r}")
    if len(arrays) != 1:
        found = sorted(arrays) or "none"
        raise RecordingError(path, f"expected exactly one 2-D numeric array, found {found}: "
                             "pass the reader option variable (the array's name)")
    return next(iter(arrays.values()))


def _load_text(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """A numeric table, shape (rows, columns), and its header row (None without one)."""
    import pandas as pd

    try:
        blob = path.read_bytes()
        text = (gunzip(blob) if path.name.lower().endswith(".gz") else blob).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, EOFError, zlib.error) as err:
        raise RecordingError(path, f"cannot read as text ({type(err).__name__})") from None
    lines = [(i + 1, t) for i, t in enumerate(text.splitlines())
             if t.strip() and not t.lstrip().startswith("#")]
    if not lines:
        raise RecordingError(path, "no numbers in the file (empty, or comments only)")
    name = path.name.lower()
    sep = "\t" if name.endswith(".tsv") else "," if name.endswith((".csv", ".csv.gz")) else None
    if sep is None:
        sep = "\t" if "\t" in lines[0][1] else "," if "," in lines[0][1] else r"\s+"
    cells = [c.strip() for c in (lines[0][1].split() if sep == r"\s+" else
                                 lines[0][1].split(sep))]
    header = None if all(_is_number(c) for c in cells) else cells
    body = "\n".join(t for _, t in lines[1 if header else 0:])
    if not body:
        raise RecordingError(path, "zero-length recording (a header line, no rows)")
    try:
        frame = pd.read_csv(io.StringIO(body), sep=sep, header=None, dtype=np.float64,
                            engine="c")
    except (ValueError, pd.errors.ParserError) as err:
        first = lines[1 if header else 0][0]
        raise RecordingError(path, f"the table after line {first - 1} is not numbers only "
                             f"({' '.join(str(err).split())[:200]})") from None
    return frame.to_numpy(), header


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
