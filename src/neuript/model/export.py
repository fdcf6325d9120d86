"""Export a classifier to ONNX for inference outside PyTorch.

The training-time MoE layer routes tokens with data-dependent shapes (a sort by expert, then one
slice per expert whose length is read back as a Python int), which neither ONNX exporter can
trace faithfully. For export, each :class:`~neuript.model.moe.MoEFeedForward` of a *copy* of the
model is swapped for :class:`DenseRoutedMoE`, which computes the same function (shared expert +
top-k gated routed experts, eval mode, no capacity limit) with fixed shapes: every expert runs
on every token and a (N, E) gate matrix that is zero outside the top k mixes them. The caller's
model is never modified.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuript.errors import NeuriptError
from neuript.model.fastpaths import set_fast_paths
from neuript.model.moe import MoEFeedForward, MoEOutput


class DenseRoutedMoE(nn.Module):
    """Fixed-shape twin of an MoE layer for export (same weights, eval-mode function).

    Parameters
    ----------
    moe : MoEFeedForward
        The layer to mirror; its parameters are shared, not copied.
    """

    def __init__(self, moe: MoEFeedForward) -> None:
        super().__init__()
        if moe.cfg.capacity != "none":
            raise NeuriptError(
                f"export: MoE capacity={moe.cfg.capacity!r} drops tokens data-dependently and "
                "cannot be exported; export a model trained with capacity='none'"
            )
        self.moe = moe

    def forward(self, x: Tensor) -> MoEOutput:
        """x : Tensor, shape (..., d) → MoEOutput (losses are zeros; load is zeros)."""
        moe = self.moe
        tokens = x.reshape(-1, x.shape[-1])  # (N, d)
        probs = moe.router(tokens).float().softmax(dim=-1)  # (N, E)
        top_p, top_e = probs.topk(moe.k, dim=-1)  # (N, k)
        if moe.cfg.gate == "renorm":
            top_p = top_p / top_p.sum(-1, keepdim=True)
        gates = torch.zeros_like(probs).scatter(1, top_e, top_p)  # (N, E), zero outside top k
        hidden = torch.einsum("nd,ehd->enh", tokens, moe.w_in)  # (E, N, 2·hidden)
        value, gate = hidden.chunk(2, dim=-1)
        routed = torch.einsum("enh,edh->end", value * F.silu(gate), moe.w_out)  # (E, N, d)
        mixed = torch.einsum("ne,end->nd", gates.to(routed.dtype), routed)
        y = moe.shared(tokens) + mixed
        zero = tokens.new_zeros(())
        load = tokens.new_zeros(moe.n_experts)
        return MoEOutput(y.reshape(x.shape), zero, zero, zero, load)


def exportable_copy(model: nn.Module) -> nn.Module:
    """Deep-copy ``model`` (eval mode) with every MoE layer replaced by :class:`DenseRoutedMoE`.

    The copy's eager CPU fast paths are off (:mod:`neuript.model.fastpaths`): the exported graph
    is the plain one.
    """
    twin = copy.deepcopy(model).eval()
    set_fast_paths(twin, False)
    for module in list(twin.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, MoEFeedForward):
                setattr(module, child_name, DenseRoutedMoE(child))
    return twin


class _LogitsOnly(nn.Module):
    """Wrap a classifier so that its forward returns only the logits."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, signals: Tensor, positions: Tensor, channel_mask: Tensor,
                group_mask: Tensor) -> Tensor:
        return self.classifier(signals, positions, channel_mask, group_mask).logits


def export_onnx(classifier: nn.Module, path: str | os.PathLike, n_channels: int, n_samples: int,
                n_groups: int, opset: int = 17) -> Path:
    """Export a classifier's logits to ONNX (dynamic batch; fixed C, T and G).

    Parameters
    ----------
    classifier : nn.Module
        A model with ``forward(signals, positions, channel_mask, group_mask)`` returning a
        ``ClassifierOutput`` (``NeurIPTClassifier`` or a baseline). It is not modified.
    path : path-like
        Output ``.onnx`` file.
    n_channels, n_samples, n_groups : int
        C, T and G of the exported graph.
    opset : int
        ONNX opset (>= 17).

    Returns
    -------
    path : Path

    Notes
    -----
    Inputs: ``signals`` (B, C, T) float32 compressed µV, ``positions`` (B, C, 3) float32 metres,
    ``channel_mask`` (B, C) bool, ``group_mask`` (B, G, C) bool. Output: ``logits`` (B, K).
    Uses the TorchScript-based exporter (``dynamo=False``); MoE layers are exported through
    :class:`DenseRoutedMoE` (same weights, every expert on every token, gated).
    """
    import onnx  # optional dependency (the "export" extra), needed by torch.onnx anyway

    if opset < 17:
        raise NeuriptError(f"export_onnx: opset must be >= 17, got {opset}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _LogitsOnly(exportable_copy(classifier)).eval()
    example = (
        torch.zeros(2, n_channels, n_samples),
        torch.zeros(2, n_channels, 3),
        torch.ones(2, n_channels, dtype=torch.bool),
        torch.ones(2, n_groups, n_channels, dtype=torch.bool),
    )
    names = ["signals", "positions", "channel_mask", "group_mask"]
    with torch.no_grad():
        torch.onnx.export(
            wrapper, example, str(out), input_names=names, output_names=["logits"],
            dynamic_axes={**{n: {0: "batch"} for n in names}, "logits": {0: "batch"}},
            opset_version=opset, dynamo=False,
        )
    onnx.checker.check_model(str(out))
    return out
