"""The three presets. A preset scales an experiment (model size, samples, seeds); it never
changes what is measured.

- ``smoke``: CI, seconds per notebook.
- ``cpu``: the default, a 2-core laptop.
- ``paper``: the authors' hyperparameters, for a GPU.
"""

from __future__ import annotations

PRESETS = ("smoke", "cpu", "paper")
DEFAULT_PRESET = "cpu"


def check_preset(preset: str) -> str:
    """Return ``preset`` if it is known, else raise a ValueError that lists the choices."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return preset
