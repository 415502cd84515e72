"""LaTeX-OCR domain (REPRODUCTION_SPEC §3.3) and its single-character variant (§3.4).

An expression is drawn from the paper's weighted context-free grammar (``latex_cfg``) by
rejection sampling to a uniform length L ∈ 1..30, rendered, centred on a 120×360 canvas,
binarised (white = 1.0, ink = 0.0) and 25 % of its pixels are forced to 0. The output y is the
token sequence. Ground-truth motifs are one per rendered symbol (digits, letters, ``+``, ``(``,
``)`` and the fraction bar ``FRACBAR``).

Rendering needs no TeX install: matplotlib's mathtext lays the expression out with the
Computer Modern fonts it ships (fontset ``cm``: cmr10, cmmi10, cmex10, the fonts pdflatex uses
for the paper's data), and each glyph's outline is rasterised on its own (even-odd fill, exact
horizontal coverage, 8 sub-rows per pixel), so every motif's footprint comes from the very ink
of its glyph. The paper rendered with pdflatex + pdf2image at 200 dpi; that backend is here too
(``renderer="pdflatex"``), usable only where ``pdflatex`` and ``pdftoppm`` are on PATH.

Sampling replays the authors' ``CFG.rejection_sample`` draw for draw: ``sample(rng)`` with
``rng = RandomState(compute_seed(split, index))`` gives their token sequence for that index
(e.g. train seed 1, index 0 is ``\\left(6^{x}5_{b}8+\\left(\\left(3^{7}a^{x}\\right)\\right)\\right)``).
The noise is then drawn from the same ``rng``.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from . import TEST_SPLIT, BaseDomain, Motif, Sample, check_int, check_number, compute_seed

__all__ = [
    "SYMBOLS",
    "OUTPUT_TOKENS",
    "RENDERED_SYMBOLS",
    "SINGLE_CHARACTER_CLASSES",
    "FRACBAR",
    "GRAMMAR",
    "Production",
    "sample_tokens",
    "rejection_sample",
    "latex_code",
    "mathtext_code",
    "rendered_symbol_tokens",
    "motif_symbol",
    "pdflatex_available",
    "Rendering",
    "LatexOCRConfig",
    "LatexOCRDomain",
    "LatexSingleCharacterDomain",
    "mean_rendered_symbols",
    "PAPER_MEAN_RENDERED_SYMBOLS",
]

PAPER_MEAN_RENDERED_SYMBOLS = 9.64
"""Mean rendered symbols over the first 200 test samples in the paper's data (§3.3, [DERIVED])."""

# --------------------------------------------------------------------------- grammar (§3.3)

SYMBOLS: tuple[str, ...] = tuple("0123456789xyzabc")
"""The 16 terminal symbols, in the grammar's order."""

FRACBAR = "FRACBAR"

OUTPUT_TOKENS: tuple[str, ...] = (
    "FRAC(", "FRACMID", "FRAC)", "PAREN(", "PAREN)", "SUP(", "SUP)", "SUB(", "SUB)", "+", *SYMBOLS,
)
"""The 26 output tokens (the decoder adds <s>, </s>)."""

_CODE = {
    "FRAC(": r"\frac{", "FRACMID": "}{", "FRAC)": "}",
    "PAREN(": r"\left(", "PAREN)": r"\right)",
    "SUP(": "^{", "SUP)": "}", "SUB(": "_{", "SUB)": "}",
    "+": "+", **{s: s for s in SYMBOLS},
}

_MOTIF_SYMBOL = {"FRAC(": FRACBAR, "PAREN(": "(", "PAREN)": ")", "+": "+", **{s: s for s in SYMBOLS}}

RENDERED_SYMBOLS: tuple[str, ...] = ("(", ")", "+", *sorted(SYMBOLS), FRACBAR)
"""The 20 symbols that render (motif ground-truth symbols)."""

SINGLE_CHARACTER_CLASSES: tuple[str, ...] = tuple(s for s in RENDERED_SYMBOLS if s != FRACBAR)
"""The 19 classes of the single-character data (sorted as the paper's: ``( ) + 0-9 a b c x y z``)."""


@dataclass(frozen=True)
class Production:
    """A right-hand side: nonterminal names (keys of the grammar) or output tokens."""

    elements: tuple[str, ...]
    weight: float = 1.0


GRAMMAR: dict[str, tuple[Production, ...]] = {
    "start": (
        Production(("straightline_expression",)),
        Production(("FRAC(", "start", "FRACMID", "start", "FRAC)"), 0.25),
    ),
    "straightline_expression": (
        Production(("term",)),
        Production(("term", "+", "straightline_expression"), 0.25),
    ),
    "term": (Production(("atom",)), Production(("atom", "term"), 0.25)),
    "atom": (
        Production(("combined_symbol",)),
        Production(("PAREN(", "straightline_expression", "PAREN)"), 0.25),
    ),
    "combined_symbol": (
        Production(("symbol",)),
        Production(("symbol", "SUP(", "symbol", "SUP)")),
        Production(("symbol", "SUB(", "symbol", "SUB)")),
    ),
    "symbol": tuple(Production((s,)) for s in SYMBOLS),
}
"""``latex_cfg``: each production is chosen with probability ∝ its weight."""


def _cdf(productions: Sequence[Production]) -> np.ndarray:
    # Exactly what RandomState.choice(n, p=w / w.sum()) computes before its searchsorted.
    w = np.array([p.weight for p in productions], dtype=np.float64)
    cdf = (w / w.sum()).cumsum()
    cdf /= cdf[-1]
    return cdf


_CDFS = {name: _cdf(prods) for name, prods in GRAMMAR.items()}
_RHS = {name: tuple(p.elements for p in prods) for name, prods in GRAMMAR.items()}


def _expand(symbol: str, rng: np.random.RandomState, out: list[str], trace: list | None) -> None:
    # One RandomState.choice(len(productions), p=weights) per expansion, replayed with the same
    # single random_sample() draw and searchsorted(side="right"), ~10x faster.
    k = int(_CDFS[symbol].searchsorted(rng.random_sample(), side="right"))
    if trace is not None:
        trace.append((symbol, k))
    for element in _RHS[symbol][k]:
        if element in _RHS:
            _expand(element, rng, out, trace)
        else:
            out.append(element)


def sample_tokens(rng: np.random.RandomState, start: str = "start", trace: list | None = None) -> list[str]:
    """One unconstrained derivation from ``start`` (``CFG.sample``). ``trace``, if given,
    receives (nonterminal, production index) for every expansion."""
    out: list[str] = []
    _expand(start, rng, out, trace)
    return out


def rejection_sample(rng: np.random.RandomState, minimal_length: int = 1, maximal_length: int = 30) -> tuple[str, ...]:
    """``CFG.rejection_sample``: L = rng.choice(range(min, max + 1)), then derivations from
    ``start`` until one has exactly L tokens."""
    length = rng.choice(list(range(minimal_length, 1 + maximal_length)))
    while True:
        tokens = sample_tokens(rng)
        if len(tokens) == length:
            return tuple(tokens)


def latex_code(tokens: Sequence[str]) -> str:
    """The paper's LaTeX source for a token sequence (without the surrounding ``$``)."""
    return "".join(_CODE[t] for t in tokens)


def mathtext_code(tokens: Sequence[str]) -> str:
    r"""The mathtext source that renders like ``$\displaystyle <latex_code>$``.

    Two departures from the LaTeX text, both so that sizes match TeX's: a fraction at the top
    level is ``\dfrac`` (TeX's display style keeps its numerator and denominator at full size;
    mathtext's ``\frac`` is text style and shrinks them) while a nested one stays ``\frac``
    (shrunk once, as TeX's text-style fraction sets them in script style); and each ``\left(``
    carries a zero-width ``\phantom{(}`` strut, because mathtext scales a ``\left(`` to its
    content's height (a paren around ``x`` would be half size) whereas TeX never goes below the
    normal parenthesis.
    """
    parts, depth = [], 0
    for t in tokens:
        if t == "FRAC(":
            parts.append(r"\dfrac{" if depth == 0 else r"\frac{")
            depth += 1
        elif t == "FRAC)":
            depth -= 1
            parts.append("}")
        elif t == "PAREN(":
            parts.append(r"\left(\rlap{\phantom{(}}")
        else:
            parts.append(_CODE[t])
    return "$" + "".join(parts) + "$"


def motif_symbol(token: str) -> str | None:
    """The rendered symbol of a token (FRAC( → FRACBAR), None for tokens that draw nothing."""
    return _MOTIF_SYMBOL.get(token)


def rendered_symbol_tokens(tokens: Sequence[str]) -> list[tuple[int, str]]:
    """(token index, rendered symbol) for every token that draws something, in token order."""
    return [(i, _MOTIF_SYMBOL[t]) for i, t in enumerate(tokens) if t in _MOTIF_SYMBOL]


# --------------------------------------------------------------------------- rasterising


def _coverage_polygons(polys: Sequence[np.ndarray], sub: int = 8) -> tuple[np.ndarray, int, int]:
    """Even-odd area coverage of closed polygons given in pixel coordinates (x = column,
    y = row, y down). Exact horizontally, ``sub`` sample lines per pixel row vertically.

    Returns (coverage (h, w) float32 in [0, 1], top row, left column) of the covered patch.
    """
    edges = []
    for p in polys:
        if len(p) >= 3:
            q = np.asarray(p, dtype=np.float64)
            edges.append(np.concatenate([q, np.roll(q, -1, axis=0)], axis=1))
    if not edges:
        return np.zeros((0, 0), np.float32), 0, 0
    e = np.concatenate(edges)
    e = e[e[:, 1] != e[:, 3]]  # horizontal edges never cross a sample line
    if len(e) == 0:
        return np.zeros((0, 0), np.float32), 0, 0
    x0, y0, x1, y1 = e.T
    top = int(math.floor(min(y0.min(), y1.min())))
    bottom = int(math.ceil(max(y0.max(), y1.max())))
    left = int(math.floor(min(x0.min(), x1.min())))
    right = int(math.ceil(max(x0.max(), x1.max())))
    h, w = bottom - top, right - left
    ys = top + (np.arange(h * sub) + 0.5) / sub  # (S,)
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    crosses = (ys[None, :] >= ylo[:, None]) & (ys[None, :] < yhi[:, None])  # (E, S), half-open
    slope = (x1 - x0) / (y1 - y0)
    xs = np.where(crosses, x0[:, None] + (ys[None, :] - y0[:, None]) * slope[:, None], np.inf)
    xs.sort(axis=0)
    n = crosses.sum(axis=0)  # even for closed polygons
    pairs = int(n.max()) // 2
    if pairs == 0:
        return np.zeros((h, w), np.float32), top, left
    starts, ends = xs[0 : 2 * pairs : 2], xs[1 : 2 * pairs : 2]  # (P, S)
    valid = np.arange(pairs)[:, None] < (n // 2)[None, :]
    starts = np.where(valid, starts, 0.0) - left
    ends = np.where(valid, ends, 0.0) - left
    cols = np.arange(w, dtype=np.float64)[None, None, :]
    cov = np.clip(ends[..., None] - cols, 0.0, 1.0) - np.clip(starts[..., None] - cols, 0.0, 1.0)
    cov = cov.sum(axis=0).reshape(h, sub, w).mean(axis=1)
    return np.clip(cov, 0.0, 1.0).astype(np.float32), top, left


def _coverage_rect(r0: float, r1: float, c0: float, c1: float) -> tuple[np.ndarray, int, int]:
    """Exact area coverage of the axis-aligned rectangle rows [r0, r1) × cols [c0, c1)."""
    top, left = int(math.floor(r0)), int(math.floor(c0))
    h, w = int(math.ceil(r1)) - top, int(math.ceil(c1)) - left
    rows = np.clip(np.minimum(r1, top + np.arange(1, h + 1)) - np.maximum(r0, top + np.arange(h)), 0, 1)
    cols = np.clip(np.minimum(c1, left + np.arange(1, w + 1)) - np.maximum(c0, left + np.arange(w)), 0, 1)
    return np.outer(rows, cols).astype(np.float32), top, left


# --------------------------------------------------------------------------- mathtext layout

_MATHTEXT_LOCK = threading.Lock()  # mathtext's parser and the FT2Font objects are shared state
_GLYPH_EM_PX = 100.0  # outlines are cached at a 100 px em (set_size(100 pt, 72 dpi))
_GLYPH_CACHE: dict[tuple[str, int], tuple[np.ndarray, ...]] = {}


@lru_cache(maxsize=None)
def _mathtext_parser():
    from matplotlib.mathtext import MathTextParser

    return MathTextParser("path")


@lru_cache(maxsize=None)
def _font_properties(size_pt: float):
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size_pt, math_fontfamily="cm")


def _no_hinting_flag():
    from matplotlib import ft2font

    flags = getattr(ft2font, "LoadFlags", None)
    return flags.NO_HINTING if flags is not None else ft2font.LOAD_NO_HINTING


def _glyph_polygons(font, glyph_index: int) -> tuple[np.ndarray, ...]:
    """The glyph's outline, flattened to closed polygons, at a 100 px em (y up, origin at the
    glyph origin). Cached per (font file, glyph index). Call with ``_MATHTEXT_LOCK`` held."""
    key = (font.fname, int(glyph_index))
    polys = _GLYPH_CACHE.get(key)
    if polys is None:
        from matplotlib.path import Path

        font.clear()
        font.set_size(_GLYPH_EM_PX, 72)
        font.load_glyph(int(glyph_index), flags=_no_hinting_flag())
        verts, codes = font.get_path()
        polys = tuple(np.asarray(p, np.float64) for p in Path(verts, codes).to_polygons(closed_only=True))
        _GLYPH_CACHE[key] = polys
    return polys


@dataclass(frozen=True)
class Rendering:
    """A clean render: the binary ink canvas and one ground-truth motif per visible symbol.

    ``ink`` is (H, W) bool (True = ink). ``motifs`` are in token order, each footprint the
    glyph's bounding box (pixels whose coverage exceeds the config's ``motif_coverage``) padded
    by ``motif_pad`` and clipped to the canvas. ``token_indices[k]`` is the token that drew motif k.
    ``symbol_ink`` (only when asked for) holds each motif's own ink as (rows, cols) arrays.
    """

    ink: np.ndarray
    motifs: tuple[Motif, ...]
    token_indices: tuple[int, ...]
    symbol_ink: tuple[tuple[np.ndarray, np.ndarray], ...] | None = None


def _mathtext_items(tokens: Sequence[str], size_pt: float, dpi: float):
    """Lay out with mathtext. Returns (width, height, depth, items) where each item is
    (token index, symbol, kind, data): kind "glyph" with (polygons, scale, ox, oy) or kind
    "rect" with (x, y, w, h), all in mathtext's y-up pixel coordinates."""
    parse = _mathtext_parser().parse
    glyph_tokens = [(i, _MOTIF_SYMBOL[t]) for i, t in enumerate(tokens) if t in _MOTIF_SYMBOL and t != "FRAC("]
    # Fraction bars come out in in-order traversal (numerator, bar, denominator), i.e. in the
    # order of the FRACMID tokens; each belongs to the FRAC( that opened it.
    bar_tokens, stack = [], []
    for i, t in enumerate(tokens):
        if t == "FRAC(":
            stack.append(i)
        elif t == "FRACMID":
            bar_tokens.append(stack[-1])
        elif t == "FRAC)":
            stack.pop()
    with _MATHTEXT_LOCK:
        vp = parse(mathtext_code(tokens), dpi=dpi, prop=_font_properties(size_pt))
        if len(vp.glyphs) != len(glyph_tokens) or len(vp.rects) != len(bar_tokens):
            raise RuntimeError(
                f"mathtext drew {len(vp.glyphs)} glyphs and {len(vp.rects)} rules for {len(glyph_tokens)} "
                f"glyph tokens and {len(bar_tokens)} fractions: {latex_code(tokens)!r}"
            )
        items = []
        for (i, sym), g in zip(glyph_tokens, vp.glyphs):
            if len(g) == 6:
                font, fontsize, ccode, glyph_index, ox, oy = g
            else:  # matplotlib < 3.10: (font, fontsize, num, ox, oy)
                font, fontsize, ccode, ox, oy = g
                glyph_index = font.get_char_index(ccode)
            if sym not in "()" and chr(int(ccode)) != sym:
                raise RuntimeError(f"glyph {chr(int(ccode))!r} does not match token {sym!r} in {latex_code(tokens)!r}")
            scale = float(fontsize) * dpi / 72.0 / _GLYPH_EM_PX
            items.append((i, sym, "glyph", (_glyph_polygons(font, glyph_index), scale, float(ox), float(oy))))
    for i, rect in zip(bar_tokens, vp.rects):
        items.append((i, FRACBAR, "rect", tuple(float(v) for v in rect)))
    items.sort(key=lambda it: it[0])
    return float(vp.width), float(vp.height), float(vp.depth), items


def _centre_offset(extent: int, size: int) -> int:
    """Where the (integer) extent's origin lands when centre-padded or centre-cropped to size
    (the original ``padding``: pad (size - extent) // 2 before, or crop extra // 2 before)."""
    if extent <= size:
        return (size - extent) // 2
    return -((extent - size) // 2)


def _render_mathtext(tokens: Sequence[str], config: "LatexOCRConfig", with_symbol_ink: bool) -> Rendering:
    width, height, depth, items = _mathtext_items(tokens, config.mathtext_size_pt, config.dpi)
    H, W = config.height, config.width
    row0 = _centre_offset(int(math.ceil(height)), H)
    col0 = _centre_offset(int(math.ceil(width)), W)
    baseline = height - depth  # mathtext's y-up origin sits this far below the top of the box
    ink = np.zeros((H, W), dtype=bool)
    motifs, token_indices, symbol_ink = [], [], []
    for i, sym, kind, data in items:
        if kind == "glyph":
            polys, scale, ox, oy = data
            placed = [
                np.stack([col0 + ox + p[:, 0] * scale, row0 + baseline - (oy + p[:, 1] * scale)], axis=1)
                for p in polys
            ]
            cov, top, left = _coverage_polygons(placed, config.subsamples)
        else:
            x, y, w, h = data
            cov, top, left = _coverage_rect(row0 + baseline - (y + h), row0 + baseline - y, col0 + x, col0 + x + w)
        # clip the patch to the canvas
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(top + cov.shape[0], H), min(left + cov.shape[1], W)
        if r1 <= r0 or c1 <= c0:
            continue  # entirely off the canvas
        patch = cov[r0 - top : r1 - top, c0 - left : c1 - left]
        glyph_ink = patch > config.ink_coverage
        ink[r0:r1, c0:c1] |= glyph_ink
        rs, cs = np.nonzero(patch > config.motif_coverage)
        if len(rs) == 0:
            continue  # nothing visible
        pad = config.motif_pad
        footprint = (
            slice(max(0, r0 + int(rs.min()) - pad), min(H, r0 + int(rs.max()) + pad + 1)),
            slice(max(0, c0 + int(cs.min()) - pad), min(W, c0 + int(cs.max()) + pad + 1)),
        )
        motifs.append(Motif(sym, footprint))
        token_indices.append(i)
        if with_symbol_ink:
            gr, gc = np.nonzero(glyph_ink)
            symbol_ink.append((gr + r0, gc + c0))
    return Rendering(ink, tuple(motifs), tuple(token_indices), tuple(symbol_ink) if with_symbol_ink else None)


# --------------------------------------------------------------------------- pdflatex backend

_PDFLATEX_TEMPLATE = r"""\documentclass[border=3pt]{standalone}
\usepackage{amsmath}
\usepackage{xcolor}
\newcommand{\cleft}[2][.]{\begingroup\colorlet{savedleftcolor}{.}\color{#1}\left#2\color{savedleftcolor}}
\newcommand{\cright}[2][.]{\color{#1}\right#2\endgroup}
COLORS
\begin{document}
$\displaystyle
EQN
$
\end{document}
"""
_HUES = tuple(range(0, 360, 20))


def pdflatex_available() -> bool:
    """True when the pdflatex backend can run (``pdflatex`` and poppler's ``pdftoppm`` on PATH)."""
    return shutil.which("pdflatex") is not None and shutil.which("pdftoppm") is not None


def _pdflatex_page(code: str, dpi: int, colour: bool) -> np.ndarray:
    """Render ``$\\displaystyle code$`` as the paper did; (h, w) grey or (h, w, 3) RGB uint8."""
    import colorsys

    colours = "\n".join(
        r"\definecolor{color%d}{rgb}{%s}" % (hue, ",".join(map(str, colorsys.hsv_to_rgb(hue / 360, 1, 1))))
        for hue in _HUES
    )
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "eqn.tex"), "w") as f:
            f.write(_PDFLATEX_TEMPLATE.replace("COLORS", colours).replace("EQN", code))
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "eqn.tex"], cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-singlefile", "-png", "eqn.pdf", "eqn"], cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from matplotlib.image import imread

        img = (imread(os.path.join(d, "eqn.png"))[..., :3] * 255).round().astype(np.uint8)
    return img if colour else img[..., 0]


def _pad_to(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """The original ``padding``: centre-crop, then centre-pad with white."""
    out = np.full((h, w) + img.shape[2:], 255, dtype=img.dtype)
    r, c = _centre_offset(img.shape[0], h), _centre_offset(img.shape[1], w)
    src = img[max(0, -r) : max(0, -r) + min(h, img.shape[0]), max(0, -c) : max(0, -c) + min(w, img.shape[1])]
    out[max(0, r) : max(0, r) + src.shape[0], max(0, c) : max(0, c) + src.shape[1]] = src
    return out


def _coloured_code(tokens: Sequence[str], colours: dict[int, str]) -> str:
    parts = []
    for i, t in enumerate(tokens):
        c = colours.get(i, "black")
        if t in SYMBOLS or t == "+":
            parts.append(rf"\color{{{c}}} {t}")
        elif t == "PAREN(":
            parts.append(rf"\cleft[{c}](")
        elif t == "PAREN)":
            parts.append(rf"\cright[{c}])")
        elif t == "FRAC(":
            parts.append(rf"\color{{{c}}} \frac{{")
        else:
            parts.append(_CODE[t])
    return "".join(parts)


def _render_pdflatex(tokens: Sequence[str], config: "LatexOCRConfig", with_symbol_ink: bool) -> Rendering:
    """The paper's pipeline: pdflatex, 200 dpi, channel 0, centre crop/pad, x > 0.75 is white;
    motifs by re-rendering with each symbol coloured (18 hues per render) and taking the
    bounding box of (hue == its hue) & (saturation > 0.1)."""
    from matplotlib.colors import rgb_to_hsv

    H, W = config.height, config.width
    grey = _pad_to(_pdflatex_page(latex_code(tokens), config.dpi, colour=False), H, W)
    ink = grey / 255.0 <= 1.0 - config.ink_coverage
    found: dict[int, tuple[str, tuple[slice, slice], np.ndarray]] = {}
    todo = rendered_symbol_tokens(tokens)
    for start in range(0, len(todo), len(_HUES)):
        chunk = todo[start : start + len(_HUES)]
        colours = {i: f"color{hue}" for (i, _), hue in zip(chunk, _HUES)}
        rgb = _pad_to(_pdflatex_page(_coloured_code(tokens, colours), config.dpi, colour=True), H, W)
        hsv = rgb_to_hsv(rgb / 255.0)
        hue = (hsv[..., 0].astype(np.float32) * 36).round().astype(np.int64) * 10 % 360
        for (i, sym), h in zip(chunk, _HUES):
            mask = (hue == h) & (hsv[..., 1] > config.motif_coverage)
            if mask.any():
                rs, cs = np.nonzero(mask)
                p = config.motif_pad
                fp = (slice(max(0, int(rs.min()) - p), min(H, int(rs.max()) + p + 1)),
                      slice(max(0, int(cs.min()) - p), min(W, int(cs.max()) + p + 1)))
                found[i] = (sym, fp, mask & ink)
    order = sorted(found)
    symbol_ink = tuple(tuple(np.nonzero(found[i][2])) for i in order) if with_symbol_ink else None
    return Rendering(ink, tuple(Motif(found[i][0], found[i][1]) for i in order), tuple(order), symbol_ink)


# --------------------------------------------------------------------------- config and domains

TEX_POINTS_PER_INCH = 72.27


@dataclass(frozen=True)
class LatexOCRConfig:
    """LaTeX-OCR parameters (defaults = the main config).

    ``font_size_pt`` is in TeX points (1/72.27 in) and ``dpi`` is the raster resolution: the
    paper's data is Computer Modern at 10 pt (``standalone``'s default) rendered at 200 dpi, so a
    digit is ~18 px tall and the em 27.7 px. mathtext counts 72 points per inch, so it is given
    10·72/72.27 = 9.963 pt to draw the same size.

    ``ink_coverage``: a pixel is ink when its glyph covers more than this fraction of it (the
    paper thresholds the anti-aliased grey page at 0.75 of white, i.e. coverage 0.25).
    ``motif_coverage``: a glyph's footprint is the box of the pixels it covers more than this
    (the paper's colour mask is saturation > 0.1, i.e. coverage 0.1), padded by ``motif_pad``.
    ``subsamples``: sample lines per pixel row when rasterising (coverage is exact along rows).
    ``warmup_samples``, ``warmup_maximal_length`` (set both or neither): a curriculum of the
    train streams only (split seeds >= 0): their first ``warmup_samples`` expressions have
    ``minimal_length``..``warmup_maximal_length`` tokens. Validation and test streams never
    change. Off (None) by default, which keeps the run keys of configs without it.
    Caching is a property of the domain object, not of the config (it changes no pixel).
    """

    height: int = 120
    width: int = 360
    noise: float = 0.25
    font_size_pt: float = 10.0
    dpi: int = 200
    renderer: str = "mathtext"
    minimal_length: int = 1
    maximal_length: int = 30
    ink_coverage: float = 0.25
    motif_coverage: float = 0.1
    motif_pad: int = 2
    subsamples: int = 8
    warmup_samples: int | None = None
    warmup_maximal_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("height", "width", "dpi", "minimal_length", "maximal_length", "motif_pad", "subsamples"):
            check_int(name, getattr(self, name))
        for name in ("noise", "font_size_pt", "ink_coverage", "motif_coverage"):
            check_number(name, getattr(self, name))
        if self.height < 1 or self.width < 1:
            raise ValueError(f"canvas must be at least 1x1, got {self.height}x{self.width}")
        if not 0 <= self.noise <= 1:
            raise ValueError(f"noise must be in [0, 1], got {self.noise}")
        if self.font_size_pt <= 0 or self.dpi <= 0:
            raise ValueError(f"font_size_pt and dpi must be positive, got {self.font_size_pt}, {self.dpi}")
        if self.renderer not in ("mathtext", "pdflatex"):
            raise ValueError(f"renderer must be 'mathtext' or 'pdflatex', got {self.renderer!r}")
        if not 1 <= self.minimal_length <= self.maximal_length:
            raise ValueError(
                f"need 1 <= minimal_length <= maximal_length, got {self.minimal_length}, {self.maximal_length}"
            )
        if not 0 <= self.motif_coverage < 1 or not 0 <= self.ink_coverage < 1:
            raise ValueError("ink_coverage and motif_coverage must be in [0, 1)")
        if self.motif_coverage > self.ink_coverage:
            raise ValueError("motif_coverage must be <= ink_coverage (a footprint must hold all its ink)")
        if self.motif_pad < 0 or self.subsamples < 1:
            raise ValueError("motif_pad must be >= 0 and subsamples >= 1")
        if (self.warmup_samples is None) != (self.warmup_maximal_length is None):
            raise ValueError("warmup_samples and warmup_maximal_length are set together (or neither), got "
                             f"{self.warmup_samples!r} and {self.warmup_maximal_length!r}")
        if self.warmup_samples is not None:
            check_int("warmup_samples", self.warmup_samples)
            check_int("warmup_maximal_length", self.warmup_maximal_length)
            if self.warmup_samples < 1:
                raise ValueError(f"warmup_samples must be >= 1 (None: no warm-up), got {self.warmup_samples}")
            if not self.minimal_length <= self.warmup_maximal_length <= self.maximal_length:
                raise ValueError(f"warmup_maximal_length must be in [minimal_length={self.minimal_length}, "
                                 f"maximal_length={self.maximal_length}], got {self.warmup_maximal_length}")

    @property
    def mathtext_size_pt(self) -> float:
        """The size handed to mathtext (72 points per inch) for ``font_size_pt`` TeX points."""
        return self.font_size_pt * 72.0 / TEX_POINTS_PER_INCH

    def build(self) -> "LatexOCRDomain":
        return LatexOCRDomain(self)


RENDER_VERSION = 1
"""Bumped whenever the renderer's output changes, so disk caches of older renders go stale."""


class _DiskCache:
    """Clean renders in an sqlite file, keyed by (render settings, token sequence).

    Safe to share between processes (sqlite locking, WAL journal) and threads (one connection
    per thread). A value is the zlib-compressed packed ink bits plus the motifs as int32 rows
    (symbol index, row start, row stop, col start, col stop, token index).
    """

    def __init__(self, path: str, namespace: str, shape: tuple[int, int]) -> None:
        self.path, self.namespace, self.shape = str(path), namespace, shape
        self._local = threading.local()

    def __getstate__(self):
        return {"path": self.path, "namespace": self.namespace, "shape": self.shape}

    def __setstate__(self, state):
        self.__init__(state["path"], state["namespace"], state["shape"])

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            import sqlite3

            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS renders (key BLOB PRIMARY KEY, value BLOB NOT NULL)")
            conn.commit()
            self._local.conn = conn
        return conn

    def _key(self, tokens: tuple[str, ...]) -> bytes:
        return hashlib.sha256((self.namespace + "\n" + " ".join(tokens)).encode()).digest()[:20]

    def get(self, tokens: tuple[str, ...]) -> tuple[np.ndarray, tuple[Motif, ...], tuple[int, ...]] | None:
        import zlib

        row = self._conn().execute("SELECT value FROM renders WHERE key = ?", (self._key(tokens),)).fetchone()
        if row is None:
            return None
        blob = row[0]
        n_bytes = int(np.frombuffer(blob[:4], np.int32)[0])
        size = self.shape[0] * self.shape[1]
        ink = np.unpackbits(np.frombuffer(zlib.decompress(blob[4 : 4 + n_bytes]), np.uint8), count=size)
        ink = ink.astype(bool).reshape(self.shape)
        rows = np.frombuffer(blob[4 + n_bytes :], np.int32).reshape(-1, 6)
        motifs = tuple(Motif(RENDERED_SYMBOLS[k], (slice(int(a), int(b)), slice(int(c), int(d))))
                       for k, a, b, c, d, _ in rows)
        return ink, motifs, tuple(int(r[5]) for r in rows)

    def put(self, tokens: tuple[str, ...], ink: np.ndarray, motifs: Sequence[Motif],
            token_indices: Sequence[int]) -> None:
        import zlib

        packed = zlib.compress(np.packbits(ink.ravel()).tobytes(), 1)
        rows = np.array([[RENDERED_SYMBOLS.index(m.symbol), m.footprint[0].start, m.footprint[0].stop,
                          m.footprint[1].start, m.footprint[1].stop, i] for m, i in zip(motifs, token_indices)],
                        dtype=np.int32).reshape(-1, 6)
        blob = np.int32(len(packed)).tobytes() + packed + rows.tobytes()
        conn = self._conn()
        conn.execute("INSERT OR REPLACE INTO renders (key, value) VALUES (?, ?)", (self._key(tokens), blob))
        conn.commit()


RENDER_CACHE_ENV = "SPARLING_RENDER_CACHE"
"""Environment variable: the sqlite file for clean renders when no ``cache_path`` is given."""


class LatexOCRDomain(BaseDomain):
    """Rendered LaTeX expressions → their token sequences (§3.3).

    ``symbols`` are the 26 output tokens; ``motif_symbols`` the 20 symbols a motif can carry.

    Clean renders are cached: in memory, an LRU of ``cache_size`` entries keyed by the token
    sequence (so validation and test passes, and short expressions, which recur, render once);
    optionally on disk too (``cache_path``, an sqlite file shared by processes), so that runs
    that read the same split (MT, ST, the baselines on one seed) render each sample once. Neither
    changes any pixel, and neither is part of the config (or of a run's key). Without
    ``cache_path``, ``$SPARLING_RENDER_CACHE`` names the sqlite file, so that experiments, the
    CLI and the notebooks share one (a rerun or a variant on the same seed renders nothing twice).
    """

    name = "latex_ocr"
    symbols = OUTPUT_TOKENS
    motif_symbols = RENDERED_SYMBOLS

    def __init__(self, config: LatexOCRConfig | None = None, cache_size: int = 20_000,
                 cache_path: str | os.PathLike | None = None) -> None:
        self.config = config if config is not None else LatexOCRConfig()
        if self.config.renderer == "pdflatex" and not pdflatex_available():
            raise RuntimeError("renderer='pdflatex' needs pdflatex and pdftoppm on PATH")
        if isinstance(cache_size, bool) or not isinstance(cache_size, (int, np.integer)) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        self.input_shape = (self.config.height, self.config.width)
        self.max_output_length = self.config.maximal_length + 2
        self.cache_size = int(cache_size)
        if cache_path is None:
            cache_path = os.environ.get(RENDER_CACHE_ENV) or None
        if cache_path is not None and os.path.isdir(cache_path):
            raise ValueError(f"the render cache must be a file, got the folder {os.fspath(cache_path)!r} "
                             f"(cache_path or ${RENDER_CACHE_ENV})")
        self.cache_path = None if cache_path is None else os.fspath(cache_path)
        self._init_caches()

    def _init_caches(self) -> None:
        self._cache: OrderedDict[tuple[str, ...], tuple[np.ndarray, tuple[Motif, ...]]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_hits = self.disk_hits = self.renders = 0
        self._disk = None
        if self.cache_path is not None:
            import matplotlib

            c = self.config
            settings = (RENDER_VERSION, matplotlib.__version__, c.renderer, c.height, c.width, c.font_size_pt, c.dpi,
                        c.ink_coverage, c.motif_coverage, c.motif_pad, c.subsamples)
            self._disk = _DiskCache(self.cache_path, repr(settings), self.input_shape)

    def __getstate__(self):
        return {"config": self.config, "cache_size": self.cache_size, "cache_path": self.cache_path}

    def __setstate__(self, state):
        self.__init__(state["config"], state["cache_size"], state["cache_path"])

    def __repr__(self) -> str:
        return f"LatexOCRDomain({self.config!r})"

    def tokens(self, rng: np.random.RandomState, maximal_length: int | None = None) -> tuple[str, ...]:
        """The token sequence (consumes ``rng`` exactly as the original rejection sampler);
        ``maximal_length`` defaults to the config's."""
        longest = self.config.maximal_length if maximal_length is None else maximal_length
        return rejection_sample(rng, self.config.minimal_length, longest)

    def render(self, tokens: Sequence[str], with_symbol_ink: bool = False) -> Rendering:
        """Clean render of a token sequence (bypasses the caches)."""
        unknown = set(tokens) - set(OUTPUT_TOKENS)
        if unknown:
            raise ValueError(f"unknown tokens {sorted(unknown)}; the tokens are {OUTPUT_TOKENS}")
        fn = _render_mathtext if self.config.renderer == "mathtext" else _render_pdflatex
        return fn(tuple(tokens), self.config, with_symbol_ink)

    def clean(self, tokens: Sequence[str]) -> tuple[np.ndarray, tuple[Motif, ...]]:
        """(ink bool (H, W), motifs) for a token sequence, through the caches. The ink is read-only."""
        key = tuple(tokens)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return hit
        stored = self._disk.get(key) if self._disk is not None else None
        if stored is not None:
            ink, motifs, _ = stored
            self.disk_hits += 1
        else:
            r = self.render(key)
            ink, motifs = r.ink, r.motifs
            self.renders += 1
            if self._disk is not None:
                self._disk.put(key, ink, motifs, r.token_indices)
        ink.flags.writeable = False
        value = (ink, motifs)
        if self.cache_size > 0:
            with self._cache_lock:
                self._cache[key] = value
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return value

    def sample_at(self, split_seed: int, index: int) -> Sample:
        """Sample ``index`` of split ``split_seed``; inside the train streams' warm-up (see
        ``LatexOCRConfig.warmup_samples``) of at most warmup_maximal_length tokens."""
        c = self.config
        if c.warmup_samples is not None and split_seed >= 0 and index < c.warmup_samples:
            return self.sample(self._rng_at(split_seed, index), maximal_length=c.warmup_maximal_length)
        return super().sample_at(split_seed, index)

    def sample(self, rng: np.random.RandomState, maximal_length: int | None = None) -> Sample:
        """Tokens (rejection sampling, at most ``maximal_length``, default the config's), the
        clean render, then noise drawn from ``rng``: x = float32, 1.0 = white, 0.0 = ink or
        noise (``noise`` of the pixels forced to 0)."""
        tokens = self.tokens(rng, maximal_length)
        ink, motifs = self.clean(tokens)
        white = ~ink
        if self.config.noise > 0:
            white &= ~(rng.rand(*self.input_shape) < self.config.noise)
        return Sample(white.astype(np.float32), tokens, motifs)


def mean_rendered_symbols(domain: LatexOCRDomain | None = None, n: int = 200, split_seed: int = TEST_SPLIT,
                          from_tokens: bool = False) -> float:
    """Mean number of rendered symbols over the first ``n`` clean samples of ``split_seed``:
    motifs actually on the canvas, or (``from_tokens``) tokens that draw a symbol, the count the
    paper's 9.64 comes from (a symbol cropped off the canvas still counts there)."""
    domain = domain if domain is not None else LatexOCRDomain()
    counts = []
    for i in range(n):
        rng = np.random.RandomState(compute_seed(split_seed, i))
        tokens = domain.tokens(rng)
        counts.append(len(rendered_symbol_tokens(tokens)) if from_tokens else len(domain.clean(tokens)[1]))
    return float(np.mean(counts))


# --------------------------------------------------------------------------- single characters (§3.4)


@lru_cache(maxsize=4)
def _single_character_crops(config: LatexOCRConfig, num_samples: int, seed: int,
                            size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``raw_latex_digits``: every motif but FRACBAR cut (footprint, i.e. with its padding) from
    the clean canvases of samples 0..num_samples-1 of split ``seed``; crops deduplicated by
    content and kept when seen more than once; each pasted centred on a size×size white patch
    (crops larger than the patch are dropped).

    Returns symbol → (ink (k, size, size) bool, boxes (k, 4) int: top, bottom, left, right of
    the pasted crop), for the classes that have any crop."""
    domain = LatexOCRDomain(config, cache_size=0)
    elements: dict[bytes, np.ndarray] = {}
    counts: dict[bytes, int] = {}
    character: dict[bytes, str] = {}
    for i in range(num_samples):
        tokens = domain.tokens(np.random.RandomState(compute_seed(seed, i)))
        r = domain.render(tokens)
        for m in r.motifs:
            if m.symbol == FRACBAR:
                continue
            crop = r.ink[m.footprint]
            key = hashlib.sha256(np.packbits(crop).tobytes() + str(crop.shape).encode()).digest()
            if key in character and character[key] != m.symbol:
                raise RuntimeError(f"one crop drawn as both {character[key]!r} and {m.symbol!r}")
            character[key] = m.symbol
            elements[key] = crop
            counts[key] = counts.get(key, 0) + 1
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for symbol in sorted(set(character.values())):
        crops = [elements[k] for k, s in character.items() if s == symbol and counts[k] > 1
                 and elements[k].shape[0] <= size and elements[k].shape[1] <= size]
        if not crops:
            continue
        packed = np.zeros((len(crops), size, size), dtype=bool)
        boxes = np.zeros((len(crops), 4), dtype=np.int64)
        for j, c in enumerate(crops):
            top, left = (size - c.shape[0]) // 2, (size - c.shape[1]) // 2
            packed[j, top : top + c.shape[0], left : left + c.shape[1]] = c
            boxes[j] = top, top + c.shape[0], left, left + c.shape[1]
        packed.flags.writeable = False
        boxes.flags.writeable = False
        out[symbol] = (packed, boxes)
    return out


class LatexSingleCharacterDomain(BaseDomain):
    """One rendered character, centred on a noisy 40×40 canvas (§3.4, direct supervision).

    The crops come from ``num_samples`` clean LaTeX-OCR samples of split ``crop_seed`` (−10);
    a sample picks a class uniformly, then one of its crops uniformly, then applies the same
    binarised set-to-ink noise (``config.noise``) from the same ``rng``. y = (symbol,); the motif
    is the pasted crop (the symbol's footprint in its LaTeX-OCR sample, 2 px padding included).
    The crops are built on first use (``num_samples`` renders: ~2 min at the paper's 10,000)
    and kept for the process.
    """

    name = "latex_single_character"

    def __init__(self, config: LatexOCRConfig | None = None, size: int = 40, num_samples: int = 10_000,
                 crop_seed: int = -10) -> None:
        self.config = config if config is not None else LatexOCRConfig()
        if size < 1 or num_samples < 1:
            raise ValueError(f"size and num_samples must be positive, got {size}, {num_samples}")
        self.size, self.num_samples, self.crop_seed = size, num_samples, crop_seed
        self.input_shape = (size, size)
        self.max_output_length = 1 + 2

    def __repr__(self) -> str:
        return (f"LatexSingleCharacterDomain({self.config!r}, size={self.size}, num_samples={self.num_samples}, "
                f"crop_seed={self.crop_seed})")

    @property
    def crops(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """symbol → (ink (k, size, size) bool, boxes (k, 4)); see ``_single_character_crops``."""
        return _single_character_crops(self.config, self.num_samples, self.crop_seed, self.size)

    @property
    def symbols(self) -> tuple[str, ...]:  # type: ignore[override]
        """The classes present (the paper's 19 with the default ``num_samples``), sorted."""
        return tuple(sorted(self.crops))

    def sample(self, rng: np.random.RandomState) -> Sample:
        crops = self.crops
        classes = tuple(sorted(crops))
        symbol = classes[rng.randint(len(classes))]  # == rng.choice(classes)
        stack, boxes = crops[symbol]
        k = rng.randint(stack.shape[0])
        white = ~stack[k]
        if self.config.noise > 0:
            white &= ~(rng.rand(self.size, self.size) < self.config.noise)
        top, bottom, left, right = (int(v) for v in boxes[k])
        return Sample(white.astype(np.float32), (symbol,), (Motif(symbol, (slice(top, bottom), slice(left, right))),))
