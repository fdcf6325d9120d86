"""Masked-reconstruction pretraining on a window corpus (NEURIPT_SPEC §4, §6).

:func:`run_pretrain` wires the pieces: corpus → subject-wise train/validation split → NeurIPT
encoder + decoder (DDP or FSDP) → the shared loop → resumable checkpoints → validation
reconstruction loss → ``run_dir/pretrained`` (``save_pretrained``), which ``finetune --init``
reads. Run it under ``torchrun --nproc_per_node N`` for data parallelism: the global batch
``batch_size · world_size`` holds the same windows whatever the number of processes.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn

from neuript.batch import Batch
from neuript.config import (
    InputContract,
    MaskConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    check_literals,
    to_dict,
)
from neuript.errors import NeuriptError
from neuript.train.checkpoint import (
    full_model_state,
    latest_checkpoint,
    load_train_state,
    remove_stale_temporaries,
    save_train_state,
)
from neuript.train.distributed import (
    DistEnv,
    all_reduce_sum,
    barrier,
    is_fsdp,
    rank_seed,
    seed_everything,
    setup,
    teardown,
    unwrap,
    wrap_model,
)
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
from neuript.train.resume import ResumePoint, check_resume, corpus_identity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainRunConfig:
    """Everything a pretraining run needs; written to ``run_dir/config.json`` before any work."""

    corpus: str = ""
    """Corpus folder written by ``neuript prepare``."""
    out: str = "runs/pretrain"
    """Run folder (logs, checkpoints, ``pretrained/``)."""
    preset: str = "tiny"
    """Model size preset (``tiny``, ``small``, ``paper``) used when ``model`` is None."""
    init: str | None = None
    """Continue from a pretraining checkpoint (a shipped name such as ``neuript-small``, a run
    dir or a checkpoint dir): its weights and model config replace ``preset``/``model``."""
    model: ModelConfig | None = None
    """Explicit model config (the preset plus overrides once resolved)."""
    mask: MaskConfig = field(default_factory=MaskConfig)
    """Masking strategy, ratios and loss exponent."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """AdamW and one-cycle settings."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Batch size, stopping, precision, logging and checkpoint cadence."""
    val_fraction: float = 0.1
    """Share of subjects held out for the validation reconstruction loss (0 disables)."""
    val_every: int = 0
    """Optimiser steps between validation passes (0: only at the end)."""
    val_batches: int | None = 50
    """Validation batches per pass per process (None: the whole held-out set)."""
    aux_weight: float = 0.8
    """Weight of the MoE auxiliary loss in the training loss."""
    strategy: Literal["ddp", "fsdp"] = "ddp"
    """Data parallelism: replicated (DDP) or sharded (FSDP, for the paper size on GPUs)."""
    resume: bool = False
    """Continue from the newest intact checkpoint in ``out`` (same corpus, model, masking and
    optimiser settings; the step budget may change, see ``neuript.train.resume``)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if not 0 <= self.val_fraction < 1:
            raise NeuriptError(
                f"PretrainRunConfig.val_fraction must be in [0, 1), got {self.val_fraction!r}"
            )

    def model_config(self) -> ModelConfig:
        """The ``init`` checkpoint's model config, else ``model``, else the preset's."""
        if self.init is not None:
            from neuript.config import from_dict
            from neuript.model_folder import read_model_config, resolve_init_dir

            return from_dict(ModelConfig, read_model_config(resolve_init_dir(self.init))["model"])
        if self.model is not None:
            return self.model
        from neuript.model.presets import preset

        return preset(self.preset)

    def resolved(self) -> PretrainRunConfig:
        """A copy with ``model`` filled in from the preset (what gets written to disk)."""
        return PretrainRunConfig(**{**self.__dict__, "model": self.model_config()})


@dataclass(frozen=True)
class PretrainResult:
    """What :func:`run_pretrain` returns (on every rank; paths are the same)."""

    run_dir: Path
    """The run folder."""
    steps: int
    """Optimiser steps done in total (including before a resume)."""
    final_train_loss: float
    """Mean training loss of the last logged interval."""
    val_loss: float
    """Validation reconstruction loss at the end (NaN without validation subjects)."""
    checkpoint_dir: Path
    """``run_dir/pretrained``: the encoder + decoder checkpoint for fine-tuning."""


def run_pretrain(cfg: PretrainRunConfig) -> PretrainResult:
    """Pretrain NeurIPT on a corpus; see the module docstring.

    Parameters
    ----------
    cfg : PretrainRunConfig

    Returns
    -------
    result : PretrainResult

    Raises
    ------
    NeuriptError
        Missing corpus, a run folder holding checkpoints without ``resume``, a resume whose
        corpus or settings differ from its checkpoint's, no intact checkpoint to resume, windows
        whose length does not divide by the model's total segment merge, or bad config values.
    """
    owns_group = not (tdist.is_available() and tdist.is_initialized())
    env = setup(cfg.train.device)
    try:
        return _run(cfg.resolved(), env)
    finally:
        if owns_group:
            teardown()


def _prepare_run_dir(cfg: PretrainRunConfig, env: DistEnv,
                     corpus: dict[str, Any]) -> tuple[Path, ResumePoint | None]:
    """Check the run folder, then (rank 0) write ``config.json`` and clear stale temporaries.

    Every check comes first, so a refused run or resume leaves the folder as it was.
    """
    run_dir = Path(cfg.out)
    if not cfg.resume and latest_checkpoint(run_dir) is not None:
        raise NeuriptError(f"{run_dir}: holds checkpoints of an earlier run; pass --resume to "
                           "continue it or choose another --out")
    point = check_resume(run_dir, to_dict(cfg), corpus) if cfg.resume else None
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)
        (run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    barrier()
    return run_dir, point


def _run(cfg: PretrainRunConfig, env: DistEnv) -> PretrainResult:
    from neuript.data.loader import make_corpus_loader
    from neuript.data.splits import split_by_subject
    from neuript.data.store import WindowStore
    from neuript.model.neuript import NeurIPTPretrain

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    store = WindowStore(cfg.corpus)  # checks first: a refused run overwrites nothing
    model_cfg = cfg.model_config()
    _check_window(store.config.window_samples, model_cfg, cfg.corpus)
    corpus = corpus_identity(store.root, len(store))
    run_dir, resume_point = _prepare_run_dir(cfg, env, corpus)
    seed_everything(rank_seed(cfg.train.seed, env))
    split = split_by_subject(store.subjects, cfg.val_fraction, cfg.train.seed)
    log.info("corpus %s: %d train / %d validation windows", cfg.corpus, len(split.train),
             len(split.val))

    def loader(indices: np.ndarray, epoch: int, train: bool) -> Iterable[Batch]:
        return make_corpus_loader(
            store, indices, batch_size=cfg.train.batch_size, seed=cfg.train.seed, rank=env.rank,
            world_size=env.world_size, compression=store.config.compression,
            alaw_a=store.config.alaw_a, epoch=epoch, drop_last=train, shuffle=train,
            num_workers=cfg.train.num_workers,
        )

    plain = NeurIPTPretrain(model_cfg, cfg.mask, aux_weight=cfg.aux_weight)
    if cfg.init is not None:
        from neuript.model.io import load_state, read_weights
        from neuript.train.finetune import check_init_contract, resolve_init_dir

        init_dir = resolve_init_dir(cfg.init)
        check_init_contract(init_dir, store.config)
        load_state(plain, read_weights(init_dir), source=init_dir, strict=True)
        log.info("continuing from %s", init_dir)
    model = wrap_model(plain, env, strategy=cfg.strategy, compile=cfg.train.compile)
    stop = StopCondition.from_train(cfg.train)
    steps_per_epoch = math.ceil(len(loader(split.train, 0, True)) / cfg.train.grad_accum)
    if steps_per_epoch == 0:
        raise NeuriptError(f"{cfg.corpus}: {len(split.train)} training windows make no full "
                           f"batch of {cfg.train.batch_size} x {env.world_size} processes")
    total = planned_steps(stop, steps_per_epoch)
    optimizer = build_optimizer(model, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, total)
    mask_gen = torch.Generator(device=env.device).manual_seed(rank_seed(cfg.train.seed, env))
    generators = {"mask": mask_gen}
    state, resumed = TrainState(), None
    if resume_point is not None:
        state, scheduler, resumed = _resume(resume_point, model, optimizer, scheduler, cfg.optim,
                                            total, env=env, generators=generators)

    def step_fn(net: nn.Module, batch: Batch) -> StepOutput:
        out = net(batch.signals, batch.positions, batch.channel_mask, generator=mask_gen)
        logs = {"recon_loss": float(out.recon_loss.detach()),
                "aux_loss": float(out.aux_loss.detach())}
        return StepOutput(out.loss, logs, len(batch))

    def validate() -> float:
        if len(split.val) == 0:
            return math.nan
        return validation_loss(model, loader(split.val, 0, False), env=env, seed=cfg.train.seed,
                               max_batches=cfg.val_batches, precision=cfg.train.precision)

    sink = LogSink(run_dir, enabled=env.is_main, after_step=state.step)
    if resumed is not None:
        sink.write(resumed)
    config = to_dict(cfg)

    saved_at = {"step": -1}

    def checkpoint(st: TrainState) -> None:
        if saved_at["step"] != st.step:
            save_train_state(run_dir, st, model, optimizer, scheduler, env=env,
                             generators=generators, config=config, corpus=corpus,
                             keep_last=cfg.train.keep_last)
            saved_at["step"] = st.step

    def on_step(st: TrainState) -> None:
        if cfg.train.ckpt_every and st.step % cfg.train.ckpt_every == 0:
            checkpoint(st)
        if cfg.val_every and st.step % cfg.val_every == 0:
            sink.write({"step": st.step, "epoch": st.epoch, "val_loss": validate()})

    result = run_steps(
        model, lambda epoch: loader(split.train, epoch, True), optimizer, scheduler, step_fn,
        dist=env, train_cfg=cfg.train, state=state, log_sink=sink, stop=stop,
        grad_clip=cfg.optim.grad_clip, total_steps=total, on_step=on_step,
    )
    checkpoint(result.state)
    val_loss = validate()
    sink.write({"step": result.state.step, "epoch": result.state.epoch, "val_loss": val_loss})
    sink.close()
    out_dir = run_dir / "pretrained"
    _save_encoder(model, plain, cfg, store, out_dir, env)
    summary = {"steps": result.state.step, "final_train_loss": result.last_loss,
               "val_loss": val_loss, "stopped_by": result.stopped_by}
    if env.is_main:
        (run_dir / "result.json").write_text(json.dumps(summary, indent=2))
    barrier()
    return PretrainResult(run_dir, result.state.step, result.last_loss, val_loss, out_dir)


def _resume(point: ResumePoint, model: nn.Module, optimizer: torch.optim.Optimizer,
            scheduler: torch.optim.lr_scheduler.LambdaLR, optim: OptimConfig, total: int, *,
            env: DistEnv, generators: dict[str, torch.Generator],
            ) -> tuple[TrainState, torch.optim.lr_scheduler.LambdaLR, dict[str, Any]]:
    """Load the checkpoint; with a new step budget, lay the schedule out over ``total`` steps.

    Returns the restored state, the scheduler to train with and the ``log.jsonl`` record of the
    resume (checkpoint, overrides, LR before and after re-planning).
    """
    state = load_train_state(point.checkpoint, model, optimizer, scheduler, env=env,
                             generators=generators).state
    record: dict[str, Any] = {"step": state.step, "resumed_from": point.checkpoint.path.name}
    log.info("resumed from %s at step %d (epoch %d, batch %d)", point.checkpoint.path,
             state.step, state.epoch, state.batch_in_epoch)
    if point.overrides:
        lr_before = optimizer.param_groups[0]["lr"]
        scheduler = build_scheduler(optimizer, optim, total, last_step=state.step)
        record.update(overrides=point.overrides, schedule_steps=total, lr_before=lr_before,
                      lr_after=optimizer.param_groups[0]["lr"])
        log.info("one-cycle schedule re-planned over %d steps from step %d", total, state.step)
    return state, scheduler, record


def _check_window(n_samples: int, model_cfg: ModelConfig, corpus: str) -> None:
    if n_samples % model_cfg.total_merge:
        raise NeuriptError(
            f"{corpus}: windows of {n_samples} samples do not divide by the model's total "
            f"segment merge {model_cfg.total_merge} (merge_factors={model_cfg.merge_factors})"
        )


def _save_encoder(model: nn.Module, plain: nn.Module, cfg: PretrainRunConfig, store: Any,
                  out_dir: Path, env: DistEnv) -> None:
    """Write ``save_pretrained`` on rank 0 (gathering FSDP shards into a plain copy first)."""
    from neuript.model.neuript import NeurIPTPretrain

    if is_fsdp(model):
        full = full_model_state(model)  # collective: the full weights land on rank 0 only
        if env.is_main:
            plain = NeurIPTPretrain(cfg.model_config(), cfg.mask, aux_weight=cfg.aux_weight)
            plain.load_state_dict(full)
    if env.is_main:
        channels = sorted({name for m in store.montages for name in m.ch_names})
        contract = InputContract.from_preprocess(store.config, channels=tuple(channels))
        from neuript.train.provenance import corpus_provenance

        provenance = corpus_provenance(store.root, store.sources, store.subjects)
        extra = {"corpus": str(cfg.corpus), "windows": len(store), "init": cfg.init}
        if cfg.init is not None:  # the encoder also saw the init checkpoint's corpus
            from neuript.train.finetune import resolve_init_dir
            from neuript.train.provenance import checkpoint_provenance, merge_provenance

            prior = checkpoint_provenance(resolve_init_dir(cfg.init))
            provenance = merge_provenance(prior, provenance) if prior else provenance
        extra["provenance"] = provenance
        unwrap(plain).save_pretrained(out_dir, contract=contract, extra=extra)
    barrier()


def validation_loss(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    env: DistEnv,
    seed: int,
    max_batches: int | None = None,
    precision: str = "fp32",
) -> float:
    """Mean reconstruction loss over held-out windows, with masks drawn from a fixed seed.

    Collective under DDP: every rank scores its share and the window-weighted mean is reduced.
    The global RNG streams are left untouched, so validation never changes training.

    Returns
    -------
    loss : float
        Window-weighted mean of ``recon_loss`` (NaN if no window was scored).
    """
    net = model if is_fsdp(model) else unwrap(model)
    was_training = net.training
    net.eval()
    devices = [env.device] if env.device.type == "cuda" else []
    totals = torch.zeros(2, dtype=torch.float64, device=env.device)
    with torch.random.fork_rng(devices=devices), torch.no_grad(), torch.autocast(
        device_type=env.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"
    ):
        gen = torch.Generator(device=env.device).manual_seed(seed + env.rank)
        for batch in itertools.islice(batches, max_batches):
            batch = batch.to(env.device)
            out = net(batch.signals, batch.positions, batch.channel_mask, generator=gen)
            totals[0] += float(out.recon_loss) * len(batch)
            totals[1] += len(batch)
    net.train(was_training)
    loss_sum, count = all_reduce_sum(totals).tolist()
    return loss_sum / count if count else math.nan
