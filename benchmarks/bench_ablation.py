"""Ablations on MentalArithmetic at equal budget (same preset, steps, seeds and split).

* masking: AAMP vs random masking, each pretrained for ``--pretrain-steps`` steps on the same
  corpus, then the paper's probe: a linear SVM on frozen, standardised IILP features of
  MentalArithmetic (:mod:`neuript.train.probe`; C chosen on validation), beside the same probe
  of a randomly initialised encoder (what pretraining adds);
* PMoE: progressive experts (0, 0, 2, 4, 4, 6) vs dense (all 0) vs uniform (4 in every block);
* pooling: IILP over functional lobes vs mean pooling vs hemispheres;
* position code: 3D sinusoidal electrode code vs a 1D channel index.

Everything but masking is fine-tuned from scratch. Budget: the first ``secondary_seeds`` (3)
seeds and at most ``secondary_epochs`` (3) epochs per variant. The default variant
(progressive, functional, 3D) is one run shared by the three from-scratch ablations. Rows go
to ``ablations.json``.

Run: ``.venv/bin/python -m benchmarks.run --only ablation [--quick]`` (the full run is eight
fine-tunings x 3 seeds x 3 epochs and a second pretraining of NeurIPT-small: about
100,000 training windows, i.e. many hours on 2 cores; 6 minutes measured with --quick).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from benchmarks import bench_accuracy as acc
from benchmarks.common import (
    BenchOptions,
    machine_info,
    md_table,
    now_iso,
    pct,
    provenance,
    rows_meta,
    timed,
    write_part,
)

log = logging.getLogger(__name__)

DEFAULT_VARIANT = "default (progressive MoE, functional IILP, 3D code)"
PAPER: dict[str, str] = {
    "masking": "Paper (SVM probe on TUEV features, ~2,200 h of pretraining): AAMP 68.45 vs "
               "random masking 63.20.",
    "pooling": "Paper (MentalArithmetic, pretrained): IILP 86.46 vs mean pooling 79.51.",
    "pmoe": "Paper (from scratch, MentalArithmetic): full model 75.69; without 3D code, PMoE "
            "and IILP together 73.36.",
    "position": "Paper (from scratch, MentalArithmetic): full model 75.69; without 3D code, "
                "PMoE and IILP together 73.36.",
}
"""The paper's numbers for each ablation (NEURIPT_SPEC §7), printed above its table."""


def variants(depth: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(ablation, variant, FinetuneRunConfig fields) of the from-scratch ablations."""
    return [
        ("pmoe", "dense (no experts)", {"model_overrides": {"moe.experts_per_block": [0] * depth}}),
        ("pmoe", "uniform (4 experts per block)",
         {"model_overrides": {"moe.experts_per_block": [4] * depth}}),
        ("pooling", "mean", {"scheme": "mean"}),
        ("pooling", "hemisphere", {"scheme": "hemisphere"}),
        ("position", "1D channel index", {"model_overrides": {"spatial_code": "index"}}),
    ]


def probe_row(opts: BenchOptions, task: Any, init: str) -> dict[str, Any]:
    """One SVM-probe row (deterministic: no fine-tuning seed)."""
    from neuript.train.probe import run_probe

    t0 = time.perf_counter()
    with timed(f"SVM probe of {init}"):
        result = run_probe(init, task, preset_name=opts.preset)
    ba = result.test["balanced_accuracy"]
    return {**acc.row_base(opts, task.name, "neuript", "pretrained" if init != "scratch"
                           else "scratch", "paper_split"),
            "seeds": [], "epochs": "SVM probe", "max_steps": None,
            "balanced_accuracy_mean": ba, "balanced_accuracy_std": 0.0,
            "balanced_accuracy_ci95": [ba, ba], "auroc_mean": result.test.get("auroc"),
            "auc_pr_mean": result.test.get("auc_pr"), "probe_c": result.c,
            "probe_val_balanced_accuracy": result.val_balanced_accuracy,
            "split_hash": task.split_manifest()["hash"],
            "date": now_iso(), "wall_s": round(time.perf_counter() - t0, 1),
            "machine": machine_info()}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")[:40]


def run(opts: BenchOptions, pretrained: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run every ablation; write ablations.json / .md."""
    from neuript.data.tasks import build_task
    from neuript.model.presets import preset

    opts = opts.secondary()
    task = acc.subset_task(build_task("mental_arithmetic"), opts.subjects_per_split)
    rows: list[dict[str, Any]] = []
    corpus = acc.ensure_corpus(opts)
    for strategy in ("aamp", "random", None):
        if strategy is None:
            rows.append({"ablation": "masking", "variant": "no pretraining (random encoder), "
                         "SVM probe", "default": False, **probe_row(opts, task, "scratch")})
            continue
        info = (pretrained if strategy == "aamp" and pretrained
                else acc.ensure_pretrained(opts, strategy, corpus))
        rows.append({"ablation": "masking", "variant": f"{strategy} masking, SVM probe",
                     "default": strategy == "aamp", "pretrain": info,
                     **probe_row(opts, task, info["run_dir"])})
    default = acc.finetune_row(opts, task, "neuript", "scratch", tag="ablation_default")
    for name in ("pmoe", "pooling", "position"):
        rows.append({"ablation": name, "variant": DEFAULT_VARIANT, "default": True, **default})
    for name, variant, fields in variants(preset(opts.preset).depth):
        row = acc.finetune_row(opts, task, "neuript", "scratch",
                               tag=f"ablation_{name}_{_slug(variant)}", **fields)
        rows.append({"ablation": name, "variant": variant, "default": False, **row})
    write_part(opts.out_dir, "ablations", rows, markdown(rows))
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """Render ablations.json: one table per ablation, with the change against the default."""
    parts = ["# Ablations on MentalArithmetic (benchmarks/bench_ablation.py)", "",
             provenance(rows_meta(rows)), "",
             "Equal budget inside each table: same preset, optimiser steps, seeds and split. "
             "Balanced accuracy on the test subjects (mean ± std over seeds); Δ is against the "
             "paper's choice (marked *).", ""]
    for name in dict.fromkeys(r["ablation"] for r in rows):
        sub = [r for r in rows if r["ablation"] == name]
        ref = next((r for r in sub if r["default"]), sub[0])
        table = []
        for r in sub:
            delta = 100 * (r["balanced_accuracy_mean"] - ref["balanced_accuracy_mean"])
            notes = []
            if "pretrain" in r:
                loss = r["pretrain"].get("val_loss")
                if isinstance(loss, float):
                    notes.append(f"val recon. loss {loss:.4f}")
            if "probe_c" in r:
                notes.append(f"C = {r['probe_c']:g} (val {pct(r['probe_val_balanced_accuracy'])})")
            ba = pct(r["balanced_accuracy_mean"], 2)
            table.append([r["variant"] + (" *" if r["default"] else ""),
                          f"{ba} ± {pct(r['balanced_accuracy_std'], 2)}" if r["seeds"] else ba,
                          f"{delta:+.2f}", pct(r["auroc_mean"], 2), len(r["seeds"]) or "-",
                          str(r["epochs"]) + (f" (≤{r['max_steps']} steps)" if r.get("max_steps")
                                              else ""), "; ".join(notes),
                          f"{r['wall_s']:.0f} s"])
        parts += [f"## {name}", "", PAPER.get(name, ""), "",
                  md_table(["variant", "balanced acc. %", "Δ points", "AUROC %", "seeds",
                            "epochs", "note", "wall"], table), ""]
    return "\n".join(parts)
