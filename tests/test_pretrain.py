"""Pretraining on a real (tiny) corpus: run folder, checkpoints, and exact resume after a kill."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

import neuript.train.pretrain as pretrain_mod
from _train_corpus import corpus_dir
from neuript.config import InputContract, TrainConfig, from_dict, override
from neuript.errors import NeuriptError
from neuript.train.checkpoint import latest_checkpoint, list_checkpoints
from neuript.train.pretrain import PretrainRunConfig, run_pretrain

torch.set_num_threads(1)
STEPS = 6


def _cfg(corpus, out, **train) -> PretrainRunConfig:
    base = dict(batch_size=2, epochs=None, max_steps=STEPS, log_every=1, ckpt_every=3,
                keep_last=2, device="cpu", threads=1)
    return PretrainRunConfig(corpus=str(corpus), out=str(out), preset="tiny",
                             train=TrainConfig(**{**base, **train}), val_fraction=0.5,
                             val_batches=2)


def _losses(run_dir) -> dict[int, float]:
    lines = [json.loads(s) for s in (run_dir / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if "loss" in r}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return corpus_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def full_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    return run_pretrain(_cfg(corpus, out)), out


class _Killed(RuntimeError):
    pass


def test_run_folder_holds_config_logs_checkpoints_and_encoder(full_run, corpus):
    result, out = full_run
    assert result.steps == STEPS and math.isfinite(result.final_train_loss)
    assert math.isfinite(result.val_loss) and result.val_loss > 0
    written = from_dict(PretrainRunConfig, json.loads((out / "config.json").read_text()))
    assert written.model is not None and written.model.d_model == 32  # preset resolved
    losses = _losses(out)
    assert sorted(losses) == list(range(1, STEPS + 1))
    assert all(math.isfinite(v) for v in losses.values())
    # keep_last=2 of the checkpoints at steps 3 and 6 (+ the final one, the same step 6)
    assert [p.name for p in list_checkpoints(out)] == ["step_00000003", "step_00000006"]
    weights = load_file(str(latest_checkpoint(out) / "model.safetensors"))
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in weights)
    state = torch.load(latest_checkpoint(out) / "state.pt", weights_only=True)
    assert state["train_state"]["step"] == STEPS and len(state["rng"]) == 1
    # the shareable checkpoint reloads with the corpus's input contract
    from neuript.data.store import WindowStore
    from neuript.model.neuript import NeurIPTPretrain

    model, meta = NeurIPTPretrain.from_pretrained(out / "pretrained")
    assert meta.contract.mismatches(InputContract.from_preprocess(WindowStore(corpus).config),
                                    check_window=True) == []
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights[key])


def test_resume_after_kill_continues_exactly(full_run, corpus, tmp_path, monkeypatch):
    """Kill right after the step-3 checkpoint; resume: steps 4..6 equal the uninterrupted run."""
    _, full_out = full_run
    real_save = pretrain_mod.save_train_state

    def save_then_die(run_dir, state, *args, **kwargs):
        path = real_save(run_dir, state, *args, **kwargs)
        if state.step == 3:
            raise _Killed("simulated kill -9 after the step-3 checkpoint")
        return path

    out = tmp_path / "run"
    monkeypatch.setattr(pretrain_mod, "save_train_state", save_then_die)
    with pytest.raises(_Killed):
        run_pretrain(_cfg(corpus, out))
    monkeypatch.setattr(pretrain_mod, "save_train_state", real_save)
    assert latest_checkpoint(out).name == "step_00000003"
    with pytest.raises(NeuriptError, match="--resume"):
        run_pretrain(_cfg(corpus, out))  # never overwrite a run by accident
    torch.manual_seed(12345)  # a different process state: the checkpoint must restore it all
    result = run_pretrain(override(_cfg(corpus, out), {"resume": True}))
    assert result.steps == STEPS
    full, resumed = _losses(full_out), _losses(out)
    assert [resumed[s] for s in range(4, STEPS + 1)] == pytest.approx(
        [full[s] for s in range(4, STEPS + 1)], abs=1e-6)
    assert result.val_loss == pytest.approx(full_run[0].val_loss, abs=1e-6)


def test_window_length_must_divide_by_the_merges(corpus, tmp_path):
    from neuript.model.presets import preset

    cfg = _cfg(corpus, tmp_path / "r")
    bad = override(preset("tiny"), {"merge_factors": [1, 2, 3], "moe.experts_per_block": [0, 2, 3]})
    with pytest.raises(NeuriptError, match="merge"):
        run_pretrain(PretrainRunConfig(**{**cfg.__dict__, "model": bad}))
