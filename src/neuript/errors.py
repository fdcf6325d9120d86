"""The project's user-facing errors and the one option-checking helper.

User errors raise :class:`NeuriptError` subclasses (which are ``ValueError``), naming the file or
parameter, the value received and what was expected. ``assert`` is only for internal invariants.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any


class NeuriptError(ValueError):
    """Base class of every user-facing error raised by neuript."""


class RecordingError(NeuriptError):
    """A recording cannot be read or used: corrupt, truncated, empty, NaN, wrong rate …

    Parameters
    ----------
    path : path-like | None
        The offending file (named first in the message).
    problem : str
        What is wrong and what was expected.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class ChannelError(RecordingError):
    """A channel name is unknown, or a required channel is missing."""


class ContractError(NeuriptError):
    """Data or a checkpoint breaks the input contract recorded with a model."""


class StreamError(NeuriptError):
    """A live (LSL) stream cannot be found, is ambiguous, or cannot be used as requested."""


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` naming all three.

    Parameters
    ----------
    name : str
        The parameter's name, as the user wrote it.
    value : Any
        The value received.
    allowed : iterable
        The accepted values.
    """
    allowed = tuple(allowed)
    if value not in allowed:
        raise NeuriptError(
            f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}"
        )
    return value


def read_json(path: str | os.PathLike, what: str = "JSON file",
              error: type[NeuriptError] = NeuriptError) -> dict[str, Any]:
    """Read a JSON object from ``path``; any failure is one ``error`` naming the file.

    Parameters
    ----------
    path : path-like
    what : str
        What the file is, for the message ("model config", "run metrics" …).
    error : type
        The :class:`NeuriptError` subclass to raise.

    Raises
    ------
    NeuriptError
        Missing or unreadable file, invalid JSON, or JSON that is not an object; the message
        never echoes the file's content.
    """
    import json
    from pathlib import Path

    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise error(f"{path}: no {what} here") from err
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read the {what} ({type(err).__name__})") from err
    except json.JSONDecodeError as err:
        raise error(f"{path}: the {what} is not valid JSON (line {err.lineno}, column "
                    f"{err.colno}); the folder is damaged: rewrite it (rerun the command that "
                    "made it)") from err
    if not isinstance(body, dict):
        raise error(f"{path}: the {what} must be a JSON object, got {type(body).__name__}")
    return body
