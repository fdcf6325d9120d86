"""AAMP and random masking, the BERT replacement rule, and donor tokens (NEURIPT_SPEC §4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _real_eeg import eegmat_batch
from neuript.config import MaskConfig
from neuript.errors import NeuriptError
from neuript.model.masking import (
    REPLACE_KEEP,
    REPLACE_MASK,
    REPLACE_RANDOM,
    aamp_mask,
    draw_donors,
    make_mask,
    random_mask,
    replacement_codes,
)

torch.set_num_threads(1)


def _reference_aamp(signals: np.ndarray, ratio: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """Loop-by-loop AAMP straight from the spec's wording (independent of the vectorised code)."""
    b, c, t = signals.shape
    out = np.zeros((b, c, t), dtype=bool)
    for i in range(b):
        k = int(np.clip(np.round(ratio[i] * t), 1, t - 1))
        for j in range(c):
            order = np.argsort(signals[i, j], kind="stable")
            centre = int(np.floor(xi[i, j] * t))
            start = min(max(centre - k // 2, 0), t - k)
            out[i, j, order[start:start + k]] = True
    return out


def test_aamp_matches_loop_reference_on_real_eeg():
    signals, _, _ = eegmat_batch(n_windows=4)
    ratio = torch.tensor([0.2, 0.35, 0.5, 0.5])
    mask = aamp_mask(signals, ratio, torch.Generator().manual_seed(3))
    xi = torch.rand(4, signals.shape[1], generator=torch.Generator().manual_seed(3))
    expected = _reference_aamp(signals.numpy(), ratio.numpy(), xi.numpy())
    np.testing.assert_array_equal(mask.numpy(), expected)


def test_aamp_counts_and_amplitude_band_on_real_eeg():
    signals, _, _ = eegmat_batch(n_windows=8)
    cfg = MaskConfig(strategy="aamp", ratios=(0.2, 0.35, 0.5))
    spec = make_mask(signals, cfg, torch.Generator().manual_seed(0))
    t = signals.shape[-1]
    assert all(any(abs(r - a) < 1e-6 for a in cfg.ratios) for r in spec.ratio.tolist())
    counts = spec.mask.sum(-1)  # (B, C)
    expected = torch.round(spec.ratio * t).long()[:, None].expand_as(counts)
    torch.testing.assert_close(counts, expected)
    for i in range(signals.shape[0]):
        for j in range(signals.shape[1]):
            values, masked = signals[i, j], spec.mask[i, j]
            low, high = values[masked].min(), values[masked].max()
            inside = (values > low) & (values < high)
            assert not (inside & ~masked).any(), (i, j)
    # scattered in time: a band of amplitudes is not one contiguous block of samples
    runs = (spec.mask[..., 1:] & ~spec.mask[..., :-1]).sum(-1)
    assert runs.float().mean() > 5


def test_ratios_drawn_from_the_set_and_all_used():
    signals = torch.randn(300, 2, 40)
    cfg = MaskConfig(ratios=(0.2, 0.35, 0.5))
    spec = make_mask(signals, cfg, torch.Generator().manual_seed(1))
    seen = {round(r, 6) for r in spec.ratio.tolist()}
    assert seen == {0.2, 0.35, 0.5}


def test_random_mask_count_exact_and_uniform():
    signals = torch.zeros(64, 3, 100)
    ratio = torch.full((64,), 0.35)
    mask = random_mask(signals, ratio, torch.Generator().manual_seed(2))
    assert (mask.sum(-1) == 35).all()
    share = mask.float().mean(dim=(0, 1))  # (T,) per time point, over 192 channels
    assert share.min() > 0.15 and share.max() < 0.6
    assert not torch.equal(mask[0, 0], mask[0, 1])


def test_make_mask_is_reproducible_and_skips_padded_channels():
    signals = torch.randn(3, 4, 64)
    channel_mask = torch.tensor([[True, True, True, False]] * 3)
    cfg = MaskConfig()
    a = make_mask(signals, cfg, torch.Generator().manual_seed(5), channel_mask)
    b = make_mask(signals, cfg, torch.Generator().manual_seed(5), channel_mask)
    assert torch.equal(a.mask, b.mask) and torch.equal(a.replace, b.replace)
    assert not a.mask[:, 3].any()
    assert (a.replace[:, 3] == REPLACE_KEEP).all()


def test_replacement_shares_follow_bert_rule():
    mask = torch.ones(200, 10, 100, dtype=torch.bool)
    mask[:, :, :50] = False
    codes = replacement_codes(mask, MaskConfig(), torch.Generator().manual_seed(0))
    assert codes.dtype == torch.int8
    assert (codes[~mask] == REPLACE_KEEP).all()
    masked = codes[mask]
    n = masked.numel()  # 100 000 tokens: binomial std of a 10 % share is about 0.1 %
    assert abs((masked == REPLACE_MASK).float().mean().item() - 0.8) < 0.006
    assert abs((masked == REPLACE_RANDOM).float().mean().item() - 0.1) < 0.005
    assert abs((masked == REPLACE_KEEP).float().mean().item() - 0.1) < 0.005
    assert n == 100_000


def test_donors_are_visible_tokens_of_real_channels():
    signals = torch.randn(4, 5, 32)
    channel_mask = torch.ones(4, 5, dtype=torch.bool)
    channel_mask[1, 3:] = False
    spec = make_mask(signals, MaskConfig(ratios=(0.5,)), torch.Generator().manual_seed(0),
                     channel_mask)
    donor = draw_donors(spec, channel_mask, torch.Generator().manual_seed(1))
    visible = (~spec.mask & channel_mask[..., None]).flatten()
    assert visible[donor.flatten()].all()
    assert donor.unique().numel() > 100  # spread over many visible tokens, not one


def test_bad_shapes_raise():
    with pytest.raises(NeuriptError, match="shape"):
        make_mask(torch.randn(4, 32), MaskConfig())
