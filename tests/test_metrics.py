"""Tests of neuript.train.metrics against hand-computed values and numpy/scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from neuript.errors import NeuriptError
from neuript.train.metrics import aggregate, classification_metrics, format_results_table


def _mann_whitney_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """AUROC as the fraction of (positive, negative) pairs ranked correctly (ties count 1/2)."""
    pos, neg = scores[positive], scores[~positive]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return wins / (pos.size * neg.size)


def test_binary_metrics_match_hand_computation():
    """y = [0, 0, 1, 1, 1], p(class 1) = [.1, .6, .4, .8, .9] → predictions [0, 1, 0, 1, 1].

    By hand: recalls 1/2 and 2/3 → balanced accuracy 7/12; 5 of the 6 (pos, neg) pairs are
    ordered → AUROC 5/6; ranking P P N P N → AP = 1/3·1 + 1/3·1 + 1/3·3/4 = 11/12;
    p_o = 3/5, p_e = (2/5)² + (3/5)² = 13/25 → κ = 1/6; per-class F1 1/2 and 2/3 weighted by
    2/5 and 3/5 → 3/5.
    """
    y = np.array([0, 0, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    scores = classification_metrics(y, np.stack([1 - p1, p1], axis=1), n_classes=2)
    assert list(scores) == ["balanced_accuracy", "auroc", "auc_pr", "cohen_kappa", "weighted_f1"]
    expected = {"balanced_accuracy": 7 / 12, "auroc": 5 / 6, "auc_pr": 11 / 12,
                "cohen_kappa": 1 / 6, "weighted_f1": 3 / 5}
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, abs=1e-12), key


def test_multiclass_metrics_match_hand_computation():
    """y = [0, 1, 2, 2], argmax predictions [0, 2, 2, 1].

    By hand: recalls 1, 0, 1/2 → balanced accuracy 1/2; p_o = 1/2, marginals (1, 1, 2)/4 for
    both → p_e = 6/16 → κ = (1/2 − 3/8)/(5/8) = 1/5; F1 per class 1, 0, 1/2 with weights
    1/4, 1/4, 1/2 → 1/2. AUROC: mean of one-vs-rest Mann-Whitney AUCs computed here.
    """
    y = np.array([0, 1, 2, 2])
    proba = np.array([
        [0.7, 0.2, 0.1],
        [0.2, 0.3, 0.5],
        [0.1, 0.3, 0.6],
        [0.3, 0.4, 0.3],
    ])
    scores = classification_metrics(y, proba, n_classes=3)
    assert scores["balanced_accuracy"] == pytest.approx(0.5)
    assert scores["cohen_kappa"] == pytest.approx(0.2)
    assert scores["weighted_f1"] == pytest.approx(0.5)
    ovr = [_mann_whitney_auc(proba[:, k], y == k) for k in range(3)]
    assert scores["auroc"] == pytest.approx(np.mean(ovr))
    assert "auc_pr" not in scores


def test_degenerate_single_class_gives_nan_not_crash():
    y = np.ones(4, dtype=int)
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7]])
    scores = classification_metrics(y, proba, n_classes=2)
    assert math.isnan(scores["auroc"]) and math.isnan(scores["auc_pr"])
    assert scores["balanced_accuracy"] == pytest.approx(0.75)
    multi = classification_metrics(np.array([0, 0, 1]), np.full((3, 3), 1 / 3), n_classes=3)
    assert math.isnan(multi["auroc"])
    assert multi["balanced_accuracy"] == pytest.approx(0.5)  # ties → class 0: recalls 1 and 0


def test_bad_inputs_raise_named_errors():
    with pytest.raises(NeuriptError, match="proba"):
        classification_metrics(np.array([0, 1]), np.zeros((2, 3)), n_classes=2)
    with pytest.raises(NeuriptError, match="class indices"):
        classification_metrics(np.array([0, 2]), np.zeros((2, 2)), n_classes=2)


def test_aggregate_matches_numpy_and_scipy():
    values = [0.70, 0.80, 0.75, 0.78]
    summary = aggregate([{"balanced_accuracy": v, "auroc": 1 - v} for v in values])
    ba = summary["balanced_accuracy"]
    arr = np.array(values)
    low, high = stats.t.interval(0.95, df=3, loc=arr.mean(), scale=stats.sem(arr))
    assert ba["mean"] == pytest.approx(arr.mean())
    assert ba["std"] == pytest.approx(arr.std(ddof=1))
    assert (ba["ci95_low"], ba["ci95_high"]) == pytest.approx((low, high))
    assert ba["n"] == 4
    assert summary["auroc"]["mean"] == pytest.approx(1 - arr.mean())


def test_aggregate_one_seed_and_nan_seeds():
    one = aggregate([{"auroc": 0.9}])["auroc"]
    assert one == {"mean": 0.9, "std": 0.0, "ci95_low": 0.9, "ci95_high": 0.9, "n": 1}
    mixed = aggregate([{"auroc": 0.6}, {"auroc": float("nan")}, {"auroc": 0.8}])["auroc"]
    assert mixed["n"] == 2 and mixed["mean"] == pytest.approx(0.7)
    with pytest.raises(NeuriptError, match="keys"):
        aggregate([{"auroc": 0.6}, {"kappa": 0.1}])


def test_format_results_table():
    rows = {
        "eegnet": aggregate([{"balanced_accuracy": 0.6, "auroc": 0.7},
                             {"balanced_accuracy": 0.7, "auroc": 0.8}]),
        "neuript": aggregate([{"balanced_accuracy": 0.8, "auroc": float("nan")}]),
    }
    table = format_results_table(rows, digits=1)
    assert table == (
        "| model | balanced_accuracy | auroc |\n"
        "|---|---|---|\n"
        "| eegnet | 65.0 ± 7.1 | 75.0 ± 7.1 |\n"
        "| neuript | 80.0 ± 0.0 | – |\n"
    )
