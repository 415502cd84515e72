"""Heads ĥ: motif map → output sequence. Each head consumes only the bottleneck's output.

Interface: ``encode(m) -> memory (N, S, d)`` and ``decode(memory, tokens) -> logits (N, T, V)``
with teacher forcing (a causal mask inside); greedy decoding lives in the composed model.

- ``PaperHead`` (preset ``paper``, spec §4.3–4.5): 1×1 conv C → 512 + 8×8 max-pool, a row
  BiLSTM, sinusoidal row positions, a 6-layer transformer encoder, a 6-layer transformer
  decoder (post-norm, d 512, 8 heads, ff 2048, dropout 0.1).
- ``PointerHead`` (presets ``cpu``/``smoke``): the strongest cells (or each channel's
  strongest pixels) as tokens and a pointer decoder. Fed ground-truth-like maps it learns the
  DigitCircle order in 10–30k samples, where a standard transformer decoder of the same size
  plateaus near 15 % exact match for 100k+ samples (measured in throwaway prototypes).
- ``SetHead`` (no preset uses it; a bench does): the map's largest entries as a set of
  tokens, a small pre-norm transformer encoder and decoder. Fed ground-truth LaTeX maps it learns
  to read far faster per sample than the small paper head the LaTeX cpu preset uses, at a quarter
  of its cost (``bench/latex_head_probe.py``), but trained end to end its ĝ learns more slowly.

A head may define ``auxiliary_loss(m, memory, targets)``, added to the loss (labels only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


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


class EntryTokens(nn.Module):
    """A motif map's ``count`` largest entries as tokens (N, count, d): a channel embedding, log1p of
    the value and Fourier features of the position; entries that are 0 become one learned "absent" token."""

    def __init__(self, num_motifs: int, d: int, count: int, fourier: int):
        super().__init__()
        self.count, self.fourier = count, fourier
        self.channel_embedding = nn.Embedding(num_motifs, d)
        self.value = nn.Linear(1, d)
        self.position = nn.Sequential(nn.Linear(2 + 4 * fourier, d), nn.GELU(), nn.Linear(d, d))
        self.absent = nn.Parameter(torch.randn(d) * 0.02)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        n, c, h, w = m.shape
        values, index = m.flatten(1).topk(min(self.count, c * h * w), dim=1)  # (N, k)
        channel, cell = index // (h * w), index % (h * w)
        rows = ((cell // w).to(m.dtype) + 0.5) / h * 2 - 1
        cols = ((cell % w).to(m.dtype) + 0.5) / w * 2 - 1
        position = fourier_features(torch.stack([rows, cols], -1), self.fourier)
        tokens = self.channel_embedding(channel) + self.value(torch.log1p(values).unsqueeze(-1)) + self.position(position)
        return torch.where((values > 0).unsqueeze(-1), tokens, self.absent.expand_as(tokens))


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
    spatial_dims: int = 2  # 1: the audio variant (1-D collapse and pool over time, no row LSTM)


class PaperHead(nn.Module):
    def __init__(self, config: PaperHeadConfig, num_motifs: int, vocab_size: int):
        super().__init__()
        c = config.channels
        self.spatial_dims = config.spatial_dims
        if config.spatial_dims == 1:
            self.collapse = nn.Conv1d(num_motifs, c, 1)
            self.pool = nn.MaxPool1d(config.pool)
        else:
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
        """(N, C_m, H, W) → memory (N, H'·W', 512); 1-D: (N, C_m, L) → (N, L', 512)."""
        if self.spatial_dims == 1:
            g = self.pool(self.collapse(m)).transpose(1, 2)  # (N, L', c)
            return self.encoder(self.dropout(g + self.row_positions[: g.shape[1]]))
        g = self.pool(self.collapse(m))  # (N, c, H', W')
        n, c, h, w = g.shape
        rows = g.permute(0, 2, 3, 1).reshape(n * h, w, c)  # each row is a sequence along the width
        rows, _ = self.row_lstm(rows)
        rows = rows.reshape(n, h, w, c) + self.row_positions[:h].view(1, h, 1, c)  # row index
        return self.encoder(self.dropout(rows).reshape(n, h * w, c))

    def decode(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(memory, tokens)


@dataclass(frozen=True)
class PointerHeadConfig:
    """A CPU-sized head that reads the motif map as a small set of cells and points at them.

    ``cell``: pooling cell size in pixels; ``tokens``: the cells kept (largest activation);
    ``presence_loss``: weight of the auxiliary loss "which symbols occur in y" (labels only).
    """

    cell: int = 5
    tokens: int = 24
    per_channel_tokens: int = 0  # > 0: tokens are each channel's k strongest pixels instead of cells
    d_model: int = 64
    heads: int = 4
    feedforward: int = 256
    fourier_features: int = 4
    centred_fourier_features: int = 3
    presence_loss: float = 1.0
    map_presence_loss: float = 1.0


def symbol_presence(targets: torch.Tensor, num_symbols: int) -> torch.Tensor:
    """Target ids (N, T) over [<s>, </s>, symbols] → (N, num_symbols): 1 where the symbol occurs in y."""
    present = torch.zeros(targets.shape[0], num_symbols + 2, device=targets.device)
    present.scatter_(1, targets, 1.0)
    return present[:, 2:]


def map_presence_bce(probe: nn.Linear, m: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """BCE of ``probe`` (C_m → symbols) applied to each motif channel's spatial maximum of m against
    the symbols present in y (N, symbols): a label-only signal that teaches ĝ where to fire."""
    return F.binary_cross_entropy_with_logits(probe(m.flatten(2).amax(-1)), present)


def fourier_features(x: torch.Tensor, count: int) -> torch.Tensor:
    """(..., 2) coordinates → (..., 2 + 4·count): x, sin and cos of (π/2)·2^k·x, k < count."""
    freq = (2.0 ** torch.arange(count, dtype=x.dtype, device=x.device)) * (math.pi / 2)
    angles = x.unsqueeze(-1) * freq
    return torch.cat([x, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)


def cell_centres(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(h·w, 2) centres of an h×w grid's cells in [-1, 1] (row, column), row-major, on ``like``'s device and dtype."""
    rows = (torch.arange(h, device=like.device) + 0.5) / h * 2 - 1
    cols = (torch.arange(w, device=like.device) + 0.5) / w * 2 - 1
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), -1).view(h * w, 2).to(like.dtype)


class PointerHead(nn.Module):
    """ĥ for the cpu preset: tokens are the ``tokens`` strongest cells of the pooled motif map;
    the decoder points at one token per output step (a pointer network).

    Token j: its pooled channel values, the activation-weighted position of the cell and that
    position relative to the map's centre of mass scaled by its spread (a standard point-cloud
    normalisation), each through Fourier features. A per-token classifier C_j gives symbol
    logits. Decoding step t with previous symbol p: find p's token by attention on C[:, p],
    feed it with the step and symbol embeddings to one pre-norm transformer decoder layer,
    then point: symbol logits = Σ_j softmax(score_j)·C_j, plus an end-of-sequence logit.
    No angle, sorting or circle is built in; positions enter only as features.
    """

    def __init__(self, config: PointerHeadConfig, num_motifs: int, vocab_size: int, max_length: int = 32):
        super().__init__()
        d, self.config = config.d_model, config
        self.num_symbols = vocab_size - 2
        self.content = nn.Linear(num_motifs, d)
        self.channel_embedding = nn.Parameter(torch.randn(num_motifs, d) * 0.02)
        self.position = nn.Sequential(nn.Linear(2 + 4 * config.fourier_features, d), nn.GELU(), nn.Linear(d, d))
        self.centred = nn.Sequential(nn.Linear(2 + 4 * config.centred_fourier_features, d), nn.GELU(), nn.Linear(d, d))
        self.mass_weights = nn.Parameter(torch.zeros(num_motifs))
        self.token_norm = nn.LayerNorm(d)
        self.classify = nn.Linear(d, self.num_symbols)
        self.lookup_sharpness = nn.Parameter(torch.zeros(()))
        self.start_lookup = nn.Parameter(torch.zeros(d))
        self.lookup = nn.Linear(d, d)
        self.embed = nn.Embedding(vocab_size, d)
        self.steps = nn.Parameter(torch.randn(max_length, d) * 0.02)
        layer = nn.TransformerDecoderLayer(d, config.heads, config.feedforward, 0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.decoder = nn.TransformerDecoder(layer, 1)
        self.decoder_norm = nn.LayerNorm(d)
        self.query, self.key, self.score = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 1)
        self.end = nn.Linear(d, 1)
        self.map_presence = nn.Linear(num_motifs, self.num_symbols)

    def encode(self, m: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) or (N, C, L) → tokens (N, K, d). A 1-D map is read as an image of height 1."""
        if m.ndim == 3:
            m = m.unsqueeze(2)
        n, c, h, w = m.shape
        rows = (torch.arange(h, device=m.device, dtype=m.dtype) + 0.5) / h * 2 - 1
        cols = (torch.arange(w, device=m.device, dtype=m.dtype) + 0.5) / w * 2 - 1
        rr, cc = rows.view(1, 1, h, 1).expand(1, 1, h, w), cols.view(1, 1, 1, w).expand(1, 1, h, w)
        # the map's centre of mass and spread (learned channel weights)
        mass = (m * F.softplus(self.mass_weights).view(1, c, 1, 1)).sum(1)  # (N, H, W)
        weight = mass.sum((1, 2)) + 1e-6
        centre_r = (mass * rr[0, 0]).sum((1, 2)) / weight
        centre_c = (mass * cc[0, 0]).sum((1, 2)) / weight
        spread = ((mass * ((rr[0, 0] - centre_r.view(-1, 1, 1)) ** 2 + (cc[0, 0] - centre_c.view(-1, 1, 1)) ** 2))
                  .sum((1, 2)) / weight).clamp_min(1e-8).sqrt()  # an empty map has spread 0: keep √ differentiable
        centre = torch.stack([centre_r, centre_c], -1).unsqueeze(1)
        if self.config.per_channel_tokens:
            values, position, centred, channel = self._channel_tokens(m, rr, cc, centre, spread)
        else:
            values, position, centred, channel = self._cell_tokens(m, rr, cc, centre, spread)
        # log1p: activation magnitudes grow large (tens) as the map sparsifies; uncompressed they
        # would swamp the position features after the LayerNorm.
        tokens = (self.content(torch.log1p(values)) + self.position(fourier_features(position, self.config.fourier_features))
                  + self.centred(fourier_features(centred / 2, self.config.centred_fourier_features)))
        if channel is not None:
            tokens = tokens + self.channel_embedding[channel]
        return self.token_norm(tokens)

    def _cell_tokens(self, m, rr, cc, centre, spread):
        """The ``tokens`` cells with the largest activation: their pooled values and the
        activation-weighted position of each cell (its centre when the cell is empty)."""
        s = self.config.cell
        if min(m.shape[-2:]) < s:
            raise ValueError(f"cell tokens need a map of at least {s}×{s}, got {tuple(m.shape[-2:])}; use per_channel_tokens")
        pooled = F.max_pool2d(m, s)  # (N, C, h', w')
        gh, gw = pooled.shape[-2:]
        total = m.sum(1, keepdim=True)
        moments = F.avg_pool2d(torch.cat([total, total * rr, total * cc], 1), s).flatten(2).transpose(1, 2)
        centres = cell_centres(gh, gw, m).unsqueeze(0)
        eps = 1e-4
        position = (moments[..., 1:] + eps * centres) / (moments[..., :1] + eps)
        centred = ((position - centre) / (spread.view(-1, 1, 1) + 1e-3)).clamp(-3, 3)
        values = pooled.flatten(2).transpose(1, 2)  # (N, cells, C)
        keep = values.amax(-1).topk(min(self.config.tokens, values.shape[1]), dim=1).indices
        pick = lambda t: t.gather(1, keep.unsqueeze(-1).expand(-1, -1, t.shape[-1]))  # noqa: E731
        return pick(values), pick(position), pick(centred), None

    def _channel_tokens(self, m, rr, cc, centre, spread):
        """Each channel's k strongest pixels: value (in its channel's slot), exact position, channel."""
        n, c, h, w = m.shape
        k = self.config.per_channel_tokens
        top = m.flatten(2).topk(k, dim=2)  # values, indices (N, C, k)
        rows = rr.flatten()[top.indices]  # (N, C, k) normalised coordinates
        cols = cc.flatten()[top.indices]
        position = torch.stack([rows, cols], -1).reshape(n, c * k, 2)
        centred = ((position - centre) / (spread.view(-1, 1, 1) + 1e-3)).clamp(-3, 3)
        channel = torch.arange(c, device=m.device).repeat_interleave(k)  # (C·k,)
        values = torch.zeros(n, c * k, c, device=m.device, dtype=m.dtype)
        values = values.scatter(2, channel.view(1, -1, 1).expand(n, -1, 1), top.values.reshape(n, c * k, 1))
        return values, position, centred, channel

    def decode(self, tokens_memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """memory (N, K, d), input ids (N, T) → logits (N, T, V) over [<s>, </s>, symbols]."""
        t = tokens.shape[1]
        classes = self.classify(tokens_memory)  # (N, K, S)
        previous = (tokens - 2).clamp(min=0)
        affinity = classes.gather(2, previous.unsqueeze(1).expand(-1, classes.shape[1], -1)).transpose(1, 2)  # (N, T, K)
        found = torch.softmax(3 * self.lookup_sharpness.exp() * affinity, -1) @ tokens_memory
        is_start = (tokens == 0).unsqueeze(-1)
        found = torch.where(is_start, self.start_lookup.expand_as(found), found)
        h = self.embed(tokens) + self.steps[:t] + self.lookup(found)
        h = self.decoder_norm(self.decoder(h, tokens_memory, tgt_mask=causal_mask(t, tokens.device), tgt_is_causal=True))
        score = self.score(torch.tanh(self.query(h).unsqueeze(2) + self.key(tokens_memory).unsqueeze(1))).squeeze(-1)
        symbols = torch.softmax(score, -1) @ classes  # (N, T, S)
        return torch.cat([torch.full_like(symbols[..., :1], -1e4), self.end(h), symbols], -1)

    def auxiliary_loss(self, m: torch.Tensor, tokens_memory: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Presence of each symbol in y (targets: ids), a multiple-instance loss from labels only:
        BCE of the max over tokens of C, and (``map_presence_loss``) BCE of a linear map of each
        motif channel's spatial maximum, which teaches ĝ where to fire while the map is dense."""
        present = symbol_presence(targets, self.num_symbols)
        loss = tokens_memory.new_zeros(())
        if self.config.presence_loss:
            logits = self.classify(tokens_memory).amax(1)
            loss = loss + self.config.presence_loss * F.binary_cross_entropy_with_logits(logits, present)
        if self.config.map_presence_loss:
            loss = loss + self.config.map_presence_loss * map_presence_bce(self.map_presence, m, present)
        return loss


@dataclass(frozen=True)
class SetHeadConfig:
    """A CPU-sized head that reads a sparse motif map as a set of tokens.

    Tokens are the map's ``tokens`` largest entries (``EntryTokens``). A pre-norm transformer
    encoder relates them, a pre-norm transformer decoder writes the output. Near the bar a map
    holds ≈ 10 entries per input, so ``tokens`` bounds nothing there; while it is dense the head
    reads only its strongest entries. ``map_presence_loss`` weighs a label-only loss: which
    symbols occur in y, from a linear map of each channel's spatial maximum (it teaches ĝ where
    to fire while the map is dense).
    """

    tokens: int = 48
    d_model: int = 128
    heads: int = 4
    encoder_layers: int = 2
    decoder_layers: int = 2
    feedforward: int = 256
    fourier_features: int = 6
    map_presence_loss: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tokens", "d_model", "heads", "encoder_layers", "decoder_layers", "feedforward"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.fourier_features < 0 or self.map_presence_loss < 0:
            raise ValueError("fourier_features and map_presence_loss must be >= 0")


class SetHead(nn.Module):
    """ĥ: (N, C, H, W) or (N, C, L) motif map → memory (N, tokens, d) → logits via ``TokenDecoder``."""

    def __init__(self, config: SetHeadConfig, num_motifs: int, vocab_size: int):
        super().__init__()
        d, self.config = config.d_model, config
        self.num_symbols = vocab_size - 2
        self.entries = EntryTokens(num_motifs, d, config.tokens, config.fourier_features)
        layer = nn.TransformerEncoderLayer(d, config.heads, config.feedforward, 0.0, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, config.encoder_layers, norm=nn.LayerNorm(d),
                                             enable_nested_tensor=False)
        self.decoder = TokenDecoder(vocab_size, d, config.heads, config.decoder_layers, config.feedforward, 0.0,
                                    norm_first=True)
        if config.map_presence_loss:
            self.map_presence = nn.Linear(num_motifs, self.num_symbols)

    def encode(self, m: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.entries(m.unsqueeze(2) if m.ndim == 3 else m))

    def decode(self, memory: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(memory, tokens)

    def auxiliary_loss(self, m: torch.Tensor, memory: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.config.map_presence_loss:
            return memory.new_zeros(())
        present = symbol_presence(targets, self.num_symbols)
        return self.config.map_presence_loss * map_presence_bce(self.map_presence, m, present)


@dataclass(frozen=True)
class CTCHeadConfig:
    """A head for 1-D motif maps whose output lists the motifs in position order (the toy domain,
    spoken digits): a small conv stack gives per-position logits over blank + symbols, trained
    with CTC. ``kernel`` and ``layers`` bound how far along the map it reads (rf = 1 + layers·(kernel − 1))."""

    hidden: int = 32
    kernel: int = 3
    layers: int = 2

    def __post_init__(self) -> None:
        for name in ("hidden", "kernel", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {self.kernel}")


class CTCHead(nn.Module):
    """ĥ for 1-D maps: (N, C, L) → per-position log-probabilities (N, L, V) over the vocabulary,
    where id 0 (``<s>``) serves as the CTC blank and id 1 (``</s>``) is never emitted.

    Instead of ``decode`` it has ``sequence_loss`` (CTC) and ``greedy`` (best path: argmax per
    position, merge repeats, drop blanks), which the composed model calls.
    """

    blank = 0

    def __init__(self, config: CTCHeadConfig, num_motifs: int, vocab_size: int):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = num_motifs
        for _ in range(config.layers):
            layers += [nn.Conv1d(width, config.hidden, config.kernel, padding=config.kernel // 2), nn.GELU()]
            width = config.hidden
        self.body = nn.Sequential(*layers)
        self.out = nn.Conv1d(width, vocab_size, 1)

    def encode(self, m: torch.Tensor) -> torch.Tensor:
        if m.ndim != 3:
            raise ValueError(f"CTCHead reads 1-D motif maps (N, C, L), got shape {tuple(m.shape)}")
        # log1p: activation magnitudes grow as the map sparsifies
        return F.log_softmax(self.out(self.body(torch.log1p(m))), dim=1).transpose(1, 2)

    def sequence_loss(self, log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """CTC of (N, L, V) log-probabilities against padded target ids (N, T) with ``lengths``."""
        n, steps = log_probs.shape[:2]
        input_lengths = torch.full((n,), steps, dtype=torch.long, device=log_probs.device)
        return F.ctc_loss(log_probs.transpose(0, 1), targets, input_lengths, lengths, blank=self.blank,
                          reduction="mean", zero_infinity=True)

    @torch.no_grad()
    def greedy(self, log_probs: torch.Tensor, max_length: int) -> list[list[int]]:
        """Best-path decoding: ids per sample (no blanks, repeats merged), at most ``max_length``."""
        best = log_probs.argmax(-1).cpu()
        out = []
        for row in best.tolist():
            ids, previous = [], None
            for token in row:
                if token != previous and token > 1:
                    ids.append(token)
                previous = token
            out.append(ids[:max_length])
        return out
