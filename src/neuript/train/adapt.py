"""Domain-adaptive pretraining: continue AAMP on a task's own unlabelled training windows.

"Don't Stop Pretraining" (Gururangan et al. 2020): before fine-tuning, the encoder keeps
learning the masked-reconstruction objective on the target task's **training** windows, labels
unused. Validation and test windows are never seen, so the split stays clean. The adapted
encoder + decoder is written as an ordinary pretraining checkpoint
(``seed_<s>/adapted``) that the seed's classifier then loads.

The loop is deliberately plain (one process, the task's loader, the shared optimiser and
one-cycle schedule): adaptation is a few hundred steps on one machine, not a corpus run.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import NamedTuple

import torch

from neuript.config import InputContract, ModelConfig, OptimConfig
from neuript.data.tasks.base import TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)


class AdaptResult(NamedTuple):
    """What :func:`adapt_encoder` returns."""

    checkpoint_dir: Path
    """The adapted pretraining checkpoint (``model.safetensors`` + ``config.json``)."""
    losses: list[float]
    """Training loss of every step."""


def adapt_encoder(task: TaskWindows, init_dir: Path | None, model_cfg: ModelConfig,
                  out_dir: Path, *, steps: int, seed: int, batch_size: int = 32,
                  optim: OptimConfig | None = None, device: torch.device | None = None,
                  ) -> AdaptResult:
    """Run ``steps`` AAMP steps on ``task``'s training windows and save the result.

    Parameters
    ----------
    task : TaskWindows
        Only its ``train`` split is read (signals compressed as the task says; labels unused).
    init_dir : Path | None
        Pretraining checkpoint to continue (its mask config and aux weight are kept); None
        starts from a random ``model_cfg`` model (pretraining on the task alone).
    model_cfg : ModelConfig
        The model to build when ``init_dir`` is None.
    out_dir : Path
        Where the adapted checkpoint goes (written atomically).
    steps : int
        Optimiser steps (> 0); the training split is cycled as often as needed.
    seed : int
        Seeds the window order and the masks.
    optim : OptimConfig | None
        AdamW + one-cycle settings (default: peak LR 1e-3, the shipped checkpoint's).

    Returns
    -------
    result : AdaptResult
    """
    from neuript.data.loader import make_task_loader
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.train.loop import build_optimizer, build_scheduler
    from neuript.train.provenance import checkpoint_provenance

    assert steps > 0, steps
    if len(task.indices("train")) == 0:
        raise NeuriptError(f"task {task.name!r}: no training windows to adapt on "
                           "(--adapt-steps needs a training split)")

    device = device or torch.device("cpu")
    optim = optim or OptimConfig(lr=1e-3)
    if init_dir is not None:
        model, _ = NeurIPTPretrain.from_pretrained(init_dir)
    else:
        model = NeurIPTPretrain(model_cfg)
    model = model.to(device).train()
    optimizer = build_optimizer(model, optim)
    scheduler = build_scheduler(optimizer, optim, steps)
    masks = torch.Generator(device=device).manual_seed(seed)

    def batches():  # every window once per epoch, the last batch may be short
        for epoch in itertools.count():
            yield from make_task_loader(task, "train", batch_size=batch_size, shuffle=True,
                                        seed=seed, epoch=epoch)

    losses = []
    for batch in itertools.islice(batches(), steps):
        batch = batch.to(device)
        out = model(batch.signals, batch.positions, batch.channel_mask, generator=masks)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        if optim.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(float(out.loss.detach()))
        if len(losses) % 25 == 0:
            log.info("adapt step %d/%d: loss %.4f", len(losses), steps, losses[-1])
    model.eval()
    contract = InputContract.from_preprocess(task.preprocess, task.ch_names)
    extra = {"adapted_on": task.name, "adapt_steps": steps, "adapt_split": "train",
             "init": str(init_dir) if init_dir is not None else "scratch"}
    if init_dir is not None and (prior := checkpoint_provenance(init_dir)) is not None:
        extra["provenance"] = prior  # the corpus it saw before adaptation still counts
    model.cpu().save_pretrained(out_dir, contract=contract, extra=extra)
    log.info("adapted %s on %d %s training windows for %d steps: loss %.4f -> %.4f",
             "checkpoint" if init_dir else "random model", len(task.indices("train")),
             task.name, steps, losses[0], sum(losses[-10:]) / len(losses[-10:]))
    return AdaptResult(Path(out_dir), losses)
