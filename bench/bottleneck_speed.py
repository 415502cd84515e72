"""Speed of the Sparling layer's threshold update against the paper's formulation.

Reference (written here, as the paper describes it): BatchNorm, permute (N, C, H, W) to
(N·H·W, C), kthvalue per column, EMA, ReLU(z − t). Ours: ``sparling.SpatialSparsity``.
For each density: ms per train-mode forward (median of repeats), the ratio reference/ours,
peak memory of the forwards above the inputs (each variant measured in a fresh subprocess), and the max
relative difference of the thresholds after identical updates.

    python bench/bottleneck_speed.py [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from sparling.sparsity import SpatialSparsity

SHAPE = (32, 10, 100, 100)
DENSITIES = (0.5, 1e-2, 1e-3, 5e-5)


class ReferenceLayer(nn.Module):
    """The straightforward formulation: kthvalue over the permuted (N·H·W, C) tensor."""

    def __init__(self, channels: int, density: float, momentum: float = 0.1):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.density = density
        self.momentum = momentum
        self.register_buffer("threshold", torch.zeros(channels))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.norm(z)
        if self.training:
            with torch.no_grad():
                flat = z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
                k = max(1, int(flat.shape[0] * (1 - self.density)))
                q = flat.kthvalue(k, dim=0).values
                self.threshold.mul_(1 - self.momentum).add_(q, alpha=self.momentum)
        return torch.relu(z - self.threshold.view(1, -1, 1, 1))


def make(kind: str, density: float) -> nn.Module:
    if kind == "reference":
        return ReferenceLayer(SHAPE[1], density)
    return SpatialSparsity(SHAPE[1], density, min_expected_nonzeros=0)


def batch(i: int) -> torch.Tensor:
    return torch.randn(*SHAPE, generator=torch.Generator().manual_seed(i))


def time_one(kind: str, density: float, repeats: int) -> dict:
    """Run in a subprocess: median ms per train-mode forward and peak extra RSS (MiB)."""
    layer = make(kind, density).train()
    inputs = [batch(i) for i in range(3)]
    with torch.no_grad():
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # inputs exist, no forward yet
        layer(inputs[0])  # warm-up
        times = []
        for r in range(repeats):
            x = inputs[r % len(inputs)]
            start = time.perf_counter()
            layer(x)
            times.append((time.perf_counter() - start) * 1e3)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"ms": statistics.median(times), "peak_mib": (rss_after - rss_before) / 1024}


def threshold_difference(density: float, updates: int = 5) -> float:
    """Max relative difference of thresholds after the same updates on the same batches."""
    ours, ref = make("ours", density).train(), make("reference", density).train()
    with torch.no_grad():
        for i in range(updates):
            x = batch(100 + i)
            ours(x), ref(x)
    scale = ref.threshold.abs().clamp_min(1e-12)
    return float(((ours.threshold - ref.threshold).abs() / scale).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "DENSITY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(time_one(args.worker[0], float(args.worker[1]), args.repeats)))
        return

    def measure(kind: str, density: float) -> dict:
        out = subprocess.run(
            [sys.executable, __file__, "--repeats", str(args.repeats), "--threads", str(args.threads), "--worker", kind, repr(density)],
            check=True, capture_output=True, text=True,
        )
        return json.loads(out.stdout)

    print(f"train-mode forward on {'x'.join(map(str, SHAPE))}, {args.threads} thread(s), median of {args.repeats}")
    header = f"{'density':>9} | {'reference ms':>12} | {'ours ms':>8} | {'ratio':>6} | {'ref peak MiB':>12} | {'our peak MiB':>12} | {'max rel thr diff':>16}"
    print(header)
    print("-" * len(header))
    for density in DENSITIES:
        ref, ours = measure("reference", density), measure("ours", density)
        diff = threshold_difference(density)
        print(
            f"{density:>9.0e} | {ref['ms']:>12.1f} | {ours['ms']:>8.1f} | {ref['ms'] / ours['ms']:>6.1f} | "
            f"{ref['peak_mib']:>12.1f} | {ours['peak_mib']:>12.1f} | {diff:>16.1e}"
        )


if __name__ == "__main__":
    main()
