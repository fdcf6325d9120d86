"""The SVM probe of frozen features (paper protocol of the masking ablation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _finetune_data import MICRO, reduced_task
from neuript.config import override
from neuript.data.montage import pooling_groups
from neuript.data.preprocess import alaw
from neuript.errors import NeuriptError
from neuript.model.neuript import NeurIPTClassifier
from neuript.model.presets import preset
from neuript.train.probe import DEFAULT_C, run_probe, svm_probe, task_features


def _synthetic(n: int = 300, shift: float = 4.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    features = rng.normal(0.0, 1.0, (n, 10))
    features[:, 3] += shift * labels  # one informative feature among nine noise features
    features[:, 5] *= 1000.0  # a huge-scale noise feature: the probe standardises
    splits = np.array(["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - 3 * n // 4))
    return features, labels, splits


def test_separable_features_are_found_and_c_chosen_on_validation():
    features, labels, splits = _synthetic()
    result = svm_probe(features, labels, splits, 2)
    assert result.test["balanced_accuracy"] > 0.9 and result.test["auroc"] > 0.95
    assert set(result.val_by_c) == set(DEFAULT_C)
    assert result.val_balanced_accuracy == max(result.val_by_c.values())
    assert result.c in DEFAULT_C and result.n_features == 10
    noise, _, _ = _synthetic(shift=0.0)
    chance = svm_probe(noise, labels, splits, 2)
    assert abs(chance.test["balanced_accuracy"] - 0.5) < 0.15


def test_bad_probe_inputs_are_refused():
    features, labels, splits = _synthetic()
    with pytest.raises(NeuriptError, match="no val windows"):
        svm_probe(features, labels, np.where(splits == "val", "train", splits), 2)
    features[0, 0] = np.nan
    with pytest.raises(NeuriptError, match="NaN"):
        svm_probe(features, labels, splits, 2)


def test_features_come_back_in_task_order(tmp_path):
    """Loader order differs from row order; features must land on their own window."""
    task = reduced_task(tmp_path)
    groups = pooling_groups(list(task.ch_names), task.positions, "functional")
    torch.manual_seed(0)
    model = NeurIPTClassifier(override(preset("tiny"), MICRO), 2, groups.names).eval()
    features = task_features(model, task, batch_size=16)
    assert features.shape == (len(task.labels), 3 * 5 * 16)  # levels x lobes x width
    rows = np.array([0, len(task.labels) // 2, len(task.labels) - 1])
    signals = torch.from_numpy(alaw(task.signals[rows], task.preprocess.alaw_a).astype(np.float32))
    b, c = len(rows), len(task.ch_names)
    positions = torch.as_tensor(task.positions, dtype=torch.float32).expand(b, c, 3)
    with torch.no_grad():
        direct = model(signals, positions, torch.ones(b, c, dtype=torch.bool),
                       torch.as_tensor(groups.mask).expand(b, -1, -1)).features
    np.testing.assert_allclose(features[rows], direct.numpy(), rtol=1e-4, atol=1e-5)
    result = run_probe("scratch", task, preset_name="tiny", cs=(0.01,))
    assert 0.0 <= result.test["balanced_accuracy"] <= 1.0 and result.c == 0.01
