"""Fine-tune NeurIPT (or a baseline) on a labelled task, several seeds, and report test metrics.

One run directory holds everything needed to trust and reuse the result::

    config.json            the resolved FinetuneRunConfig (written before any work)
    split_manifest.json    every window's source, start, subject, label and split, plus its hash
    metrics.json           per-seed test metrics at the selected epoch and their aggregate
    seed_<s>/curves.jsonl  one line per epoch: train/val loss, val metrics, learning rate
    seed_<s>/model/        the selected weights + input contract (for evaluate / predict / embed)
    seed_<s>/test_predictions.csv
    REPORT.md, *.png       curves, confusion matrix, lobe contributions (neuript.report)

Model selection: the epoch with the best validation balanced accuracy, ties broken by the lower
validation loss (NEURIPT_SPEC §6-7); test metrics are computed once, at that epoch.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from neuript.config import (
    AugmentConfig,
    InputContract,
    OptimConfig,
    PoolingScheme,
    PreprocessConfig,
    TrainConfig,
    check_literals,
    to_dict,
)
from neuript.data.normalize import DEFAULT_TARGET_STD_UV, SubjectNorm, normalize_task
from neuript.data.splits import subset_subjects
from neuript.data.tasks._byod import raise_errors
from neuript.data.tasks._checks import split_class_problems
from neuript.data.tasks.base import TaskWindows
from neuript.errors import ContractError, NeuriptError
from neuript.model_folder import contract_of, read_model_config, resolve_init_dir
from neuript.train.finetune_seed import fit_bandpower_seed, fit_torch_seed
from neuript.train.provenance import check_overlap, checkpoint_provenance

log = logging.getLogger(__name__)

ModelKind = Literal["neuript", "eegnet", "shallowconvnet", "bandpower_lr"]
MODEL_KINDS: tuple[str, ...] = ("neuript", "eegnet", "shallowconvnet", "bandpower_lr")


@dataclass(frozen=True)
class FinetuneRunConfig:
    """One fine-tuning run: task, model, initialisation, loss, seeds and optimisation."""

    task: str = "mental_arithmetic"
    """Task registry key (ignored when a prebuilt TaskWindows is passed to run_finetune; set to
    the task's name with manifest or bids_root)."""
    data_dir: str | None = None
    """Folder of the task's data (None: the task's default folder under the data root)."""
    data_root: str | None = None
    """Data root (None: $NEURIPT_DATA or ../shared/data)."""
    task_options: dict[str, Any] = field(default_factory=dict)
    """Extra keyword options for the task builder."""
    manifest: str | None = None
    """A CSV/TSV manifest of your own labelled recordings (docs/byod.md); replaces ``task``."""
    bids_root: str | None = None
    """A BIDS EEG dataset folder (labels from its events.tsv files); replaces ``task``."""
    bids_events: str = "trial_type"
    """The events.tsv column holding the labels (with ``bids_root``)."""
    window_s: float | None = None
    """Window length (s) of a manifest/BIDS task (None: 4 s), or of a registry task that takes a
    ``window_s`` option (``adhd``); a registry task with a fixed protocol window refuses it."""
    split: Literal["subject", "column"] = "subject"
    """Split of a manifest/BIDS task: seeded by subject, or the manifest's split column."""
    subjects_per_split: int | None = None
    """Keep only the first n subjects (sorted) of each split, for quick runs; None keeps all."""
    init: str = "scratch"
    """'scratch', a shipped checkpoint name ('neuript-small'), a pretraining run dir (with
    pretrained/), or a checkpoint dir."""
    allow_overlap: bool = False
    """Run even when the init checkpoint's pretraining corpus holds recordings or subjects of
    the task's test split (refused otherwise); the overlap is recorded in metrics.json."""
    adapt_steps: int = 0
    """Domain-adaptive pretraining: AAMP steps on the task's unlabelled training windows
    before fine-tuning each seed (never validation or test windows); 0 disables."""
    adapt_lr: float = 1e-3
    """Peak learning rate of the adaptation steps (one-cycle; the shipped checkpoint's)."""
    model: ModelKind = "neuript"
    """NeurIPT or a baseline (EEGNet, ShallowConvNet, band power + logistic regression)."""
    preset: str = "small"
    """Model preset for NeurIPT from scratch (an init checkpoint brings its own config)."""
    model_overrides: dict[str, Any] = field(default_factory=dict)
    """Dotted ModelConfig overrides, e.g. {'d_model': 32, 'moe.expert_hidden': 32}."""
    scheme: PoolingScheme = "functional"
    """Pooling groups: functional lobes (IILP), mean, hemisphere, sagittal or coronal."""
    head: Literal["linear", "mlp"] = "linear"
    """Classifier after pooling."""
    loss: Literal["balanced_bce", "ce"] = "balanced_bce"
    """Logit-adjusted BCE (paper) or plain cross-entropy."""
    logit_adjust_k: float = 0.1
    """Logit-adjustment strength K of balanced BCE (paper range 0–0.3)."""
    class_weight: Literal["balanced", "none"] = "balanced"
    """Weigh windows by inverse class frequency (matches balanced accuracy) or equally."""
    aux_weight: float = 0.8
    """Weight of the MoE auxiliary loss added to the task loss."""
    freeze_epochs: int = 0
    """Epochs of warm-up with a frozen encoder (only the head trains)."""
    mode: Literal["full", "linear_probe"] = "full"
    """Train everything, or only the head for every epoch (linear probe)."""
    head_init: Literal["random", "linear_probe"] = "random"
    """Classifier start: random, or a logistic regression fitted on the frozen encoder's pooled
    training features (C chosen on validation), then everything is fine-tuned (LP-FT, Kumar et
    al. 2022). With ``linear_probe`` the untrained-encoder model is also a selection candidate
    (epoch 0)."""
    head_lr_scale: float = 1.0
    """The head's learning rate is the encoder's times this."""
    layer_decay: float = 1.0
    """Layer-wise LR decay: group i of ``layer_groups()`` (input → head) gets
    ``lr · decay^(n − 1 − i)``; 1 disables."""
    subject_norm: SubjectNorm = "none"
    """Before training and scoring, normalise every subject by its own unlabelled windows
    (:mod:`neuript.data.normalize`): ``channel_std`` scales each channel to a median window
    standard deviation of ``subject_norm_uv``; ``spectral`` also equalises each channel's average
    spectrum to a fixed 1/f shape. Transductive for the validation and test subjects (their
    unlabelled windows give their gains). Recorded in the model folder, so evaluate, predict
    and stream apply it too."""
    subject_norm_uv: float = DEFAULT_TARGET_STD_UV
    """The median channel standard deviation (µV) ``subject_norm`` scales to."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of the weights (updated after every optimiser step,
    ``avg = decay · avg + (1 − decay) · w``) and select, test and save the average instead of
    the raw weights; 0 disables. 0.98 averages over about 50 steps (1.4 epochs of
    MentalArithmetic at batch 32)."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Label-preserving augmentations of the training windows (µV, before compression)."""
    seeds: tuple[int, ...] = (520,)
    """One full training per seed; metrics are aggregated over seeds."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-3, weight_decay=0.05))
    """AdamW + one-cycle settings. Peak 3e-3 for 'small' from scratch, chosen by subject
    cross-validation (docs/recipe.md: 1e-3 left it under-fitted after 6 epochs); the paper
    fine-tunes its 73 M-parameter model at 1e-6 to 1e-4, so lower it for large or pretrained
    encoders."""
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=32, epochs=6))
    """Batch size, epochs (6: the recipe study's budget; or max_steps / max_minutes per seed),
    device, precision."""
    eval_batch_size: int = 128
    """Batch size for validation and test."""
    out_dir: str = "runs/finetune"
    """The run directory (created)."""
    report: bool = True
    """Write REPORT.md and figures at the end."""

    def __post_init__(self) -> None:
        check_literals(self)
        if self.head_lr_scale <= 0 or not 0 < self.layer_decay <= 1:
            raise NeuriptError(
                "FinetuneRunConfig: head_lr_scale must be > 0 and layer_decay in (0, 1]; got "
                f"{self.head_lr_scale!r} and {self.layer_decay!r}"
            )
        if self.manifest is not None and self.bids_root is not None:
            raise NeuriptError("FinetuneRunConfig: give manifest or bids_root, not both; got "
                               f"{self.manifest!r} and {self.bids_root!r}")
        if self.manifest is not None or self.bids_root is not None:
            from neuript.data.tasks.manifest import user_task_name

            object.__setattr__(self, "task", user_task_name(  # derived: the real task's name
                manifest=self.manifest, bids_root=self.bids_root,
                name=self.task_options.get("name")))
        if not 0.0 <= self.logit_adjust_k <= 1.0:
            raise NeuriptError(
                f"FinetuneRunConfig.logit_adjust_k must be in [0, 1] (paper: 0–0.3), got "
                f"{self.logit_adjust_k!r}"
            )
        if not self.seeds:
            raise NeuriptError("FinetuneRunConfig.seeds must hold at least one seed")
        if self.freeze_epochs < 0 or self.aux_weight < 0 or self.eval_batch_size < 1:
            raise NeuriptError(
                "FinetuneRunConfig: freeze_epochs and aux_weight must be >= 0, eval_batch_size "
                f">= 1; got {self.freeze_epochs}, {self.aux_weight}, {self.eval_batch_size}"
            )
        if self.subjects_per_split is not None and self.subjects_per_split < 1:
            raise NeuriptError(
                f"FinetuneRunConfig.subjects_per_split must be >= 1, got {self.subjects_per_split}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise NeuriptError(f"FinetuneRunConfig.ema_decay must be in [0, 1) (0 disables), "
                               f"got {self.ema_decay!r}")
        if self.adapt_steps < 0:
            raise NeuriptError(f"FinetuneRunConfig.adapt_steps must be >= 0, got "
                               f"{self.adapt_steps}")
        if self.model != "neuript" and (self.init != "scratch" or self.adapt_steps):
            raise NeuriptError(
                f"FinetuneRunConfig.init={self.init!r} and adapt_steps={self.adapt_steps} need "
                f"model='neuript' (baselines train from scratch); got model={self.model!r}"
            )


@dataclass(frozen=True)
class FinetuneResult:
    """What :func:`run_finetune` returns.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    per_seed : list of dict
        Per seed: ``seed``, ``best_epoch``, ``test`` (metrics), ``val`` (metrics), ``model_dir``.
    aggregate : dict
        Per metric key: mean, std, ci95_low, ci95_high, n (over seeds).
    split_hash : str
        Hash of the split manifest.
    """

    run_dir: Path
    per_seed: list[dict[str, Any]]
    aggregate: dict[str, dict[str, float]]
    split_hash: str


# --------------------------------------------------------------------------------------------
# task and contract
# --------------------------------------------------------------------------------------------
def resolve_task(cfg: FinetuneRunConfig, task: TaskWindows | None = None) -> TaskWindows:
    """Build the configured task (or take ``task``), subset it, and check every split.

    The checks (:func:`~neuript.data.tasks._checks.split_class_problems`: two classes, every
    split holds windows, the training split every class) are those ``neuript inspect`` lists.
    """
    if task is None and (cfg.manifest is not None or cfg.bids_root is not None):
        from neuript.data.tasks.manifest import build_user_task

        task = build_user_task(manifest=cfg.manifest, bids_root=cfg.bids_root,
                               bids_events=cfg.bids_events, window_s=cfg.window_s,
                               split=cfg.split, options=cfg.task_options)
    elif task is None:
        from neuript.data.tasks import build_task

        options = dict(cfg.task_options)
        if cfg.window_s is not None:  # honoured where the task takes it, else refused (one line)
            options.setdefault("window_s", cfg.window_s)
        task = build_task(cfg.task, data_dir=cfg.data_dir, data_root=cfg.data_root, **options)
    if cfg.subjects_per_split is not None:
        task = subset_subjects(task, cfg.subjects_per_split)
    source = cfg.manifest or cfg.bids_root  # problems name it as the task build names them
    where = Path(source).expanduser().name if source is not None else "task"
    raise_errors(task.name, split_class_problems(where, task.counts(), training=True))
    return task


def check_init_contract(init_dir: Path, preprocess: PreprocessConfig) -> InputContract:
    """Compare a checkpoint's input contract with the task's preprocessing; refuse mismatches.

    Returns
    -------
    contract : InputContract
        The checkpoint's contract.
    """
    contract = contract_of(read_model_config(init_dir))
    problems = contract.mismatches(InputContract.from_preprocess(preprocess))
    if problems:
        raise ContractError(
            f"{init_dir}: the task's preprocessing breaks the checkpoint's input contract: "
            + "; ".join(problems)
        )
    return contract


def _resolved_config(cfg: FinetuneRunConfig, task: TaskWindows, prebuilt: bool) -> dict[str, Any]:
    """The config as run: ``task`` is the task's own name, ``task_source`` where it came from
    (``manifest:<path>``, ``bids:<folder>``, ``registry:<name>`` or ``python:<name>`` for a
    TaskWindows passed to :func:`run_finetune`)."""
    body = to_dict(cfg)
    body["task"] = task.name
    if prebuilt:
        body["task_source"] = f"python:{task.name}"
    elif cfg.manifest is not None:
        body["task_source"] = f"manifest:{cfg.manifest}"
    elif cfg.bids_root is not None:
        body["task_source"] = f"bids:{cfg.bids_root}"
    else:
        body["task_source"] = f"registry:{cfg.task}"
    return body


def _write_json(path: Path, body: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, default=_json_default))
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def run_finetune(cfg: FinetuneRunConfig, *, task: TaskWindows | None = None) -> FinetuneResult:
    """Fine-tune ``cfg.model`` on the task for every seed; write metrics, models and a report.

    Parameters
    ----------
    cfg : FinetuneRunConfig
    task : TaskWindows | None
        Prebuilt windows (Python API); None builds ``cfg.task``.

    Returns
    -------
    result : FinetuneResult
    """
    from neuript.train.metrics import aggregate

    run_dir = Path(cfg.out_dir)
    prebuilt = task is not None
    task = normalize_task(resolve_task(cfg, task), cfg.subject_norm, cfg.subject_norm_uv)
    if task.mixed_montage and cfg.model != "neuript":
        raise NeuriptError(f"task {task.name!r}: its recordings keep their own channels "
                           f"(montage 'per_recording'), which only model 'neuript' takes; "
                           f"'{cfg.model}' needs one channel set: give one (--set "
                           "task_options.montage=auto) or use --model neuript")
    overlap = None
    if cfg.init != "scratch":
        init_dir = resolve_init_dir(cfg.init)
        check_init_contract(init_dir, task.preprocess)
        overlap = check_overlap(checkpoint_provenance(init_dir), task, cfg.init,
                                allow=cfg.allow_overlap)
        if overlap["status"] == "overlap_allowed":
            log.warning("init %s was pretrained on %d test subjects / %d test recordings of %s; "
                        "running anyway (--allow-overlap)", cfg.init, len(overlap["subjects"]),
                        len(overlap["recordings"]), task.name)
    # only now, with every check passed: a refused run leaves an earlier run's files alone
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_dir / "config.json", _resolved_config(cfg, task, prebuilt))
    split_hash = task.write_split_manifest(run_dir / "split_manifest.json")
    log.info("fine-tune %s on %s: %s", cfg.model, task.name, task.counts())

    per_seed = []
    for seed in cfg.seeds:
        seed_dir = run_dir / f"seed_{seed}"
        seed_dir.mkdir(parents=True, exist_ok=True)
        if cfg.model == "bandpower_lr":
            per_seed.append(fit_bandpower_seed(cfg, task, seed, seed_dir))
        else:
            per_seed.append(fit_torch_seed(cfg, task, seed, seed_dir))
        log.info("seed %d: test %s", seed, per_seed[-1]["test"])

    summary = aggregate([row["test"] for row in per_seed])
    metrics = {
        "task": task.name, "model": cfg.model, "init": cfg.init, "scheme": cfg.scheme,
        "split_hash": split_hash, "counts": task.counts(), "per_seed": per_seed,
        "aggregate": summary,
    }
    if overlap is not None:
        metrics["pretraining_overlap"] = overlap
    _write_json(run_dir / "metrics.json", metrics)
    if cfg.report:
        from neuript.report import write_report

        write_report(run_dir)
    return FinetuneResult(run_dir, per_seed, summary, split_hash)

