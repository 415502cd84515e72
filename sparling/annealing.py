"""Adaptive density annealing (Algorithm 1) and the density grid.

The annealer has the semantics of the authors' ``LinearThresholdAdaptive`` rule. It is called
once per validation with the samples seen so far and the validation accuracy:

    Δ = samples − last_samples;  if Δ < min_samples_between_updates: no change
    last_samples = samples
    T = clip(T − target_decay_per_sample·Δ, min_target, max_target)
    if accuracy > T: δ ← δ·density_factor
    T = max(T, accuracy)

Every density it visits is on the grid δ_n = δ₀·factorⁿ (0.5·0.75ⁿ in the paper).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = [
    "AnnealingConfig",
    "DensityAnnealer",
    "grid_density",
    "grid_index",
    "bar_density",
    "steps_above_bar",
    "density_key",
]

INITIAL_DENSITY = 0.5
DENSITY_FACTOR = 0.75


@dataclass(frozen=True)
class AnnealingConfig:
    """Parameters of the annealing rule. Units: accuracies in [0, 1], decay per training sample.

    The paper's main runs use the defaults (target 1 → decays 1e-7 per sample, factor 0.75).
    """

    initial_target: float = 1.0
    min_target: float = 0.0
    max_target: float = 1.0
    target_decay_per_sample: float = 1e-7
    min_samples_between_updates: int = 0
    density_factor: float = DENSITY_FACTOR

    def __post_init__(self) -> None:
        if self.min_target > self.max_target:
            raise ValueError(f"min_target ({self.min_target}) must be <= max_target ({self.max_target})")
        if self.target_decay_per_sample < 0:
            raise ValueError(f"target_decay_per_sample must be >= 0, got {self.target_decay_per_sample}")
        if self.min_samples_between_updates < 0:
            raise ValueError(f"min_samples_between_updates must be >= 0, got {self.min_samples_between_updates}")
        if not 0.0 < self.density_factor < 1.0:
            raise ValueError(f"density_factor must be in (0, 1), got {self.density_factor}")


class DensityAnnealer:
    """Stateful annealing rule; ``update`` returns the density to train at next."""

    def __init__(self, config: AnnealingConfig = AnnealingConfig()):
        self.config = config
        self.target = config.initial_target
        self.last_samples = 0

    def update(self, density: float, samples: int, accuracy: float) -> float:
        """One validation: ``samples`` seen so far, validation ``accuracy`` → the next density."""
        c = self.config
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {accuracy!r}")
        elapsed = samples - self.last_samples
        if elapsed < 0:
            raise ValueError(f"samples went backwards: {samples} < {self.last_samples}")
        if elapsed < c.min_samples_between_updates:
            return density
        self.last_samples = samples
        self.target = min(max(self.target - c.target_decay_per_sample * elapsed, c.min_target), c.max_target)
        if accuracy > self.target:
            density = density * c.density_factor
        self.target = max(self.target, accuracy)
        return density

    def state_dict(self) -> dict:
        return {"target": self.target, "last_samples": self.last_samples, "config": asdict(self.config)}

    def load_state_dict(self, state: dict) -> None:
        if state["config"] != asdict(self.config):
            raise ValueError(f"annealer state was saved with config {state['config']}, this annealer has {asdict(self.config)}")
        self.target = float(state["target"])
        self.last_samples = int(state["last_samples"])


def grid_density(n: int, initial: float = INITIAL_DENSITY, factor: float = DENSITY_FACTOR) -> float:
    """δ_n = initial·factorⁿ."""
    return initial * factor**n


def grid_index(density: float, initial: float = INITIAL_DENSITY, factor: float = DENSITY_FACTOR) -> int:
    """n such that δ_n ≈ density (error if density is not on the grid to 1e-6 relative)."""
    n = round(math.log(density / initial) / math.log(factor))
    if abs(grid_density(n, initial, factor) - density) > 1e-6 * density:
        raise ValueError(f"density {density!r} is not on the grid {initial}·{factor}^n")
    return n


def bar_density(min_density: float, initial: float = INITIAL_DENSITY, factor: float = DENSITY_FACTOR) -> float:
    """The bar: the smallest grid density ≥ ``min_density`` (δ_min)."""
    if not 0.0 < min_density <= initial:
        raise ValueError(f"min_density must be in (0, {initial}], got {min_density!r}")
    # The tolerance keeps a δ_min that lies on the grid (up to rounding) as its own bar.
    n = math.floor(math.log(min_density / initial) / math.log(factor) + 1e-9)
    return grid_density(n, initial, factor)


def steps_above_bar(min_density: float, steps: int, initial: float = INITIAL_DENSITY, factor: float = DENSITY_FACTOR) -> float:
    """The grid density ``steps`` steps denser than the bar (bar / factor^steps)."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    bar = bar_density(min_density, initial, factor)
    return grid_density(grid_index(bar, initial, factor) - steps, initial, factor)


def density_key(density: float) -> str:
    """The string key of a density, as in the authors' checkpoint names: f"{δ:.6e}"."""
    return f"{density:.6e}"
