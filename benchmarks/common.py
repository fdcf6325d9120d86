"""What every benchmark part shares: options, the machine stamp, result files, markdown helpers.

Every part writes ``<stem>.json`` (the numbers, with the command, the date and the machine that
produced them) and ``<stem>.md`` (rendered from that JSON by a pure function), so RESULTS.md can
be regenerated from the JSON files alone.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class BenchOptions:
    """Settings shared by the benchmark parts (``python -m benchmarks.run`` flags)."""

    out_dir: Path = Path("benchmarks/results")
    """Where ``<part>.json`` / ``<part>.md`` go."""
    work_dir: Path = Path("benchmarks/work")
    """Corpus, pretraining runs and fine-tuning run folders (reused across invocations)."""
    command: str = "python -m benchmarks.run"
    """The command line that produced the results (written into every result)."""
    quick: bool = False
    """Small budgets everywhere (about 10 minutes in all on 2 cores)."""
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    """Fine-tuning seeds."""
    threads: int | None = None
    """torch CPU threads for training (None: every core)."""
    preset: str = "small"
    """NeurIPT preset for accuracy, transfer and ablation rows."""
    epochs: int = 10
    """Fine-tuning epochs per seed."""
    max_steps: int | None = None
    """Cap on fine-tuning optimiser steps per seed (None: epochs decide)."""
    subjects_per_split: int | None = None
    """Keep the first n subjects of each split (None: all)."""
    batch_size: int = 32
    """Fine-tuning batch size."""
    pretrain_steps: int = 300
    """Pretraining budget in optimiser steps (the same for AAMP and random masking)."""
    pretrain_batch: int = 32
    """Pretraining batch size."""
    cv_folds: int = 6
    """Folds of the subject-wise cross-validation."""
    cv_models: tuple[str, ...] = ("bandpower_lr", "eegnet", "shallowconvnet")
    """Models run under subject-wise cross-validation (add 'neuript' with --cv-neuript)."""
    secondary_seeds: int = 3
    """Seeds of each ablation and transfer row (the first n of ``seeds``)."""
    secondary_epochs: int = 3
    """Fine-tuning epochs of each ablation and transfer row (at most ``epochs``)."""

    def secondary(self) -> BenchOptions:
        """The reduced budget of the ablation and transfer parts."""
        return replace(self, seeds=self.seeds[:self.secondary_seeds],
                       epochs=min(self.epochs, self.secondary_epochs))
    speed_steps: int = 5
    """Timed training steps per configuration in the speed benchmark."""
    latency_runs: int = 10
    """Timed single-window forwards per thread setting (the median is reported)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes carried into the results."""

    def quick_version(self) -> BenchOptions:
        """The ``--quick`` budgets: one seed, a few steps, one subject per split."""
        return replace(
            self, quick=True, seeds=self.seeds[:1], epochs=1, max_steps=2, subjects_per_split=1,
            batch_size=8, pretrain_steps=2, pretrain_batch=4,
            cv_models=tuple(m for m in self.cv_models if m in ("bandpower_lr", "eegnet")),
            speed_steps=1, latency_runs=3,
        )

    @property
    def train_threads(self) -> int:
        """Threads used for training (``threads`` or every core)."""
        return self.threads or os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# the machine and the stamp
# --------------------------------------------------------------------------------------------
def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, torch version, threads, load average and GPU (name or None)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu_model(), "torch": torch.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2), "gpu": gpu,
    }


def stamp(command: str, wall_s: float) -> dict[str, Any]:
    """``command``, ``date`` (UTC, ISO 8601), ``machine`` and ``wall_s`` of one result."""
    return {"command": command, "date": now_iso(), "machine": machine_info(),
            "wall_s": round(wall_s, 2)}


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def timed(label: str) -> Iterator[dict[str, float]]:
    """Log how long a block took; the yielded dict receives ``wall_s`` on exit."""
    record: dict[str, float] = {}
    t0 = time.perf_counter()
    log.info("%s ...", label)
    try:
        yield record
    finally:
        record["wall_s"] = time.perf_counter() - t0
        log.info("%s took %.1f s", label, record["wall_s"])


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def write_part(out_dir: Path, stem: str, body: Any, markdown: str) -> Path:
    """Write ``<stem>.json`` and ``<stem>.md`` atomically; return the JSON path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}.json"
    for target, text in ((path, json.dumps(body, indent=1, default=_json_default)),
                         (out_dir / f"{stem}.md", markdown)):
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return path


def load_results(out_dir: Path) -> dict[str, Any]:
    """Every ``*.json`` in ``out_dir``, by stem (sorted)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(Path(out_dir).glob("*.json"))}


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------------
def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(meta: dict[str, Any] | None) -> str:
    """One line: the command, the date and the machine of a result (or what is missing)."""
    if not meta or "command" not in meta:
        return "_Command, date and machine not recorded in this result._"
    m = meta.get("machine", {})
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    return (f"Command: `{meta['command']}` · date {meta.get('date', '?')} · machine: "
            f"{m.get('nproc', '?')} CPUs ({m.get('cpu_model', '?')}), torch {m.get('torch', '?')}, "
            f"{m.get('threads', '?')} threads, load {m.get('load_average_1min', '?')}{gpu} · "
            f"wall time {fmt_duration(meta.get('wall_s'))}")


def rows_meta(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Provenance of a list of rows: the first row's stamp with the rows' summed ``wall_s``.

    Rows sharing a ``run_dir`` (one run quoted in several tables) count once; pretraining time
    is not included.
    """
    if not rows:
        return None
    seen = {r.get("run_dir") or id(r): r.get("wall_s") or 0.0 for r in rows}
    return {**rows[0], "wall_s": float(sum(seen.values()))}


def fmt_duration(seconds: float | None) -> str:
    """``"42 s"``, ``"3.5 min"`` or ``"2.1 h"``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals; ``n/a`` for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def pct(value: float | None, digits: int = 1) -> str:
    """A fraction 0–1 as a percentage with ``digits`` decimals."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:.{digits}f}"


def met(flag: bool | None) -> str:
    """``met`` / ``not met`` / ``not measured``."""
    return "not measured" if flag is None else ("**met**" if flag else "**not met**")
