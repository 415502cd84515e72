"""LaTeX-OCR data speed: renders per second, ours (matplotlib mathtext) and pdflatex when it
is installed, and the mean number of rendered symbols per test sample beside the paper's.

Measured on fresh index ranges of one train split, single process:
- tokens: rejection sampling only (the grammar, no rendering);
- render: tokens + the clean render (layout, per-glyph rasterising, motifs), no cache;
- sample (uncached): a whole noisy sample as training draws it, nothing cached;
- sample (LRU hit): the same indices again through the in-memory cache (validation/test passes);
- sample (disk hit): the same indices through the on-disk cache, fresh process state.

    python bench/latex_render_speed.py [--n 300] [--n-pdflatex 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from sparling.domains import TEST_SPLIT, compute_seed
from sparling.domains.latex_ocr import (
    PAPER_MEAN_RENDERED_SYMBOLS,
    LatexOCRConfig,
    LatexOCRDomain,
    mean_rendered_symbols,
    pdflatex_available,
)

SPLIT = 1


def rate(fn, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="samples per measurement")
    parser.add_argument("--n-pdflatex", type=int, default=10, help="pdflatex renders (when installed)")
    args = parser.parse_args()
    n = args.n

    ours = LatexOCRDomain(cache_size=0)
    ours.sample_at(SPLIT, 10**6)  # warm up: fonts, the mathtext parser
    tokens = lambda i: ours.tokens(np.random.RandomState(compute_seed(SPLIT, i)))  # noqa: E731
    rows = [
        ("tokens only (grammar)", rate(tokens, n)),
        ("tokens + clean render", rate(lambda i: ours.render(tokens(n + i)), n)),
        ("sample, uncached", rate(lambda i: ours.sample_at(SPLIT, 2 * n + i), n)),
    ]
    lru = LatexOCRDomain()
    for i in range(n):
        lru.sample_at(SPLIT, 3 * n + i)
    rows.append(("sample, LRU hit", rate(lambda i: lru.sample_at(SPLIT, 3 * n + i), n)))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "renders.sqlite")
        writer = LatexOCRDomain(cache_size=0, cache_path=path)
        for i in range(n):
            writer.sample_at(SPLIT, 4 * n + i)
        reader = LatexOCRDomain(cache_size=0, cache_path=path)
        rows.append(("sample, disk-cache hit", rate(lambda i: reader.sample_at(SPLIT, 4 * n + i), n)))
        import sqlite3

        with sqlite3.connect(path) as conn:
            size = conn.execute("SELECT avg(length(value)) FROM renders").fetchone()[0]
    if pdflatex_available():
        tex = LatexOCRDomain(LatexOCRConfig(renderer="pdflatex"), cache_size=0)
        k = args.n_pdflatex
        rows.append(("pdflatex: tokens + clean render", rate(lambda i: tex.render(tokens(n + i)), k)))
    else:
        rows.append(("pdflatex: tokens + clean render", float("nan")))

    print(f"LaTeX-OCR rendering, one process, {os.cpu_count()} CPUs visible, n = {n} per row")
    print(f"{'what':36s} {'per second':>11s} {'ms each':>9s}")
    for name, r in rows:
        if np.isnan(r):
            print(f"{name:36s} {'n/a':>11s} {'':>9s}   (pdflatex / pdftoppm not on PATH)")
        else:
            print(f"{name:36s} {r:11.1f} {1000 / r:9.2f}")
    print(f"disk cache: {size / 1024:.2f} KiB stored per sample (sqlite adds its page overhead)")

    clean = LatexOCRDomain(LatexOCRConfig(noise=0.0))
    on_canvas = mean_rendered_symbols(clean, n=200)
    from_tokens = mean_rendered_symbols(clean, n=200, from_tokens=True)
    print()
    print("mean rendered symbols, first 200 clean test samples (split %d):" % TEST_SPLIT)
    print(f"  ours, motifs on the canvas      {on_canvas:.2f}")
    print(f"  ours, symbol-drawing tokens     {from_tokens:.2f}")
    print(f"  paper (§3.3, [DERIVED])         {PAPER_MEAN_RENDERED_SYMBOLS:.2f}")


if __name__ == "__main__":
    main()
