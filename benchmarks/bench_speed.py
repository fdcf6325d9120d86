"""Speed of the NeurIPT classifier per preset: parameters, training and inference, memory, MFU.

For each preset (tiny, small, paper), in a fresh child process (so memory and threads of one
preset do not leak into the next):

* parameters, total and activated (``count_parameters``);
* training windows/s: forward + backward + AdamW step on 20 TCP channels x 320 samples (a 5-s
  window at 64 Hz, the MentalArithmetic shape) and x 256 samples (4 s), random data;
* inference latency of one 4-s window (20 x 256), median of several forwards, 1 thread and all
  threads;
* peak memory of training: ``ru_maxrss`` (the child's resident high-water mark) after the timed
  steps minus the resident size just before them (``/proc/self/statm``), i.e. what training
  adds on top of the built model and its inputs;
* model FLOPs utilisation: FLOPs of one forward counted by ``torch.utils.flop_counter`` (x 3 for
  forward + backward), times windows/s, over this machine's fp32 matmul peak, measured with a
  2048 x 2048 ``torch.matmul`` loop on all threads.

Plus a scaling table for the small preset (window length 128/256/512 at 20 channels; channel
count 4/20/64 at 256 samples), a GPU section (paper preset, bf16 autocast + ``torch.compile``)
when CUDA is available, and the DESIGN.md targets with met / not met.

The speed targets are judged **in-run**: :func:`measure_fast_paths` times the model with its
fast paths on and off (:mod:`neuript.model.fastpaths`; off is the plain path, the model before
them) in one child process, alternating the two every round, and reports fast / plain for d = 64
training windows/s, d = 64 one-window latency and small one-window latency (1 thread). For a
quick look without the whole part: ``.venv/bin/python -m benchmarks.bench_speed`` (about a
minute; :func:`compare_fast_paths`).

Run: ``.venv/bin/python -m benchmarks.run --only speed [--quick]`` (``--quick`` took 4.3 minutes
on the shared 2-core machine; the full part times 6 batches of 32 per preset and length, about
15-25 minutes there).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import BenchOptions, fmt, md_table, met, provenance, stamp, timed, write_part

log = logging.getLogger(__name__)

PRESETS: tuple[str, ...] = ("tiny", "small", "d64", "paper")
"""Measured configurations: the three presets plus ``d64``, the DESIGN.md comparison config
(d = 64, 8 heads, every hidden width 64, the paper's merges and experts)."""
BATCH: dict[str, int] = {"tiny": 32, "small": 32, "d64": 8, "paper": 2}
"""Training batch per preset (the paper preset is measured on a couple of windows only)."""
PEAK_REFERENCE_GFLOPS = 168.0
MUSE = ("TP9", "AF7", "AF8", "TP10")


@dataclass(frozen=True)
class SpeedJob:
    """One child-process measurement."""

    preset: str
    batch_size: int
    train_steps: int
    warmup: int
    latency_runs: int
    threads: int
    lengths: tuple[int, ...] = (320, 256)
    n_channels: int = 20


@dataclass(frozen=True)
class FastPathJob:
    """One child-process comparison of the fast paths with the plain path."""

    train_rounds: int = 6
    """Timed rounds of the d = 64 training step (each round: one fast and one plain step)."""
    latency_rounds: int = 30
    """Timed rounds of each one-window forward."""
    train_batch: int = 8
    """Windows per d = 64 training step (20 x 320)."""
    threads: int = 1
    """Intra-op threads (the head-major attention kernel is taken on one thread only)."""
    warmup: int = 1
    """Untimed rounds first."""


# --------------------------------------------------------------------------------------------
# inputs and model
# --------------------------------------------------------------------------------------------
def montage(n_channels: int) -> tuple[list[str], Any]:
    """Channel names and positions (C, 3) m: TCP for 20, Muse for 4, the 10-05 list otherwise."""
    import numpy as np

    from neuript.data.montage import TCP_PAIRS, channel_position, electrode_positions

    if n_channels == 20:
        names = ["-".join(p) for p in TCP_PAIRS]
    elif n_channels == 4:
        names = list(MUSE)
    else:
        names = list(electrode_positions())[:n_channels]
    return names, np.stack([channel_position(n) for n in names]).astype(np.float32)


def make_inputs(n_channels: int, n_samples: int, batch: int) -> dict[str, Any]:
    """Random compressed-µV signals with real positions and functional-lobe groups."""
    import torch

    from neuript.data.montage import pooling_groups

    names, pos = montage(n_channels)
    groups = pooling_groups(names, pos, "functional")
    gen = torch.Generator().manual_seed(0)
    return {
        "signals": torch.randn(batch, n_channels, n_samples, generator=gen),
        "positions": torch.as_tensor(pos).expand(batch, -1, -1).contiguous(),
        "channel_mask": torch.ones(batch, n_channels, dtype=torch.bool),
        "group_mask": torch.as_tensor(groups.mask).expand(batch, -1, -1).contiguous(),
        "group_names": tuple(groups.names),
    }


def tensors(inputs: dict[str, Any], n: int | None = None, device: str = "cpu") -> tuple:
    """The four forward arguments (first ``n`` windows) on ``device``."""
    keys = ("signals", "positions", "channel_mask", "group_mask")
    return tuple(inputs[k][:n].to(device) for k in keys)


def model_config(name: str):
    """The ModelConfig of a preset name, or of ``d64`` (DESIGN.md's comparison config)."""
    from neuript.config import override
    from neuript.model.presets import preset

    if name != "d64":
        return preset(name)
    return override(preset("paper"), {"d_model": 64, "d_ff": 64, "moe.expert_hidden": 64,
                                      "moe.shared_hidden": 64})


def build(preset_name: str, group_names: tuple[str, ...]):
    """A two-class NeurIPT classifier of the preset."""
    from neuript.model.neuript import NeurIPTClassifier

    return NeurIPTClassifier(model_config(preset_name), 2, group_names)


# --------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------
def matmul_peak_gflops(n: int = 2048, seconds: float = 2.0, device: str = "cpu",
                       dtype: Any = None) -> float:
    """Best sustained GFLOP/s of ``n x n`` matmuls (2 n^3 FLOPs each) over about ``seconds``."""
    import torch

    dtype = dtype or torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(4):
            torch.matmul(a, b)
        _sync(device)
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def forward_flops(model: Any, args: tuple) -> int:
    """FLOPs of one forward pass counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*args)
    return int(counter.get_total_flops())


def train_step_fn(model: Any, args: tuple, device: str = "cpu",
                  precision: str = "fp32") -> Any:
    """A closure running one forward + backward + AdamW step on ``args`` (random labels)."""
    import torch
    import torch.nn.functional as F

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    labels = torch.arange(args[0].shape[0], device=device) % 2

    def step() -> None:
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                            enabled=precision == "bf16"):
            out = model(*args)
            loss = F.cross_entropy(out.logits.float(), labels) + 0.8 * out.aux_loss.float()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def train_windows_per_s(model: Any, args: tuple, steps: int, warmup: int,
                        device: str = "cpu", precision: str = "fp32") -> float:
    """Windows/s of forward + backward + AdamW step on the batch ``args`` (random labels)."""
    step = train_step_fn(model, args, device, precision)
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * args[0].shape[0] / (time.perf_counter() - t0)


def latency_ms(model: Any, args: tuple, runs: int, device: str = "cpu",
               precision: str = "fp32") -> float:
    """Median milliseconds of one no-grad forward of ``args`` (after one warm-up call)."""
    import torch

    model.eval()
    times = []
    with torch.no_grad(), torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16,
                                         enabled=precision == "bf16"):
        model(*args)
        for _ in range(runs):
            _sync(device)
            t0 = time.perf_counter()
            model(*args)
            _sync(device)
            times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_preset(job: SpeedJob) -> dict[str, Any]:
    """Everything measured for one preset (run in a fresh child process)."""
    import torch

    from neuript.model.presets import count_parameters

    torch.manual_seed(0)
    torch.set_num_threads(job.threads)
    inputs = {t: make_inputs(job.n_channels, t, job.batch_size) for t in job.lengths}
    model = build(job.preset, inputs[job.lengths[0]]["group_names"])
    params = count_parameters(model, model_config(job.preset))
    rss_before = _rss_mb()
    train = {str(t): train_windows_per_s(model, tensors(inputs[t]), job.train_steps, job.warmup)
             for t in job.lengths}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
    one = make_inputs(job.n_channels, 256, 1)
    flops = {str(t): forward_flops(model, tensors(inputs[t], 1)) for t in job.lengths}
    flops["256"] = flops.get("256") or forward_flops(model, tensors(one))
    lat = {}
    for threads in sorted({1, job.threads}):
        torch.set_num_threads(threads)
        lat[str(threads)] = latency_ms(model, tensors(one), job.latency_runs)
    batched = make_inputs(job.n_channels, 256, 32)
    torch.set_num_threads(job.threads)
    per_window_b32 = latency_ms(model, tensors(batched), max(1, job.latency_runs // 2)) / 32
    ort_lat = (onnxruntime_latency_ms(model, one, job.latency_runs, job.threads)
               if job.preset != "paper" else {})
    return {
        "preset": job.preset, "params_total": params.total, "params_activated": params.activated,
        "batch_size": job.batch_size, "train_steps": job.train_steps, "warmup_steps": job.warmup,
        "train_windows_per_s": train, "forward_flops_per_window": flops,
        "latency_ms_4s_window": lat, "latency_ms_per_window_b32": per_window_b32,
        "onnxruntime_latency_ms_4s_window": ort_lat,
        "train_peak_rss_delta_mb": max(0.0, peak_mb),
        "rss_before_train_mb": rss_before,
    }


def fast_vs_plain(model: Any, fn: Any, rounds: int, warmup: int = 1) -> dict[str, Any]:
    """Median wall and thread-CPU ms of ``fn()`` with ``model``'s fast paths on and off.

    The two alternate within every round (fast first in even rounds, plain first in odd ones),
    so a change in the machine's load hits both alike. Thread CPU time (``time.thread_time``,
    this thread only: right for one intra-op thread) leaves out the time other programs held
    the core. ``ratio`` and ``cpu_ratio`` are fast / plain times.
    """
    from neuript.model.fastpaths import fast_paths

    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for r in range(warmup + rounds):
        for fast in (True, False) if r % 2 == 0 else (False, True):
            with fast_paths(model, fast):
                c0, w0 = time.thread_time(), time.perf_counter()
                fn()
                w1, c1 = time.perf_counter(), time.thread_time()
            if r >= warmup:
                wall[fast].append(1e3 * (w1 - w0))
                cpu[fast].append(1e3 * (c1 - c0))
    med = statistics.median
    return {"fast_ms": med(wall[True]), "plain_ms": med(wall[False]),
            "ratio": med(wall[True]) / med(wall[False]),
            "fast_cpu_ms": med(cpu[True]), "plain_cpu_ms": med(cpu[False]),
            "cpu_ratio": med(cpu[True]) / med(cpu[False]), "rounds": rounds}


def _forward_fn(model: Any, args: tuple) -> Any:
    """A closure running one no-grad eval forward of ``args``."""
    import torch

    model.eval()

    def forward() -> None:
        with torch.no_grad():
            model(*args)

    return forward


def measure_fast_paths(job: FastPathJob) -> dict[str, Any]:
    """Fast vs plain path in one process: d = 64 training, d = 64 and small latency.

    d = 64 trains on ``job.train_batch`` windows of 20 x 320 (forward + backward + AdamW);
    latency is one 20 x 256 window (4 s at 64 Hz), no grad. All at ``job.threads`` threads.
    """
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(job.threads)
    load_before = os.getloadavg()[0]
    batch = make_inputs(20, 320, job.train_batch)
    d64 = build("d64", batch["group_names"])
    train = fast_vs_plain(d64, train_step_fn(d64, tensors(batch)), job.train_rounds, job.warmup)
    for key in ("fast", "plain"):
        train[f"{key}_windows_per_s"] = 1e3 * job.train_batch / train[f"{key}_ms"]
    train["speedup"] = 1.0 / train["ratio"]
    one = make_inputs(20, 256, 1)
    d64_latency = fast_vs_plain(d64, _forward_fn(d64, tensors(one)), job.latency_rounds,
                                job.warmup)
    small = build("small", one["group_names"])
    small_latency = fast_vs_plain(small, _forward_fn(small, tensors(one)), job.latency_rounds,
                                  job.warmup)
    return {"threads": job.threads, "train_batch": job.train_batch,
            "load_before_1min": round(load_before, 2),
            "load_after_1min": round(os.getloadavg()[0], 2),
            "d64_train": train, "d64_latency": d64_latency, "small_latency": small_latency}


OP_CLASSES: dict[str, tuple[str, ...]] = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "attention": ("scaled_dot_product",),
    "copies and layout": ("aten::copy_", "aten::clone", "aten::cat", "aten::stack",
                          "aten::contiguous", "aten::index", "aten::gather", "aten::scatter"),
}
"""Self-time classes of the profile (an op is in the first class one of whose names it
contains); everything else is "other" (elementwise, norms, reductions, dispatch)."""


def op_breakdown(fn: Any, reps: int) -> dict[str, Any]:
    """Where ``fn``'s CPU time goes: torch.profiler self time by :data:`OP_CLASSES` and the
    top ops, per call of ``fn`` (ATen op calls counted nested, as the dispatcher sees them)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            fn()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0

    def cls(name: str) -> str:
        return next((c for c, keys in OP_CLASSES.items() if any(k in name for k in keys)),
                    "other")

    shares: dict[str, float] = {c: 0.0 for c in (*OP_CLASSES, "other")}
    for e in events:
        shares[cls(e.key)] += e.self_cpu_time_total / total
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:5]
    return {"aten_calls": sum(e.count for e in events) / reps,
            "self_ms": total / 1e3 / reps, "shares": shares,
            "top": [{"op": e.key, "share": e.self_cpu_time_total / total,
                     "calls": e.count / reps} for e in top]}


def measure_profile(job: FastPathJob) -> dict[str, Any]:
    """:func:`op_breakdown` of one 20 x 256 window's no-grad forward (fast paths on), for the
    d = 64 and small models, at ``job.threads`` threads."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(job.threads)
    one = make_inputs(20, 256, 1)
    out = {"threads": job.threads, "load_before_1min": round(os.getloadavg()[0], 2)}
    for name in ("d64", "small"):
        model = build(name, one["group_names"])
        out[name] = op_breakdown(_forward_fn(model, tensors(one)), reps=job.latency_rounds)
    return out


def measure_compiled(job: FastPathJob) -> dict[str, Any]:
    """One window through ``torch.compile`` against eager, d = 64 and small, in one process.

    The path of ``neuript stream --compile`` (:func:`neuript.online.compile_one_window`,
    specialised to one 20 x 256 window). Three forms alternate in every round: eager with the
    plain path, eager with the fast paths, compiled; ``compile_s`` is the wall time of the
    compilation (the dry run that triggers it). Where compiling fails (no C++ compiler), only
    ``threads``, the load and the ``error``.
    """
    import torch

    from neuript.model.fastpaths import set_fast_paths
    from neuript.online import compile_one_window

    torch.manual_seed(0)
    torch.set_num_threads(job.threads)
    one = make_inputs(20, 256, 1)
    args = tensors(one)
    out: dict[str, Any] = {"threads": job.threads,
                           "load_before_1min": round(os.getloadavg()[0], 2)}
    for name in ("d64", "small"):
        model = build(name, one["group_names"]).eval()
        t0 = time.perf_counter()
        try:
            net = compile_one_window(model, 20, 256, args[3].shape[1])
        except Exception as err:  # noqa: BLE001 - reported in the table, not fatal
            return {**out, "error": f"{type(err).__name__}: {err}"[:300]}
        compile_s = time.perf_counter() - t0
        plain = build(name, one["group_names"]).eval()
        plain.load_state_dict(model.state_dict())
        set_fast_paths(plain, False)
        forms = {"plain": plain, "fast": model, "compiled": net}
        times: dict[str, list[float]] = {k: [] for k in forms}
        with torch.no_grad():
            ref = plain(*args).logits
            diff = float((net(*args).logits - ref).abs().max())
            for r in range(job.warmup + job.latency_rounds):
                for key, f in forms.items():
                    t = time.perf_counter()
                    f(*args)
                    if r >= job.warmup:
                        times[key].append(1e3 * (time.perf_counter() - t))
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {"compile_s": compile_s, "max_abs_logit_diff": diff,
                     **{f"{k}_ms": v for k, v in med.items()},
                     "compiled_over_plain": med["compiled"] / med["plain"],
                     "compiled_over_fast": med["compiled"] / med["fast"],
                     "rounds": job.latency_rounds}
    out["load_after_1min"] = round(os.getloadavg()[0], 2)
    return out


def compare_fast_paths(train_rounds: int = 3, latency_rounds: int = 15,
                       threads: int = 1) -> dict[str, Any]:
    """Quick fast-vs-plain comparison in a fresh child process (about a minute on 1 thread).

    Examples
    --------
    >>> from benchmarks.bench_speed import compare_fast_paths  # doctest: +SKIP
    >>> r = compare_fast_paths()  # doctest: +SKIP
    >>> r["d64_train"]["speedup"], r["d64_latency"]["ratio"], r["small_latency"]["fast_ms"]
    """
    job = FastPathJob(train_rounds=train_rounds, latency_rounds=latency_rounds, threads=threads)
    return _in_child(measure_fast_paths, job)


def onnxruntime_latency_ms(model: Any, one: dict[str, Any], runs: int,
                           threads: int) -> dict[str, Any]:
    """Median ms of one window through the model's ONNX export in ONNX Runtime, per thread count.

    The deployment path of ``neuript export`` + ``neuript predict --engine onnx``: one window
    goes through ``deploy.ort_session(..., batch=1)``, the session with the batch axis fixed
    that :class:`~neuript.deploy.OnnxClassifier` opens for one-window calls. The same graph with
    a dynamic batch (the session every larger batch uses) is timed in the same rounds,
    alternating, under ``"dynamic_batch"``, so the ratio of the two is measured in one run. An
    empty dict when onnx / onnxruntime are not installed.
    """
    import tempfile

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {}
    from neuript.deploy import ort_session
    from neuript.model.export import export_onnx

    args = tensors(one)
    feed = dict(zip(("signals", "positions", "channel_mask", "group_mask"),
                    (a.numpy() for a in args)))
    out: dict[str, Any] = {"dynamic_batch": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "m.onnx", n_channels=args[0].shape[1],
                           n_samples=args[0].shape[2], n_groups=args[3].shape[1])
        for n in sorted({1, threads}):
            sessions = {"fixed": ort_session(path, n, batch=1), "dynamic": ort_session(path, n)}
            times: dict[str, list[float]] = {k: [] for k in sessions}
            for session in sessions.values():
                session.run(None, feed)
            for _ in range(max(runs, 3)):
                for name, session in sessions.items():
                    t0 = time.perf_counter()
                    session.run(None, feed)
                    times[name].append(1e3 * (time.perf_counter() - t0))
            out[str(n)] = statistics.median(times["fixed"])
            out["dynamic_batch"][str(n)] = statistics.median(times["dynamic"])
    return out


def measure_scaling(job: SpeedJob) -> list[dict[str, Any]]:
    """Small-preset training windows/s versus window length and channel count."""
    import torch

    torch.set_num_threads(job.threads)
    rows = []
    for axis, n_channels, n_samples in (("samples", 20, 128), ("samples", 20, 256),
                                        ("samples", 20, 512), ("channels", 4, 256),
                                        ("channels", 64, 256)):
        inputs = make_inputs(n_channels, n_samples, job.batch_size)
        model = build(job.preset, inputs["group_names"])
        wps = train_windows_per_s(model, tensors(inputs), job.train_steps, job.warmup)
        rows.append({"axis": axis, "n_channels": n_channels, "n_samples": n_samples,
                     "batch_size": job.batch_size, "windows_per_s": wps,
                     "tokens_per_s": wps * n_channels * n_samples})
    return rows


# --------------------------------------------------------------------------------------------
# AAMP pretraining throughput: the paper's decoder against the small preset's strided one
# --------------------------------------------------------------------------------------------
DECODERS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("paper decoder (stride 1, one token per sample)", {"decoder_stride": 1}),
    ("small default (stride 8)", {}),
    ("stride 4", {"decoder_stride": 4}),
    ("stride 16", {"decoder_stride": 16}),
)
"""Decoder variants of the ``small`` preset timed in one process; the first is the reference."""


def aamp_windows_per_s(job: SpeedJob) -> list[dict[str, Any]]:
    """Windows/s of a full AAMP step (mask, encode, decode, loss, backward, AdamW) per decoder.

    The variants are timed in rounds (every variant once per round, ``job.train_steps`` rounds)
    so a change in the machine's load hits them all alike; each variant's rate is its total
    windows over its total time, and the ratio is taken against the first variant.
    """
    from dataclasses import replace

    import torch

    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset

    torch.set_num_threads(job.threads)
    inputs = make_inputs(job.n_channels, job.lengths[0], job.batch_size)
    signals, positions, channel_mask, _ = tensors(inputs)
    steps = {}
    for name, change in DECODERS:
        torch.manual_seed(0)
        model = NeurIPTPretrain(replace(preset("small"), **change)).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(0)

        def step(model=model, opt=opt, gen=gen) -> None:
            out = model(signals, positions, channel_mask, generator=gen)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        for _ in range(job.warmup):
            step()
        steps[name] = (step, sum(p.numel() for p in model.decoder.parameters()))
    spent = {name: 0.0 for name in steps}
    for _ in range(job.train_steps):
        for name, (step, _) in steps.items():
            t0 = time.perf_counter()
            step()
            spent[name] += time.perf_counter() - t0
    ref = job.train_steps * job.batch_size / spent[DECODERS[0][0]]
    rows = []
    for name, (_, n_params) in steps.items():
        wps = job.train_steps * job.batch_size / spent[name]
        rows.append({"decoder": name, "decoder_params": n_params, "windows_per_s": wps,
                     "ratio_vs_paper_decoder": wps / ref})
    return rows


def run_pretrain_speed(opts: BenchOptions) -> dict[str, Any]:
    """The ``pretrain_speed`` part: AAMP step windows/s per decoder, ratio in the same run."""
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    job = SpeedJob("small", 4 if opts.quick else 16, 2 if opts.quick else 8, 1, 0,
                   opts.train_threads, lengths=(256,))
    with timed("speed: AAMP pretraining step per decoder"):
        rows = _in_child(aamp_windows_per_s, job)
    body = {"meta": stamp(opts.command, time.perf_counter() - t0),
            "load_before_1min": round(load_before, 2), "threads": opts.train_threads,
            "batch_size": job.batch_size, "rounds": job.train_steps,
            "input": f"{job.n_channels} channels x {job.lengths[0]} samples", "rows": rows,
            "target": {"what": "small-preset AAMP windows/s >= 4x the paper decoder's",
                       "value": rows[1]["ratio_vs_paper_decoder"], "threshold": 4.0,
                       "met": rows[1]["ratio_vs_paper_decoder"] >= 4.0}}
    write_part(opts.out_dir, "pretrain_speed", body, markdown_pretrain_speed(body))
    return body


def markdown_pretrain_speed(r: dict[str, Any]) -> str:
    """pretrain_speed.md."""
    rows = [[x["decoder"], f"{x['decoder_params'] / 1e3:.1f} k", fmt(x["windows_per_s"]),
             f"{x['ratio_vs_paper_decoder']:.2f}x"] for x in r["rows"]]
    t = r["target"]
    return "\n".join([
        "# AAMP pretraining throughput per decoder (benchmarks/bench_speed.py)", "",
        provenance(r["meta"]), "",
        f"`small` preset, full AAMP step (mask, encode, decode, loss, backward, AdamW) on "
        f"{r['input']} (4 s at 64 Hz), batch {r['batch_size']}, {r['threads']} thread(s); the "
        f"variants are timed in {r['rounds']} interleaved rounds in one process, so the ratios "
        f"hold whatever the machine's load (1-min load before: {r['load_before_1min']}).", "",
        md_table(["decoder", "decoder params", "windows/s", "vs paper decoder"], rows), "",
        f"Target: {t['what']}: **{t['value']:.2f}x**, {met(t['met'])}.", ""])


def _in_child(fn: Any, job: Any) -> Any:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, (job,))


def gpu_section(opts: BenchOptions) -> dict[str, Any]:
    """The paper preset on CUDA with bf16 autocast and torch.compile (or why not)."""
    import torch

    if not torch.cuda.is_available():
        return {"available": False, "note": "no GPU on this machine"}
    device, batch = "cuda", 8 if opts.quick else 32
    inputs = make_inputs(20, 320, batch)
    model = build("paper", inputs["group_names"]).to(device)
    flops = forward_flops(model, tensors(inputs, 1, device))
    peak = matmul_peak_gflops(8192, 2.0, device, torch.bfloat16)
    out: dict[str, Any] = {"available": True, "device": torch.cuda.get_device_name(0),
                           "batch_size": batch, "bf16_matmul_peak_gflops": peak,
                           "forward_flops_per_window": flops}
    for name, net in (("eager_bf16", model), ("compiled_bf16", torch.compile(model))):
        try:
            wps = train_windows_per_s(net, tensors(inputs, None, device), 5 if opts.quick else 20,
                                      3, device, "bf16")
            lat = latency_ms(net, tensors(inputs, 1, device), 10, device, "bf16")
            out[name] = {"train_windows_per_s": wps, "latency_ms": lat,
                         "mfu_train": 3 * flops * wps / (peak * 1e9)}
        except Exception as err:  # noqa: BLE001 - a failed compile is a result to report
            out[name] = {"error": f"{type(err).__name__}: {err}"[:300]}
    out["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


# --------------------------------------------------------------------------------------------
# the part
# --------------------------------------------------------------------------------------------
def run(opts: BenchOptions) -> dict[str, Any]:
    """Measure every preset, the scaling table and the GPU section; write speed.json/.md."""
    t0 = time.perf_counter()
    load_before = os.getloadavg()[0]
    threads = opts.train_threads
    with timed("fp32 matmul peak"):
        import torch

        torch.set_num_threads(threads)
        peak = matmul_peak_gflops()
    presets = []
    for name in PRESETS:
        paper = name == "paper"
        batch = min(BATCH[name], 1 if paper else 8) if opts.quick else BATCH[name]
        job = SpeedJob(name, batch,
                       1 if paper else opts.speed_steps, 0 if paper and opts.quick else 1,
                       min(opts.latency_runs, 3) if paper else opts.latency_runs, threads)
        with timed(f"speed: preset {name}"):
            presets.append(_in_child(measure_preset, job))
    scaling_job = SpeedJob("small", 4 if opts.quick else 8, max(1, opts.speed_steps // 2),
                           0 if opts.quick else 1, 0, threads)
    with timed("speed: small-preset scaling"):
        scaling = _in_child(measure_scaling, scaling_job)
    fast_job = (FastPathJob(train_rounds=2, latency_rounds=5) if opts.quick
                else FastPathJob())
    with timed("speed: fast paths vs plain path"):
        fast = _in_child(measure_fast_paths, fast_job)
    with timed("speed: one-window profile"):
        fast["profile"] = _in_child(measure_profile, fast_job)
    with timed("speed: torch.compile for one window"):
        fast["compiled"] = _in_child(measure_compiled, fast_job)
    with timed("speed: GPU section"):
        gpu = gpu_section(opts)
    for row in presets:
        row["mfu_train"] = {t: 3 * row["forward_flops_per_window"][t] * w / (peak * 1e9)
                            for t, w in row["train_windows_per_s"].items()}
        row["mfu_infer_all_threads"] = (row["forward_flops_per_window"]["256"]
                                        / (row["latency_ms_4s_window"][str(threads)] / 1e3)
                                        / (peak * 1e9))
    result = {"meta": stamp(opts.command, time.perf_counter() - t0), "quick": opts.quick,
              "load_before_1min": round(load_before, 2), "threads": threads,
              "fp32_matmul_peak_gflops": peak, "presets": presets, "scaling": scaling,
              "fast_paths": fast, "targets": targets(presets, threads, fast), "gpu": gpu}
    write_part(opts.out_dir, "speed", result, markdown(result))
    return result


def targets(presets: list[dict[str, Any]], threads: int,
            fast: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The DESIGN.md aims with the measured value and met / not met.

    The d = 64 aims are ratios measured in one process (``fast``, from
    :func:`measure_fast_paths`): fast paths / plain path, which is today's model against the
    one before them. The small preset's 10 ms is absolute (1 thread), so its row names the load
    it ran under.
    """
    by = {p["preset"]: p for p in presets}
    rows = []
    if fast:
        n = fast["threads"]
        train, lat = fast["d64_train"], fast["d64_latency"]
        rows.append({"target": f"d = 64 training windows/s, fast paths / plain >= 1.6x "
                               f"(same process, {n} thread(s))",
                     "value": train["speedup"], "threshold": 1.6, "unit": "x",
                     "met": train["speedup"] >= 1.6})
        rows.append({"target": f"d = 64 one-window latency, fast paths / plain <= 0.4x "
                               f"(same process, {n} thread(s))",
                     "value": lat["ratio"], "threshold": 0.4, "unit": "x",
                     "met": lat["ratio"] <= 0.4})
    compiled = (fast or {}).get("compiled") or {}
    if "d64" in compiled:
        ratio = compiled["d64"]["compiled_over_plain"]
        rows.append({"target": "d = 64 one-window latency, torch.compile / plain <= 0.4x "
                               f"(same process, {compiled['threads']} thread(s); "
                               "`stream --compile`)",
                     "value": ratio, "threshold": 0.4, "unit": "x", "met": ratio <= 0.4})
    if "small" in compiled:
        lat = compiled["small"]["compiled_ms"]
        rows.append({"target": "small preset <= 10 ms per window (1 window at a time, "
                               f"{compiled['threads']} thread(s), torch.compile: "
                               f"`stream --compile`, 1-min load "
                               f"{compiled['load_before_1min']:.1f})",
                     "value": lat, "threshold": 10.0, "unit": "ms", "met": lat <= 10.0})
    if "small" in by or fast:
        if fast:
            lat, load = fast["small_latency"]["fast_ms"], fast["load_before_1min"]
        else:
            lat, load = by["small"]["latency_ms_4s_window"]["1"], None
        where = "" if load is None else f", 1-min load {load:.1f}"
        rows.append({"target": f"small preset <= 10 ms per window (1 window at a time, "
                               f"1 thread{where})",
                     "value": lat, "threshold": 10.0, "unit": "ms", "met": lat <= 10.0})
    if "small" in by:
        lat32 = by["small"].get("latency_ms_per_window_b32")
        if lat32 is not None:
            rows.append({"target": "small preset <= 10 ms per window (batches of 32)",
                         "value": lat32, "threshold": 10.0, "unit": "ms", "met": lat32 <= 10.0})
        ort_lat = by["small"].get("onnxruntime_latency_ms_4s_window", {}).get("1")
        if ort_lat is not None:  # the target is one thread, as for PyTorch above
            rows.append({"target": "small preset <= 10 ms per window (1 window at a time, "
                                   "1 thread, ONNX Runtime: `predict --engine onnx`)",
                         "value": ort_lat, "threshold": 10.0, "unit": "ms",
                         "met": ort_lat <= 10.0})
    if "paper" in by:
        mfu = by["paper"]["mfu_train"]["320"]
        rows.append({"target": "paper size training >= 80% of the measured fp32 matmul peak",
                     "value": 100 * mfu, "threshold": 80.0, "unit": "%", "met": mfu >= 0.8})
        flops = 3 * by["paper"]["forward_flops_per_window"]["320"]
        ref = flops * by["paper"]["train_windows_per_s"]["320"] / (PEAK_REFERENCE_GFLOPS * 1e9)
        rows.append({"target": "paper size training >= 80% of DESIGN.md's 168 GFLOP/s peak",
                     "value": 100 * ref, "threshold": 80.0, "unit": "%", "met": ref >= 0.8})
    return rows


def markdown(r: dict[str, Any]) -> str:
    """Render speed.json."""
    t = str(r["threads"])
    rows = [[p["preset"], f"{p['params_total'] / 1e6:.2f} M",
             f"{p['params_activated'] / 1e6:.2f} M", p["batch_size"],
             fmt(p["train_windows_per_s"]["320"]),
             fmt(p["train_windows_per_s"].get("256")),
             fmt(p["latency_ms_4s_window"]["1"], 1), fmt(p["latency_ms_4s_window"][t], 1),
             _ort_cell(p, t),
             f"{p['forward_flops_per_window']['320'] / 1e9:.3f}",
             fmt(100 * p["mfu_train"]["320"], 1), fmt(100 * p["mfu_infer_all_threads"], 1),
             fmt(p["train_peak_rss_delta_mb"], 0)] for p in r["presets"]]
    scaling = [[s["axis"], s["n_channels"], s["n_samples"], s.get("batch_size", "?"),
                fmt(s["windows_per_s"]),
                f"{s['tokens_per_s']:.0f}"] for s in r["scaling"]]
    tgt = [[x["target"], f"{fmt(x['value'])} {x['unit']}", f"{fmt(x['threshold'])} {x['unit']}",
            met(x["met"])] for x in r["targets"]]
    return "\n".join([
        "# Speed (benchmarks/bench_speed.py)", "", provenance(r["meta"]), "",
        _load_warning(r.get("load_before_1min"), r["meta"].get("machine", {}).get("nproc")),
        f"fp32 matmul peak measured here: **{r['fp32_matmul_peak_gflops']:.1f} GFLOP/s** "
        f"({r['threads']} threads; DESIGN.md quotes {PEAK_REFERENCE_GFLOPS:.0f})."
        + (" `--quick`: batch 8 (paper: 1 window), 1 timed step per configuration; scaling "
           "rows batch 4 without warm-up." if r["quick"]
           else ""), "",
        md_table(["preset", "params total", "activated", "batch", "train win/s (20x320)",
                  "train win/s (20x256)", "latency 4-s window, 1 thread (ms)",
                  f"latency, {t} threads (ms)", f"ONNX Runtime latency, 1 / {t} threads (ms)",
                  "fwd GFLOP/window (20x320)",
                  "train MFU % (20x320)", "inference MFU %", "training peak RSS +MB"], rows), "",
        "Latency = median wall time of one no-grad forward of one 20 x 256 window (4 s at "
        "64 Hz); ONNX Runtime runs the same model exported with `neuript export` (MoE layers "
        "as fixed-shape gated experts), the path of `neuript predict --engine onnx`; not "
        "measured for the paper preset. "
        "Training = forward + backward + AdamW step on random data; MFU = 3 x forward FLOPs "
        "(FlopCounterMode) x windows/s / the measured fp32 peak. Memory = the child process's "
        "max RSS after training minus its RSS just before (model and inputs already built).", "",
        *_ort_batch_lines(r["presets"]),
        "## Small preset: throughput vs window length and channel count", "",
        md_table(["varied", "channels", "samples", "batch", "train windows/s", "tokens/s"],
                 scaling), "",
        *_fast_paths_markdown(r.get("fast_paths")),
        "## DESIGN.md targets", "",
        md_table(["target", "measured", "threshold", "status"], tgt), "",
        "## GPU", "", _gpu_markdown(r["gpu"]), "",
    ])


def _fast_paths_markdown(f: dict[str, Any] | None) -> list[str]:
    """The fast-vs-plain section (empty for results written before it existed)."""
    if not f:
        return []
    cases = (("d = 64 training step (20 x 320, batch {b})", f["d64_train"]),
             ("d = 64 one window (20 x 256)", f["d64_latency"]),
             ("small one window (20 x 256)", f["small_latency"]))
    rows = [[name.format(b=f["train_batch"]), fmt(c["fast_ms"], 1), fmt(c["plain_ms"], 1),
             f"{c['ratio']:.3f}", f"{c['cpu_ratio']:.3f}", c["rounds"]] for name, c in cases]
    train = f["d64_train"]
    return [
        "## Fast paths vs the plain path (one process, interleaved)", "",
        f"{f['threads']} thread(s); the model's fast paths (`neuript.model.fastpaths`) on and "
        "off in the same child process, alternating every round; medians. Plain = the model "
        "before the fast paths; both compute the same function "
        "(tests/test_model_fast_paths.py). 1-min load "
        f"{f['load_before_1min']} before, {f['load_after_1min']} after; the thread-CPU ratio "
        "leaves out time other programs held the core.", "",
        md_table(["case", "fast (ms)", "plain (ms)", "fast / plain (wall)",
                  "fast / plain (thread CPU)", "rounds"], rows), "",
        f"d = 64 training: {fmt(train['fast_windows_per_s'])} vs "
        f"{fmt(train['plain_windows_per_s'])} windows/s, **{train['speedup']:.2f}x**.", "",
        *_profile_markdown(f.get("profile")),
        *_compiled_markdown(f.get("compiled")),
    ]


def _compiled_markdown(c: dict[str, Any] | None) -> list[str]:
    """The torch.compile table (empty for results written before it existed)."""
    if not c:
        return []
    head = ["## One window through torch.compile (`neuript stream --compile`)", ""]
    if "error" in c:
        return [*head, f"Not measured: compiling failed ({c['error']}).", ""]
    models = {k: c[k] for k in ("d64", "small") if k in c}
    rows = [[name, fmt(m["plain_ms"], 2), fmt(m["fast_ms"], 2), fmt(m["compiled_ms"], 2),
             f"{m['compiled_over_plain']:.2f}x", f"{m['compiled_over_fast']:.2f}x",
             fmt(m["compile_s"], 0), f"{m['max_abs_logit_diff']:.1e}"]
            for name, m in models.items()]
    rounds = next(iter(models.values()))["rounds"] if models else 0
    return [*head,
            f"One 20 x 256 window, no grad, {c['threads']} thread(s), the three forms "
            f"alternating in one child process ({rounds} rounds, "
            f"medians); compiled = `torch.compile(dynamic=False)` for that shape "
            f"(`neuript.online.compile_one_window`), compile time = its first call. 1-min "
            f"load {c['load_before_1min']} before, {c.get('load_after_1min')} after.", "",
            md_table(["model", "eager, plain (ms)", "eager, fast paths (ms)", "compiled (ms)",
                      "compiled / plain", "compiled / fast", "compile (s)",
                      "max |logit diff|"], rows), ""]


def _profile_markdown(p: dict[str, Any] | None) -> list[str]:
    """The one-window profile table (empty for results written before it existed)."""
    if not p:
        return []
    classes = (*OP_CLASSES, "other")
    rows = [[label, f"{p[key]['aten_calls']:.0f}", fmt(p[key]["self_ms"], 1),
             *(f"{100 * p[key]['shares'][c]:.0f}" for c in classes),
             "; ".join(f"`{t['op']}` {100 * t['share']:.0f}%" for t in p[key]["top"][:3])]
            for key, label in (("d64", "d = 64"), ("small", "small"))]
    return [
        "### Where one window's time goes (torch.profiler)", "",
        f"One 20 x 256 window, no grad, fast paths on, {p['threads']} thread(s), self CPU time "
        f"of the ATen ops per window (1-min load {p['load_before_1min']}). A model whose time "
        "is mostly outside matmul and attention, over hundreds of op calls, is bound by "
        "per-op dispatch: int8 weights or faster kernels do little for it, fewer and larger "
        "ops (ONNX Runtime's fused graph, batching windows) do.", "",
        md_table(["model", "ATen op calls", "self ms", *(f"{c} %" for c in classes),
                  "top ops"], rows), ""]


def _ort_batch_lines(presets: list[dict[str, Any]]) -> list[str]:
    """One line per preset: the batch-1 ONNX session against the dynamic-batch one, same run."""
    lines = []
    for p in presets:
        ort_lat = p.get("onnxruntime_latency_ms_4s_window") or {}
        dynamic = ort_lat.get("dynamic_batch", {}).get("1")
        if dynamic and ort_lat.get("1"):
            lines.append(f"- `{p['preset']}`, one window in ONNX Runtime, 1 thread: the session "
                         f"with the batch axis fixed to 1 (what `OnnxClassifier` opens for one "
                         f"window) {fmt(ort_lat['1'], 2)} ms against {fmt(dynamic, 2)} ms with a "
                         f"dynamic batch, alternating in one process: "
                         f"**{ort_lat['1'] / dynamic:.2f}x**.")
    return [*lines, ""] if lines else []


def _ort_cell(p: dict[str, Any], threads: str) -> str:
    ort_lat = p.get("onnxruntime_latency_ms_4s_window") or {}
    if not ort_lat:
        return "n/a"
    return f"{fmt(ort_lat.get('1'), 1)} / {fmt(ort_lat.get(threads), 1)}"


def _load_warning(load_before: float | None, nproc: int | None) -> str:
    """A caveat when other programs kept the cores busy as the part began.

    The load at the end is no guide: the part's own child processes keep every core busy.
    """
    if load_before is None or not nproc or load_before <= 0.5:
        return ""
    return (f"**Caveat: the machine was busy** (1-min load {load_before:.1f} on {nproc} cores "
            "when this part began): other programs shared the cores, so throughputs, latencies "
            "and the matmul peak read low, and all-thread latency can exceed 1-thread latency. "
            "Re-run `--only speed` on an idle machine for numbers to quote.\n")


def _gpu_markdown(g: dict[str, Any]) -> str:
    if not g.get("available"):
        return g.get("note", "no GPU on this machine")
    rows = []
    for name in ("eager_bf16", "compiled_bf16"):
        v = g.get(name, {})
        rows.append([name, v.get("error") or fmt(v.get("train_windows_per_s")),
                     fmt(v.get("latency_ms")), fmt(100 * v["mfu_train"], 1)
                     if "mfu_train" in v else "n/a"])
    return (f"{g['device']}, paper preset, batch {g['batch_size']}, 20 x 320; bf16 matmul peak "
            f"{g['bf16_matmul_peak_gflops'] / 1e3:.1f} TFLOP/s; peak memory "
            f"{g['peak_memory_mb']:.0f} MB.\n\n"
            + md_table(["mode", "train windows/s", "latency (ms)", "train MFU %"], rows))


if __name__ == "__main__":
    import json

    logging.basicConfig(level=logging.INFO)
    print(json.dumps(compare_fast_paths(), indent=2))
