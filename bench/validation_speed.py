"""Validation cost: exact match by greedy decoding (``predict``, one decoder pass per output step)
against one teacher-forced pass (``exact_matches``), side by side on the same model and samples,
one thread, for the cpu preset of each experiment; also checks that the two give the same verdicts.

The model is a finished run of the preset from the store (the first complete seed, at the bar) if there
is one, otherwise the freshly initialised model trained for ``--warm`` samples (its outputs are rarely right,
so its verdicts test less).

    python bench/validation_speed.py [--n 256] [--warm 512] [--experiments latex_ocr_mt digit_circle_mt]
"""

from __future__ import annotations

import argparse
import time

import torch

from sparling.domains import VALIDATION_SPLIT
from sparling.evaluation import load_model_at
from sparling.experiments import get_experiment, get_run


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def train_briefly(model, domain, batch_size: int, learning_rate: float, samples: int) -> None:
    optimizer = torch.optim.AdamW(model.parameters(), learning_rate)
    model.train()
    for start in range(0, samples, batch_size):
        x, ys, _ = domain.batch(1, start, batch_size)
        loss, _ = model.loss(torch.from_numpy(x), ys)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="validation samples")
    parser.add_argument("--warm", type=int, default=512, help="training samples before timing")
    parser.add_argument("--experiments", nargs="+", default=["latex_ocr_mt", "digit_circle_mt"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'experiment':<18} {'model':<22} {'greedy s':>9} {'one pass s':>10} {'ratio':>6} {'accuracy':>8} {'same verdicts':>14}")
    for name in args.experiments:
        experiment = get_experiment(name, "cpu")
        domain, model, training = experiment.build_domain(), experiment.build_model(1), experiment.training
        runs = [(seed, get_run(experiment, seed)) for seed in range(1, 10)]
        stored = next(((seed, run) for seed, run in runs if run.is_complete), None)
        if stored:
            model, source = load_model_at(model, stored[1], experiment.bar), f"seed {stored[0]} at the bar"
        else:
            train_briefly(model, domain, training.batch_size, training.learning_rate, args.warm)
            source = f"{args.warm} samples trained"
        model.eval()
        batches = [domain.batch(VALIDATION_SPLIT, s, min(training.val_batch_size, args.n - s))
                   for s in range(0, args.n, training.val_batch_size)]
        greedy, teacher_forced = [], []
        with torch.no_grad():
            t_greedy = seconds(lambda: greedy.extend(
                p == tuple(y) for x, ys, _ in batches for p, y in zip(model.predict(torch.from_numpy(x)), ys)))
            t_one = seconds(lambda: teacher_forced.extend(
                v for x, ys, _ in batches for v in model.exact_matches(torch.from_numpy(x), ys).tolist()))
        print(f"{name:<18} {source:<22} {t_greedy:>9.2f} {t_one:>10.2f} {t_greedy / t_one:>6.1f} "
              f"{sum(greedy) / len(greedy):>8.3f} {str(greedy == teacher_forced):>14}")


if __name__ == "__main__":
    main()
