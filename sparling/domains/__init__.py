"""Domain interface: index-addressed, seeded sample streams with motif ground truth.

Every domain is an infinite stream. Sample ``i`` of split ``split_seed`` is generated from
``np.random.RandomState(compute_seed(split_seed, i))`` (REPRODUCTION_SPEC "Global
conventions"). The train split seed is the run seed (1..9); validation is -1 and test is -2.
"""

from __future__ import annotations

import abc
import hashlib
import math
import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Motif",
    "Sample",
    "compute_seed",
    "VALIDATION_SPLIT",
    "TEST_SPLIT",
    "Domain",
    "BaseDomain",
    "check_int",
    "check_number",
]

VALIDATION_SPLIT: int = -1
"""Split seed of the validation stream."""

TEST_SPLIT: int = -2
"""Split seed of the test stream. (The train stream uses the run seed itself.)"""


def check_int(name: str, value: object) -> None:
    """A config field that must be an int (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")


def check_number(name: str, value: object) -> None:
    """A config field that must be a finite real number (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")


@dataclass(frozen=True)
class Motif:
    """One ground-truth motif occurrence.

    ``footprint`` is the motif's rectangle in the input's spatial axes (one slice per
    axis, no padding), e.g. ``(slice(top, top + 12), slice(left, left + w))``.
    """

    symbol: str
    footprint: tuple[slice, ...]


@dataclass(frozen=True)
class Sample:
    """One input with its output sequence and motif ground truth.

    ``x`` is float32 with the domain's spatial shape (no channel axis), or
    ``(in_channels, *input_shape)`` for a domain with ``in_channels > 1``; ``y`` is the output
    token sequence; ``motifs`` are in generation order.
    """

    x: np.ndarray
    y: tuple[str, ...]
    motifs: tuple[Motif, ...]


def compute_seed(split_seed: int, index: int) -> int:
    """Seed of sample ``index`` in split ``split_seed``:
    ``int(sha256(str((split_seed, index)).encode()).hexdigest(), 16) % 2**32``."""
    digest = hashlib.sha256(str((split_seed, index)).encode()).hexdigest()
    return int(digest, 16) % 2**32


_thread_local = threading.local()


@runtime_checkable
class Domain(Protocol):
    """What the training and evaluation code needs from a domain."""

    name: str
    symbols: tuple[str, ...]
    input_shape: tuple[int, ...]
    max_output_length: int

    def sample(self, rng: np.random.RandomState) -> Sample:
        """Draw one sample, consuming ``rng`` in the domain's fixed call order."""
        ...

    def sample_at(self, split_seed: int, index: int) -> Sample:
        """Sample ``index`` of split ``split_seed`` (deterministic)."""
        ...

    def batch(
        self, split_seed: int, start: int, count: int
    ) -> tuple[np.ndarray, list[tuple[str, ...]], list[tuple[Motif, ...]]]:
        """Samples ``start .. start+count-1``: x as (count, in_channels, *input_shape) float32
        (in_channels = 1 unless the domain says otherwise), ys, motifs."""
        ...


class BaseDomain(abc.ABC):
    """Shared implementation of :class:`Domain`; subclasses set the attributes and write
    :meth:`sample`."""

    name: str
    symbols: tuple[str, ...]
    input_shape: tuple[int, ...]
    max_output_length: int
    in_channels: int = 1
    """Input channels; a sample's x is (*input_shape) when 1, else (in_channels, *input_shape)."""
    motif_evaluation_split: int | None = TEST_SPLIT
    """Where motif metrics are measured: the first n samples of this split, or (None) the samples
    ``sample(RandomState(i))``, i < n, as the authors do for DigitCircle (spec §6.3)."""

    @property
    def motif_symbols(self) -> tuple[str, ...]:
        """The symbols a ground-truth motif can carry (the output symbols unless a domain says otherwise)."""
        return self.symbols

    @abc.abstractmethod
    def sample(self, rng: np.random.RandomState) -> Sample:
        """Draw one sample, consuming ``rng`` in the domain's fixed call order."""

    def sample_at(self, split_seed: int, index: int) -> Sample:
        """``sample(RandomState(compute_seed(split_seed, index)))``."""
        return self.sample(self._rng_at(split_seed, index))

    @staticmethod
    def _rng_at(split_seed: int, index: int) -> np.random.RandomState:
        """The RandomState of sample ``index`` of split ``split_seed`` (this thread's, re-seeded)."""
        # Re-seeding a (per-thread) RandomState gives the same state as constructing a new
        # one, at a fraction of the cost (construction is ~80 µs).
        rng = getattr(_thread_local, "rng", None)
        if rng is None:
            rng = _thread_local.rng = np.random.RandomState()
        rng.seed(compute_seed(split_seed, index))
        return rng

    def batch(
        self, split_seed: int, start: int, count: int
    ) -> tuple[np.ndarray, list[tuple[str, ...]], list[tuple[Motif, ...]]]:
        """Samples ``start .. start+count-1`` of split ``split_seed``.

        Returns x stacked as (count, in_channels, *input_shape) float32, the list of ys and
        the list of motif tuples.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        x = np.empty((count, self.in_channels, *self.input_shape), dtype=np.float32)
        ys: list[tuple[str, ...]] = []
        motifs: list[tuple[Motif, ...]] = []
        for k in range(count):
            s = self.sample_at(split_seed, start + k)
            self._put(x, k, s)
            ys.append(s.y)
            motifs.append(s.motifs)
        return x, ys, motifs

    def _put(self, x: np.ndarray, k: int, sample: Sample) -> None:
        if self.in_channels == 1:
            x[k, 0] = sample.x
        else:
            x[k] = sample.x

    def motif_evaluation_batch(self, start: int, count: int
                               ) -> tuple[np.ndarray, list[tuple[str, ...]], list[tuple[Motif, ...]]]:
        """Samples ``start .. start+count-1`` of the motif-evaluation stream (see
        ``motif_evaluation_split``), stacked as ``batch`` does."""
        if self.motif_evaluation_split is not None:
            return self.batch(self.motif_evaluation_split, start, count)
        samples = [self.sample(np.random.RandomState(i)) for i in range(start, start + count)]
        x = np.empty((count, self.in_channels, *self.input_shape), dtype=np.float32)
        for k, s in enumerate(samples):
            self._put(x, k, s)
        return x, [s.y for s in samples], [s.motifs for s in samples]
