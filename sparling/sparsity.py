"""The spatial sparsity layer (Sparling) and the baseline bottlenecks.

Every bottleneck maps the motif net's pre-activations z of shape (N, C, L) or (N, C, H, W)
to a motif map of the same shape, and shares one interface:

- ``forward(z) -> motif map`` (what the motif metrics read),
- ``density``: a settable float in (0, 1]; what it means is documented per class,
- ``penalty(motif_map) -> scalar`` that the training loss adds (0 for Sparling),
- ``to_head(motif_map)``: what the head ĥ consumes (the motif map itself, except for KL).

``set_density(model, δ)`` sets the density of every bottleneck inside a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "Bottleneck",
    "SpatialSparsity",
    "NoBottleneck",
    "L1Bottleneck",
    "KLBottleneck",
    "TopKBottleneck",
    "BatchTopKBottleneck",
    "set_density",
    "get_density",
    "kth_smallest_per_row",
    "top_values",
    "SparlingConfig",
    "NoBottleneckConfig",
    "L1Config",
    "KLConfig",
    "TopKConfig",
    "BatchTopKConfig",
    "BottleneckConfig",
]


def _check_density(density: float) -> float:
    density = float(density)
    if not (0.0 < density <= 1.0) or math.isnan(density):
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    return density


def kth_smallest_per_row(values: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th smallest value (1-based) of each row of ``values`` (T, R) → (T,).

    Equal to ``values.kthvalue(k, dim=1).values``; when k is near either end only that tail
    is searched (the k-th smallest is the (R − k + 1)-th largest).
    """
    n = values.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    j = n - k + 1  # rank from the top
    if j <= n // 64:
        return values.topk(j, dim=1, largest=True, sorted=False).values.amin(dim=1)
    if k <= n // 64:
        return values.topk(k, dim=1, largest=False, sorted=False).values.amax(dim=1)
    return values.kthvalue(k, dim=1).values


def top_values(z: torch.Tensor, m: int, per_channel: bool) -> torch.Tensor:
    """The m largest values of each channel of z (N, C, *spatial) → (C, m), unordered; with
    ``per_channel=False`` the m largest of all entries → (1, m).

    Each channel's values are split into rows along the last axis. The m rows with the
    largest maxima contain every value above the m-th largest and enough values equal to it,
    so a top-m over those m rows is exact while reading the full tensor only once (for the
    row maxima). Falls back to a top-m over all values when a channel has fewer than m rows.
    """
    z = z.detach()
    if z.dim() == 3:
        z = z.unsqueeze(2)  # (N, C, 1, L): rows of length L
    n, c, h, w = z.shape
    rows_per_channel = n * h if per_channel else n * c * h
    if m > rows_per_channel:
        values = z.transpose(0, 1).reshape(c, -1) if per_channel else z.reshape(1, -1)
        return values.topk(m, dim=1, sorted=False).values
    row_max = z.amax(dim=-1)  # (N, C, H)
    if per_channel:
        best = row_max.transpose(0, 1).reshape(c, n * h).topk(m, dim=1, sorted=False).indices  # (C, m)
        channel = torch.arange(c).unsqueeze(1).expand(c, m)
        candidates = z[best // h, channel, best % h]  # (C, m, W)
    else:
        best = row_max.reshape(1, -1).topk(m, dim=1, sorted=False).indices  # (1, m)
        candidates = z.reshape(-1, w)[best]  # (1, m, W)
    return candidates.reshape(candidates.shape[0], -1).topk(m, dim=1, sorted=False).values


class Bottleneck(nn.Module):
    """Base class: the common interface of every bottleneck (see the module docstring).

    ``channels`` is C; ``spatial_dims`` is 1 for (N, C, L) inputs and 2 for (N, C, H, W).
    """

    def __init__(self, channels: int, density: float = 0.5, spatial_dims: int = 2):
        super().__init__()
        if int(channels) != channels or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if spatial_dims not in (1, 2):
            raise ValueError(f"spatial_dims must be 1 or 2, got {spatial_dims!r}")
        self.channels = int(channels)
        self.spatial_dims = spatial_dims
        # Stored as a buffer so that loading a state_dict restores the density.
        self.register_buffer("_density", torch.tensor(_check_density(density), dtype=torch.float64))

    @property
    def density(self) -> float:
        return float(self._density)

    @density.setter
    def density(self, value: float) -> None:
        self._density.fill_(_check_density(value))
        self._on_density_change()

    def _on_density_change(self) -> None:
        """Hook for subclasses that keep state tied to the density."""

    def _check_input(self, z: torch.Tensor) -> None:
        rank = 2 + self.spatial_dims
        if z.dim() != rank:
            shape = "(N, C, L)" if self.spatial_dims == 1 else "(N, C, H, W)"
            raise ValueError(f"z must have rank {rank} {shape}, got shape {tuple(z.shape)}")
        if z.shape[1] != self.channels:
            raise ValueError(f"z has {z.shape[1]} channels, the bottleneck expects channels={self.channels}")

    def _channel_view(self, per_channel: torch.Tensor) -> torch.Tensor:
        """Reshape a (C,) or (1,) tensor to broadcast against (N, C, *spatial)."""
        return per_channel.view(1, -1, *([1] * self.spatial_dims))

    def penalty(self, motif_map: torch.Tensor) -> torch.Tensor:
        """The loss term this bottleneck adds (a scalar tensor)."""
        return motif_map.new_zeros(())

    def to_head(self, motif_map: torch.Tensor) -> torch.Tensor:
        """What the head consumes; the motif map itself unless a subclass says otherwise."""
        return motif_map

    def extra_repr(self) -> str:
        return f"channels={self.channels}, density={self.density:.6e}, spatial_dims={self.spatial_dims}"


def _batch_norm(channels: int, spatial_dims: int, affine: bool) -> nn.Module:
    return (nn.BatchNorm1d if spatial_dims == 1 else nn.BatchNorm2d)(channels, affine=affine)


class SpatialSparsity(Bottleneck):
    """The Sparling layer: BatchNorm, then ReLU(z − t) with t tracking the (1 − δ) quantile.

    density δ: the target fraction of nonzero outputs per channel (``per_channel=True``,
    "MT") or over all entries (``per_channel=False``, "ST": one global threshold).

    In training mode each forward first updates t ← (1 − momentum)·t + momentum·q, where q is
    the batch's (1 − δ) order statistic (the k-th smallest value, k = max(1, ⌊R·(1 − δ)⌋) over
    the R values of a channel), then applies the updated t. No gradient flows into t; in eval
    mode t is frozen. When a batch holds fewer than ``min_expected_nonzeros`` expected
    nonzeros (R·δ) per threshold, batches are accumulated (detached) until they do.
    Only each batch's upper tail is kept, since only the top ≈ R·δ values of the union decide
    the order statistic; this is exact while the batches of one accumulation are no larger
    than the largest batch seen before them (fixed-size training batches).
    ``batchnorm=False`` gives the no-BatchNorm ablation.
    """

    def __init__(
        self,
        channels: int,
        density: float = 0.5,
        *,
        per_channel: bool = True,
        spatial_dims: int = 2,
        batchnorm: bool = True,
        affine: bool = True,
        momentum: float = 0.1,
        min_expected_nonzeros: float = 10.0,
    ):
        super().__init__(channels, density, spatial_dims)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        if min_expected_nonzeros < 0:
            raise ValueError(f"min_expected_nonzeros must be >= 0, got {min_expected_nonzeros!r}")
        self.per_channel = per_channel
        self.momentum = float(momentum)
        self.min_expected_nonzeros = float(min_expected_nonzeros)
        self.norm = _batch_norm(channels, spatial_dims, affine) if batchnorm else nn.Identity()
        self.register_buffer("threshold", torch.zeros(channels if per_channel else 1))
        self._tails: list[torch.Tensor] = []  # accumulated upper tails, each (T, m_b)
        self._rows_accumulated = 0
        self._max_rows_seen = 0

    def _on_density_change(self) -> None:
        self._reset_accumulation()

    def _reset_accumulation(self) -> None:
        self._tails = []
        self._rows_accumulated = 0

    def _values_per_threshold(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, *spatial) → (T, R): one row of values per threshold (a copy)."""
        if self.per_channel:
            return z.detach().transpose(0, 1).reshape(self.channels, -1)
        return z.detach().reshape(1, -1)

    @torch.no_grad()
    def _update_threshold(self, z: torch.Tensor) -> None:
        z = z.detach().float()
        per_channel = self.per_channel
        rows = z.numel() // (self.channels if per_channel else 1)  # values per threshold
        density = self.density
        self._max_rows_seen = max(self._max_rows_seen, rows)
        if not self._tails and rows * density >= self.min_expected_nonzeros:
            k = max(1, int(rows * (1.0 - density)))
            j = rows - k + 1  # rank from the top
            if j <= rows // 64:
                quantile = top_values(z, j, per_channel).amin(dim=1)
            else:
                quantile = kth_smallest_per_row(self._values_per_threshold(z), k)
        else:
            # The final rank from the top is ≤ R_total·δ + 2 < min_expected_nonzeros + R_last·δ + 2,
            # so each batch's top m values suffice (R_last ≤ the largest batch seen).
            m = min(rows, math.ceil(self.min_expected_nonzeros + self._max_rows_seen * density) + 2)
            self._tails.append(top_values(z, m, per_channel))
            self._rows_accumulated += rows
            if self._rows_accumulated * density < self.min_expected_nonzeros:
                return
            total = self._rows_accumulated
            k = max(1, int(total * (1.0 - density)))
            tail = torch.cat(self._tails, dim=1)
            # The k-th smallest of all `total` values is the (total − k + 1)-th largest,
            # which lies inside the kept tails.
            quantile = tail.topk(total - k + 1, dim=1).values[:, -1]
            self._reset_accumulation()
        self.threshold.mul_(1.0 - self.momentum).add_(quantile.to(self.threshold.dtype), alpha=self.momentum)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._check_input(z)
        z = self.norm(z)
        if self.training:
            self._update_threshold(z)
        threshold = self._channel_view(self.threshold).to(z.dtype)
        if isinstance(self.norm, nn.Identity):
            return torch.relu(z - threshold)  # z is the caller's tensor: never modify it
        # In place on BatchNorm's fresh output (its backward needs only its input): one
        # 4-byte-per-entry buffer fewer per forward, which on CPU is most of the layer's cost.
        return z.sub_(threshold).relu_()

    def train(self, mode: bool = True) -> "SpatialSparsity":
        if not mode:
            self._reset_accumulation()
        return super().train(mode)

    def extra_repr(self) -> str:
        kind = "MT (per channel)" if self.per_channel else "ST (global)"
        return f"{super().extra_repr()}, {kind}, momentum={self.momentum}"


class NoBottleneck(Bottleneck):
    """Identity (the "non-sparse" reference). ``density`` is bookkeeping only: it is what the
    annealer reports, and has no effect on the output."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._check_input(z)
        return z


class L1Bottleneck(Bottleneck):
    """BatchNorm + ReLU, with the penalty λ·mean|m| (the paper's L1 baseline).

    ``density`` is bookkeeping only (the annealer's stopping rule); the realised density is
    whatever the penalty produces and is measured, not set.
    """

    def __init__(self, channels: int, weight: float, density: float = 0.5, *, spatial_dims: int = 2, affine: bool = True):
        super().__init__(channels, density, spatial_dims)
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        self.weight = float(weight)
        self.norm = _batch_norm(channels, spatial_dims, affine)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._check_input(z)
        return torch.relu(self.norm(z))

    def penalty(self, motif_map: torch.Tensor) -> torch.Tensor:
        return self.weight * motif_map.abs().mean()


class KLBottleneck(Bottleneck):
    """BatchNorm + sigmoid, with the penalty λ·KL(Bernoulli(p) ‖ Bernoulli(p̂)), where p̂ is the
    mean activation over the whole batch tensor (the paper's KL baseline).

    ``density`` is the target p of the penalty. The motif map is the sigmoid output; the head
    sees ReLU(m − 0.5) (``to_head``), so "active" means m > 0.5 (how its density is measured).
    """

    def __init__(self, channels: int, weight: float, density: float = 5.02262129e-5, *, spatial_dims: int = 2, affine: bool = True):
        super().__init__(channels, density, spatial_dims)
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight!r}")
        self.weight = float(weight)
        self.norm = _batch_norm(channels, spatial_dims, affine)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._check_input(z)
        return torch.sigmoid(self.norm(z))

    def penalty(self, motif_map: torch.Tensor) -> torch.Tensor:
        p = self.density
        p_hat = motif_map.float().mean().clamp(1e-12, 1 - 1e-12)
        kl = p * torch.log(p / p_hat) + (1 - p) * torch.log((1 - p) / (1 - p_hat))
        return self.weight * kl

    def to_head(self, motif_map: torch.Tensor) -> torch.Tensor:
        return torch.relu(motif_map - 0.5)


class TopKBottleneck(Bottleneck):
    """BatchNorm, then keep each sample's k = max(1, round(δ·C·positions)) largest values (ReLU'd;
    the rest are 0), as in top-k sparse autoencoders.

    ``density`` δ sets k per sample, so every input gets the same number of activations
    whatever its number of motifs.
    """

    def __init__(self, channels: int, density: float = 0.5, *, spatial_dims: int = 2, affine: bool = True):
        super().__init__(channels, density, spatial_dims)
        self.norm = _batch_norm(channels, spatial_dims, affine)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._check_input(z)
        z = self.norm(z)
        flat = z.reshape(z.shape[0], -1)
        k = max(1, round(self.density * flat.shape[1]))
        top = flat.topk(k, dim=1)
        out = torch.zeros_like(flat).scatter(1, top.indices, torch.relu(top.values))
        return out.view_as(z)


class BatchTopKBottleneck(Bottleneck):
    """BatchNorm, then in training keep the top round(δ·N·C·positions) values of the whole batch
    (BatchTopK); in eval keep the values above an EMA threshold θ (the smallest kept value of
    each training batch, new-batch weight ``momentum``). Kept values pass unshifted (ReLU'd).

    ``density`` δ is the fraction of kept entries over the batch (global, not per channel).
    """

    def __init__(self, channels: int, density: float = 0.5, *, spatial_dims: int = 2, affine: bool = True, momentum: float = 0.1):
        super().__init__(channels, density, spatial_dims)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.norm = _batch_norm(channels, spatial_dims, affine)
        self.register_buffer("threshold", torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self._check_input(z)
        z = self.norm(z)
        if not self.training:
            return torch.where(z > self.threshold, torch.relu(z), torch.zeros_like(z))
        flat = z.reshape(-1)
        k = max(1, round(self.density * flat.numel()))
        top = flat.topk(k)
        with torch.no_grad():
            smallest_kept = top.values.detach().min().to(self.threshold.dtype)
            self.threshold.mul_(1.0 - self.momentum).add_(smallest_kept, alpha=self.momentum)
        out = torch.zeros_like(flat).scatter(0, top.indices, torch.relu(top.values))
        return out.view_as(z)


def set_density(model: nn.Module, density: float) -> None:
    """Set the density of every bottleneck inside ``model`` (the model itself included)."""
    density = _check_density(density)
    found = False
    for module in model.modules():
        if isinstance(module, Bottleneck):
            module.density = density
            found = True
    if not found:
        raise ValueError(f"model {type(model).__name__} holds no bottleneck whose density could be set")


def get_density(model: nn.Module) -> float:
    """The density shared by the bottlenecks inside ``model`` (error if they disagree)."""
    densities = {m.density for m in model.modules() if isinstance(m, Bottleneck)}
    if len(densities) != 1:
        raise ValueError(f"model holds bottlenecks with densities {sorted(densities)}; expected exactly one value")
    return densities.pop()


# --- configs: typed descriptions of a bottleneck, built for a given channel count -------------


@dataclass(frozen=True)
class SparlingConfig:
    """The Sparling layer: ``per_channel`` True = MT, False = ST; ``batchnorm=False`` = no-BN ablation."""

    per_channel: bool = True
    batchnorm: bool = True
    affine: bool = True
    momentum: float = 0.1
    min_expected_nonzeros: float = 10.0

    def build(self, channels: int, density: float, spatial_dims: int) -> SpatialSparsity:
        return SpatialSparsity(channels, density, per_channel=self.per_channel, spatial_dims=spatial_dims,
                               batchnorm=self.batchnorm, affine=self.affine, momentum=self.momentum,
                               min_expected_nonzeros=self.min_expected_nonzeros)


@dataclass(frozen=True)
class NoBottleneckConfig:
    def build(self, channels: int, density: float, spatial_dims: int) -> NoBottleneck:
        return NoBottleneck(channels, density, spatial_dims)


@dataclass(frozen=True)
class L1Config:
    weight: float = 1.0

    def build(self, channels: int, density: float, spatial_dims: int) -> L1Bottleneck:
        return L1Bottleneck(channels, self.weight, density, spatial_dims=spatial_dims)


@dataclass(frozen=True)
class KLConfig:
    weight: float = 1.0
    target_density: float = 5.02262129e-5

    def build(self, channels: int, density: float, spatial_dims: int) -> KLBottleneck:
        return KLBottleneck(channels, self.weight, self.target_density, spatial_dims=spatial_dims)


@dataclass(frozen=True)
class TopKConfig:
    def build(self, channels: int, density: float, spatial_dims: int) -> TopKBottleneck:
        return TopKBottleneck(channels, density, spatial_dims=spatial_dims)


@dataclass(frozen=True)
class BatchTopKConfig:
    momentum: float = 0.1

    def build(self, channels: int, density: float, spatial_dims: int) -> BatchTopKBottleneck:
        return BatchTopKBottleneck(channels, density, spatial_dims=spatial_dims, momentum=self.momentum)


BottleneckConfig = SparlingConfig | NoBottleneckConfig | L1Config | KLConfig | TopKConfig | BatchTopKConfig
