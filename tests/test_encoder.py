"""The NeurIPT encoder (neuript.model.encoder): shapes, masks, equivariance, gradients."""

from __future__ import annotations

import dataclasses

import mne
import numpy as np
import pytest
import torch

from neuript.config import ModelConfig, MoEConfig
from neuript.errors import NeuriptError
from neuript.model.embed import TokenEmbedding
from neuript.model.encoder import NeurIPTEncoder, merge_token_mask
from neuript.model.presets import preset
from neuript.paths import data_root

EEGMAT_CHANNELS = ["Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5", "T6",
                   "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz"]


def small_config(**changes) -> ModelConfig:
    base = preset("tiny")
    return dataclasses.replace(base, **changes)


def build(cfg: ModelConfig, seed: int = 0) -> tuple[TokenEmbedding, NeurIPTEncoder]:
    torch.manual_seed(seed)
    return TokenEmbedding(cfg.d_model), NeurIPTEncoder(cfg)


@pytest.fixture(scope="module")
def eegmat_window() -> tuple[torch.Tensor, torch.Tensor]:
    """One real EEGMAT window: 19 channels x 128 samples at 64 Hz, A-law-like scaled µV."""
    raw = mne.io.read_raw_edf(data_root() / "eegmat" / "Subject00_1.edf", preload=True,
                              verbose="error")
    raw.pick([f"EEG {name}" for name in EEGMAT_CHANNELS])
    raw.filter(0.5, 30.0, verbose="error").resample(64.0, verbose="error")
    data = raw.get_data()[:, 640:768] * 1e6 / 50.0  # (19, 128), roughly unit scale
    ch_pos = mne.channels.make_standard_montage("colin27_1005").get_positions()["ch_pos"]
    modern = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
    pos = np.stack([ch_pos[modern.get(n, n)] for n in EEGMAT_CHANNELS])
    return torch.tensor(data, dtype=torch.float32), torch.tensor(pos, dtype=torch.float32)


def test_paper_merges_give_the_paper_lengths() -> None:
    cfg = ModelConfig(d_model=16, n_heads=2, d_ff=16,
                      moe=MoEConfig(expert_hidden=8, shared_hidden=8))
    emb, enc = build(cfg)
    signals = torch.randn(1, 2, 256)
    out = enc.eval()(emb(signals), torch.randn(1, 2, 3) * 0.05, torch.ones(1, 2, dtype=bool))
    assert [lvl.shape[2] for lvl in out.levels] == [256, 256, 64, 64, 32, 32, 16]
    assert all(lvl.shape[:2] == (1, 2) and lvl.shape[3] == 16 for lvl in out.levels)
    assert out.masks is None
    assert len(out.load) == 2 * 4  # blocks 2..5 are MoE, two layers each
    assert [len(load) for load in out.load] == [2, 2, 4, 4, 4, 4, 6, 6]


def test_window_length_must_divide_by_total_merge() -> None:
    emb, enc = build(preset("tiny"))
    with pytest.raises(NeuriptError, match="divisible"):
        enc(emb(torch.randn(1, 2, 30)), torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=bool))


def test_merged_token_mask_needs_all_parts_masked() -> None:
    mask = torch.tensor([[[True, True, True, False, False, False, True, True]]])
    assert merge_token_mask(mask, 2).tolist() == [[[True, False, False, True]]]
    assert merge_token_mask(mask, 4).tolist() == [[[False, False]]]


def test_level_zero_is_tokens_plus_both_codes(eegmat_window) -> None:
    from neuript.model.embed import temporal_code

    signals, pos = eegmat_window
    emb, enc = build(preset("tiny"))
    tokens = emb(signals[None])
    mask = torch.ones(1, 19, dtype=bool)
    out = enc.eval()(tokens, pos[None], mask)
    expected = tokens + temporal_code(128, 32) + enc.spatial(pos[None], mask)[:, :, None]
    torch.testing.assert_close(out.levels[0], expected)


def test_permuting_channels_with_positions_permutes_outputs(eegmat_window) -> None:
    signals, pos = eegmat_window
    emb, enc = build(preset("tiny"))
    enc.eval()
    perm = torch.randperm(19, generator=torch.Generator().manual_seed(3))
    mask = torch.ones(1, 19, dtype=bool)
    with torch.no_grad():
        out = enc(emb(signals[None]), pos[None], mask)
        permuted = enc(emb(signals[perm][None]), pos[perm][None], mask)
    for a, b in zip(out.levels, permuted.levels):
        torch.testing.assert_close(a[:, perm], b, atol=1e-5, rtol=1e-5)


def test_padded_channels_change_nothing(eegmat_window) -> None:
    signals, pos = eegmat_window
    emb, enc = build(preset("tiny"))
    enc.eval()
    with torch.no_grad():
        alone = enc(emb(signals[None, :12]), pos[None, :12], torch.ones(1, 12, dtype=bool))
        padded_signals = torch.cat([signals[:12], torch.randn(3, 128) * 5])
        padded_pos = torch.cat([pos[:12], torch.randn(3, 3)])
        mask = torch.tensor([[True] * 12 + [False] * 3])
        padded = enc(emb(padded_signals[None]), padded_pos[None], mask)
    for a, b in zip(alone.levels, padded.levels):
        torch.testing.assert_close(a, b[:, :12], atol=1e-5, rtol=1e-5)


def test_masked_token_values_never_reach_visible_tokens() -> None:
    """Without merging, a visible token's output never depends on a masked token's value.

    Both stages hide masked tokens as keys and feed-forwards act per token (no capacity), so
    through every block the visible outputs must be bit-for-bit independent of what sits at the
    masked positions; the masked outputs themselves must change (the test can fail).
    """
    cfg = small_config(merge_factors=(1, 1, 1), d_model=32)
    emb, enc = build(cfg)
    enc.eval()
    gen = torch.Generator().manual_seed(0)
    signals = torch.randn(2, 4, 32, generator=gen)
    token_mask = torch.rand(2, 4, 32, generator=gen) < 0.4
    token_mask[0, 1] = True  # a fully masked channel as well
    other = torch.where(token_mask, torch.randn(2, 4, 32, generator=gen) * 10, signals)
    pos, cm = torch.randn(2, 4, 3, generator=gen) * 0.05, torch.ones(2, 4, dtype=bool)
    with torch.no_grad():
        a = enc(emb(signals), pos, cm, token_mask)
        b = enc(emb(other), pos, cm, token_mask)
        c = enc(emb(other), pos, cm, None)
    visible = ~token_mask
    for lvl_a, lvl_b in zip(a.levels[1:], b.levels[1:]):
        torch.testing.assert_close(lvl_a[visible], lvl_b[visible], atol=1e-6, rtol=1e-6)
        assert not torch.allclose(lvl_a[token_mask], lvl_b[token_mask])
    assert not torch.allclose(a.levels[1][visible], c.levels[1][visible])
    assert all(torch.isfinite(lvl).all() for lvl in a.levels)
    assert [m.shape for m in a.masks] == [(2, 4, 32)] * 4


def test_token_masks_are_merged_per_level() -> None:
    cfg = preset("tiny")
    emb, enc = build(cfg)
    token_mask = torch.rand(1, 3, 64) < 0.5
    out = enc(emb(torch.randn(1, 3, 64)), torch.randn(1, 3, 3), torch.ones(1, 3, dtype=bool),
              token_mask)
    expected = [token_mask, token_mask, merge_token_mask(token_mask, 2),
                merge_token_mask(token_mask, 4)]
    assert all(torch.equal(m, e) for m, e in zip(out.masks, expected))


def test_every_parameter_gets_a_finite_gradient() -> None:
    cfg = preset("tiny")
    emb, enc = build(cfg)
    enc.train()
    signals = torch.randn(2, 5, 64)
    cm = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    out = enc(emb(signals), torch.randn(2, 5, 3) * 0.05, cm, torch.rand(2, 5, 64) < 0.3)
    loss = sum(lvl.float().square().mean() for lvl in out.levels) + out.aux_loss
    loss.backward()
    params = list(emb.named_parameters()) + list(enc.named_parameters())
    for name, p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert torch.isfinite(out.aux_loss) and out.aux_loss > 0


def test_results_do_not_depend_on_batch_size() -> None:
    cfg = preset("tiny")
    emb, enc = build(cfg)
    enc.eval()
    gen = torch.Generator().manual_seed(1)
    signals, pos = torch.randn(4, 6, 64, generator=gen), torch.randn(4, 6, 3, generator=gen) * 0.05
    cm = torch.ones(4, 6, dtype=bool)
    cm[2, 4:] = False
    with torch.no_grad():
        batch = enc(emb(signals), pos, cm)
        for i in range(4):
            one = enc(emb(signals[i : i + 1]), pos[i : i + 1], cm[i : i + 1])
            for a, b in zip(batch.levels, one.levels):
                torch.testing.assert_close(a[i : i + 1], b, atol=1e-5, rtol=1e-5)


def test_aux_loss_is_the_sum_over_moe_layers() -> None:
    cfg = preset("tiny")
    emb, enc = build(cfg)
    enc.eval()
    seen = []
    for module in enc.modules():
        if type(module).__name__ == "MoEFeedForward":
            module.register_forward_hook(lambda m, i, o: seen.append(o.aux_loss))
    out = enc(emb(torch.randn(2, 3, 64)), torch.randn(2, 3, 3), torch.ones(2, 3, dtype=bool))
    assert len(seen) == 4
    torch.testing.assert_close(out.aux_loss, torch.stack(seen).sum())


def test_bf16_autocast_is_close_to_fp32(eegmat_window) -> None:
    signals, pos = eegmat_window
    emb, enc = build(preset("tiny"))
    enc.eval()
    mask = torch.ones(1, 19, dtype=bool)
    with torch.no_grad():
        ref = enc(emb(signals[None]), pos[None], mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = enc(emb(signals[None]), pos[None], mask)
    for a, b in zip(ref.levels, low.levels):
        rel = (a - b.float()).norm() / a.norm()
        assert rel < 0.05, float(rel)


def compile_check(backend: str) -> None:
    emb, enc = build(preset("tiny"))
    enc.eval()
    gen = torch.Generator().manual_seed(2)
    tokens = emb(torch.randn(2, 3, 32, generator=gen)).detach()
    pos, cm = torch.randn(2, 3, 3, generator=gen) * 0.05, torch.ones(2, 3, dtype=bool)
    token_mask = torch.rand(2, 3, 32, generator=gen) < 0.3
    torch._dynamo.reset()
    compiled = torch.compile(enc, backend=backend)
    with torch.no_grad():
        ref, got = enc(tokens, pos, cm, token_mask), compiled(tokens, pos, cm, token_mask)
    for a, b in zip(ref.levels, got.levels):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ref.aux_loss, got.aux_loss, atol=1e-5, rtol=1e-4)


def test_compiled_encoder_matches_eager() -> None:
    """Dynamo traces the encoder (graph breaks only at the MoE split sizes) and agrees."""
    compile_check("aot_eager")


@pytest.mark.slow
def test_inductor_compiled_encoder_matches_eager() -> None:
    """The same with the default inductor backend (C++ code generation: minutes on 2 cores)."""
    compile_check("inductor")
