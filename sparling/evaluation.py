"""Evaluate a trained run at a density: motif errors and end-to-end error, cached in the run.

The model at density δ is the phase checkpoint saved when training left δ (the weights as
trained at δ, spec §6.7). Motif metrics use the samples ``domain.sample(RandomState(i))``,
i < n (as the authors do for DigitCircle, spec §6.3); the end-to-end error uses the first n
samples of the test split (seed −2, spec §6.4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from sparling.annealing import density_key
from sparling.domains import TEST_SPLIT, Domain
from sparling.metrics import (
    CEMethod,
    MotifConfusion,
    count_motif_matches,
    default_channel_names,
    end_to_end_error,
    exact_match_accuracy,
    motif_errors,
    motif_identification_error,
    motifs_on_map,
)
from sparling.models import SparlingModel
from sparling.training import PHASE_PREFIX, SNAPSHOT_PREFIX, phase_checkpoint_name

__all__ = ["Evaluation", "load_model_at", "motif_confusion", "end_to_end", "evaluate_model", "trained_densities",
           "cached_evaluation", "evaluation_name", "IdentificationPoint", "identification_point", "snapshot_names",
           "load_snapshot"]


@dataclass(frozen=True)
class Evaluation:
    """Errors as fractions (×100 for the paper's %); ``confusion`` maps "pred|true" → count."""

    density: float
    n: int
    fpe: float
    fne: float
    ce: float
    ce_method: str
    e2ee: float
    exact_accuracy: float
    realised_density: float  # measured fraction of nonzero motif-map entries on the motif samples
    confusion: dict[str, int]
    channels: list[str]  # every motif channel, in order (also those that never fired)
    symbols: list[str]  # the domain's symbols, in order

    def confusion_table(self) -> MotifConfusion:
        """The confusion with every channel and symbol (in order), "none" last."""
        conf = MotifConfusion(channels=self.channels, symbols=self.symbols)
        conf.add({tuple(k.split("|", 1)): v for k, v in self.confusion.items()})
        return conf

    def to_json(self) -> dict:
        return asdict(self)


def trained_densities(checkpoint_names: list[str]) -> list[float]:
    """Densities whose phase was completed, densest first."""
    out = [float(n[len(PHASE_PREFIX):]) for n in checkpoint_names if n.startswith(PHASE_PREFIX)]
    return sorted(out, reverse=True)


def load_model_at(model: SparlingModel, run, density: float) -> SparlingModel:
    """Load the phase checkpoint of ``density`` from ``run`` into ``model`` (eval mode)."""
    name = phase_checkpoint_name(density)
    if not run.has_checkpoint(name):
        done = ", ".join(density_key(d) for d in trained_densities(run.checkpoint_names())) or "none"
        raise ValueError(f"run {run.path} has no checkpoint for density {density_key(density)} "
                         f"(it never finished that phase); finished phases: {done}")
    checkpoint = run.load_checkpoint(name)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {name} of run {run.path} does not match the experiment's model: {error}") from error
    return model.eval()


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def motif_confusion(model: SparlingModel, domain: Domain, n: int, batch_size: int = 100) -> tuple[MotifConfusion, float]:
    """Confusion of (channel, true symbol) over the domain's first n motif-evaluation samples
    (``domain.motif_evaluation_batch``); and the realised density (fraction of nonzero motif-map
    entries). A strided ĝ's map is matched against the blocks each footprint touches."""
    names = default_channel_names(model.config.motif_net.num_motifs)
    stride = model.config.motif_net.map_stride
    conf = MotifConfusion(channels=names, symbols=list(domain.motif_symbols))
    nonzero, total = 0, 0
    for start in range(0, n, batch_size):
        x, _, motifs = domain.motif_evaluation_batch(start, min(batch_size, n - start))
        maps = model.motif_map(torch.from_numpy(x).to(_device_of(model))).float().cpu().numpy()
        nonzero += int(np.count_nonzero(maps))
        total += maps.size
        for m, true in zip(maps, motifs):
            conf.add(count_motif_matches(m, motifs_on_map(true, stride), names))
    return conf, nonzero / max(total, 1)


@torch.no_grad()
def end_to_end(model: SparlingModel, domain: Domain, n: int, batch_size: int = 100) -> tuple[float, float]:
    """(E2EE, exact-match accuracy) of greedy decoding on the first n test samples."""
    preds, trues = [], []
    for start in range(0, n, batch_size):
        x, ys, _ = domain.batch(TEST_SPLIT, start, min(batch_size, n - start))
        preds += model.predict(torch.from_numpy(x).to(_device_of(model)), domain.max_output_length)
        trues += ys
    return end_to_end_error(preds, trues), exact_match_accuracy(preds, trues)


def evaluate_model(model: SparlingModel, domain: Domain, density: float, n: int, ce_method: CEMethod,
                   batch_size: int = 100) -> Evaluation:
    """All metrics of an eval-mode model (already loaded at ``density``)."""
    conf, realised = motif_confusion(model, domain, n, batch_size)
    errors = motif_errors(conf, ce_method)
    e2ee, exact = end_to_end(model, domain, n, batch_size)
    return Evaluation(density, n, errors.fpe, errors.fne, errors.ce, ce_method, e2ee, exact, realised,
                      {f"{p}|{t}": c for (p, t), c in conf.counts.items()}, conf.channels, conf.symbols)


def cached_evaluation(run, name: str) -> Evaluation | None:
    try:
        return Evaluation(**run.read_json(name))
    except FileNotFoundError:
        return None


def evaluation_name(density: float, n: int) -> str:
    return f"eval-{density_key(density)}-n{n}"



# --- the theorem's (E, E_m) ------------------------------------------------------------------


@dataclass(frozen=True)
class IdentificationPoint:
    """One checkpoint in the theorem's picture: E (exact-match error, the theorem's end-to-end
    error), E_m (``sparling.metrics.MotifIdentification``) and E2EE, on the same n test samples."""

    samples: int
    density: float
    n: int
    error: float
    motif_error: float
    e2ee: float


def snapshot_names(checkpoint_names: list[str]) -> list[str]:
    """The run's snapshots, oldest first."""
    return sorted(n for n in checkpoint_names if n.startswith(SNAPSHOT_PREFIX))


def load_snapshot(model: SparlingModel, run, name: str) -> tuple[SparlingModel, dict]:
    """Load snapshot ``name`` into ``model`` (eval mode); returns it and the checkpoint's counters."""
    checkpoint = run.load_checkpoint(name)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise ValueError(f"checkpoint {name} of run {run.path} does not match the experiment's model: {error}") from error
    return model.eval(), {"samples": checkpoint["samples"], "density": checkpoint["density"]}


@torch.no_grad()
def identification_point(model: SparlingModel, domain: Domain, n: int, samples: int, density: float,
                         batch_size: int = 256) -> IdentificationPoint:
    """E, E_m and E2EE of an eval-mode model on the first n test samples."""
    maps, motifs, preds, trues = [], [], [], []
    for start in range(0, n, batch_size):
        x, ys, true_motifs = domain.batch(TEST_SPLIT, start, min(batch_size, n - start))
        m = model.motif_map(torch.from_numpy(x).to(_device_of(model)))
        maps += list(m.float().cpu().numpy())
        motifs += true_motifs
        preds += model.predict_from_map(m, domain.max_output_length)
        trues += ys
    return IdentificationPoint(samples, density, n, 1.0 - exact_match_accuracy(preds, trues),
                               motif_identification_error(maps, motifs, domain.motif_symbols),
                               end_to_end_error(preds, trues))
