"""The model's speed paths compute the same function as the plain ones.

Covers: explicit matmul-softmax attention vs SDPA (with and without masks, values and
gradients), dense-gated vs grouped MoE dispatch (outputs, losses, gradients), the integer-bit
dropout (keep rate, scaling, gradient), the fused token embedding, a block 0 that merges, and
every ``fast_paths`` switch (:mod:`neuript.model.fastpaths`): the head-major attention kernel
(self/cross, masks, blocks smaller and larger than a sequence), the two-pass variance of the
pooling head, reused position codes, and whole models (classifier and pretraining, padded
channels, token masks) against their plain path, values and gradients.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from neuript.config import MaskConfig, MoEConfig
from neuript.model import head_major
from neuript.model.attention import (
    Attention,
    attend,
    cross_attention_mask,
    dropout,
    self_attention_mask,
)
from neuript.model.decoder import DecoderLayer, upsample_level
from neuript.model.embed import TokenEmbedding, temporal_code
from neuript.model.encoder import NeurIPTEncoder
from neuript.model.export import exportable_copy
from neuript.model.fastpaths import fast_paths, set_fast_paths
from neuript.model.heads import time_pool
from neuript.model.masking import make_mask
from neuript.model.moe import MoEFeedForward
from neuript.model.neuript import NeurIPTClassifier, NeurIPTPretrain
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


# ---- the fast_paths switch ------------------------------------------------------------------
@pytest.fixture(autouse=True)
def one_thread():
    """The head-major kernel is taken on one intra-op thread only."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def grads_of(loss: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, tensors, allow_unused=True))


def assert_all_close(a: list, b: list, tol: float = 1e-10) -> None:
    for x, y in zip(a, b, strict=True):
        if x is None or y is None:
            assert x is None and y is None
        else:
            torch.testing.assert_close(x, y, atol=tol, rtol=tol)


@pytest.mark.parametrize("block_scores", [1, 200, 2**17])
@pytest.mark.parametrize("kind", ["self", "self_masked", "cross", "cross_masked"])
def test_head_major_attention_equals_plain_values_and_gradients(
    monkeypatch, kind: str, block_scores: int
) -> None:
    # block_scores 1: one head per block; 200: two heads; 2**17: several whole sequences
    monkeypatch.setattr(head_major, "CHUNK_SCORES", block_scores)
    torch.manual_seed(0)
    attn = Attention(32, 4).double()
    query = torch.randn(5, 11, 32, dtype=torch.float64, requires_grad=True)
    context = torch.randn(5, 7, 32, dtype=torch.float64, requires_grad=True)
    cross = kind.startswith("cross")
    keys = torch.rand(5, 7 if cross else 11) > 0.5 if kind.endswith("masked") else None
    if keys is not None:
        keys[0] = False  # every key hidden: itself (self) or the all-keys fallback (cross)
    inputs = [query, context] if cross else [query]
    results = []
    for fast in (True, False):
        attn.fast_paths = fast
        assert attn.use_head_major(query) is fast
        out = attn(query, context if cross else None, key_mask=keys)
        results.append([out, *grads_of(out.sin().sum(), inputs + list(attn.parameters()))])
    assert_all_close(results[0], results[1])


def test_head_major_kernel_equals_attend_directly() -> None:
    torch.manual_seed(1)
    n, h, lq, lk, e = 3, 2, 6, 9, 4
    q, kv = torch.randn(n, lq, h * e, dtype=torch.float64), torch.randn(n, lk, 2 * h * e,
                                                                           dtype=torch.float64)
    mask = cross_attention_mask(torch.rand(n, lk) > 0.3)
    out = head_major.head_major_attention(q, kv, mask, h)
    k, v = kv.chunk(2, dim=-1)
    heads = [x.unflatten(-1, (h, e)).transpose(1, 2) for x in (q, k, v)]
    expected = attend(*heads, mask).transpose(1, 2).flatten(2)
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)


def test_head_major_is_not_taken_where_it_does_not_apply() -> None:
    wide, narrow = Attention(32, 2), Attention(32, 4)  # heads of 16 and of 8
    x = torch.randn(2, 5, 32)
    assert not wide.use_head_major(x) and narrow.use_head_major(x)
    assert not narrow.use_head_major(x.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not narrow.use_head_major(x)
    torch.set_num_threads(2)
    assert not narrow.use_head_major(x)


def test_two_pass_variance_equals_tensor_var() -> None:
    # the statistic is computed in float32 either way: equal to float32 rounding
    tokens = torch.randn(2, 3, 40, 8) * 3 + 5
    strided = rearrange(torch.randn(2 * 40, 3, 8), "(b l) c d -> b c l d", b=2)
    for x in (tokens, strided):
        torch.testing.assert_close(time_pool(x, "mean_logstd", two_pass=True),
                                   time_pool(x, "mean_logstd"), atol=1e-6, rtol=1e-6)


def test_position_codes_are_reused_only_while_the_montage_repeats() -> None:
    cfg = dataclasses.replace(preset("tiny"), dropout=0.0)
    enc = NeurIPTEncoder(cfg)
    positions, mask = torch.randn(2, 3, 3) * 0.05, torch.ones(2, 3, dtype=torch.bool)
    first = enc.space_code(positions, mask)
    assert enc.space_code(positions.clone(), mask) is first
    moved = positions.clone()
    moved[1, 2, 0] += 0.01
    for pos, msk in ((moved, mask), (positions, mask & torch.tensor([True, True, False]))):
        torch.testing.assert_close(enc.space_code(pos, msk), enc.spatial(pos, msk))
    assert enc.time_code(8, torch.device("cpu")) is enc.time_code(8, torch.device("cpu"))
    torch.testing.assert_close(enc.time_code(8, torch.device("cpu")), temporal_code(8, 32))
    enc.fast_paths = False
    assert enc.time_code(8, torch.device("cpu")) is not enc.time_code(8, torch.device("cpu"))


def test_switch_reaches_every_fast_path_and_restores_them() -> None:
    model = NeurIPTClassifier(preset("tiny"), 2, ("all",))
    switched = [m for m in model.modules() if hasattr(m, "fast_paths")]
    kinds = {type(m).__name__ for m in switched}
    assert {"Attention", "NeurIPTEncoder", "PoolingHead"} <= kinds
    model.encoder.blocks[0].time_attn.fast_paths = False
    with fast_paths(model, False):
        assert not any(m.fast_paths for m in switched)
    assert not model.encoder.blocks[0].time_attn.fast_paths
    assert sum(m.fast_paths for m in switched) == len(switched) - 1
    set_fast_paths(model, True)
    assert all(m.fast_paths for m in switched)
    assert not any(m.fast_paths for m in exportable_copy(model).modules()
                   if hasattr(m, "fast_paths"))


def classifier_batch(b: int = 2, c: int = 5, t: int = 32) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(4)
    signals = torch.randn(b, c, t, generator=gen, dtype=torch.float64)
    positions = torch.randn(b, c, 3, generator=gen, dtype=torch.float64) * 0.05
    channel_mask = torch.ones(b, c, dtype=torch.bool)
    channel_mask[1, -2:] = False  # padded channels
    group_mask = torch.ones(b, 2, c, dtype=torch.bool)
    group_mask[:, 0, :2] = False
    return signals, positions, channel_mask, group_mask


@pytest.mark.parametrize("train", [False, True])
def test_classifier_fast_paths_equal_plain_values_and_gradients(train: bool) -> None:
    # tiny: heads of 8 (head-major kernel), MoE blocks (router noise in training: the same draws
    # from the same seed), and the log-std statistic (two-pass variance, in float32: hence the
    # tolerance)
    cfg = dataclasses.replace(preset("tiny"), dropout=0.0, pool_stats="mean_logstd")
    torch.manual_seed(0)
    model = NeurIPTClassifier(cfg, 3, ("a", "b")).double().train(train)
    batch = classifier_batch()
    params = list(model.parameters())
    results = []
    for fast in (True, False, True):  # the third run reuses the cached codes
        set_fast_paths(model, fast)
        torch.manual_seed(1)
        out = model(*batch)
        loss = out.logits.square().sum() + out.aux_loss
        results.append([out.logits, out.aux_loss, *grads_of(loss, params)])
    assert_all_close(results[0], results[1], tol=1e-5)
    assert_all_close(results[2], results[0], tol=0.0)


def test_pretraining_fast_paths_equal_plain_values_and_gradients() -> None:
    # token masks hide keys in the time stage; the decoder cross-attends to every level
    cfg = dataclasses.replace(preset("tiny"), dropout=0.0)
    torch.manual_seed(0)
    model = NeurIPTPretrain(cfg, MaskConfig()).double()
    signals, positions, channel_mask, _ = classifier_batch()
    spec = make_mask(signals, model.mask_cfg, torch.Generator().manual_seed(5), channel_mask)
    params = list(model.parameters())
    results = []
    for fast in (True, False):
        set_fast_paths(model, fast)
        torch.manual_seed(1)  # router noise
        out = model(signals, positions, channel_mask, generator=torch.Generator().manual_seed(6),
                    mask=spec)
        results.append([out.loss, out.pred, *grads_of(out.loss, params)])
    assert_all_close(results[0], results[1])
