"""The Python steps of ``benchmarks/gpu_check.sh`` (run that script, not this module).

``python -m benchmarks.gpu_check STEP --work DIR`` with STEP one of:

``synth``
    Synthetic EEG recordings (FIF, 19 channels of the 10-20 system, 256 Hz, Gaussian noise plus a
    10-Hz rhythm, about 15 µV) in ``DIR/raw``, one per subject, for ``neuript prepare``: the
    check needs no data set on the GPU machine.
``compile``
    The ``paper`` preset's pretraining step (AAMP mask, encode, decode, loss, backward, AdamW)
    on random 20 x 256 windows in bf16 autocast, every attention on SDPA restricted to the fused
    kernels (flash, memory-efficient, cuDNN), eager and under ``torch.compile``; a fixed number
    of steps, timed after warm-up (the first compiled step is timed on its own: compilation).
``speed``
    The GPU section of :mod:`benchmarks.bench_speed` (the classifier at the paper size, bf16,
    eager and compiled) with ``--quick`` budgets, alone (not the CPU presets).
``summarize``
    Reads ``DIR/status.tsv`` (one ``step rc seconds`` line per step, written by the script), the
    step results and the torchrun pretraining runs, and writes ``gpu_check.json`` + ``.md`` to
    ``--out``.

Each step writes ``DIR/steps/<step>.json``; a step killed by its ``timeout`` leaves none, which
the summary reports as a timeout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import fmt, md_table, provenance, stamp, write_part

CHANNELS_1020: tuple[str, ...] = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
                                  "C4", "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "O2")
"""The 19 electrodes of the synthetic recordings (every TCP electrode: a 20-channel corpus)."""
RUNS: tuple[str, ...] = ("ddp", "fsdp", "fsdp_resume")
"""Pretraining runs the script makes with torchrun (``DIR/<name>`` run folders)."""


# --------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------
def synth(work: Path, n_subjects: int = 16, seconds: float = 120.0, sfreq_hz: float = 256.0,
          ) -> dict[str, Any]:
    """Write ``n_subjects`` synthetic recordings to ``work/raw`` (FIF, volts)."""
    import mne
    import numpy as np

    raw_dir = work / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n = int(seconds * sfreq_hz)
    t = np.arange(n) / sfreq_hz
    info = mne.create_info(list(CHANNELS_1020), sfreq_hz, "eeg")
    for k in range(n_subjects):
        alpha = 5e-6 * np.sin(2 * np.pi * 10.0 * t + rng.uniform(0, 2 * np.pi, (19, 1)))
        data = 10e-6 * rng.standard_normal((19, n)) + alpha  # (C, T) volts
        raw = mne.io.RawArray(data, info, verbose="error")
        raw.set_montage("standard_1020", verbose="error")
        raw.save(raw_dir / f"sub-{k:02d}_eeg.fif", overwrite=True, verbose="error")
    return {"recordings": n_subjects, "seconds_each": seconds, "sfreq_hz": sfreq_hz}


def _pretrain_step(model: Any, opt: Any, inputs: tuple, gen: Any) -> None:
    import torch

    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        out = model(*inputs, generator=gen)
    out.loss.float().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def _time_steps(model: Any, opt: Any, inputs: tuple, steps: int, warmup: int) -> dict[str, Any]:
    import torch

    gen = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    _pretrain_step(model, opt, inputs, gen)  # compiles, when compiled
    torch.cuda.synchronize()
    first_s = time.perf_counter() - t0
    for _ in range(warmup):
        _pretrain_step(model, opt, inputs, gen)
    times = []
    for _ in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        _pretrain_step(model, opt, inputs, gen)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    step_s = statistics.median(times)
    return {"first_step_s": first_s, "step_ms_median": 1e3 * step_s,
            "windows_per_s": inputs[0].shape[0] / step_s, "steps": steps, "warmup": warmup}


def compile_check(save: Callable[[dict[str, Any]], None], preset: str = "paper",
                  batch: int = 16, steps: int = 5, warmup: int = 2) -> dict[str, Any]:
    """Eager vs ``torch.compile`` pretraining steps, bf16, fused SDPA kernels only.

    ``save`` receives the result after each mode, so a compile killed by the step's time limit
    still leaves the eager numbers.
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from benchmarks.bench_speed import make_inputs, tensors
    from neuript.model.attention import Attention
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset as preset_config

    signals, positions, channel_mask, _ = tensors(make_inputs(20, 256, batch), None, "cuda")
    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
             SDPBackend.CUDNN_ATTENTION]
    out: dict[str, Any] = {"preset": preset, "batch_size": batch, "window": "20 x 256",
                           "device": torch.cuda.get_device_name(0), "sdpa_backends":
                           [b.name for b in fused]}
    for mode in ("eager", "compiled"):
        torch.manual_seed(0)
        model = NeurIPTPretrain(preset_config(preset)).cuda().train()
        for module in model.modules():
            if isinstance(module, Attention):
                module.math_max_keys = 0  # every attention on SDPA (no explicit-matmul path)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
        net = torch.compile(model) if mode == "compiled" else model
        torch.cuda.reset_peak_memory_stats()
        try:
            with sdpa_kernel(fused):
                out[mode] = _time_steps(net, opt, (signals, positions, channel_mask), steps,
                                        warmup)
            out[mode]["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        except Exception as err:  # noqa: BLE001 - a failed kernel or compile is the result
            out[mode] = {"error": f"{type(err).__name__}: {err}"[:400]}
        del model, net, opt
        torch.cuda.empty_cache()
        save(out)
    return out


def speed_check() -> dict[str, Any]:
    """:func:`benchmarks.bench_speed.gpu_section` with the ``--quick`` budgets."""
    from benchmarks.bench_speed import gpu_section
    from benchmarks.common import BenchOptions

    return gpu_section(BenchOptions(quick=True))


# --------------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------------
def _run_summary(run_dir: Path) -> dict[str, Any]:
    """Steps, losses and throughput of one torchrun pretraining run folder."""
    if not (run_dir / "result.json").is_file():
        return {}
    result = json.loads((run_dir / "result.json").read_text())
    log = [json.loads(s) for s in (run_dir / "log.jsonl").read_text().splitlines()]
    train = [r for r in log if "loss" in r]
    resumed = [r for r in log if "resumed_from" in r]
    config = json.loads((run_dir / "config.json").read_text())
    return {"steps": result["steps"], "final_train_loss": result["final_train_loss"],
            "val_loss": result["val_loss"], "strategy": config["strategy"],
            "preset_d_model": config["model"]["d_model"],
            "batch_per_gpu": config["train"]["batch_size"],
            "windows_per_s_last": train[-1]["windows_s"] if train else None,
            "resumed": resumed[-1] if resumed else None}


def summarize(work: Path, out_dir: Path, command: str, wall_s: float) -> Path:
    """Collect every step's status and numbers into ``gpu_check.json`` + ``.md``."""
    steps: dict[str, Any] = {}
    for line in (work / "status.tsv").read_text().splitlines():
        name, rc, seconds = line.split("\t")
        code = int(rc)
        status = "ok" if code == 0 else "timeout" if code in (124, 137) else "failed"
        steps[name] = {"status": status, "rc": code, "seconds": float(seconds)}
        found = work / "steps" / f"{name}.json"
        if found.is_file():
            steps[name]["result"] = json.loads(found.read_text())
        if name in RUNS:
            steps[name]["result"] = _run_summary(work / name)
        log_file = work / "logs" / f"{name}.log"
        if code and log_file.is_file():
            steps[name]["log_tail"] = log_file.read_text(errors="replace")[-1500:]
    info = json.loads((work / "info.json").read_text()) if (work / "info.json").is_file() else {}
    body = {"meta": stamp(command, wall_s), "gpus": info, "steps": steps}
    return write_part(out_dir, "gpu_check", body, markdown(body))


def markdown(body: dict[str, Any]) -> str:
    """The gpu_check.md table: one row per step."""
    rows = []
    for name, step in body["steps"].items():
        result = step.get("result") or {}
        rows.append([name, step["status"], fmt(step["seconds"], 1), _headline(name, result)])
    gpus = body.get("gpus", {})
    return "\n".join([
        "# GPU check", "", provenance(body.get("meta")), "",
        f"{gpus.get('count', '?')} x {gpus.get('name', '?')}, torch {gpus.get('torch', '?')}, "
        f"CUDA {gpus.get('cuda', '?')}, NCCL {gpus.get('nccl', '?')}.", "",
        md_table(["step", "status", "seconds", "numbers"], rows), "",
    ])


def _headline(name: str, r: dict[str, Any]) -> str:
    if name == "compile":
        return "; ".join(
            f"{mode}: " + (r[mode].get("error") or
                           f"{fmt(r[mode]['windows_per_s'])} windows/s, first step "
                           f"{fmt(r[mode]['first_step_s'], 1)} s")
            for mode in ("eager", "compiled") if mode in r)
    if name in RUNS and r:
        resumed = r.get("resumed") or {}
        return (f"{r['steps']} steps, loss {fmt(r['final_train_loss'], 4)}, "
                f"{fmt(r['windows_per_s_last'])} windows/s"
                + (f"; resumed at step {resumed['step']}, overrides {resumed.get('overrides')}"
                   if resumed else ""))
    if name == "speed" and r.get("available"):
        return "; ".join(f"{m}: {r[m].get('error') or fmt(r[m]['train_windows_per_s'])}"
                         for m in ("eager_bf16", "compiled_bf16") if m in r)
    return ", ".join(f"{k} {v}" for k, v in r.items() if isinstance(v, int | float | str))[:200]


def main(argv: list[str] | None = None) -> None:
    """Run one step (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check")
    p.add_argument("step", choices=("synth", "compile", "speed", "summarize"))
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--command", default="benchmarks/gpu_check.sh")
    p.add_argument("--wall-s", type=float, default=0.0)
    args = p.parse_args(argv)
    if args.step == "summarize":
        print(summarize(args.work, args.out, args.command, args.wall_s))
        return
    target = args.work / "steps" / f"{args.step}.json"
    target.parent.mkdir(parents=True, exist_ok=True)

    def save(result: dict[str, Any]) -> None:
        target.write_text(json.dumps(result, indent=1))

    if args.step == "synth":
        save(synth(args.work))
    elif args.step == "compile":
        compile_check(save)
    else:
        save(speed_check())


if __name__ == "__main__":
    main()
