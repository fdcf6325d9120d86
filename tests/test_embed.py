"""Token embedding and position codes (neuript.model.embed) against independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neuript.errors import NeuriptError
from neuript.model.embed import (
    SpatialCode,
    TokenEmbedding,
    axis_split,
    grid_coordinates,
    temporal_code,
)

# A few 10-20 electrodes (metres, MNE standard_1005 head frame, rounded): Fp1, Cz, O2, T7.
POSITIONS_M = torch.tensor(
    [[-0.0294, 0.0839, -0.0070], [0.0004, -0.0092, 0.1003], [0.0302, -0.1050, 0.0113],
     [-0.0841, -0.0160, -0.0095]]
)


def reference_sinusoid(pos: np.ndarray, dims: int, max_period: float) -> np.ndarray:
    """Textbook sinusoid: column 2i = sin(p / P^(2i/d)), 2i+1 = cos(...)."""
    out = np.zeros((len(pos), dims))
    for j in range(dims):
        i = j // 2
        angle = pos / max_period ** (2 * i / dims)
        out[:, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return out


def test_token_embedding_is_a_linear_map_of_each_sample() -> None:
    emb = TokenEmbedding(8)
    signals = torch.randn(2, 3, 5)
    tokens = emb(signals)
    assert tokens.shape == (2, 3, 5, 8)
    expected = signals[..., None] * emb.proj.weight[:, 0] + emb.proj.bias
    torch.testing.assert_close(tokens, expected)


@pytest.mark.parametrize("d", [16, 7])
def test_temporal_code_matches_textbook_formula(d: int) -> None:
    code = temporal_code(50, d)
    assert code.shape == (50, d)
    ref = reference_sinusoid(np.arange(50.0), d, 10_000.0)
    np.testing.assert_allclose(code.numpy(), ref, atol=1e-5)


def test_axis_split_covers_width() -> None:
    assert axis_split(768) == (256, 256, 256)
    assert axis_split(64) == (22, 21, 21)
    assert axis_split(32) == (11, 11, 10)


def test_3d_code_is_per_axis_sinusoid_in_mm() -> None:
    d = 32
    code = SpatialCode(d, "3d")(POSITIONS_M[None], torch.ones(1, 4, dtype=torch.bool))[0]
    widths = axis_split(d)
    start = 0
    for axis, width in enumerate(widths):
        ref = reference_sinusoid(POSITIONS_M[:, axis].double().numpy() * 1000.0, width, 1000.0)
        np.testing.assert_allclose(code[:, start : start + width].numpy(), ref, atol=1e-4)
        start += width


def test_3d_code_does_not_depend_on_the_montage_and_pads_are_zero() -> None:
    coder = SpatialCode(24, "3d")
    full = coder(POSITIONS_M[None], torch.ones(1, 4, dtype=torch.bool))[0]
    mask = torch.tensor([[True, True, False, False]])
    part = coder(POSITIONS_M[None], mask)[0]
    torch.testing.assert_close(part[:2], full[:2])
    assert part[2:].abs().max() == 0


def test_3d_code_separates_neighbouring_electrodes() -> None:
    coder = SpatialCode(64, "3d")
    close = torch.tensor([[[0.0, 0.0, 0.1], [0.01, 0.0, 0.1]]])  # 10 mm apart
    code = coder(close, torch.ones(1, 2, dtype=torch.bool))[0]
    assert (code[0] - code[1]).norm() > 1.0


def test_grid_code_rescales_each_montage_to_the_grid() -> None:
    mask = torch.tensor([[True, True, True, False]])
    grid = grid_coordinates(POSITIONS_M[None], mask, 50)[0]
    present = POSITIONS_M[:3]
    for axis in range(3):
        lo, hi = present[:, axis].min(), present[:, axis].max()
        expected = torch.round((present[:, axis] - lo) / (hi - lo) * 49)
        torch.testing.assert_close(grid[:3, axis], expected)
    assert grid[3].abs().max() == 0
    # The same electrode moves on the grid when the montage changes (the authors' behaviour).
    all_four = grid_coordinates(POSITIONS_M[None], torch.ones(1, 4, dtype=torch.bool), 50)[0]
    assert not torch.equal(all_four[:3], grid[:3])


def test_grid_code_is_sinusoid_of_grid_index() -> None:
    mask = torch.ones(1, 4, dtype=torch.bool)
    code = SpatialCode(30, "grid", grid_size=50)(POSITIONS_M[None], mask)[0]
    grid = grid_coordinates(POSITIONS_M[None], mask, 50)[0]
    ref = reference_sinusoid(grid[:, 0].double().numpy(), 10, 10_000.0)
    np.testing.assert_allclose(code[:, :10].numpy(), ref, atol=1e-5)


def test_index_and_none_codes() -> None:
    mask = torch.tensor([[True, True, True, False]])
    index = SpatialCode(16, "index")(POSITIONS_M[None], mask)[0]
    ref = reference_sinusoid(np.arange(4.0), 16, 10_000.0)
    np.testing.assert_allclose(index[:3].numpy(), ref[:3], atol=1e-5)
    assert index[3].abs().max() == 0
    none = SpatialCode(16, "none")(POSITIONS_M[None], mask)
    assert none.shape == (1, 4, 16) and none.abs().max() == 0


def test_spatial_code_rejects_bad_options() -> None:
    with pytest.raises(NeuriptError, match="kind"):
        SpatialCode(16, "sphere")  # type: ignore[arg-type]
    with pytest.raises(NeuriptError, match="grid_size"):
        SpatialCode(16, "grid", grid_size=1)


def test_codes_are_finite_and_bounded() -> None:
    code = temporal_code(4096, 64)
    assert torch.isfinite(code).all() and code.abs().max() <= 1.0 + 1e-6
    assert math.isclose(float(code[0, 1]), 1.0)
