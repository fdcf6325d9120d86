"""Many writers, one corpus: the shard fragments of ``prepare --shard i/n`` and their merge.

A run with ``shard=(i, n)`` never writes the corpus-wide files (``manifest.csv``,
``montages.json``, ``skipped.json``, ``summary.json``). It writes its parts and shard arrays as
any run does, then its own fragment ``manifest.shard-<i>-of-<n>.json``::

    {"format", "shard": [i, n], "config": <config.json body>, "files_sha256", "n_files",
     "parts": {<key>: <sha256 of parts/<key>.json>}}

and its own ``summary.shard-<i>-of-<n>.json``. ``files_sha256`` fingerprints the whole sorted
input list before it was split (file names and sizes, so the same on every host whatever the
mount point): shards cut from different lists could miss or repeat files. Each part records
the size and sha256 of its ``.npy``, so a fragment pins every byte its windows come from.

:func:`merge_corpus` assembles fragments from one or more folders (one shared folder, or one
folder per host) into one corpus. It refuses, naming the file: a missing or repeated shard, a
fragment made with another configuration or another input list, a part or array whose bytes
differ from their hash. Only then does it copy (hard-link where possible) the parts and arrays
into the output folder and write the corpus files, under the output's ``.corpus.lock``. A shard
run calls it on its own folder when it finds every fragment of its ``n`` there, so shards
writing into one shared folder need no extra step: the last to finish assembles the corpus.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple

from neuript.data import store
from neuript.data.locks import hold_lock
from neuript.errors import NeuriptError
from neuript.files import sha256_file

log = logging.getLogger(__name__)

FRAGMENT_RE = re.compile(r"manifest\.shard-(\d+)-of-(\d+)\.json")
"""File name of a shard's fragment; groups: i, n."""
CORPUS_LOCK = ".corpus.lock"
"""Lock file held while a process checks ``config.json`` or writes the corpus-wide files."""
CORPUS_LOCK_WAIT_S = 600.0
"""How long (s) a writer waits for another one to finish with the corpus-wide files."""


def shard_tag(shard: tuple[int, int]) -> str:
    """``"shard-0-of-2"`` for ``(0, 2)``: the infix of a shard's fragment and summary."""
    return f"shard-{shard[0]}-of-{shard[1]}"


def files_sha256(files: Sequence[Path]) -> str:
    """Fingerprint of a sorted input list: sha256 of each file's name and size, in order."""
    text = "\n".join(f"{f.name}\t{f.stat().st_size}" for f in files)
    return hashlib.sha256(text.encode()).hexdigest()



def corpus_lock(out: Path, what: str) -> AbstractContextManager[None]:
    """The lock of ``out``'s corpus-wide files (waits for another writer to finish with them)."""
    return hold_lock(out / CORPUS_LOCK, what, "wait for it to finish",
                     wait_s=CORPUS_LOCK_WAIT_S)


def write_fragment(out: Path, shard: tuple[int, int], config: Mapping[str, Any],
                   fingerprint: str, n_files: int, keys: Iterable[str]) -> Path:
    """Write shard ``(i, n)``'s fragment, listing the committed parts ``keys`` with their hash."""
    parts = {k: sha256_file(out / "parts" / f"{k}.json") for k in sorted(keys)}
    path = out / f"manifest.{shard_tag(shard)}.json"
    store._atomic_json(path, {"format": store.FORMAT_VERSION, "shard": list(shard),
                              "config": dict(config), "files_sha256": fingerprint,
                              "n_files": n_files, "parts": parts})
    return path


class Fragment(NamedTuple):
    """One shard's fragment, as found in a folder."""

    path: Path
    """The fragment file."""
    shard: tuple[int, int]
    """``(i, n)``."""
    body: dict
    """Its content (see the module docstring)."""


def read_fragments(root: Path) -> list[Fragment]:
    """The fragments in corpus folder ``root``, sorted by shard."""
    found = []
    for path in sorted(root.glob("manifest.shard-*-of-*.json")):
        match = FRAGMENT_RE.fullmatch(path.name)
        if match:
            found.append(Fragment(path, (int(match[1]), int(match[2])),
                                  json.loads(path.read_text())))
    return sorted(found, key=lambda f: f.shard)


def _check_set(fragments: Sequence[Fragment]) -> list[Fragment]:
    """Shards 0..n-1 of one n and one config, once each (an identical copy is dropped)."""
    first = fragments[0]
    counts = sorted({f.shard[1] for f in fragments})
    if len(counts) > 1:
        raise NeuriptError(f"{first.path.parent}: fragments of different shard counts "
                           f"({', '.join(f'of {n}' for n in counts)}); pass only the folders "
                           "of one --shard i/n run")
    n = counts[0]
    seen: dict[int, Fragment] = {}
    for frag in fragments:
        if frag.shard[0] in seen and seen[frag.shard[0]].body == frag.body:
            continue  # the same fragment, copied into a merged folder
        if frag.shard[0] in seen:
            raise NeuriptError(f"{frag.path}: shard {frag.shard[0]}/{n} is also in "
                               f"{seen[frag.shard[0]].path}; pass each shard's folder once")
        seen[frag.shard[0]] = frag
    missing = [i for i in range(n) if i not in seen]
    if missing:
        raise NeuriptError(f"{first.path.parent}: shard(s) {', '.join(f'{i}/{n}' for i in missing)}"
                           f" missing; run `neuript prepare ... --shard {missing[0]}/{n}` and pass"
                           " its folder too")
    fragments = [seen[i] for i in range(n)]
    first = fragments[0]
    for frag in fragments[1:]:
        diffs = store.config_diffs(frag.body["config"], first.body["config"],
                                   ("this shard has", f"shard 0/{n} has"))
        if diffs:
            raise NeuriptError(f"{frag.path}: made with a different preprocessing configuration "
                               f"than {first.path.name} ({'; '.join(diffs)}); re-run shard "
                               f"{frag.shard[0]}/{n} with the same --config")
        if frag.body["files_sha256"] != first.body["files_sha256"]:
            raise NeuriptError(f"{frag.path}: cut from a different input list "
                               f"({frag.body['n_files']} files) than {first.path.name} "
                               f"({first.body['n_files']} files); re-run every --shard with the "
                               "same inputs")
    return fragments


def _verified_parts(frag: Fragment) -> dict[str, tuple[bytes, dict]]:
    """Key -> (part bytes, part) of a fragment, after checking every part's and array's hash."""
    root = frag.path.parent
    parts = {}
    for key, digest in frag.body["parts"].items():
        path = root / "parts" / f"{key}.json"
        if not path.is_file():
            raise NeuriptError(f"{path}: listed in {frag.path.name} but missing; re-run "
                               f"`neuript prepare ... --shard {frag.shard[0]}/{frag.shard[1]}`")
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != digest:
            raise NeuriptError(f"{path}: its bytes differ from the hash in {frag.path.name} "
                               "(changed after the shard run); delete it and re-run "
                               f"`neuript prepare ... --shard {frag.shard[0]}/{frag.shard[1]}`")
        part = json.loads(raw)
        if part.get("shard"):
            _check_array(root / part["shard"], part, frag)
        parts[key] = (raw, part)
    return parts


def _check_array(path: Path, part: dict, frag: Fragment) -> None:
    """Refuse a shard array whose size or sha256 differs from its part's record."""
    redo = (f"delete it and its part, then re-run `neuript prepare ... --shard "
            f"{frag.shard[0]}/{frag.shard[1]}`")
    if "shard_sha256" not in part:
        raise NeuriptError(f"{path}: its part has no shard_sha256 (written by an older neuript); "
                           f"{redo}")
    if not path.is_file() or path.stat().st_size != part["shard_bytes"] or (
            sha256_file(path) != part["shard_sha256"]):
        raise NeuriptError(f"{path}: missing, or its bytes differ from the size and sha256 in "
                           f"its part (changed after the shard run); {redo}")


def _gather(fragments: Sequence[Fragment]) -> dict[str, tuple[Path, bytes, dict]]:
    """Key -> (source folder, part bytes, part) over all fragments; a key in two must agree."""
    gathered: dict[str, tuple[Path, bytes, dict]] = {}
    owner: dict[str, Path] = {}
    for frag in fragments:
        for key, (raw, part) in _verified_parts(frag).items():
            if key in gathered and gathered[key][1] != raw:
                raise NeuriptError(f"{frag.path}: part {key} differs from the one in "
                                   f"{owner[key]}; re-run every --shard with the same inputs")
            gathered.setdefault(key, (frag.path.parent, raw, part))
            owner.setdefault(key, frag.path)
    return gathered


def _place(src: Path, dst: Path) -> None:
    """Put a copy of file ``src`` at ``dst`` (a hard link where possible), atomically."""
    if dst.exists() and os.path.samefile(src, dst):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or no hard links there
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _merge_locked(fragments: Sequence[Fragment], out: Path, t0: float) -> store.CorpusSummary:
    """Verify ``fragments`` and write them into ``out`` as one corpus (``out``'s lock held)."""
    fragments = _check_set(fragments)
    gathered = _gather(fragments)
    config = fragments[0].body["config"]
    store._check_config(out, config)
    (out / "parts").mkdir(exist_ok=True)
    for key, (root, raw, part) in gathered.items():
        if root.resolve() != out.resolve():
            if part.get("shard"):
                _place(root / part["shard"], out / part["shard"])
            store._atomic_write(out / "parts" / f"{key}.json", raw)
    for frag in fragments:
        if frag.path.parent.resolve() != out.resolve():
            store._atomic_write(out / frag.path.name, frag.path.read_bytes())
    parts = {part["source"]: part for _, _, part in gathered.values()}
    reports = [store._input_report(
        f"{frag.path.parent} (shard {frag.shard[0]}/{frag.shard[1]})",
        [Path(gathered[k][2]["source"]) for k in frag.body["parts"]], [], 0, parts)
        for frag in fragments]
    total = store._input_report("all shards", [Path(s) for s in parts], [], 0, parts)
    return store._finish(out, parts, [], time.perf_counter() - t0, 1, len(parts),
                         (reports, total))


def merge_corpus(dirs: Sequence[str | os.PathLike] | str | os.PathLike,
                 out_dir: str | os.PathLike) -> store.CorpusSummary:
    """Assemble the shard fragments in ``dirs`` into one corpus in ``out_dir``.

    Parameters
    ----------
    dirs : path-like or sequence of path-like
        Folders written by ``prepare --shard i/n`` (one shared folder, or one per host); together
        they must hold every shard 0..n-1 of one n exactly once.
    out_dir : path-like
        The corpus folder to write (may be one of ``dirs``); parts and arrays are hard-linked or
        copied into it. Nothing is written there unless every check passes.

    Returns
    -------
    summary : CorpusSummary
        Of the merged corpus (one input report per shard); also written to ``summary.json``.
    """
    t0 = time.perf_counter()
    roots = [Path(d) for d in ([dirs] if isinstance(dirs, str | os.PathLike) else dirs)]
    fragments = []
    for root in roots:
        found = read_fragments(root)
        if not found:
            raise NeuriptError(f"{root}: no shard fragment (manifest.shard-I-of-N.json) here; "
                               "build one with `neuript prepare ... --shard i/n`")
        fragments += found
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with corpus_lock(out, "the corpus"):
        return _merge_locked(fragments, out, t0)


def merge_if_complete(out: Path, shard: tuple[int, int],
                      fingerprint: str) -> store.CorpusSummary | None:
    """Merge ``out``'s fragments if all n of this run's shard count are there, cut alike.

    Called by a shard run after writing its fragment; returns None (and logs what is missing)
    while other shards are still to come.
    """
    t0 = time.perf_counter()
    n = shard[1]
    with corpus_lock(out, "the corpus"):
        fragments = [f for f in read_fragments(out) if f.shard[1] == n]
        ready = {f.shard[0] for f in fragments if f.body.get("files_sha256") == fingerprint}
        if ready != set(range(n)):
            log.info("prepare: shard %d/%d done; waiting for shard(s) %s before the "
                           "corpus is assembled", shard[0], n, sorted(set(range(n)) - ready))
            return None
        return _merge_locked(fragments, out, t0)
