"""File helpers shared by every writer: content hashes, atomic files and atomic folders."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (memory O(1) for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary name beside it, then :func:`os.replace`.

    A crash or a full disk never leaves ``path`` half-written: it holds the old content or the
    new. The parent folder is created; the temporary file is removed when the write fails
    (the OSError propagates). Text is written as UTF-8.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_directory(target: str | os.PathLike, write: Callable[[Path], None], *,
                     tmp_name: str | None = None) -> Path:
    """Run ``write(tmp)`` in an empty folder beside ``target``, then swap it into place.

    An existing ``target`` stays whole until the new folder is complete: it is moved aside,
    the new one renamed in, and only then deleted (moved back if the rename fails). When
    ``write`` raises, the temporary folder is removed and ``target`` is untouched.

    Parameters
    ----------
    target : path-like
        The folder to create or replace (its parent is created).
    write : callable
        Fills the temporary folder it is given.
    tmp_name : str | None
        A fixed name for the temporary folder (cleared first), for callers that sweep up
        what a killed process left (training checkpoints); None: a fresh unique name.

    Returns
    -------
    target : Path
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if tmp_name is None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    else:
        tmp = target.parent / tmp_name
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    try:
        write(tmp)
        if not target.exists():
            os.replace(tmp, target)
            return target
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            os.replace(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
