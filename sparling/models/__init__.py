"""Models: the motif net ĝ, the bottleneck, the head ĥ, composed as ``SparlingModel``.

    x ──ĝ──► pre-activations ──bottleneck──► motif map m ──ĥ──► output tokens
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from sparling.models.heads import (CTCHead, CTCHeadConfig, PaperHead, PaperHeadConfig, PointerHead, PointerHeadConfig,
                                   SetHead, SetHeadConfig, symbol_presence)
from sparling.models.motif_net import MotifNetConfig, ResidualMotifNet
from sparling.models.spare_channels import SpareChannelsConfig, channel_axes, select_along
from sparling.models.vocabulary import Vocabulary
from sparling.sparsity import BottleneckConfig, SparlingConfig, get_density, set_density

__all__ = [
    "ModelConfig",
    "SparlingModel",
    "MotifNetConfig",
    "PaperHeadConfig",
    "PointerHeadConfig",
    "SetHeadConfig",
    "CTCHeadConfig",
    "SpareChannelsConfig",
    "Vocabulary",
]

HeadConfig = PaperHeadConfig | PointerHeadConfig | SetHeadConfig | CTCHeadConfig


@dataclass(frozen=True)
class ModelConfig:
    motif_net: MotifNetConfig = field(default_factory=MotifNetConfig)
    bottleneck: BottleneckConfig = field(default_factory=SparlingConfig)
    head: HeadConfig = field(default_factory=PaperHeadConfig)
    spare_channels: SpareChannelsConfig | None = None  # extra channels early on, the best kept (models/spare_channels.py)


def build_head(config: HeadConfig, num_motifs: int, symbols: Sequence[str]) -> nn.Module:
    vocab_size = len(symbols) + 2  # <s>, </s>, the symbols
    if isinstance(config, PaperHeadConfig):
        return PaperHead(config, num_motifs, vocab_size)
    if isinstance(config, PointerHeadConfig):
        return PointerHead(config, num_motifs, vocab_size)
    if isinstance(config, SetHeadConfig):
        return SetHead(config, num_motifs, vocab_size)
    if isinstance(config, CTCHeadConfig):
        return CTCHead(config, num_motifs, vocab_size)
    raise TypeError(f"unknown head config {type(config).__name__}")


class SparlingModel(nn.Module):
    """ĥ ∘ bottleneck ∘ ĝ for one domain.

    ``symbols`` are the domain's output symbols; ``max_output_length`` bounds greedy decoding
    (decode steps, ``</s>`` included).
    """

    def __init__(self, config: ModelConfig, symbols: Sequence[str], max_output_length: int, density: float = 0.5):
        super().__init__()
        self.config = config
        self.vocabulary = Vocabulary(symbols)
        self.max_output_length = max_output_length
        channels = config.motif_net.num_motifs + (config.spare_channels.count if config.spare_channels else 0)
        c = replace(config.motif_net, num_motifs=channels)
        self.motif_net = ResidualMotifNet(c)
        self.bottleneck = config.bottleneck.build(channels, density, c.spatial_dims)
        self.head = build_head(config.head, channels, symbols)

    @property
    def channels(self) -> int:
        """Motif channels now: ``num_motifs``, plus the spare ones until they are dropped."""
        return self.motif_net.conv_out.out_channels

    def _twin(self, config: ModelConfig, density: float) -> SparlingModel:
        """A model of the same symbols under ``config``, built without touching the global RNG."""
        with torch.random.fork_rng(devices=[]):
            return SparlingModel(config, self.vocabulary.tokens[2:], self.max_output_length, density)

    def _adopt_parts(self, other: SparlingModel) -> None:
        """Take ``other``'s submodules (ĝ, bottleneck, head) in place of this model's own."""
        device = next(self.parameters()).device
        for name, module in other.named_children():
            setattr(self, name, module.to(device).train(self.training))

    @torch.no_grad()
    def select_channels(self, keep: Sequence[int]) -> dict[str, int]:
        """Drop the spare channels: keep channels ``keep`` (``num_motifs`` of them, in that order)
        in ĝ, the bottleneck and the head. Returns the axis of the channels in each state entry
        that had them (for the optimizer's state, ``sparling.training``). The submodules are
        replaced: an optimizer must be rebuilt."""
        wanted = self.config.motif_net.num_motifs
        if self.channels == wanted:
            raise ValueError(f"the model already has its {wanted} channels: no spare ones to drop")
        if len(keep) != wanted or len(set(keep)) != wanted or not all(0 <= k < self.channels for k in keep):
            raise ValueError(f"keep must name {wanted} distinct channels of {self.channels}, got {list(keep)}")
        smaller = self._twin(replace(self.config, spare_channels=None), self.density)
        state = self.state_dict()
        axes = channel_axes(state, smaller.state_dict())
        smaller.load_state_dict({name: select_along(t, axes[name], keep) if name in axes else t
                                 for name, t in state.items()})
        self._adopt_parts(smaller)
        return axes

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``; a state saved after the spare channels were dropped
        drops them here first (which channels does not matter: the state replaces them)."""
        saved = state_dict.get("motif_net.conv_out.weight")
        if saved is not None and self.channels != saved.shape[0] == self.config.motif_net.num_motifs:
            self.select_channels(range(saved.shape[0]))
        return super().load_state_dict(state_dict, strict, assign)

    @property
    def density(self) -> float:
        return get_density(self)

    @density.setter
    def density(self, value: float) -> None:
        set_density(self, value)

    def motif_map(self, x: torch.Tensor) -> torch.Tensor:
        """x (N, 1, *spatial) → motif map m (N, C_m, *spatial), the bottleneck's output."""
        return self.bottleneck(self.motif_net(x))

    def loss(self, x: torch.Tensor, ys: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced token cross-entropy (over ``y </s>``) plus the bottleneck's penalty and
        the head's auxiliary loss, if it has one.

        Returns (total loss, cross-entropy alone), both scalars. A CTC head's "cross-entropy" is its CTC loss.
        """
        m = self.motif_map(x)
        loss, ce = self.head_loss(m, ys)
        return loss + self.bottleneck.penalty(m), ce

    def presence(self, ys: Sequence[Sequence[str]], device: torch.device | str = "cpu") -> torch.Tensor:
        """(N, S) float: 1 where output symbol s (in ``vocabulary.symbols`` order) occurs in y."""
        return symbol_presence(self._teacher_forcing(ys, device)[0], len(self.vocabulary) - 2)

    def head_loss(self, m: torch.Tensor, ys: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``loss`` without ĝ and the bottleneck's penalty, for a given motif map m (N, C_m, *spatial):
        (cross-entropy + the head's auxiliary loss, cross-entropy alone)."""
        tokens, lengths = self._teacher_forcing(ys, m.device)
        head_input = self.bottleneck.to_head(m)
        memory = self.head.encode(head_input)
        target = tokens[:, 1:]
        if isinstance(self.head, CTCHead):
            ce = self.head.sequence_loss(memory, target, lengths)
        else:
            logits = self.head.decode(memory, tokens[:, :-1])
            keep = torch.arange(target.shape[1], device=m.device).unsqueeze(0) <= lengths.unsqueeze(1)  # up to the first </s>
            ce = F.cross_entropy(logits[keep], target[keep])
        loss = ce
        if hasattr(self.head, "auxiliary_loss"):
            loss = loss + self.head.auxiliary_loss(head_input, memory, target)
        return loss, ce

    @torch.no_grad()
    def predict(self, x: torch.Tensor, max_length: int | None = None) -> list[tuple[str, ...]]:
        """Greedy decoding from ``<s>`` for up to ``max_length`` steps; outputs end at ``</s>``."""
        return self.predict_from_map(self.motif_map(x), max_length)

    @torch.no_grad()
    def predict_from_map(self, m: torch.Tensor, max_length: int | None = None) -> list[tuple[str, ...]]:
        """``predict`` for an already computed motif map m (N, C, *spatial)."""
        steps = max_length or self.max_output_length
        memory = self.head.encode(self.bottleneck.to_head(m))
        if isinstance(self.head, CTCHead):
            return [self.vocabulary.decode(ids) for ids in self.head.greedy(memory, steps)]
        tokens = torch.full((m.shape[0], 1), self.vocabulary.bos, dtype=torch.long, device=m.device)
        done = torch.zeros(m.shape[0], dtype=torch.bool, device=m.device)
        for _ in range(steps):
            next_token = self._never_bos(self.head.decode(memory, tokens)[:, -1]).argmax(dim=-1)
            tokens = torch.cat([tokens, next_token.unsqueeze(1)], dim=1)
            done |= next_token == self.vocabulary.eos
            if bool(done.all()):  # later steps cannot change outputs truncated at </s>
                break
        return [self.vocabulary.decode(row[1:].tolist()) for row in tokens.cpu()]

    @torch.no_grad()
    def exact_matches(self, x: torch.Tensor, ys: Sequence[Sequence[str]]) -> torch.Tensor:
        """(N,) bool: does ``predict(x)[i] == ys[i]``? One teacher-forced pass instead of up to
        ``max_output_length`` decoding passes: greedy decoding reproduces ``y </s>`` exactly when
        the argmax after every prefix of ``<s> y </s>`` is its next token (the head is causal)."""
        return self.exact_matches_from_map(self.motif_map(x), ys)

    @torch.no_grad()
    def exact_matches_from_map(self, m: torch.Tensor, ys: Sequence[Sequence[str]]) -> torch.Tensor:
        """``exact_matches`` for an already computed motif map m (N, C, *spatial)."""
        if isinstance(self.head, CTCHead):
            return torch.tensor([tuple(p) == tuple(y) for p, y in zip(self.predict_from_map(m), ys)], device=m.device)
        steps = self.max_output_length
        tokens, lengths = self._teacher_forcing(ys, m.device)
        memory = self.head.encode(self.bottleneck.to_head(m))
        greedy = self._never_bos(self.head.decode(memory, tokens[:, :-1])).argmax(-1)  # (N, T)
        # the decoder emits at most ``steps`` tokens: y of exactly ``steps`` symbols matches without its </s>
        checked = torch.arange(greedy.shape[1], device=m.device).unsqueeze(0) <= lengths.clamp(max=steps - 1).unsqueeze(1)
        agree = ((greedy == tokens[:, 1:]) | ~checked).all(1)
        return agree & (lengths <= steps)

    def _teacher_forcing(self, ys: Sequence[Sequence[str]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids ``<s> y </s>`` padded with ``</s>`` (N, longest + 2) and the lengths of y (N,)."""
        tokens = self.vocabulary.encode(ys, max(len(y) for y in ys) + 2).to(device)
        return tokens, torch.tensor([len(y) for y in ys], device=device)

    def _never_bos(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits (..., V) with ``<s>`` ruled out: it is never an output token."""
        return logits.index_fill(-1, torch.tensor([self.vocabulary.bos], device=logits.device), float("-inf"))
