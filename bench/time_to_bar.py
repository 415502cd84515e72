"""Time to the bar: train DigitCircle at preset ``cpu`` from scratch and evaluate at the bar.

Trains ``digit_circle_mt`` (seed 1) in a fresh run store, then prints the wall time,
samples, optimizer steps and densities passed, and FPE / FNE / CE / E2EE at the bar density
5.022621e-05 on 10,000 samples beside the paper's 9-seed means. ``--st`` does the same for
``digit_circle_st``. ``--warmup-restart`` trains the candidate of 2026-12-05 instead of the
preset (bench/TRIALS.md): the first 20,480 training images hold 1-2 digits, and a run whose
channels duplicate at 30,720 samples starts again from a fresh initialisation (up to 3 times).
``--spare-channels`` trains the candidate of 2026-12-06: the same warm-up, and ĝ with 10 spare
channels until 30,720 samples (``--select-at V``: until the V-th validation, default 6), when the
10 channels paired with the digits are kept.

    python bench/time_to_bar.py [--st] [--warmup-restart | --spare-channels [--select-at 6]] [--seed 1] [--n 10000] [--store DIR] [--preset cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from sparling.annealing import density_key
from sparling.evaluation import cached_evaluation, evaluation_name
from sparling.experiments import Experiment, evaluate, get_experiment, get_or_train, get_run, training_state
from sparling.models import SpareChannelsConfig
from sparling.reports import PAPER_COLUMN, model_label, paper_digit_circle_numbers
from sparling.store import RunStore
from sparling.training import RestartConfig, training_summary


def small_scene_warmup(experiment: Experiment) -> Experiment:
    """``experiment`` whose first 20,480 training images hold 1-2 digits."""
    return replace(experiment, domain=replace(experiment.domain, warmup_samples=20_480, warmup_max_syms=2))


def warmup_restart(experiment: Experiment) -> Experiment:
    """``experiment`` with the small-scene warm-up and restarts on an early duplicate channel."""
    return replace(small_scene_warmup(experiment), training=replace(experiment.training, restart=RestartConfig()))


def spare_channels(experiment: Experiment, validations: int = 6) -> Experiment:
    """``experiment`` with the small-scene warm-up and 10 spare channels until its ``validations``-th
    validation (6: 30,720 samples at preset cpu; at smoke, whose run has 4, the 2nd at most)."""
    if experiment.preset == "smoke":
        validations = min(validations, 2)
    spare = SpareChannelsConfig(count=10, select_samples=validations * experiment.training.val_every)
    experiment = small_scene_warmup(experiment)
    return replace(experiment, model=replace(experiment.model, spare_channels=spare))


CANDIDATES = {"warmup_restart": warmup_restart, "spare_channels": spare_channels}


def bench(name: str, preset: str, seed: int, n: int, store: RunStore, device: str,
          candidate: str | None = None, select_at: int = 6) -> None:
    experiment = get_experiment(name, preset)
    if candidate == "spare_channels":
        experiment = spare_channels(experiment, select_at)
    elif candidate:
        experiment = CANDIDATES[candidate](experiment)
    trained_before = get_run(experiment, seed, store).is_complete  # --store with a finished run: reprint it
    started = time.perf_counter()
    run = get_or_train(experiment, seed, store, device=device)
    wall = time.perf_counter() - started
    state = training_state(run)
    summary = training_summary(state, experiment.training)
    flag = f" with --{candidate.replace('_', '-')}" if candidate else ""
    if candidate == "spare_channels" and select_at != 6:
        flag += f" --select-at {select_at}"
    print(f"\n== {name} at preset {preset}{flag}, seed {seed}  (run {run.path})")
    if trained_before:
        print("wall time          not measured: the run was in the store "
              f"(its training took {state.wall_seconds / 60:.1f} min)")
    else:
        print(f"wall time          {wall / 60:.1f} min (training {state.wall_seconds / 60:.1f} min)")
    print(f"torch threads      {', '.join(map(str, summary['threads'])) or 'not recorded'} (the run's weights depend on it)")
    print(f"motif net body     {experiment.body_precision} (bench/precision_speed.py)")
    print(f"samples            {summary['samples']:,}"
          + (f" (+ {summary['restarted_samples']:,} in {len(summary['restarts'])} discarded attempts)" if summary["restarts"] else ""))
    for k, restart in enumerate(summary["restarts"], 1):
        i, j = restart["channels"]
        print(f"restart {k}          at {restart['samples']:,} samples, {restart['wall_seconds'] / 60:.1f} min: "
              f"channels {i} and {j} correlate {restart['correlation']:.3f}")
    if (kept := summary["kept_check"]) is not None:
        i, j = kept["channels"]
        print(f"restart check      the kept attempt at {kept['samples']:,} samples: channels {i} and {j} correlate "
              f"{kept['correlation']:.3f} (restart above {experiment.training.restart.max_correlation})")
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
    candidate = parser.add_mutually_exclusive_group()
    candidate.add_argument("--warmup-restart", action="store_true", help="train the 2026-12-05 candidate, not the preset")
    candidate.add_argument("--spare-channels", action="store_true", help="train the 2026-12-06 candidate, not the preset")
    parser.add_argument("--select-at", type=int, default=6, metavar="V",
                        help="with --spare-channels: cut the spare channels at the V-th validation (default 6)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--store", type=Path, help="run store folder (default: a fresh temporary one)")
    args = parser.parse_args()
    if args.select_at < 1:
        parser.error(f"--select-at must be a validation number >= 1, got {args.select_at}")
    root = args.store or Path(tempfile.mkdtemp(prefix="sparling-time-to-bar-"))
    store = RunStore(root)
    chosen = next((c for c in CANDIDATES if getattr(args, c)), None)
    for name in ["digit_circle_mt"] + (["digit_circle_st"] if args.st else []):
        bench(name, args.preset, args.seed, args.n, store, args.device, chosen, args.select_at)


if __name__ == "__main__":
    main()
