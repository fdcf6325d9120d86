"""Profile the NeurIPT classifier on this CPU: training / inference speed and a per-op breakdown.

Not the official benchmark (that is ``benchmarks/bench_speed.py``); a small tool to see where the
time goes while optimising the model. Inputs are 20 TCP channels x ``--samples`` samples (320 =
a 5-s window at 64 Hz, the MentalArithmetic shape), random signals, real channel positions.

Configs: ``d64h8`` / ``d64h4`` (the DESIGN.md comparison: width 64, every hidden size 64, the
paper's merges and experts, 8 or 4 heads), any preset name (``tiny``, ``small``, ``paper``).

Every measurement reports the median over ``--reps`` repetitions of both wall time and process
CPU time (``time.process_time``, all threads of this process), plus the 1-minute load average,
because the machine is shared: CPU time / wall time well below the thread count means another
process took the cores.

Run::

    .venv/bin/python -m benchmarks.profile_model train --config d64h8 --batch 8 --threads 1 2
    .venv/bin/python -m benchmarks.profile_model infer --config small --batch 1 32
    .venv/bin/python -m benchmarks.profile_model profile --config d64h8 --batch 8 --what train
    .venv/bin/python -m benchmarks.profile_model peak
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from neuript.config import ModelConfig, MoEConfig
from neuript.data.montage import TCP_PAIRS, channel_position, pooling_groups
from neuript.model.neuript import NeurIPTClassifier
from neuript.model.presets import PRESETS

log = logging.getLogger("profile_model")

D64 = ModelConfig(
    d_model=64, n_heads=8, d_ff=64, merge_factors=(1, 4, 1, 2, 1, 2),
    moe=MoEConfig(experts_per_block=(0, 0, 2, 4, 4, 6), expert_hidden=64, shared_hidden=64),
)
"""The DESIGN.md 'd = 64' comparison config (8 heads, as the baseline)."""


def config(name: str) -> ModelConfig:
    """``d64h8``, ``d64h4`` or a preset name."""
    if name.startswith("d64h"):
        return replace(D64, n_heads=int(name[4:]))
    return PRESETS[name]


class Inputs(NamedTuple):
    """Forward arguments of :class:`NeurIPTClassifier` plus the group names."""

    args: tuple[torch.Tensor, ...]
    group_names: tuple[str, ...]


def make_inputs(batch: int, n_samples: int, seed: int = 0) -> Inputs:
    """Random signals (B, 20, T) with TCP positions and functional-lobe groups."""
    names = ["-".join(p) for p in TCP_PAIRS]
    pos = np.stack([channel_position(n) for n in names]).astype(np.float32)
    groups = pooling_groups(names, pos, "functional")
    gen = torch.Generator().manual_seed(seed)
    c = len(names)
    args = (
        torch.randn(batch, c, n_samples, generator=gen),
        torch.as_tensor(pos).expand(batch, -1, -1).contiguous(),
        torch.ones(batch, c, dtype=torch.bool),
        torch.as_tensor(groups.mask).expand(batch, -1, -1).contiguous(),
    )
    return Inputs(args, tuple(groups.names))


class Timing(NamedTuple):
    """Median wall and process-CPU seconds of one call."""

    wall_s: float
    cpu_s: float
    load: float


def measure(fn: Callable[[], object], reps: int, warmup: int) -> Timing:
    """Median wall and CPU time of ``fn`` over ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return Timing(statistics.median(walls), statistics.median(cpus), os.getloadavg()[0])


def train_step_fn(model: NeurIPTClassifier, inputs: Inputs) -> Callable[[], None]:
    """One forward + backward + AdamW step (cross-entropy + 0.8 aux), as bench_speed does."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    labels = torch.arange(inputs.args[0].shape[0]) % 2

    def step() -> None:
        out = model(*inputs.args)
        loss = F.cross_entropy(out.logits, labels) + 0.8 * out.aux_loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def infer_fn(model: NeurIPTClassifier, inputs: Inputs, bf16: bool = False) -> Callable[[], None]:
    """One no-grad forward (optionally under bf16 autocast)."""
    model.eval()

    def run() -> None:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            model(*inputs.args)

    return run


def forward_flops(model: NeurIPTClassifier, inputs: Inputs) -> int:
    """FLOPs of one eval forward (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs.args)
    return int(counter.get_total_flops())


def matmul_peak(n: int = 2048, seconds: float = 2.0) -> float:
    """Best GFLOP/s of n x n fp32 matmuls at the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def build(name: str, inputs: Inputs, compile_mode: str | None) -> NeurIPTClassifier:
    torch.manual_seed(0)
    model = NeurIPTClassifier(config(name), 2, inputs.group_names)
    if compile_mode:
        model = torch.compile(model, mode=None if compile_mode == "default" else compile_mode)
    return model


def cmd_speed(a: argparse.Namespace) -> None:
    print(f"{'mode':6} {'config':7} {'B':>3} {'thr':>3} {'wall ms':>9} {'cpu ms':>9} "
          f"{'win/s':>8} {'ms/win':>8} {'GFLOP/s':>8} {'load':>5}")
    for batch in a.batch:
        inputs = make_inputs(batch, a.samples)
        model = build(a.config, inputs, a.compile)
        flops = forward_flops(model, inputs) * (3 if a.mode == "train" else 1) if a.flops else 0
        for threads in a.threads:
            torch.set_num_threads(threads)
            if a.mode == "train":
                fn = train_step_fn(model, inputs)
            else:
                fn = infer_fn(model, inputs, a.bf16)
            t = measure(fn, a.reps, a.warmup)
            gflops = flops / t.wall_s / 1e9 if flops else float("nan")
            print(f"{a.mode:6} {a.config:7} {batch:3d} {threads:3d} {t.wall_s * 1e3:9.1f} "
                  f"{t.cpu_s * 1e3:9.1f} {batch / t.wall_s:8.2f} {t.wall_s * 1e3 / batch:8.2f} "
                  f"{gflops:8.1f} {t.load:5.2f}", flush=True)


def cmd_profile(a: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(a.threads[0])
    inputs = make_inputs(a.batch[0], a.samples)
    model = build(a.config, inputs, a.compile)
    fn = train_step_fn(model, inputs) if a.mode == "train" else infer_fn(model, inputs, a.bf16)
    for _ in range(a.warmup):
        fn()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=a.shapes) as prof:
        for _ in range(a.reps):
            fn()
    key = prof.key_averages(group_by_input_shape=a.shapes)
    print(key.table(sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=40))


def cmd_peak(a: argparse.Namespace) -> None:
    for threads in a.threads:
        torch.set_num_threads(threads)
        print(f"fp32 matmul 2048^3, {threads} thread(s): {matmul_peak():.1f} GFLOP/s "
              f"(load {os.getloadavg()[0]:.2f})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("train", "infer", "profile", "peak"))
    p.add_argument("--config", default="d64h8")
    p.add_argument("--batch", type=int, nargs="+", default=[8])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--samples", type=int, default=320)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--what", choices=("train", "infer"), default="train",
                   help="profile: which call to profile")
    p.add_argument("--compile", default=None, help="torch.compile mode ('default', ...)")
    p.add_argument("--bf16", action="store_true", help="inference under bf16 autocast")
    p.add_argument("--flops", action="store_true", help="count FLOPs and report GFLOP/s")
    p.add_argument("--shapes", action="store_true", help="profile: group by input shape")
    p.add_argument("--rows", type=int, default=30)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if a.mode == "peak":
        cmd_peak(a)
    elif a.mode == "profile":
        a.mode = a.what
        cmd_profile(a)
    else:
        cmd_speed(a)


if __name__ == "__main__":
    main()
