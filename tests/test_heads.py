"""IILP pooling head and the balanced BCE (NEURIPT_SPEC §5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuript.model.heads import (
    PoolingHead,
    balanced_bce,
    cross_entropy,
    group_pool,
    logit_adjustment,
)

torch.set_num_threads(1)


def _loop_pool(tokens: np.ndarray, channel_mask: np.ndarray, group_mask: np.ndarray) -> np.ndarray:
    b, c, _, d = tokens.shape
    out = np.zeros((b, group_mask.shape[1], d))
    for i in range(b):
        for g in range(group_mask.shape[1]):
            members = [j for j in range(c) if group_mask[i, g, j] and channel_mask[i, j]]
            if members:
                out[i, g] = np.mean([tokens[i, j].mean(axis=0) for j in members], axis=0)
    return out


def test_group_pool_matches_loop_and_ignores_padding():
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(3, 6, 8, 5, generator=gen)
    channel_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]],
                                dtype=torch.bool)
    group_mask = torch.rand(3, 4, 6, generator=gen) > 0.4
    group_mask[2, 3] = torch.tensor([False, False, True, True, True, False])  # only padding
    tokens[~channel_mask] = float("nan")  # padded channels may hold anything
    pooled = group_pool(tokens, channel_mask, group_mask)
    expected = _loop_pool(tokens.numpy(), channel_mask.numpy(), group_mask.numpy())
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(pooled[2, 3], torch.zeros(5))


def test_pool_layout_is_level_then_group_then_width():
    head = PoolingHead(d=4, n_levels=2, n_groups=3, n_classes=2)
    levels = [torch.randn(2, 5, 8, 4), torch.randn(2, 5, 2, 4)]
    channel_mask = torch.ones(2, 5, dtype=torch.bool)
    group_mask = torch.zeros(2, 3, 5, dtype=torch.bool)
    group_mask[:, 0, :2] = True
    group_mask[:, 1, 2:] = True
    group_mask[:, 2, :] = True
    features = head.pool(levels, channel_mask, group_mask)
    assert features.shape == (2, head.n_features) == (2, 2 * 3 * 4)
    torch.testing.assert_close(features[:, 4:8], levels[0][:, 2:].mean(dim=(1, 2)))
    torch.testing.assert_close(features[:, 12 + 8:], levels[1].mean(dim=(1, 2)))


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_head_kinds_and_reset(kind):
    head = PoolingHead(d=8, n_levels=3, n_groups=5, n_classes=4, kind=kind, hidden=16).eval()
    features = torch.randn(7, head.n_features)
    assert head.forward_head(features).shape == (7, 4)
    head.reset_classifier(2)
    assert head.forward_head(features).shape == (7, 2)


def test_mean_pooling_is_one_group():
    head = PoolingHead(d=3, n_levels=1, n_groups=1, n_classes=2)
    level = torch.randn(2, 4, 6, 3)
    channel_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    features = head.pool([level], channel_mask, torch.ones(2, 1, 4, dtype=torch.bool))
    torch.testing.assert_close(features[0], level[0, :3].mean(dim=(0, 1)))
    torch.testing.assert_close(features[1], level[1].mean(dim=(0, 1)))


def test_balanced_bce_matches_formula():
    logits = torch.tensor([[0.3, -1.2, 2.0], [1.5, 0.1, -0.4]])
    labels = torch.tensor([2, 0])
    priors = np.array([0.6, 0.3, 0.1])
    k = 0.25
    loss = balanced_bce(logits, labels, torch.tensor(np.log(priors), dtype=torch.float32), k)
    expected = 0.0
    for i in range(2):
        for c in range(3):
            z = logits[i, c].item() + k * (math.log(priors[c]) - math.log(1 - priors[c]))
            p = 1 / (1 + math.exp(-z))
            y = float(labels[i].item() == c)
            expected -= y * math.log(p) + (1 - y) * math.log(1 - p)
    assert loss.item() == pytest.approx(expected / 6, rel=1e-5)
    shift = logit_adjustment(torch.tensor(np.log(priors), dtype=torch.float32), k)
    assert shift[0].item() == pytest.approx(k * math.log(0.6 / 0.4), rel=1e-5)


def test_balanced_bce_with_k0_is_plain_bce_and_ce_is_softmax():
    logits = torch.randn(5, 2)
    labels = torch.tensor([0, 1, 1, 0, 1])
    plain = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nn.functional.one_hot(labels, 2).float()
    )
    torch.testing.assert_close(balanced_bce(logits, labels, torch.log(torch.tensor([.5, .5])), 0.0),
                               plain)
    ce = -torch.log(logits.softmax(dim=-1)[torch.arange(5), labels]).mean()
    torch.testing.assert_close(cross_entropy(logits, labels), ce)


def test_balanced_class_weights_make_each_class_count_equally():
    from neuript.model.heads import balanced_bce, balanced_class_weights, cross_entropy

    weights = balanced_class_weights(torch.tensor([300.0, 100.0, 0.0]))
    torch.testing.assert_close(weights, torch.tensor([400 / 600, 400 / 200, 0.0]))
    # with these weights, 3 windows of class 0 and 1 of class 1 contribute equally
    logits = torch.randn(4, 2)
    labels = torch.tensor([0, 0, 0, 1])
    w = balanced_class_weights(torch.tensor([3.0, 1.0]))
    per_window = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.nn.functional.one_hot(labels, 2).float(), reduction="none"
    ).mean(dim=1)
    expected = (per_window[:3].mean() + per_window[3]) / 2
    got = balanced_bce(logits, labels, torch.log(torch.tensor([0.75, 0.25])), 0.0, w)
    torch.testing.assert_close(got, expected)
    ce = cross_entropy(logits, labels, w)
    nll = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    torch.testing.assert_close(ce, (nll[:3].mean() + nll[3]) / 2)


def test_feature_norms_standardise_or_normalise_the_pooled_vector():
    torch.manual_seed(0)
    features = 5.0 + 0.05 * torch.randn(64, 12)  # offset, tiny spread: as raw pooled features
    standard = PoolingHead(d=4, n_levels=1, n_groups=3, n_classes=2, norm="batch")
    out = standard.norm(features)  # training mode: batch statistics
    assert torch.allclose(out.mean(0), torch.zeros(12), atol=1e-3)
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(12), atol=1e-2)
    one = standard.norm(features[:1])  # one window in training: running statistics, no error
    assert one.shape == (1, 12) and torch.isfinite(one).all()
    layer = PoolingHead(d=4, n_levels=1, n_groups=3, n_classes=2, norm="layer")
    row = layer.norm(features)
    assert torch.allclose(row.mean(1), torch.zeros(64), atol=1e-3)
    plain = PoolingHead(d=4, n_levels=1, n_groups=3, n_classes=2)
    assert torch.equal(plain.norm(features), features)
    layer.reset_classifier(3)  # a new classifier keeps the normalisation
    assert isinstance(layer.norm, torch.nn.LayerNorm) and layer(
        [torch.randn(2, 3, 5, 4)], torch.ones(2, 3, dtype=torch.bool),
        torch.eye(3, dtype=torch.bool).expand(2, 3, 3)).shape == (2, 3)
    with pytest.raises(Exception, match="head_norm"):
        PoolingHead(d=4, n_levels=1, n_groups=3, n_classes=2, norm="group")
