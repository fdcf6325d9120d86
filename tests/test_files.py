"""The shared writers of neuript.files: a failure never leaves a half-written file or folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from neuript.files import atomic_directory, atomic_write, sha256_file


def _fill(text: str):
    def write(tmp: Path) -> None:
        (tmp / "a.txt").write_text(text)
    return write


def test_atomic_directory_replaces_whole_and_keeps_the_old_folder_on_failure(tmp_path):
    target = tmp_path / "sub" / "model"
    assert atomic_directory(target, _fill("one")) == target
    assert (target / "a.txt").read_text() == "one"
    (target / "stale.txt").write_text("x")
    atomic_directory(target, _fill("two"))
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]  # replaced, not merged
    assert (target / "a.txt").read_text() == "two"

    def broken(tmp: Path) -> None:
        (tmp / "a.txt").write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_directory(target, broken)
    assert (target / "a.txt").read_text() == "two"  # the old folder is whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]  # no temporaries


def test_atomic_directory_with_a_fixed_temporary_name_clears_a_stale_one(tmp_path):
    stale = tmp_path / ".tmp-step_1-7"
    stale.mkdir()
    (stale / "junk").write_text("left by a killed save")
    atomic_directory(tmp_path / "step_1", _fill("ok"), tmp_name=".tmp-step_1-7")
    assert not stale.exists() and (tmp_path / "step_1" / "a.txt").read_text() == "ok"
    assert sorted(p.name for p in (tmp_path / "step_1").iterdir()) == ["a.txt"]


def test_atomic_write_and_sha256(tmp_path):
    path = atomic_write(tmp_path / "d" / "f.txt", "héllo")
    assert path.read_bytes() == "héllo".encode()
    assert sha256_file(path) == hashlib.sha256("héllo".encode()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]
