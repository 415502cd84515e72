"""Where do a LaTeX-OCR run's false positives lie? The activations that no true motif consumes.

Spec §6.1 consumes every activation inside any footprint, so the false positives are exactly the
activations outside every footprint. For one trained run of ``latex_ocr_mt`` at a density
(``--steps`` grid steps above the bar), on the first ``--n`` motif-evaluation samples, prints:

- activations per sample, those outside every footprint, and FPE from the metric's own matching
  (FPE = leftover / (matched motifs + leftover), spec §6.2: with ~7 matched motifs per sample, each
  leftover activation per sample is worth ~12 points of FPE);
- the leftovers' gap to the nearest footprint, in map blocks (Chebyshev; 1 = the next block over);
- per channel with leftovers: activations per sample, the share outside, the symbols it is matched
  to, and on which side of the nearest footprint its leftovers lie.

Usage: ``SPARLING_STORE=... python bench/latex_false_positives.py --seed 1 --steps 0 --n 300``
(the run must be finished in the store; this script does not train). One thread.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from sparling.annealing import steps_above_bar
from sparling.evaluation import load_model_at
from sparling.experiments import get_experiment, get_run
from sparling.metrics import (
    NONE, MotifConfusion, count_motif_matches, default_channel_names, false_positive_error, motifs_on_map,
)
from sparling.store import RunStore

SIDES = {(-1, 0): "above", (1, 0): "below", (0, -1): "left", (0, 1): "right"}


def offsets(positions: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Signed offset, in blocks, of each position from each footprint: positions (K, 2) and
    half-open bounds (M, 2, 2) → (K, M, 2), 0 on an axis where the position is within the span."""
    p = positions[:, None, :]
    lo, hi = bounds[None, :, :, 0], bounds[None, :, :, 1]
    return np.where(p < lo, p - lo, np.where(p >= hi, p - hi + 1, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=0, help="grid steps above the bar")
    parser.add_argument("--n", type=int, default=300, help="motif-evaluation samples")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--store", type=Path, help="run store folder (default: $SPARLING_STORE or ./runs)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    experiment = get_experiment("latex_ocr_mt", args.preset)
    run = get_run(experiment, args.seed, RunStore(args.store) if args.store else None)
    if not run.is_complete:
        sys.exit(f"no finished run of latex_ocr_mt/{args.preset} seed {args.seed} in {run.path}; "
                 f"train it first: python -m sparling train latex_ocr_mt --preset {args.preset} --seed {args.seed}")
    density = steps_above_bar(experiment.training.stop_density, args.steps)
    model = load_model_at(experiment.build_model(args.seed), run, density).eval()
    domain = experiment.build_domain()
    stride = model.config.motif_net.map_stride
    names = default_channel_names(model.config.motif_net.num_motifs)

    confusion = MotifConfusion(channels=names, symbols=list(domain.motif_symbols))
    acts, outside, gap_hist = Counter(), Counter(), Counter()
    sides = defaultdict(Counter)
    with torch.no_grad():
        for start in range(0, args.n, 100):
            x, _, motifs = domain.motif_evaluation_batch(start, min(100, args.n - start))
            maps = model.motif_map(torch.from_numpy(x)).float().numpy()
            for m, true in zip(maps, motifs):
                on_map = motifs_on_map(true, stride)
                confusion.add(count_motif_matches(m, on_map, names))
                active = np.argwhere(m > 0)
                if not on_map:
                    bounds = np.zeros((0, 2, 2), dtype=np.int64)
                else:
                    bounds = np.array([[footprint.indices(size)[:2] for footprint, size in zip(motif.footprint, m.shape[1:])]
                                       for motif in on_map])
                offset = offsets(active[:, 1:], bounds)  # (K, M, 2)
                gap = np.abs(offset).max(-1)  # (K, M)
                for k, channel in enumerate(active[:, 0]):
                    name = names[channel]
                    acts[name] += 1
                    nearest = gap[k].argmin() if len(on_map) else None
                    if nearest is not None and gap[k, nearest] == 0:
                        continue
                    outside[name] += 1
                    if nearest is None:
                        gap_hist["no motif"] += 1
                        sides[name]["no motif"] += 1
                        continue
                    gap_hist[min(int(gap[k, nearest]), 4)] += 1
                    side = tuple(int(s) for s in np.sign(offset[k, nearest]))
                    sides[name][SIDES.get(side, "diagonal")] += 1

    total, leftover = sum(acts.values()), sum(outside.values())
    matched = confusion.table().drop(index=NONE, columns=NONE)  # true symbol × channel
    n_matched = int(matched.to_numpy().sum())
    print(f"latex_ocr_mt/{args.preset} seed {args.seed}, {args.steps} grid steps above the bar "
          f"(density {density:.4e}), {args.n} samples")
    print(f"activations per sample     {total / args.n:.2f}")
    print(f"matched motifs per sample  {n_matched / args.n:.2f}")
    print(f"outside every footprint    {leftover / args.n:.2f} per sample ({100 * leftover / max(total, 1):.1f} % of activations)")
    print(f"FPE (the metric)           {100 * false_positive_error(confusion):.2f} %")
    print("gap to the nearest footprint (blocks; 4 = 4 or more): "
          + ", ".join(f"{g}: {100 * v / max(leftover, 1):.0f} %" for g, v in sorted(gap_hist.items(), key=str)))
    print(f"{'channel':>8} {'acts/sample':>11} {'outside':>8}  {'matched to (top 3)':<24}|  side of the nearest footprint")
    for name, _ in sorted(outside.items(), key=lambda kv: -kv[1]):
        top = ", ".join(f"{s} {v}" for s, v in matched[name].nlargest(3).items() if v)
        where = ", ".join(f"{s} {v}" for s, v in sides[name].most_common(3))
        print(f"{name:>8} {acts[name] / args.n:11.2f} {100 * outside[name] / acts[name]:7.0f} %  {top:<24}|  {where}")


if __name__ == "__main__":
    main()
