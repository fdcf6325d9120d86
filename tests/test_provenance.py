"""The subject-overlap guard and domain-adaptive pretraining, on real MentalArithmetic windows.

A pretraining checkpoint whose recorded corpus holds the task's test subject must be refused by
``finetune``, ``evaluate`` and ``probe``; ``allow_overlap`` runs anyway and records it. The
adaptation steps must read training windows only.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _finetune_data import MICRO, reduced_task, thin
from neuript.config import InputContract, OptimConfig, TrainConfig, override
from neuript.data.splits import subset_subjects
from neuript.errors import NeuriptError
from neuript.train.evaluate import run_evaluate
from neuript.train.finetune import FinetuneRunConfig, run_finetune
from neuript.train.provenance import corpus_provenance, find_overlap, recording_key


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return thin(subset_subjects(reduced_task(tmp_path_factory.mktemp("eegmat")), 1), 4)


def checkpoint(task, folder, sources, subjects):
    """A micro pretraining checkpoint whose provenance lists ``sources`` / ``subjects``."""
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset

    torch.manual_seed(0)
    pre = NeurIPTPretrain(override(preset("tiny"), MICRO))
    prov = corpus_provenance(folder, sources, subjects)
    pre.save_pretrained(folder / "pretrained", InputContract.from_preprocess(task.preprocess),
                        extra={"provenance": prov})
    return folder


def cfg(out, init, **changes) -> FinetuneRunConfig:
    return FinetuneRunConfig(
        preset="tiny", model_overrides=MICRO, seeds=(3,), out_dir=str(out), init=str(init),
        report=True, optim=OptimConfig(lr=3e-3, weight_decay=0.0),
        train=TrainConfig(batch_size=16, epochs=1, threads=1), **changes)


def test_recording_key_survives_a_moved_data_root():
    assert recording_key("/a/b/data/adhd/adhd/v34p.csv.gz") == "adhd/adhd/v34p.csv.gz"
    assert recording_key("C:\\x\\adhd\\adhd\\v34p.csv.gz") == "adhd/adhd/v34p.csv.gz"


def test_guard_refuses_a_corpus_holding_a_test_subject(task, tmp_path):
    test_rows = task.indices("test")
    test_subject = str(task.subjects[test_rows[0]])
    # the corpus has the test subject's recording (under another data root) and a train one
    sources = ["/elsewhere/" + "/".join(str(task.sources[test_rows[0]]).split("/")[-3:]),
               str(task.sources[task.indices("train")[0]])]
    subjects = [test_subject, str(task.subjects[task.indices("train")[0]])]
    init = checkpoint(task, tmp_path / "pre", sources, subjects)
    found = find_overlap(json.loads((init / "pretrained" / "config.json").read_text())
                         ["extra"]["provenance"], task.sources, task.subjects, task.splits)
    assert found.subjects == [test_subject] and len(found.recordings) == 1

    earlier = tmp_path / "refused" / "config.json"
    earlier.parent.mkdir()
    earlier.write_text('{"an": "earlier run"}')
    with pytest.raises(NeuriptError, match=rf"{test_subject}.*--allow-overlap"):
        run_finetune(cfg(tmp_path / "refused", init), task=task)
    assert not (tmp_path / "refused" / "metrics.json").exists()
    assert earlier.read_text() == '{"an": "earlier run"}'  # a refused run overwrites nothing

    result = run_finetune(cfg(tmp_path / "allowed", init, allow_overlap=True), task=task)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["pretraining_overlap"]["status"] == "overlap_allowed"
    assert metrics["pretraining_overlap"]["subjects"] == [test_subject]
    assert "overlap allowed" in (result.run_dir / "REPORT.md").read_text()

    model_dir = result.per_seed[0]["model_dir"]
    with pytest.raises(NeuriptError, match="--allow-overlap"):
        run_evaluate(model_dir, task)
    assert run_evaluate(model_dir, task, allow_overlap=True).pretraining_overlap["status"] == \
        "overlap_allowed"


def test_guard_passes_a_clean_corpus_and_records_it(task, tmp_path):
    train = task.indices("train")
    init = checkpoint(task, tmp_path / "pre", [str(task.sources[train[0]])],
                      [str(task.subjects[train[0]])])
    result = run_finetune(cfg(tmp_path / "run", init), task=task)
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["pretraining_overlap"] == {"status": "clean", "subjects": [],
                                              "recordings": []}
    assert run_evaluate(result.per_seed[0]["model_dir"], task).pretraining_overlap["status"] \
        == "clean"


def test_adaptation_reads_training_windows_only(task, tmp_path, monkeypatch):
    """--adapt-steps: AAMP on the training split, the adapted encoder is the one fine-tuned."""
    import neuript.data.loader as loader_mod

    train = task.indices("train")
    init = checkpoint(task, tmp_path / "pre", [str(task.sources[train[0]])],
                      [str(task.subjects[train[0]])])
    seen_splits = []
    original = loader_mod.make_task_loader

    def spy(task_, split, **kw):
        seen_splits.append((split, kw.get("shuffle")))
        return original(task_, split, **kw)

    monkeypatch.setattr(loader_mod, "make_task_loader", spy)
    result = run_finetune(cfg(tmp_path / "run", init, adapt_steps=6, mode="linear_probe"),
                          task=task)
    seed_dir = result.run_dir / "seed_3"
    losses = json.loads((seed_dir / "adapt_loss.json").read_text())
    assert len(losses) == 6 and all(np.isfinite(losses))
    adapted = json.loads((seed_dir / "adapted" / "config.json").read_text())["extra"]
    assert adapted["adapt_split"] == "train" and "provenance" in adapted
    # the adaptation loader (the first one built, shuffled) is the training split
    assert seen_splits[0] == ("train", True)

    from safetensors.torch import load_file

    from neuript.model_folder import load_classifier

    tuned = dict(load_classifier(result.per_seed[0]["model_dir"]).model.named_parameters())
    adapted_w = load_file(str(seed_dir / "adapted" / "model.safetensors"))
    original_w = load_file(str(init / "pretrained" / "model.safetensors"))
    name = next(n for n in adapted_w if n.startswith("encoder.blocks.0"))
    # linear probe: the encoder is frozen after adaptation, so it equals the adapted one
    torch.testing.assert_close(tuned[name], adapted_w[name])
    assert (adapted_w[name] - original_w[name]).abs().max() > 0


def test_adapt_steps_need_neuript():
    with pytest.raises(NeuriptError, match="adapt_steps"):
        FinetuneRunConfig(model="eegnet", adapt_steps=10)
    with pytest.raises(NeuriptError, match="adapt_steps must be >= 0"):
        FinetuneRunConfig(adapt_steps=-1)


def test_continued_pretraining_keeps_both_corpora_in_its_provenance(tmp_path_factory):
    """pretrain --init: the new checkpoint's provenance is the union of both corpora."""
    from _train_corpus import corpus_dir
    from neuript.config import MaskConfig
    from neuript.model.presets import preset
    from neuript.train.pretrain import PretrainRunConfig, run_pretrain
    from neuript.train.provenance import merge_provenance

    corpus = corpus_dir(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("cont")
    first = PretrainRunConfig(corpus=str(corpus), out=str(tmp / "a"), preset="tiny",
                              model=override(preset("tiny"), MICRO),
                              mask=MaskConfig(), train=TrainConfig(batch_size=4, epochs=None,
                                                                   max_steps=2, threads=1,
                                                                   ckpt_every=0))
    run_pretrain(first)
    prior = json.loads((tmp / "a" / "pretrained" / "config.json").read_text())["extra"]
    second = PretrainRunConfig(**{**first.__dict__, "out": str(tmp / "b"),
                                  "init": str(tmp / "a")})
    run_pretrain(second)
    extra = json.loads((tmp / "b" / "pretrained" / "config.json").read_text())["extra"]
    assert extra["init"] == str(tmp / "a")
    assert set(map(tuple, extra["provenance"]["recordings"])) == set(
        map(tuple, prior["provenance"]["recordings"]))
    merged = merge_provenance({"recordings": [["x/y/a.edf", "s1"]], "manifest_sha256": "aa"},
                              {"recordings": [["x/y/b.edf", "s2"]], "manifest_sha256": "bb"})
    assert merged["subjects"] == ["s1", "s2"] and merged["manifest_sha256"] == "aa+bb"
