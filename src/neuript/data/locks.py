"""Lock files for a corpus folder that several processes (or machines) write at once.

A lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local disks and NFSv3+) holding
``{"pid", "host", "started"}`` of its holder, and removed when the holder is done. A lock whose
holder is on this host and no longer alive (``kill -9``, a crash) is stale: the next process
breaks it, under a second short-lived ``<lock>.break`` file so that two processes that both see
the same stale lock cannot both take it. A holder on another host cannot be checked from here;
its lock stays until that host removes it (or a person deletes it).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from neuript.errors import NeuriptError

BREAK_STALE_S = 30.0
"""A ``.break`` file older than this (s) was left by a process killed while breaking a lock."""
POLL_S = 0.05
"""How often a waiting process looks at the lock again (s)."""


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` on this host exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):  # no /proc (macOS), or it ended just now: ask again later
        return True
    return state != "Z"


def _holder(path: Path) -> tuple[bytes, dict]:
    """The lock's bytes and its parsed holder (``{}`` while the creator is still writing it)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return b"", {"gone": True}
    try:
        holder = json.loads(raw)
    except ValueError:
        return raw, {}
    return raw, holder if isinstance(holder, dict) and "pid" in holder else {}


def _is_stale(path: Path, holder: dict) -> bool:
    """True if the holder of ``path`` is known to be dead."""
    if not holder:  # created but not yet written: stale only if that is long ago
        try:
            return time.time() - path.stat().st_mtime > BREAK_STALE_S
        except FileNotFoundError:
            return False
    return holder.get("host") == socket.gethostname() and not pid_alive(int(holder["pid"]))


def _break_stale(path: Path, seen: bytes) -> None:
    """Remove ``path`` if it still holds ``seen`` (a stale lock), one breaker at a time."""
    breaker = path.with_name(path.name + ".break")
    try:
        fd = os.open(breaker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - breaker.stat().st_mtime > BREAK_STALE_S:
                breaker.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return
    try:
        if path.exists() and path.read_bytes() == seen:
            path.unlink()
    finally:
        os.close(fd)
        breaker.unlink(missing_ok=True)


def _try_create(path: Path) -> bytes:
    """Create the lock ``path`` holding this process; its bytes, or ``b""`` if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return b""
    body = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode()
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
    return body


@contextmanager
def hold_lock(path: str | os.PathLike, what: str, hint: str, *,
              wait_s: float = 0.0) -> Iterator[None]:
    """Hold the lock file ``path`` while the block runs.

    Parameters
    ----------
    path : path-like
        The lock file; its folder must exist.
    what : str
        What the lock protects, for the error (``"shard 0/2 of corpus/"``).
    hint : str
        What the user can do when it is held (``"wait for it, or run another --shard"``).
    wait_s : float
        Wait up to this long (s) for a live holder to finish; 0 refuses at once.

    Raises
    ------
    NeuriptError
        One line naming the lock file, its holder and ``hint``, if a live process holds it.
    """
    path = Path(path)
    deadline = time.monotonic() + wait_s
    while not (mine := _try_create(path)):
        seen, holder = _holder(path)
        if holder.get("gone"):
            continue
        if _is_stale(path, holder):
            _break_stale(path, seen)
            continue
        if time.monotonic() >= deadline:
            who = (f"pid {holder['pid']} on {holder['host']} since {holder['started']}"
                   if holder else "a process that is starting")
            raise NeuriptError(f"{path}: {what} is being written by {who}; {hint}")
        time.sleep(POLL_S)
    try:
        yield
    finally:
        if _holder(path)[0] == mine:  # still ours (not broken by a process that misjudged it)
            path.unlink()
