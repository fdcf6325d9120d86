"""Channel names, 3D positions, montages (re-referencing matrices) and pooling groups.

Names are normalised to the spelling of MNE's ``colin27_1005`` montage (``"EEG FP1-REF"`` →
``"Fp1"``, ``"Fc5."`` → ``"FC5"``, old 10-20 names ``T3/T4/T5/T6`` → ``T7/T8/P7/P8``); bipolar
channels are written ``"A-B"``. Positions are metres in that montage's fixed head frame; a bipolar
channel sits at the midpoint of its two electrodes. The alias, lobe and TCP tables live in
``resources/channels.json`` and are read once.

Pooling-group decisions (NEURIPT_SPEC §5), all documented in :func:`pooling_groups`:

- ``functional``: lobe from the electrode name (``Fp/AF/F/FC`` frontal, ``C/CP/P`` central-
  parietal, ``PO/O/I`` occipital, ``FT/T/TP/A/M`` and ``P7/P8/P9/P10`` (the old T5/T6) temporal,
  split left/right by the sign of x). ``F7/F8`` stay frontal. A bipolar channel joins the lobes
  of both its electrodes. A channel with a custom position takes the lobe of the nearest named
  electrode.
- ``hemisphere``: left if x < -5 mm, right if x > 5 mm; midline channels join **both**.
- ``sagittal``: TCP pairs go to their TCP chain; any other channel by its coronal-plane angle
  ``atan2(x, z)``: |angle| < 15° central, < 65° parasagittal, else temporal, by side.
- ``coronal``: rows by y of the channel position (edges 65, 30, -30, -90 mm).
- ``mean``: one group of every channel.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, NamedTuple, get_args

import numpy as np

from neuript.config import POOLING_SCHEMES, MontageName, OnUnknown
from neuript.errors import ChannelError, check_option

MONTAGE_NAME = "colin27_1005"
FUNCTIONAL_LOBES: tuple[str, ...] = (
    "Frontal", "Central-Parietal", "Occipital", "Temporal-L", "Temporal-R",
)
HEMISPHERES: tuple[str, ...] = ("Left", "Right")
SAGITTAL_CHAINS: tuple[str, ...] = (
    "Temporal-L", "Parasagittal-L", "Central", "Parasagittal-R", "Temporal-R",
)
CORONAL_ROWS: tuple[str, ...] = ("Prefrontal", "Frontal", "Central", "Parietal", "Occipital")
CORONAL_EDGES_M: tuple[float, ...] = (0.065, 0.030, -0.030, -0.090)
MIDLINE_TOL_M = 0.005
SAGITTAL_CENTRAL_DEG = 15.0
SAGITTAL_LATERAL_DEG = 65.0
_PREFIX_RE = re.compile(r"^([A-Za-z]+?)(?=\d|z|h|$)")
UNKNOWN_HINT = "give custom electrodes a position in metres, or drop them: on_unknown='drop'"
"""The ways out of an unknown channel name (callers that know the command add their own)."""


@functools.cache
def _tables() -> dict[str, Any]:
    """The JSON tables of ``resources/channels.json`` (read once)."""
    text = resources.files("neuript.data").joinpath("resources/channels.json").read_text("utf-8")
    return json.loads(text)


TCP_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (a, b) for a, b in _tables()["tcp_pairs"]
)


@functools.cache
def _positions_table() -> dict[str, np.ndarray]:
    """colin27_1005 positions (metres), read-only arrays, keyed by the montage's own names."""
    import mne  # local import: MNE's montage data only, never its readers

    ch_pos = mne.channels.make_standard_montage(MONTAGE_NAME).get_positions()["ch_pos"]
    out = {}
    for name, pos in ch_pos.items():
        arr = np.asarray(pos, dtype=np.float64).copy()
        arr.setflags(write=False)
        out[name] = arr
    return out


@functools.cache
def _upper_lookup() -> dict[str, str]:
    """Upper-case spelling → canonical electrode name (montage names, then aliases)."""
    lookup = {name.upper(): name for name in _positions_table()}
    for alias, target in _tables()["aliases"].items():
        lookup[alias.upper()] = target
    return lookup


def electrode_positions() -> dict[str, np.ndarray]:
    """Return the 10-05 electrode positions of the fixed head frame.

    Returns
    -------
    positions : dict of str to ndarray, shape (3,)
        Canonical name → position in metres (``colin27_1005``); arrays are read-only. The table is
        built once (``functools.cache``); the dict returned is a fresh shallow copy.
    """
    return dict(_positions_table())


def _clean(raw: str) -> str:
    """Strip the recording-system decorations from a raw name (prefixes, -REF, dots, spaces)."""
    name = raw.strip()
    tables = _tables()
    for prefix in sorted(tables["strip_prefixes"], key=len, reverse=True):
        if name.upper().startswith(prefix.upper()) and len(name) > len(prefix):
            name = name[len(prefix):].strip()
            break
    for suffix in tables["strip_suffixes"]:
        if name.upper().endswith(suffix.upper()) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return name.rstrip(".").replace(" ", "")


def _canonical_electrode(name: str) -> str | None:
    return _upper_lookup().get(name.strip().rstrip(".").upper())


def canonical_name(raw: str) -> str | None:
    """Normalise a raw channel name to the canonical 10-05 spelling.

    Parameters
    ----------
    raw : str
        Name as written in a file (``"EEG Fp1-REF"``, ``"FP1"``, ``"Fc5."``, ``"T3"``,
        ``"EEG A2-A1"``, ``"Fpz-Cz"``).

    Returns
    -------
    name : str | None
        ``"Fp1"``, ``"FC5"``, ``"T7"``, ``"A2-A1"``, ``"Fpz-Cz"``…; None if the name (or either side
        of a bipolar pair) is not a known electrode or alias.
    """
    name = _clean(raw)
    if not name:
        return None
    single = _canonical_electrode(name)
    if single is not None:
        return single
    parts = name.split("-")
    if len(parts) == 2:
        first, second = (_canonical_electrode(p) for p in parts)
        if first is not None and second is not None:
            return f"{first}-{second}"
    return None


def split_pair(name: str) -> tuple[str, ...]:
    """The electrodes of a canonical channel name: ``"Fp1-F7"`` → ``("Fp1", "F7")``."""
    return tuple(name.split("-"))


def channel_position(name: str, extra: Mapping[str, Any] | None = None) -> np.ndarray:
    """Position of one channel in the fixed head frame.

    Parameters
    ----------
    name : str
        Raw or canonical name; ``"A-B"`` is placed at the midpoint of A and B.
    extra : mapping of str to array-like (3,) | None
        User positions (metres) for non-standard channels; looked up first, by the raw name or
        the same name without the recording system's decorations (``"EEG EarL"`` finds
        ``"EarL"``).

    Returns
    -------
    position : ndarray, shape (3,), float64
        Metres.

    Raises
    ------
    ChannelError
        If the channel (or one side of a pair) has no known position.
    """
    given = dict(extra or {})
    key = _user_key(name, given)
    if key is not None:
        return np.asarray(given[key], dtype=np.float64).reshape(3).copy()
    canon = canonical_name(name)
    table = _positions_table()
    if canon is not None:
        return np.mean([table[e] for e in split_pair(canon)], axis=0)
    parts = _clean(name).split("-")
    if len(parts) == 2 and all(_user_key(p, given) or _canonical_electrode(p) for p in parts):
        return np.mean([channel_position(p, given) for p in parts], axis=0)
    raise ChannelError(None, f"channel {name!r} has no known position; {close_matches(name)} "
                       f"({UNKNOWN_HINT})")


def close_matches(raw: str) -> str:
    """``"close matches: T7, TP7"`` (difflib, up to three) or ``"no close match"``."""
    cleaned = _clean(raw).upper()
    lookup = _upper_lookup()
    close = difflib.get_close_matches(cleaned, list(lookup), n=3, cutoff=0.6)
    return f"close matches: {', '.join(lookup[c] for c in close)}" if close else "no close match"


def _user_key(raw: str, given: Mapping[str, Any]) -> str | None:
    """The key of ``given`` that names channel ``raw``: the raw name itself, else the same name
    without the recording system's decorations, in any letter case (``"EEG EarL"`` → ``"EarL"``).
    """
    if raw in given:
        return raw
    cleaned = _clean(raw).upper()
    for key in given:
        if _clean(key).upper() == cleaned:
            return key
    return None


def resolve_name(raw: str, given: Mapping[str, Any]) -> str | None:
    """The name a raw channel is mapped to: its 10-05 name, else the user's name for it when
    ``given`` (user positions) holds one (also one side of an ``"A-B"`` pair), else None.

    A 10-05 name always wins, so such a channel keeps the package's position (the rule of
    :mod:`neuript.data.positions` and :mod:`neuript.data.mne_bridge`).
    """
    canon = canonical_name(raw)
    if canon is not None:
        return canon
    key = _user_key(raw, given)
    if key is not None:
        return key
    parts = _clean(raw).split("-")
    if len(parts) == 2:
        names = [_canonical_electrode(p) or _user_key(p, given) for p in parts]
        if all(names):
            return f"{names[0]}-{names[1]}"
    return None


@dataclass(frozen=True)
class ChannelMap:
    """How to turn a recording's channels into a montage: ``out = matrix @ data``.

    Attributes
    ----------
    names : tuple of str, length C_out
        Canonical output names (``"Fp1-F7"`` for bipolar pairs).
    positions : ndarray, shape (C_out, 3), float64
        Output channel positions (metres; midpoints for pairs).
    matrix : ndarray, shape (C_out, C_in), float64
        Re-referencing matrix; a bipolar row holds +1 and -1, a kept channel one +1.
    dropped : dict of str to str
        Input channels not used: raw name → reason.
    aliases : dict of str to str
        Raw name → canonical name, for every input channel renamed.
    """

    names: tuple[str, ...]
    positions: np.ndarray
    matrix: np.ndarray
    dropped: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Re-reference ``data`` (C_in, T) → (C_out, T) (a new array, input dtype kept)."""
        if data.shape[0] != self.matrix.shape[1]:
            raise ChannelError(
                None, f"channel map expects {self.matrix.shape[1]} input rows, got {data.shape[0]}"
            )
        return (self.matrix.astype(data.dtype, copy=False) @ data).astype(data.dtype, copy=False)


def _resolve_inputs(
    ch_names: Sequence[str], extra: Mapping[str, Any]
) -> tuple[list[str | None], dict[str, str], dict[str, str]]:
    """Canonical name (or raw name with a user position, or None) of every input channel."""
    resolved: list[str | None] = []
    aliases: dict[str, str] = {}
    dropped: dict[str, str] = {}
    seen: dict[str, str] = {}
    for raw in ch_names:
        canon = resolve_name(raw, extra)
        if canon is not None and canon in seen:
            dropped[raw] = f"duplicate of {seen[canon]!r} (both are {canon!r})"
            canon = None
        elif canon is not None:
            seen[canon] = raw
            if canon != raw:
                aliases[raw] = canon
        resolved.append(canon)
    return resolved, aliases, dropped


def _target_rows(
    targets: Sequence[str | tuple[str, str]], resolved: list[str | None], source: str
) -> tuple[list[str], np.ndarray]:
    """Matrix rows for an explicit list of channels/pairs; raises listing every missing one."""
    index = {name: i for i, name in enumerate(resolved) if name is not None}
    names, rows, missing = [], [], []
    for target in targets:
        canon, sources, lacking = _target_sources(target, index)
        if lacking:
            missing.extend(lacking)
            continue
        row = np.zeros(len(resolved))
        for sign, name in zip((1.0, -1.0), sources):
            row[index[name]] = sign
        names.append(canon)
        rows.append(row)
    if missing:
        have = sorted(n for n in index)
        raise ChannelError(
            source,
            f"montage needs electrode(s) {sorted(set(missing))} that the recording lacks; "
            f"it has {have}",
        )
    return names, np.array(rows).reshape(len(rows), len(resolved))


def _target_sources(
    target: str | tuple[str, str], index: Mapping[str, int]
) -> tuple[str, tuple[str, ...], list[str]]:
    """How one wanted channel is built from the inputs ``index`` (name → row).

    Returns
    -------
    name : str
        The output name (canonical when the wanted name is a 10-05 name or pair).
    sources : tuple of str
        ``(name,)`` taken as it is, ``(a, b)`` derived as ``a - b``; empty when lacking.
    lacking : list of str
        The electrodes (or the channel) the inputs lack.
    """
    wanted = "-".join(target) if isinstance(target, tuple | list) else str(target)
    canon = canonical_name(wanted) or wanted
    parts = split_pair(canon)
    if canon in index:
        return canon, (canon,), []
    if len(parts) == 2 and all(p in index for p in parts):
        return canon, parts, []
    return canon, (), [p for p in (parts if len(parts) == 2 else (canon,)) if p not in index]


def missing_electrodes(
    ch_names: Sequence[str], targets: Sequence[str | tuple[str, str]],
    extra_positions: Mapping[str, Any] | None = None,
) -> list[str]:
    """Electrodes :func:`build_channel_map` would find missing for an explicit target list.

    Names are resolved as the map resolves them (aliases such as ``T3`` → ``T7``, bipolar
    channels of the file, user positions), so a channel the map can build is never missing.

    Returns
    -------
    missing : list of str
        Sorted, unique; empty when every target can be taken or derived.
    """
    resolved, _, _ = _resolve_inputs(ch_names, dict(extra_positions or {}))
    index = {name: i for i, name in enumerate(resolved) if name is not None}
    return sorted({e for t in targets for e in _target_sources(t, index)[2]})


def has_tcp(names: Sequence[str | None]) -> bool:
    """True if every :data:`TCP_PAIRS` channel is among ``names`` or derivable from them.

    Parameters
    ----------
    names : sequence of str | None
        Canonical channel names (None entries are ignored).
    """
    have = {n for n in names if n is not None}
    return all(f"{a}-{b}" in have or (a in have and b in have) for a, b in TCP_PAIRS)


def build_channel_map(
    ch_names: Sequence[str],
    target: str | Sequence[str | tuple[str, str]],
    *,
    source: str = "<array>",
    on_unknown: OnUnknown = "raise",
    extra_positions: Mapping[str, Any] | None = None,
) -> ChannelMap:
    """Build the re-referencing map from a recording's channels to a montage.

    Parameters
    ----------
    ch_names : sequence of str, length C_in
        The recording's EEG channel names, as read.
    target : {"tcp", "monopolar", "as_is", "auto"} or sequence of str / (str, str)
        ``"tcp"``: the 20 :data:`TCP_PAIRS` derived from monopolar electrodes (or taken as they
        are when the file holds them). ``"monopolar"``: every recognised channel under its
        canonical name, in file order (a file that is already bipolar keeps its pairs).
        ``"as_is"``: the same selection (no re-referencing either way); kept as a separate name
        so configs can say they want the file's own montage. ``"auto"``: ``"tcp"`` when every
        TCP pair can be taken or derived from the recording, else ``"monopolar"`` (mixed
        corpora: 10-20 files get the paper's montage, other devices keep their own electrodes).
        A list: those channels/pairs
        (``["Fpz-Cz", "Pz-Oz"]``), each taken directly or derived as a difference of monopolar
        channels.
    source : str
        File named in errors.
    on_unknown : {"raise", "drop"}
        For ``"monopolar"``/``"as_is"``: raise on an unknown channel name, or drop it (recorded
        in ``dropped``). With explicit targets unknown inputs are simply not used.
    extra_positions : mapping of str to array-like (3,) | None
        Positions (metres) of non-standard channels, by raw name; such channels are kept.

    Returns
    -------
    channel_map : ChannelMap

    Raises
    ------
    ChannelError
        Unknown channel (with close matches) or missing electrodes for the target.
    """
    check_option("on_unknown", on_unknown, get_args(OnUnknown))
    extra = dict(extra_positions or {})
    resolved, aliases, dropped = _resolve_inputs(ch_names, extra)
    if isinstance(target, str) and target == "auto":
        target = "tcp" if has_tcp(resolved) else "monopolar"
    if isinstance(target, str) and target not in ("monopolar", "as_is"):
        check_option("target", target, get_args(MontageName))
        targets: Sequence[str | tuple[str, str]] = [f"{a}-{b}" for a, b in TCP_PAIRS]
    elif isinstance(target, str):
        targets = []
        for raw, canon in zip(ch_names, resolved):
            if canon is not None:
                targets.append(canon)
            elif raw in dropped:
                continue
            elif on_unknown == "raise":
                raise ChannelError(
                    source, f"unknown channel {raw!r} (montage {target!r}); "
                    f"{close_matches(raw)} ({UNKNOWN_HINT})"
                )
            else:
                dropped[raw] = "unknown channel name"
    else:
        targets = list(target)
    names, matrix = _target_rows(targets, resolved, source)
    used = np.abs(matrix).sum(axis=0) > 0
    for raw, is_used in zip(ch_names, used):
        if not is_used and raw not in dropped:
            dropped[raw] = "not used by the montage"
    positions = np.array([channel_position(n, extra) for n in names]).reshape(len(names), 3)
    return ChannelMap(tuple(names), positions, matrix, dropped, aliases)


# --------------------------------------------------------------------------------------------
# pooling groups
# --------------------------------------------------------------------------------------------
class Groups(NamedTuple):
    """Channel groups for pooling: ``mask[g, c]`` is True when channel c belongs to group g.

    Attributes
    ----------
    names : tuple of str, length G
        Group names (empty groups dropped).
    mask : ndarray, shape (G, C), bool
    """

    names: tuple[str, ...]
    mask: np.ndarray


def _lobe_of_electrode(name: str) -> str | None:
    """Functional lobe from a canonical electrode name (before the left/right split)."""
    tables = _tables()
    if name in tables["lobe_by_name"]:
        return tables["lobe_by_name"][name]
    match = _PREFIX_RE.match(name)
    return tables["lobe_by_prefix"].get(match.group(1)) if match else None


def _side(lobe: str, x: float) -> str:
    return f"Temporal-{'L' if x < 0 else 'R'}" if lobe == "Temporal" else lobe


@functools.cache
def _named_lobes() -> tuple[tuple[str, ...], np.ndarray]:
    """Lobes and positions (E, 3) of every named electrode, for the nearest-neighbour fallback."""
    table = _positions_table()
    names = [n for n in table if _lobe_of_electrode(n) is not None]
    lobes = tuple(_side(_lobe_of_electrode(n), table[n][0]) for n in names)
    return lobes, np.array([table[n] for n in names])


def _functional(name: str, position: np.ndarray) -> set[str]:
    canon = canonical_name(name)
    if canon is not None:
        table = _positions_table()
        return {_side(_lobe_of_electrode(e), table[e][0]) for e in split_pair(canon)}
    lobes, pos = _named_lobes()
    return {lobes[int(np.argmin(np.linalg.norm(pos - position, axis=1)))]}


def _hemisphere(position: np.ndarray) -> set[str]:
    x = position[0]
    if abs(x) <= MIDLINE_TOL_M:
        return set(HEMISPHERES)
    return {"Left" if x < 0 else "Right"}


@functools.cache
def _tcp_chain_of() -> dict[str, str]:
    return {f"{a}-{b}": chain for chain, pairs in _tables()["tcp_chains"].items() for a, b in pairs}


def _sagittal(name: str, position: np.ndarray) -> set[str]:
    chain = _tcp_chain_of().get(canonical_name(name) or "")
    if chain is not None:
        return {chain}
    angle = np.degrees(np.arctan2(position[0], position[2]))
    side = "L" if angle < 0 else "R"
    if abs(angle) < SAGITTAL_CENTRAL_DEG:
        return {"Central"}
    return {f"Parasagittal-{side}" if abs(angle) < SAGITTAL_LATERAL_DEG else f"Temporal-{side}"}


def _coronal(position: np.ndarray) -> set[str]:
    row = int(np.sum(position[1] < np.asarray(CORONAL_EDGES_M)))
    return {CORONAL_ROWS[row]}


def pooling_groups(
    ch_names: Sequence[str], positions: np.ndarray, scheme: str
) -> Groups:
    """Group channels into lobes (or other partitions) for intra/inter-lobe pooling.

    Parameters
    ----------
    ch_names : sequence of str, length C
        Channel names (canonical, bipolar ``A-B``, or custom names with positions).
    positions : ndarray, shape (C, 3)
        Channel positions (metres, fixed head frame).
    scheme : {"functional", "hemisphere", "sagittal", "coronal", "mean"}
        See the module docstring for every rule and threshold.

    Returns
    -------
    groups : Groups
        Names (in the scheme's fixed order, empty groups dropped) and mask (G, C) bool. The
        assignment of a channel depends only on its name and position, so permuting channels
        permutes the mask columns.
    """
    check_option("scheme", scheme, POOLING_SCHEMES)
    positions = np.asarray(positions, dtype=np.float64).reshape(len(ch_names), 3)
    if scheme == "mean":
        return Groups(("All",), np.ones((1, len(ch_names)), dtype=bool))
    order = {"functional": FUNCTIONAL_LOBES, "hemisphere": HEMISPHERES,
             "sagittal": SAGITTAL_CHAINS, "coronal": CORONAL_ROWS}[scheme]
    member = []
    for name, pos in zip(ch_names, positions):
        if scheme == "functional":
            member.append(_functional(name, pos))
        elif scheme == "hemisphere":
            member.append(_hemisphere(pos))
        elif scheme == "sagittal":
            member.append(_sagittal(name, pos))
        else:
            member.append(_coronal(pos))
    mask = np.array([[g in m for m in member] for g in order], dtype=bool).reshape(len(order), -1)
    keep = mask.any(axis=1)
    return Groups(tuple(g for g, k in zip(order, keep) if k), mask[keep])


def groups_as(ch_names: Sequence[str], positions: np.ndarray, scheme: str,
              names: Sequence[str]) -> np.ndarray:
    """The :func:`pooling_groups` mask of one montage laid out on a given list of groups.

    A model trained on recordings that each keep their own channels pools into the groups of
    all of them; a montage without a channel in one of those groups gets an all-False row there
    (the head then sees zeros, as :func:`neuript.model.heads.group_pool` defines).

    Parameters
    ----------
    ch_names : sequence of str, length C
    positions : ndarray, shape (C, 3), metres
    scheme : str
        As :func:`pooling_groups`.
    names : sequence of str, length G
        The groups to lay the mask on (a model's ``group_names``).

    Returns
    -------
    mask : ndarray, shape (G, C), bool

    Raises
    ------
    ChannelError
        The montage has a channel in a group that ``names`` lacks (the model has no weights for
        it).
    """
    own = pooling_groups(ch_names, positions, scheme)
    extra = [g for g in own.names if g not in names]
    if extra:
        raise ChannelError(None, f"channels in pooling group(s) {extra}, which the model's "
                                 f"groups {list(names)} do not include")
    mask = np.zeros((len(names), len(ch_names)), dtype=bool)
    for g, row in zip(own.names, own.mask):
        mask[list(names).index(g)] = row
    return mask


def is_reference_channel(raw: str) -> bool:
    """True for ear/mastoid reference differences such as ``"EEG A2-A1"``."""
    canon = canonical_name(raw)
    return canon is not None and canon in _tables()["reference_channels"]


@functools.cache
def _kind_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    table = _tables()["channel_kind_patterns"]
    return tuple(
        (kind, re.compile(rf"^(?:EEG[ _-]?)?(?:{'|'.join(pats)})", re.IGNORECASE))
        for kind, pats in table.items()
        if not kind.startswith("_")
    )


def channel_kind(raw: str) -> str:
    """Guess a channel's type from its name, for readers that call everything EEG.

    Parameters
    ----------
    raw : str
        Name as written in the file.

    Returns
    -------
    kind : str
        ``"ref"`` for ear/mastoid reference differences (``"EEG A2-A1"``); ``"ecg"``, ``"eog"``,
        ``"emg"``, ``"resp"``, ``"stim"`` or ``"misc"`` when the name says so
        (``resources/channels.json``); otherwise ``"eeg"``.
    """
    if is_reference_channel(raw):
        return "ref"
    name = raw.strip()
    for kind, pattern in _kind_patterns():
        if pattern.match(name):
            return kind
    return "eeg"
