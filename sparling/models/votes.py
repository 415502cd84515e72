"""Channel votes: a label-only loss that asks each motif channel to mean one symbol.

Each channel c holds a learned vote p_c, a distribution over the output symbols that have a
glyph, and fires in an input with strength f_c = 1 − exp(−κ_c·max m_c) ∈ [0, 1) (its spatial
maximum of the motif map, κ_c > 0 learned). Symbol s is predicted present by a noisy-OR of the
channels' votes, P(s) = 1 − Π_c (1 − f_c·p_c(s)), and the loss is the BCE of P against the
symbols present in y. A channel that fires on two symbols can vote for only one: in the inputs
that hold the other alone, it predicts a symbol that is absent, and the loss lowers its maximum
there (the gradient reaches ĝ at the channel's peak). No negative evidence is possible, so two
channels cannot combine into a third symbol's code, as a linear probe on the maxima lets them.

Only y is used, never the ground-truth motifs. Symbols that always occur together (``(`` and
``)``) cannot be told apart by presence: a channel mixing those is not pushed to split.
Off (``ModelConfig.votes = None``) in every preset: on LaTeX-OCR it left the channels as mixed
as without it (bench/TRIALS.md, "Channel votes").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class VoteConfig:
    """``symbols``: the output symbols a channel may vote for (those with a glyph);
    ``start_density``: the loss applies once the model's density is at or below it;
    ``weight``: the loss's weight beside the output cross-entropy."""

    symbols: tuple[str, ...]
    weight: float = 1.0
    start_density: float = 1.0

    def __post_init__(self) -> None:
        if not self.symbols or len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols must be non-empty and distinct, got {self.symbols!r}")
        if self.weight <= 0:
            raise ValueError(f"weight must be > 0, got {self.weight}")
        if not 0 < self.start_density <= 1:
            raise ValueError(f"start_density must be in (0, 1], got {self.start_density}")


class ChannelVotes(nn.Module):
    """Votes (C, S) as logits and the firing scales κ (C,), as raw parameters. ``symbols``: the
    domain's output symbols, in the order of the presence columns ``loss`` receives."""

    def __init__(self, config: VoteConfig, channels: int, symbols: tuple[str, ...]):
        super().__init__()
        unknown = set(config.symbols) - set(symbols)
        if unknown:
            raise ValueError(f"VoteConfig.symbols {sorted(unknown)} are not output symbols of this domain")
        self.config = config
        self.columns = [symbols.index(s) for s in config.symbols]
        self.vote_logits = nn.Parameter(torch.zeros(channels, len(config.symbols)))
        self.raw_scale = nn.Parameter(torch.full((channels,), 0.5413))  # softplus(0.5413) = 1

    def presence_probability(self, m: torch.Tensor) -> torch.Tensor:
        """m (N, C, *spatial) motif map → (N, S): the noisy-OR of the channels' votes."""
        fire = 1 - torch.exp(-F.softplus(self.raw_scale) * m.flatten(2).amax(-1).float())  # (N, C)
        share = fire.unsqueeze(-1) * torch.softmax(self.vote_logits, -1)  # (N, C, S)
        return 1 - torch.exp(torch.log1p(-share.clamp(max=1 - 1e-6)).sum(1))

    def loss(self, m: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Weighted BCE of ``presence_probability(m)`` against present (N, all output symbols), 0/1."""
        p = self.presence_probability(m).clamp(1e-6, 1 - 1e-6)
        return self.config.weight * F.binary_cross_entropy(p, present[:, self.columns].to(p.dtype))
