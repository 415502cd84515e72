"""A 1-D toy domain where every assumption of the Motif Identifiability Theorem holds by
construction (THEOREM_AND_FIGURES.md §2), small enough to train in a minute on a CPU.

The signal has ``slots × cell`` positions of i.i.d. Gaussian background. A layout puts k motifs
(k uniform over ``counts``) on slots chosen uniformly among those at least ``min_gap`` slots
apart; each motif gets a symbol uniformly (with replacement) and is its symbol's fixed ±1
pattern of ``width`` samples, added at a uniform offset inside its slot's cell. Output y = the
symbols from left to right.

- NON-OVERLAPPING: two motifs start at least ``min_gap·cell − (cell − width)`` apart, so their
  receptive-field cells are disjoint whenever the receptive field is at most
  ``max_receptive_field``; ``ToySequenceConfig`` checks this against the motif net it is
  trained with.
- MOTIF-SUFFICIENCY: a motif's samples are its pattern plus background noise, independent of
  the layout; the background is i.i.d., so translation invariant.
- α-MOTIF-NECESSITY: y lists every motif, so deleting or changing one always changes y; α is
  the probability flow of ``sparling.theory.necessity_alpha`` for this slot layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from sparling.domains import BaseDomain, Motif, Sample

__all__ = ["ToySequenceConfig", "ToySequenceDomain", "slot_layouts"]


def slot_layouts(slots: int, k: int, min_gap: int) -> list[tuple[int, ...]]:
    """All increasing k-tuples of slots in ``range(slots)`` with consecutive gaps ≥ ``min_gap``."""
    if k < 0 or slots < 0 or min_gap < 1:
        raise ValueError(f"need slots >= 0, k >= 0, min_gap >= 1; got {slots}, {k}, {min_gap}")
    out: list[tuple[int, ...]] = []

    def extend(prefix: tuple[int, ...], first: int) -> None:
        if len(prefix) == k:
            out.append(prefix)
            return
        for s in range(first, slots):
            extend(prefix + (s,), s + min_gap)

    extend((), 0)
    return out


@dataclass(frozen=True)
class ToySequenceConfig:
    """Toy-domain parameters. Lengths in samples; ``noise`` is the background's standard deviation."""

    num_symbols: int = 4
    slots: int = 8
    cell: int = 8
    width: int = 5
    min_gap: int = 2
    counts: tuple[int, ...] = (2, 3, 4)
    noise: float = 0.3
    min_distance: int = 3  # least Hamming distance between two symbols' patterns
    pattern_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_symbols", "slots", "cell", "width", "min_gap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.width > self.cell:
            raise ValueError(f"width ({self.width}) must be <= cell ({self.cell})")
        if not self.counts or min(self.counts) < 1:
            raise ValueError(f"counts must be non-empty positive motif counts, got {self.counts}")
        if max(self.counts) > len(range(0, self.slots, self.min_gap)):
            raise ValueError(f"{max(self.counts)} motifs do not fit {self.slots} slots {self.min_gap} apart")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not 1 <= self.min_distance <= self.width:
            raise ValueError(f"min_distance must be in [1, width], got {self.min_distance}")
        if self.num_symbols > 2 ** self.width // sum(math.comb(self.width, d) for d in range((self.min_distance - 1) // 2 + 1)):
            raise ValueError(f"{self.num_symbols} patterns of width {self.width} cannot be {self.min_distance} apart")

    @property
    def length(self) -> int:
        return self.slots * self.cell

    @property
    def mean_motifs(self) -> float:
        return float(np.mean(self.counts))

    @property
    def max_receptive_field(self) -> int:
        """The largest odd receptive field whose cells around two motifs never overlap.

        Motifs start ≥ gap = min_gap·cell − (cell − width) apart; a motif's receptive-field cell
        spans its width plus (rf − 1) positions, so the cells are disjoint iff width + rf − 1 ≤ gap.
        """
        gap = self.min_gap * self.cell - (self.cell - self.width)
        rf = gap - self.width + 1
        return rf if rf % 2 else rf - 1

    def build(self) -> "ToySequenceDomain":
        return ToySequenceDomain(self)


class ToySequenceDomain(BaseDomain):
    """Samples: x (1, length) float32, y = symbols left to right, motifs with their exact extent."""

    name = "toy_sequence"

    def __init__(self, config: ToySequenceConfig | None = None) -> None:
        self.config = config if config is not None else ToySequenceConfig()
        self.symbols = tuple("abcdefghijklmnopqrstuvwxyz"[: self.config.num_symbols]) if self.config.num_symbols <= 26 \
            else tuple(f"s{i}" for i in range(self.config.num_symbols))
        self.input_shape = (self.config.length,)
        self.max_output_length = max(self.config.counts) + 2

    def __repr__(self) -> str:
        return f"ToySequenceDomain({self.config!r})"

    @cached_property
    def patterns(self) -> np.ndarray:
        """(num_symbols, width) ±1 patterns, any two at least ``min_distance`` apart in Hamming
        distance: the first such set drawn from ``RandomState(pattern_seed)``."""
        c = self.config
        rng = np.random.RandomState(c.pattern_seed)
        for _ in range(100_000):
            patterns = rng.choice([-1.0, 1.0], (c.num_symbols, c.width))
            distances = (patterns[:, None] != patterns[None]).sum(-1) + c.width * np.eye(c.num_symbols, dtype=int)
            if distances.min() >= c.min_distance:
                return patterns.astype(np.float32)
        raise RuntimeError(f"no {c.num_symbols} patterns {c.min_distance} apart found; lower min_distance")

    @cached_property
    def layouts(self) -> dict[int, list[tuple[int, ...]]]:
        c = self.config
        return {k: slot_layouts(c.slots, k, c.min_gap) for k in c.counts}

    def sample(self, rng: np.random.RandomState) -> Sample:
        c = self.config
        k = c.counts[rng.randint(len(c.counts))]
        options = self.layouts[k]
        slots = options[rng.randint(len(options))]
        symbols = rng.randint(c.num_symbols, size=k)
        offsets = rng.randint(c.cell - c.width + 1, size=k)
        x = (rng.randn(c.length) * c.noise).astype(np.float32)
        motifs = []
        for slot, symbol, offset in zip(slots, symbols, offsets):
            start = slot * c.cell + int(offset)
            x[start : start + c.width] += self.patterns[symbol]
            motifs.append(Motif(self.symbols[symbol], (slice(start, start + c.width),)))
        return Sample(x, tuple(self.symbols[s] for s in symbols), tuple(motifs))
