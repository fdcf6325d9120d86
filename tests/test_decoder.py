"""The pretraining decoder: upsampling of encoder levels, layer wiring, sum of predictions."""

from __future__ import annotations

import dataclasses

import torch

from neuript.model.decoder import NeurIPTDecoder, upsample_level
from neuript.model.presets import preset

torch.set_num_threads(1)


def _cfg():
    return dataclasses.replace(preset("tiny"), dropout=0.0)


def _inputs(b=2, c=4, t=16, d=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cfg = _cfg()
    tokens = torch.randn(b, c, t, d, generator=gen)
    positions = torch.randn(b, c, 3, generator=gen) * 0.08
    channel_mask = torch.ones(b, c, dtype=torch.bool)
    lengths = [t]
    for m in cfg.merge_factors:
        lengths.append(lengths[-1] // m)
    levels = [torch.randn(b, c, n, d, generator=gen) for n in lengths]
    masks = [torch.rand(b, c, n, generator=gen) > 0.5 for n in lengths]
    return tokens, positions, channel_mask, levels, masks


def test_upsample_repeats_and_blanks_masked_tokens():
    level = torch.arange(2 * 3 * 4 * 2, dtype=torch.float32).reshape(2, 3, 4, 2)
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[0, 1, 2] = True
    blank = torch.tensor([-7.0, 9.0])
    out = upsample_level(level, mask, blank, 16)
    assert out.shape == (2, 3, 16, 2)
    for i in range(16):
        expected = blank if (i // 4 == 2) else level[0, 1, i // 4]
        torch.testing.assert_close(out[0, 1, i], expected)
    torch.testing.assert_close(out[1, 2, 13], level[1, 2, 3])


def test_decoder_layers_and_sum_of_predictions():
    cfg = _cfg()
    decoder = NeurIPTDecoder(cfg).eval()
    assert len(decoder.layers) == cfg.depth + 1
    tokens, positions, channel_mask, levels, masks = _inputs()
    blank = torch.randn(cfg.d_model)
    out = decoder(tokens, positions, channel_mask, levels, masks, blank)
    assert out.pred.shape == (2, 4, 16)
    assert out.layer_preds.shape == (cfg.depth + 1, 2, 4, 16)
    torch.testing.assert_close(out.pred, out.layer_preds.sum(0))


def test_layer_j_reads_level_j_only_from_layer_j_on():
    cfg = _cfg()
    decoder = NeurIPTDecoder(cfg).eval()
    tokens, positions, channel_mask, levels, masks = _inputs()
    blank = torch.randn(cfg.d_model)
    ref = decoder(tokens, positions, channel_mask, levels, masks, blank)
    changed = list(levels)
    changed[2] = levels[2] + torch.randn_like(levels[2])
    out = decoder(tokens, positions, channel_mask, changed, masks, blank)
    torch.testing.assert_close(out.layer_preds[:2], ref.layer_preds[:2])
    assert (out.layer_preds[2] - ref.layer_preds[2]).abs().max() > 1e-3


def test_masked_level_tokens_do_not_reach_the_decoder():
    cfg = _cfg()
    decoder = NeurIPTDecoder(cfg).eval()
    tokens, positions, channel_mask, levels, masks = _inputs()
    blank = torch.randn(cfg.d_model)
    ref = decoder(tokens, positions, channel_mask, levels, masks, blank)
    changed = [torch.where(m[..., None], lv + 5.0, lv) for lv, m in zip(levels, masks)]
    out = decoder(tokens, positions, channel_mask, changed, masks, blank)
    torch.testing.assert_close(out.pred, ref.pred)


def test_padded_channels_do_not_affect_real_ones():
    cfg = _cfg()
    decoder = NeurIPTDecoder(cfg).eval()
    tokens, positions, channel_mask, levels, masks = _inputs()
    channel_mask[:, -1] = False
    blank = torch.randn(cfg.d_model)
    ref = decoder(tokens, positions, channel_mask, levels, masks, blank)
    tokens2 = tokens.clone()
    tokens2[:, -1] = 100.0
    levels2 = [lv.clone() for lv in levels]
    for lv in levels2:
        lv[:, -1] = -50.0
    out = decoder(tokens2, positions, channel_mask, levels2, masks, blank)
    torch.testing.assert_close(out.pred[:, :-1], ref.pred[:, :-1])
