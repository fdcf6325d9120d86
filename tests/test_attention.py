"""Attention (neuript.model.attention) against a hand-written softmax(QKᵀ/√e)V reference."""

from __future__ import annotations

import math

import torch

from neuript.model.attention import Attention


def reference(attn: Attention, query, context=None, allowed=None):
    """Loop-free textbook attention with an explicit (N, Lq, Lk) allowed matrix."""
    d, h = attn.d, attn.n_heads
    w, b = attn.qkv.weight, attn.qkv.bias
    ctx = query if context is None else context
    q = query @ w[:d].T + b[:d]
    k = ctx @ w[d : 2 * d].T + b[d : 2 * d]
    v = ctx @ w[2 * d :].T + b[2 * d :]
    n, lq, lk = query.shape[0], query.shape[1], ctx.shape[1]
    q, k, v = (t.reshape(n, -1, h, d // h).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)  # (N, H, Lq, Lk)
    if allowed is not None:
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, lq, d)
    del lk
    return out @ attn.out.weight.T + attn.out.bias


def make(d: int = 16, heads: int = 4) -> Attention:
    torch.manual_seed(0)
    return Attention(d, heads, dropout=0.1).eval()


def test_self_attention_matches_reference() -> None:
    attn = make()
    x = torch.randn(3, 7, 16)
    torch.testing.assert_close(attn(x), reference(attn, x), atol=1e-5, rtol=1e-5)


def test_key_mask_hides_keys_but_each_token_sees_itself() -> None:
    attn = make()
    x = torch.randn(2, 6, 16)
    keys = torch.tensor([[True, False, True, False, True, True], [False] * 6])
    allowed = keys[:, None, :] | torch.eye(6, dtype=torch.bool)
    out = attn(x, key_mask=keys)
    torch.testing.assert_close(out, reference(attn, x, allowed=allowed), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()
    # Row 1 has every key hidden: each token attends only to itself -> out_proj(v_self).
    v_self = x[1] @ attn.qkv.weight[32:].T + attn.qkv.bias[32:]
    torch.testing.assert_close(out[1], attn.out(v_self), atol=1e-5, rtol=1e-5)


def test_hidden_key_values_do_not_reach_visible_queries() -> None:
    attn = make()
    x = torch.randn(1, 8, 16)
    keys = torch.tensor([[True, True, False, True, False, True, True, True]])
    changed = x.clone()
    changed[0, ~keys[0]] = torch.randn(2, 16) * 10
    a, b = attn(x, key_mask=keys), attn(changed, key_mask=keys)
    torch.testing.assert_close(a[0, keys[0]], b[0, keys[0]])
    assert not torch.allclose(a[0, ~keys[0]], b[0, ~keys[0]])


def test_cross_attention_matches_reference_and_never_nans() -> None:
    attn = make()
    q, ctx = torch.randn(3, 5, 16), torch.randn(3, 9, 16)
    keys = torch.rand(3, 9) > 0.4
    keys[2] = False  # no visible key: falls back to all keys
    allowed = keys.clone()
    allowed[2] = True
    out = attn(q, ctx, key_mask=keys)
    expected = reference(attn, q, ctx, allowed=allowed[:, None, :].expand(3, 5, 9))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(attn(q, ctx), reference(attn, q, ctx), atol=1e-5, rtol=1e-5)


def test_attention_runs_under_bf16_autocast() -> None:
    attn = make()
    x = torch.randn(2, 6, 16)
    keys = torch.rand(2, 6) > 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = attn(x, key_mask=keys)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), attn(x, key_mask=keys), atol=5e-2, rtol=5e-2)
