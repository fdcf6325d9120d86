"""Accuracy: MentalArithmetic (paper split + subject-wise CV) and transfer to ADHD and Muse P300.

Rows (one per model x initialisation x protocol) go to ``mental_arithmetic.json`` and
``transfer.json`` as JSON lists; each row holds ``model`` (neuript | eegnet | shallowconvnet |
bandpower_lr), ``init`` (pretrained | scratch | -), ``protocol`` (paper_split | subject_cv),
``seeds``, ``balanced_accuracy_mean/std/ci95``, ``auroc_mean``, ``auc_pr_mean`` (fractions),
``split_hash``, ``epochs``, ``command``, ``date``, ``wall_s`` and the machine.

The pretrained NeurIPT is pretrained here, on the bundled ADHD + EEGMMIDB + Muse recordings
(:func:`neuript.data.store.prepare_corpus`, then :func:`neuript.train.pretrain.run_pretrain` for
``--pretrain-steps`` steps); both are kept in ``benchmarks/work/`` and reused.

Run: ``.venv/bin/python -m benchmarks.run --only accuracy,transfer [--quick]``. The full
accuracy part trains NeurIPT-small on about 144,000 windows (5 seeds x 10 epochs, twice, plus
pretraining): days at the speed measured here; ``--quick`` took 4.4 + 2.2 minutes.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    BenchOptions,
    fmt,
    machine_info,
    md_table,
    met,
    now_iso,
    pct,
    provenance,
    rows_meta,
    timed,
    write_part,
)
from neuript.config import MaskConfig, OptimConfig, PreprocessConfig, TrainConfig
from neuript.data.splits import fold_task, subject_folds
from neuript.data.tasks.base import TaskWindows, manifest_hash

log = logging.getLogger(__name__)

CORPUS_DATASETS: tuple[str, ...] = ("adhd", "eegmmidb", "muse")
CORPUS_CONFIG = PreprocessConfig(montage="auto", reject_abs_uv=None)
"""'auto': the paper's TCP montage where a recording has its electrodes (ADHD, EEGMMIDB), the
monopolar channels otherwise (Muse); the 100-µV rule is off because it rejects every ADHD and
EEGMMIDB window (see corpus.md) and the A-law compresses large amplitudes anyway."""
PRETRAIN_LR = 1e-3
"""Peak LR of the benchmark's short pretraining runs (the paper's 3e-4 is for 40 epochs)."""
PAPER_CORPUS_HOURS = 2200.0
MODELS: tuple[tuple[str, str], ...] = (
    ("neuript", "pretrained"), ("neuript", "scratch"), ("eegnet", "-"),
    ("shallowconvnet", "-"), ("bandpower_lr", "-"),
)
PAPER_MA: tuple[tuple[str, float, float | None, float | None], ...] = (
    ("NeurIPT (paper, pretrained on ~2,200 h)", 86.46, 91.11, 78.27),
    ("NeurIPT from scratch (paper)", 75.69, None, None),
    ("CBraMod (paper)", 72.56, None, None),
    ("EEGNet (paper)", 67.70, None, None),
)
TRANSFER_TASKS: tuple[str, ...] = ("adhd", "muse_p300")


# --------------------------------------------------------------------------------------------
# corpus and pretraining
# --------------------------------------------------------------------------------------------
def ensure_corpus(opts: BenchOptions, recording_norm: str = "none") -> dict[str, Any]:
    """Build (or finish, or reuse) the pretraining corpus in ``work_dir/corpus``.

    ``recording_norm`` normalises each recording's windows (``prepare --recording-norm``).
    """
    from neuript.data.store import prepare_corpus
    from neuript.paths import data_root

    root = data_root()
    inputs = [root / name for name in CORPUS_DATASETS if (root / name).exists()]
    with timed("pretraining corpus (reused when present)"):
        summary = prepare_corpus(inputs, opts.work_dir / "corpus", CORPUS_CONFIG, workers=2,
                                 progress=False, recording_norm=recording_norm)
    return {"dir": str(opts.work_dir / "corpus"), "hours": summary.hours,
            "windows": summary.windows, "files": summary.files_done,
            "datasets": [p.name for p in inputs], "recording_norm": recording_norm}


def ensure_pretrained(opts: BenchOptions, strategy: str = "aamp",
                      corpus: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pretrain ``opts.preset`` with ``strategy`` masking for ``opts.pretrain_steps`` (reused)."""
    import json

    from neuript.train.checkpoint import latest_checkpoint
    from neuript.train.pretrain import PretrainRunConfig, run_pretrain

    corpus = corpus or ensure_corpus(opts)
    run_dir = (opts.work_dir / "pretrain"
               / f"{opts.preset}_{strategy}_{opts.pretrain_steps}x{opts.pretrain_batch}")
    info = {"strategy": strategy, "steps": opts.pretrain_steps, "batch_size": opts.pretrain_batch,
            "run_dir": str(run_dir), "corpus_hours": corpus["hours"],
            "corpus_windows": corpus["windows"], "preset": opts.preset}
    done = run_dir / "result.json"
    if (run_dir / "pretrained" / "model.safetensors").is_file() and done.is_file():
        return {**info, **json.loads(done.read_text()), "reused": True, "wall_s": 0.0}
    cfg = PretrainRunConfig(
        corpus=corpus["dir"], out=str(run_dir), preset=opts.preset,
        mask=MaskConfig(strategy=strategy), optim=OptimConfig(lr=PRETRAIN_LR),
        train=TrainConfig(batch_size=opts.pretrain_batch, epochs=None,
                          max_steps=opts.pretrain_steps, threads=opts.train_threads,
                          ckpt_every=0 if opts.quick else 100, log_every=10),
        val_batches=2 if opts.quick else 50, resume=latest_checkpoint(run_dir) is not None,
    )
    with timed(f"pretraining {strategy} for {opts.pretrain_steps} steps") as clock:
        result = run_pretrain(cfg)
    return {**info, "final_train_loss": result.final_train_loss, "val_loss": result.val_loss,
            "reused": False, "wall_s": clock["wall_s"]}


# --------------------------------------------------------------------------------------------
# fine-tuning rows
# --------------------------------------------------------------------------------------------
def finetune_config(opts: BenchOptions, task_name: str, model: str, init: str, out_dir: Path,
                    **fields: Any):
    """The FinetuneRunConfig of one row (``fields`` override scheme, mode, model_overrides…)."""
    from neuript.train.finetune import FinetuneRunConfig

    train = TrainConfig(batch_size=opts.batch_size, epochs=opts.epochs, max_steps=opts.max_steps,
                        threads=opts.train_threads, ckpt_every=0, log_every=50)
    return FinetuneRunConfig(task=task_name, model=model, init=init, preset=opts.preset,
                             seeds=opts.seeds, train=train, out_dir=str(out_dir), report=False,
                             **fields)


def subset_task(task: TaskWindows, n_subjects: int | None) -> TaskWindows:
    """Keep, in every split, the first ``n_subjects`` subjects (sorted) holding each class.

    Unlike ``FinetuneRunConfig.subjects_per_split`` this keeps both classes in every split when
    subjects carry one class each (ADHD vs control).
    """
    if n_subjects is None:
        return task
    subjects = task.subjects.astype(str)
    chosen: set[str] = set()
    for split in ("train", "val", "test"):
        for label in range(task.n_classes):
            pick = (task.splits == split) & (task.labels == label)
            chosen.update(sorted(set(subjects[pick].tolist()))[:n_subjects])
    return task.take(np.flatnonzero(np.isin(subjects, sorted(chosen))))


def metric_fields(aggregate: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The row's metric columns from ``neuript.train.metrics.aggregate`` output (fractions)."""
    ba = aggregate["balanced_accuracy"]

    def mean(key: str) -> float | None:
        return aggregate[key]["mean"] if key in aggregate else None

    return {"balanced_accuracy_mean": ba["mean"], "balanced_accuracy_std": ba["std"],
            "balanced_accuracy_ci95": [ba["ci95_low"], ba["ci95_high"]],
            "auroc_mean": mean("auroc"), "auc_pr_mean": mean("auc_pr"),
            "cohen_kappa_mean": mean("cohen_kappa"), "weighted_f1_mean": mean("weighted_f1")}


def recipe_fields(cfg: Any) -> dict[str, Any]:
    """The fine-tuning recipe a NeurIPT row ran with (peak LR, epochs, IILP pooling), so a table
    read after the defaults change says which defaults produced it."""
    from neuript.model.presets import preset

    pool = (cfg.model_overrides or {}).get("pool_stats", preset(cfg.preset).pool_stats)
    return {"recipe": {"optim.lr": cfg.optim.lr, "train.epochs": cfg.train.epochs,
                       "pool_stats": pool}} if cfg.model == "neuript" else {}


def recipe_line(rows: list[dict[str, Any]]) -> str:
    """One sentence on the NeurIPT rows' recipe, or on its absence (rows written before
    2026-12-02, when the recipe study changed the defaults, do not record one)."""
    recipes = {json.dumps(r["recipe"], sort_keys=True) for r in rows if r.get("recipe")}
    neuript_rows = [r for r in rows if r.get("model") == "neuript"]
    if not neuript_rows:
        return ""
    if not recipes:
        return ("NeurIPT recipe: not recorded. These rows predate the recipe study "
                "(docs/recipe.md), run at the defaults of then (peak LR 1e-3, mean pooling); "
                "today's defaults (peak LR 3e-3, mean + log-std pooling) are in the recipe "
                "section. Rerun `python -m benchmarks.run --only accuracy` to refresh them.")
    return "NeurIPT recipe: " + "; ".join(
        ", ".join(f"{k} = {v}" for k, v in json.loads(r).items()) for r in sorted(recipes)) + "."


def row_base(opts: BenchOptions, task: str, model: str, init: str, protocol: str) -> dict:
    """The descriptive columns every row carries."""
    return {"task": task, "model": model, "init": init, "protocol": protocol,
            "seeds": list(opts.seeds), "epochs": opts.epochs, "max_steps": opts.max_steps,
            "batch_size": opts.batch_size, "subjects_per_split": opts.subjects_per_split,
            "preset": opts.preset if model == "neuript" else None, "quick": opts.quick,
            "command": opts.command}


def finetune_row(opts: BenchOptions, task: TaskWindows, model: str, init: str,
                 init_dir: str | None = None, tag: str | None = None,
                 **fields: Any) -> dict[str, Any]:
    """Fine-tune one model on the task's own split (``paper_split``) and return its row.

    ``task`` is used as given (subset it with :func:`subset_task` first for quick runs);
    ``tag`` names the run folder; ``fields`` override FinetuneRunConfig fields.
    """
    from neuript.train.finetune import run_finetune

    t0 = time.perf_counter()
    tag = tag or f"{model}_{init.strip('-') or 'baseline'}"
    out = opts.work_dir / "finetune" / task.name / "paper_split" / tag
    cfg = finetune_config(opts, task.name, model, init_dir or "scratch", out, **fields)
    with timed(f"{task.name}: {model} ({init})"):
        result = run_finetune(cfg, task=task)
    return {**row_base(opts, task.name, model, init, "paper_split"), **recipe_fields(cfg),
            **metric_fields(result.aggregate), "split_hash": result.split_hash,
            "per_seed_balanced_accuracy": [r["test"]["balanced_accuracy"] for r in result.per_seed],
            "date": now_iso(), "wall_s": round(time.perf_counter() - t0, 1),
            "machine": machine_info(), "run_dir": str(result.run_dir)}


def cv_row(opts: BenchOptions, task: TaskWindows, model: str, init: str,
           init_dir: str | None = None) -> dict[str, Any]:
    """Subject-wise cross-validation: per seed, metrics averaged over folds, then over seeds."""
    from neuript.train.finetune import run_finetune
    from neuript.train.metrics import aggregate

    t0 = time.perf_counter()
    folds = subject_folds(task.subjects, opts.cv_folds)
    per_fold, hashes = [], []
    for k in range(len(folds)):
        out = (opts.work_dir / "finetune" / task.name / "subject_cv"
               / f"{model}_{init.strip('-') or 'baseline'}" / f"fold{k}")
        cfg = finetune_config(opts, task.name, model, init_dir or "scratch", out)
        with timed(f"{task.name} CV fold {k + 1}/{len(folds)}: {model} ({init})"):
            result = run_finetune(cfg, task=fold_task(task, folds, k))
        per_fold.append([r["test"] for r in result.per_seed])
        hashes.append(result.split_hash)
    keys = list(per_fold[0][0])
    per_seed = [{key: float(np.nanmean([fold[s][key] for fold in per_fold])) for key in keys}
                for s in range(len(opts.seeds))]
    row = {**row_base(opts, task.name, model, init, "subject_cv"), **recipe_fields(cfg),
           **metric_fields(aggregate(per_seed)),
           "split_hash": manifest_hash({"folds": hashes}), "n_folds": len(folds),
           "fold_balanced_accuracy": [float(np.mean([m["balanced_accuracy"] for m in fold]))
                                      for fold in per_fold],
           "date": now_iso(), "wall_s": round(time.perf_counter() - t0, 1),
           "machine": machine_info(), "subjects_per_split": None}
    return row


def task_rows(opts: BenchOptions, task_name: str, pretrained: dict[str, Any] | None,
              with_cv: bool) -> list[dict[str, Any]]:
    """Every model's row on one task (paper split, and subject CV when ``with_cv``)."""
    from neuript.data.tasks import build_task

    with timed(f"build task {task_name}"):
        task = build_task(task_name)
    small = subset_task(task, opts.subjects_per_split)
    rows = []
    for model, init in MODELS:
        init_dir = pretrained["run_dir"] if init == "pretrained" and pretrained else None
        if init == "pretrained" and init_dir is None:
            continue
        # the transfer tasks' recordings are in the pretraining corpus (transductive, as the
        # transfer section says): run them with the overlap recorded instead of refused
        fields = {"allow_overlap": True} if init == "pretrained" and task_name in \
            TRANSFER_TASKS else {}
        row = finetune_row(opts, small, model, init, init_dir, **fields)
        if init == "pretrained":
            row["pretrain"] = pretrained
            overlap = json.loads((Path(row["run_dir"]) / "metrics.json").read_text()).get(
                "pretraining_overlap")
            row["pretraining_overlap"] = overlap and {k: overlap[k] if k == "status" else
                                                      len(overlap[k]) for k in overlap}
        rows.append(row)
    for model, init in MODELS if with_cv else ():
        if model in opts.cv_models and init != "pretrained":
            rows.append(cv_row(opts, task, model, init))
    return rows


# --------------------------------------------------------------------------------------------
# the parts
# --------------------------------------------------------------------------------------------
def run(opts: BenchOptions, pretrained: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """MentalArithmetic rows; writes mental_arithmetic.json / .md."""
    pretrained = pretrained or ensure_pretrained(opts)
    rows = task_rows(opts, "mental_arithmetic", pretrained, with_cv=True)
    write_part(opts.out_dir, "mental_arithmetic", rows, markdown(rows))
    return rows


def run_transfer(opts: BenchOptions, pretrained: dict[str, Any] | None = None) -> list[dict]:
    """ADHD vs control and Muse P300 rows (reduced budget, see BenchOptions.secondary)."""
    pretrained = pretrained or ensure_pretrained(opts)
    opts = opts.secondary()
    rows = [r for name in TRANSFER_TASKS for r in task_rows(opts, name, pretrained, False)]
    write_part(opts.out_dir, "transfer", rows, markdown_transfer(rows))
    return rows


# --------------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------------
def _cells(r: dict[str, Any]) -> list[str]:
    lo, hi = r["balanced_accuracy_ci95"]
    return [r["model"], r["init"], r["protocol"], str(len(r["seeds"])),
            f"**{pct(r['balanced_accuracy_mean'], 2)}** ± {pct(r['balanced_accuracy_std'], 2)}",
            f"[{pct(lo)}, {pct(hi)}]", pct(r["auroc_mean"], 2), pct(r["auc_pr_mean"], 2),
            str(r["epochs"]) + (f" (≤{r['max_steps']} steps)" if r.get("max_steps") else ""),
            r["split_hash"], f"{r['wall_s']:.0f} s"]


HEADER = ["model", "init", "protocol", "seeds", "balanced acc. %", "95% CI", "AUROC %",
          "AUC-PR %", "epochs", "split hash", "wall"]


def _find(rows: list[dict], model: str, init: str, protocol: str = "paper_split") -> dict | None:
    return next((r for r in rows if (r["model"], r["init"], r["protocol"]) ==
                 (model, init, protocol)), None)


def ma_targets(rows: list[dict[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for the MentalArithmetic aims on the paper split."""
    scratch, pre = _find(rows, "neuript", "scratch"), _find(rows, "neuript", "pretrained")
    eegnet = _find(rows, "eegnet", "-")
    ba = {k: (r["balanced_accuracy_mean"] if r else None)
          for k, r in (("scratch", scratch), ("pre", pre), ("eegnet", eegnet))}
    out = [("NeurIPT from scratch >= 75.7 % balanced accuracy", pct(ba["scratch"], 2),
            None if ba["scratch"] is None else ba["scratch"] >= 0.757)]
    both = ba["scratch"] is not None and ba["eegnet"] is not None
    out.append(("NeurIPT from scratch >= EEGNet + 5 points",
                f"{pct(ba['scratch'], 2)} vs {pct(ba['eegnet'], 2)} + 5",
                ba["scratch"] >= ba["eegnet"] + 0.05 if both else None))
    both = ba["scratch"] is not None and ba["pre"] is not None
    out.append(("pretrained > scratch", f"{pct(ba['pre'], 2)} vs {pct(ba['scratch'], 2)}",
                ba["pre"] > ba["scratch"] if both else None))
    return out


def _width(preset_name: str) -> str:
    """``"d = 32"`` for a preset name (``"d = ?"`` for an unknown one)."""
    from neuript.model.presets import PRESETS

    cfg = PRESETS.get(preset_name)
    return f"d = {cfg.d_model}" if cfg is not None else "d = ?"


def shortfalls(rows: list[dict[str, Any]]) -> list[str]:
    """Plain statements, derived from the numbers, of where and why neuript trails the paper."""
    out = []
    scratch, pre = _find(rows, "neuript", "scratch"), _find(rows, "neuript", "pretrained")
    any_row = scratch or pre or (rows[0] if rows else None)
    if any_row and any_row.get("quick"):
        out.append("These are `--quick` numbers (1 seed, a couple of optimiser steps, one subject "
                   "per split): they test that the pipeline runs, not how well the model learns.")
    if scratch:
        gap = 75.69 - 100 * scratch["balanced_accuracy_mean"]
        if gap > 0:
            out.append(f"From scratch: {pct(scratch['balanced_accuracy_mean'], 2)} vs the paper's "
                       f"75.69 ({gap:.1f} points short) with the {scratch['preset']} preset "
                       f"({_width(scratch['preset'])}, not d = 768), {scratch['epochs']} epoch(s)"
                       + (f" capped at {scratch['max_steps']} steps" if scratch["max_steps"]
                          else "") + f" and {len(scratch['seeds'])} seed(s).")
    if pre:
        p = pre.get("pretrain", {})
        hours = p.get("corpus_hours", float("nan"))
        gap = 86.46 - 100 * pre["balanced_accuracy_mean"]
        if gap > 0:
            out.append(f"Pretrained: {pct(pre['balanced_accuracy_mean'], 2)} vs 86.46 ({gap:.1f} "
                       f"points short). The corpus here is {hours:.1f} h of EEG "
                       f"({100 * hours / PAPER_CORPUS_HOURS:.2f}% of the paper's "
                       f"~{PAPER_CORPUS_HOURS:,.0f} h), seen for {p.get('steps')} steps of "
                       f"{p.get('batch_size')} windows, by a {p.get('preset')} model.")
        if scratch and pre["balanced_accuracy_mean"] <= scratch["balanced_accuracy_mean"]:
            out.append("Pretraining did not beat training from scratch here: with so little "
                       "pretraining data and compute the encoder starts little better than random.")
    return out or ["Nothing: every NeurIPT row reaches the paper's number."]


def markdown(rows: list[dict[str, Any]]) -> str:
    """Render mental_arithmetic.json."""
    paper = [[name, "", "paper split", "", f"{ba:.2f}", "", fmt(auroc), fmt(aucpr), "", "", ""]
             for name, ba, auroc, aucpr in PAPER_MA]
    tgt = [[t, v, met(m)] for t, v, m in ma_targets(rows)]
    pre = _find(rows, "neuript", "pretrained")
    corpus = ""
    if pre and pre.get("pretrain"):
        p = pre["pretrain"]
        corpus = (f"Pretrained = NeurIPT-{p['preset']} pretrained with {p['strategy']} masking on "
                  f"{p['corpus_hours']:.2f} h ({p['corpus_windows']} windows) of ADHD + EEGMMIDB "
                  f"+ Muse EEG for {p['steps']} steps x {p['batch_size']} windows "
                  f"(validation reconstruction loss {fmt(p.get('val_loss'), 4)}).")
    return "\n".join([
        "# MentalArithmetic (benchmarks/bench_accuracy.py)", "",
        provenance(rows_meta(rows)), "",
        "Paper split: subjects 1-28 train, 29-32 validation, 33-36 test (the paper's protocol); "
        "model selection on validation balanced accuracy. subject_cv: 6 folds by subject over "
        "all 36 subjects (next fold = validation). Metrics on the test windows, mean over "
        "seeds (± sample std; t-based 95% CI).", "", corpus, "", recipe_line(rows), "",
        md_table(HEADER, [_cells(r) for r in rows] + paper), "",
        "## Targets", "", md_table(["target", "measured", "status"], tgt), "",
        "## Where neuript falls short of the paper and why", "",
        *[f"- {s}" for s in shortfalls(rows)], "",
    ])


def markdown_transfer(rows: list[dict[str, Any]]) -> str:
    """Render transfer.json."""
    parts = ["# Transfer: ADHD vs control, Muse P300 (benchmarks/bench_accuracy.py)", "",
             provenance(rows_meta(rows)), "",
             "Each task's own subject split. The pretraining corpus holds the unlabelled ADHD and "
             "Muse recordings, test subjects included, so the pretrained rows are transductive "
             "for these two tasks.", ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        sub = [r for r in rows if r["task"] == task]
        parts += [f"## {task}", "", md_table(HEADER, [_cells(r) for r in sub]), ""]
    return "\n".join(parts)
