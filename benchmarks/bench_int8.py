"""What int8 deployment costs: accuracy and one-window latency of ``--engine onnx-int8``.

A `small` classifier fine-tuned from `neuript-small` on MentalArithmetic's paper split (the
library's default recipe, :data:`EPOCHS` epochs, seed 0) is exported (``neuript export
--int8``), then every window of the four test subjects' recordings is classified through
``neuript predict`` with each engine: PyTorch, ONNX Runtime fp32 and ONNX Runtime int8. A
recording's class is its run (``_1`` rest, ``_2`` arithmetic). Latency is one window at a time
on 1 thread, the engines alternating in one process (medians), so the int8 / fp32 ratio holds
whatever else the machine runs.

Writes ``int8.json`` / ``int8.md``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import BenchOptions, fmt_duration, machine_info, md_table, now_iso

log = logging.getLogger(__name__)

EPOCHS = 3
"""Fine-tuning epochs of the benchmarked model (bounded by work; the accuracy *difference*
between engines is the measure, not the accuracy itself)."""
TEST_SUBJECTS: tuple[str, ...] = ("Subject32", "Subject33", "Subject34", "Subject35")
"""The paper split's test subjects (1-based 33-36)."""
ENGINES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
LATENCY_ROUNDS = 5
"""Alternating rounds of the one-window latency; each round times 20 calls per engine."""


def fine_tuned(opts: BenchOptions) -> Path:
    """The benchmarked model folder, trained afresh on every run (a model left in the work
    folder by older code would otherwise be measured as today's)."""
    from dataclasses import replace

    from neuript.train.finetune import FinetuneRunConfig, run_finetune

    out = opts.work_dir / "int8" / "run"
    base = FinetuneRunConfig()
    cfg = replace(base, task="mental_arithmetic", init="neuript-small", seeds=(0,),
                  out_dir=str(out), report=False,
                  train=replace(base.train, epochs=EPOCHS, threads=opts.train_threads,
                                ckpt_every=0))
    return Path(run_finetune(cfg).per_seed[0]["model_dir"])


def _latency_ms(model_dir: Path) -> dict[str, float]:
    """Median ms of one no-grad window per engine, alternating engines every round."""
    import torch

    from neuript.deploy import OnnxClassifier, check_batch, graph_shapes
    from neuript.model_folder import load_classifier

    c, t, g = graph_shapes(model_dir)
    feed = check_batch(model_dir, c, t, g)
    one = {k: v[:1] for k, v in feed.items()}
    model = load_classifier(model_dir).model
    onnx = {e: OnnxClassifier(model_dir, threads=1, int8=e == "onnx-int8")
            for e in ENGINES if e != "torch"}
    tensors = [torch.from_numpy(one[k]) for k in ("signals", "positions", "channel_mask",
                                                  "group_mask")]

    def call(engine: str) -> None:
        if engine == "torch":
            with torch.no_grad():
                model(*tensors)
        else:
            onnx[engine].logits(one["signals"], one["positions"][0], one["group_mask"][0])

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times: dict[str, list[float]] = {e: [] for e in ENGINES}
        for e in ENGINES:
            call(e)  # warm-up
        for _ in range(LATENCY_ROUNDS):
            for e in ENGINES:
                for _ in range(20):
                    t0 = time.perf_counter()
                    call(e)
                    times[e].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return {e: 1e3 * float(np.median(v)) for e, v in times.items()}


def run(opts: BenchOptions) -> dict[str, Any]:
    """Fine-tune (or reuse), export fp32 + int8, classify the test recordings with each engine."""
    from sklearn.metrics import balanced_accuracy_score

    from benchmarks.common import write_part
    from neuript.deploy import export_model_dir, quantize_model_dir
    from neuript.paths import data_root
    from neuript.predict import run_predict

    t0 = time.perf_counter()
    model_dir = fine_tuned(opts)
    fp32 = export_model_dir(model_dir)
    int8 = quantize_model_dir(model_dir)
    files = [data_root() / "eegmat" / f"{s}_{run}.edf" for s in TEST_SUBJECTS for run in (1, 2)]
    proba: dict[str, list[np.ndarray]] = {e: [] for e in ENGINES}
    labels = []
    for path in files:
        for e in ENGINES:
            rows = run_predict(path, model_dir, engine=e, threads=1, device="cpu").rows
            proba[e].append(rows[["p_rest", "p_task"]].to_numpy())
        labels.append(np.full(len(proba["torch"][-1]), int(path.stem.endswith("_2"))))
    y = np.concatenate(labels)
    p = {e: np.concatenate(v) for e, v in proba.items()}
    rows = []
    for e in ENGINES:
        rows.append({"engine": e,
                     "balanced_accuracy": float(balanced_accuracy_score(y, p[e].argmax(1))),
                     "agreement_with_torch": float(np.mean(p[e].argmax(1)
                                                           == p["torch"].argmax(1))),
                     "max_abs_proba_diff": float(np.abs(p[e] - p["torch"]).max())})
    latency = _latency_ms(model_dir)
    for r in rows:
        r["latency_ms"] = latency[r["engine"]]
    body = {"rows": rows, "windows": int(len(y)), "files": [f.name for f in files],
            "epochs": EPOCHS, "fp32_max_abs_logit_diff": fp32.max_abs_diff,
            "int8_max_abs_logit_diff": int8.max_abs_diff,
            "onnx_mb": (model_dir / "model.onnx").stat().st_size / 2**20,
            "int8_mb": (model_dir / "model.int8.onnx").stat().st_size / 2**20,
            "date": now_iso(), "machine": machine_info(), "command": opts.command,
            "wall_s": round(time.perf_counter() - t0, 1)}
    write_part(opts.out_dir, "int8", body, markdown(body))
    return body


def markdown(body: dict[str, Any]) -> str:
    """Render int8.json."""
    m = body.get("machine", {})
    lat = {r["engine"]: r["latency_ms"] for r in body["rows"]}
    table = md_table(["engine", "balanced acc. %", "agreement with PyTorch %",
                      "max |Δ probability|", "one window, 1 thread (ms)"],
                     [[f"`{r['engine']}`", f"{100 * r['balanced_accuracy']:.1f}",
                       f"{100 * r['agreement_with_torch']:.1f}",
                       f"{r['max_abs_proba_diff']:.4f}", f"{r['latency_ms']:.2f}"]
                      for r in body["rows"]])
    return "\n".join([
        "# int8 deployment (benchmarks/bench_int8.py)", "",
        f"Command: `{body['command']}` · {body['date']} · {m.get('nproc')} CPUs "
        f"({m.get('cpu_model')}), torch {m.get('torch')} · wall {fmt_duration(body['wall_s'])}",
        "",
        f"`small` fine-tuned from `neuript-small` on MentalArithmetic's paper split "
        f"({body['epochs']} epochs, seed 0), then `neuript predict --engine E` on every window "
        f"of the test subjects' {len(body['files'])} recordings ({body['windows']} windows; a "
        "recording's class is its run). Latency: one window, 1 thread, engines alternating in "
        "one process (medians). Graph sizes: fp32 "
        f"{body['onnx_mb']:.2f} MB, int8 {body['int8_mb']:.2f} MB.", "",
        table, "",
        f"int8 / fp32 ONNX latency, same process: **{lat['onnx-int8'] / lat['onnx']:.2f}x**.",
        ""])
