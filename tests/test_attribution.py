"""Lobe occlusion: the map follows what the head reads, and a real model finds a planted signal."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from _finetune_data import MICRO, reduced_task
from neuript.train.attribution import balanced_mean_ci, occlude_lobes

LOBES = ("Frontal", "Central-Parietal", "Occipital", "Temporal-L", "Temporal-R")


def test_a_head_reading_one_lobe_puts_every_share_there():
    rng = np.random.default_rng(0)
    n_levels, g, width = 2, len(LOBES), 3
    feats = rng.normal(size=(400, n_levels * g * width)).astype(np.float32)
    weight = torch.zeros(2, n_levels, g, width)
    weight[1, :, 2, :] = 2.0  # class 1 logit reads lobe 2 (Occipital) only
    weight = weight.view(2, -1)
    labels = (feats @ weight[1].numpy() > 0).astype(np.int64)
    result = occlude_lobes(lambda f: f @ weight.T, feats, labels, feats.mean(0), LOBES, n_levels)
    assert result.share[2] == pytest.approx(1.0)
    np.testing.assert_array_equal(result.drop[[0, 1, 3, 4]], 0.0)  # the head never reads them
    assert result.ci95[2, 0] > 0 and result.bacc_drop[2] > 0.3
    assert list(result.used) == [False, False, True, False, False]
    body = result.to_dict()
    assert set(body["lobes"]) == set(LOBES) and body["n_windows"] == 400


def test_balanced_mean_weighs_classes_equally():
    values = np.array([1.0] * 90 + [-1.0] * 10)
    labels = np.array([0] * 90 + [1] * 10)
    mean, lo, hi = balanced_mean_ci(values, labels)
    assert mean == 0.0 and lo == hi == 0.0  # no spread inside each class


def planted(task, amplitude_uv: float, seed: int = 0):
    """Random balanced labels; class 1 windows get a 13-Hz wave on the four occipital pairs."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(len(task.labels)) % 2).astype(np.int64)
    t = np.arange(task.signals.shape[2]) / task.preprocess.sfreq_hz
    phase = rng.uniform(0, 2 * np.pi, (len(labels), 1))
    wave = amplitude_uv * np.sin(2 * np.pi * 13.0 * t[None, :] + phase)
    occipital = np.array([name.endswith(("O1", "O2")) for name in task.ch_names])
    signals = task.signals.copy()
    signals[:, occipital, :] += (wave * labels[:, None])[:, None, :].astype(np.float32)
    return dataclasses.replace(task, signals=signals, labels=labels, class_names=("a", "b"))


@pytest.fixture(scope="module")
def base_task(tmp_path_factory):
    return reduced_task(tmp_path_factory.mktemp("eegmat"))


def finetuned_occlusion(task, out):
    from neuript.config import OptimConfig, TrainConfig
    from neuript.train.finetune import FinetuneRunConfig, run_finetune

    cfg = FinetuneRunConfig(task=task.name, preset="tiny",
                            model_overrides={**MICRO, "pool_stats": "mean_logstd"},
                            seeds=(0,), out_dir=str(out), report=False,
                            optim=OptimConfig(lr=3e-3),
                            train=TrainConfig(batch_size=16, epochs=4, threads=1, ckpt_every=0))
    result = run_finetune(cfg, task=task)
    row = result.per_seed[0]
    saved = json.loads((result.run_dir / "metrics.json").read_text())
    assert saved["per_seed"][0]["lobe_occlusion"] == row["lobe_occlusion"]
    return row


def test_occlusion_finds_the_planted_occipital_signal(base_task, tmp_path):
    row = finetuned_occlusion(planted(base_task, 20.0), tmp_path / "run")
    assert row["val"]["balanced_accuracy"] > 0.8  # the model learned the planted wave
    lobes = row["lobe_occlusion"]["lobes"]
    best = max(lobes, key=lambda name: lobes[name]["drop"])
    assert best == "Occipital", {k: round(v["drop"], 3) for k, v in lobes.items()}
    assert [name for name, v in lobes.items() if v["used"]] == ["Occipital"] or \
        lobes["Occipital"]["used"]


def test_a_model_at_chance_shows_no_lobe_above_its_interval(base_task, tmp_path):
    row = finetuned_occlusion(planted(base_task, 0.0, seed=1), tmp_path / "run")
    assert abs(row["val"]["balanced_accuracy"] - 0.5) < 0.15
    lobes = row["lobe_occlusion"]["lobes"]
    assert not any(v["used"] for v in lobes.values()), lobes
