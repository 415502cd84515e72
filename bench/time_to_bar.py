"""Time to the bar: train DigitCircle at preset ``cpu`` from scratch and evaluate at the bar.

Trains ``digit_circle_mt`` (seed 1) in a fresh run store, then prints the wall time,
samples, optimizer steps and densities passed, where the spare channels were cut and which
were kept, and FPE / FNE / CE / E2EE at the bar density 5.022621e-05 on 10,000 samples beside
the paper's 9-seed means. ``--st`` does the same for ``digit_circle_st``. (The candidates that
bench/TRIALS.md compares before the preset took the spare channels are flags of this script at
commit 1d60a30: ``--warmup-restart``, ``--spare-channels --select-at V``.)

    python bench/time_to_bar.py [--st] [--seed 1] [--n 10000] [--store DIR] [--preset cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sparling.annealing import density_key
from sparling.evaluation import cached_evaluation, evaluation_name
from sparling.experiments import evaluate, get_experiment, get_or_train, get_run, training_state
from sparling.reports import PAPER_COLUMN, model_label, paper_digit_circle_numbers
from sparling.store import RunStore
from sparling.training import training_summary


def bench(name: str, preset: str, seed: int, n: int, store: RunStore, device: str) -> None:
    experiment = get_experiment(name, preset)
    trained_before = get_run(experiment, seed, store).is_complete  # --store with a finished run: reprint it
    started = time.perf_counter()
    run = get_or_train(experiment, seed, store, device=device)
    wall = time.perf_counter() - started
    state = training_state(run)
    summary = training_summary(state, experiment.training)
    print(f"\n== {name} at preset {preset}, seed {seed}  (run {run.path})")
    if trained_before:
        print("wall time          not measured: the run was in the store "
              f"(its training took {state.wall_seconds / 60:.1f} min)")
    else:
        print(f"wall time          {wall / 60:.1f} min (training {state.wall_seconds / 60:.1f} min)")
    print(f"torch threads      {', '.join(map(str, summary['threads'])) or 'not recorded'} (the run's weights depend on it)")
    print(f"motif net body     {experiment.body_precision} (bench/precision_speed.py)")
    print(f"samples            {summary['samples']:,}")
    if (kept := summary["kept_channels"]) is not None:
        print(f"spare channels     dropped at {kept['samples']:,} samples; kept {kept['channels']} "
              f"of {experiment.model.motif_net.num_motifs + experiment.model.spare_channels.count}")
    print(f"optimizer steps    {summary['optimizer_steps']:,}")
    print(f"densities passed   {summary['densities_passed']}; "
          f"final density {density_key(state.density)}, bar {density_key(experiment.bar)}")
    if state.density >= experiment.training.stop_density:
        print("the bar was NOT passed: training ended at max_samples")
        return
    started = time.perf_counter()
    result = cached_evaluation(run, evaluation_name(experiment.bar, n))
    took = "cached"
    if result is None:
        result = evaluate(experiment, seed, experiment.bar, n, store, device=device)
        took = f"{time.perf_counter() - started:.0f} s"
    print(f"evaluation         {took} on {n:,} samples; realised density {result.realised_density:.3e}")
    ours = {"E2EE": result.e2ee, "FPE": result.fpe, "FNE": result.fne, "CE": result.ce}
    paper = paper_digit_circle_numbers()
    paper = dict(zip(paper.metric[paper.model == model_label(experiment)], paper[PAPER_COLUMN][paper.model == model_label(experiment)]))
    print(f"{'metric':<11}{'ours (seed ' + str(seed) + ') %':>18}   {PAPER_COLUMN}")
    for metric, value in ours.items():
        print(f"{metric:<11}{100 * value:>18.2f}   {paper[metric]:.4g}")
    print(f"{'FPE+FNE+CE':<11}{100 * (result.fpe + result.fne + result.ce):>18.2f}   "
          f"{sum(paper[m] for m in ('FPE', 'FNE', 'CE')):.4g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--st", action="store_true", help="also train and evaluate digit_circle_st")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--store", type=Path, help="run store folder (default: a fresh temporary one)")
    args = parser.parse_args()
    root = args.store or Path(tempfile.mkdtemp(prefix="sparling-time-to-bar-"))
    store = RunStore(root)
    for name in ["digit_circle_mt"] + (["digit_circle_st"] if args.st else []):
        bench(name, args.preset, args.seed, args.n, store, args.device)


if __name__ == "__main__":
    main()
