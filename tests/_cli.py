"""Run the ``neuript`` command in this process, as the CLI tests do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from neuript.cli import main


class CliRun(NamedTuple):
    """Exit status and captured output of one ``neuript`` call."""

    code: int
    out: str
    err: str


def run_cli(argv: Sequence[str], capsys) -> CliRun:
    """``neuript argv`` with pytest's ``capsys``; exit status 0 when it returns normally."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_info:
        code = int(exit_info.code or 0)
    captured = capsys.readouterr()
    return CliRun(code, captured.out, captured.err)
