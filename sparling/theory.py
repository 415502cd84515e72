"""The quantities of the Motif Identifiability Theorem (THEOREM_AND_FIGURES.md §2), as pure
functions: the true density δ*, α-motif-necessity by exact enumeration, the information bound,
and the theorem's scaling of k. The motif error E_m itself lives in ``sparling.metrics``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from sparling.annealing import bar_density, grid_index
from sparling.domains import Sample
from sparling.domains.toy import ToySequenceConfig, slot_layouts

__all__ = [
    "minimal_density",
    "minimal_density_from_samples",
    "symbol_rates",
    "ChannelBudget",
    "channel_budget",
    "DensityTarget",
    "density_target",
    "SlotLayout",
    "AUTHORS_DIGIT_CIRCLE_LAYOUT",
    "necessity_alpha",
    "binary_entropy_bits",
    "information_bound_bits",
    "toy_layout_entropy_bits",
    "theorem_k_scaling",
]


# --- δ* ------------------------------------------------------------------------------------


def minimal_density(mean_motifs: float, channels: int, positions: int) -> float:
    """δ* = mean motifs per input / (channels × positions): the density of a map with exactly one
    activation per true motif."""
    if mean_motifs < 0 or channels < 1 or positions < 1:
        raise ValueError(f"need mean_motifs >= 0, channels >= 1, positions >= 1; got {mean_motifs}, {channels}, {positions}")
    return mean_motifs / (channels * positions)


def minimal_density_from_samples(samples: Iterable[Sample], channels: int) -> float:
    """δ* estimated from samples: their mean motif count over channels × positions of x."""
    counts, positions = [], None
    for sample in samples:
        counts.append(len(sample.motifs))
        positions = int(np.prod(sample.x.shape))
    if not counts:
        raise ValueError("no samples")
    return minimal_density(float(np.mean(counts)), channels, positions)


@dataclass(frozen=True)
class DensityTarget:
    """δ* and where it sits on the annealing grid 0.5·0.75ⁿ."""

    minimal: float
    bar: float  # the smallest grid density ≥ δ*
    bar_index: int  # n with bar = 0.5·0.75ⁿ

    @property
    def bar_ratio(self) -> float:
        return self.bar / self.minimal


def density_target(minimal: float) -> DensityTarget:
    bar = bar_density(minimal)
    return DensityTarget(minimal, bar, grid_index(bar))


# --- the per-channel budget ----------------------------------------------------------------


def symbol_rates(samples: Iterable[Sample]) -> dict[str, float]:
    """Mean occurrences of each motif symbol per input."""
    counts: Counter[str] = Counter()
    n = 0
    for sample in samples:
        counts.update(m.symbol for m in sample.motifs)
        n += 1
    if n == 0:
        raise ValueError("no samples")
    return {symbol: count / n for symbol, count in counts.most_common()}


@dataclass(frozen=True)
class ChannelBudget:
    """What per-channel thresholds allow at one density (see ``channel_budget``)."""

    per_channel: float  # activations per input each channel fires, on average: δ × positions
    ceiling: float  # the largest possible (1 − FNE)(1 − CE), majority CE
    channels: dict[str, int]  # the allocation reaching it: channels per symbol (spare channels unassigned)
    channels_to_cover: int  # the fewest channels with ceiling 1: Σ_s ⌈f_s / per_channel⌉


def channel_budget(rates: dict[str, float], channels: int, density: float, positions: int) -> ChannelBudget:
    """The most of the true motifs a map with per-channel thresholds can identify at ``density``.

    With per-channel thresholds (MT) every channel fires b = δ·positions times per input on
    average. Matching (spec §6.1) spends one activation per true motif it covers, so the n_s
    channels whose majority symbol is s identify at most min(f_s, n_s·b) of the f_s motifs of s
    per input, and the rest count as missed (FNE) or confused (CE). Hence
    (1 − FNE)(1 − CE) ≤ max over Σ n_s = C of Σ_s min(f_s, n_s·b) / Σ_s f_s. Each term is
    concave in n_s, so giving channels one at a time to the largest gain is optimal.

    Symbols much more frequent than the others (LaTeX's parentheses, "+" and fraction bars)
    need several channels each; when b is below the rare symbols' rates, the ceiling drops
    below 1 however well the channels are learned.
    """
    if channels < 1 or positions < 1 or not 0 < density <= 1:
        raise ValueError(f"need channels >= 1, positions >= 1, 0 < density <= 1; got {channels}, {positions}, {density}")
    if any(r < 0 for r in rates.values()) or not sum(rates.values()) > 0:
        raise ValueError("rates must be >= 0 with a positive sum")
    per_channel = density * positions
    allocation = {symbol: 0 for symbol in rates}

    def gain(symbol: str) -> float:
        n, rate = allocation[symbol], rates[symbol]
        return min(rate, (n + 1) * per_channel) - min(rate, n * per_channel)

    for _ in range(channels):
        best = max(allocation, key=gain)  # ties: the first symbol in ``rates`` order
        if gain(best) <= 0:
            break
        allocation[best] += 1
    covered = sum(min(rates[s], n * per_channel) for s, n in allocation.items())
    to_cover = sum(math.ceil(rate / per_channel - 1e-9) for rate in rates.values())
    return ChannelBudget(per_channel, covered / sum(rates.values()), allocation, to_cover)


# --- α-motif-necessity ---------------------------------------------------------------------


@dataclass(frozen=True)
class SlotLayout:
    """Motif layouts on ``slots`` discrete slots, at least ``min_gap`` apart, with the motif count
    uniform over ``counts`` and the slots uniform given the count."""

    slots: int
    min_gap: int
    counts: tuple[int, ...]


AUTHORS_DIGIT_CIRCLE_LAYOUT = SlotLayout(slots=11, min_gap=2, counts=(3, 4, 5, 6))
"""The simplified DigitCircle layout of the authors' α notebook (spec §8)."""


def authors_deletion_probability(k: int) -> float:
    """The authors' notebook divides by a literal 5 for every k (spec §8)."""
    return 1 / 5


def uniform_deletion_probability(k: int) -> float:
    """Each of the k motifs is the deleted one with probability 1/k."""
    return 1 / k


def necessity_alpha(layout: SlotLayout,
                    deletion_probability: Callable[[int], float] = uniform_deletion_probability) -> dict[int, float]:
    """α_k for every count k whose k−1 is also a count, by exact enumeration (spec §8).

    α_k = Σ over (k−1)-layouts L' of min(Σ_{(L, i) → L'} P(L)·q(k), P(L')), where (L, i) → L'
    means deleting motif i of the k-layout L gives L', and q(k) is ``deletion_probability``.
    It is the probability mass that deleting one motif can move to another valid input, which
    is what α-motif-necessity needs. α = sum of the values. Symbols drawn independently and
    uniformly per motif cancel out of this sum, so layouts are positions only.
    """
    count_probability = 1 / len(layout.counts)
    alphas: dict[int, float] = {}
    for k in layout.counts:
        if k - 1 not in layout.counts:
            continue
        bigger = slot_layouts(layout.slots, k, layout.min_gap)
        smaller = slot_layouts(layout.slots, k - 1, layout.min_gap)
        p_bigger = count_probability / len(bigger)
        p_smaller = count_probability / len(smaller)
        arrivals = Counter(tuple(s for j, s in enumerate(big) if j != i) for big in bigger for i in range(k))
        alphas[k] = sum(min(n * p_bigger * deletion_probability(k), p_smaller) for n in arrivals.values())
    return alphas


# --- information bound ---------------------------------------------------------------------


def binary_entropy_bits(p: float | np.ndarray) -> np.ndarray:
    """H_b(p) in bits, with H_b(0) = H_b(1) = 0."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.where((p <= 0) | (p >= 1), 0.0, h)


def information_bound_bits(density: float | np.ndarray, positions: int, channels: int,
                           bits_per_activation: float) -> np.ndarray:
    """The most a motif map of this density can carry: S·C·(H_b(δ) + η·δ) bits per input."""
    density = np.asarray(density, dtype=np.float64)
    if np.any((density < 0) | (density > 1)):
        raise ValueError("density must be in [0, 1]")
    return positions * channels * (binary_entropy_bits(density) + bits_per_activation * density)


def toy_layout_entropy_bits(config: ToySequenceConfig) -> float:
    """H(motif layout) of the toy domain in bits: count, slots, symbols and in-cell offsets.

    H = H(count) + Σ_k P(k)·(log2 #layouts_k + k·log2 #symbols + k·log2 #offsets).
    """
    probability = 1 / len(config.counts)
    offsets = config.cell - config.width + 1
    h = math.log2(len(config.counts))
    for k in config.counts:
        h += probability * (math.log2(len(slot_layouts(config.slots, k, config.min_gap)))
                            + k * math.log2(config.num_symbols) + k * math.log2(offsets))
    return h


# --- the theorem's k -----------------------------------------------------------------------


def theorem_k_scaling(max_motifs: float, mean_motifs: float, cell_size: float, input_size: float,
                      alpha: float) -> float:
    """#max²·|p₂|·n² / (#*·α²): the theorem's k up to its constant factor."""
    if min(max_motifs, mean_motifs, cell_size, input_size, alpha) <= 0:
        raise ValueError("every argument must be > 0")
    return max_motifs**2 * cell_size * input_size**2 / (mean_motifs * alpha**2)
