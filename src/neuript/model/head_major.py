"""Blockwise multi-head attention for narrow heads on CPU (the ``Attention`` fast path).

``softmax(q kᵀ / √e + mask) v`` for every head, the function of
:func:`~neuript.model.attention.attend`, computed for heads of width ``e <= 8`` (the d = 64
config's 8 heads of 8) where both of ``attend``'s kernels are slow:

- SDPA's flash kernel and the explicit form both multiply the (Lq, Lk) probabilities by the
  (Lk, e) values, a skinny-output matmul that MKL runs at about a third of the speed of the
  transposed product ``(vᵀ pᵀ)ᵀ``; here every product with a narrow result is taken transposed
  (per head, outputs and gradients are kept as (e, L)).
- Rows (one per sequence and head) are processed in blocks of about ``CHUNK_SCORES`` scores, so
  each block's (Lq, Lk) scores stay in cache, and the backward recomputes each block's
  probabilities instead of storing all of them (the memory of a flash kernel).

Inputs and outputs are token-major, as the projections produce and consume them; self-attention
takes the fused ``q | k | v`` projection and returns its gradient in one piece (no
concatenation of three gradients).

On one thread at d = 64 (8 heads of 8) this ran the block-0 training attention (160 sequences of
320 tokens, forward + backward) about 1.45× faster than SDPA and a window's 256-token forward
about 1.2× faster; what remains is the softmax and the (e, L) x (L, L) products. Whole-model
ratios: ``benchmarks/bench_speed.py`` (fast paths vs plain, in one process).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

CHUNK_SCORES: int = 2**17
"""Scores computed per block (512 kB in float32: cache-sized)."""


def split_heads(x: Tensor, n_heads: int, scale: float | None = None) -> Tensor:
    """(N, L, H·e) -> (N·H, L, e), a contiguous copy (times ``scale`` if given).

    Row ``n·H + h`` holds head ``h`` of sequence ``n``.
    """
    heads = x.unflatten(-1, (n_heads, -1)).transpose(1, 2)  # (N, H, L, e)
    out = x.new_empty(heads.shape)
    if scale is None:
        out.copy_(heads)
    else:
        torch.mul(heads, scale, out=out)
    return out.flatten(0, 1)


def merge_heads(transposed: Tensor, out: Tensor) -> Tensor:
    """Write per-head transposed rows (N·H, e, L) into ``out`` (N, L, H·e); return ``out``."""
    n, length, _ = out.shape
    e = transposed.shape[1]
    per_head = transposed.view(n, -1, e, length)  # (N, H, e, L)
    out.unflatten(-1, (-1, e)).copy_(per_head.permute(0, 3, 1, 2))
    return out


def block_rows(n_heads: int, lq: int, lk: int) -> int:
    """Rows per block: whole sequences (a multiple of ``n_heads``) or a divisor of ``n_heads``."""
    rows = max(1, CHUNK_SCORES // (lq * lk))
    if rows >= n_heads:
        return rows - rows % n_heads
    return max(h for h in range(1, rows + 1) if n_heads % h == 0)


def block_probs(q: Tensor, k_t: Tensor, hidden: Tensor | None, start: int,
                n_heads: int) -> Tensor:
    """Probabilities (R, Lq, Lk) of the rows from ``start``: q (R, Lq, e), kᵀ (R, e, Lk)."""
    scores = torch.bmm(q, k_t)  # (R, Lq, Lk); q carries the 1/√e scale
    if hidden is not None:
        rows, lq, lk = scores.shape
        n_seq, first = max(1, rows // n_heads), start // n_heads
        scores.view(n_seq, -1, lq, lk).masked_fill_(hidden[first:first + n_seq], float("-inf"))
    return scores.softmax(dim=-1)


def _qkv_views(first: Tensor, kv: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v (each (N, L, d)) as views of the fused projection or of ``first`` and ``kv``."""
    if kv is None:
        q, k, v = first.chunk(3, dim=-1)
        return q, k, v
    k, v = kv.chunk(2, dim=-1)
    return first, k, v


class _HeadMajorAttention(torch.autograd.Function):
    """:func:`head_major_attention` with a blockwise, recomputing backward."""

    @staticmethod
    def forward(ctx, first: Tensor, kv: Tensor | None, hidden: Tensor | None,
                n_heads: int) -> Tensor:
        q, k, v = _qkv_views(first, kv)
        scale = (q.shape[-1] // n_heads) ** -0.5
        qs = split_heads(q, n_heads, scale)  # (N·H, Lq, e)
        ks, vs = split_heads(k, n_heads), split_heads(v, n_heads)  # (N·H, Lk, e)
        rows = block_rows(n_heads, qs.shape[1], ks.shape[1])
        out_t = qs.new_empty(qs.shape[0], qs.shape[2], qs.shape[1])  # (N·H, e, Lq)
        k_t, v_t = ks.transpose(1, 2), vs.transpose(1, 2)  # (N·H, e, Lk) views
        for start in range(0, qs.shape[0], rows):
            block = slice(start, start + rows)
            probs = block_probs(qs[block], k_t[block], hidden, start, n_heads)
            torch.bmm(v_t[block], probs.transpose(1, 2), out=out_t[block])  # vᵀpᵀ
        ctx.save_for_backward(qs, ks, vs, hidden)
        ctx.n_heads, ctx.rows, ctx.scale, ctx.fused = n_heads, rows, scale, kv is None
        ctx.kv_shape = None if kv is None else kv.shape
        return merge_heads(out_t, q.new_empty(q.shape))

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        qs, ks, vs, hidden = ctx.saved_tensors
        n_heads, rows = ctx.n_heads, ctx.rows
        grads = split_heads(grad_out, n_heads)  # (N·H, Lq, e)
        n_rows, lq, e = qs.shape
        dq_t = qs.new_empty(n_rows, e, lq)  # gradients, transposed per head like the output
        dk_t, dv_t = qs.new_empty(n_rows, e, ks.shape[1]), qs.new_empty(n_rows, e, ks.shape[1])
        q_t, k_t, v_t, g_t = (x.transpose(1, 2) for x in (qs, ks, vs, grads))  # (N·H, e, L)
        for start in range(0, n_rows, rows):
            block = slice(start, start + rows)
            probs = block_probs(qs[block], k_t[block], hidden, start, n_heads)  # P (R, Lq, Lk)
            torch.bmm(g_t[block], probs, out=dv_t[block])  # dVᵀ = dOᵀ P
            d_probs = torch.bmm(grads[block], v_t[block])  # dP = dO Vᵀ
            d_scores = torch._softmax_backward_data(d_probs, probs, -1, probs.dtype)
            torch.bmm(k_t[block], d_scores.transpose(1, 2), out=dq_t[block])  # dQᵀ / scale
            torch.bmm(q_t[block], d_scores, out=dk_t[block])  # dKᵀ = (q·scale)ᵀ dS
        dq_t.mul_(ctx.scale)
        n, lq, d = grad_out.shape
        if ctx.fused:
            grad_first = grad_out.new_empty(n, lq, 3 * d)
            for part, grad_t in zip(grad_first.chunk(3, dim=-1), (dq_t, dk_t, dv_t), strict=True):
                merge_heads(grad_t, part)
            return grad_first, None, None, None
        grad_kv = grad_out.new_empty(ctx.kv_shape)
        for part, grad_t in zip(grad_kv.chunk(2, dim=-1), (dk_t, dv_t), strict=True):
            merge_heads(grad_t, part)
        return merge_heads(dq_t, grad_out.new_empty(grad_out.shape)), grad_kv, None, None


def head_major_attention(first: Tensor, kv: Tensor | None, mask: Tensor | None,
                         n_heads: int) -> Tensor:
    """Multi-head attention, blockwise (see the module notes).

    Parameters
    ----------
    first : Tensor, shape (N, Lq, 3·d) or (N, Lq, d)
        The fused ``q | k | v`` projection (self-attention, ``kv=None``) or the queries.
    kv : Tensor, shape (N, Lk, 2·d) | None
        The fused ``k | v`` projection of the context (cross-attention).
    mask : Tensor, shape (N, 1, Lq or 1, Lk), bool | None
        True where a query may attend a key; every query row must allow at least one key.
    n_heads : int
        Heads ``H``; ``d / H`` is the head width ``e``.

    Returns
    -------
    out : Tensor, shape (N, Lq, d)
        The heads' outputs, concatenated per token (contiguous).
    """
    hidden = None if mask is None else ~mask
    return _HeadMajorAttention.apply(first, kv, hidden, n_heads)
