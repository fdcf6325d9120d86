"""Token embedding and the temporal / spatial position codes (NEURIPT_SPEC §2).

NeurIPT has no patches: every scalar sample of every channel becomes one token through a
``Linear(1 -> d)``. Two fixed (parameter-free) sinusoidal codes tell tokens apart: a temporal
code over the sample index and a spatial code over the electrode's position.

Spatial code choices
--------------------
``"3d"``  **[beyond]** the width ``d`` is split into three parts (``d // 3`` each, the remainder
          going one dimension at a time to x, then y), and each axis gets a sinusoid of its own
          coordinate, in **millimetres** of the fixed head frame (MNE ``colin27_1005``; the head
          spans about ±100 mm). Frequencies run geometrically from 1 rad/mm (a 6.3 mm
          wavelength, finer than the 10-05 spacing) down to 1/``SPATIAL_MAX_PERIOD_MM`` rad/mm (a
          wavelength of about 6 m, i.e. a code that is almost linear over the head), so both
          fine and coarse position differences are visible. The same electrode gets the same
          code in every montage.
``"grid"`` the authors' code: per montage (per batch row, over the channels present) each
          axis is rescaled from its min..max onto the integers 0..grid_size-1, then given a
          standard sinusoid (max period 10000) of the grid index. An electrode's code therefore
          depends on which other electrodes are present.
``"index"`` a 1D sinusoid of the channel's row index (no geometry; an ablation).
``"none"``  zeros.

Padded channels (``channel_mask`` False) always get a zero code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from neuript.config import SpatialCode as SpatialCodeKind
from neuript.errors import NeuriptError, check_option

SPATIAL_KINDS: tuple[str, ...] = ("3d", "grid", "index", "none")
"""Accepted values of ``SpatialCode(kind=...)``; mirrors ``config.SpatialCode``."""
TEMPORAL_MAX_PERIOD: float = 10_000.0
"""Longest period (in samples, over 2π) of the temporal code: the transformer standard."""
SPATIAL_MAX_PERIOD_MM: float = 1_000.0
"""Longest period (in mm, over 2π) of the ``"3d"`` spatial code."""
METRES_TO_MM: float = 1_000.0
"""Positions arrive in metres; the ``"3d"`` code works in millimetres."""


def sinusoid(positions: Tensor, dims: int, max_period: float) -> Tensor:
    """Sinusoidal code of scalar positions, interleaving sin and cos.

    Dimension pair ``i`` (``2i`` = sin, ``2i+1`` = cos) uses the angular frequency
    ``max_period ** (-2i / dims)``; an odd ``dims`` ends with a lone sine.

    Parameters
    ----------
    positions : Tensor, shape (...,), float
        Positions (in the unit the frequencies are meant for).
    dims : int
        Code width.
    max_period : float
        Longest period (over 2π) of the code, in the unit of ``positions``.

    Returns
    -------
    code : Tensor, shape (..., dims), float32
    """
    n_pairs = (dims + 1) // 2
    exponent = torch.arange(n_pairs, device=positions.device, dtype=torch.float32) * (2.0 / dims)
    freqs = torch.exp(-math.log(max_period) * exponent)  # (dims/2,)
    angles = positions.float().unsqueeze(-1) * freqs  # (..., dims/2)
    code = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)  # (..., 2*ceil(dims/2))
    return code[..., :dims]


def temporal_code(n: int, d: int, device: torch.device | str | None = None) -> Tensor:
    """Standard transformer sinusoid over the sample index ``0..n-1``.

    Parameters
    ----------
    n : int
        Number of time steps (tokens per channel).
    d : int
        Code width.
    device : torch.device | str | None
        Where to build the code.

    Returns
    -------
    code : Tensor, shape (n, d), float32
    """
    steps = torch.arange(n, device=device, dtype=torch.float32)
    return sinusoid(steps, d, TEMPORAL_MAX_PERIOD)


def axis_split(d: int) -> tuple[int, int, int]:
    """Widths of the x, y and z parts of a ``"3d"`` code (sum ``d``; remainder to x, then y)."""
    base, rest = divmod(d, 3)
    return tuple(base + (1 if i < rest else 0) for i in range(3))  # type: ignore[return-value]


def grid_coordinates(positions: Tensor, channel_mask: Tensor, grid_size: int) -> Tensor:
    """The authors' per-montage integer grid: each axis min..max -> 0..grid_size-1, rounded.

    Parameters
    ----------
    positions : Tensor, shape (B, C, 3), float, metres
    channel_mask : Tensor, shape (B, C), bool
        Only real channels enter the min/max of their row.
    grid_size : int

    Returns
    -------
    grid : Tensor, shape (B, C, 3), float32 integer values in [0, grid_size - 1]
    """
    valid = channel_mask.unsqueeze(-1)  # (B, C, 1)
    pos = positions.float()
    lo = torch.where(valid, pos, torch.inf).amin(dim=1, keepdim=True)  # (B, 1, 3)
    hi = torch.where(valid, pos, -torch.inf).amax(dim=1, keepdim=True)
    span = (hi - lo).clamp_min(1e-9)
    grid = ((pos - lo) / span * (grid_size - 1)).round()
    return torch.where(valid, grid, 0.0).clamp(0, grid_size - 1)


class TokenEmbedding(nn.Module):
    """One token per sample: ``Linear(1 -> d)`` applied to every scalar.

    Parameters
    ----------
    d : int
        Token width.
    """

    def __init__(self, d: int) -> None:
        super().__init__()
        self.proj = nn.Linear(1, d)

    def forward(self, signals: Tensor) -> Tensor:
        """Embed every sample.

        Parameters
        ----------
        signals : Tensor, shape (B, C, T), float
            Model input (compressed µV).

        Returns
        -------
        tokens : Tensor, shape (B, C, T, d)
        """
        # x·w + b for every scalar: the Linear(1 -> d) as one fused multiply-add (a K = 1 matmul
        # is far slower at this size)
        return torch.addcmul(self.proj.bias, signals.unsqueeze(-1), self.proj.weight[:, 0])


class SpatialCode(nn.Module):
    """Parameter-free spatial position code of each channel (see the module notes).

    Parameters
    ----------
    d : int
        Code width.
    kind : {"3d", "grid", "index", "none"}
    grid_size : int
        Grid points per axis for ``kind="grid"``.
    """

    def __init__(self, d: int, kind: SpatialCodeKind = "3d", grid_size: int = 50) -> None:
        super().__init__()
        check_option("SpatialCode.kind", kind, SPATIAL_KINDS)
        if kind in ("3d", "grid") and d < 3:
            raise NeuriptError(f"SpatialCode: d={d} is too small for a per-axis code (need >= 3)")
        if grid_size < 2:
            raise NeuriptError(f"SpatialCode.grid_size must be >= 2, got {grid_size}")
        self.d, self.kind, self.grid_size = d, kind, grid_size

    def extra_repr(self) -> str:
        return f"d={self.d}, kind={self.kind!r}, grid_size={self.grid_size}"

    def forward(self, positions: Tensor, channel_mask: Tensor) -> Tensor:
        """Code every channel; padded channels get zeros.

        Parameters
        ----------
        positions : Tensor, shape (B, C, 3), float, metres in the fixed head frame
        channel_mask : Tensor, shape (B, C), bool
            True for a real channel.

        Returns
        -------
        code : Tensor, shape (B, C, d), float32
        """
        b, c, _ = positions.shape
        if self.kind == "none":
            return positions.new_zeros(b, c, self.d, dtype=torch.float32)
        if self.kind == "index":
            index = torch.arange(c, device=positions.device, dtype=torch.float32).expand(b, c)
            code = sinusoid(index, self.d, TEMPORAL_MAX_PERIOD)
        else:
            if self.kind == "3d":
                coords, max_period = positions * METRES_TO_MM, SPATIAL_MAX_PERIOD_MM
            else:
                coords = grid_coordinates(positions, channel_mask, self.grid_size)
                max_period = TEMPORAL_MAX_PERIOD
            parts = [
                sinusoid(coords[..., axis], width, max_period)
                for axis, width in enumerate(axis_split(self.d))
            ]
            code = torch.cat(parts, dim=-1)  # (B, C, d)
        return code * channel_mask.unsqueeze(-1)
