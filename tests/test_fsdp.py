"""FSDP on CPU (gloo): a 2-process sharded run equals the 1-process run, and resumes exactly.

One ``mp.spawn`` of two processes (the start-up dominates the cost) does everything sharded:

- the :mod:`test_distributed` replica (real tiny NeurIPT, real corpus, the shared loop with
  gradient accumulation, rank-independent masks) under ``strategy="fsdp"`` with an active
  gradient clip, compared in the parent with one process on the doubled batch;
- ``run_pretrain(strategy="fsdp")`` uninterrupted, and again killed right after its step-2
  checkpoint and resumed: the resumed losses and final weights equal the uninterrupted run's.

The checkpoint written under FSDP (full state dicts gathered to rank 0) is then loaded by a
plain single-process model, and an index-keyed (plain) optimiser state is loaded into a
sharded model.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from _train_corpus import corpus_dir
from neuript.config import TrainConfig, override
from neuript.train.distributed import DistEnv, setup, teardown
from test_distributed import STEPS, B, _free_port, train_replica

CLIP = 0.05
"""Below the tiny model's gradient norm (about 0.1–1): the clip is active in every step."""
PRETRAIN_STEPS, KILL_AT = 4, 2


class _Killed(RuntimeError):
    pass


def _pretrain_cfg(corpus: str, out: str):
    from neuript.train.pretrain import PretrainRunConfig

    train = TrainConfig(batch_size=2, grad_accum=2, epochs=None, max_steps=PRETRAIN_STEPS,
                        log_every=1, ckpt_every=KILL_AT, device="cpu", threads=1)
    return PretrainRunConfig(corpus=corpus, out=out, preset="tiny", strategy="fsdp", train=train,
                             val_fraction=0.5, val_batches=1)


def _killed_then_resumed(corpus: str, out: str) -> None:
    """Pretrain, die after the KILL_AT checkpoint, resume (patched in this child process only)."""
    import neuript.train.pretrain as pretrain_mod

    real_save = pretrain_mod.save_train_state

    def save_then_die(run_dir, state, *args, **kwargs):
        path = real_save(run_dir, state, *args, **kwargs)
        if state.step == KILL_AT:
            raise _Killed(f"simulated kill after the step-{KILL_AT} checkpoint")
        return path

    pretrain_mod.save_train_state = save_then_die
    try:
        pretrain_mod.run_pretrain(_pretrain_cfg(corpus, out))
    except _Killed:
        pass
    finally:
        pretrain_mod.save_train_state = real_save
    torch.manual_seed(12345)  # the checkpoint must restore every RNG
    pretrain_mod.run_pretrain(override(_pretrain_cfg(corpus, out), {"resume": True}))


def _plain_optimizer_into_fsdp(env: DistEnv) -> bool:
    """An index-keyed optimiser state (saved unsharded) loads into a sharded model."""
    from neuript.config import OptimConfig
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset
    from neuript.train.checkpoint import _load_optimizer, full_optim_state
    from neuript.train.distributed import wrap_model
    from neuript.train.loop import build_optimizer

    def make(wrap: bool):
        net = NeurIPTPretrain(preset("tiny"))
        net = wrap_model(net, env, strategy="fsdp") if wrap else net
        return net, build_optimizer(net, OptimConfig())

    plain, plain_opt = make(False)
    gen = torch.Generator().manual_seed(3)  # distinct values: a mis-keyed state cannot match
    for p in plain.parameters():
        p.grad = torch.randn(p.shape, generator=gen)
    plain_opt.step()
    sharded, sharded_opt = make(True)
    _load_optimizer(sharded, sharded_opt, plain_opt.state_dict())
    gathered = full_optim_state(sharded, sharded_opt)
    if not env.is_main:
        return True
    names = [n for n, _ in plain.named_parameters()]
    return all(torch.equal(gathered["state"][n]["exp_avg"], plain_opt.state[p]["exp_avg"])
               for n, p in zip(names, plain.parameters(), strict=True))


def _worker(rank: int, world_size: int, port: int, corpus: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    env = setup("cpu")
    try:
        torch.set_num_threads(1)
        replica = train_replica(env, corpus, B, strategy="fsdp", grad_clip=CLIP)
        from neuript.train.pretrain import run_pretrain

        run_pretrain(_pretrain_cfg(corpus, f"{out}/full"))
        _killed_then_resumed(corpus, f"{out}/resumed")
        optim_ok = _plain_optimizer_into_fsdp(env)
        torch.save({**replica._asdict(), "optim_ok": optim_ok}, f"{out}/replica.{rank}")
    finally:
        teardown()


def _losses(run_dir) -> dict[int, float]:
    lines = [json.loads(s) for s in (run_dir / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if "loss" in r}


def test_fsdp_two_processes_equal_one_and_resume_exactly(tmp_path_factory, tmp_path):
    corpus = str(corpus_dir(tmp_path_factory))
    mp.spawn(_worker, args=(2, _free_port(), corpus, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"replica.{r}", weights_only=True) for r in range(2)]
    single = train_replica(DistEnv(), corpus, 2 * B, grad_clip=CLIP)

    # 1. sharded training = one process on the doubled batch (clip active, norms global)
    assert ranks[1]["weights"] == {}  # full weights are gathered on rank 0 only
    for k, both in enumerate(single.seen):
        assert ranks[0]["seen"][k] + ranks[1]["seen"][k] == both
    sharded_log, single_log = ranks[0]["records"], single.records
    assert [r["step"] for r in sharded_log] == list(range(1, STEPS + 1))
    assert all(r["grad_norm"] > CLIP for r in single_log)
    for ours, ref in zip(sharded_log, single_log, strict=True):
        assert ours["loss"] == pytest.approx(ref["loss"], abs=1e-6)
        assert ours["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-5)
    assert sorted(ranks[0]["weights"]) == sorted(single.weights)
    for key, value in single.weights.items():
        torch.testing.assert_close(ranks[0]["weights"][key], value, atol=1e-6, rtol=1e-5)

    # 2. killed after the step-2 checkpoint and resumed = uninterrupted (losses and weights)
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert sorted(_losses(resumed)) == list(range(1, PRETRAIN_STEPS + 1))
    assert _losses(resumed) == pytest.approx(_losses(full), abs=1e-6)
    final = load_file(str(full / "pretrained" / "model.safetensors"))
    again = load_file(str(resumed / "pretrained" / "model.safetensors"))
    for key, value in final.items():
        torch.testing.assert_close(again[key], value, atol=1e-6, rtol=0)

    # 3. the FSDP checkpoint loads into a plain model (and a plain optimiser state into FSDP)
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.train.checkpoint import latest_checkpoint, load_train_state
    from neuript.train.loop import build_optimizer, build_scheduler

    cfg = _pretrain_cfg(corpus, str(full)).resolved()
    plain = NeurIPTPretrain(cfg.model_config(), cfg.mask, aux_weight=cfg.aux_weight)
    optimizer = build_optimizer(plain, cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, PRETRAIN_STEPS)
    loaded = load_train_state(latest_checkpoint(full), plain, optimizer, scheduler, env=DistEnv())
    assert loaded.state.step == PRETRAIN_STEPS and len(optimizer.state) > 0
    assert scheduler.last_epoch == PRETRAIN_STEPS
    ckpt_weights = load_file(str(latest_checkpoint(full) / "model.safetensors"))
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(value, ckpt_weights[key], atol=0, rtol=0)
    assert ranks[0]["optim_ok"] and ranks[1]["optim_ok"]
