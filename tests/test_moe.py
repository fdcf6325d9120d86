"""SwiGLU and the Progressive-MoE layer (neuript.model.moe)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neuript.config import MoEConfig
from neuript.errors import NeuriptError
from neuript.model.moe import MoEFeedForward, SwiGLU, route


def dense_copy(layer: MoEFeedForward, e: int) -> SwiGLU:
    """A dense SwiGLU carrying routed expert ``e``'s weights."""
    hidden = layer.cfg.expert_hidden
    dense = SwiGLU(layer.w_in.shape[-1], hidden)
    with torch.no_grad():
        dense.w_in.weight.copy_(layer.w_in[e])
        dense.w_out.weight.copy_(layer.w_out[e])
    return dense


def test_swiglu_matches_formula() -> None:
    torch.manual_seed(0)
    ffn = SwiGLU(8, 12).eval()
    x = torch.randn(5, 8)
    w_a, w_g = ffn.w_in.weight[:12], ffn.w_in.weight[12:]
    expected = ((x @ w_a.T) * F.silu(x @ w_g.T)) @ ffn.w_out.weight.T
    torch.testing.assert_close(ffn(x), expected)


@pytest.mark.parametrize("gate", ["renorm", "softmax"])
def test_one_expert_equals_shared_plus_dense_swiglu(gate: str) -> None:
    torch.manual_seed(0)
    cfg = MoEConfig(experts_per_block=(1,), expert_hidden=12, shared_hidden=10, gate=gate)
    layer = MoEFeedForward(8, 1, cfg).eval()
    x = torch.randn(2, 9, 8)
    out = layer(x)
    expected = layer.shared(x) + dense_copy(layer, 0)(x)  # E = 1: probs and gates are exactly 1
    assert out.y.shape == x.shape
    torch.testing.assert_close(out.y, expected, atol=1e-6, rtol=1e-5)
    assert float(out.balance_loss.detach()) == pytest.approx(1.0)
    assert out.importance_loss.item() == pytest.approx(0.0)


def test_two_experts_top1_each_token_gets_its_chosen_expert() -> None:
    torch.manual_seed(1)
    cfg = MoEConfig(experts_per_block=(2,), expert_hidden=6, shared_hidden=4, gate="softmax")
    layer = MoEFeedForward(8, 2, cfg).eval()
    x = torch.randn(40, 8)
    probs = (x @ layer.router.weight.T).softmax(-1)
    choice = probs.argmax(-1)
    experts = [dense_copy(layer, e)(x) for e in range(2)]
    routed = torch.where(choice[:, None] == 0, experts[0], experts[1])
    expected = layer.shared(x) + probs.max(-1).values[:, None] * routed
    torch.testing.assert_close(layer(x).y, expected, atol=1e-6, rtol=1e-5)


def uniform_router_layer(n_experts: int, k: int) -> tuple[MoEFeedForward, torch.Tensor]:
    """Token j is one-hot at j mod E; its router logits rank experts j, j+1, ... (cyclically).

    Every expert is then chosen equally often at every rank and the mean router probability
    is uniform, so the balance loss must be exactly 1 and the importance loss 0.
    """
    cfg = MoEConfig(experts_per_block=(n_experts,), expert_hidden=4, shared_hidden=4, top_k=k)
    layer = MoEFeedForward(n_experts, n_experts, cfg).eval()
    e, j = torch.meshgrid(torch.arange(n_experts), torch.arange(n_experts), indexing="ij")
    with torch.no_grad():
        layer.router.weight.copy_(-((e - j) % n_experts).float())
    x = torch.eye(n_experts).repeat(5, 1)  # (5E, E)
    return layer, x


@pytest.mark.parametrize("n_experts,k", [(2, 1), (4, 2), (6, 3)])
def test_uniform_routing_gives_balance_loss_one(n_experts: int, k: int) -> None:
    layer, x = uniform_router_layer(n_experts, k)
    out = layer(x)
    assert out.balance_loss.item() == pytest.approx(1.0, abs=1e-6)
    assert out.importance_loss.item() == pytest.approx(0.0, abs=1e-10)
    torch.testing.assert_close(out.load, torch.full((n_experts,), 1.0 / n_experts))
    expected_aux = cfg_weights(layer) @ torch.tensor([0.0, 1.0])
    assert out.aux_loss.item() == pytest.approx(float(expected_aux), abs=1e-6)


def cfg_weights(layer: MoEFeedForward) -> torch.Tensor:
    return torch.tensor([layer.cfg.importance_weight, layer.cfg.balance_weight])


def test_skewed_routing_raises_both_losses() -> None:
    layer, x = uniform_router_layer(4, 2)
    with torch.no_grad():
        layer.router.weight[0] += 5.0  # expert 0 wins everywhere
    out = layer(x)
    assert out.balance_loss.item() > 1.2 and out.importance_loss.item() > 0.1
    assert float(out.load[0]) == pytest.approx(0.5)  # k = 2: every token's first choice


def test_renorm_gates_sum_to_one_and_softmax_gates_are_probabilities() -> None:
    torch.manual_seed(0)
    probs = torch.randn(30, 6).softmax(-1)
    r = route(probs, 3, "renorm")
    sums = torch.zeros(30).index_add_(0, r.token, r.gate)
    torch.testing.assert_close(sums, torch.ones(30))
    s = route(probs, 3, "softmax")
    sums = torch.zeros(30).index_add_(0, s.token, s.gate)
    torch.testing.assert_close(sums, probs.topk(3).values.sum(-1))
    assert sum(r.counts) == 90 and r.fraction.sum() == pytest.approx(1.0)


def test_assignments_are_grouped_by_expert() -> None:
    torch.manual_seed(0)
    probs = torch.randn(50, 4).softmax(-1)
    r = route(probs, 2)
    top = probs.topk(2).indices
    start = 0
    for e, count in enumerate(r.counts):
        tokens = r.token[start : start + count]
        assert (top[tokens] == e).any(-1).all()
        assert count == int((top == e).sum())
        start += count


def test_capacity_at_least_n_drops_nothing() -> None:
    torch.manual_seed(0)
    probs = torch.randn(40, 4).softmax(-1)
    free, capped = route(probs, 2, capacity=None), route(probs, 2, capacity=40)
    assert free.counts == capped.counts
    start = 0
    for count in free.counts:
        a = sorted(zip(free.token[start : start + count].tolist(),
                       free.gate[start : start + count].tolist()))
        b = sorted(zip(capped.token[start : start + count].tolist(),
                       capped.gate[start : start + count].tolist()))
        assert a == b
        start += count


def test_capacity_keeps_the_most_probable_assignments() -> None:
    torch.manual_seed(0)
    logits = torch.randn(40, 4)
    logits[:, 0] += 3.0  # expert 0 is over-subscribed
    probs = logits.softmax(-1)
    cap = math.ceil(40 / 4)
    r = route(probs, 1, capacity=cap)
    assert r.counts[0] == cap and all(c <= cap for c in r.counts)
    chosen0 = probs.argmax(-1) == 0
    kept = r.token[: r.counts[0]]
    threshold = probs[chosen0, 0].sort(descending=True).values[cap - 1]
    assert (probs[kept, 0] >= threshold).all()
    # The layer applies the N/E capacity when configured, and still runs.
    cfg = MoEConfig(experts_per_block=(4,), expert_hidden=4, shared_hidden=4, capacity="n_over_e")
    layer = MoEFeedForward(8, 4, cfg)
    assert layer.capacity(40) == 10
    assert torch.isfinite(layer(torch.randn(40, 8)).y).all()


def test_every_parameter_gets_a_gradient_and_noise_only_in_training() -> None:
    torch.manual_seed(0)
    cfg = MoEConfig(experts_per_block=(4,), expert_hidden=6, shared_hidden=6, noise_std=0.5)
    layer = MoEFeedForward(8, 4, cfg)
    x = torch.randn(64, 8)
    out = layer(x)
    (out.y.square().mean() + out.aux_loss).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    layer.eval()
    torch.testing.assert_close(layer(x).y, layer(x).y)
    layer.train()
    assert not torch.equal(layer(x).y, layer(x).y)  # noisy router in training


def test_moe_runs_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    cfg = MoEConfig(experts_per_block=(4,), expert_hidden=16, shared_hidden=16)
    layer = MoEFeedForward(16, 4, cfg).eval()
    x = torch.randn(32, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    torch.testing.assert_close(out.y.float(), layer(x).y, atol=5e-2, rtol=5e-2)


def test_zero_experts_is_refused() -> None:
    with pytest.raises(NeuriptError, match="n_experts"):
        MoEFeedForward(8, 0, MoEConfig())
