"""The flag engine of the ``neuript`` command: argparse flags generated from config dataclasses.

Every field of a config dataclass becomes a dotted flag (``--model.d_model 64``) with its
docstring as help and its ``Literal`` values as choices; :func:`build_config` resolves, in order
of precedence (last wins), the dataclass defaults, ``--config file.yaml``, the command's
convenience flags, the dotted flags and ``--set key=value``. Values are read as YAML scalars
(:func:`parse_value`: ``64``, ``true``, ``null``, ``[1, 2, 2]``; ``1,2,2`` works for lists;
``None``/``none``/``~`` mean None). :func:`show_config` prints the resolved settings and
:func:`save_config` writes them beside a finished run's output. :mod:`neuript.cli` holds the
commands and only parses and dispatches.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from neuript.config import field_docs
from neuript.errors import NeuriptError


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass in ``tp`` (also inside ``X | None``), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if found else None
    return None


def _is_dict(tp: Any) -> bool:
    return tp is dict or typing.get_origin(tp) is dict


def add_dataclass_flags(parser: argparse.ArgumentParser, cls: type, prefix: str = "",
                        defaults: Mapping[str, Any] | None = None) -> None:
    """Add ``--prefix.field VALUE`` for every leaf field of ``cls`` (nested dataclasses too).

    ``defaults``: dotted name → the command's own default where it differs from the dataclass's
    (shown in the help; the command applies it, see :data:`PREPARE_DEFAULTS`).
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        name, tp = f"{prefix}{f.name}", hints[f.name]
        if (inner := _dataclass_of(tp)) is not None:
            add_dataclass_flags(parser, inner, f"{name}.")
        elif not _is_dict(tp):
            if typing.get_origin(tp) is typing.Literal:
                shown = " | ".join(str(a) for a in typing.get_args(tp))
            else:
                shown = getattr(tp, "__name__", str(tp)).replace("typing.", "")
            if defaults and name in defaults:
                shown += f"; default here: {defaults[name]}"
            try:
                parser.add_argument(f"--{name}", dest=f"set:{name}", metavar="V",
                                    default=argparse.SUPPRESS,
                                    help=f"{docs.get(f.name, '')} ({shown})".strip())
            except argparse.ArgumentError:  # a convenience flag of the same name exists
                continue


NONE_WORDS = frozenset({"none", "null", "~"})
"""CLI values read as None in any letter case (YAML alone reads ``None`` as a string)."""


def parse_value(text: str) -> Any:
    """A CLI value as YAML (``64`` → int, ``null``/``None`` → None); ``a,b`` of numbers → a list."""
    if text.strip().lower() in NONE_WORDS:
        return None
    value = yaml.safe_load(text) if text.strip() else text
    if isinstance(value, str) and "," in value:
        parts = [yaml.safe_load(p) for p in value.split(",")]
        if all(isinstance(p, int | float) for p in parts):
            return parts
    return value


def _set_path(data: dict, cls: type, path: str, value: Any) -> None:
    """Put ``value`` at dotted ``path`` of the nested dict ``data`` shaped like ``cls``."""
    head, _, rest = path.partition(".")
    hints = typing.get_type_hints(cls)
    if head not in hints:
        known = ", ".join(f.name for f in dataclasses.fields(cls))
        raise NeuriptError(f"unknown setting {path!r} for {cls.__name__}; known: {known}")
    inner = _dataclass_of(hints[head])
    if not rest:
        data[head] = value
    elif inner is not None:
        if not isinstance(data.get(head), dict):
            data[head] = {}
        _set_path(data[head], inner, rest, value)
    elif _is_dict(hints[head]):
        data.setdefault(head, {})[rest] = value  # free dict: the rest is one (dotted) key
    else:
        raise NeuriptError(f"setting {path!r}: {head!r} of {cls.__name__} has no sub-fields")


def collect_settings(args: argparse.Namespace, flags: dict[str, str]) -> dict[str, Any]:
    """Dotted settings from convenience ``flags`` (dest → path), dotted flags and ``--set``."""
    out: dict[str, Any] = {}
    for dest, path in flags.items():
        if getattr(args, dest, None) is not None:
            out[path] = getattr(args, dest)
    for key, text in vars(args).items():
        if key.startswith("set:"):
            out[key[4:]] = parse_value(text)
    for item in args.set or []:
        key, sep, text = item.partition("=")
        if not sep:
            raise NeuriptError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = parse_value(text)
    return out


def build_config(cls: type, args: argparse.Namespace, flags: dict[str, str],
                 base: Callable[[dict], dict] | None = None) -> Any:
    """Defaults ← ``--config`` YAML ← flags ← ``--set``; ``base`` may fill derived sections."""
    from neuript.config import from_dict

    data: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if not path.is_file():
            raise NeuriptError(f"--config {path}: no such file")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise NeuriptError(f"--config {path}: expected a mapping of settings")
    for key, value in collect_settings(args, flags).items():
        _set_path(data, cls, key, value)
    return from_dict(cls, base(data) if base else data)


def deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


def show_config(cfg: Any, out_file: Path | None = None) -> str:
    """Print the resolved config as JSON; return the text for :func:`save_config`.

    ``out_file`` is not written here: a run records its settings only once it has succeeded
    (a failed run must not replace the side file of an earlier, good one).
    """
    from neuript.config import to_dict

    body = json.dumps(to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg, indent=2,
                      default=str)
    print(body, flush=True)
    return body


def save_config(body: str, out_file: Path | None) -> None:
    """Write the settings text beside a finished run's output (temporary name, then rename)."""
    if out_file is not None:
        from neuript.files import atomic_write

        atomic_write(out_file, body + "\n")


def common_flags(p: argparse.ArgumentParser, cls: type | None = None, prefix: str = "",
            defaults: Mapping[str, Any] | None = None) -> None:
    if cls is not None:
        p.add_argument("--config", help="YAML file of settings (see configs/)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="dotted override, e.g. model.d_model=64 (repeatable)")
    else:
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="task option, e.g. window_s=5 (repeatable)")
    p.add_argument("--data-root", help="data folder (default: $NEURIPT_DATA or ../shared/data)")
    if cls is not None:
        group = p.add_argument_group("all settings (dotted)")
        add_dataclass_flags(group, cls, prefix, defaults)  # type: ignore[arg-type]


