"""Build the shipped ``neuript-small`` checkpoint: corpus, AAMP pretraining, probes, model card.

Stages (each reuses what an earlier call left in ``--work-dir``):

1. ``pretrain``: the bundled ADHD + EEGMMIDB + Muse recordings (never EEGMAT) become the
   benchmark's pretraining corpus (``bench_accuracy.ensure_corpus``); the ``small`` preset
   pretrains on it with AAMP for :data:`STEPS` steps of :data:`BATCH` windows, validation
   reconstruction loss every :data:`EVAL_EVERY` steps, a training checkpoint kept at each.
2. ``card``: a linear probe of the frozen encoder on MentalArithmetic (the recipe study's fold 0:
   train on folds 1-5 minus validation, score the test fold) at every kept checkpoint and for a
   random encoder; the weights go to ``src/neuript/weights/neuript-small/`` with
   ``MODEL_CARD.md`` and ``card.json`` written from the run's own logs.

Run: ``python -m benchmarks.build_checkpoint [--stage pretrain|ship|card|render|all]
[--threads 2]``. ``--recording-norm spectral --stage pretrain`` pretrains the same model on the
corpus with each recording's spectrum equalised (``prepare --recording-norm``), in
``benchmarks/work/checkpoint_spectral`` (an experiment: only the plain run is shipped).
Bounded by steps, so the same seed gives the same weights on a fast or a busy machine
(thread count changes float summation order, so bitwise equality needs the same threads).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, get_args

log = logging.getLogger(__name__)

NAME = "neuript-small"
PRESET = "small"
STEPS = 1500
"""Optimiser steps (the one-cycle schedule is laid out for them)."""
BATCH = 32
LR = 1e-3
EVAL_EVERY = 250
"""Steps between validation passes and kept checkpoints."""
SEED = 520
WORK = Path("benchmarks/work/checkpoint")
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "neuript" / "weights" / NAME


def pretrain_config(work: Path, threads: int | None):
    """The PretrainRunConfig of the shipped checkpoint."""
    from neuript.config import MaskConfig, OptimConfig, TrainConfig
    from neuript.train.pretrain import PretrainRunConfig

    return PretrainRunConfig(
        corpus=str(work / "corpus"), out=str(work / "pretrain"), preset=PRESET,
        mask=MaskConfig(), optim=OptimConfig(lr=LR),
        train=TrainConfig(batch_size=BATCH, epochs=None, max_steps=STEPS, seed=SEED,
                          threads=threads, ckpt_every=EVAL_EVERY, keep_last=STEPS // EVAL_EVERY + 1,
                          log_every=25),
        val_every=EVAL_EVERY, val_batches=None,
    )


def stage_pretrain(work: Path, threads: int | None, recording_norm: str = "none",
                   ) -> dict[str, Any]:
    """Corpus, then pretraining (resumed from the newest checkpoint when interrupted)."""
    from benchmarks.bench_accuracy import ensure_corpus
    from benchmarks.common import BenchOptions
    from neuript.train.checkpoint import latest_checkpoint
    from neuript.train.pretrain import run_pretrain

    corpus = ensure_corpus(BenchOptions(work_dir=work), recording_norm)
    cfg = pretrain_config(work, threads)
    done = Path(cfg.out) / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    resume = latest_checkpoint(cfg.out) is not None
    t0 = time.perf_counter()
    result = run_pretrain(cfg.__class__(**{**cfg.__dict__, "resume": resume}))
    wall = time.perf_counter() - t0
    summary = {**json.loads(done.read_text()), "wall_s": wall, "threads": threads,
               "resumed": resume, "corpus": corpus}
    done.write_text(json.dumps(summary, indent=2))
    log.info("pretrained %d steps in %.1f min, val loss %.4f", result.steps, wall / 60,
             result.val_loss)
    return summary


# --------------------------------------------------------------------------------------------
# stage 2: probes and the model card
# --------------------------------------------------------------------------------------------
PROBE_TASK = "mental_arithmetic"
"""The probe task: not in the corpus (EEGMAT is never pretrained on)."""
PROBE_FOLDS = 6
"""The recipe study's subject folds (fold k test, k + 1 validation)."""


def encoder_snapshots(run_dir: Path, out: Path) -> list[tuple[int, Path]]:
    """Every kept training checkpoint as a loadable pretraining checkpoint folder.

    A training checkpoint holds the model weights but not the model's config.json; the final
    ``pretrained/config.json`` (same model) is copied beside them.
    """
    from neuript.train.checkpoint import list_checkpoints

    snaps = []
    for ckpt in list_checkpoints(run_dir):
        step = int(ckpt.name.split("_")[-1])
        target = out / f"step_{step:06d}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "pretrained" / "config.json", target / "config.json")
        shutil.copyfile(ckpt / "model.safetensors", target / "model.safetensors")
        snaps.append((step, target))
    return snaps


def probe_encoder(init: str, task: Any, folds: list[list[str]], threads: int | None,
                  ) -> dict[str, Any]:
    """Linear-SVM probe of a frozen encoder on every fold, plus its MoE load on the task."""
    import numpy as np
    import torch

    from neuript.data.loader import make_task_loader
    from neuript.data.montage import pooling_groups
    from neuript.data.splits import fold_task
    from neuript.train.finetune import FinetuneRunConfig
    from neuript.train.finetune_seed import build_model
    from neuript.train.probe import svm_probe, task_features

    if threads:
        torch.set_num_threads(threads)
    groups = pooling_groups(list(task.ch_names), task.positions, "functional")
    torch.manual_seed(0)  # the random encoder of init="scratch"
    model = build_model(FinetuneRunConfig(task=task.name, init=init, preset=PRESET), task,
                        groups.names).eval()
    features = task_features(model, task)
    per_fold = []
    for k in range(len(folds)):
        fold = fold_task(task, folds, k)
        per_fold.append(svm_probe(features, task.labels, fold.splits, task.n_classes)
                        .test["balanced_accuracy"])
    batch = next(iter(make_task_loader(task, "train", batch_size=64, shuffle=True, seed=0)))
    with torch.no_grad():
        loads = model.forward_features(batch.signals, batch.positions, batch.channel_mask).load
    # max expert share x E: 1.0 is a perfectly even split, E means one expert takes everything
    imbalance = [round(float(x.max()) * len(x), 3) for x in loads]
    return {"probe_balanced_accuracy": float(np.mean(per_fold)),
            "probe_fold_balanced_accuracy": [round(float(v), 4) for v in per_fold],
            "moe_max_share_x_experts": imbalance}


def read_log(run_dir: Path) -> dict[str, list]:
    """Training (recon, aux) and validation reconstruction losses from ``log.jsonl``."""
    train, val = [], {}
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if "val_loss" in rec:  # the last pass is also logged at the end: one row per step
            val[rec["step"]] = rec["val_loss"]
        elif "recon_loss" in rec:
            train.append([rec["step"], rec["recon_loss"], rec["aux_loss"], rec.get("windows_s")])
    return {"train": train, "val": [[step, loss] for step, loss in sorted(val.items())]}


def ship_weights(work: Path, package_dir: Path) -> int:
    """Copy the final checkpoint into the package (atomically); return the weights' bytes."""
    run_dir = work / "pretrain"
    tmp = package_dir.with_name(package_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("model.safetensors", "config.json"):
        shutil.copyfile(run_dir / "pretrained" / name, tmp / name)
    size = (tmp / "model.safetensors").stat().st_size
    if size > 2_000_000:
        raise SystemExit(f"{NAME}: weights are {size / 1e6:.2f} MB, over the 2 MB budget")
    for name in ("card.json", "MODEL_CARD.md"):  # keep an earlier card until the new one exists
        if (package_dir / name).is_file():
            shutil.copyfile(package_dir / name, tmp / name)
    shutil.rmtree(package_dir, ignore_errors=True)
    tmp.replace(package_dir)
    log.info("shipped %s (%d bytes of weights)", package_dir, size)
    return size


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def stage_card(work: Path, threads: int | None, package_dir: Path,
               out_dir: Path = Path("benchmarks/results")) -> dict[str, Any]:
    """Ship the weights, probe every kept checkpoint and the random encoder, write the card."""
    from benchmarks.common import write_part
    from neuript.data.splits import subject_folds
    from neuript.data.tasks import build_task

    run_dir = work / "pretrain"
    result = json.loads((run_dir / "result.json").read_text())
    size = ship_weights(work, package_dir)
    task = build_task(PROBE_TASK)
    folds = subject_folds(task.subjects, PROBE_FOLDS)
    probes = [{"step": 0, "init": "random encoder", **probe_encoder("scratch", task, folds,
                                                                    threads)}]
    for step, snap in encoder_snapshots(run_dir, work / "snapshots"):
        probes.append({"step": step, **probe_encoder(str(snap), task, folds, threads)})
        log.info("probe at step %d: %.4f", step, probes[-1]["probe_balanced_accuracy"])
    corpus_dir = Path(result["corpus"]["dir"])
    corpus_cfg = json.loads((corpus_dir / "config.json").read_text())
    final = json.loads((run_dir / "pretrained" / "config.json").read_text())
    prov = final["extra"]["provenance"]
    card = {
        "name": NAME, "preset": PRESET, "model": final["model"], "mask": final["mask"],
        "steps": result["steps"], "batch_size": BATCH, "peak_lr": LR, "seed": SEED,
        "wall_s": result["wall_s"], "threads": result["threads"],
        "final_train_loss": result["final_train_loss"], "val_recon_loss": result["val_loss"],
        "corpus": {**result["corpus"], "preprocess": corpus_cfg["preprocess"],
                   "subjects": len(prov["subjects"]), "recordings": len(prov["recordings"]),
                   "manifest_sha256": prov["manifest_sha256"]},
        "curves": read_log(run_dir), "probes": probes, "probe_task": PROBE_TASK,
        "weights_bytes": size,
        "command": f"python -m benchmarks.build_checkpoint --threads {result['threads']}",
    }
    _write(package_dir / "card.json", json.dumps(card, indent=1))
    _write(package_dir / "MODEL_CARD.md", model_card(card))
    write_part(out_dir, "checkpoint", card, model_card(card))
    return card


def model_card(c: dict[str, Any]) -> str:
    """MODEL_CARD.md from ``card.json`` (every number comes from the run)."""
    corpus, pre = c["corpus"], c["corpus"]["preprocess"]
    probes = c["probes"]
    lines = [
        f"# {c['name']}: NeurIPT `{c['preset']}` pretrained with AAMP on the bundled corpus", "",
        "Load it offline: `neuript finetune --init neuript-small ...`, "
        "`neuript probe neuript-small --task ...`, or "
        "`NeurIPTClassifier.from_pretrained(\"neuript-small\", n_classes=K)`. Nothing is fetched.",
        "",
        "## Training", "",
        f"- model: preset `{c['preset']}` (d = {c['model']['d_model']}, "
        f"{len(c['model']['merge_factors'])} blocks, experts "
        f"{tuple(c['model']['moe']['experts_per_block'])}, decoder stride "
        f"{c['model']['decoder_stride']}); {c['weights_bytes'] / 1e6:.2f} MB of fp32 weights "
        "(encoder + decoder)",
        f"- objective: AAMP, mask ratios {tuple(c['mask']['ratios'])}, loss |e|^"
        f"{c['mask']['loss_p']}, MoE aux weight 0.8",
        f"- {c['steps']} steps x {c['batch_size']} windows, one-cycle peak LR {c['peak_lr']}, "
        f"seed {c['seed']}, {c['threads']} CPU thread(s), wall time "
        f"{c['wall_s'] / 60:.1f} min on a shared 2-core CPU",
        f"- final training loss (recon + 0.8 aux) {c['final_train_loss']:.4f}; validation "
        f"reconstruction loss (held-out subjects, fixed masks) {c['val_recon_loss']:.4f}",
        f"- rebuild: `{c['command']}` (deterministic for the same thread count)", "",
        "## Corpus", "",
        f"- datasets: {', '.join(corpus['datasets'])} (bundled in `../shared/data`); "
        "**never EEGMAT** (MentalArithmetic), the probe and benchmark task",
        f"- {corpus['files']} recordings, {corpus['subjects']} subjects, "
        f"{corpus['hours']:.2f} h, {corpus['windows']} windows of {pre['window_s']} s",
        f"- preprocessing: {pre['sfreq_hz']} Hz, band-pass {pre['l_freq_hz']}-{pre['h_freq_hz']}"
        f" Hz, montage `{pre['montage']}`, compression `{pre['compression']}`; rejection: "
        + ("no amplitude threshold (the bundled ADHD recordings exceed 100 µV almost "
           "everywhere; the A-law compresses large amplitudes)" if pre["reject_abs_uv"] is None
           else f"|x| > {pre['reject_abs_uv']} µV")
        + f", channel std < {pre['flat_std_uv']} µV (flat), clipped runs",
        f"- manifest hash `{corpus['manifest_sha256']}`; every recording and subject is listed "
        "in `config.json` (`extra.provenance`), which the subject-overlap guard reads: "
        "`finetune`/`evaluate`/`probe` refuse a task whose test split holds any of them "
        "(the bundled ADHD and Muse P300 tasks) unless `--allow-overlap` is given", "",
        "## Loss curves", "",
        "| step | train recon loss | aux loss | windows/s |", "|---|---|---|---|",
    ]
    for step, recon, aux, wps in c["curves"]["train"][::max(1, len(c["curves"]["train"]) // 12)]:
        lines.append(f"| {step} | {recon:.4f} | {aux:.4f} | {wps or 0:.1f} |")
    lines += ["", "| step | validation recon loss |", "|---|---|"]
    lines += [f"| {s} | {v:.4f} |" for s, v in c["curves"]["val"]]
    lines += ["", f"## Frozen-encoder probe ({c['probe_task']}, 6 subject folds)", "",
              "Linear SVM (C on the validation fold) on the IILP features of the frozen encoder; "
              "balanced accuracy averaged over the 6 test folds of the recipe study. MoE column: "
              "the largest expert's share of assignments x E per MoE layer on 64 task windows "
              "(1 = even).", "",
              "| step | probe balanced accuracy (%) | per fold | MoE max share x E |",
              "|---|---|---|---|"]
    for p in probes:
        label = "0 (random encoder)" if p.get("init") else str(p["step"])
        lines.append(f"| {label} | {100 * p['probe_balanced_accuracy']:.2f} | "
                     f"{', '.join(f'{100 * v:.1f}' for v in p['probe_fold_balanced_accuracy'])}"
                     f" | {', '.join(str(x) for x in p['moe_max_share_x_experts'])} |")
    lines += ["", "## Licences and citations", "",
              "The weights are derived from the bundled recordings (`../shared/data/README.md`):",
              "",
              "- ADHD/Control: Nasrabadi A. M., Allahverdy A., Samavati M., Mohammadi M. R. "
              "(2020), IEEE DataPort, open access (attribution).",
              "- EEGMMIDB: Schalk G. et al. (2004), BCI2000, IEEE TBME 51(6); Goldberger A. et al. "
              "(2000), PhysioNet; Open Data Commons Attribution License v1.0.",
              "- Muse: NeuroTechX eeg-notebooks v0.1, BSD-3-Clause.",
              "- Method: NeurIPT (NeurIPS 2025), as NEURIPT_SPEC.md describes it; the strided "
              "decoder is a choice beyond the paper "
"(docs/pretraining.md).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("pretrain", "ship", "card", "render", "all"),
                        default="all", help="ship: only copy the weights into the package; "
                        "render: rewrite MODEL_CARD.md from card.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work-dir", type=Path)
    from neuript.config import SubjectNorm

    parser.add_argument("--recording-norm", choices=get_args(SubjectNorm),
                        default="none", help="pretrain on each recording's normalised windows "
                        "(stage pretrain only; work dir checkpoint_<norm>)")
    args = parser.parse_args(argv)
    if args.recording_norm != "none" and args.stage != "pretrain":
        parser.error("--recording-norm is an experiment of --stage pretrain (not shipped)")
    if args.work_dir is None:
        args.work_dir = (WORK if args.recording_norm == "none"
                         else WORK.with_name(f"{WORK.name}_{args.recording_norm}"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.stage in ("pretrain", "all"):
        stage_pretrain(args.work_dir, args.threads, args.recording_norm)
    if args.stage == "ship":
        ship_weights(args.work_dir, PACKAGE_DIR)
    if args.stage == "render":  # MODEL_CARD.md and checkpoint.md again from card.json
        from benchmarks.common import write_part

        card = json.loads((PACKAGE_DIR / "card.json").read_text())
        card["curves"] = read_log(args.work_dir / "pretrain")
        _write(PACKAGE_DIR / "card.json", json.dumps(card, indent=1))
        _write(PACKAGE_DIR / "MODEL_CARD.md", model_card(card))
        write_part(Path("benchmarks/results"), "checkpoint", card, model_card(card))
    if args.stage in ("card", "all"):
        stage_card(args.work_dir, args.threads, PACKAGE_DIR)


if __name__ == "__main__":
    main()
