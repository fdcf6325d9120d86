"""Fine-tuning on real MentalArithmetic windows: training, selection, metrics, contracts."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from _finetune_data import MICRO, reduced_task, thin
from neuript.config import (
    InputContract,
    OptimConfig,
    PreprocessConfig,
    TrainConfig,
    from_dict,
    override,
    to_dict,
)
from neuript.data.splits import subset_subjects
from neuript.errors import ContractError, NeuriptError
from neuript.model_folder import load_classifier
from neuript.train.evaluate import run_evaluate
from neuript.train.finetune import FinetuneRunConfig, run_finetune

METRIC_KEYS = {"balanced_accuracy", "cohen_kappa", "weighted_f1", "auroc", "auc_pr"}


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return reduced_task(tmp_path_factory.mktemp("eegmat"))


def micro_cfg(out_dir, **changes) -> FinetuneRunConfig:
    base = FinetuneRunConfig(
        preset="tiny", model_overrides=MICRO, seeds=(3,), out_dir=str(out_dir),
        optim=OptimConfig(lr=3e-3, weight_decay=0.0, pct_start=0.2),
        train=TrainConfig(batch_size=16, epochs=4, log_every=2, threads=1),
    )
    return FinetuneRunConfig(**{**base.__dict__, **changes})


@pytest.fixture(scope="module")
def run(task, tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ft") / "run"
    return run_finetune(micro_cfg(out), task=thin(task, 3))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reduced_task_has_every_split(task):
    assert set(task.subjects[task.indices("train")]) == {"Subject00", "Subject01"}
    assert set(task.subjects[task.indices("val")]) == {"Subject28"}
    assert set(task.subjects[task.indices("test")]) == {"Subject33"}


def test_training_loss_falls_and_metrics_complete(run):
    curves = read_jsonl(run.run_dir / "seed_3" / "curves.jsonl")
    assert [r["epoch"] for r in curves] == [1, 2, 3, 4]
    assert curves[-1]["train_loss"] < curves[0]["train_loss"]
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in curves)
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert set(metrics["per_seed"][0]["test"]) == METRIC_KEYS
    assert set(metrics["aggregate"]) == METRIC_KEYS
    for stat in metrics["aggregate"].values():
        assert {"mean", "std", "ci95_low", "ci95_high", "n"} <= set(stat)
    assert metrics["task"] == "mental_arithmetic" and metrics["model"] == "neuript"


def test_selected_epoch_is_best_validation_epoch(run):
    curves = read_jsonl(run.run_dir / "seed_3" / "curves.jsonl")
    best = max(curves, key=lambda r: (r["val_balanced_accuracy"], -r["val_loss"]))
    assert run.per_seed[0]["best_epoch"] == best["epoch"]
    assert run.per_seed[0]["val"]["balanced_accuracy"] == best["val_balanced_accuracy"]


def test_test_metrics_match_sklearn_on_written_predictions(run, task):
    task = thin(task, 3)
    with (run.run_dir / "seed_3" / "test_predictions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(task.indices("test"))
    y = np.array([int(r["label"]) for r in rows])
    yhat = np.array([int(r["predicted"]) for r in rows])
    p1 = np.array([float(r["p_task"]) for r in rows])
    assert np.array_equal(y, task.labels[[int(r["window_id"]) for r in rows]])
    test = run.per_seed[0]["test"]
    assert test["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, yhat))
    assert test["auroc"] == pytest.approx(roc_auc_score(y, p1), abs=1e-5)


def test_run_directory_artefacts(run):
    d = run.run_dir
    for name in ("config.json", "split_manifest.json", "metrics.json", "REPORT.md",
                 "curves.png", "confusion.png", "lobes.png"):
        assert (d / name).is_file(), name
    manifest = json.loads((d / "split_manifest.json").read_text())
    assert manifest["hash"] == run.split_hash
    assert json.loads((d / "metrics.json").read_text())["split_hash"] == run.split_hash
    config = json.loads((d / "config.json").read_text())
    assert config["model_overrides"] == MICRO and config["seeds"] == [3]


def test_saved_model_reproduces_test_metrics(run, task):
    task = thin(task, 3)
    loaded = load_classifier(run.per_seed[0]["model_dir"])
    assert loaded.contract.channels == task.ch_names
    assert loaded.contract.sfreq_hz == 64.0 and loaded.contract.window_s == 5.0
    assert loaded.extra["class_names"] == list(task.class_names)
    result = run_evaluate(run.per_seed[0]["model_dir"], task, split="test", device="cpu")
    for key, value in run.per_seed[0]["test"].items():
        assert result.metrics[key] == pytest.approx(value, abs=1e-6), key
    assert result.n_windows == len(task.indices("test"))


def test_init_contract_mismatch_is_refused(task, tmp_path):
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset

    cfg = override(preset("tiny"), MICRO)
    ckpt = tmp_path / "pre" / "pretrained"
    NeurIPTPretrain(cfg).save_pretrained(ckpt, InputContract(PreprocessConfig(sfreq_hz=128.0)))
    with pytest.raises(ContractError, match="sfreq_hz: model expects 128.0, data has 64.0"):
        run_finetune(micro_cfg(tmp_path / "run", init=str(tmp_path / "pre")), task=task)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_init_from_pretrained_loads_encoder(task, tmp_path):
    from neuript.model.neuript import NeurIPTPretrain
    from neuript.model.presets import preset

    torch.manual_seed(0)
    pre = NeurIPTPretrain(override(preset("tiny"), MICRO))
    ckpt = tmp_path / "pre" / "pretrained"
    pre.save_pretrained(ckpt, InputContract.from_preprocess(task.preprocess))
    small = thin(subset_subjects(task, 1), 4)
    cfg = micro_cfg(tmp_path / "run", init=str(tmp_path / "pre"), report=False,
                    mode="linear_probe", train=TrainConfig(batch_size=32, epochs=1, threads=1))
    result = run_finetune(cfg, task=small)
    loaded = load_classifier(result.per_seed[0]["model_dir"])
    enc = dict(pre.named_parameters())
    name = next(n for n in enc if n.startswith("encoder."))
    # a linear probe leaves the loaded encoder exactly as pretrained
    torch.testing.assert_close(dict(loaded.model.named_parameters())[name], enc[name])


def test_config_validation():
    with pytest.raises(NeuriptError, match="model"):
        FinetuneRunConfig(model="resnet")
    with pytest.raises(NeuriptError, match="init"):
        FinetuneRunConfig(model="eegnet", init="runs/pretrain")
    with pytest.raises(NeuriptError, match="logit_adjust_k"):
        FinetuneRunConfig(logit_adjust_k=-0.1)
    cfg = FinetuneRunConfig(model_overrides=MICRO, seeds=(1, 2), task_options={"workers": 1})
    assert from_dict(FinetuneRunConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg
    changed = override(cfg, {"optim.lr": 1e-3, "train.epochs": 3, "scheme": "mean"})
    assert (changed.optim.lr, changed.train.epochs, changed.scheme) == (1e-3, 3, "mean")


def test_eegnet_and_bandpower_share_splits_and_metrics(task, tmp_path):
    small = thin(subset_subjects(task, 1), 2)
    eeg = run_finetune(micro_cfg(tmp_path / "eegnet", model="eegnet", report=False,
                                 train=TrainConfig(batch_size=32, epochs=1, threads=1)), task=small)
    bp = run_finetune(micro_cfg(tmp_path / "bp", model="bandpower_lr", report=False), task=small)
    assert eeg.split_hash == bp.split_hash
    assert set(eeg.aggregate) == set(bp.aggregate) == METRIC_KEYS
    assert load_classifier(eeg.per_seed[0]["model_dir"]).kind == "baseline"


def test_python_api_mirrors_run_finetune(task, tmp_path):
    import neuript

    small = thin(subset_subjects(task, 1), 2)
    result = neuript.finetune(small, model="bandpower_lr", out_dir=str(tmp_path / "api"),
                              seeds=[1, 2], train={"epochs": 1}, report=False)
    assert [row["seed"] for row in result.per_seed] == [1, 2]
    assert result.aggregate["balanced_accuracy"]["n"] == 2
    config = json.loads((tmp_path / "api" / "config.json").read_text())
    assert config["train"]["epochs"] == 1 and config["task"] == "mental_arithmetic"
    assert callable(neuript.predict) and callable(neuript.embed) and callable(neuript.evaluate)
    with pytest.raises(NeuriptError, match="unknown option"):
        neuript.finetune(small, learning_rate=1.0)


def test_time_bound_stops_inside_an_epoch_and_still_selects(task, tmp_path):
    small = subset_subjects(task, 1)
    cfg = micro_cfg(tmp_path / "run", report=False,
                    train=TrainConfig(batch_size=8, epochs=50, max_minutes=0.02, threads=1))
    result = run_finetune(cfg, task=small)
    row = result.per_seed[0]
    assert row["stopped_by"] == "max_minutes"
    curves = read_jsonl(tmp_path / "run" / "seed_3" / "curves.jsonl")
    assert len(curves) == row["epochs_run"] >= 1 and row["best_epoch"] >= 1
    assert set(row["test"]) == METRIC_KEYS
