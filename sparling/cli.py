"""Command line: ``python -m sparling <command>``.

- ``train EXPERIMENT --preset P --seed S [--device D] [--no-progress]``: get-or-train one run
  (resumes an interrupted run; a finished run is only reported), then print where it is and
  a summary (samples, optimizer steps, wall time, final density, densities passed).
- ``evaluate EXPERIMENT --preset P --seed S [--density D | --steps-above-bar K] [--n N]
  [--device D]``: FPE, FNE, CE and E2EE (in %) of a trained run at a density (default: the
  experiment's bar, the smallest grid density ≥ δ_min). Never trains; results are cached in
  the run.
- ``list``: the experiments with their presets, then the runs in the store
  (``$SPARLING_STORE``, else ``runs/`` at the repository root).
- ``reproduce [--preset P]``: run every notebook in notebooks/ with papermill.

Bad arguments, store errors (a corrupt or mismatched checkpoint, a run locked by another
process) and other ``ValueError``s print ``error: ...`` on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from sparling.presets import DEFAULT_PRESET, PRESETS, check_preset

REPO_ROOT = Path(__file__).resolve().parent.parent
KERNEL_NAME = "sparling"
DEFAULT_EVAL_SAMPLES = 10_000  # motif metrics and E2EE use 10,000 samples in the paper (spec §6.3, §6.4)
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


class UsageError(ValueError):
    """Bad command-line input (reported before any work is done)."""


def notebooks(folder: Path) -> list[Path]:
    """The notebooks to execute, in name order (papermill outputs are not inputs)."""
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("_") and ".executed" not in p.name)


def reproduce(preset: str, folder: Path, output_folder: Path) -> int:
    check_preset(preset)
    found = notebooks(folder)
    if not found:
        print(f"No notebooks in {folder}: nothing to reproduce.")
        return 0
    import papermill

    output_folder.mkdir(parents=True, exist_ok=True)
    for notebook in found:
        out = output_folder / notebook.name
        print(f"Running {notebook} at preset {preset!r} → {out}", flush=True)
        papermill.execute_notebook(
            str(notebook), str(out), parameters={"preset": preset}, kernel_name=KERNEL_NAME, cwd=str(folder)
        )
    print(f"Executed {len(found)} notebook(s); outputs in {output_folder}, figures in {REPO_ROOT / 'figures'}.")
    return 0


# --- argument checks (all run before any model is built or anything is written) ------------


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the seed must be an integer, got {text!r}") from None
    if seed < 0:  # split seeds -1 and -2 are the validation and test streams
        raise argparse.ArgumentTypeError(f"the seed must be >= 0 (negative split seeds are the validation "
                                         f"and test data), got {seed}")
    return seed


def _experiment(name: str, preset: str):
    """The experiment, or a UsageError naming the bad experiment or preset and the choices."""
    from sparling.experiments import EXPERIMENTS, get_experiment

    if name not in EXPERIMENTS:
        raise UsageError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return get_experiment(name, preset)


def _check_device(device: str) -> str:
    from sparling.training import resolve_device

    if not _DEVICE.fullmatch(device):
        raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    try:
        resolve_device(device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return device


def _evaluation_density(experiment, density: float | None, steps: int | None) -> float:
    from sparling.annealing import steps_above_bar

    if density is not None:
        if math.isnan(density) or not 0.0 < density <= 1.0:
            raise UsageError(f"--density must be in (0, 1], got {density!r}")
        return density
    if steps is not None:
        if steps < 0:
            raise UsageError(f"--steps-above-bar must be >= 0, got {steps}")
        return steps_above_bar(experiment.training.stop_density, steps)
    return experiment.bar


# --- commands ---------------------------------------------------------------------------------


def _format_seconds(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h{minutes:02d}m{secs:04.1f}s" if hours else (f"{minutes}m{secs:04.1f}s" if minutes else f"{secs:.1f}s")


def train_command(name: str, preset: str, seed: int, device: str, progress: bool) -> int:
    experiment = _experiment(name, preset)
    _check_device(device)
    from sparling.annealing import density_key
    from sparling.experiments import get_or_train, get_run, training_state
    from sparling.training import training_summary

    was_complete = get_run(experiment, seed).is_complete
    run = get_or_train(experiment, seed, device=device, progress=progress)
    state = training_state(run)
    summary = training_summary(state, experiment.training)
    print(f"{'Found finished' if was_complete else 'Trained'} run {experiment.name} (preset {preset}, seed {seed}) at {run.path}")
    print(f"  samples:          {summary['samples']:,}")
    print(f"  optimizer steps:  {summary['optimizer_steps']:,} (batch {experiment.training.batch_size})")
    print(f"  wall time:        {_format_seconds(summary['wall_seconds'])}")
    print(f"  final density:    {density_key(summary['final_density'])} "
          f"(stop density δ_min {density_key(experiment.training.stop_density)})")
    print(f"  densities passed: {summary['densities_passed']}")
    print(f"  torch threads:    {', '.join(map(str, summary['threads'])) or 'not recorded'}")
    if state.history:
        print(f"  last validation accuracy: {state.history[-1]['accuracy']:.4f}")
    return 0


def evaluate_command(name: str, preset: str, seed: int, density: float | None, steps: int | None, n: int,
                     device: str) -> int:
    experiment = _experiment(name, preset)
    if n < 1:
        raise UsageError(f"--n must be a positive number of samples, got {n}")
    at = _evaluation_density(experiment, density, steps)
    _check_device(device)
    from sparling.annealing import density_key
    from sparling.evaluation import cached_evaluation, evaluation_name, trained_densities
    from sparling.experiments import evaluate, get_run
    from sparling.training import phase_checkpoint_name

    run = get_run(experiment, seed)
    names = run.checkpoint_names()
    where = f"{experiment.name} (preset {preset}, seed {seed})"
    if not names:
        raise UsageError(f"run {where} was never trained (nothing at {run.path}); "
                         f"train it first: python -m sparling train {experiment.name} --preset {preset} --seed {seed}")
    if not run.has_checkpoint(phase_checkpoint_name(at)) and cached_evaluation(run, evaluation_name(at, n)) is None:
        done = ", ".join(density_key(d) for d in trained_densities(names)) or "none"
        state = "complete" if run.is_complete else "not complete (train it to continue)"
        raise UsageError(f"run {where} never finished density {density_key(at)}; finished densities: {done}; "
                         f"the run is {state}")
    result = evaluate(experiment, seed, at, n, device=device)
    print(f"Run {where} at {run.path}")
    print(f"  density {density_key(at)} on {n:,} samples ({result.ce_method} CE); "
          f"realised density {result.realised_density:.6e}")
    print(f"  FPE  {100 * result.fpe:7.2f} %")
    print(f"  FNE  {100 * result.fne:7.2f} %")
    print(f"  CE   {100 * result.ce:7.2f} %")
    print(f"  E2EE {100 * result.e2ee:7.2f} %")
    return 0


def list_command() -> int:
    from sparling.experiments import EXPERIMENTS
    from sparling.store import RunStore

    print("Experiments (presets: " + ", ".join(PRESETS) + f"; default {DEFAULT_PRESET}):")
    for name in EXPERIMENTS:
        print(f"  {name}  [{', '.join(PRESETS)}]")
    store = RunStore()
    runs = store.runs()
    print(f"Runs in {store.root}:" if runs else f"Runs in {store.root}: none")
    if runs:
        width = max(len(r.experiment) for r in runs)
        print(f"  {'experiment':<{width}}  {'seed':>4}  {'key':<16}  {'checkpoints':>11}  complete")
        for r in runs:
            print(f"  {r.experiment:<{width}}  {r.seed:>4}  {r.key:<16}  {r.checkpoints:>11}  {'yes' if r.complete else 'no'}")
    return 0


# --- entry point ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sparling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def run_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("experiment", help="experiment name (see `list`)")
        p.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {', '.join(PRESETS)} (default {DEFAULT_PRESET})")
        p.add_argument("--seed", type=_seed, required=True, help="the run's seed (an integer >= 0; the paper uses 1..9)")
        p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda or cuda:N (default auto)")

    train = commands.add_parser("train", help="train (or resume) one run; a finished run is only reported")
    run_arguments(train)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser("evaluate", help="metrics of a trained run at a density (never trains)")
    run_arguments(evaluate)
    which = evaluate.add_mutually_exclusive_group()
    which.add_argument("--density", type=float, help="a trained density in (0, 1] (default: the experiment's bar)")
    which.add_argument("--steps-above-bar", type=int, metavar="K", help="the density K grid steps above the bar")
    evaluate.add_argument("--n", type=int, default=DEFAULT_EVAL_SAMPLES,
                          help=f"number of evaluation samples (default {DEFAULT_EVAL_SAMPLES:,})")

    commands.add_parser("list", help="the experiments and their presets, then the stored runs")

    rep = commands.add_parser("reproduce", help="execute every notebook with papermill")
    rep.add_argument("--preset", default=DEFAULT_PRESET, help=f"one of {', '.join(PRESETS)} (default {DEFAULT_PRESET})")
    rep.add_argument("--notebooks", type=Path, default=REPO_ROOT / "notebooks")
    rep.add_argument("--output", type=Path, default=REPO_ROOT / "notebooks" / "executed")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code (argparse's own errors and --help included)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message (usage errors: code 2)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    from sparling.store import StoreError

    try:
        if args.command == "train":
            return train_command(args.experiment, args.preset, args.seed, args.device, not args.no_progress)
        if args.command == "evaluate":
            return evaluate_command(args.experiment, args.preset, args.seed, args.density, args.steps_above_bar,
                                    args.n, args.device)
        if args.command == "list":
            return list_command()
        if args.command == "reproduce":
            return reproduce(args.preset, args.notebooks, args.output)
    except (StoreError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130
    return 1
