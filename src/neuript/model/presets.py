"""Model size presets and the activated-parameter count (NEURIPT_SPEC §3).

``paper``  the published model: d = 768, six blocks, experts (0, 0, 2, 4, 4, 6), about 73.5 M
           activated parameters in the fine-tuning model (embedding + encoder + IILP head).
``small``  sized to fine-tune MentalArithmetic (20 channels × 320 samples, about 1,300 training
           windows) on a 2-core CPU in minutes and to infer a window quickly: d = 32, two
           heads of 16, dense SwiGLU hidden 64, routed experts hidden 32,
           shared expert hidden 64, the paper's six blocks and PMoE layout (experts
           0, 0, 2, 4, 4, 6), and merges (4, 2, 1, 2, 1, 1) (the same total of 16, so the same
           window lengths work). Why: one token per sample makes block 0 the cost centre
           (T = 320 tokens per channel, attention ∝ L²); merging by 4 at the start of block 0
           puts its time attention on 80 tokens (each still built from its four samples by the
           merge projection) and cuts the token-block count from 11,600 to 4,400 per window; halving
           the width quarters every projection. Forward cost falls from about 2.0 GFLOP to about
           0.26 GFLOP per window (timings: benchmarks/results/speed.md). Two heads of
           16 rather than eight of 4: head width 4 wastes the matmul units and the fused
           attention's per-head overhead grows with H.
           The embedding level (level 0) stays at full resolution: one token per sample, with
           the temporal code added per sample before block 0's merge.
           IILP pools the time mean and the log standard deviation of every level
           (``pool_stats="mean_logstd"``), chosen by the fine-tuning recipe study
           (docs/recipe.md, benchmarks/results/recipe.md).
           The pretraining decoder is strided (``decoder_stride=8``: each decoder token predicts 8
           samples, 125 ms at 64 Hz) **[ours]**, several times faster per AAMP step than the
           paper's one-token-per-sample decoder (measured in benchmarks/results/
           pretrain_speed.md); the encoder and classifier are unchanged by it.
``medium`` ``small`` at twice the width: d = 64, four heads of 16, dense SwiGLU hidden 128,
           routed experts hidden 64, shared expert hidden 128; the same blocks, merges, PMoE
           layout, pooling and decoder. It is the recipe study's ``wide64_spectral`` row: from
           scratch on MentalArithmetic's subject CV (subject-equalised spectra, 12 cells) it
           beats ``small`` from scratch by +5.7 points [+1.5, +9.9] and is level with
           ShallowConvNet (docs/recipe.md, tenth pass), at about 1.5x ``small``'s time per
           fine-tuning run there (12.6 against 8.6 minutes). ``small`` stays the default:
           the shipped ``neuript-small`` checkpoint is ``small``, and fine-tuning from it is
           the better NeurIPT row still.
``tiny``   for tests: d = 32, three blocks, experts (0, 2, 3) so dense, even-E and odd-E MoE
           layers are all exercised.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import NamedTuple

from torch import nn

from neuript.config import ModelConfig, MoEConfig
from neuript.errors import check_option

PRESETS: Mapping[str, ModelConfig] = types.MappingProxyType(
    {
        "paper": ModelConfig(
            d_model=768,
            n_heads=8,
            d_ff=768,
            merge_factors=(1, 4, 1, 2, 1, 2),
            moe=MoEConfig(
                experts_per_block=(0, 0, 2, 4, 4, 6), expert_hidden=512, shared_hidden=768
            ),
        ),
        "small": ModelConfig(
            d_model=32,
            n_heads=2,
            d_ff=64,
            merge_factors=(4, 2, 1, 2, 1, 1),
            moe=MoEConfig(experts_per_block=(0, 0, 2, 4, 4, 6), expert_hidden=32, shared_hidden=64),
            pool_stats="mean_logstd",
            decoder_stride=8,
        ),
        "medium": ModelConfig(
            d_model=64,
            n_heads=4,
            d_ff=128,
            merge_factors=(4, 2, 1, 2, 1, 1),
            moe=MoEConfig(experts_per_block=(0, 0, 2, 4, 4, 6), expert_hidden=64,
                          shared_hidden=128),
            pool_stats="mean_logstd",
            decoder_stride=8,
        ),
        "tiny": ModelConfig(
            d_model=32,
            n_heads=4,
            d_ff=32,
            merge_factors=(1, 2, 2),
            moe=MoEConfig(experts_per_block=(0, 2, 3), expert_hidden=16, shared_hidden=32),
        ),
    }
)
"""Read-only registry of the named model configs."""


def preset(name: str) -> ModelConfig:
    """Return the :class:`~neuript.config.ModelConfig` registered as ``name``."""
    return PRESETS[check_option("preset name", name, tuple(PRESETS))]


class ParamCount(NamedTuple):
    """Parameter counts of a module."""

    total: int
    """Every parameter."""
    activated: int
    """Parameters one token uses: every MoE layer counts its shared expert, router and ``k`` of
    its ``E`` routed experts; everything else counts fully."""


def count_parameters(module: nn.Module, cfg: ModelConfig, n_channels: int = 20) -> ParamCount:
    """Count the total and activated parameters of ``module``.

    Parameters
    ----------
    module : nn.Module
        Any module containing NeurIPT parts (embedding, encoder, head, ...).
    cfg : ModelConfig
        The config it was built from (checked against its MoE layers).
    n_channels : int
        Input channels. NeurIPT has no per-channel parameters (positions are fixed codes), so
        the count does not depend on it; it is kept for modules whose heads do.

    Returns
    -------
    ParamCount
    """
    from neuript.model.moe import MoEFeedForward  # local: presets must import without torch.nn

    total = sum(p.numel() for p in module.parameters())
    idle = 0
    for layer in module.modules():
        if isinstance(layer, MoEFeedForward):
            assert layer.cfg == cfg.moe, "count_parameters: module built from another config"
            per_expert = layer.w_in[0].numel() + layer.w_out[0].numel()
            idle += (layer.n_experts - layer.k) * per_expert
    del n_channels
    return ParamCount(total, total - idle)


def describe_preset(name: str, n_classes: int = 2) -> str:
    """The text of ``neuript info``: the preset's shape and the parameter counts of its
    fine-tuning model (embedding + encoder + IILP head over the functional lobes).

    NeurIPT has no per-channel parameters, so the counts hold for any montage that reaches
    every lobe.
    """
    from neuript.data.montage import FUNCTIONAL_LOBES  # local: as count_parameters
    from neuript.model.neuript import NeurIPTClassifier

    cfg = preset(name)
    count = count_parameters(NeurIPTClassifier(cfg, n_classes, FUNCTIONAL_LOBES), cfg)
    return "\n".join([
        f"preset {name}: d_model={cfg.d_model}, blocks={cfg.depth}, "
        f"experts={cfg.moe.experts_per_block}",
        f"total parameters:     {count.total:,} ({count.total / 1e6:.1f} M)",
        f"activated parameters: {count.activated:,} ({count.activated / 1e6:.1f} M)",
    ])
