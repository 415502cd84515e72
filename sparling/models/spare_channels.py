"""Spare motif channels: train ĝ with more channels than it keeps, then keep the best-paired ones.

With exactly as many channels as symbols, which symbol each channel settles on is decided early,
and two channels that settle on the same digit leave another digit to no channel (the failure
that bench/TRIALS.md follows through DigitCircle's cpu runs). With spare channels that costs
nothing: a duplicate is simply one of the channels later dropped. At ``select_samples`` the
model keeps ``num_motifs`` channels: those paired one to one with the output symbols
(Hungarian on the correlation of each channel's spatial maximum with the symbol's presence in y,
over the validation inputs; labels only, never the motifs), the rest dropped from ĝ's last conv,
the bottleneck and the head alike. From then on the model is the configured one: ĝ, the
bottleneck and the head have ``num_motifs`` channels, as at every preset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["SpareChannelsConfig", "correlation", "paired_channels", "channel_axes", "select_along"]


@dataclass(frozen=True)
class SpareChannelsConfig:
    """``count`` channels beyond ``MotifNetConfig.num_motifs`` until ``select_samples`` training
    samples (a multiple of the validation interval: selection happens at a validation)."""

    count: int = 10
    select_samples: int = 30_720

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")
        if self.select_samples < 1:
            raise ValueError(f"select_samples must be >= 1, got {self.select_samples}")


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the columns of a (N, C) with those of b (N, S) → (C, S); a constant
    column correlates 0 with everything."""
    a, b = a.double() - a.double().mean(0), b.double() - b.double().mean(0)
    norm = a.norm(dim=0).unsqueeze(1) * b.norm(dim=0).unsqueeze(0)
    return torch.where(norm > 0, (a.T @ b) / norm.clamp_min(1e-300), torch.zeros_like(norm))


def paired_channels(channel_max: torch.Tensor, present: torch.Tensor, keep: int) -> list[int]:
    """channel_max (N, C) each channel's spatial maximum, present (N, S) 0/1 → the ``keep`` < C
    channels to keep, ascending.

    The channels of a one-to-one pairing with the symbols that maximises the summed correlation;
    of those, the ``keep`` best paired if there are more; if fewer (S < keep), the rest are the
    unpaired channels that correlate most with any symbol.
    """
    channels = channel_max.shape[1]
    if not 0 < keep < channels:
        raise ValueError(f"keep must be in [1, {channels}), got {keep}")
    if present.shape[0] != channel_max.shape[0]:
        raise ValueError(f"{channel_max.shape[0]} inputs of channel maxima but {present.shape[0]} of presences")
    corr = correlation(channel_max, present).numpy()  # (C, S)
    rows, cols = linear_sum_assignment(corr, maximize=True)
    paired = sorted(zip(rows, cols), key=lambda rc: -corr[rc])
    chosen = [int(r) for r, _ in paired[:keep]]
    if len(chosen) < keep:
        rest = sorted(set(range(channels)) - set(chosen), key=lambda c: -corr[c].max())
        chosen += rest[: keep - len(chosen)]
    return sorted(chosen)


def channel_axes(larger: Mapping[str, torch.Tensor], smaller: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """The state entries whose shape differs between two state dicts of the same model built
    with more and fewer channels → the axis along which each holds the channels."""
    if larger.keys() != smaller.keys():
        raise ValueError(f"the two models differ in their entries: {sorted(larger.keys() ^ smaller.keys())}")
    axes = {}
    for name, tensor in larger.items():
        differ = [axis for axis, (a, b) in enumerate(zip(tensor.shape, smaller[name].shape)) if a != b]
        if len(differ) > 1:
            raise ValueError(f"{name} has channels on more than one axis ({tuple(tensor.shape)}); "
                             "spare channels cannot be dropped from it")
        if differ:
            axes[name] = differ[0]
    return axes


def select_along(tensor: torch.Tensor, axis: int, keep: Sequence[int]) -> torch.Tensor:
    """The entries ``keep`` of ``tensor`` along ``axis`` (a copy)."""
    return tensor.index_select(axis, torch.as_tensor(list(keep), dtype=torch.long, device=tensor.device)).clone()
