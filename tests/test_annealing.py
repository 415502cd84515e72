"""The annealing rule (the authors' LinearThresholdAdaptive cases, spec §9.2) and the grid."""

import pytest

from sparling.annealing import (
    AnnealingConfig,
    DensityAnnealer,
    bar_density,
    density_key,
    grid_density,
    grid_index,
    steps_above_bar,
)


def run(annealer, density, calls):
    """Apply (samples, accuracy) calls; return the sparsity (1 − δ) after each, and targets."""
    out = []
    for samples, accuracy in calls:
        density = annealer.update(density, samples, accuracy)
        out.append((round(1 - density, 10), round(annealer.target, 10)))
    return out


def test_fixed_target_with_minimal_update_frequency():
    config = AnnealingConfig(initial_target=0.8, min_target=0.8, max_target=0.8, target_decay_per_sample=0.01,
                             min_samples_between_updates=10, density_factor=0.1)
    sparsities = [s for s, _ in run(DensityAnnealer(config), 0.5, [(100, 0.9), (200, 0.7), (300, 0.9), (305, 0.9), (311, 0.9)])]
    assert sparsities == [0.95, 0.95, 0.995, 0.995, 0.9995]


def test_decaying_target_ratchets_to_accuracy():
    config = AnnealingConfig(initial_target=0.9, min_target=0.8, max_target=0.9, target_decay_per_sample=0.01,
                             min_samples_between_updates=0, density_factor=0.1)
    result = run(DensityAnnealer(config), 0.5, [(3, 0.89), (4, 0.875), (100, 0.79), (101, 0.83), (102, 0.819)])
    assert [s for s, _ in result] == [0.95, 0.95, 0.95, 0.995, 0.995]
    assert [t for _, t in result] == [0.89, 0.88, 0.8, 0.83, 0.82]


def test_below_target_no_change_above_target_multiplies():
    annealer = DensityAnnealer(AnnealingConfig(initial_target=0.5, target_decay_per_sample=0.0, density_factor=0.5))
    assert annealer.update(0.5, 10, 0.4) == 0.5
    assert annealer.update(0.5, 20, 0.6) == 0.25


def test_paper_defaults_decay_linearly_per_sample():
    annealer = DensityAnnealer()  # target 1, −1e-7 per sample
    assert annealer.update(0.5, 20_000, 0.99) == 0.5
    assert annealer.target == pytest.approx(0.998)
    assert annealer.update(0.5, 120_000, 0.98) == 0.5  # target 0.998 − 0.01 = 0.988 > 0.98
    assert annealer.target == pytest.approx(0.988)
    assert annealer.update(0.5, 140_000, 0.99) == 0.375  # 0.99 > 0.986
    assert annealer.target == pytest.approx(0.99)  # ratcheted up to the accuracy


def test_state_round_trip_and_config_mismatch():
    annealer = DensityAnnealer()
    annealer.update(0.5, 1000, 0.5)
    restored = DensityAnnealer()
    restored.load_state_dict(annealer.state_dict())
    assert (restored.target, restored.last_samples) == (annealer.target, annealer.last_samples)
    with pytest.raises(ValueError, match="config"):
        DensityAnnealer(AnnealingConfig(density_factor=0.5)).load_state_dict(annealer.state_dict())


def test_bad_inputs():
    with pytest.raises(ValueError, match="accuracy"):
        DensityAnnealer().update(0.5, 10, 1.5)
    with pytest.raises(ValueError, match="backwards"):
        a = DensityAnnealer()
        a.update(0.5, 10, 0.1)
        a.update(0.5, 5, 0.1)
    with pytest.raises(ValueError, match="density_factor"):
        AnnealingConfig(density_factor=1.0)
    with pytest.raises(ValueError, match="min_target"):
        AnnealingConfig(min_target=0.9, max_target=0.1)


def test_grid_and_bar():
    assert grid_density(0) == 0.5 and grid_density(2) == pytest.approx(0.28125)
    # DigitCircle: δ_min = 4.492e-5 → bar 0.5·0.75³² (spec §2.4).
    assert density_key(bar_density(4.492e-5)) == "5.022621e-05"
    assert grid_index(bar_density(4.492e-5)) == 32
    assert density_key(bar_density(6.973e-6)) == "8.939187e-06"  # LaTeX, n = 38
    assert density_key(bar_density(1.168e-3)) == "1.189204e-03"  # Audio, n = 21
    assert density_key(steps_above_bar(4.492e-5, 8)) == "5.016956e-04"
    assert density_key(steps_above_bar(6.973e-6, 8)) == "8.929105e-05"
    assert density_key(steps_above_bar(1.168e-3, 7)) == "8.908974e-03"
    assert bar_density(grid_density(5)) == pytest.approx(grid_density(5))  # on the grid: its own bar
    assert bar_density(grid_density(5) * 0.999) == pytest.approx(grid_density(5))
    with pytest.raises(ValueError, match="grid"):
        grid_index(0.3)
    with pytest.raises(ValueError, match="min_density"):
        bar_density(-1.0)
