"""Fine-tuning recipe study: which defaults make NeurIPT learn, decided on subject-wise CV.

MentalArithmetic, all 36 subjects, the 6 subject folds of ``bench_accuracy.subject_cv`` (fold k
tests, fold k + 1 validates, the rest trains). Every variant is a set of dotted
``FinetuneRunConfig`` overrides on today's defaults; one cell = one (variant, fold, seed)
fine-tuning run, cached in ``work/recipe/<variant>/fold<k>/seed<s>/`` and reused when its
resolved config is unchanged, so the study can be run in pieces (several processes on
different ``--recipe-variants``) and the table rebuilt from the cache.

A row reports the test balanced accuracy and AUROC, mean ± std over every fold × seed cell, a
t-based 95% interval over those cells, and the paired difference (mean and 95% interval over the
same cells) against band power + LR and against today's defaults. Rows that failed stay in the
table with their error. Defaults are chosen from these rows only; the paper split's test
subjects never enter the choice.

Run: ``python -m benchmarks.run --only recipe --seeds 0 [--recipe-variants a,b]``; without
``--recipe-variants`` only band power, ShallowConvNet, ``today``, the default and the other-tasks
section run (screens are named explicitly).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import BenchOptions, fmt_duration, machine_info, md_table, now_iso, pct

log = logging.getLogger(__name__)

PAPER = -1
"""The fold id of the paper split (subjects 1-28 / 29-32 / 33-36), reported beside the CV."""
CELL_CODE_VERSION = 1
"""Bump when a change to neuript's code (not to a config) changes what a cell computes: the
cells of every other version are then rerun. Version 1 is every cell made before this field
existed, so it is left out of the key (their keys, and the hours they cost, stay valid)."""
REFERENCE = "bandpower_lr"
"""The classical baseline every row is paired against."""
TODAY = "today"
"""The row of the defaults before this study (peak LR 1e-3, random head, no augmentation)."""


@dataclass(frozen=True)
class Variant:
    """One recipe: a model kind and dotted ``FinetuneRunConfig`` overrides."""

    what: str
    """One line: what changes against the defaults."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Dotted FinetuneRunConfig overrides (``{"optim.lr": 3e-4, "train.epochs": 10}``)."""
    model: str = "neuript"
    """neuript or a baseline."""
    compression: str | None = None
    """Replace the task's amplitude compression (``"none"``: linear µV); None keeps the A-law."""
    pair_with: str | None = None
    """Another variant this row is paired against in its own column (the same input for
    another model, or the same recipe from scratch); None: no such column entry."""
    train_subjects: int | None = None
    """Train on the first n (by name) of the fold's training subjects, validation and test
    unchanged (the learning curve); None: all of them."""


_OLD = {"head_init": "random", "augment.scale_range": 0.0, "augment.noise_uv": 0.0,
        "augment.channel_dropout": 0.0, "augment.time_shift_s": 0.0,
        "model_overrides": {"pool_stats": "mean"}, "optim.lr": 1e-3, "train.epochs": 6}
"""Today's defaults before the study, stated explicitly so the row survives new defaults."""

_DEF = {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"}, "optim.lr": 3e-3}
"""The default recipe (``logstd_lr3e-3``) stated in full, the base of later screens."""

def _from_small_spectral(what: str, **overrides: Any) -> Variant:
    """A screen of the default recipe from `neuript-small` under ``subject_norm="spectral"``,
    paired with ``pretrained_spectral``; ``overrides`` change it."""
    return Variant(f"from `neuript-small`, subject-equalised spectra, {what}",
                   {**_DEF, "init": "neuript-small", "subject_norm": "spectral", **overrides},
                   pair_with="pretrained_spectral")


def _normalised_rows(method: str, tag: str, how: str) -> dict[str, Variant]:
    """Band power, ShallowConvNet and the default recipe on ``subject_norm=method`` input."""
    bandpower = f"bandpower_lr_{tag}"
    return {
        bandpower: Variant(f"band power + LR on {how} (subject_norm={method})",
                           {"subject_norm": method}, "bandpower_lr"),
        f"shallowconvnet_{tag}": Variant(f"ShallowConvNet on {how}",
                                         {"train.epochs": 6, "optim.lr": 1e-3,
                                          "subject_norm": method}, "shallowconvnet",
                                         pair_with=bandpower),
        f"logstd_lr3e-3_{tag}": Variant(f"the default on {how} (subject_norm={method})",
                                        {**_DEF, "subject_norm": method}, pair_with=bandpower),
    }


LEARNING_CURVE: tuple[int, ...] = (6, 12)
"""Training-subject counts of the learning-curve rows (a fold trains on 24)."""


def _curve_rows(n: int) -> dict[str, Variant]:
    """Band power, the default from scratch and from `neuript-small`, all on subject-equalised
    spectra, trained on ``n`` of the fold's training subjects."""
    few = f"trained on {n} of the fold's 24 training subjects, subject-equalised spectra"
    return {
        f"bandpower_lr_spectral_n{n}": Variant(f"band power + LR, {few}",
                                               {"subject_norm": "spectral"}, "bandpower_lr",
                                               pair_with="bandpower_lr_spectral",
                                               train_subjects=n),
        f"logstd_lr3e-3_spectral_n{n}": Variant(f"the default from scratch, {few}",
                                                {**_DEF, "subject_norm": "spectral"},
                                                pair_with=f"bandpower_lr_spectral_n{n}",
                                                train_subjects=n),
        f"pretrained_spectral_n{n}": Variant(f"from `neuript-small`, the default recipe, {few}",
                                             {**_DEF, "init": "neuript-small",
                                              "subject_norm": "spectral"},
                                             pair_with=f"logstd_lr3e-3_spectral_n{n}",
                                             train_subjects=n),
    }


WIDE64 = {"d_model": 64, "n_heads": 4, "d_ff": 128, "moe.expert_hidden": 64,
          "moe.shared_hidden": 128}
"""``model_overrides`` of the d = 64 rows over the ``small`` preset."""
SPECTRAL_CHECKPOINT = "benchmarks/work/checkpoint_spectral/pretrain/pretrained"
"""Where ``build_checkpoint --recording-norm spectral --stage pretrain`` leaves its model."""
VARIANTS: Mapping[str, Variant] = types.MappingProxyType({
    REFERENCE: Variant("band power + logistic regression (C on validation)", {}, "bandpower_lr"),
    "shallowconvnet": Variant("ShallowConvNet, 6 epochs at peak LR 1e-3",
                              {"train.epochs": 6, "optim.lr": 1e-3}, "shallowconvnet"),
    TODAY: Variant("defaults before this study: peak LR 1e-3, 6 epochs, mean pooling", _OLD),
    "today_lr3e-4": Variant("as today, peak LR 3e-4", {**_OLD, "optim.lr": 3e-4}),
    "today_lr3e-3": Variant("as today, peak LR 3e-3 (the default with the paper's mean pooling)",
                            {**_OLD, "optim.lr": 3e-3}),
    "today_12ep": Variant("as today, 12 epochs", {**_OLD, "train.epochs": 12}),
    "today_freeze2": Variant("as today, frozen-encoder warm-up for 2 epochs (paper option)",
                             {**_OLD, "freeze_epochs": 2}),
    "today_mlp": Variant("as today, MLP head", {**_OLD, "head": "mlp"}),
    "today_wd0.3": Variant("as today, weight decay 0.3", {**_OLD, "optim.weight_decay": 0.3}),
    "today_noalaw": Variant("as today, no A-law compression (linear µV)", {**_OLD},
                            compression="none"),
    "logstd": Variant("as today, IILP pools mean and log-std over time",
                      {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"}}),
    "lpft": Variant("as today, head initialised by a linear probe (LP-FT)",
                    {**_OLD, "head_init": "linear_probe"}),
    "lpft_lr3e-4": Variant("LP-FT at peak LR 3e-4", {**_OLD, "head_init": "linear_probe",
                                                       "optim.lr": 3e-4}),
    "logstd_lpft_lr1e-4": Variant("log-std pooling + LP-FT at peak LR 1e-4",
                                  {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                                   "head_init": "linear_probe", "optim.lr": 1e-4}),
    "logstd_lpft_lr3e-4": Variant("log-std pooling + LP-FT at peak LR 3e-4",
                                  {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                                   "head_init": "linear_probe", "optim.lr": 3e-4}),
    "logstd_lr3e-3": Variant("log-std pooling, peak LR 3e-3",
                             {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                              "optim.lr": 3e-3}),
    "logstd_nomergeln": Variant("log-std pooling, no LayerNorm in segment merging",
                                {**_OLD, "model_overrides": {"pool_stats": "mean_logstd",
                                                             "merge_norm": "none"}}),
    "logstd_drop0_lpft": Variant("log-std pooling, dropout 0, LP-FT at peak LR 3e-4",
                                 {**_OLD, "model_overrides": {"pool_stats": "mean_logstd",
                                                              "dropout": 0.0},
                                  "head_init": "linear_probe", "optim.lr": 3e-4}),
    "logstd_drop0_lr3e-3": Variant("log-std pooling, dropout 0, peak LR 3e-3",
                                   {**_OLD, "model_overrides": {"pool_stats": "mean_logstd",
                                                                "dropout": 0.0},
                                    "optim.lr": 3e-3}),
    "logstd_lr3e-3_aug": Variant("log-std pooling, peak LR 3e-3, augmentations (scale ±20%,"
                                 " noise 1 µV, channel dropout 0.1, shift ≤ 0.5 s)",
                                 {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                                  "optim.lr": 3e-3, "augment.scale_range": 0.2,
                                  "augment.noise_uv": 1.0, "augment.channel_dropout": 0.1,
                                  "augment.time_shift_s": 0.5}),
    "augment": Variant("as today, augmentations (scale ±20%, noise 1 µV, channel dropout 0.1,"
                       " shift ≤ 0.5 s)",
                       {**_OLD, "augment.scale_range": 0.2, "augment.noise_uv": 1.0,
                        "augment.channel_dropout": 0.1, "augment.time_shift_s": 0.5}),
    "logstd_lpft": Variant("log-std pooling + LP-FT",
                           {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                            "head_init": "linear_probe"}),
    "logstd_lpft_aug": Variant("log-std pooling + LP-FT + augmentations",
                               {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                                "head_init": "linear_probe", "augment.scale_range": 0.2,
                                "augment.noise_uv": 1.0, "augment.channel_dropout": 0.1,
                                "augment.time_shift_s": 0.5}),
    "logstd_lr3e-3_bs16": Variant("the default with 16-window batches (twice the optimiser "
                                  "steps on the same windows)", {**_DEF, "train.batch_size": 16}),
    "logstd_lr3e-3_nomergeln": Variant("the default without the merge LayerNorm",
                                       {**_DEF, "model_overrides": {"pool_stats": "mean_logstd",
                                                                    "merge_norm": "none"}}),
    "logstd_lr3e-3_15ep_aug": Variant("the default for 15 epochs with augmentations (scale "
                                      "±20%, noise 1 µV, channel dropout 0.1, shift ≤ 0.5 s)",
                                      {**_DEF, "train.epochs": 15, "augment.scale_range": 0.2,
                                       "augment.noise_uv": 1.0, "augment.channel_dropout": 0.1,
                                       "augment.time_shift_s": 0.5}),
    "pretrained": Variant("the default recipe fine-tuned from the shipped `neuript-small` "
                          "checkpoint (AAMP on ADHD + EEGMMIDB + Muse)",
                          {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                           "optim.lr": 3e-3, "init": "neuript-small"},
        pair_with="logstd_lr3e-3"),
    "pretrained_lr1e-3": Variant("from `neuript-small`, peak LR 1e-3",
                                 {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                                  "optim.lr": 1e-3, "init": "neuript-small"}),
    "pretrained_adapt": Variant("from `neuript-small` + 100 domain-adaptive AAMP steps on the "
                                "fold's training windows (--adapt-steps 100)",
                                {**_OLD, "model_overrides": {"pool_stats": "mean_logstd"},
                                 "optim.lr": 3e-3, "init": "neuript-small",
                                 "adapt_steps": 100},
        pair_with="pretrained"),
    # fifth pass: the subject shift. Each subject normalised by its own unlabelled windows
    # (neuript.data.normalize), the same code for every model; one row per model and method.
    **{name: row for method, tag, how in (("channel_std", "subjnorm", "subject-normalised windows"),
                                          ("spectral", "spectral", "subject-equalised spectra"))
       for name, row in _normalised_rows(method, tag, how).items()},
    "pretrained_spectral": Variant("from `neuript-small`, the default recipe, subject-equalised "
                                   "spectra",
                                   {**_DEF, "init": "neuript-small", "subject_norm": "spectral"},
        pair_with="logstd_lr3e-3_spectral"),
    "pretrained_spectral_probe": Variant("from `neuript-small`, subject-equalised spectra, frozen "
                                         "encoder: the head starts as a logistic-regression "
                                         "probe and only it trains (6 epochs)",
                                         {**_DEF, "init": "neuript-small",
                                          "subject_norm": "spectral",
                                          "head_init": "linear_probe", "mode": "linear_probe"},
        pair_with="logstd_spectral_probe"),
    "logstd_spectral_probe": Variant("from scratch (random encoder), subject-equalised spectra, "
                                     "frozen encoder, probe head, only the head trains",
                                     {**_DEF, "subject_norm": "spectral",
                                      "head_init": "linear_probe", "mode": "linear_probe"},
        pair_with="bandpower_lr_spectral"),
    "pretrained_subjnorm": Variant("from `neuript-small`, the default recipe, subject-normalised "
                                   "windows",
                                   {**_DEF, "init": "neuript-small",
                                    "subject_norm": "channel_std"},
        pair_with="logstd_lr3e-3_subjnorm"),
    # seventh pass: the MoE balance term. 0.8 x the summed per-layer balance losses (about 8)
    # dwarfs the task loss (about 0.7) in the logged total; try a tenth of it.
    "logstd_lr3e-3_spectral_aux0.1": Variant("the default on subject-equalised spectra with the "
                                             "MoE auxiliary weight 0.1 instead of 0.8",
                                             {**_DEF, "subject_norm": "spectral",
                                              "aux_weight": 0.1},
        pair_with="logstd_lr3e-3_spectral"),
    "pretrained_spectral_aux0.1": _from_small_spectral("MoE auxiliary weight 0.1 instead of 0.8",
                                                       aux_weight=0.1),
    # eighth pass: pretrain on the input the fine-tuning sees. The same checkpoint recipe on
    # the corpus with every recording's spectrum equalised (prepare --recording-norm spectral;
    # built by `python -m benchmarks.build_checkpoint --stage pretrain --recording-norm
    # spectral --threads 1`, not shipped).
    "pretrained_speccorpus_spectral": Variant(
        "from a `small` checkpoint pretrained as `neuript-small` but on the corpus with each "
        "recording's spectrum equalised (`prepare --recording-norm spectral`), subject-equalised "
        "spectra", {**_DEF, "init": SPECTRAL_CHECKPOINT, "subject_norm": "spectral"},
        pair_with="pretrained_spectral"),
    "pretrained_spectral_adapt": _from_small_spectral(
        "100 domain-adaptive AAMP steps on the fold's equalised training windows first "
        "(--adapt-steps 100)", adapt_steps=100),
    "pretrained_spectral_lld0.75": _from_small_spectral(
        "layer-wise LR decay 0.75 (block 0 at 0.75^6 of the head's LR)", layer_decay=0.75),
    # the wider CPU preset issue 11 asks for: d = 64, four heads of 16, every hidden size
    # doubled, the same blocks, merges and PMoE layout (about 4x the small preset's FLOPs)
    "wide64_spectral": Variant("the default recipe on a d = 64 model (4 heads of 16, dense "
                               "hidden 128, experts 64, shared 128), from scratch, "
                               "subject-equalised spectra",
                               {**_DEF, "subject_norm": "spectral",
                                "model_overrides": {**_DEF["model_overrides"], **WIDE64}},
        pair_with="logstd_lr3e-3_spectral"),
    # eleventh pass: the same d = 64 model (the `medium` preset) on the paper's input, where
    # the targets of issue 11 are stated (band power 66.0, ShallowConvNet 68.4)
    "wide64": Variant("the default recipe on a d = 64 model (the `medium` preset), from scratch",
                      {**_DEF, "model_overrides": {**_DEF["model_overrides"], **WIDE64}},
                      pair_with="logstd_lr3e-3"),
    "wide64_lr1.5e-3": Variant("`wide64` at half the peak LR (1.5e-3): `wide64`'s training "
                               "loss rose from epoch 1 to 2 in 9 of its 12 cells",
                               {**_DEF, "optim.lr": 1.5e-3,
                                "model_overrides": {**_DEF["model_overrides"], **WIDE64}},
                      pair_with="wide64"),
    # twelfth pass: the paper's input again. Under `spectral` the frozen random encoder with a
    # probe head (72.9) beat fine-tuning it (69.2), and the masking ablation's SVM on a random
    # encoder beat fine-tuning on the paper split: is fine-tuning the loss on the paper input?
    "logstd_probe": Variant("from scratch (random encoder), frozen encoder, probe head, only "
                            "the head trains (run while dropout was still live in the frozen "
                            "encoder; the probe, epoch 0, was kept on 3 of 6 folds)",
                            {**_DEF, "head_init": "linear_probe", "mode": "linear_probe"},
                      pair_with="logstd_lr3e-3"),
    "logstd_probe_eval": Variant("`logstd_probe` rerun with the frozen encoder in inference "
                                 "mode (no dropout while the head trains), as the library now "
                                 "does", {**_DEF, "head_init": "linear_probe",
                                          "mode": "linear_probe"},
                                 pair_with="logstd_probe"),
    "logstd_lr3e-3_noalaw": Variant("the default on linear µV (no A-law): log-std pooling of "
                                    "linear tokens is a log power, the A-law bends it",
                                    {**_DEF}, compression="none", pair_with="logstd_lr3e-3"),
    "logstd_lr3e-3_ema0.98": Variant("the default, selecting and testing an exponential moving "
                                     "average of the weights (decay 0.98 per step, about 50 "
                                     "steps): the cells' spread between seeds is ±7 points",
                                     {**_DEF, "ema_decay": 0.98}, pair_with="logstd_lr3e-3"),
    # ninth pass: the learning curve. Is the gap to band power a matter of data scale? The
    # fold's first 6 and 12 of its 24 training subjects, the same validation and test subjects.
    **{name: row for n in LEARNING_CURVE for name, row in _curve_rows(n).items()},
})
"""Every recipe tried, by name (keep failed ones: the table shows what was tried)."""
DEFAULT = "logstd_lr3e-3"
"""The variant the library's defaults now equal (``tests/test_recipe.py`` checks it): chosen on
the folds 0, 2, 4 screen, then run on all six folds with three seeds and on the paper split."""


# --------------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------------
def recipe_base(opts: BenchOptions, model: str, out: Path, seeds: tuple[int, ...]):
    """FinetuneRunConfig's own defaults (the recipe under study), with the run's bookkeeping.

    Only the preset, seeds, threads, output folder and reporting come from the options; epochs,
    learning rate and everything else are the library's defaults unless a variant says so.
    """
    from dataclasses import replace

    from neuript.train.finetune import FinetuneRunConfig

    base = FinetuneRunConfig()
    train = replace(base.train, threads=opts.train_threads, ckpt_every=0, log_every=50)
    return replace(base, model=model, preset=opts.preset, seeds=seeds, train=train,
                   out_dir=str(out), report=False)


def cell_config(opts: BenchOptions, name: str, k: int, seed: int):
    """The resolved FinetuneRunConfig of one (variant, fold, seed) cell."""
    from neuript.config import override

    variant = VARIANTS[name]
    out = opts.work_dir / "recipe" / name / ("paper" if k == PAPER else f"fold{k}") / f"seed{seed}"
    base = recipe_base(opts, variant.model, out, (seed,))
    return override(base, dict(variant.overrides))


def cell_key(opts: BenchOptions, name: str, resolved: dict[str, Any]) -> Any:
    """What decides whether a cached cell still answers: the variant's spec and budget.

    Variants that state their recipe in full keep their cells when later defaults change;
    ``default`` (no overrides) is keyed on its whole resolved config (band power on its spec: it
    reads none of the recipe's fields). A code change that alters
    results is declared by bumping :data:`CELL_CODE_VERSION`.
    """
    variant = VARIANTS[name]
    code = {} if CELL_CODE_VERSION == 1 else {"code_version": CELL_CODE_VERSION}
    if not variant.overrides and variant.model != "bandpower_lr":  # the whole config but
        # where it writes (checkouts differ); band power reads none of the recipe's fields, so
        # a new FinetuneRunConfig field must not drop its cells: its spec keys it
        return {**{k: v for k, v in resolved.items() if k != "out_dir"}, **code}
    spec = {**code, "model": variant.model, "overrides": variant.overrides,
            "batch_size": opts.batch_size, "preset": opts.preset, "max_steps": opts.max_steps}
    if variant.compression is not None:
        spec["compression"] = variant.compression
    if variant.train_subjects is not None:
        spec["train_subjects"] = variant.train_subjects
    if "init" in variant.overrides:  # a rebuilt checkpoint invalidates its cells
        from neuript.errors import ContractError
        from neuript.model_folder import resolve_init_dir

        try:
            weights = resolve_init_dir(variant.overrides["init"]) / "model.safetensors"
            spec["init_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        except ContractError:  # an experiment's checkpoint not built in this checkout: its
            spec["init_sha256"] = "missing"  # stored cells match nothing (the table keeps
            # the earlier pass's row) and running the cell fails with the init's own error
    return json.loads(json.dumps(spec, default=str))


def run_cell(opts: BenchOptions, task, folds, name: str, k: int, seed: int) -> dict[str, Any]:
    """Run one cell (or read it back from the cache); ``{"error": …}`` when it failed."""
    from neuript.config import to_dict
    from neuript.data.splits import fold_task, subset_subjects
    from neuript.train.finetune import run_finetune

    cfg = cell_config(opts, name, k, seed)
    out = Path(cfg.out_dir)
    done = out / "cell.json"
    resolved = json.loads(json.dumps(to_dict(cfg), default=str))
    key = cell_key(opts, name, resolved)
    if done.is_file():
        cell = json.loads(done.read_text())
        if cell.get("key") == key:
            return cell
    t0 = time.perf_counter()
    variant = VARIANTS[name]
    if variant.compression is not None:
        from dataclasses import replace

        task = replace(task, preprocess=replace(task.preprocess, compression=variant.compression))
    try:
        task = task if k == PAPER else fold_task(task, folds, k)
        if variant.train_subjects is not None:
            task = subset_subjects(task, variant.train_subjects, splits=("train",))
        result = run_finetune(cfg, task=task)
        row = result.per_seed[0]
        cell = {"test": row["test"], "val": row.get("val"), "best_epoch": row.get("best_epoch"),
                "warnings": row.get("warnings", [])}
    except Exception as exc:  # a failed recipe is a row of the table, not the end of the study
        log.exception("recipe %s fold %d seed %d failed", name, k, seed)
        cell = {"error": f"{type(exc).__name__}: {exc}"}
    cell.update({"variant": name, "fold": k, "seed": seed, "key": key, "config": resolved,
                 "wall_s": round(time.perf_counter() - t0, 1), "date": now_iso()})
    out.mkdir(parents=True, exist_ok=True)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(cell, indent=1))
    tmp.replace(done)
    return cell


# --------------------------------------------------------------------------------------------
# the same recipe on other tasks
# --------------------------------------------------------------------------------------------
TASK_STEPS: int | None = None
"""Optimiser-step cap per run on the other tasks (batch 32); None runs the default recipe as it
is (its epochs). A 150-step cap (2026-12-03) stopped NeurIPT at 43.6 on the synthetic 5-class
task, where the uncapped 6 epochs (252 steps) reach 86.5: the cap, not the recipe, was measured."""
SYNTH_FREQS_HZ: tuple[float, ...] = (5.0, 9.0, 13.0, 17.0, 21.0)
"""Class frequencies of the synthetic 5-class task."""


def synthetic_five_class(base, amplitude_uv: float = 4.0, seed: int = 0):
    """Real MentalArithmetic windows with a class-coded oscillation added to the occipital pairs.

    Class c (0–4) adds a sinusoid of :data:`SYNTH_FREQS_HZ` [c] Hz, ``amplitude_uv`` µV, random
    phase, to every channel touching O1 or O2; the background is the real EEG, so the class is
    only in a narrow band of a few channels. Splits stay the paper's (by subject).
    """
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    n, _, t = base.signals.shape
    labels = rng.integers(0, len(SYNTH_FREQS_HZ), n)
    time_s = np.arange(t) / base.preprocess.sfreq_hz
    phase = rng.uniform(0, 2 * np.pi, n)
    wave = amplitude_uv * np.sin(2 * np.pi * np.asarray(SYNTH_FREQS_HZ)[labels, None]
                                 * time_s[None, :] + phase[:, None])  # (N, T)
    occipital = np.array(["O1" in c or "O2" in c for c in base.ch_names])
    signals = np.array(base.signals, dtype=np.float32, copy=True)
    signals[:, occipital, :] += wave[:, None, :].astype(np.float32)
    return replace(base, name="synthetic_5class", signals=signals, labels=labels.astype(np.int64),
                   class_names=tuple(f"{f:g} Hz" for f in SYNTH_FREQS_HZ))


def single_channel(base, channel: str):
    """The task reduced to one channel (its name, position and lobe kept)."""
    from dataclasses import replace

    k = list(base.ch_names).index(channel)
    return replace(base, name=f"{base.name}_{channel}", signals=base.signals[:, [k], :],
                   ch_names=(base.ch_names[k],), positions=np.asarray(base.positions)[[k]])


def other_tasks() -> dict[str, Any]:
    """Name → zero-argument builder of each other task (1–64 channels, 1–30 s, 2–5 classes)."""
    from neuript.data.tasks import build_task

    return {
        "adhd (20 TCP, 4 s, 2 classes)": lambda: build_task("adhd"),
        "muse_p300 (4 ch, 2 s, 2 classes)": lambda: build_task("muse_p300"),
        "eegmmidb (64 ch, 4 s, 2 classes)": lambda: build_task("eegmmidb"),
        "adhd Pz only, 30-s windows (1 ch)": lambda: single_channel(
            build_task("adhd", montage="monopolar", window_s=30.0), "Pz"),
        "synthetic 5-class on EEGMAT (20 TCP, 5 s)": lambda: synthetic_five_class(
            build_task("mental_arithmetic")),
    }


def task_cells(opts: BenchOptions) -> list[dict[str, Any]]:
    """Default NeurIPT recipe and band power on each other task's own split (cached)."""
    from neuript.config import override, to_dict
    from neuript.train.finetune import run_finetune

    out = []
    for k, (label, build) in enumerate(other_tasks().items()):
        task = None
        for model in ("neuript", REFERENCE):
            folder = opts.work_dir / "recipe_tasks" / f"task{k}" / model
            cfg = recipe_base(opts, model, folder, opts.seeds[:1])
            if TASK_STEPS is not None:
                cfg = override(cfg, {"train.max_steps": TASK_STEPS})
            key = json.loads(json.dumps({"label": label, **to_dict(cfg)}, default=str))
            done = folder / "cell.json"
            if done.is_file() and json.loads(done.read_text()).get("key") == key:
                out.append(json.loads(done.read_text()))
                continue
            task = task if task is not None else build()
            t0 = time.perf_counter()
            try:
                result = run_finetune(cfg, task=task)
                row = result.per_seed[0]
                cell = {"test": row["test"], "warnings": row.get("warnings", []),
                        "best_epoch": row.get("best_epoch")}
            except Exception as exc:  # keep the failed row
                log.exception("recipe task %s (%s) failed", label, model)
                cell = {"error": f"{type(exc).__name__}: {exc}"}
            cell.update({"task": label, "model": model, "key": key, "n_classes": task.n_classes,
                         "n_channels": len(task.ch_names), "window_s": task.preprocess.window_s,
                         "counts": task.counts(), "wall_s": round(time.perf_counter() - t0, 1),
                         "command": opts.command, "date": now_iso()})
            folder.mkdir(parents=True, exist_ok=True)
            done.write_text(json.dumps(cell, indent=1, default=str))
            out.append(cell)
    return out


# --------------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------------
def t_interval(values: Sequence[float]) -> tuple[float, float, float, float]:
    """(mean, std, ci_low, ci_high) with a t-based 95% interval (NaN-free input)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return (math.nan,) * 4
    mean, std = float(x.mean()), float(x.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
    return mean, std, mean - half, mean + half


def _by_cell(cells: Sequence[dict[str, Any]]) -> dict[tuple[int, int], float]:
    return {(c["fold"], c["seed"]): c["test"]["balanced_accuracy"] for c in cells
            if "test" in c}


def paired(cells: Sequence[dict], ref: Sequence[dict], seeds_free: bool) -> dict[str, Any] | None:
    """Paired difference of balanced accuracy over matched cells (fold, seed).

    ``seeds_free``: the reference is deterministic (band power), so it is matched on the fold.
    """
    mine, theirs = _by_cell(cells), _by_cell(ref)
    if seeds_free:
        per_fold = {f: v for (f, _), v in theirs.items()}
        diffs = [v - per_fold[f] for (f, _), v in mine.items() if f in per_fold]
    else:
        diffs = [v - theirs[key] for key, v in mine.items() if key in theirs]
    if not diffs:
        return None
    mean, _, lo, hi = t_interval(diffs)
    return {"mean": mean, "ci95": [lo, hi], "n": len(diffs)}


def variant_row(name: str, cells: Sequence[dict], all_cells: Mapping[str, list[dict]],
                opts: BenchOptions) -> dict[str, Any]:
    """The table row of one variant from its cells (CV cells; paper-split cells apart)."""
    paper = [c["test"]["balanced_accuracy"] for c in cells if c["fold"] == PAPER and "test" in c]
    cells = [c for c in cells if c["fold"] != PAPER]
    good = [c for c in cells if "test" in c]
    ba = [c["test"]["balanced_accuracy"] for c in good]
    auroc = [c["test"]["auroc"] for c in good if math.isfinite(c["test"].get("auroc", math.nan))]
    mean, std, lo, hi = t_interval(ba)
    folds = sorted({c["fold"] for c in good})
    variant = VARIANTS[name]
    return {
        "variant": name, "what": variant.what, "model": variant.model, "default": name == DEFAULT,
        "overrides": variant.overrides, "cells": len(good), "failed": len(cells) - len(good),
        "errors": sorted({c["error"] for c in cells if "error" in c}),
        "seeds": sorted({c["seed"] for c in good}), "folds": folds,
        "balanced_accuracy_mean": mean, "balanced_accuracy_std": std,
        "balanced_accuracy_ci95": [lo, hi],
        "auroc_mean": float(np.mean(auroc)) if auroc else None,
        "fold_balanced_accuracy": [float(np.mean([c["test"]["balanced_accuracy"] for c in good
                                                  if c["fold"] == f])) for f in folds],
        "vs_bandpower": paired(good, all_cells.get(REFERENCE, []), seeds_free=True)
        if name != REFERENCE else None,
        "vs_today": paired(good, all_cells.get(TODAY, []), seeds_free=variant.model ==
                           "bandpower_lr") if name != TODAY else None,
        "vs_default": paired(good, all_cells.get(DEFAULT, []), seeds_free=False)
        if variant.model == "neuript" and name != DEFAULT else None,
        "pair_with": variant.pair_with,
        "vs_pair": paired(good, all_cells.get(variant.pair_with, []), seeds_free=VARIANTS[
            variant.pair_with].model == "bandpower_lr") if variant.pair_with else None,
        "per_cell": [[c["fold"], c["seed"], c["test"]["balanced_accuracy"]] for c in good],
        "paper_split_mean": float(np.mean(paper)) if paper else None,
        "paper_split_n": len(paper),
        "warnings": sorted({w for c in good for w in c.get("warnings", [])}),
        "wall_s": round(sum(c.get("wall_s", 0.0) for c in cells), 1),
        "command": opts.command if name in opts.extra.get("recipe_variants", ()) else
        next((c.get("command") for c in cells if c.get("command")), opts.command),
    }


def carried_rows(previous: Path, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of an earlier recipe.json whose cells are no longer cached here (kept, marked).

    The cell cache lives in the ignored ``benchmarks/work/``; a fresh checkout has none, so a
    pass that reruns a few variants would otherwise drop every other row from the table. An
    earlier row is carried when this pass has no row of its variant, or when it had more cells
    than this pass's row (then both appear; the carried one is named ``variant@date``).
    """
    if not previous.is_file():
        return []
    body = json.loads(previous.read_text())
    now = {r["variant"]: r for r in rows}
    out = []
    for row in body.get("rows", []):
        base = row["variant"].split("@")[0]
        carried_from = row.get("carried_from") or body.get("date", "")[:10]
        if base not in now:
            out.append({**row, "carried_from": carried_from})
        elif row["cells"] > now[base]["cells"] and "@" not in row["variant"]:
            out.append({**row, "variant": f"{base}@{carried_from}", "default": False,
                        "carried_from": carried_from})
        elif "@" in row["variant"] and row["variant"] not in now:
            out.append(row)
    return out


STORE = "recipe_cells.json"
"""The committed cell store beside recipe.json: every finished cell without its config."""


def _key_hash(key: Any) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _current_key_hash(opts: BenchOptions, name: str, k: int, seed: int) -> str:
    from neuript.config import to_dict

    resolved = json.loads(json.dumps(to_dict(cell_config(opts, name, k, seed)), default=str))
    return _key_hash(cell_key(opts, name, resolved))


def _seed_store(opts: BenchOptions, previous: Path) -> list[dict[str, Any]]:
    """Store cells rebuilt from an earlier recipe.json's ``per_cell`` (balanced accuracy only).

    The first pass with a store has no full cells of earlier sessions; the rows' ``per_cell``
    lists are what survived (and a one-seed paper-split result). Each such cell carries its
    row's mean AUROC, flagged ``auroc_is_row_mean``, so the row's AUROC survives unchanged.
    """
    if not previous.is_file():
        return []
    body = json.loads(previous.read_text())
    out, seen = [], set()
    for row in body.get("rows", []):
        name = row["variant"]
        if name not in VARIANTS or not row.get("per_cell"):
            continue
        per_cell = [list(c) for c in row["per_cell"]]
        if row.get("paper_split_n") == 1 and row.get("seeds"):  # the paper split, first seed
            per_cell.append([PAPER, row["seeds"][0], row["paper_split_mean"]])
        test_extra = ({"auroc": row["auroc_mean"], "auroc_is_row_mean": True}
                      if row.get("auroc_mean") is not None else {})
        for f, s, v in per_cell:
            if (name, f, s) not in seen:
                seen.add((name, f, s))
                out.append({"variant": name, "fold": f, "seed": s,
                            "test": {"balanced_accuracy": v,
                                     **(test_extra if f != PAPER else {})},
                            "key_hash": _current_key_hash(opts, name, f, s),
                            "wall_s": round(row.get("wall_s", 0.0) / max(row["cells"], 1), 1),
                            "date": row.get("carried_from") or body.get("date", "")[:10],
                            "from": "per_cell of an earlier recipe.json"})
    return out


def cached_cells(opts: BenchOptions) -> dict[str, list[dict[str, Any]]]:
    """Every finished cell, by variant: ``work/recipe`` first, then the committed store.

    The work folder is ignored by git and lost with the checkout; the store (``STORE`` in the
    results folder) keeps each cell's metrics, so a study continued in another session pairs
    against, and adds to, the cells of earlier ones. A stored cell counts only while its key
    (the variant's spec and budget) is unchanged.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    have = set()
    for path in sorted((opts.work_dir / "recipe").glob("*/*/seed*/cell.json")):
        cell = json.loads(path.read_text())
        name = cell.get("variant")
        if name in VARIANTS and _key_hash(cell.get("key")) == _current_key_hash(
                opts, name, cell["fold"], cell["seed"]):
            out.setdefault(name, []).append(cell)
            have.add((name, cell["fold"], cell["seed"]))
    store = opts.out_dir / STORE
    stored = (json.loads(store.read_text())["cells"] if store.is_file()
              else _seed_store(opts, opts.out_dir / "recipe.json"))
    for cell in stored:
        name, k, seed = cell["variant"], cell["fold"], cell["seed"]
        if name in VARIANTS and (name, k, seed) not in have and \
                cell.get("key_hash") == _current_key_hash(opts, name, k, seed):
            out.setdefault(name, []).append(cell)
            have.add((name, k, seed))
    return out


def write_store(opts: BenchOptions, cells: Mapping[str, list[dict[str, Any]]]) -> Path:
    """Write every cell (config dropped, key hashed) to the store, atomically."""
    slim = []
    for name in sorted(cells):
        for c in sorted(cells[name], key=lambda c: (c["fold"], c["seed"])):
            if "key" in c:
                c = {**c, "key_hash": _key_hash(c["key"])}
            c = {k: v for k, v in c.items() if k not in ("config", "key")}
            c.setdefault("key_hash", _current_key_hash(opts, name, c["fold"], c["seed"]))
            slim.append(c)
    path = opts.out_dir / STORE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"cells": slim}, indent=0, default=str))
    tmp.replace(path)
    return path


def run(opts: BenchOptions) -> list[dict[str, Any]]:
    """Run the chosen variants' cells, then write recipe.json / .md from every cached cell."""
    from benchmarks.common import write_part
    from neuript.data.splits import subject_folds
    from neuript.data.tasks import build_task

    # Without --recipe-variants: the rows the conclusions rest on, not every screen (each
    # NeurIPT cell costs minutes; all variants x 6 folds x 5 seeds would take days here).
    names = list(opts.extra.get("recipe_variants") or [REFERENCE, "shallowconvnet", TODAY,
                                                        DEFAULT, "tasks"])
    with_tasks = "tasks" in names
    names = [n for n in names if n != "tasks"]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"--recipe-variants: unknown {unknown}; known: {sorted(VARIANTS)}")
    task = build_task("mental_arithmetic")
    folds = subject_folds(task.subjects, opts.cv_folds)
    fold_ids = opts.extra.get("recipe_folds") or range(len(folds))
    for name in names:
        seeds = opts.seeds[:1] if VARIANTS[name].model == "bandpower_lr" else opts.seeds
        for seed in seeds:
            for k in fold_ids:
                t0 = time.perf_counter()
                cell = run_cell(opts, task, folds, name, k, seed)
                cell.setdefault("command", opts.command)
                log.info("recipe %s fold %d seed %d: %s (%s)", name, k, seed,
                         cell.get("test", {}).get("balanced_accuracy", cell.get("error")),
                         fmt_duration(time.perf_counter() - t0))
    if with_tasks:
        task_cells(opts)
    cells = cached_cells(opts)
    write_store(opts, cells)
    rows = [variant_row(n, cells[n], cells, opts) for n in VARIANTS if n in cells]
    rows += carried_rows(opts.out_dir / "recipe.json", rows)
    tasks = merged_task_cells(opts.out_dir / "recipe.json", [
        json.loads(p.read_text())
        for p in sorted((opts.work_dir / "recipe_tasks").glob("task*/*/cell.json"))])
    body = {"rows": rows, "tasks": tasks, "folds": folds, "date": now_iso(),
            "machine": machine_info(), "command": opts.command}
    write_part(opts.out_dir, "recipe", body, markdown(body))
    return rows


# --------------------------------------------------------------------------------------------
# markdown
# --------------------------------------------------------------------------------------------
def _diff(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    lo, hi = d["ci95"]
    return f"{100 * d['mean']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


TARGETS: tuple[tuple[str, str, str], ...] = (
    ("the default from scratch >= band power + LR (paper input)", DEFAULT, REFERENCE),
    ("the default from scratch >= ShallowConvNet (paper input)", DEFAULT, "shallowconvnet"),
    ("the default from scratch >= band power + LR, both on subject-equalised spectra",
     "logstd_lr3e-3_spectral", "bandpower_lr_spectral"),
    ("the default from scratch >= ShallowConvNet, both on subject-equalised spectra",
     "logstd_lr3e-3_spectral", "shallowconvnet_spectral"),
    ("from `neuript-small` >= band power + LR, both on subject-equalised spectra",
     "pretrained_spectral", "bandpower_lr_spectral"),
    ("from `neuript-small`, subject-equalised spectra >= band power + LR on the paper input",
     "pretrained_spectral", REFERENCE),
    ("from `neuript-small` >= ShallowConvNet, both on subject-equalised spectra",
     "pretrained_spectral", "shallowconvnet_spectral"),
    ("d = 64 from scratch >= ShallowConvNet, both on subject-equalised spectra",
     "wide64_spectral", "shallowconvnet_spectral"),
    ("d = 64 (`medium`) from scratch >= band power + LR (paper input)", "wide64", REFERENCE),
    ("d = 64 (`medium`) from scratch >= ShallowConvNet (paper input)", "wide64",
     "shallowconvnet"),
)
"""Issue 11's target (NeurIPT from scratch with the default recipe >= band power + LR and >=
ShallowConvNet on the same folds), and the nearest rows, as (claim, variant, reference)."""


def row_difference(row: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any] | None:
    """:func:`paired` difference of two table rows from their ``per_cell`` lists (band power
    matched by fold); None when they share no cell (a carried row keeps none)."""
    cells = [[{"fold": f, "seed": s, "test": {"balanced_accuracy": v}}
              for f, s, v in r.get("per_cell", [])] for r in (row, ref)]
    return paired(*cells, seeds_free=VARIANTS[ref["variant"]].model == "bandpower_lr")


CURVE_ROWS = ("bandpower_lr_spectral", "logstd_lr3e-3_spectral", "pretrained_spectral")
"""The full-data rows (24 training subjects) the learning curve ends on."""


def curve_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The "Training subjects" section: band power, NeurIPT from scratch and from
    `neuript-small` (all on subject-equalised spectra) at each learning-curve size, with the
    paired gaps that say whether more subjects close the distance to band power."""
    by_name = {r["variant"]: r for r in rows}
    lines = []
    for n in (*LEARNING_CURVE, 24):
        names = [name if n == 24 else f"{name}_n{n}" for name in CURVE_ROWS]
        if not all(name in by_name for name in names):
            continue
        band, scratch, small = (by_name[name] for name in names)
        lines.append([str(n), *(f"{pct(r['balanced_accuracy_mean'])} ({r['cells']})"
                                for r in (band, scratch, small)),
                      _diff(row_difference(scratch, band)), _diff(row_difference(small, band)),
                      _diff(row_difference(small, scratch))])
    if not lines:
        return []
    gaps = [line[4].split(" ")[0] for line in lines]
    trend = (f"From scratch, the distance to band power goes from {gaps[0]} points at "
             f"{lines[0][0]} training subjects to {gaps[-1]} at {lines[-1][0]}: the targets above "
             "are missed by less the more subjects train." if len(lines) > 1 else "")
    return ["## Training subjects (the learning curve)", "",
            "The fold's first n of its 24 training subjects (by name); validation and test "
            "subjects unchanged; subject-equalised spectra for every row; balanced accuracy % "
            "(cells). Δ paired over the cells both rows ran.", "",
            md_table(["training subjects", "band power + LR", "NeurIPT from scratch",
                      "from `neuript-small`", "scratch − band power", "`neuript-small` − band "
                      "power", "`neuript-small` − scratch"], lines), "",
            *([trend, ""] if trend else [])]


def target_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One line per :data:`TARGETS` claim whose two rows are in the table: the means, the
    difference paired over matched (fold[, seed]) cells (a row carried from an earlier pass
    keeps no cells: then the difference of the means) and whether it is >= 0."""
    by_name = {r["variant"]: r for r in rows}
    out = []
    for claim, name, ref in TARGETS:
        if name not in by_name or ref not in by_name:
            continue
        diff = row_difference(by_name[name], by_name[ref])
        means = [by_name[n]["balanced_accuracy_mean"] for n in (name, ref)]
        if diff is not None:
            delta, how = diff["mean"], f"{_diff(diff)} ({diff['n']} cells)"
        else:  # a carried row keeps no cells: only its mean
            delta = means[0] - means[1]
            how = f"{100 * delta:+.1f} (means, unpaired: a carried row has no cells)"
        out.append([claim, f"`{name}` {pct(means[0])} vs `{ref}` {pct(means[1])}", how,
                    "**met**" if delta >= 0 else "**not met**"])
    return out


def markdown(body: dict[str, Any]) -> str:
    """Render recipe.json."""
    header = ["variant", "what", "cells (folds × seeds)", "balanced acc. %", "95% CI",
              "AUROC %", "per fold (fold: mean over seeds)", "Δ vs band power (95% CI)",
              "Δ vs today (95% CI)", "Δ vs the default from scratch (95% CI)",
              "Δ vs its pair (95% CI)", "paper split % (seeds)", "wall"]
    rows = []
    for r in body["rows"]:
        lo, hi = r["balanced_accuracy_ci95"]
        status = f"{r['cells']}" + (f" (+{r['failed']} failed: {'; '.join(r['errors'])})"
                                    if r["failed"] else "")
        tag = " (**the default**)" if r.get("default") else ""
        if r.get("carried_from"):
            tag += (f" (earlier pass {r['carried_from']}, from its recipe.json; cells not "
                    "cached here)")
        rows.append([f"`{r['variant']}`{tag}", r["what"], status,
                     f"**{pct(r['balanced_accuracy_mean'])}** ± {pct(r['balanced_accuracy_std'])}",
                     f"[{pct(lo)}, {pct(hi)}]", pct(r["auroc_mean"]),
                     " / ".join(f"{k}: {pct(v)}" for k, v in zip(r["folds"],
                                                                  r["fold_balanced_accuracy"])),
                     _diff(r["vs_bandpower"]), _diff(r["vs_today"]),
                     _diff(r.get("vs_default")),
                     f"vs `{r['pair_with']}`: {_diff(r['vs_pair'])}" if r.get("vs_pair") else "",
                     f"{pct(r['paper_split_mean'])} ({r['paper_split_n']})"
                     if r.get("paper_split_n") else "", fmt_duration(r["wall_s"])])
    m = body.get("machine", {})
    return "\n".join([
        "# Fine-tuning recipe study (benchmarks/bench_recipe.py)", "",
        f"MentalArithmetic, 6-fold subject cross-validation over all 36 subjects (fold k tests, "
        f"fold k + 1 validates, model selection on validation balanced accuracy). Command of the "
        f"last pass: `{body['command']}` · {body['date']} · {m.get('nproc')} CPUs "
        f"({m.get('cpu_model')}), torch {m.get('torch')}. Each cell is one fine-tuning run; the "
        "per-variant commands are in recipe.json. Δ columns are paired over the same "
        "(fold, seed) cells. NeurIPT rows are the `small` preset, from scratch unless the row "
        "names an init. Every cell's metrics are kept in recipe_cells.json (committed), so later "
        "passes, in any checkout, pair against and add to them; cells rebuilt from an older "
        "table's (fold, seed, balanced accuracy) list carry that row's mean AUROC.", "",
        md_table(header, rows), "", *targets_markdown(body["rows"]),
        *curve_markdown(body["rows"]),
        *task_markdown(body.get("tasks", [])),
    ])


def scratch_paper_input(row: dict[str, Any]) -> bool:
    """A NeurIPT row from scratch on the paper's input: no init checkpoint, no subject
    normalisation, every training subject, every one of the six folds."""
    over = row.get("overrides") or {}
    variant = VARIANTS.get(row["variant"])
    return (row.get("model") == "neuript" and over.get("init", "scratch") == "scratch"
            and over.get("subject_norm", "none") == "none" and len(row.get("folds", [])) == 6
            and (variant is None or variant.train_subjects is None))


def shortfall_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Which from-scratch row on the paper's input comes nearest each baseline, in words."""
    by_name = {r["variant"]: r for r in rows}
    scratch = [r for r in rows if scratch_paper_input(r)]
    if not scratch or REFERENCE not in by_name:
        return []
    best = max(scratch, key=lambda r: r["balanced_accuracy_mean"])
    parts = [f"Of the {len(scratch)} from-scratch NeurIPT rows run on all six folds of the "
             f"paper's input ({sum(r['cells'] for r in scratch)} cells), the best, "
             f"`{best['variant']}`, reaches {pct(best['balanced_accuracy_mean'])} "
             f"({best['cells']} cells): Δ vs band power + LR "
             f"{_diff(row_difference(best, by_name[REFERENCE]))}"]
    if "shallowconvnet" in by_name:
        parts.append(f"vs ShallowConvNet {_diff(row_difference(best, by_name['shallowconvnet']))}")
    refs = [by_name[n]["balanced_accuracy_mean"] for n in (REFERENCE, "shallowconvnet")
            if n in by_name]
    if best["balanced_accuracy_mean"] >= max(refs):
        return [", ".join(parts) + ".", ""]
    band = by_name[REFERENCE]
    why = (f"Why: every model here loses points to the offset between people (test AUROC above "
           f"balanced accuracy: `{best['variant']}` {pct(best['auroc_mean'])} vs "
           f"{pct(best['balanced_accuracy_mean'])}, band power {pct(band['auroc_mean'])} vs "
           f"{pct(band['balanced_accuracy_mean'])}), which the `subject_norm` rows remove, "
           "transductively; what NeurIPT lacks beyond that is data: from scratch its distance to "
           "band power shrinks with every doubling of the training subjects (the learning "
           "curve below).")
    return [", ".join(parts) + ". No recipe change moved a from-scratch row past both "
            "baselines. " + why + " docs/recipe.md gives the passes one by one.", ""]


def targets_markdown(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The "Targets" section (:func:`target_rows`), empty when no claim has both rows."""
    lines = target_rows(rows)
    if not lines:
        return []
    return ["## Targets (issue 11)", "",
            "Paired over the cells both rows ran (band power is deterministic: matched by "
            "fold). A row named `shallowconvnet` is an earlier pass's carried row when its "
            "cells are not cached here.", "",
            md_table(["target", "rows", "Δ (95% CI)", "status"], lines), "",
            *shortfall_lines(rows)]


def merged_task_cells(previous: Path, fresh: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The other-tasks cells of the last table, each replaced by a fresh cell of its (task,
    model); a pass in a checkout without the work folder keeps the table instead of losing it."""
    old = json.loads(previous.read_text()).get("tasks", []) if previous.is_file() else []
    merged = {(c["task"], c["model"]): c for c in old}
    merged.update({(c["task"], c["model"]): c for c in fresh})
    order = {label: k for k, label in enumerate(other_tasks())}
    return sorted(merged.values(), key=lambda c: (order.get(c["task"], len(order)), c["model"]))


def task_markdown(cells: Sequence[dict[str, Any]]) -> list[str]:
    """The other-tasks table: the default recipe beside band power on each task's own split."""
    if not cells:
        return ["## The same defaults on other tasks", "",
                "Not run yet: `python -m benchmarks.run --only recipe --recipe-variants tasks` "
                "runs the defaults on ADHD, Muse P300, EEGMMIDB, a 1-channel 30-s ADHD task and a "
                "synthetic 5-class task (see `other_tasks` in bench_recipe.py).", ""]
    caps = {c["key"]["train"].get("max_steps") for c in cells
            if c.get("model") != REFERENCE and isinstance(c.get("key"), dict) and "train" in c["key"]}
    epochs = {c["key"]["train"].get("epochs") for c in cells
              if c.get("model") != REFERENCE and isinstance(c.get("key"), dict) and "train" in c["key"]}
    budget = (f"{'/'.join(str(e) for e in sorted(epochs, key=str))} epochs"
              + ("" if caps <= {None} else
                 f", capped at {'/'.join(str(m) for m in sorted(caps - {None}))} optimiser steps"))
    rows = []
    for c in cells:
        test = c.get("test", {})
        result = (f"{pct(test.get('balanced_accuracy'))}" if "test" in c
                  else f"failed: {c.get('error')}")
        rows.append([c["task"], c["model"], c.get("n_channels"), c.get("window_s"),
                     c.get("n_classes"), result, pct(test.get("auroc")),
                     "; ".join(c.get("warnings", [])) or "", fmt_duration(c.get("wall_s"))])
    return ["## The same defaults on other tasks", "",
            "Each task's own subject (or run) split, one seed, NeurIPT-small from scratch with "
            f"the default recipe ({budget}, batch 32), beside band power + LR. Chance is "
            "1 / classes.", "",
            md_table(["task", "model", "channels", "window s", "classes", "balanced acc. %",
                      "AUROC %", "warnings", "wall"], rows), ""]
