"""Symbol claims: a label-only repair for motif channels that carry no symbol of their own.

At every validation, each channel's spatial maximum of the motif map over the validation inputs
is correlated with each output symbol's presence in y, and channels are paired one to one with
symbols so that the summed correlation is largest (Hungarian). A channel whose paired
correlation is below ``min_correlation`` is *free*: it duplicates another channel's symbol or
fires on background, and its pairing names a symbol that no channel carries. Until the next
validation each free channel gets a multiple-instance loss: the presence of its symbol in y,
predicted from a log-mean-exp of the channel's pre-activations over the positions away from the
other channels' peaks (those hold the symbols the other channels carry).

Only y is used, never the ground-truth motifs. Why it exists: with the cpu head a symbol that no
channel's peak lands on gets no gradient in ĝ, and a duplicate that forms early survives to the
bar. It is off (``ModelConfig.claims = None``) in every preset: on DigitCircle it finds the free
channel and its symbol exactly, but in 25–55k samples the loss did not make ĝ fire on the
missing digit (bench/TRIALS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ClaimConfig:
    """``start_samples``: training samples before the first pairing (channels settle first);
    ``sharpness``: β of the log-mean-exp, on pre-activations in units of their batch std;
    ``exclusion_radius``: map positions around the other channels' peaks left out of the pooling."""

    start_samples: int = 40_960
    min_correlation: float = 0.5
    weight: float = 1.0
    sharpness: float = 2.0
    exclusion_radius: int = 6
    leave_weight: float = 0.0  # > 0: also push a free channel's response at the other channels' peaks below its open positions'

    def __post_init__(self) -> None:
        if self.start_samples < 0:
            raise ValueError(f"start_samples must be >= 0, got {self.start_samples}")
        if not -1.0 <= self.min_correlation <= 1.0:
            raise ValueError(f"min_correlation must be in [-1, 1], got {self.min_correlation}")
        if self.weight <= 0 or self.sharpness <= 0:
            raise ValueError(f"weight and sharpness must be > 0, got {self.weight} and {self.sharpness}")
        if self.leave_weight < 0:
            raise ValueError(f"leave_weight must be >= 0, got {self.leave_weight}")
        if self.exclusion_radius < 0:
            raise ValueError(f"exclusion_radius must be >= 0, got {self.exclusion_radius}")


def correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the columns of a (N, C) with those of b (N, S) → (C, S); a constant
    column correlates 0 with everything."""
    a, b = a.double() - a.double().mean(0), b.double() - b.double().mean(0)
    norm = a.norm(dim=0).unsqueeze(1) * b.norm(dim=0).unsqueeze(0)
    return torch.where(norm > 0, (a.T @ b) / norm.clamp_min(1e-300), torch.zeros_like(norm))


def free_channel_targets(channel_max: torch.Tensor, present: torch.Tensor, min_correlation: float) -> torch.Tensor:
    """channel_max (N, C), present (N, S) 0/1 → (C,) long: the symbol each free channel is paired
    with, -1 for channels that carry their paired symbol (or are not paired, when C > S)."""
    corr = correlation(channel_max, present).numpy()
    rows, cols = linear_sum_assignment(corr, maximize=True)
    targets = torch.full((channel_max.shape[1],), -1, dtype=torch.long)
    for channel, symbol in zip(rows, cols):
        if corr[channel, symbol] < min_correlation:
            targets[channel] = int(symbol)
    return targets


def near_peaks(m: torch.Tensor, radius: int) -> torch.Tensor:
    """m (N, C, *spatial) → (N, C, *spatial) bool: within ``radius`` (max-norm) of the channel's
    strongest position, for channels that fire at all in that input."""
    flat = m.flatten(2)
    value, index = flat.max(2)
    peak = torch.zeros_like(flat).scatter_(2, index.unsqueeze(-1), (value > 0).to(flat.dtype).unsqueeze(-1))
    pool = F.max_pool2d if m.ndim == 4 else F.max_pool1d
    return pool(peak.view_as(m), 2 * radius + 1, 1, radius) > 0


class SymbolClaims(nn.Module):
    """The free channels' targets (a buffer, so checkpoints keep them) and their probes' scale
    and bias (one per channel)."""

    def __init__(self, config: ClaimConfig, channels: int):
        super().__init__()
        self.config = config
        self.register_buffer("targets", torch.full((channels,), -1, dtype=torch.long))
        self.scale = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    @torch.no_grad()
    def update(self, channel_max: torch.Tensor, present: torch.Tensor, samples: int) -> None:
        """Re-pair from validation maxima (N, C) and presences (N, S), once ``samples`` ≥ start."""
        if samples >= self.config.start_samples:
            self.targets.copy_(free_channel_targets(channel_max.cpu(), present.cpu(), self.config.min_correlation))

    def loss(self, z: torch.Tensor, m: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Weighted BCE of each free channel's pooled pre-activations z (N, C, *spatial) against
        its symbol's presence (N, S); m is the motif map (where the other channels' peaks are)."""
        free = (self.targets >= 0).nonzero().flatten().tolist()
        if not free:
            return z.new_zeros(())
        near = near_peaks(m.detach(), self.config.exclusion_radius)
        beta, total = self.config.sharpness, z.new_zeros(())
        for c in free:
            blocked = torch.cat([near[:, :c], near[:, c + 1:]], 1).any(1).flatten(1)  # (N, positions)
            zc = z[:, c].flatten(1).float()
            scaled = beta * zc / (zc.detach().std() + 1e-6)
            open_z = scaled.masked_fill(blocked, -1e4)  # finite: no NaN gradients
            open_positions = (~blocked).sum(1)
            pooled = (torch.logsumexp(open_z, 1) - open_positions.clamp_min(1).to(zc.dtype).log()) / beta
            logits = self.scale[c] * pooled + self.bias[c]
            target = present[:, int(self.targets[c])]
            usable = open_positions > 0  # an input whose every position is blocked says nothing
            if bool(usable.any()):
                total = total + F.binary_cross_entropy_with_logits(logits[usable], target[usable])
            both = usable & blocked.any(1)
            if self.config.leave_weight and bool(both.any()):
                # the channel's strongest response at another channel's peak should sit below its strongest open one
                claimed = scaled.masked_fill(~blocked, -1e4).amax(1)
                total = total + self.config.leave_weight * F.softplus(claimed - open_z.amax(1))[both].mean()
        return self.config.weight * total
