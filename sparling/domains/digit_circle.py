"""DigitCircle domain (REPRODUCTION_SPEC §3.1) and its single-digit variant (§3.2).

An image is a 100×100 binary canvas with 3..6 distinct digit stamps placed around a random
circle, plus background noise. The output is the digits in circular order, rotated so that
the smallest digit comes first. The random draws follow the original call order exactly,
so that ``sample(RandomState(s))`` replays the original generator.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import BaseDomain, Motif, Sample, check_int, check_number

__all__ = [
    "DIGITS",
    "STAMPS_PATH",
    "DigitCircleConfig",
    "DigitCircleDomain",
    "DigitCircleSingleDigitDomain",
    "canonicalize",
    "load_stamps",
    "stamp_mean_fill",
    "theoretical_min_density",
]

DIGITS: tuple[str, ...] = tuple("0123456789")
MIN_SYMS = 3
STAMP_HEIGHT = 12
STAMPS_PATH = Path(__file__).resolve().parents[2] / "data" / "digit_circle_stamps.txt"


# --------------------------------------------------------------------------- stamps


def _parse_stamps(text: str, source: str) -> dict[str, np.ndarray]:
    stamps: dict[str, list[str]] = {}
    current: str | None = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("# "):
            if len(line) == 3:  # header "# <digit>"
                current = line[2]
                if current in stamps:
                    raise ValueError(f"{source}:{lineno}: duplicate stamp {current!r}")
                stamps[current] = []
            continue  # comment
        if current is None:
            raise ValueError(f"{source}:{lineno}: bitmap row before any '# <digit>' header")
        if set(line) - {".", "#"}:
            raise ValueError(f"{source}:{lineno}: bitmap rows may contain only '.' and '#'")
        stamps[current].append(line)
    if tuple(sorted(stamps)) != DIGITS:
        raise ValueError(f"{source}: expected stamps for {''.join(DIGITS)}, got {sorted(stamps)}")
    out: dict[str, np.ndarray] = {}
    for digit, rows in stamps.items():
        if len(rows) != STAMP_HEIGHT or len({len(r) for r in rows}) != 1:
            raise ValueError(
                f"{source}: stamp {digit!r} must be {STAMP_HEIGHT} rows of equal width"
            )
        arr = np.array([[c == "#" for c in r] for r in rows], dtype=bool)
        arr.flags.writeable = False
        out[digit] = arr
    return out


@functools.lru_cache(maxsize=None)
def _load_stamps_cached(path: str) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"DigitCircle stamp file not found: {p} (expected data/digit_circle_stamps.txt "
            "at the repository root, next to the sparling/ package)"
        )
    return _parse_stamps(p.read_text(), str(p))


def load_stamps(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The 10 digit bitmaps ('0'..'9' → read-only bool arrays of shape (12, w)).

    Read from ``data/digit_circle_stamps.txt`` at the repository root (cached).
    """
    return dict(_load_stamps_cached(str(Path(path) if path is not None else STAMPS_PATH)))


def stamp_mean_fill(stamps: dict[str, np.ndarray]) -> float:
    """Mean over stamps of each stamp's ink fraction (the original ``compute_background_pct``).

    0.2503802910... for the DigitCircle stamps (the spec's "0.2504"); the pooled ink
    fraction would be exactly 0.25.
    """
    return float(np.mean([s.mean() for s in stamps.values()]))


def canonicalize(symbols: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Rotate a circular sequence so that its smallest symbol comes first."""
    syms = tuple(symbols)
    if not syms:
        return syms
    k = syms.index(min(syms))
    return syms[k:] + syms[:k]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DigitCircleConfig:
    """DigitCircle parameters (defaults = the main config pae-7bb1).

    ``warmup_samples``, ``warmup_max_syms`` (set both or neither): a curriculum of the train
    streams only (split seeds >= 0): their first ``warmup_samples`` samples hold
    1..``warmup_max_syms`` digits instead of 3..``max_syms``. Validation and test streams never
    change. Off (None) by default, which keeps the run keys of configs without it.
    """

    size: int = 100
    min_radius: int = 20
    random_shift: int = 3
    max_syms: int = 6
    pre_noise: float = 0.5
    post_noise: float = 0.05
    warmup_samples: int | None = None
    warmup_max_syms: int | None = None

    def __post_init__(self) -> None:
        for name in ("size", "min_radius", "random_shift", "max_syms"):
            check_int(name, getattr(self, name))
        for name in ("pre_noise", "post_noise"):
            check_number(name, getattr(self, name))
        if self.random_shift < 0:
            raise ValueError(f"random_shift must be >= 0, got {self.random_shift}")
        if not MIN_SYMS <= self.max_syms <= len(DIGITS):
            raise ValueError(
                f"max_syms must be in [{MIN_SYMS}, {len(DIGITS)}], got {self.max_syms}"
            )
        if (self.warmup_samples is None) != (self.warmup_max_syms is None):
            raise ValueError("warmup_samples and warmup_max_syms are set together (or neither), got "
                             f"{self.warmup_samples!r} and {self.warmup_max_syms!r}")
        if self.warmup_samples is not None:
            check_int("warmup_samples", self.warmup_samples)
            check_int("warmup_max_syms", self.warmup_max_syms)
            if self.warmup_samples < 1:
                raise ValueError(f"warmup_samples must be >= 1 (None: no warm-up), got {self.warmup_samples}")
            if not 1 <= self.warmup_max_syms <= self.max_syms:
                raise ValueError(f"warmup_max_syms must be in [1, max_syms={self.max_syms}], got {self.warmup_max_syms}")
        if not 0 <= self.pre_noise <= 1:
            raise ValueError(f"pre_noise must be in [0, 1], got {self.pre_noise}")
        if not 0 <= self.post_noise <= 1:
            raise ValueError(f"post_noise must be in [0, 1], got {self.post_noise}")
        if self.min_radius < 1:
            raise ValueError(f"min_radius must be >= 1, got {self.min_radius}")
        pad = self.random_shift + STAMP_HEIGHT
        if self.min_radius >= self.size // 2 - pad:
            raise ValueError(
                f"min_radius ({self.min_radius}) must be < size//2 - (random_shift + "
                f"{STAMP_HEIGHT}) = {self.size // 2 - pad} (size={self.size}); "
                "increase size or decrease min_radius / random_shift"
            )

    @property
    def is_clean(self) -> bool:
        """True when neither pre- nor post-noise is applied."""
        return self.pre_noise == 0 and self.post_noise == 0

    def clean(self) -> "DigitCircleConfig":
        """The same config without noise (pre_noise=0, post_noise=0).

        The random stream is consumed identically, so y and motifs equal the noisy ones.
        """
        return replace(self, pre_noise=0.0, post_noise=0.0)

    def build(self) -> "DigitCircleDomain":
        return DigitCircleDomain(self)


# --------------------------------------------------------------------------- domains


class DigitCircleDomain(BaseDomain):
    """3..max_syms distinct digits stamped around a random circle (§3.1)."""

    name = "digit_circle"
    symbols = DIGITS
    motif_evaluation_split = None  # motif metrics on RandomState(i), i < n (spec §6.3)

    def __init__(self, config: DigitCircleConfig | None = None) -> None:
        self.config = config if config is not None else DigitCircleConfig()
        self.stamps = load_stamps()
        self.background = stamp_mean_fill(self.stamps)
        self.max_size = max(max(s.shape) for s in self.stamps.values())
        self.input_shape = (self.config.size, self.config.size)
        self.max_output_length = self.config.max_syms + 2
        self._digit_list = list(DIGITS)

    def __repr__(self) -> str:
        return f"DigitCircleDomain({self.config!r})"

    def clean(self) -> "DigitCircleDomain":
        """The noise-free domain (same y and motifs for the same rng)."""
        return DigitCircleDomain(self.config.clean())

    def sample_at(self, split_seed: int, index: int) -> Sample:
        """Sample ``index`` of split ``split_seed``; inside the train streams' warm-up (see
        ``DigitCircleConfig.warmup_samples``) with 1..warmup_max_syms digits."""
        if self.config.warmup_samples is not None and split_seed >= 0 and index < self.config.warmup_samples:
            return self.sample(self._rng_at(split_seed, index), min_syms=1, max_syms=self.config.warmup_max_syms)
        return super().sample_at(split_seed, index)

    def sample(self, rng: np.random.RandomState, min_syms: int = MIN_SYMS, max_syms: int | None = None) -> Sample:
        """One sample with min_syms..max_syms digits (default 3..config.max_syms); the rng call
        order is the original ``sample_with_metadata``'s."""
        cfg = self.config
        size = cfg.size
        # 1. pre-noise (always drawn, so the clean domain consumes the same stream)
        image = rng.rand(size, size) < self.background * cfg.pre_noise
        # 2. circle
        pad = cfg.random_shift + self.max_size
        radius = rng.randint(cfg.min_radius, size // 2 - pad)
        center = np.array(
            [rng.randint(radius + pad, size - radius - pad) for _ in range(2)], dtype=np.float64
        )
        # 3. symbols
        n = rng.randint(min_syms, (cfg.max_syms if max_syms is None else max_syms) + 1)
        symbols = [str(s) for s in rng.choice(self._digit_list, n, replace=False)]
        # 4. angles: normalised gaps, each at least 1/(2n)
        while True:
            gaps = rng.rand(n)
            gaps /= gaps.sum()
            if (gaps >= 1 / (2 * n)).all():
                break
        angles = 2 * np.pi * (np.cumsum(gaps) + rng.rand())
        # 5. stamps (one randint(-s, s+1, size=2) per digit; drawn together, same stream)
        offsets = np.stack([np.cos(angles), np.sin(angles)], axis=1)
        points = np.round(center + radius * offsets).astype(np.int64)
        points += rng.randint(-cfg.random_shift, cfg.random_shift + 1, size=(n, 2))
        motifs = []
        for sym, (row, col) in zip(symbols, points):
            stamp = self.stamps[sym]
            h, w = stamp.shape
            top, left = int(row) - h // 2, int(col) - w // 2
            footprint = (slice(top, top + h), slice(left, left + w))
            image[footprint] = stamp
            motifs.append(Motif(sym, footprint))
        # 6. post-noise
        image ^= rng.rand(size, size) < cfg.post_noise
        # 7. canonical output
        return Sample(image.astype(np.float32), canonicalize(symbols), tuple(motifs))


class DigitCircleSingleDigitDomain(BaseDomain):
    """One uniformly random digit stamped at the centre of a noisy canvas (§3.2)."""

    name = "digit_circle_single_digit"
    symbols = DIGITS

    def __init__(self, size: int = 32, pre_noise: float = 0.5, post_noise: float = 0.05) -> None:
        check_int("size", size)
        check_number("pre_noise", pre_noise)
        check_number("post_noise", post_noise)
        if size < STAMP_HEIGHT:
            raise ValueError(f"size must be >= {STAMP_HEIGHT}, got {size}")
        if not 0 <= pre_noise <= 1:
            raise ValueError(f"pre_noise must be in [0, 1], got {pre_noise}")
        if not 0 <= post_noise <= 1:
            raise ValueError(f"post_noise must be in [0, 1], got {post_noise}")
        self.size, self.pre_noise, self.post_noise = size, float(pre_noise), float(post_noise)
        self.stamps = load_stamps()
        self.background = stamp_mean_fill(self.stamps)
        self.input_shape = (size, size)
        self.max_output_length = 1 + 2

    def __repr__(self) -> str:
        return (
            f"DigitCircleSingleDigitDomain(size={self.size}, pre_noise={self.pre_noise}, "
            f"post_noise={self.post_noise})"
        )

    def sample(self, rng: np.random.RandomState) -> Sample:
        size = self.size
        image = rng.rand(size, size) < self.background * self.pre_noise
        digit = DIGITS[rng.randint(len(DIGITS))]  # == rng.choice(DIGITS) on a RandomState
        stamp = self.stamps[digit]
        h, w = stamp.shape
        top, left = size // 2 - h // 2, size // 2 - w // 2
        footprint = (slice(top, top + h), slice(left, left + w))
        image[footprint] = stamp
        image ^= rng.rand(size, size) < self.post_noise
        return Sample(image.astype(np.float32), (digit,), (Motif(digit, footprint),))


# --------------------------------------------------------------------------- δ_min


def theoretical_min_density(
    domain: DigitCircleDomain, n: int = 1000, channels: int = 10
) -> float:
    """δ_min = mean len(y) over noise-free samples ``RandomState(i)``, i < n, divided by
    ``channels × positions`` (§2.4). 4.492e-05 for the main DigitCircle config."""
    if n <= 0 or channels <= 0:
        raise ValueError(f"n and channels must be positive, got n={n}, channels={channels}")
    clean = domain.clean()
    mean_len = np.mean([len(clean.sample(np.random.RandomState(i)).y) for i in range(n)])
    return float(mean_len) / (channels * math.prod(clean.input_shape))
