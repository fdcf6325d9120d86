"""The one training loop shared by pretraining and fine-tuning (the MAE ``engine`` idea).

Only the loss differs between uses: a ``step_fn(model, batch) -> StepOutput`` computes it. The
loop owns everything else: gradient accumulation (no gradient sync across ranks on all but the
last micro-batch), clipping, bf16 autocast, the one-cycle schedule, stopping by steps, epochs or
wall time, a progress bar, JSONL/TensorBoard logs, and hooks for checkpoints and validation.

Exact resume: the data order must be a pure function of ``(seed, epoch)`` (``make_batches``), the
loop skips the micro-batches an interrupted epoch already consumed, and batches are fetched with
the global torch RNG forked, so the loader never perturbs the training RNG stream.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from neuript.batch import Batch
from neuript.config import OptimConfig, TrainConfig
from neuript.errors import NeuriptError
from neuript.train.distributed import (
    DistEnv,
    all_reduce_mean,
    broadcast_flag,
    clip_grad_norm,
    gradient_sync,
    unwrap,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepOutput:
    """What a ``step_fn`` returns for one micro-batch.

    Attributes
    ----------
    loss : Tensor, shape ()
        The loss to back-propagate (mean over the micro-batch).
    logs : dict of str to float
        Extra scalars to log (reconstruction loss, auxiliary loss, accuracy …).
    n_windows : int
        Windows in the micro-batch (for throughput).
    """

    loss: Tensor
    logs: dict[str, float]
    n_windows: int


StepFn = Callable[[nn.Module, Batch], StepOutput]
"""Loss of one micro-batch: ``step_fn(model, batch) -> StepOutput``."""


@dataclass
class TrainState:
    """Progress of a run (mutated by the loop; saved with every checkpoint).

    Attributes
    ----------
    step : int
        Optimiser steps done.
    epoch : int
        Current epoch (0-based).
    batch_in_epoch : int
        Micro-batches of the current epoch already consumed (skipped on resume).
    windows_seen : int
        Windows trained on by this rank.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    windows_seen: int = 0


@dataclass(frozen=True)
class StopCondition:
    """When to stop: the first of ``max_steps``, ``epochs`` or ``max_minutes`` (None = no bound)."""

    max_steps: int | None = None
    epochs: int | None = None
    max_minutes: float | None = None

    @classmethod
    def from_train(cls, cfg: TrainConfig) -> StopCondition:
        """The stopping rule of a :class:`TrainConfig`."""
        return cls(max_steps=cfg.max_steps, epochs=cfg.epochs, max_minutes=cfg.max_minutes)


@dataclass(frozen=True)
class LoopResult:
    """What :func:`run_steps` returns.

    Attributes
    ----------
    state : TrainState
        Final progress.
    last_loss : float
        Mean loss of the last optimiser step (averaged over ranks), NaN if no step ran.
    stopped_by : str
        ``'max_steps'``, ``'epochs'`` or ``'max_minutes'``.
    """

    state: TrainState
    last_loss: float
    stopped_by: str


def planned_steps(stop: StopCondition, steps_per_epoch: int) -> int:
    """Optimiser steps the LR schedule is laid out for: the tighter of the step and epoch bounds."""
    bounds = [b for b in (stop.max_steps,) if b is not None]
    if stop.epochs is not None:
        bounds.append(stop.epochs * steps_per_epoch)
    if not bounds:
        raise NeuriptError(
            "TrainConfig.max_minutes alone cannot lay out the one-cycle schedule; "
            "also set max_steps or epochs"
        )
    return max(1, min(bounds))


# --------------------------------------------------------------------------------------------
# optimiser and schedule
# --------------------------------------------------------------------------------------------
def build_optimizer(model: nn.Module, cfg: OptimConfig,
                    lr_scale: Callable[[str], float] | None = None) -> torch.optim.AdamW:
    """AdamW; weight decay on parameters with ``dim() >= 2`` minus ``model.no_weight_decay()``.

    Parameters
    ----------
    model : nn.Module
        Plain or wrapped model (names are taken from the unwrapped module).
    cfg : OptimConfig
        Learning rate, betas and weight decay.
    lr_scale : callable, name -> float, optional
        Multiplier of ``cfg.lr`` per parameter name (head LR, layer-wise decay); None: 1.

    Returns
    -------
    optimizer : torch.optim.AdamW
        Parameter groups ``decay`` then ``no_decay`` (one pair per distinct LR scale, largest
        first); each group's ``lr`` is its peak, which the schedule multiplies.
    """
    inner = unwrap(model)
    skip = set(inner.no_weight_decay()) if hasattr(inner, "no_weight_decay") else set()
    by_scale: dict[float, tuple[list, list]] = {}
    for name, param in inner.named_parameters():
        if not param.requires_grad:
            continue
        exempt = param.dim() < 2 or name in skip or any(name.startswith(f"{s}.") for s in skip)
        scale = 1.0 if lr_scale is None else float(lr_scale(name))
        by_scale.setdefault(scale, ([], []))[1 if exempt else 0].append(param)
    groups = []
    for scale in sorted(by_scale, reverse=True) or [1.0]:
        decay, no_decay = by_scale.get(scale, ([], []))
        suffix = "" if scale == 1.0 else f"@{scale:g}"
        groups += [
            {"params": decay, "weight_decay": cfg.weight_decay, "name": "decay" + suffix,
             "lr": cfg.lr * scale},
            {"params": no_decay, "weight_decay": 0.0, "name": "no_decay" + suffix,
             "lr": cfg.lr * scale},
        ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


class OneCycle:
    """LR multiplier of the one-cycle policy, valid for any number of steps (even 1 or 2).

    Cosine warm-up from ``1 / div_factor`` to 1 over ``round(pct_start · total)`` steps (at
    least 1), then cosine decay to ``1 / (div_factor · final_div_factor)`` at the last step —
    the shape of ``torch.optim.lr_scheduler.OneCycleLR``, which divides by zero when
    ``pct_start · total_steps`` rounds to 1. A plain object, so ``LambdaLR.state_dict`` keeps it.
    """

    def __init__(self, total_steps: int, pct_start: float, div_factor: float,
                 final_div_factor: float) -> None:
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = min(max(1, round(pct_start * self.total_steps)), self.total_steps)
        self.start = 1.0 / div_factor
        self.end = self.start / final_div_factor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            frac = step / self.warmup_steps
            return self.start + (1.0 - self.start) * (1 - math.cos(math.pi * frac)) / 2
        decay_steps = max(1, self.total_steps - 1 - self.warmup_steps)
        frac = min(1.0, (step - self.warmup_steps) / decay_steps)
        return self.end + (1.0 - self.end) * (1 + math.cos(math.pi * frac)) / 2


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int, last_step: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """One-cycle LR (NEURIPT_SPEC §6): peak ``cfg.lr`` after ``pct_start`` of ``total_steps``.

    The optimizer's groups must have been built with ``lr=cfg.lr`` (:func:`build_optimizer`).
    ``last_step > 0`` lays the schedule out for a run that has already taken that many steps
    (a resume whose step budget changed): each group's LR is set to its value at ``last_step``
    of the new schedule, from the peak (``initial_lr``) an earlier scheduler recorded.
    """
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        OneCycle(total_steps, cfg.pct_start, cfg.div_factor, cfg.final_div_factor),
        last_epoch=last_step - 1,
    )


# --------------------------------------------------------------------------------------------
# logging
# --------------------------------------------------------------------------------------------
class LogSink:
    """JSONL log (``run_dir/log.jsonl``) plus TensorBoard when installed; writes on rank 0 only.

    Parameters
    ----------
    run_dir : path-like | None
        Folder of the run; None keeps records in memory only (``records``).
    enabled : bool
        False on non-main ranks: nothing is written.
    name : str
        File stem of the JSONL log.
    after_step : int | None
        The step the run continues from: records of an existing log past it (written by an
        interrupted attempt after its last checkpoint) are dropped, and so are TensorBoard
        events, so every step is logged once (0: start the log afresh). None appends to
        whatever the log holds.
    """

    def __init__(self, run_dir: str | Path | None, enabled: bool = True, name: str = "log",
                 after_step: int | None = None) -> None:
        self.enabled = enabled
        self.records: list[dict[str, Any]] = []
        self.path = None if run_dir is None else Path(run_dir) / f"{name}.jsonl"
        self._tb = None
        if enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if after_step is not None:
                _truncate_log(self.path, after_step)
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard not installed: JSONL only
                SummaryWriter = None  # noqa: N806
            if SummaryWriter is not None:
                purge = None if after_step is None else after_step + 1
                self._tb = SummaryWriter(log_dir=str(self.path.parent / "tensorboard"),
                                         purge_step=purge)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (must hold ``step``); numbers go to TensorBoard as scalars."""
        if not self.enabled:
            return
        self.records.append(record)
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float):
                    self._tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._tb is not None:
            self._tb.close()


def _truncate_log(path: Path, after_step: int) -> None:
    """Keep the records of JSONL log ``path`` up to ``after_step`` (and drop a torn last line)."""
    if not path.is_file():
        return
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            step = json.loads(line)["step"]
        except (json.JSONDecodeError, KeyError, TypeError):
            step = None  # torn by a kill mid-write
        if isinstance(step, int) and step <= after_step:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept))
        os.replace(tmp, path)
        log.info("%s: dropped %d record(s) past step %d", path, dropped, after_step)


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
def _forked_next(it: Iterator[Batch]) -> Batch | None:
    """Next batch, with the global torch RNG left untouched by the loader."""
    with torch.random.fork_rng(devices=[]):
        return next(it, None)


def _micro_batches(batches: Iterable[Batch], skip: int) -> Iterator[Batch]:
    with torch.random.fork_rng(devices=[]):
        it = iter(batches)
    for _ in range(skip):
        if _forked_next(it) is None:
            return
    while (batch := _forked_next(it)) is not None:
        yield batch


def _optimizer_step(
    model: nn.Module,
    chunk: list[Batch],
    optimizer: torch.optim.Optimizer,
    step_fn: StepFn,
    dist: DistEnv,
    cfg: TrainConfig,
    grad_clip: float | None,
) -> tuple[float, dict[str, float], int]:
    """Forward/backward over ``chunk`` (accumulated), clip and step; return loss, logs, windows."""
    autocast = torch.autocast(
        device_type=dist.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"
    )
    total, logs, n_windows = 0.0, {}, 0
    for i, batch in enumerate(chunk):
        batch = batch.to(dist.device, non_blocking=True)
        with gradient_sync(model, i == len(chunk) - 1):
            with autocast:
                out = step_fn(model, batch)
            (out.loss.float() / len(chunk)).backward()  # backward outside autocast
        total += float(out.loss.detach()) / len(chunk)
        for key, value in out.logs.items():
            logs[key] = logs.get(key, 0.0) + float(value) / len(chunk)
        n_windows += out.n_windows
    if grad_clip is not None:
        logs["grad_norm"] = clip_grad_norm(model, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    inner = unwrap(model)
    if hasattr(inner, "apply_constraints"):
        inner.apply_constraints()
    return total, logs, n_windows


def _reduced(values: dict[str, float], dist: DistEnv) -> dict[str, float]:
    """Average a dict of floats over ranks (same keys on every rank)."""
    if not dist.is_distributed or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=dist.device)
    return dict(zip(keys, all_reduce_mean(t).tolist()))


def run_steps(
    model: nn.Module,
    make_batches: Callable[[int], Iterable[Batch]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    step_fn: StepFn,
    *,
    dist: DistEnv,
    train_cfg: TrainConfig,
    state: TrainState,
    log_sink: LogSink,
    stop: StopCondition,
    grad_clip: float | None = None,
    total_steps: int | None = None,
    on_step: Callable[[TrainState], None] | None = None,
    on_epoch_end: Callable[[TrainState], None] | None = None,
) -> LoopResult:
    """Train until ``stop``; resumes from ``state`` (epoch, micro-batches consumed, step).

    Parameters
    ----------
    model : nn.Module
        The (possibly DDP-wrapped or compiled) model, already on ``dist.device``.
    make_batches : callable
        ``make_batches(epoch) -> iterable of Batch`` for this rank; the order must depend only
        on ``(seed, epoch)``, and every rank must yield the same number of batches.
    optimizer, scheduler
        From :func:`build_optimizer` and :func:`build_scheduler` (``scheduler`` may be None).
    step_fn : callable
        ``step_fn(model, batch) -> StepOutput``: the loss of one micro-batch.
    dist : DistEnv
        The process's place in the job.
    train_cfg : TrainConfig
        ``grad_accum``, ``precision``, ``log_every``.
    state : TrainState
        Progress so far (fresh or from a checkpoint); updated in place.
    log_sink : LogSink
        Receives one record per ``log_every`` steps (means over the interval, over ranks).
    stop : StopCondition
        When to stop.
    grad_clip : float | None
        Global gradient-norm clip (``OptimConfig.grad_clip``).
    total_steps : int | None
        Length of the progress bar (and schedule); defaults to ``stop.max_steps``.
    on_step, on_epoch_end : callable | None
        Hooks called with ``state`` after each optimiser step / each completed epoch (on every
        rank; checkpoint and validation hooks run their collectives there).

    Returns
    -------
    result : LoopResult
        Final state, last loss and the reason for stopping.
    """
    model.train()
    start, tick = time.monotonic(), time.monotonic()
    window, last_loss, stopped_by = _Meter(), math.nan, "epochs"
    bar = _progress(dist, total_steps or stop.max_steps, state.step)
    while stopped_by != "max_minutes" and (stop.epochs is None or state.epoch < stop.epochs):
        if stop.max_steps is not None and state.step >= stop.max_steps:
            stopped_by = "max_steps"
            break
        fresh_epoch = state.batch_in_epoch == 0
        batches = _micro_batches(make_batches(state.epoch), state.batch_in_epoch)
        while stop.max_steps is None or state.step < stop.max_steps:
            chunk = list(itertools.islice(batches, train_cfg.grad_accum))
            if not chunk:
                if fresh_epoch and state.batch_in_epoch == 0:
                    raise NeuriptError(f"epoch {state.epoch} yielded no batches: nothing to train")
                break
            loss, logs, n_windows = _optimizer_step(
                model, chunk, optimizer, step_fn, dist, train_cfg, grad_clip
            )
            if scheduler is not None and scheduler.last_epoch < getattr(
                scheduler, "total_steps", math.inf
            ):
                scheduler.step()
            state.step += 1
            state.batch_in_epoch += len(chunk)
            state.windows_seen += n_windows
            window.add(loss, logs, n_windows)
            if state.step % train_cfg.log_every == 0:
                record, tick = _log_record(window, state, optimizer, dist, tick), time.monotonic()
                last_loss = record["loss"]
                log_sink.write(record)
                if bar is not None:
                    bar.set_postfix(_postfix(record))
            if bar is not None:
                bar.update(1)
            if on_step is not None:
                on_step(state)
            if _out_of_time(stop, start, dist):
                stopped_by = "max_minutes"
                break
        else:
            continue  # max_steps reached: the check at the top of the outer loop stops
        if stopped_by == "max_minutes":
            break
        if on_epoch_end is not None:
            on_epoch_end(state)
        state.epoch += 1
        state.batch_in_epoch = 0
    if window.n_steps:
        record = _log_record(window, state, optimizer, dist, tick)
        last_loss = record["loss"]
        log_sink.write(record)
    if bar is not None:
        bar.close()
    return LoopResult(state=state, last_loss=last_loss, stopped_by=stopped_by)


def _out_of_time(stop: StopCondition, start: float, dist: DistEnv) -> bool:
    if stop.max_minutes is None:
        return False
    late = (time.monotonic() - start) / 60.0 >= stop.max_minutes
    return broadcast_flag(late, dist.device)


@dataclass
class _Meter:
    """Sums over the steps since the last log line."""

    n_steps: int = 0
    loss: float = 0.0
    windows: int = 0
    logs: dict[str, float] = field(default_factory=dict)

    def add(self, loss: float, logs: dict[str, float], windows: int) -> None:
        self.n_steps += 1
        self.loss += loss
        self.windows += windows
        for key, value in logs.items():
            self.logs[key] = self.logs.get(key, 0.0) + value


def _log_record(
    meter: _Meter, state: TrainState, optimizer: torch.optim.Optimizer, dist: DistEnv, tick: float
) -> dict[str, Any]:
    """Means over the interval and over ranks; resets ``meter``. Collective: all ranks call it."""
    means = {k: v / meter.n_steps for k, v in meter.logs.items()}
    means = _reduced({"loss": meter.loss / meter.n_steps, **means}, dist)
    elapsed = max(time.monotonic() - tick, 1e-9)
    record = {
        "step": state.step,
        "epoch": state.epoch,
        "loss": means.pop("loss"),
        "lr": optimizer.param_groups[0]["lr"],
        "windows_s": meter.windows * dist.world_size / elapsed,
        **means,
    }
    meter.n_steps, meter.loss, meter.windows, meter.logs = 0, 0.0, 0, {}
    return record


def _postfix(record: dict[str, Any]) -> dict[str, str]:
    """The progress bar's fields: the objective and each of its ``*_loss`` terms, so a
    fine-tuning objective of task loss + 0.8 x MoE balance (about 7 at the start) is not read as
    a diverging 2-class cross-entropy, and the throughput (windows / s)."""
    terms = {k: f"{v:.4f}" for k, v in record.items() if k.endswith("_loss")}
    return {"loss": f"{record['loss']:.4f}", **terms, "wps": f"{record['windows_s']:.1f}"}


def _progress(dist: DistEnv, total: int | None, initial: int) -> Any:
    if not dist.is_main:
        return None
    import sys

    from tqdm.auto import tqdm

    # redraw often on a terminal; in logs and CI (no TTY) one line every 30 s is enough
    interval = 0.1 if sys.stderr.isatty() else 30.0
    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True,
                mininterval=interval)
