"""The motif net ĝ: a local residual conv net with a bounded receptive field (spec §4.1).

conv_in (1×1, in → hidden), then ``residual_units`` pre-activation units
(BN → ReLU → conv k3 → BN → ReLU → conv k3, plus the identity), then conv_out (1×1,
hidden → num_motifs). Each unit widens the receptive field by 4, so RF = 4·units + 1
(17 for DigitCircle's 4 units). Output: pre-activations (N, num_motifs, *spatial) for the
bottleneck.

``stride`` s > 1 (a CPU economy for large inputs): ĝ reads the input in s×s blocks
(pixel-unshuffle: conv_in sees each block's s² pixels) and emits one motif position per
block, so the map is s× coarser per axis and every map-sized operation (the bottleneck, the
head) is s^d× cheaper. A map position sees the (4·units + 1) blocks around its own along each
axis: RF = s·(4·units + 1) input pixels, block-aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class MotifNetConfig:
    """ĝ's shape. ``spatial_dims`` 2 for images (N, C, H, W), 1 for sequences (N, C, L)."""

    in_channels: int = 1
    hidden: int = 64
    residual_units: int = 4
    num_motifs: int = 10
    spatial_dims: int = 2
    bf16_body: bool = False  # run conv_in + residual units under bfloat16 autocast (conv_out stays fp32)
    stride: int | None = None  # s > 1: one motif position per s×s block of the input (None = 1: off, out of run keys)

    def __post_init__(self) -> None:
        for name in ("in_channels", "hidden", "residual_units", "num_motifs", "map_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.spatial_dims not in (1, 2):
            raise ValueError(f"spatial_dims must be 1 or 2, got {self.spatial_dims}")

    @property
    def map_stride(self) -> int:
        """Input pixels per motif-map position along each axis."""
        return 1 if self.stride is None else self.stride

    @property
    def receptive_field(self) -> int:
        """In input samples / pixels along each axis (block-aligned when stride > 1)."""
        return self.map_stride * (4 * self.residual_units + 1)


def cpu_computes_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions natively (oneDNN's own check: AVX-512 or AMX on
    x86, BF16 on ARM). Elsewhere (an AVX2-only CPU) autocast's bf16 convolutions fall back to a
    reference path several times slower than fp32 (``bench/precision_speed.py``)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private check: a torch without it gets the safe answer
        return False


def _conv(dims: int, cin: int, cout: int, kernel: int) -> nn.Module:
    return (nn.Conv1d if dims == 1 else nn.Conv2d)(cin, cout, kernel, padding=kernel // 2)


def _norm(dims: int, channels: int) -> nn.Module:
    return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(channels)


class ResidualUnit(nn.Module):
    """Pre-activation residual unit: x + conv(relu(bn(conv(relu(bn(x))))))."""

    def __init__(self, channels: int, dims: int):
        super().__init__()
        self.body = nn.Sequential(
            _norm(dims, channels), nn.ReLU(), _conv(dims, channels, channels, 3),
            _norm(dims, channels), nn.ReLU(), _conv(dims, channels, channels, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualMotifNet(nn.Module):
    """ĝ: (N, in_channels, *spatial) → (N, num_motifs, *spatial / stride) pre-activations."""

    def __init__(self, config: MotifNetConfig):
        super().__init__()
        self.config = config
        d, block = config.spatial_dims, config.map_stride ** config.spatial_dims
        self.conv_in = _conv(d, config.in_channels * block, config.hidden, 1)
        self.units = nn.Sequential(*[ResidualUnit(config.hidden, d) for _ in range(config.residual_units)])
        self.conv_out = _conv(d, config.hidden, config.num_motifs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.map_stride
        if s > 1:
            if any(size % s for size in x.shape[2:]):
                raise ValueError(f"input size {tuple(x.shape[2:])} is not divisible by the motif net's stride {s}")
            x = _unshuffle(x, s)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.config.bf16_body):
            h = self.units(self.conv_in(x))
        # conv_out and the bottleneck stay in fp32: bf16 motif values tie often and break the
        # quantile threshold.
        with torch.autocast(x.device.type, enabled=False):
            return self.conv_out(h.to(self.conv_out.weight.dtype))


def _unshuffle(x: torch.Tensor, s: int) -> torch.Tensor:
    """(N, C, *spatial) → (N, C·s^d, *spatial/s): each block's pixels become channels."""
    if x.ndim == 4:
        return F.pixel_unshuffle(x, s)
    n, c, length = x.shape
    return x.view(n, c, length // s, s).permute(0, 1, 3, 2).reshape(n, c * s, length // s)

