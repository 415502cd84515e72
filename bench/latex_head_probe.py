"""How fast can a LaTeX-OCR head learn to read? Heads trained alone on ground-truth motif maps.

Each training sample's map is what a perfect ĝ at the bar would give on the cpu preset's 30×90
block grid: one activation (value 1) per rendered symbol, at its footprint's centre block, in
the channel of its symbol. The heads see the same samples in the same order with the cpu
preset's optimiser (AdamW, lr 1e-3, β₂ 0.98, warm-up 4,096 samples, clipping 1, batch 16);
every ``--every`` samples the script prints validation exact match (greedy decoding of the first
512 validation samples) and the samples per second, side by side:

- ``set``: ``SetHead`` with its defaults (the 48 largest entries, width 128, 2 + 2 layers);
- ``paper-small``: the cpu preset's small paper head (width 128, 3×3-block pooling, row BiLSTM,
  1 encoder and 2 decoder layers);
- ``set, no + ) FRACBAR``: the set head on maps without the symbols the layout implies, to see
  how much of them the head can infer (what ĝ gains by spending its activations on them).

Usage: ``python bench/latex_head_probe.py [--pool 20000] [--samples 49152] [--every 4096]``
(``--pool`` training samples are rendered once, ≈ 10 ms each, and cycled). One thread per head.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from sparling.domains import VALIDATION_SPLIT, compute_seed
from sparling.domains.latex_ocr import FRACBAR, RENDERED_SYMBOLS, LatexOCRDomain
from sparling.experiments import LATEX_CPU_STRIDE, LATEX_MOTIF_CHANNELS, get_experiment
from sparling.metrics import exact_match_accuracy
from sparling.models import SetHeadConfig, SparlingModel

INFERABLE = frozenset({"+", ")", FRACBAR})


def render_pool(domain: LatexOCRDomain, split: int, n: int) -> list[tuple[tuple[str, ...], tuple]]:
    """(tokens, motifs) of the first n samples of ``split`` (clean renders; noise does not matter here)."""
    pool = []
    for i in tqdm(range(n), desc=f"render split {split}", unit="sample"):
        tokens = domain.tokens(np.random.RandomState(compute_seed(split, i)))
        pool.append((tokens, domain.render(tokens).motifs))
    return pool


def ground_truth_maps(rows, shape: tuple[int, int], drop: frozenset[str] = frozenset()) -> torch.Tensor:
    """(N, 32, H', W'): one activation per motif at its footprint's centre block, channel = its symbol."""
    channel = {s: i for i, s in enumerate(RENDERED_SYMBOLS)}
    h, w = shape
    m = torch.zeros(len(rows), LATEX_MOTIF_CHANNELS, h, w)
    for n, (_, motifs) in enumerate(rows):
        for motif in motifs:
            if motif.symbol in drop:
                continue
            rows_, cols = motif.footprint
            r = min(h - 1, (rows_.start + rows_.stop - 1) // 2 // LATEX_CPU_STRIDE)
            c = min(w - 1, (cols.start + cols.stop - 1) // 2 // LATEX_CPU_STRIDE)
            m[n, channel[motif.symbol], r, c] = 1.0
    return m


class Probe:
    """One head with its optimiser, trained on ground-truth maps."""

    def __init__(self, name: str, model: SparlingModel, drop: frozenset[str], shape: tuple[int, int]):
        self.name, self.model, self.drop, self.shape = name, model, drop, shape
        self.optimizer = torch.optim.AdamW(model.head.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
        self.seconds = 0.0

    def step(self, rows, seen: int) -> None:
        started = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = 1e-3 * min(1.0, (seen + len(rows)) / 4096)
        loss, _ = self.model.head_loss(ground_truth_maps(rows, self.shape, self.drop), [r[0] for r in rows])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.head.parameters(), 1.0)
        self.optimizer.step()
        self.seconds += time.perf_counter() - started

    @torch.no_grad()
    def exact_match(self, val) -> float:
        self.model.eval()
        preds = []
        for start in range(0, len(val), 128):
            rows = val[start:start + 128]
            preds += self.model.predict_from_map(ground_truth_maps(rows, self.shape, self.drop))
        self.model.train()
        return exact_match_accuracy(preds, [r[0] for r in val])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=20_000, help="rendered training samples (cycled)")
    parser.add_argument("--samples", type=int, default=49_152, help="training samples per head")
    parser.add_argument("--every", type=int, default=4096, help="validate every this many samples")
    parser.add_argument("--val", type=int, default=512, help="validation samples")
    args = parser.parse_args()
    torch.set_num_threads(1)
    experiment = get_experiment("latex_ocr_mt", "cpu")
    domain = experiment.build_domain()
    shape = (domain.config.height // LATEX_CPU_STRIDE, domain.config.width // LATEX_CPU_STRIDE)
    pool, val = render_pool(domain, experiment.seeds[0], args.pool), render_pool(domain, VALIDATION_SPLIT, args.val)

    def build(head) -> SparlingModel:
        torch.manual_seed(0)
        config = replace(experiment.model, head=head)
        return SparlingModel(config, domain.symbols, domain.max_output_length)

    probes = [Probe("set", build(SetHeadConfig()), frozenset(), shape),
              Probe("paper-small", build(experiment.model.head), frozenset(), shape),
              Probe("set, no + ) FRACBAR", build(SetHeadConfig()), INFERABLE, shape)]
    batch = 16
    print(f"ground-truth maps {shape}, pool {args.pool}, batch {batch}; validation exact match on {args.val} samples")
    print(f"{'samples':>8} " + " ".join(f"{p.name:>22}" for p in probes))
    for seen in range(0, args.samples, batch):
        rows = [pool[(seen + k) % len(pool)] for k in range(batch)]
        for probe in probes:
            probe.step(rows, seen)
        if (seen + batch) % args.every == 0:
            print(f"{seen + batch:>8} " + " ".join(f"{p.exact_match(val):>22.3f}" for p in probes), flush=True)
    print(f"{'sample/s':>8} " + " ".join(f"{args.samples / p.seconds:>22.0f}" for p in probes))


if __name__ == "__main__":
    main()
