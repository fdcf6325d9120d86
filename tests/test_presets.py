"""Presets and parameter counts (neuript.model.presets) against a hand count of the paper."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neuript.config import ModelConfig
from neuript.errors import NeuriptError
from neuript.model.embed import TokenEmbedding
from neuript.model.encoder import NeurIPTEncoder
from neuript.model.presets import PRESETS, count_parameters, preset

N_LOBES = 5  # IILP lobes of the 20-channel TCP montage


def finetune_model(cfg: ModelConfig) -> nn.Module:
    """Embedding + encoder + the IILP linear head (5 lobes x levels x d -> 2 classes)."""
    head = nn.Linear(N_LOBES * cfg.n_levels * cfg.d_model, 2)
    return nn.ModuleList([TokenEmbedding(cfg.d_model), NeurIPTEncoder(cfg), head])


def hand_count(cfg: ModelConfig) -> tuple[int, int]:
    """Count the paper architecture from its description, layer by layer."""
    d, moe = cfg.d_model, cfg.moe
    norm = 2 * d
    attention = 4 * d * d + 4 * d  # fused qkv + out, with biases
    swiglu = lambda hidden: 3 * d * hidden  # noqa: E731  (w_in 2·hidden·d, w_out d·hidden)
    total = activated = 2 * d  # Linear(1 -> d)
    for factor, n_experts in zip(cfg.merge_factors, moe.experts_per_block):
        block = 0
        if factor > 1:
            block += 2 * factor * d + factor * d * d + d  # LayerNorm(m·d) + Linear(m·d -> d)
        block += 2 * (attention + 2 * norm)
        if n_experts == 0:
            total += block + 2 * swiglu(cfg.d_ff)
            activated += block + 2 * swiglu(cfg.d_ff)
            continue
        k = math.ceil(n_experts / 2)
        layer = swiglu(moe.shared_hidden) + d * n_experts  # shared expert + router
        total += block + 2 * (layer + n_experts * swiglu(moe.expert_hidden))
        activated += block + 2 * (layer + k * swiglu(moe.expert_hidden))
    head = N_LOBES * cfg.n_levels * d * 2 + 2
    return total + head, activated + head


def test_paper_preset_has_73_5_million_activated_parameters() -> None:
    cfg = preset("paper")
    with torch.device("meta"):
        model = finetune_model(cfg)
    count = count_parameters(model, cfg, n_channels=20)
    assert (count.total, count.activated) == hand_count(cfg)
    assert count.activated == pytest.approx(73.5e6, rel=0.01)
    assert count.total == pytest.approx(92e6, rel=0.01)  # "about 92 M in total"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_counts_like_the_hand_count(name: str) -> None:
    cfg = preset(name)
    with torch.device("meta"):
        model = finetune_model(cfg)
    assert tuple(count_parameters(model, cfg)) == hand_count(cfg)


def test_presets_keep_the_progressive_moe_shape() -> None:
    for cfg in PRESETS.values():
        experts = cfg.moe.experts_per_block
        assert experts[0] == 0 and max(experts) >= 2
        assert list(experts) == sorted(experts)  # experts only grow with depth
    assert preset("paper").merge_factors == (1, 4, 1, 2, 1, 2)
    assert preset("small").total_merge == 16 and 320 % preset("small").total_merge == 0


def test_medium_is_the_recipe_studys_d64_model() -> None:
    """The `medium` preset is exactly the `wide64_spectral` row's model (its evidence)."""
    from benchmarks.bench_recipe import VARIANTS, WIDE64

    from neuript.config import override

    overrides = VARIANTS["wide64_spectral"].overrides["model_overrides"]
    assert {k: overrides[k] for k in WIDE64} == WIDE64
    assert override(preset("small"), WIDE64) == preset("medium")
    assert preset("medium").pool_stats == overrides["pool_stats"] == "mean_logstd"


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(NeuriptError, match="paper"):
        preset("huge")
