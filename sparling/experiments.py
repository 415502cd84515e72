"""Named experiments × presets, and get-or-train through the run store.

An experiment is (domain config, model config, training config) plus how it is evaluated.
A preset scales it (model width, head, schedule, samples, seeds); it never changes what is
measured: the same domain, motif net shape (receptive field, channels), bottleneck,
density grid, stopping density δ_min and metrics at every preset.

- ``paper``: the authors' hyperparameters (spec §4–§5): ĝ width 64, the paper head (46M
  parameters), batch 10, Adam lr 1e-5, validation on 10k samples every 20k, annealing target
  decay 1e-7 per sample, up to 6·10⁶ samples, 9 seeds.
- ``cpu``: the same ĝ shape (receptive field 17, 10 channels) at width 16 with a bf16 body,
  the pointer head (``PointerHeadConfig``, per-channel tokens), batch 32, AdamW 2e-3 with
  warm-up and clipping, validation on 1,024 samples every 5,120, and the annealing rule with
  target 0 → one grid step per validation while accuracy holds (≈ 33 × 5,120 samples to the bar).
- ``smoke``: a few dozen samples, an annealer that fires at every validation; for CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from sparling.annealing import AnnealingConfig, bar_density, grid_density
from sparling.domains.digit_circle import DigitCircleConfig, DigitCircleDomain
from sparling.metrics import CEMethod
from sparling.models import ModelConfig, MotifNetConfig, PaperHeadConfig, PointerHeadConfig, SparlingModel
from sparling.presets import PRESETS, check_preset
from sparling.sparsity import SparlingConfig
from sparling.store import Run, RunStore
from sparling.evaluation import Evaluation, cached_evaluation, evaluate_model, evaluation_name, load_model_at
from sparling.training import LATEST, TrainingConfig, TrainingState, resolve_device, train

DIGIT_CIRCLE_MIN_DENSITY = 4.492e-5  # δ_min: 4.492 motifs / (10 channels × 100·100); checked by a test


@dataclass(frozen=True)
class Experiment:
    """One named experiment at one preset."""

    name: str
    preset: str
    domain: DigitCircleConfig
    model: ModelConfig
    training: TrainingConfig
    ce_method: CEMethod = "hungarian"
    seeds: tuple[int, ...] = (1,)

    def build_domain(self) -> DigitCircleDomain:
        return DigitCircleDomain(self.domain)

    def build_model(self, seed: int) -> SparlingModel:
        """The model with seeded initialisation (the global torch RNG is left as it was)."""
        domain = self.build_domain()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return SparlingModel(self.model, domain.symbols, domain.max_output_length, self.training.initial_density)

    @property
    def bar(self) -> float:
        """The evaluation density: the smallest grid density ≥ the stopping density."""
        return bar_density(self.training.stop_density)

    def run_config(self) -> "RunConfig":
        """What the run key hashes: everything that changes the trained weights."""
        return RunConfig(self.domain, self.model, self.training)


@dataclass(frozen=True)
class RunConfig:
    domain: DigitCircleConfig
    model: ModelConfig
    training: TrainingConfig


# --- presets --------------------------------------------------------------------------------


def _paper(per_channel: bool) -> tuple[ModelConfig, TrainingConfig, tuple[int, ...]]:
    model = ModelConfig(MotifNetConfig(hidden=64), SparlingConfig(per_channel=per_channel), PaperHeadConfig())
    training = TrainingConfig(stop_density=DIGIT_CIRCLE_MIN_DENSITY)
    return model, training, tuple(range(1, 10))


def _cpu(per_channel: bool) -> tuple[ModelConfig, TrainingConfig, tuple[int, ...]]:
    model = ModelConfig(MotifNetConfig(hidden=16, bf16_body=True), SparlingConfig(per_channel=per_channel),
                        PointerHeadConfig(per_channel_tokens=2))
    training = TrainingConfig(
        batch_size=32, learning_rate=2e-3, adam_beta2=0.98, weight_decay=0.01, warmup_samples=6400, grad_clip=1.0,
        max_samples=400_000, val_every=5120, val_samples=1024, val_batch_size=256,
        stop_density=DIGIT_CIRCLE_MIN_DENSITY,
        # The target starts at 0 and decays 3 % per validation: the density moves one grid step
        # per validation unless accuracy dropped by more than that, so every phase trains for
        # 5,120 samples and the head learns the order while the map sparsifies.
        annealing=AnnealingConfig(initial_target=0.0, target_decay_per_sample=6e-6),
    )
    return model, training, (1,)


def _smoke(per_channel: bool) -> tuple[ModelConfig, TrainingConfig, tuple[int, ...]]:
    model = ModelConfig(
        MotifNetConfig(hidden=4), SparlingConfig(per_channel=per_channel),
        PointerHeadConfig(tokens=8, d_model=16, heads=2, feedforward=32, fourier_features=2, centred_fourier_features=2),
    )
    # The target starts at 0 and decays fast, so the annealer fires at every validation:
    # 4 validations take δ from 0.5 to 0.5·0.75⁴, which is below the stopping density.
    training = TrainingConfig(
        batch_size=4, learning_rate=1e-3, max_samples=64, val_every=8, val_samples=8, val_batch_size=8,
        stop_density=grid_density(3) * 0.99,
        annealing=AnnealingConfig(initial_target=0.0, min_target=-1.0, target_decay_per_sample=1.0),
    )
    return model, training, (1, 2)


_PRESET_BUILDERS: dict[str, Callable[[bool], tuple[ModelConfig, TrainingConfig, tuple[int, ...]]]] = {
    "smoke": _smoke, "cpu": _cpu, "paper": _paper,
}


def _digit_circle(name: str, per_channel: bool) -> Callable[[str], Experiment]:
    def build(preset: str) -> Experiment:
        model, training, seeds = _PRESET_BUILDERS[preset](per_channel)
        return Experiment(name, preset, DigitCircleConfig(), model, training, "hungarian", seeds)
    return build


EXPERIMENTS: dict[str, Callable[[str], Experiment]] = {
    "digit_circle_mt": _digit_circle("digit_circle_mt", per_channel=True),
    "digit_circle_st": _digit_circle("digit_circle_st", per_channel=False),
}


def get_experiment(name: str, preset: str = "cpu") -> Experiment:
    """The experiment ``name`` at ``preset`` (clear errors for unknown names or presets)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name](check_preset(preset))


def check_seed(seed: object) -> int:
    """A run seed: a non-negative int (negative split seeds are the validation/test streams)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (split seeds -1 and -2 are validation and test), got {seed}")
    return seed


def get_run(experiment: Experiment, seed: int, store: RunStore | None = None) -> Run:
    return (store or RunStore()).run(f"{experiment.name}.{experiment.preset}", experiment.run_config(), check_seed(seed))


def get_or_train(experiment: Experiment, seed: int, store: RunStore | None = None, device: str = "auto",
                 progress: bool = True) -> Run:
    """The finished run of ``experiment`` with ``seed``: trained (or resumed) only if needed."""
    run = get_run(experiment, seed, store)
    if run.is_complete:
        return run
    with run.lock():
        model = experiment.build_model(seed)
        train(model, experiment.build_domain(), experiment.training, seed, run, device, progress)
    return run


def evaluate(experiment: Experiment, seed: int, density: float, n: int, store: RunStore | None = None,
             device: str = "auto", batch_size: int = 100) -> Evaluation:
    """Metrics of a trained run at ``density`` on ``n`` samples (cached in the run)."""
    run = get_run(experiment, seed, store)
    name = evaluation_name(density, n)
    cached = cached_evaluation(run, name)
    if cached is not None:
        return cached
    model = load_model_at(experiment.build_model(seed), run, density).to(resolve_device(device))
    result = evaluate_model(model, experiment.build_domain(), density, n, experiment.ce_method, batch_size)
    run.write_json(name, result.to_json())
    return result


def training_state(run: Run) -> TrainingState:
    """Counters and history of a run from its latest checkpoint (no model is built)."""
    return TrainingState.from_checkpoint(run.load_checkpoint(LATEST))


__all__ = ["Experiment", "EXPERIMENTS", "PRESETS", "get_experiment", "get_run", "get_or_train", "check_seed", "evaluate",
           "training_state", "DIGIT_CIRCLE_MIN_DENSITY"]
