"""The shared training loop: optimiser groups, schedule, accumulation, stopping, logs, RNG care.

The loop is model-agnostic, so these tests drive it with a small regression model on synthetic
batches whose targets are known; the real-model runs are in test_pretrain.py.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from neuript.batch import Batch
from neuript.config import OptimConfig, TrainConfig
from neuript.errors import NeuriptError
from neuript.train.distributed import DistEnv
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

torch.set_num_threads(1)
C, T = 3, 16


def make_batch(seed: int, b: int) -> Batch:
    """Synthetic batch: target = fixed linear map of the signals (learnable exactly)."""
    gen = torch.Generator().manual_seed(seed)
    signals = torch.randn(b, C, T, generator=gen)
    return Batch(signals=signals, positions=torch.zeros(b, C, 3),
                 channel_mask=torch.ones(b, C, dtype=torch.bool),
                 group_mask=torch.ones(b, 1, C, dtype=torch.bool),
                 labels=None, window_ids=torch.arange(b) + 100 * seed)


class Toy(nn.Module):
    """A linear read-out with dropout, a no-decay parameter and a max-norm constraint."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.proj = nn.Linear(C * T, 1)
        self.scale = nn.Parameter(torch.ones(1, 4))
        self.drop = nn.Dropout(dropout)
        self.constraint_calls = 0

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        return self.proj(self.drop(signals.flatten(1)))[:, 0] * self.scale.mean()

    def no_weight_decay(self) -> set[str]:
        return {"scale"}

    def apply_constraints(self) -> None:
        self.constraint_calls += 1


def target(batch: Batch) -> torch.Tensor:
    return batch.signals[:, 0, :4].sum(-1)


def step_fn(model: nn.Module, batch: Batch) -> StepOutput:
    pred = model(batch.signals)
    loss = ((pred - target(batch)) ** 2).mean()
    return StepOutput(loss, {"aux": 0.5}, len(batch))


def epochs_of(n_batches: int, b: int):
    return lambda epoch: [make_batch(1000 * epoch + k, b) for k in range(n_batches)]


LR_1E2 = OptimConfig(lr=1e-2)


def train(model, make_batches, *, train_cfg, stop, optim=LR_1E2, sink=None,
          state=None, total=None):
    opt = build_optimizer(model, optim)
    sched = build_scheduler(opt, optim, total or stop.max_steps or 10)
    result = run_steps(model, make_batches, opt, sched, step_fn, dist=DistEnv(),
                       train_cfg=train_cfg, state=state or TrainState(),
                       log_sink=sink or LogSink(None), stop=stop, grad_clip=optim.grad_clip)
    return result, opt, sched


def test_optimizer_groups_follow_dim_and_no_weight_decay():
    model = Toy()
    opt = build_optimizer(model, OptimConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert [p.shape for p in decay["params"]] == [model.proj.weight.shape]
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    # the bias (1-D) and the 2-D 'scale' named by no_weight_decay() are exempt
    assert {id(p) for p in no_decay["params"]} == {id(model.proj.bias), id(model.scale)}


def test_one_cycle_schedule_matches_config():
    cfg = OptimConfig(lr=1e-3, div_factor=25, final_div_factor=1e4, pct_start=0.2)
    opt = build_optimizer(Toy(), cfg)
    sched = build_scheduler(opt, cfg, total_steps=100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-3 / 25)
    assert max(lrs) == pytest.approx(1e-3, rel=1e-6)
    assert int(torch.tensor(lrs).argmax()) in (19, 20)  # peak after pct_start of the steps
    assert lrs[-1] == pytest.approx(1e-3 / 25 / 1e4, rel=0.05)


def test_loss_falls_and_constraints_are_applied(tmp_path):
    torch.manual_seed(0)
    model = Toy()
    sink = LogSink(tmp_path)
    cfg = TrainConfig(batch_size=8, epochs=None, max_steps=60, log_every=5)
    result, _, _ = train(model, epochs_of(4, 8), train_cfg=cfg,
                         stop=StopCondition(max_steps=60), sink=sink,
                         optim=OptimConfig(lr=0.05, weight_decay=0.0))
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(5, 61, 5))
    assert {"step", "epoch", "loss", "lr", "windows_s", "aux", "grad_norm"} <= set(lines[0])
    assert all(math.isfinite(r["loss"]) for r in lines)
    assert lines[-1]["loss"] < 0.1 * lines[0]["loss"]
    assert result.state.step == 60 and result.stopped_by == "max_steps"
    # 60 steps of 4 batches per epoch end exactly at the end of epoch 14
    assert (result.state.epoch, result.state.batch_in_epoch) == (14, 4)
    assert result.state.windows_seen == 60 * 8
    assert model.constraint_calls == 60


def test_grad_accumulation_equals_the_large_batch():
    """Two accumulated micro-batches of b equal one batch of 2b (same mean loss)."""
    torch.manual_seed(0)
    small, large = Toy(), Toy()
    large.load_state_dict(small.state_dict())
    halves = [make_batch(k, 4) for k in range(6)]

    def merged(epoch):
        return [Batch(torch.cat([a.signals, b.signals]), torch.cat([a.positions, b.positions]),
                      torch.cat([a.channel_mask, b.channel_mask]),
                      torch.cat([a.group_mask, b.group_mask]), None,
                      torch.cat([a.window_ids, b.window_ids]))
                for a, b in zip(halves[::2], halves[1::2])]

    stop = StopCondition(max_steps=3)
    train(small, lambda e: halves, train_cfg=TrainConfig(grad_accum=2, max_steps=3), stop=stop)
    train(large, merged, train_cfg=TrainConfig(grad_accum=1, max_steps=3), stop=stop)
    for p, q in zip(small.parameters(), large.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_stops_by_epochs_and_by_time():
    cfg = TrainConfig(epochs=2, log_every=100)
    result, _, _ = train(Toy(), epochs_of(3, 2), train_cfg=cfg, stop=StopCondition(epochs=2),
                         total=6)
    assert (result.state.step, result.state.epoch, result.stopped_by) == (6, 2, "epochs")
    assert math.isfinite(result.last_loss)  # the final partial interval is logged
    cfg = TrainConfig(epochs=None, max_minutes=0.0)
    result, _, _ = train(Toy(), epochs_of(3, 2), train_cfg=cfg,
                         stop=StopCondition(max_minutes=0.0, max_steps=50))
    assert (result.state.step, result.stopped_by) == (1, "max_minutes")


def test_planned_steps_and_empty_epoch():
    assert planned_steps(StopCondition(max_steps=7, epochs=3), steps_per_epoch=5) == 7
    assert planned_steps(StopCondition(epochs=3), steps_per_epoch=5) == 15
    with pytest.raises(NeuriptError, match="max_minutes"):
        planned_steps(StopCondition(max_minutes=1.0), steps_per_epoch=5)
    with pytest.raises(NeuriptError, match="no batches"):
        train(Toy(), lambda e: [], train_cfg=TrainConfig(max_steps=3),
              stop=StopCondition(max_steps=3))


def test_loader_randomness_does_not_perturb_training_rng():
    """A loader that draws from the global torch RNG must not change dropout masks."""

    def noisy(epoch):
        for k in range(4):
            torch.rand(7)  # e.g. DataLoader's base-seed draw, random augmentation
            yield make_batch(k, 4)

    models = []
    for make in (epochs_of(4, 4), noisy):
        torch.manual_seed(3)
        model = Toy(dropout=0.5)
        train(model, make, train_cfg=TrainConfig(max_steps=4), stop=StopCondition(max_steps=4))
        models.append(model)
    torch.testing.assert_close(models[0].proj.weight, models[1].proj.weight, atol=0, rtol=0)


def test_resume_mid_epoch_continues_exactly():
    """Stop after 5 steps, restore state + RNG, continue: same as 9 uninterrupted steps."""
    cfg = TrainConfig(max_steps=9, log_every=1)
    make = epochs_of(4, 4)  # 4 batches per epoch: step 5 stops mid-epoch 1

    torch.manual_seed(1)
    ref = Toy(dropout=0.3)
    sink_ref = LogSink(None)
    train(ref, make, train_cfg=cfg, stop=StopCondition(max_steps=9), sink=sink_ref, total=9)

    torch.manual_seed(1)
    model = Toy(dropout=0.3)
    opt = build_optimizer(model, OptimConfig(lr=1e-2))
    sched = build_scheduler(opt, OptimConfig(lr=1e-2), 9)
    first = run_steps(model, make, opt, sched, step_fn, dist=DistEnv(), train_cfg=cfg,
                      state=TrainState(), log_sink=LogSink(None),
                      stop=StopCondition(max_steps=5))
    saved = (first.state.__dict__.copy(), model.state_dict(), opt.state_dict(),
             sched.state_dict(), torch.get_rng_state())
    assert (first.state.epoch, first.state.batch_in_epoch) == (1, 1)

    torch.manual_seed(999)  # a fresh process: everything comes from the saved state
    model2 = Toy(dropout=0.3)
    opt2 = build_optimizer(model2, OptimConfig(lr=1e-2))
    sched2 = build_scheduler(opt2, OptimConfig(lr=1e-2), 9)
    model2.load_state_dict(saved[1])
    opt2.load_state_dict(saved[2])
    sched2.load_state_dict(saved[3])
    torch.set_rng_state(saved[4])
    sink = LogSink(None)
    run_steps(model2, make, opt2, sched2, step_fn, dist=DistEnv(), train_cfg=cfg,
              state=TrainState(**saved[0]), log_sink=sink, stop=StopCondition(max_steps=9))
    assert [r["step"] for r in sink.records] == [6, 7, 8, 9]
    resumed = [r["loss"] for r in sink.records]
    uninterrupted = [r["loss"] for r in sink_ref.records[5:]]
    assert resumed == pytest.approx(uninterrupted, abs=1e-7)


def test_bf16_autocast_on_cpu_runs():
    cfg = TrainConfig(max_steps=3, precision="bf16", log_every=1)
    sink = LogSink(None)
    train(Toy(), epochs_of(3, 4), train_cfg=cfg, stop=StopCondition(max_steps=3), sink=sink)
    assert len(sink.records) == 3 and all(math.isfinite(r["loss"]) for r in sink.records)


@pytest.mark.parametrize("total", [1, 2, 3, 5, 7])
def test_one_cycle_handles_few_steps(total):
    """torch's OneCycleLR divides by zero when pct_start * total == 1; ours must not."""
    cfg = OptimConfig(lr=1e-3, pct_start=0.2)
    opt = build_optimizer(Toy(), cfg)
    sched = build_scheduler(opt, cfg, total_steps=total)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert all(0 < lr <= 1e-3 * (1 + 1e-9) for lr in lrs)
    assert lrs[0] == pytest.approx(1e-3 / 25)


def test_progress_bar_shows_each_loss_term():
    """The bar's `loss` is the objective; its terms are shown beside it, not hidden in it."""
    from neuript.train.loop import _postfix

    shown = _postfix({"step": 50, "epoch": 0, "loss": 7.4220, "lr": 1e-3, "windows_s": 57.06,
                      "task_loss": 0.7364, "aux_loss": 8.357})
    assert shown == {"loss": "7.4220", "task_loss": "0.7364", "aux_loss": "8.3570", "wps": "57.1"}
