"""Data parallelism: a 2-process gloo run equals a 1-process run with the doubled batch.

Both runs train the real tiny NeurIPT on the real corpus through ``make_corpus_loader`` and the
shared loop (with gradient accumulation, so DDP's ``no_sync`` path is exercised). To make the
comparison exact, randomness that legitimately differs between ranks is switched off: dropout
and router noise are 0, the MoE auxiliary loss (a batch statistic) has weight 0, and each
window's mask is drawn from a generator seeded by its window id.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import NamedTuple

import pytest
import torch
import torch.multiprocessing as mp

from _train_corpus import corpus_dir
from neuript.config import MaskConfig, OptimConfig, TrainConfig, override
from neuript.train.distributed import (
    DistEnv,
    RankZeroFilter,
    all_reduce_mean,
    rank_seed,
    setup,
    unwrap,
)

B, STEPS, ACCUM = 2, 2, 2


def _step_fn(net, batch):
    from neuript.model.masking import MaskSpec
    from neuript.train.loop import StepOutput

    inner = unwrap(net)
    specs = [inner.draw_mask(batch.signals[i:i + 1], batch.channel_mask[i:i + 1],
                             torch.Generator().manual_seed(int(w)))
             for i, w in enumerate(batch.window_ids)]
    spec = MaskSpec(*(torch.cat(parts) for parts in zip(*specs)))
    out = net(batch.signals, batch.positions, batch.channel_mask, mask=spec)
    return StepOutput(out.loss, {"aux_loss": float(out.aux_loss.detach())}, len(batch))


class Replica(NamedTuple):
    """What one process of :func:`train_replica` ends with."""

    weights: dict
    """Full weights after training (under FSDP gathered to rank 0; empty on other ranks)."""
    seen: list[list[int]]
    """Window ids of each micro-batch this rank trained on."""
    records: list[dict]
    """The log records (means over ranks), on rank 0."""


def train_replica(env: DistEnv, corpus: str, batch_size: int, strategy: str = "ddp",
                  grad_clip: float | None = None) -> Replica:
    """Train STEPS steps on this rank's share (``grad_clip`` None: OptimConfig's default)."""
    from neuript.data.loader import make_corpus_loader
    from neuript.data.store import WindowStore
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset
    from neuript.train.checkpoint import full_model_state
    from neuript.train.distributed import wrap_model
    from neuript.train.loop import (
        LogSink,
        StopCondition,
        TrainState,
        build_scheduler,
        run_steps,
    )

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = override(preset("tiny"), {"dropout": 0.0, "moe.noise_std": 0.0})
    mask = MaskConfig(ratios=(0.5,), replace_mask=1.0, replace_random=0.0)
    model = wrap_model(NeurIPTPretrain(cfg, mask, aux_weight=0.0), env, strategy=strategy)
    optim = OptimConfig(lr=1e-2)
    # SGD, not AdamW: Adam moves every element by about ±lr whatever its gradient's size, so
    # elements whose gradient is ~0 flip with rounding-level differences between the 1- and
    # 2-process reduction orders; SGD keeps the comparison proportional to the gradients.
    opt = torch.optim.SGD(model.parameters(), lr=optim.lr)
    sched = build_scheduler(opt, optim, STEPS)
    store = WindowStore(corpus)
    seen: list[list[int]] = []

    def batches(epoch):
        loader = make_corpus_loader(store, range(len(store)), batch_size=batch_size, seed=7,
                                    rank=env.rank, world_size=env.world_size, epoch=epoch)
        for batch in loader:
            seen.append(batch.window_ids.tolist())
            yield batch

    sink = LogSink(None, enabled=env.is_main)
    run_steps(model, batches, opt, sched, _step_fn, dist=env,
              train_cfg=TrainConfig(batch_size=batch_size, grad_accum=ACCUM, max_steps=STEPS,
                                    log_every=1),
              state=TrainState(), log_sink=sink, stop=StopCondition(max_steps=STEPS),
              grad_clip=optim.grad_clip if grad_clip is None else grad_clip)
    weights = {k: v.detach().clone() for k, v in full_model_state(model).items()}
    return Replica(weights, seen, sink.records)


def _worker(rank: int, world_size: int, port: int, corpus: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    env = setup("cpu")
    try:
        mean = all_reduce_mean(torch.tensor([float(rank)]))
        weights, seen, _ = train_replica(env, corpus, B)
        torch.save({"weights": weights, "seen": seen, "mean": mean}, f"{out}.{rank}")
    finally:
        from neuript.train.distributed import teardown

        teardown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_equal_one_process_with_double_batch(tmp_path_factory, tmp_path):
    corpus = str(corpus_dir(tmp_path_factory))
    out = str(tmp_path / "rank")
    mp.spawn(_worker, args=(2, _free_port(), corpus, out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(2)]
    single, seen_single, _ = train_replica(DistEnv(), corpus, 2 * B)

    assert [float(r["mean"]) for r in ranks] == [0.5, 0.5]  # all_reduce_mean of ranks 0, 1
    # the same global batches: rank 0 and rank 1 halves make up the 1-process batch
    assert len(seen_single) == STEPS * ACCUM
    for k, both in enumerate(seen_single):
        assert ranks[0]["seen"][k] + ranks[1]["seen"][k] == both
    for key, value in single.items():
        torch.testing.assert_close(ranks[0]["weights"][key], value, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ranks[1]["weights"][key], value, atol=1e-5, rtol=1e-4)
    moved = sum(float((single[k] - v).abs().sum()) for k, v in _initial_weights().items())
    assert moved > 0  # the runs did train


def _initial_weights() -> dict:
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset

    torch.manual_seed(0)
    cfg = override(preset("tiny"), {"dropout": 0.0, "moe.noise_std": 0.0})
    return NeurIPTPretrain(cfg, MaskConfig(ratios=(0.5,), replace_mask=1.0,
                                           replace_random=0.0)).state_dict()


def test_setup_reads_the_environment_when_called(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    env = setup("cpu")
    assert env == DistEnv(0, 0, 1, torch.device("cpu")) and env.is_main
    assert not env.is_distributed
    assert rank_seed(520, DistEnv(rank=3, world_size=4)) == 523
    torch.testing.assert_close(all_reduce_mean(torch.tensor([2.0])), torch.tensor([2.0]))


def test_rank_zero_filter():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "msg", None, None)
    assert RankZeroFilter(0).filter(record) and not RankZeroFilter(1).filter(record)


def test_unwrap_strips_compile_wrapper():
    net = torch.nn.Linear(2, 2)
    compiled = torch.compile(net)
    assert unwrap(compiled) is net
    assert list(unwrap(compiled).state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize("device", ["gpu", "cuda:abc"])
def test_bad_device_is_a_clean_error(device):
    from neuript.errors import NeuriptError

    with pytest.raises(NeuriptError, match="device"):
        setup(device)
