"""Sparling reproduction: the spatial sparsity layer, density annealing, domains, models,
training, evaluation and the experiments behind the paper's figures and tables.

Layers (data flows one way): domains → models → training → evaluation → experiments.
"""

from sparling.annealing import AnnealingConfig, DensityAnnealer, bar_density, density_key, grid_density, steps_above_bar
from sparling.sparsity import (
    BatchTopKBottleneck,
    Bottleneck,
    KLBottleneck,
    L1Bottleneck,
    NoBottleneck,
    SpatialSparsity,
    TopKBottleneck,
    get_density,
    set_density,
)

__version__ = "0.1.0"

__all__ = [
    "AnnealingConfig",
    "DensityAnnealer",
    "bar_density",
    "density_key",
    "grid_density",
    "steps_above_bar",
    "Bottleneck",
    "SpatialSparsity",
    "NoBottleneck",
    "L1Bottleneck",
    "KLBottleneck",
    "TopKBottleneck",
    "BatchTopKBottleneck",
    "set_density",
    "get_density",
]
