"""Training speed of the cpu presets with ĝ's body in bf16 and in fp32, side by side on this CPU.

For each experiment: samples per second of a training step (forward, backward, AdamW step) with
``bf16_body`` on and off, the ratio, and which one the cpu preset picks here
(``cpu_bf16_body``). On a CPU without native bf16 (AVX2 only) autocast's bf16 convolutions take
a slow reference path, so the preset runs the body in fp32 there.

    python bench/precision_speed.py [--steps 3] [--threads 2] [--preset cpu] [--experiments digit_circle_mt latex_ocr_mt]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from sparling.experiments import Experiment, cpu_bf16_body, get_experiment
from sparling.models.motif_net import cpu_computes_bf16


def with_body(experiment: Experiment, bf16: bool) -> Experiment:
    motif_net = replace(experiment.model.motif_net, bf16_body=bf16)
    return replace(experiment, model=replace(experiment.model, motif_net=motif_net))


def samples_per_second(experiment: Experiment, steps: int) -> float:
    """Training samples per second over ``steps`` steps, after one untimed step."""
    domain, model = experiment.build_domain(), experiment.build_model(1).train()
    optimizer = torch.optim.AdamW(model.parameters(), experiment.training.learning_rate)
    batch = experiment.training.batch_size
    x, ys, _ = domain.batch(1, 0, batch)
    x = torch.from_numpy(x)

    def step() -> None:
        loss, _ = model.loss(x, ys)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per precision")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--experiments", nargs="+", default=["digit_circle_mt", "latex_ocr_mt"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    native = cpu_computes_bf16()
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} threads; native bf16: {'yes' if native else 'no'}; "
          f"the cpu preset's body here: {'bf16' if cpu_bf16_body() else 'fp32'}")
    print(f"{'experiment':<18} {'bf16 samples/s':>15} {'fp32 samples/s':>15} {'fp32 / bf16':>12}")
    for name in args.experiments:
        experiment = get_experiment(name, args.preset)
        bf16, fp32 = (samples_per_second(with_body(experiment, b), args.steps) for b in (True, False))
        print(f"{name:<18} {bf16:>15.1f} {fp32:>15.1f} {fp32 / bf16:>12.2f}")


if __name__ == "__main__":
    main()
