"""The model's speed paths compute the same function as the plain ones.

Covers: explicit matmul-softmax attention vs SDPA (with and without masks, values and
gradients), dense-gated vs grouped MoE dispatch (outputs, losses, gradients), the integer-bit
dropout (keep rate, scaling, gradient), the fused token embedding, and a block 0 that merges.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from neuript.config import MoEConfig
from neuript.model.attention import Attention, attend, dropout, self_attention_mask
from neuript.model.decoder import DecoderLayer, upsample_level
from neuript.model.embed import TokenEmbedding, temporal_code
from neuript.model.encoder import NeurIPTEncoder
from neuript.model.moe import MoEFeedForward
from neuript.model.presets import preset


def qkv(n: int, h: int, lq: int, lk: int, e: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    return tuple(
        torch.randn(n, h, length, e, generator=gen, dtype=torch.float64, requires_grad=True)
        for length in (lq, lk, lk)
    )


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("length", [5, 20, 33])
def test_math_attention_equals_sdpa_values_and_gradients(masked: bool, length: int) -> None:
    q, k, v = qkv(3, 2, length, length, 8)
    mask = None
    if masked:
        keys = torch.rand(3, length, generator=torch.Generator().manual_seed(1)) > 0.4
        mask = self_attention_mask(keys)
    fused = attend(q, k, v, mask, math_max_keys=0)
    explicit = attend(q, k, v, mask, math_max_keys=10_000)
    torch.testing.assert_close(explicit, fused, atol=1e-10, rtol=1e-10)
    grads_fused = torch.autograd.grad(fused.square().sum(), (q, k, v))
    grads_explicit = torch.autograd.grad(explicit.square().sum(), (q, k, v))
    for a, b in zip(grads_explicit, grads_fused, strict=True):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_attention_module_is_the_same_on_both_kernels() -> None:
    torch.manual_seed(0)
    attn = Attention(16, 4).eval()
    x = torch.randn(4, 24, 16)
    keys = torch.rand(4, 24) > 0.3
    attn.math_max_keys = 0
    fused = attn(x, key_mask=keys), attn(x[:, :5], context=x, key_mask=keys)
    attn.math_max_keys = 1_000
    explicit = attn(x, key_mask=keys), attn(x[:, :5], context=x, key_mask=keys)
    for a, b in zip(explicit, fused, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def moe_pair(gate: str, n_experts: int) -> MoEFeedForward:
    torch.manual_seed(3)
    cfg = MoEConfig(experts_per_block=(n_experts,), expert_hidden=6, shared_hidden=5, gate=gate)
    return MoEFeedForward(8, n_experts, cfg).double()


@pytest.mark.parametrize("gate", ["renorm", "softmax"])
@pytest.mark.parametrize("n_experts", [2, 3, 6])
def test_dense_and_grouped_moe_dispatch_agree(gate: str, n_experts: int) -> None:
    layer = moe_pair(gate, n_experts).eval()
    x = torch.randn(2, 37, 8, dtype=torch.float64)
    results = {}
    for mode in ("sparse", "dense"):
        layer.dispatch = mode
        layer.zero_grad()
        out = layer(x)
        (out.y.sin().sum() + out.aux_loss).backward()
        grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
        results[mode] = (out, grads)
    (sparse, g_sparse), (dense, g_dense) = results["sparse"], results["dense"]
    torch.testing.assert_close(dense.y, sparse.y, atol=1e-12, rtol=1e-10)
    for field in ("aux_loss", "importance_loss", "balance_loss", "load"):
        torch.testing.assert_close(getattr(dense, field), getattr(sparse, field))
    for name in g_sparse:
        torch.testing.assert_close(g_dense[name], g_sparse[name], atol=1e-12, rtol=1e-10)


def test_dense_dispatch_gives_unselected_experts_zero_gradient() -> None:
    layer = moe_pair("renorm", 4).eval()
    layer.dispatch = "dense"
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0, 0] = 50.0  # tokens with x[0] > 0 pick experts 0 and one other
    x = torch.randn(16, 8, dtype=torch.float64).abs()
    layer(x).y.sum().backward()
    chosen = layer.router(x).topk(2, dim=-1).indices.unique()
    for e in range(4):
        used = bool((chosen == e).any())
        assert bool(layer.w_in.grad[e].abs().sum() > 0) == used, e


def test_auto_dispatch_is_grouped_in_eager_mode_and_capacity_forces_grouped() -> None:
    layer = moe_pair("renorm", 4)
    assert not layer.use_dense()
    layer.dispatch = "dense"
    assert layer.use_dense()
    capped = MoEFeedForward(8, 4, MoEConfig(experts_per_block=(4,), capacity="n_over_e"))
    capped.dispatch = "dense"
    assert not capped.use_dense()


def test_dropout_keep_rate_scale_and_gradient() -> None:
    torch.manual_seed(0)
    p = 0.1
    x = torch.ones(200_000, requires_grad=True)
    y = dropout(x, p, True)
    kept = y != 0
    n = x.numel()
    # keep rate within 5 binomial standard deviations of 1 - p
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * ((p * (1 - p) / n) ** 0.5)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # d(x·scale)/dx = scale
    assert torch.equal(dropout(x, p, False), x)
    assert not torch.equal(dropout(x, p, True), dropout(x, p, True))


def test_token_embedding_is_the_linear_map() -> None:
    torch.manual_seed(0)
    emb = TokenEmbedding(12)
    x = torch.randn(2, 3, 7)
    expected = F.linear(x.unsqueeze(-1), emb.proj.weight, emb.proj.bias)
    torch.testing.assert_close(emb(x), expected)


def test_block0_merge_sees_the_temporal_code_per_sample() -> None:
    cfg = dataclasses.replace(preset("tiny"), merge_factors=(2, 2, 1), dropout=0.0)
    torch.manual_seed(0)
    enc = NeurIPTEncoder(cfg).eval()
    b, c, t, d = 2, 3, 8, cfg.d_model
    tokens = torch.randn(b, c, t, d)
    positions = torch.randn(b, c, 3) * 0.05
    channel_mask = torch.ones(b, c, dtype=torch.bool)
    seen = []
    enc.blocks[0].merge.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    out = enc(tokens, positions, channel_mask)
    torch.testing.assert_close(seen[0], tokens + temporal_code(t, d))
    assert [lvl.shape[2] for lvl in out.levels] == [8, 4, 2, 2]
    # shifting every sample by one position changes the merged tokens: order is visible
    shifted = enc(tokens.roll(1, dims=2), positions, channel_mask)
    assert not torch.allclose(shifted.levels[1], out.levels[1].roll(1, dims=2), atol=1e-3)


def test_decoder_cross_attention_on_level_equals_upsampled_level() -> None:
    cfg = dataclasses.replace(preset("tiny"), dropout=0.0)
    torch.manual_seed(0)
    layer = DecoderLayer(cfg.d_model, cfg.n_heads, cfg.d_ff, 0.0).eval()
    b, c, t, d = 2, 3, 12, cfg.d_model
    queries, level = torch.randn(b, c, t, d), torch.randn(b, c, 3, d)
    level_mask = torch.rand(b, c, 3) > 0.5
    blank = torch.randn(d)
    channel_mask = torch.tensor([[True, True, False], [True, True, True]])
    blanked = torch.where(level_mask[..., None], blank, level)
    compact = layer(queries, blanked, channel_mask)
    explicit = layer(queries, upsample_level(level, level_mask, blank, t), channel_mask)
    for a, e in zip(compact, explicit, strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)
