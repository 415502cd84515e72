"""Heads ĥ: motif map → output sequence. Each head consumes only the bottleneck's output.

Interface: ``encode(m) -> memory (N, S, d)`` and ``decode(memory, tokens) -> logits (N, T, V)``
with teacher forcing (a causal mask inside); greedy decoding lives in the composed model.

- ``PaperHead`` (preset ``paper``, spec §4.3–4.5): 1×1 conv C → 512 + 8×8 max-pool, a row
  BiLSTM, sinusoidal row positions, a 6-layer transformer encoder, a 6-layer transformer
  decoder (post-norm, d 512, 8 heads, ff 2048, dropout 0.1).
- ``GridHead`` (presets ``cpu``/``smoke``): per-channel max-pool to a coarse grid, each cell a
  token carrying its pooled values and 2-D Fourier features of its position, then a small
  pre-norm transformer encoder–decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """The standard sinusoidal position table (length, dim)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """Additive (length, length) mask: −inf above the diagonal."""
    return torch.triu(torch.full((length, length), float("-inf"), device=device), diagonal=1)


class TokenDecoder(nn.Module):
    """Token embedding + sinusoidal positions → transformer decoder → vocabulary logits."""

    def __init__(self, vocab_size: int, d_model: int, heads: int, layers: int, feedforward: int,
                 dropout: float, norm_first: bool, max_length: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.register_buffer("positions", sinusoidal_table(max_length, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerDecoderLayer(d_model, heads, feedforward, dropout, batch_first=True, norm_first=norm_first)
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(d_model) if norm_first else None)
        self.out = nn.Linear(d_model, vocab_size)

    def forward(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        h = self.dropout(self.embed(tokens) + self.positions[:t])
        h = self.decoder(h, memory, tgt_mask=causal_mask(t, tokens.device), tgt_is_causal=True)
        return self.out(h)


@dataclass(frozen=True)
class PaperHeadConfig:
    """The authors' head (spec §4.3–4.5)."""

    channels: int = 512
    pool: int = 8
    heads: int = 8
    encoder_layers: int = 6
    decoder_layers: int = 6
    feedforward: int = 2048
    dropout: float = 0.1


class PaperHead(nn.Module):
    def __init__(self, config: PaperHeadConfig, num_motifs: int, vocab_size: int):
        super().__init__()
        c = config.channels
        self.collapse = nn.Conv2d(num_motifs, c, 1)
        self.pool = nn.MaxPool2d(config.pool)
        self.row_lstm = nn.LSTM(c, c // 2, bidirectional=True, batch_first=True)
        self.register_buffer("row_positions", sinusoidal_table(5000, c), persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(c, config.heads, config.feedforward, config.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.encoder_layers, enable_nested_tensor=False)
        self.decoder = TokenDecoder(vocab_size, c, config.heads, config.decoder_layers, config.feedforward,
                                    config.dropout, norm_first=False)

    def encode(self, m: torch.Tensor) -> torch.Tensor:
        """(N, C_m, H, W) → memory (N, H'·W', 512)."""
        g = self.pool(self.collapse(m))  # (N, c, H', W')
        n, c, h, w = g.shape
        rows = g.permute(0, 2, 3, 1).reshape(n * h, w, c)  # each row is a sequence along the width
        rows, _ = self.row_lstm(rows)
        rows = rows.reshape(n, h, w, c) + self.row_positions[:h].view(1, h, 1, c)  # row index
        return self.encoder(self.dropout(rows).reshape(n, h * w, c))

    def decode(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(memory, tokens)


@dataclass(frozen=True)
class GridHeadConfig:
    """A CPU-sized head (see the module docstring)."""

    pool: int = 5
    d_model: int = 64
    heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    feedforward: int = 256
    fourier_features: int = 16
    dropout: float = 0.0


class GridHead(nn.Module):
    def __init__(self, config: GridHeadConfig, num_motifs: int, vocab_size: int):
        super().__init__()
        d = config.d_model
        self.pool = nn.MaxPool2d(config.pool)
        self.value_proj = nn.Linear(num_motifs, d)
        self.register_buffer("frequencies", torch.randn(2, config.fourier_features,
                                                        generator=torch.Generator().manual_seed(0)) * 3.0,
                             persistent=False)
        self.position_proj = nn.Linear(2 * config.fourier_features, d)
        layer = nn.TransformerEncoderLayer(d, config.heads, config.feedforward, config.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.encoder_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.decoder = TokenDecoder(vocab_size, d, config.heads, config.decoder_layers, config.feedforward,
                                    config.dropout, norm_first=True)

    def _positions(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """Fourier features of cell centres in [−1, 1]² → (H·W, 2F)."""
        rows = (torch.arange(h, device=device) + 0.5) / h * 2 - 1
        cols = (torch.arange(w, device=device) + 0.5) / w * 2 - 1
        grid = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
        angles = math.pi * grid @ self.frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def encode(self, m: torch.Tensor) -> torch.Tensor:
        g = self.pool(m)  # (N, C, H', W')
        n, c, h, w = g.shape
        tokens = self.value_proj(g.permute(0, 2, 3, 1).reshape(n, h * w, c))
        tokens = tokens + self.position_proj(self._positions(h, w, m.device))
        return self.encoder(tokens)

    def decode(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(memory, tokens)
