"""Corpus-building throughput: real ADHD + EEGMMIDB + Muse recordings -> a window corpus.

Writes ``corpus.json`` and ``corpus.md`` into ``out_dir``: hours of EEG, windows, rejections by
reason (in all and per dataset), wall and CPU time, and the throughput in hours of EEG per
core-minute (``hours / (wall minutes x workers)``; the issue's target is >= 100) and per
CPU-minute (``hours / CPU minutes`` of the workers; the same figure measured in CPU time, which
other programs sharing the cores do not dilute).

Run: ``.venv/bin/python -m benchmarks.bench_corpus [--workers 2] [--reject-abs-uv 100|none]
[--out benchmarks/results]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

from neuript.config import PreprocessConfig, to_dict
from neuript.data.store import WindowStore, prepare_corpus
from neuript.paths import data_root

log = logging.getLogger(__name__)

TARGET_H_PER_CORE_MIN = 100.0
DATASETS: tuple[str, ...] = ("adhd", "eegmmidb", "muse")
PAPER_REJECT_ABS_UV = 100.0
"""The paper's amplitude threshold (µV)."""
BEFORE = {"hours_per_core_minute": 2.3, "hours_per_cpu_minute": 16.6, "wall_s": 84.0,
          "cpu_s": 22.9, "workers": 2,
          "pipeline": "MNE band-pass + notch at the recording's rate, then resample; monopolar"}
"""The same corpus with the first pipeline (benchmarks/results before the speed-up), for the
report's before/after line."""


def bench_config(reject_abs_uv: float | None = PAPER_REJECT_ABS_UV) -> PreprocessConfig:
    """The paper's pretraining pipeline with ``montage="auto"``.

    ``"auto"`` gives the 10-20 files (ADHD, EEGMMIDB) the paper's TCP montage and lets the
    4-channel Muse files keep their own electrodes, so all three datasets enter the corpus.

    Parameters
    ----------
    reject_abs_uv : float | None
        Amplitude rejection threshold (µV); None disables it.
    """
    return PreprocessConfig(montage="auto", reject_abs_uv=reject_abs_uv)


def _per_dataset(corpus: Path, inputs: list[Path]) -> dict[str, dict]:
    """Files, hours, kept and rejected windows per input dataset, from the corpus parts."""
    table = {p.name: {"files": 0, "hours": 0.0, "windows": 0, "rejected": {}} for p in inputs}
    for path in (corpus / "parts").glob("*.json"):
        part = json.loads(path.read_text())
        name = next((p.name for p in inputs if part["source"].startswith(str(p))), "other")
        entry = table.setdefault(name, {"files": 0, "hours": 0.0, "windows": 0, "rejected": {}})
        entry["files"] += 1
        entry["hours"] += part.get("duration_s", 0.0) / 3600
        entry["windows"] += len(part.get("starts", []))
        for reason, count in part.get("rejected", {}).items():
            entry["rejected"][reason] = entry["rejected"].get(reason, 0) + count
    return table


def run(out_dir: Path, *, workers: int = 2, root: Path | None = None,
        reject_abs_uv: float | None = PAPER_REJECT_ABS_UV) -> dict:
    """Build the corpus in a temporary folder and write corpus.json / corpus.md to ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Where the result files go.
    workers : int
        Worker processes of :func:`~neuript.data.store.prepare_corpus`.
    root : Path | None
        Data root (default :func:`neuript.paths.data_root`).
    reject_abs_uv : float | None
        Amplitude rejection threshold (µV; the paper's 100 by default); None disables it.

    Returns
    -------
    result : dict
        What corpus.json holds.
    """
    root = data_root() if root is None else root
    cfg = bench_config(reject_abs_uv)
    inputs = [root / name for name in DATASETS if (root / name).exists()]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_import = time.perf_counter()
    for name in ("scipy.signal", "scipy.fft", "mne.filter", "mne.io", "pandas"):
        importlib.import_module(name)  # a one-off start-up cost, not throughput: timed apart
    startup_s = time.perf_counter() - t_import
    with tempfile.TemporaryDirectory(prefix="neuript-corpus-") as tmp:
        t0 = time.perf_counter()
        summary = prepare_corpus(inputs, tmp, cfg, workers=workers, progress=False)
        wall = time.perf_counter() - t0
        t1 = time.perf_counter()
        store = WindowStore(tmp) if summary.windows else None
        n_read = min(len(store), 2000) if store is not None else 0
        for i in range(n_read):
            store.window(i)
        read_s = time.perf_counter() - t1
        disk_mb = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20
        per_dataset = _per_dataset(Path(tmp), inputs)
    result = {
        "datasets": [str(p) for p in inputs],
        "config": to_dict(cfg),
        "reject_abs_uv": reject_abs_uv,
        "workers": workers,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "files_done": summary.files_done,
        "files_skipped": summary.files_skipped,
        "skipped": summary.skipped,
        "hours_eeg": summary.hours,
        "windows": summary.windows,
        "rejected": summary.rejected,
        "per_dataset": per_dataset,
        "montages": {k: {"n_channels": len(v["ch_names"]), "n_files": v["n_files"],
                         "n_windows": v["n_windows"]} for k, v in summary.montages.items()},
        "startup_import_s": startup_s,
        "wall_s": wall,
        "hours_per_core_minute": summary.hours / (wall / 60 * workers),
        "cpu_s": summary.cpu_s,
        "hours_per_cpu_minute": summary.hours_per_cpu_minute,
        "load_average_1min": os.getloadavg()[0],
        "target_hours_per_core_minute": TARGET_H_PER_CORE_MIN,
        "prepare_elapsed_s": summary.elapsed_s,
        "store_open_and_read_s": read_s,
        "windows_read": n_read,
        "disk_mb": disk_mb,
        "manifest_open": manifest_open(),
    }
    (out_dir / "corpus.json").write_text(json.dumps(result, indent=1))
    (out_dir / "corpus.md").write_text(_markdown(result))
    return result


MANIFEST_ROWS = 500_000
"""Windows of the synthetic manifest the open benchmark reads (issue 14's 500k-window case)."""
_OPEN_CHILD = """
import json, os, sys, time
from pathlib import Path
import numpy as np
import pandas
from neuript.data import store
def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
path, mode = Path(sys.argv[1]), sys.argv[2]
before = rss_mb()
t0 = time.perf_counter()
if mode == "csv":
    cols = {c: a if v is None else np.asarray(v, dtype=object)[a]
            for c, (a, v) in store._parse_manifest(path).items()}
else:
    cols = store._read_manifest_columns(path)
s = time.perf_counter() - t0
print(json.dumps({"s": s, "rss_mb": rss_mb() - before, "rows": len(cols["start"])}))
"""
"""One open in a fresh process (pandas and neuript already imported): seconds, and the resident
memory it added while the columns are held."""


def manifest_open(rows: int = MANIFEST_ROWS, rounds: int = 2) -> dict:
    """Open a synthetic ``rows``-window manifest by parsing manifest.csv and by mapping its
    columns/ (:data:`neuript.data.store.COLUMNS_DIR`), each in a fresh process, alternating.

    2,000 sources of 250 windows, 400 subjects, unique 16-hex hashes, as prepare writes them.
    """
    import hashlib
    import subprocess
    import sys

    import numpy as np

    from neuript.data import store

    rng = np.random.default_rng(0)
    lines = [",".join(store.MANIFEST_COLUMNS)]
    for i in range(rows):
        src = i // 250
        lines.append(f"{i},/data/site{src % 7}/sub-{src % 400:03d}/rec{src:05d}.edf,"
                     f"sub-{src % 400:03d},{src % 3},{(i % 250) * 256},20ch-0123abcd,,"
                     f"{hashlib.sha1(rng.bytes(8)).hexdigest()[:16]},"
                     f"shards/20ch-0123abcd/rec{src:05d}.npy,{i % 250}")
    manifest = ("\n".join(lines) + "\n").encode()
    out = {"rows": rows, "csv": [], "columns": []}
    with tempfile.TemporaryDirectory(prefix="neuript-manifest-") as tmp:
        path = Path(tmp) / "manifest.csv"
        path.write_bytes(manifest)
        store._write_columns(Path(tmp), manifest)
        out["csv_mb"] = len(manifest) / 2**20
        out["columns_mb"] = sum(p.stat().st_size for p in (Path(tmp) / store.COLUMNS_DIR
                                                           ).iterdir()) / 2**20
        for _ in range(rounds):
            for mode in ("csv", "columns"):
                done = subprocess.run([sys.executable, "-c", _OPEN_CHILD, str(path), mode],
                                      check=True, capture_output=True, text=True)
                out[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    for mode in ("csv", "columns"):
        out[f"{mode}_s"] = float(np.median([r["s"] for r in out[mode]]))
        out[f"{mode}_rss_mb"] = float(np.median([r["rss_mb"] for r in out[mode]]))
    return out


def _markdown(r: dict) -> str:
    rejected = ", ".join(f"{k}: {v}" for k, v in r["rejected"].items()) or "none"
    montages = "; ".join(f"{v['n_channels']} ch: {v['n_files']} files, {v['n_windows']} windows"
                         for v in r["montages"].values())
    reject = "off" if r["reject_abs_uv"] is None else f"|x| > {r['reject_abs_uv']:g} µV"
    ok_wall = "meets" if r["hours_per_core_minute"] >= r["target_hours_per_core_minute"] else \
        "misses"
    ok_cpu = "meets" if r["hours_per_cpu_minute"] >= r["target_hours_per_core_minute"] else \
        "misses"
    rows = [
        f"| {name} | {d['files']} | {d['hours']:.2f} | {d['windows']} | "
        f"{', '.join(f'{k}: {v}' for k, v in d['rejected'].items() if v) or 'none'} |"
        for name, d in r["per_dataset"].items()
    ]
    return "\n".join([
        "# Corpus building (benchmarks/bench_corpus.py)",
        "",
        f"Real recordings ({', '.join(Path(d).name for d in r['datasets'])}) -> 64 Hz, "
        "0.1-30 Hz, montage `auto` (TCP where every TCP electrode exists, else the device's "
        f"own electrodes), 4-s windows, rejection {reject} / flat / clipped; the 50 Hz notch is "
        "a no-op at 64 Hz (above Nyquist) and skipped; "
        f"{r['workers']} worker processes on a {r['cpu_count']}-core machine.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| files done / skipped | {r['files_done']} / {r['files_skipped']} |",
        f"| hours of EEG | {r['hours_eeg']:.2f} |",
        f"| windows kept | {r['windows']} |",
        f"| windows rejected | {rejected} |",
        f"| montages | {montages} |",
        f"| wall time (after {r['startup_import_s']:.1f} s of one-off library imports) | "
        f"{r['wall_s']:.1f} s |",
        f"| **hours of EEG per core-minute** (wall time x workers) | "
        f"**{r['hours_per_core_minute']:.1f}** ({ok_wall} the target of "
        f"{r['target_hours_per_core_minute']:.0f}) |",
        f"| CPU time in the workers | {r['cpu_s']:.1f} s |",
        f"| **hours of EEG per CPU-minute** (CPU time, robust to other load) | "
        f"**{r['hours_per_cpu_minute']:.1f}** ({ok_cpu} the target) |",
        f"| before the speed-up ({BEFORE['pipeline']}) | {BEFORE['hours_per_core_minute']} "
        f"h per core-minute, {BEFORE['hours_per_cpu_minute']} h per CPU-minute "
        f"({BEFORE['workers']} workers, {BEFORE['wall_s']:.0f} s wall, {BEFORE['cpu_s']} s CPU) |",
        f"| 1-min load average at the end (machine shared?) | {r['load_average_1min']:.1f} |",
        f"| corpus size on disk | {r['disk_mb']:.1f} MB |",
        f"| open store + read {r['windows_read']} windows | {r['store_open_and_read_s']:.2f} s |",
        "",
        *_open_markdown(r.get("manifest_open")),
        "| dataset | files | hours | windows kept | rejected |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ])


def _open_markdown(m: dict | None) -> list[str]:
    """The manifest-open table (absent in results written before it existed)."""
    if not m:
        return []
    return [
        f"Opening a synthetic {m['rows']:,}-window manifest, each way in a fresh process "
        f"({len(m['csv'])} alternating rounds, medians; imports done before the clock starts):",
        "", "| read | on disk | open time | resident memory added |", "|---|---|---|---|",
        f"| parse manifest.csv | {m['csv_mb']:.0f} MB | {m['csv_s']:.2f} s | "
        f"{m['csv_rss_mb']:.0f} MB |",
        f"| map columns/ (what WindowStore reads) | {m['columns_mb']:.0f} MB | "
        f"{m['columns_s']:.2f} s ({m['csv_s'] / max(m['columns_s'], 1e-9):.1f}x faster) | "
        f"{m['columns_rss_mb']:.0f} MB |", ""]


def _threshold(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reject-abs-uv", type=_threshold, default=PAPER_REJECT_ABS_UV,
                        help="amplitude rejection threshold in µV, or 'none' (default: 100)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run(args.out, workers=args.workers, reject_abs_uv=args.reject_abs_uv)
    log.info("%s", (args.out / "corpus.md").read_text())
    log.info("hours per core-minute: %.1f, per CPU-minute: %.1f",
             result["hours_per_core_minute"], result["hours_per_cpu_minute"])


if __name__ == "__main__":
    main()
