"""``--resume`` on a real (tiny) pretraining run: what it refuses, overrides, repairs and cleans.

One 4-step run (checkpoints at steps 2 and 4) is made once; each test resumes a copy of it.
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

import neuript.train.checkpoint as checkpoint_mod
import neuript.train.pretrain as pretrain_mod
from _train_corpus import FILES, WINDOW_S, corpus_dir
from neuript.config import PreprocessConfig, TrainConfig, override
from neuript.errors import NeuriptError
from neuript.train.loop import OneCycle
from neuript.train.pretrain import PretrainRunConfig, run_pretrain

torch.set_num_threads(1)
STEPS = 4


def _cfg(corpus, out, **changes) -> PretrainRunConfig:
    train = TrainConfig(batch_size=2, epochs=None, max_steps=STEPS, log_every=1, ckpt_every=2,
                        keep_last=3, device="cpu", threads=1)
    cfg = PretrainRunConfig(corpus=str(corpus), out=str(out), preset="tiny", train=train,
                            val_fraction=0.5, val_batches=1).resolved()
    return override(cfg, changes)


def _records(run_dir) -> list[dict]:
    return [json.loads(s) for s in (run_dir / "log.jsonl").read_text().splitlines()]


def _losses(run_dir) -> dict[int, float]:
    steps = [r["step"] for r in _records(run_dir) if "loss" in r]
    assert len(steps) == len(set(steps)), f"steps logged more than once: {steps}"
    return {r["step"]: r["loss"] for r in _records(run_dir) if "loss" in r}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return corpus_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def base_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    run_pretrain(_cfg(corpus, out))
    return out


@pytest.fixture
def run_copy(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    return out


class _Killed(RuntimeError):
    pass


# --------------------------------------------------------------------------------------------
# 2. refuse another corpus or config; allow (and record) a new step budget
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("optim.lr", 1e-3),
    ("optim.pct_start", 0.3),
    ("model.dropout", 0.2),
    ("mask.strategy", "random"),
    ("train.batch_size", 3),
])
def test_resume_with_other_settings_is_refused_and_writes_nothing(corpus, run_copy, field, value):
    before = {name: (run_copy / name).read_bytes() for name in ("config.json", "log.jsonl")}
    with pytest.raises(NeuriptError, match=rf"--resume refused.*{field}.*--out") as err:
        run_pretrain(_cfg(corpus, run_copy, **{field: value, "resume": True}))
    assert "\n" not in str(err.value)
    assert {name: (run_copy / name).read_bytes() for name in before} == before


def test_resume_on_another_corpus_is_refused(corpus, run_copy, tmp_path_factory):
    from neuript.data.store import prepare_corpus
    from neuript.paths import data_root

    other = tmp_path_factory.mktemp("other") / "corpus"
    files = [data_root() / FILES[0], data_root() / "eegmat/Subject02_2.edf"]
    if not files[1].is_file():
        pytest.skip(f"real EEG file missing: {files[1]}")
    prepare_corpus(files, other, PreprocessConfig(window_s=WINDOW_S), progress=False)
    config = (run_copy / "config.json").read_bytes()
    with pytest.raises(NeuriptError, match=r"--resume refused.*corpus\.manifest_sha256"):
        run_pretrain(_cfg(other, run_copy, resume=True))
    assert (run_copy / "config.json").read_bytes() == config


def test_resume_may_extend_the_step_budget_and_records_it(corpus, run_copy, tmp_path):
    moved = tmp_path / "moved_corpus"  # the same corpus elsewhere: its identity matches
    shutil.copytree(corpus, moved)
    cfg = _cfg(moved, run_copy, **{"train.max_steps": 6, "resume": True})
    result = run_pretrain(cfg)
    assert result.steps == 6
    assert json.loads((run_copy / "config.json").read_text())["train"]["max_steps"] == 6
    resumed = [r for r in _records(run_copy) if "resumed_from" in r]
    assert len(resumed) == 1 and resumed[0]["resumed_from"] == "step_00000004"
    assert resumed[0]["overrides"] == {"train.max_steps": [4, 6]}
    assert sorted(_losses(run_copy)) == list(range(1, 7))
    # the one-cycle schedule is laid out again over 6 steps (not left at the 4-step one's end)
    sched = OneCycle(6, cfg.optim.pct_start, cfg.optim.div_factor, cfg.optim.final_div_factor)
    lrs = {r["step"]: r["lr"] for r in _records(run_copy) if "loss" in r}
    assert lrs[5] == pytest.approx(cfg.optim.lr * sched(5), rel=1e-9)
    assert lrs[6] == pytest.approx(cfg.optim.lr * sched(6), rel=1e-9)


# --------------------------------------------------------------------------------------------
# 3. corrupt or truncated checkpoints
# --------------------------------------------------------------------------------------------
def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path) -> None:  # same size, valid header: only the recorded checksum sees it
    data = bytearray(path.read_bytes())
    data[-9] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, damage", [
    ("state.pt", _truncate),
    ("model.safetensors", _truncate),
    ("model.safetensors", _flip_byte),
])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(base_run, corpus, run_copy, caplog,
                                                              name, damage):
    bad = run_copy / "checkpoints" / "step_00000004" / name
    damage(bad)
    with caplog.at_level(logging.WARNING, logger="neuript"):
        result = run_pretrain(_cfg(corpus, run_copy, resume=True))
    assert str(bad) in caplog.text and "step_00000002" in caplog.text
    assert result.steps == STEPS
    resumed = [r for r in _records(run_copy) if "resumed_from" in r]
    assert [r["resumed_from"] for r in resumed] == ["step_00000002"]
    # steps 3 and 4 were trained again from step 2's state: the same losses, each logged once
    assert _losses(run_copy) == pytest.approx(_losses(base_run), abs=1e-6)


def test_no_intact_checkpoint_is_a_one_line_error_naming_the_files(corpus, run_copy, capsys):
    from neuript.cli import main

    _truncate(run_copy / "checkpoints" / "step_00000002" / "state.pt")
    _truncate(run_copy / "checkpoints" / "step_00000004" / "model.safetensors")
    config = (run_copy / "config.json").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["pretrain", "--corpus", str(corpus), "--out", str(run_copy), "--resume",
              "--device", "cpu", "--max-steps", str(STEPS)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuript: error:"), err
    assert "step_00000002/state.pt" in err[0] and "step_00000004/model.safetensors" in err[0]
    assert (run_copy / "config.json").read_bytes() == config


# --------------------------------------------------------------------------------------------
# 4. a kill mid-save: log entries past the checkpoint, a stale temporary folder
# --------------------------------------------------------------------------------------------
def test_resume_after_a_kill_mid_save_logs_each_step_once_and_clears_temporaries(
        base_run, corpus, tmp_path, monkeypatch):
    real_save_file = checkpoint_mod.save_file

    def die_writing_step_4(tensors, filename, *args, **kwargs):
        real_save_file(tensors, filename, *args, **kwargs)
        if "step_00000004" in str(filename):
            raise _Killed("simulated kill while the step-4 checkpoint is being written")

    out = tmp_path / "run"
    monkeypatch.setattr(checkpoint_mod, "save_file", die_writing_step_4)
    with pytest.raises(_Killed):
        run_pretrain(_cfg(corpus, out))
    monkeypatch.setattr(checkpoint_mod, "save_file", real_save_file)
    # an exception removes its temporary folder; a SIGKILL cannot, so leave one as it would
    assert not list((out / "checkpoints").glob(".tmp-*"))
    (out / "checkpoints" / ".tmp-step_00000004-99999").mkdir()
    (out / "checkpoints" / ".tmp-step_00000004-99999" / "model.safetensors").write_bytes(b"x")
    assert sorted(_losses(out)) == [1, 2, 3, 4]  # logged past step 2
    with (out / "log.jsonl").open("a") as fh:
        fh.write('{"step": 5, "lo')  # a line torn by the kill
    assert pretrain_mod.latest_checkpoint(out).name == "step_00000002"

    run_pretrain(_cfg(corpus, out, resume=True))
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert _losses(out) == pytest.approx(_losses(base_run), abs=1e-6)  # 1..4, each once
    assert [r["step"] for r in _records(out) if "resumed_from" in r] == [2]
