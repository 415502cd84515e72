"""LaTeX-OCR domain (REPRODUCTION_SPEC §3.3) and its single-character data (§3.4)."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from sparling.domains import TEST_SPLIT, Domain, compute_seed
from sparling.domains.latex_ocr import (
    FRACBAR,
    GRAMMAR,
    OUTPUT_TOKENS,
    PAPER_MEAN_RENDERED_SYMBOLS,
    RENDER_CACHE_ENV,
    RENDERED_SYMBOLS,
    SINGLE_CHARACTER_CLASSES,
    LatexOCRConfig,
    LatexOCRDomain,
    LatexSingleCharacterDomain,
    latex_code,
    mathtext_code,
    mean_rendered_symbols,
    motif_symbol,
    pdflatex_available,
    rejection_sample,
    rendered_symbol_tokens,
    sample_tokens,
)
from sparling.experiments import get_experiment

PAPER_EXAMPLE = r"\left(6^{x}5_{b}8+\left(\left(3^{7}a^{x}\right)\right)\right)"  # train seed 1, idx 0


@pytest.fixture(scope="module")
def domain() -> LatexOCRDomain:
    return LatexOCRDomain()


@pytest.fixture(scope="module")
def renders(domain):
    """(tokens, Rendering with per-symbol ink) for 40 test samples."""
    out = []
    for i in range(40):
        tokens = domain.tokens(np.random.RandomState(compute_seed(TEST_SPLIT, i)))
        out.append((tokens, domain.render(tokens, with_symbol_ink=True)))
    return out


def rng_at(split: int, index: int) -> np.random.RandomState:
    return np.random.RandomState(compute_seed(split, index))


# --------------------------------------------------------------------------- grammar


def reference_sample(symbol, rng):
    """The authors' CFG.sample: rng.choice(len(productions), p=weights / weights.sum())."""
    if symbol not in GRAMMAR:
        return [symbol]
    prods = GRAMMAR[symbol]
    w = np.array([p.weight for p in prods])
    k = rng.choice(len(prods), p=w / w.sum())
    return [t for e in prods[k].elements for t in reference_sample(e, rng)]


def reference_rejection_sample(rng, lo=1, hi=30):
    length = rng.choice(list(range(lo, 1 + hi)))
    while True:
        r = reference_sample("start", rng)
        if len(r) == length:
            return tuple(r)


def test_paper_example_and_mean_length():
    assert latex_code(rejection_sample(rng_at(1, 0))) == PAPER_EXAMPLE
    lengths = [len(rejection_sample(rng_at(TEST_SPLIT, i))) for i in range(200)]
    assert np.mean(lengths) == pytest.approx(15.48, abs=1e-9)  # §3.3


def test_fast_sampler_replays_rng_choice_exactly():
    for i in range(40):
        a, b = rng_at(3, i), rng_at(3, i)
        assert rejection_sample(a) == reference_rejection_sample(b)
        assert a.randint(2**31) == b.randint(2**31)  # the same draws were consumed


def test_vocabulary_and_codes():
    assert len(OUTPUT_TOKENS) == 26 and len(set(OUTPUT_TOKENS)) == 26
    assert len(RENDERED_SYMBOLS) == 20 and FRACBAR in RENDERED_SYMBOLS
    assert SINGLE_CHARACTER_CLASSES == tuple("()+0123456789abcxyz")
    toks = ("FRAC(", "PAREN(", "1", "SUP(", "x", "SUP)", "PAREN)",
            "FRACMID", "a", "SUB(", "2", "SUB)", "+", "b", "FRAC)")
    assert latex_code(toks) == r"\frac{\left(1^{x}\right)}{a_{2}+b}"
    assert [motif_symbol(t) for t in ("FRAC(", "FRACMID", "FRAC)", "PAREN(", "PAREN)", "SUP(", "+", "z")] == [
        FRACBAR, None, None, "(", ")", None, "+", "z"]
    nested = ("FRAC(", "FRAC(", "1", "FRACMID", "2", "FRAC)", "FRACMID", "3", "FRAC)", "+", "4")
    with pytest.raises(ValueError):
        LatexOCRDomain(cache_size=0).render(("(",))  # "(" is a rendered symbol, not a token
    # a top-level fraction keeps display style (\dfrac), a nested one is text style (\frac)
    assert mathtext_code(nested).startswith(r"$\dfrac{\frac{1}{2}}{3}")


def test_length_distribution_uniform():
    lengths = [len(rejection_sample(rng_at(11, i))) for i in range(2000)]
    counts = np.bincount(lengths, minlength=31)
    assert counts[0] == 0 and counts.sum() == 2000 and len(counts) == 31
    assert stats.chisquare(counts[1:]).pvalue > 1e-3


def test_production_frequencies_match_weights():
    rng = np.random.RandomState(0)
    chosen: dict[str, Counter] = {k: Counter() for k in GRAMMAR}
    for _ in range(3000):
        trace: list = []
        sample_tokens(rng, trace=trace)
        for nonterminal, k in trace:
            chosen[nonterminal][k] += 1
    for nonterminal, prods in GRAMMAR.items():
        counts = np.array([chosen[nonterminal][k] for k in range(len(prods))])
        w = np.array([p.weight for p in prods])
        assert counts.sum() > 500, nonterminal
        assert stats.chisquare(counts, counts.sum() * w / w.sum()).pvalue > 1e-3, (nonterminal, counts)


# --------------------------------------------------------------------------- samples


def test_interface_shape_and_values(domain):
    assert isinstance(domain, Domain)
    assert domain.input_shape == (120, 360) and domain.max_output_length == 32
    assert domain.symbols == OUTPUT_TOKENS
    x, ys, motifs = domain.batch(TEST_SPLIT, 0, 3)
    assert x.shape == (3, 1, 120, 360) and x.dtype == np.float32
    assert set(np.unique(x)) <= {0.0, 1.0}
    for y, ms in zip(ys, motifs):
        assert 1 <= len(y) <= 30 and set(y) <= set(OUTPUT_TOKENS)
        assert {m.symbol for m in ms} <= set(RENDERED_SYMBOLS)


def test_determinism():
    a, b = LatexOCRDomain(cache_size=0), LatexOCRDomain(cache_size=0)
    for i in (0, 1, 7):
        s, t = a.sample_at(TEST_SPLIT, i), b.sample_at(TEST_SPLIT, i)
        assert np.array_equal(s.x, t.x) and s.y == t.y and s.motifs == t.motifs
    assert not np.array_equal(a.sample_at(1, 0).x, a.sample_at(2, 0).x)


def test_footprints_contain_their_own_ink(domain, renders):
    for tokens, r in renders:
        union = np.zeros_like(r.ink)
        for m, (rows, cols) in zip(r.motifs, r.symbol_ink):
            rs, cs = m.footprint
            assert 0 <= rs.start < rs.stop <= 120 and 0 <= cs.start < cs.stop <= 360
            assert len(rows) > 0, (latex_code(tokens), m)
            assert rows.min() >= rs.start and rows.max() < rs.stop
            assert cols.min() >= cs.start and cols.max() < cs.stop
            # padded by 2 px around the glyph's coverage box (which holds its ink)
            assert rows.min() - rs.start >= 2 or rs.start == 0
            assert rs.stop - 1 - rows.max() >= 2 or rs.stop == 120
            assert cols.min() - cs.start >= 2 or cs.start == 0
            assert cs.stop - 1 - cols.max() >= 2 or cs.stop == 360
            union[rows, cols] = True
        assert np.array_equal(union, r.ink)  # every ink pixel belongs to some symbol


def test_one_motif_per_rendered_symbol(renders):
    for tokens, r in renders:
        expected = rendered_symbol_tokens(tokens)
        assert len(r.motifs) == len(expected), latex_code(tokens)  # none of these 40 is cropped
        assert [(i, s) for i, s in expected] == [(i, m.symbol) for i, m in zip(r.token_indices, r.motifs)]
        bars = [m for m in r.motifs if m.symbol == FRACBAR]
        assert len(bars) == tokens.count("FRAC(")
        assert bool(bars) == ("FRAC(" in tokens)
    assert any("FRAC(" in t for t, _ in renders) and any("FRAC(" not in t for t, _ in renders)


def test_bar_is_wide_and_thin(renders):
    bars = [m for _, r in renders for m in r.motifs if m.symbol == FRACBAR]
    assert bars
    for m in bars:
        rs, cs = m.footprint
        assert rs.stop - rs.start <= 2 * 2 + 3 and cs.stop - cs.start > 15


def test_cropped_glyphs_lose_their_motif():
    long = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "+", "a", "b", "c")
    full = LatexOCRDomain(LatexOCRConfig(), cache_size=0).render(long)
    assert len(full.motifs) == len(long)
    narrow = LatexOCRDomain(LatexOCRConfig(width=60), cache_size=0).render(long)
    kept = list(narrow.token_indices)
    assert 0 < len(kept) < len(long) and kept == list(range(kept[0], kept[-1] + 1))  # the middle survives
    assert all(m.footprint[1].stop <= 60 for m in narrow.motifs)


def test_glyph_size_and_open_counters(domain):
    for sym in "0ab8":
        r = domain.render((sym,), with_symbol_ink=True)
        rows, cols = r.symbol_ink[0]
        if sym in "08":  # CM digits at 10 pt, 200 dpi: 0.644 em of a 27.7 px em ≈ 18 px tall
            assert 16 <= rows.max() - rows.min() + 1 <= 21
        box = r.ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        h, w = box.shape
        # the counter: some white pixel enclosed by ink on its row, left and right
        inner = [(i, j) for i in range(h) for j in range(1, w - 1)
                 if not box[i, j] and box[i, :j].any() and box[i, j + 1 :].any()]
        assert inner, sym


def test_noise_rate_and_convention(domain):
    forced, white_before = 0, 0
    for i in range(5):
        rng = rng_at(TEST_SPLIT, i)
        tokens = domain.tokens(rng)
        ink = domain.render(tokens).ink
        noise = rng.rand(120, 360) < 0.25  # drawn from the sample's rng, after the tokens
        x = domain.sample_at(TEST_SPLIT, i).x
        assert np.array_equal(x, (~ink & ~noise).astype(np.float32))
        assert (x[ink] == 0).all()  # ink is 0, white is 1
        forced += int((x[~ink] == 0).sum())
        white_before += int((~ink).sum())
    assert abs(forced / white_before - 0.25) < 0.01


def test_clean_config_and_mean_pixel_value():
    clean = LatexOCRDomain(LatexOCRConfig(noise=0.0))
    s = clean.sample_at(TEST_SPLIT, 0)
    assert np.array_equal(s.x, (~clean.clean(s.y)[0]).astype(np.float32))
    noisy = LatexOCRDomain()
    mean = np.mean([noisy.sample_at(TEST_SPLIT, i).x.mean() for i in range(30)])
    assert mean == pytest.approx(0.739, abs=0.01)  # §3.3 reference npz (pdflatex renders)


def test_mean_rendered_symbols():
    assert mean_rendered_symbols(from_tokens=True) == pytest.approx(PAPER_MEAN_RENDERED_SYMBOLS, abs=1e-9)
    assert mean_rendered_symbols(n=20) == mean_rendered_symbols(n=20, from_tokens=True)


def test_caches_change_nothing(tmp_path):
    plain = LatexOCRDomain(cache_size=0)
    lru = LatexOCRDomain(cache_size=8)
    disk_a = LatexOCRDomain(cache_size=0, cache_path=tmp_path / "r.sqlite")
    for i in list(range(6)) + list(range(6)):
        ref = plain.sample_at(5, i)
        for d in (lru, disk_a):
            s = d.sample_at(5, i)
            assert np.array_equal(s.x, ref.x) and s.y == ref.y and s.motifs == ref.motifs
    assert lru.cache_hits >= 6 and disk_a.disk_hits == 6 and disk_a.renders == 6
    small = LatexOCRDomain(cache_size=2)
    for i in range(4):
        small.sample_at(5, i)
    assert len(small._cache) == 2  # least recently used entries are dropped
    disk_b = pickle.loads(pickle.dumps(disk_a))  # a worker process would get this
    s = disk_b.sample_at(5, 3)
    assert disk_b.disk_hits == 1 and disk_b.renders == 0 and s.motifs == plain.sample_at(5, 3).motifs
    other = LatexOCRDomain(LatexOCRConfig(motif_pad=0), cache_size=0, cache_path=tmp_path / "r.sqlite")
    other.sample_at(5, 3)
    assert other.renders == 1  # other render settings never read these entries


def test_render_cache_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "shared.sqlite"
    monkeypatch.setenv(RENDER_CACHE_ENV, str(path))
    first = get_experiment("latex_ocr_mt", "smoke").build_domain()  # what training and the notebooks build
    assert first.cache_path == str(path)
    reference = LatexOCRDomain(cache_size=0, cache_path=tmp_path / "own.sqlite").sample_at(2, 7)
    assert first.sample_at(2, 7).motifs == reference.motifs and first.renders == 1
    second = LatexOCRDomain(cache_size=0)  # another process, later
    s = second.sample_at(2, 7)
    assert second.renders == 0 and second.disk_hits == 1 and np.array_equal(s.x, reference.x)
    monkeypatch.setenv(RENDER_CACHE_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="must be a file"):
        LatexOCRDomain()
    monkeypatch.delenv(RENDER_CACHE_ENV)
    assert LatexOCRDomain().cache_path is None


@pytest.mark.parametrize("bad, match", [
    (dict(noise=1.5), "noise"), (dict(height=0), "canvas"), (dict(renderer="tex"), "renderer"),
    (dict(minimal_length=5, maximal_length=4), "minimal_length"), (dict(motif_coverage=0.5), "motif_coverage"),
    (dict(width=3.0), "width must be an int"), (dict(dpi=True), "dpi must be an int"),
    (dict(font_size_pt=-1), "font_size_pt"), (dict(noise=float("nan")), "noise must be finite"),
    (dict(ink_coverage="0.2"), "ink_coverage must be a number"),
    (dict(warmup_samples=10), "warmup"), (dict(warmup_maximal_length=3), "warmup"),
    (dict(warmup_samples=0, warmup_maximal_length=3), "warmup_samples"),
    (dict(warmup_samples=10, warmup_maximal_length=31), "warmup_maximal_length"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        LatexOCRConfig(**bad)


def test_warmup_changes_only_the_first_train_samples(domain):
    warm = LatexOCRDomain(LatexOCRConfig(warmup_samples=30, warmup_maximal_length=3))
    lengths = [len(warm.sample_at(2, i).y) for i in range(30)]
    assert max(lengths) <= 3 and set(lengths) == {1, 2, 3}
    assert max(len(warm.sample_at(2, i).y) for i in range(30, 60)) > 3  # the plain stream again
    for split, index in [(2, 30), (2, 41), (-1, 0), (TEST_SPLIT, 5)]:  # after the warm-up, validation, test
        a, b = warm.sample_at(split, index), domain.sample_at(split, index)
        assert np.array_equal(a.x, b.x) and a.y == b.y
    short = warm.sample_at(2, 4)
    assert np.array_equal(short.x, warm.sample_at(2, 4).x)
    assert len(short.motifs) == len(rendered_symbol_tokens(short.y))


# --------------------------------------------------------------------------- single characters


def test_single_character_domain():
    d = LatexSingleCharacterDomain(num_samples=150)
    assert set(d.symbols) <= set(SINGLE_CHARACTER_CLASSES) and len(d.symbols) >= 12
    s, t = d.sample_at(1, 4), d.sample_at(1, 4)
    assert np.array_equal(s.x, t.x) and s.y == t.y and s.motifs == t.motifs
    assert s.x.shape == (40, 40) and s.x.dtype == np.float32 and d.max_output_length == 3
    seen = set()
    for i in range(60):
        s = d.sample_at(TEST_SPLIT, i)
        [m] = s.motifs
        assert s.y == (m.symbol,)
        seen.add(m.symbol)
        stack, boxes = d.crops[m.symbol]
        ink = np.zeros((40, 40), bool)
        ink[m.footprint] = True
        assert any(np.array_equal(c & ink, c) and c.any() for c in stack)  # the crop lies in its footprint
    assert len(seen) >= 8


# --------------------------------------------------------------------------- pdflatex backend

needs_pdflatex = pytest.mark.skipif(not pdflatex_available(), reason="pdflatex / pdftoppm not on PATH")


def test_pdflatex_backend_refused_without_tex():
    if pdflatex_available():
        pytest.skip("pdflatex is installed")
    with pytest.raises(RuntimeError):
        LatexOCRConfig(renderer="pdflatex").build()


@needs_pdflatex
def test_pdflatex_render_matches_interface():
    d = LatexOCRConfig(renderer="pdflatex").build()
    tokens = rejection_sample(rng_at(1, 0))
    r = d.render(tokens, with_symbol_ink=True)
    assert r.ink.shape == (120, 360) and r.ink.any()
    assert [m.symbol for m in r.motifs] == [s for _, s in rendered_symbol_tokens(tokens)]
    for m, (rows, cols) in zip(r.motifs, r.symbol_ink):
        assert rows.min() >= m.footprint[0].start and rows.max() < m.footprint[0].stop


@needs_pdflatex
def test_pdflatex_sample_noise_and_shape():
    s = LatexOCRConfig(renderer="pdflatex").build().sample_at(TEST_SPLIT, 0)
    assert s.x.shape == (120, 360) and set(np.unique(s.x)) <= {0.0, 1.0}
