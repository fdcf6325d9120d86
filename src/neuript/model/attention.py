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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from neuript.errors import NeuriptError


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
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)

    def extra_repr(self) -> str:
        return f"d={self.d}, n_heads={self.n_heads}"

    def _project(self, query: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Return q, k, v, each (N, H, L, d/H)."""
        if context is None:
            qkv = self.qkv(query)  # (N, L, 3d)
            q, k, v = rearrange(qkv, "n l (three h e) -> three n h l e", three=3, h=self.n_heads)
            return q, k, v
        w_q, w_kv = self.qkv.weight.split((self.d, 2 * self.d))
        b_q, b_kv = self.qkv.bias.split((self.d, 2 * self.d))
        q = rearrange(F.linear(query, w_q, b_q), "n l (h e) -> n h l e", h=self.n_heads)
        kv = F.linear(context, w_kv, b_kv)  # (N, Lk, 2d)
        k, v = rearrange(kv, "n l (two h e) -> two n h l e", two=2, h=self.n_heads)
        return q, k, v

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
        q, k, v = self._project(query, context)
        mask = None
        if key_mask is not None:
            if context is None:
                mask = self_attention_mask(key_mask)
            else:
                mask = cross_attention_mask(key_mask)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, H, Lq, d/H)
        return self.dropout(self.out(rearrange(attended, "n h l e -> n l (h e)")))
