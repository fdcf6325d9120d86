"""One seed of a fine-tuning run: build the model, train with the shared loop, select, test, save.

Used by :func:`neuript.train.finetune.run_finetune`; kept apart so that module stays short.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from neuript.config import InputContract, ModelConfig, from_dict, override
from neuript.data.tasks.base import TaskWindows
from neuript.model_folder import read_model_config, resolve_init_dir, save_classifier
from neuript.train.evaluate import (
    Predictions,
    collapse_warning,
    predict_batches,
    write_predictions_csv,
)

if TYPE_CHECKING:
    from neuript.train.finetune import FinetuneRunConfig

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# model and loss
# --------------------------------------------------------------------------------------------
def neuript_model_config(cfg: FinetuneRunConfig) -> ModelConfig:
    """The classifier's ModelConfig: the init checkpoint's (or the preset), plus overrides."""
    from neuript.model.presets import preset

    if cfg.init == "scratch":
        model_cfg = preset(cfg.preset)
    else:
        model_cfg = from_dict(ModelConfig, read_model_config(resolve_init_dir(cfg.init))["model"])
    if cfg.model_overrides:
        model_cfg = override(model_cfg, dict(cfg.model_overrides))
    return replace(model_cfg, head=cfg.head)


def adapt_into(model: nn.Module, cfg: FinetuneRunConfig, task: TaskWindows, seed: int,
               seed_dir: Path, device: torch.device) -> None:
    """Domain-adaptive pretraining (:mod:`neuript.train.adapt`) of ``model``'s encoder on the
    task's training windows, then load the adapted encoder into ``model``."""
    from neuript.config import OptimConfig
    from neuript.train.adapt import adapt_encoder

    init_dir = None if cfg.init == "scratch" else resolve_init_dir(cfg.init)
    result = adapt_encoder(task, init_dir, neuript_model_config(cfg), seed_dir / "adapted",
                           steps=cfg.adapt_steps, seed=seed, batch_size=cfg.train.batch_size,
                           optim=OptimConfig(lr=cfg.adapt_lr), device=device)
    model.load_encoder(result.checkpoint_dir)
    (seed_dir / "adapt_loss.json").write_text(json.dumps(result.losses))


def build_model(
    cfg: FinetuneRunConfig, task: TaskWindows, group_names: tuple[str, ...]
) -> nn.Module:
    """A fresh classifier for ``task`` (NeurIPT with optional encoder init, or a baseline)."""
    if cfg.model == "neuript":
        from neuript.model.neuript import NeurIPTClassifier

        model = NeurIPTClassifier(neuript_model_config(cfg), task.n_classes, group_names,
                                  aux_weight=cfg.aux_weight)
        if cfg.init != "scratch":
            report = model.load_encoder(resolve_init_dir(cfg.init))
            log.info("encoder loaded from %s: %d missing, %d unexpected keys", cfg.init,
                     len(report.missing), len(report.unexpected))
        return model
    from neuript.baselines import build

    return build(**baseline_args(cfg, task))


def baseline_args(cfg: FinetuneRunConfig, task: TaskWindows) -> dict[str, Any]:
    """Build arguments of a baseline (stored with its checkpoint)."""
    return {"name": cfg.model, "n_channels": len(task.ch_names),
            "n_samples": int(task.signals.shape[2]), "n_classes": task.n_classes,
            "sfreq_hz": float(task.preprocess.sfreq_hz)}


def head_parameter(name: str) -> bool:
    """True for parameters of the classification head (trained in every mode)."""
    return name.startswith("head.")


def _encoder_in_eval(model: nn.Module, args) -> None:
    """Forward pre-hook: every child but the head runs in inference mode (no dropout)."""
    for name, child in model.named_children():
        if name != "head":
            child.eval()


def set_encoder_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze or unfreeze every parameter outside the head.

    A frozen encoder also runs in inference mode while the head trains: with dropout active it
    would hand the head training features that differ from the ones it is scored on (dropout
    raises the log-std features), and a probe-initialised head would be trained away from
    its own optimum.
    """
    for name, param in model.named_parameters():
        if not head_parameter(name):
            param.requires_grad_(trainable)
    hook = model.__dict__.pop("_frozen_encoder_hook", None)
    if hook is not None:
        hook.remove()
    if not trainable:
        model.__dict__["_frozen_encoder_hook"] = model.register_forward_pre_hook(_encoder_in_eval)


def make_criterion(cfg: FinetuneRunConfig, train_labels: np.ndarray, n_classes: int):
    """The task loss ``loss(logits (B, K), labels (B,)) -> scalar``.

    ``cfg.class_weight == "balanced"`` weighs each window by N / (K · n_class) of the training
    split, so the optimum matches the balanced-accuracy metric on imbalanced tasks.
    """
    from neuript.model.heads import balanced_bce, balanced_class_weights, cross_entropy

    counts = np.bincount(train_labels, minlength=n_classes).astype(np.float64)
    weights = (
        balanced_class_weights(torch.as_tensor(counts)) if cfg.class_weight == "balanced" else None
    )
    if cfg.loss == "ce":
        return lambda logits, labels: cross_entropy(logits, labels, weights)
    log_priors = torch.tensor(np.log(np.maximum(counts, 1) / counts.sum()), dtype=torch.float32)
    k = cfg.logit_adjust_k
    return lambda logits, labels: balanced_bce(
        logits, labels, log_priors.to(logits.device), k, weights
    )


def lr_scales(cfg: FinetuneRunConfig, model: nn.Module):
    """Per-parameter LR multipliers (head scale, layer-wise decay), or None when all are 1."""
    if cfg.head_lr_scale == 1.0 and cfg.layer_decay == 1.0:
        return None
    depth_of: dict[str, int] = {}
    groups = model.layer_groups() if hasattr(model, "layer_groups") else []
    for i, names in enumerate(groups):
        depth_of.update(dict.fromkeys(names, len(groups) - 1 - i))

    def scale(name: str) -> float:
        head = cfg.head_lr_scale if head_parameter(name) else 1.0
        return head * cfg.layer_decay ** depth_of.get(name, 0)

    return scale


# --------------------------------------------------------------------------------------------
# selection and the run's health
# --------------------------------------------------------------------------------------------
CHANCE_MARGIN = 0.02
"""Validation balanced accuracy within this of chance (1 / K) counts as "at chance"."""


def training_warnings(curves: list[dict[str, Any]], n_classes: int) -> list[str]:
    """Plain-words warnings when a run visibly failed to learn (empty when it looks healthy).

    Two signs: validation balanced accuracy never left chance (1 / K + :data:`CHANCE_MARGIN`),
    and (with three or more trained epochs) the training loss of the last epoch more than 5%
    above that of the first.
    """
    out = []
    vals = [r["val_balanced_accuracy"] for r in curves
            if math.isfinite(r.get("val_balanced_accuracy", math.nan))]
    chance = 1.0 / n_classes
    if vals and max(vals) <= chance + CHANCE_MARGIN:
        out.append(f"validation balanced accuracy never left chance (best {max(vals):.3f}, "
                   f"chance {chance:.3f}): the model did not learn; likely causes: a learning "
                   "rate too high or too low (--set optim.lr=...), too few steps (--epochs), or "
                   "labels that the windows do not carry")
    losses = [r["train_loss"] for r in curves
              if r.get("epoch", 0) > 0 and math.isfinite(r.get("train_loss", math.nan))]
    if len(losses) >= 3 and losses[-1] > losses[0] * 1.05:
        out.append(f"training loss rose over the run ({losses[0]:.4f} in the first epoch, "
                   f"{losses[-1]:.4f} in the last): the optimisation diverged; lower the "
                   "learning rate (--set optim.lr=...)")
    return out

def weight_average(model: nn.Module, decay: float):
    """An exponential moving average of ``model``'s weights and buffers (None when ``decay`` is 0).

    Returns
    -------
    ema : torch.optim.swa_utils.AveragedModel | None
        ``ema.module`` is a copy of ``model`` holding the average; ``ema.update_parameters(model)``
        folds in the current weights (the first call copies them).
    """
    if decay == 0.0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class _Selector:
    """Track the best epoch: higher val balanced accuracy, ties → lower val loss."""

    def __init__(self) -> None:
        self.best_key: tuple[float, float] | None = None
        self.best_epoch = -1
        self.n_offers = 0
        self.best_val: dict[str, float] = {}
        self.state: dict[str, Tensor] | None = None

    def offer(self, epoch: int, val: dict[str, float], model: nn.Module) -> bool:
        self.n_offers += 1
        bacc = val["balanced_accuracy"]
        key = (bacc if math.isfinite(bacc) else -1.0, -val["loss"])
        if self.best_key is not None and key <= self.best_key:
            return False
        self.best_key, self.best_epoch, self.best_val = key, epoch, dict(val)
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True


def _val_record(preds: Predictions, n_classes: int) -> dict[str, float]:
    from neuript.train.metrics import classification_metrics

    assert preds.labels is not None
    metrics = classification_metrics(preds.labels, preds.proba, n_classes)
    return {"loss": preds.loss, **{k: float(v) for k, v in metrics.items()}}


def lobe_map(model: nn.Module, cfg: FinetuneRunConfig, task: TaskWindows,
             lobes: tuple[str, ...], device: torch.device) -> dict[str, Any] | None:
    """The selected NeurIPT model's lobe occlusion on the test windows (JSON-ready).

    The test windows, not the validation ones: the epoch was selected on validation, so a model
    at chance can look as if it used a lobe there (it was picked for fitting those labels by
    luck). The map is a diagnostic of the reported model and decides nothing.
    None for baselines, a task without test windows, or when it fails (logged): a diagnostic
    must never sink a finished run.
    """
    from neuript.train.attribution import lobe_occlusion

    if cfg.model != "neuript" or len(task.indices("test")) < 2:
        return None
    try:
        return lobe_occlusion(model, task, lobes, scheme=cfg.scheme, split="test",
                              batch_size=cfg.eval_batch_size, device=device).to_dict()
    except Exception as err:  # noqa: BLE001
        log.warning("lobe occlusion not computed: %s", err)
        return None


# --------------------------------------------------------------------------------------------
# one seed
# --------------------------------------------------------------------------------------------
def fit_torch_seed(
    cfg: FinetuneRunConfig, task: TaskWindows, seed: int, seed_dir: Path
) -> dict[str, Any]:
    """Train one seed, keep the best validation epoch, test it and save it.

    Returns
    -------
    row : dict
        ``seed``, ``best_epoch``, ``epochs_run``, ``val`` and ``test`` metrics, ``model_dir``,
        ``seconds``.
    """
    from neuript.data.loader import make_task_loader
    from neuript.data.montage import pooling_groups
    from neuript.train.distributed import DistEnv, resolve_device, seed_everything
    from neuript.train.loop import (
        LogSink,
        StepOutput,
        StopCondition,
        TrainState,
        build_optimizer,
        build_scheduler,
        planned_steps,
        run_steps,
    )

    t0 = time.monotonic()
    if cfg.train.threads is not None:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(seed)
    dist = DistEnv(device=resolve_device(cfg.train.device))
    groups = pooling_groups(list(task.ch_names), task.positions, cfg.scheme)
    model = build_model(cfg, task, groups.names).to(dist.device)
    if cfg.model == "neuript" and cfg.adapt_steps:
        adapt_into(model, cfg, task, seed, seed_dir, dist.device)
    head_init = None
    if cfg.head_init == "linear_probe":
        from neuript.train.probe import init_head_by_probe

        head_init = init_head_by_probe(model, task, scheme=cfg.scheme,
                                       batch_size=cfg.eval_batch_size, device=dist.device)
    if cfg.mode == "linear_probe":
        set_encoder_trainable(model, False)
    optimizer = build_optimizer(model, cfg.optim, lr_scale=lr_scales(cfg, model))
    if cfg.mode == "full" and cfg.freeze_epochs > 0:
        set_encoder_trainable(model, False)  # in the optimiser, but without gradients for now

    train_labels = task.labels[task.indices("train")]
    criterion = make_criterion(cfg, train_labels, task.n_classes)
    stop = StopCondition.from_train(cfg.train)
    n_batches = math.ceil(len(train_labels) / cfg.train.batch_size)
    total = planned_steps(stop, math.ceil(n_batches / cfg.train.grad_accum))
    scheduler = build_scheduler(optimizer, cfg.optim, total)

    def make_batches(epoch: int):
        return make_task_loader(task, "train", batch_size=cfg.train.batch_size, shuffle=True,
                                seed=seed, scheme=cfg.scheme, epoch=epoch,
                                augment=cfg.augment if cfg.augment.active else None)

    val_loader = make_task_loader(task, "val", batch_size=cfg.eval_batch_size, shuffle=False,
                                  seed=0, scheme=cfg.scheme)
    epoch_losses: list[float] = []

    def step_fn(net: nn.Module, batch) -> StepOutput:
        out = net(batch.signals, batch.positions, batch.channel_mask, batch.group_mask)
        task_loss = criterion(out.logits.float(), batch.labels)
        loss = task_loss + cfg.aux_weight * out.aux_loss.float()
        epoch_losses.append(float(task_loss.detach()))
        logs = {"task_loss": float(task_loss.detach()), "aux_loss": float(out.aux_loss.detach())}
        return StepOutput(loss=loss, logs=logs, n_windows=len(batch))

    ema = weight_average(model, cfg.ema_decay)
    scored = model if ema is None else ema.module  # what validation sees and selection keeps
    selector = _Selector()
    curves_path = seed_dir / "curves.jsonl"
    curves_path.unlink(missing_ok=True)

    def end_epoch(state: TrainState) -> None:
        val = _val_record(predict_batches(scored, val_loader, dist.device, loss_fn=criterion),
                          task.n_classes)
        epoch = state.epoch + 1  # 1-based number of the epoch just finished (or cut short)
        improved = selector.offer(epoch, val, scored)
        record = {"epoch": epoch, "step": state.step,
                  "train_loss": float(np.mean(epoch_losses)) if epoch_losses else math.nan,
                  "lr": optimizer.param_groups[0]["lr"], "seconds": time.monotonic() - t0,
                  **{f"val_{k}": v for k, v in val.items()}, "selected": improved}
        with curves_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
        log.info("seed %d epoch %d: train task loss %.4f, val loss %.4f, val bacc %.4f", seed, epoch,
                 record["train_loss"], val["loss"], val["balanced_accuracy"])
        epoch_losses.clear()
        if cfg.mode == "full" and epoch == cfg.freeze_epochs:
            set_encoder_trainable(model, True)

    if head_init is not None:  # the probe itself is a candidate: epoch 0
        val = _val_record(predict_batches(model, val_loader, dist.device, loss_fn=criterion),
                          task.n_classes)
        selector.offer(0, val, model)
        with curves_path.open("a") as fh:
            fh.write(json.dumps({"epoch": 0, "step": 0, "train_loss": math.nan, "lr": 0.0,
                                 "seconds": time.monotonic() - t0,
                                 **{f"val_{k}": v for k, v in val.items()},
                                 "selected": True, "head_init_c": head_init.c}) + "\n")
        log.info("seed %d epoch 0 (linear-probe head): val bacc %.4f", seed,
                 val["balanced_accuracy"])
    result = run_steps(
        model, make_batches, optimizer, scheduler, step_fn, dist=dist, train_cfg=cfg.train,
        state=TrainState(), log_sink=LogSink(seed_dir, name="train_log"), stop=stop,
        grad_clip=cfg.optim.grad_clip, total_steps=total, on_epoch_end=end_epoch,
        on_step=None if ema is None else (lambda state: ema.update_parameters(model)),
    )
    if result.state.batch_in_epoch > 0 or selector.state is None:  # stopped inside an epoch
        end_epoch(result.state)
    assert selector.state is not None
    model.load_state_dict(selector.state)

    occlusion = lobe_map(model, cfg, task, groups.names, dist.device)
    test_loader = make_task_loader(task, "test", batch_size=cfg.eval_batch_size, shuffle=False,
                                   seed=0, scheme=cfg.scheme)
    test_preds = predict_batches(model, test_loader, dist.device, loss_fn=criterion)
    test = _val_record(test_preds, task.n_classes)
    test_loss = test.pop("loss")
    write_predictions_csv(seed_dir / "test_predictions.csv", task, test_preds, task.class_names)
    extra = {
        "class_names": list(task.class_names), "group_names": list(groups.names),
        "task": task.name, "scheme": cfg.scheme,
        "ch_names": list(task.ch_names), "model_kind": cfg.model, "seed": seed,
        "positions": np.asarray(task.positions, np.float64).round(6).tolist(),
        "best_epoch": selector.best_epoch, "init": cfg.init, "adapt_steps": cfg.adapt_steps,
    }
    if cfg.model == "neuript" and cfg.init != "scratch":
        from neuript.train.provenance import checkpoint_provenance

        extra["pretraining_provenance"] = checkpoint_provenance(resolve_init_dir(cfg.init))
        extra["allow_overlap"] = cfg.allow_overlap
    if cfg.model != "neuript":
        extra["baseline"] = baseline_args(cfg, task)
    contract = replace(InputContract.from_preprocess(
        task.preprocess, () if task.mixed_montage else task.ch_names),
        subject_norm=cfg.subject_norm, subject_norm_uv=cfg.subject_norm_uv,
        any_montage=task.mixed_montage)
    model_dir = save_classifier(model.cpu(), seed_dir / "model", contract, extra)
    from neuript.report import read_curves

    warnings = training_warnings(read_curves(curves_path), task.n_classes)
    collapsed = collapse_warning(test_preds.proba, test_preds.labels,
                                 test.get("auroc", math.nan), task.class_names)
    warnings += [collapsed] if collapsed else []
    for line in warnings:
        log.warning("seed %d: %s", seed, line)
    return {"seed": seed, "best_epoch": selector.best_epoch, "epochs_run": selector.n_offers,
            "stopped_by": result.stopped_by, "val": selector.best_val, "test": test,
            "test_loss": test_loss, "model_dir": str(model_dir), "warnings": warnings,
            "lobe_occlusion": occlusion, "seconds": time.monotonic() - t0}


def fit_bandpower_seed(
    cfg: FinetuneRunConfig, task: TaskWindows, seed: int, seed_dir: Path
) -> dict[str, Any]:
    """Band power + logistic regression on the same splits (C chosen on validation)."""
    from neuript.baselines.bandpower import BandPowerClassifier
    from neuript.train.metrics import classification_metrics

    t0 = time.monotonic()
    tr, va, te = (task.indices(s) for s in ("train", "val", "test"))
    clf = BandPowerClassifier(sfreq_hz=float(task.preprocess.sfreq_hz))
    clf.fit(task.signals[tr], task.labels[tr], task.signals[va], task.labels[va])
    proba = np.zeros((len(te), task.n_classes))
    proba[:, clf.classes_] = clf.predict_proba(task.signals[te])
    test = classification_metrics(task.labels[te], proba, task.n_classes)
    val_proba = np.zeros((len(va), task.n_classes))
    val_proba[:, clf.classes_] = clf.predict_proba(task.signals[va])
    val = classification_metrics(task.labels[va], val_proba, task.n_classes)
    preds = Predictions(proba, task.labels[te], te.astype(np.int64), math.nan, None)
    write_predictions_csv(seed_dir / "test_predictions.csv", task, preds, task.class_names)
    return {"seed": seed, "best_epoch": 0, "epochs_run": 0, "stopped_by": "fit",
            "val": {k: float(v) for k, v in val.items()}, "c": clf.c_,
            "test": {k: float(v) for k, v in test.items()}, "model_dir": None,
            "seconds": time.monotonic() - t0}
