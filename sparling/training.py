"""The training loop: batches, validation, density annealing, checkpoints, resume.

Progress is counted in training samples (as in the paper). Batch k of a run with seed s is
samples [k·B, (k+1)·B) of the domain's split s. Every ``val_every`` samples the model decodes
the first ``val_samples`` of the validation split; the exact-match accuracy drives the
annealer. When the annealer moves the density on, the weights that were trained at the old
density are saved as that density's phase checkpoint (``density-<δ:.6e>``); a ``latest``
checkpoint (model, optimizer, annealer, counters, history, RNG) after every validation makes
an interrupted run resume where it stopped. Training ends when δ < ``stop_density`` (δ_min)
or after ``max_samples``.

``final_phase_samples`` keeps the step that would end training (the one below
``stop_density``) from happening before that many samples were trained at the last density
(the bar): the weights evaluated at the bar get that much training there. Two options serve the
theorem's experiments: ``hold_density`` stops the annealing there (a step that would go below it
lands exactly on it, and the density then stays), and ``snapshot_every`` also saves the weights
every that many samples (``snapshot-<samples>``). ``near_bar`` (``NearBarPhasesConfig``) makes
each phase within a few grid steps of the bar last at least a given number of samples, so that a
schedule can move fast through the dense phases and slowly where the code has to become pure.

A model with spare channels (``ModelConfig.spare_channels``) drops them at the validation at
``select_samples``, keeping the channels paired with the output symbols on the validation inputs
(``sparling.models.spare_channels``); the optimizer keeps its moments for the kept channels.
Until then the density holds, so no phase checkpoint has spare channels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import torch
from tqdm.auto import tqdm

from sparling.annealing import AnnealingConfig, DensityAnnealer, bar_density, density_key, steps_above_bar
from sparling.domains import VALIDATION_SPLIT, Domain
from sparling.models import SparlingModel
from sparling.models.spare_channels import paired_channels, select_along

LATEST = "latest"
PHASE_PREFIX = "density-"
SNAPSHOT_PREFIX = "snapshot-"


def phase_checkpoint_name(density: float) -> str:
    """Name of the checkpoint holding the weights at the end of ``density``'s phase."""
    return f"{PHASE_PREFIX}{density_key(density)}"


def snapshot_name(samples: int) -> str:
    """Name of the snapshot taken after ``samples`` training samples (zero-padded: sorts by time)."""
    return f"{SNAPSHOT_PREFIX}{samples:012d}"


@dataclass(frozen=True)
class NearBarPhasesConfig:
    """Every density within ``steps`` grid steps above the bar (the smallest grid density ≥
    ``TrainingConfig.stop_density``; the bar itself excluded, ``final_phase_samples`` covers it)
    trains for at least ``samples`` samples before the annealer may move on."""

    steps: int
    samples: int

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")

    def holds(self, density: float, stop_density: float, trained_at_density: int) -> bool:
        """Whether a phase at ``density`` that has trained ``trained_at_density`` samples must go on."""
        near = steps_above_bar(stop_density, self.steps)
        return bar_density(stop_density) < density <= near * (1 + 1e-9) and trained_at_density < self.samples


@dataclass(frozen=True)
class TrainingConfig:
    """Units: samples (not optimizer steps). Defaults are the paper's DigitCircle run (§2.3, §5)."""

    batch_size: int = 10
    learning_rate: float = 1e-5
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    warmup_samples: int = 0
    grad_clip: float = 0.0  # 0 = no clipping
    max_samples: int = 6_000_000
    val_every: int = 20_000
    val_samples: int = 10_000
    val_batch_size: int = 100
    initial_density: float = 0.5
    stop_density: float = 4.492e-5
    annealing: AnnealingConfig = field(default_factory=AnnealingConfig)
    hold_density: float | None = None  # anneal down to exactly this density, then hold it
    final_phase_samples: int | None = None  # train at least this many samples at the last density ≥ stop_density
    snapshot_every: int | None = None  # also save the weights every this many samples
    near_bar: NearBarPhasesConfig | None = None  # the phases just above the bar each last at least this long

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_samples", "val_every", "val_samples", "val_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.val_every % self.batch_size:
            raise ValueError(f"val_every ({self.val_every}) must be a multiple of batch_size ({self.batch_size})")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.initial_density <= 1:
            raise ValueError(f"initial_density must be in (0, 1], got {self.initial_density}")
        if self.hold_density is not None and not 0 < self.hold_density <= self.initial_density:
            raise ValueError(f"hold_density must be in (0, initial_density], got {self.hold_density}")
        if self.final_phase_samples is not None and self.final_phase_samples < 1:
            raise ValueError(f"final_phase_samples must be >= 1, got {self.final_phase_samples}")
        if self.near_bar is not None and not 0 < self.stop_density <= self.initial_density:
            raise ValueError(f"near_bar needs a stop_density in (0, initial_density], got {self.stop_density}")
        if self.snapshot_every is not None and (self.snapshot_every < 1 or self.snapshot_every % self.batch_size):
            raise ValueError(f"snapshot_every ({self.snapshot_every}) must be a positive multiple of batch_size")


class CheckpointStore(Protocol):
    """What training needs from a run in the store (see ``sparling.store.Run``)."""

    def save_checkpoint(self, name: str, payload: dict) -> None: ...
    def remove_checkpoint(self, name: str) -> None: ...
    def load_checkpoint(self, name: str) -> dict: ...
    def has_checkpoint(self, name: str) -> bool: ...
    def write_json(self, name: str, obj: object) -> None: ...
    def mark_complete(self) -> None: ...

    @property
    def is_complete(self) -> bool: ...


@dataclass
class TrainingState:
    samples: int = 0
    density: float = 0.5
    wall_seconds: float = 0.0
    history: list[dict] = field(default_factory=list)  # one entry per validation

    @classmethod
    def from_checkpoint(cls, checkpoint: dict) -> "TrainingState":
        return cls(checkpoint["samples"], checkpoint["density"], checkpoint["wall_seconds"], list(checkpoint["history"]))


def resolve_device(device: str) -> torch.device:
    """"auto" → cuda if available, else cpu; anything else is passed to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


@torch.no_grad()
def validation_accuracy(model: SparlingModel, domain: Domain, config: TrainingConfig, device: torch.device,
                        observe: Callable[[torch.Tensor, Sequence[Sequence[str]]], None] | None = None) -> float:
    """Exact-match accuracy of greedy decoding on the first ``val_samples`` of the validation split
    (``SparlingModel.exact_matches``: one teacher-forced pass per batch, the same verdicts).
    ``observe(m, ys)`` sees each batch's motif map (N, C, *spatial) and ys."""
    was_training = model.training
    model.eval()
    matches = 0
    for start in range(0, config.val_samples, config.val_batch_size):
        x, ys, _ = domain.batch(VALIDATION_SPLIT, start, min(config.val_batch_size, config.val_samples - start))
        m = model.motif_map(torch.from_numpy(x).to(device))
        if observe is not None:
            observe(m, ys)
        matches += int(model.exact_matches_from_map(m, ys).sum())
    model.train(was_training)
    return matches / config.val_samples


def _optimizer(model: SparlingModel, config: TrainingConfig) -> torch.optim.Optimizer:
    betas = (0.9, config.adam_beta2)
    if config.weight_decay:
        return torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=betas, weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=betas)


def _learning_rate(config: TrainingConfig, samples: int) -> float:
    if config.warmup_samples and samples < config.warmup_samples:
        return config.learning_rate * (samples + config.batch_size) / config.warmup_samples
    return config.learning_rate


def _restore(run: CheckpointStore, model: SparlingModel, config: TrainingConfig,
             annealer: DensityAnnealer) -> tuple[TrainingState, torch.optim.Optimizer]:
    """The state, and an optimizer over ``model``'s parameters, of ``run``'s latest checkpoint.
    The optimizer is built after the model is loaded: loading may drop spare channels."""
    checkpoint = run.load_checkpoint(LATEST)
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer = _optimizer(model, config)
        optimizer.load_state_dict(checkpoint["optimizer"])
        annealer.load_state_dict(checkpoint["annealer"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise ValueError(f"checkpoint {LATEST!r} of this run does not match its model or config: {error}") from error
    torch.set_rng_state(checkpoint["rng"])
    return TrainingState.from_checkpoint(checkpoint), optimizer


def _drop_spare_channels(model: SparlingModel, optimizer: torch.optim.Optimizer, config: TrainingConfig,
                         keep: list[int]) -> torch.optim.Optimizer:
    """Keep channels ``keep`` of ``model`` (``SparlingModel.select_channels``) → an optimizer over
    the new parameters whose moments are the old ones' at the kept channels."""
    names = [name for name, _ in model.named_parameters()]
    saved = optimizer.state_dict()
    axes = model.select_channels(keep)  # same parameters, same order: the saved state's indices still hold
    for index, moments in saved["state"].items():
        if (axis := axes.get(names[index])) is not None:
            moments.update({key: select_along(value, axis, keep) for key, value in moments.items() if key != "step"})
    optimizer = _optimizer(model, config)
    optimizer.load_state_dict(saved)
    return optimizer


def _phase_start(history: list[dict], density: float) -> int:
    """Samples seen when training at ``density`` began (densities only decrease)."""
    start = 0
    for entry in history:
        if entry["density"] != density:
            start = entry["samples"]
    return start


def train(model: SparlingModel, domain: Domain, config: TrainingConfig, seed: int, run: CheckpointStore,
          device: str | torch.device = "cpu", progress: bool = True) -> TrainingState:
    """Train ``model`` on ``domain``'s split ``seed`` (resuming from ``run``'s latest checkpoint).

    The caller seeds the model's initialisation (``Experiment.build_model(seed)``); training seeds
    torch's global RNG with ``seed``.
    """
    spare = model.config.spare_channels
    if spare is not None and spare.select_samples % config.val_every:
        raise ValueError(f"spare_channels.select_samples ({spare.select_samples}) must be a multiple of "
                         f"val_every ({config.val_every}): channels are selected at a validation")
    device = resolve_device(device) if isinstance(device, str) else device
    model.to(device).train()
    annealer = DensityAnnealer(config.annealing)
    if run.has_checkpoint(LATEST):
        state, optimizer = _restore(run, model, config, annealer)
    else:
        optimizer = _optimizer(model, config)
        model.density = config.initial_density
        state = TrainingState(density=config.initial_density)
        torch.manual_seed(seed)  # dropout and other randomness of training (resumes restore it)
    if run.is_complete:
        return state

    def save_latest() -> None:
        run.save_checkpoint(LATEST, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "annealer": annealer.state_dict(),
            "samples": state.samples, "density": state.density, "wall_seconds": state.wall_seconds,
            "history": state.history, "rng": torch.get_rng_state(),
        })

    bar = tqdm(total=config.max_samples, initial=state.samples, unit="sample", disable=not progress,
               desc=f"seed {seed}", dynamic_ncols=True)
    try:
        started, losses = time.perf_counter() - state.wall_seconds, []
        finished = state.density < config.stop_density or state.samples >= config.max_samples
        while not finished:
            x, ys, _ = domain.batch(seed, state.samples, config.batch_size)
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, state.samples)
            loss, ce = model.loss(torch.from_numpy(x).to(device), ys)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(ce.item())
            state.samples += config.batch_size
            bar.update(config.batch_size)
            if config.snapshot_every and state.samples % config.snapshot_every == 0:
                run.save_checkpoint(snapshot_name(state.samples), {
                    "model": model.state_dict(), "density": state.density, "samples": state.samples,
                })
            if state.samples % config.val_every == 0:
                maxima, val_ys = [], []  # each channel's spatial maximum on the validation inputs, when asked for

                def observe(m: torch.Tensor, ys: Sequence[Sequence[str]]) -> None:
                    maxima.append(m.flatten(2).amax(-1).float().cpu())
                    val_ys.extend(ys)

                select = spare is not None and state.samples == spare.select_samples
                accuracy = validation_accuracy(model, domain, config, device, observe=observe if select else None)
                if select:
                    keep = paired_channels(torch.cat(maxima), model.presence(val_ys), model.config.motif_net.num_motifs)
                    optimizer = _drop_spare_channels(model, optimizer, config, keep)
                    bar.write(f"seed {seed}: kept channels {keep} of {model.channels + spare.count} at {state.samples:,} samples")
                target_before = annealer.target
                new_density = annealer.update(state.density, state.samples, accuracy)
                if config.hold_density:
                    new_density = max(new_density, config.hold_density)
                if spare is not None and state.samples < spare.select_samples:
                    # no phase closes with spare channels: every phase checkpoint has the configured ĝ
                    new_density = state.density
                trained_here = state.samples - _phase_start(state.history, state.density)
                if (config.final_phase_samples and new_density < config.stop_density
                        and trained_here < config.final_phase_samples):
                    new_density = state.density  # the last phase (the bar) is not over yet
                if config.near_bar is not None and config.near_bar.holds(state.density, config.stop_density, trained_here):
                    new_density = state.density  # a phase near the bar is not over yet
                state.wall_seconds = time.perf_counter() - started
                state.history.append({
                    "samples": state.samples, "density": state.density, "accuracy": accuracy,
                    "target": target_before, "loss": sum(losses) / len(losses), "wall_seconds": state.wall_seconds,
                    # CPU weights depend on it: another thread count sums in another order, and
                    # training amplifies the difference (the run key does not hold it)
                    "threads": torch.get_num_threads(),
                    # the channels kept of ĝ's num_motifs + spare ones (SpareChannelsConfig), in the old numbering
                    **({"kept_channels": keep} if select else {}),
                })
                losses = []
                if new_density != state.density:
                    # The weights as trained at the old density close its phase.
                    run.save_checkpoint(phase_checkpoint_name(state.density), {
                        "model": model.state_dict(), "density": state.density, "samples": state.samples,
                        "accuracy": accuracy, "wall_seconds": state.wall_seconds,
                    })
                    state.density = new_density
                    model.density = new_density
                finished = state.density < config.stop_density or state.samples >= config.max_samples
                save_latest()
                run.write_json("history", state.history)
                bar.set_postfix(density=f"{state.density:.3g}", acc=f"{accuracy:.3f}", loss=f"{state.history[-1]['loss']:.3f}")
            elif state.samples >= config.max_samples:
                finished = True
                state.wall_seconds = time.perf_counter() - started
                save_latest()
    finally:
        bar.close()
    run.mark_complete()
    return state


def training_summary(state: TrainingState, config: TrainingConfig) -> dict:
    """Plain numbers about a finished (or resumed) run."""
    passed = sorted({h["density"] for h in state.history if h["density"] > state.density}, reverse=True)
    return {
        "samples": state.samples,
        "optimizer_steps": state.samples // config.batch_size,
        "wall_seconds": state.wall_seconds,
        "final_density": state.density,
        "densities_passed": len(passed),
        # torch threads the run trained on (its CPU weights depend on them); runs from before 2026-12-01 did not record them
        "threads": sorted({h["threads"] for h in state.history if "threads" in h}),
        # where spare channels were dropped, and which were kept: {"samples", "channels"} (SpareChannelsConfig)
        "kept_channels": next(({"samples": h["samples"], "channels": h["kept_channels"]} for h in state.history
                               if "kept_channels" in h), None),
        "config": asdict(config),
    }
