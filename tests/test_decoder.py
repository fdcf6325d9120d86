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


def test_strided_decoder_predicts_every_sample_and_is_blind_to_masked_values():
    """decoder_stride=r: T / r query tokens, each predicting r samples; a masked sample's true
    value never reaches the prediction (queries carry [mask] there), a visible one does."""
    from neuript.model.masking import REPLACE_MASK, MaskSpec
    from neuript.model.neuript import NeurIPTPretrain

    cfg = dataclasses.replace(_cfg(), decoder_stride=4)
    decoder = NeurIPTDecoder(cfg).eval()
    tokens, positions, channel_mask, levels, masks = _inputs()
    out = decoder(tokens, positions, channel_mask, levels, masks, torch.randn(cfg.d_model))
    assert out.pred.shape == (2, 4, 16) and out.layer_preds.shape == (cfg.depth + 1, 2, 4, 16)
    assert decoder.layers[0].predict.out_features == 4

    torch.manual_seed(0)
    model = NeurIPTPretrain(cfg).eval()
    signals = torch.randn(2, 4, 16)
    mask = torch.zeros(2, 4, 16, dtype=torch.bool)
    mask[:, :, 4:8] = True  # one whole strided token masked
    replace = torch.where(mask, REPLACE_MASK, 2).to(torch.int8)
    spec = MaskSpec(mask, replace, torch.full((2,), 0.25))
    ref = model(signals, positions, channel_mask, mask=spec).pred
    hidden = signals.clone()
    hidden[:, :, 5] += 3.0  # a masked sample
    torch.testing.assert_close(model(hidden, positions, channel_mask, mask=spec).pred, ref)
    seen = signals.clone()
    seen[:, :, 1] += 3.0  # a visible sample
    assert (model(seen, positions, channel_mask, mask=spec).pred - ref).abs().max() > 1e-4


def test_decoder_stride_must_divide_the_total_merge():
    import pytest

    from neuript.errors import NeuriptError

    with pytest.raises(NeuriptError, match="decoder_stride=3 must divide"):
        dataclasses.replace(_cfg(), decoder_stride=3)
    assert preset("small").decoder_stride == 8 and preset("paper").decoder_stride == 1
