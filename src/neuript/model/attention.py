"""Multi-head attention on ``F.scaled_dot_product_attention`` with key-side masks.

The encoder uses one :class:`Attention` per stage: the time stage calls it on ``(B·C, L, d)``
(self-attention over the tokens of each channel) and the channel stage on ``(B·L, C, d)``
(self-attention over the channels at each time step). The decoder also uses it for
cross-attention (``context`` given).

Masks are **key-side**: ``key_mask[n, j]`` True means key ``j`` may be attended by every query of
sequence ``n``. In self-attention a token may always attend to itself, so no query ever has all
of its keys hidden (no NaN) and a masked token sees itself plus the visible tokens. In
cross-attention there is no "self": a query row whose keys are all hidden attends to all keys
instead (documented fallback, again to avoid NaN).

Kernel choice (CPU speed, same function): short key sequences (``Lk <= MATH_MAX_KEYS``, e.g. the
channel stage over C = 20 channels, thousands of tiny attentions) run an explicit
``softmax(q kᵀ / √e) v`` with batched matmuls, which beats the fused SDPA kernel there (its
per-sequence blocking overhead dominates); longer sequences go to
``F.scaled_dot_product_attention``, whose CPU flash kernel never materialises the (Lq, Lk) score
matrix. A mask is built only when some key is hidden (``key_mask=None`` otherwise), so the unmasked
case never pays for one.

Fast path (``Attention.fast_paths``, on by default; :mod:`neuript.model.fastpaths` switches it):
on CPU, in eager fp32/fp64 with one intra-op thread, heads of width ``e <= HEAD_MAJOR_MAX_WIDTH``
(the d = 64 config's 8 heads of 8) run :func:`~neuript.model.head_major.head_major_attention`,
the same function with transposed blockwise matmuls and its own backward. With more threads it
is not taken: its thousands of small parallel regions lost to SDPA's one parallel call (the
block-0 training attention ran 1.4-1.5× slower at 2 threads on the shared 2-core machine).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuript.errors import NeuriptError
from neuript.model.head_major import head_major_attention

DROPOUT_BITS: int = 16
"""Random bits per element of :func:`dropout`'s keep mask."""
MATH_MAX_KEYS: int = 32
"""Key sequences up to this length use explicit matmul-softmax attention instead of SDPA."""
HEAD_MAJOR_MAX_WIDTH: int = 8
"""Widest head that takes the head-major fast path (at e = 16 it measured no faster)."""


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout; on CPU drawn from 16-bit random integers (about 2× faster than torch's).

    Each element is kept with probability ``1 − p`` (``p`` rounded to a multiple of 2⁻¹⁶, i.e.
    within 8·10⁻⁶) and scaled by ``1/(1 − p)``, as :func:`torch.nn.functional.dropout` does;
    torch's CPU ``bernoulli_`` draws one generator call per element and dominated dropout's cost
    at this model's sizes, whereas one 64-bit draw here serves four elements. The bits come from
    the global generator. On other devices, and outside training, this is ``F.dropout``.

    Parameters
    ----------
    x : Tensor
    p : float
        Drop probability in [0, 1).
    training : bool

    Returns
    -------
    Tensor, same shape and dtype as ``x``
    """
    if not training or p == 0.0 or x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)  # all 64 bits
    bits = words.view(torch.int16)[:n].view(x.shape)  # uniform on [-2^15, 2^15)
    threshold = round(p * 2**DROPOUT_BITS) - 2 ** (DROPOUT_BITS - 1)
    scale = (bits >= threshold).to(x.dtype).mul_(1.0 / (1.0 - p))
    return x * scale  # autograd keeps ``scale`` for the backward


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` computed by :func:`dropout` (same semantics, faster on CPU)."""

    def forward(self, x: Tensor) -> Tensor:
        """x : Tensor -> Tensor, same shape."""
        return dropout(x, self.p, self.training)


def self_attention_mask(key_mask: Tensor) -> Tensor:
    """Broadcastable SDPA mask letting queries see visible keys and themselves.

    Parameters
    ----------
    key_mask : Tensor, shape (N, L), bool
        True where a key may be attended.

    Returns
    -------
    mask : Tensor, shape (N, 1, L, L), bool
        True where query ``i`` may attend key ``j``.
    """
    n_tokens = key_mask.shape[-1]
    index = torch.arange(n_tokens, device=key_mask.device)
    # (L, L); not torch.eye, whose bool EyeLike ONNX Runtime cannot run
    diagonal = index[:, None] == index[None, :]
    return key_mask[:, None, None, :] | diagonal  # (N, 1, L, L)


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None,
           math_max_keys: int = MATH_MAX_KEYS) -> Tensor:
    """``softmax(q kᵀ / √e + mask) v`` with the faster kernel for the key length.

    Parameters
    ----------
    q : Tensor, shape (N, H, Lq, e)
    k, v : Tensor, shape (N, H, Lk, e)
    mask : Tensor, shape broadcastable to (N, H, Lq, Lk), bool | None
        True where a query may attend a key; every query row must allow at least one key.
    math_max_keys : int
        Largest ``Lk`` computed with explicit matmuls (0: always SDPA).

    Returns
    -------
    out : Tensor, shape (N, H, Lq, e)
    """
    if k.shape[-2] > math_max_keys:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = torch.matmul(q * (q.shape[-1] ** -0.5), k.transpose(-1, -2))  # (N, H, Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)


def cross_attention_mask(key_mask: Tensor) -> Tensor:
    """Broadcastable SDPA mask for cross-attention; all-hidden rows fall back to all keys.

    Parameters
    ----------
    key_mask : Tensor, shape (N, Lk), bool

    Returns
    -------
    mask : Tensor, shape (N, 1, 1, Lk), bool
    """
    none_visible = ~key_mask.any(dim=-1, keepdim=True)  # (N, 1)
    return (key_mask | none_visible)[:, None, None, :]


class Attention(nn.Module):
    """Multi-head (self- or cross-) attention with a fused q/k/v projection.

    One ``Linear(d -> 3d)`` holds the query, key and value projections; self-attention runs it
    once, cross-attention applies its query rows to ``query`` and its key/value rows to
    ``context``. Dropout is applied to the output projection (residual dropout), not to the
    attention probabilities, so SDPA keeps its fused kernels.

    Parameters
    ----------
    d : int
        Token width.
    n_heads : int
        Heads ``H``; ``d`` must be divisible by it.
    dropout : float
        Dropout on the output, in training.
    """

    def __init__(self, d: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d % n_heads:
            raise NeuriptError(f"Attention: d={d} must be divisible by n_heads={n_heads}")
        self.d, self.n_heads = d, n_heads
        self.math_max_keys = MATH_MAX_KEYS
        self.fast_paths = True
        """Take the head-major kernel where it applies (see the module notes)."""
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.dropout = Dropout(dropout)

    def extra_repr(self) -> str:
        return f"d={self.d}, n_heads={self.n_heads}"

    def _heads(self, x: Tensor) -> Tensor:
        """(N, L, d) -> (N, H, L, d/H), a view."""
        return x.unflatten(-1, (self.n_heads, -1)).transpose(1, 2)

    def _project(self, query: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Return q, k, v, each (N, L, d).

        Views of the fused projection split along its last axis, so the backward assembles the
        projection's gradient with a single concatenation (no stack-and-permute copy).
        """
        if context is None:
            q, k, v = self.qkv(query).split(self.d, dim=-1)  # (N, L, d) each
            return q, k, v
        w_q, w_kv = self.qkv.weight.split((self.d, 2 * self.d))
        b_q, b_kv = self.qkv.bias.split((self.d, 2 * self.d))
        k, v = F.linear(context, w_kv, b_kv).split(self.d, dim=-1)  # (N, Lk, d) each
        return F.linear(query, w_q, b_q), k, v

    def use_head_major(self, x: Tensor) -> bool:
        """Whether this call takes the head-major kernel (eager fp32/fp64 on one CPU thread)."""
        return (self.fast_paths and self.d // self.n_heads <= HEAD_MAJOR_MAX_WIDTH
                and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
                and torch.get_num_threads() == 1 and not torch.is_autocast_enabled("cpu")
                and not torch.jit.is_tracing() and not torch.compiler.is_compiling())

    def forward(
        self, query: Tensor, context: Tensor | None = None, key_mask: Tensor | None = None
    ) -> Tensor:
        """Attend.

        Parameters
        ----------
        query : Tensor, shape (N, Lq, d)
        context : Tensor, shape (N, Lk, d) | None
            Keys/values for cross-attention; None for self-attention (keys = ``query``).
        key_mask : Tensor, shape (N, Lk), bool | None
            True where a key may be attended; None lets every key be attended.

        Returns
        -------
        out : Tensor, shape (N, Lq, d)
        """
        mask = None
        if key_mask is not None:
            if context is None:
                mask = self_attention_mask(key_mask)
            else:
                mask = cross_attention_mask(key_mask)
        if self.use_head_major(query):
            attended = self._attend_head_major(query, context, mask)
        else:
            attended = self._attend_plain(query, context, mask)
        return self.dropout(self.out(attended))

    def _attend_plain(self, query: Tensor, context: Tensor | None, mask: Tensor | None) -> Tensor:
        """Heads through :func:`attend`: (N, Lq, d)."""
        q, k, v = self._project(query, context)
        heads = attend(self._heads(q), self._heads(k), self._heads(v), mask,
                       self.math_max_keys)  # (N, H, Lq, d/H)
        return heads.transpose(1, 2).flatten(2)

    def _attend_head_major(self, query: Tensor, context: Tensor | None,
                           mask: Tensor | None) -> Tensor:
        """Heads through :func:`~neuript.model.head_major.head_major_attention`: (N, Lq, d)."""
        if context is None:
            return head_major_attention(self.qkv(query), None, mask, self.n_heads)
        w_q, w_kv = self.qkv.weight.split((self.d, 2 * self.d))
        b_q, b_kv = self.qkv.bias.split((self.d, 2 * self.d))
        return head_major_attention(F.linear(query, w_q, b_q), F.linear(context, w_kv, b_kv),
                                    mask, self.n_heads)
