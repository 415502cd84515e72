"""MT against ST with a head of the paper's kind: does ST merge digits where MT does not?

At the cpu preset (a pointer head reading each channel's strongest pixel) ST keeps one channel per
digit on four seeds of five, where the paper's ST merges digits on eight of nine (CE 22 % against
MT's 1.2 %). This script trains ``digit_circle_mt`` and ``digit_circle_st`` at a preset with that
head swapped for a small ``PaperHead`` (a 1×1 collapse, 8×8 max-pooling, a row BiLSTM, a
transformer encoder and decoder: a head that reads a pooled, mixed code, as the paper's does) and
the learning rate at 1e-3; everything else is the preset's. It prints each run's training summary,
then FPE / FNE / CE / E2EE and the merging channels (``reports.channel_use``) of MT and ST side by
side, at the bar and ``--steps`` grid steps above it.

    python bench/st_contrast_pooled_head.py [--seed 1] [--n 10000] [--steps 0 1 5] [--store DIR] [--preset cpu]

Runs go to the run store (``--store``, else ``$SPARLING_STORE``, else ``runs/``) under their own
keys, beside the preset's; a stored run is reprinted, not retrained. At cpu a run took ≈ 2 h 10 min
beside the other on one thread each (2026-12-08, bench/TRIALS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from sparling.annealing import density_key, steps_above_bar
from sparling.experiments import Experiment, evaluate, get_experiment, get_or_train, training_state
from sparling.models import PaperHeadConfig
from sparling.reports import channel_use
from sparling.store import RunStore
from sparling.training import training_summary

POOLED_HEAD = {
    "cpu": PaperHeadConfig(channels=64, pool=8, heads=4, encoder_layers=1, decoder_layers=2, feedforward=128,
                           dropout=0.0),
    "smoke": PaperHeadConfig(channels=16, pool=8, heads=2, encoder_layers=1, decoder_layers=1, feedforward=32,
                             dropout=0.0),
}
LEARNING_RATE = 1e-3  # the LaTeX cpu preset's, whose head is of this kind (the pointer head trains at 2e-3)


def pooled_head_variant(name: str, preset: str) -> Experiment:
    """The experiment at ``preset`` with the pooled head and its learning rate; its run key is its own."""
    if preset not in POOLED_HEAD:
        raise ValueError(f"no pooled head for preset {preset!r}; choose from {sorted(POOLED_HEAD)}")
    experiment = get_experiment(name, preset)
    return dataclasses.replace(experiment, model=dataclasses.replace(experiment.model, head=POOLED_HEAD[preset]),
                               training=dataclasses.replace(experiment.training, learning_rate=LEARNING_RATE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=10_000, help="test samples per evaluation")
    parser.add_argument("--steps", type=int, nargs="+", default=[0, 1, 5], help="grid steps above the bar")
    parser.add_argument("--preset", default="cpu", choices=sorted(POOLED_HEAD))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--store", type=Path, help="run store folder (default: $SPARLING_STORE, else runs/)")
    args = parser.parse_args()
    if any(k < 0 for k in args.steps):
        parser.error(f"--steps must be >= 0, got {args.steps}")
    store = RunStore(args.store)
    experiments = {kind: pooled_head_variant(f"digit_circle_{kind}", args.preset) for kind in ("mt", "st")}
    for kind, experiment in experiments.items():
        started = time.perf_counter()
        run = get_or_train(experiment, args.seed, store, device=args.device)
        summary = training_summary(training_state(run), experiment.training)
        print(f"== {experiment.name}, pooled head, preset {args.preset}, seed {args.seed}  (run {run.path})")
        print(f"   {summary['samples']:,} samples, {summary['wall_seconds'] / 60:.1f} min of training "
              f"(this call {(time.perf_counter() - started) / 60:.1f} min), torch threads {summary['threads']}, "
              f"final density {density_key(summary['final_density'])}")
    print(f"\n{'steps above bar':>15} {'density':>12} {'model':>5} {'FPE %':>7} {'FNE %':>7} {'CE %':>7} {'E2EE %':>7}  "
          f"merging channels (reports.channel_use)")
    for steps in sorted(set(args.steps), reverse=True):
        for kind, experiment in experiments.items():
            density = steps_above_bar(experiment.training.stop_density, steps)
            result = evaluate(experiment, args.seed, density, args.n, store, device=args.device)
            print(f"{steps:>15} {density_key(density):>12} {kind.upper():>5} {100 * result.fpe:>7.2f} "
                  f"{100 * result.fne:>7.2f} {100 * result.ce:>7.2f} {100 * result.e2ee:>7.2f}  "
                  f"{channel_use(result)['merging channels']}")
    print(f"(n = {args.n:,} test samples per row; the paper, 9 seeds at the bar: MT CE 1.16 %, ST CE 22.19 %)")


if __name__ == "__main__":
    main()
